import Foundation
import Logging
import Testing
import IshtarChain
import IshtarCrypto
import IshtarNode
import IshtarStore

/// Deterministic test key: the secret is a tagged hash of a label.
func cliTestKey(_ label: String) -> Schnorr.PrivateKey {
    var seed = Data(label.utf8)
    while true {
        let secret = TaggedHash.hash(tag: "api-test", data: seed)
        if let key = try? Schnorr.PrivateKey(rawRepresentation: secret) { return key }
        seed = secret
    }
}

/// (A copy of IshtarNodeTests' `ChainBackend`: test targets cannot share it.)
/// A real `NodeBackend` for API tests: an `IshtarChain.Application` on RocksDB in a temp
/// directory, a plain mempool, and block production by hand (prepare → finalize → commit),
/// with one validator and no consensus engine.
actor CLIChainBackend: NodeBackend {
    static let chainID = "ishtar-cli-test"
    static let genesisTime: UInt64 = 1_735_689_600_000

    let dir: URL
    let database: Database
    let app: Application
    let validatorKey: Schnorr.PrivateKey
    private(set) var mempool: [Data] = []
    var healthy = true
    /// `CheckTxResult` and `QueryResult` have no public initializer outside IshtarChain;
    /// the error paths below start from real values and overwrite their public fields.
    private let checkTemplate: CheckTxResult
    private let queryTemplate: QueryResult

    init() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("ishtar-cli-api-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        database = try Database.open(path: dir.appendingPathComponent("db").path,
                                     options: DatabaseOptions(columnFamilies: Application.columnFamilies))
        app = try Application(store: database)
        validatorKey = cliTestKey("validator")
        let genesis = try Genesis(
            chainID: Self.chainID, genesisTime: Self.genesisTime,
            validators: [ChainValidator(publicKey: validatorKey.publicKey.rawRepresentation, power: 10, name: "v0")])
        try app.initChain(genesis)
        checkTemplate = try app.checkTx(Data())
        queryTemplate = try app.query(path: "/none")
    }

    func setHealthy(_ value: Bool) { healthy = value }

    /// Builds, executes and commits a block of the mempool's transactions.
    @discardableResult
    func produceBlock() throws -> FinalizeResult {
        guard let tip = app.tip, let validators = app.validators else { throw ChainError.notInitialized }
        let proposer = validatorKey.publicKey.rawRepresentation
        let time = tip.lastHeight >= tip.initialHeight ? tip.lastBlockTime + 1000 : tip.lastBlockTime
        let txs = try app.prepareProposal(PrepareProposalRequest(
            transactions: mempool, maxTxBytes: 1 << 20, height: tip.nextHeight, time: time, proposer: proposer))
        var lastCommit: CommitInfo?
        if tip.lastHeight >= tip.initialHeight {
            // The application is opened without a commit verifier, so this signature is
            // checked for shape and power only; sign something real anyway.
            let digest = TaggedHash.hash(tag: "api-test/vote", data: tip.lastBlockHash)
            let signature = try validatorKey.signature(for: digest, auxiliaryRandomness: Data(count: 32)).rawRepresentation
            lastCommit = CommitInfo(height: tip.lastHeight, round: 0, blockHash: tip.lastBlockHash,
                                    signatures: [CommitSignature(address: proposer, signature: signature)])
        }
        let block = Block.make(tip: tip, time: time, proposer: proposer, validators: validators,
                               lastCommit: lastCommit, transactions: txs)
        let result = try app.finalizeBlock(block)
        try app.commit()
        mempool.removeAll { tx in txs.contains(tx) }
        return result
    }

    // MARK: NodeBackend

    func status() async -> NodeStatus {
        let tip = app.tip
        return NodeStatus(
            chainID: Self.chainID, nodeID: validatorKey.publicKey.rawRepresentation.hexString,
            validatorAddress: validatorKey.publicKey.rawRepresentation.hexString, height: tip?.lastHeight ?? 0, round: 0,
            latestBlockHash: tip?.lastBlockHash.hexString ?? "", latestBlockTime: tip?.lastBlockTime ?? 0,
            appHash: tip?.lastAppHash.hexString ?? "", peers: 0, mempoolSize: mempool.count, catchingUp: false)
    }

    func health() async -> NodeHealth {
        NodeHealth(healthy: healthy, reasons: healthy ? [] : ["consensus is not running"])
    }

    func block(at height: UInt64) async throws -> Block? { try app.block(at: height) }

    func latestBlock() async throws -> Block? {
        guard let tip = app.tip, tip.lastHeight >= tip.initialHeight else { return nil }
        return try app.block(at: tip.lastHeight)
    }

    func transaction(hash: Data) async throws -> CommittedTransaction? {
        guard let record = try app.transaction(hash: hash), let block = try app.block(at: record.height),
              Int(record.index) < block.transactions.count
        else { return nil }
        return CommittedTransaction(hash: hash, bytes: block.transactions[Int(record.index)], record: record)
    }

    func submitTransaction(_ bytes: Data) async -> CheckTxResult {
        do {
            let result = try app.checkTx(bytes)
            if result.result.isOK { mempool.append(bytes) }
            return result
        } catch {
            // A real node would report itself unhealthy; the tests never get here.
            var result = checkTemplate
            result.result = TxResult(violation: RuleViolation(codespace: "node", code: 1, rule: "internal", message: "\(error)"))
            result.hash = Transaction.hash(of: bytes)
            return result
        }
    }

    func query(path: String, data: Data) async -> QueryResult {
        do {
            return try app.query(path: path, data: data)
        } catch {
            var result = queryTemplate
            result.code = 1
            result.codespace = "node"
            result.log = "\(error)"
            return result
        }
    }
}

/// A signed `accounts/SetLabel` transaction.
func cliLabelTx(_ key: Schnorr.PrivateKey, nonce: UInt64, label: String = "hello") throws -> Data {
    try Transaction.signed(chainID: CLIChainBackend.chainID, key: key, nonce: nonce, messages: [SetLabel(label: label).message]).encoded
}

/// A live API server on a free loopback port, over a real chain backend.
final class LiveNode: Sendable {
    let backend: CLIChainBackend
    let port: Int
    private let task: Task<Void, any Error>

    private init(backend: CLIChainBackend, port: Int, task: Task<Void, any Error>) {
        self.backend = backend
        self.port = port
        self.task = task
    }

    static func start() async throws -> LiveNode {
        let backend = try CLIChainBackend()
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let task = Task {
            defer { continuation.finish() }
            try await runAPIServer(backend: backend, configuration: APIServerConfiguration(port: 0),
                                   logger: Logger(label: "cli-test-api", factory: { _ in SwiftLogNoOpLogHandler() })) { port in
                continuation.yield(port)
            }
        }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else {
            _ = try await task.value
            throw CLITestFailure("server stopped before listening")
        }
        return LiveNode(backend: backend, port: port, task: task)
    }

    var url: String { "http://127.0.0.1:\(port)" }

    func stop() async {
        task.cancel()
        _ = try? await task.value
    }
}

struct CLITestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Runs the `ishtar` binary on its own thread, so the waiting never blocks the
/// concurrency pool the in-process server answers on.
func ishtar(_ args: [String], environment: [String: String] = [:]) async throws -> IshtarProcess.Result {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread {
            continuation.resume(with: Result { try IshtarProcess.run(args, environment: environment) })
        }
        thread.start()
    }
}

func parseJSON(_ r: IshtarProcess.Result) throws -> [String: Any] {
    let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8))
    return try #require(object as? [String: Any], "not JSON: \(r.stdout) / \(r.stderr)")
}

@Suite(.serialized) struct TxQueryCLITests {
    @Test func sendThenQueryBlockTxAndAccount() async throws {
        let node = try await LiveNode.start()
        defer { Task { await node.stop() } }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ishtar-txcli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let keyPath = dir.appendingPathComponent("sender.key").path
        let env = ["ISHTAR_PASSPHRASE": "correct horse battery"]
        let generated = try parseJSON(try await ishtar(["keys", "generate", "--output", keyPath, "--json"], environment: env))
        let pub = try #require(generated["public_key"] as? String)

        // accounts/SetLabel payload: u32 length ‖ UTF-8.
        let label = "from-cli"
        let length = String(label.utf8.count, radix: 16)
        let payload = String(repeating: "0", count: 8 - length.count) + length + Data(label.utf8).hexString
        let send = ["tx", "send", "--node", node.url, "--key-file", keyPath, "--chain-id", CLIChainBackend.chainID,
                    "--message", "accounts/SetLabel:\(payload)"]

        let first = try await ishtar(send + ["--nonce", "auto", "--json"], environment: env)
        #expect(first.status == 0, "\(first.stderr)")
        let accepted = try parseJSON(first)
        #expect(accepted["accepted"] as? Bool == true)
        #expect(accepted["nonce"] as? Int == 0)
        let hash = try #require(accepted["hash"] as? String)
        try await node.backend.produceBlock()

        // Nonce 0 again: check-tx refuses it; exit 1, result on stdout, rule on stderr.
        let stale = try await ishtar(send + ["--nonce", "0"], environment: env)
        #expect(stale.status == 1, "\(stale.stdout) \(stale.stderr)")
        #expect(stale.stdout.contains("accepted: false"))
        #expect(stale.stdout.contains("nonce-mismatch"))
        #expect(stale.stderr.split(separator: "\n").count == 1)
        #expect(stale.stderr.contains("accounts/nonce-mismatch"))

        // auto now reads nonce 1 from the committed account.
        let second = try parseJSON(try await ishtar(send + ["--nonce", "auto", "--json"], environment: env))
        #expect(second["accepted"] as? Bool == true)
        #expect(second["nonce"] as? Int == 1)
        try await node.backend.produceBlock()

        let block = try await ishtar(["query", "block", "1", "--node", node.url, "--json"])
        #expect(block.status == 0, "\(block.stderr)")
        let b = try parseJSON(block)
        #expect((b["header"] as? [String: Any])?["height"] as? Int == 1)
        #expect((b["transactions"] as? [[String: Any]])?.first?["hash"] as? String == hash)

        let latest = try await ishtar(["query", "block", "--node", node.url])
        #expect(latest.status == 0)
        #expect(latest.stdout.contains("height: 2"))
        #expect(latest.stdout.contains("accounts/SetLabel"))
        let byOption = try parseJSON(try await ishtar(["query", "block", "--height", "2", "--node", node.url, "--json"]))
        #expect((byOption["header"] as? [String: Any])?["height"] as? Int == 2)

        let tx = try await ishtar(["query", "tx", hash, "--node", node.url, "--json"])
        #expect(tx.status == 0, "\(tx.stderr)")
        let t = try parseJSON(tx)
        #expect(t["height"] as? Int == 1)
        #expect((t["result"] as? [String: Any])?["code"] as? Int == 0)
        let txText = try await ishtar(["query", "tx", hash, "--node", node.url])
        #expect(txText.stdout.contains("result: ok"))

        let account = try parseJSON(try await ishtar(["query", "account", pub, "--node", node.url, "--json"]))
        #expect(account["nonce"] as? String == "2")
        #expect(account["label"] as? String == label)

        let missingBlock = try await ishtar(["query", "block", "77", "--node", node.url])
        #expect(missingBlock.status == 1)
        #expect(missingBlock.stderr.contains("block_not_found"))
        let missingTx = try await ishtar(["query", "tx", String(repeating: "cd", count: 32), "--node", node.url])
        #expect(missingTx.status == 1)
        await node.stop()
    }

    @Test func unreachableNodeAndBadInputExitTwoWithOneLine() async throws {
        // A port nobody listens on: bind-and-close would race; port 1 is privileged and unused.
        let dead = "http://127.0.0.1:1"
        let cases: [([String], String)] = [
            (["query", "block", "--node", dead], "unreachable"),
            (["query", "account", String(repeating: "11", count: 32), "--node", dead], "unreachable"),
            (["query", "block", "--node", "ftp://x"], "--node"),
            (["query", "block", "abc"], "height"),
            (["query", "tx", "1234"], "expected 32 bytes"),
            (["tx", "send", "--node", dead, "--key-file", "/nonexistent", "--chain-id", "c", "--nonce", "0",
              "--message", "accounts/SetLabel:00"], "not found"),
            (["tx", "send", "--node", dead, "--key-file", "/nonexistent", "--chain-id", "c", "--nonce", "x",
              "--message", "accounts/SetLabel:00"], "--nonce"),
            (["tx", "send", "--node", dead, "--key-file", "/nonexistent", "--chain-id", "c", "--nonce", "0",
              "--message", "nocolon"], "--message"),
        ]
        for (args, mention) in cases {
            let r = try await ishtar(args)
            #expect(r.status == 2, "\(args): \(r.stdout) \(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1, "\(args): \(r.stderr)")
            #expect(r.stderr.lowercased().contains(mention.lowercased()), "\(args) should mention \(mention): \(r.stderr)")
        }
    }

    @Test func sendToUnreachableNodeExitsTwo() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ishtar-txcli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let keyPath = dir.appendingPathComponent("k").path
        let env = ["ISHTAR_PASSPHRASE": "pw"]
        _ = try await ishtar(["keys", "generate", "--output", keyPath], environment: env)
        let r = try await ishtar(["tx", "send", "--node", "http://127.0.0.1:1", "--key-file", keyPath, "--chain-id", "c",
                                  "--nonce", "auto", "--message", "accounts/SetLabel:00000000"], environment: env)
        #expect(r.status == 2)
        #expect(r.stderr.split(separator: "\n").count == 1)
        #expect(r.stderr.contains("unreachable"))
    }
}
