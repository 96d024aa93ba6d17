import ArgumentParser
import Foundation
import IshtarBitcoin
import IshtarBitcoinRPC
import IshtarCrypto
import IshtarKeys
import IshtarNode

extension StakingCommand {
    struct Withdraw: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Take a stake's bitcoin back once its timelock has passed.",
            discussion: """
                Reads the delegation and its parameters from the node, asks bitcoind where \
                the staker's bitcoin is now — the staking output (after the staking time), \
                the unbonding output (after `staking unbond`, once the unbonding time has \
                passed), or the change output of a slashing transaction (what a slash \
                leaves the staker, after the unbonding time) — and spends it through the \
                timelock leaf that only the staker's key opens, to --to, paying --fee-rate \
                sat/vB of the signed transaction. If the timelock has not passed yet it says \
                how many more blocks are needed and signs nothing. Bitcoin Core tests the \
                transaction (testmempoolaccept) before it is called ready; --broadcast sends it.
                Example:
                  ishtar staking withdraw --key-file staker.key --staking-txid <txid> \\
                    --to bcrt1q... --rpc-cookie-file ~/.bitcoin/regtest/.cookie --broadcast
                Exit codes: 0 accepted by Bitcoin Core (and sent with --broadcast), 1 \
                refused (not the staker's key, the timelock has not passed, nothing left to \
                withdraw, the fee leaves dust, or Bitcoin Core refused it), 2 bad input or an \
                unreachable node or bitcoind.
                """)

        @OptionGroup var api: NodeAPIOptions
        @OptionGroup var bitcoind: RelayCommand.BitcoindOptions

        @Option(name: .long, help: ArgumentHelp("The staker's BTC key file (its key is in the staking script).", valueName: "file"))
        var keyFile: String

        @OptionGroup var passphrase: KeysCommand.PassphraseOptions

        @Option(name: .long, help: ArgumentHelp(
            "Where the bitcoin goes: a segwit address of the delegation's network (bech32 or bech32m).", valueName: "address"))
        var to: String

        @Option(name: .long, help: ArgumentHelp("Fee in sat per virtual byte of the signed transaction (1…10000).",
                                                valueName: "sat/vB"))
        var feeRate: Int64 = 2

        @OptionGroup var target: StoredDelegationSpend
        @OptionGroup var format: OutputOptions

        func validate() throws {
            do { _ = try SegwitAddress(to) } catch { throw ValidationError("--to: \(error)") }
            guard (1...10_000).contains(feeRate) else { throw ValidationError("--fee-rate must be 1…10000 sat/vB, got \(feeRate)") }
        }

        func run() throws {
            let node = try api.client()
            let rpc = try bitcoind.client()
            let staker = try KeysActions.unlock(path: keyFile, passphrase: try passphrase.resolve())
            let txid = target.stakingTxid, send = target.broadcast, to = to, rate = feeRate
            format.emit(try RelayActions.blocking {
                try await StakingActions.withdraw(node: node, rpc: rpc, staker: staker, stakingTxid: txid, to: to,
                                                  feeRate: rate, broadcast: send)
            })
        }
    }
}

extension StakingActions {
    /// The result of `ishtar staking withdraw`.
    public struct WithdrawOutput: CommandOutput, Sendable {
        /// The delegation's staking txid (display order).
        public var stakingTxid: String
        /// Which output was spent.
        public var spends: WithdrawalSource
        /// The spent output, `txid:vout` (display order).
        public var outpoint: String
        /// Its timelock, in blocks after its confirmation.
        public var timelock: Int
        /// What the output held, sat.
        public var inputSat: Int64
        /// What the destination receives, sat.
        public var amountSat: Int64
        /// The fee, sat.
        public var feeSat: Int64
        /// The destination address.
        public var destination: String
        /// The withdrawal's txid (display order).
        public var txid: String
        /// The signed transaction, hex.
        public var transaction: String
        /// Whether it was sent to bitcoind.
        public var broadcast: Bool

        var text: String {
            """
            delegation:        \(stakingTxid)
            spends:            the \(spends) output \(outpoint) (\(inputSat) sat, timelock \(timelock) blocks: passed)
            withdrawal tx:     \(txid): \(amountSat) sat to \(destination), fee \(feeSat) sat
            bitcoin core:      accepted\(broadcast ? "; sent" : " (test only; --broadcast sends it)")
            \(transaction)
            """
        }
    }

    /// Where a delegation's bitcoin is on Bitcoin now.
    struct Location {
        /// The delegation's scripts, checked against its transactions.
        var builder: StakingBuilder
        /// The first of the staker's timelocked outputs that is unspent on bitcoind, if any.
        var output: WithdrawableOutput?
        /// What bitcoind says of it.
        var onBitcoin: TxOutInfo?
    }

    /// Asks bitcoind which of the staker's four timelocked outputs (staking, unbonding, and
    /// the two slashing transactions' change) is unspent, in that order — at most one can
    /// be. Where the bitcoin is now is Bitcoin's to say, not the chain's: an unbonding or a
    /// slash may be mined long before any relayer reports it, or never be reported. An output
    /// bitcoind shows with another value or script than the delegation's is refused.
    static func locate(delegation: DelegationTransactions, parameters: StakingParameters, rpc: BitcoinRPCClient)
        async throws -> Location
    {
        let builder = try StakingValidation.validate(delegation: delegation, parameters: parameters).builder
        for source in WithdrawalSource.allCases {
            let candidate = try builder.withdrawableOutput(source, of: delegation)
            let point = candidate.outPoint
            guard let info = try await RelayActions.rpcCall("gettxout", { () throws(BitcoinRPCError) in
                try await rpc.getTxOut(txid: point.txid.displayHex, vout: point.index)
            }) else { continue }
            // The node told us what the output should hold; bitcoind says what it does. They can
            // only differ if one of them is wrong, and then signing would commit to the wrong amount.
            guard info.value == candidate.output.value.sats, info.scriptPubKey.hex == candidate.output.scriptPubKey.bytes.hexString else {
                throw CLIError.verificationFailed(
                    "bitcoind's output \(point.txid.displayHex):\(point.index) holds \(info.value) sat to "
                        + "\(info.scriptPubKey.hex), but the delegation's \(source) output is \(candidate.output.value.sats) sat "
                        + "to \(candidate.output.scriptPubKey.bytes.hexString): is the node on the same Bitcoin network?")
            }
            return Location(builder: builder, output: candidate, onBitcoin: info)
        }
        return Location(builder: builder, output: nil, onBitcoin: nil)
    }

    /// How ``withdraw(node:rpc:staker:stakingTxid:to:feeRate:broadcast:)`` begins the error
    /// that says none of the staker's outputs is unspent.
    static let nothingToWithdrawPrefix = "nothing to withdraw"

    /// Everything `ishtar staking withdraw` does: the delegation and its parameters from the
    /// node; where the staker's bitcoin is now, from bitcoind (the first unspent of the
    /// staking output, the unbonding output and the two slashing transactions' change
    /// outputs); the timelock check against its confirmations; the signed withdrawal to `to`
    /// at `feeRate` sat/vB; Bitcoin Core's verdict (`testmempoolaccept`), and with
    /// `broadcast` the send.
    /// - Throws: `.verificationFailed` for another key than the staker's, a timelock that has
    ///   not passed (with the blocks still to wait), nothing left, a fee that leaves dust or
    ///   Core's refusal; `.badInput` for an address of another network.
    public static func withdraw(node: NodeAPIClient, rpc: BitcoinRPCClient, staker: Schnorr.PrivateKey, stakingTxid: String,
                                to address: String, feeRate: Int64, broadcast: Bool) async throws -> WithdrawOutput {
        let (txid, _, delegation, parameters) = try CovenantActions.storedDelegation(node: node, stakingTxid: stakingTxid)
        let destination: SegwitAddress
        do { destination = try SegwitAddress(address, network: parameters.network) } catch {
            throw CLIError.badInput("--to \(address): not an address of the delegation's network (\(parameters.network)): \(error)")
        }
        guard staker.publicKey == delegation.stakerKey else {
            throw CLIError.verificationFailed("--key-file holds \(staker.publicKey.rawRepresentation.hexString), "
                + "not this delegation's staker key \(delegation.stakerKey.rawRepresentation.hexString)")
        }
        let located = try await locate(delegation: delegation, parameters: parameters, rpc: rpc)
        guard let spent = located.output, let info = located.onBitcoin else {
            throw CLIError.verificationFailed(
                "\(nothingToWithdrawPrefix): none of delegation \(txid.displayHex)'s staking, unbonding or slashing-change "
                    + "outputs is unspent on bitcoind (already withdrawn, or the transaction holding the stake is not mined)")
        }
        let builder = located.builder
        // BIP-68: an output confirmed c times can be spent by the next block when c ≥ timelock.
        guard info.confirmations >= Int(spent.timelock) else {
            let wait = Int(spent.timelock) - info.confirmations
            throw CLIError.verificationFailed(
                "the \(spent.source) output \(spent.outPoint.txid.displayHex):\(spent.outPoint.index) has "
                    + "\(info.confirmations) confirmations; its timelock of \(spent.timelock) blocks opens after \(wait) more "
                    + "block\(wait == 1 ? "" : "s")")
        }
        let tx: IshtarBitcoin.Transaction
        do {
            tx = try builder.withdrawal(spending: spent, to: destination.scriptPubKey, feeRate: feeRate, staker: staker)
        } catch {
            throw CLIError.verificationFailed("\(error)")
        }
        let raw = tx.serialized()
        try await WatchActions.testThenSend(raw, txid: tx.txid, what: "withdrawal", rpc: rpc, broadcast: broadcast)
        let paid = tx.outputs.first?.value.sats ?? 0
        return WithdrawOutput(
            stakingTxid: txid.displayHex, spends: spent.source,
            outpoint: "\(spent.outPoint.txid.displayHex):\(spent.outPoint.index)", timelock: Int(spent.timelock),
            inputSat: spent.output.value.sats, amountSat: paid, feeSat: spent.output.value.sats - paid,
            destination: destination.encoded, txid: tx.txid.displayHex, transaction: raw.hexString, broadcast: broadcast)
    }
}

extension StakingCommand {
    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a stake on both sides: its delegation on the chain and its bitcoin on Bitcoin.",
            discussion: """
                Reads the delegation from the node (PENDING, VERIFIED, ACTIVE, UNBONDED, \
                EXPIRED, or SLASHED with its provider) and asks bitcoind which output holds \
                the staker's bitcoin now — the staking output, the unbonding output, or the \
                change of a slashing transaction — with its confirmations and how many blocks \
                remain before `ishtar staking withdraw` can take it. Signs and sends nothing.
                Example:
                  ishtar staking status --staking-txid <txid> --rpc-cookie-file ~/.bitcoin/regtest/.cookie
                Exit codes: 0 shown (also when nothing is left on Bitcoin), 1 bitcoind and the \
                node disagree about an output, 2 bad input or an unreachable node or bitcoind.
                """)

        @OptionGroup var api: NodeAPIOptions
        @OptionGroup var bitcoind: RelayCommand.BitcoindOptions

        @OptionGroup var delegation: StakingTxidOption
        @OptionGroup var format: OutputOptions

        func run() throws {
            let node = try api.client()
            let rpc = try bitcoind.client()
            let txid = delegation.stakingTxid
            format.emit(try RelayActions.blocking { try await StakingActions.status(node: node, rpc: rpc, stakingTxid: txid) })
        }
    }
}

extension StakingActions {
    /// The result of `ishtar staking status`; its description is what the command prints.
    public struct StakeStatusOutput: CommandOutput, CustomStringConvertible, Sendable {
        /// The delegation's staking txid (display order).
        public var stakingTxid: String
        /// The delegation's status on the chain.
        public var status: String
        /// The provider it delegates to (hex).
        public var finalityProvider: String
        /// The provider's status on the chain (SLASHED once it double-voted).
        public var finalityProviderStatus: String?
        /// The stake, sat.
        public var stakingValueSat: Int64
        /// The staking timelock, blocks.
        public var stakingTime: Int
        /// Which of the staker's outputs holds the bitcoin now; nil when none is unspent.
        public var heldIn: WithdrawalSource?
        /// That output, `txid:vout`.
        public var outpoint: String?
        /// What it holds, sat.
        public var valueSat: Int64?
        /// Its confirmations (0 in the mempool).
        public var confirmations: Int?
        /// Its timelock, blocks after confirmation.
        public var timelock: Int?
        /// Blocks until `staking withdraw` can spend it (0: now).
        public var withdrawableInBlocks: Int?

        var text: String {
            var lines = ["delegation:        \(stakingTxid) \(status)",
                         "provider:          \(finalityProvider)\(finalityProviderStatus.map { " (\($0))" } ?? "")",
                         "stake:             \(stakingValueSat) sat, staking time \(stakingTime) blocks"]
            if let heldIn, let outpoint, let valueSat, let confirmations, let timelock, let wait = withdrawableInBlocks {
                lines.append("on bitcoin:        the \(heldIn) output \(outpoint), \(valueSat) sat, \(confirmations) confirmations")
                lines.append(wait == 0
                    ? "withdrawable:      now (timelock \(timelock) blocks passed): ishtar staking withdraw --staking-txid \(stakingTxid) --to <address>"
                    : "withdrawable:      in \(wait) block\(wait == 1 ? "" : "s") (timelock \(timelock) blocks)")
            } else {
                lines.append("on bitcoin:        nothing left: no staking, unbonding or slashing-change output is unspent "
                    + "(withdrawn, or the staking transaction is not mined)")
            }
            return lines.joined(separator: "\n")
        }

        public var description: String { text }
    }

    /// Everything `ishtar staking status` does: the delegation from the node, its provider's
    /// status, and where its bitcoin is on bitcoind (``locate(delegation:parameters:rpc:)``).
    public static func status(node: NodeAPIClient, rpc: BitcoinRPCClient, stakingTxid: String) async throws -> StakeStatusOutput {
        let (txid, stored, delegation, parameters) = try CovenantActions.storedDelegation(node: node, stakingTxid: stakingTxid)
        struct Provider: Decodable { var status: String }
        let provider = try? TxActions.decodeOK(Provider.self, try TxActions.call { () throws(NodeAPIClientError) in
            try node.get("/modules/staking/finality-provider/\(stored.fpBTCPK)")
        }, what: "finality provider").status
        let located = try await locate(delegation: delegation, parameters: parameters, rpc: rpc)
        var output = StakeStatusOutput(
            stakingTxid: txid.displayHex, status: stored.status, finalityProvider: stored.fpBTCPK, finalityProviderStatus: provider,
            stakingValueSat: delegation.stakingValue.sats, stakingTime: Int(delegation.stakingTime))
        if let held = located.output, let info = located.onBitcoin {
            output.heldIn = held.source
            output.outpoint = "\(held.outPoint.txid.displayHex):\(held.outPoint.index)"
            output.valueSat = info.value
            output.confirmations = info.confirmations
            output.timelock = Int(held.timelock)
            output.withdrawableInBlocks = max(0, Int(held.timelock) - info.confirmations)
        }
        return output
    }
}
