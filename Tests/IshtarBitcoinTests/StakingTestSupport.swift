import Foundation
import IshtarBitcoin
import IshtarCrypto
import IshtarTestSupport

/// Keys and a valid delegation for staking tests. Keys are small scalars so scripts can be
/// checked against hand-written bytes: staker 1·G, provider 2·G, covenant 3·G … 7·G.
struct StakingFixture {
    static func key(_ scalar: UInt8) -> Schnorr.PrivateKey {
        // Small nonzero scalars are always valid keys.
        (try? Schnorr.PrivateKey(rawRepresentation: Data(repeating: 0, count: 31) + [scalar])) ?? Schnorr.PrivateKey()
    }

    var staker = key(1)
    var provider = key(2)
    var covenants: [Schnorr.PrivateKey] = (3...7).map { key($0) }
    var parameters: StakingParameters
    var stakingTime: UInt16 = 1000
    var stakingValue = Amount.sats(1_000_000)

    init(network: Network = .regtest) {
        parameters = .ishtarDefaults(covenantKeys: covenants.map(\.publicKey), covenantQuorum: 3, network: network)
    }

    var builder: StakingBuilder {
        get throws {
            try StakingBuilder(
                stakerKey: staker.publicKey, finalityProviderKeys: [provider.publicKey], stakingTime: stakingTime,
                parameters: parameters)
        }
    }

    /// A staking transaction spending a made-up outpoint, staking output at index 1.
    func stakingTransaction() throws -> Transaction {
        let funding = OutPoint(txid: try Hash256(rawValue: Data(repeating: 0xab, count: 32)), index: 3)
        return Transaction(
            inputs: [TxIn(previousOutput: funding)],
            outputs: [
                TxOut(value: .sats(5_000), scriptPubKey: .p2tr(outputKey: staker.publicKey)),
                try builder.stakingOutput(value: stakingValue),
            ])
    }

    /// A fully valid delegation, signed by the staker, with `covenantSigners` covenant sets.
    func delegation(covenantSigners: Int = 0) throws -> DelegationTransactions {
        let builder = try builder
        let staking = try stakingTransaction()
        let outPoint = OutPoint(txid: staking.txid, index: 1)
        let unbonding = try builder.unbondingTransaction(stakingOutPoint: outPoint, stakingValue: stakingValue)
        let slashing = try builder.slashingTransaction(stakingOutPoint: outPoint, stakingValue: stakingValue)
        let unbondingSlashing = try builder.unbondingSlashingTransaction(unbondingTransaction: unbonding)
        let placeholder = try Schnorr.Signature(rawRepresentation: Data(count: 64))
        var delegation = DelegationTransactions(
            stakerKey: staker.publicKey, finalityProviderKeys: [provider.publicKey], stakingTime: stakingTime,
            stakingValue: stakingValue, stakingTransaction: staking, stakingOutputIndex: 1,
            unbondingTransaction: unbonding, slashingTransaction: slashing,
            unbondingSlashingTransaction: unbondingSlashing, stakerSlashingSignature: placeholder,
            stakerUnbondingSlashingSignature: placeholder)
        try resign(&delegation)
        for covenant in covenants.prefix(covenantSigners) {
            delegation.covenantSignatures.append(
                try CovenantSigner.sign(delegation: delegation, parameters: parameters, covenantKey: covenant))
        }
        return delegation
    }

    /// Re-makes the staker's two slashing signatures after a test changed a transaction.
    func resign(_ delegation: inout DelegationTransactions) throws {
        let builder = try StakingBuilder(
            stakerKey: delegation.stakerKey, finalityProviderKeys: delegation.finalityProviderKeys,
            stakingTime: delegation.stakingTime, parameters: parameters)
        let value = delegation.stakingTransaction.outputs[Int(delegation.stakingOutputIndex)].value
        let unbondingValue = delegation.unbondingTransaction.outputs.first?.value ?? .zero
        delegation.stakerSlashingSignature = try StakingSigner.sign(
            sighash: builder.slashingSighash(slashingTransaction: delegation.slashingTransaction, stakingValue: value),
            key: staker)
        delegation.stakerUnbondingSlashingSignature = try StakingSigner.sign(
            sighash: builder.unbondingSlashingSighash(
                unbondingSlashingTransaction: delegation.unbondingSlashingTransaction, unbondingValue: unbondingValue),
            key: staker)
    }
}
