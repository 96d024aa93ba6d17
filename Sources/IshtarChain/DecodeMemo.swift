import Foundation
import Synchronization

/// Payload bytes → what a pure function makes of them, for payloads every node sees several
/// times: a transaction's hash is asked for at admission, for a proposal's transactions root
/// and again at finalize, and hashing a few kilobytes costs more than a lookup.
///
/// Decoding is a pure function of the bytes, so a hit is exactly what decoding would
/// return; only successful decodes are kept. Two generations bound the size: when the
/// newer one reaches `capacity` it replaces the older one.
final class DecodeMemo<T: Sendable>: Sendable {
    /// A payload as a map key. Its hash covers the length and the last 64 bytes only (a
    /// transaction ends with its signature, so transactions differ there); equality
    /// compares every byte. The payload stays the `Data` it came in: a copy of a few hundred
    /// bytes per lookup cost more than the lookup.
    private struct PayloadKey: Hashable {
        let bytes: Data
        private let hash: Int

        init(_ bytes: Data) {
            self.bytes = bytes
            var hasher = Hasher()
            hasher.combine(bytes.count)
            bytes.withUnsafeBytes { all in
                hasher.combine(bytes: UnsafeRawBufferPointer(rebasing: all.suffix(64)))
            }
            hash = hasher.finalize()
        }

        func hash(into hasher: inout Hasher) { hasher.combine(hash) }

        static func == (a: PayloadKey, b: PayloadKey) -> Bool {
            guard a.hash == b.hash, a.bytes.count == b.bytes.count else { return false }
            return a.bytes.withUnsafeBytes { x in b.bytes.withUnsafeBytes { y in sameBytes(x, y) } }
        }
    }

    /// Whether a key keeps its own copy of the payload's bytes. A payload sliced from a block
    /// would otherwise keep the whole block's buffer alive for as long as the entry lives.
    let copiesPayloads: Bool
    // A key's hash is computed once per lookup-and-insert, not once for each.
    private let state: Mutex<Generations<PayloadKey, T>>

    /// At most `capacity` entries and `byteCapacity` payload bytes per generation.
    init(capacity: Int, byteCapacity: Int = .max, copiesPayloads: Bool = false) {
        self.copiesPayloads = copiesPayloads
        state = Mutex(Generations(capacity: capacity, byteCapacity: byteCapacity))
    }

    /// The decoded form of `payload`, from memory or from `decode`.
    func value<E: Error>(_ payload: Data, decode: (Data) throws(E) -> T) throws(E) -> T {
        let key = PayloadKey(payload)
        if let hit = state.withLock({ $0[key] }) { return hit }
        let value = try decode(payload)
        let stored = copiesPayloads ? PayloadKey(payload.withUnsafeBytes { Data($0) }) : key
        state.withLock { $0.insert(value, for: stored, size: payload.count) }
        return value
    }
}

/// A map bounded by two generations: when the newer one holds `capacity` entries or
/// `byteCapacity` bytes (as each insert counts them), it becomes the older one and the
/// previous older one is dropped. A lookup sees both. For memories whose entries are wanted
/// for a while after they are made (a transaction from admission to its block) and need no order.
struct Generations<Key: Hashable, Value> {
    /// Entries per generation.
    let capacity: Int
    /// Bytes per generation; a generation also ends when its entries reach this.
    let byteCapacity: Int
    private var newer: [Key: Value] = [:]
    private var older: [Key: Value] = [:]
    /// Bytes counted for `newer`'s entries.
    private var newerBytes = 0

    init(capacity: Int, byteCapacity: Int = .max) {
        self.capacity = max(1, capacity)
        self.byteCapacity = max(1, byteCapacity)
    }

    subscript(key: Key) -> Value? { newer[key] ?? older[key] }

    /// Adds or replaces `value` at `key`, counting `size` bytes for a new key.
    mutating func insert(_ value: Value, for key: Key, size: Int) {
        if newer.updateValue(value, forKey: key) == nil { newerBytes += size }
        if newer.count >= capacity || newerBytes >= byteCapacity {
            older = newer
            newer = Dictionary(minimumCapacity: capacity)
            newerBytes = 0
        }
    }
}
