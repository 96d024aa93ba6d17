import Crypto
import Foundation
import Synchronization

/// 32 bytes — a SHA-256 digest, an x-only key — held inline (four words), so a set or map
/// of them hashes and compares without following a pointer to heap storage: in a large set
/// that pointer chase is a cache miss per probe, which cost more than the lookup itself.
public struct Digest256: Hashable, Sendable {
    private let a: UInt64, b: UInt64, c: UInt64, d: UInt64

    /// The first 32 bytes of `bytes` (zero-padded if shorter: callers pass exactly 32).
    public init(_ bytes: some ContiguousBytes) {
        var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &words) { out in
            bytes.withUnsafeBytes { src in
                out.copyMemory(from: UnsafeRawBufferPointer(rebasing: src.prefix(32)))
            }
        }
        (a, b, c, d) = words
    }

    /// SHA-256 of `data`.
    public static func sha256(_ data: Data) -> Digest256 {
        withUnsafeTemporaryAllocation(byteCount: 32, alignment: 8) { out in
            var hasher = InlineSHA256()
            hasher.update(data: data)
            hasher.finalize(into: out)
            return Digest256(UnsafeRawBufferPointer(out))
        }
    }
}

/// A bounded, thread-safe memory of deterministic checks that passed, so that the same check
/// run twice (mempool admission, then block execution) costs one verification.
///
/// An entry is everything the check read, in a layout where different inputs cannot give
/// the same bytes; the cache keeps the entry's SHA-256, so a hit means the identical check
/// already passed (finding another input with the same digest is finding a SHA-256
/// collision) and the answer is the same by determinism. For BIP-340
/// (``isValid(signature:publicKey:message:)``) the entry is `publicKey(32) ‖ signature(64)
/// ‖ message`. Only successes are remembered (a failure must not crowd out valid entries).
/// The oldest entries are evicted first once `capacity` is reached.
public final class VerificationCache: Sendable {
    /// Shared BIP-340 results for every user in the process: verification is a pure function
    /// of its inputs.
    public static let shared = VerificationCache(capacity: 50_000)

    private struct State {
        var members: Set<Digest256> = []
        var order: [Digest256] = []
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
        var hasher = InlineSHA256()
        hasher.update(data: publicKey)
        hasher.update(data: signature)
        hasher.update(data: message)
        let digest = withUnsafeTemporaryAllocation(byteCount: 32, alignment: 8) { out in
            hasher.finalize(into: out)
            return Digest256(UnsafeRawBufferPointer(out))
        }
        if contains(digest: digest) { return true }
        guard let key = try? Schnorr.PublicKey(rawRepresentation: publicKey),
              let parsed = try? Schnorr.Signature(rawRepresentation: signature),
              key.isValidSignature(parsed, for: message) else { return false }
        insert(digest: digest)
        return true
    }

    /// Whether `entry` was inserted (and not evicted since). Callers put in `entry` every
    /// input of the check, with a fixed or length-prefixed layout so entries cannot alias.
    public func contains(_ entry: Data) -> Bool { contains(digest: .sha256(entry)) }

    /// Remembers that the check described by `entry` passed.
    public func insert(_ entry: Data) { insert(digest: .sha256(entry)) }

    /// ``contains(_:)`` for an entry the caller hashed itself (SHA-256, e.g. incrementally
    /// over its parts, so the entry is never built).
    public func contains(digest: Digest256) -> Bool { state.withLock { $0.members.contains(digest) } }

    /// ``insert(_:)`` for an entry the caller hashed itself.
    public func insert(digest: Digest256) {
        let capacity = self.capacity
        state.withLock { s in
            guard s.members.insert(digest).inserted else { return }
            s.order.append(digest)
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

extension HashFunction {
    /// `update(data:)` for contiguous bytes: one call into the digest instead of swift-crypto's
    /// generic walk over a `DataProtocol`'s regions, which cost more than hashing a short
    /// input (Merkle nodes, tagged hashes, cache entries).
    @inlinable
    public mutating func update(contiguous data: some ContiguousBytes) {
        data.withUnsafeBytes { update(bufferPointer: $0) }
    }
}

extension HashFunction {
    /// `update(data:)` through contiguous storage when the collection has it (`Data`,
    /// `[UInt8]`, slices), else swift-crypto's generic path.
    @inlinable
    public mutating func update(bytes data: some DataProtocol) {
        let done: Void? = data.withContiguousStorageIfAvailable { update(bufferPointer: UnsafeRawBufferPointer($0)) }
        if done == nil { update(data: data) }
    }
}
