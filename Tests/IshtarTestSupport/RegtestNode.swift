#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
import Foundation
import IshtarBitcoinRPC

/// `Scripts/regtest-node`, our bitcoind-compatible regtest node.
public let regtestNodeScript: String = repositoryRoot.appendingPathComponent("Scripts/regtest-node").path

/// Whether the regtest node is available (integration tests are skipped otherwise).
public let regtestNodeAvailable: Bool = FileManager.default.isExecutableFile(atPath: regtestNodeScript)

/// Regtest addresses used for mining. (The P2WSH one is `wsh(OP_TRUE)`, anyone can spend it
/// with witness `[51]` — Bitcoin Core's functional tests use the same address.)
public enum TestAddress {
    /// P2WPKH, BIP173 test key.
    public static let p2wpkh = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
    /// P2TR with the secp256k1 generator's x coordinate.
    public static let p2tr = "bcrt1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqc8gma6"
    /// P2WSH(OP_TRUE).
    public static let opTrue = "bcrt1qft5p2uhsdcdc3l2ua4ap5qqfg4pjaqlp250x7us7a8qqhrxrxfsqseac85"
}

public struct RegtestNodeError: Error, CustomStringConvertible {
    public var description: String
}

/// A `Scripts/regtest-node` subprocess on a free loopback port, in a temporary datadir.
public final class RegtestNode: @unchecked Sendable {
    // @unchecked: used by one test at a time; `process` is only touched from that test.
    public let datadir: URL
    public let port: Int
    public let user: String?
    public let password: String?
    private let process: Process
    private let ownsDatadir: Bool

    /// Starts a node and waits (bounded, without blocking a thread) for its ready
    /// line. `port: 0` picks a free port (the node reports it in the ready file).
    public static func start(
        user: String? = nil, password: String? = nil, datadir existing: URL? = nil, port requestedPort: Int = 0,
        readyTimeout: Duration = .seconds(60)
    ) async throws -> RegtestNode {
        let dir =
            existing
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("ishtar-rpc-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let readyFile = dir.appendingPathComponent("ready-\(UUID().uuidString)")
        let logURL = dir.appendingPathComponent("node.log")
        _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
        let log = try FileHandle(forWritingTo: logURL)
        log.seekToEndOfFile()

        let p = Process()
        p.executableURL = URL(fileURLWithPath: regtestNodeScript)
        var args = ["--datadir", dir.path, "--rpcport", String(requestedPort), "--ready-file", readyFile.path]
        if let user, let password { args += ["--rpcuser", user, "--rpcpassword", password] }
        p.arguments = args
        p.standardOutput = log
        p.standardError = log
        p.standardInput = FileHandle.nullDevice
        try p.run()

        let clock = ContinuousClock()
        let deadline = clock.now + readyTimeout
        var found: Int?
        // The file is read before the deadline is judged: under a full test run this task can
        // resume from its sleep after the deadline, and a node ready long before then was
        // once reported as never ready.
        while true {
            if let text = try? String(contentsOf: readyFile, encoding: .utf8),
                let range = text.range(of: "rpc=127.0.0.1:")
            {
                found = Int(text[range.upperBound...].prefix { $0.isNumber })
                break
            }
            if !p.isRunning || clock.now >= deadline { break }
            try? await Task.sleep(for: .milliseconds(50))
        }
        guard let found else {
            await terminate(p)
            let output = (try? String(contentsOf: logURL, encoding: .utf8)) ?? ""
            if existing == nil { try? FileManager.default.removeItem(at: dir) }
            throw RegtestNodeError(description: "regtest-node did not become ready:\n\(output.suffix(2000))")
        }
        return RegtestNode(
            datadir: dir, port: found, user: user, password: password, process: p, ownsDatadir: existing == nil)
    }

    private init(datadir: URL, port: Int, user: String?, password: String?, process: Process, ownsDatadir: Bool) {
        self.datadir = datadir
        self.port = port
        self.user = user
        self.password = password
        self.process = process
        self.ownsDatadir = ownsDatadir
    }

    /// Path of the cookie file (cookie auth only).
    public var cookiePath: String { datadir.appendingPathComponent(".cookie").path }

    /// A client for this node. Defaults: password auth if the node has one, else cookie.
    public func client(
        credentials: BitcoinRPCCredentials? = nil, retry: BitcoinRPCRetryPolicy = .init(maxAttempts: 2),
        logCapture: LogCapture? = nil
    ) -> BitcoinRPCClient {
        let creds =
            credentials
            ?? ((user != nil && password != nil)
                ? .userPassword(user: user!, password: password!) : .cookieFile(path: cookiePath))
        var config = BitcoinRPCConfiguration(port: port, credentials: creds)
        config.retry = retry
        config.requestTimeout = .seconds(60)
        if let logCapture { return BitcoinRPCClient(configuration: config, logger: logCapture.logger()) }
        return BitcoinRPCClient(configuration: config)
    }

    /// Stops the node (SIGTERM, then SIGKILL after 10 s). Keeps the datadir if `keepData`.
    public func stop(keepData: Bool = false) async {
        await Self.terminate(process)
        if ownsDatadir, !keepData { try? FileManager.default.removeItem(at: datadir) }
    }

    private static func terminate(_ p: Process) async {
        guard p.isRunning else { return }
        p.terminate()
        for _ in 0..<200 where p.isRunning { try? await Task.sleep(for: .milliseconds(50)) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
    }

    deinit {
        // Last resort if a test forgot stop(): never leave a node behind.
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}

/// Runs `body` with a fresh node and always stops it afterwards.
public func withRegtestNode<T>(
    user: String? = "ishtar", password: String? = "test-password-\(UInt32.random(in: 0...UInt32.max))",
    _ body: (RegtestNode) async throws -> T
) async throws -> T {
    let node = try await RegtestNode.start(user: user, password: password)
    do {
        let result = try await body(node)
        await node.stop()
        return result
    } catch {
        await node.stop()
        throw error
    }
}
