import Foundation

// Typed results of bitcoind RPCs. Amounts are Int64 satoshis (exact, see
// `BitcoinAmount`); fee rates are satoshis per 1000 virtual bytes (sat/kvB, i.e.
// bitcoind's BTC/kvB × 10^8). Hashes and txids are display-order hex strings.
// Fields that bitcoind omits in some versions or situations are optional.

/// Result of `getblockchaininfo`.
public struct BlockchainInfo: Sendable, Hashable {
    /// `main`, `test`, `testnet4`, `signet` or `regtest`.
    public var chain: String
    /// Height of the active tip (number of blocks after genesis).
    public var blocks: Int
    /// Height of the best known header.
    public var headers: Int
    /// Hash of the active tip.
    public var bestBlockHash: String
    /// Current difficulty.
    public var difficulty: Double
    /// Tip block time (UNIX seconds); absent before bitcoind v23.
    public var time: Int64?
    /// Median time past of the tip.
    public var medianTime: Int64
    /// Estimated verification progress, 0…1.
    public var verificationProgress: Double
    /// Whether the node is in initial block download.
    public var initialBlockDownload: Bool
    /// Total work of the active chain, hex.
    public var chainWork: String
    /// Block and undo files size on disk, if reported.
    public var sizeOnDisk: Int64?
    /// Whether the node is pruned.
    public var pruned: Bool
    /// Node warnings (a string before v28 is turned into a one-element array).
    public var warnings: [String]

    init(_ r: JSONReader) throws(BitcoinRPCError) {
        try r.requireObject()
        chain = try r["chain"].string()
        blocks = try r["blocks"].height()
        headers = try r["headers"].height()
        bestBlockHash = try r["bestblockhash"].string()
        difficulty = try r["difficulty"].double()
        time = try r["time"].optional { (r) throws(BitcoinRPCError) in try r.int64() }
        medianTime = try r["mediantime"].int64()
        verificationProgress = try r["verificationprogress"].double()
        initialBlockDownload = try r["initialblockdownload"].bool()
        chainWork = try r["chainwork"].string()
        sizeOnDisk = try r["size_on_disk"].optional { (r) throws(BitcoinRPCError) in try r.int64() }
        pruned = try r["pruned"].bool()
        warnings = try r["warnings"].warnings()
    }
}

/// Verbose `getblockheader` result; also the header part of `getblock`.
public struct BlockHeaderInfo: Sendable, Hashable {
    /// Block hash.
    public var hash: String
    /// Confirmations: 1 for the tip, −1 if the block is not on the active chain.
    public var confirmations: Int
    /// Height.
    public var height: Int
    /// nVersion.
    public var version: Int32
    /// nVersion as 8 hex digits.
    public var versionHex: String?
    /// Merkle root.
    public var merkleRoot: String
    /// Block time (UNIX seconds).
    public var time: Int64
    /// Median time past.
    public var medianTime: Int64
    /// nNonce.
    public var nonce: UInt32
    /// nBits as 8 hex digits.
    public var bits: String
    /// Difficulty.
    public var difficulty: Double
    /// Cumulative chain work up to this block, hex.
    public var chainWork: String
    /// Number of transactions in the block.
    public var transactionCount: Int
    /// Previous block hash (absent for genesis).
    public var previousBlockHash: String?
    /// Next block hash on the active chain (absent for the tip and off-chain blocks).
    public var nextBlockHash: String?

    init(_ r: JSONReader) throws(BitcoinRPCError) {
        try r.requireObject()
        hash = try r["hash"].string()
        confirmations = try r["confirmations"].int()
        height = try r["height"].height()
        let v = try r["version"].int64()
        // Signed in bitcoind; accept an unsigned rendering of the same 32 bits too.
        if let v32 = Int32(exactly: v) {
            version = v32
        } else if let u32 = UInt32(exactly: v) {
            version = Int32(bitPattern: u32)
        } else {
            throw r["version"].fail("out of range")
        }
        versionHex = try r["versionHex"].optional { (r) throws(BitcoinRPCError) in try r.string() }
        merkleRoot = try r["merkleroot"].string()
        time = try r["time"].int64()
        medianTime = try r["mediantime"].int64()
        guard let n = UInt32(exactly: try r["nonce"].int64()) else { throw r["nonce"].fail("out of range") }
        nonce = n
        bits = try r["bits"].string()
        difficulty = try r["difficulty"].double()
        chainWork = try r["chainwork"].string()
        transactionCount = try r["nTx"].int()
        previousBlockHash = try r["previousblockhash"].optional { (r) throws(BitcoinRPCError) in try r.string() }
        nextBlockHash = try r["nextblockhash"].optional { (r) throws(BitcoinRPCError) in try r.string() }
    }
}

/// `getblock` at verbosity 1: header fields, sizes and the txids.
public struct BlockInfo: Sendable, Hashable {
    /// The header fields (same as `getblockheader`).
    public var header: BlockHeaderInfo
    /// Serialized size including witness data.
    public var size: Int
    /// Serialized size without witness data.
    public var strippedSize: Int
    /// Block weight (BIP141).
    public var weight: Int
    /// Transaction ids in block order (coinbase first).
    public var txids: [String]

    init(_ r: JSONReader) throws(BitcoinRPCError) {
        header = try BlockHeaderInfo(r)
        size = try r["size"].int()
        strippedSize = try r["strippedsize"].int()
        weight = try r["weight"].int()
        txids = try r["tx"].strings()
    }
}

/// `getblock` at verbosity 2: header fields, sizes and decoded transactions
/// (each with its raw hex and, when undo data is available, its fee).
public struct BlockWithTransactions: Sendable, Hashable {
    /// The header fields (same as `getblockheader`).
    public var header: BlockHeaderInfo
    /// Serialized size including witness data.
    public var size: Int
    /// Serialized size without witness data.
    public var strippedSize: Int
    /// Block weight (BIP141).
    public var weight: Int
    /// Decoded transactions in block order (coinbase first).
    public var transactions: [DecodedTransaction]

    init(_ r: JSONReader) throws(BitcoinRPCError) {
        header = try BlockHeaderInfo(r)
        size = try r["size"].int()
        strippedSize = try r["strippedsize"].int()
        weight = try r["weight"].int()
        transactions = try r["tx"].map { (r) throws(BitcoinRPCError) in try DecodedTransaction(r) }
    }
}

/// A script as `{asm, hex}` (scriptSig).
public struct ScriptSig: Sendable, Hashable {
    /// Disassembly.
    public var asm: String
    /// Raw script, hex.
    public var hex: String

    init(_ r: JSONReader) throws(BitcoinRPCError) {
        try r.requireObject()
        asm = try r["asm"].string()
        hex = try r["hex"].string()
    }
}

/// An output script as bitcoind describes it.
public struct ScriptPubKey: Sendable, Hashable {
    /// Disassembly.
    public var asm: String
    /// Inferred output descriptor (v22+).
    public var descriptor: String?
    /// Raw script, hex.
    public var hex: String
    /// Address, for standard address types.
    public var address: String?
    /// Type: `witness_v0_keyhash`, `witness_v1_taproot`, `nulldata`, `nonstandard`, …
    public var type: String

    init(_ r: JSONReader) throws(BitcoinRPCError) {
        try r.requireObject()
        asm = try r["asm"].string()
        descriptor = try r["desc"].optional { (r) throws(BitcoinRPCError) in try r.string() }
        hex = try r["hex"].string()
        address = try r["address"].optional { (r) throws(BitcoinRPCError) in try r.string() }
        type = try r["type"].string()
    }
}

/// The coin spent by an input (`getblock` verbosity 3, `getrawtransaction` verbosity 2).
public struct PrevOut: Sendable, Hashable {
    /// Whether the coin was created by a coinbase.
    public var generated: Bool
    /// Height of the block that created it.
    public var height: Int
    /// Value in satoshis.
    public var value: Int64
    /// Its output script.
    public var scriptPubKey: ScriptPubKey

    init(_ r: JSONReader) throws(BitcoinRPCError) {
        try r.requireObject()
        generated = try r["generated"].bool()
        height = try r["height"].height()
        value = try r["value"].sats()
        scriptPubKey = try ScriptPubKey(r["scriptPubKey"])
    }
}

/// A transaction input.
public struct TransactionInput: Sendable, Hashable {
    /// Coinbase data, hex (coinbase inputs only; then `txid`/`vout` are nil).
    public var coinbase: String?
    /// Spent transaction id.
    public var txid: String?
    /// Spent output index.
    public var vout: UInt32?
    /// scriptSig (absent for coinbase inputs).
    public var scriptSig: ScriptSig?
    /// Witness stack items, hex (empty if none).
    public var witness: [String]
    /// The spent coin, when the server reports it.
    public var prevout: PrevOut?
    /// nSequence.
    public var sequence: UInt32

    init(_ r: JSONReader) throws(BitcoinRPCError) {
        try r.requireObject()
        coinbase = try r["coinbase"].optional { (r) throws(BitcoinRPCError) in try r.string() }
        txid = try r["txid"].optional { (r) throws(BitcoinRPCError) in try r.string() }
        vout = try r["vout"].optional { (r) throws(BitcoinRPCError) in
            guard let v = UInt32(exactly: try r.int64()) else { throw r.fail("out of range") }
            return v
        }
        scriptSig = try r["scriptSig"].optional { (r) throws(BitcoinRPCError) in try ScriptSig(r) }
        witness = try r["txinwitness"].optional { (r) throws(BitcoinRPCError) in try r.strings() } ?? []
        prevout = try r["prevout"].optional { (r) throws(BitcoinRPCError) in try PrevOut(r) }
        guard let s = UInt32(exactly: try r["sequence"].int64()) else { throw r["sequence"].fail("out of range") }
        sequence = s
        if coinbase == nil, txid == nil || vout == nil {
            throw r.fail("input has neither coinbase nor txid/vout")
        }
    }
}

/// A transaction output.
public struct TransactionOutput: Sendable, Hashable {
    /// Value in satoshis (exact).
    public var value: Int64
    /// Output index.
    public var n: Int
    /// Output script.
    public var scriptPubKey: ScriptPubKey

    init(_ r: JSONReader) throws(BitcoinRPCError) {
        try r.requireObject()
        value = try r["value"].sats()
        n = try r["n"].int()
        scriptPubKey = try ScriptPubKey(r["scriptPubKey"])
    }
}

/// A decoded transaction (`getblock` verbosity 2 element, verbose `getrawtransaction`).
public struct DecodedTransaction: Sendable, Hashable {
    /// Transaction id.
    public var txid: String
    /// Witness transaction id (bitcoind's `hash`).
    public var wtxid: String
    /// nVersion.
    public var version: Int64
    /// Serialized size.
    public var size: Int
    /// Virtual size.
    public var vsize: Int
    /// Weight.
    public var weight: Int
    /// nLockTime.
    public var lockTime: UInt32
    /// Inputs.
    public var inputs: [TransactionInput]
    /// Outputs.
    public var outputs: [TransactionOutput]
    /// Raw serialized transaction, hex (present in `getblock` verbosity ≥ 2 and verbose `getrawtransaction`).
    public var hex: String?
    /// Fee in satoshis, when the server knows the spent coins (not for coinbases).
    public var fee: Int64?
    /// Containing block (verbose `getrawtransaction` of a confirmed tx).
    public var blockHash: String?
    /// Confirmations (verbose `getrawtransaction`; 0 if the block is not on the active chain).
    public var confirmations: Int?
    /// Block time (verbose `getrawtransaction`).
    public var blockTime: Int64?
    /// Whether `blockHash` is on the active chain (only when a blockhash was passed).
    public var inActiveChain: Bool?

    init(_ r: JSONReader) throws(BitcoinRPCError) {
        try r.requireObject()
        txid = try r["txid"].string()
        wtxid = try r["hash"].string()
        version = try r["version"].int64()
        size = try r["size"].int()
        vsize = try r["vsize"].int()
        weight = try r["weight"].int()
        guard let lt = UInt32(exactly: try r["locktime"].int64()) else { throw r["locktime"].fail("out of range") }
        lockTime = lt
        inputs = try r["vin"].map { (r) throws(BitcoinRPCError) in try TransactionInput(r) }
        outputs = try r["vout"].map { (r) throws(BitcoinRPCError) in try TransactionOutput(r) }
        hex = try r["hex"].optional { (r) throws(BitcoinRPCError) in try r.string() }
        fee = try r["fee"].optional { (r) throws(BitcoinRPCError) in try r.sats() }
        blockHash = try r["blockhash"].optional { (r) throws(BitcoinRPCError) in try r.string() }
        confirmations = try r["confirmations"].optional { (r) throws(BitcoinRPCError) in try r.int() }
        blockTime = try r["blocktime"].optional { (r) throws(BitcoinRPCError) in try r.int64() }
        inActiveChain = try r["in_active_chain"].optional { (r) throws(BitcoinRPCError) in try r.bool() }
    }
}

/// Result of `gettxout` for an unspent output.
public struct TxOutInfo: Sendable, Hashable {
    /// Tip hash at the time of the query.
    public var bestBlock: String
    /// Confirmations (0 for a mempool output).
    public var confirmations: Int
    /// Value in satoshis.
    public var value: Int64
    /// Output script.
    public var scriptPubKey: ScriptPubKey
    /// Whether it was created by a coinbase.
    public var coinbase: Bool

    init(_ r: JSONReader) throws(BitcoinRPCError) {
        try r.requireObject()
        bestBlock = try r["bestblock"].string()
        confirmations = try r["confirmations"].height()
        value = try r["value"].sats()
        scriptPubKey = try ScriptPubKey(r["scriptPubKey"])
        coinbase = try r["coinbase"].bool()
    }
}

/// A mempool entry (`getmempoolentry`, verbose `getrawmempool`).
public struct MempoolEntry: Sendable, Hashable {
    /// Virtual size.
    public var vsize: Int
    /// Weight.
    public var weight: Int?
    /// Entry time (UNIX seconds).
    public var time: Int64
    /// Chain height when it entered.
    public var height: Int
    /// Descendant count including itself.
    public var descendantCount: Int
    /// Descendant vsize including itself.
    public var descendantSize: Int
    /// Ancestor count including itself.
    public var ancestorCount: Int
    /// Ancestor vsize including itself.
    public var ancestorSize: Int
    /// Witness txid.
    public var wtxid: String
    /// Base fee, sats.
    public var baseFee: Int64
    /// Modified fee (with prioritisation), sats.
    public var modifiedFee: Int64
    /// Modified fees of ancestors incl. itself, sats.
    public var ancestorFees: Int64
    /// Modified fees of descendants incl. itself, sats.
    public var descendantFees: Int64
    /// Unconfirmed parents (txids).
    public var depends: [String]
    /// Unconfirmed children (txids).
    public var spentBy: [String]
    /// BIP125 signalling (absent in bitcoind v29+ style output).
    public var bip125Replaceable: Bool?
    /// Not yet broadcast.
    public var unbroadcast: Bool?

    init(_ r: JSONReader) throws(BitcoinRPCError) {
        try r.requireObject()
        vsize = try r["vsize"].int()
        weight = try r["weight"].optional { (r) throws(BitcoinRPCError) in try r.int() }
        time = try r["time"].int64()
        height = try r["height"].height()
        descendantCount = try r["descendantcount"].int()
        descendantSize = try r["descendantsize"].int()
        ancestorCount = try r["ancestorcount"].int()
        ancestorSize = try r["ancestorsize"].int()
        wtxid = try r["wtxid"].string()
        let fees = r["fees"]
        try fees.requireObject()
        baseFee = try fees["base"].sats()
        modifiedFee = try fees["modified"].sats()
        ancestorFees = try fees["ancestor"].sats()
        descendantFees = try fees["descendant"].sats()
        depends = try r["depends"].strings()
        spentBy = try r["spentby"].strings()
        bip125Replaceable = try r["bip125-replaceable"].optional { (r) throws(BitcoinRPCError) in try r.bool() }
        unbroadcast = try r["unbroadcast"].optional { (r) throws(BitcoinRPCError) in try r.bool() }
    }
}

/// One element of `testmempoolaccept`'s result.
public struct MempoolAcceptResult: Sendable, Hashable {
    /// Transaction id.
    public var txid: String
    /// Witness transaction id.
    public var wtxid: String?
    /// Package-level error, if the package failed as a whole.
    public var packageError: String?
    /// Whether it would be accepted (absent when a package error prevented the check).
    public var allowed: Bool?
    /// Virtual size (if allowed).
    public var vsize: Int?
    /// Base fee in sats (if allowed).
    public var baseFee: Int64?
    /// Effective fee rate in sat/kvB (if allowed, v25+).
    public var effectiveFeeRate: Int64?
    /// wtxids whose fees and vsizes are in the effective fee rate (v25+).
    public var effectiveIncludes: [String]?
    /// Reject reason, e.g. `missing-inputs` (if not allowed).
    public var rejectReason: String?
    /// Longer reject details (v28+).
    public var rejectDetails: String?

    init(_ r: JSONReader) throws(BitcoinRPCError) {
        try r.requireObject()
        txid = try r["txid"].string()
        wtxid = try r["wtxid"].optional { (r) throws(BitcoinRPCError) in try r.string() }
        packageError = try r["package-error"].optional { (r) throws(BitcoinRPCError) in try r.string() }
        allowed = try r["allowed"].optional { (r) throws(BitcoinRPCError) in try r.bool() }
        vsize = try r["vsize"].optional { (r) throws(BitcoinRPCError) in try r.int() }
        let fees = r["fees"]
        baseFee = try fees["base"].optional { (r) throws(BitcoinRPCError) in try r.sats() }
        effectiveFeeRate = try fees["effective-feerate"].optional { (r) throws(BitcoinRPCError) in try r.sats() }
        effectiveIncludes = try fees["effective-includes"].optional { (r) throws(BitcoinRPCError) in try r.strings() }
        rejectReason = try r["reject-reason"].optional { (r) throws(BitcoinRPCError) in try r.string() }
        rejectDetails = try r["reject-details"].optional { (r) throws(BitcoinRPCError) in try r.string() }
    }
}

/// `estimatesmartfee` mode.
public enum FeeEstimateMode: String, Sendable, Hashable {
    /// Server default.
    case unset
    /// Responsive to short-term drops.
    case economical
    /// Longer history; less likely to underpay.
    case conservative
}

/// Result of `estimatesmartfee`.
public struct SmartFeeEstimate: Sendable, Hashable {
    /// Estimated fee rate in sat/kvB; `nil` if no estimate (see `errors`).
    public var feeRate: Int64?
    /// Errors encountered during estimation.
    public var errors: [String]
    /// Block target for which the estimate is valid.
    public var blocks: Int

    init(_ r: JSONReader) throws(BitcoinRPCError) {
        try r.requireObject()
        feeRate = try r["feerate"].optional { (r) throws(BitcoinRPCError) in try r.sats() }
        errors = try r["errors"].optional { (r) throws(BitcoinRPCError) in try r.strings() } ?? []
        blocks = try r["blocks"].int()
    }
}

/// Result of `getnetworkinfo`.
public struct NetworkInfo: Sendable, Hashable {
    /// Server version, e.g. 290000.
    public var version: Int
    /// User agent, e.g. `/Satoshi:29.0.0/`.
    public var subversion: String
    /// P2P protocol version.
    public var protocolVersion: Int
    /// Service bits offered, hex.
    public var localServices: String?
    /// Whether transaction relay is requested from peers.
    public var localRelay: Bool?
    /// Time offset in seconds.
    public var timeOffset: Int?
    /// Whether P2P networking is enabled.
    public var networkActive: Bool?
    /// Number of connections.
    public var connections: Int
    /// Minimum relay fee rate, sat/kvB.
    public var relayFee: Int64
    /// Minimum fee rate increment for mempool limiting or replacement, sat/kvB.
    public var incrementalFee: Int64?
    /// Network warnings.
    public var warnings: [String]

    init(_ r: JSONReader) throws(BitcoinRPCError) {
        try r.requireObject()
        version = try r["version"].int()
        subversion = try r["subversion"].string()
        protocolVersion = try r["protocolversion"].int()
        localServices = try r["localservices"].optional { (r) throws(BitcoinRPCError) in try r.string() }
        localRelay = try r["localrelay"].optional { (r) throws(BitcoinRPCError) in try r.bool() }
        timeOffset = try r["timeoffset"].optional { (r) throws(BitcoinRPCError) in try r.int() }
        networkActive = try r["networkactive"].optional { (r) throws(BitcoinRPCError) in try r.bool() }
        connections = try r["connections"].int()
        relayFee = try r["relayfee"].sats()
        incrementalFee = try r["incrementalfee"].optional { (r) throws(BitcoinRPCError) in try r.sats() }
        warnings = try r["warnings"].warnings()
    }
}

/// A `scantxoutset` scan object: a descriptor, optionally with a derivation range.
public struct ScanObject: Sendable, Hashable, ExpressibleByStringInterpolation {
    /// Output descriptor, e.g. `addr(bcrt1q…)` or `wpkh(xpub…/0/*)`.
    public var descriptor: String
    /// Derivation range for ranged descriptors (`[begin, end]`).
    public var range: ClosedRange<Int>?

    /// Creates a scan object.
    public init(descriptor: String, range: ClosedRange<Int>? = nil) {
        self.descriptor = descriptor
        self.range = range
    }

    /// A plain descriptor.
    public init(stringLiteral value: String) { self.init(descriptor: value) }

    var json: JSONValue {
        guard let range else { return .string(descriptor) }
        return ["desc": .string(descriptor), "range": [.int(range.lowerBound), .int(range.upperBound)]]
    }
}

/// One unspent output found by `scantxoutset`.
public struct ScannedUnspent: Sendable, Hashable {
    /// Transaction id.
    public var txid: String
    /// Output index.
    public var vout: UInt32
    /// Output script, hex.
    public var scriptPubKey: String
    /// Matching descriptor.
    public var descriptor: String
    /// Value, sats.
    public var amount: Int64
    /// Whether it is a coinbase output (v25+).
    public var coinbase: Bool?
    /// Height of the creating block.
    public var height: Int
    /// Hash of the creating block (v27+).
    public var blockHash: String?

    init(_ r: JSONReader) throws(BitcoinRPCError) {
        try r.requireObject()
        txid = try r["txid"].string()
        guard let v = UInt32(exactly: try r["vout"].int64()) else { throw r["vout"].fail("out of range") }
        vout = v
        scriptPubKey = try r["scriptPubKey"].string()
        descriptor = try r["desc"].string()
        amount = try r["amount"].sats()
        coinbase = try r["coinbase"].optional { (r) throws(BitcoinRPCError) in try r.bool() }
        height = try r["height"].height()
        blockHash = try r["blockhash"].optional { (r) throws(BitcoinRPCError) in try r.string() }
    }
}

/// Result of `scantxoutset start`.
public struct ScanTxOutSetResult: Sendable, Hashable {
    /// Whether the scan completed.
    public var success: Bool
    /// Number of UTXOs scanned.
    public var txouts: Int
    /// Tip height at the time of the scan.
    public var height: Int
    /// Tip hash at the time of the scan.
    public var bestBlock: String
    /// Matching unspent outputs.
    public var unspents: [ScannedUnspent]
    /// Sum of `unspents` amounts, sats.
    public var totalAmount: Int64

    init(_ r: JSONReader) throws(BitcoinRPCError) {
        try r.requireObject()
        success = try r["success"].bool()
        txouts = try r["txouts"].int()
        height = try r["height"].int()
        bestBlock = try r["bestblock"].string()
        unspents = try r["unspents"].map { (r) throws(BitcoinRPCError) in try ScannedUnspent(r) }
        totalAmount = try r["total_amount"].sats()
    }
}

/// Result of `generateblock`.
public struct GeneratedBlock: Sendable, Hashable {
    /// Hash of the generated block.
    public var hash: String
    /// The block, hex (only when `submit` was false).
    public var hex: String?

    init(_ r: JSONReader) throws(BitcoinRPCError) {
        try r.requireObject()
        hash = try r["hash"].string()
        hex = try r["hex"].optional { (r) throws(BitcoinRPCError) in try r.string() }
    }
}
