import Foundation
import IshtarCrypto

/// One signed consensus vote, as equivocation evidence carries it. The chain does not know
/// the engine's vote format: an ``EvidenceVerifier`` (the node's consensus glue) checks the
/// signature over the engine's sign bytes for these fields.
///
/// Encoding: `u8 type ‖ u64 height ‖ u32 round ‖ u8 present ‖ [32 blockHash] ‖ 64 signature`.
public struct EvidenceVote: Hashable, Sendable, BinaryCodable {
    /// Vote type of a prevote.
    public static let prevote: UInt8 = 1
    /// Vote type of a precommit.
    public static let precommit: UInt8 = 2

    /// ``prevote`` or ``precommit``.
    public var type: UInt8
    /// Consensus height.
    public var height: UInt64
    /// Consensus round.
    public var round: UInt32
    /// The block voted for; nil for a vote for nothing.
    public var blockHash: Data?
    /// BIP-340 signature of the validator over the vote's sign bytes.
    public var signature: Data

    /// A vote from its parts.
    public init(type: UInt8, height: UInt64, round: UInt32, blockHash: Data?, signature: Data) {
        self.type = type
        self.height = height
        self.round = round
        self.blockHash = blockHash
        self.signature = signature
    }

    /// The canonical encoding.
    public func encode(to w: inout BinaryWriter) {
        w.u8(type)
        w.u64(height)
        w.u32(round)
        if let blockHash {
            w.u8(1)
            w.fixed(blockHash)
        } else {
            w.u8(0)
        }
        w.fixed(signature)
    }

    /// Inverse of ``encode(to:)``.
    public init(from r: inout BinaryReader) throws(CodecError) {
        type = try r.u8("vote type")
        height = try r.u64("vote height")
        round = try r.u32("vote round")
        blockHash = try r.presence("vote block hash") ? try r.fixed(32, "vote block hash") : nil
        signature = try r.fixed(64, "vote signature")
    }
}

/// Proof that a validator signed two different votes of the same type for the same height
/// and round (equivocation). The two votes are in canonical order (ascending encodings), so
/// every node builds byte-identical evidence for the same offence.
///
/// Encoding: `32 validator ‖ voteA ‖ voteB`.
public struct DoubleVoteEvidence: Hashable, Sendable, BinaryCodable {
    /// The validator's address (its x-only public key).
    public var validator: Data
    /// The vote whose encoding sorts first.
    public var voteA: EvidenceVote
    /// The other vote.
    public var voteB: EvidenceVote

    /// Evidence of two votes by `validator`, put in canonical order. Does not verify.
    public init(validator: Data, _ a: EvidenceVote, _ b: EvidenceVote) {
        self.validator = validator
        if a.encoded.lexicographicallyPrecedes(b.encoded) {
            voteA = a
            voteB = b
        } else {
            voteA = b
            voteB = a
        }
    }

    /// The canonical encoding.
    public func encode(to w: inout BinaryWriter) {
        w.fixed(validator)
        voteA.encode(to: &w)
        voteB.encode(to: &w)
    }

    /// Inverse of ``encode(to:)`` (keeps the order as decoded; validation checks it).
    public init(from r: inout BinaryReader) throws(CodecError) {
        validator = try r.fixed(32, "evidence validator")
        voteA = try EvidenceVote(from: &r)
        voteB = try EvidenceVote(from: &r)
    }

    /// The offence this proves: `validator ‖ BE8 height ‖ BE4 round ‖ u8 type`. One offence
    /// is punished once, whatever pair of conflicting votes proves it.
    public var offenceKey: Data {
        var w = BinaryWriter()
        w.fixed(validator)
        w.u64(voteA.height)
        w.u32(voteA.round)
        w.u8(voteA.type)
        return w.data
    }

    /// RFC-6962 root over the SHA-256 of each encoding (the header's `evidenceHash`).
    public static func root(_ evidence: [DoubleVoteEvidence]) -> Data {
        MerkleTree.root(leaves: evidence.map { sha256($0.encoded) })
    }

    /// Why a piece of evidence does not prove an equivocation.
    public enum Problem: Error, Equatable, Sendable, CustomStringConvertible {
        case malformed(String)
        case notConflicting(String)
        case unknownValidator(Data)
        case badSignature
        case outOfRange(String)

        /// One line.
        public var description: String {
            switch self {
            case .malformed(let m): return "malformed evidence: \(m)"
            case .notConflicting(let m): return "votes do not conflict: \(m)"
            case .unknownValidator(let v): return "validator \(v.hexString) is not in the validator set"
            case .badSignature: return "a vote signature does not verify"
            case .outOfRange(let m): return "evidence out of range: \(m)"
            }
        }
    }

    /// The stateless evidence rules: a known validator, both votes of the same type,
    /// height and round, for different blocks, in canonical order, at a height in
    /// `initialHeight…maxHeight`, and (when `verifier` is given) both signatures valid.
    public func validate(chainID: String, validators: ChainValidatorSet, initialHeight: UInt64, maxHeight: UInt64,
                         verifier: (any EvidenceVerifier)?) throws(Problem) {
        let a = voteA, b = voteB
        guard a.type == EvidenceVote.prevote || a.type == EvidenceVote.precommit else {
            throw .malformed("vote type \(a.type)")
        }
        guard a.type == b.type else { throw .notConflicting("different vote types") }
        guard a.height == b.height, a.round == b.round else { throw .notConflicting("different height or round") }
        guard a.blockHash != b.blockHash else { throw .notConflicting("same block") }
        guard a.encoded.lexicographicallyPrecedes(b.encoded) else { throw .malformed("votes are not in canonical order") }
        guard a.height >= initialHeight, a.height <= maxHeight else {
            throw .outOfRange("height \(a.height) is outside \(initialHeight)…\(maxHeight)")
        }
        guard let v = validators.validator(address: validator) else { throw .unknownValidator(validator) }
        if let verifier {
            guard verifier.isValidVote(a, chainID: chainID, publicKey: v.publicKey),
                verifier.isValidVote(b, chainID: chainID, publicKey: v.publicKey)
            else { throw .badSignature }
        }
    }
}

/// Checks a vote signature in the consensus engine's format (implemented by the node's
/// commit verifier, which also knows the vote sign bytes).
public protocol EvidenceVerifier {
    /// Whether `vote.signature` is `publicKey`'s valid signature of that vote on `chainID`.
    func isValidVote(_ vote: EvidenceVote, chainID: String, publicKey: Data) -> Bool
}

extension Block {
    /// Most evidence entries in one block.
    public static let maxEvidence = 64

    /// The evidence rules of ``validate(tip:validators:maxBlockBytes:verifier:)``: the
    /// header commits to the list, no offence twice, each entry valid. A commit verifier
    /// that cannot check votes (not an ``EvidenceVerifier``) makes any evidence invalid:
    /// unverifiable evidence is never accepted.
    func validateEvidence(tip: ChainTip, validators: ChainValidatorSet, verifier: (any CommitVerifier)?) throws(BlockError) {
        guard header.evidenceHash == (evidence.isEmpty ? nil : DoubleVoteEvidence.root(evidence)) else {
            throw .wrongEvidenceHash
        }
        guard evidence.count <= Self.maxEvidence else {
            throw .invalidEvidence(index: Self.maxEvidence, "more than \(Self.maxEvidence) entries")
        }
        var evidenceVerifier: (any EvidenceVerifier)?
        if let verifier {
            guard let v = verifier as? any EvidenceVerifier else {
                if evidence.isEmpty { return }
                throw .invalidEvidence(index: 0, "this node cannot verify vote signatures")
            }
            evidenceVerifier = v
        }
        var seen: Set<Data> = []
        for (i, e) in evidence.enumerated() {
            guard seen.insert(e.offenceKey).inserted else { throw .invalidEvidence(index: i, "duplicate offence in the block") }
            do {
                try e.validate(chainID: tip.chainID, validators: validators, initialHeight: tip.initialHeight,
                               maxHeight: header.height, verifier: evidenceVerifier)
            } catch {
                throw .invalidEvidence(index: i, "\(error)")
            }
        }
    }
}
