import CSecp256k1
import Foundation

/// An integer modulo the secp256k1 group order n.
///
/// Zero is a valid `Scalar` (a BIP-340 `s` may be zero, and differences of scalars may vanish);
/// places that need a nonzero value — secret keys, nonces, multipliers of points — reject it
/// themselves with ``CryptoError/zeroScalar(field:)``.
///
/// All arithmetic is done by libsecp256k1 (`secp256k1_ec_seckey_tweak_add/mul/negate`); those
/// functions refuse zero operands and zero results, so zero is handled here before calling them.
/// `Scalar` is a plain value and is not wiped from memory; secrets live in
/// ``Schnorr/PrivateKey`` and ``EOTS/SecretRandomness``, which are.
public struct Scalar: Sendable, Hashable {
    var bytes: Bytes32

    init(bytes: Bytes32) {
        self.bytes = bytes
    }

    /// Parses a 32-byte big-endian value, rejecting values ≥ n. Zero is accepted.
    public init(rawRepresentation: some DataProtocol) throws(CryptoError) {
        try self.init(rawRepresentation: rawRepresentation, field: "scalar")
    }

    /// Parses a 32-byte big-endian value, naming `field` in any error.
    public init(rawRepresentation: some DataProtocol, field: String) throws(CryptoError) {
        guard rawRepresentation.count == 32 else {
            throw .invalidLength(field: field, expected: 32, actual: rawRepresentation.count)
        }
        let bytes = Bytes32(uncheckedCopying: rawRepresentation)
        guard bytes.isZero || Self.isNonzeroBelowOrder(bytes) else {
            throw .scalarOutOfRange(field: field)
        }
        self.bytes = bytes
    }

    /// Interprets any number of bytes as a big-endian integer and reduces it modulo n, as
    /// BIP-340 does with hash outputs.
    public init(reducing data: some DataProtocol) {
        let input = [UInt8](data)
        // Fold 32-byte chunks from the most significant end: acc = acc·2²⁵⁶ + chunk (mod n).
        let firstChunk = input.count % 32 == 0 ? min(32, input.count) : input.count % 32
        var accumulator = Scalar.reducingChunk(input[0..<firstChunk])
        var offset = firstChunk
        while offset < input.count {
            accumulator = accumulator * Scalar.twoTo256 + Scalar.reducingChunk(input[offset..<offset + 32])
            offset += 32
        }
        self = accumulator
    }

    /// Up to 32 bytes, left-padded, reduced by at most one subtraction of n (2²⁵⁶ < 2n).
    private static func reducingChunk(_ chunk: ArraySlice<UInt8>) -> Scalar {
        var padded = [UInt8](repeating: 0, count: 32 - chunk.count)
        padded.append(contentsOf: chunk)
        let bytes = Bytes32(uncheckedCopying: padded)
        if bytes.isZero || isNonzeroBelowOrder(bytes) {
            return Scalar(bytes: bytes)
        }
        var result = [UInt8](repeating: 0, count: 32)
        var borrow = 0
        for i in stride(from: 31, through: 0, by: -1) {
            var difference = Int(padded[i]) - Int(orderBytes[i]) - borrow
            borrow = difference < 0 ? 1 : 0
            if difference < 0 { difference += 256 }
            result[i] = UInt8(difference)
        }
        return Scalar(bytes: Bytes32(uncheckedCopying: result))
    }

    static func isNonzeroBelowOrder(_ bytes: Bytes32) -> Bool {
        bytes.withUInt8Pointer { secp256k1_ec_seckey_verify(secpContext, $0) } == 1
    }

    /// The 32-byte big-endian encoding.
    public var rawRepresentation: Data { bytes.data }

    /// Whether this is 0 mod n.
    public var isZero: Bool { bytes.isZero }

    /// 0.
    public static let zero = Scalar(bytes: Bytes32())

    /// 1.
    public static let one: Scalar = {
        var raw = [UInt8](repeating: 0, count: 32)
        raw[31] = 1
        return Scalar(bytes: Bytes32(uncheckedCopying: raw))
    }()

    private static let orderBytes: [UInt8] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
        0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41,
    ]

    /// The group order n, 32 bytes big-endian.
    public static let order = Data(orderBytes)

    /// 2²⁵⁶ mod n = 2²⁵⁶ − n.
    private static let twoTo256: Scalar = {
        var raw = [UInt8](repeating: 0, count: 15)
        raw += [0x01, 0x45, 0x51, 0x23, 0x19, 0x50, 0xb7, 0x5f, 0xc4, 0x40, 0x2d, 0xa1, 0x73, 0x2f, 0xc9, 0xbe, 0xbf]
        return Scalar(bytes: Bytes32(uncheckedCopying: raw))
    }()

    /// Sum mod n.
    public static func + (lhs: Scalar, rhs: Scalar) -> Scalar {
        if lhs.isZero { return rhs }
        if rhs.isZero { return lhs }
        var result = lhs.bytes
        let ok = rhs.bytes.withUInt8Pointer { tweak in
            result.withMutableUInt8Pointer { secp256k1_ec_seckey_tweak_add(secpContext, $0, tweak) }
        }
        // Both operands are valid and nonzero, so the only refusal is a zero sum.
        return ok == 1 ? Scalar(bytes: result) : .zero
    }

    /// Difference mod n.
    public static func - (lhs: Scalar, rhs: Scalar) -> Scalar {
        lhs + rhs.negated
    }

    /// Product mod n.
    public static func * (lhs: Scalar, rhs: Scalar) -> Scalar {
        if lhs.isZero || rhs.isZero { return .zero }
        var result = lhs.bytes
        let ok = rhs.bytes.withUInt8Pointer { tweak in
            result.withMutableUInt8Pointer { secp256k1_ec_seckey_tweak_mul(secpContext, $0, tweak) }
        }
        // n is prime, so a product of nonzero scalars is nonzero and the call cannot refuse.
        return ok == 1 ? Scalar(bytes: result) : .zero
    }

    /// Additive inverse mod n.
    public static prefix func - (operand: Scalar) -> Scalar {
        operand.negated
    }

    /// −self mod n.
    public var negated: Scalar {
        if isZero { return self }
        var result = bytes
        _ = result.withMutableUInt8Pointer { secp256k1_ec_seckey_negate(secpContext, $0) }
        return Scalar(bytes: result)
    }

    /// The multiplicative inverse mod n, by Fermat: x^(n−2).
    ///
    /// Not constant-time; it is used to extract keys from public equivocation evidence.
    public func inverse() throws(CryptoError) -> Scalar {
        guard !isZero else { throw .zeroScalar(field: "scalar to invert") }
        var exponent = Self.orderBytes
        exponent[31] -= 2  // n ends in 0x41, so no borrow.
        var result = Scalar.one
        for byte in exponent {
            for bit in stride(from: 7, through: 0, by: -1) {
                result = result * result
                if (byte >> UInt8(bit)) & 1 == 1 {
                    result = result * self
                }
            }
        }
        return result
    }
}

extension Scalar: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// Redacted: a scalar may be a secret (a key, a nonce, a decryption key).
    public var description: String { "Scalar(<redacted>)" }
    /// Redacted, as ``description``.
    public var debugDescription: String { description }
    /// No children, so `dump` cannot print the bytes either.
    public var customMirror: Mirror { Mirror(self, children: [:]) }
}
