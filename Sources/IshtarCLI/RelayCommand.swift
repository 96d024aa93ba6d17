import ArgumentParser
import Foundation
import IshtarBitcoin
import IshtarBitcoinRPC
import IshtarChain
import IshtarCrypto
import IshtarKeys
import IshtarNode
import Synchronization

/// `ishtar relay …`: carry Bitcoin facts to the chain by hand — what the relayer daemon of
/// a later issue will do continuously.
struct RelayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "relay",
        abstract: "Carry data between Bitcoin and the chain: headers, staking proofs, unbondings, checkpoints.",
        subcommands: [Headers.self, Activation.self, Unbonding.self, CheckpointSubmit.self, CheckpointProof.self])

    /// How to reach bitcoind's JSON-RPC.
    struct BitcoindOptions: ParsableArguments {
        /// Largest bitcoind answer the CLI reads (32 MiB).
        static let maxResponseBytes = 32 << 20

        @Option(name: .long, help: ArgumentHelp("bitcoind's JSON-RPC endpoint.", valueName: "url"))
        var bitcoindURL = "http://127.0.0.1:18443/"

        @Option(name: .long, help: ArgumentHelp("bitcoind's cookie file (<datadir>/[regtest/].cookie).", valueName: "file"))
        var rpcCookieFile: String?

        @Option(name: .long, help: ArgumentHelp("RPC user (with --rpc-password-file or $ISHTAR_RPC_PASSWORD).", valueName: "user"))
        var rpcUser: String?

        @Option(name: .long, help: ArgumentHelp("File whose first line is the RPC password.", valueName: "file"))
        var rpcPasswordFile: String?

        func validate() throws {
            guard bitcoindURL.hasPrefix("http://") || bitcoindURL.hasPrefix("https://") else {
                throw ValidationError("--bitcoind-url: expected http://host:port/, got \"\(bitcoindURL)\"")
            }
            if rpcCookieFile != nil, rpcUser != nil {
                throw ValidationError("--rpc-cookie-file and --rpc-user: give one way to authenticate, not both")
            }
            if rpcCookieFile == nil, rpcUser == nil {
                throw ValidationError("--rpc-cookie-file or --rpc-user: bitcoind needs one of them")
            }
        }

        func client() throws -> BitcoinRPCClient {
            let credentials: BitcoinRPCCredentials
            if let rpcCookieFile {
                credentials = .cookieFile(path: rpcCookieFile)
            } else if let rpcUser {
                var password = ProcessInfo.processInfo.environment["ISHTAR_RPC_PASSWORD"]
                if let rpcPasswordFile {
                    do {
                        password = try SecretFile.firstLine(rpcPasswordFile, what: "bitcoind password file")
                            .map { String(decoding: $0, as: UTF8.self) } ?? ""
                    } catch {
                        throw CLIError.badInput("--rpc-password-file: \(error)")
                    }
                }
                guard let password, !password.isEmpty else {
                    throw CLIError.badInput("--rpc-user: no password (--rpc-password-file or $ISHTAR_RPC_PASSWORD)")
                }
                credentials = .userPassword(user: rpcUser, password: password)
            } else {
                throw CLIError.badInput("--rpc-cookie-file or --rpc-user: bitcoind needs one of them")
            }
            var configuration = BitcoinRPCConfiguration(url: bitcoindURL, credentials: credentials)
            configuration.requestTimeout = .seconds(30)
            // The largest answer these commands ask for is a serialized block in hex (≤ 8 MB
            // for 4 MWU); a bitcoind sending more is not one to trust, and every JSON value
            // it sends costs memory many times its size once parsed.
            configuration.maxResponseBytes = Self.maxResponseBytes
            return BitcoinRPCClient(configuration: configuration)
        }
    }

    /// The node, bitcoind, the sending account and its chain and nonce: what every relay
    /// command that sends a transaction needs.
    struct SenderOptions: ParsableArguments {
        @OptionGroup var api: NodeAPIOptions
        @OptionGroup var bitcoind: BitcoindOptions

        @Option(name: .long, help: ArgumentHelp("Key file of the account that signs and sends the transactions.", valueName: "file"))
        var keyFile: String

        @OptionGroup var passphrase: KeysCommand.PassphraseOptions

        @Option(name: .long, help: ArgumentHelp("The control plane's chain id.", valueName: "id"), transform: Parse.chainID)
        var chainID: String

        @OptionGroup var nonce: NonceOption

        /// The node's client, the unlocked account key and bitcoind's client.
        func open() throws -> (node: NodeAPIClient, key: Schnorr.PrivateKey, rpc: BitcoinRPCClient) {
            let node = try api.client()
            let key = try KeysActions.unlock(path: keyFile, passphrase: passphrase.resolve())
            return (node, key, try bitcoind.client())
        }

        /// Sends `message` from the account and prints the verdict.
        func submit(_ message: Message, node: NodeAPIClient, key: Schnorr.PrivateKey, _ format: OutputOptions) throws {
            try TxActions.submit(client: node, key: key, chainID: chainID, nonce: nonce.explicit, messages: [message], format: format)
        }
    }

    struct Headers: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send the headers bitcoind has and the light client lacks (btclightclient/InsertHeaders).",
            discussion: """
                Finds where the light client's main chain meets bitcoind's — walking back \
                from the light client's tip past blocks bitcoind does not have on its active \
                chain, so a Bitcoin reorg is relayed as one — then sends bitcoind's headers \
                from there to its tip, in transactions of at most the chain's \
                max_headers_per_message from --key-file (any account may relay). Runs once; \
                the transactions are in the mempool when it returns. Example (regtest):
                  ishtar relay headers --key-file relayer.key --chain-id ishtar-devnet \\
                    --rpc-cookie-file ~/.bitcoin/regtest/.cookie
                Watch it: ishtar query module btclightclient tip
                Exit codes: 0 sent (or nothing to send), 1 a transaction was refused, 2 bad \
                input or an unreachable node.
                """)

        @OptionGroup var sender: RelayCommand.SenderOptions

        @Option(name: .long, help: ArgumentHelp("Most headers to send in this run.", valueName: "n"))
        var maxHeaders = 10_000

        @OptionGroup var format: OutputOptions

        func validate() throws {
            guard maxHeaders >= 1 else { throw ValidationError("--max-headers: must be at least 1") }
        }

        func run() throws {
            let (node, key, rpc) = try sender.open()
            let (chainID, maxHeaders, first) = (sender.chainID, maxHeaders, sender.nonce.explicit)
            let output = try RelayActions.blocking {
                try await RelayActions.relayHeaders(node: node, bitcoind: rpc, key: key, chainID: chainID, maxHeaders: maxHeaders,
                                                    firstNonce: first)
            }
            format.emit(output)
            if let refused = output.refused {
                throw CLIError.verificationFailed("transaction refused: \(refused)")
            }
        }
    }
}

extension RelayCommand {
    struct Activation: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Prove a delegation's staking transaction is in a Bitcoin block (staking/AddBTCDelegationInclusionProof).",
            discussion: """
                Finds the block holding the staking transaction (bitcoind needs -txindex, or \
                give --block-hash), builds its Merkle proof, checks it against the block's \
                header, and sends it from --key-file (any account may). The chain accepts it \
                once that block is on its light client's main chain at least k deep (relay the \
                headers first) and the delegation is VERIFIED; it is then ACTIVE. Example:
                  ishtar relay activation --key-file relayer.key --chain-id ishtar-devnet \\
                    --rpc-cookie-file ~/.bitcoin/regtest/.cookie --staking-txid <txid>
                Watch it: ishtar query module staking delegation <staking txid>
                Exit codes: 0 accepted into the mempool, 1 refused (or not yet in a block), \
                2 bad input or an unreachable node.
                """)

        @OptionGroup var sender: RelayCommand.SenderOptions

        @Option(name: .long, help: ArgumentHelp("The staking transaction's txid (display order, as bitcoind prints it).", valueName: "txid"))
        var stakingTxid: String

        @Option(name: .long, help: ArgumentHelp("The block that holds it (default: asked from bitcoind's transaction index).", valueName: "hash"))
        var blockHash: String?


        @OptionGroup var format: OutputOptions

        func validate() throws {
            _ = try Parse.hex(stakingTxid, option: "--staking-txid", length: 32)
            if let blockHash { _ = try Parse.hex(blockHash, option: "--block-hash", length: 32) }
        }

        func run() throws {
            let (node, key, rpc) = try sender.open()
            let (txid, given) = (stakingTxid, blockHash)
            let message = try RelayActions.blocking { try await RelayActions.activationMessage(rpc: rpc, stakingTxid: txid, blockHash: given) }
            try sender.submit(message, node: node, key: key, format)
        }
    }
}

extension RelayActions {
    /// `staking/AddBTCDelegationInclusionProof` for the staking transaction `stakingTxid`
    /// (display hex) in `blockHash` (display hex; by default the block bitcoind's
    /// transaction index names).
    public static func activationMessage(rpc: BitcoinRPCClient, stakingTxid: String, blockHash: String? = nil) async throws -> Message {
        let proof = try await inclusionProof(rpc: rpc, txid: stakingTxid, blockHash: blockHash)
        do {
            return AddBTCDelegationInclusionProof(stakingTxid: try Hash256(displayHex: stakingTxid).rawValue, proof: proof).message
        } catch {
            throw CLIError.badInput("--staking-txid: \(error)")
        }
    }

    /// The proof that transaction `txid` (display hex) is in `blockHash` (display hex; by
    /// default the block bitcoind's transaction index names), checked against that block's
    /// header before it is returned.
    public static func inclusionProof(rpc: BitcoinRPCClient, txid: String, blockHash: String? = nil) async throws -> BTCInclusionProofPayload {
        let target: Hash256
        do { target = try Hash256(displayHex: txid) } catch { throw CLIError.badInput("txid: \(error)") }
        let block: String
        if let blockHash {
            block = blockHash
        } else {
            let tx = try await rpcCall("getrawtransaction \(txid)") { () throws(BitcoinRPCError) in try await rpc.getRawTransaction(txid) }
            guard let found = tx.blockHash else { throw CLIError.verificationFailed("transaction \(txid) is not in a block yet") }
            block = found
        }
        // The whole block: the proof carries the block's coinbase and its path, which fix the
        // depth of the block's tree (PinnedInclusionProof).
        let raw = try await rpcCall("getblock \(block) 0") { () throws(BitcoinRPCError) in try await rpc.getBlockData(block) }
        let parsed: IshtarBitcoin.Block
        do {
            parsed = try IshtarBitcoin.Block(serialized: raw)
            try parsed.checkMerkleRoot()
        } catch {
            throw CLIError.badInput("bitcoind returned a malformed block \(block): \(error)")
        }
        guard let index = parsed.transactions.firstIndex(where: { $0.txid.rawValue == target.rawValue }) else {
            throw CLIError.verificationFailed("transaction \(txid) is not in block \(block)")
        }
        let proof: PinnedInclusionProof
        do {
            proof = try parsed.pinnedInclusionProof(index: index)
            try proof.verify(transaction: parsed.transactions[index], merkleRoot: parsed.header.merkleRoot)
        } catch {
            throw CLIError.badInput("block \(block): \(error)")
        }
        return BTCInclusionProofPayload(blockHash: parsed.header.hash.rawValue, proof: proof)
    }
}

extension RelayCommand {
    struct Unbonding: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Report a delegation's unbonding transaction mined on Bitcoin (staking/BTCUndelegate).",
            discussion: """
                Reads the delegation from the node, finds its unbonding transaction on \
                bitcoind (by txid, through the transaction index), builds the inclusion proof \
                of the block holding it (checked against the block's header) and sends the \
                mined transaction with it from --key-file (any account may). The chain ends \
                the delegation (UNBONDED; an ACTIVE one loses its power at the next height) \
                once that block is on its light client's main chain — relay the headers first. \
                Example:
                  ishtar relay unbonding --key-file relayer.key --chain-id ishtar-devnet \\
                    --rpc-cookie-file ~/.bitcoin/regtest/.cookie --staking-txid <txid>
                Watch it: ishtar query module staking delegation <staking txid>
                Exit codes: 0 accepted into the mempool, 1 refused (or not yet mined), 2 bad \
                input or an unreachable node.
                """)

        @OptionGroup var sender: RelayCommand.SenderOptions

        @OptionGroup var delegation: StakingTxidOption
        @OptionGroup var format: OutputOptions

        func run() throws {
            let (node, key, rpc) = try sender.open()
            let txid = delegation.stakingTxid
            let message = try RelayActions.blocking { try await RelayActions.unbondingMessage(node: node, rpc: rpc, stakingTxid: txid) }
            try sender.submit(message, node: node, key: key, format)
        }
    }
}

extension RelayActions {
    /// `staking/BTCUndelegate` for the delegation `stakingTxid` (display hex): its unbonding
    /// transaction as mined (found by txid through bitcoind's transaction index) with the
    /// inclusion proof of its block.
    public static func unbondingMessage(node: NodeAPIClient, rpc: BitcoinRPCClient, stakingTxid: String) async throws -> Message {
        let staking: Hash256
        do { staking = try Hash256(displayHex: stakingTxid) } catch { throw CLIError.badInput("--staking-txid: \(error)") }
        struct Stored: Decodable {
            var unbondingTx: String
            enum CodingKeys: String, CodingKey { case unbondingTx = "unbonding_tx" }
        }
        let reply = try TxActions.call { () throws(NodeAPIClientError) in try node.get("/modules/staking/delegation/\(staking.displayHex)") }
        let stored = try TxActions.decodeOK(Stored.self, reply, what: "delegation")
        let unbondingTxid: String
        do {
            unbondingTxid = try IshtarBitcoin.Transaction(serialized: try Data(hex: stored.unbondingTx, field: "unbonding_tx")).txid.displayHex
        } catch {
            throw CLIError.badInput("node returned a malformed unbonding transaction: \(error)")
        }
        let found = try await rpcCall("getrawtransaction \(unbondingTxid)") { () throws(BitcoinRPCError) in
            try await rpc.getRawTransaction(unbondingTxid)
        }
        guard let block = found.blockHash else {
            throw CLIError.verificationFailed("unbonding transaction \(unbondingTxid) is not in a block yet")
        }
        let raw = try await rpcCall("getrawtransaction \(unbondingTxid)") { () throws(BitcoinRPCError) in
            try await rpc.getRawTransactionData(unbondingTxid, blockHash: block)
        }
        let mined: IshtarBitcoin.Transaction
        do { mined = try IshtarBitcoin.Transaction(serialized: raw) } catch {
            throw CLIError.badInput("bitcoind returned a malformed transaction \(unbondingTxid): \(error)")
        }
        let proof = try await inclusionProof(rpc: rpc, txid: unbondingTxid, blockHash: block)
        return BTCUndelegate(stakingTxid: staking.rawValue, unbondingTransaction: mined, proof: proof).message
    }
}

extension RelayCommand {
    struct CheckpointSubmit: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "checkpoint-submit",
            abstract: "Put a sealed epoch's checkpoint on Bitcoin: its two OP_RETURN transactions.",
            discussion: """
                Reads the two payloads for the epoch and this relayer's submitter id (from \
                --key-file's account) from the node, funds transaction 1 from a key-path \
                taproot output of --funding-key-file (found with scantxoutset), has \
                transaction 2 spend transaction 1's change, signs both and broadcasts them. \
                Once both are mined, relay the headers and run `relay checkpoint-proof` with \
                the two txids. Example (regtest):
                  ishtar relay checkpoint-submit --key-file relayer.key --funding-key-file btc.key \\
                    --rpc-cookie-file ~/.bitcoin/regtest/.cookie --epoch 3
                Exit codes: 0 broadcast, 1 refused (not sealed, no spendable coin, rejected by \
                bitcoind), 2 bad input or an unreachable node.
                """)

        @OptionGroup var api: NodeAPIOptions
        @OptionGroup var bitcoind: RelayCommand.BitcoindOptions

        @Option(name: .long, help: ArgumentHelp("Key file of the relayer's account (its submitter id goes in the payload).", valueName: "file"))
        var keyFile: String

        @Option(name: .long, help: ArgumentHelp("Key file whose key-path taproot output pays the fees.", valueName: "file"))
        var fundingKeyFile: String

        @OptionGroup var passphrase: KeysCommand.PassphraseOptions

        @Option(name: .long, help: ArgumentHelp("The sealed epoch.", valueName: "n"))
        var epoch: UInt64

        @Option(name: .long, help: ArgumentHelp("Fee of each transaction, sat.", valueName: "sat"))
        var fee: Int64 = 1_000

        @OptionGroup var format: OutputOptions

        func validate() throws {
            guard epoch >= 1 else { throw ValidationError("--epoch: epochs start at 1") }
            guard fee >= 200, fee <= 1_000_000 else { throw ValidationError("--fee: 200 to 1,000,000 sat") }
        }

        func run() throws {
            let node = try api.client()
            let secret = try passphrase.resolve()
            let account = try KeysActions.unlock(path: keyFile, passphrase: secret).publicKey.rawRepresentation
            let funding = try KeysActions.unlock(path: fundingKeyFile, passphrase: secret)
            let rpc = try bitcoind.client()
            let (epoch, fee) = (epoch, fee)
            let pair = try RelayActions.blocking {
                try await RelayActions.submitCheckpoint(node: node, rpc: rpc, epoch: epoch, account: account, fundingKey: funding, fee: fee)
            }
            format.emit(CheckpointSubmission(epoch: epoch, txid1: pair.0.txid.displayHex, txid2: pair.1.txid.displayHex))
        }
    }

    struct CheckpointProof: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "checkpoint-proof",
            abstract: "Report a checkpoint's two mined transactions with their proofs (checkpoints/InsertBTCSpvProof).",
            discussion: """
                Both blocks must be on the light client's main chain (relay the headers \
                first). The checkpoint is then SUBMITTED; CONFIRMED at depth k and FINALIZED \
                at depth w as the light client grows. Example:
                  ishtar relay checkpoint-proof --key-file relayer.key --chain-id ishtar-devnet \\
                    --rpc-cookie-file ~/.bitcoin/regtest/.cookie --txid1 <txid> --txid2 <txid>
                Watch it: ishtar query module checkpoints epoch <n>
                """)

        @OptionGroup var sender: RelayCommand.SenderOptions

        @Option(name: .long, help: ArgumentHelp("Transaction 1 (part 1 of the checkpoint), display hex.", valueName: "txid"))
        var txid1: String

        @Option(name: .long, help: ArgumentHelp("Transaction 2 (part 2, spending transaction 1), display hex.", valueName: "txid"))
        var txid2: String

        @OptionGroup var format: OutputOptions

        func validate() throws {
            _ = try Parse.hex(txid1, option: "--txid1", length: 32)
            _ = try Parse.hex(txid2, option: "--txid2", length: 32)
        }

        func run() throws {
            let (node, key, rpc) = try sender.open()
            let (first, second) = (txid1, txid2)
            let message = try RelayActions.blocking { try await RelayActions.checkpointProofMessage(rpc: rpc, txid1: first, txid2: second) }
            try sender.submit(message, node: node, key: key, format)
        }
    }
}

/// What `ishtar relay checkpoint-submit` broadcast.
public struct CheckpointSubmission: CommandOutput, Equatable, Sendable {
    public var epoch: UInt64
    public var txid1: String
    public var txid2: String

    var text: String { "epoch: \(epoch)\ntransaction 1: \(txid1)\ntransaction 2: \(txid2)" }
}

extension RelayActions {
    /// Builds, signs and broadcasts a sealed epoch's two checkpoint transactions: transaction
    /// 1 spends a mature key-path taproot coin of `fundingKey` into the part-1 OP_RETURN and
    /// change; transaction 2 spends that change into the part-2 OP_RETURN and change. The
    /// payloads (with `account`'s submitter id) come from the node.
    public static func submitCheckpoint(node: NodeAPIClient, rpc: BitcoinRPCClient, epoch: UInt64, account: Data,
                                        fundingKey: Schnorr.PrivateKey, fee: Int64) async throws
        -> (IshtarBitcoin.Transaction, IshtarBitcoin.Transaction)
    {
        struct Payloads: Decodable { var part1: String; var part2: String }
        struct LightClientParams: Decodable { var network: String }
        let submitter = CheckpointsModule.submitterID(account: account).hexString
        let payloadReply = try TxActions.call { () throws(NodeAPIClientError) in
            try node.get("/modules/checkpoints/bitcoin-payloads/\(epoch)/\(submitter)")
        }
        let payloads = try TxActions.decodeOK(Payloads.self, payloadReply, what: "checkpoint payloads")
        let paramsReply = try TxActions.call { () throws(NodeAPIClientError) in try node.get("/modules/btclightclient/params") }
        let networkName = try TxActions.decodeOK(LightClientParams.self, paramsReply, what: "light-client params").network
        guard let network = Network(rawValue: networkName) else { throw CLIError.badInput("node reports an unknown network \"\(networkName)\"") }
        // A finalized epoch takes no more submissions: paying for one would be money burnt.
        struct Status: Decodable { var status: String }
        let statusReply = try TxActions.call { () throws(NodeAPIClientError) in try node.get("/modules/checkpoints/status/\(epoch)") }
        let status = try TxActions.decodeOK(Status.self, statusReply, what: "checkpoint status").status
        guard status != CheckpointStatus.finalized.name else {
            throw CLIError.verificationFailed("epoch \(epoch)'s checkpoint is already \(status): nothing to submit")
        }
        let part1: Data, part2: Data
        do {
            part1 = try Data(hex: payloads.part1, field: "part1")
            part2 = try Data(hex: payloads.part2, field: "part2")
        } catch {
            throw CLIError.badInput("node returned malformed payloads: \(error)")
        }
        // What goes on Bitcoin at our expense is checked, not taken on the node's word: the
        // two payloads decode as a checkpoint (lengths, tag, link) of this epoch and submitter.
        do {
            let decoded = try BitcoinCheckpoint(part1: part1, part2: part2)
            guard decoded.epoch == epoch, decoded.submitterID == CheckpointsModule.submitterID(account: account) else {
                throw CLIError.badInput("node returned payloads for epoch \(decoded.epoch), submitter \(decoded.submitterID.hexString); asked for epoch \(epoch), submitter \(submitter)")
            }
        } catch let error as CLIError {
            throw error
        } catch {
            throw CLIError.badInput("node returned payloads that are not a checkpoint: \(error)")
        }

        let funding: TaprootOutput
        do { funding = try TaprootOutput(internalKey: fundingKey.publicKey, tree: nil) } catch {
            throw CLIError.badInput("funding key: \(error)")
        }
        let address = funding.address(network: network).encoded
        let scan = try await rpcCall("scantxoutset") { () throws(BitcoinRPCError) in try await rpc.scanTxOutSet(["addr(\(address))"]) }
        let tip = try await rpcCall("getblockcount") { () throws(BitcoinRPCError) in try await rpc.getBlockCount() }
        let dust: Int64 = 330
        // A coin not known to be a coinbase's (older bitcoind leaves the field out) must be
        // as deep as a coinbase must.
        let candidates = scan.unspents.filter { u in
            (u.coinbase == false || tip - u.height + 1 >= 100) && u.amount >= 2 * fee + dust
        }.sorted { $0.amount > $1.amount }
        // `scantxoutset` sees the chain only: a coin an earlier run spent in a transaction
        // still in the mempool would be spent again, replacing that run's checkpoint.
        var chosen: ScannedUnspent?
        for candidate in candidates {
            let unspent = try await rpcCall("gettxout \(candidate.txid):\(candidate.vout)") { () throws(BitcoinRPCError) in
                try await rpc.getTxOut(txid: candidate.txid, vout: candidate.vout, includeMempool: true)
            }
            if unspent != nil {
                chosen = candidate
                break
            }
        }
        guard let coin = chosen else {
            throw CLIError.verificationFailed(
                "no mature coin of at least \(2 * fee + dust) sat at \(address) that a transaction in the mempool does not already spend")
        }
        do {
            let script = funding.scriptPubKey
            let prevout = TxOut(value: try Amount(sats: coin.amount), scriptPubKey: script)
            var tx1 = IshtarBitcoin.Transaction(
                inputs: [TxIn(previousOutput: OutPoint(txid: try Hash256(displayHex: coin.txid), index: coin.vout))],
                outputs: [TxOut(value: .zero, scriptPubKey: .opReturn(part1)),
                          TxOut(value: try Amount(sats: coin.amount - fee), scriptPubKey: script)])
            tx1.inputs[0].witness = try TaprootSighasher(transaction: tx1, prevouts: [prevout])
                .keyPathWitness(inputIndex: 0, internalKey: fundingKey, merkleRoot: nil)
            let change = tx1.outputs[1]
            var tx2 = IshtarBitcoin.Transaction(
                inputs: [TxIn(previousOutput: OutPoint(txid: tx1.txid, index: 1))],
                outputs: [TxOut(value: .zero, scriptPubKey: .opReturn(part2)),
                          TxOut(value: try Amount(sats: coin.amount - 2 * fee), scriptPubKey: script)])
            tx2.inputs[0].witness = try TaprootSighasher(transaction: tx2, prevouts: [change])
                .keyPathWitness(inputIndex: 0, internalKey: fundingKey, merkleRoot: nil)
            let raw1 = tx1.serialized(), raw2 = tx2.serialized()
            _ = try await rpcCall("sendrawtransaction \(tx1.txid.displayHex)") { () throws(BitcoinRPCError) in
                try await rpc.sendRawTransaction(raw1)
            }
            do {
                _ = try await rpcCall("sendrawtransaction \(tx2.txid.displayHex)") { () throws(BitcoinRPCError) in
                    try await rpc.sendRawTransaction(raw2)
                }
            } catch {
                // Transaction 1 is out and spends the coin; a rerun picks another coin, so say
                // which one is pending rather than leave it unexplained.
                throw CLIError.badInput("transaction 1 (\(tx1.txid.displayHex)) was broadcast, transaction 2 (\(tx2.txid.displayHex)) was refused: \(error)")
            }
            return (tx1, tx2)
        } catch let error as CLIError {
            throw error
        } catch {
            throw CLIError.badInput("building the checkpoint transactions: \(error)")
        }
    }

    /// `checkpoints/InsertBTCSpvProof` for the two mined checkpoint transactions.
    public static func checkpointProofMessage(rpc: BitcoinRPCClient, txid1: String, txid2: String) async throws -> Message {
        var parts: [CheckpointTransactionProof] = []
        for txid in [txid1, txid2] {
            let found = try await rpcCall("getrawtransaction \(txid)") { () throws(BitcoinRPCError) in try await rpc.getRawTransaction(txid) }
            guard let block = found.blockHash else { throw CLIError.verificationFailed("transaction \(txid) is not in a block yet") }
            let raw = try await rpcCall("getrawtransaction \(txid)") { () throws(BitcoinRPCError) in
                try await rpc.getRawTransactionData(txid, blockHash: block)
            }
            let tx: IshtarBitcoin.Transaction
            do { tx = try IshtarBitcoin.Transaction(serialized: raw) } catch {
                throw CLIError.badInput("bitcoind returned a malformed transaction \(txid): \(error)")
            }
            parts.append(CheckpointTransactionProof(transaction: tx, inclusion: try await inclusionProof(rpc: rpc, txid: txid, blockHash: block)))
        }
        return InsertBTCSpvProof(part1: parts[0], part2: parts[1]).message
    }
}

/// What `ishtar relay headers` did.
public struct RelayHeadersOutput: CommandOutput, Equatable, Sendable {
    /// Height and hash (display order) of the last block both chains share.
    public var forkHeight: UInt64
    public var forkHash: String
    /// The light client's tip before the run.
    public var lightClientHeight: UInt64
    /// bitcoind's active tip.
    public var bitcoindHeight: UInt64
    public var bitcoindHash: String
    /// Headers sent, and the transactions carrying them.
    public var headersSent: Int
    public var transactions: [String]
    /// The refusal that stopped the run, if one did.
    public var refused: String?

    var text: String {
        var lines = ["light client tip: \(lightClientHeight)", "bitcoind tip: \(bitcoindHeight) \(bitcoindHash)",
                     "common block: \(forkHeight) \(forkHash)", "headers sent: \(headersSent)"]
        lines += transactions.map { "transaction: \($0)" }
        if let refused { lines.append("refused: \(refused)") }
        return lines.joined(separator: "\n")
    }
}

/// What `ishtar relay` does, callable from tests.
public enum RelayActions {
    /// Runs `body` on a task and blocks the calling thread until it ends (for synchronous
    /// commands; RPC calls are async).
    public static func blocking<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
        let outcome = Mutex<Result<T, any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        Task {
            let result: Result<T, any Error>
            do { result = .success(try await body()) } catch { result = .failure(error) }
            outcome.withLock { $0 = result }
            done.signal()
        }
        done.wait()
        guard let result = outcome.withLock({ $0 }) else { throw CLIError.badInput("relay: the task ended without a result") }
        return try result.get()
    }

    /// A light-client header as the node's queries answer it.
    struct HeaderJSON: Decodable {
        var hash: String
        var height: String
    }

    static func lightClientHeader(_ node: NodeAPIClient, _ path: String) throws -> (hash: String, height: UInt64)? {
        let reply = try TxActions.call { () throws(NodeAPIClientError) in try node.get("/modules/btclightclient/" + path) }
        if reply.status == 404 { return nil }
        let header = try TxActions.decodeOK(HeaderJSON.self, reply, what: "light-client header")
        guard let height = UInt64(header.height) else { throw CLIError.badInput("node returned a non-numeric height \"\(header.height)\"") }
        return (header.hash, height)
    }

    /// bitcoind's view of `hash`: on its active chain, known but off it, or unknown.
    static func onActiveChain(_ rpc: BitcoinRPCClient, _ hash: String) async throws -> Bool {
        do {
            return try await rpc.getBlockHeader(hash).confirmations >= 0
        } catch {
            if case .rpc(code: -5, _) = error { return false }  // RPC_INVALID_ADDRESS_OR_KEY: block not found
            throw CLIError.badInput("bitcoind: \(error)")
        }
    }

    static func rpcCall<T>(_ what: String, _ body: () async throws(BitcoinRPCError) -> T) async throws -> T {
        do { return try await body() } catch { throw CLIError.badInput("bitcoind \(what): \(error)") }
    }

    /// Relays bitcoind's headers above the last block it shares with the light client's
    /// main chain, up to `maxHeaders`, in transactions of at most the chain's
    /// `max_headers_per_message`, with consecutive nonces from the account's committed one.
    public static func relayHeaders(node: NodeAPIClient, bitcoind rpc: BitcoinRPCClient, key: Schnorr.PrivateKey, chainID: String,
                                    maxHeaders: Int, firstNonce: UInt64? = nil) async throws -> RelayHeadersOutput {
        guard let tip = try lightClientHeader(node, "tip") else {
            throw CLIError.badInput("the node has no light-client tip: is the btclightclient module running?")
        }
        struct Params: Decodable {
            var maxHeadersPerMessage: Int
            var baseHeight: String
            enum CodingKeys: String, CodingKey { case maxHeadersPerMessage = "max_headers_per_message", baseHeight = "base_height" }
        }
        let paramsReply = try TxActions.call { () throws(NodeAPIClientError) in try node.get("/modules/btclightclient/params") }
        let params = try TxActions.decodeOK(Params.self, paramsReply, what: "light-client params")
        let base = UInt64(params.baseHeight) ?? 0
        let perMessage = max(1, params.maxHeadersPerMessage)

        // Walk back along the light client's main chain to a block on bitcoind's active chain.
        var common = tip
        while !(try await onActiveChain(rpc, common.hash)) {
            guard common.height > base, let previous = try lightClientHeader(node, "header-by-height/\(common.height - 1)") else {
                throw CLIError.verificationFailed(
                    "bitcoind's active chain shares no block with the light client's main chain (down to its base at \(base)): another network?")
            }
            common = previous
        }
        let btcHeight = UInt64(try await rpcCall("getblockcount") { () throws(BitcoinRPCError) in try await rpc.getBlockCount() })
        let btcHash = try await rpcCall("getbestblockhash") { () throws(BitcoinRPCError) in try await rpc.getBestBlockHash() }
        var output = RelayHeadersOutput(forkHeight: common.height, forkHash: common.hash, lightClientHeight: tip.height,
                                        bitcoindHeight: btcHeight, bitcoindHash: btcHash, headersSent: 0, transactions: [], refused: nil)
        guard btcHeight > common.height else { return output }
        let last = min(btcHeight, common.height + UInt64(maxHeaders))

        var nonce = try firstNonce ?? TxActions.nextNonce(client: node, account: key.publicKey.rawRepresentation)
        var next = common.height + 1
        while next <= last {
            var headers: [BTCBlockHeader] = []
            while next <= last, headers.count < perMessage {
                let height = Int(next)
                let hash = try await rpcCall("getblockhash \(height)") { () throws(BitcoinRPCError) in try await rpc.getBlockHash(height: height) }
                let raw = try await rpcCall("getblockheader \(hash)") { () throws(BitcoinRPCError) in try await rpc.getBlockHeaderData(hash) }
                do {
                    headers.append(try BTCBlockHeader(serialized: raw))
                } catch {
                    throw CLIError.badInput("bitcoind returned a malformed header at \(height): \(error)")
                }
                next += 1
            }
            let sent = try TxActions.send(client: node, key: key, chainID: chainID, nonce: nonce,
                                          messages: [InsertHeaders(headers: headers).message])
            output.transactions.append(sent.hash)
            guard sent.accepted else {
                output.refused = "\(sent.codespace)/\(sent.rule): \(sent.log)"
                return output
            }
            output.headersSent += headers.count
            nonce += 1
        }
        return output
    }
}
