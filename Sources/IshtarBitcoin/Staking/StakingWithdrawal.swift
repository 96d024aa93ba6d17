import IshtarCrypto

/// Where a staker's bitcoin can sit behind a relative timelock that the staker's key alone
/// opens (PROTOCOL §2): the four outputs a delegation's transactions create for the staker.
public enum WithdrawalSource: String, Sendable, Hashable, CaseIterable, Codable, CustomStringConvertible {
    /// The staking output, through its timelock leaf, once the staking time has passed.
    case staking
    /// The unbonding transaction's output, through its timelock leaf, once the unbonding time has passed.
    case unbonding
    /// Output 1 (the change) of the staking output's slashing transaction, after the unbonding time.
    case slashingChange = "slashing_change"
    /// Output 1 (the change) of the unbonding output's slashing transaction, after the unbonding time.
    case unbondingSlashingChange = "unbonding_slashing_change"

    /// For example "unbonding slashing change".
    public var description: String {
        switch self {
        case .staking: "staking"
        case .unbonding: "unbonding"
        case .slashingChange: "slashing change"
        case .unbondingSlashingChange: "unbonding slashing change"
        }
    }
}

/// One of a delegation's staker-owned timelocked outputs: what a withdrawal spends.
public struct WithdrawableOutput: Hashable, Sendable {
    /// Which output it is.
    public let source: WithdrawalSource
    /// Where it is.
    public let outPoint: OutPoint
    /// Its value and script (the spending input's prevout).
    public let output: TxOut
    /// Blocks after its confirmation before it can be spent (BIP-68; the spend's sequence).
    public let timelock: UInt16
    /// The leaf the staker spends it through: `<staker> OP_CHECKSIGVERIFY <timelock> OP_CSV`.
    public let leaf: TapLeaf
    /// The taproot output that leaf belongs to (for the control block).
    let taproot: TaprootOutput
}

extension StakingBuilder {
    /// The staker's output `source` of `delegation`, whose transactions this builder's scripts
    /// describe (``StakingValidation/validate(delegation:parameters:)`` checks that; the
    /// outpoints here come from the delegation's own transactions, so they are Bitcoin's
    /// txids whatever witnesses get attached later).
    /// - Throws: `.missingWithdrawableOutput` when the transaction lacks the output.
    public func withdrawableOutput(_ source: WithdrawalSource, of delegation: DelegationTransactions) throws(StakingError)
        -> WithdrawableOutput
    {
        func output(of tx: Transaction, _ index: UInt32) throws(StakingError) -> (OutPoint, TxOut) {
            guard Int(index) < tx.outputs.count else { throw .missingWithdrawableOutput(source) }
            return (OutPoint(txid: tx.txid, index: index), tx.outputs[Int(index)])
        }
        switch source {
        case .staking:
            let (point, out) = try output(of: delegation.stakingTransaction, delegation.stakingOutputIndex)
            return WithdrawableOutput(source: source, outPoint: point, output: out, timelock: scripts.stakingTime,
                                      leaf: scripts.timelockLeaf, taproot: scripts.output)
        case .unbonding:
            let (point, out) = try output(of: delegation.unbondingTransaction, 0)
            return WithdrawableOutput(source: source, outPoint: point, output: out, timelock: parameters.unbondingTime,
                                      leaf: unbonding.timelockLeaf, taproot: unbonding.output)
        case .slashingChange, .unbondingSlashingChange:
            let tx = source == .slashingChange ? delegation.slashingTransaction : delegation.unbondingSlashingTransaction
            let (point, out) = try output(of: tx, 1)
            return WithdrawableOutput(source: source, outPoint: point, output: out, timelock: parameters.unbondingTime,
                                      leaf: slashingChange.timelockLeaf, taproot: slashingChange.output)
        }
    }

    /// The signed transaction that returns `spent` to `destination`, minus a fee of
    /// `feeRate` sat per virtual byte of the signed transaction: version 2, one input whose
    /// sequence is the output's timelock (so Bitcoin accepts it once the output has that
    /// many confirmations), the witness `[staker signature, leaf script, control block]`.
    ///
    /// The fee is exact, not estimated: a BIP-340 signature is always 64 bytes, so the
    /// transaction signed once to measure it has the size of the final one.
    /// - Throws: `.notTheStaker` for another key than the staker's, `.withdrawalTooSmall`
    ///   when the fee leaves dust, `.amountOverflow` for an absurd fee rate.
    public func withdrawal(spending spent: WithdrawableOutput, to destination: Script, feeRate: Int64,
                           staker: Schnorr.PrivateKey) throws(StakingError) -> Transaction
    {
        guard staker.publicKey == scripts.stakerKey else {
            throw .notTheStaker(expected: scripts.stakerKey, actual: staker.publicKey)
        }
        guard feeRate >= 0 else { throw .amountOverflow }
        func signed(paying value: Amount) throws(StakingError) -> Transaction {
            var tx = Self.timelockSpendTransaction(
                spending: spent.outPoint, blocks: spent.timelock, outputs: [TxOut(value: value, scriptPubKey: destination)])
            let sighash = try Self.sighash(transaction: tx, prevout: spent.output, leaf: spent.leaf)
            let signature = try StakingSigner.sign(sighash: sighash, key: staker)
            tx.inputs[0].witness = try Self.witness(stack: [signature.rawRepresentation], output: spent.taproot, leaf: spent.leaf)
            return tx
        }
        let size = Int64(try signed(paying: spent.output.value).virtualSize)
        let (product, overflow) = size.multipliedReportingOverflow(by: feeRate)
        guard !overflow, let fee = try? Amount(sats: product) else { throw .amountOverflow }
        let threshold = StakingValidation.dustThreshold(for: destination)
        guard let value = try? spent.output.value - fee, value >= threshold, value > .zero else {
            throw .withdrawalTooSmall(value: spent.output.value, fee: fee, threshold: threshold)
        }
        return try signed(paying: value)
    }
}
