import Foundation
import IshtarBitcoin
import IshtarCrypto
import Testing

/// The staker's way back: which output each withdrawal spends, after which timelock, and the
/// exact fee. Bitcoin Core accepting (and refusing) these spends is in `RegtestStakingTests`
/// and the node's staking scenario.
@Suite struct StakingWithdrawalTests {
    let fixture = StakingFixture()
    let destination = Script.p2tr(outputKey: StakingFixture.key(9).publicKey)

    @Test(arguments: WithdrawalSource.allCases)
    func eachSourceIsTheStakersTimelockedOutput(_ source: WithdrawalSource) throws {
        let delegation = try fixture.delegation()
        let builder = try fixture.builder
        let out = try builder.withdrawableOutput(source, of: delegation)
        let (tx, index, script, timelock): (Transaction, UInt32, Script, UInt16) = switch source {
        case .staking: (delegation.stakingTransaction, 1, builder.scripts.pkScript, fixture.stakingTime)
        case .unbonding: (delegation.unbondingTransaction, 0, builder.unbonding.pkScript, fixture.parameters.unbondingTime)
        case .slashingChange: (delegation.slashingTransaction, 1, builder.slashingChange.pkScript, fixture.parameters.unbondingTime)
        case .unbondingSlashingChange:
            (delegation.unbondingSlashingTransaction, 1, builder.slashingChange.pkScript, fixture.parameters.unbondingTime)
        }
        #expect(out.outPoint == OutPoint(txid: tx.txid, index: index))
        #expect(out.output == tx.outputs[Int(index)])
        #expect(out.output.scriptPubKey == script)
        #expect(out.timelock == timelock)
    }

    @Test(arguments: WithdrawalSource.allCases)
    func theWithdrawalPaysTheRateOnItsOwnSizeAndWaitsForTheTimelock(_ source: WithdrawalSource) throws {
        let delegation = try fixture.delegation()
        let builder = try fixture.builder
        let out = try builder.withdrawableOutput(source, of: delegation)
        for rate: Int64 in [1, 2, 25] {
            let tx = try builder.withdrawal(spending: out, to: destination, feeRate: rate, staker: fixture.staker)
            #expect(tx.version == 2 && tx.lockTime == 0)
            #expect(tx.inputs.count == 1 && tx.outputs.count == 1)
            #expect(tx.inputs[0].previousOutput == out.outPoint)
            #expect(tx.inputs[0].sequence == UInt32(out.timelock), "BIP-68 relative lock in blocks")
            #expect(tx.outputs[0].scriptPubKey == destination)
            let fee = out.output.value.sats - tx.outputs[0].value.sats
            #expect(fee == Int64(tx.virtualSize) * rate, "fee \(fee) for \(tx.virtualSize) vB at \(rate) sat/vB")
            // [signature, leaf script, control block]: the signature is the staker's over the
            // script-path sighash of this very transaction.
            let witness = tx.inputs[0].witness
            #expect(witness.count == 3)
            #expect(witness[1] == out.leaf.script.bytes)
            #expect(out.leaf.script == (try StakingScripts.timelockScript(stakerKey: fixture.staker.publicKey, blocks: out.timelock)))
            let sighash = try StakingBuilder.sighash(transaction: tx, prevout: out.output, leaf: TapLeaf(script: Script(bytes: witness[1])))
            let signature = try Schnorr.Signature(rawRepresentation: witness[0])
            #expect(fixture.staker.publicKey.isValidSignature(signature, for: sighash))
        }
    }

    @Test func anotherKeyCannotWithdraw() throws {
        let out = try fixture.builder.withdrawableOutput(.staking, of: try fixture.delegation())
        let stranger = StakingFixture.key(42)
        #expect(throws: StakingError.notTheStaker(expected: fixture.staker.publicKey, actual: stranger.publicKey)) {
            try fixture.builder.withdrawal(spending: out, to: destination, feeRate: 1, staker: stranger)
        }
    }

    @Test func aFeeThatLeavesDustIsRefused() throws {
        let builder = try fixture.builder
        let out = try builder.withdrawableOutput(.slashingChange, of: try fixture.delegation())
        let value = out.output.value.sats
        // One sat/vB below "all of it" still leaves something, but not above the dust threshold.
        let size = Int64(try builder.withdrawal(spending: out, to: destination, feeRate: 1, staker: fixture.staker).virtualSize)
        let rate = value / size
        do {
            _ = try builder.withdrawal(spending: out, to: destination, feeRate: rate, staker: fixture.staker)
            Issue.record("a withdrawal leaving \(value - rate * size) sat was built")
        } catch {
            guard case .withdrawalTooSmall(let v, let fee, let threshold) = error else {
                Issue.record("unexpected \(error)")
                return
            }
            #expect(v.sats == value && fee.sats == rate * size && threshold == StakingValidation.dustThreshold(for: destination))
        }
        #expect(throws: StakingError.amountOverflow) {
            try builder.withdrawal(spending: out, to: destination, feeRate: .max, staker: fixture.staker)
        }
    }

    @Test func aTransactionWithoutTheOutputIsNamed() throws {
        var delegation = try fixture.delegation()
        delegation.slashingTransaction.outputs.removeLast()
        #expect(throws: StakingError.missingWithdrawableOutput(.slashingChange)) {
            try fixture.builder.withdrawableOutput(.slashingChange, of: delegation)
        }
    }
}
