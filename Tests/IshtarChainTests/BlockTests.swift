import Foundation
import IshtarChain
import IshtarCrypto
import IshtarStore
import IshtarTestSupport
import Testing

@Suite("Blocks and proposals")
struct BlockTests {
    func expectRejected(_ app: Application, _ block: Block, _ rule: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let hashBefore = app.lastAppHash
        let verdict = try app.processProposal(block)
        guard case .reject(let error) = verdict else {
            Issue.record("accepted a block that breaks \(rule)", sourceLocation: sourceLocation)
            return
        }
        #expect(error.rule == rule, sourceLocation: sourceLocation)
        #expect(throws: ChainError.invalidBlock(error), sourceLocation: sourceLocation) { try app.finalizeBlock(block) }
        #expect(app.lastAppHash == hashBefore, sourceLocation: sourceLocation)
    }

    @Test func headerRulesAreEnforced() throws {
        let net = try TestNet()
        let app = try makeApp(net)
        try net.produce(app, [])
        let good = try net.nextBlock(app, [try labelTx(testKey("a"), nonce: 0)])
        #expect(try app.processProposal(good) == .accept)

        var b = good
        b.header.height += 1
        try expectRejected(app, b, "wrong-height")
        b = good
        b.header.previousBlockHash = Data(count: 32)
        try expectRejected(app, b, "wrong-previous-hash")
        b = good
        b.header.appHash = Data(repeating: 7, count: 32)
        try expectRejected(app, b, "wrong-app-hash")
        b = good
        b.transactions.append(Data([1]))
        #expect(good.bodyMatchesHeader && !b.bodyMatchesHeader && b.hash == good.hash,
                "another body under the same header (and hash) is told apart without state")
        try expectRejected(app, b, "wrong-transactions-root")
        b = good
        b.header.validatorsHash = Data(count: 32)
        try expectRejected(app, b, "wrong-validators-hash")
        b = good
        b.header.proposer = testKey("stranger").publicKey.rawRepresentation
        try expectRejected(app, b, "unknown-proposer")
        b = good
        b.header.time = try #require(app.tip).lastBlockTime
        try expectRejected(app, b, "time-not-monotonic")
        b = good
        b.header.chainID = "other"
        try expectRejected(app, b, "wrong-chain-id")
        b = good
        b.header.lastCommit = nil
        try expectRejected(app, b, "missing-last-commit")
        b = good
        b.header.lastCommit = try net.lastCommit(try #require(app.tip), signers: 2) // 21 of 46 power
        try expectRejected(app, b, "insufficient-commit-power")
        b = good
        b.header.lastCommit?.signatures[0].signature[0] ^= 1
        try expectRejected(app, b, "invalid-commit-signature")
        b = good
        b.header.lastCommit?.signatures.reverse()
        try expectRejected(app, b, "unsorted-commit-signatures")
        b = good
        b.header.lastCommit?.height -= 1
        try expectRejected(app, b, "last-commit-mismatch")
        // A transaction that fails its stateless rules makes the proposal invalid.
        var badSig = try Transaction(decoding: try labelTx(testKey("a"), nonce: 0))
        badSig.signature[badSig.signature.startIndex] ^= 1
        let withBad = try net.nextBlock(app, [try labelTx(testKey("b"), nonce: 0), badSig.encoded])
        #expect(try app.processProposal(withBad) == .reject(.invalidTransaction(index: 1, TxError.invalidSignature.violation)))
        // Undecodable bytes.
        guard case .reject(.malformed) = try app.processProposal(bytes: Data([1, 2, 3])) else {
            Issue.record("undecodable block bytes must be rejected as malformed")
            return
        }
        // The good block still goes through after all those rejections.
        #expect(try app.finalizeBlock(good).txResults.map(\.isOK) == [true])
        try app.commit()
        #expect(app.lastHeight == 2)
    }

    /// `finalizeBlock` starts from what `processProposal` established only for the very block
    /// it accepted: the same header over another body (same hash) is checked in full and
    /// refused, and the accepted block executes exactly as on a twin that never checked it.
    @Test func acceptedProposalIsReusedOnlyForTheBlockItAccepted() throws {
        let net = try TestNet()
        let app = try makeApp(net)
        let twin = try makeApp(net)
        try net.produce(app, [])
        try net.produce(twin, [])
        // The third transaction reuses a nonce: a stateful failure, recorded in the block.
        let good = try net.nextBlock(app, [try labelTx(testKey("a"), nonce: 0), try labelTx(testKey("b"), nonce: 0),
                                           try labelTx(testKey("a"), nonce: 0, label: "again")])
        var swapped = good
        swapped.transactions.removeLast()
        #expect(swapped.hash == good.hash)
        guard case .reject(let swappedError) = try twin.processProposal(swapped) else {
            Issue.record("a body that does not match its header must be rejected")
            return
        }
        #expect(swappedError.rule == "wrong-transactions-root")

        #expect(try app.processProposal(good) == .accept)
        #expect(throws: ChainError.invalidBlock(swappedError)) { try app.finalizeBlock(swapped) }
        #expect(app.lastHeight == 1)

        #expect(try app.processProposal(good) == .accept)
        let reused = try app.finalizeBlock(good)
        try app.commit()
        let fresh = try twin.finalizeBlock(good)
        try twin.commit()
        #expect(reused.txResults.map(\.isOK) == [true, true, false])
        #expect(reused == fresh)
        #expect(app.lastAppHash == twin.lastAppHash)

        // Accepted, then another block of that height committed: the accepted one is now a
        // block for a height already taken, refused like on the twin.
        let late = try net.nextBlock(app, [try labelTx(testKey("c"), nonce: 0)])
        #expect(try app.processProposal(late) == .accept)
        try net.produce(app, [try labelTx(testKey("d"), nonce: 0)])
        try net.produce(twin, [try labelTx(testKey("d"), nonce: 0)])
        guard case .reject(let lateError) = try twin.processProposal(late) else {
            Issue.record("a block for a committed height must be rejected")
            return
        }
        #expect(throws: ChainError.invalidBlock(lateError)) { try app.finalizeBlock(late) }
        #expect(app.lastAppHash == twin.lastAppHash)
    }

    @Test func encodedSizeIsTheLengthOfTheEncoding() throws {
        let net = try TestNet()
        let app = try makeApp(net)
        let first = try net.nextBlock(app, [])
        #expect(first.header.lastCommit == nil)
        #expect(first.encodedSize == first.encoded.count)
        try net.produce(app, [])
        var block = try net.nextBlock(app, [try labelTx(testKey("a"), nonce: 0), try labelTx(testKey("b"), nonce: 0)])
        #expect(block.header.lastCommit != nil)
        #expect(block.encodedSize == block.encoded.count)
        func vote(_ hash: UInt8?) -> EvidenceVote {
            EvidenceVote(type: EvidenceVote.precommit, height: 1, round: 0, blockHash: hash.map { Data(repeating: $0, count: 32) },
                         signature: Data(repeating: 7, count: 64))
        }
        block.evidence = [DoubleVoteEvidence(validator: Data(repeating: 1, count: 32), vote(1), vote(nil)),
                          DoubleVoteEvidence(validator: Data(repeating: 2, count: 32), vote(2), vote(3))]
        block.header.evidenceHash = DoubleVoteEvidence.root(block.evidence)
        #expect(block.encodedSize == block.encoded.count)
        #expect(try Block(decoding: block.encoded) == block)
        #expect(try Block.headerHash(ofEncoded: block.encoded) == block.hash)
        #expect(throws: CodecError.self) { try Block.headerHash(ofEncoded: block.encoded.prefix(40)) }
    }

    @Test func firstBlockRules() throws {
        let net = try TestNet()
        let app = try makeApp(net)
        var first = try net.nextBlock(app, [])
        #expect(first.header.height == 1)
        #expect(first.header.previousBlockHash == Data(count: 32))
        first.header.lastCommit = CommitInfo(height: 0, round: 0, blockHash: Data(count: 32), signatures: [])
        try expectRejected(app, first, "unexpected-last-commit")
    }

    @Test func abciCallOrderIsChecked() throws {
        let net = try TestNet()
        let app = try makeApp(net)
        #expect(throws: ChainError.outOfOrder("commit without a finalized block")) { try app.commit() }
        let block = try net.nextBlock(app, [])
        _ = try app.finalizeBlock(block)
        #expect(throws: ChainError.outOfOrder("finalizeBlock called twice without commit")) { try app.finalizeBlock(block) }
        try app.commit()
        #expect(throws: ChainError.alreadyInitialized) { try app.initChain(net.genesis) }
        let fresh = try Application(store: InMemoryStore(columnFamilies: Application.columnFamilies))
        #expect(throws: ChainError.notInitialized) { try fresh.checkTx(Data()) }
        #expect(throws: ChainError.missingColumnFamily(Application.stateColumnFamily)) {
            try Application(store: InMemoryStore())
        }
    }

    @Test func prepareProposalDropsInvalidKeepsOrderAndRespectsLimit() throws {
        let net = try TestNet()
        let app = try makeApp(net)
        let alice = testKey("alice")
        let bob = testKey("bob")
        // Large: six messages.
        let a0 = try Transaction.signed(chainID: testChainID, key: alice, nonce: 0,
                                        messages: Array(repeating: SetLabel(label: String(repeating: "a", count: 60)).message, count: 6)).encoded
        let a1 = try labelTx(alice, nonce: 1)
        let aStale = try labelTx(alice, nonce: 0, label: "again")
        let b0 = try labelTx(bob, nonce: 0)
        let junk = Data([0xde, 0xad])
        let tip = try #require(app.tip)
        func prepare(_ txs: [Data], _ limit: Int) throws -> [Data] {
            try app.prepareProposal(PrepareProposalRequest(transactions: txs, maxTxBytes: limit, height: tip.nextHeight,
                                                           time: tip.lastBlockTime, proposer: net.genesis.validators.validators[0].address))
        }
        #expect(try prepare([a0, junk, b0, aStale, a1], 1 << 20) == [a0, b0, a1])
        // Room for two: a0 and b0 fit, a1 does not.
        #expect(try prepare([a0, b0, a1], a0.count + b0.count + 8) == [a0, b0])
        // Skipping a0 for size makes a1 invalid (nonce gap) though it would fit: only b0 remains.
        #expect(a0.count > b0.count + a1.count + 8)
        #expect(try prepare([a0, b0, a1], b0.count + a1.count + 8) == [b0])
        // Preparing touches nothing.
        #expect(app.tip == tip)
        let prepared = try prepare([a0, junk, b0], 1 << 20)
        let result = try net.produce(app, prepared)
        #expect(result.txResults.allSatisfy { $0.isOK })
    }

    @Test func blockStoreAnswersQueries() throws {
        let net = try TestNet()
        let app = try makeApp(net)
        let tx = try labelTx(testKey("a"), nonce: 0)
        let result = try net.produce(app, [tx])
        let block = try #require(try app.block(at: 1))
        #expect(block.transactions == [tx])
        #expect(block.hash == result.blockHash)
        #expect(try app.height(ofBlock: result.blockHash) == 1)
        let q = try app.query(path: "/blocks/1")
        #expect(try Block(decoding: q.value) == block)
        let t = try app.query(path: "/tx/" + Transaction.hash(of: tx).hexString)
        #expect(try TxRecord(decoding: t.value).height == 1)
        #expect(try app.query(path: "/blocks/9").codespace == "query")
        #expect(try app.query(path: "/nope").code == QueryError.unknownPath("/nope").code)
        #expect(try app.query(path: "/modules/accounts/params").value == Data("{\"max_label_bytes\":64}".utf8))
        #expect(try app.query(path: "/modules/nomodule/x").code == QueryError.unknownModule("nomodule").code)
        #expect(try app.query(path: "/app/info", height: 7).code == QueryError.heightUnavailable(requested: 7, latest: 1).code)
        let validators = try app.query(path: "/modules/consensus/validators")
        #expect(String(decoding: validators.value, as: UTF8.self).contains(net.genesis.validators.hash.hexString))
    }
}
