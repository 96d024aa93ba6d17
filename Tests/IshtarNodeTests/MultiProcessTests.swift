import Foundation
import IshtarChain
import IshtarConsensus
import IshtarCrypto
import IshtarNode
import IshtarTestSupport
import Logging
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

    func start(_ i: Int, environment: [String: String] = [:]) throws {
        let p = Process()
        p.executableURL = Self.binary
        if !environment.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
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

    /// Whether node `i`'s process has exited on its own (e.g. at a failure point).
    func exited(_ i: Int) -> Bool { lock.withLock { processes[i].map { !$0.isRunning } ?? true } }

    /// Forgets an exited process so it can be started again.
    func reap(_ i: Int) { _ = lock.withLock { processes.removeValue(forKey: i) } }

    func kill9(_ i: Int) {
        guard let p = lock.withLock({ processes.removeValue(forKey: i) }) else { return }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
    }

    func killAll() { (0..<count).forEach { kill9($0) } }

    /// Sends `signal` to node `i` and waits up to `seconds` for it to exit; its exit status,
    /// or nil if it was still running (then it is SIGKILLed).
    func terminate(_ i: Int, signal: Int32 = SIGTERM, within seconds: Double = 15) -> Int32? {
        guard let p = lock.withLock({ processes.removeValue(forKey: i) }) else { return nil }
        kill(p.processIdentifier, signal)
        let deadline = Date().addingTimeInterval(seconds)
        while p.isRunning, Date() < deadline { usleep(50_000) }
        guard !p.isRunning else {
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            return nil
        }
        return p.terminationStatus
    }

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

extension Devnet {
    /// A fresh 4-validator devnet in a scratch directory named `scratch`, initialized for
    /// `chainID`, with nodes `0..<running` started. Call ``tearDown()`` when done.
    static func launch(_ scratch: String, chainID: String, running: Int = 4) throws -> Devnet {
        let net = Devnet(dir: try nodeScratch(scratch), count: 4, basePort: freeBasePort())
        try net.initialize(chainID: chainID)
        for i in 0..<running { try net.start(i) }
        return net
    }

    /// Kills every node and removes the directory.
    func tearDown() {
        killAll()
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// The end of each listed node's log, for a failure message.
    func diagnostics(_ nodes: Range<Int>? = nil, tail: Int = 3000) -> String {
        (nodes ?? 0..<count).map { "--- node\($0)\n" + String(log($0).suffix(tail)) }.joined(separator: "\n")
    }
}

/// One sender's transactions, sequential nonces, each sent to the next live node until a node
/// reports it committed (unconfirmed ones are resent, same bytes, to another node).
final class TransactionStreamer: @unchecked Sendable {
    // @unchecked: `committed` and `stop` are Locked; the thread is joined in finish().
    private let committed = Locked<[Data]>([])
    private let stop = Locked(false)
    private let done = DispatchSemaphore(value: 0)

    init(net: Devnet, chainID: String) {
        let committed = self.committed, stop = self.stop, done = self.done
        Thread {
            defer { done.signal() }
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
        }.start()
    }

    /// Stops the stream; the hashes of the transactions a node reported committed.
    func finish() -> [Data] {
        stop.withLock { $0 = true }
        done.wait()
        return committed.withLock { $0 }
    }
}

extension Devnet {
    /// No fork: every node reports the same block (hence the same app hash chain) at every
    /// height up to the lowest node's; every transaction in `txs` is on every node; no node
    /// logged evidence of a double vote.
    func expectOneChainKeeping(_ txs: [Data], sourceLocation: SourceLocation = #_sourceLocation) {
        let top = (0..<count).map { height($0) ?? 0 }.min() ?? 0
        #expect(top >= 1, sourceLocation: sourceLocation)
        for h in 1...max(1, top) {
            let hashes = Set((0..<count).compactMap { blockHash($0, h) })
            #expect(hashes.count == 1, "height \(h): \(hashes)", sourceLocation: sourceLocation)
        }
        for hash in txs {
            for i in 0..<count { #expect(hasTx(i, hash), "tx missing on node\(i)", sourceLocation: sourceLocation) }
        }
        for i in 0..<count { #expect(!log(i).contains("duplicate vote evidence"), sourceLocation: sourceLocation) }
    }
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
    @Test(.timeLimit(.minutes(4))) func fourValidatorsSurviveSigkill() async throws {
        let chainID = "ishtar-crash"
        let net = try Devnet.launch("devnet", chainID: chainID)
        defer { net.tearDown() }
        func diagnostics() -> String { net.diagnostics() }

        try #require(await waitUntil(40) { (0..<4).allSatisfy { (net.height($0) ?? 0) >= 2 } }, "devnet did not start\n\(diagnostics())")

        let streamer = TransactionStreamer(net: net, chainID: chainID)

        func maxHeight(_ nodes: [Int]) -> UInt64 { nodes.compactMap { net.height($0) }.max() ?? 0 }
        func minHeight(_ nodes: [Int]) -> UInt64 { nodes.map { net.height($0) ?? 0 }.min() ?? 0 }

        // 1. SIGKILL one validator: blocks keep coming.
        net.kill9(3)
        let h1 = maxHeight([0, 1, 2])
        #expect(await waitUntil(25) { minHeight([0, 1, 2]) >= h1 + 4 }, "chain stalled with one validator down\n\(diagnostics())")

        // 2. Restart it: it catches up.
        try net.start(3)
        let target2 = maxHeight([0, 1, 2])
        #expect(await waitUntil(40) { (net.height(3) ?? 0) >= target2 + 1 }, "restarted node did not catch up\n\(diagnostics())")

        // 3. SIGKILL two (half the power): no new heights anywhere.
        net.kill9(2)
        net.kill9(3)
        await pause(1.5)  // let a block decided just before the kill finish committing
        let frozen = (net.height(0) ?? 0, net.height(1) ?? 0)
        await pause(4)
        #expect(net.height(0) == frozen.0 && net.height(1) == frozen.1, "chain advanced without a quorum")

        // 4. Restart one: the chain resumes. Then the other.
        try net.start(2)
        #expect(await waitUntil(40) { minHeight([0, 1, 2]) >= max(frozen.0, frozen.1) + 3 }, "chain did not resume\n\(diagnostics())")
        try net.start(3)
        let target4 = maxHeight([0, 1, 2])
        #expect(await waitUntil(40) { (net.height(3) ?? 0) >= target4 }, "node3 did not catch up\n\(diagnostics())")

        let txs = try await offPool { streamer.finish() }
        #expect(minHeight([0, 1, 2, 3]) >= 10)
        #expect(txs.count >= 3, "too few transactions committed")
        net.expectOneChainKeeping(txs)
    }

    /// SIGKILL at moments nobody chose: six times, a validator picked at random is killed after
    /// a random pause (mid-proposal, mid-commit, mid-sync — wherever it happens to be) and
    /// restarted after another, a third of the times killed again while still starting, under
    /// a transaction stream. Each time the node catches up; at the end all four hold one chain
    /// and every committed transaction. The seed is printed so a failing schedule can be
    /// replayed (`ISHTAR_CRASH_SEED`).
    @Test(.timeLimit(.minutes(10))) func validatorsKilledAtRandomMomentsResume() async throws {
        let seed = ProcessInfo.processInfo.environment["ISHTAR_CRASH_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 1...UInt64(UInt32.max))
        var rng = SplitMix64(seed: seed)
        FileHandle.standardError.write(Data("crash schedule: ISHTAR_CRASH_SEED=\(seed)\n".utf8))
        let chainID = "ishtar-crashloop"
        let net = try Devnet.launch("crashloop", chainID: chainID)
        defer { net.tearDown() }
        func diagnostics() -> String { "seed \(seed)\n" + net.diagnostics(tail: 2000) }
        try #require(await waitUntil(40) { (0..<4).allSatisfy { (net.height($0) ?? 0) >= 2 } }, "devnet did not start\n\(diagnostics())")
        let streamer = TransactionStreamer(net: net, chainID: chainID)

        // ISHTAR_CRASH_ROUNDS runs a longer schedule by hand.
        let rounds = ProcessInfo.processInfo.environment["ISHTAR_CRASH_ROUNDS"].flatMap(Int.init) ?? 6
        for round in 0..<rounds {
            let victim = Int(rng.next() % 4)
            await pause(Double(200_000 + rng.next() % 1_300_000) / 1e6)
            let before = net.height(victim) ?? 0
            net.kill9(victim)
            await pause(Double(rng.next() % 1_000_000) / 1e6)
            try net.start(victim)
            if rng.next() % 3 == 0 {
                // Again while it is still starting: opening its store, replaying, syncing.
                await pause(Double(rng.next() % 400_000) / 1e6)
                net.kill9(victim)
                try net.start(victim)
            }
            let others = (0..<4).filter { $0 != victim }
            let target = others.compactMap { net.height($0) }.max() ?? 0
            #expect(await waitUntil(40) { (net.height(victim) ?? 0) >= target },
                    "round \(round): node\(victim) (killed at height \(before)) did not reach \(target)\n\(diagnostics())")
        }
        let txs = try await offPool { streamer.finish() }
        #expect(txs.count >= 3, "too few transactions committed (seed \(seed))")
        net.expectOneChainKeeping(txs)
    }

    /// A validator SIGKILLed exactly between storing a decided block (certificate + block,
    /// one synced batch) and the application's commit replays that block at restart,
    /// reaches the app hash the others reached, and keeps following the chain.
    @Test(.timeLimit(.minutes(3))) func crashBetweenDecisionAndCommitReplaysTheBlock() async throws {
        let net = try Devnet.launch("failpoint", chainID: "ishtar-failpoint", running: 0)
        defer { net.tearDown() }
        let crashHeight: UInt64 = 4
        try net.start(0, environment: ["ISHTAR_FAILPOINT_CRASH_AFTER_DECIDE": "\(crashHeight)"])
        for i in 1..<4 { try net.start(i) }
        func diagnostics() -> String { net.diagnostics() }

        // A transaction in the crash block's neighbourhood so the replay changes state.
        let user = Schnorr.PrivateKey()
        try #require(await waitUntil(40) { (net.height(1) ?? 0) >= 2 }, "devnet did not start\n\(diagnostics())")
        for n in 0..<3 {
            let tx = try Transaction.signed(chainID: "ishtar-failpoint", key: user, nonce: UInt64(n),
                                            messages: [SetLabel(label: "f\(n)").message]).encoded
            _ = net.submit(1, tx)
        }
        try #require(await waitUntil(40) { net.exited(0) }, "node0 did not hit the failpoint\n\(diagnostics())")
        net.reap(0)
        // The others finish height `crashHeight` and go on without it.
        try #require(await waitUntil(30) { (net.height(1) ?? 0) >= crashHeight + 2 }, "chain stalled\n\(diagnostics())")

        try net.start(0)
        // Restarted: the stored decision is replayed (not re-decided), then it syncs.
        try #require(await waitUntil(40) { (net.height(0) ?? 0) >= crashHeight + 2 }, "node0 did not resume\n\(diagnostics())")
        let log = net.log(0)
        #expect(log.contains("replayed decided block after crash"), "no replay in node0's log")
        #expect(log.components(separatedBy: "replayed decided block after crash").count == 2, "replayed more than once")
        // Same app hash after the replayed block: it is in the next block's header, and
        // node0 accepted that block only because its own app hash matched it.
        let next = crashHeight + 1
        let headers = (0..<4).compactMap { net.json($0, "/blocks/\(next)")?["header"] as? [String: Any] }
        #expect(headers.count == 4)
        let appHashes = Set(headers.compactMap { $0["app_hash"] as? String ?? $0["appHash"] as? String })
        #expect(appHashes.count == 1, "app hashes after the replayed block differ: \(appHashes)")
        #expect(Set((0..<4).compactMap { net.blockHash($0, crashHeight) }).count == 1)
        for i in 0..<4 { #expect(!net.log(i).contains("duplicate vote evidence")) }
    }

    /// SIGTERM and SIGINT stop a validator cleanly: it exits 0, says so, releases its pid
    /// file and its store, and starts again where it stopped.
    @Test(.timeLimit(.minutes(3))) func terminationSignalsStopANodeCleanly() async throws {
        let net = try Devnet.launch("terminate", chainID: "ishtar-terminate")
        defer { net.tearDown() }
        func diagnostics() -> String { net.diagnostics() }
        try #require(await waitUntil(40) { (net.height(0) ?? 0) >= 3 }, "devnet did not start\n\(diagnostics())")
        // A node holds its decrypted keys for its whole run: core dumps are off.
        let pidText = try String(contentsOfFile: net.dir + "/node0/node.pid", encoding: .utf8)
        let limits = try String(contentsOfFile: "/proc/\(pidText.trimmingCharacters(in: .whitespacesAndNewlines))/limits", encoding: .utf8)
        let core = limits.split(separator: "\n").first { $0.hasPrefix("Max core file size") }
        #expect(core?.dropFirst("Max core file size".count).split(separator: " ").prefix(2) == ["0", "0"], "\(core ?? "")")
        for (i, signal) in [(0, SIGTERM), (1, SIGINT)] {
            let status = net.terminate(i, signal: signal)
            #expect(status == 0, "node\(i) after signal \(signal): \(status.map(String.init) ?? "still running")\n\(diagnostics())")
            #expect(net.log(i).contains("node stopped"), "node\(i) did not log a clean stop")
            #expect(!FileManager.default.fileExists(atPath: net.dir + "/node\(i)/node.pid"), "node\(i) left its pid file")
        }
        // Half the power is gone: restart both (their stores must open: locks released).
        for i in 0..<2 { try net.start(i) }
        let target = (net.height(2) ?? 0) + 2
        #expect(await waitUntil(40) { (0..<4).allSatisfy { (net.height($0) ?? 0) >= target } },
                "the chain did not resume with both restarted\n\(diagnostics())")
        #expect(Set((0..<4).compactMap { net.blockHash($0, target) }).count == 1)
    }

    /// A Byzantine validator (node3's keys, driven by the test instead of the node binary)
    /// sends two conflicting prevotes; the honest three detect it, a proposer puts the
    /// evidence into a block, and every node's consensus module records it.
    @Test(.timeLimit(.minutes(3))) func doubleVoteEvidenceIsCommittedInABlock() async throws {
        let chainID = "ishtar-evidence"
        let net = try Devnet.launch("evidence", chainID: chainID, running: 3)
        defer { net.tearDown() }
        func diagnostics() -> String { net.diagnostics(0..<3) }

        // node3's identity, played by the test: same node key (so the others accept the
        // connection) and validator key (so its votes verify).
        let home = NodeHome(path: net.dir + "/node3")
        let config = try home.loadConfig()
        let validatorKey = try home.loadValidatorKey(config: config, passphrase: nil)
        let signer = SchnorrConsensusSigner(key: validatorKey)
        var logger = Logger(label: "byzantine")
        logger.logLevel = .error
        let byzantine = P2PNetwork(chainID: chainID, nodeKey: try home.loadNodeKey(config: config), config: config.p2p, logger: logger)
        try await byzantine.start()
        defer { Task { await byzantine.stop() } }
        // Three of four equal validators are a quorum: the chain runs without node3.
        try #require(await waitUntil(40) { (net.height(0) ?? 0) >= 2 }, "devnet did not start\n\(diagnostics())")
        #expect(await waitUntil(10) { byzantine.peerCount >= 1 }, "the Byzantine node did not connect")

        let consensusChain = try ChainID(chainID)
        func prevote(_ height: UInt64, _ value: BlockHash?) throws -> SignedVote {
            let v = Vote(type: .prevote, height: height, round: 0, value: value, validator: signer.validatorAddress)
            return SignedVote(vote: v, signature: try signer.sign(v.signBytes(chainID: consensusChain)))
        }
        var recorded: [[String: Any]] = []
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            // Both prevotes for the height in progress: nil and a block nobody proposed.
            let h = (net.height(0) ?? 0) + 1
            byzantine.broadcast(.vote(try prevote(h, nil)))
            byzantine.broadcast(.vote(try prevote(h, try BlockHash(Data((0..<32).map { _ in UInt8.random(in: 0...255) })))))
            await pause(0.3)
            recorded = (net.json(0, "/modules/consensus/evidence")?["evidence"] as? [[String: Any]]) ?? []
            if !recorded.isEmpty { break }
        }
        try #require(!recorded.isEmpty, "no evidence committed\n\(diagnostics())")
        let entry = try #require(recorded.first)
        #expect(entry["validator"] as? String == signer.validatorAddress.hexString)
        #expect(entry["vote_type"] as? String == "prevote")
        let committedAt = try #require((entry["committed_height"] as? String).flatMap(UInt64.init))
        // Every honest node executed that block and recorded the same offence once.
        #expect(await waitUntil(20) { (0..<3).allSatisfy { (net.height($0) ?? 0) >= committedAt } })
        for i in 0..<3 {
            let list = (net.json(i, "/modules/consensus/evidence")?["evidence"] as? [[String: Any]]) ?? []
            #expect(list.count >= 1, "node\(i) has no evidence")
            #expect(list.first?["height"] as? String == entry["height"] as? String)
        }
        #expect(Set((0..<3).compactMap { net.blockHash($0, committedAt) }).count == 1)
        #expect(net.log(0).contains("duplicate vote evidence") || net.log(1).contains("duplicate vote evidence")
                || net.log(2).contains("duplicate vote evidence"))
    }
}
