import ArgumentParser
import Foundation
import IshtarCrypto

/// What a command prints: one value, as JSON (`--json`) or as readable text.
protocol CommandOutput: Encodable {
    /// Human-readable rendering, one fact per line.
    var text: String { get }
}

extension CommandOutput {
    /// JSON with snake_case keys and sorted fields, stable for scripts.
    var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        guard let data = try? encoder.encode(self), let s = String(data: data, encoding: .utf8) else { return "{}" }
        return s
    }

    func render(json: Bool) -> String { json ? self.json : text }
}

/// The `--json` flag shared by every command that prints a result.
struct OutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Print the result as JSON instead of text.")
    var json = false

    func emit(_ output: some CommandOutput) {
        print(output.render(json: json))
    }
}

/// Parsers for domain values given on the command line. Each throws a `ValidationError`
/// that names the option and says exactly what is wrong.
enum Parse {
    static func hex(_ text: String, option: String, length: Int? = nil) throws -> Data {
        let trimmed = text.hasPrefix("0x") ? String(text.dropFirst(2)) : text
        let data: Data
        do { data = try Data(hex: trimmed, field: option) } catch {
            // The crypto error already names the option it was given as its field.
            throw ValidationError("\(error)")
        }
        if let length, data.count != length {
            throw ValidationError(
                "\(option): expected \(length) bytes (\(2 * length) hex characters), got \(data.count) bytes")
        }
        return data
    }

    static func publicKey(_ text: String, option: String) throws -> Schnorr.PublicKey {
        let bytes = try hex(text, option: option, length: 32)
        do { return try Schnorr.PublicKey(rawRepresentation: bytes) } catch {
            throw ValidationError("\(option): \(error)")
        }
    }

    static func publicRandomness(_ text: String, option: String) throws -> EOTS.PublicRandomness {
        let bytes = try hex(text, option: option, length: 32)
        do { return try EOTS.PublicRandomness(rawRepresentation: bytes) } catch {
            throw ValidationError("\(option): \(error)")
        }
    }

    static func eotsSignature(_ text: String, option: String) throws -> EOTS.Signature {
        let bytes = try hex(text, option: option, length: 32)
        do { return try EOTS.Signature(rawRepresentation: bytes) } catch {
            throw ValidationError("\(option): \(error)")
        }
    }

    static func chainID(_ text: String) throws -> String {
        guard !text.isEmpty, text.utf8.count <= 64, text.allSatisfy({ $0.isASCII && !$0.isWhitespace }) else {
            throw ValidationError("--chain-id: must be 1 to 64 printable ASCII characters without spaces")
        }
        return text
    }
}
