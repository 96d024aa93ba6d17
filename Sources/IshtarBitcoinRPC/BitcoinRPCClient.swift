import Foundation
import Logging
import Synchronization

/// One call in a ``BitcoinRPCClient/batch(_:)`` request.
public struct BitcoinRPCRequest: Sendable, Hashable {
    /// RPC method name, e.g. `getblockhash`.
    public var method: String
    /// Positional parameters.
    public var params: [JSONValue]

    /// Creates a request.
    public init(method: String, params: [JSONValue] = []) {
        self.method = method
        self.params = params
    }
}

/// A bitcoind JSON-RPC client over HTTP (libcurl).
///
/// - Thread-safe (`Sendable`); calls may be made concurrently. Connections are
///   kept alive and reused (a small pool of curl easy handles; see
///   ``BitcoinRPCConfiguration/maxIdleConnections``). Blocking network I/O runs on
///   Dispatch threads, not on the Swift concurrency pool.
/// - Transport failures are retried with exponential backoff per
///   ``BitcoinRPCConfiguration/retry``; RPC and HTTP errors are not. With cookie
///   auth, an HTTP 401 makes the client re-read the cookie file and try once more.
/// - Each call logs one `debug` line (method, duration, attempts, outcome) to the
///   given `Logger`; credentials are never logged.
/// - Amounts are returned as `Int64` satoshis, converted exactly from bitcoind's
///   decimal BTC text (``BitcoinAmount``); fee rates as satoshis per 1000 vbytes.
/// - Hashes and txids are the usual big-endian display hex strings.
/// - Cancelling the calling task stops further retries (``BitcoinRPCError/cancelled``)
///   but does not abort a transfer in flight; that is bounded by
///   ``BitcoinRPCConfiguration/requestTimeout``.
/// - Timeouts are retried like other transport errors. For `sendrawtransaction`
///   that is safe: resubmitting a transaction already in the mempool returns its txid.
public final class BitcoinRPCClient: Sendable {
    /// The configuration this client was created with.
    public let configuration: BitcoinRPCConfiguration
    private let transport: CurlTransport
    private let logger: Logger
    /// Credentials currently in use (cookie re-read on 401).
    private let auth: Mutex<BasicAuth?>
    private let nextID = Atomic<Int>(1)

    /// Creates a client. No connection is made until the first call; a cookie file
    /// is read on the first call as well.
    public init(configuration: BitcoinRPCConfiguration, logger: Logger = Logger(label: "ishtar.bitcoin-rpc")) {
        self.configuration = configuration
        self.logger = logger
        self.transport = CurlTransport(
            url: configuration.url, connectTimeout: configuration.connectTimeout,
            requestTimeout: configuration.requestTimeout, maxIdleConnections: configuration.maxIdleConnections)
        switch configuration.credentials {
        case .userPassword(let user, let password): auth = Mutex(BasicAuth(user: user, password: password))
        case .cookieFile, .none: auth = Mutex(nil)
        }
    }

    // MARK: - Generic calls

    /// Calls `method` with positional `params` and returns the raw JSON `result`.
    ///
    /// Throws ``BitcoinRPCError/rpc(code:message:)`` for a JSON-RPC error object,
    /// ``BitcoinRPCError/http(status:body:)`` for e.g. 401, and the transport
    /// errors once retries are exhausted.
    public func call(method: String, params: [JSONValue] = []) async throws(BitcoinRPCError) -> JSONValue {
        let id = nextID.wrappingAdd(1, ordering: .relaxed).oldValue
        let request: JSONValue = [
            "jsonrpc": "1.0", "id": .int(id), "method": .string(method), "params": .array(Self.trimTrailingNulls(params)),
        ]
        var body: [UInt8] = []
        request.serialize(into: &body)
        let response = try await send(body: body, label: method)
        return try decodeSingle(response, id: id)
    }

    /// Sends several calls in one HTTP request (a JSON-RPC batch) and returns
    /// one result per request, in the same order, matched by id. A failing item
    /// (e.g. an RPC error) does not fail the others. Throws only if the batch as
    /// a whole fails (transport, HTTP status, unparseable reply).
    public func batch(_ requests: [BitcoinRPCRequest]) async throws(BitcoinRPCError)
        -> [Result<JSONValue, BitcoinRPCError>]
    {
        guard !requests.isEmpty else { return [] }
        let firstID = nextID.wrappingAdd(requests.count, ordering: .relaxed).oldValue
        var items: [JSONValue] = []
        items.reserveCapacity(requests.count)
        for (i, r) in requests.enumerated() {
            items.append([
                "jsonrpc": "1.0", "id": .int(firstID &+ i), "method": .string(r.method),
                "params": .array(Self.trimTrailingNulls(r.params)),
            ])
        }
        var body: [UInt8] = []
        JSONValue.array(items).serialize(into: &body)
        let label = "batch[\(requests.count)](" + requests.prefix(3).map(\.method).joined(separator: ",")
            + (requests.count > 3 ? ",…" : "") + ")"
        let response = try await send(body: body, label: label)
        return try decodeBatch(response, firstID: firstID, count: requests.count)
    }

    /// Positional params: trailing `null`s are dropped so bitcoind applies its defaults.
    private static func trimTrailingNulls(_ params: [JSONValue]) -> [JSONValue] {
        var p = params
        while let last = p.last, last == .null { p.removeLast() }
        return p
    }

    // MARK: - HTTP with retries

    private func currentAuth() throws(BitcoinRPCError) -> BasicAuth? {
        if let a = auth.withLock({ $0 }) { return a }
        guard case .cookieFile(let path) = configuration.credentials else { return nil }
        return try reloadCookie(path: path)
    }

    private func reloadCookie(path: String) throws(BitcoinRPCError) -> BasicAuth {
        let (user, password) = try BitcoinRPCCookie.read(path: path)
        let fresh = BasicAuth(user: user, password: password)
        auth.withLock { $0 = fresh }
        return fresh
    }

    private func send(body: [UInt8], label: String) async throws(BitcoinRPCError) -> HTTPResponse {
        let clock = ContinuousClock()
        let start = clock.now
        let policy = configuration.retry
        var attempt = 0
        var cookieRefreshed = false
        func finish(_ outcome: String) {
            let ms = (clock.now - start).milliseconds
            logger.debug(
                "bitcoind rpc",
                metadata: ["method": "\(label)", "ms": "\(ms)", "attempts": "\(attempt)", "outcome": "\(outcome)"])
        }
        while true {
            attempt += 1
            let credentials: BasicAuth?
            do {
                credentials = try currentAuth()
            } catch {
                finish("error: \(error)")
                throw error
            }
            let result = await transport.post(
                body: body, auth: credentials, maxResponseBytes: configuration.maxResponseBytes)
            switch result {
            case .success(let response):
                if response.status == 401, !cookieRefreshed, case .cookieFile(let path) = configuration.credentials {
                    // bitcoind rotates the cookie on restart: re-read it and try once more.
                    cookieRefreshed = true
                    logger.trace("bitcoind rpc: HTTP 401, re-reading cookie file", metadata: ["method": "\(label)"])
                    do {
                        _ = try reloadCookie(path: path)
                    } catch {
                        finish("error: \(error)")
                        throw error
                    }
                    attempt -= 1
                    continue
                }
                finish("HTTP \(response.status)")
                return response
            case .failure(let error):
                guard error.isRetryable, attempt < policy.maxAttempts else {
                    finish("error: \(error)")
                    throw error
                }
                let delay = policy.backoff(afterAttempt: attempt)
                logger.trace(
                    "bitcoind rpc: retrying after transport error",
                    metadata: ["method": "\(label)", "attempt": "\(attempt)", "error": "\(error)", "delay": "\(delay)"])
                do {
                    try await Task.sleep(for: delay)
                } catch {
                    finish("cancelled")
                    throw .cancelled
                }
            }
        }
    }

    // MARK: - Response decoding

    private static func bodyPrefix(_ body: [UInt8]) -> String {
        String(decoding: body.prefix(512), as: UTF8.self)
    }

    private func parseBody(_ response: HTTPResponse) throws(BitcoinRPCError) -> JSONValue {
        // 401/403 carry no JSON-RPC payload (bitcoind sends an empty body or HTML).
        if response.status == 401 || response.status == 403 {
            throw .http(status: response.status, body: Self.bodyPrefix(response.body))
        }
        do {
            return try JSONValue.parse(response.body, maxDepth: configuration.maxJSONDepth)
        } catch {
            if response.status != 200 {
                throw .http(status: response.status, body: Self.bodyPrefix(response.body))
            }
            throw .malformedResponse(field: "body", reason: "invalid JSON: \(error)")
        }
    }

    /// Turns one JSON-RPC reply object into the result or an error.
    private static func decodeReply(_ reply: JSONReader, status: Int, body: [UInt8]) -> Result<JSONValue, BitcoinRPCError>
    {
        guard case .object(let object)? = reply.value else {
            if status != 200 { return .failure(.http(status: status, body: bodyPrefix(body))) }
            return .failure(reply.fail("expected JSON-RPC reply object"))
        }
        if let error = object["error"], error != .null {
            let e = reply["error"]
            do throws(BitcoinRPCError) {
                try e.requireObject()
                let code = try e["code"].int()
                let message = try e["message"].optional { (r) throws(BitcoinRPCError) in try r.string() } ?? ""
                return .failure(.rpc(code: code, message: message))
            } catch {
                return .failure(error)
            }
        }
        if status != 200 { return .failure(.http(status: status, body: bodyPrefix(body))) }
        guard let result = object["result"] else { return .failure(reply["result"].fail("missing")) }
        return .success(result)
    }

    private func decodeSingle(_ response: HTTPResponse, id: Int) throws(BitcoinRPCError) -> JSONValue {
        let json = try parseBody(response)
        let reply = JSONReader(json, path: "reply")
        if case .object(let o) = json, let replyID = o["id"], replyID != .null, replyID.intValue != id {
            // An error reply to an unparseable request may carry id null; anything else must match.
            throw reply["id"].fail("expected \(id), got \(replyID.jsonText.prefix(40))")
        }
        return try Self.decodeReply(reply, status: response.status, body: response.body).get()
    }

    private func decodeBatch(_ response: HTTPResponse, firstID: Int, count: Int) throws(BitcoinRPCError)
        -> [Result<JSONValue, BitcoinRPCError>]
    {
        let json = try parseBody(response)
        guard case .array(let replies) = json else {
            // A whole-batch failure comes back as a single reply object.
            let single = try Self.decodeReply(JSONReader(json, path: "reply"), status: response.status, body: response.body).get()
            throw .malformedResponse(field: "reply", reason: "expected array for batch, got \(single.jsonText.prefix(80))")
        }
        var results = [Result<JSONValue, BitcoinRPCError>?](repeating: nil, count: count)
        for (i, item) in replies.enumerated() {
            let reader = JSONReader(item, path: "reply[\(i)]")
            guard let id = item["id"]?.intValue else { continue }
            let (index, overflow) = id.subtractingReportingOverflow(firstID)
            guard !overflow, index >= 0, index < count, results[index] == nil else { continue }
            // Per-item status is always 200 inside a batch.
            results[index] = Self.decodeReply(reader, status: 200, body: response.body)
        }
        return results.enumerated().map { i, r in
            r ?? .failure(.malformedResponse(field: "reply[id=\(firstID &+ i)]", reason: "no reply for request \(i)"))
        }
    }
}

extension Duration {
    fileprivate var milliseconds: Int64 {
        let (s, atto) = components
        return s &* 1000 &+ atto / 1_000_000_000_000_000
    }
}
