import Foundation
import IshtarChain

/// What the mempool asks of the application.
protocol MempoolChecks {
    /// Check-tx against the check state (admitted transactions change it); nil if it failed
    /// locally.
    func checkTx(_ raw: Data) -> CheckTxResult?
    /// The stateless rules alone (signature, decoding); changes nothing.
    func checkStateless(_ raw: Data) -> CheckTxResult?
    /// Makes the check state the committed state again.
    func resetCheckState()
}

/// ``MempoolChecks`` of a real ``Application``.
struct ApplicationChecks: MempoolChecks {
    let app: Application
    func checkTx(_ raw: Data) -> CheckTxResult? { try? app.checkTx(raw) }
    func checkStateless(_ raw: Data) -> CheckTxResult? { try? app.checkStateless(raw) }
    func resetCheckState() { app.resetCheckState() }
}

/// Pending transactions in arrival order, with size and per-sender limits, and replacement
/// by nonce.
///
/// Admission runs the application's check-tx (against its check state: committed state
/// plus admitted transactions). A transaction with the sender and nonce of a pending one
/// *replaces* it, in its place in the order, if it passes check-tx where the pending one
/// stood: check-tx ran the pending one's messages, so the check state is rebuilt from the
/// committed state through the pool with the new version in place (later transactions that
/// relied on the old version's effects are evicted; a replacement that fails leaves the pool
/// as it was). Because a rebuild checks the whole pool:
/// - the stateless rules (the signature) are checked first, so only the sender's key can
///   cause one;
/// - rebuilds may take at most about a tenth of the node's time (after one that took t,
///   replacements are refused for 9·t);
/// - a pending nonce is replaced at most ``maxReplacementsPerNonce`` times, and a version
///   replaced here is never taken back (anyone who saw it could otherwise swap it in again,
///   re-gossiped every time).
/// Not thread-safe: owned by the ``NodeService`` actor.
struct Mempool {
    struct Entry {
        let hash: Data
        let bytes: Data
        let sender: Data?
        let nonce: UInt64?
    }

    enum Admission: Equatable {
        case added
        /// Took the place of the pending transaction with this hash (same sender and nonce).
        case replaced(previous: Data)
        case duplicate
        case rejected(String)

        /// Whether the transaction is now in the pool (and so is gossiped).
        var isAdmitted: Bool {
            switch self {
            case .added, .replaced: return true
            case .duplicate, .rejected: return false
            }
        }
    }

    /// Versions of one pending nonce this pool takes in turn (the first one plus this many
    /// replacements) before it refuses more until the nonce is committed or dropped.
    static let maxReplacementsPerNonce = 8

    let config: MempoolConfig
    private(set) var entries: [Entry] = []
    private var byHash: Set<Data> = []
    /// Pending transactions per sender (the per-sender limit is checked on every admission:
    /// counting by scanning the whole pool made admission O(pool size)).
    private var perSender: [Data: Int] = [:]
    /// Hash of the pending transaction of each (sender, nonce): a second transaction with
    /// the same pair is refused before check-tx, naming the pending one.
    private var bySenderNonce: [SenderNonce: Data] = [:]

    struct SenderNonce: Hashable {
        let sender: Data
        let nonce: UInt64
    }
    private(set) var totalBytes = 0
    /// The versions each pending (sender, nonce) has had replaced here: refused if they come
    /// back. Kept while the nonce stays pending.
    private var replacedVersions: [SenderNonce: Set<Data>] = [:]
    /// A replacement's rebuild took t: none more until `t · replacementPause` has passed.
    var replacementPause = 9
    private var replacementsPausedUntil: ContinuousClock.Instant?
    /// Transactions the last replacement evicted (they relied on the replaced version).
    private(set) var lastReplacementEvictions = 0

    init(config: MempoolConfig) { self.config = config }

    var count: Int { entries.count }
    func contains(_ hash: Data) -> Bool { byHash.contains(hash) }

    /// Admits `bytes` if check-tx accepts it and the limits allow.
    ///
    /// Every limit is decided before check-tx runs: check-tx of a valid transaction changes
    /// the check state (it consumes the sender's nonce), so a transaction refused after it
    /// would leave a trace there until the next commit — the sender's next nonce taken by a
    /// transaction that is nowhere. The sender and nonce for those decisions are read from
    /// the bytes; a transaction that does not decode fails check-tx anyway.
    ///
    /// `exemptFromLimits`: the node's own duty transactions (its validator's checkpoint
    /// signature, one per epoch) are admitted past the count, byte and per-sender limits, so
    /// a pool filled by others cannot keep them out.
    mutating func add(_ bytes: Data, exemptFromLimits: Bool = false, checks: some MempoolChecks,
                      now: ContinuousClock.Instant = .now) -> (Admission, CheckTxResult?) {
        let hash = Transaction.hash(of: bytes)
        if byHash.contains(hash) { return (.duplicate, nil) }
        let tx = try? Transaction(decoding: bytes)
        if let tx {
            let slot = SenderNonce(sender: tx.sender, nonce: tx.nonce)
            if let pending = bySenderNonce[slot] {
                return replace(pending, with: bytes, hash: hash, slot: slot, exemptFromLimits: exemptFromLimits, checks: checks, now: now)
            }
        }
        if !exemptFromLimits {
            guard entries.count < config.maxTransactions, totalBytes + bytes.count <= config.maxBytes else {
                return (.rejected("mempool is full"), nil)
            }
            if let sender = tx?.sender, perSender[sender, default: 0] >= config.maxPerSender {
                return (.rejected("too many pending transactions from this sender"), nil)
            }
        }
        guard let result = checks.checkTx(bytes) else { return (.rejected("check-tx failed"), nil) }
        guard result.result.isOK else { return (.rejected(result.result.log), result) }
        insert(Entry(hash: hash, bytes: bytes, sender: result.sender, nonce: result.nonce))
        return (.added, result)
    }

    /// `bytes` in place of the pending transaction `previous` of the same sender and nonce
    /// (see the type's notes for the rules).
    private mutating func replace(_ previous: Data, with bytes: Data, hash: Data, slot: SenderNonce, exemptFromLimits: Bool,
                                  checks: some MempoolChecks, now: ContinuousClock.Instant) -> (Admission, CheckTxResult?) {
        let nonce = slot.nonce
        if replacedVersions[slot]?.contains(hash) == true {
            return (.rejected("this version of nonce \(nonce) was replaced here (now pending: transaction \(previous.hexString)); "
                + "a replaced version is not taken back"), nil)
        }
        let replacements = replacedVersions[slot]?.count ?? 0
        guard replacements < Self.maxReplacementsPerNonce else {
            return (.rejected("nonce \(nonce) of this sender was replaced \(replacements) times while pending; no more "
                + "replacements of it are taken until it is committed"), nil)
        }
        if let until = replacementsPausedUntil, now < until {
            let ms = max(1, Int((until - now) / .milliseconds(1)))
            return (.rejected("replacements are paused for \(ms) ms (each one re-checks the whole pool); send it again then"), nil)
        }
        guard let index = entries.firstIndex(where: { $0.hash == previous }) else {
            return (.rejected("nonce \(nonce) is pending as transaction \(previous.hexString), which is not in the pool"), nil)
        }
        if !exemptFromLimits, totalBytes - entries[index].bytes.count + bytes.count > config.maxBytes {
            return (.rejected("mempool is full"), nil)
        }
        // A forged replacement must cost no more than any forged transaction: a signature check.
        guard let stateless = checks.checkStateless(bytes) else { return (.rejected("check-tx failed"), nil) }
        guard stateless.result.isOK else { return (.rejected(stateless.result.log), stateless) }

        let started = ContinuousClock.now
        checks.resetCheckState()
        let old = entries
        clearIndexes()
        var outcome: (Admission, CheckTxResult?) = (.rejected("check-tx failed"), nil)
        var evicted = 0
        for (i, e) in old.enumerated() {
            if i == index {
                let r = checks.checkTx(bytes)
                if let r, r.result.isOK {
                    insert(Entry(hash: hash, bytes: bytes, sender: r.sender, nonce: r.nonce))
                    replacedVersions[slot, default: []].insert(previous)
                    outcome = (.replaced(previous: previous), r)
                    continue
                }
                // Refused where the pending one stood: it stays, and so does all that follows.
                outcome = (.rejected(r?.result.log ?? "check-tx failed"), r)
            }
            if let r = checks.checkTx(e.bytes), r.result.isOK { insert(e) } else { evicted += 1 }
        }
        lastReplacementEvictions = evicted
        replacementsPausedUntil = now + (ContinuousClock.now - started) * replacementPause
        return outcome
    }

    private mutating func clearIndexes() {
        entries = []
        byHash = []
        perSender = [:]
        bySenderNonce = [:]
        totalBytes = 0
    }

    private mutating func insert(_ e: Entry) {
        entries.append(e)
        index(e)
        if let s = e.sender { perSender[s, default: 0] += 1 }
    }

    private mutating func index(_ e: Entry) {
        byHash.insert(e.hash)
        totalBytes += e.bytes.count
        if let s = e.sender, let n = e.nonce { bySenderNonce[SenderNonce(sender: s, nonce: n)] = e.hash }
    }

    /// After a commit: drops the included transactions, then re-runs check-tx on the rest in
    /// order (the application reset its check state) and evicts those that became invalid.
    /// Returns how many were evicted.
    @discardableResult
    mutating func update(committed: [Data], checks: some MempoolChecks) -> Int {
        let included = Set(committed.map { Transaction.hash(of: $0) })
        let old = entries
        clearIndexes()
        var evicted = 0
        for e in old where !included.contains(e.hash) {
            if let r = checks.checkTx(e.bytes), r.result.isOK {
                insert(e)
            } else {
                evicted += 1
            }
        }
        // A committed or dropped nonce needs no memory of its replaced versions: the chain
        // refuses them now by their nonce.
        replacedVersions = replacedVersions.filter { bySenderNonce[$0.key] != nil }
        return evicted
    }

    /// The nonces of `sender`'s pending transactions.
    func nonces(of sender: Data) -> [UInt64] {
        guard perSender[sender] != nil else { return [] }
        return entries.compactMap { $0.sender == sender ? $0.nonce : nil }
    }

    /// Transactions for a proposal, oldest first, at most `limit`.
    func candidates(limit: Int = .max) -> [Data] { entries.prefix(max(0, limit)).map(\.bytes) }
}
