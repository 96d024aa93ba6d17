import Foundation
import IshtarChain
import IshtarConsensus
import IshtarCrypto
import IshtarStore
import Logging
import Metrics

/// Everything a ``NodeService`` needs to start.
public struct NodeServiceOptions: Sendable {
    public var genesis: Genesis
    public var config: NodeConfig
    public var validatorKey: Schnorr.PrivateKey
    public var nodeKey: Schnorr.PrivateKey
    public var databasePath: String
    /// Tests: play a validator that always stops between an epoch's end and sending its
    /// checkpoint signature (a full mempool no longer keeps the signature out).
    var skipsCheckpointDuty = false

    public init(genesis: Genesis, config: NodeConfig, validatorKey: Schnorr.PrivateKey, nodeKey: Schnorr.PrivateKey,
                databasePath: String) {
        self.genesis = genesis
        self.config = config
        self.validatorKey = validatorKey
        self.nodeKey = nodeKey
        self.databasePath = databasePath
    }
}

/// The node: drives the deterministic ``ConsensusEngine`` and the ``Application`` over real
/// TCP peers, with the engine's persistence contract:
///
/// - Engine actions run strictly in order, synchronously inside this actor (no suspension
///   point between two actions, so no other event can interleave): network sends are
///   non-blocking writes, disk writes are synced RocksDB writes.
/// - `persistSignState` → synced write of the latest record to `node.consensus` *before* the
///   next action (its broadcast). If that write fails the node halts consensus: it must never
///   send what it could not record.
/// - `decide(h)` → one synced batch with the certificate (`node.commits`, `c‖BE8(h)`) and the
///   decided block bytes (`p‖BE8(h)`), then `finalizeBlock` + `commit` (the application's own
///   synced batch), then `startHeight(h+1)`. A crash between the two batches is repaired at
///   boot: the application's last height `L` says where we are; a pending block at `L+1`
///   whose certificate is stored is replayed (it was decided), then consensus starts at the
///   next height with the stored sign state, so the engine's sign guard prevents any
///   double-sign after a restart.
public actor NodeService: NodeBackend, P2PDelegate {
    static let consensusCF = "node.consensus"
    static let commitsCF = "node.commits"
    static let signStateKey = Data("sign_state".utf8)
    /// Evidence detected and not yet in a committed block (``PendingEvidence``).
    static let pendingEvidenceKey = Data("pending_evidence".utf8)
    /// Most mempool transactions one proposal considers. Building, checking and executing a
    /// block is linear in its transactions; under a backlog an unbounded proposal took longer
    /// than the propose timeout, the round failed and the backlog grew (measured with
    /// `Scripts/bench node`: a 4,186-transaction round-0 proposal timed out). A bounded block
    /// keeps a round's work well inside the timeouts; the rest waits for the next height.
    static let maxProposalTransactions = 2000

    public let chainID: String
    public let network: P2PNetwork
    public let validatorAddress: Data
    /// Signs this validator's epoch checkpoints (``CheckpointDuty``); never persisted here.
    private let validatorKey: Schnorr.PrivateKey
    let config: NodeConfig
    let genesis: Genesis
    let consensusChainID: ChainID
    let genesisSet: ValidatorSet
    let logger: Logger
    private let db: Database
    private let app: Application
    private var engine: ConsensusEngine
    private var mempool: Mempool
    private var queue: [(ConsensusEvent, ConnectionID?)] = []
    private var timers: [Task<Void, Never>] = []
    private var background: [Task<Void, Never>] = []
    private var peerHeights: [ConnectionID: UInt64] = [:]
    /// Which proposals each connection has (``ProposalRelayLog``): blocks are re-sent only
    /// where they may be missing.
    private var proposalRelay = ProposalRelayLog()
    /// Gossip ticks since start (the relay log's clock).
    private var gossipTicks: UInt64 = 0
    /// Whose turn it is to be asked for the next block (``syncPeer(holding:)``).
    private var syncTurn = 0
    /// The peer whose commit certificate and block we last took (asked first for the next).
    private var lastServer: ConnectionID?
    /// When a peer last handed this node a verified certificate for the height it was
    /// still deciding: the node was behind then (``status()``'s `catching_up`).
    private var lastServedCommit: ContinuousClock.Instant?
    private var rateLimits = RateLimits()
    private var serveBudget = ServeBudget()
    private var signedMarkerWritten = false
    private let databasePath: String
    /// Hashes of relayed transactions refused since the last commit (a block can make them
    /// valid, e.g. by filling a nonce gap, so the set is emptied at every commit).
    private var rejectedRelayed: Set<Data> = []
    private var lastCommitInstant = ContinuousClock.now
    private var halted: String?
    private var running = false
    private var stopped = false
    /// Blocks of this height already found to match their hash (see ``knownOrCheckedProposer(_:hashing:)``).
    private var checkedBlocks: [BlockHash: (bytes: Data, proposer: Data)] = [:]
    /// Equivocation evidence detected by the engine, until a committed block carries it.
    private var pendingEvidence: [DoubleVoteEvidence] = []
    /// Admitted transactions to gossip, sent as one frame at the end of the actor turn.
    private var outgoingTransactions: [Data] = []
    /// Set once this node signs an epoch's checkpoint, cleared when nothing is owed any more:
    /// until then every commit checks that the signature is still on its way (see
    /// ``retryOwedCheckpoint()``).
    private var checkpointOwed = false
    private let skipsCheckpointDuty: Bool
    /// Test failure point: SIGKILL this process right after the decided block at this
    /// height is durably stored and before the application executes it (environment
    /// `ISHTAR_FAILPOINT_CRASH_AFTER_DECIDE=<height>`), to test the boot-time replay.
    private let crashAfterDecideHeight: UInt64? =
        ProcessInfo.processInfo.environment["ISHTAR_FAILPOINT_CRASH_AFTER_DECIDE"].flatMap { UInt64($0) }

    // Metrics (no-ops until a metrics backend is bootstrapped).
    private let heightGauge = Gauge(label: NodeMetricName.height)
    private let roundGauge = Gauge(label: NodeMetricName.round)
    private let peersGauge = Gauge(label: NodeMetricName.peers)
    private let mempoolGauge = Gauge(label: NodeMetricName.mempoolSize)
    private let allocatedGauge = Gauge(label: NodeMetricName.allocatedBytes)
    private let blockTimer = Metrics.Timer(label: NodeMetricName.blockTime)
    private let committedTxCounter = Counter(label: NodeMetricName.committedTransactions)
    private let equivocationCounter = Counter(label: NodeMetricName.equivocations)
    private let jailingCounter = Counter(label: NodeMetricName.jailings)

    /// Opens the store (a clear ``NodeError/alreadyRunning(_:)`` when another node holds its
    /// lock), the application (running `initChain` on first start), recovers a decided but
    /// uncommitted block, and loads the sign state. Does not touch the network yet.
    public init(options: NodeServiceOptions, logger: Logger) throws(NodeError) {
        self.logger = logger
        self.config = options.config
        self.genesis = options.genesis
        self.skipsCheckpointDuty = options.skipsCheckpointDuty
        self.chainID = options.genesis.chainID
        do {
            consensusChainID = try ChainID(options.genesis.chainID)
            genesisSet = try ConsensusMapping.validatorSet(options.genesis.validators)
        } catch {
            throw .badHome("genesis is not usable for consensus: \(error)")
        }
        // A full block travels in one frame (proposal, catch-up commit) with its certificate:
        // with a smaller frame limit every peer would drop it and the height never be caught up.
        let needed = options.genesis.consensusParams.maxBlockBytes + Self.frameOverheadBytes
        guard options.config.p2p.maxFrameBytes >= needed else {
            throw .badHome("p2p.max_frame_bytes (\(options.config.p2p.maxFrameBytes)) must be at least genesis max_block_bytes + \(Self.frameOverheadBytes) (\(needed)): a full block must fit in one frame")
        }
        let db: Database
        do {
            db = try Database.open(
                path: options.databasePath,
                options: Application.databaseOptions(extraColumnFamilies: [Self.consensusCF, Self.commitsCF]))
        } catch let e as StoreError {
            if case .lockHeld(let p) = e { throw .alreadyRunning(p) }
            throw .storage("cannot open \(options.databasePath): \(e)")
        } catch {
            throw .storage("cannot open \(options.databasePath): \(error)")
        }
        self.db = db
        databasePath = options.databasePath
        let app: Application
        do {
            // The decided block is synced (with its certificate) before the application runs
            // it, and replayed at boot if the commit did not survive, so the commit itself
            // need not pay a second sync.
            app = try Application.open(store: db, modules: ControlPlane.modules(), verifier: ConsensusCommitVerifier(),
                                       durability: .replayedFromDecisionLog)
            if app.tip == nil {
                // A new database in a home whose validator has signed before: the record of
                // what it signed went with the old one (e.g. `rm -rf data/db` to resync), and
                // catching up from height 1 could sign again at heights it signed.
                let marker = Self.signedMarkerPath(databasePath: options.databasePath)
                if FileManager.default.fileExists(atPath: marker) {
                    throw NodeError.badHome(
                        "the database at \(options.databasePath) is new, but this validator has signed before (\(marker)): "
                        + "the record of its last signatures was in the old database, and starting without it could "
                        + "double-sign. Restore the database; or, once the chain is past every height this key could "
                        + "have signed, remove \(marker) to start over")
                }
                try app.initChain(options.genesis)
                logger.info("initialized chain from genesis", metadata: ["chain_id": "\(options.genesis.chainID)"])
            } else if app.chainID != options.genesis.chainID {
                throw NodeError.badHome("database belongs to chain \(app.chainID ?? "?"), genesis says \(options.genesis.chainID)")
            } else if let stored = try app.storedGenesisJSON(), stored != options.genesis.jsonData() {
                // The engine takes its validators and heights from the file, the application
                // from its state: an edited genesis would make them disagree.
                throw NodeError.badHome("genesis.json differs from the genesis this database was initialized from "
                    + "(validators, heights or parameters changed after init); restore the original file")
            }
            try Self.recoverPendingBlock(app: app, db: db, logger: logger)
        } catch let e as NodeError {
            throw e
        } catch {
            throw .storage("application: \(error)")
        }
        self.app = app
        pendingEvidence = Self.loadPendingEvidence(db: db, app: app, logger: logger)
        var signState: SignState?
        do {
            if let raw = try db.get(Self.signStateKey, in: Self.consensusCF) { signState = try SignState(encoded: raw) }
        } catch {
            // Never guess: starting without the record could double-sign.
            throw .storage("cannot read the sign state (refusing to start without it): \(error)")
        }
        let signer = SchnorrConsensusSigner(key: options.validatorKey)
        // A record of another key's signatures (a database copied from another validator)
        // says nothing about what this key signed, and guarding with it — or taking over its
        // lock — could sign twice at a height this key already signed: treat it as no record.
        var foreignSigner: Data?
        if let s = signState, let other = s.messages.map(\.signer).first(where: { $0 != signer.validatorAddress }) {
            foreignSigner = other
            signState = nil
            logger.warning("the database's sign state records another validator's signatures; ignored (a copied database?)",
                           metadata: ["recorded_validator": "\(other.hexEncoded)", "this_validator": "\(signer.validatorAddress.hexEncoded)"])
        }
        let marker = Self.signedMarkerPath(databasePath: options.databasePath)
        if signState != nil {
            // At start the engine sends its last signed messages again (no new signature, so
            // no marker on that path): the marker must exist before they leave, also for a
            // database from before markers or a crash between the sign state and the marker.
            do {
                try Self.writeSignedMarker(path: marker)
            } catch {
                throw .storage("\(error)")
            }
            signedMarkerWritten = true
        } else if FileManager.default.fileExists(atPath: marker) {
            // This validator signed with a database that held its sign state; this one holds
            // none (copied from a peer, restored from before it signed): it could sign again
            // at heights it signed.
            let foreign = foreignSigner.map { " (its record is of another validator, \($0.hexEncoded): copied from it?)" } ?? ""
            throw .badHome(
                "the database at \(options.databasePath) holds no record of this validator's signatures\(foreign), but it has signed "
                + "before (\(marker)): the record was in the database it signed with, and starting without it could "
                + "double-sign. Restore that database; or, once the chain is past every height this key could have "
                + "signed, remove \(marker)")
        }
        validatorAddress = signer.validatorAddress
        validatorKey = options.validatorKey
        engine = ConsensusEngine(
            chainID: consensusChainID, signer: signer, verifier: SchnorrSignatureVerifier(),
            timeouts: options.config.consensus.timeouts, lastSignState: signState)
        mempool = Mempool(config: options.config.mempool)
        network = P2PNetwork(chainID: options.genesis.chainID, nodeKey: options.nodeKey, config: options.config.p2p,
                             logger: logger)
        if let s = signState {
            logger.info("loaded sign state", metadata: ["height": "\(s.height)", "round": "\(s.round)", "step": "\(s.step)"])
        }
    }

    static func be8(_ v: UInt64) -> Data { withUnsafeBytes(of: v.bigEndian) { Data($0) } }
    static func certKey(_ h: UInt64) -> Data { Data("c".utf8) + be8(h) }
    /// Crash between "decision stored" and "application committed": the decided block is
    /// recorded in the block store above the application's tip (with its certificate);
    /// replay it.
    static func recoverPendingBlock(app: Application, db: Database, logger: Logger) throws {
        guard let last = app.lastHeight else { return }
        let next = last + 1
        guard let bytes = try app.recordedBlockBytes(at: next),
            let certBytes = try db.get(certKey(next), in: commitsCF)
        else { return }
        let cert = try CanonicalEncoding.decodeCommit(certBytes)
        let block = try Block(decoding: bytes)
        guard block.hash == cert.value.bytes, block.header.height == next else {
            throw NodeError.storage("decided block at \(next) does not match its certificate")
        }
        do {
            _ = try app.finalizeBlock(block)
            try app.commit()
        } catch {
            // More than 2/3 of the power decided this block; the state machine refusing it
            // is a bug or a damaged store, and this node cannot go past it on its own.
            throw NodeError.storage(
                "the decided block at height \(next) (recorded before a crash, certified by the validators) cannot be "
                + "executed: \(error). This node cannot continue past it; compare its version and genesis.json with the "
                + "other validators'")
        }
        logger.notice("replayed decided block after crash", metadata: ["height": "\(next)"])
    }

    // MARK: - lifecycle

    /// Starts P2P, consensus at the last committed height + 1, and the gossip loop.
    public func start() async throws(NodeError) {
        network.setDelegate(self)
        try await network.start()
        let lastHeight = app.lastHeight ?? (genesis.initialHeight - 1)
        let next = lastHeight + 1
        running = true
        heightGauge.record(Int64(lastHeight))
        logger.info("consensus starting", metadata: [
            "height": "\(next)", "validator": "\(validatorAddress.hexEncoded.prefix(16))",
            "allocator": "jemalloc \(MemoryAllocator.version ?? "(not answering)")",
        ])
        enqueue(.startHeight(next, genesisSet.advanced(byHeights: next - genesis.initialHeight)))
        drain()
        // A restart between an epoch's end and our checkpoint signature: sign it now.
        signCheckpoints(CheckpointDuty.owedEpoch(app: app, validator: validatorAddress).map { [$0] } ?? [])
        let interval = config.consensus.gossipIntervalMillis
        background.append(Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: nanoseconds(millis: max(50, interval)))
                await self?.gossipTick()
            }
        })
    }

    /// Stops timers, the gossip loop and the network, and closes the store.
    public func stop() async {
        // Idempotent: the service group and an error path may both ask.
        guard !stopped else { return }
        stopped = true
        running = false
        timers.forEach { $0.cancel() }
        background.forEach { $0.cancel() }
        timers = []
        background = []
        await network.stop()
        try? db.close()
        logger.info("node stopped")
    }

    private func gossipTick() {
        guard running else { return }
        gossipTicks &+= 1
        // Peers send their status every tick: one silent for ten ticks (at least 30 s) is gone.
        let ticks = Duration.milliseconds(Int64(clamping: config.consensus.gossipIntervalMillis) * 10)
        network.disconnectIdle(after: max(.seconds(30), ticks))
        enqueue(.gossipTick)
        drain()
        flushGossip()
        network.broadcast(.status(height: app.lastHeight ?? 0))
        peersGauge.record(network.peerCount)
        mempoolGauge.record(mempool.count)
        roundGauge.record(Int64(engine.round))
        if let bytes = MemoryAllocator.allocatedBytes() { allocatedGauge.record(bytes) }
        // Behind a peer: ask for our next height (repeats are rate-limited).
        if let peer = syncPeer(holding: engine.height) { requestSync(from: peer) }
    }

    // MARK: - event loop

    private func enqueue(_ e: ConsensusEvent, from source: ConnectionID? = nil) { queue.append((e, source)) }

    /// Feeds queued events to the engine one at a time and executes each batch of actions in
    /// order; actions may enqueue follow-up events (validity, next height).
    private func drain() {
        while !queue.isEmpty, halted == nil, running {
            let (event, source) = queue.removeFirst()
            execute(engine.step(event), source: source)
        }
    }

    private func execute(_ actions: [ConsensusAction], source: ConnectionID?) {
        for action in actions {
            guard halted == nil else { return }
            switch action {
            case .persistSignState(let s):
                do {
                    var b = WriteBatch()
                    b.put(Self.signStateKey, s.encoded(), in: Self.consensusCF)
                    try db.write(b, sync: true)
                    try writeSignedMarkerOnce()
                } catch {
                    // The next action broadcasts what this records: never send it unrecorded.
                    halt("cannot persist the sign state: \(error)")
                    return
                }
            case .broadcastProposal(let p):
                // Fresh and gossip-tick sends alike: each connection gets a proposal once,
                // again only when it may have set it aside (see ProposalRelayLog).
                let id = ProposalRelayLog.ID(p)
                for connection in network.peerConnections()
                where proposalRelay.shouldSend(id, to: connection, peerHeight: peerHeights[connection], tick: gossipTicks) {
                    network.send(.proposal(p), to: connection)
                }
            case .broadcastVote(let v):
                network.broadcast(.vote(v))
            case .scheduleTimeout(let info, let ms):
                timers.append(Task { [weak self] in
                    try? await Task.sleep(nanoseconds: nanoseconds(millis: ms))
                    guard !Task.isCancelled else { return }
                    await self?.fire(.timeout(info))
                })
            case .requestProposalValue(let h, let r):
                scheduleProposal(height: h, round: r)
            case .requestValidation(let h, let value):
                let valid: Bool
                do {
                    valid = try isValid(value, height: h)
                } catch {
                    // The engine keeps its first verdict on a value: a local failure answered as
                    // "invalid" would leave this node unable to follow the network's decision
                    // on it until restarted. Stopping says so instead (/health reports it).
                    halt("process-proposal failed on this node (not a verdict on the block): \(error)")
                    return
                }
                enqueue(.validity(height: h, value: value, valid: valid, timely: isTimely(value)))
            case .decide(let d):
                commit(d)
            case .evidence(let e):
                logger.warning("duplicate vote evidence", metadata: ["validator": "\(e.validator.hexEncoded)", "height": "\(e.height)"])
                addPendingEvidence(ConsensusMapping.evidence(e))
            case .ignored(let reason):
                handleIgnored(reason, source: source)
            case .signRefused(let h, let r, let s):
                logger.notice("sign guard refused to sign", metadata: ["height": "\(h)", "round": "\(r)", "step": "\(s)"])
            case .signingFailed(let e):
                logger.error("signing failed", metadata: ["error": "\(e)"])
            }
        }
    }

    private func fire(_ e: ConsensusEvent) {
        enqueue(e)
        drain()
        flushGossip()
    }

    private func halt(_ reason: String) {
        halted = reason
        timers.forEach { $0.cancel() }
        logger.critical("consensus halted", metadata: ["reason": "\(reason)"])
    }

    // MARK: - application glue

    /// The proposer waits until `min_block_interval_ms` has passed since the last commit (an
    /// idle chain does not spin, and transactions can gather), then builds the block.
    private func scheduleProposal(height: Height, round: Round) {
        let minInterval = Duration.milliseconds(Int64(clamping: config.consensus.minBlockIntervalMillis))
        let wait = max(.zero, minInterval - (ContinuousClock.now - lastCommitInstant))
        timers.append(Task { [weak self] in
            if wait > .zero { try? await Task.sleep(for: wait) }
            guard !Task.isCancelled else { return }
            await self?.propose(height: height, round: round)
        })
    }

    private func propose(height: Height, round: Round) {
        guard engine.height == height, engine.round == round, halted == nil else { return }
        do {
            let value = try buildProposal(height: height)
            enqueue(.proposalValue(height: height, round: round, value: value))
            drain()
        } catch {
            logger.error("cannot build a proposal", metadata: ["height": "\(height)", "error": "\(error)"])
        }
    }

    /// Prepare-proposal: the next block over the tip with the mempool's transactions.
    func buildProposal(height: Height) throws -> ProposalValue {
        guard let tip = app.tip, let validators = app.validators, let params = app.consensusParams,
            tip.nextHeight == height
        else { throw NodeError.storage("application is not at height \(height)") }
        let now = UInt64(Date().timeIntervalSince1970 * 1000)
        // Saturating: a tip dated at the end of time (only a Byzantine supermajority could
        // commit one) must stall this proposal, not trap the process.
        let time = max(now, tip.lastBlockTime == .max ? .max : tip.lastBlockTime + 1)
        var lastCommit: CommitInfo?
        if tip.lastHeight >= tip.initialHeight {
            guard let cert = try certificate(at: tip.lastHeight) else {
                throw NodeError.storage("no certificate stored for height \(tip.lastHeight)")
            }
            lastCommit = ConsensusMapping.commitInfo(cert)
        }
        // Pending evidence not yet committed, oldest first, within the per-block limit.
        let evidence = Array(pendingEvidence.filter { (try? app.isEvidenceCommitted($0)) == false }.prefix(Block.maxEvidence))
        let empty = Block.make(tip: tip, time: time, proposer: validatorAddress, validators: validators,
                               lastCommit: lastCommit, transactions: [], evidence: evidence)
        let budget = max(0, params.maxBlockBytes - empty.encoded.count)
        let txs = try app.prepareProposal(PrepareProposalRequest(
            transactions: mempool.candidates(limit: Self.maxProposalTransactions), maxTxBytes: budget, height: height, time: time, proposer: validatorAddress))
        let block = Block.make(tip: tip, time: time, proposer: validatorAddress, validators: validators,
                               lastCommit: lastCommit, transactions: txs, evidence: evidence)
        return ProposalValue(hash: try BlockHash(block.hash), block: block.encoded)
    }

    /// The header's proposer of the block `bytes` when they decode to a block with hash
    /// `hash` whose body matches its header — the block a signed proposal or a certificate
    /// names, as any honest peer would relay it — else `nil`.
    static func checkedProposer(_ bytes: Data, hashing hash: BlockHash) -> Data? {
        guard let block = try? Block(decoding: bytes), block.hash == hash.bytes, block.bodyMatchesHeader else { return nil }
        return block.header.proposer
    }

    /// ``checkedProposer(_:hashing:)``, remembered for this height: peers re-gossip the
    /// round's proposal, and hashing every transaction of each copy again would be wasted.
    private func knownOrCheckedProposer(_ bytes: Data, hashing hash: BlockHash) -> Data? {
        if let known = checkedBlocks[hash], known.bytes == bytes { return known.proposer }
        guard let proposer = Self.checkedProposer(bytes, hashing: hash) else { return nil }
        if checkedBlocks.count >= 16 { checkedBlocks.removeAll() }
        checkedBlocks[hash] = (bytes, proposer)
        return proposer
    }

    /// Beside the database (`<database>.signed`): says this validator has signed, so a new,
    /// empty database in its place is refused instead of signing from height 1 again.
    static func signedMarkerPath(databasePath: String) -> String {
        URL(fileURLWithPath: databasePath).standardizedFileURL.path + ".signed"
    }

    /// Creates the marker (synced, with its directory) before this process's first signature leaves.
    private func writeSignedMarkerOnce() throws {
        guard !signedMarkerWritten else { return }
        try Self.writeSignedMarker(path: Self.signedMarkerPath(databasePath: databasePath))
        signedMarkerWritten = true
    }

    /// Creates the marker at `path` if absent, synced with its directory: a failure is an
    /// error, since a power cut could otherwise keep the sign state and lose the marker.
    static func writeSignedMarker(path: String) throws {
        guard !FileManager.default.fileExists(atPath: path) else { return }
        let text = "This validator signed consensus messages with the database beside this file.\n"
            + "Its record of what it signed lives in that database: do not start it with a new one.\n"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw NodeError.storage("cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        guard write(fd, bytes, bytes.count) == bytes.count, fsync(fd) == 0 else {
            throw NodeError.storage("cannot write \(path)")
        }
        let dir = open((path as NSString).deletingLastPathComponent, O_RDONLY)
        guard dir >= 0 else { throw NodeError.storage("cannot open the directory of \(path) to sync it") }
        defer { close(dir) }
        guard fsync(dir) == 0 else { throw NodeError.storage("cannot sync the directory of \(path)") }
    }

    /// Most detected offences waiting for a block (each block carries up to 64).
    static let maxPendingEvidence = 1024

    /// Keeps an offence the engine detected until a block carries it. One offence per
    /// validator and height is enough to show it equivocated; a Byzantine validator
    /// double-voting in every round must not grow this list faster than blocks carry it out
    /// (64 per block), and it is capped besides. The list is written to the database at once,
    /// so a restart before this node proposes does not forget the offence: the votes that
    /// prove it were gossiped once, and no peer may ever send them again.
    func addPendingEvidence(_ ev: DoubleVoteEvidence) {
        guard !pendingEvidence.contains(where: { $0.validator == ev.validator && $0.voteA.height == ev.voteA.height }) else { return }
        guard pendingEvidence.count < Self.maxPendingEvidence else {
            logger.warning("pending evidence is full; this offence is not kept", metadata: [
                "validator": "\(ev.validator.hexEncoded)", "height": "\(ev.voteA.height)", "limit": "\(Self.maxPendingEvidence)"])
            return
        }
        pendingEvidence.append(ev)
        savePendingEvidence()
    }

    /// Offences waiting for a block (tests).
    var pendingEvidenceCount: Int { pendingEvidence.count }

    /// Writes the pending list (or removes it when empty). Not synced: a process crash keeps
    /// it (RocksDB's log is in the kernel's hands once written), and losing it to a power cut
    /// loses nothing the chain relies on — evidence only punishes. A failed write is logged,
    /// and the offence is still in memory for the next proposal.
    private func savePendingEvidence() {
        do {
            var b = WriteBatch()
            if pendingEvidence.isEmpty {
                b.delete(Self.pendingEvidenceKey, in: Self.consensusCF)
            } else {
                b.put(Self.pendingEvidenceKey, PendingEvidence(pendingEvidence).encoded, in: Self.consensusCF)
            }
            try db.write(b, sync: false)
        } catch {
            logger.error("cannot record pending evidence; it is kept in memory only", metadata: ["error": "\(error)"])
        }
    }

    /// The pending offences a previous run recorded, less those a block has since carried. An
    /// unreadable record is logged and dropped: it is this node's own note, and starting
    /// without it only forgoes punishing offences already seen once.
    static func loadPendingEvidence(db: Database, app: Application, logger: Logger) -> [DoubleVoteEvidence] {
        let raw: Data?
        do {
            raw = try db.get(pendingEvidenceKey, in: consensusCF)
        } catch {
            logger.error("cannot read pending evidence; starting without it", metadata: ["error": "\(error)"])
            return []
        }
        guard let raw else { return [] }
        do {
            let list = try PendingEvidence(decoding: raw).evidence.filter { (try? app.isEvidenceCommitted($0)) == false }
            if !list.isEmpty { logger.notice("pending evidence restored", metadata: ["count": "\(list.count)"]) }
            return Array(list.prefix(maxPendingEvidence))
        } catch {
            logger.error("pending evidence record is unreadable; starting without it", metadata: ["error": "\(error)"])
            return []
        }
    }

    /// How far past this node's clock a proposed block may be dated and still get its
    /// prevote: room for clock differences and message delay between honest validators.
    static let maxProposalClockDriftMs: UInt64 = 30_000

    /// Whether the block's time is at most ``maxProposalClockDriftMs`` past the local clock
    /// now (on arrival). Block times only have to grow, so without this one Byzantine
    /// proposer could date a block at the end of time: no later block could follow it, and
    /// jail durations measured in block time would end at once. An undecodable value is
    /// judged by ``isValid(_:height:)`` instead.
    func isTimely(_ value: ProposalValue) -> Bool {
        guard let block = try? Block(decoding: value.block) else { return true }
        let now = UInt64(max(0, Date().timeIntervalSince1970 * 1000))
        let (limit, overflow) = now.addingReportingOverflow(Self.maxProposalClockDriftMs)
        let timely = overflow || block.header.time <= limit
        if !timely {
            logger.warning("proposed block is dated too far ahead of this node's clock; prevoting nil", metadata: [
                "height": "\(block.header.height)", "block_time_ms": "\(block.header.time)", "local_time_ms": "\(now)",
                "max_drift_ms": "\(Self.maxProposalClockDriftMs)",
            ])
        }
        return timely
    }

    /// Process-proposal: deterministic in (value, height): the bytes decode to a block whose
    /// hash is the value's hash, for this height, and the application accepts it. Throws
    /// only for a failure of this node (its store, a halted application), which is no
    /// verdict on the block: the application rejects bad blocks without throwing.
    func isValid(_ value: ProposalValue, height: Height) throws(ChainError) -> Bool {
        guard let block = try? Block(decoding: value.block), block.hash == value.hash.bytes,
            block.header.height == height
        else { return false }
        return try app.processProposal(block) == .accept
    }

    func certificate(at height: UInt64) throws -> CommitCertificate? {
        guard let raw = try db.get(Self.certKey(height), in: Self.commitsCF) else { return nil }
        return try CanonicalEncoding.decodeCommit(raw)
    }

    /// Stores the decision durably, executes and commits the block, then starts the next height.
    private func commit(_ d: Decision) {
        let h = d.height
        guard let block = try? Block(decoding: d.value.block), block.hash == d.value.hash.bytes else {
            halt("decided value at height \(h) is not a block with the decided hash")
            return
        }
        var endedEpochs: [CheckpointDuty.EndedEpoch] = []
        do {
            var b = WriteBatch()
            b.put(Self.certKey(h), CanonicalEncoding.encode(d.certificate), in: Self.commitsCF)
            // With the block store's only copy of the block (the commit does not write it
            // again), synced. The codec is canonical, so these are exactly the bytes of the
            // decoded block.
            try app.recordDecision(b, block: d.value.block, height: h)
            if crashAfterDecideHeight == h {
                logger.critical("failpoint: crashing between the decision and the application commit", metadata: ["height": "\(h)"])
                kill(getpid(), SIGKILL)
            }
            let result = try app.finalizeBlock(block)
            try app.commit()
            endedEpochs = CheckpointDuty.endedEpochs(in: result.events)
            let now = ContinuousClock.now
            let interval = now - lastCommitInstant
            lastCommitInstant = now
            blockTimer.recordNanoseconds(interval.components.seconds * 1_000_000_000 + interval.components.attoseconds / 1_000_000_000)
            heightGauge.record(Int64(h))
            committedTxCounter.increment(by: result.txResults.count)
            // Counted in place: a block's events run to thousands, and this is the commit path.
            var equivocations = 0, jailings = 0
            func tally(_ events: [Event]) {
                for e in events {
                    if e.type == FinalityModule.equivocationEvent { equivocations += 1 }
                    if e.type == FinalityModule.jailedEvent { jailings += 1 }
                }
            }
            tally(result.events)
            for r in result.txResults { tally(r.events) }
            if equivocations > 0 { equivocationCounter.increment(by: equivocations) }
            if jailings > 0 { jailingCounter.increment(by: jailings) }
            logger.info("committed block", metadata: [
                "height": "\(h)", "round": "\(d.round)", "txs": "\(block.transactions.count)",
                "app_hash": "\(result.appHash.hexEncoded.prefix(16))",
            ])
        } catch {
            halt("cannot commit decided block \(h): \(error)")
            return
        }
        if !pendingEvidence.isEmpty {
            let before = pendingEvidence.count
            // Kept when the check fails to read: it is skipped for proposals until it can be read.
            pendingEvidence.removeAll { (try? app.isEvidenceCommitted($0)) == true }
            if pendingEvidence.count != before { savePendingEvidence() }
        }
        checkedBlocks.removeAll()
        rejectedRelayed.removeAll()
        proposalRelay.prune(below: h + 1)
        let evicted = mempool.update(committed: block.transactions, checks: ApplicationChecks(app: app))
        if evicted > 0 { logger.debug("mempool recheck evicted transactions", metadata: ["count": "\(evicted)"]) }
        if endedEpochs.isEmpty { retryOwedCheckpoint() } else { signCheckpoints(endedEpochs) }
        mempoolGauge.record(mempool.count)
        timers.forEach { $0.cancel() }
        timers = []
        let nextSet = engine.validators?.advancedForNextHeight() ?? genesisSet.advanced(byHeights: h + 1 - genesis.initialHeight)
        enqueue(.startHeight(h + 1, nextSet))
        // Keep syncing while some peer is ahead: the one that served the last certificate
        // if it claims more, else the next in turn.
        if let server = lastServer, (peerHeights[server] ?? 0) > h {
            requestSync(from: server, force: true)
        } else if let peer = syncPeer(holding: h + 1) {
            requestSync(from: peer, force: true)
        }
    }

    /// After an epoch's last block: sign its checkpoint and send the signature from the
    /// validator key's account into the local mempool and to peers, like any transaction. The
    /// nonce is the committed one plus this account's transactions still pending here.
    private func signCheckpoints(_ epochs: [CheckpointDuty.EndedEpoch]) {
        guard !epochs.isEmpty, !skipsCheckpointDuty, app.validators?.validator(address: validatorAddress) != nil else { return }
        checkpointOwed = true
        for epoch in epochs {
            let pending = mempool.entries.reduce(0) { $0 + ($1.sender == validatorAddress ? 1 : 0) }
            let nonce = CheckpointDuty.committedNonce(app: app, account: validatorAddress) + UInt64(pending)
            do {
                let tx = try CheckpointDuty.transaction(chainID: chainID, validatorKey: validatorKey, nonce: nonce, epoch: epoch)
                // Past the pool's limits: strangers' transactions (they cost nothing to make)
                // filling the pool must not keep this validator's signature out.
                let (admission, _) = admit(tx, gossip: true, exemptFromLimits: true)
                logger.info("signed epoch checkpoint", metadata: [
                    "epoch": "\(epoch.epoch)", "last_block_hash": "\(epoch.lastBlockHash.hexEncoded.prefix(16))",
                    "tx": "\(Transaction.hash(of: tx).hexEncoded.prefix(16))", "mempool": "\(admission)",
                ])
            } catch {
                logger.error("cannot sign the epoch checkpoint", metadata: ["epoch": "\(epoch.epoch)", "error": "\(error)"])
            }
        }
    }

    /// After a commit that ended no epoch: if this node's signature of the last ended
    /// epoch is still owed and none of its transactions waits in the pool (refused, or
    /// evicted by a recheck), sign again — else it would be sent only at the next restart.
    private func retryOwedCheckpoint() {
        guard checkpointOwed else { return }
        guard let owed = CheckpointDuty.owedEpoch(app: app, validator: validatorAddress) else {
            checkpointOwed = false
            return
        }
        guard mempool.nonces(of: validatorAddress).isEmpty else { return }
        logger.info("the epoch checkpoint signature is still owed; signing again", metadata: ["epoch": "\(owed.epoch)"])
        signCheckpoints([owed])
    }

    // MARK: - peers

    /// At most one message per key per interval (catch-up answers and requests; intervals
    /// are at most 1 s).
    private func allowed(_ key: String, every ms: Int64) -> Bool {
        rateLimits.allow(key, every: .milliseconds(ms), now: .now)
    }

    /// Whether `conn` may be sent another committed block now. Each answer reads a block
    /// (up to max_block_bytes) and queues it, and the heights it names are the peer's choice,
    /// so besides the per-height limits a connection gets one every 5 ms, within the byte
    /// budgets of ``ServeBudget`` (checked first: a refusal records no key).
    private func mayServe(_ conn: ConnectionID) -> Bool {
        serveBudget.allows(conn, now: .now) && allowed("serve-any/\(conn)", every: 5)
    }

    /// Room for a commit certificate and framing beside a full block in one P2P frame.
    static let frameOverheadBytes = 1 << 20
    /// Most transactions one gossip frame may carry (as `POST /txs/batch`).
    static let maxRelayedTransactionsPerFrame = 1000

    /// The next peer, in turn, among those whose last status says they hold `height`.
    /// Taking turns rather than always asking the highest claim: a peer can claim any
    /// height and then not answer, and always asking it would leave catch-up to the
    /// other peers' occasional messages.
    private func syncPeer(holding height: UInt64) -> ConnectionID? {
        let holders = peerHeights.filter { $0.value >= height }.keys.sorted()
        guard !holders.isEmpty else { return nil }
        syncTurn &+= 1
        return holders[syncTurn % holders.count]
    }

    private func requestSync(from conn: ConnectionID, force: Bool = false) {
        let h = engine.height
        guard h > 0, force || allowed("sync/\(conn)/\(h)", every: 300) else { return }
        network.send(.syncRequest(height: h), to: conn)
    }

    private func sendCommit(height h: UInt64, to conn: ConnectionID) {
        guard let last = app.lastHeight, h <= last, h >= genesis.initialHeight,
            let cert = try? certificate(at: h), let block = try? app.block(at: h)
        else { return }
        let encoded = block.encoded
        serveBudget.charge(encoded.count, to: conn, now: .now)
        network.send(.commit(cert, block: encoded), to: conn)
    }

    private func handleIgnored(_ reason: IgnoreReason, source: ConnectionID?) {
        switch reason {
        case .staleHeight(_, let h):
            // The sender is behind: its catch-up path is the certificate of its height.
            if let source, mayServe(source), allowed("commit/\(source)/\(h)", every: 1000) { sendCommit(height: h, to: source) }
        case .futureHeight:
            if let source { requestSync(from: source) }
        case .invalidCommit:
            if let source { network.penalize(source, points: P2PNetwork.initialScore, reason: "invalid commit certificate") }
        case .badSignature(let from):
            logger.debug("bad signature", metadata: ["from": "\(from.hexEncoded.prefix(16))"])
            if let source { network.penalize(source, points: PeerPenalty.badConsensusSignature, reason: "badly signed consensus message") }
        default:
            break
        }
    }

    /// A proposal or certificate the engine's screen refused before its block was looked at.
    /// What an honest peer never relays (the engine keeps and gossips only proposals from the
    /// round's proposer, validly signed) costs the sender as a bad signature does; messages for
    /// other heights are the usual catch-up signals.
    private func screenedOut(_ reason: IgnoreReason, source: ConnectionID) {
        switch reason {
        case .unknownValidator, .notProposer, .invalidPOLRound:
            network.penalize(source, points: PeerPenalty.badConsensusSignature, reason: "proposal an honest peer would not relay (\(reason))")
        default:
            handleIgnored(reason, source: source)
        }
    }

    public func peerConnected(_ connection: ConnectionID, nodeID: Data) async {
        peersGauge.record(network.peerCount)
        network.send(.status(height: app.lastHeight ?? 0), to: connection)
    }

    public func peerDisconnected(_ connection: ConnectionID) async {
        peerHeights.removeValue(forKey: connection)
        proposalRelay.forget(connection)
        if lastServer == connection { lastServer = nil }
        peersGauge.record(network.peerCount)
    }

    public func received(_ message: WireMessage, from conn: ConnectionID) async {
        guard running else { return }
        switch message {
        case .proposal(let p):
            // A block over the consensus limit can never be valid: not kept (the engine holds
            // a round's proposals until it judges them), whoever signed it.
            if let max = app.consensusParams?.maxBlockBytes, p.proposal.value.block.count > max { break }
            // What is signed is judged first (a signature check against decoding and hashing
            // up to a whole block): a proposal the engine would not keep costs nothing more.
            if let reason = engine.screen(p) {
                screenedOut(reason, source: conn)
                break
            }
            // Only the hash is signed: a relay that changed the block bytes would make us judge
            // the proposer's value invalid and prevote nil. Such a copy is the sender's doing.
            guard let headerProposer = knownOrCheckedProposer(p.proposal.value.block, hashing: p.proposal.value.hash) else {
                network.penalize(conn, points: P2PNetwork.initialScore, reason: "proposal with a block that is not the signed one")
                break
            }
            // A fresh proposal's block names its signer as proposer (a re-proposal carries the
            // block of an earlier round's proposer); otherwise it is not kept, and this node
            // prevotes nil when the round's proposal does not come.
            if p.proposal.polRound == nil, headerProposer != p.proposal.proposer {
                logger.warning("proposal whose block names another proposer; ignored", metadata: [
                    "height": "\(p.proposal.height)", "round": "\(p.proposal.round)",
                    "signer": "\(p.proposal.proposer.hexEncoded.prefix(16))",
                    "header_proposer": "\(headerProposer.hexEncoded.prefix(16))",
                ])
                break
            }
            proposalRelay.received(ProposalRelayLog.ID(p), from: conn, peerHeight: peerHeights[conn], tick: gossipTicks)
            enqueue(.proposal(p), from: conn)
        case .vote(let v):
            enqueue(.vote(v), from: conn)
        case .commit(let cert, let block):
            guard cert.height == engine.height else { break }
            if let max = app.consensusParams?.maxBlockBytes, block.count > max { break }
            // The certificate's signatures before the block's hashes, as for proposals.
            if let reason = engine.screen(cert) {
                screenedOut(reason, source: conn)
                break
            }
            // The block must be the certified one, header and body: a peer pairing a real
            // certificate with other bytes is refused and penalized, and nothing of it is kept.
            guard knownOrCheckedProposer(block, hashing: cert.value) != nil else {
                network.penalize(conn, points: P2PNetwork.initialScore, reason: "commit with a block that is not the certified one")
                break
            }
            // This peer serves: the next height is asked of it first.
            lastServer = conn
            lastServedCommit = .now
            enqueue(.commit(cert, ProposalValue(hash: cert.value, block: block)), from: conn)
        case .transaction(let tx):
            admitRelayed(tx, from: conn)
        case .transactions(let txs):
            // One frame is handled in one turn of this actor (votes and timeouts wait):
            // bounded like a batch submission.
            guard txs.count <= Self.maxRelayedTransactionsPerFrame else {
                network.penalize(conn, points: P2PNetwork.initialScore,
                                 reason: "\(txs.count) transactions in one frame (limit \(Self.maxRelayedTransactionsPerFrame))")
                break
            }
            for tx in txs { admitRelayed(tx, from: conn) }
        case .status(let h):
            peerHeights[conn] = h
            if h >= engine.height { requestSync(from: conn) }
        case .syncRequest(let h):
            // The connection's budget first: a refused request adds no per-height key.
            if mayServe(conn), allowed("serve/\(conn)/\(h)", every: 100) { sendCommit(height: h, to: conn) }
        case .hello, .helloProof:
            network.disconnect(conn, reason: "handshake message after handshake")
        }
        flushGossip()
        drain()
    }

    /// Admits a transaction a peer relayed. Provably bad bytes (not a state race such as a
    /// nonce) cost the relaying peer.
    private func admitRelayed(_ tx: Data, from conn: ConnectionID) {
        // A transaction refused since the last block is not checked again (a peer could send
        // the same committed transaction 50,000 times a frame, each a signature check).
        let hash = Transaction.hash(of: tx)
        guard !rejectedRelayed.contains(hash) else { return }
        let (admission, result) = admit(tx, gossip: true)
        if case .rejected = admission {
            if rejectedRelayed.count >= 100_000 { rejectedRelayed.removeAll() }
            rejectedRelayed.insert(hash)
            if let r = result?.result, PeerPenalty.isProvablyInvalid(r) {
                network.penalize(conn, points: PeerPenalty.invalidTransaction, reason: "invalid transaction: \(r.rule)")
            }
        }
    }

    /// Sends the transactions admitted in this turn, in admission order, as batch frames.
    private func flushGossip() {
        guard !outgoingTransactions.isEmpty else { return }
        var start = 0
        while start < outgoingTransactions.count {
            var end = start, bytes = 0
            // Well under the default 8 MiB frame limit, and no more transactions than a peer
            // takes in one frame.
            while end < outgoingTransactions.count, end - start < Self.maxRelayedTransactionsPerFrame,
                  end == start || bytes + outgoingTransactions[end].count < 1 << 20 {
                bytes += outgoingTransactions[end].count + 4
                end += 1
            }
            network.broadcast(end - start == 1 ? .transaction(outgoingTransactions[start]) : .transactions(Array(outgoingTransactions[start..<end])))
            start = end
        }
        outgoingTransactions = []
    }

    private func admit(_ tx: Data, gossip: Bool, exemptFromLimits: Bool = false) -> (Mempool.Admission, CheckTxResult?) {
        if let max = app.consensusParams?.maxTxBytes, tx.count > max {
            return (.rejected("transaction of \(tx.count) bytes exceeds \(max)"), nil)
        }
        let (admission, result) = mempool.add(tx, exemptFromLimits: exemptFromLimits, checks: ApplicationChecks(app: app))
        if case .replaced(let previous) = admission {
            logger.info("mempool replaced a pending transaction", metadata: [
                "tx": "\(Transaction.hash(of: tx).hexEncoded.prefix(16))", "replaced": "\(previous.hexEncoded.prefix(16))",
                "evicted": "\(mempool.lastReplacementEvictions)",
            ])
        }
        if gossip, admission.isAdmitted { outgoingTransactions.append(tx) }
        mempoolGauge.record(mempool.count)
        return (admission, result)
    }

    // MARK: - NodeBackend

    public func status() async -> NodeStatus {
        let tip = app.tip
        // Catching up means taking certified blocks from peers rather than deciding them:
        // one was served in the last 3 s, or the peer that served the last one claims more
        // than the next height. Claims alone do not count — any peer can claim any height,
        // and the highest claim kept this true forever beside one liar.
        let height = tip?.lastHeight ?? 0
        let servedRecently = lastServedCommit.map { ContinuousClock.now - $0 < .seconds(3) } ?? false
        let serverAhead = lastServer.flatMap { peerHeights[$0] }.map { $0 > height + 1 } ?? false
        return NodeStatus(
            chainID: chainID, nodeID: network.nodeID.hexEncoded, validatorAddress: validatorAddress.hexEncoded,
            height: tip?.lastHeight ?? 0, round: engine.round, latestBlockHash: tip?.lastBlockHash.hexEncoded ?? "",
            latestBlockTime: tip?.lastBlockTime ?? 0, appHash: tip?.lastAppHash.hexEncoded ?? "",
            peers: network.peerCount, mempoolSize: mempool.count, catchingUp: servedRecently || serverAhead,
            progress: ControlPlane.progress(of: app))
    }

    public func health() async -> NodeHealth {
        var reasons: [String] = []
        if db.isClosed { reasons.append("store is closed") }
        if let halted { reasons.append("consensus halted: \(halted)") }
        if !running { reasons.append("consensus is not running") }
        if genesisSet.count > 1, network.peerCount == 0 { reasons.append("no peers connected") }
        return NodeHealth(healthy: reasons.isEmpty, reasons: reasons)
    }

    public func block(at height: UInt64) async throws -> Block? { try app.block(at: height) }

    public func latestBlock() async throws -> Block? { try app.latestBlock() }

    public func transaction(hash: Data) async throws -> CommittedTransaction? { try app.committedTransaction(hash: hash) }

    public func submitTransaction(_ bytes: Data) async -> CheckTxResult {
        defer { flushGossip() }
        return submit(bytes)
    }

    /// The batch is admitted inside one actor turn: no commit interleaves, and the node is
    /// entered once rather than once per transaction.
    public func submitTransactions(_ transactions: [Data]) async -> [CheckTxResult] {
        defer { flushGossip() }
        return transactions.map(submit)
    }

    public func pendingNonces(of account: Data) async -> [UInt64] { mempool.nonces(of: account) }

    private func submit(_ bytes: Data) -> CheckTxResult {
        let (admission, result) = admit(bytes, gossip: true)
        var out = result ?? CheckTxResult(result: .ok(), hash: Transaction.hash(of: bytes))
        out.hash = Transaction.hash(of: bytes)
        switch admission {
        case .added, .duplicate:
            if result == nil { out.result = .ok() }
        case .replaced(let previous):
            out.result.log = "replaced pending transaction \(previous.hexEncoded)"
        case .rejected(let why):
            if out.result.isOK || result == nil {
                out.result = TxResult(violation: RuleViolation(codespace: "mempool", code: 1, rule: "mempool-rejected", message: why))
            }
        }
        return out
    }

    public func query(path: String, data: Data, page: PageRequest?) async -> QueryResult {
        do { return try app.query(path: path, data: data, page: page) } catch {
            return QueryResult(code: 1, codespace: "node", log: "\(error)", value: Data(), height: app.lastHeight ?? 0)
        }
    }

    /// The app hash after executing the committed block at `height` (for cross-node checks).
    public func appHash(at height: UInt64) -> Data? { (try? app.blockResults(at: height))?.appHash }

    /// Current consensus position.
    public var consensusHeight: UInt64 { engine.height }
    /// Last committed height.
    public var lastHeight: UInt64 { app.lastHeight ?? 0 }
    /// Why consensus halted, if it did.
    public var haltReason: String? { halted }
}

/// Score penalties of peer misbehaviour (a peer starts at ``P2PNetwork/initialScore`` and is
/// disconnected at ``P2PNetwork/disconnectScore``). Only what a correct peer never sends
/// costs points: honest peers relay transactions that later fail on state (nonces), but
/// never ones that cannot decode or whose signature does not verify.
enum PeerPenalty {
    static let badConsensusSignature = 20
    static let invalidTransaction = 10

    /// Rules a transaction breaks whatever the state: decoding, chain id, signature.
    static func isProvablyInvalid(_ r: TxResult) -> Bool {
        r.codespace == "tx" && ["malformed", "invalid-signature", "invalid-sender-key", "wrong-chain-id"].contains(r.rule)
    }
}

/// "At most once per interval" for keys that peers choose (they name heights), at a cost per
/// call that does not grow with the table.
///
/// Two generations rotated every ``window``: a key stays findable for at least one window,
/// longer than any interval asked (intervals are capped at it). Filtering a full table on
/// every call, once it held 10,000 fresh keys, let a peer make each call cost 10,000. A
/// generation full of keys is a flood: new keys are refused (the limits fail closed).
struct RateLimits {
    /// How long a generation lasts; no interval is longer.
    static let window = Duration.seconds(2)
    /// Most keys one generation holds.
    static let maxKeys = 50_000

    private var current: [String: ContinuousClock.Instant] = [:]
    private var previous: [String: ContinuousClock.Instant] = [:]
    private var rotatedAt: ContinuousClock.Instant?

    /// Whether `key` may act now (and records that it did): not if it acted less than
    /// `interval` ago, or if the table is full.
    mutating func allow(_ key: String, every interval: Duration, now: ContinuousClock.Instant) -> Bool {
        if let rotatedAt, now - rotatedAt < Self.window {} else {
            if rotatedAt != nil { previous = current; current = [:] }
            rotatedAt = now
        }
        if let t = current[key] ?? previous[key], now - t < min(interval, Self.window) { return false }
        guard current.count < Self.maxKeys else { return false }
        current[key] = now
        return true
    }

    /// Keys held in both generations.
    var count: Int { current.count + previous.count }
}

/// Bytes of committed blocks served per one-second window, per connection and in all.
/// Serving reads a block and queues a frame whose size the asking peer does not pay for, so
/// a count limit alone let peers that read fast pull full blocks at up to 200 a second each.
/// The budgets are far above what catch-up needs (executing a full block takes longer than
/// sending it); a refused request is simply asked again later.
struct ServeBudget {
    /// Bytes one connection may be sent per window.
    static let perConnectionBytes = 32 << 20
    /// Bytes all connections together may be sent per window.
    static let totalBytes = 128 << 20
    static let window = Duration.seconds(1)

    private var windowStart: ContinuousClock.Instant?
    private var perConnection: [ConnectionID: Int] = [:]
    private var total = 0

    /// Whether `conn` may be sent another block now: both budgets of this window have room
    /// (the block that uses up a budget is still sent; the next waits for the window).
    mutating func allows(_ conn: ConnectionID, now: ContinuousClock.Instant) -> Bool {
        roll(now)
        return perConnection[conn, default: 0] < Self.perConnectionBytes && total < Self.totalBytes
    }

    /// Counts `bytes` sent to `conn`.
    mutating func charge(_ bytes: Int, to conn: ConnectionID, now: ContinuousClock.Instant) {
        roll(now)
        perConnection[conn, default: 0] += bytes
        total += bytes
    }

    private mutating func roll(_ now: ContinuousClock.Instant) {
        if let windowStart, now - windowStart < Self.window { return }
        windowStart = now
        perConnection = [:]
        total = 0
    }
}
