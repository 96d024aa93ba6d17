import Foundation

/// The finality module's parameters (PROTOCOL §6), fixed at genesis under
/// `modules.finality`:
///
/// ```json
/// { "signed_blocks_window": 100, "min_signed_per_window": "0.5", "jail_duration_ms": 86400000,
///   "min_pub_rand": 100, "max_active_finality_providers": 100,
///   "max_pub_rand_start_offset": 10000, "finality_sig_timeout": 3,
///   "consumer_chains": [{ "chain_id": "consumer-1", "start_height": 1 }] }
/// ```
///
/// Every field is optional (defaults above); unknown fields are rejected.
/// - `min_signed_per_window` is an exact decimal in [0, 1] (never a float); a provider is
///   jailed when it missed more than `window − round(min_signed × window)` of its window.
/// - `max_pub_rand_start_offset`: a commitment must start at most this many heights after
///   the current height (control plane) or the chain's tally cursor (consumer chains).
/// - `finality_sig_timeout` (1…100,000): liveness of height h is judged at the end of block
///   h + timeout, so votes have that many blocks to arrive.
/// - `signed_blocks_window` is 1…100,000.
/// - `consumer_chains` (default none, at most 100): consumer chains whose tally starts at a
///   fixed height. Any other consumer chain's tally starts where its first accepted
///   commitment starts, so whoever commits first for it chooses that height; a listed chain's
///   start is the operator's, and every commitment must start within
///   `max_pub_rand_start_offset` of its tally cursor from the first one on.
public struct FinalityParams: Hashable, Sendable, BinaryCodable {
    /// Signed-blocks window, heights.
    public var signedBlocksWindow: UInt64
    /// Minimum signed fraction of the window, in 10⁻¹⁸ units (reuses ``Commission``'s exact decimal).
    public var minSignedPerWindow: Commission
    /// How long a jailed provider must wait before unjailing, ms of block time.
    public var jailDurationMs: UInt64
    /// Minimum number of public randomness values per commitment.
    public var minPubRand: UInt64
    /// Top-N size of a height's active set.
    public var maxActiveFinalityProviders: UInt32
    /// How far ahead a commitment may start.
    public var maxPubRandStartOffset: UInt64
    /// Blocks to wait before judging a height's liveness.
    public var finalitySigTimeout: UInt64
    /// Consumer chains whose tally starts at a height fixed at genesis, by chain id.
    public var consumerChains: [ConsumerChainStart]
    /// Whether a consumer chain that `consumerChains` does not list may be used: its tally
    /// then starts at its first commitment, wherever whoever commits first puts it. `false`
    /// (the default) refuses provider registrations (staking) and commitments, and so votes,
    /// for unlisted chain ids: genesis's list is the registry of consumer chains, as Babylon
    /// registers consumers before their providers can serve them.
    public var allowUnlistedConsumerChains: Bool

    /// PROTOCOL §6 defaults.
    public init(signedBlocksWindow: UInt64 = 100, minSignedPerWindow: Commission = Commission(units: Commission.scale / 2),
                jailDurationMs: UInt64 = 86_400_000, minPubRand: UInt64 = 100, maxActiveFinalityProviders: UInt32 = 100,
                maxPubRandStartOffset: UInt64 = 10_000, finalitySigTimeout: UInt64 = 3, consumerChains: [ConsumerChainStart] = [],
                allowUnlistedConsumerChains: Bool = false) {
        self.signedBlocksWindow = signedBlocksWindow
        self.minSignedPerWindow = minSignedPerWindow
        self.jailDurationMs = jailDurationMs
        self.minPubRand = minPubRand
        self.maxActiveFinalityProviders = maxActiveFinalityProviders
        self.maxPubRandStartOffset = maxPubRandStartOffset
        self.finalitySigTimeout = finalitySigTimeout
        self.consumerChains = consumerChains
        self.allowUnlistedConsumerChains = allowUnlistedConsumerChains
    }

    /// round(min_signed × window), half up, exactly.
    public var minSignedBlocks: UInt64 {
        let product = signedBlocksWindow.multipliedFullWidth(by: minSignedPerWindow.units)
        let (q, r) = Commission.scale.dividingFullWidth(product)
        return r >= Commission.scale - Commission.scale / 2 ? q + 1 : q
    }

    /// Most misses allowed in the window; one more jails.
    public var maxMissedBlocks: UInt64 { signedBlocksWindow - min(minSignedBlocks, signedBlocksWindow) }

    /// `u64 window ‖ u64 minSigned units ‖ u64 jail ms ‖ u64 minPubRand ‖ u32 maxActive ‖
    /// u64 startOffset ‖ u64 sigTimeout ‖ u32 n ‖ n × (str chainID ‖ u64 startHeight) ‖
    /// bool allowUnlisted`.
    public func encode(to w: inout BinaryWriter) {
        w.u64(signedBlocksWindow)
        w.u64(minSignedPerWindow.units)
        w.u64(jailDurationMs)
        w.u64(minPubRand)
        w.u32(maxActiveFinalityProviders)
        w.u64(maxPubRandStartOffset)
        w.u64(finalitySigTimeout)
        w.count(consumerChains.count)
        for c in consumerChains {
            w.string(c.chainID)
            w.u64(c.startHeight)
        }
        w.bool(allowUnlistedConsumerChains)
    }

    /// Inverse of ``encode(to:)``.
    public init(from r: inout BinaryReader) throws(CodecError) {
        signedBlocksWindow = try r.u64("signed blocks window")
        minSignedPerWindow = Commission(units: try r.u64("min signed per window"))
        jailDurationMs = try r.u64("jail duration")
        minPubRand = try r.u64("min pub rand")
        maxActiveFinalityProviders = try r.u32("max active finality providers")
        maxPubRandStartOffset = try r.u64("max pub rand start offset")
        finalitySigTimeout = try r.u64("finality sig timeout")
        let n = try r.count("consumer chains", minElementSize: 13, limit: FinalityGenesis.maxConsumerChains)
        var chains: [ConsumerChainStart] = []
        chains.reserveCapacity(n)
        for _ in 0..<n {
            chains.append(ConsumerChainStart(chainID: try r.string("consumer chain id", limit: StakingModule.maxChainIDBytes),
                                             startHeight: try r.u64("consumer start height")))
        }
        consumerChains = chains
        allowUnlistedConsumerChains = try r.bool("allow unlisted consumer chains")
    }

    /// The genesis JSON shape.
    public var json: [String: Any] {
        [
            "signed_blocks_window": Int(clamping: signedBlocksWindow), "min_signed_per_window": minSignedPerWindow.description,
            "jail_duration_ms": Int(clamping: jailDurationMs), "min_pub_rand": Int(clamping: minPubRand),
            "max_active_finality_providers": Int(maxActiveFinalityProviders),
            "max_pub_rand_start_offset": Int(clamping: maxPubRandStartOffset),
            "finality_sig_timeout": Int(clamping: finalitySigTimeout),
            "consumer_chains": consumerChains.map { ["chain_id": $0.chainID, "start_height": Int(clamping: $0.startHeight)] as [String: Any] },
            "allow_unlisted_consumer_chains": allowUnlistedConsumerChains,
        ]
    }
}

/// A consumer chain listed at genesis and the height its finality tally starts at.
public struct ConsumerChainStart: Hashable, Sendable, Codable {
    /// The consumer chain's id (1…64 bytes of `A-Z a-z 0-9 . - _`).
    public var chainID: String
    /// Its first height to finalize.
    public var startHeight: UInt64

    /// From its parts.
    public init(chainID: String, startHeight: UInt64) {
        self.chainID = chainID
        self.startHeight = startHeight
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case chainID = "chain_id", startHeight = "start_height"
    }
}

/// The genesis shape of `modules.finality` (see ``FinalityParams``).
public struct FinalityGenesis: Sendable, Codable {
    /// Signed-blocks window.
    public var signedBlocksWindow: UInt64?
    /// Exact decimal string in [0, 1].
    public var minSignedPerWindow: String?
    /// Jail duration, ms.
    public var jailDurationMs: UInt64?
    /// Minimum public randomness per commitment.
    public var minPubRand: UInt64?
    /// Active-set size.
    public var maxActiveFinalityProviders: UInt32?
    /// Commitment start offset bound.
    public var maxPubRandStartOffset: UInt64?
    /// Liveness delay, blocks.
    public var finalitySigTimeout: UInt64?
    /// Consumer chains with a fixed tally start.
    public var consumerChains: [ConsumerChainStart]?
    /// Whether unlisted consumer chain ids may be used (default false).
    public var allowUnlistedConsumerChains: Bool?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case signedBlocksWindow = "signed_blocks_window", minSignedPerWindow = "min_signed_per_window"
        case jailDurationMs = "jail_duration_ms", minPubRand = "min_pub_rand"
        case maxActiveFinalityProviders = "max_active_finality_providers"
        case maxPubRandStartOffset = "max_pub_rand_start_offset", finalitySigTimeout = "finality_sig_timeout"
        case consumerChains = "consumer_chains"
        case allowUnlistedConsumerChains = "allow_unlisted_consumer_chains"
    }

    /// From its parts (`nil` = default).
    public init(signedBlocksWindow: UInt64? = nil, minSignedPerWindow: String? = nil, jailDurationMs: UInt64? = nil,
                minPubRand: UInt64? = nil, maxActiveFinalityProviders: UInt32? = nil, maxPubRandStartOffset: UInt64? = nil,
                finalitySigTimeout: UInt64? = nil, consumerChains: [ConsumerChainStart]? = nil,
                allowUnlistedConsumerChains: Bool? = nil) {
        self.signedBlocksWindow = signedBlocksWindow
        self.minSignedPerWindow = minSignedPerWindow
        self.jailDurationMs = jailDurationMs
        self.minPubRand = minPubRand
        self.maxActiveFinalityProviders = maxActiveFinalityProviders
        self.maxPubRandStartOffset = maxPubRandStartOffset
        self.finalitySigTimeout = finalitySigTimeout
        self.consumerChains = consumerChains
        self.allowUnlistedConsumerChains = allowUnlistedConsumerChains
    }

    /// Canonical JSON (sorted keys) for `Genesis.moduleParams["finality"]`.
    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(self)
    }

    /// Largest `signed_blocks_window` and `finality_sig_timeout` (Babylon mainnet's window is
    /// 10,000).
    static let maxWindow: UInt64 = 100_000

    /// Most consumer chains listed at genesis (every block's tally walks each listed chain).
    public static let maxConsumerChains = 100

    /// Why `chains` cannot be genesis's `consumer_chains`, or nil: more than
    /// ``maxConsumerChains``, a malformed or repeated chain id, `controlPlane` (the chain's
    /// own id) among them, or a start height of 2^64 − 1 (a tally cursor moves to the height
    /// after the last finalized one).
    public static func consumerChainsProblem(_ chains: [ConsumerChainStart], controlPlane: String?) -> String? {
        guard chains.count <= maxConsumerChains else { return "at most \(maxConsumerChains) chains" }
        var seen = Set<String>()
        for c in chains {
            guard Genesis.isValidChainID(c.chainID) else {
                return "chain id \"\(c.chainID)\" must be 1…\(StakingModule.maxChainIDBytes) bytes of A-Z a-z 0-9 . - _"
            }
            guard c.chainID != controlPlane else { return "\(c.chainID) is this chain's own id, not a consumer's" }
            guard seen.insert(c.chainID).inserted else { return "chain id \"\(c.chainID)\" is listed twice" }
            guard c.startHeight < .max else { return "start_height of \"\(c.chainID)\" must be below 2^64 − 1" }
        }
        return nil
    }

    /// Validated parameters (defaults filled in).
    func validated(module: String) throws(ExecutionError) -> FinalityParams {
        var p = FinalityParams()
        if let v = signedBlocksWindow {
            // Bounded: a provider's signing info lists its misses in the window, and heights
            // plus the window must stay far from 2^64.
            guard v >= 1, v <= Self.maxWindow else {
                throw .rule(ParamsError.outOfRange(module: module, name: "signed_blocks_window", reason: "must be 1…\(Self.maxWindow)"))
            }
            p.signedBlocksWindow = v
        }
        if let text = minSignedPerWindow {
            guard let c = Commission(decimal: text) else {
                throw .rule(ParamsError.outOfRange(module: module, name: "min_signed_per_window",
                                                   reason: "must be an exact decimal in [0, 1]"))
            }
            p.minSignedPerWindow = c
        }
        if let v = jailDurationMs { p.jailDurationMs = v }
        if let v = minPubRand {
            guard v >= 1 else { throw .rule(ParamsError.outOfRange(module: module, name: "min_pub_rand", reason: "must be ≥ 1")) }
            p.minPubRand = v
        }
        if let v = maxActiveFinalityProviders {
            guard v >= 1 else {
                throw .rule(ParamsError.outOfRange(module: module, name: "max_active_finality_providers", reason: "must be ≥ 1"))
            }
            p.maxActiveFinalityProviders = v
        }
        if let v = maxPubRandStartOffset { p.maxPubRandStartOffset = v }
        if let v = finalitySigTimeout {
            // Votes for h arrive in block h + 1 at the earliest: judging h in its own block would
            // count every provider as missing.
            guard v >= 1, v <= Self.maxWindow else {
                throw .rule(ParamsError.outOfRange(module: module, name: "finality_sig_timeout", reason: "must be 1…\(Self.maxWindow)"))
            }
            p.finalitySigTimeout = v
        }
        if let chains = consumerChains {
            if let problem = Self.consumerChainsProblem(chains, controlPlane: nil) {
                throw .rule(ParamsError.outOfRange(module: module, name: "consumer_chains", reason: problem))
            }
            p.consumerChains = chains
        }
        if let v = allowUnlistedConsumerChains { p.allowUnlistedConsumerChains = v }
        return p
    }
}
