import ArgumentParser
import Foundation
import IshtarBitcoin
import IshtarChain
import IshtarKeys
import IshtarNode
import Logging

/// `ishtar node …`: set up and run a validator node.
struct NodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node",
        abstract: "Initialize and run an Ishtar validator node.",
        subcommands: [Init.self, Start.self, Status.self])

    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a node home: keys, config.json and genesis.json.",
            discussion: """
                With --validators N > 1, creates DIR/node0 … DIR/node{N-1} with one shared \
                genesis and loopback peer lists (P2P on base-port + 2i, API on base-port + 2i + 1). \
                Validator keys are encrypted with the passphrase from --passphrase-file or \
                $ISHTAR_PASSPHRASE, unless --insecure-plaintext (devnets and tests only).

                The genesis configures the control-plane modules (btclightclient, staking, \
                checkpoints, finality; PROTOCOL.md §6 defaults):
                - btclightclient: the BTC light client starts at a trusted base header. Default: \
                the regtest genesis header at height 0 (what Scripts/regtest-node starts from). \
                To follow another network or start later, give --btc-network and \
                --btc-base-header HEX (80-byte header) with --btc-base-height N (on networks that \
                retarget, N must be a multiple of 2016).
                - staking: the covenant committee co-signs every delegation. Give its x-only \
                public keys with --covenant-pk (repeat) and --covenant-quorum. Without \
                --covenant-pk, a devnet committee of 5 keys (quorum 3) is generated into \
                DIR/covenant/covenantI.json, protected like the validator keys.
                - checkpoints: an epoch is --epoch-length blocks; each validator node signs every \
                epoch's last block hash and sends the signature as a transaction from its \
                validator key's account.
                - finality: liveness window, jail time and randomness bounds take their defaults.
                k (--btc-confirmation-depth) serves both staking activation and checkpoint \
                confirmation; w (--btc-finalization-depth) checkpoint finalization. Other values \
                (stake bounds, slashing terms) take PROTOCOL.md §6 defaults; edit genesis.json \
                before the first start to change them (every node needs the identical file).
                Example: ishtar node init --home ~/.ishtar --chain-id ishtar-1
                """)

        @Option(name: .long, help: ArgumentHelp("The home directory.", valueName: "dir")) var home: String
        @Option(name: .long, help: "The chain id.") var chainId: String
        @Option(name: .long, help: "How many validators (homes) to create.") var validators: Int = 1
        @Option(name: .long, help: "Node name (suffixed with the index for several).") var moniker: String = "node"
        @Option(name: .long, help: "First loopback port (P2P; API is the next one).") var basePort: Int = 26656
        @Option(name: .long, help: ArgumentHelp("File whose first line is the passphrase.", valueName: "file"))
        var passphraseFile: String?
        @Flag(name: .long, help: "Write validator keys UNENCRYPTED. Devnets and tests only.") var insecurePlaintext = false
        @Flag(name: .long, help: "Short consensus timeouts (sub-second blocks) for local devnets and tests.")
        var fastTimeouts = false
        @OptionGroup var genesis: GenesisModuleOptions
        @OptionGroup var format: OutputOptions

        func run() throws {
            let out = try NodeActions.initialize(
                home: home, chainID: try Parse.chainID(chainId), validators: validators, moniker: moniker,
                basePort: basePort, passphraseFile: passphraseFile, insecurePlaintext: insecurePlaintext,
                fastTimeouts: fastTimeouts, controlPlane: try genesis.controlPlaneOptions(chainID: chainId))
            format.emit(out)
        }
    }

    struct Start: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the node until SIGINT/SIGTERM.",
            discussion: """
                Opens DIR/data/db (refuses if another node holds it), joins its persistent \
                peers, runs consensus and serves the HTTP API on config.json's api.listen.
                """)

        @Option(name: .long, help: ArgumentHelp("The home directory.", valueName: "dir")) var home: String
        @Option(name: .long, help: ArgumentHelp("File whose first line is the passphrase.", valueName: "file"))
        var passphraseFile: String?

        func run() throws {
            let passphrase: Data?
            do { passphrase = try PassphraseSource.resolve(file: passphraseFile) } catch {
                throw CLIError.badInput(error.description)
            }
            do {
                try NodeRunner.runBlocking(home: NodeHome(path: home), passphrase: passphrase)
            } catch let e as NodeError {
                throw CLIError.badInput(e.description)
            }
        }
    }
}

/// Genesis choices for the control-plane modules, shared by `node init` and `devnet start`.
struct GenesisModuleOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "Bitcoin network of the light client and of stakes: mainnet, testnet, signet or regtest.", valueName: "network"))
    var btcNetwork: String = "regtest"
    @Option(name: .long, help: ArgumentHelp(
        "Trusted base header of the BTC light client, 80 bytes hex (default: the network's genesis header).",
        valueName: "hex"))
    var btcBaseHeader: String?
    @Option(name: .long, help: ArgumentHelp("Height of --btc-base-header.", valueName: "n"))
    var btcBaseHeight: UInt64 = 0
    @Option(name: .long, parsing: .singleValue, help: ArgumentHelp(
        "A covenant committee member's x-only public key (repeat; default: generate a devnet committee of 5).",
        valueName: "hex"))
    var covenantPk: [String] = []
    @Option(name: .long, help: ArgumentHelp("Covenant signatures a delegation needs.", valueName: "n"))
    var covenantQuorum: Int = 3
    @Option(name: .long, help: ArgumentHelp("k: BTC confirmations before a stake activates.", valueName: "k"))
    var btcConfirmationDepth: UInt32 = 10
    @Option(name: .long, help: ArgumentHelp("w: BTC depth at which a checkpoint is FINALIZED.", valueName: "w"))
    var btcFinalizationDepth: UInt64 = 100
    @Option(name: .long, help: ArgumentHelp("Control-plane blocks per epoch (one BTC checkpoint each).", valueName: "blocks"))
    var epochLength: UInt64 = 10
    @Option(name: .long, help: ArgumentHelp("Shortest staking time, BTC blocks (default 400).", valueName: "blocks"))
    var minStakingTime: UInt16?
    @Option(name: .long, help: ArgumentHelp("Unbonding time, BTC blocks (default 200).", valueName: "blocks"))
    var unbondingTime: UInt16?
    @Option(name: .long, parsing: .singleValue, help: ArgumentHelp(
        "A consumer chain whose BTC finality starts at a fixed height (repeat). Only listed consumer chains accept providers, randomness commitments and votes, unless --allow-unlisted-consumer-chains.",
        valueName: "chain-id:height"))
    var consumerChain: [String] = []
    @Flag(name: .long, help: ArgumentHelp(
        "Also accept consumer chains --consumer-chain does not list. Such a chain's tally starts where its first randomness commitment starts, whoever sends it: for devnets and experiments."))
    var allowUnlistedConsumerChains = false

    /// The options, checked; `chainID` is the control plane's own id, which no consumer
    /// chain may take.
    func controlPlaneOptions(chainID: String) throws -> ControlPlaneGenesisOptions {
        guard let network = Network(rawValue: btcNetwork) else {
            throw ValidationError("--btc-network: must be mainnet, testnet, signet or regtest, got \(btcNetwork)")
        }
        var base: BTCBlockHeader?
        if let text = btcBaseHeader {
            let bytes = try Parse.hex(text, option: "--btc-base-header", length: 80)
            do { base = try BTCBlockHeader(serialized: bytes) } catch {
                throw ValidationError("--btc-base-header: \(error)")
            }
        } else if btcBaseHeight != 0 {
            throw ValidationError("--btc-base-height needs --btc-base-header (the default base is the genesis header, height 0)")
        }
        let keys = try covenantPk.map { try Parse.publicKey($0, option: "--covenant-pk") }
        let committee = keys.isEmpty ? 5 : keys.count
        guard covenantQuorum >= 1, covenantQuorum <= committee else {
            throw ValidationError("--covenant-quorum: must be 1…\(committee) (the committee's size)")
        }
        guard btcConfirmationDepth >= 1 else { throw ValidationError("--btc-confirmation-depth: must be ≥ 1") }
        guard btcFinalizationDepth > UInt64(btcConfirmationDepth) else {
            throw ValidationError("--btc-finalization-depth: must be > --btc-confirmation-depth")
        }
        let unbonding = UInt64(unbondingTime ?? StakingParameters.defaultUnbondingTime)
        guard btcFinalizationDepth < unbonding else {
            throw ValidationError("--btc-finalization-depth: must be below the unbonding time (\(unbonding) blocks, --unbonding-time): an unbonding stake must stay slashable until its checkpoints are final")
        }
        guard epochLength >= 1 else { throw ValidationError("--epoch-length: must be ≥ 1") }
        var consumers: [ConsumerChainStart] = []
        for text in consumerChain {
            guard let colon = text.lastIndex(of: ":"), let height = UInt64(text[text.index(after: colon)...]) else {
                throw ValidationError("--consumer-chain: expected <chain-id>:<start height>, got \(text)")
            }
            consumers.append(ConsumerChainStart(chainID: String(text[..<colon]), startHeight: height))
        }
        if let problem = FinalityGenesis.consumerChainsProblem(consumers, controlPlane: chainID) {
            throw ValidationError("--consumer-chain: \(problem)")
        }
        return ControlPlaneGenesisOptions(
            btcNetwork: network, btcBaseHeader: base, btcBaseHeight: btcBaseHeight, covenantKeys: keys,
            covenantQuorum: covenantQuorum, btcConfirmationDepth: btcConfirmationDepth,
            btcFinalizationDepth: btcFinalizationDepth, epochLength: epochLength, minStakingTime: minStakingTime,
            unbondingTime: unbondingTime, consumerChains: consumers, allowUnlistedConsumerChains: allowUnlistedConsumerChains)
    }
}

/// The logic behind `ishtar node`, callable from tests.
public enum NodeActions {
    /// What `node init` prints.
    public struct InitOutput: CommandOutput, Sendable {
        public var chainID: String
        public var nodes: [InitializedHome]
        public var network: InitializedNetwork

        var text: String {
            var lines = ["chain id: \(chainID)"]
            lines += nodes.map {
                "\($0.moniker): home \($0.home) node_id \($0.nodeID) validator \($0.validatorAddress) p2p \($0.p2pAddress) api http://\($0.apiAddress)"
            }
            lines += network.summaryLines
            return lines.joined(separator: "\n")
        }
    }

    public static func initialize(
        home: String, chainID: String, validators: Int, moniker: String, basePort: Int, passphraseFile: String?,
        insecurePlaintext: Bool, fastTimeouts: Bool,
        controlPlane: ControlPlaneGenesisOptions = ControlPlaneGenesisOptions(covenantKeys: [])
    ) throws -> InitOutput {
        let passphrase: Data?
        do { passphrase = insecurePlaintext ? nil : try PassphraseSource.resolve(file: passphraseFile) } catch {
            throw CLIError.badInput(error.description)
        }
        guard (1...65000).contains(basePort) else { throw CLIError.badInput("--base-port must be 1…65000") }
        let options = HomeInitOptions(
            chainID: chainID, validators: validators, moniker: moniker, passphrase: passphrase,
            insecurePlaintext: insecurePlaintext, basePort: basePort,
            consensus: fastTimeouts ? .fast : ConsensusConfig(), controlPlane: controlPlane)
        do {
            let network = try NodeHomeSetup.initializeNetwork(at: home, options: options, logger: Logger(label: "ishtar.node.init"))
            return InitOutput(chainID: chainID, nodes: network.homes, network: network)
        } catch {
            throw CLIError.badInput(error.description)
        }
    }
}

extension InitializedNetwork {
    /// The control-plane genesis in a few lines, for operators.
    var summaryLines: [String] {
        var lines = [
            "modules: consensus, accounts, " + modules.joined(separator: ", "),
            "btc light client: \(btcNetwork) base \(btcBaseHash) at height \(btcBaseHeight)",
            "covenant committee: \(covenantQuorum) of \(covenantCommittee.count)",
        ]
        lines += covenantKeys.map { "covenant key \($0.publicKey): \($0.keyFile)" }
        return lines
    }
}
