import ArgumentParser
import Foundation
import IshtarBitcoin
import IshtarBitcoinRPC
import IshtarCrypto
import IshtarKeys
import IshtarNode

extension StakingCommand {
    struct Unbond: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Leave a stake early: sign its unbonding transaction and send it to Bitcoin.",
            discussion: """
                Reads the delegation and the parameters it was created under from the node, \
                checks the covenant members' unbonding signatures stored with it (a quorum is \
                needed), signs the unbonding transaction with the staker's key (--key-file) \
                and completes its witness. Bitcoin Core tests it (testmempoolaccept) before it \
                is called ready; --broadcast sends it. Once it is mined, any relayer reports \
                it to the chain (`ishtar relay unbonding`): the delegation is UNBONDED and its \
                power leaves. The stake stays locked in the unbonding output for the \
                unbonding time, and a provider's double vote can still slash it there.
                Example:
                  ishtar staking unbond --key-file staker.key --staking-txid <txid> \\
                    --rpc-cookie-file ~/.bitcoin/regtest/.cookie --broadcast
                Watch it: ishtar query module staking delegation <staking txid>
                Exit codes: 0 accepted by Bitcoin Core (and sent with --broadcast), 1 \
                refused (not the staker's delegation, too few covenant signatures, or \
                Bitcoin Core refused it), 2 bad input or an unreachable node or bitcoind.
                """)

        @OptionGroup var api: NodeAPIOptions
        @OptionGroup var bitcoind: RelayCommand.BitcoindOptions

        @Option(name: .long, help: ArgumentHelp("The staker's BTC key file (its key is in the staking script).", valueName: "file"))
        var keyFile: String

        @OptionGroup var passphrase: KeysCommand.PassphraseOptions

        @OptionGroup var target: StoredDelegationSpend
        @OptionGroup var format: OutputOptions

        func run() throws {
            let node = try api.client()
            let rpc = try bitcoind.client()
            let staker = try KeysActions.unlock(path: keyFile, passphrase: try passphrase.resolve())
            let txid = target.stakingTxid, send = target.broadcast
            format.emit(try RelayActions.blocking {
                try await StakingActions.unbond(node: node, rpc: rpc, staker: staker, stakingTxid: txid, broadcast: send)
            })
        }
    }
}

extension StakingActions {
    /// The result of `ishtar staking unbond`.
    public struct UnbondOutput: CommandOutput, Sendable {
        /// The delegation's staking txid (display order).
        public var stakingTxid: String
        /// The unbonding transaction's txid (display order).
        public var txid: String
        /// The signed transaction, hex.
        public var transaction: String
        /// Covenant signatures in its witness.
        public var covenantSignatures: Int
        /// Whether it was sent to bitcoind.
        public var broadcast: Bool

        var text: String {
            """
            delegation:        \(stakingTxid)
            unbonding tx:      \(txid) (staker + \(covenantSignatures) covenant signatures)
            bitcoin core:      accepted\(broadcast ? "; sent" : " (test only; --broadcast sends it)")
            next:              once mined, `ishtar relay unbonding --staking-txid \(stakingTxid)` reports it
            \(transaction)
            """
        }
    }

    /// The delegation's unbonding transaction *as the chain stores it*, signed by `staker`
    /// and carrying every stored covenant unbonding signature that verifies. Returns the
    /// transaction and how many covenant signatures it carries.
    /// - Throws: `.verificationFailed` when `staker` is not the delegation's staker or fewer
    ///   than a covenant quorum of signatures verify.
    public static func unbondingTransaction(
        delegation: DelegationTransactions, covenantSignatures: [CovenantSignatureSet], parameters: StakingParameters,
        staker: Schnorr.PrivateKey
    ) throws -> (IshtarBitcoin.Transaction, Int) {
        guard staker.publicKey.rawRepresentation == delegation.stakerKey.rawRepresentation else {
            throw CLIError.verificationFailed("--key-file holds \(staker.publicKey.rawRepresentation.hexString), "
                + "not this delegation's staker key \(delegation.stakerKey.rawRepresentation.hexString)")
        }
        let valid = try StakingValidation.validate(delegation: delegation, parameters: parameters)
        let sighash = try valid.builder.unbondingSighash(unbondingTransaction: delegation.unbondingTransaction,
                                                         stakingValue: delegation.stakingValue)
        var covenant: [Schnorr.PublicKey: Schnorr.Signature] = [:]
        for set in covenantSignatures where set.covenantKey.isValidSignature(set.unbondingSignature, for: sighash) {
            covenant[set.covenantKey] = set.unbondingSignature
        }
        guard covenant.count >= parameters.covenantQuorum else {
            throw CLIError.verificationFailed(
                "only \(covenant.count) valid covenant unbonding signatures; the unbonding path needs \(parameters.covenantQuorum)")
        }
        var tx = delegation.unbondingTransaction
        tx.inputs[0].witness = try valid.builder.unbondingWitness(
            stakerSignature: try StakingSigner.sign(sighash: sighash, key: staker), covenantSignatures: covenant)
        return (tx, covenant.count)
    }

    /// Everything `ishtar staking unbond` does: the delegation and its parameters from the
    /// node, the signed unbonding transaction, Bitcoin Core's verdict (`testmempoolaccept`),
    /// and with `broadcast` the send.
    public static func unbond(node: NodeAPIClient, rpc: BitcoinRPCClient, staker: Schnorr.PrivateKey, stakingTxid: String,
                              broadcast: Bool) async throws -> UnbondOutput {
        let (txid, stored, delegation, parameters) = try CovenantActions.storedDelegation(node: node, stakingTxid: stakingTxid)
        let (tx, signatures) = try unbondingTransaction(
            delegation: delegation, covenantSignatures: try CovenantActions.covenantSignatureSets(stored),
            parameters: parameters, staker: staker)
        let raw = tx.serialized()
        try await WatchActions.testThenSend(raw, txid: tx.txid, what: "unbonding transaction", rpc: rpc, broadcast: broadcast)
        return UnbondOutput(stakingTxid: txid.displayHex, txid: tx.txid.displayHex, transaction: raw.hexString,
                            covenantSignatures: signatures, broadcast: broadcast)
    }
}
