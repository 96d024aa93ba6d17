import CRocksDB
import Foundation

/// A native resource that depends on an open `rocksdb_t` (an iterator or a snapshot).
/// The database keeps a registry of them so `close()` can release them *before*
/// `rocksdb_close` — RocksDB requires that, and an explicit close must actually close
/// (free the `LOCK`) even while a forgotten iterator is still referenced somewhere.
class DependentHandle {
    /// Frees the native resource; idempotent. Called either by the owner's `deinit`
    /// (under the database's shared lock) or by `close()` (under the exclusive lock),
    /// never concurrently with a use of the resource.
    func release(db: OpaquePointer) {}
}

/// A RocksDB database: the production `KeyValueStore`.
///
/// `@unchecked Sendable` because RocksDB's `rocksdb_t` is thread-safe for concurrent
/// reads and writes, the shared read/write options are immutable after `init`, and
/// the only mutable state (the handle pointers, set to `nil` by `close()`, and the
/// registry of dependent iterators/snapshots) is guarded by `lock` / `registryLock`.
public final class Database: KeyValueStore, @unchecked Sendable {
    /// Point-in-time read view of this database.
    public typealias Snapshot = DatabaseSnapshot

    /// The database directory.
    public let path: String
    /// Every column family open on this database, `"default"` first.
    public let columnFamilies: [String]

    private let settings: DatabaseOptions
    /// Shared side: any operation using `db`/handles. Exclusive side: `close()`.
    private let lock = ReadWriteLock()
    /// Guarded by `lock` (written only under the exclusive side).
    private var db: OpaquePointer?
    /// Guarded by `lock` (written only under the exclusive side).
    private var handles: [String: ColumnFamilyHandle]
    /// The same handles as a list, for ``handle(_:)``: a database has a handful of column
    /// families with short names, and comparing a few small strings is cheaper than hashing
    /// the name for every read (a tenth of a missing key's lookup). Guarded like `handles`.
    private var handleList: [(name: String, pointer: OpaquePointer)]
    private let registryLock = NSLock()
    /// Guarded by `registryLock`.
    private var dependents: [ObjectIdentifier: DependentHandle] = [:]
    // Kept for the lifetime of the DB: cheap, and no doubt about what RocksDB copied.
    private let nativeOptions: NativeOptions
    /// The options of ``DatabaseOptions/columnFamiliesWithoutMemtableBloom``, if any.
    private let nativeOptionsWithoutBloom: NativeOptions?
    private let syncWrites = NativeWriteOptions(sync: true)
    private let asyncWrites = NativeWriteOptions(sync: false)
    /// Native batches kept for reuse: a batch's buffer grows to the size of a block's
    /// writes, and growing a fresh one for every block (reallocating, faulting in new pages)
    /// cost a sixth of the write. Guarded by `registryLock`; at most two kept.
    private var spareBatches: [NativeWriteBatch] = []
    let readOptions: NativeReadOptions

    private init(path: String, settings: DatabaseOptions, options: NativeOptions, optionsWithoutBloom: NativeOptions?,
                 db: OpaquePointer, handles: [String: ColumnFamilyHandle], names: [String]) {
        self.path = path
        self.settings = settings
        self.nativeOptions = options
        self.nativeOptionsWithoutBloom = optionsWithoutBloom
        self.db = db
        self.handles = handles
        self.handleList = handles.compactMap { name, handle in handle.pointer.map { (name: name, pointer: $0) } }
        self.columnFamilies = names
        self.readOptions = NativeReadOptions(verifyChecksums: settings.verifyChecksums)
    }

    deinit {
        // Last reference gone (no iterator or snapshot can be alive: they hold a strong
        // reference). Close cleanly — WAL sync, flush — ignoring errors we cannot report.
        try? close()
    }

    // MARK: Open / close

    /// Opens (by default creating) the database at `path`.
    ///
    /// Every column family already on disk is opened (found with
    /// `rocksdb_list_column_families`), plus `options.columnFamilies`, created if
    /// missing, plus `"default"`.
    ///
    /// - Throws: `StoreError.missingDirectory` if the parent directory does not exist,
    ///   `.lockHeld` if another process or `Database` has it open, `.corruption` for a
    ///   damaged database, or another classified RocksDB error.
    public static func open(path: String, options: DatabaseOptions = DatabaseOptions()) throws -> Database {
        guard !path.isEmpty else { throw StoreError.invalidArgument("empty database path") }
        let absolute = URL(fileURLWithPath: path).standardizedFileURL
        let parent = absolute.deletingLastPathComponent().path
        var isDirectory: ObjCBool = false
        // RocksDB only creates the last path component; report a missing parent as
        // such rather than as an opaque "IO error: While mkdir if missing".
        if !FileManager.default.fileExists(atPath: parent, isDirectory: &isDirectory) || !isDirectory.boolValue {
            throw StoreError.missingDirectory(parent)
        }

        let native = options.makeNative()
        let existing = try listColumnFamilies(path: path, options: native)

        var names = [defaultColumnFamily]
        for name in existing + options.columnFamilies where !names.contains(name) {
            guard !name.isEmpty else { throw StoreError.invalidArgument("empty column family name") }
            names.append(name)
        }

        let cNames = names.map { strdup($0) }
        defer { cNames.forEach { free($0) } }
        let constNames: [UnsafePointer<CChar>?] = cNames.map { UnsafePointer($0) }
        let withoutBloom = options.columnFamiliesWithoutMemtableBloom.isEmpty ? nil : options.makeNative(memtableBloom: false)
        let cfOptions: [OpaquePointer?] = names.map { name in
            guard let withoutBloom, options.columnFamiliesWithoutMemtableBloom.contains(name) else { return native.pointer }
            return withoutBloom.pointer
        }
        var cfHandles = [OpaquePointer?](repeating: nil, count: names.count)

        let opened = try rocksCall(path: path) { err in
            rocksdb_open_column_families(native.pointer, path, Int32(names.count), constNames,
                                         cfOptions, &cfHandles, err)
        }
        guard let opened else { throw StoreError.other("rocksdb_open_column_families returned no handle") }
        var byName: [String: ColumnFamilyHandle] = [:]
        for (name, handle) in zip(names, cfHandles) {
            guard let handle else {
                // Cannot happen after a successful open; clean up rather than leak.
                for h in byName.values { h.release() }
                rocksdb_close(opened)
                throw StoreError.other("missing handle for column family \(name)")
            }
            byName[name] = ColumnFamilyHandle(handle)
        }
        return Database(path: path, settings: options, options: native, optionsWithoutBloom: withoutBloom, db: opened,
                        handles: byName, names: names)
    }

    /// Column families on disk, or `[]` when there is no database yet (no `CURRENT`).
    private static func listColumnFamilies(path: String, options: NativeOptions) throws -> [String] {
        guard FileManager.default.fileExists(atPath: path + "/CURRENT") else { return [] }
        var count = 0
        let list = try rocksCall(path: path) { err in
            rocksdb_list_column_families(options.pointer, path, &count, err)
        }
        guard let list else { return [] }
        defer { rocksdb_list_column_families_destroy(list, count) }
        return (0..<count).compactMap { i in list[i].map { String(cString: $0) } }
    }

    /// Whether `close()` has run.
    public var isClosed: Bool { lock.withReadLock { db == nil } }

    /// Closes the database: releases live iterators and snapshots (their later use
    /// throws `.closed`), fsyncs the WAL, flushes memtables (if
    /// `flushMemtablesOnClose`), frees the column-family handles and closes RocksDB,
    /// releasing the `LOCK`. Waits for in-flight operations. Idempotent: closing again
    /// does nothing. Every later operation throws `StoreError.closed`.
    ///
    /// - Throws: the first WAL-sync or flush error; the database is closed regardless.
    public func close() throws {
        try lock.withWriteLock {
            guard let db else { return }
            registryLock.withLock {
                for dependent in dependents.values { dependent.release(db: db) }
                dependents.removeAll()
            }
            var firstError: (any Error)?
            do {
                try rocksCall(path: path) { rocksdb_flush_wal(db, 1, $0) }
            } catch { firstError = error }
            if settings.flushMemtablesOnClose {
                do { try flushMemtables(db) } catch { firstError = firstError ?? error }
            }
            for handle in handles.values { handle.release() }
            handles = [:]
            handleList = []
            rocksdb_close(db)
            self.db = nil
            if let firstError { throw firstError }
        }
    }

    private func flushMemtables(_ db: OpaquePointer) throws {
        let flush = rocksdb_flushoptions_create()
        defer { rocksdb_flushoptions_destroy(flush) }
        rocksdb_flushoptions_set_wait(flush, 1)
        for name in columnFamilies {
            guard let handle = handles[name]?.pointer else { continue }
            try rocksCall(path: path) { rocksdb_flush_cf(db, flush, handle, $0) }
        }
    }

    /// Makes everything written so far durable: fsyncs the WAL and flushes memtables
    /// to SST files.
    public func flush() throws {
        try withOpen { db in
            try rocksCall(path: path) { rocksdb_flush_wal(db, 1, $0) }
            try flushMemtables(db)
        }
    }

    /// fsyncs the WAL, making earlier `sync: false` writes durable.
    public func syncWAL() throws {
        try withOpen { db in try rocksCall(path: path) { rocksdb_flush_wal(db, 1, $0) } }
    }

    // MARK: Internal plumbing

    /// Runs `body` with the open `rocksdb_t` under the shared lock; `.closed` after close.
    func withOpen<R>(_ body: (OpaquePointer) throws -> R) throws -> R {
        try lock.withReadLock {
            guard let db else { throw StoreError.closed }
            return try body(db)
        }
    }

    /// The handle of `name`. Call only inside `withOpen`.
    func handle(_ name: String) throws -> OpaquePointer {
        for entry in handleList where entry.name == name { return entry.pointer }
        throw StoreError.unknownColumnFamily(name)
    }

    /// Registers a dependent. Call only inside `withOpen`, so `close()` cannot run
    /// between creating the native resource and registering it.
    func register(_ dependent: DependentHandle) {
        registryLock.withLock { dependents[ObjectIdentifier(dependent)] = dependent }
    }

    /// Releases a dependent from its owner's `deinit` (no-op if `close()` already did).
    func releaseDependent(_ dependent: DependentHandle) {
        lock.withReadLock {
            if let db { dependent.release(db: db) }
        }
        registryLock.withLock { dependents[ObjectIdentifier(dependent)] = nil }
    }

    func writeOptions(sync: Bool) -> OpaquePointer {
        sync ? syncWrites.pointer : asyncWrites.pointer
    }

    static func rawGet(db: OpaquePointer, readOptions: OpaquePointer, handle: OpaquePointer,
                       key: Data, path: String) throws -> Data? {
        var length = 0
        let value = try withCBytes(key) { k, kl in
            try rocksCall(path: path) { rocksdb_get_cf(db, readOptions, handle, k, kl, &length, $0) }
        }
        guard let value else { return nil }
        // Adopt RocksDB's malloc'ed buffer instead of copying it.
        return Data(bytesNoCopy: UnsafeMutableRawPointer(value), count: length,
                    deallocator: .custom { pointer, _ in rocksdb_free(pointer) })
    }

    /// RocksDB's batched `MultiGet`: one superversion for all the keys, and each memtable
    /// and table filter probed for the whole batch at once, so the cache misses of the probes
    /// overlap instead of following one another as in a loop of `Get`s.
    static func rawMultiGet(db: OpaquePointer, readOptions: OpaquePointer, handle: OpaquePointer,
                            keys: [Data], path: String) throws -> [Data?] {
        // Every key copied into one buffer (a block's prefetch is a thousand keys: a copy and
        // an allocation each would cost more than the lookup saves).
        var list = KeyList(reservingKeys: keys.count, bytes: keys.reduce(0) { $0 + $1.count })
        for key in keys { list.append(key) }
        return try rawMultiGet(db: db, readOptions: readOptions, handle: handle, keys: list, path: path)
    }

    static func rawMultiGet(db: OpaquePointer, readOptions: OpaquePointer, handle: OpaquePointer,
                            keys list: KeyList, path: String) throws -> [Data?] {
        let count = list.count
        if count == 0 { return [] }
        let ends = list.ends
        func offset(_ i: Int) -> Int { i == 0 ? 0 : ends[i - 1] }
        var values = [OpaquePointer?](repeating: nil, count: count)
        var errors = [UnsafeMutablePointer<CChar>?](repeating: nil, count: count)
        // The keys go to RocksDB in key order, which lets it skip sorting them itself: its
        // comparator sort was half of a thousand-key lookup, ours compares integers
        // (``keyOrder(_:_:_:)``). `values[k]` and `errors[k]` then belong to `order[k]`.
        var order: [Int] = []
        // When every key is empty their buffer has no address: a one-byte one stands in.
        let arena = list.bytes.isEmpty ? [0] : list.bytes
        let looked = arena.withUnsafeBytes { buffer -> Bool in
            guard let base = buffer.baseAddress else { return false }
            order = Self.keyOrder(count, base: base) { (offset($0), ends[$0] - offset($0)) }
            let keyPointers: [UnsafePointer<CChar>?] = order.map { (base + offset($0)).assumingMemoryBound(to: CChar.self) }
            let keySizes = order.map { ends[$0] - offset($0) }
            keyPointers.withUnsafeBufferPointer { k in
                keySizes.withUnsafeBufferPointer { ks in
                    rocksdb_batched_multi_get_cf(db, readOptions, handle, count, k.baseAddress, ks.baseAddress,
                                                 &values, &errors, true)
                }
            }
            return true
        }
        // Unreachable (the buffer holds at least one byte), but never answer "absent" unasked.
        guard looked else { throw StoreError.other("multiGet: no key buffer") }
        var firstError: StoreError?
        var result = [Data?](repeating: nil, count: count)
        for (k, i) in order.enumerated() {
            if let err = errors[k] {
                firstError = firstError ?? StoreError.fromRocksDB(String(cString: err), path: path)
                rocksdb_free(err)
            }
            if let value = values[k] {
                var length = 0
                let bytes = rocksdb_pinnableslice_value(value, &length)
                if let bytes, length > 0 { result[i] = Data(bytes: bytes, count: length) } else { result[i] = Data() }
                rocksdb_pinnableslice_destroy(value)
            }
        }
        if let firstError { throw firstError }
        return result
    }

    // MARK: Reads

    /// ``KeyValueReader/value(_:in:equals:)`` compared in RocksDB's pinned buffer: the node
    /// checks each decided block (tens of kilobytes) against its recorded copy before
    /// executing it, and copying the copy out cost a fresh allocation, its page faults and
    /// a second pass over the bytes.
    public func value(_ key: Data, in columnFamily: String, equals expected: Data) throws -> Bool? {
        try withOpen { db in
            let cf = try handle(columnFamily)
            let pinned = try withCBytes(key) { k, kl in
                try rocksCall(path: path) { rocksdb_get_pinned_cf(db, readOptions.pointer, cf, k, kl, $0) }
            }
            guard let pinned else { return nil }
            defer { rocksdb_pinnableslice_destroy(pinned) }
            var length = 0
            let value = rocksdb_pinnableslice_value(pinned, &length)
            guard length == expected.count else { return false }
            if length == 0 { return true }
            return expected.withUnsafeBytes { e in
                guard let value, let base = e.baseAddress else { return false }
                return memcmp(base, value, length) == 0
            }
        }
    }

    /// RocksDB's own report `name` about `columnFamily` (e.g. `rocksdb.cur-size-all-mem-tables`,
    /// `rocksdb.num-files-at-level0`, `rocksdb.stats`), or `nil` if RocksDB does not know
    /// the property.
    public func property(_ name: String, in columnFamily: String = defaultColumnFamily) throws -> String? {
        try withOpen { db in
            guard let value = rocksdb_property_value_cf(db, try handle(columnFamily), name) else { return nil }
            defer { rocksdb_free(value) }
            return String(cString: value)
        }
    }

    /// ``property(_:in:)`` read as an integer, summed over `columnFamilies` (all of them by
    /// default); `nil` if any of them does not report it as one.
    public func integerProperty(_ name: String, in columnFamilies: [String]? = nil) throws -> Int? {
        var total = 0
        for family in columnFamilies ?? self.columnFamilies {
            guard let text = try property(name, in: family), let value = Int(text) else { return nil }
            total += value
        }
        return total
    }

    /// The value of `key` in `columnFamily`, or `nil` if absent.
    public func get(_ key: Data, in columnFamily: String) throws -> Data? {
        try withOpen { db in
            try Database.rawGet(db: db, readOptions: readOptions.pointer, handle: handle(columnFamily),
                                key: key, path: path)
        }
    }

    /// The values of `keys` in `columnFamily` (same order; `nil` for absent keys),
    /// read at one consistent point in time.
    public func multiGet(_ keys: [Data], in columnFamily: String = defaultColumnFamily) throws -> [Data?] {
        try withOpen { db in
            try Database.rawMultiGet(db: db, readOptions: readOptions.pointer, handle: handle(columnFamily),
                                     keys: keys, path: path)
        }
    }

    /// The values of the keys of `keys` in `columnFamily`, in order (`nil` = absent).
    public func multiGet(_ keys: KeyList, in columnFamily: String = defaultColumnFamily) throws -> [Data?] {
        try withOpen { db in
            try Database.rawMultiGet(db: db, readOptions: readOptions.pointer, handle: handle(columnFamily),
                                     keys: keys, path: path)
        }
    }

    /// Iterates `range` of `columnFamily`. The iterator sees the database as of its
    /// creation (RocksDB pins an implicit snapshot).
    public func scan(_ columnFamily: String, _ range: KeyRange, direction: ScanDirection) throws -> StoreIterator {
        try scan(columnFamily, range, direction: direction, snapshot: nil)
    }

    /// Iterates `range` of `columnFamily`, optionally as of `snapshot`.
    public func scan(_ columnFamily: String, _ range: KeyRange, direction: ScanDirection = .forward,
                     snapshot: DatabaseSnapshot?) throws -> StoreIterator {
        let cursor = try makeCursor(columnFamily: columnFamily, lowerBound: range.lower,
                                    upperBound: range.upper, snapshot: snapshot)
        return StoreIterator(RangeSource(cursor: cursor, range: range, direction: direction))
    }

    /// A low-level cursor over `columnFamily` (seek / seekForPrev / next / prev).
    /// `lowerBound` (inclusive) and `upperBound` (exclusive) are enforced by RocksDB
    /// (`iterate_lower_bound` / `iterate_upper_bound`): the cursor becomes invalid
    /// outside them, and RocksDB can skip tombstones beyond them.
    public func makeCursor(columnFamily: String, lowerBound: Data? = nil, upperBound: Data? = nil,
                           snapshot: DatabaseSnapshot? = nil) throws -> Cursor {
        if let snapshot, snapshot.database !== self {
            throw StoreError.invalidArgument("snapshot belongs to another database")
        }
        return try withOpen { db in
            let cf = try handle(columnFamily)
            let box = IteratorHandle(verifyChecksums: settings.verifyChecksums,
                                     lowerBound: lowerBound, upperBound: upperBound)
            if let snapshot {
                guard let snap = snapshot.handle.snapshot else { throw StoreError.closed }
                rocksdb_readoptions_set_snapshot(box.readOptions.pointer, snap)
            }
            box.iterator = rocksdb_create_iterator_cf(db, box.readOptions.pointer, cf)
            register(box)
            return Cursor(database: self, handle: box, snapshot: snapshot)
        }
    }

    /// A consistent point-in-time view; released when the last reference goes away
    /// (or at `close()`).
    public func snapshot() throws -> DatabaseSnapshot {
        try withOpen { db in
            let box = SnapshotHandle(verifyChecksums: settings.verifyChecksums)
            box.snapshot = rocksdb_create_snapshot(db)
            rocksdb_readoptions_set_snapshot(box.readOptions.pointer, box.snapshot)
            register(box)
            return DatabaseSnapshot(database: self, handle: box)
        }
    }

    // MARK: Writes

    /// Sets `key = value` in `columnFamily`. `sync: true` (default) returns only once
    /// the WAL is fsync'ed. For several related writes use one `WriteBatch`.
    public func put(_ key: Data, _ value: Data, in columnFamily: String = defaultColumnFamily,
                    sync: Bool = true) throws {
        try withOpen { db in
            let cf = try handle(columnFamily)
            try withCBytes(key) { k, kl in
                try withCBytes(value) { v, vl in
                    try rocksCall(path: path) { rocksdb_put_cf(db, writeOptions(sync: sync), cf, k, kl, v, vl, $0) }
                }
            }
        }
    }

    /// Removes `key` from `columnFamily` (no error if absent). `sync` as in `put`.
    public func delete(_ key: Data, in columnFamily: String = defaultColumnFamily, sync: Bool = true) throws {
        try withOpen { db in
            let cf = try handle(columnFamily)
            try withCBytes(key) { k, kl in
                try rocksCall(path: path) { rocksdb_delete_cf(db, writeOptions(sync: sync), cf, k, kl, $0) }
            }
        }
    }

    /// A cleared native batch (reused if one is spare).
    private func takeSpareBatch() -> NativeWriteBatch {
        registryLock.lock()
        defer { registryLock.unlock() }
        return spareBatches.popLast() ?? NativeWriteBatch()
    }

    /// Clears `batch` and keeps it for the next write, unless it grew past 64 MiB (a rare
    /// huge batch, e.g. a genesis, should not pin its buffer for the process's life).
    private func returnSpareBatch(_ batch: NativeWriteBatch) {
        var size = 0
        _ = rocksdb_writebatch_data(batch.pointer, &size)
        guard size <= 64 << 20 else { return }
        rocksdb_writebatch_clear(batch.pointer)
        registryLock.lock()
        defer { registryLock.unlock() }
        if spareBatches.count < 2 { spareBatches.append(batch) }
    }

    /// Applies `batch` atomically: one WAL record, all operations or none, visible to
    /// readers all at once.
    ///
    /// `sync` defaults to `true` — the call returns only after the WAL is fsync'ed, so
    /// an acknowledged commit survives a crash or power loss. Pass `false` only for
    /// data that can be rebuilt; a crash may then lose the latest writes (still
    /// whole batches, never part of one).
    ///
    /// - Throws: `.unknownColumnFamily` (before anything is written) or a RocksDB error.
    public func write(_ batch: WriteBatch, sync: Bool = true) throws {
        try withOpen { db in
            // Resolve every column family first: a bad name must fail the whole batch.
            let cfs = try batch.families.map { try handle($0) }
            let native = takeSpareBatch()
            defer { returnSpareBatch(native) }
            batch.withBytes { base in
                // RocksDB inserts a batch into each memtable's skip list one key after another,
                // resuming the search where the previous key went: keys in order cost a short
                // walk each, keys in a dictionary's order a search from the top (raw RocksDB
                // took ~20 % longer for a block's commit batch in that order). Operations on
                // different keys commute inside one atomic batch, so they are put in key
                // order; those on the same key keep their order. A range delete does not
                // commute with the puts it covers, so a batch holding one is written as queued.
                if batch.hasRangeDelete || batch.count < 2 {
                    for entry in batch.entries { Self.append(entry, base: base, cf: cfs[entry.family], to: native) }
                } else {
                    let family = cfs.map { UInt(bitPattern: Int(bitPattern: $0)) }
                    batch.entries.withUnsafeBufferPointer { entries in
                        let order = Self.keyOrder(entries.count, base: base, family: { family[entries[$0].family] }) {
                            (entries[$0].keyStart, entries[$0].keyCount)
                        }
                        for i in order { Self.append(entries[i], base: base, cf: cfs[entries[i].family], to: native) }
                    }
                }
            }
            try rocksCall(path: path) { rocksdb_write(db, writeOptions(sync: sync), native.pointer, $0) }
        }
    }
}

extension Database {
    /// The positions `0..<count` ordered by family (when given), then by the key at
    /// `base + key(i).offset` (of `key(i).count` bytes) in bytewise order, then by position:
    /// RocksDB's order. Nearly every comparison is settled by the keys' first 16 bytes read
    /// as two big-endian integers (zero-padded, which never contradicts byte order); only keys
    /// equal that far are compared by `memcmp`.
    static func keyOrder(_ count: Int, base: UnsafeRawPointer, family: ((Int) -> UInt)? = nil,
                         key: (Int) -> (offset: Int, count: Int)) -> [Int] {
        struct Slot {
            var family: UInt
            var head: (UInt64, UInt64)
            var offset: Int
            var count: Int
            var index: Int
        }
        var slots = (0..<count).map { i in
            let (offset, length) = key(i)
            return Slot(family: family?(i) ?? 0, head: prefixWords(base + offset, length), offset: offset, count: length, index: i)
        }
        slots.sort { x, y in
            if x.family != y.family { return x.family < y.family }
            if x.head.0 != y.head.0 { return x.head.0 < y.head.0 }
            if x.head.1 != y.head.1 { return x.head.1 < y.head.1 }
            let c = memcmp(base + x.offset, base + y.offset, min(x.count, y.count))
            if c != 0 { return c < 0 }
            if x.count != y.count { return x.count < y.count }
            return x.index < y.index
        }
        return slots.map(\.index)
    }

    /// The first 16 bytes at `key` (of `count`), zero-padded, as two big-endian words.
    fileprivate static func prefixWords(_ key: UnsafeRawPointer, _ count: Int) -> (UInt64, UInt64) {
        var words: (UInt64, UInt64) = (0, 0)
        withUnsafeMutableBytes(of: &words) { $0.copyMemory(from: UnsafeRawBufferPointer(start: key, count: min(count, 16))) }
        return (UInt64(bigEndian: words.0), UInt64(bigEndian: words.1))
    }

    /// Adds one operation, whose bytes lie at `base`, to a native batch.
    fileprivate static func append(_ entry: WriteBatch.Entry, base: UnsafeRawPointer, cf: OpaquePointer,
                                   to native: NativeWriteBatch) {
        let key = (base + entry.keyStart).assumingMemoryBound(to: CChar.self)
        let value = (base + entry.valueStart).assumingMemoryBound(to: CChar.self)
        switch entry.kind {
        case .put:
            rocksdb_writebatch_put_cf(native.pointer, cf, key, entry.keyCount, value, entry.valueCount)
        case .delete:
            rocksdb_writebatch_delete_cf(native.pointer, cf, key, entry.keyCount)
        case .deleteRange:
            // RocksDB leaves an inverted range undefined; the empty range is a no-op.
            let n = min(entry.keyCount, entry.valueCount)
            let c = memcmp(key, value, n)
            guard c < 0 || (c == 0 && entry.keyCount < entry.valueCount) else { return }
            rocksdb_writebatch_delete_range_cf(native.pointer, cf, key, entry.keyCount, value, entry.valueCount)
        }
    }
}
