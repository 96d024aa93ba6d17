import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a call to a node's API did not produce an HTTP answer.
public enum NodeAPIClientError: Error, Equatable, CustomStringConvertible {
    /// The node URL is not `http://host[:port][/prefix]`.
    case invalidURL(String)
    /// The node could not be reached (name resolution, connection refused, timeout, reset).
    case unreachable(String)
    /// The node answered something that is not HTTP/1.x, or is too large.
    case malformedResponse(String)

    /// One line.
    public var description: String {
        switch self {
        case .invalidURL(let m): "invalid node URL: \(m)"
        case .unreachable(let m): "node unreachable: \(m)"
        case .malformedResponse(let m): "malformed answer from node: \(m)"
        }
    }
}

/// An HTTP answer: status and body.
public struct NodeAPIReply: Sendable, Hashable {
    /// HTTP status code.
    public var status: Int
    /// The body.
    public var body: Data

    /// The API's JSON error, when the body is one.
    public var error: APIErrorBody.Detail? { (try? JSONDecoder().decode(APIErrorBody.self, from: body))?.error }
}

/// A small blocking HTTP/1.1 client for the node API, for the command line.
///
/// Why not URLSession: from a synchronous command it needs a semaphore to wait, which is
/// fragile if the entry point becomes async; a blocking socket call works the same from
/// both. Plain `http://` only — the API binds to loopback by default; put a TLS proxy in
/// front of a node that must be reached over a network. One request per connection
/// (`Connection: close`), a timeout on connect/send/receive, and a cap on the answer size.
public struct NodeAPIClient: Sendable {
    /// Host name or address.
    public let host: String
    /// TCP port.
    public let port: Int
    /// Path prefix from the URL (empty, or starting with `/` without a trailing one).
    public let pathPrefix: String
    /// Sent as `Authorization: Bearer …` with requests that change state (`POST`) when
    /// set; reads need no token, so it is not put on the wire for them.
    public var bearerToken: String?
    /// Connect, send and receive timeout, in seconds (each call to the socket).
    public var timeoutSeconds: Int
    /// The whole exchange's limit, in seconds: a server trickling a byte just inside
    /// ``timeoutSeconds`` would otherwise hold the command forever. 6 × ``timeoutSeconds``,
    /// at least 60.
    public var totalTimeoutSeconds: Int
    /// Largest accepted answer.
    public var maxResponseBytes: Int = 32 << 20

    /// A client for `url` (`http://127.0.0.1:26657`).
    public init(url: String, bearerToken: String? = nil, timeoutSeconds: Int = 10) throws(NodeAPIClientError) {
        guard let components = URLComponents(string: url), components.scheme?.lowercased() == "http",
              let host = components.host, !host.isEmpty
        else {
            throw .invalidURL("\"\(url)\" (expected http://host:port)")
        }
        let port = components.port ?? 80
        guard (1...65535).contains(port) else { throw .invalidURL("port \(port) is out of range") }
        self.host = host
        self.port = port
        var prefix = components.path
        while prefix.hasSuffix("/") { prefix.removeLast() }
        self.pathPrefix = prefix
        self.bearerToken = bearerToken
        self.timeoutSeconds = max(1, timeoutSeconds)
        self.totalTimeoutSeconds = max(60, 6 * self.timeoutSeconds)
    }

    /// `GET path`.
    public func get(_ path: String) throws(NodeAPIClientError) -> NodeAPIReply {
        try send(method: "GET", path: path, body: nil, contentType: nil)
    }

    /// `POST path` with `body`.
    public func post(_ path: String, body: Data, contentType: String = "application/json") throws(NodeAPIClientError) -> NodeAPIReply {
        try send(method: "POST", path: path, body: body, contentType: contentType)
    }

    func send(method: String, path: String, body: Data?, contentType: String?) throws(NodeAPIClientError) -> NodeAPIReply {
        var head = "\(method) \(pathPrefix)\(path) HTTP/1.1\r\n"
        let hostHeader = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        head += "Host: \(hostHeader)\r\nAccept: application/json\r\nConnection: close\r\nUser-Agent: ishtar-cli\r\n"
        if let bearerToken, body != nil { head += "Authorization: Bearer \(bearerToken)\r\n" }
        if let body {
            head += "Content-Type: \(contentType ?? "application/octet-stream")\r\nContent-Length: \(body.count)\r\n"
        }
        head += "\r\n"
        var request = Data(head.utf8)
        if let body { request.append(body) }

        let deadline = ContinuousClock.now + .seconds(totalTimeoutSeconds)
        let fd = try connect()
        defer { close(fd) }
        try write(fd, request)
        return try readReply(fd, deadline: deadline)
    }

    private func connect() throws(NodeAPIClientError) -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let first = list else {
            throw .unreachable("cannot resolve \(host): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(list) }
        var lastError = "no address for \(host)"
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let ai = cursor {
            cursor = ai.pointee.ai_next
            let fd = socket(ai.pointee.ai_family, ai.pointee.ai_socktype, ai.pointee.ai_protocol)
            guard fd >= 0 else { lastError = String(cString: strerror(errno)); continue }
            // On Linux SO_SNDTIMEO also bounds connect(); both bound every read and write.
            var tv = timeval(tv_sec: time_t(timeoutSeconds), tv_usec: 0)
            _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            #if canImport(Darwin)
            var one: Int32 = 1
            _ = setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, socklen_t(MemoryLayout<Int32>.size))
            #endif
            if posixConnect(fd, ai.pointee.ai_addr, ai.pointee.ai_addrlen) == 0 { return fd }
            lastError = "\(hostDescription): \(String(cString: strerror(errno)))"
            close(fd)
        }
        throw .unreachable(lastError)
    }

    private var hostDescription: String { "\(host):\(port)" }

    private func write(_ fd: Int32, _ data: Data) throws(NodeAPIClientError) {
        let bytes = [UInt8](data)
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { buf -> Int in
                guard let base = buf.baseAddress else { return 0 }
                #if canImport(Glibc)
                return Glibc.send(fd, base + sent, buf.count - sent, Int32(MSG_NOSIGNAL))
                #else
                return Darwin.send(fd, base + sent, buf.count - sent, 0)
                #endif
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw .unreachable("\(hostDescription): send failed: \(String(cString: strerror(errno)))")
            }
            sent += n
        }
    }

    private func readReply(_ fd: Int32, deadline: ContinuousClock.Instant) throws(NodeAPIClientError) -> NodeAPIReply {
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        var parsedHead: (status: Int, headers: [String: String], bodyStart: Int)?
        while true {
            if let head = parsedHead, let text = head.headers["content-length"] {
                // A length the reply cannot have (negative, not a number, over the cap) is the
                // server's error, not a range to slice with.
                guard let length = Int(text), length >= 0, length <= maxResponseBytes else {
                    throw .malformedResponse("bad Content-Length \(text.prefix(32))")
                }
                if received.count - head.bodyStart >= length {
                    return NodeAPIReply(status: head.status, body: Data(received[head.bodyStart..<(head.bodyStart + length)]))
                }
            }
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 {
                if errno == EINTR { continue }
                let reason = errno == EAGAIN || errno == EWOULDBLOCK ? "timed out after \(timeoutSeconds)s"
                    : String(cString: strerror(errno))
                throw .unreachable("\(hostDescription): \(reason)")
            }
            if n == 0 { break }
            guard ContinuousClock.now < deadline else {
                throw .unreachable("\(hostDescription): no complete answer within \(totalTimeoutSeconds)s")
            }
            let scanned = received.count
            received.append(contentsOf: chunk[0..<n])
            guard received.count <= maxResponseBytes else { throw .malformedResponse("answer exceeds \(maxResponseBytes) bytes") }
            // The end of the header is searched for in the new bytes only (and the 3 before
            // them): a header arriving a byte at a time stays linear.
            if parsedHead == nil { parsedHead = try Self.parseHead(received, from: max(0, scanned - 3)) }
        }
        guard let head = parsedHead else {
            throw received.isEmpty ? .unreachable("\(hostDescription): connection closed without an answer")
                : .malformedResponse("incomplete HTTP header")
        }
        var body = Array(received[head.bodyStart...])
        if head.headers["transfer-encoding"]?.lowercased().contains("chunked") == true {
            body = try Self.dechunk(body)
        } else if let length = head.headers["content-length"].flatMap(Int.init) {
            guard body.count >= length else { throw .malformedResponse("body shorter than Content-Length") }
            body = Array(body[0..<length])
        }
        return NodeAPIReply(status: head.status, body: Data(body))
    }

    /// The status line and headers, once `\r\n\r\n` has arrived; nil before.
    static func parseHead(_ bytes: [UInt8], from start: Int = 0) throws(NodeAPIClientError) -> (status: Int, headers: [String: String], bodyStart: Int)? {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard bytes.count >= 4, start <= bytes.count - 4 else {
            if bytes.count > 64 * 1024 { throw .malformedResponse("HTTP header too long") }
            return nil
        }
        var end: Int?
        for i in start...(bytes.count - 4) where bytes[i..<(i + 4)].elementsEqual(separator) {
            end = i
            break
        }
        guard let end else {
            if bytes.count > 64 * 1024 { throw .malformedResponse("HTTP header too long") }
            return nil
        }
        let lines = String(decoding: bytes[0..<end], as: UTF8.self).components(separatedBy: "\r\n")
        let statusParts = lines.first?.split(separator: " ") ?? []
        guard statusParts.count >= 2, statusParts[0].hasPrefix("HTTP/1."), let status = Int(statusParts[1]) else {
            throw .malformedResponse("not an HTTP/1.x status line")
        }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return (status, headers, end + 4)
    }

    static func dechunk(_ bytes: [UInt8]) throws(NodeAPIClientError) -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        while true {
            guard let lineEnd = (i..<max(i, bytes.count - 1)).first(where: { bytes[$0] == 13 && bytes[$0 + 1] == 10 }) else {
                throw .malformedResponse("truncated chunked body")
            }
            let sizeText = String(decoding: bytes[i..<lineEnd], as: UTF8.self).split(separator: ";").first ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16), size >= 0 else {
                throw .malformedResponse("bad chunk size")
            }
            i = lineEnd + 2
            if size == 0 { return out }
            // Compared without adding: a huge size would overflow `i + size`.
            guard size <= bytes.count - i else { throw .malformedResponse("truncated chunk") }
            out.append(contentsOf: bytes[i..<(i + size)])
            i += size + 2
        }
    }
}

// `connect` is shadowed inside the type by our own method; name the C function explicitly.
#if canImport(Glibc)
private func posixConnect(_ fd: Int32, _ addr: UnsafePointer<sockaddr>?, _ len: socklen_t) -> Int32 {
    Glibc.connect(fd, addr, len)
}
#else
private func posixConnect(_ fd: Int32, _ addr: UnsafePointer<sockaddr>?, _ len: socklen_t) -> Int32 {
    Darwin.connect(fd, addr, len)
}
#endif
