import CSecp256k1
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Exactly 32 bytes stored inline, so scalar arithmetic never allocates.
struct Bytes32: Sendable {
    private var storage: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)

    init() {}

    /// Copies `bytes`, which the caller has already checked to be 32 bytes long.
    init(uncheckedCopying bytes: some DataProtocol) {
        Swift.withUnsafeMutableBytes(of: &storage) { destination in
            _ = bytes.copyBytes(to: destination)
        }
    }

    var isZero: Bool {
        storage.0 | storage.1 | storage.2 | storage.3 == 0
    }

    var data: Data {
        Swift.withUnsafeBytes(of: storage) { Data($0) }
    }

    func withUInt8Pointer<R, E: Error>(
        _ body: (UnsafePointer<UInt8>) throws(E) -> R
    ) throws(E) -> R {
        // Work on a copy that is wiped afterwards, since the bytes may be a secret.
        var copy = self
        defer { copy.zeroize() }
        return try copy.withMutableUInt8Pointer { (pointer) throws(E) -> R in
            try body(UnsafePointer(pointer))
        }
    }

    mutating func withMutableUInt8Pointer<R, E: Error>(
        _ body: (UnsafeMutablePointer<UInt8>) throws(E) -> R
    ) throws(E) -> R {
        try Swift.withUnsafeMutableBytes(of: &storage) { (raw) throws(E) -> R in
            // A 32-byte stored tuple always has an address; `unsafelyUnwrapped` states that.
            try body(raw.baseAddress.unsafelyUnwrapped.assumingMemoryBound(to: UInt8.self))
        }
    }

    /// Overwrites the bytes with zeros in a way the optimizer may not remove.
    mutating func zeroize() {
        Swift.withUnsafeMutableBytes(of: &storage) { raw in
            secureZero(raw)
        }
    }

    /// Big-endian byte i (0 = most significant).
    subscript(index: Int) -> UInt8 {
        Swift.withUnsafeBytes(of: storage) { $0[index] }
    }
}

extension Bytes32: Equatable, Hashable {
    static func == (lhs: Bytes32, rhs: Bytes32) -> Bool {
        // XOR-accumulate so the comparison time does not depend on where the values differ.
        ((lhs.storage.0 ^ rhs.storage.0) | (lhs.storage.1 ^ rhs.storage.1)
            | (lhs.storage.2 ^ rhs.storage.2) | (lhs.storage.3 ^ rhs.storage.3)) == 0
    }

    func hash(into hasher: inout Hasher) {
        hasher.combine(storage.0)
        hasher.combine(storage.1)
        hasher.combine(storage.2)
        hasher.combine(storage.3)
    }
}

/// Zeroes memory with a call the optimizer must keep (a plain loop before free may be elided).
func secureZero(_ buffer: UnsafeMutableRawBufferPointer) {
    guard let base = buffer.baseAddress, buffer.count > 0 else { return }
    #if canImport(Darwin)
    _ = memset_s(base, buffer.count, 0, buffer.count)
    #else
    explicit_bzero(base, buffer.count)
    #endif
}

/// Holds 32 secret bytes on the heap and wipes them when the last copy of the owning value goes
/// away. Value types (`Schnorr.PrivateKey`, `EOTS.SecretRandomness`) share one box.
///
/// `@unchecked Sendable`: the bytes are written once in `init` and only read afterwards; the
/// one other write happens in `deinit`, when no other reference can exist.
final class SecretBox: @unchecked Sendable {
    private var bytes: Bytes32

    init(_ bytes: Bytes32) {
        self.bytes = bytes
    }

    var value: Bytes32 { bytes }

    func withUInt8Pointer<R, E: Error>(
        _ body: (UnsafePointer<UInt8>) throws(E) -> R
    ) throws(E) -> R {
        try bytes.withUInt8Pointer(body)
    }

    deinit {
        bytes.zeroize()
    }
}

/// Cryptographically secure random bytes from the system generator (getrandom / arc4random).
func secureRandomBytes(count: Int) -> [UInt8] {
    var generator = SystemRandomNumberGenerator()
    var out = [UInt8](repeating: 0, count: count)
    var index = 0
    while index < count {
        var word = generator.next()
        withUnsafeBytes(of: &word) { raw in
            for byte in raw where index < count {
                out[index] = byte
                index += 1
            }
        }
        word = 0
    }
    return out
}

/// The one libsecp256k1 context of the process.
///
/// Creating and randomizing a context costs far more than any single operation, so it is made
/// once. `@unchecked Sendable`: after `secp256k1_context_randomize` in `init`, the context is
/// only ever passed as `const secp256k1_context *`, and libsecp256k1 documents contexts as safe
/// for concurrent use by functions that take them const.
final class Secp256k1Context: @unchecked Sendable {
    static let shared = Secp256k1Context()

    let pointer: OpaquePointer

    private init() {
        guard let context = secp256k1_context_create(UInt32(SECP256K1_CONTEXT_NONE)) else {
            // Only a failed malloc of a few hundred bytes gets here; nothing can continue.
            preconditionFailure("secp256k1_context_create failed")
        }
        var seed = secureRandomBytes(count: 32)
        // Randomization blinds the signing multiplication against side channels; it cannot fail
        // on a fresh (non-static) context, and a failure would only leave it unblinded.
        _ = secp256k1_context_randomize(context, &seed)
        seed.withUnsafeMutableBytes { secureZero($0) }
        pointer = context
    }

    deinit {
        secp256k1_context_destroy(pointer)
    }
}

/// The context pointer, for brevity at call sites.
var secpContext: OpaquePointer { Secp256k1Context.shared.pointer }

extension DataProtocol {
    /// Contiguous bytes for passing to C.
    var contiguousBytes: [UInt8] { [UInt8](self) }
}

extension Array where Element == UInt8 {
    /// Calls `body` with a pointer valid for `count` bytes; never nil even when empty, because
    /// libsecp256k1 only accepts NULL together with a zero length and a dummy byte is harmless.
    func withNonNullPointer<R>(_ body: (UnsafePointer<UInt8>) -> R) -> R {
        if isEmpty {
            var dummy: UInt8 = 0
            return body(&dummy)
        }
        return withUnsafeBufferPointer { body($0.baseAddress.unsafelyUnwrapped) }
    }
}
