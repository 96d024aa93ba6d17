import Crypto
import Foundation
import IshtarChain
import IshtarCrypto
import IshtarStore
import IshtarTestSupport
import Testing

/// A module whose one message sets a marker and clears it again, and (re)writes a constant:
/// writes that change nothing once the block is done.
private struct NoOpWritesModule: Module {
    static let touch = "noop/Touch"
    var name: String { "noop" }
    var messageTypes: [String] { [Self.touch] }
    func deliverMessage(_ message: Message, _ context: TxContext) throws(ExecutionError) {
        context.store.set(Data("marker".utf8), Data([1]))
        context.store.delete(Data("marker".utf8))
        context.store.set(Data("constant".utf8), Data("same".utf8))
    }
}

/// A module whose one message writes a record keeping its decoded value, then overwrites and
/// deletes it by other means, emitting what a typed read returns after each step.
private struct KeptWriteModule: Module {
    static let probe = "kept/Probe"
    /// Kept writes that are never read typed: superseded, then forced out by another key's.
    static let sequence = "kept/Sequence"
    var name: String { "kept" }
    var messageTypes: [String] { [Self.probe, Self.sequence] }
    func deliverMessage(_ message: Message, _ context: TxContext) throws(ExecutionError) {
        if message.type == Self.sequence { return try sequence(context) }
        let key = context.store.key(Data("record".utf8))
        func report(_ step: String) throws(ExecutionError) {
            let label = try context.store.read(Account.self, at: key)?.label ?? "<absent>"
            context.emit(Event(type: "kept.read", attributes: [EventAttribute("step", step), EventAttribute("label", label)]))
        }
        context.store.write(Account(nonce: 1, label: "kept"), at: key, keeping: true)
        try report("kept")
        context.store.set(key, Account(nonce: 2, label: "raw bytes").encoded)
        try report("set")
        context.store.write(Account(nonce: 3, label: "kept again"), at: key, keeping: true)
        context.store.delete(key)
        try report("deleted")
    }

    private func sequence(_ context: TxContext) throws(ExecutionError) {
        let first = context.store.key(Data("a".utf8)), second = context.store.key(Data("b".utf8))
        func report(_ step: String, _ value: Data?) {
            context.emit(Event(type: "kept.bytes", attributes: [EventAttribute("step", step),
                                                                EventAttribute("hex", value?.hexString ?? "<absent>")]))
        }
        context.store.write(Account(nonce: 1, label: "superseded"), at: first, keeping: true)
        context.store.write(Account(nonce: 2, label: "first"), at: first, keeping: true)
        report("raw read of a kept write", try context.store.get(first))
        context.store.write(Account(nonce: 3, label: "second"), at: second, keeping: true)
        report("first after another key's kept write", try context.store.get(first))
        for row in try context.store.scan() { report("scan " + String(decoding: row.key, as: UTF8.self), row.value) }
    }
}

@Suite("Commit path: committed-state cache, no-op writes, durability, state elements")
struct CommitPathTests {
    @Test func committedCacheAlwaysEqualsTheStore() throws {
        let net = try TestNet(moduleParams: ["counter": Data("{\"max\":1000000}".utf8)])
        let dir = TempDir()
        let reference = try makeApp(net, modules: [CounterModule()])
        var app: Application? = try makeApp(net, modules: [CounterModule()], store: try openDatabase(dir))
        for (i, txs) in try StateMachineTests().randomBlocks(25, seed: 11).enumerated() {
            // A restart midway: the reopened application starts with an empty cache.
            if i == 12 {
                app = nil
                app = try Application.open(store: try openDatabase(dir), modules: [CounterModule()], verifier: TestCommitVerifier())
            }
            let live = try #require(app)
            // Check-state reads go through the same cache.
            for raw in txs { _ = try live.checkTx(raw) }
            let hash = try net.produce(live, txs).appHash
            #expect(hash == (try net.produce(reference, txs).appHash), "block \(i)")
            #expect(try live.auditCommittedCache().isEmpty, "block \(i): cache differs from the store")
        }
        let live = try #require(app)
        #expect(try live.recomputeAppHash() == live.lastAppHash)
    }

    /// The commit encodes each transaction result once, into the block's results, and the
    /// tx index only points into them: the stored results must be exactly what the standard
    /// encoder writes, every record served from the index must decode to what
    /// `finalizeBlock` returned, and an index entry must not hold a copy of the result.
    @Test func blockResultsAndTxRecordsAreTheStandardEncodings() throws {
        let net = try TestNet(moduleParams: ["counter": Data("{\"max\":1000000}".utf8)])
        let store = InMemoryStore(columnFamilies: Application.columnFamilies)
        let app = try makeApp(net, modules: [CounterModule()], store: store)
        var checkedFailures = 0
        for txs in try StateMachineTests().randomBlocks(10, seed: 23) {
            let r = try net.produce(app, txs)
            let raw = try app.query(path: "/blocks/\(r.height)/results").value
            let stored = try BlockResults(decoding: raw)
            #expect(stored.encoded == raw)
            #expect(stored.txResults == r.txResults)
            #expect(stored.events == r.events)
            #expect(stored.appHash == r.appHash)
            for (i, tx) in txs.enumerated() {
                let hash = Data(SHA256.hash(data: tx))
                let record = try app.query(path: "/tx/" + hash.hexString)
                guard r.txResults[i].isOK else { checkedFailures += 1; continue }
                let decoded = try TxRecord(decoding: record.value)
                #expect(decoded.encoded == record.value)
                #expect(decoded.height == r.height)
                #expect(decoded.index == UInt32(i))
                #expect(decoded.result == r.txResults[i])
                let entry = try #require(try store.get(Data("t".utf8) + hash, in: Application.blocksColumnFamily))
                #expect(entry.count == 20, "u64 height ‖ u32 index ‖ u32 offset ‖ u32 length, not the result again")
            }
        }
        #expect(checkedFailures > 0, "the random blocks include failing transactions")
    }

    @Test func writesThatChangeNothingReachNeitherTheBatchNorTheAppHash() throws {
        let net = try TestNet()
        let store = InstrumentedStore(InMemoryStore(columnFamilies: Application.columnFamilies))
        let app = try makeApp(net, modules: [NoOpWritesModule()], store: store)
        let key = testKey("noop")
        func touch(_ nonce: UInt64) throws -> Data {
            try Transaction.signed(chainID: testChainID, key: key, nonce: nonce,
                                   messages: [Message(type: NoOpWritesModule.touch, payload: Data())]).encoded
        }
        func stateKeys(_ batch: WriteBatch) -> [String] {
            batch.operations.compactMap { op -> String? in
                switch op {
                case .put(let cf, let k, _) where cf == Application.stateColumnFamily: return String(decoding: k, as: UTF8.self)
                case .delete(let cf, let k) where cf == Application.stateColumnFamily: return String(decoding: k, as: UTF8.self)
                default: return nil
                }
            }
        }
        #expect(try net.produce(app, [try touch(0)]).txResults.allSatisfy(\.isOK))
        let first = stateKeys(try #require(store.batches.last))
        #expect(first.contains("noop/constant"))
        #expect(!first.contains("noop/marker"), "a key set and cleared in one block never reaches RocksDB")
        let hashAfterFirst = app.lastAppHash
        #expect(try net.produce(app, [try touch(1)]).txResults.allSatisfy(\.isOK))
        let second = stateKeys(try #require(store.batches.last))
        #expect(!second.contains("noop/constant"), "rewriting the committed value is not a change")
        #expect(!second.contains("noop/marker"))
        #expect(second.contains { $0.hasPrefix("accounts/") }, "the nonce still moves")
        #expect(app.lastAppHash != hashAfterFirst)
        #expect(try app.recomputeAppHash() == app.lastAppHash)
    }

    /// A proposal this application accepts has its senders' accounts read from the store in
    /// one batch when it is accepted, not one lookup per transaction, so the decided block
    /// reads none of them itself — and executes to exactly what a replica that never saw the
    /// proposal computes.
    @Test func aDecidedBlockReadsItsSendersAccountsInOneBatch() throws {
        let net = try TestNet()
        let dir = TempDir()
        let store = InstrumentedStore(try openDatabase(dir))
        let app = try makeApp(net, store: store)
        let twin = try makeApp(net)
        // Two blocks: new accounts (absent from the store), then the same accounts again.
        for (round, nonce) in [UInt64(0), 1].enumerated() {
            let txs = try (0..<5).map { try labelTx(testKey("batch-\($0)"), nonce: nonce) }
            let block = try net.nextBlock(app, txs)
            store.forgetReads()
            #expect(try app.processProposal(block) == .accept)
            let (proposalGets, proposalBatches) = store.keysRead
            store.forgetReads()
            let result = try app.finalizeBlock(block)
            try app.commit()
            #expect(result.txResults.allSatisfy { $0.isOK }, "round \(round)")
            let accountKeys = Set(txs.map { raw -> Data in
                let tx = try? Transaction(decoding: raw)
                return Data("accounts/a/".utf8) + (tx?.sender ?? Data())
            })
            let (gets, batches) = store.keysRead
            #expect(gets.filter(accountKeys.contains).isEmpty && batches.allSatisfy { Set($0).isDisjoint(with: accountKeys) },
                    "round \(round): the block read an account from the store itself")
            #expect(proposalGets.filter(accountKeys.contains).isEmpty, "round \(round): an account read one at a time")
            if round == 0 {
                #expect(proposalBatches.count == 1 && Set(proposalBatches[0]) == accountKeys,
                        "accepting the proposal read the five new accounts in one batch")
            } else {
                // Committed by the first block: the application's cache answers.
                #expect(proposalBatches.allSatisfy { Set($0).isDisjoint(with: accountKeys) })
            }
            let twinResult = try twin.finalizeBlock(block)
            try twin.commit()
            #expect(twinResult.appHash == result.appHash, "round \(round)")
        }
        #expect(try app.auditCommittedCache().isEmpty)
    }

    /// A value written with its decoded form kept is read back as written, and a later write
    /// of other bytes, or a delete, is what a read then sees.
    @Test func aKeptWriteIsReadBackOnlyWhileItsBytesAreThere() throws {
        let net = try TestNet()
        let app = try makeApp(net, modules: [KeptWriteModule()])
        let tx = try Transaction.signed(chainID: testChainID, key: testKey("kept"), nonce: 0,
                                        messages: [Message(type: KeptWriteModule.probe, payload: Data())]).encoded
        let result = try net.produce(app, [tx])
        let reads = try #require(result.txResults.first).events.filter { $0.type == "kept.read" }
        #expect(reads.map { $0.attributes.map(\.value) } == [["kept", "kept"], ["set", "raw bytes"], ["deleted", "<absent>"]])
    }

    /// A kept write is encoded only when its bytes are needed, yet every reader sees exactly
    /// the bytes an immediate encoding would have stored: a raw read, a scan, the next
    /// kept write of another key, the merge into the block and the commit.
    @Test func aKeptWriteLeftUnencodedIsSeenAsItsEncodingEverywhere() throws {
        let net = try TestNet()
        let store = InMemoryStore(columnFamilies: Application.columnFamilies)
        let app = try makeApp(net, modules: [KeptWriteModule()], store: store)
        let tx = try Transaction.signed(chainID: testChainID, key: testKey("kept"), nonce: 0,
                                        messages: [Message(type: KeptWriteModule.sequence, payload: Data())]).encoded
        let result = try net.produce(app, [tx])
        let first = Account(nonce: 2, label: "first").encoded.hexString
        let second = Account(nonce: 3, label: "second").encoded.hexString
        let seen = try #require(result.txResults.first).events.filter { $0.type == "kept.bytes" }.map { $0.attributes.map(\.value) }
        #expect(seen == [["raw read of a kept write", first], ["first after another key's kept write", first],
                         ["scan a", first], ["scan b", second]])
        #expect(try store.get(Data("kept/a".utf8), in: Application.stateColumnFamily)?.hexString == first)
        #expect(try store.get(Data("kept/b".utf8), in: Application.stateColumnFamily)?.hexString == second)
    }

    /// A block with enough changed keys has its state elements summed on two threads, per
    /// module, from the empty commitment: the app hash must still be the one a full scan of
    /// the committed state gives, for inserts, for rewrites of existing keys, and with two
    /// modules' keys mixed in one block (300 changed keys: over the 256 at which it splits).
    /// Its results, encoded beside the batch's state part, are still the standard encoding,
    /// and every transaction's record points at its own.
    @Test func aLargeBlockSummedInPartsCommitsToTheWholeState() throws {
        let net = try TestNet(moduleParams: ["counter": Data("{\"max\":1000000}".utf8)])
        let app = try makeApp(net, modules: [CounterModule()])
        func checkRecords(_ r: FinalizeResult, _ txs: [Data]) throws {
            let raw = try app.query(path: "/blocks/\(r.height)/results").value
            let stored = try BlockResults(decoding: raw)
            #expect(stored.encoded == raw && stored.txResults == r.txResults && stored.appHash == r.appHash)
            for (i, tx) in txs.enumerated() {
                let record = try TxRecord(decoding: try app.query(path: "/tx/" + Data(SHA256.hash(data: tx)).hexString).value)
                #expect(record.height == r.height && record.index == UInt32(i) && record.result == r.txResults[i])
            }
        }
        let keys = (0..<300).map { testKey("many-\($0)") }
        let fresh = try keys.map { try labelTx($0, nonce: 0) }
        let first = try net.produce(app, fresh)
        #expect(first.txResults.allSatisfy { $0.isOK })
        try checkRecords(first, fresh)
        #expect(try app.recomputeAppHash() == app.lastAppHash, "new accounts")
        var mixed: [Data] = []
        for (i, key) in keys.enumerated() {
            mixed.append(i % 3 == 0
                ? try Transaction.signed(chainID: testChainID, key: key, nonce: 1, messages: [CounterModule.add(UInt64(i + 1))]).encoded
                : try labelTx(key, nonce: 1, label: "again \(i)"))
        }
        let second = try net.produce(app, mixed)
        #expect(second.txResults.allSatisfy { $0.isOK })
        try checkRecords(second, mixed)
        #expect(try app.recomputeAppHash() == app.lastAppHash, "rewritten accounts and counter keys")
    }

    /// An application at genesis over a fresh instrumented store, committing as a node does
    /// (behind the caller's decision log).
    func decisionLogApp(_ net: TestNet) throws -> (InstrumentedStore<InMemoryStore>, Application) {
        let store = InstrumentedStore(InMemoryStore(columnFamilies: Application.columnFamilies))
        let app = try Application(store: store, verifier: TestCommitVerifier(), durability: .replayedFromDecisionLog)
        try app.initChain(net.genesis)
        return (store, app)
    }

    @Test func commitSyncsUnlessTheCallerKeepsTheDecisionLog() throws {
        let net = try TestNet()
        let synced = InstrumentedStore(InMemoryStore(columnFamilies: Application.columnFamilies))
        let a = try makeApp(net, store: synced)
        try net.produce(a, [try labelTx(testKey("s"), nonce: 0)])
        #expect(synced.syncs.allSatisfy { $0 }, "standalone: genesis and every commit synced")

        let (deferred, b) = try decisionLogApp(net)
        let block = try net.nextBlock(b, [try labelTx(testKey("s"), nonce: 0)])
        // The caller's decision record is the block store's copy: without it nothing runs.
        #expect(throws: ChainError.self) { try b.finalizeBlock(block) }
        var other = WriteBatch()
        let otherBlock = try net.nextBlock(b, [try labelTx(testKey("t"), nonce: 0)])
        try Application.recordDecidedBlock(otherBlock.encoded, height: block.header.height, in: &other)
        try deferred.write(other, sync: true)
        #expect(throws: ChainError.self, "another block recorded at the height") { try b.finalizeBlock(block) }
        var decision = WriteBatch()
        try Application.recordDecidedBlock(block.encoded, height: block.header.height, in: &decision)
        try deferred.write(decision, sync: true)
        #expect(try b.block(at: block.header.height) == nil, "recorded, not committed: not the chain's yet")
        #expect(try b.recordedBlockBytes(at: block.header.height) == block.encoded)
        #expect(try b.finalizeBlock(block).txResults.allSatisfy(\.isOK))
        try b.commit()
        let commitBatch = try #require(deferred.batches.last)
        #expect(!commitBatch.operations.contains {
            if case .put(let cf, let key, _) = $0 { return cf == Application.blocksColumnFamily && key.first == UInt8(ascii: "h") }
            return false
        }, "the commit does not write the recorded block again")
        #expect(try b.block(at: block.header.height) == block)
        #expect(deferred.syncs == [true, true, true, false],
                "genesis synced; the caller's decision records; the block's commit left to them")
        #expect(b.lastAppHash == a.lastAppHash)
    }

    @Test func theDecisionRecordCarriesTheBlockHashAndAnOlderRecordIsComparedByteForByte() throws {
        let net = try TestNet()
        let (store, app) = try decisionLogApp(net)
        let block = try net.nextBlock(app, [try labelTx(testKey("s"), nonce: 0)])
        let height = block.header.height
        var be8 = BinaryWriter()
        be8.u64(height)
        let blockKey = Data("h".utf8) + be8.data, hashKey = Data("d".utf8) + be8.data

        // Bytes that are not a block add nothing to the batch.
        var refused = WriteBatch()
        #expect(throws: ChainError.self) { try Application.recordDecidedBlock(Data([1, 2, 3]), height: height, in: &refused) }
        #expect(refused.operations.isEmpty)

        var decision = WriteBatch()
        try Application.recordDecidedBlock(block.encoded, height: height, in: &decision)
        #expect(decision.operations.count == 2)
        try store.write(decision, sync: true)
        #expect(try store.get(hashKey, in: Application.blocksColumnFamily) == block.hash)

        // A record from before the hash was kept: the bytes alone, compared in full.
        var older = WriteBatch()
        older.delete(hashKey, in: Application.blocksColumnFamily)
        older.put(blockKey, try net.nextBlock(app, [try labelTx(testKey("t"), nonce: 0)]).encoded, in: Application.blocksColumnFamily)
        try store.write(older, sync: true)
        #expect(throws: ChainError.self, "another block's bytes") { try app.finalizeBlock(block) }
        var same = WriteBatch()
        same.put(blockKey, block.encoded, in: Application.blocksColumnFamily)
        try store.write(same, sync: true)
        #expect(try app.finalizeBlock(block).txResults.allSatisfy(\.isOK))
        try app.commit()
        #expect(try app.block(at: height) == block)
    }

    @Test func anApplicationThatWritesTheDecisionKnowsItWithoutReadingItBack() throws {
        let net = try TestNet()
        let (store, app) = try decisionLogApp(net)
        let block = try net.nextBlock(app, [try labelTx(testKey("s"), nonce: 0)])
        let other = try net.nextBlock(app, [try labelTx(testKey("t"), nonce: 0)])
        let height = block.header.height

        store.failNextWrite()
        #expect(throws: ChainError.self) { try app.recordDecision(WriteBatch(), block: block.encoded, height: height) }
        #expect(throws: ChainError.self, "a failed write is not remembered") { try app.finalizeBlock(block) }
        let writes = store.writeCount
        #expect(throws: ChainError.self) { try app.recordDecision(WriteBatch(), block: Data([9]), height: height) }
        #expect(store.writeCount == writes, "bytes that are not a block are not written")

        // The caller's own record goes in the same synced write.
        var certificate = WriteBatch()
        certificate.put(Data("caller-record".utf8), Data([1]), in: Application.metaColumnFamily)
        try app.recordDecision(certificate, block: block.encoded, height: height)
        #expect(store.syncs.last == true)
        #expect(try #require(store.batches.last).operations.count == 3)
        #expect(try store.get(Data("caller-record".utf8), in: Application.metaColumnFamily) == Data([1]))
        #expect(try app.recordedBlockBytes(at: height) == block.encoded)
        #expect(throws: ChainError.self, "another block at the recorded height") { try app.finalizeBlock(other) }
        #expect(try app.finalizeBlock(block).txResults.allSatisfy(\.isOK))
        try app.commit()
        #expect(try app.block(at: height) == block)

        // Another application over the same store (a restart) reads the record back.
        let next = try net.nextBlock(app, [try labelTx(testKey("s"), nonce: 1)])
        try app.recordDecision(WriteBatch(), block: next.encoded, height: next.header.height)
        let restarted = try Application(store: store, verifier: TestCommitVerifier(), durability: .replayedFromDecisionLog)
        #expect(try restarted.finalizeBlock(next).txResults.allSatisfy(\.isOK))
    }

    /// Known answer for one state element, computed outside Swift: d by Python's hashlib
    /// (`H_"ishtar/state-element"(BE4(len k) ‖ k ‖ v)`), the keystream by
    /// `openssl enc -aes-256-ctr -K d -iv 00…00` over 2048 zero bytes.
    @Test func stateElementMatchesAnIndependentAESCTRKeystream() {
        var c = StateCommitment()
        let key = Data("accounts/a/example".utf8), value = Data([0, 1]) + Data("value".utf8)
        c.insert(key: key, value: value)
        #expect(Array(c.lanes.prefix(4)) == [46227, 39599, 61271, 47578])
        #expect(Array(c.lanes.suffix(4)) == [51522, 12330, 33485, 22262])
        #expect(c.lanes.reduce(UInt16(0)) { $0 &+ $1 } == 9207)
        // Serialized big-endian, lane by lane: 46227 = 0xB493, 39599 = 0x9AAF.
        #expect(Array(c.bytes.prefix(4)) == [0xB4, 0x93, 0x9A, 0xAF])
        #expect(c.bytes.count == StateCommitment.byteCount)
        c.remove(key: key, value: value)
        #expect(c.isEmpty)
    }
}
