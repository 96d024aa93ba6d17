#if canImport(Glibc)
    import Glibc
#endif
import Crypto
import Foundation
import IshtarBitcoin
import IshtarBitcoinRPC

/// `Scripts/bench bitcoin`: header-chain validation beside a raw double-SHA256 of the same 80
/// bytes, and getblockheader round trips against a real regtest node started here.
enum BitcoinBench {
    static func run() -> [String: Any] {
        let count = Int(ProcessInfo.processInfo.environment["BENCH_HEADERS"] ?? "") ?? 100_000
        let headers = buildChain(count: count)
        let headerFigures = measureHeaders(headers)
        let (rpc, rpcError) = measureRPC()

        var result: [String: Any] = [
            "suite": "bitcoin",
            "unit": "microseconds_per_header unless named otherwise",
            "method": "operation and baseline timed in alternating batches; figures are medians, ratios the median of per-pair ratios",
            "headers": count,
            "header_validation": headerFigures,
            "goals_met": ["header_validation_within_3.0x_double_sha256": headerFigures["goal_met"] as? Bool ?? false],
            "delegation_tx_set": DelegationBench.run(),
        ]
        if let rpc {
            result["rpc"] = [
                "method": "getblockheader (verbose) round trips over HTTP to Scripts/regtest-node, sequential, one client",
                "calls": rpc.calls,
                "seconds": rounded(rpc.seconds),
                "round_trips_per_second": rounded(Double(rpc.calls) / rpc.seconds),
                "microseconds_per_round_trip": rounded(rpc.seconds * 1e6 / Double(max(rpc.calls, 1))),
            ]
        } else {
            result["rpc"] = NSNull()
            result["rpc_error"] = rpcError ?? "unknown"
        }
        return result
    }

    // MARK: - Headers

    /// A regtest chain of `count` headers on top of genesis, ground to the regtest target
    /// 0x207fffff (about two tries a header). Times step by 1201 s, more than twice the target
    /// spacing, so regtest's minimum-difficulty rule demands the pow-limit bits at once.
    static func buildChain(count: Int) -> [BlockHeader] {
        progress("bitcoin bench: grinding \(count) regtest headers")
        let bits: UInt32 = 0x207f_ffff
        let target = (try? ProofOfWork.target(bits: bits, powLimit: PowParameters.regtest.powLimit)) ?? PowParameters.regtest.powLimit
        var headers = [BlockHeader]()
        headers.reserveCapacity(count)
        var previous = Network.regtest.genesisHeader
        var tries = 0
        for height in 1...max(count, 1) {
            var root = Data(count: 32)
            withUnsafeBytes(of: UInt64(height).littleEndian) { root.replaceSubrange(0..<8, with: $0) }
            let merkleRoot = (try? Hash256(rawValue: root)) ?? .zero
            var header = BlockHeader(
                version: 0x2000_0000, previousBlockHash: previous.hash, merkleRoot: merkleRoot,
                time: previous.time &+ 1201, bits: bits, nonce: 0)
            tries += 1
            while header.hash.asUInt256 > target {
                header.nonce &+= 1
                tries += 1
            }
            headers.append(header)
            previous = header
        }
        progress("bitcoin bench: \(tries) hashes for \(count) headers")
        return headers
    }

    static func measureHeaders(_ headers: [BlockHeader]) -> [String: Any] {
        let genesis = Network.regtest.genesisHeader
        let powLimit = PowParameters.regtest.powLimit
        let raw = headers.map(\.serialized)
        var sink = 0

        // Header by header: linkage to the previous hash, then proof of work (target decoded from
        // each header's bits with Bitcoin Core's checks, hash ≤ target). Each header is hashed
        // once; its hash is what the next header must link to.
        var previousHash = genesis.hash
        var failures = 0
        // The target is a pure function of bits, so it is decoded (with Bitcoin Core's checks)
        // only when bits change, as a header-sync loop would.
        var cachedBits: UInt32?
        var cachedTarget: UInt256?
        let validate: (Int) -> Void = { i in
            if i == 0 { previousHash = genesis.hash }
            let header = headers[i]
            if header.bits != cachedBits {
                cachedBits = header.bits
                cachedTarget = try? ProofOfWork.target(bits: header.bits, powLimit: powLimit)
            }
            let hash = header.hash
            guard header.previousBlockHash == previousHash, let target = cachedTarget,
                  hash.asUInt256 <= target else {
                failures += 1
                return
            }
            previousHash = hash
        }
        let doubleSHA: (Int) -> Void = { i in
            let digest = SHA256.hash(data: raw[i]).withUnsafeBytes { SHA256.hash(data: $0) }
            sink &+= digest.withUnsafeBytes { Int($0[0]) }
        }
        progress("bitcoin bench: timing header validation against raw double-SHA256")
        let paired = pairedMicroseconds(iterations: headers.count, pairs: 5, operation: validate, baseline: doubleSHA)

        // The full HeaderChain (difficulty rules and median-time-past too), for reference.
        progress("bitcoin bench: timing HeaderChain.append")
        var chainOK = true
        let chainPerHeader = microsecondsPerOp(iterations: 1, repeats: 3) { _ in
            var chain = HeaderChain(base: genesis, height: 0, parameters: .regtest)
            for header in headers {
                do { try chain.append(header) } catch {
                    chainOK = false
                    break
                }
            }
            sink &+= chain.tipHeight
        } / Double(headers.count)
        progress("bitcoin bench: sink \(sink), validation failures \(failures), HeaderChain \(chainOK ? "ok" : "FAILED")")

        let ratio = rounded(paired.ratio)
        return [
            "validate_header_pow_and_link_us": rounded(paired.operation),
            "baseline_double_sha256_80_bytes_us": rounded(paired.baseline),
            "ratio": ratio,
            "goal": "ratio <= 3.0",
            "goal_met": ratio <= 3.0 && failures == 0,
            "self_check_ok": failures == 0 && chainOK,
            "header_chain_append_us": rounded(chainPerHeader),
            "header_chain_append_ratio_vs_double_sha256": rounded(chainPerHeader / paired.baseline),
        ]
    }

    // MARK: - RPC

    struct RPCFigures: Sendable {
        var calls: Int
        var seconds: Double
    }

    /// Starts `Scripts/regtest-node` in a temporary datadir on a free port, mines a few blocks, then
    /// calls getblockheader in a loop for about three seconds. Any failure is reported, not fatal.
    static func measureRPC() -> (RPCFigures?, String?) {
        let script = URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent("Scripts/regtest-node")
        guard FileManager.default.isExecutableFile(atPath: script.path) else {
            return (nil, "Scripts/regtest-node not found from \(FileManager.default.currentDirectoryPath)")
        }
        let datadir = FileManager.default.temporaryDirectory.appendingPathComponent("ishtar-bench-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: datadir) }
        do { try FileManager.default.createDirectory(at: datadir, withIntermediateDirectories: true) } catch {
            return (nil, "cannot create datadir: \(error)")
        }
        let readyFile = datadir.appendingPathComponent("ready")
        let logURL = datadir.appendingPathComponent("node.log")
        _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
        let process = Process()
        process.executableURL = script
        process.arguments = ["--datadir", datadir.path, "--rpcport", "0", "--ready-file", readyFile.path]
        process.standardInput = FileHandle.nullDevice
        if let log = try? FileHandle(forWritingTo: logURL) {
            process.standardOutput = log
            process.standardError = log
        }
        progress("bitcoin bench: starting regtest node")
        do { try process.run() } catch { return (nil, "cannot start regtest-node: \(error)") }
        defer {
            if process.isRunning {
                process.terminate()
                for _ in 0..<100 where process.isRunning { usleep(50_000) }
                if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            }
            process.waitUntilExit()
        }

        var port: Int?
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, process.isRunning {
            if let text = try? String(contentsOf: readyFile, encoding: .utf8), let range = text.range(of: "rpc=127.0.0.1:") {
                port = Int(text[range.upperBound...].prefix { $0.isNumber })
                if port != nil { break }
            }
            usleep(50_000)
        }
        guard let port else {
            let log = (try? String(contentsOf: logURL, encoding: .utf8)) ?? ""
            return (nil, "regtest-node did not become ready: " + String(log.suffix(300)).replacingOccurrences(of: "\n", with: " "))
        }
        let config = BitcoinRPCConfiguration(
            port: port, credentials: .cookieFile(path: datadir.appendingPathComponent(".cookie").path))
        let client = BitcoinRPCClient(configuration: config)
        progress("bitcoin bench: node on port \(port); getblockheader for ~3 s")
        let outcome: Result<RPCFigures, BitcoinRPCError> = runBlocking {
            do throws(BitcoinRPCError) {
                let hashes = try await client.generateToAddress(
                    5, address: "bcrt1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqc8gma6")
                guard let hash = hashes.last else { return .success(RPCFigures(calls: 0, seconds: 1)) }
                for _ in 0..<20 { _ = try await client.getBlockHeader(hash) }  // warm-up
                let clock = ContinuousClock()
                let start = clock.now
                var calls = 0
                while clock.now - start < .seconds(3) {
                    _ = try await client.getBlockHeader(hashes[calls % hashes.count])
                    calls += 1
                }
                let elapsed = clock.now - start
                let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
                return .success(RPCFigures(calls: calls, seconds: seconds))
            } catch {
                return .failure(error)
            }
        }
        switch outcome {
        case .success(let figures): return (figures, nil)
        case .failure(let error): return (nil, "RPC failed: \(error)")
        }
    }

    /// Runs async work from the synchronous bench driver and waits for it.
    static func runBlocking<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> T {
        let box = BlockingBox<T>()
        let semaphore = DispatchSemaphore(value: 0)
        Task {
            box.value = await body()
            semaphore.signal()
        }
        semaphore.wait()
        guard let value = box.value else { preconditionFailure("async bench task finished without a value") }
        return value
    }
}

/// Carries a result out of the task in `BitcoinBench.runBlocking`.
private final class BlockingBox<T>: @unchecked Sendable {
    // @unchecked: written once by the task before the semaphore is signalled, read after the wait.
    var value: T?
}
