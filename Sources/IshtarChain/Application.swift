import Foundation
import IshtarCrypto
import IshtarStore

/// How ``Application/commit()`` makes a committed block durable.
public enum CommitDurability: Sendable {
    /// The commit's write batch is synced to disk before `commit()` returns: a standalone
    /// application (tools, tests, benches of that mode) loses nothing even on power loss.
    case synced
    /// The batch is written atomically through RocksDB's write-ahead log but not synced,
    /// because the caller already holds a synced record of the decided block in the same
    /// database and replays it after a crash (ABCI's handshake replay) — as ``IshtarNode``
    /// does. That record is the block store's copy: the caller writes the block with
    /// ``Application/recordDecision(_:block:height:sync:)`` (or adds it to its own synced decision
    /// batch with ``Application/recordDecidedBlock(_:height:in:)``), before
    /// ``Application/finalizeBlock(_:)`` (which refuses a block not recorded so), and the
    /// commit does not write the block a second time. A killed process loses nothing (the
    /// log is in the OS page cache); a power loss can lose at most the last commit, since
    /// the next decision's synced write flushes the same log, and the replay restores it
    /// deterministically.
    case replayedFromDecisionLog
}

/// The deterministic application state machine, driven through an ABCI++-shaped
/// interface (`initChain`, `checkTx`, `prepareProposal`, `processProposal`,
/// `finalizeBlock`, `commit`, `query`) so the same object can sit behind the embedded
/// engine today and CometBFT later.
///
/// Storage (three column families, see ``columnFamilies``):
/// - `chain.state`: every module's state under `"<module>/"`;
/// - `chain.blocks`: `h‖BE8(height)` → block, `b‖hash` → BE8(height),
///   `t‖txHash` → ``TxRecord`` location, `r‖BE8(height)` → ``BlockResults``,
///   `d‖BE8(height)` → the hash of a block a caller recorded as decided;
/// - `chain.meta`: `app` → tip (height, hashes, time), `commitment/<module>` → that
///   module's ``StateCommitment``, `genesis` → the genesis JSON.
///
/// `commit` writes the block, its results, all its state changes, the commitments and the
/// new tip in ONE synced `WriteBatch`: after a crash a block is either fully there or
/// absent, and ``init(store:modules:verifier:)`` resumes from the last committed block.
/// Under a caller's decision log (``CommitDurability/replayedFromDecisionLog``) the block
/// itself is the caller's synced record, written before execution, and the batch holds the
/// rest.
///
/// Not thread-safe: the node drives it from one task (as CometBFT drives ABCI
/// connections), and queries must be serialized with commits.
public final class Application {
    /// Module state.
    public static let stateColumnFamily = "chain.state"
    /// Blocks, results and the transaction index.
    public static let blocksColumnFamily = "chain.blocks"
    /// Tip and commitments.
    public static let metaColumnFamily = "chain.meta"
    /// The store needs these column families (``databaseOptions(extraColumnFamilies:)``
    /// opens them).
    public static let columnFamilies = [stateColumnFamily, blocksColumnFamily, metaColumnFamily]

    /// Options for the application's RocksDB store: its column families plus `extra`, and no
    /// memtable bloom filter on the blocks family. That family takes a key per transaction
    /// (the index) and is asked for keys that exist (a block, a result), so a bloom filter
    /// there only cost its inserts; the state family keeps its filter, as its reads of
    /// absent keys (a new account) are what the filter answers.
    public static func databaseOptions(extraColumnFamilies: [String] = []) -> DatabaseOptions {
        var options = DatabaseOptions(columnFamilies: columnFamilies + extraColumnFamilies)
        options.columnFamiliesWithoutMemtableBloom = [blocksColumnFamily]
        return options
    }

    static let metaKey = Data("app".utf8)
    static let genesisKey = Data("genesis".utf8)
    static let commitmentPrefix = Data("commitment/".utf8)
    static let zeroHash = Data(count: 32)

    private let store: any KeyValueStore
    /// Registered modules, in hook order: `consensus`, `accounts`, then the caller's.
    public let modules: [any Module]
    /// Index in ``modules`` of the module owning each message type.
    private let moduleIndexByType: [String: Int]
    /// `"<name>/"` of each module in ``modules``, built once instead of per context.
    private let modulePrefixes: [Data]
    /// The modules with an ante rule (``AnteHandler``), with their index in ``modules``.
    private let anteHandlers: [(index: Int, handler: any AnteHandler)]
    private let moduleByName: [String: any Module]
    private let verifier: (any CommitVerifier)?
    /// Whether ``commit()`` syncs its batch (see ``CommitDurability``).
    public let durability: CommitDurability
    /// Size of the last committed block's encoded results: room reserved in the next batch.
    private var lastResultsBytes = 0

    private var meta: AppMeta?
    private var commitments: [String: StateCommitment] = [:]
    /// The last decision this application wrote itself (``recordDecision(_:block:height:sync:)``).
    private var lastRecordedDecision: (height: UInt64, hash: Data)?
    private var validatorSet: ChainValidatorSet?
    private var params: ConsensusParams?
    private var checkState: Overlay
    private var pending: PendingBlock?
    /// The last block ``processProposal(_:)`` accepted, with what it established; used once,
    /// by ``finalizeBlock(_:)`` of that very block on the same committed state.
    private var acceptedProposal: AcceptedProposal?
    private var haltReason: String?
    /// Committed state values read or written recently (bounded), shared by every root overlay.
    private let cache: CommittedCache
    /// SHA-256 of transaction bytes that passed the stateless rules — signature included —
    /// before (bounded FIFO).
    private var statelessPassed = VerifiedSignatureCache(capacity: 200_000)
    /// Transactions whose stateless rules passed before their block (mempool admission, a
    /// replacement's pre-check, a proposal), decoded, with each message's validated form, by
    /// hash: executing one in a block starts from them instead of decoding it again. An entry
    /// keeps alive the bytes it was given (its fields are slices of them; of a proposal's
    /// transactions, the block's buffer).
    /// Keyed by the hash as four words: a lookup hashes and compares 32 bytes in registers
    /// instead of through `Data` (which was ~4 % of a block of small transactions).
    private var admitted = Generations<Digest256, AdmittedTransaction>(capacity: 4096, byteCapacity: 16 << 20)

    /// A block that passed ``processProposal(_:)``: every block rule and every transaction's
    /// stateless rules against the committed state `meta` names (validators and parameters
    /// change only with that state). Executing the same block on the same state starts from
    /// its transactions' hashes and admitted forms instead of hashing, validating and looking
    /// up each transaction again — work every validator has just done before voting.
    private struct AcceptedProposal {
        let block: Block
        let meta: AppMeta
        let txHashes: [Data]
        let admitted: [AdmittedTransaction]
        /// The keys the ante handlers listed for its transactions, read into the cache when
        /// the proposal was accepted.
        let listed: ListedKeys?
    }

    private struct PendingBlock {
        var block: Block
        /// SHA-256 of each transaction, in block order.
        var txHashes: [Data]
        var hash: Data
        var results: [TxResult]
        var events: [Event]
        var changes: [(key: HashedBytes, value: Data?)]
        var commitments: [String: StateCommitment]
        var appHash: Data
    }

    /// Opens the application over `store`, loading the last committed tip if there is one.
    ///
    /// - Parameters:
    ///   - modules: extra modules after the built-in `consensus` and `accounts`; their
    ///     order is the hook order.
    ///   - verifier: checks last-commit signatures in block validation; `nil` checks their
    ///     shape and voting power only.
    ///   - durability: whether each commit is synced to disk (the default) or left to the
    ///     caller's own durable record of decided blocks (see ``CommitDurability``).
    public init(store: any KeyValueStore, modules extra: [any Module] = [], verifier: (any CommitVerifier)? = nil,
                durability: CommitDurability = .synced) throws(ChainError) {
        for cf in Self.columnFamilies where !store.columnFamilies.contains(cf) { throw .missingColumnFamily(cf) }
        let all: [any Module] = [ConsensusModule(), AccountsModule()] + extra
        var byName: [String: any Module] = [:]
        var indexByType: [String: Int] = [:]
        for (i, m) in all.enumerated() {
            guard Self.isValidModuleName(m.name) else { throw .invalidModuleSet("bad module name \"\(m.name)\"") }
            guard byName.updateValue(m, forKey: m.name) == nil else { throw .invalidModuleSet("duplicate module \(m.name)") }
            for t in m.messageTypes {
                guard t.hasPrefix(m.name + "/"), t.utf8.count > m.name.utf8.count + 1, t.utf8.count <= Message.maxTypeBytes
                else { throw .invalidModuleSet("message type \"\(t)\" must be \"\(m.name)/<Type>\"") }
                guard indexByType.updateValue(i, forKey: t) == nil else { throw .invalidModuleSet("duplicate message type \(t)") }
            }
        }
        self.store = store
        self.modules = all
        self.moduleByName = byName
        self.moduleIndexByType = indexByType
        self.modulePrefixes = all.map { ModuleStore.prefix(of: $0.name) }
        self.anteHandlers = all.enumerated().compactMap { i, m in (m as? any AnteHandler).map { (i, $0) } }
        self.verifier = verifier
        self.durability = durability
        let cache = CommittedCache(byteLimit: 32 << 20)
        self.cache = cache
        self.checkState = Overlay(base: store, columnFamily: Self.stateColumnFamily, cache: cache)
        try load()
    }

    /// Same as ``init(store:modules:verifier:)``: reopen after a restart.
    public static func open(store: any KeyValueStore, modules: [any Module] = [], verifier: (any CommitVerifier)? = nil,
                            durability: CommitDurability = .synced) throws(ChainError) -> Application {
        try Application(store: store, modules: modules, verifier: verifier, durability: durability)
    }

    /// A fresh view of the committed state, reading through the application's cache.
    private func rootOverlay() -> Overlay {
        Overlay(base: store, columnFamily: Self.stateColumnFamily, cache: cache)
    }

    /// Audit of the in-memory cache of committed state values: every cached key whose value
    /// differs from the store. Always empty unless something wrote the state behind the
    /// application's back (tests and diagnostics; O(cache size) reads).
    public func auditCommittedCache() throws -> [Data] {
        try cache.mismatches(against: store, columnFamily: Self.stateColumnFamily)
    }

    static func isValidModuleName(_ name: String) -> Bool {
        let b = Array(name.utf8)
        return !b.isEmpty && b.count <= 32 && b.allSatisfy { ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5f }
    }

    private func load() throws(ChainError) {
        guard let raw = try storeCall({ try store.get(Self.metaKey, in: Self.metaColumnFamily) }) else {
            meta = nil
            return
        }
        if let format = raw.first, format != AppMeta.version, format >= 1, format < 16 {
            throw .incompatibleStoreFormat(found: format, supported: AppMeta.version)
        }
        do {
            meta = try AppMeta(decoding: raw)
        } catch {
            throw .corruptState("app meta: \(error)")
        }
        let rows = try storeCall { try store.scan(Self.metaColumnFamily, prefix: Self.commitmentPrefix).collect() }
        var loaded: [String: StateCommitment] = [:]
        for row in rows {
            let name = String(decoding: row.key.dropFirst(Self.commitmentPrefix.count), as: UTF8.self)
            do {
                loaded[name] = try StateCommitment(bytes: row.value)
            } catch {
                throw .corruptState("commitment of \(name): \(error)")
            }
        }
        commitments = loaded
        try reloadConsensusState()
    }

    private func reloadConsensusState() throws(ChainError) {
        let view = ModuleStore(module: ConsensusModule.moduleName, overlay: rootOverlay())
        do throws(ExecutionError) {
            validatorSet = try ConsensusModule.validators(in: view)
            params = try ConsensusModule.params(in: view)
        } catch {
            switch error {
            case .fatal(let e): throw e
            case .rejected(let v): throw .corruptState("consensus state: \(v)")
            }
        }
        guard validatorSet != nil, params != nil else { throw .corruptState("consensus module state missing") }
    }

    // MARK: - Info

    /// The tip the next block must extend; `nil` before genesis.
    public var tip: ChainTip? { meta?.tip }
    /// The chain id; `nil` before genesis.
    public var chainID: String? { meta?.chainID }
    /// The genesis this state was initialized from, as ``Genesis/jsonData()`` wrote it then
    /// (`nil` before genesis).
    public func storedGenesisJSON() throws(ChainError) -> Data? {
        try storeCall { try store.get(Self.genesisKey, in: Self.metaColumnFamily) }
    }
    /// The validator set in force; `nil` before genesis.
    public var validators: ChainValidatorSet? { validatorSet }
    /// The consensus limits; `nil` before genesis.
    public var consensusParams: ConsensusParams? { params }
    /// The app hash after the last committed block (or genesis); `nil` before genesis.
    public var lastAppHash: Data? { meta?.lastAppHash }
    /// The last committed height; `nil` before genesis.
    public var lastHeight: UInt64? { meta?.lastHeight }

    private func ready() throws(ChainError) -> (AppMeta, ChainValidatorSet, ConsensusParams) {
        if let haltReason { throw .halted(haltReason) }
        guard let meta, let validatorSet, let params else { throw .notInitialized }
        return (meta, validatorSet, params)
    }

    // MARK: - Genesis

    /// Writes the genesis state (every module's `initGenesis`) and commits it in one
    /// batch as "height `initialHeight − 1`". Returns the genesis app hash, which the first
    /// block's header must carry.
    @discardableResult
    public func initChain(_ genesis: Genesis) throws(ChainError) -> Data {
        if let haltReason { throw .halted(haltReason) }
        guard meta == nil else { throw .alreadyInitialized }
        for name in genesis.moduleParams.keys.sorted() where moduleByName[name] == nil {
            throw .invalidGenesis(.unknownModule(name))
        }
        let overlay = rootOverlay()
        let info = BlockInfo(chainID: genesis.chainID, height: genesis.initialHeight - 1, time: genesis.genesisTime, proposer: Data())
        for module in modules {
            let ctx = GenesisContext(block: info, validators: genesis.validators, module: module.name, overlay: overlay,
                                     genesis: genesis, params: genesis.moduleParams[module.name])
            do throws(ExecutionError) {
                try module.initGenesis(ctx)
            } catch {
                switch error {
                case .fatal(let e): throw e
                case .rejected(let v): throw .invalidGenesis(.invalidModuleParams(module: module.name, reason: v.message))
                }
            }
        }
        let (updated, changes) = try updatedCommitments(overlay.writes)
        let all = commitments.merging(updated) { $1 }
        let appHash = Self.appHash(all)
        let newMeta = AppMeta(chainID: genesis.chainID, initialHeight: genesis.initialHeight,
                              lastHeight: genesis.initialHeight - 1, lastBlockHash: Self.zeroHash,
                              lastAppHash: appHash, lastBlockTime: genesis.genesisTime)
        var batch = WriteBatch()
        Self.addStateChanges(changes, to: &batch)
        Self.addCommitments(updated, to: &batch)
        batch.put(Self.metaKey, newMeta.encoded, in: Self.metaColumnFamily)
        batch.put(Self.genesisKey, genesis.jsonData(), in: Self.metaColumnFamily)
        try writeDurably(batch)
        cache.apply(changes)
        meta = newMeta
        commitments = all
        try reloadConsensusState()
        checkState = rootOverlay()
        return appHash
    }

    // MARK: - Transactions

    /// ``statelessCheck(_:hash:chainID:params:remember:)`` for callers that need only the
    /// transaction and will see it again in a block (admission without execution, a
    /// proposal): it is remembered.
    private func statelessCheck(_ raw: Data, hash: Data, chainID: String, params: ConsensusParams) throws(ChainError) -> Result<Transaction, RuleViolation> {
        try statelessCheck(raw, hash: hash, chainID: chainID, params: params, remember: true).map(\.transaction)
    }

    /// The stateless rules of `raw` (whose SHA-256 is `hash`): size, canonical decoding,
    /// chain id, signature, message count, known message types and each module's
    /// `validatedForm(of:sender:)`. With `remember` (everything but the execution of a decided
    /// block), a transaction that passes is kept decoded, with its messages' validated forms,
    /// for its execution in a block: that is the only memory of a message's validated form,
    /// so a vote's EOTS signature is verified once whether its transaction reaches this node
    /// through the mempool, a replacement's pre-check or a proposal.
    private func statelessCheck(_ raw: Data, hash: Data, chainID: String, params: ConsensusParams,
                                remember: Bool) throws(ChainError) -> Result<AdmittedTransaction, RuleViolation> {
        guard raw.count <= params.maxTxBytes else {
            return .failure(TxError.tooLarge(size: raw.count, limit: params.maxTxBytes).violation)
        }
        // The hash covers every byte, and every rule below is a pure function of the bytes
        // and the chain id (checked again, as it costs a compare).
        let id = Digest256(hash)
        if let kept = admitted[id] {
            do {
                try kept.transaction.validateBasic(chainID: chainID, signatureVerified: true, encoded: raw)
            } catch {
                return .failure(error.violation)
            }
            return .success(kept)
        }
        let tx: Transaction
        do throws(CodecError) {
            // Keys, signature and message payloads as slices of `raw`, which the block or
            // the mempool holds anyway.
            var r = BinaryReader(slicing: raw)
            tx = try Transaction(from: &r)
            try r.finish()
        } catch {
            return .failure(TxError.malformed(error).violation)
        }
        // A transaction's stateless rules are checked once per process: check-tx, recheck,
        // process-proposal and finalize all see the same bytes, the hash of the bytes covers
        // the signature, and signature and message rules are pure functions of those bytes.
        let passedBefore = statelessPassed.contains(id)
        do {
            try tx.validateBasic(chainID: chainID, signatureVerified: passedBefore, encoded: raw)
        } catch {
            return .failure(error.violation)
        }
        // Validated before but no longer kept. Executing a decided block needs no forms
        // (each message's delivery checks what it needs); to be kept, the forms are made
        // again once, so later rechecks find them.
        if passedBefore && !remember { return .success(AdmittedTransaction(transaction: tx, validatedForms: [])) }
        var forms: [AnyObject?] = []
        forms.reserveCapacity(tx.messages.count)
        for message in tx.messages {
            guard let i = moduleIndexByType[message.type] else {
                return .failure(TxError.unknownMessageType(message.type).violation)
            }
            do throws(ExecutionError) {
                forms.append(try modules[i].validatedForm(of: message, sender: tx.sender))
            } catch {
                switch error {
                case .fatal(let e): throw e
                case .rejected(let v): return .failure(v)
                }
            }
        }
        statelessPassed.insert(id)
        let passed = AdmittedTransaction(transaction: tx, validatedForms: forms)
        if remember { admitted.insert(passed, for: id, size: raw.count) }
        return .success(passed)
    }

    /// Runs one transaction (ante hooks, then its messages) in a child of `parent`,
    /// merging its writes only on success.
    private func execute(_ raw: Data, hash: Data, index: Int, isCheck: Bool, remember: Bool = true, block: BlockInfo, validators: ChainValidatorSet,
                         params: ConsensusParams, parent: Overlay,
                         admitted known: AdmittedTransaction? = nil,
                         listed: TransactionKeys? = nil) throws(ChainError) -> (TxResult, Transaction?) {
        let passed: AdmittedTransaction
        if let known {
            passed = known
        } else {
            switch try statelessCheck(raw, hash: hash, chainID: block.chainID, params: params, remember: remember) {
            case .failure(let v): return (TxResult(violation: v), nil)
            case .success(let t): passed = t
            }
        }
        let tx = passed.transaction
        let overlay = Overlay(parent: parent)
        // One context for every step, moved from module to module: a context per step was an
        // allocation each.
        var made: TxContext?
        func context(_ i: Int, form: AnyObject? = nil) -> TxContext {
            guard let c = made else {
                let c = TxContext(block: block, validators: validators, module: modules[i].name, storePrefix: modulePrefixes[i],
                                  overlay: overlay, transaction: tx, transactionHash: hash, index: index,
                                  isCheck: isCheck, validatedForm: form)
                made = c
                return c
            }
            c.module = modules[i].name
            c.storePrefix = modulePrefixes[i]
            c.validatedForm = form
            c.listedKeys = []
            return c
        }
        let forms = passed.validatedForms
        do throws(ExecutionError) {
            for (h, (i, handler)) in anteHandlers.enumerated() {
                let c = context(i)
                if let listed { c.listedKeys = listed.of(handler: h) }
                try handler.anteHandle(c)
            }
            for (j, message) in tx.messages.enumerated() {
                guard let i = moduleIndexByType[message.type] else {
                    throw .rule(TxError.unknownMessageType(message.type))
                }
                try modules[i].deliverMessage(message, context(i, form: j < forms.count ? forms[j] : nil))
            }
        } catch {
            switch error {
            case .fatal(let e): throw e
            case .rejected(let v): return (TxResult(violation: v), tx)
            }
        }
        overlay.mergeIntoParent()
        return (.ok(events: made?.events ?? []), tx)
    }

    /// Mempool admission (ABCI `CheckTx`): the stateless rules, then full execution
    /// against the *check state* — the last committed state plus every transaction
    /// admitted since — so a sender can queue nonces n, n+1, … . The check state is reset
    /// at every commit; the node re-checks its remaining mempool then.
    public func checkTx(_ raw: Data) throws(ChainError) -> CheckTxResult {
        let (meta, validators, params) = try ready()
        let info = BlockInfo(chainID: meta.chainID, height: meta.lastHeight + 1, time: meta.lastBlockTime, proposer: Data(),
                             previousBlockHash: meta.lastBlockHash)
        let hash = Transaction.hash(of: raw)
        let (result, tx) = try execute(raw, hash: hash, index: 0, isCheck: true, block: info, validators: validators,
                                       params: params, parent: checkState)
        return CheckTxResult(result: result, hash: hash, sender: tx?.sender, nonce: tx?.nonce)
    }

    /// The stateless rules alone (size, decoding, chain id, signature, each message's
    /// `validateMessage`): no state is read or changed. A mempool asks this before work that
    /// a forged transaction must not be able to trigger.
    public func checkStateless(_ raw: Data) throws(ChainError) -> CheckTxResult {
        let (meta, _, params) = try ready()
        let hash = Transaction.hash(of: raw)
        switch try statelessCheck(raw, hash: hash, chainID: meta.chainID, params: params) {
        case .success(let tx): return CheckTxResult(result: .ok(), hash: hash, sender: tx.sender, nonce: tx.nonce)
        case .failure(let v): return CheckTxResult(result: TxResult(violation: v), hash: hash)
        }
    }

    /// Drops everything check-tx admitted since the last commit: the check state is the
    /// committed state again. A mempool that swaps one of its transactions for another
    /// resets it and checks its transactions again in order.
    public func resetCheckState() { checkState = rootOverlay() }

    // MARK: - Proposals

    /// Builds the transaction list of a proposal (ABCI `PrepareProposal`): keeps the
    /// given order, drops every transaction that would fail (executed against a scratch
    /// copy of the state after the begin-block hooks), and skips those that do not fit in
    /// `maxTxBytes` (counted with their 4-byte length prefix).
    public func prepareProposal(_ request: PrepareProposalRequest) throws(ChainError) -> [Data] {
        let (meta, validators, params) = try ready()
        let info = BlockInfo(chainID: meta.chainID, height: request.height, time: request.time, proposer: request.proposer,
                             previousBlockHash: meta.lastBlockHash)
        let scratch = rootOverlay()
        var ignored: [Event] = []
        try runHooks(begin: true, block: info, validators: validators, overlay: scratch, events: &ignored)
        var selected: [Data] = []
        var used = 0
        for (i, raw) in request.transactions.enumerated() {
            let size = raw.count + 4
            guard used + size <= request.maxTxBytes else { continue }
            let (result, _) = try execute(raw, hash: Transaction.hash(of: raw), index: i, isCheck: false, block: info,
                                          validators: validators, params: params, parent: scratch)
            guard result.isOK else { continue }
            selected.append(raw)
            used += size
        }
        return selected
    }

    /// Decides whether to vote for a proposal (ABCI `ProcessProposal`): the block rules
    /// (``Block/validate(tip:validators:maxBlockBytes:verifier:)``) and every
    /// transaction's stateless rules. Stateful failures (e.g. a stale nonce) do not reject
    /// the block: they are executed and recorded as failed, deterministically.
    public func processProposal(_ block: Block) throws(ChainError) -> ProposalVerdict {
        let (meta, validators, params) = try ready()
        acceptedProposal = nil
        let txHashes = block.transactions.map { Transaction.hash(of: $0) }
        do {
            try block.validate(tip: meta.tip, validators: validators, maxBlockBytes: params.maxBlockBytes, verifier: verifier,
                               encodedSize: block.encodedSize, transactionHashes: txHashes)
        } catch {
            return .reject(error)
        }
        if let i = try firstRecordedEvidence(block) { return .reject(.invalidEvidence(index: i, "offence already committed")) }
        var admittedTransactions: [AdmittedTransaction] = []
        admittedTransactions.reserveCapacity(block.transactions.count)
        for (i, raw) in block.transactions.enumerated() {
            switch try statelessCheck(raw, hash: txHashes[i], chainID: meta.chainID, params: params, remember: true) {
            case .failure(let v): return .reject(.invalidTransaction(index: i, v))
            case .success(let t): admittedTransactions.append(t)
            }
        }
        // The state the ante steps will read is read now, while the validators vote: the
        // committed state cannot change before this height's block is decided, so the cache
        // still holds it when the block runs (values of a proposal that loses are merely
        // unused). A node that executes a block it never processed (replay, catch-up) reads
        // them one by one instead.
        let listed = try prefetchAnteKeys(of: admittedTransactions, into: rootOverlay())
        acceptedProposal = AcceptedProposal(block: block, meta: meta, txHashes: txHashes, admitted: admittedTransactions,
                                            listed: listed)
        return .accept
    }

    /// ``processProposal(_:)`` for raw bytes: undecodable bytes are rejected.
    public func processProposal(bytes: Data) throws(ChainError) -> ProposalVerdict {
        do {
            return try processProposal(Block(decoding: bytes))
        } catch let error as CodecError {
            return .reject(.malformed(error))
        } catch let error as ChainError {
            throw error
        } catch {
            throw .corruptState("unexpected error \(error)")
        }
    }

    // MARK: - Blocks

    /// Runs every module's begin- or end-block hook, each in its own child overlay: a hook
    /// that *rejects* has its writes discarded and a `hook_failed` block event recorded
    /// (deterministically on every node) instead of halting the chain; a fatal error throws.
    private func runHooks(begin: Bool, block: BlockInfo, validators: ChainValidatorSet, overlay: Overlay,
                          events: inout [Event]) throws(ChainError) {
        for module in modules {
            let child = Overlay(parent: overlay)
            let ctx = BlockContext(block: block, validators: validators, module: module.name, overlay: child)
            do throws(ExecutionError) {
                if begin { try module.beginBlock(ctx) } else { try module.endBlock(ctx) }
            } catch {
                switch error {
                case .fatal(let e): throw e
                case .rejected(let v):
                    events.append(Event(type: "hook_failed", attributes: [
                        EventAttribute("module", module.name), EventAttribute("phase", begin ? "begin_block" : "end_block"),
                        EventAttribute("codespace", v.codespace), EventAttribute("code", String(v.code)),
                        EventAttribute("rule", v.rule), EventAttribute("message", v.message),
                    ]))
                    continue
                }
            }
            child.mergeIntoParent()
            events.append(contentsOf: ctx.events)
        }
    }

    /// Executes a decided block (ABCI `FinalizeBlock`): block rules, begin-block hooks,
    /// every transaction (a failing one is recorded and leaves no trace), end-block hooks,
    /// then the new app hash. Nothing is written until ``commit()``.
    ///
    /// - Throws: `.invalidBlock` if the block breaks a block rule (a decided block never
    ///   should), `.outOfOrder` if a finalized block awaits its commit.
    public func finalizeBlock(_ block: Block) throws(ChainError) -> FinalizeResult {
        let (meta, validators, params) = try ready()
        guard pending == nil else { throw .outOfOrder("finalizeBlock called twice without commit") }
        // The block this application accepted in ``processProposal(_:)``, against the same
        // committed state, has passed every rule below already: its hashes and stateless
        // results are taken as they are. Any other block is checked here in full.
        let accepted = acceptedProposal.flatMap { $0.meta == meta && $0.block == block ? $0 : nil }
        acceptedProposal = nil
        // Each transaction is hashed once here, for the transactions root, execution and the
        // tx index.
        let txHashes = accepted?.txHashes ?? block.transactions.map { Transaction.hash(of: $0) }
        let hash = block.hash
        if durability == .replayedFromDecisionLog { try checkRecorded(block, hash: hash) }
        if accepted == nil {
            do {
                try block.validate(tip: meta.tip, validators: validators, maxBlockBytes: params.maxBlockBytes, verifier: verifier,
                                   encodedSize: block.encodedSize, transactionHashes: txHashes)
            } catch {
                throw .invalidBlock(error)
            }
            if let i = try firstRecordedEvidence(block) { throw .invalidBlock(.invalidEvidence(index: i, "offence already committed")) }
        }
        let h = block.header
        let info = BlockInfo(chainID: h.chainID, height: h.height, time: h.time, proposer: h.proposer,
                             hash: hash, previousBlockHash: h.previousBlockHash)
        let overlay = rootOverlay()
        overlay.reserveWrites(block.transactions.count + 16)
        var events: [Event] = []
        try runHooks(begin: true, block: info, validators: validators, overlay: overlay, events: &events)
        let consensusStore = ModuleStore(module: ConsensusModule.moduleName, overlay: overlay)
        for e in block.evidence { events.append(ConsensusModule.recordEvidence(e, height: h.height, in: consensusStore)) }
        let listed = accepted?.listed
        var results: [TxResult] = []
        results.reserveCapacity(block.transactions.count)
        for (i, raw) in block.transactions.enumerated() {
            let (result, _) = try execute(raw, hash: txHashes[i], index: i, isCheck: false, remember: false, block: info,
                                          validators: validators, params: params, parent: overlay,
                                          admitted: accepted?.admitted[i], listed: listed?.of(transaction: i))
            results.append(result)
        }
        try runHooks(begin: false, block: info, validators: validators, overlay: overlay, events: &events)
        // Unsorted: the commitment is a sum over elements (order-free) and the batch's keys
        // are distinct, so no order of the writes is observable.
        let (updated, changes) = try updatedCommitments(overlay.writes)
        let appHash = Self.appHash(commitments.merging(updated) { $1 })
        pending = PendingBlock(block: block, txHashes: txHashes, hash: hash, results: results, events: events,
                               changes: changes, commitments: updated, appHash: appHash)
        return FinalizeResult(height: h.height, blockHash: hash, txResults: results, events: events, appHash: appHash,
                              validatorUpdates: [])
    }

    /// Reads what the ante handlers will read for `transactions` (their senders' accounts)
    /// into the committed-state cache in one batched store lookup. For a block of new
    /// senders, one missing-key lookup after another was a tenth of its execution; the
    /// batch overlaps their cache misses.
    ///
    /// Returns the keys listed, for the ante steps to take back (``TxContext/listedKeys``).
    private func prefetchAnteKeys(of transactions: [AdmittedTransaction], into overlay: Overlay) throws(ChainError) -> ListedKeys? {
        guard !anteHandlers.isEmpty, transactions.count > 1 else { return nil }
        var listed = ListedKeys(handlers: anteHandlers.count)
        listed.keys.reserveCapacity(transactions.count * anteHandlers.count)
        listed.ends.reserveCapacity(transactions.count * anteHandlers.count)
        for t in transactions {
            for (_, handler) in anteHandlers {
                handler.stateKeysRead(by: t.transaction, into: &listed.keys)
                listed.ends.append(listed.keys.count)
            }
        }
        try overlay.prefetch(listed.keys)
        return listed
    }

    /// The keys every ante handler listed for every transaction of a block, in order.
    private struct ListedKeys {
        let handlers: Int
        var keys: [StateKey] = []
        /// Where the keys of (transaction, handler) end in ``keys``, transaction-major.
        var ends: [Int] = []

        init(handlers: Int) { self.handlers = handlers }

        /// Transaction `i`'s lists, one per handler.
        func of(transaction i: Int) -> TransactionKeys { TransactionKeys(listed: self, first: i * handlers) }
    }

    /// One transaction's lists in ``ListedKeys``.
    private struct TransactionKeys {
        let listed: ListedKeys
        let first: Int

        /// The keys of the `h`-th ante handler.
        func of(handler h: Int) -> ArraySlice<StateKey> {
            let j = first + h
            guard j < listed.ends.count else { return [] }
            let start = j == 0 ? 0 : listed.ends[j - 1]
            return listed.keys[start..<listed.ends[j]]
        }
    }

    /// The batch that commits the pending block: state changes, block, results, tx index,
    /// commitments and tip, together.
    private func commitBatch(_ p: PendingBlock, newMeta: AppMeta) throws(ChainError) -> WriteBatch {
        let height = p.block.header.height
        // Each result is encoded once, into the block's results (the bytes ``BlockResults``
        // would write); the tx index records where in them each result lies. The writer is
        // not presized from the last block's: measured, its page faults cost more than the
        // regrowth saves.
        var w = BinaryWriter()
        var resultRanges: [Range<Int>] = []
        var batch = WriteBatch()
        // A large block's results are encoded on a second thread while this one puts its
        // state changes (each part touches only its own variables).
        let parallel = p.changes.count + p.results.count >= Self.parallelChangeThreshold
        let build = { (part: Int) in
            if part == 0 {
                w.count(p.results.count)
                resultRanges.reserveCapacity(p.results.count)
                for r in p.results {
                    let start = w.bytes.count
                    r.encode(to: &w)
                    resultRanges.append(start..<w.bytes.count)
                }
                p.events.encode(to: &w)
                w.fixed(p.appHash)
            } else {
                // Room for everything at once (the results as large as the last block's):
                // growing a block's worth of bytes step by step copies it again at every step.
                let changeBytes = p.changes.reduce(0) { $0 + $1.key.bytes.count + ($1.value?.count ?? 0) }
                batch.reserveCapacity(operations: p.changes.count + p.txHashes.count + p.commitments.count + 8,
                                      bytes: changeBytes + self.lastResultsBytes + p.txHashes.count * 64 + 1024)
                Self.addStateChanges(p.changes, to: &batch)
                // With a decision log the block is already stored (``recordDecidedBlock``).
                if self.durability == .synced { batch.put(Self.blockKey(height), p.block.encoded, in: Self.blocksColumnFamily) }
                batch.put(Data([UInt8(ascii: "b")]) + p.hash, Self.be8(height), in: Self.blocksColumnFamily)
            }
        }
        if parallel {
            inParallel(2, build)
        } else {
            build(0)
            build(1)
        }
        lastResultsBytes = w.bytes.count
        Self.resultsKey(height).withUnsafeBytes { key in
            w.bytes.withUnsafeBytes { batch.put(key: key, value: $0, in: Self.blocksColumnFamily) }
        }
        func putIndexEntry(_ i: Int, _ txHash: Data) {
            // The index points into the block's results instead of holding a second copy of
            // the result: with large events that copy was a third of a block's bytes.
            let location = TxLocation(height: height, index: UInt32(i), resultOffset: UInt32(resultRanges[i].lowerBound),
                                      resultLength: UInt32(resultRanges[i].count))
            Self.withTxKey(txHash) { key in
                location.withEncoded { batch.put(key: key, value: $0, in: Self.blocksColumnFamily) }
            }
        }
        if p.results.allSatisfy(\.isOK) {
            // No two transactions of the block are the same bytes: the second would have
            // failed the accounts module's nonce rule, which every application runs.
            for (i, txHash) in p.txHashes.enumerated() { putIndexEntry(i, txHash) }
        } else {
            // The index keeps a transaction's first successful inclusion: a later failed
            // replay of the same bytes (rejected by its nonce) must not hide it. Keyed by the
            // hash as four words: hashing a `Data` key was most of this loop.
            var indexed: [Digest256: Bool] = Dictionary(minimumCapacity: p.txHashes.count)
            for (i, txHash) in p.txHashes.enumerated() {
                let ok = p.results[i].isOK
                let id = Digest256(txHash)
                if let earlierOK = indexed[id] {
                    if earlierOK || !ok { continue }
                } else if !ok {
                    let existing = try storeCall { try store.get(Self.txKey(txHash), in: Self.blocksColumnFamily) }
                    if existing != nil { continue }
                }
                indexed[id] = ok
                putIndexEntry(i, txHash)
            }
        }
        Self.addCommitments(p.commitments, to: &batch)
        batch.put(Self.metaKey, newMeta.encoded, in: Self.metaColumnFamily)
        return batch
    }

    /// The index of the first evidence entry whose offence is already recorded in state.
    private func firstRecordedEvidence(_ block: Block) throws(ChainError) -> Int? {
        guard !block.evidence.isEmpty else { return nil }
        let view = ModuleStore(module: ConsensusModule.moduleName, overlay: rootOverlay())
        for (i, e) in block.evidence.enumerated() where try hasEvidence(e, in: view) { return i }
        return nil
    }

    private func hasEvidence(_ e: DoubleVoteEvidence, in view: ModuleStore) throws(ChainError) -> Bool {
        do throws(ExecutionError) {
            return try ConsensusModule.hasEvidence(e, in: view)
        } catch {
            switch error {
            case .fatal(let f): throw f
            case .rejected(let v): throw .corruptState("consensus evidence: \(v)")
            }
        }
    }

    /// Whether the offence `evidence` proves is already recorded in committed state (a
    /// proposer leaves such evidence out).
    public func isEvidenceCommitted(_ evidence: DoubleVoteEvidence) throws(ChainError) -> Bool {
        try hasEvidence(evidence, in: ModuleStore(module: ConsensusModule.moduleName,
                                                  overlay: rootOverlay()))
    }

    /// Makes the finalized block durable (ABCI `Commit`) in one write batch — synced, or
    /// left to the caller's block log (``durability``) — then resets the check state. If the write fails the application halts: reopen the store
    /// to resume from the last durable block.
    @discardableResult
    public func commit() throws(ChainError) -> CommitResult {
        let (meta, _, _) = try ready()
        guard let p = pending else { throw .outOfOrder("commit without a finalized block") }
        let h = p.block.header
        let newMeta = AppMeta(chainID: meta.chainID, initialHeight: meta.initialHeight, lastHeight: h.height,
                              lastBlockHash: p.hash, lastAppHash: p.appHash, lastBlockTime: h.time)
        let batch = try commitBatch(p, newMeta: newMeta)
        try writeDurably(batch, sync: durability == .synced)
        // After the write, not beside it on another thread: measured, the cache update
        // running beside RocksDB's skip-list inserts slowed them by as much as it saved.
        cache.apply(p.changes)
        self.meta = newMeta
        commitments.merge(p.commitments) { $1 }
        pending = nil
        checkState = rootOverlay()
        let consensusPrefix = ModuleStore.prefix(of: ConsensusModule.moduleName)
        if p.changes.contains(where: { $0.key.starts(with: consensusPrefix) }) {
            try reloadConsensusState()
        }
        return CommitResult(height: h.height, appHash: p.appHash, blockHash: p.hash)
    }

    private func writeDurably(_ batch: WriteBatch, sync: Bool = true) throws(ChainError) {
        do {
            try storeCall { try store.write(batch, sync: sync) }
        } catch {
            cache.removeAll()
            haltReason = "commit write failed: \(error)"
            throw error
        }
    }

    // MARK: - Commitment

    /// ``moduleName(of:)`` answered from the registered modules' prefixes first, without
    /// building a string per key.
    private func moduleName(of key: Data) -> String {
        for (i, prefix) in modulePrefixes.enumerated() where key.count > prefix.count && bytesStart(key, with: prefix) {
            return modules[i].name
        }
        return Self.moduleName(of: key)
    }

    /// The module a state key belongs to (the bytes before the first `/`).
    static func moduleName(of key: Data) -> String {
        let name = key.prefix { $0 != UInt8(ascii: "/") }
        return String(decoding: name, as: UTF8.self)
    }

    static func moduleName(of key: [UInt8]) -> String {
        let name = key.prefix { $0 != UInt8(ascii: "/") }
        return String(decoding: name, as: UTF8.self)
    }

    /// The new commitments of the modules `changes` touch; old values come from the store.
    /// The module commitments after `writes`, and the writes that change anything: a write
    /// of the value already committed — above all the delete of a key that never reached the
    /// store, like a marker set and cleared in the same block — is dropped, so it costs the
    /// batch nothing and leaves no RocksDB tombstone for later scans to step over.
    private func updatedCommitments(_ writes: [HashedBytes: Data?]) throws(ChainError)
        -> (commitments: [String: StateCommitment], changes: [(key: HashedBytes, value: Data?)]) {
        var changes: [(key: HashedBytes, value: Data?)] = []
        changes.reserveCapacity(writes.count)
        // Per change: the value it replaces and its module (an index into `names`).
        var olds: [Data?] = []
        olds.reserveCapacity(writes.count)
        var moduleOfChange: [Int] = []
        moduleOfChange.reserveCapacity(writes.count)
        var names: [String] = []
        let committed = rootOverlay()
        // The module of the last key and its key prefix (`name ‖ "/"`): a block's writes are
        // mostly one module's, so a key that carries the same prefix as the last one needs no
        // name of its own.
        var currentPrefix: [UInt8] = []
        for (key, value) in writes {
            let old = try committed.get(key)
            switch (old, value) {
            case (nil, nil): continue
            case (let o?, let v?) where sameBytes(o, v): continue
            default: break
            }
            changes.append((key: key, value: value))
            olds.append(old)
            if names.isEmpty || !key.starts(with: currentPrefix) {
                let name = Self.moduleName(of: key.bytes)
                currentPrefix = Array(name.utf8) + [UInt8(ascii: "/")]
                if let i = names.firstIndex(of: name) {
                    moduleOfChange.append(i)
                } else {
                    names.append(name)
                    moduleOfChange.append(names.count - 1)
                }
            } else {
                moduleOfChange.append(moduleOfChange[moduleOfChange.count - 1])
            }
        }
        // The elements (a SHA-256 and a 2 KiB AES keystream each, two per changed key) are
        // summed, and a sum does not depend on its order: a large block's are computed in
        // two halves on two cores, each into its own per-module deltas, added afterwards.
        let parts = changes.count >= Self.parallelChangeThreshold ? 2 : 1
        var deltas = [[StateCommitment]](repeating: [], count: parts)
        changes.withUnsafeBufferPointer { changes in
            olds.withUnsafeBufferPointer { olds in
                moduleOfChange.withUnsafeBufferPointer { modules in
                    deltas.withUnsafeMutableBufferPointer { buffer in
                        let deltas = buffer
                        let work = { (part: Int) in
                            var local = [StateCommitment](repeating: StateCommitment(), count: names.count)
                            for j in (changes.count * part / parts)..<(changes.count * (part + 1) / parts) {
                                changes[j].key.bytes.withUnsafeBytes { k in
                                    if let old = olds[j] { local[modules[j]].remove(key: k, value: old) }
                                    if let value = changes[j].value { local[modules[j]].insert(key: k, value: value) }
                                }
                            }
                            deltas[part] = local
                        }
                        if parts == 1 { work(0) } else { inParallel(parts, work) }
                    }
                }
            }
        }
        var updated: [String: StateCommitment] = [:]
        for (m, name) in names.enumerated() {
            var c = commitments[name] ?? StateCommitment()
            for part in deltas { c.add(part[m]) }
            updated[name] = c
        }
        return (updated, changes)
    }

    /// Runs `work(0)`…`work(parts - 1)` at once on the process's worker threads and returns
    /// when all have finished.
    ///
    /// `work` is not `Sendable`: it reads buffers the caller lends and writes results through
    /// them. That is safe because each part writes only its own slot, nothing else touches
    /// those buffers until every part is done, and the call does not return before then.
    private func inParallel(_ parts: Int, _ work: (Int) -> Void) {
        withoutActuallyEscaping(work) { work in
            let shared = UncheckedSendable(work)
            DispatchQueue.concurrentPerform(iterations: parts) { shared.value($0) }
        }
    }

    /// Changed keys (or results) from which a block's state elements, and the encoding of its
    /// results, are split across two cores: below it, handing work to another thread costs
    /// more than it saves.
    static let parallelChangeThreshold = 256

    /// `H_"ishtar/app-hash"` over `str name ‖ digest` of every module with non-empty state,
    /// in name order (so a newly added, still empty module does not change the hash).
    static func appHash(_ commitments: [String: StateCommitment]) -> Data {
        var w = BinaryWriter()
        for name in commitments.keys.sorted() {
            guard let c = commitments[name], !c.isEmpty else { continue }
            w.string(name)
            w.fixed(c.digest)
        }
        return TaggedHash.hash(tag: "ishtar/app-hash", data: w.bytes)
    }

    /// Recomputes the app hash from a full scan of the committed state (O(state)): an audit
    /// of the incremental commitment, e.g. after an unclean shutdown or in tests.
    public func recomputeAppHash() throws(ChainError) -> Data {
        let rows = try storeCall { try store.scan(Self.stateColumnFamily, .all, direction: .forward).collect() }
        var fresh: [String: StateCommitment] = [:]
        for row in rows {
            let name = Self.moduleName(of: row.key)
            var c = fresh[name] ?? StateCommitment()
            c.insert(key: row.key, value: row.value)
            fresh[name] = c
        }
        return Self.appHash(fresh)
    }

    private static func addStateChanges(_ changes: [(key: HashedBytes, value: Data?)], to batch: inout WriteBatch) {
        for (key, value) in changes {
            key.bytes.withUnsafeBytes { k in
                if let value {
                    value.withUnsafeBytes { batch.put(key: k, value: $0, in: stateColumnFamily) }
                } else {
                    batch.delete(key: k, in: stateColumnFamily)
                }
            }
        }
    }

    private static func addCommitments(_ commitments: [String: StateCommitment], to batch: inout WriteBatch) {
        for name in commitments.keys.sorted() {
            guard let c = commitments[name] else { continue }
            batch.put(commitmentPrefix + Data(name.utf8), c.bytes, in: metaColumnFamily)
        }
    }

    static func be8(_ v: UInt64) -> Data {
        var w = BinaryWriter()
        w.u64(v)
        return w.data
    }

    static func blockKey(_ height: UInt64) -> Data { Data([UInt8(ascii: "h")]) + be8(height) }
    static func decidedHashKey(_ height: UInt64) -> Data { Data([UInt8(ascii: "d")]) + be8(height) }
    static func resultsKey(_ height: UInt64) -> Data { Data([UInt8(ascii: "r")]) + be8(height) }
    /// `"t" ‖ hash`, built in one buffer.
    static func txKey(_ hash: Data) -> Data { withTxKey(hash) { Data($0) } }

    /// `body` given ``txKey(_:)`` in a buffer on the stack.
    static func withTxKey<R>(_ hash: Data, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        withUnsafeTemporaryAllocation(byteCount: 1 + hash.count, alignment: 1) { buffer in
            buffer.storeBytes(of: UInt8(ascii: "t"), toByteOffset: 0, as: UInt8.self)
            // `copyMemory`, not `Data.copyBytes(to:)`: the latter's generic path looked up
            // type metadata on every call, more than the rest of the index entry cost.
            hash.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: buffer[1...]).copyMemory(from: $0) }
            return body(UnsafeRawBufferPointer(buffer))
        }
    }

    // MARK: - Block store

    /// Adds a decided block's bytes to `batch` under the block store's key for `height`: the
    /// caller of an application that commits with ``CommitDurability/replayedFromDecisionLog``
    /// writes the block once, in its own synced decision record, and the commit does not
    /// write it again. The block is visible through ``block(at:)`` only once committed.
    ///
    /// The block's hash goes in the same batch, so that ``finalizeBlock(_:)`` can tell the
    /// record is this block by reading 32 bytes instead of tens of kilobytes.
    ///
    /// - Throws: ``ChainError/invalidBlock(_:)`` (`malformed`) if `bytes` do not start with
    ///   a block header; nothing is added to `batch` then.
    public static func recordDecidedBlock(_ bytes: Data, height: UInt64, in batch: inout WriteBatch) throws(ChainError) {
        _ = try addDecidedBlock(bytes, height: height, to: &batch)
    }

    /// ``recordDecidedBlock(_:height:in:)``, returning the block's hash.
    private static func addDecidedBlock(_ bytes: Data, height: UInt64, to batch: inout WriteBatch) throws(ChainError) -> Data {
        let hash: Data
        do {
            hash = try Block.headerHash(ofEncoded: bytes)
        } catch {
            throw .invalidBlock(.malformed(error))
        }
        batch.put(blockKey(height), bytes, in: blocksColumnFamily)
        batch.put(decidedHashKey(height), hash, in: blocksColumnFamily)
        return hash
    }

    /// Writes the caller's decision record `batch` (e.g. its commit certificate) with the
    /// decided block added (``recordDecidedBlock(_:height:in:)``), in one synced write to this
    /// application's store, and remembers it: ``finalizeBlock(_:)`` then knows the block is
    /// recorded without reading the block store back, a read that cost tens of microseconds
    /// a block (its skip list long out of the cache by then). A record written any other
    /// way is read back as before, so write a height's record only through one of the two.
    ///
    /// - Parameter sync: `false` leaves the record in RocksDB's log without an fsync: it
    ///   survives a killed process, not a power loss. For benchmarks that keep consensus's
    ///   own fsync out of the work they time; a node keeps the default.
    /// - Throws: ``ChainError/invalidBlock(_:)`` (`malformed`) if `bytes` do not start with
    ///   a block header, ``ChainError/storage(_:)`` if the write fails; nothing is written or
    ///   remembered then.
    public func recordDecision(_ batch: WriteBatch, block bytes: Data, height: UInt64, sync: Bool = true) throws(ChainError) {
        var b = batch
        let hash = try Self.addDecidedBlock(bytes, height: height, to: &b)
        try storeCall { try store.write(b, sync: sync) }
        lastRecordedDecision = (height, hash)
    }

    /// Before a block runs under a caller's decision log: the caller's record is the only copy
    /// the block store will have, so it must be there, and be this block. The recorded hash
    /// stands for the recorded bytes (both were written in one batch, the hash derived from
    /// the bytes' header, and the header commits to the body, which `validate` checks against
    /// it). A record made before the hash was kept is compared byte for byte.
    private func checkRecorded(_ block: Block, hash: Data) throws(ChainError) {
        let height = block.header.height
        if let last = lastRecordedDecision, last.height == height, last.hash == hash { return }
        let matches = try storeCall { () throws -> Bool? in
            if let recorded = try store.get(Self.decidedHashKey(height), in: Self.blocksColumnFamily) {
                return recorded == hash
            }
            return try store.value(Self.blockKey(height), in: Self.blocksColumnFamily, equals: block.encoded)
        }
        guard matches == true else {
            throw .outOfOrder("block \(height) was not recorded (recordDecision or recordDecidedBlock) before finalizeBlock"
                              + (matches == nil ? "" : " (a different block is recorded at that height)"))
        }
    }

    /// The bytes recorded at `height` by ``recordDecidedBlock(_:height:in:)`` or a commit,
    /// whether committed or not: after a crash between a decision and its commit, the block
    /// to replay.
    public func recordedBlockBytes(at height: UInt64) throws(ChainError) -> Data? {
        try storeCall { try store.get(Self.blockKey(height), in: Self.blocksColumnFamily) }
    }

    /// The committed block at `height`.
    public func block(at height: UInt64) throws(ChainError) -> Block? {
        // A decided block recorded by the caller is not the chain's until it is committed.
        guard let last = meta?.lastHeight, height <= last else { return nil }
        guard let raw = try storeCall({ try store.get(Self.blockKey(height), in: Self.blocksColumnFamily) }) else { return nil }
        do {
            return try Block(decoding: raw)
        } catch {
            throw .corruptState("block \(height): \(error)")
        }
    }

    /// The height of the committed block with `hash`.
    public func height(ofBlock hash: Data) throws(ChainError) -> UInt64? {
        guard let raw = try storeCall({ try store.get(Data([UInt8(ascii: "b")]) + hash, in: Self.blocksColumnFamily) })
        else { return nil }
        var r = BinaryReader(raw)
        do {
            return try r.u64("height")
        } catch {
            throw .corruptState("block index: \(error)")
        }
    }

    /// The results of the committed block at `height`.
    public func blockResults(at height: UInt64) throws(ChainError) -> BlockResults? {
        guard let raw = try storeCall({ try store.get(Self.resultsKey(height), in: Self.blocksColumnFamily) }) else { return nil }
        do {
            return try BlockResults(decoding: raw)
        } catch {
            throw .corruptState("results \(height): \(error)")
        }
    }

    /// Where the transaction with `hash` was included, and its result.
    public func transaction(hash: Data) throws(ChainError) -> TxRecord? {
        guard let raw = try storeCall({ try store.get(Self.txKey(hash), in: Self.blocksColumnFamily) }) else { return nil }
        let location: TxLocation
        do {
            location = try TxLocation(decoding: raw)
        } catch {
            throw .corruptState("tx index entry \(hash.hexString): \(error)")
        }
        guard let results = try storeCall({ try store.get(Self.resultsKey(location.height), in: Self.blocksColumnFamily) }) else {
            throw .corruptState("tx index entry \(hash.hexString): no results at height \(location.height)")
        }
        let start = Int(location.resultOffset), end = start + Int(location.resultLength)
        guard end <= results.count else {
            throw .corruptState("tx index entry \(hash.hexString): result \(start)..<\(end) outside the \(results.count) bytes of height \(location.height)'s results")
        }
        do {
            let result = try TxResult(decoding: results[(results.startIndex + start)..<(results.startIndex + end)])
            return TxRecord(height: location.height, index: location.index, result: result)
        } catch {
            throw .corruptState("tx index entry \(hash.hexString): result: \(error)")
        }
    }

    // MARK: - Query

    /// Answers a query against the last committed state (ABCI `Query`). Paths:
    /// - `/app/info` → JSON `{chain_id, last_height, last_app_hash, last_block_hash}`
    /// - `/blocks/<height>` → canonical block bytes; `/blocks/<height>/results` → ``BlockResults``
    /// - `/tx/<hex hash>` → ``TxRecord``
    /// - `/modules/<module>/<path…>` → that module's ``Module/query(_:_:)``
    ///
    /// `height`, if given, must be the latest committed height (state is not versioned);
    /// `page` is the page a module's listing answers (see ``PageRequest``).
    public func query(path: String, data: Data = Data(), height: UInt64? = nil, page: PageRequest? = nil) throws(ChainError) -> QueryResult {
        let (meta, validators, _) = try ready()
        func fail(_ e: some ChainRuleError) -> QueryResult {
            let v = e.violation
            return QueryResult(code: v.code, codespace: v.codespace, log: v.message, value: Data(), height: meta.lastHeight)
        }
        func ok(_ value: Data) -> QueryResult {
            QueryResult(code: 0, codespace: "", log: "", value: value, height: meta.lastHeight)
        }
        if let height, height != meta.lastHeight {
            return fail(QueryError.heightUnavailable(requested: height, latest: meta.lastHeight))
        }
        let parts = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        switch parts.first {
        case "app" where parts == ["app", "info"]:
            return ok(canonicalJSON([
                "chain_id": meta.chainID, "last_height": String(meta.lastHeight),
                "last_app_hash": meta.lastAppHash.hexString, "last_block_hash": meta.lastBlockHash.hexString,
            ]))
        case "blocks" where parts.count == 2 || (parts.count == 3 && parts[2] == "results"):
            guard let h = UInt64(parts[1]) else { return fail(QueryError.invalidArgument("height must be a number")) }
            let key = parts.count == 2 ? Self.blockKey(h) : Self.resultsKey(h)
            // A recorded but uncommitted block (between a decision and its commit) is not served.
            guard h <= meta.lastHeight, let raw = try storeCall({ try store.get(key, in: Self.blocksColumnFamily) }) else {
                return fail(QueryError.notFound("block \(h)"))
            }
            return ok(raw)
        case "tx" where parts.count == 2:
            guard let hash = try? Data(hex: parts[1]), hash.count == 32 else {
                return fail(QueryError.invalidArgument("transaction hash must be 64 hex digits"))
            }
            guard let record = try transaction(hash: hash) else { return fail(QueryError.notFound("transaction \(parts[1])")) }
            return ok(record.encoded)
        case "modules" where parts.count >= 2:
            guard let module = moduleByName[parts[1]] else { return fail(QueryError.unknownModule(parts[1])) }
            let info = BlockInfo(chainID: meta.chainID, height: meta.lastHeight, time: meta.lastBlockTime, proposer: Data(),
                                 hash: meta.lastBlockHash)
            let ctx = QueryContext(block: info, validators: validators, module: module.name,
                                   overlay: rootOverlay())
            do throws(ExecutionError) {
                return ok(try module.query(QueryRequest(path: Array(parts.dropFirst(2)), data: data, page: page), ctx))
            } catch {
                switch error {
                case .fatal(let e): throw e
                case .rejected(let v):
                    return QueryResult(code: v.code, codespace: v.codespace, log: v.message, value: Data(), height: meta.lastHeight)
                }
            }
        default:
            return fail(QueryError.unknownPath(path))
        }
    }
}

/// Hashes of transaction encodings whose signature verified, oldest evicted first. A hit
/// needs the exact same bytes (SHA-256 over sender, signed fields and signature), so it
/// never accepts a signature that was not verified.
struct VerifiedSignatureCache {
    let capacity: Int
    private var members: Set<Digest256> = []
    private var order: [Digest256] = []
    private var head = 0

    init(capacity: Int) { self.capacity = max(1, capacity) }

    func contains(_ key: Digest256) -> Bool { members.contains(key) }

    mutating func insert(_ key: Digest256) {
        guard members.insert(key).inserted else { return }
        order.append(key)
        if members.count > capacity {
            members.remove(order[head])
            head += 1
            // Compact the FIFO once half of it is consumed.
            if head > capacity / 2 {
                order.removeFirst(head)
                head = 0
            }
        }
    }
}

/// A transaction that passed the stateless rules, with what each module made of each of its
/// messages (``Module/validatedForm(of:sender:)``; empty when not asked for). A class: a
/// lookup in the application's memory of them retains one object instead of every field of
/// the transaction.
final class AdmittedTransaction {
    let transaction: Transaction
    let validatedForms: [AnyObject?]

    init(transaction: Transaction, validatedForms: [AnyObject?]) {
        self.transaction = transaction
        self.validatedForms = validatedForms
    }
}

/// A value handed across threads by code that guarantees, at the use site, that the threads
/// never touch it at the same time in conflicting ways (see ``Application/inParallel(_:_:)``).
private struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
