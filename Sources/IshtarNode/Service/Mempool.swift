import Foundation
import IshtarChain

/// Pending transactions in arrival order, with size and per-sender limits.
///
/// Admission runs the application's check-tx (against its check state: committed state
/// plus admitted transactions). A transaction with the sender and nonce of a pending one is
/// refused, not swapped in: check-tx ran the pending one's messages against the check state,
/// and a swap would keep their effects there while the pool holds other messages (a header
/// or signature that will never commit refusing everyone else's copy until the next block),
/// and would let anyone who saw the first version swap it back, re-gossiped every time.
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
        case duplicate
        case rejected(String)
    }

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
    mutating func add(_ bytes: Data, exemptFromLimits: Bool = false, check: (Data) -> CheckTxResult?) -> (Admission, CheckTxResult?) {
        let hash = Transaction.hash(of: bytes)
        if byHash.contains(hash) { return (.duplicate, nil) }
        let tx = try? Transaction(decoding: bytes)
        if let tx, let pending = bySenderNonce[SenderNonce(sender: tx.sender, nonce: tx.nonce)] {
            return (.rejected("nonce \(tx.nonce) of this sender is already pending as transaction \(pending.hexString); "
                + "a pending transaction is not replaced — use the next nonce, or wait for the next block"), nil)
        }
        if !exemptFromLimits {
            guard entries.count < config.maxTransactions, totalBytes + bytes.count <= config.maxBytes else {
                return (.rejected("mempool is full"), nil)
            }
            if let sender = tx?.sender, perSender[sender, default: 0] >= config.maxPerSender {
                return (.rejected("too many pending transactions from this sender"), nil)
            }
        }
        guard let result = check(bytes) else { return (.rejected("check-tx failed"), nil) }
        guard result.result.isOK else { return (.rejected(result.result.log), result) }
        insert(Entry(hash: hash, bytes: bytes, sender: result.sender, nonce: result.nonce))
        return (.added, result)
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
