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

        @Option(name: .long, help: ArgumentHelp(
            "Refuse to sign slashing transactions that burn more than this share of the stake (e.g. 0.1): the parameters come from the node, so this is your own bound.",
            valueName: "decimal"))
        var maxSlashingRate: String?

        @Option(name: .long, help: ArgumentHelp(
            "Refuse to sign slashing transactions whose fee exceeds this many sats (your own bound, as above).", valueName: "sats"))
        var maxSlashingFee: Int64?

        @OptionGroup var nonce: NonceOption

        @OptionGroup var format: OutputOptions

        func validate() throws {
            _ = try Parse.publicKey(fpPk, option: "--fp-pk")
            _ = try Parse.hex(stakingTx, option: "--staking-tx")
            if let maxSlashingRate, (try? SlashingRate(decimal: maxSlashingRate)) == nil {
                throw ValidationError("--max-slashing-rate: a decimal 0.x with 1 to 18 fractional digits, got \(maxSlashingRate)")
            }
            if let maxSlashingFee, maxSlashingFee < 0 { throw ValidationError("--max-slashing-fee: must be ≥ 0") }
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
            let limits = StakingActions.SlashingLimits(
                maxRate: try maxSlashingRate.map { try SlashingRate(decimal: $0) },
                maxFee: try maxSlashingFee.map { try Amount(sats: $0) })
            let message = try StakingActions.delegationMessage(
                node: node, staker: staker, account: account.publicKey.rawRepresentation, chainID: chainID,
                finalityProvider: try Parse.publicKey(fpPk, option: "--fp-pk"), stakingTime: stakingTime,
                stakingTransaction: transaction, stakingOutputIndex: stakingVout, limits: limits) { note in
                    FileHandle.standardError.write(Data("note: \(note)\n".utf8))
                }
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

    /// The staker's own bounds on what its signed slashing transactions may take: the
    /// parameters they are built with come from the node, which the staker need not trust.
    public struct SlashingLimits: Sendable {
        /// Largest share of the stake (resp. the unbonding output) a slashing transaction may burn.
        public var maxRate: SlashingRate?
        /// Largest fee a slashing transaction may pay.
        public var maxFee: Amount?
        public init(maxRate: SlashingRate? = nil, maxFee: Amount? = nil) {
            self.maxRate = maxRate
            self.maxFee = maxFee
        }
    }

    /// Checks a slashing transaction spending `input` sats against `limits`; returns what it
    /// burns and pays in fees. Output 0 is the burn (the template's order).
    static func checkSlashing(_ tx: IshtarBitcoin.Transaction, spending input: Amount, limits: SlashingLimits,
                              what: String) throws -> (burn: Int64, fee: Int64) {
        let burn = tx.outputs.first?.value.sats ?? 0
        let fee = input.sats - tx.outputs.reduce(Int64(0)) { $0 + $1.value.sats }
        if let rate = limits.maxRate, burn > rate.slashedAmount(of: input).sats {
            throw CLIError.verificationFailed(
                "refusing to sign: the \(what) burns \(burn) of \(input.sats) sat, more than --max-slashing-rate \(rate) allows (\(rate.slashedAmount(of: input).sats))")
        }
        if let maxFee = limits.maxFee, fee > maxFee.sats {
            throw CLIError.verificationFailed("refusing to sign: the \(what) pays a \(fee) sat fee, more than --max-slashing-fee \(maxFee.sats)")
        }
        return (burn, fee)
    }

    /// `staking/CreateBTCDelegation` for `stakingTransaction` under the chain's current
    /// parameters: the unbonding and slashing transactions built, both slashing transactions
    /// signed by `staker`, its proof of possession bound to `account`, and the whole
    /// delegation validated with ``StakingValidation/validate(delegation:parameters:requireCovenantQuorum:)``
    /// — the chain's own check — before it is returned.
    public static func delegationMessage(node: NodeAPIClient, staker: Schnorr.PrivateKey, account: Data, chainID: String,
                                         finalityProvider: Schnorr.PublicKey, stakingTime: UInt16,
                                         stakingTransaction staking: IshtarBitcoin.Transaction,
                                         stakingOutputIndex: UInt32?, limits: SlashingLimits = SlashingLimits(),
                                         note: (String) -> Void = { _ in }) throws -> Message {
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
            // Before anything is signed: the staker's own bounds, and what it is about to sign.
            let s1 = try checkSlashing(slashing, spending: value, limits: limits, what: "slashing transaction")
            let s2 = try checkSlashing(unbondingSlashing, spending: unbonding.outputs[0].value, limits: limits,
                                       what: "unbonding slashing transaction")
            note("if slashed, the stake loses \(s1.burn) of \(value.sats) sat to the burn output and \(s1.fee) sat in fees " +
                 "(from the unbonding output: \(s2.burn) + \(s2.fee) of \(unbonding.outputs[0].value.sats) sat), " +
                 "at the node's slashing rate \(parameters.slashingRate)")
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
