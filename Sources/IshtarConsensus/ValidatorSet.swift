import Foundation

/// One validator: its address (what messages name), the public key its signatures verify
/// against, its voting power, and its proposer priority (Tendermint's rotation state).
public struct Validator: Hashable, Sendable {
    /// 1…255 bytes. Production: the 32-byte x-only BIP-340 public key or a hash of it.
    public let address: Data
    /// Handed to the ``SignatureVerifier``; production: 32-byte x-only BIP-340 key.
    public let publicKey: Data
    public let power: UInt64
    public internal(set) var proposerPriority: Int64

    public init(address: Data, publicKey: Data, power: UInt64, proposerPriority: Int64 = 0) {
        self.address = Data(address)
        self.publicKey = Data(publicKey)
        self.power = power
        self.proposerPriority = proposerPriority
    }
}

/// The validators of one height, sorted by address, with integer quorum arithmetic and
/// Tendermint's weighted round-robin proposer selection.
///
/// Proposer selection (same as Tendermint/CometBFT): to pick a proposer, every validator's
/// priority grows by its power, the one with the highest priority (ties: lowest address)
/// is chosen and its priority drops by the total power. Over many picks each validator
/// proposes in proportion to its power. Before a run of picks, priorities are rescaled so
/// their spread stays within 2× total power and re-centred on zero, which bounds them.
///
/// Convention in Ishtar: the priorities stored in the set for height `h` are those *before*
/// round 0's pick. The proposer of round `r` is the `(r+1)`-th pick starting from them, and
/// the set for height `h+1` is ``advancedForNextHeight()`` (exactly one pick), independent
/// of how many rounds `h` took — so every node agrees on it without extra state.
public struct ValidatorSet: Hashable, Sendable {
    /// Tendermint's bound, leaving headroom so priority arithmetic cannot overflow.
    public static let maxTotalVotingPower: UInt64 = UInt64(Int64.max) / 8

    /// Sorted by address.
    public let validators: [Validator]
    public let totalPower: UInt64
    private let indexByAddress: [Data: Int]

    /// Validates: non-empty, unique non-empty addresses ≤ 255 bytes, every power > 0,
    /// total ≤ ``maxTotalVotingPower``.
    public init(_ validators: [Validator]) throws(ConsensusError) {
        guard !validators.isEmpty else { throw .invalidValidatorSet("empty") }
        let sorted = validators.sorted { $0.address.lexicographicallyPrecedes($1.address) }
        var total: UInt64 = 0
        var index: [Data: Int] = [:]
        for (i, v) in sorted.enumerated() {
            guard !v.address.isEmpty, v.address.count <= 255 else {
                throw .invalidValidatorSet("address must be 1…255 bytes")
            }
            guard v.power > 0 else { throw .invalidValidatorSet("zero voting power") }
            guard index.updateValue(i, forKey: v.address) == nil else {
                throw .invalidValidatorSet("duplicate address")
            }
            let (t, o) = total.addingReportingOverflow(v.power)
            guard !o, t <= Self.maxTotalVotingPower else {
                throw .invalidValidatorSet("total voting power too large")
            }
            total = t
        }
        self.validators = sorted
        self.totalPower = total
        self.indexByAddress = index
    }

    public var count: Int { validators.count }

    public func validator(for address: Data) -> Validator? {
        indexByAddress[address].map { validators[$0] }
    }

    public func power(of address: Data) -> UInt64 { validator(for: address)?.power ?? 0 }

    /// More than two thirds of the total power: `3·power > 2·total` (the paper's 2f+1).
    public func isSupermajority(_ power: UInt64) -> Bool {
        power.multipliedFullWidth(by: 3) > totalPower.multipliedFullWidth(by: 2)
    }

    /// More than one third of the total power: `3·power > total` (the paper's f+1).
    public func isOneThirdPlus(_ power: UInt64) -> Bool {
        power.multipliedFullWidth(by: 3) > (high: 0, low: totalPower)
    }

    /// The proposers of rounds `0..<count`, in order.
    public func proposers(rounds count: Int) -> [Data] {
        var work = self.prepared()
        return (0..<max(0, count)).map { _ in work.pickProposer() }
    }

    /// The proposer of `round` (O(round · n); the engine caches instead).
    public func proposer(round: Round) -> Data {
        proposers(rounds: Int(round) + 1).last ?? validators[0].address
    }

    /// The set for the next height: one proposer pick applied to the priorities.
    public func advancedForNextHeight() -> ValidatorSet {
        advanced(byHeights: 1)
    }

    /// The set `heights` heights later (one pick per height), e.g. to rebuild the set for a
    /// height after a restart from the genesis set when validators never change.
    public func advanced(byHeights heights: UInt64) -> ValidatorSet {
        var s = self
        for _ in 0..<heights {
            var w = s.prepared()
            _ = w.pickProposer()
            s = w
        }
        return s
    }

    // MARK: proposer-priority arithmetic

    /// Rescale so max−min ≤ 2·total, then subtract the (floored) average.
    func prepared() -> ValidatorSet {
        var s = self
        var vals = s.validators
        let window = Int64(totalPower) * 2
        let maxP = vals.map(\.proposerPriority).max() ?? 0
        let minP = vals.map(\.proposerPriority).min() ?? 0
        // Int64 range spans at most 2^64; compute the diff wide to avoid overflow.
        let diff = Int128(maxP) - Int128(minP)
        if diff > Int128(window), window > 0 {
            let ratio = (diff + Int128(window) - 1) / Int128(window)
            for i in vals.indices { vals[i].proposerPriority = Int64(Int128(vals[i].proposerPriority) / ratio) }
        }
        let sum = vals.reduce(Int128(0)) { $0 + Int128($1.proposerPriority) }
        let n = Int128(vals.count)
        var avg = sum / n
        if sum % n != 0 && sum < 0 { avg -= 1 }  // floor, like Go's big.Int Div
        for i in vals.indices {
            vals[i].proposerPriority = Self.clip(Int128(vals[i].proposerPriority) - avg)
        }
        s.replaceValidators(vals)
        return s
    }

    /// One pick: everyone gains its power; the max (ties: lowest address) pays the total.
    mutating func pickProposer() -> Data {
        var vals = validators
        var best = 0
        for i in vals.indices {
            vals[i].proposerPriority = Self.clip(Int128(vals[i].proposerPriority) + Int128(vals[i].power))
            if i > 0, vals[i].proposerPriority > vals[best].proposerPriority { best = i }
            // Equal priority keeps the earlier index, i.e. the lower address (sorted order).
        }
        vals[best].proposerPriority = Self.clip(Int128(vals[best].proposerPriority) - Int128(totalPower))
        let chosen = vals[best].address
        replaceValidators(vals)
        return chosen
    }

    private mutating func replaceValidators(_ vals: [Validator]) {
        // Same addresses and order, only priorities changed: the index stays valid.
        self = ValidatorSet(unchecked: vals, totalPower: totalPower, index: indexByAddress)
    }

    private init(unchecked: [Validator], totalPower: UInt64, index: [Data: Int]) {
        self.validators = unchecked
        self.totalPower = totalPower
        self.indexByAddress = index
    }

    private static func clip(_ v: Int128) -> Int64 {
        v > Int128(Int64.max) ? .max : (v < Int128(Int64.min) ? .min : Int64(v))
    }
}

/// Incrementally computed proposer schedule for one height (the engine asks round by round).
struct ProposerSchedule: Sendable {
    private var work: ValidatorSet
    private(set) var proposers: [Data] = []

    init(_ set: ValidatorSet) { work = set.prepared() }

    mutating func proposer(round: Round) -> Data {
        while proposers.count <= Int(round) { proposers.append(work.pickProposer()) }
        return proposers[Int(round)]
    }
}
