import ArgumentParser
import Foundation
import IshtarBitcoin
import IshtarChain
import IshtarCrypto
import IshtarNode

/// `ishtar covenant …`: a covenant member's signatures by hand — what the covenant daemon of
/// a later issue will do for every pending delegation.
struct CovenantCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "covenant",
        abstract: "Act as a covenant member by hand: validate a pending delegation and add this member's signatures.",
        subcommands: [Sign.self])

    struct Sign: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a PENDING delegation and send this member's signatures (staking/AddCovenantSigs).",
            discussion: """
                Reads the delegation and the staking parameters it was created under from the \
                node, validates it with the same function the chain uses (IshtarBitcoin's \
                delegation validation: scripts, values, times, the slashing and unbonding \
                transactions, the staker's signatures) and only then signs: adaptor signatures \
                on both slashing transactions, encrypted to each finality provider's key, and a \
                plain signature on the unbonding transaction. They go in a transaction from \
                --account-key-file. The member trusts the node it asks for the delegation and \
                the parameters: use your own. Example:
                  ishtar covenant sign --key-file covenant.key --account-key-file member.key \\
                    --chain-id ishtar-devnet --staking-txid <txid>
                Watch it: ishtar query module staking delegation <staking txid> (VERIFIED once \
                the quorum signed).
                Exit codes: 0 accepted into the mempool, 1 refused (by validation, because the \
                delegation is not PENDING, or by check-tx), 2 bad input or an unreachable node.
                """)

        @OptionGroup var api: NodeAPIOptions

        @Option(name: .long, help: ArgumentHelp("The covenant member's BIP-340 key file.", valueName: "file"))
        var keyFile: String

        @Option(name: .long, help: ArgumentHelp("Key file of the account that signs and sends the transaction.", valueName: "file"))
        var accountKeyFile: String

        @OptionGroup var passphrase: KeysCommand.PassphraseOptions

        @Option(name: .long, help: ArgumentHelp("The control plane's chain id.", valueName: "id"), transform: Parse.chainID)
        var chainID: String

        @OptionGroup var delegation: StakingTxidOption
        @OptionGroup var nonce: NonceOption
        @OptionGroup var format: OutputOptions

        func run() throws {
            let node = try api.client()
            let secret = try passphrase.resolve()
            let covenant = try KeysActions.unlock(path: keyFile, passphrase: secret)
            let account = try KeysActions.unlock(path: accountKeyFile, passphrase: secret)
            let message = try CovenantActions.signMessage(node: node, covenantKey: covenant, stakingTxid: delegation.stakingTxid)
            try TxActions.submit(client: node, key: account, chainID: chainID, nonce: nonce.explicit, messages: [message],
                                 format: format)
        }
    }
}

/// What `ishtar covenant` does, callable from tests.
public enum CovenantActions {
    /// A delegation as `/modules/staking/delegation/<txid>` answers it (the fields the
    /// covenant needs).
    struct DelegationJSON: Decodable {
        var stakerBTCPK: String
        var fpBTCPK: String
        var stakingTime: UInt16
        var stakingValueSat: String
        var stakingOutputIndex: UInt32
        var stakingTx: String
        var unbondingTx: String
        var slashingTx: String
        var stakerSlashingSig: String
        var unbondingSlashingTx: String
        var stakerUnbondingSlashingSig: String
        var paramsVersion: Int
        var status: String
        var covenantSigs: [Signed]

        struct Signed: Decodable {
            var covenantPK: String
            var unbondingSig: String?
            var slashingAdaptorSigs: [Adaptor]?
            var unbondingSlashingAdaptorSigs: [Adaptor]?
            enum CodingKeys: String, CodingKey {
                case covenantPK = "covenant_pk", unbondingSig = "unbonding_sig", slashingAdaptorSigs = "slashing_adaptor_sigs"
                case unbondingSlashingAdaptorSigs = "unbonding_slashing_adaptor_sigs"
            }
        }

        struct Adaptor: Decodable {
            var fpBTCPK: String
            var adaptorSig: String
            enum CodingKeys: String, CodingKey { case fpBTCPK = "fp_btc_pk", adaptorSig = "adaptor_sig" }
        }

        enum CodingKeys: String, CodingKey {
            case stakerBTCPK = "staker_btc_pk", fpBTCPK = "fp_btc_pk", stakingTime = "staking_time"
            case stakingValueSat = "staking_value_sat", stakingOutputIndex = "staking_output_index"
            case stakingTx = "staking_tx", unbondingTx = "unbonding_tx", slashingTx = "slashing_tx"
            case stakerSlashingSig = "staker_slashing_sig", unbondingSlashingTx = "unbonding_slashing_tx"
            case stakerUnbondingSlashingSig = "staker_unbonding_slashing_sig", paramsVersion = "params_version"
            case status, covenantSigs = "covenant_sigs"
        }
    }

    /// `/modules/staking/params/<version>`: the Bitcoin staking parameters are in
    /// `params.btc_staking`, in ``StakingParameters``' own JSON shape.
    struct ParamsJSON: Decodable {
        struct Inner: Decodable {
            var btcStaking: StakingParameters
            enum CodingKeys: String, CodingKey { case btcStaking = "btc_staking" }
        }
        var params: Inner
    }

    /// The delegation's transactions, rebuilt from the node's answer.
    static func transactions(_ d: DelegationJSON) throws -> DelegationTransactions {
        do {
            func tx(_ hex: String, _ field: String) throws -> IshtarBitcoin.Transaction {
                try IshtarBitcoin.Transaction(serialized: try Data(hex: hex, field: field))
            }
            guard let value = Int64(d.stakingValueSat) else { throw CLIError.badInput("staking_value_sat \"\(d.stakingValueSat)\"") }
            return DelegationTransactions(
                stakerKey: try Schnorr.PublicKey(rawRepresentation: try Data(hex: d.stakerBTCPK, field: "staker_btc_pk")),
                finalityProviderKeys: [try Schnorr.PublicKey(rawRepresentation: try Data(hex: d.fpBTCPK, field: "fp_btc_pk"))],
                stakingTime: d.stakingTime, stakingValue: try Amount(sats: value),
                stakingTransaction: try tx(d.stakingTx, "staking_tx"), stakingOutputIndex: d.stakingOutputIndex,
                unbondingTransaction: try tx(d.unbondingTx, "unbonding_tx"), slashingTransaction: try tx(d.slashingTx, "slashing_tx"),
                unbondingSlashingTransaction: try tx(d.unbondingSlashingTx, "unbonding_slashing_tx"),
                stakerSlashingSignature: try Schnorr.Signature(rawRepresentation: try Data(hex: d.stakerSlashingSig, field: "staker_slashing_sig")),
                stakerUnbondingSlashingSignature: try Schnorr.Signature(
                    rawRepresentation: try Data(hex: d.stakerUnbondingSlashingSig, field: "staker_unbonding_slashing_sig")))
        } catch let error as CLIError {
            throw error
        } catch {
            throw CLIError.badInput("node returned a malformed delegation: \(error)")
        }
    }

    /// The covenant members' signatures the chain stored with the delegation (what a staker
    /// unbonding early and a watcher slashing complete their transactions with).
    static func covenantSignatureSets(_ d: DelegationJSON) throws -> [CovenantSignatureSet] {
        do {
            return try d.covenantSigs.map { set in
                func adaptors(_ list: [DelegationJSON.Adaptor]?) throws -> [Schnorr.PublicKey: AdaptorSignature] {
                    var out: [Schnorr.PublicKey: AdaptorSignature] = [:]
                    for a in list ?? [] {
                        out[try Schnorr.PublicKey(rawRepresentation: try Data(hex: a.fpBTCPK, field: "fp_btc_pk"))] =
                            try AdaptorSignature(rawRepresentation: try Data(hex: a.adaptorSig, field: "adaptor_sig"))
                    }
                    return out
                }
                guard let unbonding = set.unbondingSig else { throw CLIError.badInput("covenant signature set without unbonding_sig") }
                return CovenantSignatureSet(
                    covenantKey: try Schnorr.PublicKey(rawRepresentation: try Data(hex: set.covenantPK, field: "covenant_pk")),
                    unbondingSignature: try Schnorr.Signature(rawRepresentation: try Data(hex: unbonding, field: "unbonding_sig")),
                    slashingAdaptorSignatures: try adaptors(set.slashingAdaptorSigs),
                    unbondingSlashingAdaptorSignatures: try adaptors(set.unbondingSlashingAdaptorSigs))
            }
        } catch {
            throw CLIError.badInput("node returned malformed covenant signatures: \(error)")
        }
    }

    /// The delegation's transactions and the staker's signatures from a
    /// `/modules/staking/delegation/<txid>` answer — what a covenant member or a watcher
    /// works from.
    public static func delegationTransactions(json: Data) throws -> DelegationTransactions {
        let delegation: DelegationJSON
        do { delegation = try JSONDecoder().decode(DelegationJSON.self, from: json) } catch {
            throw CLIError.badInput("not a delegation: \(error)")
        }
        return try transactions(delegation)
    }

    /// The delegation `stakingTxid` (display hex) as the node stores it, its transactions
    /// (checked to be the ones asked for) and the staking parameters it was created under.
    static func storedDelegation(node: NodeAPIClient, stakingTxid: String) throws
        -> (Hash256, DelegationJSON, DelegationTransactions, StakingParameters)
    {
        let txid: Hash256
        do { txid = try Hash256(displayHex: stakingTxid) } catch { throw CLIError.badInput("--staking-txid: \(error)") }
        let reply = try TxActions.call { () throws(NodeAPIClientError) in try node.get("/modules/staking/delegation/\(txid.displayHex)") }
        let stored = try TxActions.decodeOK(DelegationJSON.self, reply, what: "delegation")
        let delegation = try transactions(stored)
        guard delegation.stakingTransaction.txid == txid else {
            throw CLIError.badInput("node answered for \(txid.displayHex) with staking transaction \(delegation.stakingTransaction.txid.displayHex)")
        }
        let paramsReply = try TxActions.call { () throws(NodeAPIClientError) in
            try node.get("/modules/staking/params/\(stored.paramsVersion)")
        }
        let parameters = try TxActions.decodeOK(ParamsJSON.self, paramsReply, what: "staking parameters").params.btcStaking
        return (txid, stored, delegation, parameters)
    }

    /// Fetches the delegation `stakingTxid` (display hex) and the parameters it was created
    /// under, requires it PENDING and not yet signed by this member, validates it with the
    /// Bitcoin layer's delegation validation (inside ``CovenantSigner``) and returns this
    /// member's `staking/AddCovenantSigs`.
    public static func signMessage(node: NodeAPIClient, covenantKey: Schnorr.PrivateKey, stakingTxid: String) throws -> Message {
        let (txid, delegation, rebuilt, parameters) = try storedDelegation(node: node, stakingTxid: stakingTxid)
        guard delegation.status == "PENDING" else {
            throw CLIError.verificationFailed("delegation \(txid.displayHex) is \(delegation.status), not PENDING: nothing to sign")
        }
        // A slashed provider's key is public: adaptor signatures encrypted to it would let
        // anyone complete this staker's slashing transaction. (The chain refuses them too.)
        struct ProviderStatus: Decodable { var status: String }
        let providerReply = try TxActions.call { () throws(NodeAPIClientError) in
            try node.get("/modules/staking/finality-provider/\(delegation.fpBTCPK)")
        }
        let provider = try TxActions.decodeOK(ProviderStatus.self, providerReply, what: "finality provider")
        guard provider.status != "SLASHED" else {
            throw CLIError.verificationFailed(
                "refusing to sign delegation \(txid.displayHex): its finality provider \(delegation.fpBTCPK) is SLASHED, so its key is public and adaptor signatures would let anyone slash this stake")
        }
        let me = covenantKey.publicKey.rawRepresentation.hexString
        guard !delegation.covenantSigs.contains(where: { $0.covenantPK.lowercased() == me }) else {
            throw CLIError.verificationFailed("covenant member \(me) already signed delegation \(txid.displayHex)")
        }
        let set: CovenantSignatureSet
        do {
            set = try CovenantSigner.sign(delegation: rebuilt, parameters: parameters, covenantKey: covenantKey)
        } catch {
            throw CLIError.verificationFailed("refusing to sign delegation \(txid.displayHex): \(error)")
        }
        return AddCovenantSigs(stakingTxid: txid.rawValue, set: set).message
    }
}
