import Foundation
import IshtarChain
import IshtarCrypto
import Testing

@testable import IshtarNode

/// `api.bearer_token_file`: how an operator who exposes the API makes `POST /txs` require a
/// token, from the node's own configuration.
@Suite(.serialized) struct APITokenTests {
    static let chainID = "ishtar-token"

    func home() throws -> (NodeHome, NodeConfig, String) {
        let (home, config) = try singleValidatorHome("token", chainID: Self.chainID)
        return (home, config, home.path)
    }

    func write(_ text: String, to path: String, mode: mode_t) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        chmod(path, mode)
    }

    func refusal(_ home: NodeHome, _ config: NodeConfig) -> String? {
        do {
            _ = try home.loadAPIToken(config: config)
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test func theTokenFileIsCheckedLikeAKeyFile() throws {
        let (home, base, dir) = try home()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try home.loadAPIToken(config: base) == nil, "no file configured: no token")
        var config = base
        config.api.bearerTokenFile = "api.token"
        let path = dir + "/api.token"
        #expect(refusal(home, config)?.contains(path) == true, "a missing file is named")
        try write("  s3cret-token  \nignored second line\n", to: path, mode: 0o644)
        #expect(refusal(home, config)?.contains("chmod 600") == true, "others can read it: refused")
        chmod(path, 0o600)
        #expect(try home.loadAPIToken(config: config) == "s3cret-token", "first line, trimmed")
        config.api.bearerTokenFile = path
        #expect(try home.loadAPIToken(config: config) == "s3cret-token", "absolute paths work too")
        try write("\n", to: path, mode: 0o600)
        #expect(refusal(home, config)?.contains("empty") == true)
        try write("two words\n", to: path, mode: 0o600)
        #expect(refusal(home, config)?.contains("printable ASCII") == true)
        // And it round-trips through config.json.
        #expect(try NodeConfig.parse(config.jsonData()).api.bearerTokenFile == path)
        #expect(try NodeConfig.parse(Data(#"{"api":{}}"#.utf8)).api == APIConfig())
    }

    /// The whole node, started from its home as `ishtar node start` does.
    @Test(.timeLimit(.minutes(2))) func aNodeWithATokenFileRefusesUnauthenticatedSubmissions() async throws {
        let (home, base, dir) = try home()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var config = base
        config.api.bearerTokenFile = "api.token"
        try write("s3cret-token\n", to: dir + "/api.token", mode: 0o600)
        try config.jsonData().write(to: URL(fileURLWithPath: home.configPath))

        let node = Task { try await NodeRunner.run(home: home, passphrase: nil, logger: quietLogger("runner")) }
        defer { node.cancel() }
        let url = "http://\(config.api.listen)"
        let anonymous = try NodeAPIClient(url: url), holder = try NodeAPIClient(url: url, bearerToken: "s3cret-token")
        #expect(await eventually(20) { (try? await offPool { try anonymous.get("/status") })?.status == 200 },
                "reads need no token")
        let tx = try labelTx(Schnorr.PrivateKey(), nonce: 0, chainID: Self.chainID)
        let body = try JSONSerialization.data(withJSONObject: ["tx": tx.hexString])
        let refused = try await offPool { try anonymous.post("/txs", body: body) }
        #expect(refused.status == 401)
        #expect(refused.error?.code == "unauthorized")
        let wrong = try NodeAPIClient(url: url, bearerToken: "guess")
        #expect(try await offPool { try wrong.post("/txs", body: body) }.status == 401)
        let accepted = try await offPool { try holder.post("/txs", body: body) }
        #expect(accepted.status == 200, "\(String(decoding: accepted.body, as: UTF8.self))")
        node.cancel()
        _ = try? await node.value
    }

    /// Blocking client calls on their own thread, off the pool the node and its API run on.
    func offPool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try work() }) }.start()
        }
    }
}

/// `ishtar node start`'s runner: what an operator sees when the machine is not as configured.
@Suite(.serialized) struct NodeRunnerTests {
    @Test(.timeLimit(.minutes(2))) func anAPIPortInUseStopsTheNodeNamingTheSetting() async throws {
        let (home, config) = try singleValidatorHome("api-port", chainID: "ishtar-port")
        defer { try? FileManager.default.removeItem(atPath: home.path) }
        // Someone else holds the API port.
        let holder = P2PNetwork(chainID: "other", nodeKey: Schnorr.PrivateKey(), config: P2PConfig(listen: config.api.listen),
                                logger: quietLogger("holder"))
        try await holder.start()
        do {
            try await NodeRunner.run(home: home, passphrase: nil, logger: quietLogger("runner"))
            Issue.record("the node ran without its API port")
        } catch let error as NodeError {
            #expect("\(error)".contains("api.listen \(config.api.listen)"), "\(error)")
        }
        await holder.stop()
        #expect(!FileManager.default.fileExists(atPath: home.pidPath), "no pid file left behind")
        // Listening beyond loopback without a token: refused before anything starts.
        var open = config
        open.api.listen = "0.0.0.0:\(HostPort(config.api.listen)?.port ?? 1)"
        try open.jsonData().write(to: URL(fileURLWithPath: home.configPath))
        do {
            try await NodeRunner.run(home: home, passphrase: nil, logger: quietLogger("runner-open"))
            Issue.record("the node served submissions to the network without a token")
        } catch let error as NodeError {
            #expect("\(error)".contains("api.bearer_token_file is not set"), "\(error)")
        }
        try config.jsonData().write(to: URL(fileURLWithPath: home.configPath))
        // The store was closed: the node starts once the port is free.
        let node = try NodeService(options: try serviceOptions(home, config), logger: quietLogger("again"))
        await node.stop()
    }
}
