import Foundation
import Synchronization

/// A bounded, thread-safe memory of deterministic checks that passed, so that the same check
/// run twice (mempool admission, then block execution) costs one verification.
///
/// An entry is the exact bytes of everything the check read — no hash — so a hit means the
/// identical check already passed and the answer is the same by determinism; any other
/// input can never hit. For BIP-340 (``isValid(signature:publicKey:message:)``) the entry is
/// `publicKey(32) ‖ signature(64) ‖ message`. Only successes are remembered (a failure must
/// not crowd out valid entries). The oldest entries are evicted first once `capacity` is
/// reached.
public final class VerificationCache: Sendable {
    /// Shared BIP-340 results for every user in the process: verification is a pure function
    /// of its inputs.
    public static let shared = VerificationCache(capacity: 50_000)

    private struct State {
        var members: Set<Data> = []
        var order: [Data] = []
        var head = 0
    }

    /// Most entries kept.
    public let capacity: Int
    private let state = Mutex(State())

    /// An empty cache keeping at most `capacity` (≥ 1) entries.
    public init(capacity: Int) { self.capacity = max(1, capacity) }

    /// Number of entries held.
    public var count: Int { state.withLock { $0.members.count } }

    /// Whether `signature` (64 bytes) is a valid BIP-340 signature by the x-only `publicKey`
    /// (32 bytes) over `message`: answered from the cache when this exact triple verified
    /// before, else parsed and verified (and remembered when valid). Malformed keys or
    /// signatures are invalid.
    public func isValid(signature: Data, publicKey: Data, message: Data) -> Bool {
        guard publicKey.count == 32, signature.count == 64 else { return false }
        var entry = Data(capacity: 96 + message.count)
        entry.append(publicKey)
        entry.append(signature)
        entry.append(message)
        if state.withLock({ $0.members.contains(entry) }) { return true }
        guard let key = try? Schnorr.PublicKey(rawRepresentation: publicKey),
              let parsed = try? Schnorr.Signature(rawRepresentation: signature),
              key.isValidSignature(parsed, for: message) else { return false }
        insert(entry)
        return true
    }

    /// Whether `entry` was inserted (and not evicted since). Callers put in `entry` every
    /// input of the check, with a fixed or length-prefixed layout so entries cannot alias.
    public func contains(_ entry: Data) -> Bool { state.withLock { $0.members.contains(entry) } }

    /// Remembers that the check described by `entry` passed.
    public func insert(_ entry: Data) {
        let capacity = self.capacity
        state.withLock { s in
            guard s.members.insert(entry).inserted else { return }
            s.order.append(entry)
            if s.members.count > capacity {
                s.members.remove(s.order[s.head])
                s.head += 1
                // Compact the FIFO once half of it is consumed.
                if s.head > capacity / 2 {
                    s.order.removeFirst(s.head)
                    s.head = 0
                }
            }
        }
    }
}
