import Foundation
import IshtarChain

/// What the HTTP API needs from a running node. The node service implements it; the API
/// layer never reaches into consensus, storage or the mempool directly.
public protocol NodeBackend: Sendable {
    /// A snapshot of the node's state for `GET /status`.
    func status() async -> NodeStatus
    /// Liveness and readiness for `GET /health`.
    func health() async -> NodeHealth
    /// The committed block at `height`, or nil when it does not exist (yet).
    func block(at height: UInt64) async throws -> Block?
    /// The last committed block, or nil before the first block.
    func latestBlock() async throws -> Block?
    /// A committed transaction by its SHA-256 hash, with where it landed and its result.
    func transaction(hash: Data) async throws -> CommittedTransaction?
    /// Runs check-tx and, when it passes, admits the transaction to the mempool and
    /// gossips it. The result says why a rejected transaction was refused.
    func submitTransaction(_ bytes: Data) async -> CheckTxResult
    /// ``submitTransaction(_:)`` for each of `transactions`, in order (one call, so a busy
    /// node is entered once per batch rather than once per transaction).
    func submitTransactions(_ transactions: [Data]) async -> [CheckTxResult]
    /// A module or application query (`/modules/{module}/…` maps to path `/modules/{module}/…`);
    /// `page` is the page a listing answers (`nil` = its first page of the default size).
    func query(path: String, data: Data, page: PageRequest?) async -> QueryResult
    /// The nonces of `account`'s transactions waiting in the mempool (any order), so a client
    /// can pick the next free nonce (a pending one is refused).
    func pendingNonces(of account: Data) async -> [UInt64]
}

extension NodeBackend {
    /// ``query(path:data:page:)`` of the first page.
    public func query(path: String, data: Data) async -> QueryResult {
        await query(path: path, data: data, page: nil)
    }

    /// One ``submitTransaction(_:)`` per transaction.
    public func submitTransactions(_ transactions: [Data]) async -> [CheckTxResult] {
        var out: [CheckTxResult] = []
        out.reserveCapacity(transactions.count)
        for tx in transactions { out.append(await submitTransaction(tx)) }
        return out
    }
}

/// A committed transaction: its bytes and where and how it was executed.
public struct CommittedTransaction: Sendable, Hashable {
    public var hash: Data
    public var bytes: Data
    public var record: TxRecord

    public init(hash: Data, bytes: Data, record: TxRecord) {
        self.hash = hash
        self.bytes = bytes
        self.record = record
    }
}

extension Application {
    /// The last committed block, or nil before the first block (what a backend's
    /// ``NodeBackend/latestBlock()`` answers).
    public func latestBlock() throws(ChainError) -> Block? {
        guard let tip, tip.lastHeight >= tip.initialHeight else { return nil }
        return try block(at: tip.lastHeight)
    }

    /// The committed transaction with `hash`: its bytes, read from its block, and its record
    /// (what a backend's ``NodeBackend/transaction(hash:)`` answers).
    public func committedTransaction(hash: Data) throws(ChainError) -> CommittedTransaction? {
        guard let record = try transaction(hash: hash), let block = try block(at: record.height),
              Int(record.index) < block.transactions.count
        else { return nil }
        return CommittedTransaction(hash: hash, bytes: block.transactions[Int(record.index)], record: record)
    }
}

/// `GET /status`.
public struct NodeStatus: Sendable, Hashable, Codable {
    public var chainID: String
    /// This node's id (hex of its node key's x-only public key).
    public var nodeID: String
    /// The validator address this node signs with, if it is a validator.
    public var validatorAddress: String?
    public var height: UInt64
    public var round: UInt32
    public var latestBlockHash: String
    /// Milliseconds since the Unix epoch.
    public var latestBlockTime: UInt64
    public var appHash: String
    public var peers: Int
    public var mempoolSize: Int
    /// True while the node takes certified blocks from peers instead of deciding them (one
    /// served in the last 3 s, or the peer that served the last one claims more than the
    /// next height); a peer's claim alone does not make it true.
    public var catchingUp: Bool
    /// The BTC light client's tip height (absent on a chain without the light client).
    public var btcLightClientHeight: UInt64?
    /// The last height finalized by BTC-staked finality votes (absent until the first).
    public var btcFinalizedHeight: UInt64?
    /// The last epoch whose checkpoint is FINALIZED on Bitcoin ("0" while none is).
    public var lastFinalizedEpoch: UInt64?

    public init(
        chainID: String, nodeID: String, validatorAddress: String?, height: UInt64, round: UInt32,
        latestBlockHash: String, latestBlockTime: UInt64, appHash: String, peers: Int, mempoolSize: Int,
        catchingUp: Bool, progress: ControlPlaneProgress = ControlPlaneProgress()
    ) {
        self.chainID = chainID
        self.nodeID = nodeID
        self.validatorAddress = validatorAddress
        self.height = height
        self.round = round
        self.latestBlockHash = latestBlockHash
        self.latestBlockTime = latestBlockTime
        self.appHash = appHash
        self.peers = peers
        self.mempoolSize = mempoolSize
        self.catchingUp = catchingUp
        btcLightClientHeight = progress.btcLightClientHeight
        btcFinalizedHeight = progress.btcFinalizedHeight
        lastFinalizedEpoch = progress.lastFinalizedEpoch
    }

    enum CodingKeys: String, CodingKey {
        case chainID = "chain_id", nodeID = "node_id", validatorAddress = "validator_address", height, round
        case latestBlockHash = "latest_block_hash", latestBlockTime = "latest_block_time_ms", appHash = "app_hash"
        case peers, mempoolSize = "mempool_size", catchingUp = "catching_up"
        case btcLightClientHeight = "btc_light_client_height", btcFinalizedHeight = "btc_finalized_height"
        case lastFinalizedEpoch = "last_finalized_epoch"
    }
}

/// `GET /health`: healthy when the store is open and consensus is running; the reasons say
/// what is wrong otherwise.
public struct NodeHealth: Sendable, Hashable, Codable {
    public var healthy: Bool
    public var reasons: [String]

    public init(healthy: Bool, reasons: [String]) {
        self.healthy = healthy
        self.reasons = reasons
    }
}

/// The Prometheus metric names the node records (through swift-metrics) and `/metrics` serves.
public enum NodeMetricName {
    /// Gauge: last committed height.
    public static let height = "ishtar_height"
    /// Gauge: current consensus round.
    public static let round = "ishtar_round"
    /// Gauge: connected peers.
    public static let peers = "ishtar_peers"
    /// Gauge: transactions in the mempool.
    public static let mempoolSize = "ishtar_mempool_size"
    /// Gauge: bytes the process has allocated and not freed (jemalloc's count; RocksDB's
    /// memtables and block cache included), to see memory grow before the kernel notices.
    public static let allocatedBytes = "ishtar_allocated_bytes"
    /// Timer: time between consecutive committed blocks.
    public static let blockTime = "ishtar_block_interval_seconds"
    /// Counter: committed transactions.
    public static let committedTransactions = "ishtar_committed_transactions_total"
    /// Counter: peers disconnected because their inbound queue overflowed.
    public static let inboundOverflows = "ishtar_p2p_inbound_overflows_total"
    /// Counter: peers disconnected because their score fell to the threshold.
    public static let misbehavingPeers = "ishtar_p2p_misbehaving_peers_total"
    /// Counter: inbound connections closed on accept because `p2p.max_inbound_peers` were
    /// open, or `p2p.max_inbound_peers_per_ip` from the same address.
    public static let inboundRefused = "ishtar_p2p_inbound_refused_total"
    /// Counter: handshakes (inbound or dialed) refused because the peer's node id is banned
    /// for misbehaviour (`p2p.misbehaviour_ban_ms`).
    public static let bannedRefusals = "ishtar_p2p_banned_refusals_total"
    /// Gauge: the BTC light client's tip height (a relayer has stopped if it falls behind Bitcoin).
    public static let btcLightClientHeight = "ishtar_btc_light_client_height"
    /// Gauge: the last height finalized by BTC-staked votes (finality stalls if it stops
    /// following `ishtar_height`).
    public static let btcFinalizedHeight = "ishtar_btc_finalized_height"
    /// Gauge: the last epoch whose checkpoint is FINALIZED on Bitcoin.
    public static let lastFinalizedEpoch = "ishtar_checkpoint_last_finalized_epoch"
    /// Counter: double votes this node committed as evidence (each slashes a provider).
    public static let equivocations = "ishtar_finality_equivocations_total"
    /// Counter: finality providers this node saw jailed for missing votes.
    public static let jailings = "ishtar_finality_jailings_total"
    /// Gauge: open HTTP API connections (at most `api.max_connections`).
    public static let apiOpenConnections = "ishtar_api_open_connections"
    /// Counter: times the HTTP API reached `api.max_connections` and stopped accepting
    /// until a connection closed.
    public static let apiConnectionLimitReached = "ishtar_api_connection_limit_reached_total"
}
