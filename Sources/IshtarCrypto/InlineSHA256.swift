// swift-crypto's BoringSSL, reached directly (see ``InlineSHA256``): the C module swift-crypto
// builds for its own use, visible to dependents of its `Crypto` product and pinned with it by
// Package.resolved. If a later swift-crypto renamed it, this file is the one place to change.
import CCryptoBoringSSL
import Foundation

/// SHA-256 in a context that lives inline (on the stack, or in the value holding it): the
/// same BoringSSL code swift-crypto's `SHA256` runs, without the context object that type
/// allocates per hasher, copies again to finalize and zeroizes twice. For short inputs —
/// a Merkle node (65 bytes), a vote digest (40), a tagged hash of a key — that overhead
/// cost more than the hashing itself; nothing here is secret, so nothing needs zeroizing.
///
/// A value type: copying it forks the hash state (the copy is independent), which is how a
/// tag prefix absorbed once is reused (``TaggedHash``).
public struct InlineSHA256: Sendable {
    private var context = SHA256_CTX()

    /// A fresh state.
    public init() {
        // SHA256_Init only fills the struct and always returns 1.
        _ = CCryptoBoringSSL_SHA256_Init(&context)
    }

    /// Absorbs `bytes`.
    public mutating func update(bufferPointer bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        _ = CCryptoBoringSSL_SHA256_Update(&context, base, bytes.count)
    }

    /// Absorbs `data`.
    public mutating func update(data: Data) {
        data.withUnsafeBytes { update(bufferPointer: $0) }
    }

    /// Absorbs `bytes` (any byte collection; contiguous ones in one call).
    public mutating func update(bytes: some DataProtocol) {
        for region in bytes.regions { region.withUnsafeBytes { update(bufferPointer: $0) } }
    }

    /// Writes the 32-byte digest to the start of `out` (which must hold 32 bytes; a shorter
    /// buffer receives nothing). This state is not changed: finalizing works on a copy.
    public func finalize(into out: UnsafeMutableRawBufferPointer) {
        guard out.count >= 32, let base = out.baseAddress else { return }
        var copy = context
        _ = CCryptoBoringSSL_SHA256_Final(base.assumingMemoryBound(to: UInt8.self), &copy)
    }

    /// The 32-byte digest.
    public func finalize() -> Data {
        var digest = Data(count: 32)
        digest.withUnsafeMutableBytes { finalize(into: $0) }
        return digest
    }

    /// SHA-256 of `bytes`.
    public static func hash(bufferPointer bytes: UnsafeRawBufferPointer) -> Data {
        var h = InlineSHA256()
        h.update(bufferPointer: bytes)
        return h.finalize()
    }

    /// SHA-256 of `data`.
    public static func hash(data: Data) -> Data {
        var h = InlineSHA256()
        h.update(data: data)
        return h.finalize()
    }
}

/// SHA-256 of messages that fit in two blocks with their padding (≤ 119 bytes), computed by
/// calling the compression function directly. A Merkle node is 65 bytes and every vote walks
/// ~14 of them: through `SHA256_Update`/`SHA256_Final` each node paid for buffering, length
/// bookkeeping and a second padding pass around its two compressions, which with SHA-NI cost
/// about as much as the compressions themselves.
public struct ShortSHA256Block: Sendable {
    /// Two blocks: the message, 0x80, zeros and the big-endian bit length at the end of the
    /// last block used.
    private var blocks: (SIMD64<UInt8>, SIMD64<UInt8>) = (.zero, .zero)
    /// The message length this buffer is padded for.
    public let length: Int
    private let blockCount: Int

    /// The longest message two blocks hold with padding (64 × 2 − 1 − 8).
    public static let maximumLength = 119

    /// A buffer padded for a message of `length` bytes (`length` ≤ ``maximumLength``; a longer
    /// length is clamped, so callers must check it).
    public init(length: Int) {
        let length = max(0, min(length, Self.maximumLength))
        self.length = length
        self.blockCount = length + 9 <= 64 ? 1 : 2
        let bits = UInt64(length) * 8
        withUnsafeMutableBytes(of: &blocks) { b in
            b[length] = 0x80
            let end = 64 * blockCount
            for i in 0..<8 { b[end - 1 - i] = UInt8(truncatingIfNeeded: bits >> (8 * UInt64(i))) }
        }
    }

    /// Writes message bytes at `offset` (the caller keeps `offset + bytes.count ≤ length`;
    /// bytes past the message are ignored).
    public mutating func write(_ bytes: UnsafeRawBufferPointer, at offset: Int) {
        let n = max(0, min(bytes.count, length - offset))
        guard n > 0, offset >= 0, let src = bytes.baseAddress else { return }
        withUnsafeMutableBytes(of: &blocks) { b in
            b.baseAddress.map { ($0 + offset).copyMemory(from: src, byteCount: n) }
        }
    }

    /// Writes one message byte at `offset` (< ``length``).
    public mutating func write(byte: UInt8, at offset: Int) {
        guard offset >= 0, offset < length else { return }
        withUnsafeMutableBytes(of: &blocks) { $0[offset] = byte }
    }

    /// The digest of the message written so far, into the first 32 bytes of `out`.
    public func digest(into out: UnsafeMutableRawBufferPointer) {
        guard out.count >= 32 else { return }
        // FIPS 180-4 §5.3.3: the initial hash value.
        var state: (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32) = (
            0x6a09_e667, 0xbb67_ae85, 0x3c6e_f372, 0xa54f_f53a, 0x510e_527f, 0x9b05_688c, 0x1f83_d9ab, 0x5be0_cd19)
        withUnsafeBytes(of: blocks) { b in
            withUnsafeMutableBytes(of: &state) { s in
                guard let words = s.baseAddress, let bytes = b.baseAddress else { return }
                CCryptoBoringSSL_SHA256_TransformBlocks(
                    words.assumingMemoryBound(to: UInt32.self), bytes.assumingMemoryBound(to: UInt8.self), blockCount)
            }
        }
        withUnsafeBytes(of: state) { s in
            for word in 0..<8 {
                let w = s.load(fromByteOffset: 4 * word, as: UInt32.self).bigEndian
                out.storeBytes(of: w, toByteOffset: 4 * word, as: UInt32.self)
            }
        }
    }
}
