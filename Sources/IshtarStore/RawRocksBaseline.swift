import CRocksDB
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Raw RocksDB writes with no Swift wrapper in the way — a baseline so a benchmark can
/// report, in the same run on the same machine, how much `Database`/`WriteBatch` cost
/// on top of RocksDB itself.
///
/// Deliberately minimal and unsafe-by-convention (no column families, no typed
/// errors beyond a message): it exists only for benchmarks.
public enum RawRocksBaseline {
    /// Opens (creating) a database at `path` with RocksDB's default options plus
    /// `create_if_missing`, writes every batch of `batches` as one `rocksdb_write` to
    /// the default column family (with WAL fsync if `sync`), closes it, and returns
    /// the time spent in the write loop only (open and close excluded).
    ///
    /// Keys and values are `[UInt8]` so the loop measures RocksDB, not `Data` bridging.
    /// - Throws: `StoreError` from open or the first failed write.
    public static func writeBatches(path: String, batches: [[(key: [UInt8], value: [UInt8])]],
                                    sync: Bool) throws -> Duration {
        let options = rocksdb_options_create()
        defer { rocksdb_options_destroy(options) }
        rocksdb_options_set_create_if_missing(options, 1)
        let writeOptions = rocksdb_writeoptions_create()
        defer { rocksdb_writeoptions_destroy(writeOptions) }
        rocksdb_writeoptions_set_sync(writeOptions, sync ? 1 : 0)

        guard let db = try rocksCall(path: path, { rocksdb_open(options, path, $0) }) else {
            throw StoreError.other("rocksdb_open returned no handle")
        }
        defer { rocksdb_close(db) }
        let batch = rocksdb_writebatch_create()
        defer { rocksdb_writebatch_destroy(batch) }

        let clock = ContinuousClock()
        let start = clock.now
        for entries in batches {
            rocksdb_writebatch_clear(batch)
            for entry in entries {
                entry.key.withUnsafeBufferPointer { k in
                    entry.value.withUnsafeBufferPointer { v in
                        k.withMemoryRebound(to: CChar.self) { k in
                            v.withMemoryRebound(to: CChar.self) { v in
                                rocksdb_writebatch_put(batch, k.baseAddress, k.count, v.baseAddress, v.count)
                            }
                        }
                    }
                }
            }
            var err: UnsafeMutablePointer<CChar>? = nil
            rocksdb_write(db, writeOptions, batch, &err)
            if let err {
                let message = String(cString: err)
                rocksdb_free(err)
                throw StoreError.fromRocksDB(message, path: path)
            }
        }
        return clock.now - start
    }
}
