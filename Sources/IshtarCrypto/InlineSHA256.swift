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
