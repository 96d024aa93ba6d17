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
/// bytes as the AES-256-CTR keystream under key `d` from the all-zero 128-bit counter
/// block (blocks 0…127), read as 1024 big-endian `UInt16` lanes. The expansion is a fixed
/// public function of `d`, standing in for an extendable-output hash (Solana's LtHash
/// expands with BLAKE3's XOF); with AES-NI it costs about a tenth of the 64 SHA-256
/// calls it replaced, and every changed state key pays it twice per block.
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

    /// The lanes, big-endian. Each block serializes every module's commitment for the app
    /// hash, so the lanes are stored straight into the buffer (two appends per lane were
    /// ~30K instructions a commitment).
    public var bytes: Data {
        var out = Data(count: Self.byteCount)
        out.withUnsafeMutableBytes { raw in
            lanes.withUnsafeBufferPointer { l in
                for i in 0..<Self.laneCount { raw.storeBytes(of: l[i].bigEndian, toByteOffset: 2 * i, as: UInt16.self) }
            }
        }
        return out
    }

    /// Whether this commits to the empty set.
    public var isEmpty: Bool { lanes.allSatisfy { $0 == 0 } }

    /// SHA-256 of ``bytes``: the 32-byte summary that goes into the app hash.
    public var digest: Data { sha256(bytes) }

    /// Adds `(key, value)` to the committed set.
    public mutating func insert(key: Data, value: Data) {
        key.withUnsafeBytes { combine(key: $0, value: value, adding: true) }
    }

    /// Removes `(key, value)` from the committed set (it must have been inserted).
    public mutating func remove(key: Data, value: Data) {
        key.withUnsafeBytes { combine(key: $0, value: value, adding: false) }
    }

    /// Adds every element of `other` (lane-wise, modulo 2^16): the commitment to the union
    /// of two disjoint sets, or a base plus a delta built from the empty commitment.
    mutating func add(_ other: StateCommitment) {
        lanes.withUnsafeMutableBufferPointer { l in
            other.lanes.withUnsafeBufferPointer { o in
                for i in 0..<Self.laneCount { l[i] &+= o[i] }
            }
        }
    }

    /// ``insert(key:value:)`` of a key in hand as raw bytes (a state key's own buffer,
    /// not a copy of it).
    mutating func insert(key: UnsafeRawBufferPointer, value: Data) { combine(key: key, value: value, adding: true) }

    /// ``remove(key:value:)`` of a key in hand as raw bytes.
    mutating func remove(key: UnsafeRawBufferPointer, value: Data) { combine(key: key, value: value, adding: false) }

    /// Adds or subtracts the element of `(key, value)` lane-wise, reading the big-endian lanes
    /// straight from the keystream, which lives on the stack.
    private mutating func combine(key: UnsafeRawBufferPointer, value: Data, adding: Bool) {
        withUnsafeTemporaryAllocation(byteCount: Self.byteCount, alignment: 16) { stream in
            Self.fillElement(key: key, value: value, into: stream)
            let raw = UnsafeRawBufferPointer(stream)
            lanes.withUnsafeMutableBufferPointer { l in
                if adding {
                    for i in 0..<Self.laneCount { l[i] &+= UInt16(bigEndian: raw.load(fromByteOffset: 2 * i, as: UInt16.self)) }
                } else {
                    for i in 0..<Self.laneCount { l[i] &-= UInt16(bigEndian: raw.load(fromByteOffset: 2 * i, as: UInt16.self)) }
                }
            }
        }
    }

    /// Writes the element's 2048 bytes into `out` (which holds exactly that many).
    private static func fillElement(key: UnsafeRawBufferPointer, value: Data, into out: UnsafeMutableRawBufferPointer) {
        var seed = elementHasher
        let length = UInt32(truncatingIfNeeded: key.count)
        withUnsafeBytes(of: length.bigEndian) { seed.update(bufferPointer: $0) }
        seed.update(bufferPointer: key)
        seed.update(data: value)
        let filled = withUnsafeTemporaryAllocation(byteCount: 32, alignment: 8) { d -> Bool in
            seed.finalize(into: d)
            return out.count == byteCount && AESKeystream.fill(out, key: UnsafeRawBufferPointer(d))
        }
        // A 32-byte key and a 2 KiB buffer cannot fail; a failure must not yield a silently
        // wrong commitment.
        guard filled else { preconditionFailure("AES-256-CTR keystream of a 32-byte key failed") }
    }

    /// The tag's prefix absorbed once, for every element.
    private static let elementHasher = TaggedHash.inlineHasher(tag: "ishtar/state-element")
}
