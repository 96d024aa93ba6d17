import Crypto
import Foundation
import IshtarCrypto

/// An incremental, order-independent commitment to a set of key/value pairs: LtHash16
/// (Bellare–Micciancio's lattice-based homomorphic hash, as used by Facebook's LtHash and
/// Solana's accounts hash).
///
/// Each pair `(k, v)` maps to 1024 pseudorandom 16-bit lanes; the commitment is their
/// lane-wise sum mod 2^16. Adding or removing a pair costs one element hash, so the app
/// hash is updated in O(changes) per block instead of O(state) — the node bench compares
/// block execution against raw RocksDB writes of the same bytes. Collisions require
/// solving a short-integer-solution lattice problem of dimension 1024 (~200-bit security
/// per the LtHash analysis), unlike a plain XOR/additive hash of 256 bits, which
/// Wagner's generalized-birthday attack breaks.
///
/// Trade-off: it proves nothing about single keys (no inclusion proofs; a Merkle/IAVL
/// tree would be needed for light-client state proofs), and it is 2 KiB per module
/// stored with each commit.
///
/// Element hash: `d = H_"ishtar/state-element"(u32 len(k) ‖ k ‖ v)`, expanded to 2048
/// bytes as `SHA256(d ‖ BE4(0)) ‖ … ‖ SHA256(d ‖ BE4(63))`, read as 1024 big-endian
/// `UInt16` lanes.
public struct StateCommitment: Hashable, Sendable {
    /// Number of 16-bit lanes.
    public static let laneCount = 1024
    /// Serialized size.
    public static let byteCount = laneCount * 2

    /// The lanes.
    public private(set) var lanes: [UInt16]

    /// The commitment to the empty set (all zeros).
    public init() { lanes = [UInt16](repeating: 0, count: Self.laneCount) }

    /// Parses ``bytes``.
    public init(bytes: Data) throws(CodecError) {
        guard bytes.count == Self.byteCount else {
            throw .invalidLength(field: "state commitment", expected: Self.byteCount, actual: bytes.count)
        }
        let raw = [UInt8](bytes)
        lanes = (0..<Self.laneCount).map { UInt16(raw[2 * $0]) << 8 | UInt16(raw[2 * $0 + 1]) }
    }

    /// The lanes, big-endian.
    public var bytes: Data {
        var out = [UInt8]()
        out.reserveCapacity(Self.byteCount)
        for l in lanes {
            out.append(UInt8(l >> 8))
            out.append(UInt8(l & 0xff))
        }
        return Data(out)
    }

    /// Whether this commits to the empty set.
    public var isEmpty: Bool { lanes.allSatisfy { $0 == 0 } }

    /// SHA-256 of ``bytes``: the 32-byte summary that goes into the app hash.
    public var digest: Data { sha256(bytes) }

    /// Adds `(key, value)` to the committed set.
    public mutating func insert(key: Data, value: Data) {
        let e = Self.element(key: key, value: value)
        lanes.withUnsafeMutableBufferPointer { l in
            e.withUnsafeBufferPointer { x in
                for i in 0..<Self.laneCount { l[i] &+= x[i] }
            }
        }
    }

    /// Removes `(key, value)` from the committed set (it must have been inserted).
    public mutating func remove(key: Data, value: Data) {
        let e = Self.element(key: key, value: value)
        lanes.withUnsafeMutableBufferPointer { l in
            e.withUnsafeBufferPointer { x in
                for i in 0..<Self.laneCount { l[i] &-= x[i] }
            }
        }
    }

    /// The 1024 lanes of one pair.
    static func element(key: Data, value: Data) -> [UInt16] {
        var seed = TaggedHash.hasher(tag: "ishtar/state-element")
        let length = UInt32(truncatingIfNeeded: key.count)
        seed.update(data: [UInt8(length >> 24), UInt8((length >> 16) & 0xff), UInt8((length >> 8) & 0xff), UInt8(length & 0xff)])
        seed.update(data: key)
        seed.update(data: value)
        let d = seed.finalize()
        // One hasher state absorbs d once; each chunk copies it and adds its counter.
        var base = SHA256()
        d.withUnsafeBytes { base.update(bufferPointer: $0) }
        return [UInt16](unsafeUninitializedCapacity: laneCount) { out, initialized in
            for chunk in 0..<64 {
                var h = base
                withUnsafeBytes(of: UInt32(chunk).bigEndian) { h.update(bufferPointer: $0) }
                h.finalize().withUnsafeBytes { raw in
                    for j in 0..<16 {
                        out[chunk * 16 + j] = UInt16(raw[2 * j]) << 8 | UInt16(raw[2 * j + 1])
                    }
                }
            }
            initialized = laneCount
        }
    }
}
