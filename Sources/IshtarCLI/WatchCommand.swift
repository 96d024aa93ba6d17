import ArgumentParser
import Foundation
import IshtarBitcoin
import IshtarBitcoinRPC
import IshtarCrypto
import IshtarNode

struct WatchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch",
        abstract: "Act as a watchtower by hand: burn the stake of a provider that double-voted.",
        subcommands: [Slash.self, SlashProvider.self])

    struct Slash: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Complete a delegation's slashing transaction with the key its provider leaked, and send it to Bitcoin.",
            discussion: """
                Reads the delegation and the parameters it was created under from the node, \
                and its provider's equivocation evidence (/modules/finality/evidence/<key>). \
                The two EOTS signatures of a double vote give away the provider's secret key \
                (checked against its public key); with it the covenant members' adaptor \
                signatures stored on chain decrypt into ordinary signatures, and the \
                pre-signed slashing transaction is complete: the staking output's, or, when \
                bitcoind shows the staker's unbonding transaction (mined or in its mempool), \
                the unbonding output's. A covenant \
                quorum of decrypted signatures is required. Bitcoin Core tests the \
                transaction (testmempoolaccept) before anything is printed as ready; \
                --broadcast then sends it.
                Example:
                  ishtar watch slash --staking-txid <txid> \\
                    --rpc-cookie-file ~/.bitcoin/regtest/.cookie --broadcast
                Watch it: bitcoin-cli gettxout <staking txid> <output index> (gone once mined)
                Exit codes: 0 accepted by Bitcoin Core (and sent with --broadcast), 1 nothing \
                to slash (no evidence, too few covenant signatures) or Bitcoin Core refused \
                it (e.g. the output is already spent), 2 bad input or an unreachable node or \
                bitcoind.
                """)

        @OptionGroup var api: NodeAPIOptions
        @OptionGroup var bitcoind: RelayCommand.BitcoindOptions

        @OptionGroup var target: StoredDelegationSpend
        @OptionGroup var format: OutputOptions

        func run() throws {
            let node = try api.client()
            let rpc = try bitcoind.client()
            let txid = target.stakingTxid, send = target.broadcast
            format.emit(try RelayActions.blocking {
                try await WatchActions.slash(node: node, rpc: rpc, stakingTxid: txid, broadcast: send)
            })
        }
    }
}

extension WatchCommand {
    struct SlashProvider: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "slash-provider",
            abstract: "Run `watch slash` for every delegation of a provider that double-voted.",
            discussion: """
                Lists the provider's delegations from the node \
                (/modules/staking/finality-provider/<key>/delegations) and slashes each as \
                `watch slash` does, reporting per delegation what was sent or why not (a \
                stake already burned or withdrawn is reported, not an error).
                Example:
                  ishtar watch slash-provider --fp-pk <key> \\
                    --rpc-cookie-file ~/.bitcoin/regtest/.cookie --broadcast
                Exit codes: 0 at least one delegation slashed (or none still holds stake), 1 \
                no evidence against the provider, or none of the delegations that still hold \
                stake could be slashed, 2 bad input or an unreachable node or bitcoind.
                """)

        @OptionGroup var api: NodeAPIOptions
        @OptionGroup var bitcoind: RelayCommand.BitcoindOptions

        @Option(name: .long, help: ArgumentHelp("The provider's x-only key, hex.", valueName: "hex"))
        var fpPk: String

        @Flag(name: .long, help: "Send each transaction once Bitcoin Core accepts it (default: test only, print them).")
        var broadcast = false

        @OptionGroup var format: OutputOptions

        func validate() throws { _ = try Parse.publicKey(fpPk, option: "--fp-pk") }

        func run() throws {
            let node = try api.client()
            let rpc = try bitcoind.client()
            let provider = try Parse.publicKey(fpPk, option: "--fp-pk"), send = broadcast
            format.emit(try RelayActions.blocking {
                try await WatchActions.slashProvider(node: node, rpc: rpc, provider: provider, broadcast: send)
            })
        }
    }
}

/// `--staking-txid`: the delegation a command is about, checked to be 32 bytes of hex.
struct StakingTxidOption: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The delegation's staking txid (display order).", valueName: "txid"))
    var stakingTxid: String

    func validate() throws {
        _ = try Parse.hex(stakingTxid, option: "--staking-txid", length: 32)
    }
}

/// The delegation whose stored transaction a command completes, and whether to send it:
/// shared by `watch slash`, `staking unbond` and `staking withdraw`.
struct StoredDelegationSpend: ParsableArguments {
    @OptionGroup var delegation: StakingTxidOption

    @Flag(name: .long, help: "Send the transaction once Bitcoin Core accepts it (default: test only, print it).")
    var broadcast = false

    var stakingTxid: String { delegation.stakingTxid }
}

/// What `ishtar watch` does, callable from tests.
public enum WatchActions {
    /// Which output a slashing transaction spends.
    public enum SlashedOutput: String, Sendable, Encodable {
        /// The staking output (the staker has not unbonded).
        case staking
        /// The unbonding output (the staker unbonded early; the staking output is spent).
        case unbonding
    }

    /// The result of `ishtar watch slash`.
    public struct SlashOutput: CommandOutput, Sendable {
        /// The delegation's staking txid (display order).
        public var stakingTxid: String
        /// The double-voting provider's key (hex).
        public var finalityProvider: String
        /// The output the transaction spends.
        public var spends: SlashedOutput
        /// Covenant signatures decrypted with the provider's key and used.
        public var covenantSignatures: Int
        /// The slashing transaction's txid (display order).
        public var txid: String
        /// The signed transaction, hex.
        public var transaction: String
        /// Satoshis output 0 pays to the slashing script.
        public var slashedSat: Int64
        /// Whether it was sent to bitcoind.
        public var broadcast: Bool

        var text: String {
            """
            delegation:        \(stakingTxid)
            provider:          \(finalityProvider) (double-voted; key extracted from the chain's evidence)
            spends:            the \(spends.rawValue) output
            covenant sigs:     \(covenantSignatures) decrypted
            slashing tx:       \(txid) (\(slashedSat) sat to the slashing script, output 0)
            bitcoin core:      accepted\(broadcast ? "; sent" : " (test only; --broadcast sends it)")
            \(transaction)
            """
        }
    }

    /// Has Bitcoin Core test `raw` (`testmempoolaccept`) and, with `broadcast`, sends it.
    /// - Throws: `.verificationFailed` with Core's reason when it refuses.
    /// - Parameter anyFeeRate: accept any fee rate (`maxfeerate` 0) — for a pre-signed
    ///   slashing transaction, whose fee the chain accepted and nobody can lower now.
    static func testThenSend(_ raw: Data, txid: Hash256, what: String, rpc: BitcoinRPCClient, broadcast: Bool,
                             maxBurn: Int64? = nil, anyFeeRate: Bool = false) async throws {
        let maxFeeRate: Int64? = anyFeeRate ? 0 : nil
        let verdict = try await RelayActions.rpcCall("testmempoolaccept") { () throws(BitcoinRPCError) in
            try await rpc.testMempoolAccept([raw.hexString], maxFeeRate: maxFeeRate)
        }
        guard let first = verdict.first, first.allowed == true else {
            throw CLIError.verificationFailed(
                "Bitcoin Core refuses \(what) \(txid.displayHex): \(verdict.first?.rejectReason ?? "no verdict")")
        }
        if broadcast {
            _ = try await RelayActions.rpcCall("sendrawtransaction") { () throws(BitcoinRPCError) in
                try await rpc.sendRawTransaction(raw, maxFeeRate: maxFeeRate, maxBurnAmount: maxBurn)
            }
        }
    }

    /// The result of `ishtar watch slash-provider`: one entry per delegation.
    public struct SlashProviderOutput: CommandOutput, Sendable {
        /// One delegation's outcome.
        public struct Item: Encodable, Sendable {
            /// The delegation's staking txid (display order).
            public var stakingTxid: String
            /// The slashing transaction, when one was built and accepted.
            public var slashed: SlashOutput?
            /// Why not, otherwise.
            public var refused: String?
        }
        /// The provider's key (hex).
        public var finalityProvider: String
        /// Per delegation, in the node's order.
        public var delegations: [Item]

        var text: String {
            (["provider \(finalityProvider): \(delegations.count) delegations"] + delegations.map { item in
                if let s = item.slashed {
                    return "\(item.stakingTxid): slashing tx \(s.txid) (\(s.spends.rawValue) output)\(s.broadcast ? ", sent" : ", tested")"
                }
                return "\(item.stakingTxid): not slashed: \(item.refused ?? "?")"
            }).joined(separator: "\n")
        }
    }

    /// ``slash(node:rpc:stakingTxid:broadcast:)`` for every delegation of `provider`. A
    /// delegation that cannot be slashed is reported with the reason; the call throws when
    /// the chain holds no evidence against the provider, or when none could be slashed while
    /// some still hold stake.
    public static func slashProvider(node: NodeAPIClient, rpc: BitcoinRPCClient, provider: Schnorr.PublicKey, broadcast: Bool)
        async throws -> SlashProviderOutput
    {
        _ = try extractedKey(node: node, provider: provider)
        struct Listed: Decodable {
            struct Item: Decodable {
                var stakingTxid: String
                enum CodingKeys: String, CodingKey { case stakingTxid = "staking_txid" }
            }
        }
        let hex = provider.rawRepresentation.hexString
        // Every page: a provider can hold more delegations than one page lists.
        let listed = try QueryActions.allItems(Listed.Item.self, client: node, route: "/modules/staking/finality-provider/\(hex)/delegations",
                                               field: "delegations", what: "delegations")
        var items: [SlashProviderOutput.Item] = []
        var stillHeld = 0
        for d in listed {
            do {
                let out = try await slash(node: node, rpc: rpc, stakingTxid: d.stakingTxid, broadcast: broadcast)
                items.append(.init(stakingTxid: d.stakingTxid, slashed: out, refused: nil))
            } catch CLIError.verificationFailed(let why) {
                if !why.hasPrefix(nothingLeftPrefix) { stillHeld += 1 }
                items.append(.init(stakingTxid: d.stakingTxid, slashed: nil, refused: why))
            }
        }
        let output = SlashProviderOutput(finalityProvider: hex, delegations: items)
        if !items.contains(where: { $0.slashed != nil }), stillHeld > 0 {
            throw CLIError.verificationFailed("none of provider \(hex)'s delegations could be slashed: "
                + items.compactMap { $0.refused.map { r in "\(r)" } }.joined(separator: "; "))
        }
        return output
    }

    /// How ``slash(node:rpc:stakingTxid:broadcast:)`` begins the error that says the stake
    /// is already gone from both outputs.
    static let nothingLeftPrefix = "neither the staking output"

    /// Equivocation evidence as `/modules/finality/evidence/<key>` answers it.
    struct EvidenceJSON: Decodable {
        struct Item: Decodable {
            var fpBTCPK: String
            var height: String
            var publicRandomness: String
            var blockHash1: String
            var signature1: String
            var blockHash2: String
            var signature2: String
            enum CodingKeys: String, CodingKey {
                case fpBTCPK = "fp_btc_pk", height, publicRandomness = "public_randomness"
                case blockHash1 = "block_hash_1", signature1 = "signature_1", blockHash2 = "block_hash_2", signature2 = "signature_2"
            }
        }
        var evidence: [Item]
    }

    /// The secret key of `provider`, extracted from the first equivocation the chain stored
    /// for it, and checked to belong to it.
    /// - Throws: `.verificationFailed` when the chain holds no evidence against the provider.
    public static func extractedKey(node: NodeAPIClient, provider: Schnorr.PublicKey) throws -> Schnorr.PrivateKey {
        let hex = provider.rawRepresentation.hexString
        let reply = try TxActions.call { () throws(NodeAPIClientError) in try node.get("/modules/finality/evidence/\(hex)?limit=1") }
        let list = try TxActions.decodeOK(EvidenceJSON.self, reply, what: "evidence")
        guard let e = list.evidence.first(where: { $0.fpBTCPK.lowercased() == hex }) else {
            throw CLIError.verificationFailed("the chain holds no equivocation evidence against provider \(hex): nothing to slash")
        }
        do {
            guard let height = UInt64(e.height) else { throw CLIError.badInput("evidence height \"\(e.height)\"") }
            let key = try EOTS.extract(
                publicKey: provider, publicRandomness: try EOTS.PublicRandomness(rawRepresentation: try Data(hex: e.publicRandomness)),
                message1: try EOTS.finalityVoteMessage(height: height, blockHash: try Data(hex: e.blockHash1)),
                signature1: try EOTS.Signature(rawRepresentation: try Data(hex: e.signature1)),
                message2: try EOTS.finalityVoteMessage(height: height, blockHash: try Data(hex: e.blockHash2)),
                signature2: try EOTS.Signature(rawRepresentation: try Data(hex: e.signature2)))
            guard key.publicKey.rawRepresentation == provider.rawRepresentation else {
                throw CLIError.verificationFailed("the evidence against \(hex) does not yield its key")
            }
            return key
        } catch let error as CLIError {
            throw error
        } catch {
            throw CLIError.verificationFailed("the evidence against \(hex) does not yield its key: \(error)")
        }
    }

    /// The slashing transaction of `delegation` that spends `output`, signed: the staker's
    /// stored pre-signature, the provider's signature made with its extracted secret, and
    /// every covenant adaptor signature in `covenantSignatures` that decrypts (with that
    /// secret) into a valid signature. Returns the transaction and how many covenant
    /// signatures it carries; the witness needs a covenant quorum.
    public static func slashingTransaction(
        delegation: DelegationTransactions, covenantSignatures: [CovenantSignatureSet], parameters: StakingParameters,
        providerSecret: Schnorr.PrivateKey, spending output: SlashedOutput
    ) throws -> (IshtarBitcoin.Transaction, Int) {
        let valid = try StakingValidation.validate(delegation: delegation, parameters: parameters)
        let provider = providerSecret.publicKey
        let (transaction, sighash, kind, staker) = switch output {
        case .staking: (delegation.slashingTransaction, valid.slashingSighash, StakingTransactionKind.slashing,
                        delegation.stakerSlashingSignature)
        case .unbonding: (delegation.unbondingSlashingTransaction, valid.unbondingSlashingSighash,
                          StakingTransactionKind.unbondingSlashing, delegation.stakerUnbondingSlashingSignature)
        }
        var covenant: [Schnorr.PublicKey: Schnorr.Signature] = [:]
        for set in covenantSignatures {
            guard let adaptor = set.adaptorSignatures(for: kind)[provider] else { continue }
            let signature = CovenantAdaptor.decrypt(adaptor, finalityProviderSecret: providerSecret)
            if set.covenantKey.isValidSignature(signature, for: sighash) { covenant[set.covenantKey] = signature }
        }
        guard covenant.count >= parameters.covenantQuorum else {
            throw CLIError.verificationFailed(
                "only \(covenant.count) covenant signatures decrypt to valid ones; the slashing path needs \(parameters.covenantQuorum)")
        }
        let providerSignature = try StakingSigner.sign(sighash: sighash, key: providerSecret)
        var tx = transaction
        switch output {
        case .staking:
            tx.inputs[0].witness = try valid.builder.stakingSlashingWitness(
                stakerSignature: staker, finalityProviderSignatures: [provider: providerSignature], covenantSignatures: covenant)
        case .unbonding:
            tx.inputs[0].witness = try valid.builder.unbondingSlashingWitness(
                stakerSignature: staker, finalityProviderSignatures: [provider: providerSignature], covenantSignatures: covenant)
        }
        return (tx, covenant.count)
    }

    /// Everything `ishtar watch slash` does: the delegation, its parameters and its
    /// provider's evidence from the node; the key; the completed slashing transaction of the
    /// output that holds the stake on bitcoind (the staking output, or the unbonding output
    /// once the staker's unbonding transaction is mined or in the mempool); Bitcoin Core's
    /// verdict (`testmempoolaccept`), and with `broadcast` the send.
    public static func slash(node: NodeAPIClient, rpc: BitcoinRPCClient, stakingTxid: String, broadcast: Bool) async throws
        -> SlashOutput
    {
        let (txid, stored, delegation, parameters) = try CovenantActions.storedDelegation(node: node, stakingTxid: stakingTxid)
        guard let provider = delegation.finalityProviderKeys.first else { throw CLIError.badInput("delegation names no provider") }
        let secret = try extractedKey(node: node, provider: provider)
        // Where the stake is now is Bitcoin's to say, not the chain's: a staker racing the
        // slash may have its unbonding transaction mined (or only in the mempool) before any
        // relayer reported it.
        let stakingOut = try await RelayActions.rpcCall("gettxout") { () throws(BitcoinRPCError) in
            try await rpc.getTxOut(txid: txid.displayHex, vout: delegation.stakingOutputIndex)
        }
        let output: SlashedOutput
        if stakingOut != nil {
            output = .staking
        } else if try await RelayActions.rpcCall("gettxout", { () throws(BitcoinRPCError) in
            try await rpc.getTxOut(txid: delegation.unbondingTransaction.txid.displayHex, vout: 0)
        }) != nil {
            output = .unbonding
        } else {
            throw CLIError.verificationFailed(
                "\(nothingLeftPrefix) \(txid.displayHex):\(delegation.stakingOutputIndex) nor the unbonding output "
                    + "\(delegation.unbondingTransaction.txid.displayHex):0 is unspent on bitcoind: already slashed, withdrawn, "
                    + "or not mined")
        }
        let (tx, signatures) = try slashingTransaction(
            delegation: delegation, covenantSignatures: try CovenantActions.covenantSignatureSets(stored),
            parameters: parameters, providerSecret: secret, spending: output)
        let raw = tx.serialized()
        let slashed = tx.outputs.first?.value.sats ?? 0
        // Output 0 may be a burn (an unspendable script): allow exactly it.
        // The staker pre-signed its fee; any fee the chain accepted must not stop the burn
        // (Core's default maxfeerate would refuse a large one).
        try await testThenSend(raw, txid: tx.txid, what: "slashing transaction", rpc: rpc, broadcast: broadcast, maxBurn: slashed,
                               anyFeeRate: true)
        return SlashOutput(stakingTxid: txid.displayHex, finalityProvider: provider.rawRepresentation.hexString, spends: output,
                           covenantSignatures: signatures, txid: tx.txid.displayHex, transaction: raw.hexString,
                           slashedSat: slashed, broadcast: broadcast)
    }
}
