import ArgumentParser
import Foundation
import IshtarChain
import IshtarCrypto
import IshtarKeys
import IshtarNode

/// `--node` and the optional API token, shared by `ishtar tx` and `ishtar query`.
struct NodeAPIOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The node's HTTP API.", valueName: "url"))
    var node = "http://127.0.0.1:26657"

    @Option(name: .long, help: ArgumentHelp(
        "File whose first line is the API bearer token, for a node that requires one on POST /txs (default: $ISHTAR_API_TOKEN).",
        valueName: "file"))
    var tokenFile: String?

    @Option(name: .long, help: ArgumentHelp("Seconds to wait for the node.", valueName: "s"))
    var timeout = 10

    func client() throws -> NodeAPIClient {
        var token = ProcessInfo.processInfo.environment["ISHTAR_API_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        if let tokenFile {
            let line: Data?
            do {
                line = try SecretFile.firstLine(tokenFile, what: "API token file")
            } catch {
                throw CLIError.badInput("--token-file: \(error)")
            }
            let trimmed = String(decoding: line ?? Data(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard !trimmed.isEmpty else { throw CLIError.badInput("--token-file: \(tokenFile) is empty") }
            token = trimmed
        }
        guard timeout > 0 else { throw CLIError.badInput("--timeout: must be positive") }
        do {
            return try NodeAPIClient(url: node, bearerToken: token, timeoutSeconds: timeout)
        } catch {
            throw CLIError.badInput("--node: \(error)")
        }
    }
}

/// `--nonce n|auto` for the commands that send one transaction from an account.
struct NonceOption: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "The sending account's nonce, or \"auto\" (the next free one, read from the node: its committed nonce after any of its transactions pending there).",
        valueName: "n|auto"))
    var nonce = "auto"

    func validate() throws {
        guard nonce == "auto" || UInt64(nonce) != nil else {
            throw ValidationError("--nonce: expected a non-negative integer or \"auto\", got \"\(nonce)\"")
        }
    }

    /// The nonce given, or nil for "auto".
    var explicit: UInt64? { UInt64(nonce) }
}

/// `ishtar tx …`: build, sign and submit transactions to a node.
struct TxCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tx",
        abstract: "Build, sign and submit transactions through a node's HTTP API.",
        subcommands: [Send.self])

    struct Send: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Sign a transaction with a key file and submit it (POST /txs).",
            discussion: """
                Each --message is TYPE:PAYLOAD_HEX, e.g. accounts/SetLabel:000000026869. \
                --nonce auto asks the node for the account's next free nonce (its committed \
                nonce after the account's transactions already in that node's mempool; 0 for a \
                new account), so several sends before a block queue in order. An explicit nonce \
                of a pending transaction replaces it (the node answers "replaced pending \
                transaction <hash>"; a replaced version is not taken back, and one nonce takes \
                at most 8 replacements while pending).
                Exit codes: 0 accepted into the mempool, 1 refused by check-tx (the result is \
                printed, the rule is on stderr), 2 bad input or unreachable node.
                """)

        @OptionGroup var api: NodeAPIOptions

        @Option(name: .long, help: ArgumentHelp("The sender's key file.", valueName: "file"))
        var keyFile: String

        @OptionGroup var passphrase: KeysCommand.PassphraseOptions

        @Option(name: .long, help: ArgumentHelp("Chain id the transaction is signed for.", valueName: "id"),
                transform: Parse.chainID)
        var chainID: String

        @Option(name: .long, help: ArgumentHelp("The sender's nonce, or \"auto\".", valueName: "n|auto"))
        var nonce: String

        @Option(name: .long, help: ArgumentHelp("A message, TYPE:PAYLOAD_HEX (repeatable, in order).", valueName: "type:hex"))
        var message: [String] = []

        @OptionGroup var format: OutputOptions

        func validate() throws {
            guard !message.isEmpty else { throw ValidationError("--message: at least one message is required") }
            guard nonce == "auto" || UInt64(nonce) != nil else {
                throw ValidationError("--nonce: expected a non-negative integer or \"auto\", got \"\(nonce)\"")
            }
        }

        func run() throws {
            let messages = try message.map(TxActions.parseMessage)
            let client = try api.client()
            let key = try KeysActions.unlock(path: keyFile, passphrase: passphrase.resolve())
            try TxActions.submit(client: client, key: key, chainID: chainID, nonce: UInt64(nonce), messages: messages,
                                 format: format)
        }
    }
}

/// The result of `ishtar tx send`.
public struct TxSendOutput: CommandOutput, Equatable {
    public var hash: String
    public var accepted: Bool
    public var code: UInt32
    public var codespace: String
    public var rule: String
    public var log: String
    public var sender: String
    public var nonce: UInt64

    var text: String {
        var lines = ["hash: \(hash)", "accepted: \(accepted)", "sender: \(sender)", "nonce: \(nonce)"]
        if !accepted {
            lines += ["code: \(code)", "codespace: \(codespace)", "rule: \(rule)", "log: \(log)"]
        } else if !log.isEmpty {
            lines.append("note: \(log)")
        }
        return lines.joined(separator: "\n")
    }
}

/// What `ishtar tx` does, callable from tests.
public enum TxActions {
    /// `TYPE:PAYLOAD_HEX` → a message (the payload may be empty: `TYPE:`).
    public static func parseMessage(_ text: String) throws -> Message {
        guard let colon = text.firstIndex(of: ":") else {
            throw ValidationError("--message: expected TYPE:PAYLOAD_HEX, got \"\(text.prefix(80))\"")
        }
        let type = String(text[..<colon])
        guard !type.isEmpty, type.utf8.count <= Message.maxTypeBytes, type.contains("/") else {
            throw ValidationError("--message: type must be \"<module>/<Name>\", got \"\(type.prefix(80))\"")
        }
        let hex = String(text[text.index(after: colon)...])
        let payload = hex.isEmpty ? Data() : try Parse.hex(hex, option: "--message payload")
        return Message(type: type, payload: payload)
    }

    /// The account's next free nonce from `GET /accounts/<hex>/nonce`: the committed one after
    /// the account's transactions pending at that node (a node without the route: the
    /// committed one).
    public static func nextNonce(client: NodeAPIClient, account: Data) throws -> UInt64 {
        let reply = try call { () throws(NodeAPIClientError) in try client.get("/accounts/\(account.hexString)/nonce") }
        if reply.status == 404 { return try committedNonce(client: client, account: account) }
        let object = try decodeOK(APIAccountNonce.self, reply, what: "account nonce")
        guard let nonce = UInt64(object.nextNonce) else { throw CLIError.badInput("node returned a non-numeric nonce \"\(object.nextNonce)\"") }
        return nonce
    }

    /// The account's committed nonce from `/modules/accounts/account/<hex>`; 0 when the
    /// account does not exist yet.
    public static func committedNonce(client: NodeAPIClient, account: Data) throws -> UInt64 {
        let reply = try call { () throws(NodeAPIClientError) in try client.get("/modules/accounts/account/\(account.hexString)") }
        if reply.status == 404, reply.error?.code == "not_found" { return 0 }
        let object = try decodeOK(AccountOutput.self, reply, what: "account")
        guard let nonce = UInt64(object.nonce) else { throw CLIError.badInput("node returned a non-numeric nonce \"\(object.nonce)\"") }
        return nonce
    }

    /// Signs and submits; returns the check-tx verdict (accepted or refused).
    public static func send(client: NodeAPIClient, key: Schnorr.PrivateKey, chainID: String, nonce: UInt64,
                            messages: [Message]) throws -> TxSendOutput {
        let tx: Transaction
        do {
            tx = try Transaction.signed(chainID: chainID, key: key, nonce: nonce, messages: messages,
                                        auxiliaryRandomness: secureRandom(32))
        } catch {
            throw CLIError.badInput("signing failed: \(error)")
        }
        let body: Data
        do {
            body = try JSONEncoder().encode(APISubmitRequest(tx: tx.encoded.hexString))
        } catch {
            throw CLIError.badInput("encoding failed: \(error)")
        }
        let reply = try call { () throws(NodeAPIClientError) in try client.post("/txs", body: body) }
        guard reply.status == 200 || reply.status == 422 else { throw nodeError(reply) }
        guard let result = try? JSONDecoder().decode(APISubmitResult.self, from: reply.body) else {
            throw CLIError.badInput("node answered \(reply.status) with an unexpected body")
        }
        return TxSendOutput(hash: result.hash, accepted: result.accepted, code: result.code, codespace: result.codespace,
                            rule: result.rule, log: result.log, sender: tx.sender.hexString, nonce: nonce)
    }

    /// Sends `messages` in one transaction from `key` (with `nonce`, or the committed one),
    /// prints the verdict, and makes a refusal exit code 1 with the rule on stderr.
    static func submit(client: NodeAPIClient, key: Schnorr.PrivateKey, chainID: String, nonce: UInt64?,
                       messages: [Message], format: OutputOptions) throws {
        let n = try nonce ?? nextNonce(client: client, account: key.publicKey.rawRepresentation)
        let output = try send(client: client, key: key, chainID: chainID, nonce: n, messages: messages)
        format.emit(output)
        if !output.accepted {
            throw CLIError.verificationFailed("transaction refused: \(output.codespace)/\(output.rule): \(output.log)")
        }
    }

    /// BIP-340 auxiliary randomness: fresh bytes harden signing against side channels.
    static func secureRandom(_ count: Int) -> Data {
        var g = SystemRandomNumberGenerator()
        return Data((0..<count).map { _ in UInt8.random(in: .min ... .max, using: &g) })
    }

    /// Runs a client call, mapping transport failures to exit code 2.
    static func call(_ body: () throws(NodeAPIClientError) -> NodeAPIReply) throws -> NodeAPIReply {
        do {
            return try body()
        } catch {
            throw CLIError.badInput(error.description)
        }
    }

    /// A non-success answer as a CLI error: 404 is a negative answer to a well-formed
    /// question (exit 1); everything else is bad input or a node problem (exit 2).
    static func nodeError(_ reply: NodeAPIReply) -> CLIError {
        let detail = reply.error.map { "\($0.code): \($0.message)" } ?? "HTTP \(reply.status)"
        if reply.status == 404 { return .verificationFailed(detail) }
        return .badInput("node answered \(reply.status): \(detail)")
    }

    /// Decodes a 200 answer, or throws the node's error.
    static func decodeOK<T: Decodable>(_ type: T.Type, _ reply: NodeAPIReply, what: String) throws -> T {
        guard reply.status == 200 else { throw nodeError(reply) }
        do {
            return try JSONDecoder().decode(T.self, from: reply.body)
        } catch {
            throw CLIError.badInput("node returned an unexpected \(what) body: \(error)")
        }
    }
}
