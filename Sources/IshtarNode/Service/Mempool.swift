import Foundation
import IshtarChain

/// Pending transactions in arrival order, with size and per-sender limits.
///
/// Admission runs the application's check-tx (against its check state: committed state
/// plus admitted transactions). A transaction with the same sender and nonce as a pending
/// one replaces it, in its place, when it is otherwise valid: the check state already
/// consumed that nonce, so a replacement is accepted when check-tx passes or fails *only*
/// with the accounts nonce-mismatch rule (signature and stateless rules passed before the
/// nonce check); the recheck after the next commit then validates it fully and evicts it if
/// invalid. A replacement needs no free slot, even in a full pool.
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
    ///
    /// Every limit is decided before check-tx runs: check-tx of a valid transaction changes
    /// the check state (it consumes the sender's nonce), so a transaction refused after it
    /// would leave a trace there until the next commit — the sender's next nonce taken by a
    /// transaction that is nowhere. The sender and nonce for those decisions are read from
    /// the bytes; a transaction that does not decode fails check-tx anyway.
    mutating func add(_ bytes: Data, check: (Data) -> CheckTxResult?) -> (Admission, CheckTxResult?) {
        let hash = Transaction.hash(of: bytes)
        if byHash.contains(hash) { return (.duplicate, nil) }
        let tx = try? Transaction(decoding: bytes)
        // A pending transaction with the same sender and nonce: this one would take its place
        // (so it needs no free slot, and only its extra bytes count against the byte limit).
        let slot = tx.flatMap { tx in
            bySenderNonce[SenderNonce(sender: tx.sender, nonce: tx.nonce)].flatMap { pending in
                entries.firstIndex { $0.hash == pending }
            }
        }
        if let i = slot {
            guard totalBytes - entries[i].bytes.count + bytes.count <= config.maxBytes else {
                return (.rejected("mempool is full"), nil)
            }
        } else {
            guard entries.count < config.maxTransactions, totalBytes + bytes.count <= config.maxBytes else {
                return (.rejected("mempool is full"), nil)
            }
            if let sender = tx?.sender, perSender[sender, default: 0] >= config.maxPerSender {
                return (.rejected("too many pending transactions from this sender"), nil)
            }
        }
        guard let result = check(bytes) else { return (.rejected("check-tx failed"), nil) }
        if let i = slot, let tx {
            // The check state already consumed this nonce (for the pending transaction), so a
            // replacement passes when check-tx fails *only* on the nonce: the signature and the
            // stateless rules were checked before it.
            let nonceOnly = result.result.codespace == "accounts" && result.result.rule == "nonce-mismatch"
            guard result.result.isOK || nonceOnly else { return (.rejected(result.result.log), result) }
            replace(at: i, with: Entry(hash: hash, bytes: bytes, sender: tx.sender, nonce: tx.nonce))
            var ok = result
            ok.result = .ok()
            return (.replaced, ok)
        }
        guard result.result.isOK else { return (.rejected(result.result.log), result) }
        insert(Entry(hash: hash, bytes: bytes, sender: result.sender, nonce: result.nonce))
        return (.added, result)
    }

    private mutating func insert(_ e: Entry) {
        entries.append(e)
        index(e)
        if let s = e.sender { perSender[s, default: 0] += 1 }
    }

    /// `e` takes the place of the transaction at `i` (same sender and nonce): in its position,
    /// so a sender's transactions stay in nonce order for proposals and for the recheck —
    /// appended, it would follow the sender's later nonces and fail behind them.
    private mutating func replace(at i: Int, with e: Entry) {
        unindex(entries[i])
        entries[i] = e
        index(e)
    }

    private mutating func index(_ e: Entry) {
        byHash.insert(e.hash)
        totalBytes += e.bytes.count
        if let s = e.sender, let n = e.nonce { bySenderNonce[SenderNonce(sender: s, nonce: n)] = e.hash }
    }

    private mutating func unindex(_ e: Entry) {
        byHash.remove(e.hash)
        totalBytes -= e.bytes.count
        if let s = e.sender, let n = e.nonce { bySenderNonce[SenderNonce(sender: s, nonce: n)] = nil }
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

    /// The nonces of `sender`'s pending transactions.
    func nonces(of sender: Data) -> [UInt64] {
        guard perSender[sender] != nil else { return [] }
        return entries.compactMap { $0.sender == sender ? $0.nonce : nil }
    }

    /// Transactions for a proposal, oldest first, at most `limit`.
    func candidates(limit: Int = .max) -> [Data] { entries.prefix(max(0, limit)).map(\.bytes) }
}
