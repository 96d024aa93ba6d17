import Crypto
import CryptoExtras
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
    public mutating func insert(key: Data, value: Data) { combine(key: key, value: value, adding: true) }

    /// Removes `(key, value)` from the committed set (it must have been inserted).
    public mutating func remove(key: Data, value: Data) { combine(key: key, value: value, adding: false) }

    /// Adds or subtracts the element of `(key, value)` lane-wise, reading the big-endian lanes
    /// straight from the keystream.
    private mutating func combine(key: Data, value: Data, adding: Bool) {
        let stream = Self.elementBytes(key: key, value: value)
        lanes.withUnsafeMutableBufferPointer { l in
            stream.withUnsafeBytes { raw in
                if adding {
                    for i in 0..<Self.laneCount { l[i] &+= UInt16(raw[2 * i]) << 8 | UInt16(raw[2 * i + 1]) }
                } else {
                    for i in 0..<Self.laneCount { l[i] &-= UInt16(raw[2 * i]) << 8 | UInt16(raw[2 * i + 1]) }
                }
            }
        }
    }

    /// The 1024 lanes of one pair.
    static func element(key: Data, value: Data) -> [UInt16] {
        let stream = elementBytes(key: key, value: value)
        return [UInt16](unsafeUninitializedCapacity: laneCount) { out, initialized in
            stream.withUnsafeBytes { raw in
                for i in 0..<laneCount { out[i] = UInt16(raw[2 * i]) << 8 | UInt16(raw[2 * i + 1]) }
            }
            initialized = laneCount
        }
    }

    /// The element's 2048 bytes (see the type's documentation).
    static func elementBytes(key: Data, value: Data) -> Data {
        var seed = TaggedHash.inlineHasher(tag: "ishtar/state-element")
        let length = UInt32(truncatingIfNeeded: key.count)
        withUnsafeBytes(of: length.bigEndian) { seed.update(bufferPointer: $0) }
        seed.update(data: key)
        seed.update(data: value)
        let d = seed.finalize()
        // The keystream is the encryption of zeros; with a 32-byte key and a 16-byte counter
        // block neither call can fail, but a failure must not yield a silently wrong commitment.
        guard let stream = try? AES._CTR.encrypt(zeroStream, using: SymmetricKey(data: d), nonce: zeroCounter),
              stream.count == byteCount else {
            preconditionFailure("AES-256-CTR keystream of a 32-byte key failed")
        }
        return stream
    }

    private static let zeroStream = Data(count: byteCount)
    // A full 16-byte counter block of zeros: blocks 0, 1, … 127.
    private static let zeroCounter: AES._CTR.Nonce = {
        guard let n = try? AES._CTR.Nonce(nonceBytes: [UInt8](repeating: 0, count: 16)) else {
            preconditionFailure("a 16-byte AES-CTR counter block is always accepted")
        }
        return n
    }()
}
