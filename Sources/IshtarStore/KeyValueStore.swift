import Foundation

/// One key/value pair yielded by iteration. Keys and values are raw bytes.
public typealias KeyValue = (key: Data, value: Data)

/// The name of the column family every RocksDB database has.
public let defaultColumnFamily = "default"

/// Compares keys bytewise (unsigned, shorter-is-smaller on a common prefix): exactly
/// RocksDB's default `BytewiseComparator`, i.e. `memcmp` then length. Both stores order
/// keys with this, so code tested on `InMemoryStore` sees RocksDB's order.
@inline(__always)
public func bytewiseLess(_ a: Data, _ b: Data) -> Bool {
    a.lexicographicallyPrecedes(b)
}

/// A half-open key range `[lower, upper)`; `nil` means unbounded on that side.
public struct KeyRange: Sendable, Equatable {
    /// Inclusive lower bound, or `nil` for "from the first key".
    public var lower: Data?
    /// Exclusive upper bound, or `nil` for "to the last key".
    public var upper: Data?

    /// `[lower, upper)`; either side may be `nil` (unbounded).
    public init(lower: Data?, upper: Data?) {
        self.lower = lower
        self.upper = upper
    }

    /// Every key of the column family.
    public static let all = KeyRange(lower: nil, upper: nil)

    /// `[start, end)`: `end` is exclusive.
    public static func range(_ start: Data?, _ end: Data?) -> KeyRange {
        KeyRange(lower: start, upper: end)
    }

    /// Every key starting with `prefix`, expressed as `[prefix, successor(prefix))`.
    /// The empty prefix is every key; a prefix of only `0xff` bytes has no successor,
    /// so it is unbounded above (every key ≥ prefix starts with it).
    public static func prefix(_ prefix: Data) -> KeyRange {
        KeyRange(lower: prefix.isEmpty ? nil : prefix, upper: prefixSuccessor(prefix))
    }

    /// The smallest key greater than every key starting with `prefix`: drop trailing
    /// `0xff` bytes and increment the last remaining byte; `nil` when none remain.
    public static func prefixSuccessor(_ prefix: Data) -> Data? {
        var bytes = [UInt8](prefix)
        while let last = bytes.last {
            if last == 0xff {
                bytes.removeLast()
            } else {
                bytes[bytes.count - 1] = last + 1
                return Data(bytes)
            }
        }
        return nil
    }

    /// Whether `key` lies in `[lower, upper)`.
    public func contains(_ key: Data) -> Bool {
        if let lower, bytewiseLess(key, lower) { return false }
        if let upper, !bytewiseLess(key, upper) { return false }
        return true
    }

    /// Whether the range can contain no key at all (`lower >= upper`).
    var isEmpty: Bool {
        if let lower, let upper { return !bytewiseLess(lower, upper) }
        return false
    }
}

/// Iteration order.
public enum ScanDirection: Sendable, Equatable {
    /// Ascending bytewise key order.
    case forward
    /// Descending bytewise key order.
    case reverse
}

/// One operation of a `WriteBatch`.
public enum BatchOperation: Sendable, Equatable {
    /// Set `key` to `value`.
    case put(columnFamily: String, key: Data, value: Data)
    /// Remove `key` (no error if absent).
    case delete(columnFamily: String, key: Data)
    /// Remove every key in `[start, end)`. An empty range (`start >= end`) is a no-op.
    case deleteRange(columnFamily: String, start: Data, end: Data)
}

/// An atomic group of writes: a store applies all of them or none (RocksDB writes the
/// batch as one WAL record). The chain's block commit is one batch.
///
/// It is a store-independent value so the same commit code runs against RocksDB and
/// `InMemoryStore`; `Database.write` turns it into a native `rocksdb_writebatch_t`
/// after checking every column family name, so a bad name fails the whole batch
/// before anything is written. A batch that is never written has no effect.
///
/// The keys and values are kept back to back in one buffer rather than as two `Data` per
/// operation: a block's commit queues a few thousand operations, and an allocation (and
/// later a copy for sorting) per key was a visible share of the commit.
public struct WriteBatch: Sendable, Equatable {
    /// One queued operation: its kind, its column family (an index into `families`) and
    /// where its bytes lie in `bytes`.
    struct Entry: Sendable {
        enum Kind: UInt8, Sendable { case put, delete, deleteRange }
        var kind: Kind
        var family: Int
        var keyStart: Int
        var keyCount: Int
        /// A put's value or a range delete's end; empty for a delete.
        var valueStart: Int
        var valueCount: Int
    }

    /// Every operation's key and value, in queue order.
    private(set) var bytes: [UInt8] = []
    /// The operations, in queue order.
    private(set) var entries: [Entry] = []
    /// The column families named, each once, in order of first use.
    private(set) var families: [String] = []
    /// Whether a range delete is queued (a batch holding one is written in queue order).
    private(set) var hasRangeDelete = false
    /// The family of the last operation queued: a batch names one to three over and over.
    private var lastFamily = -1

    /// An empty batch.
    public init() {}

    /// Number of operations.
    public var count: Int { entries.count }
    /// Whether the batch has no operations.
    public var isEmpty: Bool { entries.isEmpty }

    /// The operations, applied in order (a later op on the same key wins), as values.
    public var operations: [BatchOperation] {
        entries.map { e in
            let family = families[e.family]
            let key = Data(bytes[e.keyStart..<(e.keyStart + e.keyCount)])
            let value = Data(bytes[e.valueStart..<(e.valueStart + e.valueCount)])
            switch e.kind {
            case .put: return .put(columnFamily: family, key: key, value: value)
            case .delete: return .delete(columnFamily: family, key: key)
            case .deleteRange: return .deleteRange(columnFamily: family, start: key, end: value)
            }
        }
    }

    /// Two batches are equal when they queue the same operations in the same order.
    public static func == (a: WriteBatch, b: WriteBatch) -> Bool { a.operations == b.operations }

    /// Queues `key = value` in `columnFamily`.
    public mutating func put(_ key: Data, _ value: Data, in columnFamily: String = defaultColumnFamily) {
        key.withUnsafeBytes { k in value.withUnsafeBytes { v in append(.put, columnFamily, k, v) } }
    }

    /// ``put(_:_:in:)`` of bytes in hand, copied straight into the batch.
    public mutating func put(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer,
                             in columnFamily: String = defaultColumnFamily) {
        append(.put, columnFamily, key, value)
    }

    /// ``put(_:_:in:)`` of byte arrays.
    public mutating func put(_ key: [UInt8], _ value: [UInt8], in columnFamily: String = defaultColumnFamily) {
        key.withUnsafeBytes { k in value.withUnsafeBytes { v in append(.put, columnFamily, k, v) } }
    }

    /// Queues the removal of `key` from `columnFamily`.
    public mutating func delete(_ key: Data, in columnFamily: String = defaultColumnFamily) {
        key.withUnsafeBytes { k in append(.delete, columnFamily, k, UnsafeRawBufferPointer(start: nil, count: 0)) }
    }

    /// ``delete(_:in:)`` of a key in hand.
    public mutating func delete(key: UnsafeRawBufferPointer, in columnFamily: String = defaultColumnFamily) {
        append(.delete, columnFamily, key, UnsafeRawBufferPointer(start: nil, count: 0))
    }

    /// Queues the removal of every key in `[start, end)` of `columnFamily`.
    public mutating func deleteRange(_ start: Data, _ end: Data, in columnFamily: String = defaultColumnFamily) {
        start.withUnsafeBytes { s in end.withUnsafeBytes { e in append(.deleteRange, columnFamily, s, e) } }
        hasRangeDelete = true
    }

    /// Makes room for `operations` more operations holding `bytes` more bytes in all.
    public mutating func reserveCapacity(operations: Int, bytes byteCount: Int) {
        entries.reserveCapacity(entries.count + operations)
        bytes.reserveCapacity(bytes.count + byteCount)
    }

    /// Removes every queued operation.
    public mutating func clear() {
        bytes.removeAll(keepingCapacity: true)
        entries.removeAll(keepingCapacity: true)
        families.removeAll()
        hasRangeDelete = false
        lastFamily = -1
    }

    private mutating func append(_ kind: Entry.Kind, _ family: String, _ key: UnsafeRawBufferPointer,
                                 _ value: UnsafeRawBufferPointer) {
        let f: Int
        if lastFamily >= 0, families[lastFamily] == family {
            f = lastFamily
        } else if let i = families.firstIndex(of: family) {
            f = i
        } else {
            families.append(family)
            f = families.count - 1
        }
        lastFamily = f
        let keyStart = bytes.count
        bytes.append(contentsOf: key)
        let valueStart = bytes.count
        bytes.append(contentsOf: value)
        entries.append(Entry(kind: kind, family: f, keyStart: keyStart, keyCount: key.count,
                             valueStart: valueStart, valueCount: value.count))
    }

    /// `body` with the address of `bytes` (of a byte that is never read when the buffer is
    /// empty, so every operation's pointers are valid).
    func withBytes<R>(_ body: (UnsafeRawPointer) throws -> R) rethrows -> R {
        try bytes.withUnsafeBytes { buffer in
            if let base = buffer.baseAddress { return try body(base) }
            var zero: UInt8 = 0
            return try withUnsafePointer(to: &zero) { try body(UnsafeRawPointer($0)) }
        }
    }
}

/// Internal source of ordered pairs behind a `StoreIterator`.
protocol KeyValueSource: AnyObject {
    func nextPair() throws -> KeyValue?
}

/// A single-pass iterator over `(key, value)` pairs of a range, in key order.
///
/// Two ways to consume it:
/// - `while let kv = try it.nextPair() { … }` — errors are thrown where they occur
///   (preferred: a storage error can never be mistaken for "end of range");
/// - `for kv in it { … }` (`Sequence`) — `IteratorProtocol.next()` cannot throw, so an
///   error ends the sequence early and is kept; call `try it.checkError()` after the
///   loop (or use `collect()`), otherwise a truncated scan looks complete.
///
/// Not Sendable: a RocksDB iterator is not thread-safe; use it on one thread/task.
public final class StoreIterator: Sequence, IteratorProtocol {
    private let source: KeyValueSource
    private var finished = false
    /// The error that ended iteration through `next()`, if any.
    public private(set) var error: (any Error)?

    init(_ source: KeyValueSource) { self.source = source }

    /// The next pair, `nil` at the end of the range; throws the storage error (RocksDB's
    /// `rocksdb_iter_get_error`) if iteration failed.
    public func nextPair() throws -> KeyValue? {
        if finished { return nil }
        do {
            if let kv = try source.nextPair() { return kv }
            finished = true
            return nil
        } catch {
            finished = true
            self.error = error
            throw error
        }
    }

    /// `Sequence` step: `nil` at the end *or on error* (see `checkError()`).
    public func next() -> KeyValue? {
        (try? nextPair()) ?? nil
    }

    /// Throws the error that ended a `for … in` loop early, if any.
    public func checkError() throws {
        if let error { throw error }
    }

    /// Reads every remaining pair, throwing on any storage error.
    public func collect() throws -> [KeyValue] {
        var out: [KeyValue] = []
        while let kv = try nextPair() { out.append(kv) }
        return out
    }
}

/// Keys back to back in one buffer, for a batched lookup (``KeyValueReader/multiGet(_:in:)-(KeyList,_)``):
/// a block's prefetch is a thousand keys, and a `Data` of each was an allocation and a copy
/// apiece before the store copied them again.
public struct KeyList: Sendable {
    /// Every key's bytes, in order.
    public private(set) var bytes: [UInt8] = []
    /// Where each key ends in ``bytes``.
    public private(set) var ends: [Int] = []

    /// An empty list with room for `keys` keys of `bytes` bytes in all.
    public init(reservingKeys keys: Int = 0, bytes: Int = 0) {
        if keys > 0 { ends.reserveCapacity(keys) }
        if bytes > 0 { self.bytes.reserveCapacity(bytes) }
    }

    /// The number of keys.
    public var count: Int { ends.count }
    /// Whether there are none.
    public var isEmpty: Bool { ends.isEmpty }

    /// Appends a key.
    public mutating func append(_ key: UnsafeRawBufferPointer) {
        bytes.append(contentsOf: key)
        ends.append(bytes.count)
    }

    /// Appends a key.
    public mutating func append(_ key: Data) { key.withUnsafeBytes { append($0) } }

    /// Where key `i` lies in ``bytes``.
    public func range(of i: Int) -> Range<Int> { (i == 0 ? 0 : ends[i - 1])..<ends[i] }

    /// Every key as `Data`.
    public var keys: [Data] { ends.indices.map { Data(bytes[range(of: $0)]) } }
}

/// Read access shared by a live store and by a snapshot of it.
public protocol KeyValueReader {
    /// The value of `key` in `columnFamily`, or `nil` if absent.
    func get(_ key: Data, in columnFamily: String) throws -> Data?
    /// Whether the value of `key` in `columnFamily` is exactly `expected`; `nil` if the key is
    /// absent. A store may compare where it holds the value, without copying it out.
    func value(_ key: Data, in columnFamily: String, equals expected: Data) throws -> Bool?
    /// The values of `keys` in `columnFamily`, in the same order (`nil` = absent). A store may
    /// look them up together, at one point in time, which costs less than one `get` after
    /// another (`Database` does).
    func multiGet(_ keys: [Data], in columnFamily: String) throws -> [Data?]
    /// ``multiGet(_:in:)-([Data],_)`` of keys laid out in one buffer: for a caller holding
    /// its keys as bytes, so that it need not make a `Data` of each.
    func multiGet(_ keys: KeyList, in columnFamily: String) throws -> [Data?]
    /// Iterates `range` of `columnFamily` in `direction` order. The iterator reads a
    /// consistent point-in-time view taken when it is created.
    func scan(_ columnFamily: String, _ range: KeyRange, direction: ScanDirection) throws -> StoreIterator
}

/// What the chain needs from storage: point reads, atomic batch writes, ordered
/// prefix/range iteration and consistent snapshot reads. Implemented by `Database`
/// (RocksDB, production) and `InMemoryStore` (unit tests only).
public protocol KeyValueStore: KeyValueReader, AnyObject, Sendable {
    /// The type of a point-in-time read view.
    associatedtype Snapshot: KeyValueReader & Sendable

    /// The column families this store was opened with (always includes `"default"`).
    var columnFamilies: [String] { get }
    /// Applies `batch` atomically. With `sync == true` the call returns only once the
    /// batch is durable (RocksDB: WAL fsync'ed) — use it for every commit.
    func write(_ batch: WriteBatch, sync: Bool) throws
    /// A consistent read view: later writes are invisible through it.
    func snapshot() throws -> Snapshot
    /// Releases the store; later operations throw `StoreError.closed`. Idempotent.
    func close() throws
}

extension KeyValueStore {
    /// Applies `batch` atomically and durably (`sync: true`, the safe default for commits).
    public func write(_ batch: WriteBatch) throws {
        try write(batch, sync: true)
    }
}

extension KeyValueReader {
    /// ``multiGet(_:in:)`` as one ``get(_:in:)`` after another (no common point in time
    /// beyond what the store's reads give).
    public func multiGet(_ keys: [Data], in columnFamily: String) throws -> [Data?] {
        try keys.map { try get($0, in: columnFamily) }
    }

    /// ``multiGet(_:in:)-([Data],_)`` of each key as `Data`.
    public func multiGet(_ keys: KeyList, in columnFamily: String) throws -> [Data?] {
        try multiGet(keys.keys, in: columnFamily)
    }

    /// ``value(_:in:equals:)`` through ``get(_:in:)``.
    public func value(_ key: Data, in columnFamily: String, equals expected: Data) throws -> Bool? {
        try get(key, in: columnFamily).map { $0 == expected }
    }

    /// `get` in the default column family.
    public func get(_ key: Data) throws -> Data? {
        try get(key, in: defaultColumnFamily)
    }

    /// Forward iteration over every key starting with `prefix`.
    public func scan(_ columnFamily: String, prefix: Data, direction: ScanDirection = .forward) throws -> StoreIterator {
        try scan(columnFamily, .prefix(prefix), direction: direction)
    }

    /// Iteration over `[start, end)` (`end` exclusive; `nil` = unbounded).
    public func scan(_ columnFamily: String, from start: Data?, to end: Data?, direction: ScanDirection = .forward) throws -> StoreIterator {
        try scan(columnFamily, .range(start, end), direction: direction)
    }
}
