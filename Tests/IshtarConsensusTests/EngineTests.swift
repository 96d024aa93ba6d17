import Foundation
import Testing
@testable import IshtarConsensus

/// Builds signed messages from any validator of a small set and drives one engine by hand.
struct Rig {
    let set: ValidatorSet
    let me: Int
    var engine: ConsensusEngine
    let timeouts = TimeoutConfig(
        proposeBaseMillis: 1000, proposeDeltaMillis: 200, prevoteBaseMillis: 500, prevoteDeltaMillis: 100,
        precommitBaseMillis: 500, precommitDeltaMillis: 100)

    init(powers: [UInt64] = [1, 1, 1, 1], me: Int, lastSignState: SignState? = nil, signer: (any ConsensusSigner)? = nil) throws {
        set = try Fixtures.validatorSet(powers: powers)
        self.me = me
        engine = ConsensusEngine(
            chainID: Fixtures.chainID, signer: signer ?? Fixtures.signer(me), verifier: FakeVerifier(),
            timeouts: timeouts, lastSignState: lastSignState)
    }

    func index(of address: Data) -> Int { Int(address[1]) }

    func proposerIndex(height: Height = 1, round: Round) -> Int {
        var s = set
        for _ in 1..<max(height, 1) { s = s.advancedForNextHeight() }
        return index(of: s.proposer(round: round))
    }

    func vote(_ i: Int, _ type: VoteType, _ h: Height, _ r: Round, _ value: BlockHash?) -> SignedVote {
        let v = Vote(type: type, height: h, round: r, value: value, validator: Fixtures.address(i))
        return SignedVote(vote: v, signature: (try? Fixtures.signer(i).sign(v.signBytes(chainID: Fixtures.chainID))) ?? Data())
    }

    func proposal(_ i: Int, _ h: Height, _ r: Round, pol: Round? = nil, _ value: ProposalValue) -> SignedProposal {
        let p = Proposal(height: h, round: r, polRound: pol, value: value, proposer: Fixtures.address(i))
        return SignedProposal(proposal: p, signature: (try? Fixtures.signer(i).sign(p.signBytes(chainID: Fixtures.chainID))) ?? Data())
    }

    /// Feeds an event and answers validation requests (every value valid unless `invalid`).
    @discardableResult
    mutating func step(_ e: ConsensusEvent, invalid: Set<BlockHash> = [], untimely: Set<BlockHash> = []) -> [ConsensusAction] {
        var all: [ConsensusAction] = []
        var pending = [e]
        while !pending.isEmpty {
            let actions = engine.step(pending.removeFirst())
            all += actions
            for a in actions {
                if case .requestValidation(let h, let v) = a {
                    pending.append(.validity(height: h, value: v, valid: !invalid.contains(v.hash), timely: !untimely.contains(v.hash)))
                }
            }
        }
        return all
    }

    mutating func start(height: Height = 1) -> [ConsensusAction] {
        var s = set
        for _ in 1..<max(height, 1) { s = s.advancedForNextHeight() }
        return step(.startHeight(height, s))
    }

    /// Own votes broadcast in `actions` (ignores re-broadcasts of others' votes).
    func myVotes(_ actions: [ConsensusAction]) -> [Vote] {
        actions.compactMap {
            if case .broadcastVote(let v) = $0, v.vote.validator == Fixtures.address(me) { return v.vote }
            return nil
        }
    }
}

extension ConsensusAction {
    var decision: Decision? {
        if case .decide(let d) = self { return d }
        return nil
    }
}

@Suite struct EngineTests {
    let v = Fixtures.value(height: 1, tag: "v")
    let w = Fixtures.value(height: 1, tag: "w")

    /// A node that is not the proposer of rounds 0, 1 or 2 (with 4 equal validators: 3).
    func rig(powers: [UInt64] = [1, 1, 1, 1], lastSignState: SignState? = nil) throws -> Rig {
        let probe = try Rig(powers: powers, me: 0)
        let busy = (0..<3).map { probe.proposerIndex(round: Round($0)) }
        let me = (0..<powers.count).first { !busy.contains($0) } ?? 0
        return try Rig(powers: powers, me: me, lastSignState: lastSignState)
    }

    @Test func timeoutsGrowLinearlyWithRound() throws {
        let t = TimeoutConfig(proposeBaseMillis: 1000, proposeDeltaMillis: 200)
        #expect(t.durationMillis(step: .propose, round: 0) == 1000)
        #expect(t.durationMillis(step: .propose, round: 3) == 1600)
        #expect(t.durationMillis(step: .propose, round: .max) > t.durationMillis(step: .propose, round: 1000))
        // The engine schedules them that way as rounds advance.
        var r = try rig()
        var durations: [UInt64] = []
        var actions = r.start()
        for round: Round in 0..<4 {
            for a in actions {
                if case .scheduleTimeout(let info, let ms) = a, info.step == .propose, info.round == round { durations.append(ms) }
            }
            actions = r.step(.timeout(TimeoutInfo(height: 1, round: round, step: .precommit)))
        }
        #expect(durations == [1000, 1200, 1400, 1600])
    }

    @Test func proposerPersistsBeforeBroadcasting() throws {
        let probe = try Rig(me: 0)
        var r = try Rig(me: probe.proposerIndex(round: 0))
        let a = r.start()
        #expect(a.contains(.requestProposalValue(height: 1, round: 0)))
        let b = r.step(.proposalValue(height: 1, round: 0, value: v))
        // Every newly signed message is immediately preceded by its persist action.
        var sawProposal = false, sawPrevote = false
        var proposalMessage: SignedMessage?
        for (k, act) in b.enumerated() {
            switch act {
            case .broadcastProposal(let p):
                sawProposal = true
                #expect(k > 0 && b[k - 1] == .persistSignState(SignState(message: .proposal(p), lockedRound: nil, lockedValue: nil)))
                proposalMessage = .proposal(p)
            case .broadcastVote(let sv):
                sawPrevote = true
                // The record of the prevote also carries the proposal signed in the same round.
                #expect(k > 0 && b[k - 1] == .persistSignState(SignState(message: .vote(sv), sameRound: [proposalMessage].compactMap { $0 }, lockedRound: nil, lockedValue: nil)))
                #expect(sv.vote.value == v.hash && sv.vote.type == .prevote)
            default: break
            }
        }
        #expect(sawProposal && sawPrevote)
    }

    @Test func happyPathDecidesWithCertificate() throws {
        var r = try rig()
        _ = r.start()
        let p = r.proposerIndex(round: 0)
        let a = r.step(.proposal(r.proposal(p, 1, 0, v)))
        #expect(r.myVotes(a).map(\.value) == [v.hash])
        for i in 0..<4 where i != r.me { r.step(.vote(r.vote(i, .prevote, 1, 0, v.hash))) }
        #expect(r.engine.lockedValue == v && r.engine.lockedRound == 0 && r.engine.step == .precommit)
        var decided: Decision?
        for i in 0..<4 where i != r.me {
            decided = decided ?? r.step(.vote(r.vote(i, .precommit, 1, 0, v.hash))).compactMap(\.decision).first
        }
        let d = try #require(decided)
        #expect(d.value == v && d.round == 0 && d.height == 1)
        try d.certificate.verify(chainID: Fixtures.chainID, validators: r.set, verifier: FakeVerifier())
    }

    @Test func lockedNodeDoesNotPrevoteOtherValueWithoutNewerPOL() throws {
        var r = try rig()
        _ = r.start()
        r.step(.proposal(r.proposal(r.proposerIndex(round: 0), 1, 0, v)))
        for i in 0..<4 where i != r.me { r.step(.vote(r.vote(i, .prevote, 1, 0, v.hash))) }
        #expect(r.engine.lockedValue == v)
        // Round 1: a fresh proposal of w (no POL) → prevote nil.
        r.step(.timeout(TimeoutInfo(height: 1, round: 0, step: .precommit)))
        #expect(r.engine.round == 1)
        let a1 = r.step(.proposal(r.proposal(r.proposerIndex(round: 1), 1, 1, w)))
        #expect(r.myVotes(a1).map(\.value) == [nil])
        // Round 2: w with POL round 1 but no POL seen yet → waits.
        r.step(.timeout(TimeoutInfo(height: 1, round: 1, step: .precommit)))
        let p2 = r.proposerIndex(round: 2)
        #expect(p2 != r.me)
        let a2 = r.step(.proposal(r.proposal(p2, 1, 2, pol: 1, w)))
        #expect(r.myVotes(a2).isEmpty)
        // Only 2 of 4 prevotes for w in round 1: not a POL, still nothing.
        let others = (0..<4).filter { $0 != r.me }
        var a3: [ConsensusAction] = []
        for i in others.prefix(2) { a3 += r.step(.vote(r.vote(i, .prevote, 1, 1, w.hash))) }
        #expect(r.myVotes(a3).isEmpty)
        // The third makes > 2/3: a POL in round 1, newer than our lock at round 0 → prevote w.
        a3 = r.step(.vote(r.vote(others[2], .prevote, 1, 1, w.hash)))
        #expect(r.myVotes(a3).first?.value == w.hash)
        #expect(r.engine.lockedValue == v)  // the lock itself moves only by precommitting

        // Without the POL the timeout gives nil, never w.
        var r2 = try rig()
        _ = r2.start()
        r2.step(.proposal(r2.proposal(r2.proposerIndex(round: 0), 1, 0, v)))
        for i in 0..<4 where i != r2.me { r2.step(.vote(r2.vote(i, .prevote, 1, 0, v.hash))) }
        r2.step(.timeout(TimeoutInfo(height: 1, round: 0, step: .precommit)))
        r2.step(.timeout(TimeoutInfo(height: 1, round: 1, step: .precommit)))
        var b = r2.step(.proposal(r2.proposal(r2.proposerIndex(round: 2), 1, 2, pol: 1, w)))
        for i in (0..<4).filter({ $0 != r2.me }).prefix(2) { b += r2.step(.vote(r2.vote(i, .prevote, 1, 1, w.hash))) }
        b += r2.step(.timeout(TimeoutInfo(height: 1, round: 2, step: .propose)))
        #expect(r2.myVotes(b).map(\.value) == [nil])
    }

    /// A proposer re-proposing its valid value sends the proof-of-lock prevotes with the
    /// proposal, so a peer that missed them can prevote it before its propose timeout.
    @Test func reproposalCarriesItsProofOfLock() throws {
        let probe = try Rig(me: 0)
        let proposer1 = probe.proposerIndex(round: 1)
        let proposer0 = probe.proposerIndex(round: 0)
        try #require(proposer0 != proposer1)
        var r = try Rig(me: proposer1)
        _ = r.start()
        r.step(.proposal(r.proposal(proposer0, 1, 0, v)))
        let voters = (0..<4).filter { $0 != r.me }
        for i in voters { r.step(.vote(r.vote(i, .prevote, 1, 0, v.hash))) }
        #expect(r.engine.validValue == v)
        let actions = r.step(.timeout(TimeoutInfo(height: 1, round: 0, step: .precommit)))
        let proposed = actions.compactMap { action -> Proposal? in
            if case .broadcastProposal(let p) = action { return p.proposal }
            return nil
        }
        #expect(proposed.map(\.round) == [1] && proposed.first?.polRound == 0 && proposed.first?.value == v)
        let relayed = Set(actions.compactMap { action -> Data? in
            if case .broadcastVote(let sv) = action, sv.vote.round == 0, sv.vote.type == .prevote, sv.vote.value == v.hash {
                return sv.vote.validator
            }
            return nil
        })
        #expect(relayed.isSuperset(of: voters.map(Fixtures.address)), "POL prevotes sent with the proposal: \(relayed)")
    }

    /// The moment a node sees a proof-of-lock it passes the prevotes on: an equivocator may
    /// have shown its prevote to this node alone.
    @Test func aProofOfLockIsRelayedWhenSeen() throws {
        var r = try rig()
        _ = r.start()
        r.step(.proposal(r.proposal(r.proposerIndex(round: 0), 1, 0, v)))
        let voters = (0..<4).filter { $0 != r.me }
        var actions: [ConsensusAction] = []
        for i in voters { actions += r.step(.vote(r.vote(i, .prevote, 1, 0, v.hash))) }
        #expect(r.engine.validValue == v && r.engine.validRound == 0)
        let relayed = Set(actions.compactMap { action -> Data? in
            if case .broadcastVote(let sv) = action, sv.vote.type == .prevote, sv.vote.value == v.hash { return sv.vote.validator }
            return nil
        })
        // Ours and the two that completed the POL (the fourth arrives after it and is not relayed).
        #expect(relayed.count >= 3 && relayed.contains(Fixtures.address(voters[0])) && relayed.contains(Fixtures.address(voters[1])),
                "the POL's prevotes: \(relayed.map { Array($0) })")
    }

    @Test func roundSkipNeedsMoreThanOneThirdOfPower() throws {
        var r = try rig(powers: [1, 1, 1, 1])
        _ = r.start()
        let others = (0..<4).filter { $0 != r.me }
        r.step(.vote(r.vote(others[0], .prevote, 1, 5, nil)))
        #expect(r.engine.round == 0)  // 1/4 ≤ 1/3
        r.step(.vote(r.vote(others[1], .precommit, 1, 7, nil)))
        #expect(r.engine.round == 5)  // 2/4 > 1/3 seen at rounds ≥ 5
        // Unequal power: a 1-of-10 validator far ahead never makes us skip.
        var u = try Rig(powers: [1, 3, 3, 3], me: 1)
        _ = u.start()
        u.step(.vote(u.vote(0, .prevote, 1, 9, nil)))
        #expect(u.engine.round == 0)
        // …and votes for rounds beyond the storage window count as votes at its edge: over
        // 1/3 of the power there moves us one window ahead, not to the round they name.
        let window = u.engine.maxFutureRounds
        u.step(.vote(u.vote((u.me + 1) % 4, .prevote, 1, 5000, nil)))
        u.step(.vote(u.vote((u.me + 2) % 4, .prevote, 1, 6000, nil)))
        #expect(u.engine.round == window)
        // A coalition over 1/3 signing at the last round cannot make a node compute four
        // billion proposers: each vote moves it at most a window.
        u.step(.vote(u.vote((u.me + 1) % 4, .precommit, 1, .max, nil)))
        u.step(.vote(u.vote((u.me + 2) % 4, .precommit, 1, .max, nil)))
        #expect(u.engine.round == 2 * window)
        #expect(u.engine.proposer(round: u.engine.round) != nil)
    }

    @Test func nilPrecommitsNeverDecide() throws {
        var r = try rig()
        _ = r.start()
        var all: [ConsensusAction] = []
        for i in 0..<4 where i != r.me {
            all += r.step(.vote(r.vote(i, .prevote, 1, 0, nil)))
            all += r.step(.vote(r.vote(i, .precommit, 1, 0, nil)))
        }
        #expect(all.compactMap(\.decision).isEmpty)
        #expect(all.contains { if case .scheduleTimeout(let t, _) = $0 { return t.step == .precommit } else { return false } })
        r.step(.timeout(TimeoutInfo(height: 1, round: 0, step: .precommit)))
        #expect(r.engine.round == 1 && r.engine.decision == nil)
    }

    @Test func decidesOnPrecommitsFromAPastRound() throws {
        var r = try rig()
        _ = r.start()
        for round: Round in 0..<2 { r.step(.timeout(TimeoutInfo(height: 1, round: round, step: .precommit))) }
        #expect(r.engine.round == 2)
        r.step(.proposal(r.proposal(r.proposerIndex(round: 0), 1, 0, v)))
        var d: Decision?
        for i in 0..<4 where i != r.me {
            d = d ?? r.step(.vote(r.vote(i, .precommit, 1, 0, v.hash))).compactMap(\.decision).first
        }
        #expect(d?.round == 0 && d?.value == v)
    }

    @Test func invalidProposalGetsNilPrevote() throws {
        var r = try rig()
        _ = r.start()
        let a = r.step(.proposal(r.proposal(r.proposerIndex(round: 0), 1, 0, v)), invalid: [v.hash])
        #expect(r.myVotes(a).map(\.value) == [nil])
    }

    @Test func untimelyProposalGetsNilPrevoteButItsDecisionIsFollowed() throws {
        // A fresh proposal dated too far past the local clock gets a nil prevote …
        var r = try rig()
        _ = r.start()
        let a = r.step(.proposal(r.proposal(r.proposerIndex(round: 0), 1, 0, v)), untimely: [v.hash])
        #expect(r.myVotes(a).map(\.value) == [nil])
        // … but once the others precommit it, it is decided all the same: timeliness is a
        // local judgement and must never stop a node from following the chain.
        var d: Decision?
        for i in (0..<4) where i != r.me {
            d = d ?? r.step(.vote(r.vote(i, .precommit, 1, 0, v.hash))).compactMap(\.decision).first
        }
        #expect(d?.value == v)
        // A re-proposal carrying its POL is prevoted whatever its time (others may be locked on
        // it). This node missed round 0's proposal, so it holds no lock of its own.
        var s = try rig()
        _ = s.start()
        _ = s.step(.timeout(TimeoutInfo(height: 1, round: 0, step: .propose)))
        for i in (0..<4) where i != s.me { _ = s.step(.vote(s.vote(i, .prevote, 1, 0, v.hash))) }
        _ = s.step(.timeout(TimeoutInfo(height: 1, round: 0, step: .prevote)))
        _ = s.step(.timeout(TimeoutInfo(height: 1, round: 0, step: .precommit)))
        let b = s.step(.proposal(s.proposal(s.proposerIndex(round: 1), 1, 1, pol: 0, v)), untimely: [v.hash])
        #expect(s.myVotes(b).filter { $0.type == .prevote && $0.round == 1 }.map(\.value) == [v.hash])
        // The same value proposed fresh in round 1 would have had a nil prevote.
        var t = try rig()
        _ = t.start()
        _ = t.step(.timeout(TimeoutInfo(height: 1, round: 0, step: .propose)))
        _ = t.step(.timeout(TimeoutInfo(height: 1, round: 0, step: .prevote)))
        _ = t.step(.timeout(TimeoutInfo(height: 1, round: 0, step: .precommit)))
        let c = t.step(.proposal(t.proposal(t.proposerIndex(round: 1), 1, 1, v)), untimely: [v.hash])
        #expect(t.myVotes(c).filter { $0.type == .prevote && $0.round == 1 }.map(\.value) == [nil])
    }

    @Test func aNodeOutsideTheSetSignsNoVotesButFollows() throws {
        var r = try Rig(me: 0, signer: Fixtures.signer(7))
        _ = r.start()
        let a = r.step(.proposal(r.proposal(r.proposerIndex(round: 0), 1, 0, v)))
        let signedHere = a.filter {
            switch $0 {
            case .persistSignState: return true
            case .broadcastVote(let sv): return sv.vote.validator == Fixtures.address(7)
            default: return false
            }
        }
        #expect(signedHere.isEmpty)
        // Timeouts do not make it sign nil votes either.
        let b = r.step(.timeout(TimeoutInfo(height: 1, round: 0, step: .propose)))
        #expect(!b.contains { if case .persistSignState = $0 { return true } else { return false } })
        // The validators' precommits still decide the height for it.
        var d: Decision?
        for i in 0..<4 { d = d ?? r.step(.vote(r.vote(i, .precommit, 1, 0, v.hash))).compactMap(\.decision).first }
        #expect(d?.value == v)
    }

    @Test func equivocationYieldsEvidenceOnce() throws {
        var r = try rig()
        _ = r.start()
        let byz = (r.me + 1) % 4
        var all: [ConsensusAction] = []
        all += r.step(.vote(r.vote(byz, .prevote, 1, 0, v.hash)))
        all += r.step(.vote(r.vote(byz, .prevote, 1, 0, w.hash)))
        all += r.step(.vote(r.vote(byz, .prevote, 1, 0, nil)))
        all += r.step(.vote(r.vote(byz, .prevote, 1, 0, w.hash)))
        let ev = all.compactMap { if case .evidence(let e) = $0 { return e } else { return nil } }
        #expect(ev.count == 1)
        let e = try #require(ev.first)
        try e.verify(chainID: Fixtures.chainID, validators: r.set, verifier: FakeVerifier())
        #expect(e == DuplicateVoteEvidence(r.vote(byz, .prevote, 1, 0, w.hash), r.vote(byz, .prevote, 1, 0, v.hash)))
        // Same value in the other vote type is not equivocation.
        let more = r.step(.vote(r.vote(byz, .precommit, 1, 0, w.hash)))
        #expect(!more.contains { if case .evidence = $0 { return true } else { return false } })
    }

    @Test func badInputIsIgnoredNotFatal() throws {
        var r = try rig()
        _ = r.start()
        let other = (r.me + 1) % 4
        let good = r.vote(other, .prevote, 1, 0, v.hash)
        let forged = SignedVote(vote: good.vote, signature: Data(repeating: 7, count: 32))
        #expect(r.step(.vote(forged)) == [.ignored(.badSignature(from: good.vote.validator))])
        let shortSig = SignedVote(vote: good.vote, signature: Data())
        #expect(r.step(.vote(shortSig)) == [.ignored(.badSignature(from: good.vote.validator))])
        let stranger = Vote(type: .prevote, height: 1, round: 0, value: nil, validator: Data([9, 9, 9]))
        #expect(r.step(.vote(SignedVote(vote: stranger, signature: Data()))) == [.ignored(.unknownValidator(Data([9, 9, 9])))])
        #expect(r.step(.vote(r.vote(other, .prevote, 0, 0, nil))) == [.ignored(.staleHeight(from: Fixtures.address(other), height: 0))])
        #expect(r.step(.vote(r.vote(other, .prevote, 9, 0, nil))) == [.ignored(.futureHeight(from: Fixtures.address(other), height: 9))])
        // A proposal from someone who is not the proposer of the round.
        let notProposer = (0..<4).first { $0 != r.proposerIndex(round: 0) } ?? 0
        #expect(r.step(.proposal(r.proposal(notProposer, 1, 0, v))) == [.ignored(.notProposer(from: Fixtures.address(notProposer), round: 0))])
        // POL round not below the round.
        #expect(r.step(.proposal(r.proposal(r.proposerIndex(round: 0), 1, 0, pol: 0, v))).contains(.ignored(.invalidPOLRound(from: Fixtures.address(r.proposerIndex(round: 0))))))
        // A commit certificate with too few votes.
        let cert = CommitCertificate(height: 1, round: 0, value: v.hash, precommits: [r.vote(other, .precommit, 1, 0, v.hash)])
        #expect(r.step(.commit(cert, v)) == [.ignored(.invalidCommit)])
        // Before any height: nothing happens.
        var idle = try Rig(me: 0)
        #expect(idle.step(.vote(good)) == [.ignored(.notRunning)])
        #expect(idle.step(.gossipTick).isEmpty)
    }

    /// The screen a shell asks before hashing a proposal's or certificate's block gives the
    /// reason the engine itself would ignore the message for — without the block — and
    /// passes exactly what the engine would go on to judge.
    @Test func screeningAnswersAsTheEngineWouldWithoutTheBlock() throws {
        var idle = try Rig(me: 0)
        #expect(idle.engine.screen(idle.proposal(0, 1, 0, v)) == .notRunning)
        var r = try rig()
        _ = r.start()
        let proposer = r.proposerIndex(round: 0)
        let notProposer = (0..<4).first { $0 != proposer && $0 != r.me } ?? 0
        let good = r.proposal(proposer, 1, 0, v)
        let far = r.engine.maxFutureRounds + 1
        let cases: [(SignedProposal, IgnoreReason?)] = [
            (r.proposal(notProposer, 1, 0, v), .notProposer(from: Fixtures.address(notProposer), round: 0)),
            (SignedProposal(proposal: good.proposal, signature: Data(repeating: 7, count: 64)), .badSignature(from: Fixtures.address(proposer))),
            (SignedProposal(proposal: Proposal(height: 1, round: 0, polRound: nil, value: v, proposer: Data([9, 9])), signature: Data()),
             .unknownValidator(Data([9, 9]))),
            (r.proposal(proposer, 0, 0, v), .staleHeight(from: Fixtures.address(proposer), height: 0)),
            (r.proposal(proposer, 9, 0, v), .futureHeight(from: Fixtures.address(proposer), height: 9)),
            (r.proposal(proposer, 1, 0, pol: 0, v), .invalidPOLRound(from: Fixtures.address(proposer))),
            (r.proposal(r.proposerIndex(round: far), 1, far, v), .outsideRoundWindow(from: Fixtures.address(r.proposerIndex(round: far)), round: far)),
        ]
        for (proposal, reason) in cases {
            #expect(r.engine.screen(proposal) == reason, "\(proposal.proposal)")
            let actions = r.step(.proposal(proposal))
            // The engine ignores each for the same reason (one too far ahead: silently).
            if case .outsideRoundWindow = reason { #expect(actions.isEmpty) } else if let reason { #expect(actions == [.ignored(reason)]) }
        }
        // The proposer's own proposal passes, and the engine judges it: this node prevotes it.
        #expect(r.engine.screen(good) == nil)
        #expect(r.myVotes(r.step(.proposal(good))).contains { $0.type == .prevote && $0.value == v.hash })
        #expect(r.engine.screen(good) == nil, "a copy it holds passes without another signature check")

        let others = (0..<4).filter { $0 != r.me }
        let cert = CommitCertificate(height: 1, round: 0, value: v.hash, precommits: others.map { r.vote($0, .precommit, 1, 0, v.hash) })
        #expect(r.engine.screen(cert) == nil)
        let thin = CommitCertificate(height: 1, round: 0, value: v.hash, precommits: [r.vote(others[0], .precommit, 1, 0, v.hash)])
        #expect(r.engine.screen(thin) == .invalidCommit)
        let forged = CommitCertificate(height: 1, round: 0, value: v.hash, precommits: others.map {
            SignedVote(vote: r.vote($0, .precommit, 1, 0, v.hash).vote, signature: Data(repeating: 1, count: 64))
        })
        #expect(r.engine.screen(forged) == .invalidCommit)
        let later = CommitCertificate(height: 5, round: 0, value: v.hash, precommits: others.map { r.vote($0, .precommit, 5, 0, v.hash) })
        #expect(r.engine.screen(later) == .futureHeight(from: Data(), height: 5))
    }

    /// A Byzantine proposer of a round still ahead of ours cannot make us hold several of its
    /// blocks for that round; in our own round a few are kept (one may gather a quorum).
    @Test func aRoundAheadKeepsOneProposal() throws {
        var r = try rig()
        _ = r.start()
        let ahead: Round = 2
        let byzantine = r.proposerIndex(round: ahead)
        for i in 0..<6 { r.step(.proposal(r.proposal(byzantine, 1, ahead, Fixtures.value(height: 1, tag: "ahead-\(i)")))) }
        #expect(r.engine.heldProposalCount(round: ahead) == 1)
        let current = r.proposerIndex(round: 0)
        for i in 0..<6 { r.step(.proposal(r.proposal(current, 1, 0, Fixtures.value(height: 1, tag: "now-\(i)")))) }
        #expect(r.engine.heldProposalCount(round: 0) == ConsensusEngine.maxProposalsPerRound)
    }

    @Test func catchUpWithCommitCertificate() throws {
        var r = try rig()
        _ = r.start()
        let others = (0..<4).filter { $0 != r.me }
        let cert = CommitCertificate(height: 1, round: 3, value: v.hash, precommits: others.map { r.vote($0, .precommit, 1, 3, v.hash) })
        let a = r.step(.commit(cert, v))
        let d = try #require(a.compactMap(\.decision).first)
        #expect(d.value == v && d.round == 3 && d.certificate == cert)
        // A value whose bytes do not match the certificate's hash is rejected.
        var r2 = try rig()
        _ = r2.start()
        #expect(r2.step(.commit(cert, w)) == [.ignored(.invalidCommit)])
    }

    /// A peer holding a real certificate can pair it with endless different invalid blocks
    /// under the certified hash; the engine must not keep them (each is a block of memory).
    @Test func invalidCatchUpValuesAreNotRetained() throws {
        var r = try rig()
        _ = r.start()
        let others = (0..<4).filter { $0 != r.me }
        let cert = CommitCertificate(height: 1, round: 0, value: v.hash, precommits: others.map { r.vote($0, .precommit, 1, 0, v.hash) })
        for i in 0..<50 {
            let forged = ProposalValue(hash: v.hash, block: Data("not the certified block \(i)".utf8))
            let actions = r.step(.commit(cert, forged), invalid: [v.hash])
            #expect(actions.compactMap(\.decision).isEmpty)
            #expect(r.engine.catchUpValueCount <= 1, "after \(i + 1) forged values")
        }
        // The same certificate with the certified block still decides.
        let d = try #require(r.step(.commit(cert, v)).compactMap(\.decision).first)
        #expect(d.value == v)
    }

    @Test func repeatedCatchUpValuesAreKeptOnce() throws {
        var r = try rig()
        _ = r.start()
        let others = (0..<4).filter { $0 != r.me }
        let cert = CommitCertificate(height: 1, round: 0, value: v.hash, precommits: others.map { r.vote($0, .precommit, 1, 0, v.hash) })
        // Its verdict never comes (the rig answers only what it is asked; this value is
        // asked once): repeats must not pile up while it waits.
        var e = r.engine
        for _ in 0..<20 { _ = e.step(.commit(cert, v)) }
        #expect(e.catchUpValueCount == 1)
    }

    @Test func restartedEngineRefusesConflictingVote() throws {
        var r = try rig()
        _ = r.start()
        let a = r.step(.proposal(r.proposal(r.proposerIndex(round: 0), 1, 0, v)))
        var persisted: SignState?
        for case .persistSignState(let s) in a { persisted = s }
        let state = try #require(persisted)
        #expect(state.step == .prevote && state.height == 1 && state.round == 0)
        // Storage round-trip, as the shell would do.
        let restored = try SignState(encoded: state.encoded())
        #expect(restored == state)

        // Crash; the new engine never saw the proposal, so on timeout it would prevote nil.
        var r2 = try Rig(me: r.me, lastSignState: restored)
        let s = r2.start()
        #expect(r2.engine.round == 0 && r2.engine.step == .prevote)  // resumed after its prevote
        #expect(!s.contains { if case .persistSignState = $0 { return true } else { return false } })
        // Force the conflicting attempt: the timeout path would sign a nil prevote.
        var r3 = try Rig(me: r.me, lastSignState: restored)
        _ = r3.engine.step(.startHeight(1, r3.set))
        let gossip = r3.step(.gossipTick)
        #expect(r3.myVotes(gossip).map(\.value) == [v.hash])  // re-broadcasts the identical vote

        // Directly: the guard refuses a conflicting signature at the same HRS and a regression.
        let nilVote = Vote(type: .prevote, height: 1, round: 0, value: nil, validator: Fixtures.address(r.me))
        let c = SignGuard.check(last: restored, height: 1, round: 0, step: .prevote, signBytes: nilVote.signBytes(chainID: Fixtures.chainID), chainID: Fixtures.chainID)
        guard case .conflict(let m) = c else { Issue.record("expected conflict, got \(c)"); return }
        #expect(m == state.message)
        guard case .regression = SignGuard.check(last: restored, height: 1, round: 0, step: .propose, signBytes: Data(), chainID: Fixtures.chainID) else {
            Issue.record("expected regression")
            return
        }
        guard case .reuse = SignGuard.check(last: restored, height: 1, round: 0, step: .prevote, signBytes: state.message.signBytes(chainID: Fixtures.chainID), chainID: Fixtures.chainID) else {
            Issue.record("expected reuse")
            return
        }
    }

    @Test func restartKeepsLockAndDoesNotResignEarlierSteps() throws {
        var r = try rig()
        _ = r.start()
        r.step(.proposal(r.proposal(r.proposerIndex(round: 0), 1, 0, v)))
        var last: SignState?
        for i in 0..<4 where i != r.me {
            for case .persistSignState(let s) in r.step(.vote(r.vote(i, .prevote, 1, 0, v.hash))) { last = s }
        }
        let state = try #require(last)
        #expect(state.step == .precommit && state.lockedValue == v && state.lockedRound == 0)

        var r2 = try Rig(me: r.me, lastSignState: state)
        _ = r2.start()
        #expect(r2.engine.lockedValue == v && r2.engine.round == 0 && r2.engine.step == .precommit)
        // Nil precommit timeout path for round 0 must not produce any new signature.
        let a = r2.step(.timeout(TimeoutInfo(height: 1, round: 0, step: .prevote)))
        #expect(!a.contains { if case .persistSignState = $0 { return true } else { return false } })
        // In round 1, a fresh w is refused because the lock survived the crash.
        r2.step(.timeout(TimeoutInfo(height: 1, round: 0, step: .precommit)))
        let p1 = r2.proposerIndex(round: 1)
        #expect(p1 != r2.me)
        let b = r2.step(.proposal(r2.proposal(p1, 1, 1, w)))
        #expect(r2.myVotes(b).map(\.value) == [nil])
    }

    /// A validator killed between persisting its proposal and sending it sends it at restart,
    /// before anything else it does in that height — and does not sign it again.
    @Test func restartSendsTheSignedButUnsentProposal() throws {
        // Power 10 of 14: the proposer alone holds > 2/3 and decides on its own votes.
        let powers: [UInt64] = [2, 1, 1, 10]
        let probe = try Rig(powers: powers, me: 0)
        let me = probe.proposerIndex(round: 0)
        var r = try Rig(powers: powers, me: me)
        var state: SignState?
        var sent: SignedProposal?
        _ = r.start()
        for a in r.step(.proposalValue(height: 1, round: 0, value: v)) {
            if case .persistSignState(let s) = a, state == nil { state = s }  // the proposal's: "crash" right after it
            if case .broadcastProposal(let p) = a { sent = p }
        }
        let persisted = try #require(state)
        let proposal = try #require(sent)
        #expect(persisted.step == .propose)

        var restarted = try Rig(powers: powers, me: me, lastSignState: persisted)
        let actions = restarted.start()
        let firstSend = actions.firstIndex { if case .broadcastProposal(let p) = $0 { return p == proposal } else { return false } }
        let decided = actions.firstIndex { $0.decision != nil }
        #expect(firstSend != nil, "the restored proposal is sent again")
        #expect(decided.map { d in firstSend.map { $0 < d } ?? false } ?? true, "sent before the decision")
        let resigned = actions.contains {
            if case .persistSignState(let s) = $0 { return s.step == .propose } else { return false }
        }
        #expect(!resigned, "the proposal is not signed again")
    }

    @Test func signerFailureIsReportedNotBroadcast() throws {
        let probe = try Rig(me: 0)
        let me = (0..<4).first { $0 != probe.proposerIndex(round: 0) } ?? 0
        var r = try Rig(me: me, signer: FailingSigner(validatorAddress: Fixtures.address(me)))
        _ = r.start()
        let a = r.step(.timeout(TimeoutInfo(height: 1, round: 0, step: .propose)))
        #expect(a.contains(.signingFailed(.signingFailed("hsm offline"))))
        #expect(r.myVotes(a).isEmpty)
    }
}
