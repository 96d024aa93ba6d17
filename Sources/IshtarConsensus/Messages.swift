import Foundation

/// An unsigned vote. What is signed is ``signBytes(chainID:)``, which covers the chain ID,
/// type, height, round and value (or nil) — not the validator address, which only says
/// whose key to check the signature with.
public struct Vote: Hashable, Sendable {
    public let type: VoteType
    public let height: Height
    public let round: Round
    /// `nil` is a vote for nothing ("nil vote").
    public let value: BlockHash?
    /// Address of the voting validator (as in the ``ValidatorSet``).
    public let validator: Data

    public init(type: VoteType, height: Height, round: Round, value: BlockHash?, validator: Data) {
        self.type = type
        self.height = height
        self.round = round
        self.value = value
        self.validator = validator
    }

    /// The canonical bytes a validator signs for this vote.
    public func signBytes(chainID: ChainID) -> Data {
        CanonicalEncoding.voteSignBytes(chainID: chainID, type: type, height: height, round: round, value: value)
    }

    /// The sign-guard step this vote belongs to.
    public var step: Step { type == .prevote ? .prevote : .precommit }
}

/// A vote with its signature.
public struct SignedVote: Hashable, Sendable {
    public let vote: Vote
    public let signature: Data

    public init(vote: Vote, signature: Data) {
        self.vote = vote
        self.signature = signature
    }
}

/// An unsigned proposal: the proposer of `(height, round)` proposes `value`; `polRound` is
/// the paper's `validRound` — the round in which the proposer saw > 2/3 prevotes for the
/// value (proof of lock), or `nil` for a fresh value.
public struct Proposal: Hashable, Sendable {
    public let height: Height
    public let round: Round
    public let polRound: Round?
    public let value: ProposalValue
    public let proposer: Data

    public init(height: Height, round: Round, polRound: Round?, value: ProposalValue, proposer: Data) {
        self.height = height
        self.round = round
        self.polRound = polRound
        self.value = value
        self.proposer = proposer
    }

    /// The canonical bytes the proposer signs. Covers the block hash, not the block bytes.
    public func signBytes(chainID: ChainID) -> Data {
        CanonicalEncoding.proposalSignBytes(
            chainID: chainID, height: height, round: round, polRound: polRound, value: value.hash)
    }
}

/// A proposal with the proposer's signature.
public struct SignedProposal: Hashable, Sendable {
    public let proposal: Proposal
    public let signature: Data

    public init(proposal: Proposal, signature: Data) {
        self.proposal = proposal
        self.signature = signature
    }
}

/// Anything a validator signs in consensus.
public enum SignedMessage: Hashable, Sendable {
    case proposal(SignedProposal)
    case vote(SignedVote)

    public var height: Height {
        switch self {
        case .proposal(let p): p.proposal.height
        case .vote(let v): v.vote.height
        }
    }
    public var round: Round {
        switch self {
        case .proposal(let p): p.proposal.round
        case .vote(let v): v.vote.round
        }
    }
    public var step: Step {
        switch self {
        case .proposal: .propose
        case .vote(let v): v.vote.step
        }
    }
    public var signer: Data {
        switch self {
        case .proposal(let p): p.proposal.proposer
        case .vote(let v): v.vote.validator
        }
    }
    public var signature: Data {
        switch self {
        case .proposal(let p): p.signature
        case .vote(let v): v.signature
        }
    }
    public func signBytes(chainID: ChainID) -> Data {
        switch self {
        case .proposal(let p): p.proposal.signBytes(chainID: chainID)
        case .vote(let v): v.vote.signBytes(chainID: chainID)
        }
    }
}

/// Proof that a value was decided at a height: the > 2/3 (by power) precommits for it in one round.
public struct CommitCertificate: Hashable, Sendable {
    public let height: Height
    public let round: Round
    public let value: BlockHash
    /// Precommits for `value` at `(height, round)`, sorted by validator address.
    public let precommits: [SignedVote]

    public init(height: Height, round: Round, value: BlockHash, precommits: [SignedVote]) {
        self.height = height
        self.round = round
        self.value = value
        self.precommits = precommits.sorted { $0.vote.validator.lexicographicallyPrecedes($1.vote.validator) }
    }

    /// Checks every precommit (right height/round/value, known validator, no duplicates,
    /// valid signature) and that their power is > 2/3 of the set's total.
    public func verify(
        chainID: ChainID, validators: ValidatorSet, verifier: any SignatureVerifier
    ) throws(ConsensusError) {
        var seen = Set<Data>()
        var power: UInt64 = 0
        for sv in precommits {
            let v = sv.vote
            guard v.type == .precommit, v.height == height, v.round == round, v.value == value else {
                throw .invalidCertificate("precommit does not match certificate")
            }
            guard let val = validators.validator(for: v.validator) else {
                throw .invalidCertificate("unknown validator")
            }
            guard seen.insert(v.validator).inserted else {
                throw .invalidCertificate("duplicate validator")
            }
            guard verifier.verify(signature: sv.signature, message: v.signBytes(chainID: chainID), by: val) else {
                throw .invalidCertificate("bad signature")
            }
            power += val.power
        }
        guard validators.isSupermajority(power) else {
            throw .invalidCertificate("not more than 2/3 of voting power")
        }
    }
}

/// Two different votes signed by one validator for the same height, round and type.
/// Votes are stored in canonical order (by sign bytes) so every node builds identical evidence.
public struct DuplicateVoteEvidence: Hashable, Sendable {
    public let voteA: SignedVote
    public let voteB: SignedVote

    /// Orders the two votes canonically. Does not verify; see ``verify(chainID:validators:verifier:)``.
    public init(_ a: SignedVote, _ b: SignedVote) {
        let ka = CanonicalEncoding.encode(a), kb = CanonicalEncoding.encode(b)
        if ka.lexicographicallyPrecedes(kb) {
            voteA = a
            voteB = b
        } else {
            voteA = b
            voteB = a
        }
    }

    public var validator: Data { voteA.vote.validator }
    public var height: Height { voteA.vote.height }

    /// Checks both votes are from the same known validator, same height/round/type, for
    /// different values, and both signatures verify.
    public func verify(
        chainID: ChainID, validators: ValidatorSet, verifier: any SignatureVerifier
    ) throws(ConsensusError) {
        let a = voteA.vote, b = voteB.vote
        guard a.validator == b.validator, a.height == b.height, a.round == b.round, a.type == b.type,
            a.value != b.value
        else { throw .invalidCertificate("votes do not conflict") }
        guard let val = validators.validator(for: a.validator) else {
            throw .invalidCertificate("unknown validator")
        }
        guard verifier.verify(signature: voteA.signature, message: a.signBytes(chainID: chainID), by: val),
            verifier.verify(signature: voteB.signature, message: b.signBytes(chainID: chainID), by: val)
        else { throw .invalidCertificate("bad signature") }
    }
}

/// A validated chain identifier (1…255 UTF-8 bytes), mixed into every signature so votes
/// cannot be replayed on another chain.
public struct ChainID: Hashable, Sendable, CustomStringConvertible {
    public let utf8: Data

    public init(_ string: String) throws(ConsensusError) {
        let bytes = Data(string.utf8)
        guard !bytes.isEmpty, bytes.count <= 255 else { throw .invalidChainID }
        utf8 = bytes
    }

    public var description: String { String(decoding: utf8, as: UTF8.self) }
}
