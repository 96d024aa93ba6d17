import Foundation
import IshtarChain
import IshtarCrypto
@testable import IshtarNode
import Logging
import Synchronization
import Testing

/// Records what a real ``P2PNetwork`` delivers; optionally stalls on every message to play
/// a node that cannot keep up.
final class RecordingDelegate: P2PDelegate {
    struct State {
        var connected: [ConnectionID] = []
        var disconnected: [ConnectionID] = []
        var received = 0
    }

    let state = Mutex(State())
    let stallMillis: UInt64

    init(stallMillis: UInt64 = 0) { self.stallMillis = stallMillis }

    func peerConnected(_ connection: ConnectionID, nodeID: Data) async { state.withLock { $0.connected.append(connection) } }

    func received(_ message: WireMessage, from connection: ConnectionID) async {
        state.withLock { $0.received += 1 }
        if stallMillis > 0 { try? await Task.sleep(nanoseconds: stallMillis * 1_000_000) }
    }

    func peerDisconnected(_ connection: ConnectionID) async { state.withLock { $0.disconnected.append(connection) } }

    var connections: [ConnectionID] { state.withLock { $0.connected } }
    var disconnections: [ConnectionID] { state.withLock { $0.disconnected } }
}

@Suite(.serialized) struct PeerScoringTests {
    /// Two real networks on loopback: `a` listens, `b` dials it.
    func pair(aDelegate: RecordingDelegate, bDelegate: RecordingDelegate, aQueueLimit: Int = P2PNetwork.defaultInboundQueueLimit)
        async throws -> (P2PNetwork, P2PNetwork)
    {
        let base = randomBasePort()
        let aKey = Schnorr.PrivateKey(), bKey = Schnorr.PrivateKey()
        let a = P2PNetwork(chainID: "ishtar-p2p", nodeKey: aKey, config: P2PConfig(listen: "127.0.0.1:\(base)"),
                           logger: quietLogger("a"), inboundQueueLimit: aQueueLimit)
        let b = P2PNetwork(
            chainID: "ishtar-p2p", nodeKey: bKey,
            config: P2PConfig(listen: "127.0.0.1:\(base + 1)",
                              persistentPeers: ["\(aKey.publicKey.rawRepresentation.hexString)@127.0.0.1:\(base)"]),
            logger: quietLogger("b"))
        a.setDelegate(aDelegate)
        b.setDelegate(bDelegate)
        try await a.start()
        try await b.start()
        return (a, b)
    }

    @Test(.timeLimit(.minutes(3))) func penaltiesAccumulateAndDisconnectAtTheThreshold() async throws {
        let da = RecordingDelegate(), db = RecordingDelegate()
        let (a, b) = try await pair(aDelegate: da, bDelegate: db)
        #expect(await eventually(10) { !da.connections.isEmpty && !db.connections.isEmpty })
        let conn = try #require(da.connections.first)
        #expect(a.score(of: conn) == P2PNetwork.initialScore)

        #expect(!a.penalize(conn, points: 60, reason: "test"))
        #expect(a.score(of: conn) == P2PNetwork.initialScore - 60)
        #expect(a.misbehaviourDisconnectCount == 0)
        #expect(a.penalize(conn, points: 60, reason: "test"), "score at or below the threshold disconnects")
        #expect(a.score(of: conn) == nil)
        #expect(a.misbehaviourDisconnectCount == 1)
        #expect(!a.penalize(conn, points: 60, reason: "test"), "a gone connection is not counted twice")
        #expect(a.misbehaviourDisconnectCount == 1)
        // Both ends see the connection close.
        #expect(await eventually(10) { da.disconnections.contains(conn) && !db.disconnections.isEmpty })
        await a.stop()
        await b.stop()
    }

    @Test(.timeLimit(.minutes(3))) func undecodableFramesCostScoreUntilDisconnect() async throws {
        let da = RecordingDelegate(), db = RecordingDelegate()
        let (a, b) = try await pair(aDelegate: da, bDelegate: db)
        #expect(await eventually(10) { !da.connections.isEmpty && !db.connections.isEmpty })
        let conn = try #require(da.connections.first)
        let bConn = try #require(db.connections.first)
        // An unknown message type: one costs score, the connection stays.
        b.sendRawFrame(Data([0xEE, 1, 2]), to: bConn)
        #expect(await eventually(10) { a.score(of: conn) == P2PNetwork.initialScore - P2PNetwork.undecodableFramePenalty })
        b.send(.status(height: 7), to: bConn)
        #expect(await eventually(10) { da.state.withLock { $0.received } == 1 }, "a good frame after a bad one is delivered")
        b.sendRawFrame(Data([0xEE]), to: bConn)
        #expect(await eventually(10) { da.disconnections.contains(conn) })
        #expect(a.misbehaviourDisconnectCount == 1)
        await a.stop()
        await b.stop()
    }

    @Test(.timeLimit(.minutes(3))) func aFloodingPeerOverflowsItsBoundedQueueAndIsDisconnected() async throws {
        // `a` handles one message per second; its queue holds 8.
        let da = RecordingDelegate(stallMillis: 1000), db = RecordingDelegate()
        let (a, b) = try await pair(aDelegate: da, bDelegate: db, aQueueLimit: 8)
        #expect(await eventually(10) { !da.connections.isEmpty && !db.connections.isEmpty })
        let bConn = try #require(db.connections.first)
        for h in 0..<200 { b.send(.status(height: UInt64(h)), to: bConn) }
        #expect(await eventually(10) { a.inboundOverflowCount >= 1 })
        #expect(await eventually(10) { !db.disconnections.isEmpty }, "the flooder is disconnected")
        #expect(da.state.withLock { $0.received } < 200, "frames beyond the bound were not queued")
        await a.stop()
        await b.stop()
    }

    /// A peer that relays transactions which cannot be valid (undecodable) is penalized by
    /// the real node service and disconnected once its score is used up.
    @Test(.timeLimit(.minutes(3))) func nodeServiceDisconnectsAPeerRelayingInvalidTransactions() async throws {
        let dir = try nodeScratch("scoring")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try NodeHomeSetup.initialize(
            at: dir, options: HomeInitOptions(chainID: "ishtar-scoring", insecurePlaintext: true, basePort: randomBasePort(),
                                              consensus: .fast),
            logger: quietLogger("init"))
        let home = NodeHome(path: dir)
        let config = try home.loadConfig()
        let nodeKey = try home.loadNodeKey(config: config)
        let node = try NodeService(
            options: NodeServiceOptions(
                genesis: try home.loadGenesis(), config: config,
                validatorKey: try home.loadValidatorKey(config: config, passphrase: nil), nodeKey: nodeKey,
                databasePath: home.databasePath),
            logger: quietLogger("node"))
        try await node.start()

        let dm = RecordingDelegate()
        let attacker = P2PNetwork(
            chainID: "ishtar-scoring", nodeKey: Schnorr.PrivateKey(),
            config: P2PConfig(listen: "127.0.0.1:\(randomBasePort())",
                              persistentPeers: ["\(nodeKey.publicKey.rawRepresentation.hexString)@\(config.p2p.listen)"]),
            logger: quietLogger("attacker"))
        attacker.setDelegate(dm)
        try await attacker.start()
        #expect(await eventually(10) { !dm.connections.isEmpty })
        let conn = try #require(dm.connections.first)

        // A valid transaction relayed by the peer costs nothing.
        let good = try labelTx(Schnorr.PrivateKey(), nonce: 0, chainID: "ishtar-scoring")
        attacker.send(.transaction(good), to: conn)
        #expect(try await eventually(10) { try await node.transaction(hash: Transaction.hash(of: good)) != nil })
        #expect(dm.disconnections.isEmpty)

        let needed = P2PNetwork.initialScore / PeerPenalty.invalidTransaction
        for i in 0..<(needed - 1) { attacker.send(.transaction(Data([UInt8(i), 0xFF])), to: conn) }
        try await Task.sleep(nanoseconds: 500_000_000)
        #expect(dm.disconnections.isEmpty, "still above the threshold")
        attacker.send(.transaction(Data([0xAB])), to: conn)
        #expect(await eventually(10) { dm.disconnections.contains(conn) })
        #expect(await node.network.misbehaviourDisconnectCount == 1)
        await attacker.stop()
        await node.stop()
    }
}
