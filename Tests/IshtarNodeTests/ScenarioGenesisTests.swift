import Foundation
import IshtarBitcoin
import IshtarChain
import IshtarCrypto
import IshtarNode
import IshtarStore
import IshtarTestSupport
import Testing

/// The control plane's genesis as `ishtar node init` writes it: every node runs
/// ``ControlPlane/modules()``, and the genesis configures each of them.
@Suite struct ScenarioGenesisTests {
    /// Runs the real binary; returns (exit status, stdout, stderr).
    func ishtar(_ args: [String]) throws -> (Int32, String, String) {
        let p = Process()
        p.executableURL = Devnet.binary
        p.arguments = args
        let out = Pipe()
        let err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    /// An application running the node's module list, initialized from `genesis`.
    func app(_ genesis: Genesis) throws -> Application {
        let app = try Application.open(store: InMemoryStore(columnFamilies: Application.columnFamilies),
                                       modules: ControlPlane.modules())
        try app.initChain(genesis)
        return app
    }

    func query(_ app: Application, _ path: String) throws -> [String: Any] {
        let r = try app.query(path: path)
        guard r.isOK else { throw TestError("\(path): \(r.log)") }
        return try #require(try JSONSerialization.jsonObject(with: r.value) as? [String: Any])
    }

    @Test func moduleListIsTheControlPlaneInOrder() {
        #expect(ControlPlane.moduleNames == ["btclightclient", "staking", "checkpoints", "finality"])
    }

    @Test func exampleGenesisStartsTheControlPlane() throws {
        let genesis = try Genesis.load(path: repositoryRoot.appendingPathComponent("Config/genesis.example.json").path)
        #expect(Set(genesis.moduleParams.keys) == Set(ControlPlane.moduleNames))
        let app = try app(genesis)
        let lc = try query(app, "/modules/btclightclient/params")
        #expect(lc["network"] as? String == "regtest")
        #expect(lc["base_hash"] as? String == Network.regtest.genesisHeader.hash.displayHex)
        let staking = try query(app, "/modules/staking/params")["params"] as? [String: Any]
        #expect((staking?["btc_staking"] as? [String: Any])?["covenant_quorum"] as? Int == 3)
        #expect(try query(app, "/modules/checkpoints/params")["epoch_length"] as? String == "10")
        #expect(try query(app, "/modules/finality/params")["signed_blocks_window"] as? Int == 100)
    }

    @Test func initFlagsReachTheGenesis() throws {
        let dir = try nodeScratch("genesis")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A regtest header at height 5 (ground to the regtest target) as the light client's base.
        var base = BTCBlockHeader(version: 0x2000_0000, previousBlockHash: Network.regtest.genesisHeader.hash,
                                  merkleRoot: Network.regtest.genesisHeader.merkleRoot, time: 1_700_000_000,
                                  bits: 0x207f_ffff, nonce: 0)
        while (try? base.checkProofOfWork(powLimit: PowParameters.regtest.powLimit)) == nil { base.nonce &+= 1 }
        let covenants = (0..<3).map { _ in Schnorr.PrivateKey().publicKey.rawRepresentation.hexString }
        let (status, stdout, stderr) = try ishtar(
            ["node", "init", "--home", dir, "--chain-id", "ishtar-g", "--insecure-plaintext", "--base-port", "41000",
             "--btc-base-header", base.serialized.hexString, "--btc-base-height", "5", "--covenant-quorum", "2",
             "--btc-confirmation-depth", "6", "--btc-finalization-depth", "50", "--epoch-length", "7",
             "--consumer-chain", "consumer-9:42", "--consumer-chain", "rollup.b:1", "--allow-unlisted-consumer-chains"]
                + covenants.flatMap { ["--covenant-pk", $0] })
        #expect(status == 0, "\(stderr)")
        #expect(stdout.contains("btc light client: regtest base \(base.hash.displayHex) at height 5"), "\(stdout)")
        #expect(stdout.contains("covenant committee: 2 of 3"), "\(stdout)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/covenant"), "given keys: nothing generated")

        let app = try app(try NodeHome(path: dir).loadGenesis())
        let tip = try query(app, "/modules/btclightclient/tip")
        #expect(tip["hash"] as? String == base.hash.displayHex)
        #expect(tip["height"] as? String == "5")
        let staking = try query(app, "/modules/staking/params")["params"] as? [String: Any]
        let btc = staking?["btc_staking"] as? [String: Any]
        #expect(btc?["covenant_keys"] as? [String] == covenants)
        #expect(btc?["covenant_quorum"] as? Int == 2)
        #expect(staking?["btc_confirmation_depth"] as? Int == 6)
        let checkpoints = try query(app, "/modules/checkpoints/params")
        #expect(checkpoints["epoch_length"] as? String == "7")
        #expect(checkpoints["btc_confirmation_depth"] as? String == "6")
        #expect(checkpoints["btc_finalization_timeout"] as? String == "50")
        let finality = try query(app, "/modules/finality/params")
        #expect(finality["allow_unlisted_consumer_chains"] as? Bool == true)
        let consumers = try #require(finality["consumer_chains"] as? [[String: Any]])
        #expect(consumers.map { "\($0["chain_id"] ?? ""):\($0["start_height"] ?? "")" } == ["consumer-9:42", "rollup.b:1"])
        #expect(try query(app, "/modules/finality/last-finalized/consumer-9")["next_height"] as? String == "42")
    }

    @Test func generatedCovenantCommitteeIsWrittenAndNamedInGenesis() throws {
        let dir = try nodeScratch("genesis-gen")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (status, stdout, stderr) = try ishtar(["node", "init", "--home", dir, "--chain-id", "ishtar-g", "--validators", "2",
                                                   "--insecure-plaintext", "--base-port", "41100", "--json"])
        #expect(status == 0, "\(stderr)")
        let out = try #require(try JSONSerialization.jsonObject(with: Data(stdout.utf8)) as? [String: Any])
        let generated = try #require((out["network"] as? [String: Any])?["covenant_keys"] as? [[String: Any]])
        #expect(generated.count == 5)
        let genesis = try NodeHome(path: dir + "/node0").loadGenesis()
        let staking = try query(try app(genesis), "/modules/staking/params")["params"] as? [String: Any]
        let keys = (staking?["btc_staking"] as? [String: Any])?["covenant_keys"] as? [String]
        #expect(keys == generated.compactMap { $0["public_key"] as? String })
        for file in generated.compactMap({ $0["key_file"] as? String }) {
            #expect(file.hasPrefix(dir + "/covenant/"))
            let mode = try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int
            #expect(mode == 0o600)
        }
    }

    @Test(arguments: [
        (["--covenant-pk", "zz"], "--covenant-pk"),
        (["--covenant-quorum", "6"], "--covenant-quorum"),
        (["--btc-network", "litecoin"], "--btc-network"),
        (["--btc-base-height", "2016"], "--btc-base-height"),
        (["--btc-base-header", "00"], "--btc-base-header"),
        (["--epoch-length", "0"], "--epoch-length"),
        (["--btc-confirmation-depth", "20", "--btc-finalization-depth", "10"], "--btc-finalization-depth"),
        (["--btc-confirmation-depth", "10", "--btc-finalization-depth", "10"], "--btc-finalization-depth"),
        // w at or past the unbonding time: an unbonding stake would stop being slashable first.
        (["--btc-finalization-depth", "200"], "below the unbonding time (200 blocks"),
        (["--unbonding-time", "100"], "below the unbonding time (100 blocks"),
        (["--consumer-chain", "consumer-1"], "--consumer-chain: expected <chain-id>:<start height>"),
        (["--consumer-chain", "bad id:5"], "--consumer-chain: chain id"),
        (["--consumer-chain", "x:5"], "this chain's own id"),
        (["--consumer-chain", "c:1", "--consumer-chain", "c:2"], "listed twice"),
    ])
    func badGenesisFlagsExitTwoWithOneLine(extra: [String], mentions: String) throws {
        let dir = try nodeScratch("genesis-bad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (status, _, stderr) = try ishtar(["node", "init", "--home", dir, "--chain-id", "x", "--insecure-plaintext"] + extra)
        #expect(status == 2, "\(extra): \(stderr)")
        #expect(stderr.contains(mentions), "\(extra): \(stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/genesis.json"))
    }

    @Test func helpExplainsTheControlPlaneFlags() throws {
        let (status, stdout, _) = try ishtar(["node", "init", "--help"])
        #expect(status == 0)
        for needle in ["--btc-base-header", "--covenant-pk", "regtest genesis header", "--epoch-length", "checkpoints"] {
            #expect(stdout.contains(needle), "help lacks \(needle)")
        }
        let (devnetStatus, devnetHelp, _) = try ishtar(["devnet", "start", "--help"])
        #expect(devnetStatus == 0)
        #expect(devnetHelp.contains("--covenant-pk") && devnetHelp.contains("light client"))
    }
}
