import Foundation
import IshtarStore
import IshtarTestSupport

/// UTF-8 bytes of a string literal, for readable keys.
func d(_ s: String) -> Data { Data(s.utf8) }
/// Raw bytes.
func b(_ bytes: UInt8...) -> Data { Data(bytes) }

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
