import Foundation
import IshtarCrypto

/// A provider's batch of EOTS randomness for heights `start … start + count − 1` of one
/// chain, derived deterministically with ``EOTS/randomness(secretKey:chainID:height:)``
/// (PROTOCOL §4), with its Merkle root and every inclusion proof computed once — so tests,
/// the scenario driver and benches build commitments and votes in the chain's exact formats
/// without re-deriving the batch per vote.
public struct PubRandBatch: Sendable {
    /// The provider's key.
    public let fpKey: Schnorr.PrivateKey
    /// The chain.
    public let chainID: String
    /// First height.
    public let startHeight: UInt64
    /// Number of heights.
    public let count: UInt64
    /// The public randomness, in height order.
    public let publicRandomness: [Data]
    /// Their RFC-6962 Merkle root.
    public let root: Data
    /// Their inclusion proofs (index = height − start, total = count).
    public let proofs: [MerkleProof]

    /// Derives the batch: `count` HMACs and point multiplications, O(count log count) hashes.
    public init(fpKey: Schnorr.PrivateKey, chainID: String, startHeight: UInt64, count: UInt64) throws(IshtarCrypto.CryptoError) {
        guard count >= 1, count <= UInt64(Int32.max), !startHeight.addingReportingOverflow(count - 1).overflow else {
            throw .indexOutOfRange(field: "public randomness count", index: Int(clamping: count), count: Int(Int32.max))
        }
        self.fpKey = fpKey
        self.chainID = chainID
        self.startHeight = startHeight
        self.count = count
        let chain = Data(chainID.utf8)
        publicRandomness = (0..<count).map {
            EOTS.randomness(secretKey: fpKey, chainID: chain, height: startHeight + $0).public.rawRepresentation
        }
        (root, proofs) = MerkleTree.proofs(leaves: publicRandomness)
    }

    /// Whether `height` is in the batch.
    public func covers(_ height: UInt64) -> Bool { height >= startHeight && height - startHeight < count }

    /// The `finality/CommitPubRand` message (BIP-340 signature with zero auxiliary randomness,
    /// so it is deterministic).
    public func commitMessage() throws(IshtarCrypto.CryptoError) -> Message {
        let digest = CommitPubRand.signedDigest(startHeight: startHeight, count: count, root: root)
        let signature = try fpKey.signature(for: digest, auxiliaryRandomness: Data(count: 32))
        return CommitPubRand(fpKey: fpKey.publicKey.rawRepresentation, chainID: chainID, startHeight: startHeight,
                             count: count, root: root, signature: signature.rawRepresentation).message
    }

    /// The `AddFinalitySig` vote for `blockHash` at `height` (one HMAC, one point
    /// multiplication and one EOTS signature).
    public func vote(height: UInt64, blockHash: Data) throws(IshtarCrypto.CryptoError) -> AddFinalitySig {
        guard covers(height) else {
            throw .indexOutOfRange(field: "vote height", index: Int(clamping: height), count: Int(clamping: count))
        }
        let index = Int(height - startHeight)
        let secret = EOTS.randomness(secretKey: fpKey, chainID: Data(chainID.utf8), height: height).secret
        let signature = try EOTS.sign(privateKey: fpKey, secretRandomness: secret,
                                      message: try EOTS.finalityVoteMessage(height: height, blockHash: blockHash))
        return AddFinalitySig(fpKey: fpKey.publicKey.rawRepresentation, chainID: chainID, height: height,
                              publicRandomness: publicRandomness[index], proof: proofs[index], blockHash: blockHash,
                              signature: signature.rawRepresentation)
    }

    /// ``vote(height:blockHash:)`` as a transaction message.
    public func voteMessage(height: UInt64, blockHash: Data) throws(IshtarCrypto.CryptoError) -> Message {
        try vote(height: height, blockHash: blockHash).message
    }
}

extension FinalityModule {
    /// The `finality/CommitPubRand` message for heights `startHeight …` of `chainID` and the
    /// batch behind it (keep it to build votes cheaply; or regenerate it: it is deterministic).
    public static func commitPubRandMessage(
        fpKey: Schnorr.PrivateKey, chainID: String, startHeight: UInt64, count: UInt64
    ) throws(IshtarCrypto.CryptoError) -> (message: Message, batch: PubRandBatch) {
        let batch = try PubRandBatch(fpKey: fpKey, chainID: chainID, startHeight: startHeight, count: count)
        return (try batch.commitMessage(), batch)
    }

    /// The `finality/AddFinalitySig` message for `blockHash` at `height`, under the commitment
    /// `startHeight`/`count`. Re-derives the whole batch (O(count)); keep a ``PubRandBatch``
    /// to vote many times.
    public static func voteMessage(
        fpKey: Schnorr.PrivateKey, chainID: String, height: UInt64, blockHash: Data, startHeight: UInt64, count: UInt64
    ) throws(IshtarCrypto.CryptoError) -> Message {
        try PubRandBatch(fpKey: fpKey, chainID: chainID, startHeight: startHeight, count: count)
            .voteMessage(height: height, blockHash: blockHash)
    }

    /// `SHA256(BE8(height) ‖ blockHash)`: the 32-byte message whose BIP-340 signature
    /// `(R, s)` a vote is (EOTS signs `BE8(height) ‖ blockHash` hashed with SHA-256), so raw
    /// BIP-340 verification over this digest is exactly the chain's signature check.
    public static func voteDigest(height: UInt64, blockHash: Data) throws(IshtarCrypto.CryptoError) -> Data {
        EOTS.messageDigest(try EOTS.finalityVoteMessage(height: height, blockHash: blockHash))
    }
}
