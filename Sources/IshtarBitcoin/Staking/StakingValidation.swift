import Foundation
import IshtarCrypto

/// A delegation as the staker submits it: the staking transaction, the three pre-defined
/// transactions, the staker's signatures on both slashing transactions, and whatever covenant
/// signatures have been collected so far.
public struct DelegationTransactions: Hashable, Sendable {
    /// The staker's x-only key.
    public var stakerKey: Schnorr.PublicKey
    /// The finality providers delegated to (the chain accepts exactly one).
    public var finalityProviderKeys: [Schnorr.PublicKey]
    /// The staking timelock, in blocks.
    public var stakingTime: UInt16
    /// The declared staking value; must equal the staking output's value.
    public var stakingValue: Amount
    /// The staking transaction (its witness, if any, is irrelevant).
    public var stakingTransaction: Transaction
    /// The index of the staking output in the staking transaction.
    public var stakingOutputIndex: UInt32
    /// The unsigned unbonding transaction.
    public var unbondingTransaction: Transaction
    /// The slashing transaction of the staking output.
    public var slashingTransaction: Transaction
    /// The slashing transaction of the unbonding output.
    public var unbondingSlashingTransaction: Transaction
    /// The staker's signature on ``slashingTransaction`` (slashing leaf of the staking output).
    public var stakerSlashingSignature: Schnorr.Signature
    /// The staker's signature on ``unbondingSlashingTransaction`` (slashing leaf of the unbonding output).
    public var stakerUnbondingSlashingSignature: Schnorr.Signature
    /// Covenant signature sets collected so far (may be empty).
    public var covenantSignatures: [CovenantSignatureSet]

    /// A delegation from its parts.
    public init(
        stakerKey: Schnorr.PublicKey, finalityProviderKeys: [Schnorr.PublicKey], stakingTime: UInt16,
        stakingValue: Amount, stakingTransaction: Transaction, stakingOutputIndex: UInt32,
        unbondingTransaction: Transaction, slashingTransaction: Transaction, unbondingSlashingTransaction: Transaction,
        stakerSlashingSignature: Schnorr.Signature, stakerUnbondingSlashingSignature: Schnorr.Signature,
        covenantSignatures: [CovenantSignatureSet] = []
    ) {
        self.stakerKey = stakerKey
        self.finalityProviderKeys = finalityProviderKeys
        self.stakingTime = stakingTime
        self.stakingValue = stakingValue
        self.stakingTransaction = stakingTransaction
        self.stakingOutputIndex = stakingOutputIndex
        self.unbondingTransaction = unbondingTransaction
        self.slashingTransaction = slashingTransaction
        self.unbondingSlashingTransaction = unbondingSlashingTransaction
        self.stakerSlashingSignature = stakerSlashingSignature
        self.stakerUnbondingSlashingSignature = stakerUnbondingSlashingSignature
        self.covenantSignatures = covenantSignatures
    }

    /// The staking outpoint.
    public var stakingOutPoint: OutPoint { OutPoint(txid: stakingTransaction.txid, index: stakingOutputIndex) }
}

/// What ``StakingValidation/validate(delegation:parameters:requireCovenantQuorum:)`` proved,
/// with the values a caller needs next (so nobody recomputes them differently).
public struct ValidatedDelegation: Hashable, Sendable {
    /// The scripts and builders for this delegation.
    public let builder: StakingBuilder
    /// The staking outpoint.
    public let stakingOutPoint: OutPoint
    /// The unbonding output (value = staking − unbonding fee).
    public let unbondingOutput: TxOut
    /// Sighash of the unbonding transaction (unbonding leaf): what staker and covenant sign.
    public let unbondingSighash: Data
    /// Sighash of the staking output's slashing transaction (slashing leaf).
    public let slashingSighash: Data
    /// Sighash of the unbonding output's slashing transaction (slashing leaf).
    public let unbondingSlashingSighash: Data
    /// Covenant keys whose complete signature sets verified, ascending.
    public let validCovenantKeys: [Schnorr.PublicKey]

    /// Whether the valid covenant signatures reach the quorum.
    public var hasCovenantQuorum: Bool { validCovenantKeys.count >= builder.parameters.covenantQuorum }
}

/// THE validation of a delegation's Bitcoin side. The chain, the covenant signer and the CLI all
/// call ``validate(delegation:parameters:requireCovenantQuorum:)``; there is no other copy.
public enum StakingValidation {
    /// The number of finality-provider keys the chain accepts per delegation (PROTOCOL §1).
    public static let requiredFinalityProviderCount = 1

    /// Checks everything a chain or covenant must check about a delegation, in this order, and
    /// throws the first rule that fails:
    ///
    /// 1. the parameters are usable; exactly one provider key; all keys distinct;
    /// 2. staking value and time within the parameters' ranges;
    /// 3. the staking output exists, holds the declared value, and its script is exactly
    ///    P2TR(H, TapBranch(TapBranch(timelock, unbonding), slashing));
    /// 4. the unbonding transaction: version 2, lock time 0, one input = staking outpoint with
    ///    empty scriptSig and sequence 0xffffffff, one output = staking − unbonding fee to the
    ///    exact unbonding script;
    /// 5. both slashing transactions: same input rules (spending the staking output, resp.
    ///    unbonding output 0), two outputs: slashing script ≥ value × rate (half away from zero),
    ///    the exact change script, fee ≥ minimum slashing fee, no dust;
    /// 6. the staker's BIP-340 signatures on both slashing transactions (script-path sighash of
    ///    the slashing leaf);
    /// 7. every covenant signature set given: a committee key, once; its unbonding signature;
    ///    its adaptor signatures, one per provider, EncVerify'd under the provider's key;
    /// 8. with `requireCovenantQuorum`, at least `quorum` valid covenant sets.
    public static func validate(
        delegation: DelegationTransactions, parameters: StakingParameters, requireCovenantQuorum: Bool = false
    ) throws(StakingError) -> ValidatedDelegation {
        try parameters.validated()
        guard delegation.finalityProviderKeys.count == requiredFinalityProviderCount else {
            throw .wrongFinalityProviderCount(
                expected: requiredFinalityProviderCount, actual: delegation.finalityProviderKeys.count)
        }
        try StakingScripts.checkKeys(
            stakerKey: delegation.stakerKey, finalityProviderKeys: delegation.finalityProviderKeys,
            covenantKeys: parameters.covenantKeys, covenantQuorum: parameters.covenantQuorum)
        guard delegation.stakingValue >= parameters.minStakingValue, delegation.stakingValue <= parameters.maxStakingValue
        else {
            throw .stakingValueOutOfRange(
                value: delegation.stakingValue, min: parameters.minStakingValue, max: parameters.maxStakingValue)
        }
        guard delegation.stakingTime >= parameters.minStakingTime, delegation.stakingTime <= parameters.maxStakingTime else {
            throw .stakingTimeOutOfRange(
                time: delegation.stakingTime, min: parameters.minStakingTime, max: parameters.maxStakingTime)
        }
        let builder = try StakingBuilder(
            stakerKey: delegation.stakerKey, finalityProviderKeys: delegation.finalityProviderKeys,
            stakingTime: delegation.stakingTime, parameters: parameters)

        // 3. Staking output.
        let stakingOutputs = delegation.stakingTransaction.outputs
        let index = delegation.stakingOutputIndex
        guard index < stakingOutputs.count else {
            throw .stakingOutputIndexOutOfRange(index: index, outputCount: stakingOutputs.count)
        }
        let stakingOutput = stakingOutputs[Int(index)]
        guard stakingOutput.scriptPubKey == builder.scripts.pkScript else { throw .wrongStakingScript }
        guard stakingOutput.value == delegation.stakingValue else {
            throw .stakingValueMismatch(declared: delegation.stakingValue, actual: stakingOutput.value)
        }
        let stakingOutPoint = delegation.stakingOutPoint

        // 4. Unbonding transaction.
        let unbonding = delegation.unbondingTransaction
        try checkSpendShape(unbonding, kind: .unbonding, spending: stakingOutPoint, outputCount: 1)
        let unbondingOutput = unbonding.outputs[0]
        guard unbondingOutput.scriptPubKey == builder.unbonding.pkScript else { throw .wrongUnbondingScript }
        let expectedUnbonding = try builder.unbondingOutput(stakingValue: delegation.stakingValue)
        guard unbondingOutput.value == expectedUnbonding.value else {
            throw .unbondingFeeMismatch(expectedOutput: expectedUnbonding.value, actualOutput: unbondingOutput.value)
        }

        // 5. Slashing transactions.
        try checkSlashing(
            delegation.slashingTransaction, kind: .slashing, spending: stakingOutPoint, inputValue: stakingOutput.value,
            builder: builder)
        try checkSlashing(
            delegation.unbondingSlashingTransaction, kind: .unbondingSlashing,
            spending: OutPoint(txid: unbonding.txid, index: 0), inputValue: unbondingOutput.value, builder: builder)

        // 6. Staker signatures.
        let slashingSighash = try builder.slashingSighash(
            slashingTransaction: delegation.slashingTransaction, stakingValue: stakingOutput.value)
        let unbondingSlashingSighash = try builder.unbondingSlashingSighash(
            unbondingSlashingTransaction: delegation.unbondingSlashingTransaction, unbondingValue: unbondingOutput.value)
        guard delegation.stakerKey.isValidSignature(delegation.stakerSlashingSignature, for: slashingSighash) else {
            throw .invalidStakerSignature(.slashing)
        }
        guard delegation.stakerKey.isValidSignature(delegation.stakerUnbondingSlashingSignature, for: unbondingSlashingSighash)
        else {
            throw .invalidStakerSignature(.unbondingSlashing)
        }

        // 7. Covenant signatures.
        let unbondingSighash = try builder.unbondingSighash(
            unbondingTransaction: unbonding, stakingValue: stakingOutput.value)
        let committee = Set(parameters.covenantKeys)
        var signers = Set<Schnorr.PublicKey>()
        for set in delegation.covenantSignatures {
            guard committee.contains(set.covenantKey) else { throw .unknownCovenantKey(set.covenantKey) }
            guard signers.insert(set.covenantKey).inserted else { throw .duplicateCovenantSignature(set.covenantKey) }
            guard set.covenantKey.isValidSignature(set.unbondingSignature, for: unbondingSighash) else {
                throw .invalidCovenantUnbondingSignature(covenantKey: set.covenantKey)
            }
            for (kind, sighash) in [(StakingTransactionKind.slashing, slashingSighash), (.unbondingSlashing, unbondingSlashingSighash)] {
                let adaptors = set.adaptorSignatures(for: kind)
                // In key order: the error names the first unexpected key, the same on every node
                // (a dictionary's order differs between processes).
                for provider in adaptors.keys.sorted(by: { $0.rawRepresentation.lexicographicallyPrecedes($1.rawRepresentation) })
                where !delegation.finalityProviderKeys.contains(provider) {
                    throw .unexpectedCovenantAdaptorSignature(kind, covenantKey: set.covenantKey, finalityProviderKey: provider)
                }
                for provider in delegation.finalityProviderKeys {
                    guard let adaptor = adaptors[provider] else {
                        throw .missingCovenantAdaptorSignature(kind, covenantKey: set.covenantKey, finalityProviderKey: provider)
                    }
                    guard CovenantAdaptor.isValid(adaptor, covenantKey: set.covenantKey, sighash: sighash, finalityProviderKey: provider)
                    else {
                        throw .invalidCovenantAdaptorSignature(kind, covenantKey: set.covenantKey, finalityProviderKey: provider)
                    }
                }
            }
        }
        if requireCovenantQuorum, signers.count < parameters.covenantQuorum {
            throw .covenantQuorumNotMet(required: parameters.covenantQuorum, actual: signers.count)
        }
        return ValidatedDelegation(
            builder: builder, stakingOutPoint: stakingOutPoint, unbondingOutput: unbondingOutput,
            unbondingSighash: unbondingSighash, slashingSighash: slashingSighash,
            unbondingSlashingSighash: unbondingSlashingSighash, validCovenantKeys: StakingScripts.sorted(Array(signers)))
    }

    /// Version 2, lock time 0, exactly one input spending `outPoint` with an empty scriptSig and
    /// sequence 0xffffffff, exactly `outputCount` outputs.
    static func checkSpendShape(
        _ tx: Transaction, kind: StakingTransactionKind, spending outPoint: OutPoint, outputCount: Int
    ) throws(StakingError) {
        guard tx.version == 2 else { throw .wrongVersion(kind, version: tx.version) }
        guard tx.lockTime == 0 else { throw .wrongLockTime(kind, lockTime: tx.lockTime) }
        guard tx.inputs.count == 1 else { throw .wrongInputCount(kind, count: tx.inputs.count) }
        let input = tx.inputs[0]
        guard input.previousOutput == outPoint else { throw .wrongInput(kind, expected: outPoint, actual: input.previousOutput) }
        guard input.sequence == TxIn.finalSequence else { throw .wrongSequence(kind, sequence: input.sequence) }
        guard input.scriptSig.bytes.isEmpty else { throw .nonEmptyScriptSig(kind) }
        guard tx.outputs.count == outputCount else {
            throw .wrongOutputCount(kind, expected: outputCount, actual: tx.outputs.count)
        }
    }

    /// The §2 slashing rules for a transaction spending an output worth `inputValue`.
    static func checkSlashing(
        _ tx: Transaction, kind: StakingTransactionKind, spending outPoint: OutPoint, inputValue: Amount,
        builder: StakingBuilder
    ) throws(StakingError) {
        let parameters = builder.parameters
        try checkSpendShape(tx, kind: kind, spending: outPoint, outputCount: 2)
        let slashing = tx.outputs[0]
        let change = tx.outputs[1]
        guard slashing.scriptPubKey == parameters.slashingPkScript else { throw .wrongSlashingScript(kind) }
        let required = parameters.slashingRate.slashedAmount(of: inputValue)
        guard slashing.value >= required else {
            throw .slashingOutputBelowRate(kind, expectedAtLeast: required, actual: slashing.value)
        }
        guard change.scriptPubKey == builder.slashingChange.pkScript else { throw .wrongSlashingChangeScript(kind) }
        let spent: Amount
        do {
            spent = try slashing.value + change.value
        } catch {
            throw .outputsExceedInput(kind, input: inputValue, outputs: .maxMoney)
        }
        guard spent <= inputValue else { throw .outputsExceedInput(kind, input: inputValue, outputs: spent) }
        let fee = try checkedSubtract(inputValue, spent)
        guard fee >= parameters.minSlashingFee else {
            throw .slashingFeeTooLow(kind, minimum: parameters.minSlashingFee, actual: fee)
        }
        for (index, output) in tx.outputs.enumerated() {
            let threshold = dustThreshold(for: output.scriptPubKey)
            if output.value < threshold { throw .dustOutput(kind, index: index, value: output.value, threshold: threshold) }
        }
    }

    /// Bitcoin Core's dust relay fee, 3,000 sat/kvB.
    public static let dustRelayFeePerKvB: Int64 = 3_000

    /// Bitcoin Core's `GetDustThreshold` at the default dust relay fee: 0 for unspendable
    /// outputs (OP_RETURN), else 3 sat/vB × (output size + the size of a typical input spending
    /// it: 67 vbytes for witness programs, 148 bytes otherwise). P2TR: 330 sat.
    public static func dustThreshold(for script: Script) -> Amount {
        if script.isUnspendable { return .zero }
        return dustThreshold(forScriptLength: script.bytes.count, witnessProgram: script.witnessProgram != nil)
    }

    /// ``dustThreshold(for:)`` for a spendable script of `length` bytes.
    static func dustThreshold(forScriptLength length: Int, witnessProgram: Bool) -> Amount {
        let compactSize = length < 0xfd ? 1 : (length <= 0xffff ? 3 : 5)
        var size = Int64(8 + compactSize + length)
        size += witnessProgram ? 32 + 4 + 1 + 107 / 4 + 4 : 32 + 4 + 1 + 107 + 4
        return (try? Amount(sats: dustRelayFeePerKvB * size / 1_000)) ?? .zero
    }
}
