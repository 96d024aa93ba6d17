/// Every failure IshtarCrypto reports.
///
/// Each case names the field that was wrong so that a message printed by the CLI, or logged by a
/// node, points straight at the offending input.
public enum CryptoError: Error, Equatable, Sendable {
    /// A byte string had the wrong length.
    case invalidLength(field: String, expected: Int, actual: Int)
    /// A string was not hexadecimal: odd length or a character outside 0-9, a-f, A-F.
    case invalidHex(field: String)
    /// A 32-byte value that must be a scalar was ≥ the group order n.
    case scalarOutOfRange(field: String)
    /// A scalar that must be nonzero (a secret key, a nonce, a multiplier) was zero.
    case zeroScalar(field: String)
    /// Bytes that must encode a curve point do not: x ≥ p, or x³ + 7 has no square root.
    case pointNotOnCurve(field: String)
    /// A compressed point's prefix byte was neither 0x02 nor 0x03.
    case invalidPointEncoding(field: String)
    /// An operation produced the point at infinity, which has no encoding.
    case pointAtInfinity(field: String)
    /// A BIP-341 tweak was ≥ n or moved the key to infinity (negligible for honest inputs).
    case invalidTweak(field: String)
    /// An index did not address an element of a collection of `count` elements.
    case indexOutOfRange(field: String, index: Int, count: Int)
    /// EOTS extraction was given two signatures over the same message: nothing leaks.
    case eotsSameMessage
    /// EOTS extraction was given the same signature twice: nothing leaks.
    case eotsIdenticalSignatures
    /// EOTS extraction produced a key whose public key is not the claimed one, so the
    /// signatures were not made by that key with that randomness.
    case eotsExtractedKeyMismatch
    /// A BIP-340 signature is not a decryption of the given adaptor signature (its R.x differs).
    case adaptorSignatureMismatch
    /// The decryption key extracted from an adaptor signature does not satisfy t·G = T.
    case adaptorDecryptionKeyMismatch
    /// libsecp256k1 refused an operation that valid inputs should never make it refuse.
    case libraryFailure(operation: String)
}

extension CryptoError: CustomStringConvertible {
    /// One line, suitable for printing by the CLI.
    public var description: String {
        switch self {
        case let .invalidLength(field, expected, actual):
            return "\(field): expected \(expected) bytes, got \(actual)"
        case let .invalidHex(field):
            return "\(field): not valid hex (odd length or a non-hex character)"
        case let .scalarOutOfRange(field):
            return "\(field): value is not below the secp256k1 group order n"
        case let .zeroScalar(field):
            return "\(field): must not be zero"
        case let .pointNotOnCurve(field):
            return "\(field): not a point on secp256k1 (invalid x coordinate)"
        case let .invalidPointEncoding(field):
            return "\(field): compressed point must start with 0x02 or 0x03"
        case let .pointAtInfinity(field):
            return "\(field): result is the point at infinity"
        case let .invalidTweak(field):
            return "\(field): tweak is out of range or cancels the key"
        case let .indexOutOfRange(field, index, count):
            return "\(field): index \(index) out of range for \(count) elements"
        case .eotsSameMessage:
            return "EOTS extraction: both signatures are over the same message"
        case .eotsIdenticalSignatures:
            return "EOTS extraction: the two signatures are identical"
        case .eotsExtractedKeyMismatch:
            return "EOTS extraction: the extracted key does not match the public key"
        case .adaptorSignatureMismatch:
            return "adaptor signature: the signature's R.x does not match the adaptor signature"
        case .adaptorDecryptionKeyMismatch:
            return "adaptor signature: the extracted decryption key does not match the encryption key"
        case let .libraryFailure(operation):
            return "libsecp256k1 failed unexpectedly in \(operation)"
        }
    }
}
