import ArgumentParser
import Foundation
import IshtarBitcoin
import IshtarChain
import IshtarCrypto
import IshtarNode

extension StakingCommand {
    struct Delegate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Register a BTC delegation on the chain (staking/CreateBTCDelegation) for a staking transaction.",
            discussion: """
                Give the staking transaction (the one paying the staking address that \
                `ishtar staking build` prints; broadcast it yourself, before or after). With \
                the chain's current staking parameters, read from the node, this builds the \
                unbonding and both slashing transactions, signs the two slashing \
                transactions with the staker's key (--key-file), proves possession of that \
                key for the sending account, validates the whole delegation with the chain's \
                own function and only then sends it from --account-key-file. The delegation \
                is PENDING until the covenant quorum signs, then VERIFIED, and ACTIVE once the \
                staking transaction is k deep (`ishtar relay activation`). Example:
                  ishtar staking delegate --key-file staker.key --account-key-file me.key \\
                    --chain-id ishtar-devnet --fp-pk <provider key> --staking-time 1000 \\
                    --staking-tx <signed staking transaction hex>
                Watch it: ishtar query module staking delegation <staking txid>
                Exit codes: 0 accepted into the mempool, 1 refused (by validation or \
                check-tx), 2 bad input or an unreachable node.
                """)

        @OptionGroup var api: NodeAPIOptions

        @Option(name: .long, help: ArgumentHelp("The staker's BTC key file (its key is in the staking script).", valueName: "file"))
        var keyFile: String

        @Option(name: .long, help: ArgumentHelp("Key file of the account that signs and sends the transaction.", valueName: "file"))
        var accountKeyFile: String

        @OptionGroup var passphrase: KeysCommand.PassphraseOptions

        @Option(name: .long, help: ArgumentHelp("The control plane's chain id.", valueName: "id"), transform: Parse.chainID)
        var chainID: String

        @Option(name: .long, help: ArgumentHelp("The finality provider's x-only key, hex.", valueName: "hex"))
        var fpPk: String

        @Option(name: .long, help: ArgumentHelp("Staking timelock in blocks, as in the staking script.", valueName: "blocks"))
        var stakingTime: UInt16

        @Option(name: .long, help: ArgumentHelp("The staking transaction, hex.", valueName: "hex"))
        var stakingTx: String

        @Option(name: .long, help: ArgumentHelp(
            "The staking output's index (default: the one output paying the staking script).", valueName: "n"))
        var stakingVout: UInt32?

        @OptionGroup var nonce: NonceOption

        @OptionGroup var format: OutputOptions

        func validate() throws {
            _ = try Parse.publicKey(fpPk, option: "--fp-pk")
            _ = try Parse.hex(stakingTx, option: "--staking-tx")
        }

        func run() throws {
            let node = try api.client()
            let secret = try passphrase.resolve()
            let staker = try KeysActions.unlock(path: keyFile, passphrase: secret)
            let account = try KeysActions.unlock(path: accountKeyFile, passphrase: secret)
            let transaction: IshtarBitcoin.Transaction
            do {
                transaction = try IshtarBitcoin.Transaction(serialized: try Parse.hex(stakingTx, option: "--staking-tx"))
            } catch let error as ValidationError {
                throw error
            } catch {
                throw ValidationError("--staking-tx: not a Bitcoin transaction: \(error)")
            }
            let message = try StakingActions.delegationMessage(
                node: node, staker: staker, account: account.publicKey.rawRepresentation, chainID: chainID,
                finalityProvider: try Parse.publicKey(fpPk, option: "--fp-pk"), stakingTime: stakingTime,
                stakingTransaction: transaction, stakingOutputIndex: stakingVout)
            try TxActions.submit(client: node, key: account, chainID: chainID, nonce: nonce.explicit, messages: [message],
                                 format: format)
        }
    }
}

extension StakingActions {
    /// The chain's current Bitcoin staking parameters (`/modules/staking/params`).
    public static func currentParameters(node: NodeAPIClient) throws -> StakingParameters {
        let reply = try TxActions.call { () throws(NodeAPIClientError) in try node.get("/modules/staking/params") }
        return try TxActions.decodeOK(CovenantActions.ParamsJSON.self, reply, what: "staking parameters").params.btcStaking
    }

    /// `staking/CreateBTCDelegation` for `stakingTransaction` under the chain's current
    /// parameters: the unbonding and slashing transactions built, both slashing transactions
    /// signed by `staker`, its proof of possession bound to `account`, and the whole
    /// delegation validated with ``StakingValidation/validate(delegation:parameters:requireCovenantQuorum:)``
    /// — the chain's own check — before it is returned.
    public static func delegationMessage(node: NodeAPIClient, staker: Schnorr.PrivateKey, account: Data, chainID: String,
                                         finalityProvider: Schnorr.PublicKey, stakingTime: UInt16,
                                         stakingTransaction staking: IshtarBitcoin.Transaction,
                                         stakingOutputIndex: UInt32?) throws -> Message {
        let parameters = try currentParameters(node: node)
        do {
            let builder = try StakingBuilder(stakerKey: staker.publicKey, finalityProviderKeys: [finalityProvider],
                                             stakingTime: stakingTime, parameters: parameters)
            let script = builder.scripts.pkScript
            let index: UInt32
            if let stakingOutputIndex {
                index = stakingOutputIndex
            } else {
                let matching = staking.outputs.indices.filter { staking.outputs[$0].scriptPubKey == script }
                guard matching.count == 1, let only = matching.first else {
                    throw CLIError.verificationFailed(
                        "the staking transaction has \(matching.count) outputs paying this staker, provider and staking time's script (give --staking-vout)")
                }
                index = UInt32(only)
            }
            guard Int(index) < staking.outputs.count else {
                throw CLIError.badInput("--staking-vout: the transaction has \(staking.outputs.count) outputs")
            }
            let value = staking.outputs[Int(index)].value
            let outPoint = OutPoint(txid: staking.txid, index: index)
            let unbonding = try builder.unbondingTransaction(stakingOutPoint: outPoint, stakingValue: value)
            let slashing = try builder.slashingTransaction(stakingOutPoint: outPoint, stakingValue: value)
            let unbondingSlashing = try builder.unbondingSlashingTransaction(unbondingTransaction: unbonding)
            let delegation = DelegationTransactions(
                stakerKey: staker.publicKey, finalityProviderKeys: [finalityProvider], stakingTime: stakingTime,
                stakingValue: value, stakingTransaction: staking, stakingOutputIndex: index, unbondingTransaction: unbonding,
                slashingTransaction: slashing, unbondingSlashingTransaction: unbondingSlashing,
                stakerSlashingSignature: try StakingSigner.sign(
                    sighash: builder.slashingSighash(slashingTransaction: slashing, stakingValue: value), key: staker),
                stakerUnbondingSlashingSignature: try StakingSigner.sign(
                    sighash: builder.unbondingSlashingSighash(unbondingSlashingTransaction: unbondingSlashing,
                                                              unbondingValue: unbonding.outputs[0].value),
                    key: staker))
            _ = try StakingValidation.validate(delegation: delegation, parameters: parameters)
            return CreateBTCDelegation(
                stakerKey: staker.publicKey.rawRepresentation,
                stakerProofOfPossession: try StakingModule.proofOfPossession(key: staker, chainID: chainID, account: account),
                finalityProviderKeys: [finalityProvider.rawRepresentation], stakingTransaction: staking,
                stakingOutputIndex: index, stakingTime: stakingTime, stakingValue: UInt64(value.sats),
                unbondingTransaction: unbonding, unbondingTime: parameters.unbondingTime,
                unbondingValue: UInt64(unbonding.outputs[0].value.sats),
                slashingTransaction: slashing, stakerSlashingSignature: delegation.stakerSlashingSignature.rawRepresentation,
                unbondingSlashingTransaction: unbondingSlashing,
                stakerUnbondingSlashingSignature: delegation.stakerUnbondingSlashingSignature.rawRepresentation).message
        } catch let error as CLIError {
            throw error
        } catch {
            throw CLIError.verificationFailed("not a valid delegation under the chain's current parameters: \(error)")
        }
    }
}
