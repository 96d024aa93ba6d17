import ArgumentParser
import Foundation
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
        @OptionGroup var format: OutputOptions

        func run() throws {
            let out = try NodeActions.initialize(
                home: home, chainID: try Parse.chainID(chainId), validators: validators, moniker: moniker,
                basePort: basePort, passphraseFile: passphraseFile, insecurePlaintext: insecurePlaintext,
                fastTimeouts: fastTimeouts)
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

/// The logic behind `ishtar node`, callable from tests.
public enum NodeActions {
    /// What `node init` prints.
    public struct InitOutput: CommandOutput, Sendable {
        public var chainID: String
        public var nodes: [InitializedHome]

        var text: String {
            (["chain id: \(chainID)"] + nodes.map {
                "\($0.moniker): home \($0.home) node_id \($0.nodeID) validator \($0.validatorAddress) p2p \($0.p2pAddress) api http://\($0.apiAddress)"
            }).joined(separator: "\n")
        }
    }

    public static func initialize(
        home: String, chainID: String, validators: Int, moniker: String, basePort: Int, passphraseFile: String?,
        insecurePlaintext: Bool, fastTimeouts: Bool
    ) throws -> InitOutput {
        let passphrase: Data?
        do { passphrase = insecurePlaintext ? nil : try PassphraseSource.resolve(file: passphraseFile) } catch {
            throw CLIError.badInput(error.description)
        }
        guard (1...65000).contains(basePort) else { throw CLIError.badInput("--base-port must be 1…65000") }
        let options = HomeInitOptions(
            chainID: chainID, validators: validators, moniker: moniker, passphrase: passphrase,
            insecurePlaintext: insecurePlaintext, basePort: basePort,
            consensus: fastTimeouts ? .fast : ConsensusConfig())
        do {
            let nodes = try NodeHomeSetup.initialize(at: home, options: options, logger: Logger(label: "ishtar.node.init"))
            return InitOutput(chainID: chainID, nodes: nodes)
        } catch {
            throw CLIError.badInput(error.description)
        }
    }
}
