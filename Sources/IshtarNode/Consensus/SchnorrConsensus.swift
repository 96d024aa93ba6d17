import Foundation
import IshtarChain
import IshtarConsensus
import IshtarCrypto

/// The tag of the BIP-340 message a validator signs: `TaggedHash("ishtar/consensus", signBytes)`.
///
/// Hashing the engine's canonical sign bytes under a dedicated tag (rather than signing them
/// raw) gives a fixed 32-byte BIP-340 message and keeps consensus signatures disjoint from
/// every other thing an Ishtar key signs (transactions use `ishtar/tx`).
public enum ConsensusSigning {
    public static let tag = "ishtar/consensus"

    /// The 32-byte BIP-340 message for canonical consensus sign bytes.
    public static func digest(_ signBytes: Data) -> Data { TaggedHash.hash(tag: tag, data: signBytes) }
}

/// Production ``ConsensusSigner``: BIP-340 Schnorr with the validator's secp256k1 key.
/// The validator address is the 32-byte x-only public key (as in the chain's genesis).
public struct SchnorrConsensusSigner: ConsensusSigner {
    private let key: Schnorr.PrivateKey
    public let validatorAddress: Data

    public init(key: Schnorr.PrivateKey) {
        self.key = key
        self.validatorAddress = key.publicKey.rawRepresentation
    }

    /// Signs with fresh auxiliary randomness (BIP-340's recommendation against fault attacks);
    /// the engine never needs to re-sign identical bytes, its sign guard re-uses the record.
    public func sign(_ bytes: Data) throws(ConsensusError) -> Data {
        do {
            return try key.signature(for: ConsensusSigning.digest(bytes)).rawRepresentation
        } catch {
            throw .signingFailed("BIP-340 signing failed: \(error)")
        }
    }
}

/// Production ``SignatureVerifier``: 32-byte x-only keys, 64-byte BIP-340 signatures.
/// Returns `false` for any malformed key or signature (they come from peers).
public struct SchnorrSignatureVerifier: SignatureVerifier {
    public init() {}

    public func verify(signature: Data, message: Data, by validator: Validator) -> Bool {
        guard signature.count == 64, validator.publicKey.count == 32,
            let key = try? Schnorr.PublicKey(rawRepresentation: validator.publicKey),
            let sig = try? Schnorr.Signature(rawRepresentation: signature)
        else { return false }
        return key.isValidSignature(sig, for: ConsensusSigning.digest(message))
    }
}

/// The chain's ``CommitVerifier`` built on the consensus vote sign bytes: a commit signature
/// is valid iff it is a valid precommit of the engine for `(height, round, blockHash)`.
public struct ConsensusCommitVerifier: CommitVerifier {
    public init() {}

    public func isValid(_ signature: CommitSignature, of commit: CommitInfo, chainID: String, publicKey: Data) -> Bool {
        guard let chain = try? ChainID(chainID), let hash = try? BlockHash(commit.blockHash) else { return false }
        let bytes = CanonicalEncoding.voteSignBytes(
            chainID: chain, type: .precommit, height: commit.height, round: commit.round, value: hash)
        let validator = Validator(address: signature.address, publicKey: publicKey, power: 1)
        return SchnorrSignatureVerifier().verify(signature: signature.signature, message: bytes, by: validator)
    }
}

extension ConsensusCommitVerifier: EvidenceVerifier {
    /// A vote in evidence is valid iff it is the engine's vote with those fields, signed.
    public func isValidVote(_ vote: EvidenceVote, chainID: String, publicKey: Data) -> Bool {
        guard let chain = try? ChainID(chainID), let type = VoteType(rawValue: vote.type) else { return false }
        var value: BlockHash?
        if let h = vote.blockHash {
            guard let hash = try? BlockHash(h) else { return false }
            value = hash
        }
        let bytes = CanonicalEncoding.voteSignBytes(chainID: chain, type: type, height: vote.height, round: vote.round, value: value)
        let validator = Validator(address: publicKey, publicKey: publicKey, power: 1)
        return SchnorrSignatureVerifier().verify(signature: vote.signature, message: bytes, by: validator)
    }
}

/// Conversions between the chain's types and the engine's.
public enum ConsensusMapping {
    /// The engine's validator set for the chain's (address = public key, priorities zero:
    /// the genesis state of the proposer rotation).
    public static func validatorSet(_ set: ChainValidatorSet) throws(ConsensusError) -> ValidatorSet {
        try ValidatorSet(set.validators.map { Validator(address: $0.address, publicKey: $0.publicKey, power: $0.power) })
    }

    /// The chain's `CommitInfo` for an engine certificate (signatures ascending by address,
    /// which is the certificate's order).
    public static func commitInfo(_ c: CommitCertificate) -> CommitInfo {
        CommitInfo(
            height: c.height, round: c.round, blockHash: c.value.bytes,
            signatures: c.precommits.map { CommitSignature(address: $0.vote.validator, signature: $0.signature) })
    }

    /// The chain's evidence for the engine's duplicate-vote evidence.
    public static func evidence(_ e: DuplicateVoteEvidence) -> DoubleVoteEvidence {
        func vote(_ sv: SignedVote) -> EvidenceVote {
            EvidenceVote(type: sv.vote.type.rawValue, height: sv.vote.height, round: sv.vote.round,
                         blockHash: sv.vote.value?.bytes, signature: sv.signature)
        }
        return DoubleVoteEvidence(validator: e.validator, vote(e.voteA), vote(e.voteB))
    }

    /// The engine certificate described by a chain `CommitInfo` (unverified).
    public static func certificate(_ info: CommitInfo) throws(ConsensusError) -> CommitCertificate {
        let hash = try BlockHash(info.blockHash)
        return CommitCertificate(
            height: info.height, round: info.round, value: hash,
            precommits: info.signatures.map {
                SignedVote(
                    vote: Vote(type: .precommit, height: info.height, round: info.round, value: hash, validator: $0.address),
                    signature: $0.signature)
            })
    }
}
