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
        let writer = try Writer(path: path, sync: sync)
        var total = Duration.zero
        for entries in batches { total += try writer.write(entries) }
        return total
    }

    /// One open raw database, for benchmarks that pair each of their writes with the raw
    /// write of the same bytes right after it (so both see the same machine state).
    public final class Writer {
        private let path: String
        private let db: OpaquePointer
        private let options: OpaquePointer
        private let writeOptions: OpaquePointer
        private let batch: OpaquePointer

        /// Opens (creating) a database at `path` with RocksDB's default options plus
        /// `create_if_missing`; every write fsyncs the WAL if `sync`.
        public init(path: String, sync: Bool) throws {
            guard let options = rocksdb_options_create(), let writeOptions = rocksdb_writeoptions_create(),
                  let batch = rocksdb_writebatch_create() else {
                throw StoreError.other("rocksdb option allocation failed")
            }
            rocksdb_options_set_create_if_missing(options, 1)
            rocksdb_writeoptions_set_sync(writeOptions, sync ? 1 : 0)
            self.options = options
            self.writeOptions = writeOptions
            self.batch = batch
            self.path = path
            guard let db = try rocksCall(path: path, { rocksdb_open(options, path, $0) }) else {
                rocksdb_writebatch_destroy(batch)
                rocksdb_writeoptions_destroy(writeOptions)
                rocksdb_options_destroy(options)
                throw StoreError.other("rocksdb_open returned no handle")
            }
            self.db = db
        }

        /// RocksDB's report `name` about the default family, as an integer (`nil` if unknown
        /// or not a number): so a benchmark can say what state the baseline was in.
        public func integerProperty(_ name: String) -> Int? {
            guard let value = rocksdb_property_value(db, name) else { return nil }
            defer { rocksdb_free(value) }
            return Int(String(cString: value))
        }

        deinit {
            rocksdb_close(db)
            rocksdb_writebatch_destroy(batch)
            rocksdb_writeoptions_destroy(writeOptions)
            rocksdb_options_destroy(options)
        }

        /// Writes `entries` as one `rocksdb_write` to the default column family and returns
        /// the time taken (batch building included, as a caller's batch would be).
        public func write(_ entries: [(key: [UInt8], value: [UInt8])]) throws -> Duration {
            let clock = ContinuousClock()
            let start = clock.now
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
            return clock.now - start
        }
    }
}
