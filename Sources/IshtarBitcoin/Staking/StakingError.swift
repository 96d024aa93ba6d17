import IshtarCrypto

/// Which of a delegation's Bitcoin transactions a check concerns.
public enum StakingTransactionKind: String, Sendable, Hashable, Codable, CustomStringConvertible {
    /// The staking transaction, which creates the staking output.
    case staking
    /// The unbonding transaction, spending the staking output through the unbonding leaf.
    case unbonding
    /// The slashing transaction spending the staking output.
    case slashing
    /// The slashing transaction spending the unbonding output.
    case unbondingSlashing = "unbonding_slashing"

    /// For example "unbonding slashing transaction".
    public var description: String {
        switch self {
        case .staking: "staking transaction"
        case .unbonding: "unbonding transaction"
        case .slashing: "slashing transaction"
        case .unbondingSlashing: "unbonding slashing transaction"
        }
    }
}

/// Every way a staking script, transaction, signature or parameter set can be wrong
/// (PROTOCOL §1, §2, §6). One enum for the whole staking domain, so the chain, the covenant
/// signer and the CLI report the same reason for the same defect.
public enum StakingError: Error, Equatable, Sendable {
    // MARK: Parameters and keys

    /// The staking parameters themselves are inconsistent (the reason says which rule).
    case invalidParameters(reason: String)
    /// A key appears twice among staker, finality-provider and covenant keys (§1: all distinct).
    case duplicateKey(Schnorr.PublicKey)
    /// No finality-provider key was given; the slashing leaf needs at least one.
    case noFinalityProviderKeys
    /// The chain accepts exactly `expected` finality-provider keys per delegation (§1), got `actual`.
    case wrongFinalityProviderCount(expected: Int, actual: Int)
    /// The covenant quorum must be between 1 and the number of covenant keys.
    case invalidCovenantQuorum(quorum: Int, keyCount: Int)
    /// A relative timelock of zero blocks locks nothing; `blocks` must be 1…65535.
    case invalidTimelock(blocks: UInt16)
    /// The staking value is outside the chain's [min, max] stake.
    case stakingValueOutOfRange(value: Amount, min: Amount, max: Amount)
    /// The staking time (blocks) is outside the chain's [min, max] staking time.
    case stakingTimeOutOfRange(time: UInt16, min: UInt16, max: UInt16)

    // MARK: Staking transaction

    /// The declared staking output index does not exist in the staking transaction.
    case stakingOutputIndexOutOfRange(index: UInt32, outputCount: Int)
    /// The staking output's value differs from the declared staking value.
    case stakingValueMismatch(declared: Amount, actual: Amount)
    /// The staking output's script is not P2TR(H, timelock/unbonding/slashing) for these keys.
    case wrongStakingScript

    // MARK: Transaction shape (§2)

    /// The transaction's version is not 2.
    case wrongVersion(StakingTransactionKind, version: UInt32)
    /// The transaction's lock time is not 0.
    case wrongLockTime(StakingTransactionKind, lockTime: UInt32)
    /// The transaction must have exactly one input.
    case wrongInputCount(StakingTransactionKind, count: Int)
    /// The transaction has the wrong number of outputs (unbonding: 1, slashing: 2).
    case wrongOutputCount(StakingTransactionKind, expected: Int, actual: Int)
    /// The transaction's input spends another output than the one it must spend.
    case wrongInput(StakingTransactionKind, expected: OutPoint, actual: OutPoint)
    /// The input's sequence is not 0xffffffff.
    case wrongSequence(StakingTransactionKind, sequence: UInt32)
    /// The input's scriptSig is not empty (the spend is segwit-only).
    case nonEmptyScriptSig(StakingTransactionKind)

    // MARK: Unbonding

    /// The unbonding output's script is not P2TR(H, timelock(unbondingTime), slashing).
    case wrongUnbondingScript
    /// The unbonding output must be staking value − unbonding fee exactly.
    case unbondingFeeMismatch(expectedOutput: Amount, actualOutput: Amount)

    // MARK: Slashing

    /// Output 0 of a slashing transaction does not pay the chain's slashing script.
    case wrongSlashingScript(StakingTransactionKind)
    /// Output 0 of a slashing transaction pays less than value × slashing rate (rounded half away from zero).
    case slashingOutputBelowRate(StakingTransactionKind, expectedAtLeast: Amount, actual: Amount)
    /// Output 1 of a slashing transaction is not P2TR(H, `<staker> CHECKSIGVERIFY <unbondingTime> CSV`).
    case wrongSlashingChangeScript(StakingTransactionKind)
    /// The slashing transaction's outputs add up to more than its input.
    case outputsExceedInput(StakingTransactionKind, input: Amount, outputs: Amount)
    /// The slashing transaction's fee is below the chain's minimum slashing fee.
    case slashingFeeTooLow(StakingTransactionKind, minimum: Amount, actual: Amount)
    /// Output `index` is below Bitcoin Core's dust threshold (3 sat/vB), so it would not relay.
    case dustOutput(StakingTransactionKind, index: Int, value: Amount, threshold: Amount)

    // MARK: Signatures

    /// The staker's signature does not verify (BIP-340 over the slashing leaf's script-path sighash).
    case invalidStakerSignature(StakingTransactionKind)
    /// A covenant signature came from a key outside the covenant committee.
    case unknownCovenantKey(Schnorr.PublicKey)
    /// Two covenant signature sets came from the same covenant key.
    case duplicateCovenantSignature(Schnorr.PublicKey)
    /// A covenant member's signature on the unbonding transaction does not verify.
    case invalidCovenantUnbondingSignature(covenantKey: Schnorr.PublicKey)
    /// A covenant member gave no adaptor signature for one finality-provider key.
    case missingCovenantAdaptorSignature(
        StakingTransactionKind, covenantKey: Schnorr.PublicKey, finalityProviderKey: Schnorr.PublicKey)
    /// A covenant adaptor signature is for a key that is not one of the delegation's providers.
    case unexpectedCovenantAdaptorSignature(
        StakingTransactionKind, covenantKey: Schnorr.PublicKey, finalityProviderKey: Schnorr.PublicKey)
    /// A covenant adaptor signature fails EncVerify under the finality provider's key.
    case invalidCovenantAdaptorSignature(
        StakingTransactionKind, covenantKey: Schnorr.PublicKey, finalityProviderKey: Schnorr.PublicKey)
    /// Fewer valid covenant signatures than the quorum.
    case covenantQuorumNotMet(required: Int, actual: Int)
    /// A witness needs `required` signatures of a group but only `available` were given.
    case notEnoughSignatures(group: String, required: Int, available: Int)
    /// A signature was given for a key the spent leaf does not contain.
    case signatureForUnknownKey(Schnorr.PublicKey)

    // MARK: Withdrawal

    /// The key offered to sign a withdrawal is not the staker key of the delegation.
    case notTheStaker(expected: Schnorr.PublicKey, actual: Schnorr.PublicKey)
    /// The output a withdrawal would spend does not exist in the delegation's transaction
    /// (for example a slashing transaction without its change output).
    case missingWithdrawableOutput(WithdrawalSource)
    /// After the fee, a withdrawal would pay less than the destination's dust threshold.
    case withdrawalTooSmall(value: Amount, fee: Amount, threshold: Amount)

    // MARK: Plumbing

    /// An amount computation left the valid range (negative or above 21 million BTC).
    case amountOverflow
    /// A BIP-341 signature hash could not be computed.
    case sighash(SighashError)
    /// A taproot construction failed.
    case taproot(TaprootError)
    /// A signing or key operation failed.
    case crypto(IshtarCrypto.CryptoError)
}

extension StakingError: CustomStringConvertible {
    /// One line naming the rule that failed.
    public var description: String {
        switch self {
        case .invalidParameters(let reason):
            return "invalid staking parameters: \(reason)"
        case .duplicateKey(let key):
            return "staker, finality-provider and covenant keys must be distinct: \(key) appears twice"
        case .noFinalityProviderKeys:
            return "at least one finality-provider key is required"
        case .wrongFinalityProviderCount(let expected, let actual):
            return "a delegation must name exactly \(expected) finality provider(s), got \(actual)"
        case .invalidCovenantQuorum(let quorum, let keyCount):
            return "covenant quorum \(quorum) is not within 1…\(keyCount) (the number of covenant keys)"
        case .invalidTimelock(let blocks):
            return "relative timelock must be 1…65535 blocks, got \(blocks)"
        case .stakingValueOutOfRange(let value, let min, let max):
            return "staking value \(value.sats) sat is outside [\(min.sats), \(max.sats)] sat"
        case .stakingTimeOutOfRange(let time, let min, let max):
            return "staking time \(time) blocks is outside [\(min), \(max)] blocks"
        case .stakingOutputIndexOutOfRange(let index, let count):
            return "staking output index \(index) is out of range (the staking transaction has \(count) outputs)"
        case .stakingValueMismatch(let declared, let actual):
            return "staking output holds \(actual.sats) sat, but the delegation declares \(declared.sats) sat"
        case .wrongStakingScript:
            return "staking output script is not the taproot output of the timelock, unbonding and slashing leaves for these keys"
        case .wrongVersion(let kind, let version):
            return "\(kind) must have version 2, has \(version)"
        case .wrongLockTime(let kind, let lockTime):
            return "\(kind) must have lock time 0, has \(lockTime)"
        case .wrongInputCount(let kind, let count):
            return "\(kind) must have exactly one input, has \(count)"
        case .wrongOutputCount(let kind, let expected, let actual):
            return "\(kind) must have exactly \(expected) output(s), has \(actual)"
        case .wrongInput(let kind, let expected, let actual):
            return "\(kind) must spend \(expected), spends \(actual)"
        case .wrongSequence(let kind, let sequence):
            return "\(kind) input must have sequence 0xffffffff, has 0x\(String(sequence, radix: 16))"
        case .nonEmptyScriptSig(let kind):
            return "\(kind) input must have an empty scriptSig"
        case .wrongUnbondingScript:
            return "unbonding output script is not the taproot output of the unbonding timelock and slashing leaves"
        case .unbondingFeeMismatch(let expected, let actual):
            return "unbonding output must be staking value − unbonding fee = \(expected.sats) sat, is \(actual.sats) sat"
        case .wrongSlashingScript(let kind):
            return "\(kind) output 0 does not pay the chain's slashing script"
        case .slashingOutputBelowRate(let kind, let expected, let actual):
            return "\(kind) output 0 pays \(actual.sats) sat, below value × slashing rate = \(expected.sats) sat"
        case .wrongSlashingChangeScript(let kind):
            return "\(kind) output 1 is not the staker's change output locked for the unbonding time"
        case .outputsExceedInput(let kind, let input, let outputs):
            return "\(kind) outputs (\(outputs.sats) sat) exceed its input (\(input.sats) sat)"
        case .slashingFeeTooLow(let kind, let minimum, let actual):
            return "\(kind) fee \(actual.sats) sat is below the minimum slashing fee \(minimum.sats) sat"
        case .dustOutput(let kind, let index, let value, let threshold):
            return "\(kind) output \(index) of \(value.sats) sat is dust (threshold \(threshold.sats) sat)"
        case .invalidStakerSignature(let kind):
            return "staker signature on the \(kind) does not verify"
        case .unknownCovenantKey(let key):
            return "\(key) is not a covenant committee key"
        case .duplicateCovenantSignature(let key):
            return "covenant key \(key) signed more than once"
        case .invalidCovenantUnbondingSignature(let key):
            return "covenant \(key)'s signature on the unbonding transaction does not verify"
        case .missingCovenantAdaptorSignature(let kind, let covenantKey, let providerKey):
            return "covenant \(covenantKey) gave no adaptor signature on the \(kind) for provider \(providerKey)"
        case .unexpectedCovenantAdaptorSignature(let kind, let covenantKey, let providerKey):
            return "covenant \(covenantKey) gave an adaptor signature on the \(kind) for \(providerKey), which is not a provider of this delegation"
        case .invalidCovenantAdaptorSignature(let kind, let covenantKey, let providerKey):
            return "covenant \(covenantKey)'s adaptor signature on the \(kind) fails EncVerify under provider \(providerKey)"
        case .covenantQuorumNotMet(let required, let actual):
            return "covenant quorum not met: \(actual) of \(required) required signatures"
        case .notEnoughSignatures(let group, let required, let available):
            return "witness needs \(required) \(group) signature(s), only \(available) given"
        case .signatureForUnknownKey(let key):
            return "a signature was given for \(key), which the spent leaf does not contain"
        case .notTheStaker(let expected, let actual):
            return "the signing key \(actual) is not the delegation's staker key \(expected)"
        case .missingWithdrawableOutput(let source):
            return "the delegation's transactions hold no \(source) output to withdraw"
        case .withdrawalTooSmall(let value, let fee, let threshold):
            return "withdrawing \(value.sats) sat with a fee of \(fee.sats) sat leaves less than the dust threshold of \(threshold.sats) sat"
        case .amountOverflow:
            return "amount arithmetic left the valid range (0 … 21,000,000 BTC)"
        case .sighash(let error):
            return "cannot compute the signature hash: \(error)"
        case .taproot(let error):
            return "taproot construction failed: \(error)"
        case .crypto(let error):
            return "cryptographic operation failed: \(error)"
        }
    }
}
