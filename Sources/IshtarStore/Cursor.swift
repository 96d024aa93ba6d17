import CRocksDB
import Foundation

/// Native state of one iterator: the `rocksdb_iterator_t`, the read options it was
/// created with, and the bound bytes those options point to. RocksDB keeps pointers
/// to both the options' bound slices and the key bytes, so all three live together and
/// die together, iterator first.
final class IteratorHandle: DependentHandle {
    var iterator: OpaquePointer?
    private(set) var readOptions: NativeReadOptions
    private var bounds: [PinnedBytes] = []

    init(verifyChecksums: Bool, lowerBound: Data?, upperBound: Data?) {
        readOptions = NativeReadOptions(verifyChecksums: verifyChecksums)
        super.init()
        if let lowerBound {
            let pinned = PinnedBytes(lowerBound)
            bounds.append(pinned)
            rocksdb_readoptions_set_iterate_lower_bound(readOptions.pointer, pinned.pointer, pinned.count)
        }
        if let upperBound {
            let pinned = PinnedBytes(upperBound)
            bounds.append(pinned)
            rocksdb_readoptions_set_iterate_upper_bound(readOptions.pointer, pinned.pointer, pinned.count)
        }
    }

    override func release(db: OpaquePointer) {
        if let iterator {
            rocksdb_iter_destroy(iterator)
            self.iterator = nil
        }
    }
}

/// Native state of one snapshot and the read options that read through it.
final class SnapshotHandle: DependentHandle {
    var snapshot: OpaquePointer?
    let readOptions: NativeReadOptions

    init(verifyChecksums: Bool) {
        readOptions = NativeReadOptions(verifyChecksums: verifyChecksums)
    }

    override func release(db: OpaquePointer) {
        if let snapshot {
            rocksdb_release_snapshot(db, snapshot)
            self.snapshot = nil
        }
    }
}

/// A low-level RocksDB iterator over one column family: position with `seek…`, move
/// with `next()`/`prev()`, read with `current()`.
///
/// Holds a strong reference to its `Database` (and snapshot, if any) so they outlive
/// it; the native iterator is destroyed in `deinit` — or by `Database.close()`, after
/// which every call throws `.closed`.
///
/// Not Sendable: RocksDB iterators are not thread-safe.
public final class Cursor {
    private let database: Database
    private let handle: IteratorHandle
    // Keeps the snapshot alive for as long as the iterator reads through it.
    private let snapshot: DatabaseSnapshot?

    init(database: Database, handle: IteratorHandle, snapshot: DatabaseSnapshot?) {
        self.database = database
        self.handle = handle
        self.snapshot = snapshot
    }

    deinit { database.releaseDependent(handle) }

    private func withIterator<R>(_ body: (OpaquePointer) throws -> R) throws -> R {
        try database.withOpen { _ in
            guard let iterator = handle.iterator else { throw StoreError.closed }
            return try body(iterator)
        }
    }

    /// Positions at the first key (≥ the lower bound, if any).
    public func seekToFirst() throws { try withIterator { rocksdb_iter_seek_to_first($0) } }

    /// Positions at the last key (< the upper bound, if any).
    public func seekToLast() throws { try withIterator { rocksdb_iter_seek_to_last($0) } }

    /// Positions at the first key ≥ `key`.
    public func seek(_ key: Data) throws {
        try withIterator { it in withCBytes(key) { rocksdb_iter_seek(it, $0, $1) } }
    }

    /// Positions at the last key ≤ `key`.
    public func seekForPrev(_ key: Data) throws {
        try withIterator { it in withCBytes(key) { rocksdb_iter_seek_for_prev(it, $0, $1) } }
    }

    /// Moves to the next key. Only valid while `current()` is non-nil.
    public func next() throws {
        try withIterator { it in
            guard rocksdb_iter_valid(it) != 0 else { return }
            rocksdb_iter_next(it)
        }
    }

    /// Moves to the previous key. Only valid while `current()` is non-nil.
    public func prev() throws {
        try withIterator { it in
            guard rocksdb_iter_valid(it) != 0 else { return }
            rocksdb_iter_prev(it)
        }
    }

    /// The pair under the cursor, or `nil` when it is past either end. When the cursor
    /// is invalid, checks `rocksdb_iter_get_error` and throws it: an invalid iterator
    /// means "end" *or* "failed", and only this check tells them apart.
    public func current() throws -> KeyValue? {
        try withIterator { it in
            if rocksdb_iter_valid(it) != 0 {
                var keyLength = 0
                var valueLength = 0
                let key = rocksdb_iter_key(it, &keyLength)
                let value = rocksdb_iter_value(it, &valueLength)
                // Copy out: the iterator's buffers change on the next move.
                return (key: key.map { Data(bytes: $0, count: keyLength) } ?? Data(),
                        value: value.map { Data(bytes: $0, count: valueLength) } ?? Data())
            }
            try rocksCall(path: database.path) { rocksdb_iter_get_error(it, $0) }
            return nil
        }
    }
}

/// Walks a `Cursor` over a `KeyRange` in one direction (backs `Database.scan`).
final class RangeSource: KeyValueSource {
    private let cursor: Cursor
    private let range: KeyRange
    private let direction: ScanDirection
    private var started = false
    private var done = false

    init(cursor: Cursor, range: KeyRange, direction: ScanDirection) {
        self.cursor = cursor
        self.range = range
        self.direction = direction
    }

    func nextPair() throws -> KeyValue? {
        if done { return nil }
        if !started {
            started = true
            if range.isEmpty {
                done = true
                return nil
            }
            switch direction {
            case .forward:
                if let lower = range.lower { try cursor.seek(lower) } else { try cursor.seekToFirst() }
            case .reverse:
                // With iterate_upper_bound set, seekToLast lands on the last key < upper.
                try cursor.seekToLast()
            }
        } else {
            switch direction {
            case .forward: try cursor.next()
            case .reverse: try cursor.prev()
            }
        }
        // RocksDB already enforces the bounds; checking again costs little and keeps
        // the exclusive end exclusive even if a bound were ever dropped natively.
        guard let pair = try cursor.current(), range.contains(pair.key) else {
            done = true
            return nil
        }
        return pair
    }
}

/// A point-in-time view of a `Database`: reads through it ignore every later write.
///
/// Holds a strong reference to the database; the RocksDB snapshot is released in
/// `deinit` (or by `Database.close()`, after which reads throw `.closed`).
///
/// `@unchecked Sendable`: a RocksDB snapshot is immutable and safe to read from many
/// threads; the handle is only freed by `deinit` (no other reference can exist then)
/// or by `Database.close()` under the exclusive lock, which excludes every read.
public final class DatabaseSnapshot: KeyValueReader, @unchecked Sendable {
    let database: Database
    let handle: SnapshotHandle

    init(database: Database, handle: SnapshotHandle) {
        self.database = database
        self.handle = handle
    }

    deinit { database.releaseDependent(handle) }

    /// The value of `key` in `columnFamily` as of the snapshot, or `nil`.
    public func get(_ key: Data, in columnFamily: String) throws -> Data? {
        try database.withOpen { db in
            guard handle.snapshot != nil else { throw StoreError.closed }
            return try Database.rawGet(db: db, readOptions: handle.readOptions.pointer,
                                       handle: database.handle(columnFamily), key: key, path: database.path)
        }
    }

    /// The values of `keys` in `columnFamily` as of the snapshot.
    public func multiGet(_ keys: [Data], in columnFamily: String = defaultColumnFamily) throws -> [Data?] {
        try database.withOpen { db in
            guard handle.snapshot != nil else { throw StoreError.closed }
            return try Database.rawMultiGet(db: db, readOptions: handle.readOptions.pointer,
                                            handle: database.handle(columnFamily), keys: keys, path: database.path)
        }
    }

    /// The values of the keys of `keys` in `columnFamily` as of the snapshot.
    public func multiGet(_ keys: KeyList, in columnFamily: String = defaultColumnFamily) throws -> [Data?] {
        try database.withOpen { db in
            guard handle.snapshot != nil else { throw StoreError.closed }
            return try Database.rawMultiGet(db: db, readOptions: handle.readOptions.pointer,
                                            handle: database.handle(columnFamily), keys: keys, path: database.path)
        }
    }

    /// Iterates `range` of `columnFamily` as of the snapshot.
    public func scan(_ columnFamily: String, _ range: KeyRange, direction: ScanDirection) throws -> StoreIterator {
        try database.scan(columnFamily, range, direction: direction, snapshot: self)
    }

    /// A low-level cursor reading as of the snapshot.
    public func makeCursor(columnFamily: String, lowerBound: Data? = nil, upperBound: Data? = nil) throws -> Cursor {
        try database.makeCursor(columnFamily: columnFamily, lowerBound: lowerBound,
                                upperBound: upperBound, snapshot: self)
    }
}
