import ArgumentParser
import Foundation
import IshtarCrypto

/// `ishtar eots …`: extractable one-time signatures, the finality providers' voting scheme.
struct EOTSCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eots",
        abstract: "Extractable one-time signatures: randomness, sign, verify, extract.",
        discussion: """
            An EOTS signature uses one-time randomness derived from the key, the chain id and \
            the height. Signing two different messages at the same height reveals the secret \
            key to anyone who sees both signatures: that is how double votes are punished.
            """,
        subcommands: [Randomness.self, Sign.self, Verify.self, Extract.self])

    struct KeyAndHeight: ParsableArguments {
        @Option(name: .long, help: ArgumentHelp("The finality provider's key file.", valueName: "file"))
        var keyFile: String

        @Option(name: .long, help: ArgumentHelp("Chain id the randomness is bound to.", valueName: "id"),
                transform: Parse.chainID)
        var chainID: String

        @Option(name: .long, help: ArgumentHelp("Block height the randomness is for.", valueName: "n"))
        var height: UInt64

        @OptionGroup var passphrase: KeysCommand.PassphraseOptions
    }

    struct Randomness: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the public randomness for a chain id and height.",
            discussion: "Deterministic: the same key, chain id and height always give the same value.")

        @OptionGroup var key: KeyAndHeight
        @OptionGroup var format: OutputOptions

        func run() throws {
            let privateKey = try KeysActions.unlock(path: key.keyFile, passphrase: key.passphrase.resolve())
            format.emit(EOTSActions.randomness(privateKey: privateKey, chainID: key.chainID, height: key.height))
        }
    }

    struct Sign: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "EOTS-sign a finality vote message with the randomness of a height, recorded like `finality vote`.",
            discussion: """
                Signing two different messages at the same chain id and height LEAKS YOUR \
                SECRET KEY and gets your stake slashed. So the message must be a finality vote \
                for --height, BE8(height) ‖ 32-byte block hash, and it is written to the key's \
                vote record (the one `ishtar finality vote` keeps, default <key file>.votes) \
                before it is signed: a second, different message at that height is refused; \
                the same one signs again to the same signature.
                --unsafe-no-record signs any message and records nothing — for demonstrations \
                with throwaway keys only.
                """)

        @OptionGroup var key: KeyAndHeight

        @Option(name: .long, help: ArgumentHelp("The message, hex: BE8(height) ‖ block hash (40 bytes).", valueName: "hex"))
        var messageHex: String

        @Option(name: .long, help: ArgumentHelp(
            "Vote record directory (default: <key file>.votes, shared with `ishtar finality vote`).", valueName: "dir"))
        var voteRecord: String?

        @Flag(name: .customLong("unsafe-no-record"),
              help: "Sign any message without recording it. A second message at the height reveals the key.")
        var unsafeNoRecord = false

        @OptionGroup var format: OutputOptions

        func run() throws {
            let message = try Parse.hex(messageHex, option: "--message-hex")
            if !unsafeNoRecord {
                guard let hash = EOTSActions.voteHash(message, height: key.height) else {
                    throw ValidationError(
                        "--message-hex: only a finality vote for --height (BE8(\(key.height)) ‖ 32-byte block hash) is signed and recorded; " +
                        "another message needs --unsafe-no-record, and a second one at this height reveals the key")
                }
                let privateKey = try KeysActions.unlock(path: key.keyFile, passphrase: key.passphrase.resolve())
                let record = VoteRecord.forKey(file: key.keyFile, publicKey: privateKey.publicKey.rawRepresentation, directory: voteRecord)
                try record.record(chainID: key.chainID, height: key.height, blockHash: hash)
                format.emit(try EOTSActions.sign(privateKey: privateKey, chainID: key.chainID, height: key.height, message: message))
                return
            }
            let privateKey = try KeysActions.unlock(path: key.keyFile, passphrase: key.passphrase.resolve())
            format.emit(try EOTSActions.sign(privateKey: privateKey, chainID: key.chainID, height: key.height, message: message))
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Verify an EOTS signature. Exit code 1 when it does not verify.")

        @Option(name: .long, help: ArgumentHelp("Signer's x-only public key, hex (32 bytes).", valueName: "hex"))
        var publicKey: String
        @Option(name: .long, help: ArgumentHelp("Public randomness, hex (32 bytes).", valueName: "hex"))
        var publicRandomness: String
        @Option(name: .long, help: ArgumentHelp("The signed message, hex.", valueName: "hex"))
        var messageHex: String
        @Option(name: .long, help: ArgumentHelp("The signature s, hex (32 bytes).", valueName: "hex"))
        var signature: String
        @OptionGroup var format: OutputOptions

        func run() throws {
            let result = EOTSActions.verify(
                publicKey: try Parse.publicKey(publicKey, option: "--public-key"),
                publicRandomness: try Parse.publicRandomness(publicRandomness, option: "--public-randomness"),
                message: try Parse.hex(messageHex, option: "--message-hex"),
                signature: try Parse.eotsSignature(signature, option: "--signature"))
            format.emit(result)
            if !result.valid { throw CLIError.verificationFailed("the EOTS signature does not verify") }
        }
    }

    struct Extract: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Recover a secret key from two EOTS signatures made with the same randomness.",
            discussion: "Prints the recovered secret key (hex) after checking it against the public key.")

        @Option(name: .long, help: ArgumentHelp("Signer's x-only public key, hex.", valueName: "hex"))
        var publicKey: String
        @Option(name: .long, help: ArgumentHelp("The public randomness both signatures used, hex.", valueName: "hex"))
        var publicRandomness: String
        @Option(name: .customLong("message1-hex"), help: ArgumentHelp("First message, hex.", valueName: "hex"))
        var message1Hex: String
        @Option(name: .customLong("signature1"), help: ArgumentHelp("First signature, hex.", valueName: "hex"))
        var signature1: String
        @Option(name: .customLong("message2-hex"), help: ArgumentHelp("Second message, hex.", valueName: "hex"))
        var message2Hex: String
        @Option(name: .customLong("signature2"), help: ArgumentHelp("Second signature, hex.", valueName: "hex"))
        var signature2: String
        @OptionGroup var format: OutputOptions

        func run() throws {
            format.emit(try EOTSActions.extract(
                publicKey: try Parse.publicKey(publicKey, option: "--public-key"),
                publicRandomness: try Parse.publicRandomness(publicRandomness, option: "--public-randomness"),
                message1: try Parse.hex(message1Hex, option: "--message1-hex"),
                signature1: try Parse.eotsSignature(signature1, option: "--signature1"),
                message2: try Parse.hex(message2Hex, option: "--message2-hex"),
                signature2: try Parse.eotsSignature(signature2, option: "--signature2")))
        }
    }
}

/// `eots randomness` output.
public struct RandomnessOutput: CommandOutput, Equatable {
    public var publicKey: String
    public var chainId: String
    public var height: UInt64
    public var publicRandomness: String
    var text: String { "public randomness: \(publicRandomness)" }
}

/// `eots sign` output.
public struct SignatureOutput: CommandOutput, Equatable {
    public var publicKey: String
    public var chainId: String
    public var height: UInt64
    public var publicRandomness: String
    public var messageHex: String
    public var signature: String
    var text: String {
        """
        signature:         \(signature)
        public randomness: \(publicRandomness)
        public key:        \(publicKey)
        """
    }
}

/// `eots verify` output.
public struct VerifyOutput: CommandOutput, Equatable {
    public var valid: Bool
    var text: String { valid ? "valid" : "INVALID" }
}

/// `eots extract` output.
public struct ExtractOutput: CommandOutput, Equatable {
    public var publicKey: String
    public var secretKey: String
    var text: String { secretKey }
}

/// The work behind `ishtar eots`, callable from tests.
public enum EOTSActions {
    public static func randomness(privateKey: Schnorr.PrivateKey, chainID: String, height: UInt64) -> RandomnessOutput {
        let r = EOTS.randomness(secretKey: privateKey, chainID: Data(chainID.utf8), height: height)
        return RandomnessOutput(
            publicKey: privateKey.publicKey.rawRepresentation.hexString, chainId: chainID, height: height,
            publicRandomness: r.public.rawRepresentation.hexString)
    }

    /// The block hash of `message` if it is the finality vote message of `height`
    /// (`BE8(height) ‖ 32-byte hash`, PROTOCOL §4).
    public static func voteHash(_ message: Data, height: UInt64) -> Data? {
        guard message.count == 40 else { return nil }
        let h = message.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return h == height ? Data(message.suffix(32)) : nil
    }

    public static func sign(privateKey: Schnorr.PrivateKey, chainID: String, height: UInt64, message: Data) throws -> SignatureOutput {
        let r = EOTS.randomness(secretKey: privateKey, chainID: Data(chainID.utf8), height: height)
        do {
            let sig = try EOTS.sign(privateKey: privateKey, secretRandomness: r.secret, message: message)
            return SignatureOutput(
                publicKey: privateKey.publicKey.rawRepresentation.hexString, chainId: chainID, height: height,
                publicRandomness: r.public.rawRepresentation.hexString, messageHex: message.hexString,
                signature: sig.rawRepresentation.hexString)
        } catch {
            throw CLIError.badInput("\(error)")
        }
    }

    public static func verify(
        publicKey: Schnorr.PublicKey, publicRandomness: EOTS.PublicRandomness, message: Data, signature: EOTS.Signature
    ) -> VerifyOutput {
        VerifyOutput(valid: EOTS.isValid(
            signature: signature, publicKey: publicKey, publicRandomness: publicRandomness, message: message))
    }

    public static func extract(
        publicKey: Schnorr.PublicKey, publicRandomness: EOTS.PublicRandomness,
        message1: Data, signature1: EOTS.Signature, message2: Data, signature2: EOTS.Signature
    ) throws -> ExtractOutput {
        do {
            let key = try EOTS.extract(
                publicKey: publicKey, publicRandomness: publicRandomness,
                message1: message1, signature1: signature1, message2: message2, signature2: signature2)
            return ExtractOutput(publicKey: publicKey.rawRepresentation.hexString, secretKey: key.rawRepresentation.hexString)
        } catch {
            throw CLIError.badInput("cannot extract: \(error)")
        }
    }
}
