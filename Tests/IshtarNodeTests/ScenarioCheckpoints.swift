import Foundation
import IshtarChain
import IshtarCrypto
import IshtarTestSupport
@testable import IshtarNode
import Testing

/// Checkpoint expectations shared by the scenario and the in-process test.
enum ScenarioCheckpoints {
    /// The first epoch's checkpoint is SEALED (or further) by the validators' own signatures:
    /// signers hold > 2/3 of the power, the QC exists, and the last block hash is the chain's.
    static func expectSealed(_ chain: ScenarioChain, diagnostics: () -> String,
                             sourceLocation: SourceLocation = #_sourceLocation) async throws {
        var checkpoint: [String: Any]?
        let sealed = await waitUntil(30) {
            checkpoint = chain.json("/modules/checkpoints/epoch/1")
            return ["SEALED", "SUBMITTED", "CONFIRMED", "FINALIZED"].contains(checkpoint?["status"] as? String ?? "")
        }
        #expect(sealed, "epoch 1 checkpoint: \(checkpoint ?? [:])\n\(diagnostics())", sourceLocation: sourceLocation)
        guard let checkpoint else { return }
        let signed = UInt64(checkpoint["signed_power"] as? String ?? "") ?? 0
        let total = UInt64(checkpoint["total_power"] as? String ?? "") ?? 0
        #expect(total > 0 && signed * 3 > total * 2, "\(checkpoint)", sourceLocation: sourceLocation)
        #expect(checkpoint["qc"] is [String: Any], "no QC: \(checkpoint)", sourceLocation: sourceLocation)
        if let text = checkpoint["last_block_height"] as? String, let h = UInt64(text) {
            #expect(checkpoint["last_block_hash"] as? String == (try chain.blockHash(h)).hexString, sourceLocation: sourceLocation)
        } else {
            Issue.record("no last_block_height in \(checkpoint)", sourceLocation: sourceLocation)
        }
    }
}

/// A single-validator home in a fresh scratch directory with the control plane's modules
/// and epochs of `epochLength` blocks.
func checkpointHome(_ name: String, chainID: String, epochLength: UInt64) throws -> NodeHome {
    let dir = try nodeScratch(name)
    _ = try NodeHomeSetup.initialize(
        at: dir, options: HomeInitOptions(
            chainID: chainID, insecurePlaintext: true, basePort: freeBasePort(), consensus: .fast,
            controlPlane: ControlPlaneGenesisOptions(covenantKeys: (0..<3).map { _ in Schnorr.PrivateKey().publicKey },
                                                     covenantQuorum: 2, epochLength: epochLength)),
        logger: quietLogger("init"))
    return NodeHome(path: dir)
}

/// The node's checkpoint duty in process: a single validator signs every epoch's checkpoint
/// from its own account after the epoch's last block, and the checkpoints seal.
@Suite(.serialized) struct ScenarioCheckpointTests {
    @Test(.timeLimit(.minutes(3))) func validatorSignsEveryEpochAndCheckpointsSeal() async throws {
        let home = try checkpointHome("ckpt", chainID: "ishtar-ckpt", epochLength: 5)
        defer { try? FileManager.default.removeItem(atPath: home.path) }
        let config = try home.loadConfig()
        let key = try home.loadValidatorKey(config: config, passphrase: nil)
        let node = try NodeService(
            options: NodeServiceOptions(genesis: try home.loadGenesis(), config: config, validatorKey: key,
                                        nodeKey: try home.loadNodeKey(config: config), databasePath: home.databasePath),
            logger: quietLogger("ckpt"))
        try await node.start()
        do {
            try await checkSealed(node, key: key)
        } catch {
            await node.stop()
            throw error
        }
        await node.stop()
    }

    /// A validator whose signature never left (here: one that always stops before sending
    /// it) owes the last ended epoch's signature; after a restart it signs it at start.
    @Test(.timeLimit(.minutes(3))) func restartedValidatorSignsTheEpochItOwes() async throws {
        let home = try checkpointHome("ckpt-owed", chainID: "ishtar-owed", epochLength: 3)
        defer { try? FileManager.default.removeItem(atPath: home.path) }
        let config = try home.loadConfig()
        let key = try home.loadValidatorKey(config: config, passphrase: nil)
        func options(_ config: NodeConfig, signs: Bool = true) throws -> NodeServiceOptions {
            var o = NodeServiceOptions(genesis: try home.loadGenesis(), config: config, validatorKey: key,
                                       nodeKey: try home.loadNodeKey(config: config), databasePath: home.databasePath)
            o.skipsCheckpointDuty = !signs
            return o
        }
        func status(_ node: NodeService, _ epoch: UInt64) async -> String? {
            let r = await node.query(path: "/modules/checkpoints/status/\(epoch)", data: Data())
            return r.isOK ? (try? JSONSerialization.jsonObject(with: r.value) as? [String: Any])?["status"] as? String : nil
        }
        // 1. Epochs end, nobody signs.
        let mute = try NodeService(options: try options(config, signs: false), logger: quietLogger("mute"))
        try await mute.start()
        let ended = await eventually(20) { await status(mute, 2) != nil }
        await mute.stop()
        try #require(ended, "epoch 2 never ended")
        // 2. Restart: the owed (last ended) epoch is signed at start.
        let node = try NodeService(options: try options(config), logger: quietLogger("again"))
        let last = await node.lastHeight
        let owed = last / 3  // epochs of 3 blocks from height 1: the last one fully committed
        try await node.start()
        let sealed = await eventually(20) { await status(node, owed) == "SEALED" }
        let earlier = owed > 1 ? await status(node, owed - 1) : nil
        await node.stop()
        #expect(sealed, "epoch \(owed) (owed at restart) was not signed")
        if owed > 1 { #expect(earlier == "ACCUMULATING", "only the last ended epoch is re-signed, got \(earlier ?? "nil")") }
    }

    /// Strangers' transactions (free to make) filling the pool do not keep the validator's
    /// own checkpoint signature out: here the pool admits nothing at all, and every epoch is
    /// still signed.
    @Test(.timeLimit(.minutes(3))) func aFullMempoolDoesNotKeepTheCheckpointSignatureOut() async throws {
        let home = try checkpointHome("ckpt-full", chainID: "ishtar-full", epochLength: 3)
        defer { try? FileManager.default.removeItem(atPath: home.path) }
        var config = try home.loadConfig()
        config.mempool.maxTransactions = 0
        let node = try NodeService(options: NodeServiceOptions(
            genesis: try home.loadGenesis(), config: config, validatorKey: try home.loadValidatorKey(config: config, passphrase: nil),
            nodeKey: try home.loadNodeKey(config: config), databasePath: home.databasePath), logger: quietLogger("full"))
        try await node.start()
        func status(_ epoch: UInt64) async -> String? {
            let r = await node.query(path: "/modules/checkpoints/status/\(epoch)", data: Data())
            return r.isOK ? (try? JSONSerialization.jsonObject(with: r.value) as? [String: Any])?["status"] as? String : nil
        }
        let sealed = await eventually(30) {
            let first = await status(1), second = await status(2)
            return first == "SEALED" && second == "SEALED"
        }
        await node.stop()
        #expect(sealed, "epochs 1 and 2 signed through a pool that admits nothing else")
    }

    func checkSealed(_ node: NodeService, key: Schnorr.PrivateKey) async throws {
        func checkpoint(_ epoch: Int) async -> [String: Any]? {
            let r = await node.query(path: "/modules/checkpoints/epoch/\(epoch)", data: Data())
            guard r.isOK else { return nil }
            return try? JSONSerialization.jsonObject(with: r.value) as? [String: Any]
        }
        #expect(await eventually(30) { await checkpoint(3)?["status"] as? String == "SEALED" })
        for epoch in 1...3 {
            let cp = try #require(await checkpoint(epoch))
            #expect(cp["status"] as? String == "SEALED", "epoch \(epoch): \(cp)")
            #expect(cp["signers"] as? [String] == [key.publicKey.rawRepresentation.hexString])
            let height = try #require(UInt64(cp["last_block_height"] as? String ?? ""))
            #expect(height == UInt64(5 * epoch))
            let block = try #require(try await node.block(at: height))
            #expect(cp["last_block_hash"] as? String == block.hash.hexString)
        }
        // The signatures came from the validator key's own account, one transaction per epoch
        // (so the account's nonce counts them).
        let r = await node.query(path: "/modules/accounts/account/" + key.publicKey.rawRepresentation.hexString, data: Data())
        let account = try #require(try JSONSerialization.jsonObject(with: r.value) as? [String: Any])
        #expect(UInt64(account["nonce"] as? String ?? "") ?? 0 >= 3)
    }
}
