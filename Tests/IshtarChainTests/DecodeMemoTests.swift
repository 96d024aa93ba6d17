import Foundation
@testable import IshtarChain
import IshtarCrypto
import IshtarTestSupport
import Testing

@Suite("DecodeMemo")
struct DecodeMemoTests {
    struct Failure: Error, Equatable { let payload: Data }

    @Test func answersAsDecodingDoesAndNeverRemembersFailures() throws {
        let memo = DecodeMemo<Int>(capacity: 4)
        var calls = 0
        func decode(_ d: Data) throws(Failure) -> Int {
            calls += 1
            guard let first = d.first, first != 0 else { throw Failure(payload: d) }
            return Int(first) * 10 + d.count
        }
        let a = Data([3, 9]), bad = Data([0, 1])
        #expect(try memo.value(a, decode: decode) == 32)
        #expect(try memo.value(a, decode: decode) == 32)
        #expect(calls == 1, "the second lookup is answered from memory")
        // A failure is thrown every time (and decoded every time): never cached.
        for _ in 0..<2 { #expect(throws: Failure(payload: bad)) { try memo.value(bad, decode: decode) } }
        #expect(calls == 3)
        // Other bytes, even a prefix or extension, are decoded on their own.
        #expect(try memo.value(Data([3]), decode: decode) == 31)
        #expect(try memo.value(Data([3, 9, 0]), decode: decode) == 33)
        #expect(calls == 5)
    }

    @Test func generationsBoundWhatIsKept() throws {
        let memo = DecodeMemo<Int>(capacity: 2)
        var calls = 0
        func decode(_ d: Data) -> Int { calls += 1; return Int(d[d.startIndex]) }
        for i in 0..<6 { _ = memo.value(Data([UInt8(i)]), decode: decode) }
        #expect(calls == 6)
        // The newest entries are still answered from memory; the oldest were dropped.
        _ = memo.value(Data([5]), decode: decode)
        #expect(calls == 6)
        _ = memo.value(Data([0]), decode: decode)
        #expect(calls == 7)
    }

    /// A generation also ends when its payloads reach the byte bound (here long before the
    /// entry bound), and a memo that copies its keys answers for equal bytes whatever buffer
    /// they sit in.
    @Test func byteBoundAndCopiedKeys() throws {
        let memo = DecodeMemo<Int>(capacity: 100, byteCapacity: 10, copiesPayloads: true)
        var calls = 0
        func decode(_ d: Data) -> Int { calls += 1; return d.count }
        let payloads = (0..<7).map { Data(repeating: UInt8($0), count: 4) }
        for p in payloads { _ = memo.value(p, decode: decode) }
        #expect(calls == 7)
        // 12 bytes ended the generation {0, 1, 2}, and again {3, 4, 5}: 0 is gone.
        _ = memo.value(payloads[6], decode: decode)
        _ = memo.value(payloads[3], decode: decode)
        #expect(calls == 7, "the two newest generations are remembered")
        _ = memo.value(payloads[0], decode: decode)
        #expect(calls == 8, "the oldest was dropped by the byte bound")

        var block = Data([9, 9, 9])
        block.append(Data(repeating: 7, count: 5))
        #expect(memo.value(block[3..<8], decode: decode) == 5)
        #expect(calls == 9)
        block[3] = 0
        #expect(memo.value(Data(repeating: 7, count: 5), decode: decode) == 5)
        #expect(calls == 9, "equal bytes in another buffer are a hit, the key's copy unchanged")
    }

    /// Transaction hashes come from memory after the first time, and are still SHA-256 of
    /// exactly the bytes asked about.
    @Test func transactionHashesAreRememberedAndExact() {
        var rng = SplitMix64(seed: 0x7A5_4A54)
        for _ in 0..<64 {
            let raw = rng.bytes(Int.random(in: 0...9000, using: &rng))
            #expect(Transaction.hash(of: raw) == InlineSHA256.hash(data: raw))
            #expect(Transaction.hash(of: raw) == InlineSHA256.hash(data: raw))
            guard !raw.isEmpty else { continue }
            // Same length and same last 64 bytes, one byte changed in front: another hash.
            var changed = raw
            changed[changed.startIndex] ^= 1
            #expect(Transaction.hash(of: changed) == InlineSHA256.hash(data: changed))
        }
    }

    /// A provider's remembered parts serve its votes on every chain: the latest-commitment
    /// key it keeps is for the chain of its first vote, and a vote on another chain gets that
    /// chain's key, not the kept one.
    @Test func aVoteOnAnyChainGetsTheCommitmentKeyOfItsChain() throws {
        let key = try Schnorr.PrivateKey(rawRepresentation: Data(repeating: 9, count: 32))
        let fp = key.publicKey.rawRepresentation
        let hash = Data(repeating: 0xcd, count: 32)
        for chain in ["memo-chain-a", "memo-chain-b", "memo-chain-a"] {
            let batch = try PubRandBatch(fpKey: key, chainID: chain, startHeight: 10, count: 4)
            let vote = try DecodedVote(verifying: try batch.vote(height: 11, blockHash: hash))
            #expect(vote.keys.latestCommitment == StateKey(module: FinalityModule.moduleName, FinalityModule.latestCommitKey(fp, chain)))
            #expect(vote.keys.provider == StateKey(module: StakingModule.moduleName, StakingModule.fpKey(fp)))
        }
    }

    /// The verification mark on a remembered vote only ever skips a check with the same
    /// inputs: another commitment (range or root) is verified afresh, and a vote that fails
    /// is never marked.
    @Test func aVoteIsTrustedOnlyAgainstTheCommitmentItVerifiedAgainst() throws {
        let key = try Schnorr.PrivateKey(rawRepresentation: Data(repeating: 7, count: 32))
        let batch = try PubRandBatch(fpKey: key, chainID: "memo-test", startHeight: 10, count: 8)
        let hash = Data(repeating: 0xab, count: 32)
        let vote = try DecodedVote(verifying: try batch.vote(height: 12, blockHash: hash))
        let right = PubRandCommitment(startHeight: 10, count: 8, root: batch.root, committedAt: 1)
        try FinalityModule.verifyVote(vote, right)
        #expect(vote.wasVerified(against: right))
        let otherRoot = PubRandCommitment(startHeight: 10, count: 8, root: Data(repeating: 1, count: 32), committedAt: 1)
        #expect(!vote.wasVerified(against: otherRoot))
        #expect(throws: ExecutionError.self) { try FinalityModule.verifyVote(vote, otherRoot) }
        let otherRange = PubRandCommitment(startHeight: 11, count: 8, root: batch.root, committedAt: 1)
        #expect(throws: ExecutionError.self) { try FinalityModule.verifyVote(vote, otherRange) }
        // The right commitment is still trusted; a vote with a forged signature is never
        // even decoded (it carries the same randomness and proof, which would verify).
        #expect(vote.wasVerified(against: right))
        var forged = try batch.vote(height: 12, blockHash: hash)
        forged.signature = Data(repeating: 0x11, count: 32)
        #expect(throws: ExecutionError.rule(FinalityModuleError.invalidFinalitySignature)) { try DecodedVote(verifying: forged) }
        #expect(throws: Never.self) { try FinalityModule.verifyRandomness(forged, right) }
    }
}
