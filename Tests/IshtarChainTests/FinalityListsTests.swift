import Foundation
@testable import IshtarChain
import IshtarCrypto
import IshtarTestSupport
import Testing

/// The raw-byte lists the vote path searches instead of decoding: checked against the plain
/// definitions they replace.
@Suite("Finality lists")
struct FinalityListsTests {
    /// Members without a vote, by the merge walk, equal the members whose search in the vote
    /// list fails — for empty, partial, full and disjoint lists (votes may also come from
    /// keys outside the set).
    @Test(arguments: [0, 1, 7, 50])
    func membersWithoutAVoteMatchTheirSearch(seed: Int) {
        var rng = SplitMix64(seed: UInt64(seed))
        let members = (0..<40).map { _ in Data((0..<32).map { _ in UInt8(truncatingIfNeeded: rng.next()) }) }
        let set = ActiveSet(entries: members.enumerated().map { VotingPowerEntry(fpKey: $0.element, power: UInt64($0.offset + 1)) })
        let outsiders = (0..<10).map { _ in Data((0..<32).map { _ in UInt8(truncatingIfNeeded: rng.next()) }) }
        for voters in [[], members.filter { _ in rng.next() % 2 == 0 }, members, outsiders, members.prefix(5) + outsiders] {
            var votes = VoteList()
            for key in voters {
                let (index, found) = votes.search(key)
                guard !found else { continue }
                votes.insert(key: key, StoredVote(blockHash: Data(repeating: 1, count: 32), publicRandomness: Data(repeating: 2, count: 32),
                                                  signature: Data(repeating: 3, count: 32)), at: index)
            }
            let expected = set.keys.filter { !votes.search($0).found }
            #expect(set.keys(withoutVoteIn: votes) == expected)
        }
        for (i, key) in members.enumerated() { #expect(set.power(of: key) == UInt64(i + 1)) }
        for key in outsiders { #expect(set.power(of: key) == nil) }
        #expect(set.power(of: Data(repeating: 0, count: 31)) == nil)
    }

    /// The keys a decoded vote carries are the ones its state is kept under.
    @Test func aDecodedVoteCarriesTheKeysOfItsState() {
        let fp = Data(repeating: 0x51, count: 32), hash = Data(repeating: 0xab, count: 32)
        let vote = AddFinalitySig(fpKey: fp, chainID: "ishtar-test", height: 42, publicRandomness: Data(repeating: 2, count: 32),
                                  proof: MerkleProof(index: 0, total: 1, aunts: []), blockHash: hash, signature: Data(repeating: 3, count: 32))
        let keys = DecodedVote.Keys(vote)
        #expect(keys.provider == StateKey(module: StakingModule.moduleName, StakingModule.fpKey(fp)))
        #expect(keys.votes == StateKey(module: FinalityModule.moduleName, FinalityModule.votesKey("ishtar-test", 42)))
        #expect(keys.activeSet == StateKey(module: FinalityModule.moduleName, FinalityModule.activeSetKey("ishtar-test", 42)))
        #expect(keys.tally == StateKey(module: FinalityModule.moduleName, FinalityModule.tallyKey("ishtar-test", 42, hash)))
        #expect(keys.latestCommitment == StateKey(module: FinalityModule.moduleName, FinalityModule.latestCommitKey(fp, "ishtar-test")))
        #expect(keys.votes != keys.activeSet)
    }

    /// The slicing reader accepts and rejects exactly what the copying one does, with the
    /// same errors and equal values, over valid votes and random mutations of them (the
    /// sliced fields keep the payload's indices, so this also checks nothing assumed 0).
    @Test func slicedVoteDecodingAgreesWithCopying() throws {
        var rng = SplitMix64(seed: 0x5e11)
        func random(_ n: Int) -> Data { Data((0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }) }
        var seeds: [Data] = []
        for depth in [0, 1, 7] {
            let vote = AddFinalitySig(fpKey: random(32), chainID: "ishtar-\(depth)", height: rng.next() >> 8,
                                      publicRandomness: random(32),
                                      proof: MerkleProof(index: 0, total: UInt64(1) << UInt64(depth), aunts: (0..<depth).map { _ in random(32) }),
                                      blockHash: random(32), signature: random(32))
            seeds.append(vote.encoded)
        }
        func decodeSliced(_ payload: Data) -> Result<AddFinalitySig, CodecError> {
            var r = BinaryReader(slicing: payload)
            do throws(CodecError) {
                let v = try AddFinalitySig(from: &r)
                try r.finish()
                return .success(v)
            } catch { return .failure(error) }
        }
        func decodeCopied(_ payload: Data) -> Result<AddFinalitySig, CodecError> {
            do throws(CodecError) { return .success(try AddFinalitySig(decoding: payload)) } catch { return .failure(error) }
        }
        var accepted = 0
        for i in 0..<3000 {
            let bytes = mutation(i, of: seeds[i % seeds.count], &rng)
            // A payload that is itself a slice with a non-zero start, as a message's may be.
            let framed = Data([0xee, 0xee] + bytes + [0xee])
            let payload = framed[2..<(2 + bytes.count)]
            let sliced = decodeSliced(payload), copied = decodeCopied(payload)
            #expect(sliced == copied, "case \(i)")
            if case .success(let v) = sliced {
                accepted += 1
                #expect(v.encoded == Data(bytes), "case \(i): a sliced vote re-encodes to its payload")
            }
        }
        #expect(accepted >= 750 && accepted < 3000)
    }
}
