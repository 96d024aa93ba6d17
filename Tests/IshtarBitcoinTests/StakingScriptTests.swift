import Foundation
import IshtarBitcoin
import IshtarCrypto
import Testing

/// x-only keys of the scalars 1 … 7 (the secp256k1 generator's small multiples).
private enum SmallKey {
    static let g1 = "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
    static let g2 = "c6047f9441ed7d6d3045406e95c07cd85c778e4b8cef3ca7abac09b95c709ee5"
    static let g3 = "f9308a019258c31049344f85f89d5229b531c845836f99b08601f113bce036f9"
    static let g4 = "e493dbf1c10d80f3581e4904930b1404cc6c13900ee0758474fa94abe8c4cd13"
    static let g5 = "2f8bde4d1a07209355b4a7250a5c5128e88b84bddc619ab7cba8d569b240efe4"
    static let g6 = "fff97bd5755eeea420453a14355235d382f6472f8568a18b2f057a1460297556"
    static let g7 = "5cbdf0646e5db4eaa398f365f2ea7a0e3d419b7e0330e39ce92bddedcac4f9bc"
}

@Suite("Staking scripts")
struct StakingScriptTests {
    let fixture = StakingFixture()

    @Test func smallKeysAreTheKnownPoints() {
        let expected = [SmallKey.g1, SmallKey.g2, SmallKey.g3, SmallKey.g4, SmallKey.g5, SmallKey.g6, SmallKey.g7]
        for (index, hexKey) in expected.enumerated() {
            #expect(StakingFixture.key(UInt8(index + 1)).publicKey.rawRepresentation.hexString == hexKey)
        }
    }

    @Test func leafScriptsMatchHandDerivedBytes() throws {
        // Covenant keys 3G, 4G, 5G with quorum 2; sorted ascending: 5G (2f8b…), 4G (e493…), 3G (f930…).
        let scripts = try StakingScripts(
            stakerKey: StakingFixture.key(1).publicKey, finalityProviderKeys: [StakingFixture.key(2).publicKey],
            covenantKeys: [3, 4, 5].map { StakingFixture.key($0).publicKey }, covenantQuorum: 2, stakingTime: 1000)
        let covenant = "20" + SmallKey.g5 + "ac" + "20" + SmallKey.g4 + "ba" + "20" + SmallKey.g3 + "ba" + "52" + "9c"
        #expect(scripts.timelockLeaf.script.bytes.hexString == "20" + SmallKey.g1 + "ad" + "02e803" + "b2")
        #expect(scripts.unbondingLeaf.script.bytes.hexString == "20" + SmallKey.g1 + "ad" + covenant)
        // One provider: `<fp> OP_CHECKSIGVERIFY` (not last).
        #expect(scripts.slashingLeaf.script.bytes.hexString == "20" + SmallKey.g1 + "ad" + "20" + SmallKey.g2 + "ad" + covenant)
        #expect(scripts.timelockLeaf.version == 0xc0)
    }

    /// Interoperability: a staking transaction broadcast on Babylon's signet (txid 0942545a…5e1b,
    /// recorded as a test vector by Trust Wallet Core): staker 9789cdd1…, provider 03d5a0bb…,
    /// three covenant keys with quorum 2, staking time 1000. Our output script and marker must
    /// be byte-identical to the ones in that transaction.
    @Test func matchesABabylonSignetStakingTransaction() throws {
        let key = { (hexKey: String) in try Schnorr.PublicKey(rawRepresentation: try Data(hex: hexKey)) }
        let staker = try key("9789cdd12bc90bbd73445718f8a709956eb3cce362716a3425610abb75ea1132")
        let provider = try key("03d5a0bb72d71993e435d6c5a70e2aa4db500a62cfaae33c56050deefee64ec0")
        let covenant = try [
            "49766ccd9e3cd94343e2040474a77fb37cdfd30530d05f9f1e96ae1e2102c86e",
            "76d1ae01f8fb6bf30108731c884cddcf57ef6eef2d9d9559e130894e0e40c62c",
            "17921cf156ccb4e73d428f996ed11b245313e37e27c978ac4d2cc21eca4672e4",
        ].map(key)
        let scripts = try StakingScripts(
            stakerKey: staker, finalityProviderKeys: [provider], covenantKeys: covenant, covenantQuorum: 2, stakingTime: 1000)
        #expect(scripts.pkScript.bytes.hexString == "51206be6aea66b20c80a52d9ad36a7b2a9ebaf0300c973fce164dc2a5b411e894cce")
        let marker = try StakingMarker(tag: try Data(hex: "62626434"), stakerKey: staker, finalityProviderKey: provider, stakingTime: 1000)
        #expect(marker.script.bytes.hexString == "6a4762626434009789cdd12bc90bbd73445718f8a709956eb3cce362716a3425610abb75ea1132"
            + "03d5a0bb72d71993e435d6c5a70e2aa4db500a62cfaae33c56050deefee64ec003e8")
    }

    @Test(arguments: [(UInt16(1000), "02e803"), (18, "0112"), (16, "60"), (1, "51"), (17, "0111"), (127, "017f"),
                      (128, "028000"), (255, "02ff00"), (65535, "03ffff00")])
    func timelockNumbersAreMinimal(blocks: UInt16, push: String) throws {
        let script = try StakingScripts.timelockScript(stakerKey: StakingFixture.key(1).publicKey, blocks: blocks)
        #expect(script.bytes.hexString == "20" + SmallKey.g1 + "ad" + push + "b2")
    }

    @Test func zeroTimelockIsRejected() {
        #expect(throws: StakingError.invalidTimelock(blocks: 0)) {
            try StakingScripts.timelockScript(stakerKey: StakingFixture.key(1).publicKey, blocks: 0)
        }
    }

    @Test func severalProvidersMakeASortedOneOfNMultisig() throws {
        let scripts = try StakingScripts(
            stakerKey: StakingFixture.key(1).publicKey,
            finalityProviderKeys: [StakingFixture.key(6).publicKey, StakingFixture.key(2).publicKey],
            covenantKeys: [StakingFixture.key(3).publicKey], covenantQuorum: 1, stakingTime: 16)
        let providers = "20" + SmallKey.g2 + "ac" + "20" + SmallKey.g6 + "ba" + "51" + "9d"
        #expect(scripts.slashingLeaf.script.bytes.hexString == "20" + SmallKey.g1 + "ad" + providers + "20" + SmallKey.g3 + "ac")
        #expect(scripts.timelockLeaf.script.bytes.hexString == "20" + SmallKey.g1 + "ad" + "60" + "b2")
    }

    @Test func treeShapeAndControlBlocks() throws {
        let scripts = try fixture.builder.scripts
        let timelock = scripts.timelockLeaf.hash
        let unbonding = scripts.unbondingLeaf.hash
        let slashing = scripts.slashingLeaf.hash
        let root = Taproot.branchHash(Taproot.branchHash(timelock, unbonding), slashing)
        #expect(scripts.output.merkleRoot == root)
        #expect(scripts.output.internalKey == Taproot.unspendableInternalKey)
        #expect(Taproot.unspendableInternalKey.rawRepresentation.hexString
            == "50929b74c1a04954b78b4b6035e97a5e078a5a0f28ec96d547bfee9ace803ac0")
        let (outputKey, _) = try Taproot.unspendableInternalKey.tapTweaked(merkleRoot: root)
        #expect(scripts.pkScript.bytes == Data([0x51, 0x20]) + outputKey.rawRepresentation)
        #expect(scripts.address(network: .regtest).encoded.hasPrefix("bcrt1p"))

        // Slashing at depth 1, timelock and unbonding at depth 2, with the right siblings.
        let slashingBlock = try scripts.output.controlBlock(for: scripts.slashingLeaf)
        #expect(slashingBlock.path == [Taproot.branchHash(timelock, unbonding)])
        #expect(slashingBlock.serialized.count == 65)
        let timelockBlock = try scripts.output.controlBlock(for: scripts.timelockLeaf)
        #expect(timelockBlock.path == [unbonding, slashing])
        let unbondingBlock = try scripts.output.controlBlock(for: scripts.unbondingLeaf)
        #expect(unbondingBlock.path == [timelock, slashing])
        for leaf in [scripts.timelockLeaf, scripts.unbondingLeaf, scripts.slashingLeaf] {
            let block = try scripts.output.controlBlock(for: leaf)
            #expect(block.verify(script: leaf.script, outputKey: scripts.output.outputKey))
            #expect(block.serialized.first.map { $0 & 0xfe } == 0xc0)
        }
    }

    @Test func unbondingAndChangeOutputs() throws {
        let builder = try fixture.builder
        let unbonding = builder.unbonding
        #expect(unbonding.slashingLeaf == builder.scripts.slashingLeaf)
        #expect(unbonding.timelockLeaf.script == (try StakingScripts.timelockScript(stakerKey: fixture.staker.publicKey, blocks: 200)))
        #expect(unbonding.output.merkleRoot == Taproot.branchHash(unbonding.timelockLeaf.hash, unbonding.slashingLeaf.hash))
        #expect(try unbonding.output.controlBlock(for: unbonding.timelockLeaf).path == [unbonding.slashingLeaf.hash])
        #expect(try unbonding.output.controlBlock(for: unbonding.slashingLeaf).path == [unbonding.timelockLeaf.hash])
        let change = builder.slashingChange
        #expect(change.timelockLeaf.script.bytes.hexString == "20" + SmallKey.g1 + "ad" + "02c800" + "b2")
        #expect(change.output.merkleRoot == change.timelockLeaf.hash)
        #expect(try change.output.controlBlock(for: change.timelockLeaf).serialized.count == 33)
        #expect(builder.scripts.pkScript != unbonding.pkScript)
    }

    @Test func keysMustBeDistinct() {
        let staker = StakingFixture.key(1).publicKey
        let provider = StakingFixture.key(2).publicKey
        let covenant = [3, 4, 5].map { StakingFixture.key($0).publicKey }
        #expect(throws: StakingError.duplicateKey(staker)) {
            try StakingScripts(stakerKey: staker, finalityProviderKeys: [staker], covenantKeys: covenant, covenantQuorum: 2, stakingTime: 10)
        }
        #expect(throws: StakingError.duplicateKey(covenant[0])) {
            try StakingScripts(
                stakerKey: staker, finalityProviderKeys: [covenant[0]], covenantKeys: covenant, covenantQuorum: 2, stakingTime: 10)
        }
        #expect(throws: StakingError.duplicateKey(covenant[1])) {
            try StakingScripts(
                stakerKey: staker, finalityProviderKeys: [provider], covenantKeys: covenant + [covenant[1]], covenantQuorum: 2,
                stakingTime: 10)
        }
        #expect(throws: StakingError.noFinalityProviderKeys) {
            try StakingScripts(stakerKey: staker, finalityProviderKeys: [], covenantKeys: covenant, covenantQuorum: 2, stakingTime: 10)
        }
        #expect(throws: StakingError.invalidCovenantQuorum(quorum: 4, keyCount: 3)) {
            try StakingScripts(stakerKey: staker, finalityProviderKeys: [provider], covenantKeys: covenant, covenantQuorum: 4, stakingTime: 10)
        }
        #expect(throws: StakingError.invalidCovenantQuorum(quorum: 0, keyCount: 3)) {
            try StakingScripts(stakerKey: staker, finalityProviderKeys: [provider], covenantKeys: covenant, covenantQuorum: 0, stakingTime: 10)
        }
    }

    @Test func witnessOrdersSignaturesByKeyDescendingWithExactlyQuorum() throws {
        let builder = try fixture.builder
        let signature = { (byte: UInt8) in try Schnorr.Signature(rawRepresentation: Data(repeating: byte, count: 64)) }
        // Covenant 3G…7G, quorum 3; ascending order: 5G(2f8b) 7G(5cbd) 4G(e493) 3G(f930) 6G(fff9).
        let keys = fixture.covenants.map(\.publicKey)
        var given = [Schnorr.PublicKey: Schnorr.Signature]()
        for (index, key) in keys.enumerated() { given[key] = try signature(UInt8(3 + index)) }
        let stack = try StakingBuilder.multisigStack(keys: keys, threshold: 3, signatures: given, group: "covenant")
        // Exactly three used (the first three ascending: 5G, 7G, 4G), listed descending.
        #expect(stack == [Data(), Data(), Data(repeating: 4, count: 64), Data(repeating: 7, count: 64), Data(repeating: 5, count: 64)])

        let witness = try builder.unbondingWitness(stakerSignature: try signature(1), covenantSignatures: given)
        #expect(witness.count == 5 + 1 + 2)
        #expect(witness[5] == Data(repeating: 1, count: 64))
        #expect(witness[6] == builder.scripts.unbondingLeaf.script.bytes)
        #expect(witness[7] == (try builder.scripts.output.controlBlock(for: builder.scripts.unbondingLeaf)).serialized)

        let slashing = try builder.stakingSlashingWitness(
            stakerSignature: try signature(1), finalityProviderSignatures: [fixture.provider.publicKey: try signature(2)],
            covenantSignatures: given)
        #expect(slashing.count == 5 + 1 + 1 + 2)
        #expect(slashing[5] == Data(repeating: 2, count: 64))
        #expect(slashing[6] == Data(repeating: 1, count: 64))
        #expect(slashing[7] == builder.scripts.slashingLeaf.script.bytes)

        #expect(throws: StakingError.notEnoughSignatures(group: "covenant", required: 3, available: 2)) {
            try builder.unbondingWitness(
                stakerSignature: try signature(1), covenantSignatures: [keys[0]: try signature(3), keys[1]: try signature(4)])
        }
        #expect(throws: StakingError.signatureForUnknownKey(fixture.staker.publicKey)) {
            try StakingBuilder.multisigStack(
                keys: keys, threshold: 1, signatures: [fixture.staker.publicKey: try signature(1)], group: "covenant")
        }
        let timelock = try builder.stakingTimelockWitness(stakerSignature: try signature(1))
        #expect(timelock.count == 3)
        #expect(timelock[2].count == 33 + 64)
    }
}

@Suite("Staking transactions and amounts")
struct StakingTransactionTests {
    let fixture = StakingFixture()

    @Test func unbondingTransactionShape() throws {
        let builder = try fixture.builder
        let outPoint = OutPoint(txid: try Hash256(rawValue: Data(repeating: 7, count: 32)), index: 2)
        let tx = try builder.unbondingTransaction(stakingOutPoint: outPoint, stakingValue: .sats(1_000_000))
        #expect(tx.version == 2)
        #expect(tx.lockTime == 0)
        #expect(tx.inputs.count == 1)
        #expect(tx.inputs[0].previousOutput == outPoint)
        #expect(tx.inputs[0].sequence == 0xffff_ffff)
        #expect(tx.inputs[0].scriptSig.bytes.isEmpty)
        #expect(tx.outputs == [TxOut(value: .sats(999_000), scriptPubKey: builder.unbonding.pkScript)])
    }

    @Test func slashingTransactionShape() throws {
        let builder = try fixture.builder
        let outPoint = OutPoint(txid: try Hash256(rawValue: Data(repeating: 7, count: 32)), index: 0)
        let tx = try builder.slashingTransaction(stakingOutPoint: outPoint, stakingValue: .sats(1_000_005))
        #expect(tx.version == 2 && tx.lockTime == 0)
        #expect(tx.inputs.map(\.previousOutput) == [outPoint])
        #expect(tx.inputs[0].sequence == 0xffff_ffff)
        // 1,000,005 × 0.1 = 100,000.5 → 100,001 (half away from zero); fee exactly 1,000.
        #expect(tx.outputs[0] == TxOut(value: .sats(100_001), scriptPubKey: StakingParameters.babylonBurnScript))
        #expect(tx.outputs[1] == TxOut(value: .sats(899_004), scriptPubKey: builder.slashingChange.pkScript))
        #expect(StakingParameters.babylonBurnScript.bytes.hexString == "6a07626162796c6f6e")

        let unbonding = try builder.unbondingTransaction(stakingOutPoint: outPoint, stakingValue: .sats(1_000_005))
        let unbondingSlashing = try builder.unbondingSlashingTransaction(unbondingTransaction: unbonding)
        #expect(unbondingSlashing.inputs[0].previousOutput == OutPoint(txid: unbonding.txid, index: 0))
        // 999,005 × 0.1 = 99,900.5 → 99,901.
        #expect(unbondingSlashing.outputs.map(\.value.sats) == [99_901, 999_005 - 99_901 - 1_000])

        // 1,350 − 135 slashed − 1,000 fee = 215 sat change: below the 330-sat P2TR dust threshold, refused.
        #expect(throws: StakingError.dustOutput(.slashing, index: 1, value: .sats(215), threshold: .sats(330))) {
            var parameters = fixture.parameters
            parameters.minSlashingFee = .sats(1_000)
            let small = try StakingBuilder(
                stakerKey: fixture.staker.publicKey, finalityProviderKeys: [fixture.provider.publicKey], stakingTime: 1000,
                parameters: parameters)
            _ = try small.slashingTransaction(spending: outPoint, value: .sats(1_350), kind: .slashing)
        }
    }

    @Test(arguments: [
        // (value, numerator, denominator, expected): half away from zero, exactly.
        (Int64(15), UInt64(1), UInt64(10), Int64(2)), (14, 1, 10, 1), (25, 1, 10, 3), (35, 1, 10, 4), (5, 1, 10, 1),
        (4, 1, 10, 0), (0, 1, 10, 0), (500, 1, 1000, 1), (499, 1, 1000, 0), (2_500, 1, 1000, 3), (1_500, 1, 1000, 2),
        (1, 1, 3, 0), (2, 1, 3, 1), (3, 1, 3, 1), (3, 1, 2, 2), (1, 1, 2, 1),
        // Full-range values: exact in 128-bit arithmetic, no overflow.
        (2_100_000_000_000_000, 999_999_999_999_999_999, 1_000_000_000_000_000_000, 2_100_000_000_000_000),
        (2_100_000_000_000_000, 1, 3, 700_000_000_000_000), (2_099_999_999_999_999, 1, 2, 1_050_000_000_000_000),
        (2_099_999_999_999_997, 1, 2, 1_049_999_999_999_999),
        (2_100_000_000_000_000, 1, 1_000_000_000_000_000_000, 0),
    ])
    func slashedAmountRoundsHalfAwayFromZero(value: Int64, numerator: UInt64, denominator: UInt64, expected: Int64) throws {
        let rate = try SlashingRate(numerator: numerator, denominator: denominator)
        #expect(rate.slashedAmount(of: .sats(value)).sats == expected)
    }

    @Test func slashingRateParsing() throws {
        #expect(try SlashingRate(decimal: "0.1") == SlashingRate(numerator: 1, denominator: 10))
        #expect(try SlashingRate(decimal: "0.100") == SlashingRate(numerator: 1, denominator: 10))
        #expect(try SlashingRate(decimal: "0.001").description == "0.001")
        #expect(try SlashingRate(decimal: "0.125").description == "0.125")
        #expect(try SlashingRate(numerator: 1, denominator: 3).description == "1/3")
        // Denominators of 2s and 5s needing over 18 decimals stay fractions (their decimal
        // scale overflowed 128 bits and trapped every parameters query), and round-trip.
        for (n, d) in [(UInt64(1), UInt64(1) << 39), (1_073_741_823, 1_073_741_824), (1, 1 << 63), (3, 5_000_000_000_000_000_000)] {
            let rate = try SlashingRate(numerator: n, denominator: d)
            let text = rate.description
            let back = try JSONDecoder().decode(SlashingRate.self, from: JSONEncoder().encode(rate))
            #expect(back == rate, "\(text)")
        }
        #expect(try SlashingRate(numerator: 1, denominator: 1 << 39).description == "1/549755813888")
        #expect(try SlashingRate(numerator: 1, denominator: 1 << 18).description == "0.000003814697265625")
        #expect(try SlashingRate(decimal: "0.000000000000000001").denominator == 1_000_000_000_000_000_000)
        for bad in ["0", "1.0", "0.0", ".1", "0.1e3", "-0.1", "0.", "0.1.2", "0.0000000000000000001", "0,1", "0.٣"] {
            #expect(throws: StakingError.self, "\(bad)") { try SlashingRate(decimal: bad) }
        }
        #expect(throws: StakingError.self) { try SlashingRate(numerator: 1, denominator: 1) }
        #expect(throws: StakingError.self) { try SlashingRate(numerator: 0, denominator: 5) }
    }

    @Test func dustThresholdsMatchBitcoinCore() {
        #expect(StakingValidation.dustThreshold(for: .p2tr(outputKey: StakingFixture.key(1).publicKey)).sats == 330)
        #expect(StakingValidation.dustThreshold(for: .p2wpkh(pubKeyHash: Data(count: 20))).sats == 294)
        #expect(StakingValidation.dustThreshold(for: .p2pkh(pubKeyHash: Data(count: 20))).sats == 546)
        #expect(StakingValidation.dustThreshold(for: StakingParameters.babylonBurnScript).sats == 0)
    }

    @Test func parametersValidateAndRoundTrip() throws {
        let keys = fixture.covenants.map(\.publicKey)
        let defaults = StakingParameters.ishtarDefaults(covenantKeys: keys)
        #expect(try defaults.validated() == defaults)
        #expect(defaults.covenantQuorum == 3 && defaults.minStakingTime == 400 && defaults.unbondingTime == 200)
        #expect(defaults.slashingRate.description == "0.1")
        let babylon = StakingParameters.babylonMainnetLike(covenantKeys: (3...11).map { StakingFixture.key($0).publicKey })
        #expect(try babylon.validated() == babylon)
        #expect(babylon.slashingRate.description == "0.001" && babylon.minStakingTime == 64_000)

        let encoded = try JSONEncoder().encode(defaults)
        #expect(try JSONDecoder().decode(StakingParameters.self, from: encoded) == defaults)
        #expect(String(decoding: encoded, as: UTF8.self).contains("\"slashing_rate\":\"0.1\""))

        var bad = defaults
        bad.covenantQuorum = 6
        #expect(throws: StakingError.invalidCovenantQuorum(quorum: 6, keyCount: 5)) { try bad.validated() }
        bad = defaults
        bad.covenantKeys.append(keys[2])
        #expect(throws: StakingError.duplicateKey(keys[2])) { try bad.validated() }
        bad = defaults
        bad.minStakingValue = .sats(20_000_000_000)
        #expect(throws: StakingError.self) { try bad.validated() }
        bad = defaults
        bad.minStakingTime = 0
        #expect(throws: StakingError.self) { try bad.validated() }
        bad = defaults
        bad.unbondingTime = 0
        #expect(throws: StakingError.invalidTimelock(blocks: 0)) { try bad.validated() }
        bad = defaults
        bad.minStakingValue = .sats(2_000)
        #expect(throws: StakingError.self, "2,000 sat cannot pay 1,000 + 1,000 fees and non-dust change") { try bad.validated() }
        bad = defaults
        bad.slashingPkScript = .p2wpkh(pubKeyHash: Data(count: 20))
        #expect(try bad.validated() == bad, "900 sat slashed from the minimum stake is above the 294-sat P2WPKH dust")
        bad.slashingRate = try SlashingRate(decimal: "0.01")
        #expect(throws: StakingError.self, "90 sat to a P2WPKH slashing script would be dust") { try bad.validated() }
        // Fees too small to relay: the pre-signed transactions could never reach a miner.
        bad = defaults
        bad.unbondingFee = .sats(100)
        #expect { try bad.validated() } throws: { "\($0)".contains("unbonding fee (100 sat) is below 1 sat/vB") }
        bad = defaults
        bad.minSlashingFee = .sats(1)
        #expect { try bad.validated() } throws: { "\($0)".contains("minimum slashing fee (1 sat) is below 1 sat/vB") }
        // A committee larger than a delegation can store signature sets for.
        bad = defaults
        bad.covenantKeys = try (1...257).map { (i: Int) in
            try Schnorr.PrivateKey(rawRepresentation: Data(count: 30) + [UInt8(i >> 8), UInt8(i & 0xff)]).publicKey
        }
        #expect { try bad.validated() } throws: { "\($0)".contains("257 keys; at most 256") }
    }

    /// A slashing script Bitcoin Core would not relay makes every slashing transaction
    /// unbroadcastable: only standard output types are taken.
    @Test(arguments: [
        ("76a914" + String(repeating: "00", count: 20) + "88ac", true),  // P2PKH
        ("a914" + String(repeating: "00", count: 20) + "87", true),  // P2SH
        ("0014" + String(repeating: "00", count: 20), true),  // P2WPKH
        ("0020" + String(repeating: "00", count: 32), true),  // P2WSH
        ("5120" + String(repeating: "11", count: 32), true),  // P2TR
        ("52020000", true),  // a future witness version
        ("6a", true),  // bare OP_RETURN
        ("6a4c50" + String(repeating: "00", count: 80), true),  // OP_RETURN, 83 bytes in all
        ("6a4c51" + String(repeating: "00", count: 81), false),  // 84 bytes: over the data-carrier limit
        ("6a51", true),  // OP_RETURN OP_1: still push-only
        ("6aac", false),  // OP_RETURN OP_CHECKSIG: not push-only
        ("0015" + String(repeating: "00", count: 21), false),  // version 0, 21 bytes: never spendable
        ("51", false),  // OP_TRUE: anyone can spend, not a standard template
        ("21" + "02" + String(repeating: "11", count: 32) + "ac", true),  // bare P2PK
        ("21" + "05" + String(repeating: "11", count: 32) + "ac", false),  // not a key prefix
    ])
    func onlyStandardSlashingScriptsAreTaken(hex: String, standard: Bool) throws {
        let script = Script(bytes: try Data(hex: hex))
        #expect(StakingParameters.isStandardOutput(script) == standard, "\(hex)")
    }

    /// The fee floors are upper estimates: the transactions the builders make for the
    /// default committee, with every witness item in place, are no larger.
    @Test func relayFeeFloorsBoundTheRealTransactions() throws {
        let builder = try fixture.builder
        let params = fixture.parameters
        let floors = StakingParameters.relayFeeFloors(committee: params.covenantKeys.count, quorum: params.covenantQuorum,
                                                      slashingScriptLength: params.slashingPkScript.bytes.count)
        let signature = try Schnorr.Signature(rawRepresentation: Data(repeating: 7, count: 64))
        var covenant = [Schnorr.PublicKey: Schnorr.Signature]()
        for key in params.covenantKeys { covenant[key] = signature }
        let outPoint = OutPoint(txid: try Hash256(rawValue: Data(repeating: 1, count: 32)), index: 0)
        var unbonding = try builder.unbondingTransaction(stakingOutPoint: outPoint, stakingValue: fixture.stakingValue)
        unbonding.inputs[0].witness = try builder.unbondingWitness(stakerSignature: signature, covenantSignatures: covenant)
        var slashing = try builder.slashingTransaction(stakingOutPoint: outPoint, stakingValue: fixture.stakingValue)
        slashing.inputs[0].witness = try builder.stakingSlashingWitness(
            stakerSignature: signature, finalityProviderSignatures: [fixture.provider.publicKey: signature], covenantSignatures: covenant)
        var unbondingSlashing = try builder.unbondingSlashingTransaction(unbondingTransaction: unbonding)
        unbondingSlashing.inputs[0].witness = try builder.unbondingSlashingWitness(
            stakerSignature: signature, finalityProviderSignatures: [fixture.provider.publicKey: signature], covenantSignatures: covenant)
        let unbondingSize = Int64(unbonding.virtualSize)
        #expect(unbondingSize <= floors.unbonding && floors.unbonding - unbondingSize < 30, "\(unbondingSize) vB vs floor \(floors.unbonding)")
        for tx in [slashing, unbondingSlashing] {
            let size = Int64(tx.virtualSize)
            #expect(size <= floors.slashing && floors.slashing - size < 40, "\(size) vB vs floor \(floors.slashing)")
        }
        #expect(params.unbondingFee.sats >= floors.unbonding && params.minSlashingFee.sats >= floors.slashing)
    }
}
