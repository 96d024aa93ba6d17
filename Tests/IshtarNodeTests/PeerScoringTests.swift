import Foundation
import IshtarChain
import IshtarConsensus
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

/// Keeps the commit answers a peer sends (certificate and block).
final class CommitCapture: P2PDelegate {
    let commits = Mutex<[(CommitCertificate, Data)]>([])
    let connected = Mutex<[ConnectionID]>([])
    let disconnected = Mutex<[ConnectionID]>([])

    func peerConnected(_ connection: ConnectionID, nodeID: Data) async { connected.withLock { $0.append(connection) } }
    func received(_ message: WireMessage, from connection: ConnectionID) async {
        if case .commit(let cert, let block) = message { commits.withLock { $0.append((cert, block)) } }
    }
    func peerDisconnected(_ connection: ConnectionID) async { disconnected.withLock { $0.append(connection) } }
}

/// A single-validator node on its own home at `base`, started.
func startedValidator(_ name: String, chainID: String, base: Int) async throws -> (NodeHome, NodeConfig, NodeService) {
    let (home, config) = try singleValidatorHome(name, chainID: chainID, basePort: base)
    let validator = try NodeService(options: try serviceOptions(home, config), logger: quietLogger("validator"))
    try await validator.start()
    return (home, config, validator)
}

/// A follower of `home`'s chain (its key is not a validator's) on its own store and ports
/// (`base + 20`, `+ 21`), with `peers` as its persistent peers. Not started.
func makeFollower(of home: NodeHome, _ config: NodeConfig, base: Int, key: Schnorr.PrivateKey, peers: [String]) throws -> NodeService {
    var followerConfig = config
    followerConfig.p2p.listen = "127.0.0.1:\(base + 20)"
    followerConfig.p2p.persistentPeers = peers
    followerConfig.api.listen = "127.0.0.1:\(base + 21)"
    return try NodeService(
        options: NodeServiceOptions(genesis: try home.loadGenesis(), config: followerConfig, validatorKey: Schnorr.PrivateKey(),
                                    nodeKey: key, databasePath: home.path + "/follower-db"),
        logger: quietLogger("follower"))
}

@Suite(.serialized) struct PeerScoringTests {
    /// Two real networks on loopback: `a` listens, `b` dials it.
    func pair(aDelegate: RecordingDelegate, bDelegate: RecordingDelegate, aQueueLimit: Int = P2PNetwork.defaultInboundQueueLimit)
        async throws -> (P2PNetwork, P2PNetwork)
    {
        let base = freeBasePort()
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

    @Test(.timeLimit(.minutes(3))) func aSilentPeerIsDisconnectedAfterTheIdleLimit() async throws {
        let da = RecordingDelegate(), db = RecordingDelegate()
        let (a, b) = try await pair(aDelegate: da, bDelegate: db)
        #expect(await eventually(10) { !da.connections.isEmpty && !db.connections.isEmpty })
        let conn = try #require(da.connections.first)
        // A peer that talks is kept; one silent for longer than the limit is closed.
        b.send(.status(height: 1), to: try #require(db.connections.first))
        #expect(a.disconnectIdle(after: .seconds(60)) == 0)
        try await Task.sleep(nanoseconds: 2_100_000_000)
        #expect(a.disconnectIdle(after: .seconds(2)) == 1)
        #expect(a.score(of: conn) == nil)
        #expect(await eventually(10) { da.disconnections.contains(conn) })
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

    /// A listener with the given inbound limits and three networks on loopback dialing it
    /// (redialing every 250 ms when refused).
    func listenerWithThreeDialers(maxInboundPeers: Int, perIP: Int = 10) async throws
        -> (P2PNetwork, RecordingDelegate, [(network: P2PNetwork, delegate: RecordingDelegate)])
    {
        let base = freeBasePort()
        let serverKey = Schnorr.PrivateKey()
        let ds = RecordingDelegate()
        let server = P2PNetwork(chainID: "ishtar-p2p", nodeKey: serverKey,
                                config: P2PConfig(listen: "127.0.0.1:\(base)", maxInboundPeers: maxInboundPeers,
                                                  maxInboundPeersPerIP: perIP),
                                logger: quietLogger("server"))
        server.setDelegate(ds)
        try await server.start()
        var clients: [(network: P2PNetwork, delegate: RecordingDelegate)] = []
        for i in 1...3 {
            let d = RecordingDelegate()
            clients.append((try await dialer(chainID: "ishtar-p2p", to: serverKey.publicKey.rawRepresentation, at: "127.0.0.1:\(base)",
                                             listenPort: base + 2 * i, delegate: d, maxDialBackoffMillis: 250), d))
        }
        return (server, ds, clients)
    }

    /// Strangers cannot hold more than `p2p.max_inbound_peers` connections open (each may
    /// queue frames); one that leaves makes room for the next.
    @Test(.timeLimit(.minutes(3))) func inboundConnectionsBeyondTheLimitAreRefused() async throws {
        let (server, ds, clients) = try await listenerWithThreeDialers(maxInboundPeers: 2)
        #expect(await eventually(10) { ds.connections.count == 2 && server.refusedInboundCount >= 1 }, "two in, the third refused")
        try await Task.sleep(nanoseconds: 1_000_000_000)
        #expect(ds.connections.count == 2 && server.peerCount == 2, "the refused one keeps redialing and stays out")
        #expect(clients.filter { $0.delegate.connections.isEmpty }.count == 1)

        let leaving = try #require(clients.first { !$0.delegate.connections.isEmpty })
        await leaving.network.stop()
        #expect(await eventually(10) { ds.connections.count == 3 && server.peerCount == 2 }, "the room it left is taken")
        for c in clients where c.network !== leaving.network { await c.network.stop() }
        // Every connection has ended: the server keeps nothing of them (it dials no one).
        #expect(await eventually(10) { server.trackedTaskCount == 0 }, "ended connections are not kept")
        await server.stop()
    }

    /// One address cannot take every inbound slot: past `p2p.max_inbound_peers_per_ip` its
    /// connections are closed on accept though the node-wide limit has room.
    @Test(.timeLimit(.minutes(3))) func inboundConnectionsFromOneAddressAreLimited() async throws {
        let (server, ds, clients) = try await listenerWithThreeDialers(maxInboundPeers: 10, perIP: 2)
        #expect(await eventually(10) { ds.connections.count == 2 && server.refusedInboundCount >= 1 }, "two from 127.0.0.1, the third refused")
        try await Task.sleep(nanoseconds: 1_000_000_000)
        #expect(server.peerCount == 2, "the refused one keeps redialing and stays out (8 slots are free node-wide)")
        let leaving = try #require(clients.first { !$0.delegate.connections.isEmpty })
        await leaving.network.stop()
        #expect(await eventually(10) { ds.connections.count == 3 && server.peerCount == 2 }, "a slot of that address is free again")
        for c in clients where c.network !== leaving.network { await c.network.stop() }
        await server.stop()
    }

    /// A peer disconnected for misbehaviour does not come straight back with a full score:
    /// its node id is refused at the handshake until the ban ends, then admitted again.
    @Test(.timeLimit(.minutes(3))) func aPeerDisconnectedForMisbehaviourIsBannedForAWhile() async throws {
        let base = freeBasePort()
        let aKey = Schnorr.PrivateKey()
        let da = RecordingDelegate(), db = RecordingDelegate()
        let a = P2PNetwork(chainID: "ishtar-p2p", nodeKey: aKey,
                           config: P2PConfig(listen: "127.0.0.1:\(base)", misbehaviourBanMillis: 3000), logger: quietLogger("a"))
        a.setDelegate(da)
        try await a.start()
        let b = try await dialer(chainID: "ishtar-p2p", to: aKey.publicKey.rawRepresentation, at: "127.0.0.1:\(base)",
                                 listenPort: base + 1, delegate: db, maxDialBackoffMillis: 250)
        #expect(await eventually(10) { da.connections.count == 1 })
        let conn = try #require(da.connections.first)
        let seen = try #require(a.nodeID(of: conn))
        #expect(seen == b.nodeID && !a.isBanned(seen))
        #expect(a.penalize(conn, points: P2PNetwork.initialScore, reason: "test: misbehaviour"))
        #expect(a.isBanned(seen))
        #expect(await eventually(10) { a.refusedBannedCount >= 2 }, "its redials are refused at the handshake")
        #expect(da.connections.count == 1, "and never reach the node")
        #expect(await eventually(15) { da.connections.count == 2 }, "admitted again once the ban is over")
        #expect(!a.isBanned(seen))
        await b.stop()
        await a.stop()
    }

    /// A peer that relays transactions which cannot be valid (undecodable) is penalized by
    /// the real node service and disconnected once its score is used up.
    @Test(.timeLimit(.minutes(3))) func nodeServiceDisconnectsAPeerRelayingInvalidTransactions() async throws {
        let (home, config) = try singleValidatorHome("scoring", chainID: "ishtar-scoring")
        defer { try? FileManager.default.removeItem(atPath: home.path) }
        let node = try NodeService(options: try serviceOptions(home, config), logger: quietLogger("node"))
        try await node.start()

        let dm = RecordingDelegate()
        let attacker = try await dialer(chainID: "ishtar-scoring", to: try home.loadNodeKey(config: config).publicKey.rawRepresentation,
                                        at: config.p2p.listen, listenPort: freeBasePort(), delegate: dm, label: "attacker")
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

    @Test(.timeLimit(.minutes(3))) func aFrameOfTooManyTransactionsDisconnectsItsSender() async throws {
        let (home, config) = try singleValidatorHome("txframe", chainID: "ishtar-txframe")
        defer { try? FileManager.default.removeItem(atPath: home.path) }
        let node = try NodeService(options: try serviceOptions(home, config), logger: quietLogger("node"))
        try await node.start()
        let dm = RecordingDelegate()
        let peer = try await dialer(chainID: "ishtar-txframe", to: try home.loadNodeKey(config: config).publicKey.rawRepresentation,
                                    at: config.p2p.listen, listenPort: freeBasePort(), delegate: dm, label: "peer")
        #expect(await eventually(10) { !dm.connections.isEmpty })
        let conn = try #require(dm.connections.first)
        // The same refused transaction many times over costs one check (remembered until the
        // next block) and, being a state race, no score.
        let stale = try labelTx(Schnorr.PrivateKey(), nonce: 5, chainID: "ishtar-txframe")
        peer.send(.transactions(Array(repeating: stale, count: NodeService.maxRelayedTransactionsPerFrame)), to: conn)
        try await Task.sleep(nanoseconds: 500_000_000)
        #expect(dm.disconnections.isEmpty)
        // One more than a frame may carry: disconnected at once.
        peer.send(.transactions(Array(repeating: stale, count: NodeService.maxRelayedTransactionsPerFrame + 1)), to: conn)
        #expect(await eventually(10) { dm.disconnections.contains(conn) })
        await peer.stop()
        await node.stop()
    }

    @Test func aFrameLimitBelowTheBlockLimitIsRefusedAtStart() throws {
        let (home, config) = try singleValidatorHome("framelimit", chainID: "ishtar-framelimit")
        defer { try? FileManager.default.removeItem(atPath: home.path) }
        var small = config
        small.p2p.maxFrameBytes = 64 << 10
        #expect {
            _ = try NodeService(options: try serviceOptions(home, small), logger: quietLogger("node"))
        } throws: { "\($0)".contains("max_frame_bytes") }
    }

    /// A node behind the chain takes a peer's commit (certificate + block) to catch up. A peer
    /// that pairs a real certificate with another block — undecodable, or the certified header
    /// over other transactions — or relays a real proposal with another body is disconnected;
    /// the real pair is then committed.
    @Test(.timeLimit(.minutes(3))) func aPeerPairingARealCertificateWithAnotherBlockIsDisconnected() async throws {
        let base = freeBasePort()
        let (home, config, validator) = try await startedValidator("catchup", chainID: "ishtar-catchup", base: base)
        defer { try? FileManager.default.removeItem(atPath: home.path) }
        #expect(await eventually(15) { await validator.lastHeight >= 2 })

        // The certificate and block of height 1, asked for like any peer would.
        let capture = CommitCapture()
        let client = try await dialer(chainID: "ishtar-catchup", to: try home.loadNodeKey(config: config).publicKey.rawRepresentation,
                                      at: config.p2p.listen, listenPort: base + 10, delegate: capture, label: "client")
        #expect(await eventually(10) { !capture.connected.withLock { $0.isEmpty } })
        let toValidator = try #require(capture.connected.withLock { $0.first })
        client.send(.syncRequest(height: 1), to: toValidator)
        #expect(await eventually(10) { capture.commits.withLock { $0.contains { $0.0.height == 1 } } })
        let (cert, block) = try #require(capture.commits.withLock { list in list.first { $0.0.height == 1 } })
        await client.stop()
        await validator.stop()

        // A follower of the same chain (its key is not a validator's), on its own store and
        // ports, with no peers: it stays at height 0 until someone sends it height 1.
        // Bans off: every forgery below comes from the same key, which would otherwise be
        // refused after its first disconnect (bans are tested on their own).
        var lenient = config
        lenient.p2p.misbehaviourBanMillis = 0
        let followerKey = Schnorr.PrivateKey()
        let follower = try makeFollower(of: home, lenient, base: base, key: followerKey, peers: [])
        try await follower.start()
        #expect(await follower.lastHeight == 0)

        let attacker = CommitCapture()
        let peer = try await dialer(chainID: "ishtar-catchup", to: followerKey.publicKey.rawRepresentation, at: "127.0.0.1:\(base + 20)",
                                    listenPort: base + 30, delegate: attacker, label: "attacker")
        var other = try Block(decoding: block)
        other.transactions.append(Data("a transaction the certified block does not have".utf8))
        #expect(other.hash == (try Block(decoding: block)).hash, "same header, so same hash")
        // The validator's real proposal for height 1 — signed over the block hash only —
        // relayed with that other body: it too is the relay's doing.
        let signer = SchnorrConsensusSigner(key: try home.loadValidatorKey(config: config, passphrase: nil))
        let proposal = Proposal(height: 1, round: 0, polRound: nil,
                                value: ProposalValue(hash: cert.value, block: other.encoded), proposer: signer.validatorAddress)
        let relayed = SignedProposal(proposal: proposal,
                                     signature: try signer.sign(proposal.signBytes(chainID: try ChainID("ishtar-catchup"))))
        let forgeries: [WireMessage] = [.commit(cert, block: Data([1, 2, 3])), .commit(cert, block: other.encoded), .proposal(relayed)]
        for (n, forged) in forgeries.enumerated() {
            #expect(await eventually(15) { attacker.connected.withLock { $0.count } > n }, "connection \(n + 1)")
            let conn = try #require(attacker.connected.withLock { $0.last })
            peer.send(forged, to: conn)
            #expect(await eventually(10) { attacker.disconnected.withLock { $0.contains(conn) } }, "forgery \(n + 1) disconnects")
        }
        #expect(await follower.lastHeight == 0)
        #expect(await follower.health().healthy, "a forged commit does not halt the node")
        // A proposal signed by a key outside the validator set, carrying the real block: the
        // screen refuses it on what is signed, before the block is hashed, and it costs the
        // sender like a bad signature — repeated, it disconnects (it used to be hashed every
        // time and ignored at no cost).
        let stranger = SchnorrConsensusSigner(key: Schnorr.PrivateKey())
        let strange = Proposal(height: 1, round: 0, polRound: nil, value: ProposalValue(hash: cert.value, block: block),
                               proposer: stranger.validatorAddress)
        let strangers = SignedProposal(proposal: strange, signature: try stranger.sign(strange.signBytes(chainID: try ChainID("ishtar-catchup"))))
        #expect(await eventually(15) { attacker.connected.withLock { $0.count } > forgeries.count })
        let screened = try #require(attacker.connected.withLock { $0.last })
        let misbehaving = await follower.network.misbehaviourDisconnectCount
        let allowed = P2PNetwork.initialScore / PeerPenalty.badConsensusSignature
        for _ in 0..<(allowed - 1) { peer.send(.proposal(strangers), to: screened) }
        try await Task.sleep(nanoseconds: 500_000_000)
        #expect(!attacker.disconnected.withLock { $0.contains(screened) }, "still above the threshold")
        peer.send(.proposal(strangers), to: screened)
        #expect(await eventually(10) { attacker.disconnected.withLock { $0.contains(screened) } }, "screened proposals disconnect")
        #expect(await follower.network.misbehaviourDisconnectCount == misbehaving + 1, "for misbehaviour, not for silence")
        // The real pair, from a fresh connection (the attacker's network redials), is committed.
        #expect(await eventually(15) { attacker.connected.withLock { $0.count } > forgeries.count + 1 })
        let conn = try #require(attacker.connected.withLock { $0.last })
        peer.send(.commit(cert, block: block), to: conn)
        #expect(await eventually(15) { await follower.lastHeight >= 1 })
        #expect(await follower.appHash(at: 1) != nil)
        await peer.stop()
        await follower.stop()
    }
}

/// Catch-up asks the peer that just served a block for the next one, so a peer that claims
/// every height and answers nothing cannot hold a follower to the pace of status messages,
/// nor keep its `/status` saying it is catching up.
@Suite(.serialized) struct CatchUpPeerChoiceTests {
    @Test(.timeLimit(.minutes(3))) func aPeerClaimingEveryHeightDoesNotSlowCatchUp() async throws {
        let base = freeBasePort()
        let (home, config, validator) = try await startedValidator("liar", chainID: "ishtar-liar", base: base)
        defer { try? FileManager.default.removeItem(atPath: home.path) }
        #expect(await eventually(60) { await validator.lastHeight >= 60 })

        let followerKey = Schnorr.PrivateKey()
        let validatorPeer = "\(try home.loadNodeKey(config: config).publicKey.rawRepresentation.hexString)@\(config.p2p.listen)"
        let follower = try makeFollower(of: home, config, base: base, key: followerKey, peers: [validatorPeer])
        // The liar is connected and claiming before the follower learns of the validator's height.
        let liarView = CommitCapture()
        let liar = try await dialer(chainID: "ishtar-liar", to: followerKey.publicKey.rawRepresentation, at: "127.0.0.1:\(base + 20)",
                                    listenPort: base + 30, delegate: liarView, label: "liar")
        try await follower.start()
        #expect(await eventually(15) { !liarView.connected.withLock { $0.isEmpty } })
        let claims = Task {
            while !Task.isCancelled {
                for conn in liarView.connected.withLock({ $0 }) { liar.send(.status(height: .max), to: conn) }
                try? await Task.sleep(nanoseconds: 100_000_000)
            }
        }
        let target = await validator.lastHeight
        let started = Date()
        // At one block per status message (once a second) this would take a minute.
        let caughtUp = await eventually(20) { await follower.lastHeight >= target }
        let reached = await follower.lastHeight
        #expect(caughtUp, "at \(reached) of \(target) after \(Date().timeIntervalSince(started)) s")
        #expect(await follower.appHash(at: target) == (await validator.appHash(at: target)))
        // Caught up, it no longer says it is catching up, though the liar still claims
        // every height (the highest claim used to keep `catching_up` true for good).
        #expect(await eventually(20) { await !follower.status().catchingUp }, "catching_up clears beside the liar")
        claims.cancel()
        await liar.stop()
        await follower.stop()
        await validator.stop()
    }
}

/// The node's per-key rate limits (commits served per height, sync requests per peer).
@Suite struct RateLimitTests {
    /// Serving committed blocks stops at a byte budget per connection and in all, per
    /// one-second window, whatever the request count.
    @Test func servedBlocksStopAtTheByteBudgets() {
        var budget = ServeBudget()
        let t0 = ContinuousClock.now
        let block = 4 << 20
        var sent = 0
        while budget.allows(1, now: t0) {
            budget.charge(block, to: 1, now: t0)
            sent += 1
        }
        #expect(sent == ServeBudget.perConnectionBytes / block, "one connection: its budget of full blocks, no more")
        let other = budget.allows(2, now: t0)
        #expect(other, "another connection has its own budget")
        for conn: ConnectionID in 2...8 {
            while budget.allows(conn, now: t0) { budget.charge(block, to: conn, now: t0) }
        }
        let ninth = budget.allows(9, now: t0), firstAgain = budget.allows(1, now: t0 + .milliseconds(999))
        #expect(!ninth, "the node-wide budget is spent for this window")
        #expect(!firstAgain)
        let next = budget.allows(1, now: t0 + .seconds(1)) && budget.allows(9, now: t0 + .seconds(1))
        #expect(next, "the next window starts afresh")
    }

    @Test func aKeyActsOncePerIntervalAndFloodsFailClosed() {
        final class Limits {
            var table = RateLimits()
            func allow(_ key: String, every interval: Duration, now: ContinuousClock.Instant) -> Bool {
                table.allow(key, every: interval, now: now)
            }
            var count: Int { table.count }
        }
        let limits = Limits()
        let t0 = ContinuousClock.now
        #expect(limits.allow("serve/1/7", every: .milliseconds(100), now: t0))
        #expect(!limits.allow("serve/1/7", every: .milliseconds(100), now: t0 + .milliseconds(50)))
        #expect(limits.allow("serve/1/8", every: .milliseconds(100), now: t0 + .milliseconds(50)), "another key is its own")
        #expect(limits.allow("serve/1/7", every: .milliseconds(100), now: t0 + .milliseconds(100)))
        // Across a rotation a recent key is still found (one generation back).
        #expect(limits.allow("commit/2/9", every: .seconds(1), now: t0 + .milliseconds(1900)))
        #expect(!limits.allow("commit/2/9", every: .seconds(1), now: t0 + .milliseconds(2100)), "found in the older generation")
        #expect(limits.allow("commit/2/9", every: .seconds(1), now: t0 + .milliseconds(2950)))
        // A flood of distinct keys: the table stops growing and new keys are refused until it
        // rotates; the keys age out instead of being filtered on every call.
        let t1 = t0 + .seconds(10)
        var admitted = 0
        for i in 0..<(RateLimits.maxKeys + 500) where limits.allow("serve/9/\(i)", every: .milliseconds(100), now: t1) { admitted += 1 }
        #expect(admitted == RateLimits.maxKeys)
        #expect(!limits.allow("sync/3/1", every: .milliseconds(300), now: t1))
        #expect(limits.count <= 2 * RateLimits.maxKeys)
        #expect(limits.allow("sync/3/1", every: .milliseconds(300), now: t1 + RateLimits.window), "after a rotation, room again")
    }
}
