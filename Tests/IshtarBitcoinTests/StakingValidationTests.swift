import Foundation
import IshtarBitcoin
import IshtarCrypto
import Testing

@Suite("Staking validation")
struct StakingValidationTests {
    let fixture = StakingFixture()

    /// Applies `mutate` to a valid delegation (re-signing by the staker unless told not to) and
    /// expects validation to fail with exactly `expected`.
    func expectFailure(
        _ expected: StakingError, resign: Bool = true, requireQuorum: Bool = false, covenantSigners: Int = 0,
        parameters: StakingParameters? = nil, sourceLocation: SourceLocation = #_sourceLocation,
        _ mutate: (inout DelegationTransactions) throws -> Void
    ) throws {
        var delegation = try fixture.delegation(covenantSigners: covenantSigners)
        try mutate(&delegation)
        if resign { try fixture.resign(&delegation) }
        #expect(throws: expected, sourceLocation: sourceLocation) {
            try StakingValidation.validate(
                delegation: delegation, parameters: parameters ?? fixture.parameters, requireCovenantQuorum: requireQuorum)
        }
    }

    @Test func validDelegationPasses() throws {
        let delegation = try fixture.delegation(covenantSigners: 3)
        let valid = try StakingValidation.validate(delegation: delegation, parameters: fixture.parameters, requireCovenantQuorum: true)
        #expect(valid.hasCovenantQuorum)
        #expect(valid.validCovenantKeys.count == 3)
        #expect(valid.stakingOutPoint == OutPoint(txid: delegation.stakingTransaction.txid, index: 1))
        #expect(valid.unbondingOutput.value.sats == 999_000)
        let pending = try fixture.delegation()
        #expect(try !StakingValidation.validate(delegation: pending, parameters: fixture.parameters).hasCovenantQuorum)
    }

    @Test func parameterAndKeyRules() throws {
        try expectFailure(.wrongFinalityProviderCount(expected: 1, actual: 2), resign: false) {
            $0.finalityProviderKeys.append(StakingFixture.key(9).publicKey)
        }
        try expectFailure(.wrongFinalityProviderCount(expected: 1, actual: 0), resign: false) { $0.finalityProviderKeys = [] }
        try expectFailure(.duplicateKey(fixture.covenants[0].publicKey), resign: false) {
            $0.finalityProviderKeys = [fixture.covenants[0].publicKey]
        }
        try expectFailure(.duplicateKey(fixture.staker.publicKey), resign: false) {
            $0.finalityProviderKeys = [fixture.staker.publicKey]
        }
        try expectFailure(.stakingValueOutOfRange(value: .sats(10_000_000_001), min: .sats(10_000), max: .sats(10_000_000_000)), resign: false) {
            $0.stakingValue = .sats(10_000_000_001)
        }
        try expectFailure(.stakingValueOutOfRange(value: .sats(9_999), min: .sats(10_000), max: .sats(10_000_000_000)), resign: false) {
            $0.stakingValue = .sats(9_999)
        }
        try expectFailure(.stakingTimeOutOfRange(time: 399, min: 400, max: 65_535), resign: false) { $0.stakingTime = 399 }
        var badParameters = fixture.parameters
        badParameters.covenantQuorum = 9
        try expectFailure(.invalidCovenantQuorum(quorum: 9, keyCount: 5), resign: false, parameters: badParameters) { _ in }
    }

    @Test func stakingOutputRules() throws {
        try expectFailure(.stakingOutputIndexOutOfRange(index: 2, outputCount: 2), resign: false) { $0.stakingOutputIndex = 2 }
        try expectFailure(.wrongStakingScript, resign: false) { $0.stakingOutputIndex = 0 }
        // A staking output for another staking time has another script.
        try expectFailure(.wrongStakingScript, resign: false) { $0.stakingTime = 1001 }
        try expectFailure(.stakingValueMismatch(declared: .sats(1_000_001), actual: .sats(1_000_000)), resign: false) {
            $0.stakingValue = .sats(1_000_001)
        }
    }

    @Test func unbondingRules() throws {
        try expectFailure(.unbondingFeeMismatch(expectedOutput: .sats(999_000), actualOutput: .sats(998_000)), resign: false) {
            $0.unbondingTransaction.outputs[0].value = .sats(998_000)
        }
        try expectFailure(.wrongSequence(.unbonding, sequence: 0xffff_fffe), resign: false) {
            $0.unbondingTransaction.inputs[0].sequence = 0xffff_fffe
        }
        try expectFailure(.wrongVersion(.unbonding, version: 1), resign: false) { $0.unbondingTransaction.version = 1 }
        try expectFailure(.wrongLockTime(.unbonding, lockTime: 5), resign: false) { $0.unbondingTransaction.lockTime = 5 }
        try expectFailure(.nonEmptyScriptSig(.unbonding), resign: false) {
            $0.unbondingTransaction.inputs[0].scriptSig = [.op(.op1)]
        }
        try expectFailure(.wrongInputCount(.unbonding, count: 2), resign: false) {
            $0.unbondingTransaction.inputs.append($0.unbondingTransaction.inputs[0])
        }
        try expectFailure(.wrongOutputCount(.unbonding, expected: 1, actual: 2), resign: false) {
            $0.unbondingTransaction.outputs.append(TxOut(value: .sats(1), scriptPubKey: StakingParameters.babylonBurnScript))
        }
        try expectFailure(.wrongUnbondingScript, resign: false) {
            $0.unbondingTransaction.outputs[0].scriptPubKey = try fixture.builder.scripts.pkScript
        }
        let staking = try fixture.stakingTransaction()
        try expectFailure(
            .wrongInput(.unbonding, expected: OutPoint(txid: staking.txid, index: 1), actual: OutPoint(txid: staking.txid, index: 0)),
            resign: false
        ) { $0.unbondingTransaction.inputs[0].previousOutput.index = 0 }
    }

    @Test func slashingRules() throws {
        try expectFailure(.slashingOutputBelowRate(.slashing, expectedAtLeast: .sats(100_000), actual: .sats(99_999))) {
            $0.slashingTransaction.outputs[0].value = .sats(99_999)
            $0.slashingTransaction.outputs[1].value = .sats(899_001)
        }
        try expectFailure(.slashingOutputBelowRate(.unbondingSlashing, expectedAtLeast: .sats(99_900), actual: .sats(99_899))) {
            $0.unbondingSlashingTransaction.outputs[0].value = .sats(99_899)
        }
        try expectFailure(.slashingFeeTooLow(.slashing, minimum: .sats(1_000), actual: .sats(999))) {
            $0.slashingTransaction.outputs[1].value = .sats(899_001)
        }
        try expectFailure(.outputsExceedInput(.slashing, input: .sats(1_000_000), outputs: .sats(1_000_001))) {
            $0.slashingTransaction.outputs[1].value = .sats(900_001)
        }
        try expectFailure(.dustOutput(.slashing, index: 1, value: .sats(329), threshold: .sats(330))) {
            // The rest goes to fees: valid amounts, but the change output is dust.
            $0.slashingTransaction.outputs[1].value = .sats(329)
        }
        try expectFailure(.wrongSlashingScript(.slashing)) {
            $0.slashingTransaction.outputs[0].scriptPubKey = .opReturn(Data("babylom".utf8))
        }
        try expectFailure(.wrongSlashingChangeScript(.unbondingSlashing)) {
            $0.unbondingSlashingTransaction.outputs[1].scriptPubKey = .p2tr(outputKey: fixture.staker.publicKey)
        }
        try expectFailure(.wrongOutputCount(.slashing, expected: 2, actual: 1)) { $0.slashingTransaction.outputs.removeLast() }
        try expectFailure(.wrongSequence(.slashing, sequence: 0)) { $0.slashingTransaction.inputs[0].sequence = 0 }
        try expectFailure(.wrongLockTime(.unbondingSlashing, lockTime: 1)) { $0.unbondingSlashingTransaction.lockTime = 1 }
        // The unbonding slashing transaction must spend the unbonding transaction's output 0.
        try expectFailure(.wrongInput(.unbondingSlashing, expected: OutPoint(txid: try fixture.delegation().unbondingTransaction.txid, index: 0),
                                      actual: OutPoint(txid: try fixture.stakingTransaction().txid, index: 1))) {
            $0.unbondingSlashingTransaction.inputs[0].previousOutput = $0.stakingOutPoint
        }
    }

    @Test func stakerSignatureRules() throws {
        try expectFailure(.invalidStakerSignature(.slashing), resign: false) {
            $0.stakerSlashingSignature = $0.stakerUnbondingSlashingSignature
        }
        try expectFailure(.invalidStakerSignature(.unbondingSlashing), resign: false) {
            $0.stakerUnbondingSlashingSignature = try StakingSigner.sign(sighash: Data(repeating: 1, count: 32), key: fixture.staker)
        }
        // Signed by another key.
        try expectFailure(.invalidStakerSignature(.slashing), resign: false) {
            let sighash = try fixture.builder.slashingSighash(slashingTransaction: $0.slashingTransaction, stakingValue: $0.stakingValue)
            $0.stakerSlashingSignature = try StakingSigner.sign(sighash: sighash, key: fixture.provider)
        }
        // A transaction changed after signing (a higher fee) invalidates the signature.
        try expectFailure(.invalidStakerSignature(.slashing), resign: false) {
            $0.slashingTransaction.outputs[1].value = .sats(898_000)
        }
    }

    @Test func covenantSignatureRules() throws {
        let provider = fixture.provider.publicKey
        let covenant0 = fixture.covenants[0].publicKey
        try expectFailure(.covenantQuorumNotMet(required: 3, actual: 2), resign: false, requireQuorum: true, covenantSigners: 2) { _ in }
        try expectFailure(.invalidCovenantAdaptorSignature(.slashing, covenantKey: covenant0, finalityProviderKey: provider),
                          resign: false, covenantSigners: 1) {
            // Encrypted under another key than the provider's.
            let other = StakingFixture.key(9).publicKey
            let valid = try StakingValidation.validate(delegation: $0, parameters: fixture.parameters)
            $0.covenantSignatures[0].slashingAdaptorSignatures[provider] = try CovenantAdaptor.sign(
                covenantKey: fixture.covenants[0], sighash: valid.slashingSighash, finalityProviderKey: other)
        }
        try expectFailure(.invalidCovenantAdaptorSignature(.unbondingSlashing, covenantKey: covenant0, finalityProviderKey: provider),
                          resign: false, covenantSigners: 1) {
            // Made over the wrong transaction's sighash.
            $0.covenantSignatures[0].unbondingSlashingAdaptorSignatures[provider] =
                $0.covenantSignatures[0].slashingAdaptorSignatures[provider]
        }
        try expectFailure(.missingCovenantAdaptorSignature(.slashing, covenantKey: covenant0, finalityProviderKey: provider),
                          resign: false, covenantSigners: 1) {
            $0.covenantSignatures[0].slashingAdaptorSignatures = [:]
        }
        try expectFailure(.invalidCovenantUnbondingSignature(covenantKey: covenant0), resign: false, covenantSigners: 2) {
            $0.covenantSignatures[0].unbondingSignature = $0.covenantSignatures[1].unbondingSignature
        }
        try expectFailure(.duplicateCovenantSignature(covenant0), resign: false, covenantSigners: 1) {
            $0.covenantSignatures.append($0.covenantSignatures[0])
        }
        try expectFailure(.unknownCovenantKey(fixture.staker.publicKey), resign: false, covenantSigners: 1) {
            $0.covenantSignatures[0].covenantKey = fixture.staker.publicKey
        }
    }

    @Test func covenantRefusesToSignAnInvalidDelegation() throws {
        var delegation = try fixture.delegation()
        delegation.slashingTransaction.outputs[0].value = .sats(99_999)
        delegation.slashingTransaction.outputs[1].value = .sats(899_001)
        try fixture.resign(&delegation)
        #expect(throws: StakingError.slashingOutputBelowRate(.slashing, expectedAtLeast: .sats(100_000), actual: .sats(99_999))) {
            try CovenantSigner.sign(delegation: delegation, parameters: fixture.parameters, covenantKey: fixture.covenants[0])
        }
        #expect(throws: StakingError.unknownCovenantKey(fixture.staker.publicKey)) {
            try CovenantSigner.sign(delegation: try fixture.delegation(), parameters: fixture.parameters, covenantKey: fixture.staker)
        }
    }

    @Test func adaptorSignaturesDecryptWithTheProviderKey() throws {
        let delegation = try fixture.delegation(covenantSigners: 3)
        let valid = try StakingValidation.validate(delegation: delegation, parameters: fixture.parameters)
        let decrypted = CovenantAdaptor.decryptAll(
            delegation.covenantSignatures, kind: .slashing, sighash: valid.slashingSighash, finalityProviderSecret: fixture.provider)
        #expect(decrypted.count == 3)
        for (key, signature) in decrypted { #expect(key.isValidSignature(signature, for: valid.slashingSighash)) }
        // The wrong secret yields nothing usable.
        let wrong = CovenantAdaptor.decryptAll(
            delegation.covenantSignatures, kind: .slashing, sighash: valid.slashingSighash,
            finalityProviderSecret: StakingFixture.key(9))
        #expect(wrong.isEmpty)
    }

    @Test func everyErrorDescribesItsRule() {
        let key = StakingFixture.key(1).publicKey
        let samples: [StakingError] = [
            .unbondingFeeMismatch(expectedOutput: .sats(1), actualOutput: .sats(2)),
            .slashingOutputBelowRate(.slashing, expectedAtLeast: .sats(10), actual: .sats(9)),
            .duplicateKey(key), .covenantQuorumNotMet(required: 3, actual: 1), .invalidStakerSignature(.unbondingSlashing),
        ]
        for error in samples {
            #expect(!error.description.isEmpty && !error.description.contains("\n"))
        }
        #expect(StakingError.slashingOutputBelowRate(.slashing, expectedAtLeast: .sats(10), actual: .sats(9)).description
            == "slashing transaction output 0 pays 9 sat, below value × slashing rate = 10 sat")
    }
}
