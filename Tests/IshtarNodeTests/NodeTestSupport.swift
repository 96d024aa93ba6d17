import Foundation
import IshtarChain
import IshtarCrypto
@testable import IshtarNode
import IshtarTestSupport
import Logging
import Testing

/// A fresh scratch directory, removed by `cleanup()`.
func nodeScratch(_ name: String = "node") throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ishtar-\(name)-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.path
}

/// A blocking TCP socket connected to 127.0.0.1:`port`, for tests that speak a protocol
/// by hand; with `receiveTimeoutSeconds`, a `recv` gives up after that long.
func connectLoopback(port: Int, receiveTimeoutSeconds: Int? = nil) throws -> Int32 {
    let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard s >= 0 else { throw LoopbackSocketError("socket failed") }
    if let seconds = receiveTimeoutSeconds {
        var tv = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }
    let r = withLoopbackAddress(port: port) { connect(s, $0, $1) }
    guard r == 0 else {
        close(s)
        throw LoopbackSocketError("connect to 127.0.0.1:\(port) failed (errno \(errno))")
    }
    return s
}

/// What went wrong on a hand-driven loopback socket.
struct LoopbackSocketError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// A quiet logger for in-process nodes (warnings and up).
func quietLogger(_ label: String) -> Logger {
    var l = Logger(label: label) { _ in StreamLogHandler.standardError(label: label) }
    l.logLevel = .warning
    return l
}

/// A signed `accounts/SetLabel` transaction.
func labelTx(_ key: Schnorr.PrivateKey, nonce: UInt64, chainID: String, label: String = "hi") throws -> Data {
    try Transaction.signed(chainID: chainID, key: key, nonce: nonce, messages: [SetLabel(label: label).message]).encoded
}

/// How much longer than its nominal deadline a wait may take. These suites run in parallel
/// with multi-process devnets and the regtest node on two cores, where an in-process node once
/// needed more than 15 s for its first three blocks; a condition that holds returns at once, so
/// only a failure waits the longer time.
let loadAllowance = 3.0

/// Polls `condition` every 100 ms until it holds or `seconds` (× ``loadAllowance``) pass.
func eventually(_ seconds: Double, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = Date().addingTimeInterval(seconds * loadAllowance)
    while Date() < deadline {
        if try await condition() { return true }
        try? await Task.sleep(nanoseconds: 100_000_000)
    }
    return try await condition()
}

/// A base port no other test of this run holds (see ``TestPorts``).
func freeBasePort() -> Int { TestPorts.basePort() }

/// A one-validator home (plaintext keys, fast timeouts) in a fresh scratch directory, and its
/// config. Remove `home.path` when done.
func singleValidatorHome(_ name: String, chainID: String, basePort: Int = freeBasePort()) throws -> (NodeHome, NodeConfig) {
    let dir = try nodeScratch(name)
    _ = try NodeHomeSetup.initialize(
        at: dir, options: HomeInitOptions(chainID: chainID, insecurePlaintext: true, basePort: basePort, consensus: .fast),
        logger: quietLogger("init"))
    let home = NodeHome(path: dir)
    return (home, try home.loadConfig())
}

/// What `node start` builds from `home`: its genesis, `config`, its keys and its store.
func serviceOptions(_ home: NodeHome, _ config: NodeConfig) throws -> NodeServiceOptions {
    NodeServiceOptions(
        genesis: try home.loadGenesis(), config: config, validatorKey: try home.loadValidatorKey(config: config, passphrase: nil),
        nodeKey: try home.loadNodeKey(config: config), databasePath: home.databasePath)
}

/// A started P2P network on `listenPort` (a throwaway node key) that keeps dialing the node
/// with key `peerKey` at `address`.
func dialer(chainID: String, to peerKey: Data, at address: String, listenPort: Int, delegate: any P2PDelegate,
            maxDialBackoffMillis: UInt64 = 5000, label: String = "dialer") async throws -> P2PNetwork {
    let network = P2PNetwork(
        chainID: chainID, nodeKey: Schnorr.PrivateKey(),
        config: P2PConfig(listen: "127.0.0.1:\(listenPort)", persistentPeers: ["\(peerKey.hexString)@\(address)"],
                          maxDialBackoffMillis: maxDialBackoffMillis),
        logger: quietLogger(label))
    network.setDelegate(delegate)
    try await network.start()
    return network
}
