import CSecp256k1
import Foundation
import IshtarBitcoin
import IshtarCrypto

/// A staker's whole job for one delegation: build the staking, unbonding, slashing and
/// unbonding-slashing transactions for a 9-member covenant (Babylon mainnet's size), sign the
/// staking input (key path) and both slashing transactions (script path). Timed beside the
/// three raw libsecp256k1 signatures it contains, measured in the same run.
enum DelegationBench {
    static func run(iterations: Int = 300) -> [String: Any] {
        progress("bitcoin bench: building and signing a delegation's transaction set (9 covenant keys)")
        let staker = Schnorr.PrivateKey()
        let provider = Schnorr.PrivateKey()
        let covenants = (0..<9).map { _ in Schnorr.PrivateKey() }
        let parameters = StakingParameters.ishtarDefaults(
            covenantKeys: covenants.map(\.publicKey), covenantQuorum: 6, network: .regtest)
        let stakingValue: Amount = (try? Amount(sats: 1_000_000)) ?? .zero
        let fundingValue: Amount = (try? Amount(sats: 1_010_000)) ?? .zero
        let funding = TxOut(value: fundingValue, scriptPubKey: .p2tr(
            outputKey: (try? staker.publicKey.tapTweaked(merkleRoot: nil).outputKey) ?? staker.publicKey))
        let fundingOutPoint = OutPoint(txid: .zero, index: 0)

        var failures = 0
        let buildAndSign: (Int) -> Void = { _ in
            do {
                let builder = try StakingBuilder(
                    stakerKey: staker.publicKey, finalityProviderKeys: [provider.publicKey], stakingTime: 1000,
                    parameters: parameters)
                var staking = Transaction(
                    inputs: [TxIn(previousOutput: fundingOutPoint)], outputs: [builder.stakingOutput(value: stakingValue)])
                let sighasher = try TaprootSighasher(transaction: staking, prevouts: [funding])
                staking.inputs[0].witness = try sighasher.keyPathWitness(inputIndex: 0, internalKey: staker, merkleRoot: nil)
                let outPoint = OutPoint(txid: staking.txid, index: 0)
                let unbonding = try builder.unbondingTransaction(stakingOutPoint: outPoint, stakingValue: stakingValue)
                let slashing = try builder.slashingTransaction(stakingOutPoint: outPoint, stakingValue: stakingValue)
                let unbondingSlashing = try builder.unbondingSlashingTransaction(unbondingTransaction: unbonding)
                let unbondingValue = unbonding.outputs.first?.value ?? .zero
                _ = try StakingSigner.sign(
                    sighash: builder.slashingSighash(slashingTransaction: slashing, stakingValue: stakingValue), key: staker)
                _ = try StakingSigner.sign(
                    sighash: builder.unbondingSlashingSighash(
                        unbondingSlashingTransaction: unbondingSlashing, unbondingValue: unbondingValue),
                    key: staker)
            } catch {
                failures += 1
            }
        }

        // Baseline: the three BIP-340 signatures alone, raw libsecp256k1.
        guard let ctx = secp256k1_context_create(UInt32(SECP256K1_CONTEXT_NONE)) else { return ["error": "context"] }
        defer { secp256k1_context_destroy(ctx) }
        var keypair = secp256k1_keypair()
        let secret = [UInt8](staker.rawRepresentation)
        guard secp256k1_keypair_create(ctx, &keypair, secret) == 1 else { return ["error": "keypair"] }
        var signature = [UInt8](repeating: 0, count: 64)
        let message = [UInt8](repeating: 0x5a, count: 32), aux = [UInt8](repeating: 1, count: 32)
        var sink = 0
        let threeRawSigns: (Int) -> Void = { _ in
            for _ in 0..<3 { sink &+= Int(secp256k1_schnorrsig_sign32(ctx, &signature, message, &keypair, aux)) }
        }
        let paired = pairedMicroseconds(iterations: iterations, pairs: 7, operation: buildAndSign, baseline: threeRawSigns)
        return [
            "covenant_keys": 9,
            "build_and_sign_us": rounded(paired.operation),
            "baseline_three_raw_schnorrsig_sign32_us": rounded(paired.baseline),
            "ratio": rounded(paired.ratio),
            "failures": failures,
            "includes": "staking tx (key-path signed), unbonding, slashing and unbonding-slashing txs, staker's two slashing signatures",
        ]
    }
}
