import Foundation
import Logging
import Testing
import IshtarChain
import IshtarCrypto
import IshtarNode
import IshtarStore
import IshtarTestSupport

/// The CLI tests drive the real `ishtar` binary against the shared real-chain backend.
typealias CLIChainBackend = ChainTestBackend

func cliTestKey(_ label: String) -> Schnorr.PrivateKey { chainTestKey(label) }

func cliLabelTx(_ key: Schnorr.PrivateKey, nonce: UInt64, label: String = "hello") throws -> Data {
    try chainTestLabelTx(key, nonce: nonce, label: label)
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

    static func start(backend given: CLIChainBackend? = nil) async throws -> LiveNode {
        let backend = try given ?? CLIChainBackend()
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

    /// Runs `body`, then stops the node before returning, also when `body` throws. A node
    /// stopped from a detached task (`defer { Task { await node.stop() } }`) could still be
    /// closing its database while the test process exited, and RocksDB, closed during exit,
    /// crashed a test run.
    func stopping<T>(_ body: () async throws -> T) async throws -> T {
        do {
            let result = try await body()
            await stop()
            return result
        } catch {
            await stop()
            throw error
        }
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
    guard let object = try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) else {
        throw CLITestFailure("exit \(r.status), stdout not JSON: \(r.stdout.prefix(500)) / stderr: \(r.stderr.prefix(500))")
    }
    return try #require(object as? [String: Any], "not JSON: \(r.stdout) / \(r.stderr)")
}

@Suite(.serialized) struct TxQueryCLITests {
    @Test func sendThenQueryBlockTxAndAccount() async throws {
        let node = try await LiveNode.start()
        try await node.stopping {
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
            // Another before the block: auto counts the pending one and queues behind it.
            let third = try parseJSON(try await ishtar(send + ["--nonce", "auto", "--json"], environment: env))
            #expect(third["accepted"] as? Bool == true)
            #expect(third["nonce"] as? Int == 2, "queued behind the pending nonce 1, not replacing it")
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
            #expect(account["nonce"] as? String == "3")
            #expect(account["label"] as? String == label)

            // The generic module query reaches the same answer by path.
            let viaModule = try await ishtar(["query", "module", "accounts", "account", pub, "--node", node.url])
            #expect(viaModule.status == 0, "\(viaModule.stderr)")
            #expect(try parseJSON(viaModule)["nonce"] as? String == "3")
            let badModule = try await ishtar(["query", "module", "No/Such", "--node", node.url])
            #expect(badModule.status == 2)
            #expect(badModule.stderr.contains("module"))

            let status = try await ishtar(["node", "status", "--node", node.url, "--json"])
            #expect(status.status == 0, "\(status.stderr)")
            let s = try parseJSON(status)
            #expect(s["chain_id"] as? String == CLIChainBackend.chainID)
            #expect(s["height"] as? Int == 2)
            // Text: the control plane's progress lines say plainly what is not there.
            let text = try await ishtar(["node", "status", "--node", node.url])
            #expect(text.status == 0, "\(text.stderr)")
            #expect(text.stdout.contains("BTC finalized:     nothing yet"), "\(text.stdout)")
            #expect(text.stdout.contains("mempool:           0 transactions"), "\(text.stdout)")

            let missingBlock = try await ishtar(["query", "block", "77", "--node", node.url])
            #expect(missingBlock.status == 1)
            #expect(missingBlock.stderr.contains("block_not_found"))
            let missingTx = try await ishtar(["query", "tx", String(repeating: "cd", count: 32), "--node", node.url])
            #expect(missingTx.status == 1)
        }
    }

    @Test func unreachableNodeAndBadInputExitTwoWithOneLine() async throws {
        // A port nobody listens on: bind-and-close would race; port 1 is privileged and unused.
        let dead = "http://127.0.0.1:1"
        let cases: [([String], String)] = [
            (["query", "block", "--node", dead], "unreachable"),
            (["query", "account", String(repeating: "11", count: 32), "--node", dead], "unreachable"),
            (["node", "status", "--node", dead], "unreachable"),
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
