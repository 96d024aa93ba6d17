import ArgumentParser
import Foundation
import IshtarBitcoin
import IshtarCrypto

/// `ishtar staking …`: build a delegation's Bitcoin scripts and transactions, and validate a
/// delegation exactly as the chain and the covenant do.
struct StakingCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "staking",
        abstract: "Build and validate Bitcoin staking scripts and transactions.",
        discussion: """
            The staking output is a taproot output with three leaves (timelock, unbonding, \
            slashing) under an unspendable internal key. `build` prints the scripts, the \
            address and, given the staking outpoint, the unsigned unbonding and slashing \
            transactions with the sighashes each signer signs. `validate` runs the one \
            validation the chain and the covenant committee use; exit code 1 names the rule \
            that failed.
            """,
        subcommands: [Build.self, Validate.self, Delegate.self, Unbond.self, Withdraw.self, Status.self])

    /// The chain's staking parameters (PROTOCOL §6).
    struct ParameterOptions: ParsableArguments {
        @Option(name: .long, help: ArgumentHelp("Bitcoin network: mainnet, testnet, signet or regtest.", valueName: "name"),
                transform: Parse.network)
        var network: Network

        @Option(name: .customLong("covenant-pk"), help: ArgumentHelp("A covenant committee key, x-only hex (repeat).", valueName: "hex"))
        var covenantKeys: [String] = []

        @Option(name: .long, help: ArgumentHelp("Covenant signatures required.", valueName: "n"))
        var covenantQuorum: Int

        @Option(name: .long, help: ArgumentHelp("Unbonding timelock in blocks.", valueName: "blocks"))
        var unbondingTime: UInt16

        @Option(name: .long, help: ArgumentHelp("Exact unbonding transaction fee, sat.", valueName: "sat"))
        var unbondingFee: Int64

        @Option(name: .customLong("slashing-pkscript"), help: ArgumentHelp("Script slashed funds go to, hex.", valueName: "hex"))
        var slashingPkScript: String

        @Option(name: .long, help: ArgumentHelp("Slashing rate, a decimal such as 0.1.", valueName: "rate"))
        var slashingRate: String

        @Option(name: .long, help: ArgumentHelp("Minimum slashing transaction fee, sat.", valueName: "sat"))
        var minSlashingFee: Int64

        @Option(name: .long, help: ArgumentHelp("Minimum stake, sat.", valueName: "sat"))
        var minStakingValue: Int64 = 10_000

        @Option(name: .long, help: ArgumentHelp("Maximum stake, sat.", valueName: "sat"))
        var maxStakingValue: Int64 = 10_000_000_000

        @Option(name: .long, help: ArgumentHelp("Minimum staking time, blocks.", valueName: "blocks"))
        var minStakingTime: UInt16 = 400

        @Option(name: .long, help: ArgumentHelp("Maximum staking time, blocks.", valueName: "blocks"))
        var maxStakingTime: UInt16 = 65_535

        func resolve() throws -> StakingParameters {
            guard !covenantKeys.isEmpty else { throw ValidationError("--covenant-pk: give at least one covenant key") }
            let keys = try covenantKeys.map { try Parse.publicKey($0, option: "--covenant-pk") }
            let parameters = StakingParameters(
                covenantKeys: keys, covenantQuorum: covenantQuorum,
                minStakingValue: try Parse.amount(minStakingValue, option: "--min-staking-value"),
                maxStakingValue: try Parse.amount(maxStakingValue, option: "--max-staking-value"),
                minStakingTime: minStakingTime, maxStakingTime: maxStakingTime, unbondingTime: unbondingTime,
                unbondingFee: try Parse.amount(unbondingFee, option: "--unbonding-fee"),
                slashingPkScript: Script(bytes: try Parse.hex(slashingPkScript, option: "--slashing-pkscript")),
                slashingRate: try Parse.slashingRate(slashingRate),
                minSlashingFee: try Parse.amount(minSlashingFee, option: "--min-slashing-fee"), network: network)
            do { return try parameters.validated() } catch { throw ValidationError("\(error)") }
        }
    }

    /// The staker's choices: keys, time, value.
    struct DelegationOptions: ParsableArguments {
        @Option(name: .customLong("staker-pk"), help: ArgumentHelp("Staker's x-only key, hex.", valueName: "hex"))
        var stakerKey: String

        @Option(name: .customLong("fp-pk"), help: ArgumentHelp("Finality provider's x-only key, hex (repeat).", valueName: "hex"))
        var finalityProviderKeys: [String] = []

        @Option(name: .long, help: ArgumentHelp("Staking timelock in blocks.", valueName: "blocks"))
        var stakingTime: UInt16

        @Option(name: .long, help: ArgumentHelp("Staking value, sat.", valueName: "sat"))
        var stakingValue: Int64

        func staker() throws -> Schnorr.PublicKey { try Parse.publicKey(stakerKey, option: "--staker-pk") }

        func providers() throws -> [Schnorr.PublicKey] {
            guard !finalityProviderKeys.isEmpty else { throw ValidationError("--fp-pk: give at least one finality-provider key") }
            return try finalityProviderKeys.map { try Parse.publicKey($0, option: "--fp-pk") }
        }

        func value() throws -> Amount { try Parse.amount(stakingValue, option: "--staking-value") }
    }

    struct Build: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the staking scripts and address; with the staking outpoint, the unsigned transactions.",
            discussion: """
                With --staking-txid and --staking-vout it also prints the unbonding, slashing and \
                unbonding-slashing transactions (unsigned hex) and the BIP-341 script-path \
                sighashes (SIGHASH_DEFAULT) the staker, providers and covenant members sign.
                """)

        @OptionGroup var parameters: ParameterOptions
        @OptionGroup var delegation: DelegationOptions

        @Option(name: .long, help: ArgumentHelp("Staking transaction id (display hex).", valueName: "txid"))
        var stakingTxid: String?

        @Option(name: .long, help: ArgumentHelp("Staking output index.", valueName: "n"))
        var stakingVout: UInt32?

        @Option(name: .long, help: ArgumentHelp("4-byte marker tag (4 ASCII characters or 8 hex digits).", valueName: "tag"))
        var tag: String?

        @OptionGroup var format: OutputOptions

        func validate() throws {
            if (stakingTxid == nil) != (stakingVout == nil) {
                throw ValidationError("--staking-txid and --staking-vout go together")
            }
        }

        func run() throws {
            var outPoint: OutPoint?
            if let stakingTxid, let stakingVout {
                outPoint = OutPoint(txid: try Parse.txid(stakingTxid, option: "--staking-txid"), index: stakingVout)
            }
            format.emit(try StakingActions.build(
                parameters: try parameters.resolve(), stakerKey: try delegation.staker(),
                finalityProviderKeys: try delegation.providers(), stakingTime: delegation.stakingTime,
                stakingValue: try delegation.value(), stakingOutPoint: outPoint,
                tag: try tag.map { try Parse.tag($0) }))
        }
    }

    struct Validate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a delegation as the chain and the covenant do. Exit code 1 names the failed rule.",
            discussion: """
                --covenant-sig takes COVENANT_PK:UNBONDING_SIG:SLASHING_ADAPTOR:UNBONDING_SLASHING_ADAPTOR \
                (hex; the adaptor signatures are the 65-byte encodings, for the delegation's \
                single finality provider). Repeat it for each covenant member.
                """)

        @OptionGroup var parameters: ParameterOptions
        @OptionGroup var delegation: DelegationOptions

        @Option(name: .long, help: ArgumentHelp("The staking transaction, hex.", valueName: "hex"))
        var stakingTxHex: String
        @Option(name: .long, help: ArgumentHelp("Staking output index.", valueName: "n"))
        var stakingVout: UInt32
        @Option(name: .long, help: ArgumentHelp("The unbonding transaction, hex.", valueName: "hex"))
        var unbondingTxHex: String
        @Option(name: .long, help: ArgumentHelp("The staking output's slashing transaction, hex.", valueName: "hex"))
        var slashingTxHex: String
        @Option(name: .long, help: ArgumentHelp("The unbonding output's slashing transaction, hex.", valueName: "hex"))
        var unbondingSlashingTxHex: String
        @Option(name: .long, help: ArgumentHelp("Staker's signature on the slashing transaction, hex.", valueName: "hex"))
        var stakerSlashingSig: String
        @Option(name: .long, help: ArgumentHelp("Staker's signature on the unbonding slashing transaction, hex.", valueName: "hex"))
        var stakerUnbondingSlashingSig: String
        @Option(name: .customLong("covenant-sig"), help: ArgumentHelp("A covenant member's signatures (repeat; see below).", valueName: "sigs"))
        var covenantSignatures: [String] = []
        @Flag(name: .long, help: "Also require the covenant quorum.")
        var requireCovenantQuorum = false

        @OptionGroup var format: OutputOptions

        func run() throws {
            let providers = try delegation.providers()
            let transactions = DelegationTransactions(
                stakerKey: try delegation.staker(), finalityProviderKeys: providers, stakingTime: delegation.stakingTime,
                stakingValue: try delegation.value(),
                stakingTransaction: try Parse.transaction(stakingTxHex, option: "--staking-tx-hex"),
                stakingOutputIndex: stakingVout,
                unbondingTransaction: try Parse.transaction(unbondingTxHex, option: "--unbonding-tx-hex"),
                slashingTransaction: try Parse.transaction(slashingTxHex, option: "--slashing-tx-hex"),
                unbondingSlashingTransaction: try Parse.transaction(unbondingSlashingTxHex, option: "--unbonding-slashing-tx-hex"),
                stakerSlashingSignature: try Parse.signature(stakerSlashingSig, option: "--staker-slashing-sig"),
                stakerUnbondingSlashingSignature: try Parse.signature(
                    stakerUnbondingSlashingSig, option: "--staker-unbonding-slashing-sig"),
                covenantSignatures: try covenantSignatures.map { try Parse.covenantSignatureSet($0, providers: providers) })
            format.emit(try StakingActions.validate(
                delegation: transactions, parameters: try parameters.resolve(), requireCovenantQuorum: requireCovenantQuorum))
        }
    }
}

/// `staking build` output.
public struct StakingBuildOutput: CommandOutput, Equatable {
    public var network: String
    public var stakingOutputPkscriptHex: String
    public var stakingAddress: String
    public var stakingValue: Int64
    public var timelockScriptHex: String
    public var unbondingScriptHex: String
    public var slashingScriptHex: String
    public var unbondingOutputPkscriptHex: String
    public var unbondingTimelockScriptHex: String
    public var unbondingSlashingScriptHex: String
    public var slashingChangePkscriptHex: String
    public var stakingMarkerScriptHex: String?
    public var unbondingTxHex: String?
    public var unbondingTxid: String?
    public var unbondingSighash: String?
    public var slashingTxHex: String?
    public var slashingSighash: String?
    public var unbondingSlashingTxHex: String?
    public var unbondingSlashingSighash: String?

    var text: String {
        var lines = [
            "staking address:  \(stakingAddress)",
            "staking pkscript: \(stakingOutputPkscriptHex)",
            "timelock script:  \(timelockScriptHex)",
            "unbonding script: \(unbondingScriptHex)",
            "slashing script:  \(slashingScriptHex)",
        ]
        if let stakingMarkerScriptHex { lines.append("marker script:    \(stakingMarkerScriptHex)") }
        if let unbondingTxHex, let unbondingSighash, let slashingTxHex, let slashingSighash, let unbondingSlashingTxHex,
            let unbondingSlashingSighash
        {
            lines += [
                "unbonding tx:              \(unbondingTxHex)", "unbonding sighash:         \(unbondingSighash)",
                "slashing tx:               \(slashingTxHex)", "slashing sighash:          \(slashingSighash)",
                "unbonding slashing tx:     \(unbondingSlashingTxHex)",
                "unbonding slashing sighash: \(unbondingSlashingSighash)",
            ]
        }
        return lines.joined(separator: "\n")
    }
}

/// `staking validate` output (printed only when the delegation is valid).
public struct StakingValidateOutput: CommandOutput, Equatable {
    public var valid: Bool
    public var stakingTxid: String
    public var stakingVout: UInt32
    public var unbondingTxid: String
    public var covenantSigners: [String]
    public var hasCovenantQuorum: Bool
    var text: String { "OK" }
}

/// The work behind `ishtar staking`, callable from tests.
public enum StakingActions {
    /// Scripts, address and, with `stakingOutPoint`, the unsigned transactions and sighashes.
    public static func build(
        parameters: StakingParameters, stakerKey: Schnorr.PublicKey, finalityProviderKeys: [Schnorr.PublicKey],
        stakingTime: UInt16, stakingValue: Amount, stakingOutPoint: OutPoint?, tag: Data?
    ) throws -> StakingBuildOutput {
        // The chain (and the covenant) take exactly one provider per delegation: an address
        // for several could only be spent through its timelock, after the whole staking time.
        guard finalityProviderKeys.count == 1 else {
            throw CLIError.badInput(
                "--fp-pk: a delegation names exactly one finality provider (got \(finalityProviderKeys.count)); bitcoin sent to a staking address for several could not be delegated")
        }
        do {
            guard stakingValue >= parameters.minStakingValue, stakingValue <= parameters.maxStakingValue else {
                throw StakingError.stakingValueOutOfRange(
                    value: stakingValue, min: parameters.minStakingValue, max: parameters.maxStakingValue)
            }
            guard stakingTime >= parameters.minStakingTime, stakingTime <= parameters.maxStakingTime else {
                throw StakingError.stakingTimeOutOfRange(
                    time: stakingTime, min: parameters.minStakingTime, max: parameters.maxStakingTime)
            }
            let builder = try StakingBuilder(
                stakerKey: stakerKey, finalityProviderKeys: finalityProviderKeys, stakingTime: stakingTime,
                parameters: parameters)
            var output = StakingBuildOutput(
                network: parameters.network.rawValue, stakingOutputPkscriptHex: builder.scripts.pkScript.bytes.hexString,
                stakingAddress: builder.scripts.address(network: parameters.network).encoded,
                stakingValue: stakingValue.sats,
                timelockScriptHex: builder.scripts.timelockLeaf.script.bytes.hexString,
                unbondingScriptHex: builder.scripts.unbondingLeaf.script.bytes.hexString,
                slashingScriptHex: builder.scripts.slashingLeaf.script.bytes.hexString,
                unbondingOutputPkscriptHex: builder.unbonding.pkScript.bytes.hexString,
                unbondingTimelockScriptHex: builder.unbonding.timelockLeaf.script.bytes.hexString,
                unbondingSlashingScriptHex: builder.unbonding.slashingLeaf.script.bytes.hexString,
                slashingChangePkscriptHex: builder.slashingChange.pkScript.bytes.hexString)
            if let tag {
                guard finalityProviderKeys.count == 1 else {
                    throw CLIError.badInput("--tag: the staking marker names exactly one finality provider")
                }
                let marker = try StakingMarker(
                    tag: tag, stakerKey: stakerKey, finalityProviderKey: finalityProviderKeys[0], stakingTime: stakingTime)
                output.stakingMarkerScriptHex = marker.script.bytes.hexString
            }
            if let stakingOutPoint {
                let unbonding = try builder.unbondingTransaction(stakingOutPoint: stakingOutPoint, stakingValue: stakingValue)
                let slashing = try builder.slashingTransaction(stakingOutPoint: stakingOutPoint, stakingValue: stakingValue)
                let unbondingSlashing = try builder.unbondingSlashingTransaction(unbondingTransaction: unbonding)
                output.unbondingTxHex = unbonding.serialized().hexString
                output.unbondingTxid = unbonding.txid.displayHex
                output.unbondingSighash = try builder.unbondingSighash(
                    unbondingTransaction: unbonding, stakingValue: stakingValue).hexString
                output.slashingTxHex = slashing.serialized().hexString
                output.slashingSighash = try builder.slashingSighash(
                    slashingTransaction: slashing, stakingValue: stakingValue).hexString
                output.unbondingSlashingTxHex = unbondingSlashing.serialized().hexString
                output.unbondingSlashingSighash = try builder.unbondingSlashingSighash(
                    unbondingSlashingTransaction: unbondingSlashing, unbondingValue: unbonding.outputs[0].value
                ).hexString
            }
            return output
        } catch let error as StakingError {
            throw CLIError.badInput(error.description)
        } catch let error as OpReturnDecodingError {
            throw CLIError.badInput("--tag: \(error)")
        }
    }

    /// Runs ``StakingValidation/validate(delegation:parameters:requireCovenantQuorum:)``; a failed
    /// rule becomes ``CLIError/verificationFailed(_:)`` (exit code 1) with the rule's description.
    public static func validate(
        delegation: DelegationTransactions, parameters: StakingParameters, requireCovenantQuorum: Bool
    ) throws -> StakingValidateOutput {
        do {
            let valid = try StakingValidation.validate(
                delegation: delegation, parameters: parameters, requireCovenantQuorum: requireCovenantQuorum)
            return StakingValidateOutput(
                valid: true, stakingTxid: valid.stakingOutPoint.txid.displayHex, stakingVout: valid.stakingOutPoint.index,
                unbondingTxid: delegation.unbondingTransaction.txid.displayHex,
                covenantSigners: valid.validCovenantKeys.map(\.rawRepresentation.hexString),
                hasCovenantQuorum: valid.hasCovenantQuorum)
        } catch {
            throw CLIError.verificationFailed(error.description)
        }
    }
}

extension Parse {
    static func network(_ text: String) throws -> Network {
        guard let network = Network(rawValue: text.lowercased()) else {
            throw ValidationError("--network: \"\(text)\" is not one of mainnet, testnet, signet, regtest")
        }
        return network
    }

    static func amount(_ sats: Int64, option: String) throws -> Amount {
        do { return try Amount(sats: sats) } catch {
            throw ValidationError("\(option): \(sats) sat is not a valid amount (0 … 2,100,000,000,000,000)")
        }
    }

    static func slashingRate(_ text: String) throws -> SlashingRate {
        do { return try SlashingRate(decimal: text) } catch {
            throw ValidationError("--slashing-rate: \"\(text)\" must be a decimal strictly between 0 and 1, such as 0.1")
        }
    }

    static func txid(_ text: String, option: String) throws -> TxID {
        do { return try TxID(displayHex: text) } catch {
            throw ValidationError("\(option): not a 32-byte transaction id in hex")
        }
    }

    static func tag(_ text: String) throws -> Data {
        if text.count == 8, let bytes = try? Data(hex: text) { return bytes }
        guard text.utf8.count == 4 else {
            throw ValidationError("--tag: must be 4 ASCII characters or 8 hex digits")
        }
        return Data(text.utf8)
    }

    static func transaction(_ text: String, option: String) throws -> Transaction {
        let bytes = try hex(text, option: option)
        do { return try Transaction(serialized: bytes) } catch {
            throw ValidationError("\(option): not a valid transaction: \(error)")
        }
    }

    static func signature(_ text: String, option: String) throws -> Schnorr.Signature {
        let bytes = try hex(text, option: option, length: 64)
        do { return try Schnorr.Signature(rawRepresentation: bytes) } catch {
            throw ValidationError("\(option): \(error)")
        }
    }

    static func adaptorSignature(_ text: String, option: String) throws -> AdaptorSignature {
        let bytes = try hex(text, option: option, length: 65)
        do { return try AdaptorSignature(rawRepresentation: bytes) } catch {
            throw ValidationError("\(option): \(error)")
        }
    }

    /// `COVENANT_PK:UNBONDING_SIG:SLASHING_ADAPTOR:UNBONDING_SLASHING_ADAPTOR`, the adaptor
    /// signatures for the single provider in `providers`.
    static func covenantSignatureSet(_ text: String, providers: [Schnorr.PublicKey]) throws -> CovenantSignatureSet {
        let option = "--covenant-sig"
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 4 else {
            throw ValidationError("\(option): expected COVENANT_PK:UNBONDING_SIG:SLASHING_ADAPTOR:UNBONDING_SLASHING_ADAPTOR")
        }
        guard providers.count == 1 else {
            throw ValidationError("\(option): adaptor signatures can only be given for a single --fp-pk")
        }
        return CovenantSignatureSet(
            covenantKey: try publicKey(parts[0], option: option),
            unbondingSignature: try signature(parts[1], option: option),
            slashingAdaptorSignatures: [providers[0]: try adaptorSignature(parts[2], option: option)],
            unbondingSlashingAdaptorSignatures: [providers[0]: try adaptorSignature(parts[3], option: option)])
    }
}
