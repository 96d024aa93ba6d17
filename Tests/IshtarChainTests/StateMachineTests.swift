import Foundation
import IshtarChain
import IshtarCrypto
import IshtarStore
import IshtarTestSupport
import Testing

@Suite("State machine: determinism, commit, restart, modules")
struct StateMachineTests {
    /// Random (seeded) blocks: valid and invalid label and counter transactions.
    func randomBlocks(_ count: Int, seed: UInt64) throws -> [[Data]] {
        var rng = SplitMix64(seed: seed)
        let users = (0..<6).map { testKey("user-\($0)") }
        var nonces = [UInt64](repeating: 0, count: users.count)
        var blocks: [[Data]] = []
        for _ in 0..<count {
            var txs: [Data] = []
            for _ in 0..<Int.random(in: 0...6, using: &rng) {
                let u = Int.random(in: 0..<users.count, using: &rng)
                let roll = Int.random(in: 0..<10, using: &rng)
                let nonce = roll == 0 ? nonces[u] + 3 : nonces[u] // 10% wrong nonce
                let message = roll < 5 ? SetLabel(label: "l\(Int.random(in: 0...999, using: &rng))").message
                    : CounterModule.add(UInt64.random(in: 1...60, using: &rng))
                let aux = rng.bytes(32)
                txs.append(try Transaction.signed(chainID: testChainID, key: users[u], nonce: nonce, messages: [message],
                                                  auxiliaryRandomness: aux).encoded)
                if roll != 0 { nonces[u] += 1 }
            }
            blocks.append(txs)
        }
        return blocks
    }

    @Test func twoNodesAgreeAtEveryHeight() throws {
        let net = try TestNet(moduleParams: ["counter": Data("{\"max\":1000000}".utf8)])
        let dirA = TempDir()
        let dirB = TempDir()
        let a = try makeApp(net, modules: [CounterModule()], store: try openDatabase(dirA))
        let b = try makeApp(net, modules: [CounterModule()], store: try openDatabase(dirB))
        #expect(a.lastAppHash == b.lastAppHash)
        var failures = 0
        var hashes = Set<Data>()
        for txs in try randomBlocks(50, seed: 2024) {
            // Both nodes execute the same block (built once, as consensus would decide it).
            let block = try net.nextBlock(a, txs)
            #expect(try b.processProposal(block) == .accept)
            let ra = try a.finalizeBlock(block)
            let rb = try b.finalizeBlock(block)
            #expect(ra == rb)
            let ca = try a.commit()
            let cb = try b.commit()
            #expect(ca == cb)
            failures += ra.txResults.filter { !$0.isOK }.count
            hashes.insert(ca.appHash)
        }
        #expect(a.lastHeight == 50)
        #expect(failures > 0, "the random blocks exercise rejections too")
        #expect(hashes.count > 40, "the app hash moves with the state")
        // The incremental commitment equals a from-scratch recomputation.
        #expect(try a.recomputeAppHash() == a.lastAppHash)
        #expect(try b.recomputeAppHash() == b.lastAppHash)
    }

    @Test func appHashIsOrderIndependentAndDistinguishesState() throws {
        // Same final state reached through different histories → same hash; different
        // state → different hash.
        var c1 = StateCommitment()
        c1.insert(key: Data([1]), value: Data([1]))
        c1.insert(key: Data([2]), value: Data([2]))
        var c2 = StateCommitment()
        c2.insert(key: Data([2]), value: Data([2]))
        c2.insert(key: Data([3]), value: Data([3]))
        c2.insert(key: Data([1]), value: Data([1]))
        c2.remove(key: Data([3]), value: Data([3]))
        #expect(c1 == c2)
        var c3 = c1
        c3.remove(key: Data([2]), value: Data([2]))
        c3.insert(key: Data([2]), value: Data([9]))
        #expect(c3.digest != c1.digest)
        // Moving a byte between key and value changes the element.
        var c4 = StateCommitment()
        c4.insert(key: Data([1, 1]), value: Data())
        var c5 = StateCommitment()
        c5.insert(key: Data([1]), value: Data([1]))
        #expect(c4 != c5)
        #expect(try StateCommitment(bytes: c1.bytes) == c1)
    }

    @Test func commitIsOneSyncedBatchWithBlockAndState() throws {
        let net = try TestNet()
        let dir = TempDir()
        let store = InstrumentedStore(try openDatabase(dir))
        let app = try makeApp(net, store: store)
        #expect(store.writeCount == 1, "genesis is one batch")
        let before = store.writeCount
        let tx = try labelTx(testKey("a"), nonce: 0)
        let result = try net.produce(app, [tx])
        #expect(store.writeCount == before + 1, "one write per committed block")
        let batch = try #require(store.batches.last)
        var families = Set<String>()
        var keys: [Data] = []
        for op in batch.operations {
            if case .put(let cf, let key, _) = op {
                families.insert(cf)
                keys.append(key)
            }
        }
        #expect(families == Set(Application.columnFamilies))
        #expect(keys.contains(Data("h".utf8) + be8(1)), "the block itself")
        #expect(keys.contains(Data("accounts/a/".utf8) + testKey("a").publicKey.rawRepresentation), "its state change")
        #expect(keys.contains(Data("t".utf8) + Transaction.hash(of: tx)), "the tx index")
        #expect(keys.contains(Data("app".utf8)), "the tip / app hash")
        #expect(result.appHash == app.lastAppHash)
    }

    @Test func crashBeforeCommitLeavesPreviousHeight() throws {
        let net = try TestNet()
        let dir = TempDir()
        var hashAt1 = Data()
        do {
            let app = try makeApp(net, store: try openDatabase(dir))
            try net.produce(app, [try labelTx(testKey("a"), nonce: 0)])
            hashAt1 = try #require(app.lastAppHash)
            // Block 2 is executed but the process "dies" before commit's write.
            _ = try app.finalizeBlock(try net.nextBlock(app, [try labelTx(testKey("a"), nonce: 1)]))
        }
        let reopened = try Application.open(store: try openDatabase(dir), verifier: TestCommitVerifier())
        #expect(reopened.lastHeight == 1)
        #expect(reopened.lastAppHash == hashAt1)
        #expect(try reopened.block(at: 2) == nil)
        // Re-executing block 2 after restart works.
        #expect(try net.produce(reopened, [try labelTx(testKey("a"), nonce: 1)]).txResults[0].isOK)
        #expect(reopened.lastHeight == 2)
    }

    /// State written by a build with another layout is refused at open with an error that
    /// says so (and what to do), not misread as this build's state.
    @Test func aStoreOfAnotherStateFormatIsRefusedAtOpen() throws {
        let net = try TestNet()
        let store = InMemoryStore(columnFamilies: Application.columnFamilies)
        let app = try makeApp(net, store: store)
        try net.produce(app, [try labelTx(testKey("a"), nonce: 0)])
        #expect(try Application.open(store: store, verifier: TestCommitVerifier()).lastHeight == 1)
        let metaKey = Data("app".utf8)
        var meta = try #require(try store.get(metaKey, in: Application.metaColumnFamily))
        let current = try #require(meta.first)
        meta[meta.startIndex] = current - 1
        try store.put(metaKey, meta, in: Application.metaColumnFamily)
        #expect(throws: ChainError.incompatibleStoreFormat(found: current - 1, supported: current)) {
            try Application.open(store: store, verifier: TestCommitVerifier())
        }
    }

    /// A block of one transaction, and one of 300 (whose state elements and results are
    /// computed on two threads): either way a failed write halts the application and leaves
    /// nothing of the block behind.
    @Test(arguments: [1, 300])
    func failedCommitWriteHaltsAndReopenResumes(transactions: Int) throws {
        let net = try TestNet()
        let dir = TempDir()
        do {
            let store = InstrumentedStore(try openDatabase(dir))
            let app = try makeApp(net, store: store)
            try net.produce(app, [])
            let txs = try [labelTx(testKey("a"), nonce: 0)] + (1..<transactions).map { try labelTx(testKey("more-\($0)"), nonce: 0) }
            _ = try app.finalizeBlock(try net.nextBlock(app, txs))
            store.failNextWrite()
            #expect(throws: ChainError.storage(.ioError("injected failure"))) { try app.commit() }
            #expect(throws: ChainError.self) { try app.checkTx(Data()) } // halted
        }
        let app = try Application.open(store: try openDatabase(dir), verifier: TestCommitVerifier())
        #expect(app.lastHeight == 1)
        #expect(try app.query(path: "/modules/accounts/account/" + testKey("a").publicKey.rawRepresentation.hexString).code != 0)
    }

    @Test func restartKeepsHeightAndHashAndContinues() throws {
        let net = try TestNet(moduleParams: ["counter": Data("{\"max\":1000000}".utf8)])
        let dir = TempDir()
        let blocks = try randomBlocks(12, seed: 7)
        // Reference: one uninterrupted run.
        let reference = try makeApp(net, modules: [CounterModule()])
        var referenceHashes: [Data] = []
        for txs in blocks {
            referenceHashes.append(try net.produce(reference, txs).appHash)
        }
        // Same blocks with a restart every 4 blocks.
        var app: Application? = try makeApp(net, modules: [CounterModule()], store: try openDatabase(dir))
        for (i, txs) in blocks.enumerated() {
            if i % 4 == 0, i > 0 {
                let hash = app?.lastAppHash
                app = nil // closes the database
                app = try Application.open(store: try openDatabase(dir), modules: [CounterModule()], verifier: TestCommitVerifier())
                #expect(app?.lastHeight == UInt64(i))
                #expect(app?.lastAppHash == hash)
            }
            let live = try #require(app)
            #expect(try net.produce(live, txs).appHash == referenceHashes[i])
        }
        #expect(try app?.recomputeAppHash() == app?.lastAppHash)
    }

    @Test func aNewModuleSlotsInWithoutFrameChanges() throws {
        let params = Data("{\"fail_end_block_at\":2,\"max\":50}".utf8)
        let net = try TestNet(moduleParams: ["counter": params])
        let app = try makeApp(net, modules: [CounterModule()])
        let alice = testKey("alice")
        let r1 = try net.produce(app, [
            try Transaction.signed(chainID: testChainID, key: alice, nonce: 0, messages: [CounterModule.add(20), CounterModule.add(5)]).encoded,
            try Transaction.signed(chainID: testChainID, key: alice, nonce: 1, messages: [CounterModule.add(30)]).encoded,
        ])
        #expect(r1.txResults.map(\.isOK) == [true, false])
        #expect(r1.txResults[0].events.filter { $0.type == "counter.added" }.map { $0["value"] } == ["20", "25"])
        #expect(r1.txResults[1].violation == CounterModule.CounterError.overLimit(value: 25, limit: 50).violation)
        #expect(r1.events.map(\.type) == ["counter.begin_block", "counter.end_block"])
        #expect(r1.events[1]["value"] == "25")
        #expect(String(decoding: try app.query(path: "/modules/counter/value").value, as: UTF8.self) == "{\"value\":\"25\"}")
        // At height 2 the end-block hook rejects: its writes are discarded and the failure
        // is a block event, on every node alike.
        let r2 = try net.produce(app, [])
        #expect(r2.events.map(\.type) == ["counter.begin_block", "hook_failed"])
        #expect(r2.events[1]["module"] == "counter")
        #expect(r2.events[1]["rule"] == "zero-amount")
        #expect(try app.blockResults(at: 2)?.events == r2.events)
        // Stateless message validation of the new module is applied in checkTx/proposals.
        let zero = try Transaction.signed(chainID: testChainID, key: alice, nonce: 1, messages: [CounterModule.add(0)]).encoded
        #expect(try app.checkTx(zero).result.violation == CounterModule.CounterError.zeroAmount.violation)
        #expect(try app.processProposal(try net.nextBlock(app, [zero])) ==
            .reject(.invalidTransaction(index: 0, CounterModule.CounterError.zeroAmount.violation)))
        #expect(try app.recomputeAppHash() == app.lastAppHash)
    }

    @Test func invalidModuleSetsAreRefused() throws {
        struct Named: Module {
            let name: String
            var types: [String] = []
            var messageTypes: [String] { types }
        }
        let store = InMemoryStore(columnFamilies: Application.columnFamilies)
        #expect(throws: ChainError.invalidModuleSet("duplicate module accounts")) {
            try Application(store: store, modules: [Named(name: "accounts")])
        }
        #expect(throws: ChainError.invalidModuleSet("bad module name \"Bad/Name\"")) {
            try Application(store: store, modules: [Named(name: "Bad/Name")])
        }
        #expect(throws: ChainError.self) { try Application(store: store, modules: [Named(name: "x", types: ["y/Msg"])]) }
        #expect(throws: ChainError.self) {
            try Application(store: store, modules: [Named(name: "x", types: ["x/A"]), Named(name: "z", types: ["x/A"])])
        }
    }
}

func be8(_ v: UInt64) -> Data {
    var w = BinaryWriter()
    w.u64(v)
    return w.data
}
