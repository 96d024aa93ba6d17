import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import IshtarChain
import IshtarCrypto
import Logging
import Metrics
import NIOCore
import Prometheus

/// Where and how the node's HTTP JSON API listens.
///
/// The defaults are the safe ones: loopback only, no token. `POST /txs` only relays a
/// transaction its sender already signed with BIP-340 (the chain verifies that signature),
/// so it needs no further authentication; an operator who exposes the API can still
/// require `Authorization: Bearer <token>` on it by setting ``bearerToken``.
public struct APIServerConfiguration: Sendable, Hashable {
    /// Interface to bind; `"127.0.0.1"` by default. Anything else exposes the API.
    public var host: String
    /// TCP port; 0 picks a free one (reported through `onServerRunning`).
    public var port: Int
    /// When set, `POST /txs` requires `Authorization: Bearer <token>` (401 otherwise).
    /// Must not be empty (an empty token refuses every submission: it fails closed).
    public var bearerToken: String?
    /// Largest accepted request body; larger ones get 413. 1 MiB by default.
    public var maxRequestBodyBytes: Int
    /// Level of the one-line-per-request log (server errors always log at warning).
    public var requestLogLevel: Logger.Level
    /// Open connections at most (`api.max_connections`, 256 by default). At the cap the
    /// server stops accepting; further clients wait in the kernel's listen backlog, holding
    /// no descriptor of ours, until a connection closes (idle ones close after 60 s).
    public var maxConnections: Int

    /// A configuration; every parameter has the safe default.
    public init(host: String = "127.0.0.1", port: Int = 26657, bearerToken: String? = nil,
                maxRequestBodyBytes: Int = 1 << 20, requestLogLevel: Logger.Level = .debug,
                maxConnections: Int = 256) {
        self.host = host
        self.port = port
        self.bearerToken = bearerToken
        self.maxRequestBodyBytes = maxRequestBodyBytes
        self.requestLogLevel = requestLogLevel
        self.maxConnections = maxConnections
    }

    /// Whether ``host`` is a loopback address (the API is then reachable only locally):
    /// `localhost`, `::1`, or an IPv4 address in 127.0.0.0/8 (a name such as `127.example`
    /// is not one).
    public var isLoopback: Bool {
        if host == "localhost" || host == "::1" || host == "[::1]" { return true }
        var v4 = in_addr()
        guard inet_pton(AF_INET, host, &v4) == 1 else { return false }
        return UInt32(bigEndian: v4.s_addr) >> 24 == 127
    }
}

/// Why ``runAPIServer(backend:configuration:logger:onServerRunning:)`` refused to start.
public enum APIServerError: Error, Equatable, CustomStringConvertible {
    /// `bearerToken` is the empty string.
    case emptyBearerToken
    /// The port is outside 0…65535.
    case invalidPort(Int)

    /// One line.
    public var description: String {
        switch self {
        case .emptyBearerToken: "api bearer token is empty; remove it or set a non-empty one"
        case .invalidPort(let p): "api port \(p) is outside 0...65535"
        }
    }
}

/// Builds the node's HTTP JSON API as a Hummingbird `Application` (a swift-service-lifecycle
/// `Service`) without starting it.
///
/// Use this when the node runs its own `ServiceGroup`: add the returned application to the
/// group's services and the group's graceful shutdown stops the server. Otherwise call
/// ``runAPIServer(backend:configuration:logger:onServerRunning:)``.
///
/// - Parameters:
///   - backend: the running node; the API reads and submits only through it.
///   - configuration: bind address, port, optional bearer token for `POST /txs`.
///   - logger: request and error logs.
///   - metricsRegistry: what `/metrics` serves; by default the process-wide registry of
///     ``NodeMetrics/bootstrap()`` (which bootstraps swift-metrics once if needed).
///   - onServerRunning: called once listening, with the bound port (useful with port 0).
public func makeAPIApplication(
    backend: any NodeBackend,
    configuration: APIServerConfiguration,
    logger: Logger,
    metricsRegistry: PrometheusCollectorRegistry? = nil,
    onServerRunning: (@Sendable (_ port: Int) async -> Void)? = nil
) -> some ApplicationProtocol {
    let router = makeAPIRouter(backend: backend, configuration: configuration,
                               metricsRegistry: metricsRegistry ?? NodeMetrics.bootstrap())
    if !configuration.isLoopback {
        logger.warning("HTTP API bound to a non-loopback address", metadata: [
            "host": .string(configuration.host),
            "post_txs_auth": .string(configuration.bearerToken == nil ? "none" : "bearer"),
        ])
    }
    return Application(
        router: router,
        // An idle connection is closed after 60 s: each holds a file descriptor, which the
        // node's RocksDB files share (a consensus write that cannot open a file halts it).
        server: .http1(configuration: .init(idleTimeout: .seconds(60))),
        configuration: ApplicationConfiguration(
            address: .hostname(configuration.host, port: configuration.port), serverName: "ishtar",
            availableConnectionsDelegate: APIConnectionLimit(max: configuration.maxConnections, logger: logger)),
        onServerRunning: { channel in
            let port = channel.localAddress?.port ?? configuration.port
            logger.info("HTTP API listening", metadata: ["host": .string(configuration.host), "port": .stringConvertible(port)])
            await onServerRunning?(port)
        },
        logger: logger)
}

/// Caps the API's open connections: each holds a file descriptor, and clients that open
/// connections without end would otherwise starve RocksDB and the peers of theirs. At the
/// cap Hummingbird stops calling accept, so new clients queue in the listen backlog rather
/// than being refused, and are served as connections close.
struct APIConnectionLimit: AvailableConnectionsDelegate {
    let max: Int
    let logger: Logger
    private var open = 0
    private var lastWarning: ContinuousClock.Instant?
    private let gauge = Gauge(label: NodeMetricName.apiOpenConnections)
    private let reached = Counter(label: NodeMetricName.apiConnectionLimitReached)

    init(max: Int, logger: Logger) {
        self.max = Swift.max(1, max)
        self.logger = logger
    }

    mutating func connectionOpened() {
        open += 1
        gauge.record(open)
        guard open >= max else { return }
        reached.increment()
        // Once a minute at most: a client hammering the cap must not also flood the log.
        let now = ContinuousClock.now
        if lastWarning.map({ now - $0 >= .seconds(60) }) ?? true {
            lastWarning = now
            logger.warning("HTTP API at api.max_connections: new clients wait until a connection closes",
                           metadata: ["max_connections": .stringConvertible(max)])
        }
    }

    mutating func connectionClosed() {
        open -= 1
        gauge.record(open)
    }

    func isAcceptingNewConnections() -> Bool { open < max }
}

/// Builds and runs the node's HTTP JSON API until the surrounding task is cancelled (or
/// an enclosing `ServiceGroup` shuts down gracefully). This is the one call for
/// `ishtar node start`:
///
/// ```swift
/// NodeMetrics.bootstrap()            // before the node records any metric
/// try await runAPIServer(backend: node, configuration: .init(port: 26657), logger: logger)
/// ```
///
/// It installs no signal handlers: the node owns process shutdown.
///
/// - Throws: ``APIServerError`` for an unusable configuration, or the bind error (e.g.
///   the port is in use).
public func runAPIServer(
    backend: any NodeBackend,
    configuration: APIServerConfiguration,
    logger: Logger,
    onServerRunning: (@Sendable (_ port: Int) async -> Void)? = nil
) async throws {
    if configuration.bearerToken?.isEmpty == true { throw APIServerError.emptyBearerToken }
    guard (0...65535).contains(configuration.port) else { throw APIServerError.invalidPort(configuration.port) }
    let app = makeAPIApplication(backend: backend, configuration: configuration, logger: logger,
                                 onServerRunning: onServerRunning)
    try await app.run()
}

/// The router with every route and the JSON error and logging middleware.
func makeAPIRouter(
    backend: any NodeBackend, configuration: APIServerConfiguration, metricsRegistry: PrometheusCollectorRegistry
) -> Router<BasicRequestContext> {
    let router = Router(context: BasicRequestContext.self)
    // Added first = outermost: the log line sees the status the error middleware produced.
    router.add(middleware: RequestLogMiddleware(level: configuration.requestLogLevel))
    router.add(middleware: JSONErrorMiddleware())
    let routes = APIRoutes(backend: backend, configuration: configuration, metricsRegistry: metricsRegistry)

    router.get("status") { _, _ in try await routes.status() }
    router.get("health") { _, _ in try await routes.health() }
    router.get("blocks/:height") { _, context in try await routes.block(context.parameters.get("height") ?? "") }
    router.get("txs/:hash") { _, context in try await routes.transaction(context.parameters.get("hash") ?? "") }
    router.get("accounts/:account/nonce") { _, context in try await routes.accountNonce(context.parameters.get("account") ?? "") }
    router.post("txs") { request, context in try await routes.submit(request, context: context) }
    router.post("txs/batch") { request, context in try await routes.submitBatch(request, context: context) }
    router.get("modules/:module") { request, context in
        try await routes.query(module: context.parameters.get("module") ?? "", path: [], request: request)
    }
    router.get("modules/:module/**") { request, context in
        try await routes.query(module: context.parameters.get("module") ?? "", path: context.parameters.getCatchAll(),
                               request: request)
    }
    router.get("openapi.json") { _, _ in
        APIRoutes.raw(.ok, Data(OpenAPIDocument.json.utf8), contentType: "application/json; charset=utf-8")
    }
    router.get("metrics") { _, _ in try await routes.metrics() }
    return router
}

/// The handlers, separate from the routing so each reads as request → backend → JSON.
struct APIRoutes: Sendable {
    let backend: any NodeBackend
    let configuration: APIServerConfiguration
    let metricsRegistry: PrometheusCollectorRegistry

    static func raw(_ status: HTTPResponse.Status, _ data: Data, contentType: String) -> Response {
        Response(status: status, headers: [.contentType: contentType], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func json(_ status: HTTPResponse.Status, _ value: some Encodable) throws -> Response {
        raw(status, try APIJSON.encode(value), contentType: "application/json; charset=utf-8")
    }

    func status() async throws -> Response {
        try Self.json(.ok, await backend.status())
    }

    func health() async throws -> Response {
        let health = await backend.health()
        return try Self.json(health.healthy ? .ok : .serviceUnavailable, health)
    }

    func block(_ parameter: String) async throws -> Response {
        if parameter == "latest" {
            guard let block = try await backend.latestBlock() else {
                throw APIError(.notFound, "block_not_found", "no block has been committed yet")
            }
            return try Self.json(.ok, APIBlock(block))
        }
        guard let height = UInt64(parameter) else {
            throw APIError(.badRequest, "invalid_height",
                           "height must be a non-negative decimal integer or \"latest\", got \"\(parameter.prefix(64))\"")
        }
        guard let block = try await backend.block(at: height) else {
            throw APIError(.notFound, "block_not_found", "no committed block at height \(height)")
        }
        return try Self.json(.ok, APIBlock(block))
    }

    func transaction(_ parameter: String) async throws -> Response {
        let text = parameter.hasPrefix("0x") ? String(parameter.dropFirst(2)) : parameter
        guard text.utf8.count == 64, let hash = try? Data(hex: text) else {
            throw APIError(.badRequest, "invalid_hash", "transaction hash must be 64 hex digits (32 bytes)")
        }
        guard let tx = try await backend.transaction(hash: hash) else {
            throw APIError(.notFound, "tx_not_found", "no committed transaction with hash \(hash.hexString)")
        }
        return try Self.json(.ok, APICommittedTransaction(tx))
    }

    /// `GET /accounts/{account}/nonce`: the committed nonce, and the next free one — after
    /// the account's transactions already waiting here, so a client that uses it queues behind
    /// them (a pending nonce is refused).
    func accountNonce(_ parameter: String) async throws -> Response {
        let text = parameter.hasPrefix("0x") ? String(parameter.dropFirst(2)) : parameter
        guard text.utf8.count == 64, let account = try? Data(hex: text) else {
            throw APIError(.badRequest, "invalid_account", "account must be 64 hex digits (an x-only public key)")
        }
        let path = "/modules/accounts/account/" + account.hexString
        let result = await backend.query(path: path, data: Data())
        var committed: UInt64 = 0
        if result.isOK {
            guard let object = try? JSONSerialization.jsonObject(with: result.value) as? [String: Any],
                  let text = object["nonce"] as? String, let nonce = UInt64(text) else {
                throw APIError(.internalServerError, "internal", "the accounts module answered without a nonce")
            }
            committed = nonce
        } else {
            let error = Self.queryError(result, path: path)
            // An account the chain has not seen yet starts at nonce 0.
            guard error.status == .notFound else { throw error }
        }
        let pending = Set(await backend.pendingNonces(of: account))
        var next = committed
        while pending.contains(next) { next += 1 }
        return try Self.json(.ok, APIAccountNonce(account: account.hexString, committedNonce: String(committed),
                                                   pendingTransactions: pending.count, nextNonce: String(next)))
    }

    /// The request body, refused with 413 above the configured limit: a body of exactly
    /// the limit is fine, one byte more is not, and the server never buffers an unbounded body.
    func boundedBody(_ request: Request) async throws -> Data {
        let limit = configuration.maxRequestBodyBytes
        do {
            return Data(try await request.body.collect(upTo: limit).readableBytesView)
        } catch is NIOTooManyBytesError {
            throw APIError(.contentTooLarge, "body_too_large", "request body exceeds \(limit) bytes")
        }
    }

    func submit(_ request: Request, context: BasicRequestContext) async throws -> Response {
        try authorize(request)
        let body = try await boundedBody(request)
        let bytes = try Self.transactionBytes(body, contentType: request.headers[.contentType])
        let result = await backend.submitTransaction(bytes)
        return try Self.json(result.result.isOK ? .ok : .unprocessableContent, APISubmitResult(result))
    }

    /// Most transactions in one `POST /txs/batch`.
    static let maxBatchTransactions = 1000

    /// `POST /txs/batch`: several transactions, each admitted as by `POST /txs`, answered
    /// with one verdict per transaction in order (200 even when some are refused: the
    /// request itself was fine). The body is `application/octet-stream`
    /// `(BE32 length ‖ tx bytes)*`, or JSON `{"txs": ["<hex>", …]}`.
    func submitBatch(_ request: Request, context: BasicRequestContext) async throws -> Response {
        try authorize(request)
        let txs = try Self.batchTransactions(try await boundedBody(request), contentType: request.headers[.contentType])
        let results = await backend.submitTransactions(txs)
        return try Self.json(.ok, APIBatchSubmitResult(results: results.map(APISubmitResult.init)))
    }

    /// The transactions of a `POST /txs/batch` body; every malformed shape is a 400 naming
    /// what is wrong.
    static func batchTransactions(_ body: Data, contentType: String?) throws -> [Data] {
        let type = contentType?.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        var txs: [Data] = []
        if type == "application/octet-stream" {
            let bytes = [UInt8](body)
            var offset = 0
            while offset < bytes.count {
                guard bytes.count - offset >= 4 else {
                    throw APIError(.badRequest, "invalid_batch", "truncated length prefix at byte \(offset)")
                }
                let n = Int(bytes[offset]) << 24 | Int(bytes[offset + 1]) << 16 | Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
                offset += 4
                guard n > 0 else { throw APIError(.badRequest, "invalid_batch", "empty transaction at byte \(offset - 4)") }
                guard bytes.count - offset >= n else {
                    throw APIError(.badRequest, "invalid_batch", "transaction at byte \(offset - 4) declares \(n) bytes, \(bytes.count - offset) remain")
                }
                txs.append(Data(bytes[offset..<offset + n]))
                offset += n
                guard txs.count <= maxBatchTransactions else {
                    throw APIError(.badRequest, "batch_too_large", "more than \(maxBatchTransactions) transactions")
                }
            }
        } else {
            if let type, type != "application/json" {
                throw APIError(.unsupportedMediaType, "unsupported_media_type",
                               "content type \(type) is not supported; use application/json or application/octet-stream")
            }
            let request: APIBatchSubmitRequest
            do {
                request = try JSONDecoder().decode(APIBatchSubmitRequest.self, from: body)
            } catch {
                throw APIError(.badRequest, "invalid_body", "expected {\"txs\": [\"<hex>\", …]}")
            }
            guard request.txs.count <= maxBatchTransactions else {
                throw APIError(.badRequest, "batch_too_large", "more than \(maxBatchTransactions) transactions")
            }
            for (i, hex) in request.txs.enumerated() {
                let text = hex.hasPrefix("0x") ? String(hex.dropFirst(2)) : hex
                guard !text.isEmpty, let tx = try? Data(hex: text, field: "tx") else {
                    throw APIError(.badRequest, "invalid_tx_hex", "txs[\(i)] is not non-empty hex")
                }
                txs.append(tx)
            }
        }
        guard !txs.isEmpty else { throw APIError(.badRequest, "empty_body", "the batch holds no transaction") }
        return txs
    }

    /// The transaction bytes of a `POST /txs` body: raw for `application/octet-stream`,
    /// otherwise JSON `{"tx": "<hex>"}`.
    static func transactionBytes(_ body: Data, contentType: String?) throws -> Data {
        let type = contentType?.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        if type == "application/octet-stream" {
            guard !body.isEmpty else { throw APIError(.badRequest, "empty_body", "request body is empty; expected transaction bytes") }
            return body
        }
        if let type, type != "application/json" {
            throw APIError(.unsupportedMediaType, "unsupported_media_type",
                           "content type \(type) is not supported; use application/json or application/octet-stream")
        }
        guard !body.isEmpty else { throw APIError(.badRequest, "empty_body", "request body is empty; expected {\"tx\": \"<hex>\"}") }
        let request: APISubmitRequest
        do {
            request = try JSONDecoder().decode(APISubmitRequest.self, from: body)
        } catch DecodingError.keyNotFound {
            throw APIError(.badRequest, "invalid_body", "JSON body has no \"tx\" field; expected {\"tx\": \"<hex>\"}")
        } catch DecodingError.typeMismatch {
            throw APIError(.badRequest, "invalid_body", "\"tx\" must be a hex string")
        } catch {
            throw APIError(.badRequest, "invalid_json", "body is not valid JSON; expected {\"tx\": \"<hex>\"}")
        }
        let text = request.tx.hasPrefix("0x") ? String(request.tx.dropFirst(2)) : request.tx
        guard !text.isEmpty else { throw APIError(.badRequest, "invalid_tx_hex", "\"tx\" is empty") }
        do {
            return try Data(hex: text, field: "tx")
        } catch {
            throw APIError(.badRequest, "invalid_tx_hex", "\"tx\" is not valid hex: \(error)")
        }
    }

    /// Checks `Authorization: Bearer <token>` when a token is configured.
    func authorize(_ request: Request) throws {
        guard let expected = configuration.bearerToken else { return }
        let challenge: HTTPFields = [.wwwAuthenticate: "Bearer realm=\"ishtar\""]
        guard let header = request.headers[.authorization] else {
            throw APIError(.unauthorized, "unauthorized", "POST /txs requires Authorization: Bearer <token>", headers: challenge)
        }
        let prefix = "bearer "
        guard header.count > prefix.count, header.prefix(prefix.count).lowercased() == prefix,
              !expected.isEmpty, Self.constantTimeEqual(Array(header.utf8.dropFirst(prefix.count)), Array(expected.utf8))
        else {
            throw APIError(.unauthorized, "unauthorized", "bearer token is missing or wrong", headers: challenge)
        }
    }

    /// Compares without an early exit, so response timing does not reveal a token prefix.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var diff = UInt8(truncatingIfNeeded: a.count ^ b.count)
        for i in 0..<max(a.count, b.count) {
            diff |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0)
        }
        return diff == 0
    }

    func query(module: String, path: [Substring], request: Request) async throws -> Response {
        var data = Data()
        if let hex = request.uri.queryParameters["data"] {
            do {
                data = try Data(hex: String(hex), field: "data")
            } catch {
                throw APIError(.badRequest, "invalid_data_hex", "query parameter \"data\" is not valid hex: \(error)")
            }
        }
        guard path.allSatisfy({ !$0.isEmpty }) else {
            throw APIError(.badRequest, "invalid_path", "query path has an empty segment")
        }
        let page: PageRequest?
        do {
            page = try PageRequest.parse(limit: request.uri.queryParameters["limit"].map(String.init),
                                         cursor: request.uri.queryParameters["cursor"].map(String.init))
        } catch {
            throw APIError(.badRequest, "invalid_page", error.violation.message)
        }
        let fullPath = "/modules/" + ([module] + path.map(String.init)).joined(separator: "/")
        let result = await backend.query(path: fullPath, data: data, page: page)
        guard result.isOK else { throw Self.queryError(result, path: fullPath) }
        // Built-in modules answer JSON; a module that answers bytes is wrapped, so the
        // API's answers are always JSON.
        let value: Data
        if (try? JSONSerialization.jsonObject(with: result.value, options: [.fragmentsAllowed])) != nil {
            value = result.value
        } else {
            value = try APIJSON.encode(["value_hex": result.value.hexString])
        }
        var response = Self.raw(.ok, value, contentType: "application/json; charset=utf-8")
        if let name = HTTPField.Name("X-Ishtar-Height") { response.headers[name] = String(result.height) }
        return response
    }

    /// Maps a refused query to a status: unknown path/module and missing items are 404,
    /// everything else (bad arguments, a module's own refusal) is 400.
    static func queryError(_ result: QueryResult, path: String) -> APIError {
        let (status, code): (HTTPResponse.Status, String)
        switch (result.codespace, result.code) {
        case ("query", 2): (status, code) = (.notFound, "unknown_query_path")
        case ("query", 3): (status, code) = (.notFound, "unknown_module")
        case ("query", 4): (status, code) = (.notFound, "not_found")
        case ("query", 5): (status, code) = (.badRequest, "invalid_argument")
        case ("query", 6): (status, code) = (.badRequest, "height_unavailable")
        default: (status, code) = (.badRequest, "query_refused")
        }
        let message = result.log.isEmpty ? "query \(path) failed" : result.log
        return APIError(status, code, message, codespace: result.codespace, queryCode: result.code)
    }

    func metrics() async throws -> Response {
        let bytes = NodeMetrics.exposition(metricsRegistry, status: await backend.status())
        return Self.raw(.ok, Data(bytes), contentType: "text/plain; version=0.0.4; charset=utf-8")
    }
}
