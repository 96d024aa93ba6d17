import Foundation
import IshtarChain
import IshtarCrypto
import IshtarStore
import IshtarTestSupport
import Testing

@Suite("Accounts and transaction rules")
struct AccountsTests {
    func nonce(_ app: Application, _ key: Schnorr.PrivateKey) throws -> String? {
        let r = try app.query(path: "/modules/accounts/account/" + key.publicKey.rawRepresentation.hexString)
        guard r.isOK else { return nil }
        let obj = try JSONSerialization.jsonObject(with: r.value) as? [String: Any]
        return obj?["nonce"] as? String
    }

    @Test func validTransactionIncrementsNonce() throws {
        let net = try TestNet()
        let app = try makeApp(net)
        let alice = testKey("alice")
        #expect(try nonce(app, alice) == nil)
        let check = try app.checkTx(try labelTx(alice, nonce: 0, label: "Alice"))
        #expect(check.result.isOK)
        #expect(check.sender == alice.publicKey.rawRepresentation)
        let result = try net.produce(app, [try labelTx(alice, nonce: 0, label: "Alice")])
        #expect(result.txResults.map(\.isOK) == [true])
        #expect(result.txResults[0].events.map(\.type) == ["accounts.created", "accounts.label_set"])
        #expect(try nonce(app, alice) == "1")
        try net.produce(app, [try labelTx(alice, nonce: 1, label: "A2")])
        #expect(try nonce(app, alice) == "2")
        let q = try app.query(path: "/modules/accounts/account/" + alice.publicKey.rawRepresentation.hexString)
        #expect(String(decoding: q.value, as: UTF8.self).contains("\"label\":\"A2\""))
    }

    /// A transaction whose message fails after its ante step has moved the nonce leaves no
    /// trace, even for the transactions after it in the same block.
    @Test func aFailedTransactionLeavesNoTraceForTheNextOneInItsBlock() throws {
        let net = try TestNet()
        let app = try makeApp(net)
        let (alice, bob) = (testKey("alice"), testKey("bob"))
        let tooLong = String(repeating: "x", count: 100)  // over the default 64, under the 1,024 a message may carry
        let result = try net.produce(app, [
            try labelTx(alice, nonce: 0, label: tooLong),
            try labelTx(bob, nonce: 0, label: "Bob"),
            try labelTx(alice, nonce: 0, label: tooLong),
        ])
        #expect(result.txResults.map(\.isOK) == [false, true, false])
        #expect(result.txResults[0].rule == "label-too-long")
        #expect(try nonce(app, alice) == nil, "the failed ante step's account must not reach the block")
        #expect(try nonce(app, bob) == "1")
        #expect(try app.recomputeAppHash() == app.lastAppHash)
    }

    /// Every rejection: a specific rule, and neither the store nor the app hash changes —
    /// through checkTx and through a committed block.
    @Test func rejectedTransactionsLeaveNoTrace() throws {
        let net = try TestNet(maxTxBytes: 1024)
        let store = InMemoryStore(columnFamilies: Application.columnFamilies)
        let app = try makeApp(net, modules: [CounterModule(countBlocks: false)], store: store)
        let alice = testKey("alice")
        try net.produce(app, [try labelTx(alice, nonce: 0)])

        var badSig = try Transaction(decoding: try labelTx(alice, nonce: 1))
        badSig.signature[badSig.signature.startIndex] ^= 1
        var tampered = try Transaction(decoding: try labelTx(alice, nonce: 1, label: "x"))
        tampered.messages = [SetLabel(label: "y").message] // signature no longer covers it
        let cases: [(Data, RuleViolation)] = [
            (try labelTx(alice, nonce: 5), AccountsError.nonceMismatch(expected: 1, actual: 5).violation),
            (try labelTx(alice, nonce: 0), AccountsError.nonceMismatch(expected: 1, actual: 0).violation),
            (badSig.encoded, TxError.invalidSignature.violation),
            (tampered.encoded, TxError.invalidSignature.violation),
            (try labelTx(alice, nonce: 1, chainID: "other-chain"),
             TxError.wrongChainID(expected: testChainID, actual: "other-chain").violation),
            (try labelTx(alice, nonce: 1, label: String(repeating: "x", count: 1000)),
             TxError.tooLarge(size: try labelTx(alice, nonce: 1, label: String(repeating: "x", count: 1000)).count, limit: 1024).violation),
            (try labelTx(alice, nonce: 1, label: String(repeating: "x", count: 65)),
             AccountsError.labelTooLong(length: 65, limit: 64).violation),
            (try Transaction.signed(chainID: testChainID, key: alice, nonce: 1, messages: []).encoded, TxError.noMessages.violation),
            (try Transaction.signed(chainID: testChainID, key: alice, nonce: 1,
                                    messages: [Message(type: "bank/Send", payload: Data())]).encoded,
             TxError.unknownMessageType("bank/Send").violation),
            (try Transaction.signed(chainID: testChainID, key: alice, nonce: 1,
                                    messages: [Message(type: SetLabel.type, payload: Data([1]))]).encoded,
             AccountsError.malformedMessage(type: SetLabel.type, .truncated(field: "label", needed: 4, remaining: 1)).violation),
            // The second message fails: the first one's write and the nonce bump vanish too.
            (try Transaction.signed(chainID: testChainID, key: alice, nonce: 1,
                                    messages: [CounterModule.add(5), CounterModule.add(5000)]).encoded,
             CounterModule.CounterError.overLimit(value: 5, limit: 1000).violation),
            (Data([1, 2, 3]), TxError.malformed(.truncated(field: "chain id", needed: 4, remaining: 2)).violation),
        ]
        for (raw, expected) in cases {
            let stateBefore = try dump(store)
            let hashBefore = app.lastAppHash
            let check = try app.checkTx(raw)
            #expect(check.result.violation == expected)
            #expect(check.result.events.isEmpty)
            // Decided anyway (as a faulty proposer's block could be): recorded as failed.
            let result = try net.produce(app, [raw], requireValidProposal: false)
            #expect(result.txResults.count == 1)
            #expect(result.txResults[0].violation == expected)
            #expect(result.appHash == hashBefore, "rejected \(expected.rule) must not change the app hash")
            // The store changes only by the block record and the tip.
            let stateAfter = try dump(store)
            #expect(stateAfter[Application.stateColumnFamily] == stateBefore[Application.stateColumnFamily])
            #expect(try nonce(app, alice) == "1")
        }
        // And the account still works with the right nonce.
        #expect(try net.produce(app, [try labelTx(alice, nonce: 1)]).txResults[0].isOK)
    }

    @Test func failingTransactionDoesNotAffectOthersInTheBlock() throws {
        let net = try TestNet()
        let app = try makeApp(net, modules: [CounterModule()])
        let alice = testKey("alice")
        let bob = testKey("bob")
        var txs = [
            try Transaction.signed(chainID: testChainID, key: alice, nonce: 0, messages: [CounterModule.add(10)]).encoded,
            try Transaction.signed(chainID: testChainID, key: bob, nonce: 0, messages: [CounterModule.add(2000)]).encoded, // over limit
            try Transaction.signed(chainID: testChainID, key: bob, nonce: 0, messages: [CounterModule.add(1)]).encoded, // bob's nonce 0 still free
            try Transaction.signed(chainID: testChainID, key: alice, nonce: 1, messages: [CounterModule.add(5)]).encoded,
            try Transaction.signed(chainID: testChainID, key: alice, nonce: 1, messages: [CounterModule.add(5)]).encoded, // replay
            try Transaction.signed(chainID: testChainID, key: alice, nonce: 3, messages: [CounterModule.add(1)]).encoded, // too early
            try Transaction.signed(chainID: testChainID, key: alice, nonce: 2, messages: [CounterModule.add(1)]).encoded,
        ]
        txs.append(txs[5])  // now on time
        let result = try net.produce(app, txs)
        #expect(result.txResults.map(\.isOK) == [true, false, true, true, false, false, true, true])
        #expect(result.txResults[1].rule == "over-limit")
        #expect(result.txResults[4].violation == AccountsError.nonceMismatch(expected: 2, actual: 1).violation)
        let value = try app.query(path: "/modules/counter/value")
        #expect(String(decoding: value.value, as: UTF8.self) == "{\"value\":\"18\"}")
        // The tx index: the successful inclusion of each hash is kept.
        let record = try #require(try app.transaction(hash: Transaction.hash(of: txs[3])))
        #expect(record.height == 1 && record.index == 3 && record.result.isOK)
        let failed = try #require(try app.transaction(hash: Transaction.hash(of: txs[1])))
        #expect(failed.result.rule == "over-limit")
        // Failed at index 5, then included again and successful at 7: the index names 7.
        let late = try #require(try app.transaction(hash: Transaction.hash(of: txs[5])))
        #expect(late.height == 1 && late.index == 7 && late.result.isOK)
        #expect(try app.blockResults(at: 1)?.txResults == result.txResults)
    }

    @Test func checkTxQueuesNoncesUntilCommit() throws {
        let net = try TestNet()
        let app = try makeApp(net)
        let alice = testKey("alice")
        #expect(try app.checkTx(try labelTx(alice, nonce: 0)).result.isOK)
        #expect(try app.checkTx(try labelTx(alice, nonce: 1)).result.isOK)
        #expect(try app.checkTx(try labelTx(alice, nonce: 1)).result.rule == "nonce-mismatch")
        let before = app.lastAppHash
        #expect(app.lastAppHash == before, "checkTx never touches committed state")
        try net.produce(app, [try labelTx(alice, nonce: 0)])
        // After commit, the check state restarts from the committed state.
        #expect(try app.checkTx(try labelTx(alice, nonce: 1)).result.isOK)
        #expect(try app.checkTx(try labelTx(alice, nonce: 2)).result.isOK)
    }
}
