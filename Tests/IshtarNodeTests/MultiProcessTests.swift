import Foundation
import IshtarChain
import IshtarCrypto
import IshtarNode
import Testing

/// Spawns and kills real `ishtar node start` processes (the binary built beside the tests).
final class Devnet: @unchecked Sendable {
    // @unchecked: `processes` is only touched under `lock`.
    let dir: String
    let basePort: Int
    let count: Int
    private let lock = NSLock()
    private var processes: [Int: Process] = [:]

    static var binary: URL {
        URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("ishtar")
    }

    init(dir: String, count: Int, basePort: Int) {
        self.dir = dir
        self.count = count
        self.basePort = basePort
    }

    func initialize(chainID: String) throws {
        let p = Process()
        p.executableURL = Self.binary
        p.arguments = ["node", "init", "--home", dir, "--chain-id", chainID, "--validators", "\(count)",
                       "--insecure-plaintext", "--fast-timeouts", "--base-port", "\(basePort)", "--json"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw TestError("node init failed: \(p.terminationStatus)") }
    }

    func start(_ i: Int) throws {
        let p = Process()
        p.executableURL = Self.binary
        p.arguments = ["node", "start", "--home", dir + "/node\(i)"]
        let logPath = dir + "/node\(i).log"
        if !FileManager.default.fileExists(atPath: logPath) { _ = FileManager.default.createFile(atPath: logPath, contents: nil) }
        let log = FileHandle(forWritingAtPath: logPath)
        _ = log?.seekToEndOfFile()
        p.standardOutput = log
        p.standardError = log
        try p.run()
        lock.withLock { processes[i] = p }
    }

    func kill9(_ i: Int) {
        guard let p = lock.withLock({ processes.removeValue(forKey: i) }) else { return }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
    }

    func killAll() { (0..<count).forEach { kill9($0) } }

    var alive: [Int] { lock.withLock { processes.keys.sorted() } }

    func client(_ i: Int) throws -> NodeAPIClient {
        try NodeAPIClient(url: "http://127.0.0.1:\(basePort + 2 * i + 1)", timeoutSeconds: 3)
    }

    func json(_ i: Int, _ path: String) -> [String: Any]? {
        guard let r = try? client(i).get(path), r.status == 200 else { return nil }
        return (try? JSONSerialization.jsonObject(with: r.body)) as? [String: Any]
    }

    func height(_ i: Int) -> UInt64? { (json(i, "/status")?["height"] as? NSNumber)?.uint64Value }

    func blockHash(_ i: Int, _ h: UInt64) -> String? { json(i, "/blocks/\(h)")?["hash"] as? String }

    /// POST /txs; true when accepted into the mempool.
    func submit(_ i: Int, _ tx: Data) -> Bool {
        let body = Data(#"{"tx":"\#(tx.map { String(format: "%02x", $0) }.joined())"}"#.utf8)
        guard let r = try? client(i).post("/txs", body: body) else { return false }
        return r.status == 200
    }

    func hasTx(_ i: Int, _ hash: Data) -> Bool {
        guard let r = try? client(i).get("/txs/" + hash.map { String(format: "%02x", $0) }.joined()) else { return false }
        return r.status == 200
    }

    func log(_ i: Int) -> String {
        String(decoding: FileManager.default.contents(atPath: dir + "/node\(i).log") ?? Data(), as: UTF8.self)
    }
}

/// A lock-protected value shared with the transaction streamer task.
final class Locked<T>: @unchecked Sendable {
    // @unchecked: `value` is only touched under `lock`.
    private let lock = NSLock()
    private var value: T
    init(_ v: T) { value = v }
    func withLock<R>(_ body: (inout T) -> R) -> R { lock.withLock { body(&value) } }
}

struct TestError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

func waitUntil(_ seconds: Double, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        usleep(100_000)
    }
    return condition()
}

@Suite(.serialized) struct MultiProcessTests {
    /// Four validator processes; a steady transaction stream over the HTTP API; SIGKILL one
    /// (chain continues), restart it (catches up, same blocks), SIGKILL two (chain stops, no
    /// fork), restart (chain resumes); every committed transaction survives everything.
    @Test(.timeLimit(.minutes(4))) func fourValidatorsSurviveSigkill() throws {
        let dir = try nodeScratch("devnet")
        let chainID = "ishtar-crash"
        let net = Devnet(dir: dir, count: 4, basePort: randomBasePort())
        defer {
            net.killAll()
            try? FileManager.default.removeItem(atPath: dir)
        }
        try net.initialize(chainID: chainID)
        for i in 0..<4 { try net.start(i) }
        func diagnostics() -> String { (0..<4).map { "--- node\($0)\n" + String(net.log($0).suffix(3000)) }.joined(separator: "\n") }

        try #require(waitUntil(40) { (0..<4).allSatisfy { (net.height($0) ?? 0) >= 2 } }, "devnet did not start\n\(diagnostics())")

        // Transaction stream: one sender, sequential nonces; a tx counts as committed once a
        // node reports it; unconfirmed ones are resubmitted (same bytes) to another live node.
        let committed = Locked<[Data]>([])
        let stop = Locked(false)
        let streamerDone = DispatchSemaphore(value: 0)
        let streamer = Thread {
            defer { streamerDone.signal() }
            let user = Schnorr.PrivateKey()
            var nonce: UInt64 = 0
            var target = 0
            while !stop.withLock({ $0 }) {
                guard let tx = try? Transaction.signed(chainID: chainID, key: user, nonce: nonce,
                                                       messages: [SetLabel(label: "n\(nonce)").message]).encoded
                else { return }
                let hash = Transaction.hash(of: tx)
                let alive = net.alive
                guard !alive.isEmpty else { usleep(200_000); continue }
                target = (target + 1) % alive.count
                let node = alive[target]
                _ = net.submit(node, tx)
                if waitUntil(4, { stop.withLock { $0 } || net.hasTx(node, hash) }), net.hasTx(node, hash) {
                    committed.withLock { $0.append(hash) }
                    nonce += 1
                }
            }
        }
        streamer.start()

        func maxHeight(_ nodes: [Int]) -> UInt64 { nodes.compactMap { net.height($0) }.max() ?? 0 }
        func minHeight(_ nodes: [Int]) -> UInt64 { nodes.map { net.height($0) ?? 0 }.min() ?? 0 }

        // 1. SIGKILL one validator: blocks keep coming.
        net.kill9(3)
        let h1 = maxHeight([0, 1, 2])
        #expect(waitUntil(25) { minHeight([0, 1, 2]) >= h1 + 4 }, "chain stalled with one validator down\n\(diagnostics())")

        // 2. Restart it: it catches up.
        try net.start(3)
        let target2 = maxHeight([0, 1, 2])
        #expect(waitUntil(40) { (net.height(3) ?? 0) >= target2 + 1 }, "restarted node did not catch up\n\(diagnostics())")

        // 3. SIGKILL two (half the power): no new heights anywhere.
        net.kill9(2)
        net.kill9(3)
        usleep(1_500_000)  // let a block decided just before the kill finish committing
        let frozen = (net.height(0) ?? 0, net.height(1) ?? 0)
        usleep(4_000_000)
        #expect(net.height(0) == frozen.0 && net.height(1) == frozen.1, "chain advanced without a quorum")

        // 4. Restart one: the chain resumes. Then the other.
        try net.start(2)
        #expect(waitUntil(40) { minHeight([0, 1, 2]) >= max(frozen.0, frozen.1) + 3 }, "chain did not resume\n\(diagnostics())")
        try net.start(3)
        let target4 = maxHeight([0, 1, 2])
        #expect(waitUntil(40) { (net.height(3) ?? 0) >= target4 }, "node3 did not catch up\n\(diagnostics())")

        stop.withLock { $0 = true }
        streamerDone.wait()

        // No fork: every node reports the same block (hence the same app hash chain) at every height.
        let top = minHeight([0, 1, 2, 3])
        #expect(top >= 10)
        for h in 1...top {
            let hashes = Set((0..<4).compactMap { net.blockHash($0, h) })
            #expect(hashes.count == 1, "height \(h): \(hashes)")
        }
        // Every transaction reported committed is still there, on every node.
        let txs = committed.withLock { $0 }
        #expect(txs.count >= 3, "too few transactions committed")
        for hash in txs {
            for i in 0..<4 { #expect(net.hasTx(i, hash), "tx missing on node\(i)") }
        }
        // Never double-signed: no node logged duplicate-vote evidence.
        for i in 0..<4 { #expect(!net.log(i).contains("duplicate vote evidence")) }
    }
}
