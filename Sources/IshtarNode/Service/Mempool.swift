import Foundation
import IshtarChain

/// Pending transactions in arrival order, with size and per-sender limits.
///
/// Admission runs the application's check-tx (against its check state: committed state
/// plus admitted transactions). A transaction with the same sender and nonce as a pending
/// one replaces it when it is otherwise valid: the check state already consumed that nonce,
/// so a replacement is accepted when check-tx passes or fails *only* with the accounts
/// nonce-mismatch rule (signature and stateless rules passed before the nonce check); the
/// recheck after the next commit then validates it fully and evicts it if invalid.
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
        case replaced
        case duplicate
        case rejected(String)
    }

    let config: MempoolConfig
    private(set) var entries: [Entry] = []
    private var byHash: Set<Data> = []
    /// Pending transactions per sender (the per-sender limit is checked on every admission:
    /// counting by scanning the whole pool made admission O(pool size)).
    private var perSender: [Data: Int] = [:]
    /// Hash of the pending transaction of each (sender, nonce), for replacement by nonce
    /// without scanning the pool.
    private var bySenderNonce: [SenderNonce: Data] = [:]

    struct SenderNonce: Hashable {
        let sender: Data
        let nonce: UInt64
    }
    private(set) var totalBytes = 0

    init(config: MempoolConfig) { self.config = config }

    var count: Int { entries.count }
    func contains(_ hash: Data) -> Bool { byHash.contains(hash) }

    /// Admits `bytes` if check-tx accepts it and the limits allow.
    mutating func add(_ bytes: Data, check: (Data) -> CheckTxResult?) -> (Admission, CheckTxResult?) {
        let hash = Transaction.hash(of: bytes)
        if byHash.contains(hash) { return (.duplicate, nil) }
        guard entries.count < config.maxTransactions, totalBytes + bytes.count <= config.maxBytes else {
            return (.rejected("mempool is full"), nil)
        }
        guard let result = check(bytes) else { return (.rejected("check-tx failed"), nil) }
        if !result.result.isOK {
            // Replacement by nonce: same sender+nonce pending, and only the nonce was wrong.
            if result.result.codespace == "accounts", result.result.rule == "nonce-mismatch",
                let s = result.sender, let n = result.nonce,
                let pendingHash = bySenderNonce[SenderNonce(sender: s, nonce: n)],
                let i = entries.firstIndex(where: { $0.hash == pendingHash })
            {
                remove(at: i)
                insert(Entry(hash: hash, bytes: bytes, sender: s, nonce: n))
                var ok = result
                ok.result = .ok()
                return (.replaced, ok)
            }
            return (.rejected(result.result.log), result)
        }
        if let s = result.sender, perSender[s, default: 0] >= config.maxPerSender {
            return (.rejected("too many pending transactions from this sender"), result)
        }
        insert(Entry(hash: hash, bytes: bytes, sender: result.sender, nonce: result.nonce))
        return (.added, result)
    }

    private mutating func insert(_ e: Entry) {
        entries.append(e)
        byHash.insert(e.hash)
        totalBytes += e.bytes.count
        if let s = e.sender {
            perSender[s, default: 0] += 1
            if let n = e.nonce { bySenderNonce[SenderNonce(sender: s, nonce: n)] = e.hash }
        }
    }

    private mutating func remove(at i: Int) {
        let e = entries.remove(at: i)
        byHash.remove(e.hash)
        totalBytes -= e.bytes.count
        if let s = e.sender {
            let n = perSender[s, default: 0] - 1
            perSender[s] = n > 0 ? n : nil
            if let nonce = e.nonce { bySenderNonce[SenderNonce(sender: s, nonce: nonce)] = nil }
        }
    }

    /// After a commit: drops the included transactions, then re-runs check-tx on the rest in
    /// order (the application reset its check state) and evicts those that became invalid.
    /// Returns how many were evicted.
    @discardableResult
    mutating func update(committed: [Data], recheck: (Data) -> CheckTxResult?) -> Int {
        let included = Set(committed.map { Transaction.hash(of: $0) })
        let old = entries
        entries = []
        byHash = []
        perSender = [:]
        bySenderNonce = [:]
        totalBytes = 0
        var evicted = 0
        for e in old where !included.contains(e.hash) {
            if let r = recheck(e.bytes), r.result.isOK {
                insert(e)
            } else {
                evicted += 1
            }
        }
        return evicted
    }

    /// Transactions for a proposal, oldest first, at most `limit`.
    func candidates(limit: Int = .max) -> [Data] { entries.prefix(max(0, limit)).map(\.bytes) }
}
