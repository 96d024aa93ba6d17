#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
import Foundation
import Synchronization

/// A tiny loopback TCP server that answers the i-th connection with the i-th
/// canned reply (the last one repeats), then closes the connection. Used to
/// feed the client garbage, truncated HTTP, 401s and so on.
public final class ScriptedServer: Sendable {
    /// What to send back on a connection.
    public enum Reply: Sendable {
        /// Raw bytes, sent verbatim after reading the request.
        case raw([UInt8])
        /// Close without sending anything (curl: "Empty reply from server").
        case close
        /// Read the request, then say nothing for `milliseconds` before closing.
        case stall(milliseconds: Int)

        /// A well-formed HTTP/1.1 response.
        public static func http(_ status: Int, _ body: String, headers: [String] = []) -> Reply {
            let b = Array(body.utf8)
            var head = "HTTP/1.1 \(status) X\r\nContent-Type: application/json\r\nContent-Length: \(b.count)\r\n"
            head += "Connection: close\r\n"
            for h in headers { head += h + "\r\n" }
            head += "\r\n"
            return .raw(Array(head.utf8) + b)
        }
    }

    /// One received HTTP request.
    public struct Request: Sendable {
        public var head: String
        public var body: String
        /// The `Authorization` header value, if any.
        public var authorization: String? {
            for line in head.split(separator: "\r\n") where line.lowercased().hasPrefix("authorization:") {
                return line.dropFirst("authorization:".count).trimmingCharacters(in: .whitespaces)
            }
            return nil
        }
    }

    public let port: Int
    private let fd: Int32
    private let replies: [Reply]
    private let state = Mutex<(requests: [Request], stopped: Bool)>(([], false))
    private let done = Mutex<Bool>(false)

    public init(replies: [Reply]) throws {
        precondition(!replies.isEmpty)
        self.replies = replies
        let (fd, port) = try Self.makeListener()
        self.fd = fd
        self.port = port
        let thread = Thread { [self] in self.run() }
        thread.start()
    }

    deinit { stop() }

    public var requests: [Request] { state.withLock { $0.requests } }

    public var url: String { "http://127.0.0.1:\(port)/" }

    public func stop() {
        let wasStopped = state.withLock { s -> Bool in
            defer { s.stopped = true }
            return s.stopped
        }
        if wasStopped { return }
        // Wait for the accept loop to finish (it may be in a stall), then close the
        // socket; closing earlier could let the loop poll a reused descriptor.
        for _ in 0..<1000 where !done.withLock({ $0 }) { usleep(10_000) }
        close(fd)
    }

    /// A loopback port that refuses connections for as long as the returned socket stays
    /// open: bound but not listening. (A port closed after picking it could be taken by
    /// another test's server before the connection attempt — a regtest node once answered
    /// 401 there.) Close the socket when done.
    public static func refusingPort() throws -> (socket: Int32, port: Int) {
        let (fd, port) = try makeListener()
        close(fd)
        let held = newTCPSocket()
        guard held >= 0 else { throw POSIXError(.EMFILE) }
        let rc = withLoopbackAddress(port: port) { bind(held, $0, $1) }
        guard rc == 0 else {
            close(held)
            throw POSIXError(.EADDRINUSE)
        }
        return (held, port)
    }

    private static func makeListener() throws -> (Int32, Int) {
        let fd = newTCPSocket()
        guard fd >= 0 else { throw POSIXError(.EMFILE) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let rc = withLoopbackAddress(port: 0) { bind(fd, $0, $1) }
        guard rc == 0, listen(fd, 16) == 0 else {
            close(fd)
            throw POSIXError(.EADDRINUSE)
        }
        var bound = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &bound) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        return (fd, Int(UInt16(bigEndian: bound.sin_port)))
    }

    private func run() {
        defer { done.withLock { $0 = true } }
        var index = 0
        while !state.withLock({ $0.stopped }) {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, 50) > 0 else { continue }
            let client = accept(fd, nil, nil)
            guard client >= 0 else { continue }
            let request = readRequest(client)
            state.withLock { $0.requests.append(request) }
            let reply = replies[min(index, replies.count - 1)]
            index += 1
            if case .stall(let ms) = reply { usleep(useconds_t(ms * 1000)) }
            if case .raw(let bytes) = reply {
                var sent = 0
                while sent < bytes.count {
                    let n = bytes[sent...].withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    if n <= 0 { break }
                    sent += n
                }
            }
            shutdown(client, Int32(SHUT_RDWR))
            close(client)
        }
    }

    /// Reads headers and a `Content-Length` body (bounded, with a receive timeout).
    private func readRequest(_ client: Int32) -> Request {
        var tv = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var data: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        var headerEnd: Int?
        var contentLength = 0
        while data.count < 1 << 20 {
            if let end = headerEnd, data.count >= end + contentLength { break }
            let n = buf.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            data.append(contentsOf: buf[0..<n])
            if headerEnd == nil, let r = findHeaderEnd(data) {
                headerEnd = r
                let head = String(decoding: data[0..<r], as: UTF8.self).lowercased()
                for line in head.split(separator: "\r\n") where line.hasPrefix("content-length:") {
                    contentLength = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) ?? 0
                }
            }
        }
        let end = headerEnd ?? data.count
        return Request(
            head: String(decoding: data[0..<end], as: UTF8.self),
            body: String(decoding: data[min(end, data.count)...], as: UTF8.self))
    }

    private func findHeaderEnd(_ d: [UInt8]) -> Int? {
        guard d.count >= 4 else { return nil }
        for i in 0...(d.count - 4) where d[i] == 13 && d[i + 1] == 10 && d[i + 2] == 13 && d[i + 3] == 10 {
            return i + 4
        }
        return nil
    }
}
