import Foundation

/// How the client authenticates to bitcoind (HTTP basic auth).
public enum BitcoinRPCCredentials: Sendable, Equatable {
    /// `-rpcuser` / `-rpcpassword` (or an `-rpcauth` user).
    case userPassword(user: String, password: String)
    /// bitcoind's cookie file (`<datadir>/[regtest/].cookie`, one line
    /// `__cookie__:<hex>`). Read lazily on first use and re-read after an HTTP 401,
    /// because bitcoind writes a new cookie every time it restarts.
    case cookieFile(path: String)
    /// No `Authorization` header (for servers without auth; bitcoind always wants it).
    case none
}

/// Retry policy for transport failures (connection refused, reset, empty reply,
/// timeouts). RPC errors and HTTP errors (401, …) are never retried.
public struct BitcoinRPCRetryPolicy: Sendable, Equatable {
    /// Total attempts per call, including the first (≥ 1). `1` disables retries.
    public var maxAttempts: Int
    /// Delay before the second attempt.
    public var initialBackoff: Duration
    /// Factor applied to the delay after each failed attempt.
    public var multiplier: Double
    /// Upper bound for a single delay.
    public var maxBackoff: Duration

    /// Creates a policy. Defaults: 4 attempts, 100 ms, ×2, capped at 2 s.
    public init(
        maxAttempts: Int = 4, initialBackoff: Duration = .milliseconds(100), multiplier: Double = 2,
        maxBackoff: Duration = .seconds(2)
    ) {
        self.maxAttempts = max(1, maxAttempts)
        self.initialBackoff = initialBackoff
        self.multiplier = max(1, multiplier)
        self.maxBackoff = maxBackoff
    }

    /// No retries: one attempt only.
    public static let none = BitcoinRPCRetryPolicy(maxAttempts: 1)

    /// The delay after failed attempt number `attempt` (1-based):
    /// `min(initialBackoff × multiplier^(attempt−1), maxBackoff)`.
    public func backoff(afterAttempt attempt: Int) -> Duration {
        func seconds(_ d: Duration) -> Double {
            Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
        }
        let factor = pow(multiplier, Double(min(max(0, attempt - 1), 64)))
        let delay = seconds(initialBackoff) * factor
        // Compared as Double first so a huge factor cannot overflow Duration.
        guard delay < seconds(maxBackoff) else { return maxBackoff }
        return .nanoseconds(Int64(max(0, delay) * 1e9))
    }
}

/// Connection settings for ``BitcoinRPCClient``.
public struct BitcoinRPCConfiguration: Sendable {
    /// Endpoint, e.g. `http://127.0.0.1:18443/` or `http://127.0.0.1:18443/wallet/w1`.
    public var url: String
    /// Authentication.
    public var credentials: BitcoinRPCCredentials
    /// TCP connect timeout (CURLOPT_CONNECTTIMEOUT_MS).
    public var connectTimeout: Duration
    /// Whole-request timeout (CURLOPT_TIMEOUT_MS). Slow calls such as
    /// `scantxoutset` or a large `getblock` at verbosity 2 need a generous one.
    public var requestTimeout: Duration
    /// Retry policy for transport errors.
    public var retry: BitcoinRPCRetryPolicy
    /// Largest accepted response body; larger ones fail with
    /// ``BitcoinRPCError/responseTooLarge(limit:)``. Default 256 MiB.
    public var maxResponseBytes: Int
    /// Maximum JSON nesting depth accepted in responses. Default 256.
    public var maxJSONDepth: Int
    /// Idle keep-alive connections kept for reuse (one curl easy handle each).
    /// Concurrent calls beyond this open extra connections that are closed afterwards.
    public var maxIdleConnections: Int

    /// Creates a configuration.
    public init(
        url: String,
        credentials: BitcoinRPCCredentials,
        connectTimeout: Duration = .seconds(5),
        requestTimeout: Duration = .seconds(120),
        retry: BitcoinRPCRetryPolicy = BitcoinRPCRetryPolicy(),
        maxResponseBytes: Int = 256 << 20,
        maxJSONDepth: Int = 256,
        maxIdleConnections: Int = 2
    ) {
        self.url = url
        self.credentials = credentials
        self.connectTimeout = connectTimeout
        self.requestTimeout = requestTimeout
        self.retry = retry
        self.maxResponseBytes = maxResponseBytes
        self.maxJSONDepth = maxJSONDepth
        self.maxIdleConnections = maxIdleConnections
    }

    /// Convenience: `http://host:port/`.
    public init(host: String = "127.0.0.1", port: Int, credentials: BitcoinRPCCredentials) {
        let h = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        self.init(url: "http://\(h):\(port)/", credentials: credentials)
    }
}

/// Parser for bitcoind's cookie file.
public enum BitcoinRPCCookie {
    /// Parses cookie-file contents: a single line `user:password` (bitcoind writes
    /// `__cookie__:<64 hex chars>`), optionally followed by a newline. The user is
    /// everything before the first `:`. Returns `nil` for empty input, a missing
    /// `:`, an empty user, or more than one non-empty line.
    public static func parse(_ contents: String) -> (user: String, password: String)? {
        var lines = contents.split(omittingEmptySubsequences: false) { $0 == "\n" || $0 == "\r\n" }
        while let last = lines.last, last.isEmpty { lines.removeLast() }
        guard lines.count == 1 else { return nil }
        var line = lines[0]
        if line.hasSuffix("\r") { line.removeLast() }
        guard let colon = line.firstIndex(of: ":") else { return nil }
        let user = String(line[..<colon])
        let password = String(line[line.index(after: colon)...])
        guard !user.isEmpty, !password.isEmpty else { return nil }
        return (user, password)
    }

    /// Reads and parses the cookie file at `path`.
    public static func read(path: String) throws(BitcoinRPCError) -> (user: String, password: String) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .configuration("cannot read cookie file \(path)")
        }
        guard data.count <= 4096, let text = String(data: data, encoding: .utf8), let parsed = parse(text) else {
            throw .configuration("malformed cookie file \(path)")
        }
        return parsed
    }
}
