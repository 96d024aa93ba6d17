import Foundation

/// The outcome of one transaction (ABCI `ExecTxResult`-shaped): code 0 is success;
/// otherwise `codespace`/`code`/`rule` name the rule that failed and `log` says why.
public struct TxResult: Hashable, Sendable, BinaryCodable {
    /// 0 on success.
    public var code: UInt32
    /// Domain of the failed rule (empty on success).
    public var codespace: String
    /// Name of the failed rule (empty on success).
    public var rule: String
    /// Human-readable message (empty on success).
    public var log: String
    /// Events of a successful transaction (always empty for a failed one).
    public var events: [Event]

    /// Success with `events`.
    public static func ok(events: [Event] = []) -> TxResult {
        TxResult(code: 0, codespace: "", rule: "", log: "", events: events)
    }

    /// Failure with the broken rule.
    public init(violation: RuleViolation) {
        self.init(code: violation.code, codespace: violation.codespace, rule: violation.rule, log: violation.message, events: [])
    }

    init(code: UInt32, codespace: String, rule: String, log: String, events: [Event]) {
        self.code = code
        self.codespace = codespace
        self.rule = rule
        self.log = log
        self.events = events
    }

    /// Whether the transaction succeeded.
    public var isOK: Bool { code == 0 }

    /// The broken rule, `nil` on success.
    public var violation: RuleViolation? {
        isOK ? nil : RuleViolation(codespace: codespace, code: code, rule: rule, message: log)
    }

    /// `u32 code ‖ str codespace ‖ str rule ‖ str log ‖ events`.
    public func encode(to w: inout BinaryWriter) {
        w.u32(code)
        w.string(codespace)
        w.string(rule)
        w.string(log)
        events.encode(to: &w)
    }

    /// Inverse of ``encode(to:)``.
    public init(from r: inout BinaryReader) throws(CodecError) {
        code = try r.u32("code")
        codespace = try r.string("codespace")
        rule = try r.string("rule")
        log = try r.string("log")
        events = try [Event](from: &r, field: "events")
    }
}

/// The answer of `checkTx`: the result, plus what a mempool needs to order transactions.
public struct CheckTxResult: Hashable, Sendable {
    /// Success or the broken rule.
    public var result: TxResult
    /// SHA-256 of the transaction bytes.
    public var hash: Data
    /// The sender, if the transaction decoded.
    public var sender: Data?
    /// The nonce, if the transaction decoded.
    public var nonce: UInt64?

    /// A result from its parts (a node answers with one when it refuses a transaction before
    /// check-tx runs, e.g. a full mempool).
    public init(result: TxResult, hash: Data, sender: Data? = nil, nonce: UInt64? = nil) {
        self.result = result
        self.hash = hash
        self.sender = sender
        self.nonce = nonce
    }
}

/// The outcome of `finalizeBlock` (ABCI `ResponseFinalizeBlock`-shaped).
public struct FinalizeResult: Hashable, Sendable {
    /// The block's height.
    public var height: UInt64
    /// The block's hash.
    public var blockHash: Data
    /// One result per transaction, in block order.
    public var txResults: [TxResult]
    /// Block-level events: begin-block hooks' then end-block hooks'.
    public var events: [Event]
    /// The app hash after this block; the next block's header must carry it.
    public var appHash: Data
    /// Validator-set changes for the consensus engine: always empty (the set is
    /// governance-free, from genesis).
    public var validatorUpdates: [ChainValidator]
}

/// What `commit` made durable.
public struct CommitResult: Hashable, Sendable {
    /// The committed height.
    public var height: UInt64
    /// The app hash after it.
    public var appHash: Data
    /// The committed block's hash.
    public var blockHash: Data
}

/// The stored results of one block (`/blocks/<h>/results`).
public struct BlockResults: Hashable, Sendable, BinaryCodable {
    /// One per transaction.
    public var txResults: [TxResult]
    /// Block-level events.
    public var events: [Event]
    /// The app hash after the block.
    public var appHash: Data

    /// `u32 count ‖ results ‖ events ‖ appHash(32)`.
    public func encode(to w: inout BinaryWriter) {
        w.count(txResults.count)
        for r in txResults { r.encode(to: &w) }
        events.encode(to: &w)
        w.fixed(appHash)
    }

    /// Inverse of ``encode(to:)``.
    public init(from r: inout BinaryReader) throws(CodecError) {
        let n = try r.count("tx results", minElementSize: 20)
        var results: [TxResult] = []
        for _ in 0..<n { results.append(try TxResult(from: &r)) }
        txResults = results
        events = try [Event](from: &r, field: "events")
        appHash = try r.fixed(32, "app hash")
    }

    init(txResults: [TxResult], events: [Event], appHash: Data) {
        self.txResults = txResults
        self.events = events
        self.appHash = appHash
    }
}

/// Where a transaction was included and what it did (`/tx/<hash>`).
public struct TxRecord: Hashable, Sendable, BinaryCodable {
    /// Block height.
    public var height: UInt64
    /// Position in the block.
    public var index: UInt32
    /// Its result.
    public var result: TxResult

    /// `u64 height ‖ u32 index ‖ result`.
    public func encode(to w: inout BinaryWriter) {
        w.u64(height)
        w.u32(index)
        result.encode(to: &w)
    }

    /// Inverse of ``encode(to:)``.
    public init(from r: inout BinaryReader) throws(CodecError) {
        height = try r.u64("height")
        index = try r.u32("index")
        result = try TxResult(from: &r)
    }

    init(height: UInt64, index: UInt32, result: TxResult) {
        self.height = height
        self.index = index
        self.result = result
    }
}

/// A transaction index entry: where the transaction was included and where its result lies
/// in that block's stored results (which hold the only copy of the result).
struct TxLocation: Hashable, Sendable, BinaryCodable {
    /// Block height.
    var height: UInt64
    /// Position in the block.
    var index: UInt32
    /// Byte offset of the encoded result within the block's encoded ``BlockResults``.
    var resultOffset: UInt32
    /// Its encoded length.
    var resultLength: UInt32

    /// `u64 height ‖ u32 index ‖ u32 offset ‖ u32 length`.
    func encode(to w: inout BinaryWriter) { withEncoded { w.fixed($0) } }

    /// `body` given the encoding (``encode(to:)``) in a buffer on the stack: a block's commit
    /// writes one entry per transaction, and a writer and a `Data` each was two allocations.
    func withEncoded<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        withUnsafeTemporaryAllocation(byteCount: 20, alignment: 8) { buffer in
            buffer.storeBytes(of: height.bigEndian, toByteOffset: 0, as: UInt64.self)
            buffer.storeBytes(of: index.bigEndian, toByteOffset: 8, as: UInt32.self)
            buffer.storeBytes(of: resultOffset.bigEndian, toByteOffset: 12, as: UInt32.self)
            buffer.storeBytes(of: resultLength.bigEndian, toByteOffset: 16, as: UInt32.self)
            return body(UnsafeRawBufferPointer(buffer))
        }
    }

    /// Inverse of ``encode(to:)``.
    init(from r: inout BinaryReader) throws(CodecError) {
        height = try r.u64("height")
        index = try r.u32("index")
        resultOffset = try r.u32("result offset")
        resultLength = try r.u32("result length")
    }

    init(height: UInt64, index: UInt32, resultOffset: UInt32, resultLength: UInt32) {
        self.height = height
        self.index = index
        self.resultOffset = resultOffset
        self.resultLength = resultLength
    }
}

/// `processProposal`'s verdict.
public enum ProposalVerdict: Equatable, Sendable {
    /// Vote for the block.
    case accept
    /// Do not vote for it, because of this rule.
    case reject(BlockError)
}

/// Input of `prepareProposal` (ABCI `RequestPrepareProposal`-shaped).
public struct PrepareProposalRequest: Hashable, Sendable {
    /// Candidate transactions from the mempool, in priority order.
    public var transactions: [Data]
    /// Budget for the transactions' encoded size in the block, each counted with its
    /// 4-byte length prefix (the node subtracts the header's size from `max_block_bytes`).
    public var maxTxBytes: Int
    /// Height of the block being built.
    public var height: UInt64
    /// Its time, ms since the epoch.
    public var time: UInt64
    /// Its proposer.
    public var proposer: Data

    /// A request from its parts.
    public init(transactions: [Data], maxTxBytes: Int, height: UInt64, time: UInt64, proposer: Data) {
        self.transactions = transactions
        self.maxTxBytes = maxTxBytes
        self.height = height
        self.time = time
        self.proposer = proposer
    }
}

/// A query answer (ABCI `ResponseQuery`-shaped).
public struct QueryResult: Hashable, Sendable {
    /// 0 on success.
    public var code: UInt32
    /// Domain of the failed rule.
    public var codespace: String
    /// Why it failed.
    public var log: String
    /// The answer (module-defined; built-in modules answer canonical JSON).
    public var value: Data
    /// The committed height the answer reflects.
    public var height: UInt64

    /// An answer from its parts (a node answers with one when the query cannot reach the app).
    public init(code: UInt32, codespace: String, log: String, value: Data, height: UInt64) {
        self.code = code
        self.codespace = codespace
        self.log = log
        self.value = value
        self.height = height
    }

    /// Whether the query succeeded.
    public var isOK: Bool { code == 0 }
}

/// The application's durable bookkeeping, stored in the meta column family.
struct AppMeta: Hashable, Sendable, BinaryCodable {
    /// The state and block-store layout. 2: the tx index points into the block's results;
    /// finality lists its tallied chains in one key. 3: checkpoints keep an "active" marker
    /// key; finality's active-set cache names the power table by its height.
    static let version: UInt8 = 3
    var chainID: String
    var initialHeight: UInt64
    var lastHeight: UInt64
    var lastBlockHash: Data
    var lastAppHash: Data
    var lastBlockTime: UInt64

    init(chainID: String, initialHeight: UInt64, lastHeight: UInt64, lastBlockHash: Data, lastAppHash: Data,
         lastBlockTime: UInt64) {
        self.chainID = chainID
        self.initialHeight = initialHeight
        self.lastHeight = lastHeight
        self.lastBlockHash = lastBlockHash
        self.lastAppHash = lastAppHash
        self.lastBlockTime = lastBlockTime
    }

    func encode(to w: inout BinaryWriter) {
        w.u8(Self.version)
        w.string(chainID)
        w.u64(initialHeight)
        w.u64(lastHeight)
        w.fixed(lastBlockHash)
        w.fixed(lastAppHash)
        w.u64(lastBlockTime)
    }

    init(from r: inout BinaryReader) throws(CodecError) {
        let v = try r.u8("meta version")
        guard v == Self.version else { throw .unknownVersion(field: "meta version", value: v) }
        chainID = try r.string("chain id")
        initialHeight = try r.u64("initial height")
        lastHeight = try r.u64("last height")
        lastBlockHash = try r.fixed(32, "last block hash")
        lastAppHash = try r.fixed(32, "last app hash")
        lastBlockTime = try r.u64("last block time")
    }

    var tip: ChainTip {
        ChainTip(chainID: chainID, initialHeight: initialHeight, lastHeight: lastHeight, lastBlockHash: lastBlockHash,
                 lastAppHash: lastAppHash, lastBlockTime: lastBlockTime)
    }
}
