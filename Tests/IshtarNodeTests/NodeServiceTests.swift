import Foundation
import IshtarChain
import IshtarCrypto
@testable import IshtarNode
import Testing

@Suite(.serialized) struct NodeServiceTests {
    @Test(.timeLimit(.minutes(3))) func singleValidatorProducesBlocksCommitsTxsAndRestarts() async throws {
        let (home, config) = try singleValidatorHome("single", chainID: "ishtar-single")
        defer { try? FileManager.default.removeItem(atPath: home.path) }
        let opts = try serviceOptions(home, config)

        let node = try NodeService(options: opts, logger: quietLogger("n"))
        try await node.start()
        #expect(await eventually(15) { await node.lastHeight >= 3 })

        // A second node on the same home must refuse with a clear error, not corrupt it.
        #expect(throws: NodeError.self) { _ = try NodeService(options: opts, logger: quietLogger("n2")) }

        let user = Schnorr.PrivateKey()
        let tx = try labelTx(user, nonce: 0, chainID: "ishtar-single")
        let res = await node.submitTransaction(tx)
        #expect(res.result.isOK, "\(res.result)")
        // Same sender, next nonce: queued in the mempool behind the first.
        let tx1 = try labelTx(user, nonce: 1, chainID: "ishtar-single", label: "second")
        #expect(await node.submitTransaction(tx1).result.isOK)
        let bad = await node.submitTransaction(Data([1, 2, 3]))
        #expect(!bad.result.isOK)
        let hash = Transaction.hash(of: tx1)
        #expect(try await eventually(15) { try await node.transaction(hash: hash) != nil })
        let committed = try #require(try await node.transaction(hash: Transaction.hash(of: tx)))
        #expect(committed.bytes == tx)
        #expect(committed.record.result.isOK)
        let status = await node.status()
        #expect(status.chainID == "ishtar-single")
        #expect(await node.health().healthy)
        let heightBefore = await node.lastHeight
        let hashBefore = await node.appHash(at: heightBefore)
        await node.stop()

        // Restart on the same store: resumes after the last height, history intact.
        let again = try NodeService(options: opts, logger: quietLogger("n3"))
        #expect(await again.lastHeight == heightBefore)
        #expect(await again.appHash(at: heightBefore) == hashBefore)
        try await again.start()
        #expect(await eventually(15) { await again.lastHeight >= heightBefore + 2 })
        #expect(try await again.transaction(hash: hash) != nil)
        await again.stop()

        // A genesis edited after init (here one more unit of power) is refused: the engine
        // would take its validators from the file and the application from its state.
        var edited = opts
        let v = edited.genesis.validators.validators[0]
        edited.genesis = try Genesis(chainID: opts.genesis.chainID, genesisTime: opts.genesis.genesisTime,
                                     validators: [ChainValidator(publicKey: v.publicKey, power: v.power + 1, name: v.name)],
                                     consensusParams: opts.genesis.consensusParams, moduleParams: opts.genesis.moduleParams)
        #expect {
            _ = try NodeService(options: edited, logger: quietLogger("n4"))
        } throws: { "\($0)".contains("genesis.json differs") }
        // The original still opens.
        _ = try NodeService(options: opts, logger: quietLogger("n5"))
    }
}
