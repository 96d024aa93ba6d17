import Foundation

/// The votes of one type in one round, tallied by power.
///
/// As in the paper, "2f+1 ⟨PREVOTE, h, r, id(v)⟩" counts distinct senders *per value*: an
/// equivocating validator's second vote still counts for its own value. Otherwise a
/// Byzantine validator could show different nodes different first votes and keep some of
/// them from ever seeing a proof-of-lock that others saw (a liveness attack). Safety is
/// unaffected: two > 2/3 quorums for different values would need an honest validator in
/// both. To bound memory, the engine admits a conflicting vote only for nil or for the
/// value of a proposal it holds (see ``ConsensusEngine``). "2f+1 of any vote" counts each
/// validator once.
struct VoteSet: Sendable {
    /// The first vote of each validator (defines "any" power and is the evidence baseline).
    private(set) var first: [Data: SignedVote] = [:]
    private(set) var byValue: [BlockHash?: [Data: SignedVote]] = [:]
    private(set) var powerByValue: [BlockHash?: UInt64] = [:]
    private(set) var totalPower: UInt64 = 0

    enum AddResult {
        /// Counted (`first`: it is the validator's first vote in this set).
        case added(first: Bool)
        case duplicate
        /// A different vote than the validator's first one; `counted` if it was admitted.
        case conflict(existing: SignedVote, counted: Bool)
    }

    func existing(_ validator: Data) -> SignedVote? { first[validator] }

    func contains(_ validator: Data, value: BlockHash?) -> Bool { byValue[value]?[validator] != nil }

    mutating func add(_ sv: SignedVote, power: UInt64, admitConflicting: Bool) -> AddResult {
        let who = sv.vote.validator
        if byValue[sv.vote.value]?[who] != nil { return .duplicate }
        if let old = first[who] {
            guard admitConflicting else { return .conflict(existing: old, counted: false) }
            byValue[sv.vote.value, default: [:]][who] = sv
            powerByValue[sv.vote.value, default: 0] += power
            return .conflict(existing: old, counted: true)
        }
        first[who] = sv
        byValue[sv.vote.value, default: [:]][who] = sv
        powerByValue[sv.vote.value, default: 0] += power
        totalPower += power
        return .added(first: true)
    }

    func power(for value: BlockHash?) -> UInt64 { powerByValue[value] ?? 0 }

    /// Votes for `value`, sorted by validator address (certificates and POL gossip).
    func votes(for value: BlockHash?) -> [SignedVote] {
        (byValue[value] ?? [:]).values.sorted { $0.vote.validator.lexicographicallyPrecedes($1.vote.validator) }
    }
}

/// Prevotes and precommits of one round.
struct RoundVotes: Sendable {
    var prevotes = VoteSet()
    var precommits = VoteSet()

    subscript(type: VoteType) -> VoteSet {
        get { type == .prevote ? prevotes : precommits }
        set {
            if type == .prevote { prevotes = newValue } else { precommits = newValue }
        }
    }
}
