import Foundation
import IshtarCrypto

/// Locates the repository's `Fixtures/` directory from this file's path, so tests run from any
/// working directory (SwiftPM, Xcode, CI).
enum Fixtures {
    static func url(_ name: String, filePath: String = #filePath) -> URL? {
        var directory = URL(fileURLWithPath: filePath).deletingLastPathComponent()
        while directory.path != "/" {
            let candidate = directory.appendingPathComponent("Fixtures").appendingPathComponent(name)
            if FileManager.default.fileExists(atPath: candidate.path) {
                return candidate
            }
            directory = directory.deletingLastPathComponent()
        }
        return nil
    }

    /// Data rows of a vectors CSV as dictionaries keyed by header, skipping comment rows (those
    /// with an empty index). The files have no quoted fields; the comment column is last and may
    /// itself contain commas, so extra fields are folded into it.
    static func csvRows(_ name: String) -> [[String: String]] {
        guard let url = url(name), let text = try? String(contentsOf: url, encoding: .utf8) else { return [] }
        var lines = text.split(whereSeparator: \.isNewline).map(String.init)
        guard !lines.isEmpty else { return [] }
        let header = lines.removeFirst().split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        var rows = [[String: String]]()
        for line in lines {
            var fields = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            if fields.count > header.count {
                let tail = fields[(header.count - 1)...].joined(separator: ",")
                fields = Array(fields[..<(header.count - 1)]) + [tail]
            }
            guard fields.count == header.count, !fields[0].isEmpty else { continue }
            rows.append(Dictionary(uniqueKeysWithValues: zip(header, fields)))
        }
        return rows
    }
}

/// Hex that the test itself wrote; a typo should fail loudly as a thrown error.
func hex(_ string: String) throws -> Data {
    try Data(hex: string, field: "test constant")
}

/// A deterministic generator for property tests, so failures reproduce (SplitMix64).
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func bytes(_ count: Int) -> Data {
        Data((0..<count).map { _ in UInt8.random(in: 0...255, using: &self) })
    }

    /// A valid private key derived from the stream.
    mutating func privateKey() throws -> Schnorr.PrivateKey {
        while true {
            if let key = try? Schnorr.PrivateKey(rawRepresentation: bytes(32)) { return key }
        }
    }
}

