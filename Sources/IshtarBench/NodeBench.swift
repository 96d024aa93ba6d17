import Foundation
import IshtarChain
import IshtarConsensus
import IshtarCrypto
import IshtarNode
import IshtarStore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `node` suite: a real 4-validator devnet (the release `ishtar` binary, one process per
/// validator, loopback TCP) driven with signed `accounts/SetLabel` transactions over the
/// HTTP API for a fixed time, and single-node block execution against raw RocksDB writes
/// of the same bytes.
///
/// Environment knobs (defaults are the reported configuration):
/// `NODE_BENCH_SECONDS` (drive time, 20), `NODE_BENCH_RATE` (offered tx/s, 1200),
/// `NODE_BENCH_BATCH` (transactions per `POST /txs/batch` request, 50),
/// `NODE_BENCH_EXEC_BLOCKS` / `NODE_BENCH_EXEC_TXS` (single-node fresh-database blocks × transactions, 20 × 1000),
/// `NODE_BENCH_EXEC_CYCLE_BLOCKS` (steady-state blocks; default one whole cycle of the raw memtable),
/// `NODE_BENCH_PARTS` (which parts run, `devnet,exec`).
enum NodeBench {
    static let goalTPS = 1000.0
    static let goalP50Seconds = 1.5
    static let goalExecRatio = 2.0

    static func env(_ name: String, _ def: Int) -> Int {
        ProcessInfo.processInfo.environment[name].flatMap(Int.init) ?? def
    }

    static func run() -> [String: Any] {
        var out: [String: Any] = [:]
        let parts = Set((ProcessInfo.processInfo.environment["NODE_BENCH_PARTS"] ?? "devnet,exec").split(separator: ",").map(String.init))
        if parts.contains("devnet") { do {
            out["devnet"] = try Devnet.run(
                seconds: env("NODE_BENCH_SECONDS", 20), rate: env("NODE_BENCH_RATE", 1200), batch: env("NODE_BENCH_BATCH", 50))
        } catch {
            progress("devnet part failed: \(error)")
            out["devnet"] = ["error": "\(error)"]
        } }
        if parts.contains("exec") { do {
            let cycle = env("NODE_BENCH_EXEC_CYCLE_BLOCKS", 0)
            out["block_execution"] = try Execution.run(freshBlocks: env("NODE_BENCH_EXEC_BLOCKS", 20), txs: env("NODE_BENCH_EXEC_TXS", 1000),
                                                       cycleBlocks: cycle > 0 ? cycle : nil)
        } catch {
            progress("block execution part failed: \(error)")
            out["block_execution"] = ["error": "\(error)"]
        } }
        return out
    }

    struct BenchError: Error, CustomStringConvertible {
        let description: String
        init(_ d: String) { description = d }
    }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }

    /// The 1-minute load average: the machine is shared, so every result says how busy it was.
    static func loadAverage() -> Double {
        guard let text = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8),
            let first = text.split(separator: " ").first
        else { return -1 }
        return Double(first) ?? -1
    }

    static func percentile(_ sorted: [Double], _ p: Double) -> Double {
        guard !sorted.isEmpty else { return .nan }
        return sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
    }

    static func hex(_ d: Data) -> String {
        var s = ""
        s.reserveCapacity(d.count * 2)
        let digits = Array("0123456789abcdef".utf8)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(d.count * 2)
        for b in d {
            bytes.append(digits[Int(b >> 4)])
            bytes.append(digits[Int(b & 15)])
        }
        s = String(decoding: bytes, as: UTF8.self)
        return s
    }
}

// MARK: - A keep-alive HTTP/1.1 client

/// A blocking HTTP/1.1 connection that stays open between requests (the node API's own
/// client closes after each one, which would measure TCP setup instead of the node).
final class BenchHTTPConnection {
    let port: Int
    private var fd: Int32 = -1

    init(port: Int) { self.port = port }
    deinit { if fd >= 0 { close(fd) } }

    private func connectIfNeeded() throws {
        guard fd < 0 else { return }
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard s >= 0 else { throw NodeBench.BenchError("socket failed") }
        var one: Int32 = 1
        setsockopt(s, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var tv = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard r == 0 else {
            close(s)
            throw NodeBench.BenchError("connect to 127.0.0.1:\(port) failed (errno \(errno))")
        }
        fd = s
    }

    /// One request; reconnects once if the kept-alive connection was closed.
    func request(_ method: String, _ path: String, body: Data? = nil, contentType: String = "application/octet-stream")
        throws -> (status: Int, body: Data)
    {
        do { return try attempt(method, path, body: body, contentType: contentType) } catch {
            if fd >= 0 { close(fd); fd = -1 }
            return try attempt(method, path, body: body, contentType: contentType)
        }
    }

    private func attempt(_ method: String, _ path: String, body: Data?, contentType: String) throws -> (status: Int, body: Data) {
        try connectIfNeeded()
        var req = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        if let body { req += "Content-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n" }
        req += "\r\n"
        var bytes = Data(req.utf8)
        if let body { bytes.append(body) }
        try bytes.withUnsafeBytes { raw in
            var off = 0
            while off < raw.count {
                let n = send(fd, raw.baseAddress! + off, raw.count - off, Int32(MSG_NOSIGNAL))
                guard n > 0 else { throw NodeBench.BenchError("send failed") }
                off += n
            }
        }
        var buf = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 65536)
        var headerEnd: Int?
        var contentLength = 0
        var status = 0
        while true {
            let n = recv(fd, &chunk, chunk.count, 0)
            guard n > 0 else { throw NodeBench.BenchError("connection closed") }
            buf.append(contentsOf: chunk[0..<n])
            if headerEnd == nil, let end = Self.find(buf) {
                headerEnd = end
                let head = String(decoding: buf[0..<end], as: UTF8.self)
                let lines = head.split(separator: "\r\n")
                status = lines.first.flatMap { Int($0.split(separator: " ").dropFirst().first ?? "") } ?? 0
                for l in lines.dropFirst() where l.lowercased().hasPrefix("content-length:") {
                    contentLength = Int(l.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) ?? 0
                }
            }
            if let h = headerEnd, buf.count >= h + 4 + contentLength {
                return (status, Data(buf[(h + 4)..<(h + 4 + contentLength)]))
            }
        }
    }

    private static func find(_ b: [UInt8]) -> Int? {
        guard b.count >= 4 else { return nil }
        for i in 0...(b.count - 4) where b[i] == 13 && b[i + 1] == 10 && b[i + 2] == 13 && b[i + 3] == 10 { return i }
        return nil
    }
}

/// A value shared between bench threads.
final class BenchShared<T>: @unchecked Sendable {
    // @unchecked: `value` is only touched under `lock`.
    private let lock = NSLock()
    private var value: T
    init(_ v: T) { value = v }
    func withLock<R>(_ body: (inout T) -> R) -> R { lock.withLock { body(&value) } }
}

// MARK: - Devnet throughput

extension NodeBench {
    enum Devnet {
        static let nodes = 4

        static func run(seconds: Int, rate: Int, batch: Int) throws -> [String: Any] {
            let binary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
                .deletingLastPathComponent().appendingPathComponent("ishtar").path
            guard FileManager.default.isExecutableFile(atPath: binary) else {
                throw BenchError("\(binary) is missing: build the ishtar product in release mode first")
            }
            let dir = NSTemporaryDirectory() + "ishtar-node-bench-\(getpid())"
            try? FileManager.default.removeItem(atPath: dir)
            let basePort = Int.random(in: 20_000...50_000) & ~1
            let chainID = "ishtar-bench"
            progress("node: initializing a \(nodes)-validator devnet in \(dir) (ports \(basePort)…)")
            try runTool(binary, ["node", "init", "--home", dir, "--chain-id", chainID, "--validators", "\(nodes)",
                                 "--insecure-plaintext", "--fast-timeouts", "--base-port", "\(basePort)", "--json"])
            // Logs at warning: an info line per block and peer event is noise at this rate.
            for i in 0..<nodes {
                let path = dir + "/node\(i)/config.json"
                guard let data = FileManager.default.contents(atPath: path),
                    var obj = try JSONSerialization.jsonObject(with: data) as? [String: Any]
                else { throw BenchError("cannot read \(path)") }
                obj["log_level"] = ProcessInfo.processInfo.environment["NODE_BENCH_LOG_LEVEL"] ?? "warning"
                // The production timeouts (`--fast-timeouts` keeps only 600 ms for a proposal
                // to be built, sent and checked, which multi-thousand-transaction blocks on a
                // shared 2-core machine overrun, failing rounds), with the fast devnet's
                // 200 ms block interval and 250 ms gossip.
                var consensus = obj["consensus"] as? [String: Any] ?? [:]
                let defaults = ConsensusConfig()
                consensus["propose_base_ms"] = defaults.proposeBaseMillis
                consensus["propose_delta_ms"] = defaults.proposeDeltaMillis
                consensus["prevote_base_ms"] = defaults.prevoteBaseMillis
                consensus["prevote_delta_ms"] = defaults.prevoteDeltaMillis
                consensus["precommit_base_ms"] = defaults.precommitBaseMillis
                consensus["precommit_delta_ms"] = defaults.precommitDeltaMillis
                obj["consensus"] = consensus
                try JSONSerialization.data(withJSONObject: obj, options: [.prettyPrinted, .sortedKeys])
                    .write(to: URL(fileURLWithPath: path))
            }
            var procs: [Process] = []
            defer {
                for p in procs where p.isRunning { p.terminate() }
                let deadline = Date().addingTimeInterval(10)
                while procs.contains(where: \.isRunning), Date() < deadline { usleep(50_000) }
                for p in procs where p.isRunning { kill(p.processIdentifier, SIGKILL) }
                if ProcessInfo.processInfo.environment["NODE_BENCH_KEEP"] == nil { try? FileManager.default.removeItem(atPath: dir) }
            }
            for i in 0..<nodes {
                let p = Process()
                p.executableURL = URL(fileURLWithPath: binary)
                p.arguments = ["node", "start", "--home", dir + "/node\(i)"]
                let logPath = dir + "/node\(i)/node.log"
                _ = FileManager.default.createFile(atPath: logPath, contents: nil)
                p.standardOutput = FileHandle(forWritingAtPath: logPath)
                p.standardError = FileHandle(forWritingAtPath: logPath)
                try p.run()
                procs.append(p)
            }
            @Sendable func apiPort(_ i: Int) -> Int { basePort + 2 * i + 1 }
            func height(_ c: BenchHTTPConnection) -> UInt64? {
                guard let r = try? c.request("GET", "/status"), r.status == 200,
                    let o = try? JSONSerialization.jsonObject(with: r.body) as? [String: Any]
                else { return nil }
                return (o["height"] as? NSNumber)?.uint64Value
            }
            let statusClients = (0..<nodes).map { BenchHTTPConnection(port: apiPort($0)) }
            let startDeadline = Date().addingTimeInterval(60)
            while Date() < startDeadline, !statusClients.allSatisfy({ (height($0) ?? 0) >= 2 }) { usleep(200_000) }
            guard statusClients.allSatisfy({ (height($0) ?? 0) >= 2 }) else { throw BenchError("devnet did not reach height 2 in 60 s") }

            // Pre-signed load: senders are pinned to one node and one submitter thread, so a
            // sender's nonces reach its node in order (gossip keeps per-connection order).
            let total = rate * seconds
            let perSender = 16
            let senders = (total + perSender - 1) / perSender
            progress("node: signing \(senders * perSender) transactions from \(senders) senders")
            let signStart = ContinuousClock.now
            let signed = BenchShared<[[Data]]>(Array(repeating: [], count: senders))
            DispatchQueue.concurrentPerform(iterations: 2) { part in
                var local: [(Int, [Data])] = []
                for s in stride(from: part, to: senders, by: 2) {
                    let key = Schnorr.PrivateKey()
                    var list: [Data] = []
                    for n in 0..<perSender {
                        if let tx = try? Transaction.signed(chainID: chainID, key: key, nonce: UInt64(n),
                                                            messages: [SetLabel(label: "b\(s)-\(n)").message]).encoded {
                            list.append(tx)
                        }
                    }
                    local.append((s, list))
                }
                signed.withLock { all in for (s, l) in local { all[s] = l } }
            }
            let txs = signed.withLock { $0 }
            progress("node: signed in \(String(format: "%.1f", NodeBench.seconds(ContinuousClock.now - signStart))) s")
            // Order of submission: round n of every sender before round n+1, so each block
            // can hold many senders' transactions.
            let threadsPerNode = 2
            let submitters = nodes * threadsPerNode
            var queues: [[Data]] = Array(repeating: [], count: submitters)
            for n in 0..<perSender {
                for s in 0..<senders where n < txs[s].count { queues[s % submitters].append(txs[s][n]) }
            }
            let submitted = BenchShared<[Data: ContinuousClock.Instant]>([:])
            let rejected = BenchShared<[String: Int]>([:])
            let committedAt = BenchShared<[Data: ContinuousClock.Instant]>([:])
            let blockTimes = BenchShared<[(ContinuousClock.Instant, Int)]>([])
            let stop = BenchShared(false)
            let clock = ContinuousClock()
            // The watcher counts blocks above this height: read it before anything is sent,
            // or a block committed while the status call was slow would go uncounted.
            let firstHeight = height(statusClients[0]) ?? 0
            let start = clock.now.advanced(by: .milliseconds(200))
            let perThreadRate = Double(rate) / Double(submitters)
            let group = DispatchGroup()
            for t in 0..<submitters {
                let queue = queues[t]
                let port = apiPort(t % nodes)
                group.enter()
                Thread {
                    defer { group.leave() }
                    let http = BenchHTTPConnection(port: port)
                    var i = 0
                    while i < queue.count {
                        // Paced: transaction i is due at start + i / rate.
                        let due = start.advanced(by: .seconds(Double(i) / perThreadRate))
                        let now = clock.now
                        if due > now { Thread.sleep(forTimeInterval: NodeBench.seconds(due - now)) }
                        if stop.withLock({ $0 }) { break }
                        // Everything due by now goes in one request.
                        var j = i + 1
                        let horizon = clock.now
                        while j < queue.count, j - i < batch, start.advanced(by: .seconds(Double(j) / perThreadRate)) <= horizon { j += 1 }
                        let chunk = Array(queue[i..<j])
                        let sentAt = clock.now
                        submitted.withLock { m in for tx in chunk { m[Transaction.hash(of: tx)] = sentAt } }
                        var body = Data()
                        for tx in chunk {
                            withUnsafeBytes(of: UInt32(tx.count).bigEndian) { body.append(contentsOf: $0) }
                            body.append(tx)
                        }
                        do {
                            let r = try http.request("POST", "/txs/batch", body: body)
                            if r.status != 200 {
                                rejected.withLock { $0["http \(r.status)", default: 0] += chunk.count }
                            } else if let arr = (try? JSONSerialization.jsonObject(with: r.body) as? [String: Any])?["results"] as? [[String: Any]] {
                                for item in arr where (item["accepted"] as? Bool) != true {
                                    let rule = item["rule"] as? String ?? "?"
                                    rejected.withLock { $0[rule, default: 0] += 1 }
                                }
                            }
                        } catch {
                            rejected.withLock { $0["transport", default: 0] += chunk.count }
                        }
                        i = j
                    }
                }.start()
            }
            // Commit watcher on node 0: each new block's transactions, timestamped when seen.
            let watcherDone = DispatchSemaphore(value: 0)
            Thread {
                defer { watcherDone.signal() }
                let http = BenchHTTPConnection(port: apiPort(0))
                var next = firstHeight + 1
                while !stop.withLock({ $0 }) {
                    guard let r = try? http.request("GET", "/blocks/\(next)"), r.status == 200,
                        let o = try? JSONSerialization.jsonObject(with: r.body) as? [String: Any]
                    else {
                        usleep(10_000)
                        continue
                    }
                    let seen = clock.now
                    let hashes = (o["transactions"] as? [[String: Any]] ?? []).compactMap { ($0["hash"] as? String) }
                    committedAt.withLock { m in
                        for h in hashes { if let d = try? Data(hex: h), m[d] == nil { m[d] = seen } }
                    }
                    blockTimes.withLock { $0.append((seen, hashes.count)) }
                    next += 1
                }
            }.start()

            let loadBefore = NodeBench.loadAverage()
            progress("node: driving \(rate) tx/s for \(seconds) s (batches of ≤ \(batch) per request)")
            var lastReport = clock.now
            while clock.now < start.advanced(by: .seconds(seconds)) {
                usleep(200_000)
                if clock.now - lastReport >= .seconds(5) {
                    lastReport = clock.now
                    let c = committedAt.withLock { $0.count }, s = submitted.withLock { $0.count }
                    progress("node:   submitted \(s), committed \(c), rejected \(rejected.withLock { $0.values.reduce(0, +) })")
                }
            }
            let end = start.advanced(by: .seconds(seconds))
            group.wait()
            // Drain: wait for what was accepted to commit (bounded). Only the driven
            // transactions count: blocks also carry the validators' own (checkpoint
            // signatures), and counting those let the drain end before the last block of
            // driven ones was seen, which then read as transactions never committed.
            let drainDeadline = clock.now.advanced(by: .seconds(15))
            let hashes = Array(submitted.withLock { $0.keys })
            let accepted = hashes.count - rejected.withLock { $0.values.reduce(0, +) }
            while clock.now < drainDeadline {
                let seen = committedAt.withLock { m in hashes.reduce(0) { $0 + (m[$1] == nil ? 0 : 1) } }
                if seen >= accepted { break }
                usleep(100_000)
            }
            stop.withLock { $0 = true }
            watcherDone.wait()

            let sub = submitted.withLock { $0 }
            let com = committedAt.withLock { $0 }
            let blocks = blockTimes.withLock { $0 }
            // Steady-state window: skip the first 2 s of the drive.
            let windowStart = start.advanced(by: .seconds(min(2, seconds / 4)))
            let window = NodeBench.seconds(end - windowStart)
            let inWindow = blocks.filter { $0.0 >= windowStart && $0.0 <= end }
            let tps = Double(inWindow.map(\.1).reduce(0, +)) / window
            let bps = Double(inWindow.count) / window
            var latencies: [Double] = []
            for (h, t) in sub { if let c = com[h] { latencies.append(NodeBench.seconds(c - t)) } }
            latencies.sort()
            let p50 = percentile(latencies, 0.5), p99 = percentile(latencies, 0.99)
            let rej = rejected.withLock { $0 }
            let lost = sub.count - latencies.count - rej.values.reduce(0, +)
            progress("node: committed \(String(format: "%.0f", tps)) tx/s, \(String(format: "%.2f", bps)) blocks/s, p50 \(String(format: "%.3f", p50)) s, p99 \(String(format: "%.3f", p99)) s")
            let heights = statusClients.compactMap { height($0) }
            // If any stayed uncommitted, where they are: still pending in a mempool, or gone.
            let mempools: [Int] = statusClients.compactMap { c in
                guard let r = try? c.request("GET", "/status"), r.status == 200,
                    let o = try? JSONSerialization.jsonObject(with: r.body) as? [String: Any] else { return nil }
                return (o["mempool_size"] as? NSNumber)?.intValue
            }
            let missing = sub.keys.filter { com[$0] == nil }.prefix(5).map(\.hexString)
            return [
                "validators": nodes,
                "offered_tx_per_second": rate,
                "drive_seconds": seconds,
                "submitted": sub.count,
                "committed": latencies.count,
                "rejected": rej,
                "not_committed": max(0, lost),
                "not_committed_examples": Array(missing),
                "final_mempool_sizes": mempools,
                "committed_tx_per_second": rounded(tps),
                "blocks_per_second": rounded(bps),
                "mean_tx_per_block": inWindow.isEmpty ? 0 : rounded(Double(inWindow.map(\.1).reduce(0, +)) / Double(inWindow.count)),
                "latency_p50_seconds": rounded(p50),
                "latency_p99_seconds": rounded(p99),
                "final_heights": heights,
                "load_average_1m_before_after": [loadBefore, NodeBench.loadAverage()],
                "goal_tx_per_second": goalTPS,
                "goal_p50_seconds": goalP50Seconds,
                "met": tps >= goalTPS && p50 <= goalP50Seconds,
            ]
        }

        static func runTool(_ binary: String, _ args: [String]) throws {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: binary)
            p.arguments = args
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.standardError
            try p.run()
            p.waitUntilExit()
            guard p.terminationStatus == 0 else { throw BenchError("ishtar \(args.prefix(2).joined(separator: " ")) failed") }
        }
    }
}

// MARK: - Single-node block execution against raw RocksDB

/// Forwards to a `Database` and keeps every batch written, so the raw baseline can write
/// exactly the same bytes.
final class BenchRecordingStore: KeyValueStore, @unchecked Sendable {
    // @unchecked: used from one thread in the bench.
    typealias Snapshot = DatabaseSnapshot
    let db: Database
    var batches: [WriteBatch] = []

    init(_ db: Database) { self.db = db }
    var columnFamilies: [String] { db.columnFamilies }
    func get(_ key: Data, in columnFamily: String) throws -> Data? { try db.get(key, in: columnFamily) }
    func multiGet(_ keys: [Data], in columnFamily: String) throws -> [Data?] { try db.multiGet(keys, in: columnFamily) }
    func multiGet(_ keys: KeyList, in columnFamily: String) throws -> [Data?] { try db.multiGet(keys, in: columnFamily) }
    func scan(_ columnFamily: String, _ range: KeyRange, direction: ScanDirection) throws -> StoreIterator {
        try db.scan(columnFamily, range, direction: direction)
    }
    func write(_ batch: WriteBatch, sync: Bool) throws {
        try db.write(batch, sync: sync)
        batches.append(batch)
    }
    func snapshot() throws -> DatabaseSnapshot { try db.snapshot() }
    func close() throws { try db.close() }
}

extension NodeBench {
    enum Execution {
        /// One block's paired timings.
        struct BlockTiming {
            var exec = Duration.zero, execWithCheck = Duration.zero, raw = Duration.zero, committed = 0, bytes = 0
        }

        /// Sums and ratios over a run of blocks.
        static func figures(_ blocks: ArraySlice<BlockTiming>) -> [String: Any] {
            let n = Double(blocks.reduce(0) { $0 + $1.committed })
            let exec = seconds(blocks.reduce(Duration.zero) { $0 + $1.exec })
            let raw = seconds(blocks.reduce(Duration.zero) { $0 + $1.raw })
            let withCheck = seconds(blocks.reduce(Duration.zero) { $0 + $1.execWithCheck })
            return [
                "blocks": blocks.count,
                "exec_commit_tx_per_second": rounded(n / exec),
                "exec_commit_with_process_proposal_tx_per_second": rounded(n / withCheck),
                "raw_rocksdb_tx_per_second": rounded(n / raw),
                "ratio_exec_over_raw": rounded(ratio(blocks)),
            ]
        }

        /// What a database holds at one end of a timed window: MiB in its memtables and its
        /// SST files (all families), from RocksDB's own properties.
        static func databaseState(_ property: (String) throws -> Int?) rethrows -> [String: Any] {
            var files = 0
            for level in 0..<7 { files += try property("rocksdb.num-files-at-level\(level)") ?? 0 }
            return [
                "memtable_mib": rounded(Double(try property("rocksdb.cur-size-all-mem-tables") ?? 0) / 1_048_576),
                "sst_files": files,
            ]
        }

        static func ratio(_ blocks: ArraySlice<BlockTiming>) -> Double {
            seconds(blocks.reduce(Duration.zero) { $0 + $1.exec }) / seconds(blocks.reduce(Duration.zero) { $0 + $1.raw })
        }

        /// - Parameters:
        ///   - freshBlocks: the blocks timed on a fresh database (the figure reported until the
        ///     thirty-ninth session).
        ///   - cycleBlocks: the steady-state window; `nil` for one whole memtable cycle.
        static func run(freshBlocks requested: Int, txs perBlock: Int, cycleBlocks: Int?) throws -> [String: Any] {
            // At least one block in each window, so every ratio has a denominator.
            let freshBlocks = max(1, requested)
            let dir = NSTemporaryDirectory() + "ishtar-exec-bench-\(getpid())"
            try? FileManager.default.removeItem(atPath: dir)
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let chainID = "ishtar-exec"
            let validatorKey = Schnorr.PrivateKey()
            let genesis = try Genesis(
                chainID: chainID, genesisTime: UInt64(Date().timeIntervalSince1970 * 1000) - 1_000_000,
                validators: [ChainValidator(publicKey: validatorKey.publicKey.rawRepresentation, power: 10, name: "v0")])
            let db = try Database.open(path: dir + "/app", options: Application.databaseOptions())
            let store = BenchRecordingStore(db)
            var app = try Application(store: store, verifier: ConsensusCommitVerifier())
            _ = try app.initChain(genesis)
            let signer = SchnorrConsensusSigner(key: validatorKey)
            let chain = try ChainID(chainID)
            let syncedBlocks = max(5, freshBlocks / 2)

            // Distinct senders in every block, so every transaction creates real state; signed
            // just before their block (untimed), so a long run does not hold them all.
            var nextBlock = 0
            func body() throws -> [Data] {
                defer { nextBlock += 1 }
                return try (0..<perBlock).map { i in
                    try Transaction.signed(chainID: chainID, key: Schnorr.PrivateKey(), nonce: 0,
                                           messages: [SetLabel(label: "e\(nextBlock)-\(i)").message]).encoded
                }
            }
            let clock = ContinuousClock()
            // Each block: what every validator does with a proposal before voting (its
            // transactions' signatures are checked there, and its senders' accounts read into
            // the application's cache), then the decided block's execution and commit (timed);
            // right after, the same bytes written raw (timed): every put of the commit batch,
            // column family name prefixed to the key since the baseline writes the default
            // column family, as one rocksdb_write with the same sync.
            func runBlock(durability: CommitDurability, raw: RawRocksBaseline.Writer) throws -> BlockTiming {
                let transactions = try body()
                guard let tip = app.tip, let validators = app.validators else { throw BenchError("no tip") }
                var lastCommit: CommitInfo?
                if tip.lastHeight >= tip.initialHeight {
                    let hash = try BlockHash(tip.lastBlockHash)
                    let bytes = CanonicalEncoding.voteSignBytes(chainID: chain, type: .precommit, height: tip.lastHeight, round: 0, value: hash)
                    lastCommit = CommitInfo(height: tip.lastHeight, round: 0, blockHash: tip.lastBlockHash, signatures: [
                        CommitSignature(address: signer.validatorAddress, signature: try signer.sign(bytes)),
                    ])
                }
                let time = max(UInt64(Date().timeIntervalSince1970 * 1000), tip.lastBlockTime + 1)
                let block = Block.make(tip: tip, time: time, proposer: signer.validatorAddress, validators: validators,
                                       lastCommit: lastCommit, transactions: transactions)
                if durability == .replayedFromDecisionLog {
                    // The node's synced decision record — the block store's copy of the
                    // block — precedes execution; consensus work, not timed, not in the
                    // commit batch the baseline repeats.
                    try app.recordDecision(WriteBatch(), block: block.encoded, height: block.header.height, sync: false)
                }
                store.batches = []
                var timing = BlockTiming()
                let t0 = clock.now
                guard try app.processProposal(block) == .accept else { throw BenchError("proposal rejected") }
                let t1 = clock.now
                let result = try app.finalizeBlock(block)
                try app.commit()
                let t2 = clock.now
                timing.execWithCheck = t2 - t0
                timing.exec = t2 - t1
                timing.committed = result.txResults.filter(\.isOK).count
                guard timing.committed == perBlock else { throw BenchError("only \(timing.committed) transactions succeeded") }
                guard let batch = store.batches.last else { throw BenchError("no commit batch recorded") }
                let entries: [(key: [UInt8], value: [UInt8])] = batch.operations.compactMap { op in
                    switch op {
                    case .put(let cf, let k, let v): return (key: Array(cf.utf8) + Array(k), value: Array(v))
                    default: return nil
                    }
                }
                timing.bytes = entries.reduce(0) { $0 + $1.key.count + $1.value.count }
                // In key order (not timed): RocksDB's memtable inserts a sorted batch
                // fastest, so the baseline gets its best case whatever order we write in.
                timing.raw = try raw.write(entries.sorted { $0.key.lexicographicallyPrecedes($1.key) })
                return timing
            }

            // As the node runs it: its decision record is synced before the application runs the
            // block, so the commit batch is not synced (CommitDurability) — and neither is the raw one.
            // First the fresh window; then on until the raw database's memtable has filled and
            // been switched for a new one (it has flushed once); then, timed as the steady
            // state, every block until it is switched again: one whole memtable cycle. A running
            // node's memtables pass through every fill level in turn, and an insert into a fuller
            // skip list costs both sides more; the fresh window is the baseline's best case.
            app = try Application(store: store, verifier: ConsensusCommitVerifier(), durability: .replayedFromDecisionLog)
            let nodeRaw = try RawRocksBaseline.Writer(path: dir + "/raw-node", sync: false)
            var node: [BlockTiming] = []
            var switches = 0
            var active = 0
            /// Runs a block and counts the raw memtable's switches (its size falls).
            func step() throws {
                node.append(try runBlock(durability: .replayedFromDecisionLog, raw: nodeRaw))
                let now = nodeRaw.integerProperty("rocksdb.cur-size-active-mem-table") ?? 0
                if now < active { switches += 1 }
                active = now
                if node.count % 50 == 0 {
                    progress("node: \(node.count) blocks, raw memtable \(active >> 20) MiB, switched \(switches) times")
                }
            }
            let limit = 5_000
            progress("node: block execution, \(perBlock) transactions a block: a fresh window of \(freshBlocks) blocks, then on until the raw memtable is switched, then one whole cycle of it")
            while node.count < freshBlocks || switches < 1 {
                guard node.count < limit else { throw BenchError("the raw memtable never filled in \(limit) blocks") }
                try step()
            }
            let warm = node.count
            let stateAtWindow = try databaseState { try db.integerProperty($0) }
            let rawStateAtWindow = databaseState { nodeRaw.integerProperty($0) }
            progress("node: \(warm) blocks to the raw memtable's first switch; timing until its next")
            if let cycleBlocks {
                for _ in 0..<max(1, cycleBlocks) { try step() }
            } else {
                while switches < 2 {
                    guard node.count < limit else { throw BenchError("the raw memtable never filled again in \(limit) blocks") }
                    try step()
                }
            }
            let cycle = node.count - warm
            let stateAtEnd = try databaseState { try db.integerProperty($0) }
            let rawStateAtEnd = databaseState { nodeRaw.integerProperty($0) }
            // Standalone: every commit synced, and every raw write too.
            app = try Application(store: store, verifier: ConsensusCommitVerifier(), durability: .synced)
            let syncedRaw = try RawRocksBaseline.Writer(path: dir + "/raw-synced", sync: true)
            var synced: [BlockTiming] = []
            for _ in 0..<syncedBlocks { synced.append(try runBlock(durability: .synced, raw: syncedRaw)) }

            let steady = node[warm...]
            let fresh = node[..<freshBlocks]
            let ratio = Self.ratio(steady)
            let freshRatio = Self.ratio(fresh)
            progress("node: block execution in steady state \(String(format: "%.2f", ratio))× raw RocksDB; on the fresh database \(String(format: "%.2f", freshRatio))×")
            var out = figures(steady)
            out["window"] = cycleBlocks == nil
                ? "steady state: the \(cycle) blocks from the raw memtable's first switch to its second (one whole cycle of it), after \(warm) blocks; memtables pass through every fill level, as a running node's do (databases: what each held at the window's ends)"
                : "\(cycle) blocks after the raw memtable's first switch (NODE_BENCH_EXEC_CYCLE_BLOCKS)"
            out["databases"] = ["at_window_start": ["node": stateAtWindow, "raw": rawStateAtWindow],
                                "at_window_end": ["node": stateAtEnd, "raw": rawStateAtEnd]]
            out["fresh_database"] = figures(fresh)
            out["tx_per_block"] = perBlock
            out["bytes_written_per_block"] = steady.reduce(0) { $0 + $1.bytes } / max(1, steady.count)
            out["commit"] = "as in the node: one unsynced batch per block (the node's synced decision record, which holds the block, precedes it untimed and is not in the batch); the raw writes unsynced too"
            out["synced_commit"] = figures(synced[...])
            out["timed"] = "finalizeBlock + commit per block, each paired with the raw write of the same batch right after it; processProposal before it (untimed, as in the node, where it runs while the validators vote) checks the transactions' signatures and reads their senders' accounts into the cache in one batch"
            out.merge([
                "goal_ratio": goalExecRatio,
                "met": ratio <= goalExecRatio,
                "met_on_fresh_database": freshRatio <= goalExecRatio,
            ] as [String: Any]) { $1 }
            return out
        }
    }
}
