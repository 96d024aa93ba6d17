import ArgumentParser
import Foundation
import IshtarCrypto
import IshtarKeys

/// `ishtar keys …`: create and inspect encrypted key files.
struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Create and inspect key files (secp256k1, BIP-340).",
        discussion: """
            A key file is JSON, mode 0600, with the x-only public key in the clear and the \
            secret key encrypted with AES-256-GCM under a key derived from your passphrase \
            with scrypt. The passphrase comes from --passphrase-file (its first line) or the \
            ISHTAR_PASSPHRASE environment variable. Secrets are never printed unless you ask \
            with --show-secret.
            """,
        subcommands: [Generate.self, Show.self])

    /// Options for commands that unlock or create a key file.
    struct PassphraseOptions: ParsableArguments {
        @Option(name: .long, help: ArgumentHelp(
            "File whose first line is the passphrase (default: $ISHTAR_PASSPHRASE).", valueName: "file"))
        var passphraseFile: String?

        func resolve() throws -> Data? {
            do { return try PassphraseSource.resolve(file: passphraseFile) } catch {
                throw CLIError.badInput(error.description)
            }
        }
    }

    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Generate a new key from a secure random source and write its key file.",
            discussion: """
                Example:
                  ISHTAR_PASSPHRASE=… ishtar keys generate --output fp.key
                Without --output the key file JSON is printed on stdout (it is encrypted \
                unless --insecure-plaintext is given, which then also needs --show-secret).
                """)

        @Option(name: .long, help: ArgumentHelp("Where to write the key file (mode 0600). Refuses to overwrite.", valueName: "file"))
        var output: String?

        @OptionGroup var passphrase: PassphraseOptions

        @Flag(name: .long, help: "Store the secret unencrypted. For tests and throwaway devnets only.")
        var insecurePlaintext = false

        @Flag(name: .long, help: "Also print the secret key (hex).")
        var showSecret = false

        @OptionGroup var format: OutputOptions

        func run() throws {
            let result = try KeysActions.generate(
                output: output, passphrase: insecurePlaintext ? nil : passphrase.resolve(),
                insecurePlaintext: insecurePlaintext, showSecret: showSecret)
            if output == nil {
                // stdout carries the key file itself so it can be redirected; the summary
                // (and the secret, if asked for) goes to stderr.
                print(String(decoding: result.keyFile.jsonData(), as: UTF8.self))
                if showSecret {
                    FileHandle.standardError.write(Data((result.summary.render(json: format.json) + "\n").utf8))
                }
            } else {
                format.emit(result.summary)
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a key file's public key; with --show-secret, unlock it and show the secret too.")

        @Option(name: .long, help: ArgumentHelp("The key file.", valueName: "file"))
        var keyFile: String

        @OptionGroup var passphrase: PassphraseOptions

        @Flag(name: .long, help: "Unlock the key and print the secret key (hex).")
        var showSecret = false

        @OptionGroup var format: OutputOptions

        func run() throws {
            format.emit(try KeysActions.show(
                keyFile: keyFile, passphrase: showSecret ? passphrase.resolve() : nil, showSecret: showSecret))
        }
    }
}

/// What `keys generate` and `keys show` report.
public struct KeySummary: CommandOutput, Equatable {
    public var publicKey: String
    public var keyFile: String?
    public var encrypted: Bool
    public var secretKey: String?

    var text: String {
        var lines = ["public key: \(publicKey)"]
        if let keyFile { lines.append("key file:   \(keyFile)") }
        lines.append("encrypted:  \(encrypted ? "yes (scrypt + AES-256-GCM)" : "NO (plain text)")")
        if let secretKey { lines.append("secret key: \(secretKey)") }
        return lines.joined(separator: "\n")
    }
}

/// The work behind `ishtar keys`, callable from tests.
public enum KeysActions {
    /// Generates a key and writes (or returns) its key file.
    public static func generate(
        output: String?, passphrase: Data?, insecurePlaintext: Bool, showSecret: Bool
    ) throws -> (keyFile: KeyFile, summary: KeySummary) {
        if insecurePlaintext && output == nil && !showSecret {
            throw CLIError.badInput("--insecure-plaintext without --output would print the secret key; add --show-secret to confirm")
        }
        let protection: KeyFile.Protection
        if insecurePlaintext {
            protection = .insecurePlaintext
        } else {
            guard let passphrase else {
                throw CLIError.badInput("a passphrase is required: give --passphrase-file or set ISHTAR_PASSPHRASE (or --insecure-plaintext for tests)")
            }
            protection = .passphrase(passphrase)
        }
        // BIP-340 identities are x-only, so a key and its negation share one public key.
        // Generating only even-y keys makes the x-only key name exactly one secret, so EOTS
        // extraction from a double vote returns the very bytes stored in the key file.
        let random = Schnorr.PrivateKey()
        let key: Schnorr.PrivateKey
        do {
            key = random.point.hasEvenY ? random : try Schnorr.PrivateKey(scalar: random.scalar.negated)
        } catch {
            throw CLIError.badInput("key generation failed: \(error)")
        }
        do {
            let file = try KeyFile(privateKey: key, protection: protection)
            if let output { try KeyFileStore.write(file, to: output) }
            let summary = KeySummary(
                publicKey: file.publicKey, keyFile: output, encrypted: file.isEncrypted,
                secretKey: showSecret ? key.rawRepresentation.hexString : nil)
            return (file, summary)
        } catch {
            throw CLIError.badInput(error.description)
        }
    }

    /// Reads a key file; unlocks it only when the secret is to be shown.
    public static func show(keyFile path: String, passphrase: Data?, showSecret: Bool) throws -> KeySummary {
        do {
            let file = try KeyFileStore.read(from: path)
            var summary = KeySummary(publicKey: file.publicKey, keyFile: path, encrypted: file.isEncrypted, secretKey: nil)
            if showSecret {
                summary.secretKey = try file.unlock(passphrase: passphrase).rawRepresentation.hexString
            }
            return summary
        } catch {
            throw CLIError.badInput(error.description)
        }
    }

    /// Loads and unlocks a key file for a signing command.
    static func unlock(path: String, passphrase: Data?) throws -> Schnorr.PrivateKey {
        do {
            return try KeyFileStore.read(from: path).unlock(passphrase: passphrase)
        } catch {
            throw CLIError.badInput(error.description)
        }
    }
}
