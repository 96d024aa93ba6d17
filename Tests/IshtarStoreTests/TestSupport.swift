import Foundation
import IshtarStore

/// A fresh temporary directory, removed when the value goes away.
final class TempDir: Sendable {
    let url: URL
    init() {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("ishtar-store-tests-\(UUID().uuidString)", isDirectory: true)
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(at: url) }
    /// A path inside the directory (not created).
    func path(_ name: String = "db") -> String { url.appendingPathComponent(name).path }
}

/// UTF-8 bytes of a string literal, for readable keys.
func d(_ s: String) -> Data { Data(s.utf8) }
/// Raw bytes.
func b(_ bytes: UInt8...) -> Data { Data(bytes) }

/// Deterministic PRNG (SplitMix64) so randomized tests replay identically.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The two `KeyValueStore` implementations, for tests run against both.
enum Backend: String, CaseIterable, Sendable {
    case rocksdb, memory
}

/// Opens a store of `backend` in `dir` with the given column families.
func makeStore(_ backend: Backend, _ dir: TempDir, columnFamilies: [String] = []) throws -> any KeyValueStore {
    switch backend {
    case .rocksdb:
        return try Database.open(path: dir.path(), options: DatabaseOptions(columnFamilies: columnFamilies))
    case .memory:
        return InMemoryStore(columnFamilies: columnFamilies)
    }
}

/// Writes one key through a one-operation batch (works on any store).
func put(_ store: any KeyValueStore, _ key: Data, _ value: Data, in cf: String = defaultColumnFamily) throws {
    var batch = WriteBatch()
    batch.put(key, value, in: cf)
    try store.write(batch)
}

/// Keys of an iteration, for compact assertions.
func keys(_ iterator: StoreIterator) throws -> [Data] {
    try iterator.collect().map(\.key)
}

/// Comparable form of pairs (tuples are not Equatable).
struct Pair: Equatable, CustomStringConvertible {
    let key: Data
    let value: Data
    var description: String { "\([UInt8](key))=\([UInt8](value))" }
}

func pairs(_ iterator: StoreIterator) throws -> [Pair] {
    try iterator.collect().map { Pair(key: $0.key, value: $0.value) }
}
