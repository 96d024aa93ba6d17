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
        var newer: [HashedBytes: T] = [:]
        var older: [HashedBytes: T] = [:]
    }

    /// Entries per generation.
    let capacity: Int
    private let state = Mutex(State())

    init(capacity: Int) { self.capacity = max(1, capacity) }

    /// The decoded form of `payload`, from memory or from `decode`.
    func value<E: Error>(_ payload: Data, decode: (Data) throws(E) -> T) throws(E) -> T {
        let key = HashedBytes(payload)
        if let hit = state.withLock({ s in s.newer[key] ?? s.older[key] }) { return hit }
        let value = try decode(payload)
        let capacity = self.capacity
        state.withLock { s in
            s.newer[key] = value
            if s.newer.count >= capacity {
                s.older = s.newer
                s.newer = Dictionary(minimumCapacity: capacity)
            }
        }
        return value
    }
}
