import Foundation

/// Inputs to the engine. The shell feeds them one at a time, in a deterministic order.
public enum ConsensusEvent: Sendable {
    /// Begin `height` with its validator set (priorities as described in ``ValidatorSet``).
    /// Sent once at boot (height = last decided + 1) and after each ``ConsensusAction/decide(_:)``
    /// once the decision is durable.
    case startHeight(Height, ValidatorSet)
    /// A proposal received from the network.
    case proposal(SignedProposal)
    /// A vote received from the network.
    case vote(SignedVote)
    /// Catch-up: a peer's proof that `value` was decided. Verified before use.
    case commit(CommitCertificate, ProposalValue)
    /// A timeout scheduled by ``ConsensusAction/scheduleTimeout(_:afterMillis:)`` fired.
    case timeout(TimeoutInfo)
    /// The application's answer to ``ConsensusAction/requestProposalValue(height:round:)``
    /// (prepare-proposal).
    case proposalValue(height: Height, round: Round, value: ProposalValue)
    /// The application's answer to ``ConsensusAction/requestValidation(height:value:)``
    /// (process-proposal). `valid` must be a deterministic function of the value and height:
    /// it decides locks and decisions. `timely` is the one local judgement — whether the
    /// block's time is not too far past this node's clock when it arrived (proposer-based
    /// timestamps) — and only stops a prevote for a fresh proposal: a value others locked on
    /// (a re-proposal with its POL) or decided is followed whatever its time, so a clock
    /// difference can never stall or split the chain, while a proposer dating its block far
    /// ahead gets nil prevotes from every honest validator.
    case validity(height: Height, value: ProposalValue, valid: Bool, timely: Bool = true)
    /// Periodic re-broadcast of this node's current messages, so that dropped messages
    /// are eventually delivered (liveness after the network heals).
    case gossipTick
}

/// Why an input was not used. Reported so the shell can count, log or react (e.g. send a
/// commit certificate to a peer that is behind).
public enum IgnoreReason: Hashable, Sendable {
    /// The message is for an older height: the sender is behind (unverified claim).
    case staleHeight(from: Data, height: Height)
    /// The message is for a later height than ours (we are behind).
    case futureHeight(from: Data, height: Height)
    case unknownValidator(Data)
    case badSignature(from: Data)
    /// A proposal not from the round's designated proposer.
    case notProposer(from: Data, round: Round)
    /// A proposal whose POL round is not below its round.
    case invalidPOLRound(from: Data)
    /// A proposal for a round too far ahead of ours to be kept (see ``ConsensusEngine/maxFutureRounds``).
    case outsideRoundWindow(from: Data, round: Round)
    /// A second, different proposal by the same proposer for the same round (kept the first).
    case conflictingProposal(from: Data, round: Round)
    /// A commit certificate that did not verify.
    case invalidCommit
    /// No height has been started yet, or the height is already decided.
    case notRunning
}

/// The outcome of a height.
public struct Decision: Hashable, Sendable {
    public let height: Height
    public let round: Round
    public let value: ProposalValue
    /// The > 2/3 precommits for `value` (store it with the block; it proves the decision).
    public let certificate: CommitCertificate
}

/// Outputs of the engine. The shell executes them **in order**.
public enum ConsensusAction: Hashable, Sendable {
    /// Make this record durable *before executing the next action*. It always immediately
    /// precedes the broadcast of the newly signed message it describes.
    case persistSignState(SignState)
    /// Send to all peers.
    case broadcastProposal(SignedProposal)
    /// Send to all peers.
    case broadcastVote(SignedVote)
    /// Deliver ``ConsensusEvent/timeout(_:)`` with this info after the duration.
    case scheduleTimeout(TimeoutInfo, afterMillis: UInt64)
    /// Ask the application for a value to propose; answer with ``ConsensusEvent/proposalValue(height:round:value:)``.
    case requestProposalValue(height: Height, round: Round)
    /// Ask the application whether a proposed value is valid; answer with ``ConsensusEvent/validity(height:value:valid:)``.
    case requestValidation(height: Height, value: ProposalValue)
    /// The height is decided. Persist block + certificate, then send ``ConsensusEvent/startHeight(_:_:)``.
    case decide(Decision)
    /// A validator double-voted; include in a block. Emitted once per (validator, height, round, type).
    case evidence(DuplicateVoteEvidence)
    /// An input was ignored.
    case ignored(IgnoreReason)
    /// The sign guard refused to sign (restart behind the last signature, or a conflicting
    /// message at the same height/round/step). Informational: nothing was signed.
    case signRefused(height: Height, round: Round, step: Step)
    /// The signer threw; the message was not sent.
    case signingFailed(ConsensusError)
}

/// A Tendermint BFT consensus engine (Buchman, Kwon, Milosevic, "The latest gossip on BFT
/// consensus", Algorithm 1) as a pure, deterministic, synchronous state machine: no clock,
/// no I/O, no randomness. The same events in the same order give the same actions.
///
/// Extensions over the paper: voting power instead of counting processes (> 2/3 and > 1/3
/// of power in integer arithmetic); a durable sign guard (``SignState``); the round skip
/// generalised to "validators with > 1/3 power were seen at rounds ≥ r"; future rounds
/// bounded by ``maxFutureRounds`` so a Byzantine peer cannot make us store unbounded votes.
public struct ConsensusEngine: Sendable {
    public let chainID: ChainID
    public let timeouts: TimeoutConfig
    /// Votes/proposals for rounds further than this past our round are not stored (they
    /// only count towards the round skip).
    public let maxFutureRounds: Round
    private let signer: any ConsensusSigner
    private let verifier: any SignatureVerifier

    /// This node's validator address.
    public var address: Data { signer.validatorAddress }
    /// The last message this node signed (restored on restart, updated as it signs).
    public private(set) var lastSignState: SignState?

    public private(set) var height: Height = 0
    public private(set) var round: Round = 0
    public private(set) var step: Step = .propose
    public private(set) var validators: ValidatorSet?
    public private(set) var lockedRound: Round?
    public private(set) var lockedValue: ProposalValue?
    public private(set) var validRound: Round?
    public private(set) var validValue: ProposalValue?
    public private(set) var decision: Decision?

    private var schedule: ProposerSchedule?
    /// Proposals by round from the round's proposer. The first is the one we prevote on; a
    /// Byzantine proposer may send different ones to different nodes, and we keep a few
    /// more (see ``maxProposalsPerRound``) so that a value others gathered a quorum for can
    /// still be locked on, adopted as valid value, or decided.
    private var proposals: [Round: [SignedProposal]] = [:]
    /// Bound on distinct proposals kept per round (memory bound against a Byzantine proposer).
    static let maxProposalsPerRound = 4
    private var votes: [Round: RoundVotes] = [:]
    /// Known verdicts per value; `nil` entry value = asked, no answer yet.
    private var verdicts: [BlockHash: [(value: ProposalValue, valid: Bool?)]] = [:]
    /// Values whose block time was too far ahead of the local clock on arrival (this height).
    private var untimely: Set<BlockHash> = []
    /// Values that arrived with a verified commit certificate.
    private var certified: [CommitCertificate] = []
    private var catchUpValues: [ProposalValue] = []
    /// How many catch-up values this height holds (tests: repeats are not kept).
    var catchUpValueCount: Int { catchUpValues.count }
    /// How many proposals this height holds for `round` (tests: the bounds per round).
    func heldProposalCount(round r: Round) -> Int { proposals[r]?.count ?? 0 }
    /// (round, hash) pairs whose precommits reached > 2/3.
    private var commitCandidates: [(Round, BlockHash)] = []
    private var awaitingValueForRound: Round?
    private var prevoteTimeoutScheduled: Set<Round> = []
    private var precommitTimeoutScheduled: Set<Round> = []
    private var lockRuleDone: Set<Round> = []
    /// Something arrived for a past round: re-check for a newer proof-of-lock there.
    private var pastRoundsDirty = false
    private var highestRoundSeen: [Data: Round] = [:]
    private var evidenceReported: Set<EvidenceKey> = []
    private var out: [ConsensusAction] = []

    private struct EvidenceKey: Hashable {
        let validator: Data
        let round: Round
        let type: VoteType
    }

    /// - Parameters:
    ///   - lastSignState: the record persisted by the last ``ConsensusAction/persistSignState(_:)``
    ///     before a restart, or `nil` for a validator that never signed. Never pass a stale one.
    public init(
        chainID: ChainID, signer: any ConsensusSigner, verifier: any SignatureVerifier,
        timeouts: TimeoutConfig = TimeoutConfig(), lastSignState: SignState? = nil,
        maxFutureRounds: Round = 100
    ) {
        self.chainID = chainID
        self.signer = signer
        self.verifier = verifier
        self.timeouts = timeouts
        self.lastSignState = lastSignState
        self.maxFutureRounds = maxFutureRounds
    }

    /// The designated proposer of `round` at the current height.
    public mutating func proposer(round r: Round) -> Data? { schedule?.proposer(round: r) }

    /// Why ``step(_:)`` would not keep this proposal, judged from what is signed alone —
    /// height, validator, POL round, the round's proposer, the signature — or `nil` when it
    /// is worth judging. A shell asks before it decodes and hashes the block a proposal
    /// carries (up to the block size limit): otherwise anyone could make it do that work
    /// with a forged proposal. Changes no consensus state.
    public mutating func screen(_ sp: SignedProposal) -> IgnoreReason? {
        let p = sp.proposal
        guard height > 0, decision == nil || p.height != height else { return .notRunning }
        if p.height < height { return .staleHeight(from: p.proposer, height: p.height) }
        if p.height > height { return .futureHeight(from: p.proposer, height: p.height) }
        guard let set = validators, let val = set.validator(for: p.proposer) else { return .unknownValidator(p.proposer) }
        if let pol = p.polRound, pol >= p.round { return .invalidPOLRound(from: p.proposer) }
        // Beyond the window a proposal is never kept, so its block is never needed.
        guard p.round <= round || p.round - round <= maxFutureRounds else { return .outsideRoundWindow(from: p.proposer, round: p.round) }
        if proposals[p.round]?.contains(sp) == true { return nil }  // a copy already verified
        guard proposer(round: p.round) == p.proposer else { return .notProposer(from: p.proposer, round: p.round) }
        guard verifier.verify(signature: sp.signature, message: p.signBytes(chainID: chainID), by: val) else {
            return .badSignature(from: p.proposer)
        }
        return nil
    }

    /// Why ``step(_:)`` would not use this commit certificate — another height, or it does
    /// not verify — or `nil` when it is worth judging; asked, like a proposal's screen,
    /// before the block that comes with it is hashed. Changes no consensus state.
    public func screen(_ cert: CommitCertificate) -> IgnoreReason? {
        guard height > 0, decision == nil, let set = validators else { return .notRunning }
        if cert.height < height { return .staleHeight(from: Data(), height: cert.height) }
        if cert.height > height { return .futureHeight(from: Data(), height: cert.height) }
        do throws(ConsensusError) {
            try cert.verify(chainID: chainID, validators: set, verifier: verifier)
        } catch {
            return .invalidCommit
        }
        return nil
    }

    /// Feeds one event; returns the actions to execute in order.
    public mutating func step(_ event: ConsensusEvent) -> [ConsensusAction] {
        out = []
        switch event {
        case .startHeight(let h, let set): startHeight(h, set)
        case .proposal(let p): receiveProposal(p)
        case .vote(let v): receiveVote(v, fromCertificate: false)
        case .commit(let cert, let value): receiveCommit(cert, value)
        case .timeout(let t): onTimeout(t)
        case .proposalValue(let h, let r, let v): onProposalValue(h, r, v)
        case .validity(let h, let v, let ok, let timely):
            if h == height {
                if !timely { untimely.insert(v.hash) }
                setVerdict(v, ok)
            }
        case .gossipTick: gossip()
        }
        if height > 0, decision == nil { evaluateRules() }
        let result = out
        out = []
        return result
    }

    // MARK: height and round

    private mutating func startHeight(_ h: Height, _ set: ValidatorSet) {
        height = h
        validators = set
        schedule = ProposerSchedule(set)
        lockedRound = nil
        lockedValue = nil
        validRound = nil
        validValue = nil
        decision = nil
        proposals = [:]
        votes = [:]
        verdicts = [:]
        untimely = []
        certified = []
        catchUpValues = []
        commitCandidates = []
        awaitingValueForRound = nil
        prevoteTimeoutScheduled = []
        precommitTimeoutScheduled = []
        lockRuleDone = []
        pastRoundsDirty = false
        highestRoundSeen = [:]
        evidenceReported = []
        var startRoundNumber: Round = 0
        var resumeStep: Step = .propose
        if let s = lastSignState, s.height == h {
            // Restart in the middle of this height: resume where we signed, with our lock.
            lockedRound = s.lockedRound
            lockedValue = s.lockedValue
            validRound = s.lockedRound
            validValue = s.lockedValue
            if let v = s.lockedValue { setVerdict(v, true) }
            // The proof-of-lock comes back with the lock: it is what a re-proposal of the
            // locked value carries and what the others need to move to it.
            for v in s.lockProof where storeVote(v) { out.append(.broadcastVote(v)) }
            startRoundNumber = s.round
            resumeStep = s.step
            for m in s.messages {
                switch m {
                case .proposal(let p):
                    proposals[p.proposal.round] = [p]
                    setVerdict(p.proposal.value, true)
                case .vote(let v):
                    _ = storeVote(v)
                }
                // Persist-then-broadcast: a crash between the two leaves a signed message no
                // peer has seen. Send it again now, before acting on it — a validator holding
                // more than 2/3 of the power would otherwise decide its own restored proposal
                // before any peer had it (simulation seed 12022767). Same bytes; nothing signed.
                broadcast(m)
            }
        }
        startRound(startRoundNumber)
        if resumeStep > .propose { step = resumeStep }
    }

    /// Paper lines 11–21. Unlike the paper, the proposer also schedules timeoutPropose, so a
    /// slow application or a refused signature cannot leave it stuck in the propose step.
    private mutating func startRound(_ r: Round) {
        round = r
        step = .propose
        awaitingValueForRound = nil
        schedule(.propose)
        guard proposer(round: r) == address, proposals[r] == nil else { return }  // nil: not already proposed (restart)
        if let v = validValue {
            propose(v, polRound: validRound)
        } else {
            awaitingValueForRound = r
            out.append(.requestProposalValue(height: height, round: r))
        }
    }

    private mutating func schedule(_ s: Step) {
        out.append(
            .scheduleTimeout(
                TimeoutInfo(height: height, round: round, step: s),
                afterMillis: timeouts.durationMillis(step: s, round: round)))
    }

    private mutating func onProposalValue(_ h: Height, _ r: Round, _ v: ProposalValue) {
        guard h == height, r == round, step == .propose, awaitingValueForRound == r, decision == nil else { return }
        awaitingValueForRound = nil
        setVerdict(v, true)  // our own application built it
        propose(v, polRound: nil)
    }

    private mutating func propose(_ v: ProposalValue, polRound: Round?) {
        let p = Proposal(height: height, round: round, polRound: polRound, value: v, proposer: address)
        guard case .proposal(let sp)? = sign(.propose, p.signBytes(chainID: chainID), { sig in .proposal(SignedProposal(proposal: p, signature: sig)) })
        else { return }
        proposals[sp.proposal.round, default: []].insert(sp, at: 0)
        setVerdict(sp.proposal.value, true)
        // A proposal that re-proposes a valid value is only acceptable to a peer holding the
        // proof-of-lock prevotes of `polRound`. Send them with it rather than at the next
        // gossip tick: an equivocator can have shown them to us alone, and a peer that learns
        // them after its propose timeout has already prevoted nil and the round is lost
        // (simulation seed 7007731: a round lost this way took a height to round 5).
        if let vr = polRound { relayProofOfLock(vr, v) }
    }

    /// Paper lines 57–66.
    private mutating func onTimeout(_ t: TimeoutInfo) {
        guard t.height == height, t.round == round, decision == nil else { return }
        switch t.step {
        case .propose where step == .propose:
            castVote(.prevote, nil)
            step = .prevote
        case .prevote where step == .prevote:
            castVote(.precommit, nil)
            step = .precommit
        case .precommit:
            guard round < Round.max else { return }  // unreachable in practice; never trap
            startRound(round + 1)
        default:
            break
        }
    }

    // MARK: signing

    /// Signs through the guard. Emits persist-then-broadcast for a new signature, a
    /// re-broadcast for an identical one, and for a conflicting request re-broadcasts what
    /// was really signed before (and returns it, so the engine's view matches the network's).
    private mutating func sign(_ s: Step, _ bytes: Data, _ make: (Data) -> SignedMessage) -> SignedMessage? {
        switch SignGuard.check(last: lastSignState, height: height, round: round, step: s, signBytes: bytes, chainID: chainID) {
        case .sign:
            let sig: Data
            do { sig = try signer.sign(bytes) } catch {
                out.append(.signingFailed(error))
                return nil
            }
            let m = make(sig)
            let earlier = lastSignState.map { $0.height == height && $0.round == round ? $0.messages : [] } ?? []
            let proof = lockedRound.flatMap { r in lockedValue.map { votes[r]?.prevotes.votes(for: $0.hash) ?? [] } } ?? []
            let state = SignState(message: m, sameRound: earlier, lockedRound: lockedRound, lockedValue: lockedValue,
                                  lockProof: proof)
            lastSignState = state
            out.append(.persistSignState(state))
            broadcast(m)
            return m
        case .reuse(let m):
            broadcast(m)
            return m
        case .conflict(let m):
            out.append(.signRefused(height: height, round: round, step: s))
            broadcast(m)
            return m
        case .regression:
            out.append(.signRefused(height: height, round: round, step: s))
            return nil
        }
    }

    private mutating func broadcast(_ m: SignedMessage) {
        switch m {
        case .proposal(let p): out.append(.broadcastProposal(p))
        case .vote(let v): out.append(.broadcastVote(v))
        }
    }

    @discardableResult
    private mutating func castVote(_ type: VoteType, _ value: BlockHash?) -> SignedVote? {
        // A node outside the set (a full node) follows the rounds but has no vote: signing one
        // would cost a synced write and a broadcast that every peer drops.
        guard let set = validators, set.power(of: address) > 0 else { return nil }
        let v = Vote(type: type, height: height, round: round, value: value, validator: address)
        let step: Step = type == .prevote ? .prevote : .precommit
        guard case .vote(let sv)? = sign(step, v.signBytes(chainID: chainID), { .vote(SignedVote(vote: v, signature: $0)) })
        else { return nil }
        _ = storeVote(sv)
        return sv
    }

    // MARK: receiving

    private mutating func checkHeight(_ h: Height, from: Data) -> Bool {
        guard height > 0, decision == nil || h != height else {
            if height == 0 { out.append(.ignored(.notRunning)) }
            return false
        }
        if h < height {
            out.append(.ignored(.staleHeight(from: from, height: h)))
            return false
        }
        if h > height {
            out.append(.ignored(.futureHeight(from: from, height: h)))
            return false
        }
        return true
    }

    private mutating func receiveProposal(_ sp: SignedProposal) {
        let p = sp.proposal
        guard checkHeight(p.height, from: p.proposer), let set = validators else { return }
        guard let val = set.validator(for: p.proposer) else {
            out.append(.ignored(.unknownValidator(p.proposer)))
            return
        }
        if let pol = p.polRound, pol >= p.round {
            out.append(.ignored(.invalidPOLRound(from: p.proposer)))
            return
        }
        let inWindow = p.round <= round || p.round - round <= maxFutureRounds
        if inWindow, let list = proposals[p.round] {
            if list.contains(sp) { return }  // gossip duplicate: no need to verify again
            let bytes = p.signBytes(chainID: chainID)
            if let i = list.firstIndex(where: { $0.signature == sp.signature && $0.proposal.signBytes(chainID: chainID) == bytes }) {
                // Same signed proposal, different block bytes (the block is not signed).
                // Prefer the copy whose bytes are not already known to be invalid.
                if verdict(list[i].proposal.value) == false { proposals[p.round]?[i] = sp }
                return
            }
        }
        guard inWindow ? proposer(round: p.round) == p.proposer : true else {
            out.append(.ignored(.notProposer(from: p.proposer, round: p.round)))
            return
        }
        guard verifier.verify(signature: sp.signature, message: p.signBytes(chainID: chainID), by: val) else {
            out.append(.ignored(.badSignature(from: p.proposer)))
            return
        }
        guard inWindow else {
            // Too far ahead to store or to compute the proposer cheaply; it still proves the
            // validator reached that round... only if it was the proposer, which we cannot
            // check cheaply, so it does not count.
            return
        }
        noteRound(p.round, of: p.proposer)
        var list = proposals[p.round] ?? []
        if !list.isEmpty {
            out.append(.ignored(.conflictingProposal(from: p.proposer, round: p.round)))
            // A round still ahead of ours keeps its first proposal only: a Byzantine proposer
            // owns about a quarter of the window's rounds, and a few full blocks in each was
            // hundreds of MiB held per height. Peers gossip the round's proposals again once
            // we are there, so one that comes to matter is not lost.
            if p.round > round { return }
            // Keep it anyway (bounded) if it may matter: room left, or votes name its value.
            let named = votes[p.round].map { $0.prevotes.power(for: p.value.hash) > 0 || $0.precommits.power(for: p.value.hash) > 0 } ?? false
            guard list.count < Self.maxProposalsPerRound || named else { return }
            if list.contains(where: { $0.proposal.value.hash == p.value.hash }) { return }
        }
        list.append(sp)
        proposals[p.round] = list
        if p.round < round { pastRoundsDirty = true }
    }

    private mutating func receiveVote(_ sv: SignedVote, fromCertificate: Bool) {
        let v = sv.vote
        guard checkHeight(v.height, from: v.validator), let set = validators else { return }
        guard let val = set.validator(for: v.validator) else {
            out.append(.ignored(.unknownValidator(v.validator)))
            return
        }
        let inWindow = fromCertificate || v.round <= round || v.round - round <= maxFutureRounds
        if inWindow, votes[v.round]?[v.type].contains(v.validator, value: v.value) == true {
            return  // duplicate (gossip): skip verification
        }
        guard verifier.verify(signature: sv.signature, message: v.signBytes(chainID: chainID), by: val) else {
            out.append(.ignored(.badSignature(from: v.validator)))
            return
        }
        noteRound(v.round, of: v.validator)
        guard inWindow else { return }
        _ = storeVote(sv)
    }

    /// Adds a verified vote; reports equivocation; tracks commit candidates.
    @discardableResult
    private mutating func storeVote(_ sv: SignedVote) -> Bool {
        let v = sv.vote
        guard let set = validators, let val = set.validator(for: v.validator) else { return false }
        let admit = v.value == nil || proposals.values.contains { $0.contains { $0.proposal.value.hash == v.value } }
        let before = votes[v.round]?[v.type].power(for: v.value) ?? 0
        // Mutate in place: copying the round's vote set out and back would copy its tables.
        let result = votes[v.round, default: RoundVotes()][v.type].add(sv, power: val.power, admitConflicting: admit)
        var counted = false
        switch result {
        case .added:
            counted = true
        case .duplicate:
            return false
        case .conflict(let old, let c):
            counted = c
            let key = EvidenceKey(validator: v.validator, round: v.round, type: v.type)
            if evidenceReported.insert(key).inserted {
                out.append(.evidence(DuplicateVoteEvidence(old, sv)))
            }
        }
        guard counted else { return false }
        if v.type == .prevote, v.round < round { pastRoundsDirty = true }
        if v.type == .precommit, let h = v.value, !set.isSupermajority(before),
            set.isSupermajority(votes[v.round]?.precommits.power(for: h) ?? 0)
        {
            commitCandidates.append((v.round, h))
        }
        return true
    }

    /// Records that `validator` signed at round `r`, capped at ``maxFutureRounds`` ahead of
    /// ours: a validator seen there is at least there, and a skip then moves at most a
    /// window at a time — a coalition over 1/3 signing at round 4×10⁹ would otherwise make
    /// every honest node compute (and hold) that many proposers at once.
    private mutating func noteRound(_ r: Round, of validator: Data) {
        let (limit, overflow) = round.addingReportingOverflow(maxFutureRounds)
        let capped = overflow ? r : min(r, limit)
        if capped > highestRoundSeen[validator] ?? 0 { highestRoundSeen[validator] = capped }
    }

    private mutating func receiveCommit(_ cert: CommitCertificate, _ value: ProposalValue) {
        // A certificate for another height is simply useless to us (not a peer-lag signal).
        guard height > 0, decision == nil, cert.height == height, let set = validators else { return }
        guard value.hash == cert.value else {
            out.append(.ignored(.invalidCommit))
            return
        }
        // A peer holding a real certificate can pair it with any number of different invalid
        // blocks under the certified header. Catch-up values judged invalid are dropped (with
        // their verdicts, which hold the block), repeats are not kept, and a height holds a
        // bounded number: its memory cannot grow by a block per message.
        dropInvalidCatchUpValues()
        do throws(ConsensusError) {
            try cert.verify(chainID: chainID, validators: set, verifier: verifier)
        } catch {
            out.append(.ignored(.invalidCommit))
            return
        }
        // Feed the votes through the normal path too: it detects equivocation against votes
        // we already hold. The certificate itself is kept because a Byzantine validator whose
        // other vote we saw first would otherwise keep our tally below 2/3.
        for sv in cert.precommits { receiveVote(sv, fromCertificate: true) }
        if !certified.contains(where: { $0.round == cert.round && $0.value == cert.value }) { certified.append(cert) }
        guard !catchUpValues.contains(value), catchUpValues.count < Self.maxCatchUpValues else { return }
        catchUpValues.append(value)
    }

    /// Most catch-up values a height holds at once (they wait for their verdicts; an honest
    /// network certifies one value per height).
    static let maxCatchUpValues = 8

    private mutating func dropInvalidCatchUpValues() {
        let invalid = catchUpValues.filter { verdict($0) == false }
        guard !invalid.isEmpty else { return }
        catchUpValues = catchUpValues.filter { !invalid.contains($0) }
        for v in invalid where !(proposals.values.contains { $0.contains { $0.proposal.value == v } }) {
            verdicts[v.hash]?.removeAll { $0.value == v }
            if verdicts[v.hash]?.isEmpty == true { verdicts[v.hash] = nil }
        }
    }

    // MARK: validity

    private func verdict(_ v: ProposalValue) -> Bool? {
        verdicts[v.hash]?.first(where: { $0.value == v })?.valid
    }

    private mutating func setVerdict(_ v: ProposalValue, _ ok: Bool) {
        var list = verdicts[v.hash] ?? []
        if let i = list.firstIndex(where: { $0.value == v }) {
            if list[i].valid == nil { list[i].valid = ok }
        } else {
            list.append((v, ok))
        }
        verdicts[v.hash] = list
        pastRoundsDirty = true
    }

    /// The verdict if known; otherwise asks the application once and returns `nil`.
    private mutating func validity(_ v: ProposalValue) -> Bool? {
        if let list = verdicts[v.hash], let e = list.first(where: { $0.value == v }) { return e.valid }
        verdicts[v.hash, default: []].append((v, nil))
        out.append(.requestValidation(height: height, value: v))
        return nil
    }

    // MARK: the upon-rules

    /// Applies rules until none fires. Each rule either changes step/round/decision or sets
    /// a once-only flag, so this terminates.
    private mutating func evaluateRules() {
        while decision == nil {
            if tryDecide() { return }
            if trySkipRound() { continue }
            if tryPrevoteOnProposal() { continue }
            if tryLockOrUpdateValid() { continue }
            if tryAdoptPastValidValue() { continue }
            if tryPrecommitNil() { continue }
            scheduleQuorumTimeouts()
            return
        }
    }

    /// Line 49: a proposal for v (from any round) and > 2/3 precommits for id(v) in one round.
    private mutating func tryDecide() -> Bool {
        var candidates: [(Round, BlockHash, CommitCertificate?)] = commitCandidates.map { ($0.0, $0.1, nil) }
        candidates += certified.map { ($0.round, $0.value, $0) }
        for (r, hash, cert) in candidates {
            var values: [ProposalValue] = []
            // Prefer the proposal of the deciding round (the paper's rule), then other rounds'.
            for p in proposals[r] ?? [] where p.proposal.value.hash == hash { values.append(p.proposal.value) }
            for (pr, list) in proposals.sorted(by: { $0.key < $1.key }) where pr != r {
                for p in list where p.proposal.value.hash == hash { values.append(p.proposal.value) }
            }
            values += catchUpValues.filter { $0.hash == hash }
            for v in values where validity(v) == true {
                let certificate =
                    cert
                    ?? CommitCertificate(
                        height: height, round: r, value: hash,
                        precommits: votes[r]?.precommits.votes(for: hash) ?? [])
                let d = Decision(height: height, round: r, value: v, certificate: certificate)
                decision = d
                out.append(.decide(d))
                return true
            }
        }
        return false
    }

    /// Line 55, generalised: if validators with > 1/3 of the power have been seen at rounds
    /// ≥ r > ours, at least one honest validator is at round ≥ r, so jump to r.
    private mutating func trySkipRound() -> Bool {
        guard let set = validators else { return false }
        let ahead = highestRoundSeen.filter { $0.value > round }
        guard set.isOneThirdPlus(ahead.reduce(0) { $0 + set.power(of: $1.key) }) else { return false }
        var acc: UInt64 = 0
        for (addr, r) in ahead.sorted(by: { $0.value > $1.value || ($0.value == $1.value && $0.key.lexicographicallyPrecedes($1.key)) }) {
            acc += set.power(of: addr)
            if set.isOneThirdPlus(acc) {
                startRound(r)
                return true
            }
        }
        return false
    }

    /// Lines 22–33.
    private mutating func tryPrevoteOnProposal() -> Bool {
        guard step == .propose, let sp = proposals[round]?.first else { return false }
        let p = sp.proposal
        let v = p.value
        var accept: Bool
        if let vr = p.polRound {
            guard vr < round,
                let set = validators,
                set.isSupermajority(votes[vr]?.prevotes.power(for: v.hash) ?? 0)
            else { return false }  // wait for the POL (or timeoutPropose)
            guard let ok = validity(v) else { return false }
            accept = ok && (lockedRound.map { $0 <= vr } ?? true || lockedValue?.hash == v.hash)
        } else {
            guard let ok = validity(v) else { return false }
            accept = ok && !untimely.contains(v.hash) && (lockedRound == nil || lockedValue?.hash == v.hash)
        }
        castVote(.prevote, accept ? v.hash : nil)
        step = .prevote
        return true
    }

    /// Lines 36–43: > 2/3 prevotes for the current round's proposal.
    private mutating func tryLockOrUpdateValid() -> Bool {
        guard step >= .prevote, !lockRuleDone.contains(round), let list = proposals[round], let set = validators
        else { return false }
        guard let sp = list.first(where: { set.isSupermajority(votes[round]?.prevotes.power(for: $0.proposal.value.hash) ?? 0) })
        else { return false }
        let v = sp.proposal.value
        guard validity(v) == true else { return false }
        lockRuleDone.insert(round)
        if step == .prevote {
            // Lock first, so the persisted sign state of this precommit carries the lock.
            let oldLock = (lockedValue, lockedRound)
            lockedValue = v
            lockedRound = round
            if castVote(.precommit, v.hash)?.vote.value != v.hash {
                // The guard refused (after a restart we had already precommitted otherwise
                // in this round): we did not precommit v, so we do not hold that lock.
                (lockedValue, lockedRound) = oldLock
            }
            step = .precommit
        }
        validValue = v
        validRound = round
        relayProofOfLock(round, v)
        return true
    }

    /// Sends the prevotes of a proof-of-lock we have just seen. An equivocating validator can
    /// show its prevote to some of us only, so that only they see the POL; waiting for the
    /// next round's proposal or gossip tick to pass it on can leave the others a round behind
    /// in what they may prevote (simulation seed 7015205). Peers skip votes they already
    /// hold before any signature check, so the common case costs one message per vote.
    private mutating func relayProofOfLock(_ r: Round, _ v: ProposalValue) {
        for vote in votes[r]?.prevotes.votes(for: v.hash) ?? [] { out.append(.broadcastVote(vote)) }
    }

    /// Extension of line 42 to past rounds: a proof-of-lock (> 2/3 prevotes for a proposed,
    /// valid value) from a round newer than `validRound` makes that value our `validValue`,
    /// even if we had already left the round. `validValue` is only what we would propose;
    /// receivers check the POL and their own lock, so this cannot affect safety — but it
    /// lets an unlocked proposer re-propose the value locked validators are waiting for,
    /// instead of a fresh value they must reject (which, with an equivocating validator
    /// splitting the POL, could otherwise repeat until a locked validator's turn comes).
    /// The lock itself is still only taken in the current round (line 38).
    private mutating func tryAdoptPastValidValue() -> Bool {
        guard pastRoundsDirty, let set = validators else { return false }
        pastRoundsDirty = false
        let floor = validRound.map { Int($0) } ?? -1
        for (r, rv) in votes.sorted(by: { $0.key > $1.key }) where Int(r) > floor && r < round {
            for p in proposals[r] ?? [] where set.isSupermajority(rv.prevotes.power(for: p.proposal.value.hash)) {
                guard validity(p.proposal.value) == true else { continue }
                validValue = p.proposal.value
                validRound = r
                relayProofOfLock(r, p.proposal.value)
                return true
            }
        }
        return false
    }

    /// Lines 44–46.
    private mutating func tryPrecommitNil() -> Bool {
        guard step == .prevote, let set = validators,
            set.isSupermajority(votes[round]?.prevotes.power(for: nil) ?? 0)
        else { return false }
        castVote(.precommit, nil)
        step = .precommit
        return true
    }

    /// Lines 34–35 and 47–48: first time > 2/3 of any prevotes (in step prevote) or any
    /// precommits are seen in the current round.
    private mutating func scheduleQuorumTimeouts() {
        guard let set = validators else { return }
        if step == .prevote, !prevoteTimeoutScheduled.contains(round),
            set.isSupermajority(votes[round]?.prevotes.totalPower ?? 0)
        {
            prevoteTimeoutScheduled.insert(round)
            schedule(.prevote)
        }
        if !precommitTimeoutScheduled.contains(round),
            set.isSupermajority(votes[round]?.precommits.totalPower ?? 0)
        {
            precommitTimeoutScheduled.insert(round)
            schedule(.precommit)
        }
    }

    // MARK: gossip

    /// Re-broadcasts what peers need to make progress in our round: the round's proposal,
    /// our own votes of this and the previous round, and the proof-of-lock prevotes a
    /// POL proposal depends on. Nothing is signed here.
    private mutating func gossip() {
        guard height > 0, decision == nil else { return }
        for p in proposals[round] ?? [] {
            out.append(.broadcastProposal(p))
            if let vr = p.proposal.polRound, let pol = votes[vr]?.prevotes.votes(for: p.proposal.value.hash) {
                for v in pol { out.append(.broadcastVote(v)) }
            }
        }
        // The POL behind our valid value, if it is from an earlier round: peers that missed
        // it (e.g. an equivocator showed them another vote) can then adopt or accept it.
        if let vr = validRound, vr < round, let vv = validValue {
            for p in proposals[vr] ?? [] where p.proposal.value == vv { out.append(.broadcastProposal(p)) }
            for v in votes[vr]?.prevotes.votes(for: vv.hash) ?? [] { out.append(.broadcastVote(v)) }
        }
        for r in [round > 0 ? round - 1 : nil, round].compactMap({ $0 }) {
            for t in [VoteType.prevote, .precommit] {
                if let mine = votes[r]?[t].existing(address) { out.append(.broadcastVote(mine)) }
            }
        }
    }
}
