import Foundation
import IshtarChain
import IshtarCrypto
import IshtarStore
import IshtarTestSupport
import Testing

@testable import IshtarNode

/// The node's mempool in front of a real application (RocksDB, the accounts module): what a
/// node does from admission to the recheck after a commit, with blocks produced by hand.
final class MempoolHarness {
    static let chainID = "ishtar-mempool"
    let dir = TempDir(prefix: "ishtar-mempool")
    let database: Database
    let app: Application
    let proposer = chainTestKey("mempool-validator")
    let senders: [Schnorr.PrivateKey]
    var mempool: Mempool

    init(_ config: MempoolConfig, senders: Int = 3) throws {
        database = try Database.open(path: dir.path("db"), options: Application.databaseOptions())
        app = try Application(store: database)
        try app.initChain(Genesis(
            chainID: Self.chainID, genesisTime: 1_735_689_600_000,
            validators: [ChainValidator(publicKey: proposer.publicKey.rawRepresentation, power: 10, name: "v0")]))
        self.senders = (0..<senders).map { chainTestKey("mempool-sender-\($0)") }
        mempool = Mempool(config: config)
        // Replacements are not paused after one another here (one test checks the pause).
        mempool.replacementPause = 0
    }

    func tx(_ sender: Int, nonce: UInt64, label: String = "a") throws -> Data {
        try Transaction.signed(chainID: Self.chainID, key: senders[sender], nonce: nonce,
                               messages: [SetLabel(label: label).message]).encoded
    }

    /// Admission as the node runs it.
    func submit(_ bytes: Data, exemptFromLimits: Bool = false, now: ContinuousClock.Instant = .now) -> Mempool.Admission {
        mempool.add(bytes, exemptFromLimits: exemptFromLimits, checks: ApplicationChecks(app: app), now: now).0
    }

    func committedNonce(_ sender: Int) -> UInt64 {
        CheckpointDuty.committedNonce(app: app, account: senders[sender].publicKey.rawRepresentation)
    }

    /// Proposes `offered` (the proposer keeps those that pass, in order), commits the block,
    /// then runs the node's recheck. Returns the block's transactions and how many were evicted.
    @discardableResult
    func commit(_ offered: [Data]) throws -> (included: [Data], evicted: Int) {
        guard let tip = app.tip, let validators = app.validators else { throw ChainError.notInitialized }
        let address = proposer.publicKey.rawRepresentation
        let time = tip.lastBlockTime + 1000
        let txs = try app.prepareProposal(PrepareProposalRequest(
            transactions: offered, maxTxBytes: 1 << 20, height: tip.nextHeight, time: time, proposer: address))
        var lastCommit: CommitInfo?
        if tip.lastHeight >= tip.initialHeight {
            // No commit verifier: the signature is checked for shape and power only.
            let signature = try proposer.signature(for: TaggedHash.hash(tag: "mempool-test/vote", data: tip.lastBlockHash),
                                                   auxiliaryRandomness: Data(count: 32)).rawRepresentation
            lastCommit = CommitInfo(height: tip.lastHeight, round: 0, blockHash: tip.lastBlockHash,
                                    signatures: [CommitSignature(address: address, signature: signature)])
        }
        let block = Block.make(tip: tip, time: time, proposer: address, validators: validators,
                               lastCommit: lastCommit, transactions: txs)
        let result = try app.finalizeBlock(block)
        let failed = result.txResults.filter { !$0.isOK }.count
        #expect(failed == 0, "the proposer keeps only transactions that pass")
        try app.commit()
        let evicted = mempool.update(committed: txs, checks: ApplicationChecks(app: app))
        return (txs, evicted)
    }

    /// Whether check-tx would take `bytes` now, without keeping the result: the check state
    /// is rebuilt from the pool afterwards, as after a commit.
    func checkState(accepts bytes: Data) -> Bool {
        (try? app.checkTx(bytes))?.result.isOK ?? false
    }

    /// The bookkeeping agrees with the entries (counts, bytes, hashes, one entry per sender
    /// and nonce).
    func expectConsistent(sourceLocation: SourceLocation = #_sourceLocation) {
        let entries = mempool.entries
        #expect(mempool.totalBytes == entries.reduce(0) { $0 + $1.bytes.count }, sourceLocation: sourceLocation)
        #expect(Set(entries.map(\.hash)).count == entries.count, sourceLocation: sourceLocation)
        #expect(entries.allSatisfy { mempool.contains($0.hash) }, sourceLocation: sourceLocation)
        let slots = entries.compactMap { e in e.sender.flatMap { s in e.nonce.map { "\(s.hexString)/\($0)" } } }
        #expect(Set(slots).count == slots.count, "one pending transaction per sender and nonce", sourceLocation: sourceLocation)
    }
}

@Suite struct MempoolTests {
    @Test func admitsOnceAndRefusesWhatCheckTxRefuses() throws {
        let h = try MempoolHarness(MempoolConfig())
        let first = try h.tx(0, nonce: 0)
        #expect(h.submit(first) == .added)
        #expect(h.submit(first) == .duplicate)
        // Stale and future nonces, a bad signature, garbage: refused, the pool unchanged.
        let tooFar = try h.tx(0, nonce: 5)
        guard case .rejected(let why) = h.submit(tooFar) else { Issue.record("a nonce gap was admitted"); return }
        #expect(why.contains("nonce"))
        var forged = try Transaction(decoding: try h.tx(1, nonce: 0))
        forged.signature = Data(repeating: 7, count: 64)
        if case .rejected = h.submit(forged.encoded) {} else { Issue.record("a forged signature was admitted") }
        if case .rejected = h.submit(Data([1, 2, 3])) {} else { Issue.record("garbage was admitted") }
        #expect(h.mempool.entries.map(\.bytes) == [first])
        h.expectConsistent()

        try h.commit(h.mempool.candidates())
        #expect(h.mempool.count == 0)
        #expect(h.committedNonce(0) == 1)
        guard case .rejected = h.submit(first) else { Issue.record("a committed transaction was admitted again"); return }
    }

    /// A second transaction with a pending one's sender and nonce replaces it, in its place
    /// in the order; the replaced version is not taken back.
    @Test func aTransactionWithAPendingNonceReplacesIt() throws {
        let h = try MempoolHarness(MempoolConfig())
        let a0 = try h.tx(0, nonce: 0, label: "first"), a1 = try h.tx(0, nonce: 1), b0 = try h.tx(1, nonce: 0)
        for t in [a0, a1, b0] { #expect(h.submit(t) == .added) }
        let second = try h.tx(0, nonce: 0, label: "second")
        #expect(h.submit(second) == .replaced(previous: Transaction.hash(of: a0)))
        #expect(h.mempool.entries.map(\.bytes) == [second, a1, b0], "in the replaced one's place; nothing evicted")
        #expect(h.mempool.lastReplacementEvictions == 0)
        h.expectConsistent()
        // The first version, gossiped back by anyone who saw it: refused.
        guard case .rejected(let why) = h.submit(a0) else { Issue.record("a replaced version came back"); return }
        #expect(why.contains("replaced here") && why.contains(Transaction.hash(of: second).hexString), "\(why)")
        #expect(h.submit(second) == .duplicate)
        // The check state follows the pool: sender 0's next nonce is still 2.
        #expect(h.checkState(accepts: try h.tx(0, nonce: 2)))

        let first = try h.commit(h.mempool.candidates(limit: 1))
        #expect(first.included == [second])
        let account = CheckpointDuty.queryJSON(h.app, "/modules/accounts/account/" + h.senders[0].publicKey.rawRepresentation.hexString)
        #expect(account?["label"] as? String == "second", "the replacement is the one executed")
        let rest = try h.commit(h.mempool.candidates())
        #expect(rest.included == [a1, b0])
        #expect(h.committedNonce(0) == 2)
    }

    /// A replacement that fails where the pending one stood — a forged signature (refused
    /// before any rebuild), or a rule of the state — leaves the pool and the check state as
    /// they were.
    @Test func aFailedReplacementLeavesThePoolAsItWas() throws {
        let h = try MempoolHarness(MempoolConfig())
        let a0 = try h.tx(0, nonce: 0, label: "first"), a1 = try h.tx(0, nonce: 1), b0 = try h.tx(1, nonce: 0)
        for t in [a0, a1, b0] { #expect(h.submit(t) == .added) }
        var forged = try Transaction(decoding: try h.tx(0, nonce: 0, label: "forged"))
        forged.signature = Data(repeating: 7, count: 64)
        guard case .rejected(let sig) = h.submit(forged.encoded) else { Issue.record("a forged replacement was taken"); return }
        #expect(sig.contains("signature"), "\(sig)")
        // Over the 64-byte label parameter: only check-tx against state refuses it.
        let tooLong = try h.tx(0, nonce: 0, label: String(repeating: "x", count: 100))
        guard case .rejected(let rule) = h.submit(tooLong) else { Issue.record("an invalid replacement was taken"); return }
        #expect(rule.contains("label is 100 bytes"), "\(rule)")
        #expect(h.mempool.entries.map(\.bytes) == [a0, a1, b0])
        h.expectConsistent()
        #expect(h.checkState(accepts: try h.tx(0, nonce: 2)), "the check state holds the pool, no more, no less")
        #expect(!h.checkState(accepts: try h.tx(1, nonce: 0, label: "again")))
        let block = try h.commit(h.mempool.candidates())
        #expect(block.included == [a0, a1, b0])
    }

    /// Replacements cost a check of the whole pool: each pending nonce takes a bounded number
    /// of versions, and after a rebuild replacements pause for nine times its duration.
    @Test func replacementsAreBounded() throws {
        let h = try MempoolHarness(MempoolConfig())
        var current = try h.tx(0, nonce: 0, label: "v0")
        #expect(h.submit(current) == .added)
        for v in 1...Mempool.maxReplacementsPerNonce {
            let next = try h.tx(0, nonce: 0, label: "v\(v)")
            #expect(h.submit(next) == .replaced(previous: Transaction.hash(of: current)))
            current = next
        }
        guard case .rejected(let why) = h.submit(try h.tx(0, nonce: 0, label: "one too many")) else {
            Issue.record("a ninth replacement was taken"); return
        }
        #expect(why.contains("replaced \(Mempool.maxReplacementsPerNonce) times"), "\(why)")
        // Committed: the memory of its versions goes with it.
        try h.commit(h.mempool.candidates())
        #expect(h.mempool.count == 0)

        // The pause: a rebuild of a pool of 50 takes some time t; a replacement within 9·t is
        // refused, one after it is taken.
        h.mempool.replacementPause = 9
        for n in 0..<50 { #expect(h.submit(try h.tx(1 + n % 2, nonce: UInt64(n / 2))) == .added) }
        let start = ContinuousClock.now
        let x = try h.tx(0, nonce: 1, label: "x")
        #expect(h.submit(x, now: start) == .added)
        let y = try h.tx(0, nonce: 1, label: "y")
        #expect(h.submit(y, now: start) == .replaced(previous: Transaction.hash(of: x)))
        let z = try h.tx(0, nonce: 1, label: "z")
        guard case .rejected(let paused) = h.submit(z, now: start) else {
            Issue.record("a replacement was taken during the pause"); return
        }
        #expect(paused.contains("replacements are paused"), "\(paused)")
        #expect(h.submit(z, now: start + .seconds(60)) == .replaced(previous: Transaction.hash(of: y)))
        h.expectConsistent()
    }

    @Test func aFullPoolRefusesNewcomersWithoutATrace() throws {
        let h = try MempoolHarness(MempoolConfig(maxTransactions: 2))
        let a0 = try h.tx(0, nonce: 0), b0 = try h.tx(1, nonce: 0)
        #expect(h.submit(a0) == .added)
        #expect(h.submit(b0) == .added)
        let c0 = try h.tx(2, nonce: 0)
        #expect(h.submit(c0) == .rejected("mempool is full"))
        #expect(h.checkState(accepts: c0), "a refused transaction leaves no trace in the check state")
        #expect(h.mempool.entries.map(\.bytes) == [a0, b0])
        h.expectConsistent()
        // The node's own duty (its checkpoint signature) is admitted past the limits, still
        // only if check-tx accepts it (the probe above consumed sender 2's nonce 0 in the
        // check state, so its next is 1).
        let c1 = try h.tx(2, nonce: 1)
        #expect(h.submit(c1) == .rejected("mempool is full"))
        #expect(h.submit(c1, exemptFromLimits: true) == .added)
        let gap = try h.tx(2, nonce: 4)
        if case .rejected = h.submit(gap, exemptFromLimits: true) {} else { Issue.record("an exempt invalid transaction was admitted") }
        #expect(h.mempool.entries.map(\.bytes) == [a0, b0, c1])
    }

    @Test func aSenderOverItsLimitIsRefusedWithoutConsumingItsNonce() throws {
        let h = try MempoolHarness(MempoolConfig(maxPerSender: 2))
        #expect(h.submit(try h.tx(0, nonce: 0)) == .added)
        #expect(h.submit(try h.tx(0, nonce: 1)) == .added)
        let third = try h.tx(0, nonce: 2)
        #expect(h.submit(third) == .rejected("too many pending transactions from this sender"))
        // Refused before check-tx: nonce 2 is still the sender's next one in the check state
        // (a check-tx run first would have consumed it for a transaction that is nowhere).
        #expect(h.checkState(accepts: third))
        #expect(h.submit(try h.tx(1, nonce: 0)) == .added, "the limit is per sender")
        #expect(h.mempool.count == 3)
        h.expectConsistent()
    }

    @Test func theRecheckEvictsWhatAnotherProposerMadeInvalid() throws {
        let h = try MempoolHarness(MempoolConfig())
        let a0 = try h.tx(0, nonce: 0, label: "here"), a1 = try h.tx(0, nonce: 1), b0 = try h.tx(1, nonce: 0)
        for t in [a0, a1, b0] { #expect(h.submit(t) == .added) }
        // Another proposer's block carries its own version of sender 0's nonce 0 (signed by
        // the same key: a version this node never saw).
        let elsewhere = try h.tx(0, nonce: 0, label: "there")
        let (included, evicted) = try h.commit([elsewhere])
        #expect(included == [elsewhere])
        #expect(evicted == 1, "the local nonce 0 can never be included now")
        #expect(h.mempool.entries.map(\.bytes) == [a1, b0], "the rest stays valid, in order")
        h.expectConsistent()
        try h.commit(h.mempool.candidates())
        #expect(h.committedNonce(0) == 2 && h.committedNonce(1) == 1 && h.mempool.count == 0)
    }

    /// Random admissions, replacements, replaced versions sent back, stale, future and
    /// duplicate submissions and blocks (from this pool, part of it, or another proposer's)
    /// against a model of what the pool must hold: per sender, the transactions of
    /// consecutive nonces from the committed one, each the latest version admitted, in
    /// admission order, within the limits.
    @Test(arguments: [UInt64(1), 2, 3])
    func randomOperationsMatchTheModel(seed: UInt64) throws {
        var rng = SplitMix64(seed: 0x6d65_6d70 ^ seed)
        let config = MempoolConfig(maxTransactions: 9, maxBytes: 1 << 20, maxPerSender: 4)
        let h = try MempoolHarness(config)
        // The model: committed nonce per sender and the pool's entries in order.
        var committed = [UInt64](repeating: 0, count: h.senders.count)
        var model: [(sender: Int, nonce: UInt64, bytes: Data)] = []
        // The versions each pending "sender/nonce" had replaced.
        var replaced: [String: [Data]] = [:]
        var label = 0
        func fresh(_ s: Int, _ n: UInt64) throws -> Data {
            label += 1
            return try h.tx(s, nonce: n, label: "l\(label)")
        }
        for step in 0..<240 {
            let s = Int.random(in: 0..<h.senders.count, using: &rng)
            let pending = model.filter { $0.sender == s }
            let next = committed[s] + UInt64(pending.count)
            switch Int.random(in: 0..<100, using: &rng) {
            case 0..<40:  // the sender's next nonce
                let t = try fresh(s, next)
                let admission = h.submit(t)
                if model.count >= config.maxTransactions {
                    #expect(admission == .rejected("mempool is full"), "step \(step)")
                } else if pending.count >= config.maxPerSender {
                    #expect(admission == .rejected("too many pending transactions from this sender"), "step \(step)")
                } else {
                    #expect(admission == .added, "step \(step)")
                    model.append((s, next, t))
                }
            case 40..<50:  // another version of a pending nonce: replaces it in place, a bounded number of times
                guard let old = pending.randomElement(using: &rng) else { continue }
                let t = try fresh(s, old.nonce)
                let slot = "\(s)/\(old.nonce)"
                let admission = h.submit(t)
                if replaced[slot, default: []].count >= Mempool.maxReplacementsPerNonce {
                    if case .rejected = admission {} else { Issue.record("step \(step): a replacement over the bound was taken") }
                } else {
                    #expect(admission == .replaced(previous: Transaction.hash(of: old.bytes)), "step \(step)")
                    replaced[slot, default: []].append(old.bytes)
                    if let i = model.firstIndex(where: { $0.bytes == old.bytes }) { model[i].bytes = t }
                }
            case 50..<55:  // a version replaced here, sent again: refused
                guard let old = pending.randomElement(using: &rng), let back = replaced["\(s)/\(old.nonce)"]?.randomElement(using: &rng)
                else { continue }
                if case .rejected = h.submit(back) {} else { Issue.record("step \(step): a replaced version came back") }
            case 55..<62:  // a stale nonce
                guard committed[s] > 0 else { continue }
                let t = try fresh(s, UInt64.random(in: 0..<committed[s], using: &rng))
                if case .rejected = h.submit(t) {} else { Issue.record("step \(step): a stale nonce was admitted") }
            case 62..<68:  // a nonce beyond the next
                let t = try fresh(s, next + UInt64.random(in: 1...3, using: &rng))
                if case .rejected = h.submit(t) {} else { Issue.record("step \(step): a nonce gap was admitted") }
            case 68..<73:  // the same bytes again
                guard let old = pending.randomElement(using: &rng) else { continue }
                #expect(h.submit(old.bytes) == .duplicate, "step \(step)")
            case 73..<88:  // a block of this pool's candidates (possibly a prefix)
                let limit = Int.random(in: 1...max(1, model.count), using: &rng)
                let (included, evicted) = try h.commit(h.mempool.candidates(limit: limit))
                #expect(included == model.prefix(limit).map(\.bytes), "step \(step): the oldest, all valid")
                #expect(evicted == 0, "step \(step)")
                for e in model.prefix(limit) { committed[e.sender] += 1 }
                model.removeFirst(min(limit, model.count))
            default:  // another proposer's block: its own version of the sender's next nonce
                let t = try fresh(s, committed[s])
                let (included, evicted) = try h.commit([t])
                #expect(included == [t], "step \(step)")
                committed[s] += 1
                // This node's version of that nonce can never be included: evicted; the
                // sender's later ones stay valid, so nothing else goes.
                #expect(evicted == (pending.isEmpty ? 0 : 1), "step \(step)")
                if let i = model.firstIndex(where: { $0.sender == s && $0.nonce == committed[s] - 1 }) { model.remove(at: i) }
            }
            let pendingSlots = Set(model.map { "\($0.sender)/\($0.nonce)" })
            replaced = replaced.filter { pendingSlots.contains($0.key) }
            #expect(h.mempool.entries.map(\.bytes) == model.map(\.bytes), "step \(step) (seed \(seed))")
            h.expectConsistent()
            for i in h.senders.indices { #expect(h.committedNonce(i) == committed[i], "step \(step)") }
        }
    }
}
