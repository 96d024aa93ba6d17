import Foundation
import Synchronization

/// Payload bytes → their decoded message, for messages every node decodes several times:
/// a finality vote is decoded by the stateless check, by mempool admission and again by
/// block execution, and decoding (a dozen small allocations) cost more than a lookup.
///
/// Decoding is a pure function of the bytes, so a hit is exactly what decoding would
/// return; only successful decodes are kept. Two generations bound the size: when the
/// newer one reaches `capacity` it replaces the older one.
final class DecodeMemo<T: Sendable>: Sendable {
    private struct State {
        // Payloads hashed once per lookup-and-insert: hashing a few hundred bytes twice per
        // vote cost as much as decoding them.
        var newer: [PayloadKey: T] = [:]
        var older: [PayloadKey: T] = [:]
        /// Payload bytes held by `newer`'s keys.
        var newerBytes = 0
    }

    /// A payload as a map key. Its hash covers the length and the last 64 bytes only (a
    /// vote ends with its block hash and signature, so votes differ there); equality
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

    /// Entries per generation.
    let capacity: Int
    /// Payload bytes per generation; a generation also ends when its keys reach this.
    let byteCapacity: Int
    /// Whether a key keeps its own copy of the payload's bytes. A payload sliced from a block
    /// would otherwise keep the whole block's buffer alive for as long as the entry lives.
    let copiesPayloads: Bool
    private let state = Mutex(State())

    init(capacity: Int, byteCapacity: Int = .max, copiesPayloads: Bool = false) {
        self.capacity = max(1, capacity)
        self.byteCapacity = max(1, byteCapacity)
        self.copiesPayloads = copiesPayloads
    }

    /// The decoded form of `payload`, from memory or from `decode`.
    func value<E: Error>(_ payload: Data, decode: (Data) throws(E) -> T) throws(E) -> T {
        let key = PayloadKey(payload)
        if let hit = state.withLock({ s in s.newer[key] ?? s.older[key] }) { return hit }
        let value = try decode(payload)
        let stored = copiesPayloads ? PayloadKey(payload.withUnsafeBytes { Data($0) }) : key
        let (capacity, byteCapacity) = (self.capacity, self.byteCapacity)
        state.withLock { s in
            if s.newer.updateValue(value, forKey: stored) == nil { s.newerBytes += payload.count }
            if s.newer.count >= capacity || s.newerBytes >= byteCapacity {
                s.older = s.newer
                s.newer = Dictionary(minimumCapacity: capacity)
                s.newerBytes = 0
            }
        }
        return value
    }
}
