import Foundation
import IshtarBitcoin
import IshtarBitcoinRPC
import IshtarCrypto
import IshtarTestSupport
import Testing

/// End to end on `Scripts/regtest-node`, where every input script is verified by Bitcoin Core's
/// own interpreter (libbitcoinkernel) with all consensus flags: each staking path we build must
/// be accepted, and each wrong spend rejected.
@Suite(
    "Staking on regtest (Bitcoin Core's script interpreter)",
    .enabled(if: regtestNodeAvailable, "Scripts/regtest-node not found; integration tests skipped"),
    .timeLimit(.minutes(3)))
struct RegtestStakingTests {
    /// Small timelocks so the test can mine past them.
    static let stakingTime: UInt16 = 6
    static let unbondingTime: UInt16 = 4
    static let stakeValue = Amount.sats(100_000_000)
    static let fee = Amount.sats(2_000)

    let funder = StakingFixture.key(0x31)
    let staker = StakingFixture.key(0x32)
    let provider = StakingFixture.key(0x33)
    let covenants = (0x41...0x45).map { StakingFixture.key(UInt8($0)) }
    var parameters: StakingParameters {
        var p = StakingParameters.ishtarDefaults(covenantKeys: covenants.map(\.publicKey), covenantQuorum: 3, network: .regtest)
        p.minStakingTime = 5
        p.maxStakingTime = 1_000
        p.unbondingTime = Self.unbondingTime
        return p
    }

    var funding: TaprootOutput { get throws { try TaprootOutput(internalKey: funder.publicKey, tree: nil) } }

    /// A staking output funded from a coinbase, with its delegation fully signed by the staker
    /// and four covenant members.
    struct Stake {
        var transaction: Transaction
        var delegation: DelegationTransactions
        var valid: ValidatedDelegation
        var builder: StakingBuilder { valid.builder }
        var outPoint: OutPoint { valid.stakingOutPoint }
    }

    /// Mines `count` blocks paying the funding key and returns their coinbase outputs.
    func fundFromCoinbases(_ rpc: BitcoinRPCClient, count: Int) async throws -> [(OutPoint, TxOut)] {
        let address = try funding.address(network: .regtest).encoded
        let hashes = try await rpc.generateToAddress(count, address: address)
        var coins = [(OutPoint, TxOut)]()
        for hash in hashes {
            let block = try await rpc.getBlock(hash)
            let coinbase = try Transaction(serialized: try await rpc.getRawTransactionData(block.txids[0], blockHash: hash))
            let index = try #require(coinbase.outputs.firstIndex { $0.scriptPubKey == (try? funding.scriptPubKey) })
            coins.append((OutPoint(txid: coinbase.txid, index: UInt32(index)), coinbase.outputs[index]))
        }
        return coins
    }

    /// Signs and returns a staking transaction spending `coin` (key path), with `marker` if given.
    func stakingTransaction(spending coin: (OutPoint, TxOut), builder: StakingBuilder, marker: StakingMarker?) throws -> Transaction {
        var outputs = [builder.stakingOutput(value: Self.stakeValue)]
        let change = try coin.1.value - Self.stakeValue - Self.fee
        outputs.append(TxOut(value: change, scriptPubKey: try funding.scriptPubKey))
        if let marker { outputs.append(TxOut(value: .zero, scriptPubKey: marker.script)) }
        var tx = Transaction(inputs: [TxIn(previousOutput: coin.0)], outputs: outputs)
        let sighasher = try TaprootSighasher(transaction: tx, prevouts: [coin.1])
        tx.inputs[0].witness = try sighasher.keyPathWitness(inputIndex: 0, internalKey: funder, merkleRoot: nil)
        return tx
    }

    /// The delegation for a staking transaction: unbonding and both slashing transactions,
    /// the staker's pre-signatures and four covenant members' signatures, then THE validation.
    func delegation(for staking: Transaction, builder: StakingBuilder) throws -> Stake {
        let outPoint = OutPoint(txid: staking.txid, index: 0)
        let unbonding = try builder.unbondingTransaction(stakingOutPoint: outPoint, stakingValue: Self.stakeValue)
        let slashing = try builder.slashingTransaction(stakingOutPoint: outPoint, stakingValue: Self.stakeValue)
        let unbondingSlashing = try builder.unbondingSlashingTransaction(unbondingTransaction: unbonding)
        var delegation = DelegationTransactions(
            stakerKey: staker.publicKey, finalityProviderKeys: [provider.publicKey], stakingTime: Self.stakingTime,
            stakingValue: Self.stakeValue, stakingTransaction: staking, stakingOutputIndex: 0,
            unbondingTransaction: unbonding, slashingTransaction: slashing, unbondingSlashingTransaction: unbondingSlashing,
            stakerSlashingSignature: try StakingSigner.sign(
                sighash: builder.slashingSighash(slashingTransaction: slashing, stakingValue: Self.stakeValue), key: staker),
            stakerUnbondingSlashingSignature: try StakingSigner.sign(
                sighash: builder.unbondingSlashingSighash(
                    unbondingSlashingTransaction: unbondingSlashing, unbondingValue: unbonding.outputs[0].value),
                key: staker))
        for covenant in covenants.prefix(4) {
            delegation.covenantSignatures.append(
                try CovenantSigner.sign(delegation: delegation, parameters: parameters, covenantKey: covenant))
        }
        let valid = try StakingValidation.validate(delegation: delegation, parameters: parameters, requireCovenantQuorum: true)
        return Stake(transaction: staking, delegation: delegation, valid: valid)
    }

    func expectAccepted(_ rpc: BitcoinRPCClient, _ tx: Transaction, _ what: String, sourceLocation: SourceLocation = #_sourceLocation)
        async throws
    {
        let result = try await rpc.testMempoolAccept([tx.serialized().hexString])
        #expect(result.first?.allowed == true, "\(what): \(result.first?.rejectReason ?? "no result")", sourceLocation: sourceLocation)
    }

    func expectRejected(
        _ rpc: BitcoinRPCClient, _ tx: Transaction, reason: String, _ what: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        let result = try await rpc.testMempoolAccept([tx.serialized().hexString])
        #expect(result.first?.allowed == false, "\(what) was accepted", sourceLocation: sourceLocation)
        #expect(
            result.first?.rejectReason?.hasPrefix(reason) == true,
            "\(what): reject reason \(result.first?.rejectReason ?? "none"), expected \(reason)", sourceLocation: sourceLocation)
    }

    static let scriptFailure = "mempool-script-verify-flag-failed"
    static let premature = "non-BIP68-final"

    func mine(_ rpc: BitcoinRPCClient, _ count: Int = 1) async throws {
        _ = try await rpc.generateToAddress(count, address: TestAddress.opTrue)
    }

    @Test func everyStakingPathIsAcceptedAndEveryWrongSpendRejected() async throws {
        try await withRegtestNode { node in
            let rpc = node.client()
            let parameters = self.parameters
            let builder = try StakingBuilder(
                stakerKey: staker.publicKey, finalityProviderKeys: [provider.publicKey], stakingTime: Self.stakingTime,
                parameters: parameters)
            // 104 coinbases to the funding key; the first four are mature once 100 more exist.
            let coins = try await fundFromCoinbases(rpc, count: 104)
            let marker = try StakingMarker(
                tag: Data("ISHT".utf8), stakerKey: staker.publicKey, finalityProviderKey: provider.publicKey,
                stakingTime: Self.stakingTime)

            // Four separate stakes: A unbonds, B is slashed, C unbonds then is slashed, D withdraws.
            var stakes = [Stake]()
            for index in 0..<4 {
                let tx = try stakingTransaction(spending: coins[index], builder: builder, marker: index == 0 ? marker : nil)
                try await expectAccepted(rpc, tx, "staking transaction \(index)")
                _ = try await rpc.sendRawTransaction(tx.serialized())
                stakes.append(try delegation(for: tx, builder: builder))
            }
            try await mine(rpc)
            let stakingHeight = try await rpc.getBlockCount()
            for stake in stakes {
                let out = try #require(try await rpc.getTxOut(txid: stake.outPoint.txid.displayHex, vout: 0))
                #expect(out.value == Self.stakeValue.sats)
                #expect(out.scriptPubKey.hex == builder.scripts.pkScript.bytes.hexString)
                #expect(out.confirmations == 1)
            }
            let (a, b, c, d) = (stakes[0], stakes[1], stakes[2], stakes[3])
            let withdrawal = TxOut(value: try Self.stakeValue - Self.fee, scriptPubKey: try funding.scriptPubKey)

            // (d, far too early) The timelock path right after staking: BIP-68 not yet final.
            // The withdrawal is what `ishtar staking withdraw` sends (`StakingBuilder.withdrawal`).
            let timelockSpend = try builder.withdrawal(
                spending: try builder.withdrawableOutput(.staking, of: d.delegation), to: try funding.scriptPubKey,
                feeRate: 2, staker: staker)
            func signTimelock(_ tx: inout Transaction) throws {
                let sighash = try builder.stakingTimelockSighash(transaction: tx, stakingValue: Self.stakeValue)
                tx.inputs[0].witness = try builder.stakingTimelockWitness(
                    stakerSignature: try StakingSigner.sign(sighash: sighash, key: staker))
            }
            try await expectRejected(rpc, timelockSpend, reason: Self.premature, "timelock spend in the staking block's successor")

            // (a) Unbonding of A: staker + exactly the covenant quorum.
            var unbondingA = a.delegation.unbondingTransaction
            let unbondingSighash = a.valid.unbondingSighash
            let stakerUnbondingSignature = try StakingSigner.sign(sighash: unbondingSighash, key: staker)
            let covenantUnbonding = Dictionary(uniqueKeysWithValues: a.delegation.covenantSignatures.map {
                ($0.covenantKey, $0.unbondingSignature)
            })
            #expect(covenantUnbonding.count == 4)
            let goodWitness = try builder.unbondingWitness(
                stakerSignature: stakerUnbondingSignature, covenantSignatures: covenantUnbonding)

            // One covenant signature short: two signatures for a quorum of three.
            let twoSigners = covenantUnbonding.filter { $0.key == covenants[0].publicKey || $0.key == covenants[1].publicKey }
            let shortStack = try StakingBuilder.multisigStack(
                keys: parameters.covenantKeys, threshold: 2, signatures: twoSigners, group: "covenant")
            unbondingA.inputs[0].witness = try a.builder.scripts.output.scriptPathWitness(
                leaf: a.builder.scripts.unbondingLeaf, stack: shortStack + [stakerUnbondingSignature.rawRepresentation])
            try await expectRejected(rpc, unbondingA, reason: Self.scriptFailure, "unbonding with one covenant signature short")

            // All four covenant signatures where the script demands exactly three (OP_NUMEQUAL).
            let fourStack = try StakingBuilder.multisigStack(
                keys: parameters.covenantKeys, threshold: 4, signatures: covenantUnbonding, group: "covenant")
            unbondingA.inputs[0].witness = try a.builder.scripts.output.scriptPathWitness(
                leaf: a.builder.scripts.unbondingLeaf, stack: fourStack + [stakerUnbondingSignature.rawRepresentation])
            try await expectRejected(rpc, unbondingA, reason: Self.scriptFailure, "unbonding with more signatures than the quorum")

            // Covenant signatures in ascending instead of descending key order.
            var ascending = goodWitness
            ascending.replaceSubrange(0..<5, with: goodWitness[0..<5].reversed())
            unbondingA.inputs[0].witness = ascending
            try await expectRejected(rpc, unbondingA, reason: Self.scriptFailure, "unbonding with covenant signatures misordered")

            // A tampered staker signature.
            var tampered = goodWitness
            tampered[5][10] ^= 0x01
            unbondingA.inputs[0].witness = tampered
            try await expectRejected(rpc, unbondingA, reason: Self.scriptFailure, "unbonding with a tampered staker signature")

            unbondingA.inputs[0].witness = goodWitness
            try await expectAccepted(rpc, unbondingA, "unbonding of A")
            _ = try await rpc.sendRawTransaction(unbondingA.serialized())

            // (c, first half) C unbonds too, so its unbonding output can be slashed below.
            var unbondingC = c.delegation.unbondingTransaction
            unbondingC.inputs[0].witness = try builder.unbondingWitness(
                stakerSignature: try StakingSigner.sign(sighash: c.valid.unbondingSighash, key: staker),
                covenantSignatures: Dictionary(uniqueKeysWithValues: c.delegation.covenantSignatures.map {
                    ($0.covenantKey, $0.unbondingSignature)
                }))
            _ = try await rpc.sendRawTransaction(unbondingC.serialized())
            try await mine(rpc)  // stakingHeight + 1
            #expect(try await rpc.getTxOut(txid: a.outPoint.txid.displayHex, vout: 0) == nil)
            let unbondedA = try #require(try await rpc.getTxOut(txid: unbondingA.txid.displayHex, vout: 0))
            #expect(unbondedA.value == Self.stakeValue.sats - parameters.unbondingFee.sats)

            // (b) The provider double-votes; its key leaks through EOTS; everything else follows.
            let chainID = Data("ishtar-regtest".utf8)
            let randomness = EOTS.randomness(secretKey: provider, chainID: chainID, height: 42)
            let vote1 = try EOTS.finalityVoteMessage(height: 42, blockHash: Data(repeating: 0x01, count: 32))
            let vote2 = try EOTS.finalityVoteMessage(height: 42, blockHash: Data(repeating: 0x02, count: 32))
            let leaked = try EOTS.extract(
                publicKey: provider.publicKey, publicRandomness: randomness.public,
                message1: vote1, signature1: try EOTS.sign(privateKey: provider, secretRandomness: randomness.secret, message: vote1),
                message2: vote2, signature2: try EOTS.sign(privateKey: provider, secretRandomness: randomness.secret, message: vote2))
            #expect(leaked.publicKey == provider.publicKey)

            // The covenant refuses a slashing transaction that pays below the rate.
            var cheap = b.delegation
            cheap.covenantSignatures = []
            let rateAmount = parameters.slashingRate.slashedAmount(of: Self.stakeValue)
            cheap.slashingTransaction.outputs[0].value = try rateAmount - .sats(1)
            cheap.slashingTransaction.outputs[1].value = try cheap.slashingTransaction.outputs[1].value + .sats(1)
            cheap.stakerSlashingSignature = try StakingSigner.sign(
                sighash: builder.slashingSighash(slashingTransaction: cheap.slashingTransaction, stakingValue: Self.stakeValue),
                key: staker)
            let belowRate = StakingError.slashingOutputBelowRate(.slashing, expectedAtLeast: rateAmount, actual: try rateAmount - .sats(1))
            #expect(throws: belowRate) { try StakingValidation.validate(delegation: cheap, parameters: parameters) }
            #expect(throws: belowRate) {
                try CovenantSigner.sign(delegation: cheap, parameters: parameters, covenantKey: covenants[0])
            }

            var slashingB = b.delegation.slashingTransaction
            let slashingSighash = b.valid.slashingSighash
            let decrypted = CovenantAdaptor.decryptAll(
                b.delegation.covenantSignatures, kind: .slashing, sighash: slashingSighash, finalityProviderSecret: leaked)
            #expect(decrypted.count == 4)
            let providerSignature = try StakingSigner.sign(sighash: slashingSighash, key: leaked)

            // A wrong provider key signs the provider's part.
            let impostor = StakingFixture.key(0x66)
            slashingB.inputs[0].witness = try builder.stakingSlashingWitness(
                stakerSignature: b.delegation.stakerSlashingSignature,
                finalityProviderSignatures: [provider.publicKey: try StakingSigner.sign(sighash: slashingSighash, key: impostor)],
                covenantSignatures: decrypted)
            try await expectRejected(rpc, slashingB, reason: Self.scriptFailure, "slashing signed by a wrong provider key")

            // Covenant adaptor signatures decrypted with a wrong provider secret.
            var wronglyDecrypted = [Schnorr.PublicKey: Schnorr.Signature]()
            for set in b.delegation.covenantSignatures {
                if let adaptor = set.slashingAdaptorSignatures[provider.publicKey] {
                    wronglyDecrypted[set.covenantKey] = CovenantAdaptor.decrypt(adaptor, finalityProviderSecret: impostor)
                }
            }
            slashingB.inputs[0].witness = try builder.stakingSlashingWitness(
                stakerSignature: b.delegation.stakerSlashingSignature,
                finalityProviderSignatures: [provider.publicKey: providerSignature], covenantSignatures: wronglyDecrypted)
            try await expectRejected(rpc, slashingB, reason: Self.scriptFailure, "slashing with covenant signatures decrypted by a wrong key")

            slashingB.inputs[0].witness = try builder.stakingSlashingWitness(
                stakerSignature: b.delegation.stakerSlashingSignature,
                finalityProviderSignatures: [provider.publicKey: providerSignature], covenantSignatures: decrypted)
            try await expectAccepted(rpc, slashingB, "slashing of B with the leaked provider key")
            // The slashed share is burned to OP_RETURN "babylon"; allow that burn explicitly.
            _ = try await rpc.sendRawTransaction(slashingB.serialized(), maxBurnAmount: slashingB.outputs[0].value.sats)
            try await mine(rpc)  // stakingHeight + 2
            #expect(try await rpc.getTxOut(txid: b.outPoint.txid.displayHex, vout: 0) == nil)

            // (c) Slashing of C's unbonding output.
            var slashingC = c.delegation.unbondingSlashingTransaction
            let unbondingSlashingSighash = c.valid.unbondingSlashingSighash
            slashingC.inputs[0].witness = try builder.unbondingSlashingWitness(
                stakerSignature: c.delegation.stakerUnbondingSlashingSignature,
                finalityProviderSignatures: [provider.publicKey: try StakingSigner.sign(sighash: unbondingSlashingSighash, key: leaked)],
                covenantSignatures: CovenantAdaptor.decryptAll(
                    c.delegation.covenantSignatures, kind: .unbondingSlashing, sighash: unbondingSlashingSighash,
                    finalityProviderSecret: leaked))
            try await expectAccepted(rpc, slashingC, "slashing of C's unbonding output")
            _ = try await rpc.sendRawTransaction(slashingC.serialized(), maxBurnAmount: slashingC.outputs[0].value.sats)
            try await mine(rpc)  // stakingHeight + 3
            #expect(try await rpc.getTxOut(txid: unbondingC.txid.displayHex, vout: 0) == nil)

            // (d) The timelock: one block early is not final; a too-small sequence fails CSV;
            // then exactly at stakingTime it is accepted.
            let tip = try await rpc.getBlockCount()
            try await mine(rpc, stakingHeight + Int(Self.stakingTime) - 2 - tip)
            #expect(try await rpc.getBlockCount() == stakingHeight + Int(Self.stakingTime) - 2)
            try await expectRejected(rpc, timelockSpend, reason: Self.premature, "timelock spend one block early")
            try await mine(rpc)
            var shortSequence = StakingBuilder.timelockSpendTransaction(
                spending: d.outPoint, blocks: Self.stakingTime - 1, outputs: [withdrawal])
            try signTimelock(&shortSequence)
            try await expectRejected(rpc, shortSequence, reason: Self.scriptFailure, "timelock spend with sequence below the staking time")
            try await expectAccepted(rpc, timelockSpend, "timelock withdrawal of D after the staking time")
            _ = try await rpc.sendRawTransaction(timelockSpend.serialized())

            // The slashing change of B goes back to the staker after the unbonding time.
            let change = try builder.withdrawableOutput(.slashingChange, of: b.delegation)
            #expect(change.outPoint == OutPoint(txid: slashingB.txid, index: 1), "the change of the slashing tx that was mined")
            let changeSpend = try builder.withdrawal(spending: change, to: try funding.scriptPubKey, feeRate: 3, staker: staker)
            try await expectAccepted(rpc, changeSpend, "staker reclaims the slashing change")
            _ = try await rpc.sendRawTransaction(changeSpend.serialized())
            try await mine(rpc)
            #expect(try await rpc.getRawMempool().isEmpty)
            let confirmed = try await rpc.getRawTransaction(timelockSpend.txid.displayHex)
            #expect(confirmed.confirmations == 1)
        }
    }

    @Test func reorgRemovesTheStakingTransactionFromTheMainChain() async throws {
        try await withRegtestNode { node in
            let rpc = node.client()
            let builder = try StakingBuilder(
                stakerKey: staker.publicKey, finalityProviderKeys: [provider.publicKey], stakingTime: Self.stakingTime,
                parameters: parameters)
            let coins = try await fundFromCoinbases(rpc, count: 101)
            let forkPoint = try await rpc.getBestBlockHash()
            let staking = try stakingTransaction(spending: coins[0], builder: builder, marker: nil)
            let txid = staking.txid.displayHex
            _ = try await rpc.sendRawTransaction(staking.serialized())
            let stakedBlock = try #require(try await rpc.generateToAddress(1, address: TestAddress.opTrue).first)
            let before = try await rpc.getRawTransaction(txid)
            #expect(before.blockHash == stakedBlock)
            #expect(before.confirmations == 1)
            #expect(try await rpc.getTxOut(txid: txid, vout: 0, includeMempool: false)?.confirmations == 1)

            // A longer branch from the fork point, without the staking transaction.
            let branch = try await rpc.generateToAddressFrom(parent: forkPoint, count: 2, address: TestAddress.opTrue)
            #expect(try await rpc.getBestBlockHash() == branch.last)
            #expect(try await rpc.getBestBlockHash() != stakedBlock)
            #expect(try await rpc.getBlockHeader(stakedBlock).confirmations == -1)
            let after = try await rpc.getRawTransaction(txid)
            #expect(after.blockHash == nil, "the staking transaction must be back in the mempool")
            #expect(try await rpc.getRawMempool().contains(txid))
            #expect(try await rpc.getTxOut(txid: txid, vout: 0, includeMempool: false) == nil)
            #expect(try await rpc.getTxOut(txid: txid, vout: 0, includeMempool: true)?.confirmations == 0)

            // Mined again on the new chain, in a different block.
            let reMined = try #require(try await rpc.generateToAddress(1, address: TestAddress.opTrue).first)
            #expect(try await rpc.getRawTransaction(txid).blockHash == reMined)
        }
    }
}
