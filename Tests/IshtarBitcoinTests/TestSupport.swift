import Foundation
import IshtarBitcoin
import IshtarCrypto

/// Finds `Fixtures/<name>` by walking up from this source file to the repository root.
func fixtureURL(_ name: String, filePath: String = #filePath) -> URL? {
    var directory = URL(fileURLWithPath: filePath).deletingLastPathComponent()
    for _ in 0..<8 {
        let candidate = directory.appendingPathComponent("Fixtures").appendingPathComponent(name)
        if FileManager.default.fileExists(atPath: candidate.path) { return candidate }
        directory = directory.deletingLastPathComponent()
    }
    return nil
}

/// Decodes a fixture as JSON; nil if missing or malformed (tests that count vectors catch that).
func loadFixture<T: Decodable>(_ name: String, as type: T.Type) -> T? {
    guard let url = fixtureURL(name), let data = try? Data(contentsOf: url) else { return nil }
    return try? JSONDecoder().decode(T.self, from: data)
}

/// Hex to bytes for test literals; an invalid literal is a bug in the test, reported as empty data
/// so the comparison that uses it fails visibly.
func hex(_ string: String) -> Data {
    (try? Data(hex: string)) ?? Data()
}

/// SplitMix64: a tiny deterministic generator so fuzz runs are reproducible from their seed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

extension Amount {
    /// A literal amount for tests; out-of-range literals are a test bug and become zero.
    static func sats(_ value: Int64) -> Amount { (try? Amount(sats: value)) ?? .zero }
}
