/// Everything that can go wrong with a bitcoind JSON-RPC call.
///
/// Only ``transport(code:message:)`` and ``timeout(message:)`` are retried by
/// the client (see ``BitcoinRPCRetryPolicy``); every other case is returned at
/// once, because repeating the request cannot change the answer.
public enum BitcoinRPCError: Error, Sendable, Equatable {
    /// The request did not complete at the transport level: connection refused,
    /// reset, DNS failure, empty reply, … `code` is libcurl's `CURLcode`
    /// (e.g. 7 = couldn't connect, 52 = empty reply, 56 = receive error) and
    /// `message` curl's description of the failure.
    case transport(code: Int, message: String)

    /// The connect or total request timeout expired (libcurl code 28).
    case timeout(message: String)

    /// The server answered with an HTTP status and no JSON-RPC error object:
    /// 401 unauthorized (wrong password or stale cookie), 403 forbidden
    /// (`rpcallowip`), 404, 503 (work queue full), … `body` is at most the first
    /// 512 bytes of the response body, for diagnostics.
    case http(status: Int, body: String)

    /// bitcoind returned a JSON-RPC error object. `code` is bitcoind's
    /// `RPCErrorCode`; compare with the constants in ``RPCErrorCode``, e.g.
    /// `case .rpc(RPCErrorCode.invalidParameter, _)`.
    case rpc(code: Int, message: String)

    /// The server's answer could not be understood: not HTTP, truncated HTTP,
    /// invalid JSON, or a JSON-RPC reply whose `field` (a path such as
    /// `result.tx[3].vout[0].value`) is missing or has the wrong type.
    case malformedResponse(field: String, reason: String)

    /// The response body exceeded ``BitcoinRPCConfiguration/maxResponseBytes``;
    /// the transfer was aborted.
    case responseTooLarge(limit: Int)

    /// The client could not build the request: unreadable or malformed cookie
    /// file, invalid URL, curl initialisation failure, …
    case configuration(String)

    /// The calling task was cancelled between attempts.
    case cancelled

    /// `true` if ``BitcoinRPCClient`` retries after this error (transport-level
    /// failures and timeouts only).
    public var isRetryable: Bool {
        switch self {
        case .transport, .timeout: return true
        default: return false
        }
    }

    /// `true` for HTTP 401 (bad credentials or rotated cookie).
    public var isUnauthorized: Bool {
        if case .http(status: 401, _) = self { return true }
        return false
    }
}

/// bitcoind's JSON-RPC error codes (`src/rpc/protocol.h`), as `Int` constants so
/// they can be used directly in patterns: `case .rpc(RPCErrorCode.verifyRejected, let msg)`.
public enum RPCErrorCode {
    // Standard JSON-RPC 2.0 errors.
    /// -32600: the request is not a valid JSON-RPC request.
    public static let invalidRequest = -32600
    /// -32601: method not found.
    public static let methodNotFound = -32601
    /// -32602: invalid method parameters.
    public static let invalidParams = -32602
    /// -32603: internal error.
    public static let internalError = -32603
    /// -32700: the request body is not valid JSON.
    public static let parseError = -32700

    // General application-defined errors.
    /// -1: `std::exception` thrown in command handling (also wrong parameter count).
    public static let miscError = -1
    /// -3: unexpected type was passed as parameter.
    public static let typeError = -3
    /// -5: invalid address or key; also "block/transaction not found".
    public static let invalidAddressOrKey = -5
    /// Alias of ``invalidAddressOrKey`` as bitcoind uses it for lookups.
    public static let notFound = -5
    /// -7: ran out of memory during operation.
    public static let outOfMemory = -7
    /// -8: invalid, missing or duplicate parameter (e.g. block height out of range).
    public static let invalidParameter = -8
    /// -20: database error.
    public static let databaseError = -20
    /// -22: error parsing or validating structure in raw format.
    public static let deserializationError = -22
    /// -25: general error during transaction or block submission (e.g. missing inputs).
    public static let verifyError = -25
    /// -26: transaction or block was rejected by network rules.
    public static let verifyRejected = -26
    /// -27: transaction already in chain.
    public static let verifyAlreadyInChain = -27
    /// -28: client still warming up.
    public static let inWarmup = -28
    /// -32: RPC method is deprecated.
    public static let methodDeprecated = -32

    // P2P client errors.
    /// -9: Bitcoin is not connected.
    public static let clientNotConnected = -9
    /// -10: still downloading initial blocks.
    public static let clientInInitialDownload = -10
    /// -23: node is already added.
    public static let clientNodeAlreadyAdded = -23
    /// -24: node has not been added before.
    public static let clientNodeNotAdded = -24
    /// -31: no valid connection manager instance found.
    public static let clientP2PDisabled = -31

    // Wallet errors.
    /// -4: unspecified problem with wallet.
    public static let walletError = -4
    /// -6: not enough funds in wallet or account.
    public static let walletInsufficientFunds = -6
    /// -18: invalid wallet specified / wallet not loaded.
    public static let walletNotFound = -18
    /// -19: no wallet specified (multiple wallets loaded).
    public static let walletNotSpecified = -19
}

extension BitcoinRPCError: CustomStringConvertible {
    /// A one-line description (never contains credentials).
    public var description: String {
        switch self {
        case .transport(let code, let message): return "transport error (curl \(code)): \(message)"
        case .timeout(let message): return "timeout: \(message)"
        case .http(let status, let body): return "HTTP \(status)" + (body.isEmpty ? "" : ": \(body)")
        case .rpc(let code, let message): return "RPC error \(code): \(message)"
        case .malformedResponse(let field, let reason): return "malformed response (\(field)): \(reason)"
        case .responseTooLarge(let limit): return "response larger than \(limit) bytes"
        case .configuration(let message): return "configuration error: \(message)"
        case .cancelled: return "cancelled"
        }
    }
}
