import Foundation
import IshtarStore
import Synchronization

/// Whether `a` sorts before `b` byte-wise (shorter first on a common prefix): the order of
/// RocksDB's default comparator, by `memcmp` instead of a generic element-by-element walk
/// (sorting a block's writes was an eighth of block execution).
@inline(__always)
func bytesPrecede(_ a: Data, _ b: Data) -> Bool {
    let n = min(a.count, b.count)
    let c = a.withUnsafeBytes { pa in
        b.withUnsafeBytes { pb in n == 0 ? 0 : memcmp(pa.baseAddress!, pb.baseAddress!, n) }
    }
    return c != 0 ? c < 0 : a.count < b.count
}

/// Whether `data` begins with `prefix` (`memcmp`, not an element walk).
@inline(__always)
func bytesStart(_ data: Data, with prefix: Data) -> Bool {
    guard data.count >= prefix.count else { return false }
    if prefix.isEmpty { return true }
    return data.withUnsafeBytes { d in
        prefix.withUnsafeBytes { p in memcmp(d.baseAddress!, p.baseAddress!, p.count) == 0 }
    }
}

/// Whether two buffers hold the same bytes (`memcmp`, not an element-by-element walk).
@inline(__always)
func sameBytes(_ x: UnsafeRawBufferPointer, _ y: UnsafeRawBufferPointer) -> Bool {
    guard x.count == y.count else { return false }
    guard let p = x.baseAddress, let q = y.baseAddress else { return true }  // both empty
    return memcmp(p, q, x.count) == 0
}

/// Whether two byte strings are equal, by `memcmp` (Foundation's `==` on `Data` walks both
/// with iterators: ~500 instructions for two 32-byte hashes, a few times per vote).
@inline(__always)
func sameBytes(_ a: Data, _ b: Data) -> Bool {
    guard a.count == b.count else { return false }
    return a.withUnsafeBytes { x in b.withUnsafeBytes { y in sameBytes(x, y) } }
}

/// `a ‖ b` in one allocation (`+` on `Data` grows the left operand's copy instead).
@inline(__always)
func joined(_ a: Data, _ b: Data) -> Data {
    var d = Data(capacity: a.count + b.count)
    d.append(a)
    d.append(b)
    return d
}

/// A module state key with its module prefix joined and its hash computed (see
/// ``ModuleStore/key(_:)``); valid only with a store of the module that made it (debug
/// builds check).
public struct StateKey: Hashable, Sendable {
    let full: HashedBytes

    init(full: HashedBytes) { self.full = full }

    /// `key` of `module`: for a module's constant keys (its parameters), built once per
    /// process.
    init(module: String, _ key: Data) { full = HashedBytes(joining: ModuleStore.prefix(of: module), key) }

    /// `"<module>/" ‖ prefix ‖ build's bytes`, assembled in one buffer: for keys made per
    /// message (a module key joined to the module prefix afterwards costs two more
    /// allocations).
    init(module: StaticString, _ prefix: StaticString, _ build: (inout [UInt8]) -> Void) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(128)
        module.withUTF8Buffer { bytes.append(contentsOf: $0) }
        bytes.append(UInt8(ascii: "/"))
        prefix.withUTF8Buffer { bytes.append(contentsOf: $0) }
        build(&bytes)
        full = HashedBytes(bytes)
    }
}

/// Bytes with their hash computed once, as a map key. A state read walks up to three maps
/// (transaction overlay, block overlay, committed cache) and a write is re-inserted at every
/// merge; hashing the bytes at each step was a sizeable share of executing a transaction.
///
/// The bytes are a Swift array, not `Data`: a `Data`'s bytes are reached through a Foundation
/// class whose every access is checked for exclusivity at run time, and comparing two keys
/// that way was half of each of the ~30 map lookups of a finality vote.
struct HashedBytes: Hashable {
    let bytes: [UInt8]
    private let hash: Int

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
        var hasher = Hasher()
        bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
        hash = hasher.finalize()
    }

    init(_ data: Data) { self.init(joining: data, Data()) }

    /// `a ‖ b` in one buffer, copied with `memcpy` (`[UInt8](data)` walks a `Data` with its
    /// iterator, ~600 instructions for a key).
    init(joining a: Data, _ b: Data) {
        let bytes = [UInt8](unsafeUninitializedCapacity: a.count + b.count) { buffer, count in
            count = a.copyBytes(to: buffer)
            count += b.copyBytes(to: UnsafeMutableBufferPointer(rebasing: buffer[count...]))
        }
        self.init(bytes)
    }

    /// The bytes as `Data`, for the store (a copy).
    var data: Data { Data(bytes) }

    /// Whether the bytes begin with `prefix`.
    func starts(with prefix: Data) -> Bool {
        guard bytes.count >= prefix.count else { return false }
        return bytes.withUnsafeBytes { b in
            prefix.withUnsafeBytes { p in sameBytes(UnsafeRawBufferPointer(rebasing: b.prefix(p.count)), p) }
        }
    }

    /// Whether the bytes begin with `prefix`.
    func starts(with prefix: [UInt8]) -> Bool {
        guard bytes.count >= prefix.count else { return false }
        return bytes.withUnsafeBytes { b in
            prefix.withUnsafeBytes { p in sameBytes(UnsafeRawBufferPointer(rebasing: b.prefix(p.count)), p) }
        }
    }

    func hash(into hasher: inout Hasher) { hasher.combine(hash) }

    /// What `Dictionary` and `Set` ask for: the stored hash mixed with their per-table seed
    /// by a 64-bit finalizer instead of a second SipHash round over it (which was a third of
    /// every lookup, ~30 lookups a finality vote). The stored hash is already SipHash of the
    /// bytes under the process's random key, so this keeps collision resistance; mixing in
    /// the seed keeps each table's bucket order its own (copying one table into another of
    /// another size does not cluster).
    func _rawHashValue(seed: Int) -> Int {
        var x = UInt64(bitPattern: Int64(hash ^ seed))
        x ^= x >> 33
        x &*= 0xff51_afd7_ed55_8ccd
        x ^= x >> 33
        x &*= 0xc4ce_b9fe_1a85_ec53
        x ^= x >> 33
        return Int(Int64(bitPattern: x))
    }

    static func == (a: HashedBytes, b: HashedBytes) -> Bool {
        // memcmp of the two buffers: an element-by-element walk took most of a lookup's time.
        guard a.hash == b.hash, a.bytes.count == b.bytes.count else { return false }
        return a.bytes.withUnsafeBytes { x in
            b.bytes.withUnsafeBytes { y in
                // Keys shared by many lookups (a block's vote-list key) are often the very
                // buffer the map holds.
                x.baseAddress == y.baseAddress || sameBytes(x, y)
            }
        }
    }
}

/// Committed state values recently read or written, shared by every root overlay of one
/// application, so a provider, a commitment or an active set read by one block (or by the
/// check state) is answered from memory by the next instead of from RocksDB — and decoded
/// once instead of once per transaction.
///
/// It is only ever the committed state: the application fills it from store reads and
/// updates it with exactly the changes of each block it writes, after the write succeeded
/// (and empties it if a write fails). Two generations bound its size: when the newer one
/// exceeds ``byteLimit`` it becomes the older one and the previous older one is dropped;
/// an entry found in the older generation moves to the newer.
final class CommittedCache {
    /// One reference at most: a typed read of a decoded entry retains (and so touches) only
    /// the box it reads, not the raw bytes' buffer too. Each retain of a cold object is a
    /// cache miss, and a finality vote makes ~10 such reads.
    enum Entry {
        /// Absent from the store.
        case absent
        /// The stored bytes, not decoded yet.
        case raw(Data)
        /// The stored bytes with the value last decoded from them (a ``DecodedBox`` of any
        /// type), so repeated typed reads skip decoding.
        case decoded(RawBox)

        /// The stored bytes (`nil` = absent).
        var value: Data? {
            switch self {
            case .absent: return nil
            case .raw(let d): return d
            case .decoded(let box): return box.raw
            }
        }

        init(_ value: Data?) { self = value.map { .raw($0) } ?? .absent }
    }

    /// Approximate bytes (keys + values) one generation may hold before it is rotated.
    let byteLimit: Int
    /// Changes whenever the committed values this cache mirrors may have changed (a commit's
    /// changes applied, or the cache dropped), and never repeats within the process: two
    /// reads answered at the same version saw the same committed state, so what a module
    /// derived from committed values may be kept under it (``Overlay/committedVersion``).
    private(set) var version = CommittedCache.nextVersion()
    private static let versions = Atomic<UInt64>(0)
    private static func nextVersion() -> UInt64 { versions.add(1, ordering: .relaxed).newValue }
    private var newer: [HashedBytes: Entry] = [:]
    private var older: [HashedBytes: Entry] = [:]
    private var newerBytes = 0

    init(byteLimit: Int) { self.byteLimit = byteLimit }

    /// Number of cached keys (both generations; a key is in at most one).
    var count: Int { newer.count + older.count }

    func entry(_ key: HashedBytes) -> Entry? {
        if let e = newer[key] { return e }
        guard let e = older.removeValue(forKey: key) else { return nil }
        put(key, e)
        return e
    }

    func put(_ key: HashedBytes, _ e: Entry) {
        if newer.updateValue(e, forKey: key) == nil { newerBytes += key.bytes.count + (e.value?.count ?? 0) + 64 }
        if newerBytes > byteLimit {
            older = newer
            // Sized like the generation it replaces: growing from empty rehashes it ~20 times.
            newer = Dictionary(minimumCapacity: older.count)
            newerBytes = 0
        }
    }

    /// Records a decoded form of the cached value at `key` (no effect if it left the cache).
    /// A decoded value is counted as twice its encoding: its fields are separate objects.
    func setDecoded(_ key: HashedBytes, _ decoded: RawBox) {
        switch newer[key] {
        case .raw?:
            newerBytes += 2 * decoded.raw.count
            newer[key] = .decoded(decoded)
        case .decoded?: newer[key] = .decoded(decoded)
        case .absent?, nil: return
        }
    }

    /// A committed block's changes (`nil` = deleted), after they are durable.
    func apply(_ changes: [(key: HashedBytes, value: Data?)]) {
        version = Self.nextVersion()
        for (key, value) in changes {
            // A key is in one generation at most, and a block's changed keys were mostly read
            // by it, so they are in the newer one: replaced there with one probe, without a
            // second (a cache miss) to clear it from the older.
            if let i = newer.index(forKey: key) {
                newer.values[i] = Entry(value)
                continue
            }
            older.removeValue(forKey: key)
            put(key, Entry(value))
        }
    }

    func removeAll() {
        version = Self.nextVersion()
        newer = [:]
        older = [:]
        newerBytes = 0
    }

    /// Every cached key whose value differs from `store` (tests: the cache must equal the
    /// committed state).
    func mismatches(against store: any KeyValueReader, columnFamily: String) throws -> [Data] {
        var bad: [Data] = []
        for (key, e) in newer.merging(older, uniquingKeysWith: { a, _ in a }) where try store.get(key.data, in: columnFamily) != e.value {
            bad.append(key.data)
        }
        return bad
    }
}

/// The stored bytes of a decoded entry of ``CommittedCache`` (see ``DecodedBox``).
class RawBox {
    let raw: Data
    init(raw: Data) { self.raw = raw }
}

/// A value written by a transaction step and kept unencoded (``Overlay/set(_:keeping:)``).
protocol UnencodedKept: AnyObject {
    /// The value with its canonical encoding, made now.
    func encodedBox() -> RawBox
    /// The canonical encoding, made now.
    func encoded() -> Data
}

/// ``UnencodedKept`` of one type.
final class UnencodedValue<T>: UnencodedKept {
    let value: T
    /// `T`'s canonical encoding (`T` is unconstrained so typed reads of any `T` can test
    /// for it).
    private let encode: (borrowing T) -> Data
    init(_ value: T, encode: @escaping (borrowing T) -> Data) {
        self.value = value
        self.encode = encode
    }

    func encodedBox() -> RawBox { DecodedBox(value, raw: encode(value)) }
    func encoded() -> Data { encode(value) }

    /// `body` applied to the value in place.
    @inline(__always)
    func reading<R>(_ body: (borrowing T) -> R) -> R { body(value) }
}

/// A decoded state value kept in ``CommittedCache``, with the bytes it was decoded from.
final class DecodedBox<T>: RawBox {
    let value: T
    init(_ value: T, raw: Data) {
        self.value = value
        super.init(raw: raw)
    }

    /// `body` applied to the value in place (reading `value` from outside copies it).
    @inline(__always)
    func reading<R>(_ body: (borrowing T) -> R) -> R { body(value) }
}

/// Pending writes layered over the committed state (or over another overlay).
///
/// The application keeps one overlay per block; each transaction and each block hook runs
/// in a child overlay that is merged into the block's only if it succeeds, so a rejected
/// transaction leaves no trace. Reads see the newest write at any level, then the store.
final class Overlay {
    /// `nil` value = deleted. Holds every write of this level but the unencoded kept one
    /// (``unencodedKept``), which reading ``writes`` encodes first.
    private var encodedWrites: [HashedBytes: Data?] = [:]

    /// Every write of this level (`nil` value = deleted), the kept one encoded.
    var writes: [HashedBytes: Data?] {
        encodeKept()
        return encodedWrites
    }
    private let parent: Overlay?
    private let base: any KeyValueReader
    private let columnFamily: String
    /// The application's cache of committed values (root overlays only; `nil` = none).
    private let cache: CommittedCache?

    /// An overlay directly over `columnFamily` of `base`, reading through `cache` when given
    /// (which must hold `base`'s committed values of that column family).
    init(base: any KeyValueReader, columnFamily: String, cache: CommittedCache? = nil) {
        self.parent = nil
        self.base = base
        self.columnFamily = columnFamily
        self.cache = cache
    }

    /// A child overlay over `parent`.
    init(parent: Overlay) {
        self.parent = parent
        self.base = parent.base
        self.columnFamily = parent.columnFamily
        self.cache = nil
    }

    /// Values read from the store by a root overlay without a cache (`nil` = absent). The
    /// store does not change while an overlay over it is in use (it is written only at
    /// commit, from the block's overlay, after which new overlays are made), so repeated
    /// reads of the same key within a block or check state are answered from memory.
    private var reads: [HashedBytes: Data?] = [:]

    func get(_ key: Data) throws(ChainError) -> Data? { try get(HashedBytes(key)) }

    /// The version of the committed state below this overlay (``CommittedCache/version``);
    /// `nil` for an overlay without the application's cache, whose reads carry no version.
    var committedVersion: UInt64? {
        var node = self
        while let parent = node.parent { node = parent }
        return node.cache?.version
    }

    /// Whether any level of this overlay holds a write (or deletion) of `key`. If none does,
    /// a read of `key` is answered by the committed state.
    func hasPendingWrite(_ key: HashedBytes) -> Bool {
        var node: Overlay? = self
        while let n = node {
            if let kept = n.unencodedKept, kept.key == key { return true }
            if !n.encodedWrites.isEmpty, n.encodedWrites[key] != nil { return true }
            node = n.parent
        }
        return false
    }

    func get(_ key: HashedBytes) throws(ChainError) -> Data? {
        var node = self
        while true {
            if let kept = node.unencodedKept, kept.key == key { node.encodeKept() }
            if !node.encodedWrites.isEmpty, let w = node.encodedWrites[key] { return w }
            guard let parent = node.parent else { break }
            node = parent
        }
        return try node.committed(key).value
    }

    /// The committed entry of `key` (root overlay only), from the cache or the store.
    private func committed(_ key: HashedBytes) throws(ChainError) -> CommittedCache.Entry {
        if let cache {
            if let e = cache.entry(key) { return e }
            let e = CommittedCache.Entry(try storeCall { try base.get(key.data, in: columnFamily) })
            cache.put(key, e)
            return e
        }
        if let cached = reads[key] { return CommittedCache.Entry(cached) }
        let value = try storeCall { try base.get(key.data, in: columnFamily) }
        reads[key] = .some(value)
        return CommittedCache.Entry(value)
    }

    /// Reads the committed values of those of `keys` the cache does not hold into the cache,
    /// in one batched store lookup (root overlay with a cache only; otherwise nothing): for
    /// keys known before they are read one by one.
    func prefetch(_ keys: [StateKey]) throws(ChainError) {
        guard parent == nil, let cache, !keys.isEmpty else { return }
        // A key listed twice is read twice, which is harmless: both reads put the same value.
        // The missing keys' bytes go to the store in one buffer, not as a `Data` each.
        var missing: [Int] = []
        var list = KeyList(reservingKeys: keys.count, bytes: keys.count * (keys[0].full.bytes.count + 8))
        for (i, key) in keys.enumerated() where cache.entry(key.full) == nil {
            missing.append(i)
            key.full.bytes.withUnsafeBytes { list.append($0) }
        }
        guard !missing.isEmpty else { return }
        let values = try storeCall { try base.multiGet(list, in: columnFamily) }
        for (i, value) in zip(missing, values) { cache.put(keys[i].full, CommittedCache.Entry(value)) }
    }

    /// The value at `key` decoded by `decode`: a value still only in the committed state is
    /// decoded once and kept decoded in the application's cache.
    func read<T>(_ key: Data, decode: (Data) throws(CodecError) -> T) throws(ChainError) -> Result<T, CodecError>? {
        try read(HashedBytes(key), decode: decode)
    }

    func read<T>(_ key: HashedBytes, decode: (Data) throws(CodecError) -> T) throws(ChainError) -> Result<T, CodecError>? {
        try read(key, decode: decode, project: { $0 })
    }

    /// ``read(_:decode:)-(HashedBytes,_)`` passing the value to `project` instead of returning
    /// it: a value kept decoded in the cache is then read in place rather than copied out
    /// (copying a large record retains each of its strings and buffers).
    @inline(__always)
    func read<T, R>(_ key: HashedBytes, decode: (Data) throws(CodecError) -> T,
                    project: (borrowing T) -> R) throws(ChainError) -> Result<R, CodecError>? {
        var node: Overlay? = self
        while let n = node {
            if let kept = n.unencodedKept, kept.key == key {
                if ObjectIdentifier(type(of: kept.value)) == ObjectIdentifier(UnencodedValue<T>.self) {
                    return .success(unsafeDowncast(kept.value, to: UnencodedValue<T>.self).reading(project))
                }
                n.encodeKept()
            }
            if !n.encodedWrites.isEmpty, let w = n.encodedWrites[key] {
                guard let w else { return nil }
                if let kept = n.keptWrite, ObjectIdentifier(type(of: kept.box)) == ObjectIdentifier(DecodedBox<T>.self),
                   kept.key == key, sameBytes(kept.box.raw, w) {
                    return .success(unsafeDowncast(kept.box, to: DecodedBox<T>.self).reading(project))
                }
                do throws(CodecError) { return .success(project(try decode(w))) } catch { return .failure(error) }
            }
            if n.parent == nil { break }
            node = n.parent
        }
        guard let root = node else { return nil }
        let raw: Data
        switch try root.committed(key) {
        case .absent: return nil
        case .raw(let d): raw = d
        case .decoded(let box):
            // An identity check of the box's class instead of `as? T` from an existential:
            // the generic cast machinery cost more than the dictionary lookups of the read.
            if ObjectIdentifier(type(of: box)) == ObjectIdentifier(DecodedBox<T>.self) {
                return .success(unsafeDowncast(box, to: DecodedBox<T>.self).reading(project))
            }
            raw = box.raw
        }
        do throws(CodecError) {
            let value = try decode(raw)
            root.cache?.setDecoded(key, DecodedBox(value, raw: raw))
            return .success(project(value))
        } catch {
            return .failure(error)
        }
    }

    /// The last value written at this level by ``set(_:keeping:)``, with its encoding once
    /// made. A typed read of that key that finds those very bytes there takes the value
    /// instead of decoding them again.
    private var keptWrite: (key: HashedBytes, box: RawBox)?

    /// The last value written at this level by ``set(_:keeping:)``, not encoded yet: a
    /// transaction's ante step writes its sender's account and its message rewrites it, so
    /// only the second of the two is ever encoded. It shadows any write of its key in
    /// ``encodedWrites``.
    private var unencodedKept: (key: HashedBytes, value: any UnencodedKept)?

    /// Moves ``unencodedKept`` into ``encodedWrites``, encoded, keeping its value with the
    /// bytes (``keptWrite``).
    private func encodeKept() {
        guard let kept = unencodedKept else { return }
        unencodedKept = nil
        let box = kept.value.encodedBox()
        encodedWrites[kept.key] = .some(box.raw)
        keptWrite = (kept.key, box)
    }

    /// Sets `key` to `value`, encoded canonically when its bytes are first needed, and keeps
    /// `value` for the next typed read of `key` at this level (see
    /// ``ModuleStore/write(_:at:keeping:)``).
    func set<T: BinaryCodable>(_ key: HashedBytes, keeping value: T) {
        if let kept = unencodedKept, kept.key != key { encodeKept() }
        unencodedKept = (key, UnencodedValue(value, encode: { $0.encoded }))
    }

    /// Drops the unencoded kept write of `key`, which a write of its key supersedes.
    @inline(__always)
    private func supersedeKept(_ key: HashedBytes) {
        if let kept = unencodedKept, kept.key == key { unencodedKept = nil }
    }

    func set(_ key: Data, _ value: Data) { set(HashedBytes(key), value) }
    func set(_ key: HashedBytes, _ value: Data) {
        supersedeKept(key)
        encodedWrites[key] = .some(value)
    }

    func delete(_ key: Data) { delete(HashedBytes(key)) }
    func delete(_ key: HashedBytes) {
        supersedeKept(key)
        encodedWrites[key] = .some(nil)
    }

    /// Forgets this level's own write of `key` (reads then see the levels below), so that a
    /// value read from it stops sharing its buffer with this map: a caller about to change
    /// that value and set it again changes it in place instead of copying it.
    func dropWrite(_ key: HashedBytes) {
        supersedeKept(key)
        encodedWrites.removeValue(forKey: key)
    }

    /// Every live pair in `range`, ascending by key, reflecting all layers. Cost is the
    /// store range plus a pass over each layer's writes.
    func scan(_ range: KeyRange) throws(ChainError) -> [KeyValue] {
        var merged: [Data: Data] = [:]
        let stored = try storeCall { try base.scan(columnFamily, range, direction: .forward).collect() }
        for kv in stored { merged[kv.key] = kv.value }
        var layers: [Overlay] = []
        var node: Overlay? = self
        while let n = node {
            layers.append(n)
            node = n.parent
        }
        for layer in layers.reversed() {
            for (k, v) in layer.writes {
                let key = k.data
                guard range.contains(key) else { continue }
                if let v { merged[key] = v } else { merged.removeValue(forKey: key) }
            }
        }
        return merged.sorted { bytesPrecede($0.key, $1.key) }.map { (key: $0.key, value: $0.value) }
    }

    /// The first `limit` live pairs in `range`, ascending, reflecting all layers, and whether
    /// more follow — reading at most `limit + 1` plus the layers' writes in the range from the
    /// store, not the whole range: a store row can be hidden only by a write, so that many
    /// rows always leave `limit + 1` live ones below the last row read.
    func scan(_ range: KeyRange, limit: Int) throws(ChainError) -> (rows: [KeyValue], more: Bool) {
        var layers: [Overlay] = []
        var node: Overlay? = self
        while let n = node {
            layers.append(n)
            node = n.parent
        }
        var pending: [Data: Data?] = [:]
        for layer in layers.reversed() {
            for (k, v) in layer.writes {
                let key = k.data
                if range.contains(key) { pending[key] = .some(v) }
            }
        }
        let wanted = max(0, limit) + 1 + pending.count
        let (stored, exhausted) = try storeCall { () throws -> ([KeyValue], Bool) in
            let it = try base.scan(columnFamily, range, direction: .forward)
            var rows: [KeyValue] = []
            while rows.count < wanted {
                guard let kv = try it.nextPair() else { return (rows, true) }
                rows.append(kv)
            }
            return (rows, false)
        }
        var merged: [Data: Data] = [:]
        for kv in stored { merged[kv.key] = kv.value }
        // Past the last store row read, unread rows could sort between pending writes.
        let bound = exhausted ? nil : stored.last?.key
        for (k, v) in pending where bound.map({ !bytesPrecede($0, k) }) ?? true {
            if let v { merged[k] = v } else { merged.removeValue(forKey: k) }
        }
        let sorted = merged.sorted { bytesPrecede($0.key, $1.key) }
        let rows = sorted.prefix(max(0, limit)).map { (key: $0.key, value: $0.value) }
        return (rows, sorted.count > rows.count)
    }

    /// Moves this overlay's writes into its parent.
    func mergeIntoParent() {
        guard let parent else { return }
        if !encodedWrites.isEmpty {
            for (k, v) in encodedWrites { parent.set(k, encodedOrDeleted: v) }
            encodedWrites.removeAll()
        }
        // After the others, which it shadows; straight to the parent, without a map of this
        // level's own (a transaction that only touched its sender's account has no other).
        if let kept = unencodedKept {
            unencodedKept = nil
            keptWrite = nil
            parent.set(kept.key, encodedOrDeleted: kept.value.encoded())
        }
    }

    /// Makes room for `count` writes at this level: a block's overlay takes one per
    /// transaction, and growing its map step by step rehashed it a dozen times.
    func reserveWrites(_ count: Int) { encodedWrites.reserveCapacity(count) }

    /// A merged child's write of `key`, superseding this level's own (kept or not).
    private func set(_ key: HashedBytes, encodedOrDeleted value: Data?) {
        supersedeKept(key)
        encodedWrites[key] = .some(value)
    }
}

/// One module's slice of the state: keys are relative to the module's prefix
/// (`"<module>/"`), so a module cannot address another module's keys by accident.
/// Reads see every earlier write of the same block (and transaction); writes become
/// durable only when the block commits, and vanish if the transaction is rejected.
public struct ModuleStore {
    /// The module whose slice this is.
    public let module: String
    let prefix: Data
    let overlay: Overlay

    init(module: String, overlay: Overlay) {
        self.init(module: module, prefix: Self.prefix(of: module), overlay: overlay)
    }

    init(module: String, prefix: Data, overlay: Overlay) {
        self.module = module
        self.prefix = prefix
        self.overlay = overlay
    }

    /// `"<module>/"`, the key prefix of a module's slice.
    static func prefix(of module: String) -> Data {
        // From the name's contiguous UTF-8 in one copy: appending the `utf8` view goes
        // through the generic sequence path (a dynamic cast and a byte loop), and a module's
        // store is made for every message.
        var name = module
        return name.withUTF8 { utf8 in
            var prefix = Data(capacity: utf8.count + 1)
            prefix.append(utf8)
            prefix.append(UInt8(ascii: "/"))
            return prefix
        }
    }

    /// The value at `key`, or `nil`.
    public func get(_ key: Data) throws(ExecutionError) -> Data? {
        do {
            return try overlay.get(HashedBytes(joining: prefix, key))
        } catch {
            throw .fatal(error)
        }
    }

    /// Sets `key` to `value`.
    public func set(_ key: Data, _ value: Data) { overlay.set(HashedBytes(joining: prefix, key), value) }

    /// Removes `key` (no effect if absent).
    public func delete(_ key: Data) { overlay.delete(HashedBytes(joining: prefix, key)) }

    /// Before replacing a large value just read at `key` with a changed copy: forgets this
    /// transaction's own earlier write of `key` so that the value in hand is the only
    /// reference to its buffer, and changing it does not copy it. The caller must `set` the
    /// key again before anything can fail — until then, reads of `key` do not see this
    /// transaction's earlier write.
    func prepareInPlaceUpdate(_ key: StateKey) {
        assert(owns(key), "state key of another module used with \(module)'s store")
        overlay.dropWrite(key.full)
    }

    // MARK: Keys built once

    /// `key` under this module's prefix, hashed: for a key read and written several times in
    /// one step, so the prefix is joined and the bytes hashed once rather than at each access.
    public func key(_ key: Data) -> StateKey { StateKey(full: HashedBytes(joining: prefix, key)) }

    /// A key made by another module's store would read or write that module's state under
    /// this one's name: a bug in the calling module, caught by the test builds.
    private func owns(_ key: StateKey) -> Bool { key.full.starts(with: prefix) }

    /// The value at `key`, or `nil`.
    public func get(_ key: StateKey) throws(ExecutionError) -> Data? {
        assert(owns(key), "state key of another module used with \(module)'s store")
        do {
            return try overlay.get(key.full)
        } catch {
            throw .fatal(error)
        }
    }

    /// Sets `key` to `value`.
    public func set(_ key: StateKey, _ value: Data) {
        assert(owns(key), "state key of another module used with \(module)'s store")
        overlay.set(key.full, value)
    }

    /// Removes `key` (no effect if absent).
    public func delete(_ key: StateKey) {
        assert(owns(key), "state key of another module used with \(module)'s store")
        overlay.delete(key.full)
    }

    /// Decodes the value at `key`; an undecodable stored value is `.fatal(.corruptState)`.
    public func read<T: BinaryCodable>(_ type: T.Type, at key: StateKey) throws(ExecutionError) -> T? {
        try read(at: key) { raw throws(CodecError) in try T(decoding: raw) }
    }

    /// The value at `key` decoded by `decode` (a pure function of the bytes; see
    /// ``read(at:decode:)-(Data,_)``).
    public func read<T>(at key: StateKey, decode: (Data) throws(CodecError) -> T) throws(ExecutionError) -> T? {
        try read(at: key, decode: decode, project: { $0 })
    }

    /// The value at `key` decoded as `T` and passed to `project`, for a hot read that needs a
    /// few fields of a large record: a value kept decoded in the committed-state cache is
    /// read in place instead of copied out.
    public func read<T: BinaryCodable, R>(_ type: T.Type, at key: StateKey, project: (borrowing T) -> R) throws(ExecutionError) -> R? {
        try read(at: key, decode: { raw throws(CodecError) in try T(decoding: raw) }, project: project)
    }

    @inline(__always)
    func read<T, R>(at key: StateKey, decode: (Data) throws(CodecError) -> T, project: (borrowing T) -> R) throws(ExecutionError) -> R? {
        assert(owns(key), "state key of another module used with \(module)'s store")
        let result: Result<R, CodecError>?
        do {
            result = try overlay.read(key.full, decode: decode, project: project)
        } catch {
            throw .fatal(error)
        }
        switch result {
        case nil: return nil
        case .success(let v)?: return v
        case .failure(let error)?:
            throw .fatal(.corruptState("\(module)/\(Data(key.full.bytes.dropFirst(prefix.count)).hexString): \(error)"))
        }
    }

    /// Stores the canonical encoding of `value` at `key`.
    public func write(_ value: some BinaryCodable, at key: StateKey) { set(key, value.encoded) }

    /// Stores the canonical encoding of `value` at `key` and keeps `value` itself, so that
    /// the next read of `key` in this transaction, if nothing has written it since, takes it
    /// instead of decoding the bytes: for a record one step of a transaction writes and the
    /// next reads (the ante handler's account, read back by the message). `value` must be
    /// what decoding its encoding gives, as it is for every canonical ``BinaryCodable``.
    public func write<T: BinaryCodable>(_ value: T, at key: StateKey, keeping: Bool) {
        assert(owns(key), "state key of another module used with \(module)'s store")
        guard keeping else { return set(key, value.encoded) }
        overlay.set(key.full, keeping: value)
    }

    /// Whether `key` has a value.
    public func contains(_ key: Data) throws(ExecutionError) -> Bool { try get(key) != nil }

    /// Every pair whose key starts with `keyPrefix`, ascending (keys relative to the
    /// module). Materialized: fine for the sizes modules iterate today.
    public func scan(prefix keyPrefix: Data = Data()) throws(ExecutionError) -> [KeyValue] {
        let full = prefix + keyPrefix
        do {
            return try overlay.scan(.prefix(full)).map { (key: Data($0.key.dropFirst(prefix.count)), value: $0.value) }
        } catch {
            throw .fatal(error)
        }
    }

    /// One page of the pairs whose key starts with `keyPrefix`, ascending (keys relative to
    /// the module): `page.limit` rows whose key follows `keyPrefix ‖ page.cursor`, and the
    /// cursor of the next page (the last row's key after `keyPrefix`) when more follow.
    public func scan(prefix keyPrefix: Data, page: PageRequest) throws(ExecutionError) -> PageRows {
        let full = prefix + keyPrefix
        // The smallest key after `full ‖ cursor` is `full ‖ cursor ‖ 0x00`.
        let lower = page.cursor.map { full + $0 + Data([0]) } ?? full
        let range = KeyRange(lower: lower, upper: KeyRange.prefixSuccessor(full))
        do {
            let (rows, more) = try overlay.scan(range, limit: page.limit)
            let relative = rows.map { (key: Data($0.key.dropFirst(prefix.count)), value: $0.value) }
            let next = more ? relative.last.map { Data($0.key.dropFirst(keyPrefix.count)) } : nil
            return PageRows(rows: relative, nextCursor: next)
        } catch {
            throw .fatal(error)
        }
    }

    /// Decodes the value at `key`; an undecodable stored value is `.fatal(.corruptState)`.
    public func read<T: BinaryCodable>(_ type: T.Type, at key: Data) throws(ExecutionError) -> T? {
        try read(at: key) { raw throws(CodecError) in try T(decoding: raw) }
    }

    /// The value at `key` decoded by `decode` (which must be a pure function of the bytes:
    /// committed values are decoded once and kept decoded); an undecodable stored value is
    /// `.fatal(.corruptState)`.
    public func read<T>(at key: Data, decode: (Data) throws(CodecError) -> T) throws(ExecutionError) -> T? {
        let result: Result<T, CodecError>?
        do {
            result = try overlay.read(HashedBytes(joining: prefix, key), decode: decode)
        } catch {
            throw .fatal(error)
        }
        switch result {
        case nil: return nil
        case .success(let v)?: return v
        case .failure(let error)?: throw .fatal(.corruptState("\(module)/\(key.hexString): \(error)"))
        }
    }

    /// Stores the canonical encoding of `value` at `key`.
    public func write(_ value: some BinaryCodable, at key: Data) { set(key, value.encoded) }
}
