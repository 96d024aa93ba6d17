import Foundation
import IshtarConsensus
import IshtarCrypto
@testable import IshtarNode
import Logging
import Synchronization
import Testing

/// Counts the proposals a real ``P2PNetwork`` delivers, by signature.
final class ProposalCounter: P2PDelegate {
    struct State {
        var connected: [ConnectionID] = []
        var proposals: [Data: Int] = [:]
        var heights: [Data: UInt64] = [:]
    }

    let state = Mutex(State())

    func peerConnected(_ connection: ConnectionID, nodeID: Data) async { state.withLock { $0.connected.append(connection) } }
    func received(_ message: WireMessage, from connection: ConnectionID) async {
        guard case .proposal(let p) = message else { return }
        state.withLock {
            $0.proposals[p.signature, default: 0] += 1
            $0.heights[p.signature] = p.proposal.height
        }
    }
    func peerDisconnected(_ connection: ConnectionID) async {}

    var proposals: [Data: Int] { state.withLock { $0.proposals } }
}

@Suite struct ProposalRelayTests {
    static func id(height: UInt64, _ tag: UInt8) -> ProposalRelayLog.ID {
        // 32 bytes: a valid hash.
        let value = ProposalValue(hash: try! BlockHash(Data(repeating: tag, count: 32)), block: Data([tag]))
        let p = Proposal(height: height, round: 0, polRound: nil, value: value, proposer: Data(repeating: 1, count: 32))
        return ProposalRelayLog.ID(SignedProposal(proposal: p, signature: Data(repeating: tag, count: 64)))
    }

    @Test func aProposalGoesToAConnectionOnceWhileNothingChanges() {
        var log = ProposalRelayLog()
        let p = Self.id(height: 5, 1)
        do { let sent = log.shouldSend(p, to: 1, peerHeight: 4, tick: 0); #expect(sent) }
        do { let sent = log.shouldSend(p, to: 2, peerHeight: nil, tick: 0); #expect(sent, "each connection gets its own copy") }
        for tick in 1..<ProposalRelayLog.resendAfterTicks {
            do { let sent = log.shouldSend(p, to: 1, peerHeight: 4, tick: tick); #expect(!sent) }
            do { let sent = log.shouldSend(p, to: 2, peerHeight: nil, tick: tick); #expect(!sent, "a peer that reports nothing is no exception") }
        }
        // The safety net: after enough ticks it goes again, then waits again.
        do { let sent = log.shouldSend(p, to: 1, peerHeight: 4, tick: ProposalRelayLog.resendAfterTicks); #expect(sent) }
        do { let sent = log.shouldSend(p, to: 1, peerHeight: 4, tick: ProposalRelayLog.resendAfterTicks + 1); #expect(!sent) }
        // Another proposal of the same height is news.
        do { let sent = log.shouldSend(Self.id(height: 5, 2), to: 1, peerHeight: 4, tick: 9); #expect(sent) }
    }

    @Test func aPeerThatMovedGetsItAgainAndOnePastItsHeightDoesNot() {
        var log = ProposalRelayLog()
        let p = Self.id(height: 5, 1)
        // Sent while the peer was catching up (it drops proposals beyond its height)...
        do { let sent = log.shouldSend(p, to: 1, peerHeight: 2, tick: 0); #expect(sent) }
        do { let sent = log.shouldSend(p, to: 1, peerHeight: 2, tick: 1); #expect(!sent) }
        // ...and again once it reports another height.
        do { let sent = log.shouldSend(p, to: 1, peerHeight: 4, tick: 2); #expect(sent) }
        do { let sent = log.shouldSend(p, to: 1, peerHeight: 4, tick: 3); #expect(!sent) }
        // A peer that committed the height needs no proposal for it, first send or not.
        do { let sent = log.shouldSend(p, to: 1, peerHeight: 5, tick: 4); #expect(!sent) }
        do { let sent = log.shouldSend(p, to: 3, peerHeight: 6, tick: 4); #expect(!sent) }
    }

    @Test func whatAPeerSentIsNotSentBackAndANewConnectionStartsEmpty() {
        var log = ProposalRelayLog()
        let p = Self.id(height: 5, 1)
        log.received(p, from: 1, peerHeight: 4, tick: 0)
        do { let sent = log.shouldSend(p, to: 1, peerHeight: 4, tick: 1); #expect(!sent) }
        do { let sent = log.shouldSend(p, to: 2, peerHeight: 4, tick: 1); #expect(sent) }
        log.forget(1)
        #expect(log.recordedCount(for: 1) == 0)
        do { let sent = log.shouldSend(p, to: 1, peerHeight: 4, tick: 2); #expect(sent, "a reconnected peer may have lost it") }
    }

    @Test func decidedHeightsArePruned() {
        var log = ProposalRelayLog()
        do { let sent = log.shouldSend(Self.id(height: 5, 1), to: 1, peerHeight: nil, tick: 0); #expect(sent) }
        do { let sent = log.shouldSend(Self.id(height: 6, 2), to: 1, peerHeight: nil, tick: 0); #expect(sent) }
        do { let sent = log.shouldSend(Self.id(height: 5, 3), to: 2, peerHeight: nil, tick: 0); #expect(sent) }
        log.prune(below: 6)
        #expect(log.recordedCount(for: 1) == 1)
        #expect(log.recordedCount(for: 2) == 0)
    }

    /// A validator that cannot decide (the other half of the power is absent) re-gossips its
    /// proposals every tick; a connected peer gets each one once (plus the bounded re-send),
    /// and a peer that connects later still gets them.
    @Test(.timeLimit(.minutes(3))) func aStuckValidatorSendsEachProposalToAPeerOnce() async throws {
        let base = freeBasePort()
        let dir = try nodeScratch("relay")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let homes = try NodeHomeSetup.initialize(
            at: dir, options: HomeInitOptions(chainID: "ishtar-relay", validators: 2, insecurePlaintext: true, basePort: base,
                                              consensus: .fast),
            logger: quietLogger("init"))
        // Alone, a validator never gets past round 0 (no 2/3 of prevotes, so no timeouts
        // after the first): run the one that proposes there.
        let genesis = try NodeHome(path: homes[0].home).loadGenesis()
        let proposer = try ConsensusMapping.validatorSet(genesis.validators).proposer(round: 0)
        var chosen: NodeHome?
        for h in homes {
            let home = NodeHome(path: h.home)
            let key = try home.loadValidatorKey(config: try home.loadConfig(), passphrase: nil)
            if SchnorrConsensusSigner(key: key).validatorAddress == proposer { chosen = home }
        }
        let home = try #require(chosen)
        let config = try home.loadConfig()
        let node = try NodeService(options: try serviceOptions(home, config), logger: quietLogger("relay"))
        try await node.start()
        defer { Task { await node.stop() } }
        let nodeKey = try home.loadNodeKey(config: config).publicKey.rawRepresentation

        let counter = ProposalCounter()
        let peer = try await dialer(chainID: "ishtar-relay", to: nodeKey, at: config.p2p.listen, listenPort: base + 10,
                                    delegate: counter, label: "peer")
        #expect(await eventually(15) { !counter.state.withLock { $0.connected.isEmpty } })
        #expect(await eventually(30) { !counter.proposals.isEmpty })
        // Some thirty gossip ticks of 250 ms, each of which re-gossips the proposal.
        try await Task.sleep(for: .seconds(7))
        let counts = counter.proposals
        #expect(await node.lastHeight == 0, "one validator of two decides nothing")
        #expect(counts.count == 1, "round 0's proposal, the only one")
        // Every tick would make ~28 copies in 7 s; the bounded re-send allows one per eight
        // ticks (2 s) besides the first.
        let ceiling = 2 + Int(7_000 / (ProposalRelayLog.resendAfterTicks * config.consensus.gossipIntervalMillis)) + 1
        #expect(counts.values.allSatisfy { $0 <= ceiling }, "\(counts.values.sorted()) (at most \(ceiling) each)")
        await peer.stop()

        // A second peer: the proposal of the current round reaches it without waiting for
        // the re-send interval.
        let late = ProposalCounter()
        let second = try await dialer(chainID: "ishtar-relay", to: nodeKey, at: config.p2p.listen, listenPort: base + 12,
                                      delegate: late, label: "late")
        defer { Task { await second.stop() } }
        #expect(await eventually(15) { !late.state.withLock { $0.connected.isEmpty } })
        // What went to the first connection does not hold it back.
        #expect(await eventually(10) { Set(late.proposals.keys) == Set(counts.keys) })
    }
}
