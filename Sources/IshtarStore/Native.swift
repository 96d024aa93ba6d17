import CRocksDB
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Thin owners of RocksDB C handles. Each class frees exactly one handle in `deinit`,
// so a handle can never leak or be freed twice, whatever path (throw, early return)
// the caller takes. They are internal: the public API never hands out raw pointers.

/// Owns a `rocksdb_options_t`. Not Sendable: options are mutable builders and are only
/// used on the thread that opens the database.
final class NativeOptions {
    let pointer: OpaquePointer
    init() { pointer = rocksdb_options_create() }
    deinit { rocksdb_options_destroy(pointer) }
}

/// Owns a `rocksdb_block_based_table_options_t`. RocksDB copies it into the table
/// factory in `rocksdb_options_set_block_based_table_factory`, so it may be freed right
/// after configuring the options.
final class NativeBlockBasedOptions {
    let pointer: OpaquePointer
    init() { pointer = rocksdb_block_based_options_create() }
    deinit { rocksdb_block_based_options_destroy(pointer) }
}

/// Owns the C wrapper of an LRU block cache. The table options keep their own
/// `shared_ptr` to the cache, so freeing this wrapper does not free the cache in use.
final class NativeCache {
    let pointer: OpaquePointer
    init(capacity: Int) { pointer = rocksdb_cache_create_lru(capacity) }
    deinit { rocksdb_cache_destroy(pointer) }
}

/// Owns a `rocksdb_writeoptions_t`.
/// `@unchecked Sendable`: it is configured once in `init` and never mutated again;
/// RocksDB only reads it (by const reference) during writes, so concurrent use is safe.
final class NativeWriteOptions: @unchecked Sendable {
    let pointer: OpaquePointer
    init(sync: Bool) {
        pointer = rocksdb_writeoptions_create()
        rocksdb_writeoptions_set_sync(pointer, sync ? 1 : 0)
    }
    deinit { rocksdb_writeoptions_destroy(pointer) }
}

/// Owns a `rocksdb_readoptions_t`.
/// `@unchecked Sendable`: configured once in `init`, then only read (by const
/// reference) by RocksDB, so sharing it between threads is safe.
final class NativeReadOptions: @unchecked Sendable {
    let pointer: OpaquePointer
    init(verifyChecksums: Bool) {
        pointer = rocksdb_readoptions_create()
        rocksdb_readoptions_set_verify_checksums(pointer, verifyChecksums ? 1 : 0)
        // Iterators ignore the prefix extractor (``DatabaseOptions/memtableBloomPrefixBytes``):
        // our scans cross prefixes, and a prefix-mode seek may skip keys outside the first.
        rocksdb_readoptions_set_total_order_seek(pointer, 1)
    }
    deinit { rocksdb_readoptions_destroy(pointer) }
}

/// Owns a `rocksdb_writebatch_t`. Not Sendable: a RocksDB WriteBatch is not
/// thread-safe; it is built and written on one thread inside `Database.write`.
final class NativeWriteBatch {
    let pointer: OpaquePointer
    init() { pointer = rocksdb_writebatch_create() }
    deinit { rocksdb_writebatch_destroy(pointer) }
}

/// Owns a `rocksdb_column_family_handle_t`.
///
/// RocksDB requires every column-family handle to be destroyed *before*
/// `rocksdb_close`, so `Database.close()` calls `release()` explicitly, in order;
/// `deinit` is the backstop for paths that never reach `close()` (e.g. a failed open).
/// `@unchecked Sendable`: the pointer is only read under the database's shared lock
/// and released under its exclusive lock.
final class ColumnFamilyHandle: @unchecked Sendable {
    private(set) var pointer: OpaquePointer?
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
    func release() {
        if let pointer { rocksdb_column_family_handle_destroy(pointer) }
        pointer = nil
    }
    deinit { release() }
}

/// A readers–writer lock guarding a database's C handles.
///
/// Why: RocksDB's `rocksdb_t` is thread-safe for concurrent reads and writes, but
/// `rocksdb_close` (and releasing iterators/snapshots it owns) must not run while
/// another thread is inside a call on the same handle. Ordinary operations take the
/// shared side, `close()` takes the exclusive side, so a close waits for in-flight
/// operations and every later operation sees `.closed` instead of a dangling pointer.
final class ReadWriteLock: @unchecked Sendable {
    // Heap-allocated so the pthread object never moves (Swift may move stored values).
    private let lock: UnsafeMutablePointer<pthread_rwlock_t>

    init() {
        lock = .allocate(capacity: 1)
        lock.initialize(to: pthread_rwlock_t())
        pthread_rwlock_init(lock, nil)
    }

    deinit {
        pthread_rwlock_destroy(lock)
        lock.deinitialize(count: 1)
        lock.deallocate()
    }

    func withReadLock<R>(_ body: () throws -> R) rethrows -> R {
        pthread_rwlock_rdlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body()
    }

    func withWriteLock<R>(_ body: () throws -> R) rethrows -> R {
        pthread_rwlock_wrlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body()
    }
}

/// Calls `body` with a pointer to `data`'s bytes and their count. An empty `Data` has
/// no base address; RocksDB builds a `Slice` from the pointer, so a valid (if unused)
/// pointer is substituted rather than passing NULL.
@inline(__always)
func withCBytes<R>(_ data: Data, _ body: (UnsafePointer<CChar>, Int) throws -> R) rethrows -> R {
    try data.withUnsafeBytes { raw in
        if let base = raw.baseAddress, raw.count > 0 {
            return try body(base.assumingMemoryBound(to: CChar.self), raw.count)
        }
        var zero: CChar = 0
        return try withUnsafePointer(to: &zero) { try body($0, 0) }
    }
}

/// A malloc'ed copy of some bytes whose address stays fixed. Needed for iterator
/// bounds: `rocksdb_readoptions_set_iterate_upper_bound` keeps a *pointer* to the key
/// bytes (no copy), so they must outlive the iterator.
final class PinnedBytes {
    let pointer: UnsafeMutablePointer<CChar>
    let count: Int
    init(_ data: Data) {
        count = data.count
        pointer = .allocate(capacity: max(1, data.count))
        data.withUnsafeBytes { raw in
            if let base = raw.baseAddress, raw.count > 0 {
                pointer.update(from: base.assumingMemoryBound(to: CChar.self), count: raw.count)
            }
        }
    }
    deinit { pointer.deallocate() }
}
