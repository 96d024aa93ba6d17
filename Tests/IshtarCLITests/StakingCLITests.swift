import Foundation
import IshtarBitcoin
import IshtarCLI
import IshtarCrypto
import Testing

/// `ishtar staking build|validate`, run as the real binary.
@Suite(.serialized) struct StakingCLITests {
    static func key(_ scalar: UInt8) -> Schnorr.PrivateKey {
        (try? Schnorr.PrivateKey(rawRepresentation: Data(repeating: 0, count: 31) + [scalar])) ?? Schnorr.PrivateKey()
    }

    static func sat(_ value: Int64) -> Amount { (try? Amount(sats: value)) ?? .zero }

    let staker = key(1)
    let provider = key(2)
    let covenants = (3...7).map { key(UInt8($0)) }
    let stakingValue: Int64 = 1_000_000

    var parameterArgs: [String] {
        ["--network", "regtest"] + covenants.flatMap { ["--covenant-pk", $0.publicKey.rawRepresentation.hexString] } + [
            "--covenant-quorum", "3", "--unbonding-time", "200", "--unbonding-fee", "1000",
            "--slashing-pkscript", "6a07626162796c6f6e", "--slashing-rate", "0.1", "--min-slashing-fee", "1000",
        ]
    }

    var delegationArgs: [String] {
        ["--staker-pk", staker.publicKey.rawRepresentation.hexString, "--fp-pk", provider.publicKey.rawRepresentation.hexString,
         "--staking-time", "1000", "--staking-value", String(stakingValue)]
    }

    var parameters: StakingParameters {
        StakingParameters.ishtarDefaults(covenantKeys: covenants.map(\.publicKey), covenantQuorum: 3, network: .regtest)
    }

    @Test func buildPrintsScriptsAddressAndTransactions() throws {
        let scriptsOnly = try IshtarProcess.json(["staking", "build"] + parameterArgs + delegationArgs + ["--tag", "ISHT"])
        let builder = try StakingBuilder(
            stakerKey: staker.publicKey, finalityProviderKeys: [provider.publicKey], stakingTime: 1000, parameters: parameters)
        #expect(scriptsOnly["staking_output_pkscript_hex"] as? String == builder.scripts.pkScript.bytes.hexString)
        #expect(scriptsOnly["staking_address"] as? String == builder.scripts.address(network: .regtest).encoded)
        #expect(scriptsOnly["timelock_script_hex"] as? String == builder.scripts.timelockLeaf.script.bytes.hexString)
        #expect(scriptsOnly["unbonding_script_hex"] as? String == builder.scripts.unbondingLeaf.script.bytes.hexString)
        #expect(scriptsOnly["slashing_script_hex"] as? String == builder.scripts.slashingLeaf.script.bytes.hexString)
        let marker = try #require(scriptsOnly["staking_marker_script_hex"] as? String)
        #expect(marker.hasPrefix("6a47" + Data("ISHT".utf8).hexString + "00"))
        #expect(scriptsOnly["unbonding_tx_hex"] == nil)

        let txid = String(repeating: "ab", count: 32)
        let full = try IshtarProcess.json(
            ["staking", "build"] + parameterArgs + delegationArgs + ["--staking-txid", txid, "--staking-vout", "1"])
        for field in ["unbonding_tx_hex", "unbonding_timelock_script_hex", "unbonding_slashing_script_hex", "slashing_tx_hex",
                      "unbonding_slashing_tx_hex", "unbonding_sighash", "slashing_sighash", "unbonding_slashing_sighash"] {
            #expect(full[field] is String, "missing \(field)")
        }
        let outPoint = OutPoint(txid: try TxID(displayHex: txid), index: 1)
        let unbonding = try builder.unbondingTransaction(stakingOutPoint: outPoint, stakingValue: Self.sat(stakingValue))
        #expect(full["unbonding_tx_hex"] as? String == unbonding.serialized().hexString)
        #expect(full["slashing_sighash"] as? String == (try builder.slashingSighash(
            slashingTransaction: try builder.slashingTransaction(stakingOutPoint: outPoint, stakingValue: Self.sat(stakingValue)),
            stakingValue: Self.sat(stakingValue))).hexString)
    }

    @Test func buildRejectsBadInputWithExitCode2() throws {
        let badNetwork = try IshtarProcess.run(
            ["staking", "build"] + parameterArgs.map { $0 == "regtest" ? "moonnet" : $0 } + delegationArgs)
        #expect(badNetwork.status == 2)
        #expect(badNetwork.stderr.contains("--network"))
        let badRate = try IshtarProcess.run(
            ["staking", "build"] + parameterArgs.map { $0 == "0.1" ? "1.5" : $0 } + delegationArgs)
        #expect(badRate.status == 2)
        #expect(badRate.stderr.contains("--slashing-rate"))
        let badKey = try IshtarProcess.run(
            ["staking", "build"] + parameterArgs + delegationArgs.map { $0 == "1000" ? "1000" : $0 } + ["--fp-pk", "zz"])
        #expect(badKey.status == 2)
        let duplicate = try IshtarProcess.run(
            ["staking", "build"] + parameterArgs
                + ["--staker-pk", covenants[0].publicKey.rawRepresentation.hexString, "--fp-pk",
                   provider.publicKey.rawRepresentation.hexString, "--staking-time", "1000", "--staking-value", "1000000"])
        #expect(duplicate.status == 2)
        #expect(duplicate.stderr.contains("distinct"))
        // Two providers: the chain takes one per delegation, so no address is printed for them.
        let two = try IshtarProcess.run(
            ["staking", "build"] + parameterArgs + delegationArgs + ["--fp-pk", covenants[1].publicKey.rawRepresentation.hexString])
        #expect(two.status == 2)
        #expect(two.stderr.contains("exactly one finality provider"), "\(two.stderr)")
        #expect(!two.stdout.contains("staking_address"))
    }

    /// A complete valid delegation as CLI arguments, with two covenant members' signatures.
    func validateArgs(mutate: (inout DelegationTransactions) throws -> Void = { _ in }) throws -> [String] {
        let builder = try StakingBuilder(
            stakerKey: staker.publicKey, finalityProviderKeys: [provider.publicKey], stakingTime: 1000, parameters: parameters)
        let staking = Transaction(
            inputs: [TxIn(previousOutput: OutPoint(txid: try TxID(displayHex: String(repeating: "cd", count: 32)), index: 0))],
            outputs: [builder.stakingOutput(value: try Amount(sats: stakingValue))])
        let outPoint = OutPoint(txid: staking.txid, index: 0)
        let value = try Amount(sats: stakingValue)
        let unbonding = try builder.unbondingTransaction(stakingOutPoint: outPoint, stakingValue: value)
        let slashing = try builder.slashingTransaction(stakingOutPoint: outPoint, stakingValue: value)
        let unbondingSlashing = try builder.unbondingSlashingTransaction(unbondingTransaction: unbonding)
        var delegation = DelegationTransactions(
            stakerKey: staker.publicKey, finalityProviderKeys: [provider.publicKey], stakingTime: 1000, stakingValue: value,
            stakingTransaction: staking, stakingOutputIndex: 0, unbondingTransaction: unbonding,
            slashingTransaction: slashing, unbondingSlashingTransaction: unbondingSlashing,
            stakerSlashingSignature: try StakingSigner.sign(
                sighash: builder.slashingSighash(slashingTransaction: slashing, stakingValue: value), key: staker),
            stakerUnbondingSlashingSignature: try StakingSigner.sign(
                sighash: builder.unbondingSlashingSighash(
                    unbondingSlashingTransaction: unbondingSlashing, unbondingValue: unbonding.outputs[0].value),
                key: staker))
        let sets = try covenants.prefix(2).map {
            try CovenantSigner.sign(delegation: delegation, parameters: parameters, covenantKey: $0)
        }
        try mutate(&delegation)
        var args = ["staking", "validate"] + parameterArgs + delegationArgs + [
            "--staking-tx-hex", delegation.stakingTransaction.serialized().hexString, "--staking-vout", "0",
            "--unbonding-tx-hex", delegation.unbondingTransaction.serialized().hexString,
            "--slashing-tx-hex", delegation.slashingTransaction.serialized().hexString,
            "--unbonding-slashing-tx-hex", delegation.unbondingSlashingTransaction.serialized().hexString,
            "--staker-slashing-sig", delegation.stakerSlashingSignature.rawRepresentation.hexString,
            "--staker-unbonding-slashing-sig", delegation.stakerUnbondingSlashingSignature.rawRepresentation.hexString,
        ]
        for set in sets {
            let parts = [
                set.covenantKey.rawRepresentation.hexString, set.unbondingSignature.rawRepresentation.hexString,
                set.slashingAdaptorSignatures[provider.publicKey]?.rawRepresentation.hexString ?? "",
                set.unbondingSlashingAdaptorSignatures[provider.publicKey]?.rawRepresentation.hexString ?? "",
            ]
            args += ["--covenant-sig", parts.joined(separator: ":")]
        }
        return args
    }

    @Test func validateExitCodes() throws {
        let ok = try IshtarProcess.run(try validateArgs())
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(ok.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "OK")
        let json = try IshtarProcess.json(try validateArgs())
        #expect(json["valid"] as? Bool == true)
        #expect((json["covenant_signers"] as? [String])?.count == 2)
        #expect(json["has_covenant_quorum"] as? Bool == false)

        // Two of three covenant signatures: fails only when the quorum is required.
        let quorum = try IshtarProcess.run(try validateArgs() + ["--require-covenant-quorum"])
        #expect(quorum.status == 1)
        #expect(quorum.stderr.contains("covenant quorum not met"))

        // A wrong unbonding fee: a failed rule, exit 1, the rule named.
        let wrongFee = try IshtarProcess.run(try validateArgs { $0.unbondingTransaction.outputs[0].value = Self.sat(990_000) })
        #expect(wrongFee.status == 1)
        #expect(wrongFee.stderr.contains("staking value − unbonding fee"))

        // Malformed transaction hex: exit 2.
        var malformed = try validateArgs()
        if let index = malformed.firstIndex(of: "--slashing-tx-hex") { malformed[index + 1] = "0200000000" }
        let bad = try IshtarProcess.run(malformed)
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("--slashing-tx-hex"))
    }
}
