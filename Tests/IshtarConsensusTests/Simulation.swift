import Foundation
@testable import IshtarConsensus

/// Parameters of one simulated run, all drawn from the seed.
struct SimConfig: CustomStringConvertible {
    var seed: UInt64
    var powers: [UInt64]
    var byzantine: Int?
    /// Global stabilisation time: before it messages are slow, dropped and partitioned.
    var gstMillis: UInt64
    var preGSTDropRate: Double
    var preGSTMaxDelay: UInt64
    var postGSTMaxDelay: UInt64
    var partition: (start: UInt64, heal: UInt64, groupOf: [Int])?
    /// (node, crash time, restart time); restart is always before GST.
    var crash: (node: Int, at: UInt64, restartAt: UInt64)?
    var minHeights: Height
    var gossipIntervalMillis: UInt64
    var timeouts: TimeoutConfig

    static func random(seed: UInt64) -> SimConfig {
        var rng = SimRNG(seed: seed ^ 0xC0FF_EE00_D15E_A5E5)
        let n = rng.int(4...7)
        var powers = (0..<n).map { _ in rng.u64(1...10) }
        var byz: Int? = rng.chance(0.8) ? rng.int(0...n - 1) : nil
        if let b = byz {
            // Keep the Byzantine validator strictly below 1/3 of the total power.
            let others = powers.enumerated().filter { $0.offset != b }.reduce(0) { $0 + $1.element }
            let maxByz = (others - 1) / 2  // 3·byz < byz + others  ⇔  2·byz < others
            if maxByz == 0 { byz = nil } else { powers[b] = min(powers[b], maxByz) }
        }
        let gst = rng.u64(1500...6000)
        var partition: (UInt64, UInt64, [Int])?
        if rng.chance(0.5) {
            let start = rng.u64(0...gst / 2)
            let heal = rng.u64(start + 200...gst)
            partition = (start, heal, (0..<n).map { _ in rng.int(0...1) })
        }
        var crash: (Int, UInt64, UInt64)?
        if rng.chance(0.6) {
            var node = rng.int(0...n - 1)
            if node == byz { node = (node + 1) % n }
            let at = rng.u64(100...gst - 200)
            crash = (node, at, rng.u64(at + 50...gst))
        }
        return SimConfig(
            seed: seed, powers: powers, byzantine: byz, gstMillis: gst,
            preGSTDropRate: Double(rng.int(0...40)) / 100, preGSTMaxDelay: rng.u64(50...800),
            postGSTMaxDelay: 40, partition: partition, crash: crash, minHeights: 6,
            gossipIntervalMillis: 300,
            timeouts: TimeoutConfig(
                proposeBaseMillis: 300, proposeDeltaMillis: 100, prevoteBaseMillis: 150,
                prevoteDeltaMillis: 100, precommitBaseMillis: 150, precommitDeltaMillis: 100))
    }

    var description: String {
        "n=\(powers.count) powers=\(powers) byz=\(byzantine.map(String.init) ?? "-") gst=\(gstMillis)ms "
            + "drop=\(preGSTDropRate) delay≤\(preGSTMaxDelay) partition=\(partition.map { "\($0.start)-\($0.heal) \($0.groupOf)" } ?? "-") "
            + "crash=\(crash.map { "node\($0.node)@\($0.at)→\($0.restartAt)" } ?? "-")"
    }
}

/// Statistics of one run (for the summary line).
struct SimStats {
    var decidedHeights: Height = 0
    var maxRoundAfterGST: Round = 0
    var deliveredMessages = 0
    var evidenceExpected = 0
    var evidenceFound = 0
    var restarts = 0
    var signRefusals = 0
    var virtualMillis: UInt64 = 0
}

/// Deterministic discrete-event simulation of `n` validators running ``ConsensusEngine``
/// over an adversarial network. One instance = one seed.
final class Simulation {
    enum Payload {
        case proposal(SignedProposal)
        case vote(SignedVote)
        case commit(CommitCertificate, ProposalValue)
    }

    enum Event {
        case deliver(to: Int, from: Int, Payload)
        case timeout(node: Int, incarnation: Int, TimeoutInfo)
        case gossip(node: Int, incarnation: Int)
        case crash(node: Int)
        case restart(node: Int)
        case gst
    }

    struct Node {
        let index: Int
        let signer: FakeSigner
        var engine: ConsensusEngine?
        var incarnation = 0
        /// Survives crashes: the sign-state record and the decided blocks.
        var durableSignState: SignState?
        var decided: [Height: Decision] = [:] {
            didSet { lastDecided = decided.keys.max() ?? 0 }
        }
        var lastDecided: Height = 0
        /// Crash at the next persist action (before or after executing it).
        var armedCrash: Bool? = nil
        var lastCatchUp: [Int: UInt64] = [:]
    }

    let config: SimConfig
    let genesis: ValidatorSet
    let chainID = Fixtures.chainID
    var rng: SimRNG
    var now: UInt64 = 0
    var nodes: [Node] = []
    var queue = EventQueue<Event>()
    var failures: [String] = []
    var stats = SimStats()
    var trace: Bool

    // Global observations for the checks.
    var decidedValue: [Height: BlockHash] = [:]
    var decisionRounds: [Height: Round] = [:]
    var heightFirstStart: [Height: UInt64] = [:]
    var proposedValues: Set<BlockHash> = []
    var proposalOrder: [BlockHash] = []
    var honestSignatures: [String: Data] = [:]
    var twins: [BlockHash: ProposalValue] = [:]
    var byzSeen: [String: Set<BlockHash?>] = [:]
    var evidenceExpected: Set<String> = []
    var evidenceFound: Set<String> = []
    var targetHeight: Height
    var setCache: [ValidatorSet] = []

    init(config: SimConfig, trace: Bool = false) throws {
        self.config = config
        self.trace = trace
        rng = SimRNG(seed: config.seed)
        genesis = try Fixtures.validatorSet(powers: config.powers)
        targetHeight = config.minHeights
        setCache = [genesis]
        nodes = config.powers.indices.map { Node(index: $0, signer: Fixtures.signer($0)) }
    }

    var honest: [Int] { honestIndices }
    lazy var honestIndices: [Int] = nodes.indices.filter { $0 != config.byzantine }

    func validatorSet(height: Height) -> ValidatorSet {
        while setCache.count < Int(height) { setCache.append(setCache[setCache.count - 1].advancedForNextHeight()) }
        return setCache[Int(height) - 1]
    }

    func fail(_ message: String) {
        if failures.count < 10 { failures.append("t=\(now)ms: \(message)") }
    }

    func log(_ s: @autoclosure () -> String) {
        if trace { print("[\(now)] \(s())") }
    }

    // MARK: run

    func run() -> SimStats {
        for i in nodes.indices { boot(i) }
        queue.push(at: config.gstMillis, .gst)
        if let c = config.crash {
            queue.push(at: c.at, .crash(node: c.node))
            queue.push(at: c.restartAt, .restart(node: c.node))
        }
        let deadline = config.gstMillis + 120_000
        while let (t, e) = queue.pop() {
            if t > deadline {
                fail("liveness: not all honest nodes decided \(targetHeight) heights by GST+120s; heights: \(honest.map { nodes[$0].decided.keys.max() ?? 0 })")
                break
            }
            now = t
            handle(e)
            if !failures.isEmpty { break }
            if done() { break }
        }
        finalChecks()
        stats.virtualMillis = now
        stats.decidedHeights = decidedValue.keys.max() ?? 0
        stats.evidenceExpected = evidenceExpected.count
        stats.evidenceFound = evidenceExpected.intersection(evidenceFound).count
        return stats
    }

    func done() -> Bool {
        now >= config.gstMillis
            && honestIndices.allSatisfy { nodes[$0].lastDecided >= targetHeight && nodes[$0].engine != nil }
    }

    func boot(_ i: Int) {
        var n = nodes[i]
        n.incarnation += 1
        n.armedCrash = nil
        n.engine = ConsensusEngine(
            chainID: chainID, signer: n.signer, verifier: FakeVerifier(), timeouts: config.timeouts,
            lastSignState: n.durableSignState, maxFutureRounds: 50)
        nodes[i] = n
        let h = (n.decided.keys.max() ?? 0) + 1
        queue.push(at: now + rng.u64(0...config.gossipIntervalMillis), .gossip(node: i, incarnation: n.incarnation))
        feed(i, .startHeight(h, validatorSet(height: h)))
    }

    func handle(_ e: Event) {
        switch e {
        case .gst:
            // Make sure a few heights are decided entirely after the network heals.
            let hMax = honest.map { nodes[$0].decided.keys.max() ?? 0 }.max() ?? 0
            targetHeight = max(targetHeight, hMax + 4)
        case .crash(let i):
            if rng.chance(0.5) {
                crash(i)
            } else {
                // Crash in the middle of an action batch, right before or right after the
                // next persist: the broadcast that follows it must then never leave.
                nodes[i].armedCrash = rng.chance(0.5)
            }
        case .restart(let i):
            crash(i)  // if the armed crash never triggered, crash now
            stats.restarts += 1
            log("restart node\(i)")
            boot(i)
        case .timeout(let i, let inc, let info):
            guard nodes[i].incarnation == inc, nodes[i].engine != nil else { return }
            feed(i, .timeout(info))
        case .gossip(let i, let inc):
            guard nodes[i].incarnation == inc, nodes[i].engine != nil else { return }
            queue.push(at: now + config.gossipIntervalMillis, .gossip(node: i, incarnation: inc))
            feed(i, .gossipTick)
            if trace, let e = nodes[i].engine {
                log("node\(i) h=\(e.height) r=\(e.round) \(e.step) locked=\(e.lockedRound.map(String.init) ?? "-"):\(e.lockedValue?.hash.description ?? "-") valid=\(e.validRound.map(String.init) ?? "-") proposer=\(nodes.firstIndex { $0.signer.validatorAddress == nodes[i].engine?.proposer(round: e.round) } ?? -1)")
            }
            if i == config.byzantine { byzantineNoise(i) }
        case .deliver(let to, _, let payload):
            guard let engine = nodes[to].engine else { return }
            stats.deliveredMessages += 1
            switch payload {
            case .proposal(let p): feed(to, .proposal(p))
            case .vote(let v):
                if let b = config.byzantine, v.vote.validator == Fixtures.address(b) {
                    trackByzantineDelivery(to: to, v, engine: engine)
                }
                feed(to, .vote(v))
            case .commit(let c, let v): feed(to, .commit(c, v))
            }
        }
    }

    func crash(_ i: Int) {
        guard nodes[i].engine != nil else { return }
        log("crash node\(i)")
        nodes[i].engine = nil
        nodes[i].armedCrash = nil
    }

    // MARK: driving one node

    /// Feeds an event and executes the resulting actions in order; application answers are
    /// fed back as further events, FIFO, before returning.
    func feed(_ i: Int, _ first: ConsensusEvent) {
        var pending = [first]
        var k = 0
        while k < pending.count {
            let event = pending[k]
            k += 1
            // Move the engine out and back (no copy), so its tables are never copied-on-write.
            guard var engine = nodes[i].engine.take() else { return }
            let actions = engine.step(event)
            nodes[i].engine = engine
            for a in actions {
                if case .persistSignState = a, let afterPersist = nodes[i].armedCrash {
                    if afterPersist { execute(i, a, &pending) }
                    crash(i)
                    return
                }
                execute(i, a, &pending)
                if nodes[i].engine == nil || !failures.isEmpty { return }
            }
        }
    }

    func execute(_ i: Int, _ a: ConsensusAction, _ pending: inout [ConsensusEvent]) {
        let isByz = i == config.byzantine
        switch a {
        case .persistSignState(let s):
            if !isByz, let old = nodes[i].durableSignState {
                if (s.height, s.round, s.step.rawValue) <= (old.height, old.round, old.step.rawValue) {
                    fail("node\(i) persisted a non-increasing sign state \(s.height)/\(s.round)/\(s.step) after \(old.height)/\(old.round)/\(old.step)")
                }
            }
            nodes[i].durableSignState = s
        case .broadcastProposal(let p):
            if p.proposal.proposer == nodes[i].signer.validatorAddress {
                proposedValues.insert(p.proposal.value.hash)
                proposalOrder.append(p.proposal.value.hash)
                if isByz {
                    byzantinePropose(i, p)
                    return
                }
                checkHonestSignature(i, .proposal(p))
                log("node\(i) proposes h=\(p.proposal.height) r=\(p.proposal.round) pol=\(p.proposal.polRound.map(String.init) ?? "-") \(p.proposal.value.hash)")
            }
            sendToAll(from: i, .proposal(p))
        case .broadcastVote(let v):
            if v.vote.validator == nodes[i].signer.validatorAddress {
                if isByz {
                    byzantineVote(i, v)
                    return
                }
                checkHonestSignature(i, .vote(v))
                log("node\(i) votes \(v.vote.type) h=\(v.vote.height) r=\(v.vote.round) \(v.vote.value?.description ?? "nil")")
            }
            sendToAll(from: i, .vote(v))
        case .scheduleTimeout(let info, let ms):
            queue.push(at: now + ms, .timeout(node: i, incarnation: nodes[i].incarnation, info))
        case .requestProposalValue(let h, let r):
            let v = Fixtures.value(height: h, tag: "r\(r)|node\(i)|\(rng.next() % 1_000_000)")
            pending.append(.proposalValue(height: h, round: r, value: v))
        case .requestValidation(let h, let v):
            pending.append(.validity(height: h, value: v, valid: Fixtures.isValid(v, height: h)))
        case .decide(let d):
            onDecide(i, d)
            pending.append(.startHeight(d.height + 1, validatorSet(height: d.height + 1)))
            heightFirstStart[d.height + 1] = min(heightFirstStart[d.height + 1] ?? .max, now)
        case .evidence(let e):
            onEvidence(i, e)
        case .ignored(.staleHeight(let from, let h)):
            // Catch-up: the peer is behind; send it the certificate of the height it is at.
            guard let peer = nodes.firstIndex(where: { $0.signer.validatorAddress == from }),
                let d = nodes[i].decided[h], now >= (nodes[i].lastCatchUp[peer] ?? 0) + 100
            else { return }
            nodes[i].lastCatchUp[peer] = now
            send(from: i, to: peer, .commit(d.certificate, d.value))
        case .ignored:
            break
        case .signRefused:
            stats.signRefusals += 1
        case .signingFailed(let err):
            fail("node\(i) signer failed: \(err)")
        }
    }

    // MARK: checks

    /// Every signature an honest node releases is recorded across restarts; two different
    /// sign-bytes for one (validator, height, round, step) is a double sign. Also checks
    /// persist-before-sign: the durable record already covers the message being sent.
    func checkHonestSignature(_ i: Int, _ m: SignedMessage) {
        let key = "\(i)/\(m.height)/\(m.round)/\(m.step)"
        let bytes = m.signBytes(chainID: chainID)
        if let old = honestSignatures[key], old != bytes {
            fail("DOUBLE SIGN by honest node\(i) at \(key)")
        }
        honestSignatures[key] = bytes
        guard let s = nodes[i].durableSignState,
            (s.height, s.round, s.step.rawValue) >= (m.height, m.round, m.step.rawValue)
        else {
            fail("node\(i) broadcast \(key) before persisting its sign state")
            return
        }
        if (s.height, s.round, s.step) == (m.height, m.round, m.step), s.message.signBytes(chainID: chainID) != bytes {
            fail("node\(i) broadcast \(key) that differs from its persisted sign state")
        }
    }

    func onDecide(_ i: Int, _ d: Decision) {
        log("node\(i) decides h=\(d.height) r=\(d.round) \(d.value.hash)")
        if i == config.byzantine {
            nodes[i].decided[d.height] = d
            return
        }
        if let v = decidedValue[d.height], v != d.value.hash {
            fail("AGREEMENT violated at height \(d.height): \(v) vs \(d.value.hash) (node\(i))")
        }
        decidedValue[d.height] = d.value.hash
        if !proposedValues.contains(d.value.hash) { fail("VALIDITY: node\(i) decided an unproposed value at \(d.height)") }
        if !Fixtures.isValid(d.value, height: d.height) { fail("VALIDITY: node\(i) decided an invalid value at \(d.height)") }
        do {
            try d.certificate.verify(chainID: chainID, validators: validatorSet(height: d.height), verifier: FakeVerifier())
        } catch {
            fail("node\(i) decided with a bad certificate: \(error)")
        }
        nodes[i].decided[d.height] = d
        // Liveness bound: heights begun after GST must decide within a few rounds.
        if let start = heightFirstStart[d.height], start >= config.gstMillis {
            decisionRounds[d.height] = max(decisionRounds[d.height] ?? 0, d.round)
            stats.maxRoundAfterGST = max(stats.maxRoundAfterGST, d.round)
        }
    }

    func onEvidence(_ i: Int, _ e: DuplicateVoteEvidence) {
        guard i != config.byzantine else { return }
        do {
            try e.verify(chainID: chainID, validators: validatorSet(height: e.height), verifier: FakeVerifier())
        } catch {
            fail("node\(i) emitted unverifiable evidence: \(error)")
        }
        guard let b = config.byzantine, e.validator == Fixtures.address(b) else {
            fail("node\(i) emitted evidence against an honest validator")
            return
        }
        let v = e.voteA.vote
        evidenceFound.insert("\(i)/\(nodes[i].incarnation)/\(v.height)/\(v.round)/\(v.type)")
    }

    /// Records which Byzantine votes reached which honest engine while it was at that
    /// height and undecided; two different ones for the same slot ⇒ evidence is required.
    func trackByzantineDelivery(to: Int, _ v: SignedVote, engine: ConsensusEngine) {
        guard to != config.byzantine, engine.height == v.vote.height, engine.decision == nil,
            v.vote.round <= engine.round || v.vote.round - engine.round <= engine.maxFutureRounds
        else { return }
        let key = "\(to)/\(nodes[to].incarnation)/\(v.vote.height)/\(v.vote.round)/\(v.vote.type)"
        byzSeen[key, default: []].insert(v.vote.value)
        if byzSeen[key]?.count == 2 { evidenceExpected.insert(key) }
    }

    func finalChecks() {
        for key in evidenceExpected.subtracting(evidenceFound).sorted() {
            fail("EVIDENCE missing: both conflicting Byzantine votes reached \(key) but no evidence was emitted")
        }
        // Bounded rounds after GST (timeouts > max delay after GST): see SimulationTests.
        for (h, r) in decisionRounds.sorted(by: { $0.key < $1.key }) where r > Simulation.maxRoundsAfterGST {
            fail("LIVENESS bound: height \(h) (started after GST) decided only in round \(r) > \(Simulation.maxRoundsAfterGST)")
        }
    }

    /// Liveness bound for heights begun after GST (message delay ≤ 40 ms, round-0 timeouts
    /// ≥ 150 ms, gossip every 300 ms). A height can lose: a round whose proposer is the
    /// Byzantine validator; a round in which its split prevotes gave a proof-of-lock to only
    /// some honest validators; and a round whose honest proposer has not yet received that
    /// POL by gossip and proposes a fresh value the locked ones reject. The next round with
    /// an honest proposer then decides. Observed maximum over 80,000 seeds (bases 7,000,000,
    /// 9,100,000 and 12,000,000, since a node relays a POL's prevotes as soon as it sees one
    /// and a proposer sends them with a re-proposal): round 3. Before that relay, seed 7007731 needed
    /// round 5. The bound leaves one round of slack for the Byzantine proposing again.
    static let maxRoundsAfterGST: Round = 4

    // MARK: network

    func sendToAll(from i: Int, _ p: Payload) {
        for j in nodes.indices where j != i { send(from: i, to: j, p) }
    }

    func send(from i: Int, to j: Int, _ p: Payload) {
        if now < config.gstMillis {
            if let part = config.partition, now >= part.start, now < part.heal, part.groupOf[i] != part.groupOf[j] { return }
            if rng.chance(config.preGSTDropRate) { return }
            queue.push(at: now + rng.u64(1...config.preGSTMaxDelay), .deliver(to: j, from: i, p))
        } else {
            queue.push(at: now + rng.u64(1...config.postGSTMaxDelay), .deliver(to: j, from: i, p))
        }
    }

    // MARK: the Byzantine validator

    func byzSign(_ i: Int, _ bytes: Data) -> Data {
        (try? nodes[i].signer.sign(bytes)) ?? Data()
    }

    /// Splits the peers at random into two halves.
    func split(_ i: Int) -> ([Int], [Int]) {
        var a: [Int] = [], b: [Int] = []
        for j in nodes.indices where j != i {
            if rng.chance(0.5) { a.append(j) } else { b.append(j) }
        }
        return (a, b)
    }

    /// As proposer: a twin block (sometimes invalid) goes to half of the peers.
    func byzantinePropose(_ i: Int, _ p: SignedProposal) {
        let orig = p.proposal
        let twin =
            twins[orig.value.hash]
            ?? Fixtures.value(height: orig.height, tag: rng.chance(0.3) ? "INVALID-twin-\(rng.next())" : "twin-\(rng.next())")
        twins[orig.value.hash] = twin
        twins[twin.hash] = orig.value
        proposedValues.insert(twin.hash)
        let tp = Proposal(height: orig.height, round: orig.round, polRound: orig.polRound, value: twin, proposer: orig.proposer)
        let tsp = SignedProposal(proposal: tp, signature: byzSign(i, tp.signBytes(chainID: chainID)))
        let (a, b) = split(i)
        for j in a { send(from: i, to: j, .proposal(p)) }
        for j in b { send(from: i, to: j, .proposal(tsp)) }
    }

    /// Every vote is doubled: the real one to half of the peers, a conflicting one (the
    /// twin of its value, or nil, or some proposal) to the other half — and sometimes
    /// both to one peer, so that equivocation is visible to someone.
    func byzantineVote(_ i: Int, _ sv: SignedVote) {
        let v = sv.vote
        let other: BlockHash? =
            if let h = v.value { twins[h]?.hash ?? (rng.chance(0.5) ? nil : Fixtures.value(height: v.height, tag: "ghost").hash) } else {
                proposalOrder.last ?? Fixtures.value(height: v.height, tag: "ghost").hash
            }
        let cv = Vote(type: v.type, height: v.height, round: v.round, value: other, validator: v.validator)
        let csv = SignedVote(vote: cv, signature: byzSign(i, cv.signBytes(chainID: chainID)))
        let (a, b) = split(i)
        for j in a { send(from: i, to: j, .vote(sv)) }
        for j in b { send(from: i, to: j, .vote(csv)) }
        if rng.chance(0.3), let j = (a + b).randomElement(using: &rng) {
            send(from: i, to: j, .vote(a.contains(j) ? csv : sv))
        }
    }

    /// Votes for rounds far ahead: alone (< 1/3 power) they must not make anyone skip.
    func byzantineNoise(_ i: Int) {
        guard let e = nodes[i].engine, rng.chance(0.2) else { return }
        let v = Vote(type: .prevote, height: e.height, round: e.round + Round(rng.int(2...60)), value: nil, validator: nodes[i].signer.validatorAddress)
        sendToAll(from: i, .vote(SignedVote(vote: v, signature: byzSign(i, v.signBytes(chainID: chainID)))))
    }
}

/// Min-heap keyed by (time, insertion order): equal times pop in FIFO order, so runs are
/// deterministic. The heap holds plain integers; events live in a side table, which keeps
/// sift operations cheap.
struct EventQueue<E> {
    private var heap: [(time: UInt64, seq: Int)] = []
    private var events: [E?] = []

    var isEmpty: Bool { heap.isEmpty }

    mutating func push(at time: UInt64, _ e: E) {
        events.append(e)
        heap.append((time, events.count - 1))
        var c = heap.count - 1
        while c > 0 {
            let p = (c - 1) / 2
            guard less(heap[c], heap[p]) else { break }
            heap.swapAt(c, p)
            c = p
        }
    }

    mutating func pop() -> (UInt64, E)? {
        guard !heap.isEmpty else { return nil }
        heap.swapAt(0, heap.count - 1)
        let top = heap.removeLast()
        var p = 0
        while true {
            let l = 2 * p + 1, r = l + 1
            var m = p
            if l < heap.count, less(heap[l], heap[m]) { m = l }
            if r < heap.count, less(heap[r], heap[m]) { m = r }
            if m == p { break }
            heap.swapAt(p, m)
            p = m
        }
        guard let e = events[top.seq] else { return nil }
        events[top.seq] = nil
        return (top.time, e)
    }

    private func less(_ a: (time: UInt64, seq: Int), _ b: (time: UInt64, seq: Int)) -> Bool {
        a.time < b.time || (a.time == b.time && a.seq < b.seq)
    }
}
