import CJemalloc

/// The process's memory allocator: jemalloc, linked into every binary that uses
/// IshtarStore so that it serves `malloc` and `free` for Swift, RocksDB and everything else
/// in the process. RocksDB's own guidance is to run it on jemalloc (less fragmentation
/// under its allocation pattern), and block execution allocates and frees many small
/// buffers, which jemalloc's per-thread caches serve faster than glibc's allocator did
/// (`Scripts/bench`: block execution ~9 % and finality votes ~5 % faster, measured
/// side by side).
public enum MemoryAllocator {
    /// jemalloc's version string (for example `5.3.0-0-g54eaed1d…`), or `nil` if its control
    /// interface does not answer — which would mean it is not the allocator linked in.
    public static var version: String? {
        var pointer: UnsafePointer<CChar>?
        var length = MemoryLayout<UnsafePointer<CChar>?>.size
        guard mallctl("version", &pointer, &length, nil, 0) == 0, let pointer else { return nil }
        return String(cString: pointer)
    }

    /// Bytes allocated and not yet freed, as jemalloc last counted them (its statistics are
    /// refreshed first), or `nil` if this jemalloc was built without statistics.
    public static func allocatedBytes() -> Int? {
        // Writing the epoch makes jemalloc refresh the statistics it reports.
        var epoch: UInt64 = 1
        guard mallctl("epoch", nil, nil, &epoch, MemoryLayout<UInt64>.size) == 0 else { return nil }
        var allocated = 0
        var length = MemoryLayout<Int>.size
        guard mallctl("stats.allocated", &allocated, &length, nil, 0) == 0 else { return nil }
        return allocated
    }
}
