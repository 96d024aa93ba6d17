import Foundation
import IshtarStore

/// A broken chain rule, as reported in a transaction result, a query result or a
/// rejected proposal. ABCI-shaped: `codespace` (the module, or `"tx"`/`"block"` for the
/// frame) plus a nonzero `code`; `rule` is a stable machine-readable name and `message`
/// a one-line human description naming the rule and the offending values.
public struct RuleViolation: Error, Hashable, Sendable, CustomStringConvertible {
    /// The module (or frame domain) whose rule failed.
    public let codespace: String
    /// Nonzero, unique within `codespace`.
    public let code: UInt32
    /// Stable identifier of the rule, e.g. `"nonce-mismatch"`.
    public let rule: String
    /// Human-readable one-liner.
    public let message: String

    /// A violation from its parts.
    public init(codespace: String, code: UInt32, rule: String, message: String) {
        self.codespace = codespace
        self.code = code
        self.rule = rule
        self.message = message
    }

    /// `codespace/rule: message`.
    public var description: String { "\(codespace)/\(rule): \(message)" }
}

/// An error enum of one rule domain (a module's, or the frame's). Each case maps to a
/// stable `code` and `rule`; `description` is the one-line message.
public protocol ChainRuleError: Error, Sendable, CustomStringConvertible {
    /// The domain: the module name, or `"tx"`/`"block"` for the frame.
    static var codespace: String { get }
    /// Nonzero code, unique in the codespace.
    var code: UInt32 { get }
    /// Stable rule identifier.
    var rule: String { get }
}

extension ChainRuleError {
    /// The error as a codespace/code/rule/message value.
    public var violation: RuleViolation {
        RuleViolation(codespace: Self.codespace, code: code, rule: rule, message: description)
    }
}

/// What a module hook (message delivery, begin/end block, genesis, query) can fail with.
///
/// The split is the frame's contract: a `.rejected` transaction is recorded with its code
/// and leaves no trace in state, while a `.fatal` error stops the node (it is not the
/// transaction's fault, and carrying on could fork the node from its peers).
public enum ExecutionError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A rule was broken; the message/transaction is rejected.
    case rejected(RuleViolation)
    /// Storage failed or stored state is corrupt: execution cannot continue.
    case fatal(ChainError)

    /// `.rejected(error.violation)`: `throw .rule(MyModuleError.someCase)`.
    public static func rule(_ error: some ChainRuleError) -> ExecutionError { .rejected(error.violation) }

    /// One line.
    public var description: String {
        switch self {
        case .rejected(let v): return "rejected: \(v)"
        case .fatal(let e): return "fatal: \(e)"
        }
    }
}

/// Frame-level transaction rules (codespace `"tx"`). Module rules come as `.module`.
public enum TxError: ChainRuleError, Equatable {
    /// The bytes are not a canonical transaction encoding.
    case malformed(CodecError)
    /// The encoded transaction exceeds the chain's `max_tx_bytes`.
    case tooLarge(size: Int, limit: Int)
    /// The transaction was signed for another chain.
    case wrongChainID(expected: String, actual: String)
    /// The sender key is not a valid BIP-340 x-only public key.
    case invalidSenderKey
    /// The BIP-340 signature does not verify against the sender key and sign bytes.
    case invalidSignature
    /// A transaction must carry at least one message.
    case noMessages
    /// A transaction carries more messages than ``Transaction/maxMessages``.
    case tooManyMessages(count: Int, limit: Int)
    /// No registered module owns this message type.
    case unknownMessageType(String)

    /// `"tx"`.
    public static let codespace = "tx"

    /// Stable code per case.
    public var code: UInt32 {
        switch self {
        case .malformed: return 2
        case .tooLarge: return 3
        case .wrongChainID: return 4
        case .invalidSenderKey: return 5
        case .invalidSignature: return 6
        case .noMessages: return 7
        case .tooManyMessages: return 8
        case .unknownMessageType: return 9
        }
    }

    /// Stable rule name per case.
    public var rule: String {
        switch self {
        case .malformed: return "malformed"
        case .tooLarge: return "too-large"
        case .wrongChainID: return "wrong-chain-id"
        case .invalidSenderKey: return "invalid-sender-key"
        case .invalidSignature: return "invalid-signature"
        case .noMessages: return "no-messages"
        case .tooManyMessages: return "too-many-messages"
        case .unknownMessageType: return "unknown-message-type"
        }
    }

    /// One line naming the rule.
    public var description: String {
        switch self {
        case .malformed(let e): return "malformed transaction: \(e)"
        case let .tooLarge(size, limit): return "transaction is \(size) bytes, over the \(limit)-byte limit"
        case let .wrongChainID(expected, actual): return "chain id \"\(actual)\" does not match \"\(expected)\""
        case .invalidSenderKey: return "sender is not a valid x-only public key"
        case .invalidSignature: return "signature does not verify for the sender key"
        case .noMessages: return "transaction has no messages"
        case let .tooManyMessages(count, limit): return "transaction has \(count) messages, over the limit \(limit)"
        case .unknownMessageType(let t): return "no module handles message type \"\(t)\""
        }
    }
}

/// Block rules (codespace `"block"`): structural and header checks a proposal or a
/// decided block must pass before any of it executes.
public enum BlockError: ChainRuleError, Equatable {
    /// The bytes are not a canonical block encoding.
    case malformed(CodecError)
    /// The header's chain id is not this chain's.
    case wrongChainID(expected: String, actual: String)
    /// The height is not the last committed height + 1.
    case wrongHeight(expected: UInt64, actual: UInt64)
    /// The previous-block hash is not the hash of the last committed block.
    case wrongPreviousHash
    /// The header's app hash is not the app hash after the last committed block.
    case wrongAppHash(expected: Data, actual: Data)
    /// The transactions root does not match the block's transactions.
    case wrongTransactionsRoot
    /// The validator-set hash does not match the current validator set.
    case wrongValidatorsHash
    /// The proposer is not in the current validator set.
    case unknownProposer(Data)
    /// The time is not strictly after the previous block's (or before genesis time).
    case timeNotMonotonic(previous: UInt64, actual: UInt64)
    /// The encoded block exceeds `max_block_bytes`.
    case tooLarge(size: Int, limit: Int)
    /// The block after the first must carry the commit of its parent.
    case missingLastCommit
    /// The first block must not carry a last commit.
    case unexpectedLastCommit
    /// The last commit is for another height or block.
    case lastCommitMismatch(String)
    /// Commit signatures must be strictly ascending by validator address (canonical,
    /// no duplicates).
    case unsortedCommitSignatures
    /// A commit signature names an address that is not a validator.
    case unknownCommitSigner(Data)
    /// A commit signature does not verify.
    case invalidCommitSignature(Data)
    /// The commit's signers do not hold more than 2/3 of the voting power.
    case insufficientCommitPower(signed: UInt64, total: UInt64)
    /// A transaction of the proposal fails the stateless transaction rules (frame or
    /// module `validateMessage`).
    case invalidTransaction(index: Int, RuleViolation)
    /// The header's evidence hash does not match the block's evidence list.
    case wrongEvidenceHash
    /// An evidence entry breaks the evidence rules, or was already committed.
    case invalidEvidence(index: Int, String)

    /// `"block"`.
    public static let codespace = "block"

    /// Stable code per case.
    public var code: UInt32 {
        switch self {
        case .malformed: return 2
        case .wrongChainID: return 3
        case .wrongHeight: return 4
        case .wrongPreviousHash: return 5
        case .wrongAppHash: return 6
        case .wrongTransactionsRoot: return 7
        case .wrongValidatorsHash: return 8
        case .unknownProposer: return 9
        case .timeNotMonotonic: return 10
        case .tooLarge: return 11
        case .missingLastCommit: return 12
        case .unexpectedLastCommit: return 13
        case .lastCommitMismatch: return 14
        case .unsortedCommitSignatures: return 15
        case .unknownCommitSigner: return 16
        case .invalidCommitSignature: return 17
        case .insufficientCommitPower: return 18
        case .invalidTransaction: return 19
        case .wrongEvidenceHash: return 20
        case .invalidEvidence: return 21
        }
    }

    /// Stable rule name per case.
    public var rule: String {
        switch self {
        case .malformed: return "malformed"
        case .wrongChainID: return "wrong-chain-id"
        case .wrongHeight: return "wrong-height"
        case .wrongPreviousHash: return "wrong-previous-hash"
        case .wrongAppHash: return "wrong-app-hash"
        case .wrongTransactionsRoot: return "wrong-transactions-root"
        case .wrongValidatorsHash: return "wrong-validators-hash"
        case .unknownProposer: return "unknown-proposer"
        case .timeNotMonotonic: return "time-not-monotonic"
        case .tooLarge: return "too-large"
        case .missingLastCommit: return "missing-last-commit"
        case .unexpectedLastCommit: return "unexpected-last-commit"
        case .lastCommitMismatch: return "last-commit-mismatch"
        case .unsortedCommitSignatures: return "unsorted-commit-signatures"
        case .unknownCommitSigner: return "unknown-commit-signer"
        case .invalidCommitSignature: return "invalid-commit-signature"
        case .insufficientCommitPower: return "insufficient-commit-power"
        case .invalidTransaction: return "invalid-transaction"
        case .wrongEvidenceHash: return "wrong-evidence-hash"
        case .invalidEvidence: return "invalid-evidence"
        }
    }

    /// One line naming the rule.
    public var description: String {
        switch self {
        case .malformed(let e): return "malformed block: \(e)"
        case let .wrongChainID(expected, actual): return "chain id \"\(actual)\" does not match \"\(expected)\""
        case let .wrongHeight(expected, actual): return "height \(actual), expected \(expected)"
        case .wrongPreviousHash: return "previous block hash does not match the last committed block"
        case let .wrongAppHash(expected, actual):
            return "app hash \(actual.hexString) does not match the state's \(expected.hexString)"
        case .wrongTransactionsRoot: return "transactions root does not match the transactions"
        case .wrongValidatorsHash: return "validators hash does not match the current validator set"
        case .unknownProposer(let a): return "proposer \(a.hexString) is not a validator"
        case let .timeNotMonotonic(previous, actual):
            return "block time \(actual) ms is not after the previous time \(previous) ms"
        case let .tooLarge(size, limit): return "block is \(size) bytes, over the \(limit)-byte limit"
        case .missingLastCommit: return "block does not carry its parent's commit"
        case .unexpectedLastCommit: return "the first block must not carry a last commit"
        case .lastCommitMismatch(let why): return "last commit mismatch: \(why)"
        case .unsortedCommitSignatures: return "commit signatures are not strictly ascending by address"
        case .unknownCommitSigner(let a): return "commit signer \(a.hexString) is not a validator"
        case .invalidCommitSignature(let a): return "commit signature of \(a.hexString) does not verify"
        case let .insufficientCommitPower(signed, total):
            return "commit signers hold \(signed) of \(total) power, not more than 2/3"
        case let .invalidTransaction(index, e): return "transaction \(index): \(e)"
        case .wrongEvidenceHash: return "evidence hash does not match the evidence"
        case let .invalidEvidence(index, why): return "evidence \(index): \(why)"
        }
    }
}

/// Node-level failures of the application: these are thrown (not returned as results)
/// because no transaction caused them and the node cannot safely continue.
public enum ChainError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The underlying store failed.
    case storage(StoreError)
    /// Stored state could not be decoded: the database is damaged or from other software.
    case corruptState(String)
    /// The store was not opened with a column family the chain needs.
    case missingColumnFamily(String)
    /// The chain has no genesis state yet: call `initChain` first.
    case notInitialized
    /// `initChain` was called on a store that already holds a chain.
    case alreadyInitialized
    /// The genesis file is invalid.
    case invalidGenesis(GenesisError)
    /// The module list is not usable (bad or duplicate names, duplicate message types).
    case invalidModuleSet(String)
    /// ABCI calls came in an impossible order (e.g. `commit` with no finalized block).
    case outOfOrder(String)
    /// A block handed to `finalizeBlock` breaks a block rule; a decided block never should.
    case invalidBlock(BlockError)
    /// A previous commit failed half-way through the call; the process must restart
    /// (reopen the store) to continue from the last durable block.
    case halted(String)
    /// The store was written by a build with another state layout (its format number is
    /// `found`; this build reads `supported`): the node must be re-initialized or resynced
    /// rather than run on state it would misread.
    case incompatibleStoreFormat(found: UInt8, supported: UInt8)

    /// One line.
    public var description: String {
        switch self {
        case .storage(let e): return "storage: \(e)"
        case .corruptState(let m): return "corrupt state: \(m)"
        case .missingColumnFamily(let cf): return "store lacks column family \(cf)"
        case .notInitialized: return "chain not initialized (no genesis)"
        case .alreadyInitialized: return "chain already initialized"
        case .invalidGenesis(let e): return "invalid genesis: \(e)"
        case .invalidModuleSet(let m): return "invalid module set: \(m)"
        case .outOfOrder(let m): return "out-of-order call: \(m)"
        case .invalidBlock(let e): return "invalid block: \(e)"
        case .halted(let m): return "application halted: \(m)"
        case .incompatibleStoreFormat(let found, let supported):
            return "the data directory holds state format \(found) but this build reads format \(supported): "
                + "there is no migration yet: start the node from a fresh home (for a devnet, a fresh --home)"
        }
    }
}

/// Runs a store call, turning any thrown error into a typed ``ChainError``.
@inline(__always)
func storeCall<R>(_ body: () throws -> R) throws(ChainError) -> R {
    do {
        return try body()
    } catch let error as StoreError {
        throw .storage(error)
    } catch {
        throw .storage(.other(String(describing: error)))
    }
}
