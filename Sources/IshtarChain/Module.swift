import Foundation
import IshtarCrypto
import IshtarStore

/// The facts of the block being executed (or, for `checkTx`, of the next block as far
/// as they are known).
public struct BlockInfo: Hashable, Sendable {
    /// The chain id.
    public var chainID: String
    /// The block's height.
    public var height: UInt64
    /// The block's time, ms since the epoch (in `checkTx`: the last block's time).
    public var time: UInt64
    /// The proposer's address (empty in `checkTx` and genesis).
    public var proposer: Data
    /// This block's hash. Known during `finalizeBlock` because the header (which the hash
    /// covers) is fixed before execution; empty in `checkTx`, proposals, queries and genesis,
    /// where no block exists yet. Epoch checkpoints use it for the epoch's last block.
    public var hash: Data
    /// The previous block's hash (32 zero bytes before the first block).
    public var previousBlockHash: Data

    /// Block facts from their parts.
    public init(chainID: String, height: UInt64, time: UInt64, proposer: Data,
                hash: Data = Data(), previousBlockHash: Data = Data()) {
        self.chainID = chainID
        self.height = height
        self.time = time
        self.proposer = proposer
        self.hash = hash
        self.previousBlockHash = previousBlockHash
    }
}

/// What every module hook receives: the block facts, its own state slice, access to
/// other modules' slices (to call *their* public API functions with — a module never
/// reads another's keys directly), and the events it emits.
public class ExecutionContext {
    /// The block being executed.
    public let block: BlockInfo
    /// The validator set in force.
    public let validators: ChainValidatorSet
    /// The module the hook belongs to.
    public internal(set) var module: String
    let overlay: Overlay
    /// `"<module>/"`.
    var storePrefix: Data

    init(block: BlockInfo, validators: ChainValidatorSet, module: String, storePrefix: Data? = nil, overlay: Overlay) {
        self.block = block
        self.validators = validators
        self.module = module
        self.storePrefix = storePrefix ?? ModuleStore.prefix(of: module)
        self.overlay = overlay
    }

    /// This module's state.
    public var store: ModuleStore { ModuleStore(module: module, prefix: storePrefix, overlay: overlay) }

    /// Another module's state, for that module's public API functions
    /// (e.g. `AccountsModule.account(key, in: context.store(of: AccountsModule.moduleName))`).
    public func store(of module: String) -> ModuleStore { ModuleStore(module: module, overlay: overlay) }

    /// Records an event; dropped if the transaction or hook is rejected.
    public func emit(_ event: Event) { events.append(event) }

    /// Events emitted so far in this unit of execution.
    /// Kept by the context itself: a separate collector was one more object per transaction.
    public private(set) var events: [Event] = []
}

/// Context of a transaction's ante step and of each of its messages. One context serves
/// all the steps of a transaction in turn (the application moves it from module to module),
/// so a module must not keep it past the call it was given to.
public final class TxContext: ExecutionContext {
    /// The transaction (signature already verified).
    public let transaction: Transaction
    /// SHA-256 of the transaction bytes.
    public let transactionHash: Data
    /// Position in the block (0 in `checkTx`).
    public let index: Int
    /// `true` in `checkTx` (mempool admission), `false` when executing a block.
    public let isCheck: Bool
    /// ``senderHex``, once made.
    private var madeSenderHex: String?
    /// The sender's account key in the accounts module, once made: its ante step and its
    /// message both address it.
    var accountKey: StateKey?
    /// In ``AnteHandler/anteHandle(_:)`` of a decided block's transaction: the keys this
    /// handler listed for the transaction (``AnteHandler/stateKeysRead(by:into:)``), in its
    /// order. Empty elsewhere.
    public internal(set) var listedKeys: ArraySlice<StateKey> = []
    /// In ``Module/deliverMessage(_:_:)``: what the module's
    /// ``Module/validatedForm(of:sender:)`` returned for this message, when the application
    /// still has it (`nil` otherwise, and in ante handlers).
    public internal(set) var validatedForm: AnyObject?

    init(block: BlockInfo, validators: ChainValidatorSet, module: String, storePrefix: Data? = nil, overlay: Overlay,
         transaction: Transaction, transactionHash: Data, index: Int, isCheck: Bool,
         validatedForm: AnyObject? = nil) {
        self.transaction = transaction
        self.transactionHash = transactionHash
        self.index = index
        self.isCheck = isCheck
        self.validatedForm = validatedForm
        super.init(block: block, validators: validators, module: module, storePrefix: storePrefix, overlay: overlay)
    }

    /// The sender's 32-byte key (the account address).
    public var sender: Data { transaction.sender }

    /// The sender's key in lowercase hex, as events name it: made once per transaction
    /// however many of its steps emit it.
    public var senderHex: String {
        if let hex = madeSenderHex { return hex }
        let hex = transaction.sender.hexString
        madeSenderHex = hex
        return hex
    }
}


/// Context of begin-block and end-block hooks.
public final class BlockContext: ExecutionContext {}

/// Context of genesis initialization.
public final class GenesisContext: ExecutionContext {
    /// The whole genesis.
    public let genesis: Genesis
    /// This module's parameters: canonical JSON of `modules.<name>`, or `nil` if absent
    /// (use defaults).
    public let params: Data?

    init(block: BlockInfo, validators: ChainValidatorSet, module: String, overlay: Overlay,
         genesis: Genesis, params: Data?) {
        self.genesis = genesis
        self.params = params
        super.init(block: block, validators: validators, module: module, overlay: overlay)
    }
}

/// A query addressed to a module: `/modules/<module>/<path...>`.
public struct QueryRequest: Hashable, Sendable {
    /// Path components after the module name (e.g. `["account", "<hex>"]`).
    public var path: [String]
    /// Optional request body.
    public var data: Data
    /// The page a listing query should answer; `nil` = the first page of the default size.
    /// Queries that list a fixed, small set ignore it.
    public var page: PageRequest?

    /// A request from its parts.
    public init(path: [String], data: Data = Data(), page: PageRequest? = nil) {
        self.path = path
        self.data = data
        self.page = page
    }

    /// The page to answer: the one asked for, else the first of the default size.
    public var pageOrFirst: PageRequest { page ?? PageRequest() }
}

/// One page of a listing query: at most `limit` items after `cursor`.
///
/// Listings that grow with the chain (providers, a provider's delegations, commitments,
/// evidence, checkpoint submissions) are answered a page at a time: a query runs on the
/// node's consensus actor, and an unbounded answer would stall consensus for as long as it
/// takes to build. The cursor is opaque to clients — the listing-relative key of the last
/// item returned — and a page ends with `next_cursor` (null when nothing follows).
public struct PageRequest: Hashable, Sendable {
    /// Items per page when the client names no limit.
    public static let defaultLimit = 100
    /// The most items one page may hold.
    public static let maxLimit = 1000
    /// The longest cursor accepted (bytes): longer than any listing key.
    public static let maxCursorBytes = 256

    /// Items in this page, 1…``maxLimit``.
    public let limit: Int
    /// The listing key after which the page starts; `nil` = from the first item.
    public let cursor: Data?

    /// The first page of the default size.
    public init() {
        limit = Self.defaultLimit
        cursor = nil
    }

    /// A page of `limit` items after `cursor`.
    /// - Throws: `QueryError.invalidArgument` when `limit` is outside 1…``maxLimit`` or the
    ///   cursor is longer than ``maxCursorBytes``.
    public init(limit: Int = PageRequest.defaultLimit, cursor: Data?) throws(QueryError) {
        guard (1...Self.maxLimit).contains(limit) else {
            throw .invalidArgument("limit must be 1…\(Self.maxLimit), got \(limit)")
        }
        if let cursor, cursor.isEmpty || cursor.count > Self.maxCursorBytes {
            throw .invalidArgument("cursor must be 1…\(Self.maxCursorBytes) bytes of hex, got \(cursor.count)")
        }
        self.limit = limit
        self.cursor = cursor
    }

    /// Parses the API's query parameters `limit` (decimal) and `cursor` (hex, as a
    /// previous page's `next_cursor`); `nil` when neither is given.
    /// - Throws: `QueryError.invalidArgument` naming the parameter that is malformed.
    public static func parse(limit: String?, cursor: String?) throws(QueryError) -> PageRequest? {
        if limit == nil, cursor == nil { return nil }
        var n = defaultLimit
        if let limit {
            guard let parsed = Int(limit) else { throw .invalidArgument("limit must be a number 1…\(maxLimit), got \"\(limit.prefix(40))\"") }
            n = parsed
        }
        var bytes: Data?
        if let cursor {
            guard cursor.count <= 2 * maxCursorBytes, let parsed = try? Data(hex: cursor) else {
                throw .invalidArgument("cursor must be the hex of a previous page's next_cursor")
            }
            bytes = parsed
        }
        return try PageRequest(limit: n, cursor: bytes)
    }
}

/// A page of a listing: the items' rows and the cursor of the next page.
public struct PageRows: Sendable {
    /// The rows, ascending by key; keys relative to the module, like ``ModuleStore/scan(prefix:)``.
    public var rows: [KeyValue]
    /// The listing-relative key of the last row when more follow, else `nil`.
    public var nextCursor: Data?

    /// `next_cursor` for a JSON answer: hex, or null at the end.
    public var nextCursorJSON: Any { nextCursor.map { $0.hexString } ?? NSNull() }
}

/// Read-only context of a query, over the last committed state. Writes made through it
/// are discarded.
public final class QueryContext: ExecutionContext {}

/// Query rules (codespace `"query"`), usable by modules for their own query paths.
public enum QueryError: ChainRuleError, Equatable {
    /// No handler for the path.
    case unknownPath(String)
    /// The path names no registered module.
    case unknownModule(String)
    /// The requested item does not exist.
    case notFound(String)
    /// A path component or the body is malformed.
    case invalidArgument(String)
    /// Only the latest committed height can be queried (state is not versioned).
    case heightUnavailable(requested: UInt64, latest: UInt64)

    /// `"query"`.
    public static let codespace = "query"

    /// Stable code per case.
    public var code: UInt32 {
        switch self {
        case .unknownPath: return 2
        case .unknownModule: return 3
        case .notFound: return 4
        case .invalidArgument: return 5
        case .heightUnavailable: return 6
        }
    }

    /// Stable rule name per case.
    public var rule: String {
        switch self {
        case .unknownPath: return "unknown-path"
        case .unknownModule: return "unknown-module"
        case .notFound: return "not-found"
        case .invalidArgument: return "invalid-argument"
        case .heightUnavailable: return "height-unavailable"
        }
    }

    /// One line.
    public var description: String {
        switch self {
        case .unknownPath(let p): return "no query handler for \(p)"
        case .unknownModule(let m): return "no module named \(m)"
        case .notFound(let w): return "\(w) not found"
        case .invalidArgument(let w): return "invalid argument: \(w)"
        case let .heightUnavailable(requested, latest):
            return "height \(requested) cannot be queried; only the latest (\(latest)) can"
        }
    }
}

/// A state-machine module. The frame owns ordering, atomicity and commitment; a module
/// owns its rules, its state slice (`"<name>/"` prefix) and its message types.
///
/// Contract:
/// - Deterministic: no clocks (use `context.block.time`), no randomness, no iteration of
///   hash-ordered collections where order reaches state or events.
/// - A rejected message/transaction is reported with `throw .rule(MyError.someCase)`;
///   the frame then discards every write and event of the whole transaction.
/// - Storage failures surface as `.fatal` (the helpers on ``ModuleStore`` do this).
/// - Every hook has a no-op default, so a module implements only what it needs.
public protocol Module: Sendable {
    /// Unique name, `[a-z0-9_]{1,32}`; also the state prefix and the query path segment.
    var name: String { get }
    /// Message types this module handles, each `"<name>/<Type>"`.
    var messageTypes: [String] { get }

    /// Validates `context.params` and writes the module's initial state.
    func initGenesis(_ context: GenesisContext) throws(ExecutionError)
    /// Stateless checks of one message (decodes the payload); runs in `checkTx`,
    /// `processProposal` and before delivery.
    func validateMessage(_ message: Message, sender: Data) throws(ExecutionError)
    /// ``validateMessage(_:sender:)``, returning what the module made of the message for its
    /// own ``deliverMessage(_:_:)`` to start from (``TxContext/validatedForm``), or `nil`.
    /// The application keeps it with a transaction admitted by `checkTx`, so executing the
    /// transaction in a block does not decode the message again. It must be a pure function
    /// of the message's bytes: the same bytes may be delivered with a form made earlier.
    func validatedForm(of message: Message, sender: Data) throws(ExecutionError) -> AnyObject?
    /// Executes one message: check everything first, then write.
    func deliverMessage(_ message: Message, _ context: TxContext) throws(ExecutionError)
    /// Runs at the start of every block, before its transactions.
    func beginBlock(_ context: BlockContext) throws(ExecutionError)
    /// Runs at the end of every block, after its transactions.
    func endBlock(_ context: BlockContext) throws(ExecutionError)
    /// Answers `/modules/<name>/<path...>` against the last committed state.
    func query(_ request: QueryRequest, _ context: QueryContext) throws(ExecutionError) -> Data
}

/// A module with a rule for every transaction, run before its messages (authentication-style
/// rules such as nonces).
///
/// A protocol of its own rather than a no-op default on ``Module``: the application makes a
/// context only for the modules that conform, instead of one per registered module for
/// every transaction (most modules have no such rule).
public protocol AnteHandler: Module {
    /// Runs for every transaction, before its messages; the conforming modules run in
    /// registration order.
    func anteHandle(_ context: TxContext) throws(ExecutionError)

    /// Appends to `keys` the state keys ``anteHandle(_:)`` will read for `transaction`.
    /// Before a decided block's transactions run, the application reads every key its
    /// transactions list from the store in one batch. A hint only: a key left out is read
    /// when asked, and a key listed but never read costs one lookup. The keys listed come
    /// back to the ante step in ``TxContext/listedKeys``, so it need not make them again.
    /// Default: none.
    func stateKeysRead(by transaction: Transaction, into keys: inout [StateKey])
}

extension AnteHandler {
    /// None.
    public func stateKeysRead(by transaction: Transaction, into keys: inout [StateKey]) {}
}

extension Module {
    /// No message types.
    public var messageTypes: [String] { [] }
    /// No genesis state.
    public func initGenesis(_ context: GenesisContext) throws(ExecutionError) {}
    /// Accepts every message.
    public func validateMessage(_ message: Message, sender: Data) throws(ExecutionError) {}
    /// Validates; keeps nothing.
    public func validatedForm(of message: Message, sender: Data) throws(ExecutionError) -> AnyObject? {
        try validateMessage(message, sender: sender)
        return nil
    }
    /// Rejects: a module that lists message types must implement delivery.
    public func deliverMessage(_ message: Message, _ context: TxContext) throws(ExecutionError) {
        throw .rule(TxError.unknownMessageType(message.type))
    }
    /// No begin-block work.
    public func beginBlock(_ context: BlockContext) throws(ExecutionError) {}
    /// No end-block work.
    public func endBlock(_ context: BlockContext) throws(ExecutionError) {}
    /// No query paths.
    public func query(_ request: QueryRequest, _ context: QueryContext) throws(ExecutionError) -> Data {
        throw .rule(QueryError.unknownPath("/modules/\(name)/" + request.path.joined(separator: "/")))
    }
}

/// Canonical JSON (sorted keys) for query answers.
public func canonicalJSON(_ object: [String: Any]) -> Data {
    (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
}
