import CRocksDB

/// How `Database.open` configures RocksDB. The defaults are the ones the node uses:
/// safety first (paranoid checks, checksum-verified reads, point-in-time WAL
/// recovery), then read performance (bloom filters, a shared block cache).
public struct DatabaseOptions: Sendable, Equatable {
    /// Create the database directory (last path component only) if it does not exist.
    public var createIfMissing = true
    /// Column families the caller wants, created if missing. Every column family that
    /// already exists on disk is opened as well (RocksDB refuses to open otherwise), and
    /// `"default"` is always present.
    public var columnFamilies: [String] = []
    /// RocksDB `paranoid_checks`: fail loudly (and stop writes) on any detected
    /// inconsistency instead of carrying on — wrong data is worse than no data here.
    public var paranoidChecks = true
    /// Verify block checksums on every read (RocksDB default; kept explicit).
    public var verifyChecksums = true
    /// Bits per key of a full bloom filter on every table, or `nil` for no filter.
    /// 10 bits ≈ 1% false positives: point lookups of absent keys skip disk reads.
    public var bloomFilterBitsPerKey: Double? = 10
    /// Capacity in bytes of an LRU block cache shared by the column families, or `nil`
    /// to keep RocksDB's built-in default (an 8 MiB cache per table factory).
    public var blockCacheBytes: Int? = 64 << 20
    /// Background threads for flushes/compactions (`increase_parallelism`), or `nil`
    /// for RocksDB's default.
    public var backgroundThreads: Int? = nil
    /// How many old info `LOG` files RocksDB keeps in the database directory.
    public var keepLogFiles = 5
    /// Length of the key prefix hashed into a bloom filter over each memtable, or `nil` for
    /// none. A point lookup of an absent key (the first transaction of a new account) then
    /// skips the memtable's skip list instead of searching it — that search was half the
    /// cost of such a read. Keys shorter than this are always searched. Iterators are
    /// unaffected (they always seek in total order).
    public var memtableBloomPrefixBytes: Int? = 16
    /// Whether the memtable's bloom filter holds whole keys too, answering point lookups by
    /// the whole key instead of its prefix. Keys made per height (a height's vote list, its
    /// tally, its finalized hash) share their prefix with every earlier height's, so the
    /// prefix filter always said "maybe" and each block's first read of them searched the
    /// skip list — over half of such a read, and a few per block. Iterators are unaffected.
    public var memtableWholeKeyBloom = true
    /// Column families whose memtables get no bloom filter at all: families written with
    /// many keys and rarely asked for an absent one (the chain's blocks, results and
    /// transaction index). A bloom filter costs every insert a cache miss or two and pays
    /// only on point lookups of absent keys.
    public var columnFamiliesWithoutMemtableBloom: Set<String> = []
    /// On `close()`, flush memtables to SST files (after the WAL sync) so the next
    /// open does not have to replay the WAL. Durability does not depend on it.
    public var flushMemtablesOnClose = true

    /// The defaults described on each property.
    public init() {}

    /// Defaults plus the given column families.
    public init(columnFamilies: [String]) {
        self.columnFamilies = columnFamilies
    }

    /// Builds the C options: for the database and every column family, or (`memtableBloom`
    /// false) for the families in ``columnFamiliesWithoutMemtableBloom``.
    func makeNative(memtableBloom: Bool = true) -> NativeOptions {
        let native = NativeOptions()
        let p = native.pointer
        rocksdb_options_set_create_if_missing(p, createIfMissing ? 1 : 0)
        rocksdb_options_set_create_missing_column_families(p, 1)
        rocksdb_options_set_paranoid_checks(p, paranoidChecks ? 1 : 0)
        // Point-in-time recovery: after a crash, recover every complete WAL record up
        // to the first damaged one and nothing after it — a torn final batch is
        // dropped whole, never half-applied.
        rocksdb_options_set_wal_recovery_mode(p, Int32(rocksdb_point_in_time_recovery))
        rocksdb_options_set_keep_log_file_num(p, keepLogFiles)
        if let backgroundThreads { rocksdb_options_increase_parallelism(p, Int32(backgroundThreads)) }

        let prefixBloom = (memtableBloomPrefixBytes ?? 0) > 0
        if let prefix = memtableBloomPrefixBytes, prefix > 0 {
            // Ownership of the transform passes to the options (shared_ptr).
            rocksdb_options_set_prefix_extractor(p, rocksdb_slicetransform_create_fixed_prefix(prefix))
        }
        if memtableBloom, prefixBloom || memtableWholeKeyBloom {
            // One filter per memtable, sized as a share of the memtable; it holds prefixes,
            // whole keys or both.
            rocksdb_options_set_memtable_prefix_bloom_size_ratio(p, 0.05)
            rocksdb_options_set_memtable_whole_key_filtering(p, memtableWholeKeyBloom ? 1 : 0)
        }

        let table = NativeBlockBasedOptions()
        if let bits = bloomFilterBitsPerKey {
            // Ownership of the policy passes to the table options (shared_ptr).
            rocksdb_block_based_options_set_filter_policy(table.pointer, rocksdb_filterpolicy_create_bloom_full(bits))
        }
        if let bytes = blockCacheBytes {
            let cache = NativeCache(capacity: bytes)
            rocksdb_block_based_options_set_block_cache(table.pointer, cache.pointer)
        }
        // Copies the table options into a new factory held by `p`.
        rocksdb_options_set_block_based_table_factory(p, table.pointer)
        return native
    }
}
