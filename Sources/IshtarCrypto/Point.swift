import CSecp256k1
import Foundation

/// A point on secp256k1 other than the point at infinity.
///
/// Infinity has no encoding anywhere in Ishtar's formats, so it is not a value of this type:
/// operations that can reach it return `nil` (``+(_:_:)``, ``-(_:_:)``) or throw
/// (``multiplied(by:)``, ``init(scalarTimesGenerator:)`` with a zero scalar).
public struct Point: Sendable {
    var pubkey: secp256k1_pubkey

    init(pubkey: secp256k1_pubkey) {
        self.pubkey = pubkey
    }

    /// Parses a 33-byte SEC1 compressed point (0x02/0x03 ‖ x).
    public init(compressedRepresentation: some DataProtocol) throws(CryptoError) {
        try self.init(compressedRepresentation: compressedRepresentation, field: "point")
    }

    /// Parses a 33-byte compressed point, naming `field` in any error.
    public init(compressedRepresentation: some DataProtocol, field: String) throws(CryptoError) {
        let bytes = [UInt8](compressedRepresentation)
        guard bytes.count == 33 else {
            throw .invalidLength(field: field, expected: 33, actual: bytes.count)
        }
        guard bytes[0] == 0x02 || bytes[0] == 0x03 else { throw .invalidPointEncoding(field: field) }
        var pubkey = secp256k1_pubkey()
        guard secp256k1_ec_pubkey_parse(secpContext, &pubkey, bytes, 33) == 1 else {
            throw .pointNotOnCurve(field: field)
        }
        self.pubkey = pubkey
    }

    /// Lifts a 32-byte x coordinate to the point with that x and even y (BIP-340 `lift_x`).
    public init(xOnly: some DataProtocol) throws(CryptoError) {
        try self.init(xOnly: xOnly, field: "x-only point")
    }

    /// Lifts a 32-byte x coordinate, naming `field` in any error.
    public init(xOnly: some DataProtocol, field: String) throws(CryptoError) {
        guard xOnly.count == 32 else {
            throw .invalidLength(field: field, expected: 32, actual: xOnly.count)
        }
        try self.init(compressedRepresentation: [0x02] + [UInt8](xOnly), field: field)
    }

    /// `scalar·G`. Throws ``CryptoError/zeroScalar(field:)`` for zero, whose product is infinity.
    public init(scalarTimesGenerator scalar: Scalar) throws(CryptoError) {
        guard !scalar.isZero else { throw .zeroScalar(field: "multiplier of G") }
        var pubkey = secp256k1_pubkey()
        let ok = scalar.bytes.withUInt8Pointer { secp256k1_ec_pubkey_create(secpContext, &pubkey, $0) }
        guard ok == 1 else { throw .libraryFailure(operation: "secp256k1_ec_pubkey_create") }
        self.pubkey = pubkey
    }

    /// `scalar·G`, or `nil` (infinity) when `scalar` is zero.
    static func generatorMultipleOrInfinity(_ scalar: Scalar) -> Point? {
        try? Point(scalarTimesGenerator: scalar)
    }

    /// The generator G.
    public static let generator: Point = {
        do {
            return try Point(scalarTimesGenerator: .one)
        } catch {
            // 1·G cannot fail; reaching this means libsecp256k1 itself is broken.
            preconditionFailure("libsecp256k1 could not compute 1·G")
        }
    }()

    /// 33 bytes: 0x02 (even y) or 0x03 (odd y), then x.
    public var compressedRepresentation: Data {
        Data(compressedBytes)
    }

    var compressedBytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: 33)
        var length = 33
        var key = pubkey
        // Serializing a parsed key into a 33-byte buffer always succeeds.
        _ = secp256k1_ec_pubkey_serialize(secpContext, &out, &length, &key, UInt32(SECP256K1_EC_COMPRESSED))
        return out
    }

    /// The 32-byte x coordinate (BIP-340 x-only form).
    public var xOnlyRepresentation: Data {
        Data(compressedBytes[1...])
    }

    /// Whether y is even, i.e. whether this is the point `lift_x(x)` BIP-340 keys stand for.
    public var hasEvenY: Bool {
        compressedBytes[0] == 0x02
    }

    /// −P.
    public var negated: Point {
        var key = pubkey
        // Negating a valid key always succeeds.
        _ = secp256k1_ec_pubkey_negate(secpContext, &key)
        return Point(pubkey: key)
    }

    /// This point, or its negation, whichever has even y.
    public var withEvenY: Point {
        hasEvenY ? self : negated
    }

    /// The sum, or `nil` when it is the point at infinity (P + (−P)).
    public static func + (lhs: Point, rhs: Point) -> Point? {
        var out = secp256k1_pubkey()
        var a = lhs.pubkey
        var b = rhs.pubkey
        let ok = withUnsafePointer(to: &a) { pa in
            withUnsafePointer(to: &b) { pb in
                let inputs: [UnsafePointer<secp256k1_pubkey>?] = [pa, pb]
                return secp256k1_ec_pubkey_combine(secpContext, &out, inputs, 2)
            }
        }
        return ok == 1 ? Point(pubkey: out) : nil
    }

    /// The difference, or `nil` when the points are equal.
    public static func - (lhs: Point, rhs: Point) -> Point? {
        lhs + rhs.negated
    }

    /// `scalar·P`. Throws ``CryptoError/zeroScalar(field:)`` for zero, whose product is infinity.
    public func multiplied(by scalar: Scalar) throws(CryptoError) -> Point {
        guard !scalar.isZero else { throw .zeroScalar(field: "point multiplier") }
        var key = pubkey
        let ok = scalar.bytes.withUInt8Pointer { secp256k1_ec_pubkey_tweak_mul(secpContext, &key, $0) }
        guard ok == 1 else { throw .libraryFailure(operation: "secp256k1_ec_pubkey_tweak_mul") }
        return Point(pubkey: key)
    }

    /// `scalar·P`, or `nil` (infinity) when `scalar` is zero.
    func multipliedOrInfinity(by scalar: Scalar) -> Point? {
        try? multiplied(by: scalar)
    }
}

/// Sum in the group with infinity represented as `nil`.
func addOrInfinity(_ lhs: Point?, _ rhs: Point?) -> Point? {
    guard let lhs else { return rhs }
    guard let rhs else { return lhs }
    return lhs + rhs
}

extension Point: Hashable {
    /// Equal when they are the same curve point.
    public static func == (lhs: Point, rhs: Point) -> Bool {
        var a = lhs.pubkey
        var b = rhs.pubkey
        return secp256k1_ec_pubkey_cmp(secpContext, &a, &b) == 0
    }

    /// Hashes the compressed encoding, which is canonical.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(compressedBytes)
    }
}

extension Point: CustomStringConvertible {
    /// The compressed encoding in hex.
    public var description: String { "Point(\(compressedRepresentation.hexString))" }
}
