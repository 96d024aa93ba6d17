import Foundation
import IshtarChain
import IshtarCrypto

// The JSON bodies of the HTTP API. They are public and `Codable` so that the `ishtar`
// command line decodes exactly what the server encodes. Keys are snake_case; byte
// strings are lowercase hex; times are milliseconds since the Unix epoch.

/// `{"error": {"code", "message", …}}`: every error the API returns.
public struct APIErrorBody: Codable, Sendable, Hashable {
    /// The error itself.
    public struct Detail: Codable, Sendable, Hashable {
        /// Stable machine-readable code, e.g. `"invalid_height"`.
        public var code: String
        /// One human-readable line naming what is wrong.
        public var message: String
        /// For query failures: the codespace of the refused query.
        public var codespace: String?
        /// For query failures: the ABCI code within `codespace`.
        public var queryCode: UInt32?

        /// A detail from its parts.
        public init(code: String, message: String, codespace: String? = nil, queryCode: UInt32? = nil) {
            self.code = code
            self.message = message
            self.codespace = codespace
            self.queryCode = queryCode
        }

        enum CodingKeys: String, CodingKey {
            case code, message, codespace, queryCode = "query_code"
        }
    }

    /// The error.
    public var error: Detail

    /// An error body from its parts.
    public init(error: Detail) { self.error = error }
}

/// One event attribute as JSON.
public struct APIEventAttribute: Codable, Sendable, Hashable {
    /// Attribute name.
    public var key: String
    /// Attribute value.
    public var value: String
}

/// One event as JSON.
public struct APIEvent: Codable, Sendable, Hashable {
    /// Event type, e.g. `"accounts.label_set"`.
    public var type: String
    /// Ordered attributes.
    public var attributes: [APIEventAttribute]

    init(_ e: Event) {
        type = e.type
        attributes = e.attributes.map { APIEventAttribute(key: $0.key, value: $0.value) }
    }
}

/// A transaction's execution result as JSON.
public struct APITxResult: Codable, Sendable, Hashable {
    /// 0 on success.
    public var code: UInt32
    /// Domain of the failed rule (empty on success).
    public var codespace: String
    /// Name of the failed rule (empty on success).
    public var rule: String
    /// Why it failed (empty on success).
    public var log: String
    /// Events of a successful transaction.
    public var events: [APIEvent]

    init(_ r: TxResult) {
        code = r.code
        codespace = r.codespace
        rule = r.rule
        log = r.log
        events = r.events.map(APIEvent.init)
    }
}

/// What could be read from a transaction's bytes, when they decode.
public struct APITxSummary: Codable, Sendable, Hashable {
    /// The chain id it was signed for.
    public var chainID: String
    /// The sender's x-only public key (its account address), hex.
    public var sender: String
    /// The sender's nonce.
    public var nonce: UInt64
    /// The message types, in order.
    public var messageTypes: [String]

    init(_ tx: Transaction) {
        chainID = tx.chainID
        sender = tx.sender.hexString
        nonce = tx.nonce
        messageTypes = tx.messages.map(\.type)
    }

    /// The summary of `bytes`, or nil when they are not a transaction.
    static func decode(_ bytes: Data) -> APITxSummary? {
        (try? Transaction(decoding: bytes)).map(APITxSummary.init)
    }

    enum CodingKeys: String, CodingKey {
        case chainID = "chain_id", sender, nonce, messageTypes = "message_types"
    }
}

/// A transaction inside a block.
public struct APIBlockTransaction: Codable, Sendable, Hashable {
    /// SHA-256 of the bytes, hex.
    public var hash: String
    /// The raw bytes, hex.
    public var bytes: String
    /// Decoded fields; nil when the bytes do not decode as a transaction.
    public var decoded: APITxSummary?

    enum CodingKeys: String, CodingKey { case hash, bytes, decoded }

    /// Writes `"decoded": null` for undecodable bytes rather than leaving the key out.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(hash, forKey: .hash)
        try c.encode(bytes, forKey: .bytes)
        try c.encode(decoded, forKey: .decoded)
    }
}

/// One commit signature.
public struct APICommitSignature: Codable, Sendable, Hashable {
    /// Validator address, hex.
    public var address: String
    /// BIP-340 signature, hex.
    public var signature: String
}

/// The previous block's commit, as carried in a header.
public struct APILastCommit: Codable, Sendable, Hashable {
    /// Height of the committed block.
    public var height: UInt64
    /// Consensus round of the decision.
    public var round: UInt32
    /// Hash of the committed block, hex.
    public var blockHash: String
    /// How many validators signed.
    public var signatureCount: Int
    /// The signatures.
    public var signatures: [APICommitSignature]

    enum CodingKeys: String, CodingKey {
        case height, round, blockHash = "block_hash", signatureCount = "signature_count", signatures
    }
}

/// A block header as JSON.
public struct APIBlockHeader: Codable, Sendable, Hashable {
    /// Chain id.
    public var chainID: String
    /// Height.
    public var height: UInt64
    /// Proposer's time, ms since the epoch.
    public var timeMs: UInt64
    /// Previous block hash, hex.
    public var previousBlockHash: String
    /// Merkle root of the transactions, hex.
    public var transactionsRoot: String
    /// App hash after the previous block, hex.
    public var appHash: String
    /// Proposer address, hex.
    public var proposer: String
    /// Hash of the validator set, hex.
    public var validatorsHash: String
    /// The previous block's commit; nil for the first block.
    public var lastCommit: APILastCommit?

    enum CodingKeys: String, CodingKey {
        case chainID = "chain_id", height, timeMs = "time_ms", previousBlockHash = "previous_block_hash"
        case transactionsRoot = "transactions_root", appHash = "app_hash", proposer, validatorsHash = "validators_hash"
        case lastCommit = "last_commit"
    }

    /// Writes `"last_commit": null` for the first block rather than leaving the key out.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(chainID, forKey: .chainID)
        try c.encode(height, forKey: .height)
        try c.encode(timeMs, forKey: .timeMs)
        try c.encode(previousBlockHash, forKey: .previousBlockHash)
        try c.encode(transactionsRoot, forKey: .transactionsRoot)
        try c.encode(appHash, forKey: .appHash)
        try c.encode(proposer, forKey: .proposer)
        try c.encode(validatorsHash, forKey: .validatorsHash)
        try c.encode(lastCommit, forKey: .lastCommit)
    }
}

/// `GET /blocks/{height}` and `GET /blocks/latest`.
public struct APIBlock: Codable, Sendable, Hashable {
    /// Block hash, hex.
    public var hash: String
    /// The header.
    public var header: APIBlockHeader
    /// Number of transactions.
    public var txCount: Int
    /// The transactions, in execution order.
    public var transactions: [APIBlockTransaction]

    init(_ block: Block) {
        let h = block.header
        hash = block.hash.hexString
        header = APIBlockHeader(
            chainID: h.chainID, height: h.height, timeMs: h.time, previousBlockHash: h.previousBlockHash.hexString,
            transactionsRoot: h.transactionsRoot.hexString, appHash: h.appHash.hexString, proposer: h.proposer.hexString,
            validatorsHash: h.validatorsHash.hexString,
            lastCommit: h.lastCommit.map { c in
                APILastCommit(height: c.height, round: c.round, blockHash: c.blockHash.hexString,
                              signatureCount: c.signatures.count,
                              signatures: c.signatures.map {
                                  APICommitSignature(address: $0.address.hexString, signature: $0.signature.hexString)
                              })
            })
        txCount = block.transactions.count
        transactions = block.transactions.map {
            APIBlockTransaction(hash: Transaction.hash(of: $0).hexString, bytes: $0.hexString, decoded: APITxSummary.decode($0))
        }
    }

    enum CodingKeys: String, CodingKey {
        case hash, header, txCount = "tx_count", transactions
    }
}

/// `GET /txs/{hash}`: a committed transaction.
public struct APICommittedTransaction: Codable, Sendable, Hashable {
    /// SHA-256 of the bytes, hex.
    public var hash: String
    /// The raw bytes, hex.
    public var bytes: String
    /// Height of the block that includes it.
    public var height: UInt64
    /// Its position in that block.
    public var index: UInt32
    /// Its execution result.
    public var result: APITxResult
    /// Decoded fields; nil when the bytes do not decode.
    public var decoded: APITxSummary?

    init(_ t: CommittedTransaction) {
        hash = t.hash.hexString
        bytes = t.bytes.hexString
        height = t.record.height
        index = t.record.index
        result = APITxResult(t.record.result)
        decoded = APITxSummary.decode(t.bytes)
    }
}

/// `POST /txs` request body (JSON form).
public struct APISubmitRequest: Codable, Sendable, Hashable {
    /// The signed transaction's canonical encoding, hex.
    public var tx: String

    /// A request from hex bytes.
    public init(tx: String) { self.tx = tx }
}

/// `POST /txs/batch` JSON body.
public struct APIBatchSubmitRequest: Codable, Sendable, Hashable {
    /// Signed transactions' canonical encodings, hex.
    public var txs: [String]
    /// A request from hex transactions.
    public init(txs: [String]) { self.txs = txs }
}

/// `POST /txs/batch` answer: one verdict per submitted transaction, in order.
public struct APIBatchSubmitResult: Codable, Sendable, Hashable {
    /// The verdicts.
    public var results: [APISubmitResult]
}

/// `GET /accounts/{account}/nonce` answer. Nonces are decimal strings (64-bit values).
public struct APIAccountNonce: Codable, Sendable, Hashable {
    /// The account (x-only public key), hex.
    public var account: String
    /// The nonce in committed state: the next transaction the chain would execute.
    public var committedNonce: String
    /// How many of the account's transactions wait in this node's mempool.
    public var pendingTransactions: Int
    /// The first nonce at or after the committed one that no pending transaction uses.
    public var nextNonce: String

    enum CodingKeys: String, CodingKey {
        case account, committedNonce = "committed_nonce", pendingTransactions = "pending_transactions", nextNonce = "next_nonce"
    }
}

/// `POST /txs` answer: the check-tx verdict.
public struct APISubmitResult: Codable, Sendable, Hashable {
    /// SHA-256 of the submitted bytes, hex.
    public var hash: String
    /// Whether check-tx admitted it to the mempool.
    public var accepted: Bool
    /// 0 when accepted.
    public var code: UInt32
    /// Domain of the failed rule.
    public var codespace: String
    /// Name of the failed rule.
    public var rule: String
    /// Why it was refused.
    public var log: String

    init(_ r: CheckTxResult) {
        hash = r.hash.hexString
        accepted = r.result.isOK
        code = r.result.code
        codespace = r.result.codespace
        rule = r.result.rule
        log = r.result.log
    }
}

/// The JSON encoder of every API body: sorted keys, so answers are byte-stable.
enum APIJSON {
    static func encode(_ value: some Encodable) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(value)
    }
}
