import Foundation
import IshtarCrypto

/// Everything needed to build a delegation's Bitcoin transactions (PROTOCOL §2) for one staker,
/// provider set and staking time under the chain's parameters: the scripts of the staking,
/// unbonding and slashing-change outputs, the unsigned transactions, their script-path
/// sighashes and the witnesses that spend each leaf.
public struct StakingBuilder: Hashable, Sendable {
    /// The chain's parameters the transactions follow.
    public let parameters: StakingParameters
    /// The staking output's leaves and taproot output.
    public let scripts: StakingScripts
    /// The unbonding output's leaves and taproot output.
    public let unbonding: UnbondingScripts
    /// The slashing transactions' change output (the same for both slashing transactions).
    public let slashingChange: SlashingChangeScripts

    /// The scripts for this staker, provider set and staking time. Checks the §1 key rules
    /// (distinct keys, a provider, a usable quorum, nonzero timelocks), not the chain's ranges:
    /// ``StakingValidation`` does that.
    public init(
        stakerKey: Schnorr.PublicKey, finalityProviderKeys: [Schnorr.PublicKey], stakingTime: UInt16,
        parameters: StakingParameters
    ) throws(StakingError) {
        self.parameters = parameters
        scripts = try StakingScripts(
            stakerKey: stakerKey, finalityProviderKeys: finalityProviderKeys, covenantKeys: parameters.covenantKeys,
            covenantQuorum: parameters.covenantQuorum, stakingTime: stakingTime)
        unbonding = try UnbondingScripts(staking: scripts, unbondingTime: parameters.unbondingTime)
        slashingChange = try SlashingChangeScripts(stakerKey: stakerKey, unbondingTime: parameters.unbondingTime)
    }

    // MARK: Outputs

    /// The staking output of `value`.
    public func stakingOutput(value: Amount) -> TxOut { TxOut(value: value, scriptPubKey: scripts.pkScript) }

    /// The unbonding output for a stake of `stakingValue`: staking value − unbonding fee.
    public func unbondingOutput(stakingValue: Amount) throws(StakingError) -> TxOut {
        TxOut(value: try checkedSubtract(stakingValue, parameters.unbondingFee), scriptPubKey: unbonding.pkScript)
    }

    // MARK: Transactions

    /// The unsigned unbonding transaction: version 2, lock time 0, the staking outpoint with
    /// sequence 0xffffffff, one output of staking value − unbonding fee to the unbonding output.
    public func unbondingTransaction(stakingOutPoint: OutPoint, stakingValue: Amount) throws(StakingError) -> Transaction {
        Transaction(
            version: 2, inputs: [TxIn(previousOutput: stakingOutPoint, sequence: TxIn.finalSequence)],
            outputs: [try unbondingOutput(stakingValue: stakingValue)], lockTime: 0)
    }

    /// The unsigned slashing transaction of the staking output.
    public func slashingTransaction(stakingOutPoint: OutPoint, stakingValue: Amount) throws(StakingError) -> Transaction {
        try slashingTransaction(spending: stakingOutPoint, value: stakingValue, kind: .slashing)
    }

    /// The unsigned slashing transaction of `unbondingTransaction`'s output 0.
    public func unbondingSlashingTransaction(unbondingTransaction: Transaction) throws(StakingError) -> Transaction {
        guard let output = unbondingTransaction.outputs.first else {
            throw .wrongOutputCount(.unbonding, expected: 1, actual: 0)
        }
        return try slashingTransaction(
            spending: OutPoint(txid: unbondingTransaction.txid, index: 0), value: output.value, kind: .unbondingSlashing)
    }

    /// A slashing transaction of an output worth `value`: out 0 pays the slashing script
    /// value × rate (rounded half away from zero), the fee is exactly the minimum slashing fee,
    /// out 1 is the change. Throws if the change would be dust.
    public func slashingTransaction(spending outPoint: OutPoint, value: Amount, kind: StakingTransactionKind) throws(StakingError)
        -> Transaction
    {
        let slashed = parameters.slashingRate.slashedAmount(of: value)
        let change = try checkedSubtract(try checkedSubtract(value, slashed), parameters.minSlashingFee)
        let outputs = [
            TxOut(value: slashed, scriptPubKey: parameters.slashingPkScript),
            TxOut(value: change, scriptPubKey: slashingChange.pkScript),
        ]
        for (index, output) in outputs.enumerated() {
            let threshold = StakingValidation.dustThreshold(for: output.scriptPubKey)
            if output.value < threshold {
                throw .dustOutput(kind, index: index, value: output.value, threshold: threshold)
            }
        }
        return Transaction(
            version: 2, inputs: [TxIn(previousOutput: outPoint, sequence: TxIn.finalSequence)], outputs: outputs,
            lockTime: 0)
    }

    /// An unsigned transaction spending a timelocked output (staking timelock, unbonding timelock
    /// or slashing change) after `blocks`: version 2, sequence = `blocks` (BIP-68 block count).
    public static func timelockSpendTransaction(spending outPoint: OutPoint, blocks: UInt16, outputs: [TxOut]) -> Transaction {
        Transaction(
            version: 2, inputs: [TxIn(previousOutput: outPoint, sequence: UInt32(blocks))], outputs: outputs, lockTime: 0)
    }

    // MARK: Sighashes (BIP-341 script path, SIGHASH_DEFAULT, input 0)

    /// The script-path sighash of input 0 of `transaction`, spending `prevout` through `leaf`.
    public static func sighash(transaction: Transaction, prevout: TxOut, leaf: TapLeaf) throws(StakingError) -> Data {
        do {
            let sighasher = try TaprootSighasher(transaction: transaction, prevouts: [prevout])
            return try sighasher.signatureHash(inputIndex: 0, hashType: .default, leafHash: leaf.hash)
        } catch {
            throw .sighash(error)
        }
    }

    /// What the staker and the covenant sign on the unbonding transaction (unbonding leaf).
    public func unbondingSighash(unbondingTransaction: Transaction, stakingValue: Amount) throws(StakingError) -> Data {
        try Self.sighash(transaction: unbondingTransaction, prevout: stakingOutput(value: stakingValue), leaf: scripts.unbondingLeaf)
    }

    /// What staker, provider and covenant sign on the staking output's slashing transaction (slashing leaf).
    public func slashingSighash(slashingTransaction: Transaction, stakingValue: Amount) throws(StakingError) -> Data {
        try Self.sighash(transaction: slashingTransaction, prevout: stakingOutput(value: stakingValue), leaf: scripts.slashingLeaf)
    }

    /// What staker, provider and covenant sign on the unbonding output's slashing transaction.
    public func unbondingSlashingSighash(unbondingSlashingTransaction: Transaction, unbondingValue: Amount) throws(StakingError)
        -> Data
    {
        try Self.sighash(
            transaction: unbondingSlashingTransaction,
            prevout: TxOut(value: unbondingValue, scriptPubKey: unbonding.pkScript), leaf: unbonding.slashingLeaf)
    }

    /// What the staker signs to withdraw through the staking output's timelock leaf.
    public func stakingTimelockSighash(transaction: Transaction, stakingValue: Amount) throws(StakingError) -> Data {
        try Self.sighash(transaction: transaction, prevout: stakingOutput(value: stakingValue), leaf: scripts.timelockLeaf)
    }

    /// What the staker signs to withdraw through the unbonding output's timelock leaf.
    public func unbondingTimelockSighash(transaction: Transaction, unbondingValue: Amount) throws(StakingError) -> Data {
        try Self.sighash(
            transaction: transaction, prevout: TxOut(value: unbondingValue, scriptPubKey: unbonding.pkScript),
            leaf: unbonding.timelockLeaf)
    }

    /// What the staker signs to take a slashing transaction's change after the unbonding time.
    public func slashingChangeSighash(transaction: Transaction, changeValue: Amount) throws(StakingError) -> Data {
        try Self.sighash(
            transaction: transaction, prevout: TxOut(value: changeValue, scriptPubKey: slashingChange.pkScript),
            leaf: slashingChange.timelockLeaf)
    }

    // MARK: Witnesses (PROTOCOL §2)

    /// Staking timelock path: `[staker sig, script, control block]`.
    public func stakingTimelockWitness(stakerSignature: Schnorr.Signature) throws(StakingError) -> [Data] {
        try Self.witness(stack: [stakerSignature.rawRepresentation], output: scripts.output, leaf: scripts.timelockLeaf)
    }

    /// Unbonding path of the staking output: exactly `quorum` covenant signatures (covenant keys
    /// descending, empty items for the others), the staker's, the script, the control block.
    public func unbondingWitness(
        stakerSignature: Schnorr.Signature, covenantSignatures: [Schnorr.PublicKey: Schnorr.Signature]
    ) throws(StakingError) -> [Data] {
        let covenant = try Self.multisigStack(
            keys: parameters.covenantKeys, threshold: parameters.covenantQuorum, signatures: covenantSignatures,
            group: "covenant")
        return try Self.witness(
            stack: covenant + [stakerSignature.rawRepresentation], output: scripts.output, leaf: scripts.unbondingLeaf)
    }

    /// Slashing path of the staking output: covenant signatures, one provider signature (both
    /// groups keys descending, empty items for non-signers), the staker's, script, control block.
    public func stakingSlashingWitness(
        stakerSignature: Schnorr.Signature, finalityProviderSignatures: [Schnorr.PublicKey: Schnorr.Signature],
        covenantSignatures: [Schnorr.PublicKey: Schnorr.Signature]
    ) throws(StakingError) -> [Data] {
        try slashingWitness(
            output: scripts.output, leaf: scripts.slashingLeaf, stakerSignature: stakerSignature,
            finalityProviderSignatures: finalityProviderSignatures, covenantSignatures: covenantSignatures)
    }

    /// Slashing path of the unbonding output (same stack as ``stakingSlashingWitness``, the
    /// unbonding output's control block).
    public func unbondingSlashingWitness(
        stakerSignature: Schnorr.Signature, finalityProviderSignatures: [Schnorr.PublicKey: Schnorr.Signature],
        covenantSignatures: [Schnorr.PublicKey: Schnorr.Signature]
    ) throws(StakingError) -> [Data] {
        try slashingWitness(
            output: unbonding.output, leaf: unbonding.slashingLeaf, stakerSignature: stakerSignature,
            finalityProviderSignatures: finalityProviderSignatures, covenantSignatures: covenantSignatures)
    }

    /// Unbonding timelock path: `[staker sig, script, control block]`.
    public func unbondingTimelockWitness(stakerSignature: Schnorr.Signature) throws(StakingError) -> [Data] {
        try Self.witness(stack: [stakerSignature.rawRepresentation], output: unbonding.output, leaf: unbonding.timelockLeaf)
    }

    /// Slashing change path: `[staker sig, script, control block]`.
    public func slashingChangeWitness(stakerSignature: Schnorr.Signature) throws(StakingError) -> [Data] {
        try Self.witness(
            stack: [stakerSignature.rawRepresentation], output: slashingChange.output, leaf: slashingChange.timelockLeaf)
    }

    private func slashingWitness(
        output: TaprootOutput, leaf: TapLeaf, stakerSignature: Schnorr.Signature,
        finalityProviderSignatures: [Schnorr.PublicKey: Schnorr.Signature],
        covenantSignatures: [Schnorr.PublicKey: Schnorr.Signature]
    ) throws(StakingError) -> [Data] {
        let covenant = try Self.multisigStack(
            keys: parameters.covenantKeys, threshold: parameters.covenantQuorum, signatures: covenantSignatures,
            group: "covenant")
        let providers = try Self.multisigStack(
            keys: scripts.finalityProviderKeys, threshold: 1, signatures: finalityProviderSignatures,
            group: "finality-provider")
        return try Self.witness(
            stack: covenant + providers + [stakerSignature.rawRepresentation], output: output, leaf: leaf)
    }

    /// The witness items for one multisig of the staking scripts, bottom first.
    ///
    /// The script checks keys in ascending order, each consuming the current stack top, so the
    /// items go on the witness in *descending* key order. `OP_NUMEQUAL(VERIFY)` demands exactly
    /// `threshold` valid signatures, so exactly that many are used (the first ones in ascending
    /// key order) and every other key gets an empty item.
    public static func multisigStack(
        keys: [Schnorr.PublicKey], threshold: Int, signatures: [Schnorr.PublicKey: Schnorr.Signature], group: String
    ) throws(StakingError) -> [Data] {
        let keySet = Set(keys)
        for key in signatures.keys where !keySet.contains(key) { throw .signatureForUnknownKey(key) }
        guard signatures.count >= threshold else {
            throw .notEnoughSignatures(group: group, required: threshold, available: signatures.count)
        }
        var used = 0
        var ascendingItems = [Data]()
        for key in StakingScripts.sorted(keys) {
            if used < threshold, let signature = signatures[key] {
                ascendingItems.append(signature.rawRepresentation)
                used += 1
            } else {
                ascendingItems.append(Data())
            }
        }
        return ascendingItems.reversed()
    }

    static func witness(stack: [Data], output: TaprootOutput, leaf: TapLeaf) throws(StakingError) -> [Data] {
        do {
            return try output.scriptPathWitness(leaf: leaf, stack: stack)
        } catch {
            throw .taproot(error)
        }
    }
}

/// `lhs − rhs`, as a staking error when negative.
func checkedSubtract(_ lhs: Amount, _ rhs: Amount) throws(StakingError) -> Amount {
    do {
        return try lhs - rhs
    } catch {
        throw .amountOverflow
    }
}

/// Signing helpers: BIP-340 signatures over a 32-byte sighash.
public enum StakingSigner {
    /// The BIP-340 signature of `sighash` by `key` (fresh auxiliary randomness unless given).
    public static func sign(sighash: Data, key: Schnorr.PrivateKey, auxiliaryRandomness: Data? = nil) throws(StakingError)
        -> Schnorr.Signature
    {
        do {
            if let auxiliaryRandomness { return try key.signature(for: sighash, auxiliaryRandomness: auxiliaryRandomness) }
            return try key.signature(for: sighash)
        } catch {
            throw .crypto(error)
        }
    }
}
