import Foundation
import IshtarConsensus

/// `config.json` of a node home. Every field has a default, so a partial file is valid;
/// `Config/README.md` explains each one (JSON has no comments).
public struct NodeConfig: Codable, Sendable, Hashable {
    /// A human-readable name for logs.
    public var moniker: String
    /// Peer-to-peer networking.
    public var p2p: P2PConfig
    /// The HTTP API.
    public var api: APIConfig
    /// Consensus timing.
    public var consensus: ConsensusConfig
    /// Mempool limits.
    public var mempool: MempoolConfig
    /// `trace|debug|info|notice|warning|error|critical`.
    public var logLevel: String
    /// Validator key file, relative to the home unless absolute.
    public var validatorKeyFile: String
    /// Node (P2P identity) key file, relative to the home unless absolute.
    public var nodeKeyFile: String

    public init(
        moniker: String = "node", p2p: P2PConfig = P2PConfig(), api: APIConfig = APIConfig(),
        consensus: ConsensusConfig = ConsensusConfig(), mempool: MempoolConfig = MempoolConfig(),
        logLevel: String = "info", validatorKeyFile: String = "validator_key.json", nodeKeyFile: String = "node_key.json"
    ) {
        self.moniker = moniker
        self.p2p = p2p
        self.api = api
        self.consensus = consensus
        self.mempool = mempool
        self.logLevel = logLevel
        self.validatorKeyFile = validatorKeyFile
        self.nodeKeyFile = nodeKeyFile
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case moniker, p2p, api, consensus, mempool
        case logLevel = "log_level", validatorKeyFile = "validator_key_file", nodeKeyFile = "node_key_file"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = NodeConfig()
        moniker = try c.decodeIfPresent(String.self, forKey: .moniker) ?? d.moniker
        p2p = try c.decodeIfPresent(P2PConfig.self, forKey: .p2p) ?? d.p2p
        api = try c.decodeIfPresent(APIConfig.self, forKey: .api) ?? d.api
        consensus = try c.decodeIfPresent(ConsensusConfig.self, forKey: .consensus) ?? d.consensus
        mempool = try c.decodeIfPresent(MempoolConfig.self, forKey: .mempool) ?? d.mempool
        logLevel = try c.decodeIfPresent(String.self, forKey: .logLevel) ?? d.logLevel
        validatorKeyFile = try c.decodeIfPresent(String.self, forKey: .validatorKeyFile) ?? d.validatorKeyFile
        nodeKeyFile = try c.decodeIfPresent(String.self, forKey: .nodeKeyFile) ?? d.nodeKeyFile
    }

    /// Pretty, sorted JSON.
    public func jsonData() -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return (try? e.encode(self)) ?? Data("{}".utf8)
    }

    /// Parses `config.json` and checks every value (``validate()``).
    public static func parse(_ data: Data) throws -> NodeConfig {
        try rejectUnknownFields(data)
        let config = try JSONDecoder().decode(NodeConfig.self, from: data)
        try config.validate()
        return config
    }

    /// A misspelled key (`propose_base_msec`) would otherwise be ignored in silence and its
    /// default used: every key, at every level, must be one the node reads.
    static func rejectUnknownFields(_ data: Data) throws(ConfigError) {
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else { return }  // the decoder says why
        func check(_ object: [String: Any], _ known: [String], _ prefix: String) throws(ConfigError) {
            if let unknown = object.keys.sorted().first(where: { !known.contains($0) }) {
                throw .invalid(field: prefix + unknown, reason: "unknown field (known: \(known.sorted().joined(separator: ", ")))")
            }
        }
        try check(root, CodingKeys.allCases.map(\.rawValue), "")
        let sections: [(String, [String])] = [
            ("p2p", P2PConfig.CodingKeys.allCases.map(\.rawValue)), ("api", APIConfig.CodingKeys.allCases.map(\.rawValue)),
            ("consensus", ConsensusConfig.CodingKeys.allCases.map(\.rawValue)),
            ("mempool", MempoolConfig.CodingKeys.allCases.map(\.rawValue)),
        ]
        for (name, known) in sections {
            if let section = root[name] as? [String: Any] { try check(section, known, name + ".") }
        }
    }

    /// Checks every value against its allowed range (`Config/README.md`): addresses parse,
    /// the log level exists, and numbers lie where the node can use them — a timeout of
    /// 2^64 ms or a negative mempool limit is a typo, and would otherwise overflow a timer or
    /// refuse every transaction long after startup instead of failing now.
    public func validate() throws(ConfigError) {
        func range<T: BinaryInteger>(_ field: String, _ value: T, _ allowed: ClosedRange<T>) throws(ConfigError) {
            guard allowed.contains(value) else {
                throw .outOfRange(field: field, value: "\(value)", allowed: "\(allowed.lowerBound)…\(allowed.upperBound)")
            }
        }
        guard HostPort(p2p.listen) != nil else { throw .invalid(field: "p2p.listen", reason: "\"\(p2p.listen)\" is not host:port") }
        guard HostPort(api.listen) != nil else { throw .invalid(field: "api.listen", reason: "\"\(api.listen)\" is not host:port") }
        for (i, peer) in p2p.persistentPeers.enumerated() where PeerAddress(peer) == nil {
            throw .invalid(field: "p2p.persistent_peers[\(i)]", reason: "\"\(peer)\" is not nodeIDhex@host:port or host:port")
        }
        try range("p2p.max_frame_bytes", p2p.maxFrameBytes, 64 << 10...1 << 30)
        try range("p2p.max_dial_backoff_ms", p2p.maxDialBackoffMillis, 250...Self.maxMillis)
        try range("p2p.max_inbound_peers", p2p.maxInboundPeers, 1...10_000)
        try range("p2p.max_inbound_peers_per_ip", p2p.maxInboundPeersPerIP, 1...10_000)
        try range("api.max_connections", api.maxConnections, 1...100_000)
        try range("p2p.misbehaviour_ban_ms", p2p.misbehaviourBanMillis, 0...Self.maxMillis)
        let c = consensus
        for (field, value) in [("propose_base_ms", c.proposeBaseMillis), ("prevote_base_ms", c.prevoteBaseMillis),
                               ("precommit_base_ms", c.precommitBaseMillis)] {
            try range("consensus." + field, value, 1...Self.maxMillis)
        }
        for (field, value) in [("propose_delta_ms", c.proposeDeltaMillis), ("prevote_delta_ms", c.prevoteDeltaMillis),
                               ("precommit_delta_ms", c.precommitDeltaMillis), ("min_block_interval_ms", c.minBlockIntervalMillis)] {
            try range("consensus." + field, value, 0...Self.maxMillis)
        }
        try range("consensus.gossip_interval_ms", c.gossipIntervalMillis, 50...Self.maxMillis)
        try range("mempool.max_transactions", mempool.maxTransactions, 1...10_000_000)
        try range("mempool.max_bytes", mempool.maxBytes, 1 << 10...1 << 40)
        try range("mempool.max_per_sender", mempool.maxPerSender, 1...10_000_000)
        guard Self.logLevels.contains(logLevel) else {
            throw .invalid(field: "log_level", reason: "\"\(logLevel)\" is not one of \(Self.logLevels.joined(separator: ", "))")
        }
    }

    /// The longest timeout, interval or backoff accepted: one day.
    public static let maxMillis: UInt64 = 86_400_000

    /// The accepted `log_level` values, quietest last.
    public static let logLevels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]
}

/// Why a `config.json` was refused; each case names the field.
public enum ConfigError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A number outside the range the node can use.
    case outOfRange(field: String, value: String, allowed: String)
    /// A value of the right type that does not mean anything (an address, a level).
    case invalid(field: String, reason: String)

    /// One line naming the field.
    public var description: String {
        switch self {
        case let .outOfRange(field, value, allowed): return "\(field) is \(value), must be in \(allowed)"
        case let .invalid(field, reason): return "\(field): \(reason)"
        }
    }
}

/// P2P settings.
public struct P2PConfig: Codable, Sendable, Hashable {
    /// `host:port` to listen on for peers.
    public var listen: String
    /// `nodeIDhex@host:port` (or just `host:port`) peers to keep connected to.
    public var persistentPeers: [String]
    /// Largest accepted frame; a larger one disconnects the peer.
    public var maxFrameBytes: Int
    /// Upper bound of the reconnect backoff.
    public var maxDialBackoffMillis: UInt64
    /// Most connections others opened to this node at once (handshaking or established);
    /// more are closed on accept. Each established peer may hold a queue of frames, so this
    /// bounds what strangers can make the node hold. Dialed persistent peers do not count.
    public var maxInboundPeers: Int
    /// Most of those inbound connections from one IP address: one host cannot take every
    /// inbound slot. A devnet runs every node on 127.0.0.1, so the default leaves room for
    /// ten local peers.
    public var maxInboundPeersPerIP: Int
    /// How long a node id disconnected for misbehaviour (its score used up) is refused at
    /// the handshake, inbound or dialed; 0 disables bans. Without it the peer reconnects at
    /// once with a full score and starts over.
    public var misbehaviourBanMillis: UInt64

    public init(listen: String = "127.0.0.1:26656", persistentPeers: [String] = [], maxFrameBytes: Int = 8 << 20,
                maxDialBackoffMillis: UInt64 = 5000, maxInboundPeers: Int = 40, maxInboundPeersPerIP: Int = 10,
                misbehaviourBanMillis: UInt64 = 600_000) {
        self.listen = listen
        self.persistentPeers = persistentPeers
        self.maxFrameBytes = maxFrameBytes
        self.maxDialBackoffMillis = maxDialBackoffMillis
        self.maxInboundPeers = maxInboundPeers
        self.maxInboundPeersPerIP = maxInboundPeersPerIP
        self.misbehaviourBanMillis = misbehaviourBanMillis
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case listen, persistentPeers = "persistent_peers", maxFrameBytes = "max_frame_bytes"
        case maxDialBackoffMillis = "max_dial_backoff_ms", maxInboundPeers = "max_inbound_peers"
        case maxInboundPeersPerIP = "max_inbound_peers_per_ip", misbehaviourBanMillis = "misbehaviour_ban_ms"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = P2PConfig()
        listen = try c.decodeIfPresent(String.self, forKey: .listen) ?? d.listen
        persistentPeers = try c.decodeIfPresent([String].self, forKey: .persistentPeers) ?? d.persistentPeers
        maxFrameBytes = try c.decodeIfPresent(Int.self, forKey: .maxFrameBytes) ?? d.maxFrameBytes
        maxDialBackoffMillis = try c.decodeIfPresent(UInt64.self, forKey: .maxDialBackoffMillis) ?? d.maxDialBackoffMillis
        maxInboundPeers = try c.decodeIfPresent(Int.self, forKey: .maxInboundPeers) ?? d.maxInboundPeers
        maxInboundPeersPerIP = try c.decodeIfPresent(Int.self, forKey: .maxInboundPeersPerIP) ?? d.maxInboundPeersPerIP
        misbehaviourBanMillis = try c.decodeIfPresent(UInt64.self, forKey: .misbehaviourBanMillis) ?? d.misbehaviourBanMillis
    }
}

/// HTTP API settings.
public struct APIConfig: Codable, Sendable, Hashable {
    /// `host:port`; loopback by default so a fresh node is not exposed.
    public var listen: String
    /// A file whose first line is the bearer token `POST /txs` then requires (relative to
    /// the home unless absolute; owner-only permissions, like the key files). `nil`: no
    /// token — the default, since a submitted transaction is already signed by its sender.
    public var bearerTokenFile: String?
    /// Open HTTP connections at most; further clients wait in the listen backlog until one
    /// closes. Each connection holds a file descriptor, and the node's RocksDB files and
    /// peers need theirs: without a cap, clients opening connections could starve them.
    public var maxConnections: Int

    public init(listen: String = "127.0.0.1:26657", bearerTokenFile: String? = nil, maxConnections: Int = 256) {
        self.listen = listen
        self.bearerTokenFile = bearerTokenFile
        self.maxConnections = maxConnections
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case listen, bearerTokenFile = "bearer_token_file", maxConnections = "max_connections"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = APIConfig()
        listen = try c.decodeIfPresent(String.self, forKey: .listen) ?? d.listen
        bearerTokenFile = try c.decodeIfPresent(String.self, forKey: .bearerTokenFile)
        maxConnections = try c.decodeIfPresent(Int.self, forKey: .maxConnections) ?? d.maxConnections
    }
}

/// Consensus timeouts (milliseconds; `base + round × delta`) and the gossip period.
public struct ConsensusConfig: Codable, Sendable, Hashable {
    public var proposeBaseMillis: UInt64
    public var proposeDeltaMillis: UInt64
    public var prevoteBaseMillis: UInt64
    public var prevoteDeltaMillis: UInt64
    public var precommitBaseMillis: UInt64
    public var precommitDeltaMillis: UInt64
    /// Re-broadcast period of this node's current messages and of its height announcement.
    public var gossipIntervalMillis: UInt64
    /// Minimum time between two blocks (the next height starts this long after a commit),
    /// so an idle chain does not spin.
    public var minBlockIntervalMillis: UInt64

    public init(proposeBaseMillis: UInt64 = 3000, proposeDeltaMillis: UInt64 = 500, prevoteBaseMillis: UInt64 = 1000,
                prevoteDeltaMillis: UInt64 = 500, precommitBaseMillis: UInt64 = 1000, precommitDeltaMillis: UInt64 = 500,
                gossipIntervalMillis: UInt64 = 1000, minBlockIntervalMillis: UInt64 = 1000) {
        self.proposeBaseMillis = proposeBaseMillis
        self.proposeDeltaMillis = proposeDeltaMillis
        self.prevoteBaseMillis = prevoteBaseMillis
        self.prevoteDeltaMillis = prevoteDeltaMillis
        self.precommitBaseMillis = precommitBaseMillis
        self.precommitDeltaMillis = precommitDeltaMillis
        self.gossipIntervalMillis = gossipIntervalMillis
        self.minBlockIntervalMillis = minBlockIntervalMillis
    }

    /// Small timeouts for tests and local devnets.
    public static let fast = ConsensusConfig(
        proposeBaseMillis: 600, proposeDeltaMillis: 200, prevoteBaseMillis: 300, prevoteDeltaMillis: 100,
        precommitBaseMillis: 300, precommitDeltaMillis: 100, gossipIntervalMillis: 250, minBlockIntervalMillis: 200)

    public var timeouts: TimeoutConfig {
        TimeoutConfig(proposeBaseMillis: proposeBaseMillis, proposeDeltaMillis: proposeDeltaMillis,
                      prevoteBaseMillis: prevoteBaseMillis, prevoteDeltaMillis: prevoteDeltaMillis,
                      precommitBaseMillis: precommitBaseMillis, precommitDeltaMillis: precommitDeltaMillis)
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case proposeBaseMillis = "propose_base_ms", proposeDeltaMillis = "propose_delta_ms"
        case prevoteBaseMillis = "prevote_base_ms", prevoteDeltaMillis = "prevote_delta_ms"
        case precommitBaseMillis = "precommit_base_ms", precommitDeltaMillis = "precommit_delta_ms"
        case gossipIntervalMillis = "gossip_interval_ms", minBlockIntervalMillis = "min_block_interval_ms"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = ConsensusConfig()
        func v(_ k: CodingKeys, _ def: UInt64) throws -> UInt64 { try c.decodeIfPresent(UInt64.self, forKey: k) ?? def }
        proposeBaseMillis = try v(.proposeBaseMillis, d.proposeBaseMillis)
        proposeDeltaMillis = try v(.proposeDeltaMillis, d.proposeDeltaMillis)
        prevoteBaseMillis = try v(.prevoteBaseMillis, d.prevoteBaseMillis)
        prevoteDeltaMillis = try v(.prevoteDeltaMillis, d.prevoteDeltaMillis)
        precommitBaseMillis = try v(.precommitBaseMillis, d.precommitBaseMillis)
        precommitDeltaMillis = try v(.precommitDeltaMillis, d.precommitDeltaMillis)
        gossipIntervalMillis = try v(.gossipIntervalMillis, d.gossipIntervalMillis)
        minBlockIntervalMillis = try v(.minBlockIntervalMillis, d.minBlockIntervalMillis)
    }
}

/// Mempool limits.
public struct MempoolConfig: Codable, Sendable, Hashable {
    /// Most transactions held.
    public var maxTransactions: Int
    /// Most total bytes held.
    public var maxBytes: Int
    /// Most pending transactions of one sender.
    public var maxPerSender: Int

    public init(maxTransactions: Int = 5000, maxBytes: Int = 32 << 20, maxPerSender: Int = 64) {
        self.maxTransactions = maxTransactions
        self.maxBytes = maxBytes
        self.maxPerSender = maxPerSender
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case maxTransactions = "max_transactions", maxBytes = "max_bytes", maxPerSender = "max_per_sender"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = MempoolConfig()
        maxTransactions = try c.decodeIfPresent(Int.self, forKey: .maxTransactions) ?? d.maxTransactions
        maxBytes = try c.decodeIfPresent(Int.self, forKey: .maxBytes) ?? d.maxBytes
        maxPerSender = try c.decodeIfPresent(Int.self, forKey: .maxPerSender) ?? d.maxPerSender
    }
}

/// `host:port` parsing.
public struct HostPort: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port` (port 0…65535).
    public init?(_ text: String) {
        guard let i = text.lastIndex(of: ":"), let p = Int(text[text.index(after: i)...]), (0...65535).contains(p) else {
            return nil
        }
        let h = String(text[..<i])
        guard !h.isEmpty else { return nil }
        host = h
        port = p
    }

    public var description: String { "\(host):\(port)" }
}

/// A persistent peer: `nodeIDhex@host:port` or `host:port`.
public struct PeerAddress: Sendable, Hashable, CustomStringConvertible {
    public var nodeID: Data?
    public var address: HostPort

    public init?(_ text: String) {
        if let at = text.firstIndex(of: "@") {
            guard let id = Data(hexString: String(text[..<at])), id.count == 32,
                let hp = HostPort(String(text[text.index(after: at)...]))
            else { return nil }
            nodeID = id
            address = hp
        } else {
            guard let hp = HostPort(text) else { return nil }
            nodeID = nil
            address = hp
        }
    }

    public var description: String { (nodeID.map { $0.hexEncoded + "@" } ?? "") + address.description }
}

extension Data {
    /// Lowercase hex.
    var hexEncoded: String { map { String(format: "%02x", $0) }.joined() }

    /// Parses even-length hex; nil on anything else.
    init?(hexString: String) {
        let chars = Array(hexString.utf8)
        guard chars.count % 2 == 0 else { return nil }
        var out = Data(capacity: chars.count / 2)
        func nib(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: c - 0x30
            case 0x61...0x66: c - 0x61 + 10
            case 0x41...0x46: c - 0x41 + 10
            default: nil
            }
        }
        var i = 0
        while i < chars.count {
            guard let hi = nib(chars[i]), let lo = nib(chars[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        self = out
    }
}
