import Foundation
import IshtarChain
import IshtarCrypto
import IshtarStore
import IshtarTestSupport
import Synchronization
import Testing

/// Deterministic keys: the secret is SHA-256 of a label.
func testKey(_ label: String) -> Schnorr.PrivateKey {
    var seed = Data(label.utf8)
    while true {
        let secret = testSHA256(seed)
        if let key = try? Schnorr.PrivateKey(rawRepresentation: secret) { return key }
        seed = secret
    }
}

func testSHA256(_ data: Data) -> Data { TaggedHash.hash(tag: "test", data: data) }

let testChainID = "ishtar-test-1"
let genesisTime: UInt64 = 1_735_689_600_000 // 2025-01-01T00:00:00Z

/// Signs commits the way a test engine would: BIP-340 over a tagged digest of the commit.
struct TestCommitVerifier: CommitVerifier {
    static func digest(_ commit: CommitInfo, chainID: String) -> Data {
        var w = BinaryWriter()
        w.string(chainID)
        w.u64(commit.height)
        w.u32(commit.round)
        w.fixed(commit.blockHash)
        return TaggedHash.hash(tag: "test/vote", data: w.bytes)
    }

    func isValid(_ signature: CommitSignature, of commit: CommitInfo, chainID: String, publicKey: Data) -> Bool {
        guard let key = try? Schnorr.PublicKey(rawRepresentation: publicKey),
              let sig = try? Schnorr.Signature(rawRepresentation: signature.signature) else { return false }
        return key.isValidSignature(sig, for: Self.digest(commit, chainID: chainID))
    }
}

/// A validator set, a genesis and helpers to build valid blocks for it.
struct TestNet {
    let validatorKeys: [Schnorr.PrivateKey]
    let genesis: Genesis

    init(validators: Int = 4, moduleParams: [String: Data] = [:], maxTxBytes: Int = ConsensusParams.defaultMaxTxBytes) throws {
        validatorKeys = (0..<validators).map { testKey("validator-\($0)") }
        genesis = try Genesis(
            chainID: testChainID, genesisTime: genesisTime,
            validators: validatorKeys.enumerated().map {
                ChainValidator(publicKey: $0.element.publicKey.rawRepresentation, power: UInt64(10 + $0.offset), name: "v\($0.offset)")
            },
            consensusParams: ConsensusParams(maxTxBytes: maxTxBytes), moduleParams: moduleParams)
    }

    /// The commit of the last block, signed by every validator.
    func lastCommit(_ tip: ChainTip, signers: Int? = nil) throws -> CommitInfo? {
        guard tip.lastHeight >= tip.initialHeight else { return nil }
        var commit = CommitInfo(height: tip.lastHeight, round: 0, blockHash: tip.lastBlockHash, signatures: [])
        let digest = TestCommitVerifier.digest(commit, chainID: tip.chainID)
        let keys = validatorKeys.prefix(signers ?? validatorKeys.count)
        commit.signatures = try keys.map {
            CommitSignature(address: $0.publicKey.rawRepresentation,
                            signature: try $0.signature(for: digest, auxiliaryRandomness: Data(count: 32)).rawRepresentation)
        }.sorted { $0.address.lexicographicallyPrecedes($1.address) }
        return commit
    }

    /// A valid next block for `app` carrying `transactions`.
    func nextBlock(_ app: Application, _ transactions: [Data]) throws -> Block {
        let tip = try #require(app.tip)
        let validators = try #require(app.validators)
        let time = tip.lastHeight >= tip.initialHeight ? tip.lastBlockTime + 1000 : tip.lastBlockTime
        let proposer = validators.validators[Int(tip.nextHeight % UInt64(validators.validators.count))].address
        return Block.make(tip: tip, time: time, proposer: proposer, validators: validators,
                          lastCommit: try lastCommit(tip), transactions: transactions)
    }

    /// Proposes, finalizes and commits a block of `transactions`.
    @discardableResult
    func produce(_ app: Application, _ transactions: [Data], requireValidProposal: Bool = true) throws -> FinalizeResult {
        let block = try nextBlock(app, transactions)
        if requireValidProposal, try app.processProposal(block) != .accept { throw TestFailure("proposal rejected") }
        let result = try app.finalizeBlock(block)
        try app.commit()
        return result
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A fresh initialized application over an in-memory store.
func makeApp(_ net: TestNet, modules: [any Module] = [], store: (any KeyValueStore)? = nil) throws -> Application {
    let store = store ?? InMemoryStore(columnFamilies: Application.columnFamilies)
    let app = try Application(store: store, modules: modules, verifier: TestCommitVerifier())
    try app.initChain(net.genesis)
    return app
}

func openDatabase(_ dir: TempDir, _ name: String = "db") throws -> Database {
    try Database.open(path: dir.path(name), options: Application.databaseOptions())
}

/// A signed `accounts/SetLabel` transaction.
func labelTx(_ key: Schnorr.PrivateKey, nonce: UInt64, label: String = "hi", chainID: String = testChainID) throws -> Data {
    try Transaction.signed(chainID: chainID, key: key, nonce: nonce, messages: [SetLabel(label: label).message]).encoded
}

/// Every key/value of every column family, for before/after comparisons.
func dump(_ store: any KeyValueStore) throws -> [String: [String]] {
    var out: [String: [String]] = [:]
    for cf in store.columnFamilies {
        out[cf] = try store.scan(cf, .all, direction: .forward).collect().map { $0.key.hexString + "=" + $0.value.hexString }
    }
    return out
}

/// Wraps a store, counting (and optionally failing) `write` calls and keeping the batches.
final class InstrumentedStore<Inner: KeyValueStore>: KeyValueStore, @unchecked Sendable {
    typealias Snapshot = Inner.Snapshot
    let inner: Inner
    private let state = Mutex<(writes: Int, failNext: Bool, batches: [WriteBatch], syncs: [Bool])>((0, false, [], []))

    init(_ inner: Inner) { self.inner = inner }

    var columnFamilies: [String] { inner.columnFamilies }
    var writeCount: Int { state.withLock { $0.writes } }
    var batches: [WriteBatch] { state.withLock { $0.batches } }
    /// The `sync` flag of every successful write, in order.
    var syncs: [Bool] { state.withLock { $0.syncs } }
    func failNextWrite() { state.withLock { $0.failNext = true } }

    /// Every key read with `get`, and every key list read with `multiGet`, in order.
    private let reads = Mutex<(gets: [Data], multiGets: [[Data]])>(([], []))
    var keysRead: (gets: [Data], multiGets: [[Data]]) { reads.withLock { $0 } }
    func forgetReads() { reads.withLock { $0 = ([], []) } }

    func get(_ key: Data, in columnFamily: String) throws -> Data? {
        reads.withLock { $0.gets.append(key) }
        return try inner.get(key, in: columnFamily)
    }
    func multiGet(_ keys: [Data], in columnFamily: String) throws -> [Data?] {
        reads.withLock { $0.multiGets.append(keys) }
        return try inner.multiGet(keys, in: columnFamily)
    }
    func scan(_ columnFamily: String, _ range: KeyRange, direction: ScanDirection) throws -> StoreIterator {
        try inner.scan(columnFamily, range, direction: direction)
    }
    func write(_ batch: WriteBatch, sync: Bool) throws {
        let fail = state.withLock { s -> Bool in
            if s.failNext {
                s.failNext = false
                return true
            }
            s.writes += 1
            s.batches.append(batch)
            s.syncs.append(sync)
            return false
        }
        if fail { throw StoreError.ioError("injected failure") }
        try inner.write(batch, sync: sync)
    }
    func snapshot() throws -> Inner.Snapshot { try inner.snapshot() }
    func close() throws { try inner.close() }
}

/// A test-only module proving that a new module slots in without frame changes: a
/// counter with a message, begin/end-block hooks, events, genesis params and queries.
struct CounterModule: Module {
    enum CounterError: ChainRuleError, Equatable {
        /// Adding zero is pointless.
        case zeroAmount
        /// The counter would exceed its `max` parameter.
        case overLimit(value: UInt64, limit: UInt64)
        /// The payload is not 8 bytes.
        case malformed

        static let codespace = "counter"
        var code: UInt32 {
            switch self {
            case .zeroAmount: return 2
            case .overLimit: return 3
            case .malformed: return 4
            }
        }
        var rule: String {
            switch self {
            case .zeroAmount: return "zero-amount"
            case .overLimit: return "over-limit"
            case .malformed: return "malformed"
            }
        }
        var description: String {
            switch self {
            case .zeroAmount: return "amount must be positive"
            case let .overLimit(value, limit): return "value \(value) would exceed \(limit)"
            case .malformed: return "payload must be a u64"
            }
        }
    }

    struct Params: Codable, Sendable, BinaryCodable {
        var max: UInt64
        var failEndBlockAt: UInt64?
        func encode(to w: inout BinaryWriter) {
            w.u64(max)
            w.u64(failEndBlockAt ?? 0)
        }
        init(max: UInt64, failEndBlockAt: UInt64? = nil) {
            self.max = max
            self.failEndBlockAt = failEndBlockAt
        }
        init(from r: inout BinaryReader) throws(CodecError) {
            max = try r.u64("max")
            let f = try r.u64("fail")
            failEndBlockAt = f == 0 ? nil : f
        }
    }

    static let addType = "counter/Add"
    /// Whether begin-block counts blocks in state (off where a test needs a still state).
    var countBlocks = true
    var name: String { "counter" }
    var messageTypes: [String] { [Self.addType] }

    static func add(_ amount: UInt64) -> Message {
        var w = BinaryWriter()
        w.u64(amount)
        return Message(type: addType, payload: w.data)
    }

    func initGenesis(_ context: GenesisContext) throws(ExecutionError) {
        let params = try context.decodeParams(Params.self, defaults: Params(max: 1000))
        context.store.write(params, at: Data("params".utf8))
    }

    func amount(_ m: Message) throws(ExecutionError) -> UInt64 {
        var r = BinaryReader(m.payload)
        do {
            let v = try r.u64("amount")
            try r.finish()
            return v
        } catch {
            throw .rule(CounterError.malformed)
        }
    }

    func value(_ store: ModuleStore) throws(ExecutionError) -> UInt64 {
        guard let raw = try store.get(Data("value".utf8)) else { return 0 }
        var r = BinaryReader(raw)
        do { return try r.u64("value") } catch { throw .fatal(.corruptState("counter")) }
    }

    func validateMessage(_ message: Message, sender: Data) throws(ExecutionError) {
        guard try amount(message) > 0 else { throw .rule(CounterError.zeroAmount) }
    }

    func deliverMessage(_ message: Message, _ context: TxContext) throws(ExecutionError) {
        let amount = try amount(message)
        let limit = try context.store.read(Params.self, at: Data("params".utf8))?.max ?? 1000
        let current = try value(context.store)
        let (sum, overflow) = current.addingReportingOverflow(amount)
        guard !overflow, sum <= limit else { throw .rule(CounterError.overLimit(value: current, limit: limit)) }
        var w = BinaryWriter()
        w.u64(sum)
        context.store.set(Data("value".utf8), w.data)
        context.emit(Event(type: "counter.added", attributes: [EventAttribute("amount", String(amount)),
                                                                EventAttribute("value", String(sum))]))
    }

    func beginBlock(_ context: BlockContext) throws(ExecutionError) {
        guard countBlocks else { return }
        let key = Data("blocks".utf8)
        var r = BinaryReader(try context.store.get(key) ?? Data(count: 8))
        let n = (try? r.u64("blocks")) ?? 0
        var w = BinaryWriter()
        w.u64(n + 1)
        context.store.set(key, w.data)
        context.emit(Event(type: "counter.begin_block", attributes: [EventAttribute("height", String(context.block.height))]))
    }

    func endBlock(_ context: BlockContext) throws(ExecutionError) {
        let params = try context.store.read(Params.self, at: Data("params".utf8))
        // Writes before the failure must be discarded by the frame.
        context.store.set(Data("end".utf8), Data([1]))
        if params?.failEndBlockAt == context.block.height { throw .rule(CounterError.zeroAmount) }
        context.emit(Event(type: "counter.end_block", attributes: [EventAttribute("value", String(try value(context.store)))]))
    }

    func query(_ request: QueryRequest, _ context: QueryContext) throws(ExecutionError) -> Data {
        guard request.path == ["value"] else { throw .rule(QueryError.unknownPath(request.path.joined(separator: "/"))) }
        return canonicalJSON(["value": String(try value(context.store))])
    }
}

/// Fuzzes a decoder with mutations of valid encodings (``SplitMix64/mutated(_:)``): it must
/// never crash, and whatever it accepts must re-encode to the same bytes (no second encoding
/// of a value, so no second hash for the same transaction or message).
func fuzzDecoder<T: BinaryCodable & Equatable>(_ type: T.Type, seeds: [Data], iterations: Int, seed: UInt64,
                                              sourceLocation: SourceLocation = #_sourceLocation) -> (accepted: Int, rejected: Int) {
    var rng = SplitMix64(seed: seed)
    var accepted = 0
    var rejected = 0
    for _ in 0..<iterations {
        let input = rng.mutated(seeds[Int.random(in: 0..<seeds.count, using: &rng)])
        do {
            let value = try T(decoding: input)
            #expect(value.encoded == input, "\(T.self): accepted input must be canonical: \(input.hexString)",
                    sourceLocation: sourceLocation)
            accepted += 1
        } catch {
            rejected += 1
        }
    }
    return (accepted, rejected)
}
