import Foundation
import Testing
@testable import IshtarConsensus

@Suite struct ValidatorSetTests {
    @Test func quorumArithmeticIsExactIntegers() throws {
        let s = try Fixtures.validatorSet(powers: [3, 3, 4])  // total 10
        #expect(!s.isSupermajority(6))  // 18 > 20? no
        #expect(s.isSupermajority(7))
        #expect(!s.isOneThirdPlus(3))  // 9 > 10? no
        #expect(s.isOneThirdPlus(4))
        let big = try Fixtures.validatorSet(powers: [ValidatorSet.maxTotalVotingPower - 1, 1])
        #expect(big.isSupermajority(ValidatorSet.maxTotalVotingPower))
        #expect(!big.isSupermajority(ValidatorSet.maxTotalVotingPower / 3 * 2))
    }

    @Test func rejectsBadSets() {
        #expect(throws: ConsensusError.self) { try ValidatorSet([]) }
        #expect(throws: ConsensusError.self) { try Fixtures.validatorSet(powers: [1, 0]) }
        #expect(throws: ConsensusError.self) { try Fixtures.validatorSet(powers: [ValidatorSet.maxTotalVotingPower, 1]) }
        #expect(throws: ConsensusError.self) {
            try ValidatorSet([Validator(address: Data([1]), publicKey: Data(), power: 1), Validator(address: Data([1]), publicKey: Data(), power: 2)])
        }
        #expect(throws: ConsensusError.self) { try ValidatorSet([Validator(address: Data(), publicKey: Data(), power: 1)]) }
    }

    @Test func equalPowerRotatesRoundRobinByAddress() throws {
        let s = try Fixtures.validatorSet(powers: [5, 5, 5, 5])
        let order = s.proposers(rounds: 8).map { Int($0[1]) }
        #expect(order == [0, 1, 2, 3, 0, 1, 2, 3])
    }

    @Test func frequencyIsProportionalToPowerOverRounds() throws {
        let powers: [UInt64] = [1, 2, 3, 4, 10]
        let s = try Fixtures.validatorSet(powers: powers)
        let rounds = 20 * 1000
        var count = [Int](repeating: 0, count: powers.count)
        for p in s.proposers(rounds: rounds) { count[Int(p[1])] += 1 }
        for (i, p) in powers.enumerated() {
            let expected = rounds * Int(p) / 20
            #expect(abs(count[i] - expected) <= powers.count, "validator \(i): \(count[i]) vs \(expected)")
        }
        // A validator with < 1/2 of the power is never proposer twice in a row.
        let seq = s.proposers(rounds: 2000).map { Int($0[1]) }
        #expect(!zip(seq, seq.dropFirst()).contains { $0 == $1 && $0 != 4 })
    }

    @Test func frequencyIsProportionalAcrossHeights() throws {
        let powers: [UInt64] = [7, 1, 2]
        var s = try Fixtures.validatorSet(powers: powers)
        var count = [0, 0, 0]
        for _ in 0..<1000 {
            count[Int(s.proposer(round: 0)[1])] += 1
            s = s.advancedForNextHeight()
        }
        #expect(abs(count[0] - 700) <= 3 && abs(count[1] - 100) <= 3 && abs(count[2] - 200) <= 3)
        #expect(try Fixtures.validatorSet(powers: powers).advanced(byHeights: 1000) == s)
    }

    @Test func scheduleMatchesDirectComputationAndIsDeterministic() throws {
        let s = try Fixtures.validatorSet(powers: [9, 1, 4, 4, 2])
        var sched = ProposerSchedule(s)
        for r: Round in [0, 1, 2, 7, 30, 31, 5] {
            #expect(sched.proposer(round: r) == s.proposer(round: r))
        }
        // Ties go to the lowest address: all zero priorities, equal power → validator 0 first.
        #expect(try Fixtures.validatorSet(powers: [2, 2]).proposer(round: 0) == Fixtures.address(0))
    }
}

@Suite struct EncodingTests {
    func hex(_ d: Data) -> String { d.map { String(format: "%02x", $0) }.joined() }

    @Test func voteSignBytesLayout() throws {
        let value = try BlockHash(Data(repeating: 0x11, count: 32))
        let v = Vote(type: .prevote, height: 1, round: 2, value: value, validator: Data([0xA0, 1]))
        let expected =
            hex(Data("ISHTAR/CONSENSUS/V1".utf8)) + "0a" + hex(Data("ishtar-sim".utf8))
            + "01" + "0000000000000001" + "00000002" + "01" + String(repeating: "11", count: 32)
        #expect(hex(v.signBytes(chainID: Fixtures.chainID)) == expected)
        let nilPrecommit = Vote(type: .precommit, height: 1, round: 2, value: nil, validator: Data([0xA0, 1]))
        #expect(hex(nilPrecommit.signBytes(chainID: Fixtures.chainID)).hasSuffix("02" + "0000000000000001" + "00000002" + "00"))
        let p = Proposal(height: 1, round: 2, polRound: 1, value: ProposalValue(hash: value, block: Data([1, 2, 3])), proposer: Data([0xA0, 1]))
        #expect(
            hex(p.signBytes(chainID: Fixtures.chainID))
                == hex(Data("ISHTAR/CONSENSUS/V1".utf8)) + "0a" + hex(Data("ishtar-sim".utf8)) + "20"
                + "0000000000000001" + "00000002" + "01" + "00000001" + String(repeating: "11", count: 32))
        // Different chain → different bytes (no cross-chain replay).
        #expect(v.signBytes(chainID: try ChainID("other")) != v.signBytes(chainID: Fixtures.chainID))
    }

    @Test func roundTrips() throws {
        let val = Fixtures.value(height: 4, tag: "x")
        let sv = SignedVote(vote: Vote(type: .precommit, height: 4, round: 9, value: val.hash, validator: Data([1, 2])), signature: Data(repeating: 5, count: 64))
        let nv = SignedVote(vote: Vote(type: .prevote, height: 4, round: 9, value: nil, validator: Data([1, 2])), signature: Data(repeating: 6, count: 64))
        #expect(try CanonicalEncoding.decodeVote(CanonicalEncoding.encode(sv)) == sv)
        let sp = SignedProposal(proposal: Proposal(height: 4, round: 9, polRound: nil, value: val, proposer: Data([3])), signature: Data([9]))
        #expect(try CanonicalEncoding.decodeProposal(CanonicalEncoding.encode(sp)) == sp)
        let cert = CommitCertificate(height: 4, round: 9, value: val.hash, precommits: [sv])
        #expect(try CanonicalEncoding.decodeCommit(CanonicalEncoding.encode(cert)) == cert)
        let ev = DuplicateVoteEvidence(sv, nv)
        #expect(try CanonicalEncoding.decodeEvidence(CanonicalEncoding.encode(ev)) == ev)
        #expect(ev == DuplicateVoteEvidence(nv, sv))  // canonical order
        for s in [
            SignState(message: .vote(sv), lockedRound: 3, lockedValue: val),
            SignState(message: .proposal(sp), lockedRound: nil, lockedValue: nil),
            SignState(message: .vote(sv), sameRound: [.proposal(sp), .vote(nv)], lockedRound: 9, lockedValue: val),
            SignState(message: .vote(sv), lockedRound: 9, lockedValue: val, lockProof: [sv, nv]),
        ] {
            #expect(try SignState(encoded: s.encoded()) == s)
        }
        // No lock, no proof: a proof without a lock is dropped.
        #expect(SignState(message: .vote(sv), lockedRound: nil, lockedValue: nil, lockProof: [sv]).lockProof.isEmpty)
        // A record written before the proof-of-lock was kept (version 1) still reads, with
        // an empty proof: the same bytes without the proof's count.
        let locked = SignState(message: .vote(sv), lockedRound: 3, lockedValue: val)
        var v1 = locked.encoded().dropLast(2)
        v1[v1.startIndex] = 1
        #expect(try SignState(encoded: Data(v1)) == locked)
        var unlocked = SignState(message: .proposal(sp), lockedRound: nil, lockedValue: nil).encoded()
        unlocked[unlocked.startIndex] = 1
        #expect(try SignState(encoded: unlocked).lockedValue == nil)
        // A proof count larger than the bytes left is refused before anything is read.
        var lying = locked.encoded()
        lying[lying.index(lying.endIndex, offsetBy: -2)] = 0xff
        #expect(throws: ConsensusError.self) { try SignState(encoded: lying) }
    }

    @Test func malformedInputThrows() throws {
        let sv = SignedVote(vote: Vote(type: .prevote, height: 1, round: 0, value: nil, validator: Data([1])), signature: Data([1, 2]))
        let good = CanonicalEncoding.encode(sv)
        #expect(throws: ConsensusError.self) { try CanonicalEncoding.decodeVote(good + Data([0])) }
        #expect(throws: ConsensusError.self) { try CanonicalEncoding.decodeVote(good.dropLast()) }
        var badType = good
        badType[badType.startIndex] = 7
        #expect(throws: ConsensusError.self) { try CanonicalEncoding.decodeVote(badType) }
        #expect(throws: ConsensusError.self) { try SignState(encoded: Data([2])) }
        #expect(throws: ConsensusError.self) { try BlockHash(Data(count: 31)) }
        #expect(throws: ConsensusError.self) { try ChainID("") }
        #expect(throws: ConsensusError.self) { try ChainID(String(repeating: "x", count: 256)) }
    }

    /// Random bytes and random mutations of valid encodings never trap.
    @Test func decodersSurviveFuzzing() {
        var rng = SimRNG(seed: 99)
        let val = Fixtures.value(height: 2, tag: "f")
        let seeds: [Data] = [
            CanonicalEncoding.encode(SignedVote(vote: Vote(type: .prevote, height: 2, round: 1, value: val.hash, validator: Data([1])), signature: Data(count: 64))),
            CanonicalEncoding.encode(SignedProposal(proposal: Proposal(height: 2, round: 1, polRound: 0, value: val, proposer: Data([1])), signature: Data(count: 64))),
        ]
        for i in 0..<20_000 {
            var d: Data
            if i % 2 == 0 {
                d = Data((0..<rng.int(0...120)).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
            } else {
                d = seeds[i / 2 % seeds.count]
                for _ in 0..<rng.int(1...4) where !d.isEmpty { d[rng.int(0...d.count - 1)] = UInt8(truncatingIfNeeded: rng.next()) }
                if rng.chance(0.3) { d = d.prefix(rng.int(0...d.count)) }
            }
            _ = try? CanonicalEncoding.decodeVote(d)
            _ = try? CanonicalEncoding.decodeProposal(d)
            _ = try? CanonicalEncoding.decodeCommit(d)
            _ = try? CanonicalEncoding.decodeEvidence(d)
            _ = try? SignState(encoded: d)
        }
    }
}
