import Foundation
import Synchronization

/// A sorted in-memory `KeyValueStore` — **for unit tests only**.
///
/// It mirrors `Database`'s observable semantics so logic tested against it behaves the
/// same on RocksDB: bytewise key order, half-open ranges, atomic batches (validated
/// first, then applied all at once), implicit point-in-time iterators, snapshots, and
/// `.closed` / `.unknownColumnFamily` errors. It is *not* durable (nothing survives the
/// process, `sync` is ignored) and not built for size (sorted arrays, O(n) inserts),
/// so production code must never use it.
public final class InMemoryStore: KeyValueStore {
    /// Point-in-time read view of an `InMemoryStore`.
    public typealias Snapshot = InMemorySnapshot

    /// Column families, `"default"` first.
    public let columnFamilies: [String]

    struct State: Sendable {
        var tables: [String: SortedTable]
        var closed = false
    }

    private let state: Mutex<State>

    /// An empty store with `"default"` plus `columnFamilies`.
    public init(columnFamilies: [String] = []) {
        var names = [defaultColumnFamily]
        for name in columnFamilies where !names.contains(name) { names.append(name) }
        self.columnFamilies = names
        state = Mutex(State(tables: Dictionary(uniqueKeysWithValues: names.map { ($0, SortedTable()) })))
    }

    /// The tables, or `.closed`. Copy-on-write makes this O(1): a later write copies.
    func currentTables() throws -> [String: SortedTable] {
        try state.withLock { state in
            if state.closed { throw StoreError.closed }
            return state.tables
        }
    }

    /// Whether `close()` has run.
    public var isClosed: Bool { state.withLock { $0.closed } }

    /// The value of `key`, or `nil`.
    public func get(_ key: Data, in columnFamily: String) throws -> Data? {
        try InMemoryStore.table(columnFamily, in: currentTables()).value(for: key)
    }

    /// Iterates over a point-in-time copy of `range`.
    public func scan(_ columnFamily: String, _ range: KeyRange, direction: ScanDirection) throws -> StoreIterator {
        let table = try InMemoryStore.table(columnFamily, in: currentTables())
        return StoreIterator(TableSource(table: table, range: range, direction: direction, isClosed: { [weak self] in
            self?.isClosed ?? true
        }))
    }

    /// Applies `batch` atomically; `sync` is accepted for API parity and ignored.
    public func write(_ batch: WriteBatch, sync: Bool) throws {
        try state.withLock { state in
            if state.closed { throw StoreError.closed }
            var tables = state.tables
            for op in batch.operations {
                switch op {
                case .put(let cf, let key, let value):
                    guard tables[cf] != nil else { throw StoreError.unknownColumnFamily(cf) }
                    tables[cf]!.put(key, value)
                case .delete(let cf, let key):
                    guard tables[cf] != nil else { throw StoreError.unknownColumnFamily(cf) }
                    tables[cf]!.delete(key)
                case .deleteRange(let cf, let start, let end):
                    guard tables[cf] != nil else { throw StoreError.unknownColumnFamily(cf) }
                    tables[cf]!.deleteRange(start, end)
                }
            }
            // Only now publish: a failed batch leaves the state untouched.
            state.tables = tables
        }
    }

    /// Sets `key = value` (a one-operation batch).
    public func put(_ key: Data, _ value: Data, in columnFamily: String = defaultColumnFamily) throws {
        var batch = WriteBatch()
        batch.put(key, value, in: columnFamily)
        try write(batch, sync: true)
    }

    /// Removes `key` (a one-operation batch).
    public func delete(_ key: Data, in columnFamily: String = defaultColumnFamily) throws {
        var batch = WriteBatch()
        batch.delete(key, in: columnFamily)
        try write(batch, sync: true)
    }

    /// A frozen copy of the current state.
    public func snapshot() throws -> InMemorySnapshot {
        InMemorySnapshot(store: self, tables: try currentTables())
    }

    /// Marks the store closed; later operations (also through snapshots and iterators)
    /// throw `.closed`, as with `Database`. Idempotent.
    public func close() throws {
        state.withLock { state in
            state.closed = true
            state.tables = [:]
        }
    }

    static func table(_ name: String, in tables: [String: SortedTable]) throws -> SortedTable {
        guard let table = tables[name] else { throw StoreError.unknownColumnFamily(name) }
        return table
    }
}

/// A point-in-time view of an `InMemoryStore` (an immutable copy of its tables).
public final class InMemorySnapshot: KeyValueReader, Sendable {
    private let store: InMemoryStore
    private let tables: [String: SortedTable]

    init(store: InMemoryStore, tables: [String: SortedTable]) {
        self.store = store
        self.tables = tables
    }

    private func checkedTables() throws -> [String: SortedTable] {
        if store.isClosed { throw StoreError.closed }
        return tables
    }

    /// The value of `key` as of the snapshot.
    public func get(_ key: Data, in columnFamily: String) throws -> Data? {
        try InMemoryStore.table(columnFamily, in: checkedTables()).value(for: key)
    }

    /// Iterates `range` as of the snapshot.
    public func scan(_ columnFamily: String, _ range: KeyRange, direction: ScanDirection) throws -> StoreIterator {
        let table = try InMemoryStore.table(columnFamily, in: checkedTables())
        let store = self.store
        return StoreIterator(TableSource(table: table, range: range, direction: direction, isClosed: {
            store.isClosed
        }))
    }
}

/// Keys and values in bytewise key order (parallel arrays, binary search).
struct SortedTable: Sendable {
    private(set) var keys: [Data] = []
    private(set) var values: [Data] = []

    /// First index whose key is ≥ `key`.
    func lowerBound(_ key: Data) -> Int {
        var low = 0
        var high = keys.count
        while low < high {
            let mid = (low + high) / 2
            if bytewiseLess(keys[mid], key) { low = mid + 1 } else { high = mid }
        }
        return low
    }

    func value(for key: Data) -> Data? {
        let i = lowerBound(key)
        return i < keys.count && keys[i] == key ? values[i] : nil
    }

    mutating func put(_ key: Data, _ value: Data) {
        let i = lowerBound(key)
        if i < keys.count && keys[i] == key {
            values[i] = value
        } else {
            keys.insert(key, at: i)
            values.insert(value, at: i)
        }
    }

    mutating func delete(_ key: Data) {
        let i = lowerBound(key)
        if i < keys.count && keys[i] == key {
            keys.remove(at: i)
            values.remove(at: i)
        }
    }

    /// Removes `[start, end)`; an inverted or empty range removes nothing (as `Database`).
    mutating func deleteRange(_ start: Data, _ end: Data) {
        guard bytewiseLess(start, end) else { return }
        let from = lowerBound(start)
        let to = lowerBound(end)
        keys.removeSubrange(from..<to)
        values.removeSubrange(from..<to)
    }

    /// Indices of the keys in `range`.
    func indices(of range: KeyRange) -> Range<Int> {
        if range.isEmpty { return 0..<0 }
        let from = range.lower.map(lowerBound) ?? 0
        let to = range.upper.map(lowerBound) ?? keys.count
        return from..<max(from, to)
    }
}

/// Walks a frozen `SortedTable` over a range (backs `InMemoryStore.scan`).
final class TableSource: KeyValueSource {
    private let table: SortedTable
    private let indices: Range<Int>
    private let direction: ScanDirection
    private let isClosed: () -> Bool
    private var position = 0

    init(table: SortedTable, range: KeyRange, direction: ScanDirection, isClosed: @escaping () -> Bool) {
        self.table = table
        self.indices = table.indices(of: range)
        self.direction = direction
        self.isClosed = isClosed
    }

    func nextPair() throws -> KeyValue? {
        // Like a RocksDB iterator released by `Database.close()`.
        if isClosed() { throw StoreError.closed }
        guard position < indices.count else { return nil }
        let i = direction == .forward ? indices.lowerBound + position : indices.upperBound - 1 - position
        position += 1
        return (key: table.keys[i], value: table.values[i])
    }
}
