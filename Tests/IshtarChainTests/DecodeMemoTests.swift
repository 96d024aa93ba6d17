import Foundation
@testable import IshtarChain
import IshtarCrypto
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
