import CRocksDB

/// Every failure surfaced by `IshtarStore`. RocksDB reports errors as free-form
/// `Status::ToString()` strings through `char** errptr`; they are classified here so
/// callers (node, signer records, watcher) can react to *kinds* of failure instead of
/// parsing text. The original RocksDB message is kept wherever there is one, because
/// operators need it verbatim to diagnose a broken data directory.
public enum StoreError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Another process (or another open `Database` in this process) holds the
    /// database's `LOCK` file. The associated value is the database path.
    case lockHeld(String)
    /// RocksDB detected corrupt on-disk state (bad `CURRENT`/`MANIFEST`, checksum
    /// mismatch, …). Never retried automatically: continuing could lose funds.
    case corruption(String)
    /// RocksDB reported a `NotFound` status for something other than a key lookup
    /// (a missing key is `nil`, not an error).
    case notFound(String)
    /// The directory that should contain the database does not exist, so
    /// `createIfMissing` cannot help (RocksDB creates only the last path component).
    /// The associated value is the missing directory.
    case missingDirectory(String)
    /// RocksDB rejected an argument or option (e.g. opening a non-existent database
    /// with `createIfMissing == false`), or the wrapper rejected one itself.
    case invalidArgument(String)
    /// An I/O error from the filesystem (disk full, permission denied, …).
    case ioError(String)
    /// The column family name was not opened on this store.
    case unknownColumnFamily(String)
    /// The store (or the snapshot/iterator's store) was closed; the handle is unusable.
    case closed
    /// Any other RocksDB status (`Busy`, `TimedOut`, `Aborted`, …), message verbatim.
    case other(String)

    /// A one-line human-readable form, RocksDB's message included.
    public var description: String {
        switch self {
        case .lockHeld(let path): return "database lock held by another user: \(path)"
        case .corruption(let m): return "corruption: \(m)"
        case .notFound(let m): return "not found: \(m)"
        case .missingDirectory(let p): return "missing directory: \(p)"
        case .invalidArgument(let m): return "invalid argument: \(m)"
        case .ioError(let m): return "I/O error: \(m)"
        case .unknownColumnFamily(let n): return "unknown column family: \(n)"
        case .closed: return "store is closed"
        case .other(let m): return m
        }
    }

    /// Classifies a RocksDB status string. `path` is the database path, reported for
    /// lock errors so that the message names the contested directory.
    ///
    /// The lock check comes first: RocksDB reports a held lock as an `IO error`
    /// ("While lock file: …: Resource temporarily unavailable", or "lock hold by
    /// current process" for a second open inside one process), and it must not be
    /// mistaken for a generic I/O failure — a held lock means "another node is
    /// running", which the caller handles very differently from a broken disk.
    static func fromRocksDB(_ message: String, path: String) -> StoreError {
        let lower = message.lowercased()
        if lower.contains("while lock file") || lower.contains("lock hold by current process")
            || (lower.contains("lock") && lower.contains("resource temporarily unavailable"))
            || lower.contains("no locks available") {
            return .lockHeld(path)
        }
        if message.hasPrefix("Corruption:") { return .corruption(message) }
        if message.hasPrefix("NotFound:") { return .notFound(message) }
        if message.hasPrefix("Invalid argument:") { return .invalidArgument(message) }
        if message.hasPrefix("IO error:") { return .ioError(message) }
        return .other(message)
    }
}

/// Runs one RocksDB C call that reports failure through `char** errptr`, frees the
/// error string with `rocksdb_free` (it was malloc'ed by RocksDB, which may use a
/// different allocator than Swift's) and throws it as a typed `StoreError`.
@inline(__always)
func rocksCall<R>(
    path: String,
    _ body: (UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) throws -> R
) throws -> R {
    var err: UnsafeMutablePointer<CChar>? = nil
    let result = try body(&err)
    if let err {
        let message = String(cString: err)
        rocksdb_free(err)
        throw StoreError.fromRocksDB(message, path: path)
    }
    return result
}
