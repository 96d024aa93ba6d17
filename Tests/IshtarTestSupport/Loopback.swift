#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
import Synchronization

/// Calls `body` with 127.0.0.1:`port` as a `sockaddr` and its length, for tests that
/// `bind` or `connect` sockets by hand (port 0: any free port, for `bind`).
public func withLoopbackAddress<R>(port: Int, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(truncatingIfNeeded: port).bigEndian)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    return withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
}

/// A new IPv4 TCP socket (-1 on failure), spelled once for Glibc and Darwin.
public func newTCPSocket() -> Int32 {
    #if canImport(Glibc)
        socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    #else
        socket(AF_INET, SOCK_STREAM, 0)
    #endif
}

/// Hands out base ports for test nodes so that tests running at the same time in this
/// process never share one: each call gets its own block of `portBlockSpan` ports (a node
/// uses two, a devnet two per node), below Linux's ephemeral range (32768+) so outgoing
/// connections never hold a port a node is about to bind, starting at a random block so that
/// two test processes on one machine are unlikely to meet. A block whose first ports are
/// held by anyone else (another program, a node of an earlier test still closing) is
/// skipped. Random bases collided now and then when several node tests ran at once.
public enum TestPorts {
    /// Ports in one block.
    public static let portBlockSpan = 64
    static let low = 20_000, high = 32_000
    private static let next = Mutex(low + Int.random(in: 0..<((high - low) / portBlockSpan)) * portBlockSpan)

    /// The first port of a block of ``portBlockSpan`` free loopback ports, even.
    public static func basePort() -> Int {
        for _ in 0..<((high - low) / portBlockSpan) {
            let base = next.withLock { n -> Int in
                let b = n
                n = n + portBlockSpan + portBlockSpan > high ? low : n + portBlockSpan
                return b
            }
            if (base..<base + 16).allSatisfy(isFree) { return base }
        }
        // Every block busy: hand out the next one anyway; the test will say which port failed.
        return next.withLock { $0 }
    }

    /// Whether a TCP socket can bind 127.0.0.1:`port` right now.
    static func isFree(_ port: Int) -> Bool {
        let fd = newTCPSocket()
        guard fd >= 0 else { return false }
        defer { close(fd) }
        // As the nodes bind (SO_REUSEADDR): a port only in TIME_WAIT is free for them too.
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        return withLoopbackAddress(port: port) { bind(fd, $0, $1) } == 0
    }
}
