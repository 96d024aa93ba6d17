import Foundation
import IshtarCrypto

/// One covenant member's signatures on a delegation (PROTOCOL §2, §3): a plain BIP-340
/// signature on the unbonding transaction, and on each slashing transaction one adaptor
/// signature per finality-provider key, encrypted under that key.
public struct CovenantSignatureSet: Hashable, Sendable {
    /// The covenant member's key.
    public var covenantKey: Schnorr.PublicKey
    /// Signature on the unbonding transaction (unbonding leaf of the staking output).
    public var unbondingSignature: Schnorr.Signature
    /// Adaptor signatures on the staking output's slashing transaction, by provider key.
    public var slashingAdaptorSignatures: [Schnorr.PublicKey: AdaptorSignature]
    /// Adaptor signatures on the unbonding output's slashing transaction, by provider key.
    public var unbondingSlashingAdaptorSignatures: [Schnorr.PublicKey: AdaptorSignature]

    /// A signature set from its parts.
    public init(
        covenantKey: Schnorr.PublicKey, unbondingSignature: Schnorr.Signature,
        slashingAdaptorSignatures: [Schnorr.PublicKey: AdaptorSignature],
        unbondingSlashingAdaptorSignatures: [Schnorr.PublicKey: AdaptorSignature]
    ) {
        self.covenantKey = covenantKey
        self.unbondingSignature = unbondingSignature
        self.slashingAdaptorSignatures = slashingAdaptorSignatures
        self.unbondingSlashingAdaptorSignatures = unbondingSlashingAdaptorSignatures
    }

    /// The adaptor signatures for the slashing transaction of `kind` (`.slashing` or
    /// `.unbondingSlashing`); empty for other kinds.
    public func adaptorSignatures(for kind: StakingTransactionKind) -> [Schnorr.PublicKey: AdaptorSignature] {
        switch kind {
        case .slashing: slashingAdaptorSignatures
        case .unbondingSlashing: unbondingSlashingAdaptorSignatures
        case .staking, .unbonding: [:]
        }
    }
}

/// Covenant adaptor signatures on slashing sighashes (PROTOCOL §3), with Ishtar's choice of
/// encryption key: the provider's x-only key lifted to even y.
public enum CovenantAdaptor {
    /// EncSign: the covenant member's adaptor signature of `sighash` encrypted under
    /// `finalityProviderKey`. Fresh auxiliary randomness unless given (32 bytes).
    public static func sign(
        covenantKey: Schnorr.PrivateKey, sighash: Data, finalityProviderKey: Schnorr.PublicKey,
        auxiliaryRandomness: Data? = nil
    ) throws(StakingError) -> AdaptorSignature {
        var generator = SystemRandomNumberGenerator()
        let aux = auxiliaryRandomness ?? Data((0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) })
        do {
            return try AdaptorSignature.encryptedSign(
                privateKey: covenantKey, encryptionKey: AdaptorSignature.encryptionKey(for: finalityProviderKey),
                message: sighash, auxiliaryRandomness: aux)
        } catch {
            throw .crypto(error)
        }
    }

    /// EncVerify: whether `signature` is `covenantKey`'s adaptor signature of `sighash` under
    /// `finalityProviderKey`.
    public static func isValid(
        _ signature: AdaptorSignature, covenantKey: Schnorr.PublicKey, sighash: Data, finalityProviderKey: Schnorr.PublicKey
    ) -> Bool {
        signature.isValid(
            publicKey: covenantKey, encryptionKey: AdaptorSignature.encryptionKey(for: finalityProviderKey), message: sighash)
    }

    /// Decrypts with the provider's secret (for instance extracted with `EOTS.extract` after a
    /// double vote) into the plain BIP-340 covenant signature that completes a slashing witness.
    public static func decrypt(_ signature: AdaptorSignature, finalityProviderSecret: Schnorr.PrivateKey) -> Schnorr.Signature {
        signature.decrypted(with: AdaptorSignature.decryptionKey(for: finalityProviderSecret))
    }

    /// Decrypts every covenant member's adaptor signature on the slashing transaction of `kind`
    /// made for the provider whose secret is `finalityProviderSecret`, keyed by covenant key;
    /// ready for ``StakingBuilder/stakingSlashingWitness(stakerSignature:finalityProviderSignatures:covenantSignatures:)``.
    /// Results that do not verify against `sighash` are dropped.
    public static func decryptAll(
        _ sets: [CovenantSignatureSet], kind: StakingTransactionKind, sighash: Data, finalityProviderSecret: Schnorr.PrivateKey
    ) -> [Schnorr.PublicKey: Schnorr.Signature] {
        let providerKey = finalityProviderSecret.publicKey
        var result = [Schnorr.PublicKey: Schnorr.Signature]()
        for set in sets {
            guard let adaptor = set.adaptorSignatures(for: kind)[providerKey] else { continue }
            let signature = decrypt(adaptor, finalityProviderSecret: finalityProviderSecret)
            if set.covenantKey.isValidSignature(signature, for: sighash) { result[set.covenantKey] = signature }
        }
        return result
    }
}

/// The covenant member's side: sign a delegation only after ``StakingValidation`` accepts it.
public enum CovenantSigner {
    /// Validates `delegation` under `parameters` (not requiring a covenant quorum yet), then
    /// produces `covenantKey`'s signatures on it. Throws the validation failure instead of
    /// signing anything wrong, and ``StakingError/unknownCovenantKey(_:)`` for a non-member.
    public static func sign(
        delegation: DelegationTransactions, parameters: StakingParameters, covenantKey: Schnorr.PrivateKey
    ) throws(StakingError) -> CovenantSignatureSet {
        let publicKey = covenantKey.publicKey
        guard parameters.covenantKeys.contains(publicKey) else { throw .unknownCovenantKey(publicKey) }
        let valid = try StakingValidation.validate(delegation: delegation, parameters: parameters)
        let unbonding = try StakingSigner.sign(sighash: valid.unbondingSighash, key: covenantKey)
        var slashing = [Schnorr.PublicKey: AdaptorSignature]()
        var unbondingSlashing = [Schnorr.PublicKey: AdaptorSignature]()
        for provider in delegation.finalityProviderKeys {
            slashing[provider] = try CovenantAdaptor.sign(
                covenantKey: covenantKey, sighash: valid.slashingSighash, finalityProviderKey: provider)
            unbondingSlashing[provider] = try CovenantAdaptor.sign(
                covenantKey: covenantKey, sighash: valid.unbondingSlashingSighash, finalityProviderKey: provider)
        }
        return CovenantSignatureSet(
            covenantKey: publicKey, unbondingSignature: unbonding, slashingAdaptorSignatures: slashing,
            unbondingSlashingAdaptorSignatures: unbondingSlashing)
    }
}
