import Foundation
import IshtarCrypto

/// Rules of the accounts module (codespace `"accounts"`).
public enum AccountsError: ChainRuleError, Equatable {
    /// The transaction's nonce is not the account's next nonce.
    case nonceMismatch(expected: UInt64, actual: UInt64)
    /// The account has used every nonce (2^64 − 1 transactions).
    case nonceExhausted
    /// A message payload does not decode.
    case malformedMessage(type: String, CodecError)
    /// A label is longer than the `max_label_bytes` parameter.
    case labelTooLong(length: Int, limit: Int)
    /// The message type is not one of this module's.
    case unknownMessage(String)

    /// `"accounts"`.
    public static let codespace = AccountsModule.moduleName

    /// Stable code per case.
    public var code: UInt32 {
        switch self {
        case .nonceMismatch: return 2
        case .nonceExhausted: return 3
        case .malformedMessage: return 4
        case .labelTooLong: return 5
        case .unknownMessage: return 6
        }
    }

    /// Stable rule name per case.
    public var rule: String {
        switch self {
        case .nonceMismatch: return "nonce-mismatch"
        case .nonceExhausted: return "nonce-exhausted"
        case .malformedMessage: return "malformed-message"
        case .labelTooLong: return "label-too-long"
        case .unknownMessage: return "unknown-message"
        }
    }

    /// One line.
    public var description: String {
        switch self {
        case let .nonceMismatch(expected, actual): return "nonce \(actual) does not match the account's nonce \(expected)"
        case .nonceExhausted: return "the account has no nonces left"
        case let .malformedMessage(type, e): return "\(type) payload: \(e)"
        case let .labelTooLong(length, limit): return "label is \(length) bytes, over the \(limit)-byte limit"
        case .unknownMessage(let t): return "accounts does not handle \(t)"
        }
    }
}

/// An account: created implicitly by its first transaction. There are no balances.
public struct Account: Hashable, Sendable, BinaryCodable {
    /// The nonce the next transaction must carry.
    public var nonce: UInt64
    /// Free-form label set by `accounts/SetLabel`.
    public var label: String
    /// Height of the account's first transaction.
    public var createdHeight: UInt64

    /// An account from its parts.
    public init(nonce: UInt64 = 0, label: String = "", createdHeight: UInt64 = 0) {
        self.nonce = nonce
        self.label = label
        self.createdHeight = createdHeight
    }

    /// Exact: every transaction encodes its sender's account twice, and a writer grown from
    /// empty reallocated on the way.
    public var encodedSizeHint: Int { 8 + 4 + label.utf8.count + 8 }

    /// `u64 nonce ‖ str label ‖ u64 createdHeight`.
    public func encode(to w: inout BinaryWriter) {
        w.u64(nonce)
        w.string(label)
        w.u64(createdHeight)
    }

    /// Inverse of ``encode(to:)``.
    public init(from r: inout BinaryReader) throws(CodecError) {
        nonce = try r.u64("nonce")
        label = try r.string("label", limit: AccountsModule.labelHardLimit)
        createdHeight = try r.u64("created height")
    }
}

/// `accounts/SetLabel`: sets the sender's label.
public struct SetLabel: Hashable, Sendable, BinaryCodable {
    /// The message type.
    public static let type = "accounts/SetLabel"
    /// The new label (UTF-8).
    public var label: String

    /// A message from its label.
    public init(label: String) { self.label = label }

    /// `str label`.
    public func encode(to w: inout BinaryWriter) { w.string(label) }

    /// Inverse of ``encode(to:)``.
    public init(from r: inout BinaryReader) throws(CodecError) {
        label = try r.string("label", limit: AccountsModule.labelHardLimit)
    }

    /// As a transaction message.
    public var message: Message { Message(type: Self.type, payload: encoded) }
}

/// A `SetLabel` as decoded at admission (``AccountsModule/validatedForm(of:sender:)``).
final class DecodedSetLabel: Sendable {
    let message: SetLabel
    init(_ message: SetLabel) { self.message = message }
}

/// Parameters of the accounts module (`modules.accounts` in genesis).
public struct AccountsParams: Hashable, Sendable, Codable, BinaryCodable {
    /// Longest label, 1…``AccountsModule/labelHardLimit`` bytes; default 64.
    public var maxLabelBytes: Int

    /// Parameters from their parts.
    public init(maxLabelBytes: Int = 64) { self.maxLabelBytes = maxLabelBytes }

    /// `u32 maxLabelBytes`.
    public func encode(to w: inout BinaryWriter) { w.u32(UInt32(clamping: maxLabelBytes)) }

    /// Inverse of ``encode(to:)``.
    public init(from r: inout BinaryReader) throws(CodecError) { maxLabelBytes = Int(try r.u32("max_label_bytes")) }
}

/// Built-in module `"accounts"`: account keys and nonces.
///
/// Rule: a transaction's nonce must equal its sender's stored nonce (0 for a key never
/// seen); a successful transaction increments it. A rejected transaction leaves the nonce
/// unchanged (it leaves no trace at all), so the sender can reuse it.
/// State: `accounts/a/<key32>` → ``Account``, `accounts/params` → ``AccountsParams``.
/// Queries: `/modules/accounts/account/<hex key>`, `/modules/accounts/params`.
public struct AccountsModule: AnteHandler {
    /// `"accounts"`.
    public static let moduleName = "accounts"
    /// Absolute bound on labels, whatever the parameter says.
    public static let labelHardLimit = 1024
    static let paramsKey = Data("params".utf8)
    static let paramsStateKey = StateKey(module: moduleName, paramsKey)

    /// The module.
    public init() {}

    /// `"accounts"`.
    public var name: String { Self.moduleName }
    /// `accounts/SetLabel`.
    public var messageTypes: [String] { [SetLabel.type] }

    private static let accountPrefix = Data("a/".utf8)
    static func accountKey(_ key: Data) -> Data { joined(accountPrefix, key) }
    /// ``accountKey(_:)`` under the module prefix, built in one buffer (every transaction
    /// reads and writes its sender's account twice: ante and message).
    static func accountStateKey(_ key: Data) -> StateKey {
        StateKey(module: "accounts", "a/") { bytes in key.withUnsafeBytes { bytes.append(contentsOf: $0) } }
    }

    /// The account of `key`, if it has ever sent a transaction. For other modules:
    /// `AccountsModule.account(key, in: context.store(of: AccountsModule.moduleName))`.
    public static func account(_ key: Data, in store: ModuleStore) throws(ExecutionError) -> Account? {
        try store.read(Account.self, at: accountKey(key))
    }

    static func params(in store: ModuleStore) throws(ExecutionError) -> AccountsParams {
        try store.read(AccountsParams.self, at: paramsStateKey) ?? AccountsParams()
    }

    /// Validates and stores the parameters.
    public func initGenesis(_ context: GenesisContext) throws(ExecutionError) {
        let params = try context.decodeParams(AccountsParams.self, defaults: AccountsParams())
        guard params.maxLabelBytes >= 1, params.maxLabelBytes <= Self.labelHardLimit else {
            throw .rule(ParamsError.outOfRange(module: name, name: "max_label_bytes",
                                               reason: "must be in 1…\(Self.labelHardLimit)"))
        }
        context.store.write(params, at: Self.paramsKey)
    }

    /// Nonce check and increment; creates the account on first use.
    public func anteHandle(_ context: TxContext) throws(ExecutionError) {
        let key = Self.senderKey(context)
        let existing = try context.store.read(Account.self, at: key)
        var account = existing ?? Account(createdHeight: context.block.height)
        guard context.transaction.nonce == account.nonce else {
            throw .rule(AccountsError.nonceMismatch(expected: account.nonce, actual: context.transaction.nonce))
        }
        guard account.nonce < UInt64.max else { throw .rule(AccountsError.nonceExhausted) }
        account.nonce += 1
        // Kept decoded: a message of this transaction that changes the account reads it next.
        context.store.write(account, at: key, keeping: true)
        if existing == nil {
            context.emit(Event(type: "accounts.created", attributes: [EventAttribute("key", context.senderHex)]))
        }
    }

    /// The sender's account: read by every transaction's ante step.
    public func stateKeysRead(by transaction: Transaction, into keys: inout [StateKey]) {
        keys.append(Self.accountStateKey(transaction.sender))
    }

    /// The sender's account key, made once per transaction (or taken from the list of
    /// ``stateKeysRead(by:into:)``, where it is the one key).
    private static func senderKey(_ context: TxContext) -> StateKey {
        if let key = context.accountKey { return key }
        let key = context.listedKeys.first ?? accountStateKey(context.sender)
        context.accountKey = key
        return key
    }

    /// Decodes the payload.
    public func validateMessage(_ message: Message, sender: Data) throws(ExecutionError) {
        _ = try Self.setLabel(message)
    }

    /// The decoded `SetLabel`, kept with the admitted transaction so that its delivery does
    /// not decode (and validate the UTF-8 of) the label again.
    public func validatedForm(of message: Message, sender: Data) throws(ExecutionError) -> AnyObject? {
        DecodedSetLabel(try Self.setLabel(message))
    }

    /// `message` as a `SetLabel`, or the rule it breaks.
    private static func setLabel(_ message: Message) throws(ExecutionError) -> SetLabel {
        guard message.type == SetLabel.type else { throw .rule(AccountsError.unknownMessage(message.type)) }
        do {
            return try SetLabel(decoding: message.payload)
        } catch {
            throw .rule(AccountsError.malformedMessage(type: message.type, error))
        }
    }

    /// `SetLabel`: label length within the parameter, then store.
    public func deliverMessage(_ message: Message, _ context: TxContext) throws(ExecutionError) {
        // A kept form was made from these very bytes (``Module/validatedForm(of:sender:)``).
        let msg: SetLabel
        if let kept = context.validatedForm as? DecodedSetLabel { msg = kept.message } else { msg = try Self.setLabel(message) }
        let limit = try Self.params(in: context.store).maxLabelBytes
        guard msg.label.utf8.count <= limit else {
            throw .rule(AccountsError.labelTooLong(length: msg.label.utf8.count, limit: limit))
        }
        let key = Self.senderKey(context)
        // The ante step has just created/updated the account.
        var account = try context.store.read(Account.self, at: key) ?? Account(createdHeight: context.block.height)
        account.label = msg.label
        context.store.write(account, at: key, keeping: true)
        context.emit(Event(type: "accounts.label_set", attributes: [
            EventAttribute("key", context.senderHex), EventAttribute("label", msg.label),
        ]))
    }

    /// `account/<hex>` and `params`.
    public func query(_ request: QueryRequest, _ context: QueryContext) throws(ExecutionError) -> Data {
        switch request.path.count {
        case 2 where request.path[0] == "account":
            guard let key = try? Data(hex: request.path[1]), key.count == 32 else {
                throw .rule(QueryError.invalidArgument("account key must be 64 hex digits"))
            }
            guard let account = try Self.account(key, in: context.store) else {
                throw .rule(QueryError.notFound("account \(request.path[1])"))
            }
            return canonicalJSON(["pub_key": key.hexString, "nonce": String(account.nonce), "label": account.label,
                                  "created_height": String(account.createdHeight)])
        case 1 where request.path[0] == "params":
            return canonicalJSON(["max_label_bytes": try Self.params(in: context.store).maxLabelBytes])
        default:
            throw .rule(QueryError.unknownPath("/modules/accounts/" + request.path.joined(separator: "/")))
        }
    }
}
