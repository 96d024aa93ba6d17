import Crypto
import Foundation

/// A Schnorr adaptor (pre-)signature, PROTOCOL §3: a BIP-340 signature "encrypted" under a
/// point T, which anyone who knows t (t·G = T) can turn into a valid BIP-340 signature, and
/// from which, given that signature, anyone can recover t.
///
/// The construction and encoding are those of secp256k1-zkp's `schnorr_adaptor` module, whose
/// vectors (`Fixtures/schnorr-adaptor-*.csv`) this type reproduces byte for byte. Note that the
/// nonce hash takes the signer's key as 32 x-only bytes (PROTOCOL §3 says "P33"; the vectors
/// only pass with x-only, so the vectors win).
///
/// Encoding, 65 bytes: `(0x02 if R0.y is even else 0x03) ‖ R0.x ‖ s0`.
public struct AdaptorSignature: Sendable, Hashable {
    /// R0 = R + T with its real parity.
    let noncePoint: Point
    /// s0 = k + e·d.
    let s0: Scalar

    init(noncePoint: Point, s0: Scalar) {
        self.noncePoint = noncePoint
        self.s0 = s0
    }

    /// Parses 65 bytes: a compressed point R0 (must be on the curve) then s0 (must be < n).
    public init(rawRepresentation: some DataProtocol) throws(CryptoError) {
        let bytes = [UInt8](rawRepresentation)
        guard bytes.count == 65 else {
            throw .invalidLength(field: "adaptor signature", expected: 65, actual: bytes.count)
        }
        self.noncePoint = try Point(compressedRepresentation: bytes[0..<33], field: "adaptor signature nonce")
        self.s0 = try Scalar(rawRepresentation: bytes[33..<65], field: "adaptor signature s")
    }

    /// The 65-byte encoding.
    public var rawRepresentation: Data {
        noncePoint.compressedRepresentation + s0.rawRepresentation
    }

    /// EncSign: the adaptor signature of a 32-byte `message` by `privateKey`, encrypted under
    /// `encryptionKey` (any point, either parity), with 32 bytes of auxiliary randomness.
    public static func encryptedSign(
        privateKey: Schnorr.PrivateKey, encryptionKey: Point, message: some DataProtocol,
        auxiliaryRandomness: some DataProtocol
    ) throws(CryptoError) -> AdaptorSignature {
        let messageBytes = Data(message)
        guard messageBytes.count == 32 else {
            throw .invalidLength(field: "adaptor message", expected: 32, actual: messageBytes.count)
        }
        guard auxiliaryRandomness.count == 32 else {
            throw .invalidLength(field: "auxiliary randomness", expected: 32, actual: auxiliaryRandomness.count)
        }
        let publicPoint = privateKey.point
        let d = publicPoint.hasEvenY ? privateKey.scalar : privateKey.scalar.negated
        let publicKeyX = publicPoint.xOnlyRepresentation

        // Mask the key with the hashed aux, as BIP-340 does, so a weak aux cannot leak d.
        let mask = TaggedHash.hash(tag: "SchnorrAdaptor/aux", data: auxiliaryRandomness)
        var masked = [UInt8](d.rawRepresentation)
        defer { masked.withUnsafeMutableBytes { secureZero($0) } }
        for i in 0..<32 {
            masked[i] ^= mask[mask.startIndex + i]
        }
        var nonceHasher = TaggedHash.hasher(tag: "SchnorrAdaptor/nonce")
        nonceHasher.update(contiguous: masked)
        nonceHasher.update(contiguous: encryptionKey.compressedRepresentation)
        nonceHasher.update(contiguous: publicKeyX)
        nonceHasher.update(contiguous: messageBytes)
        var k = Scalar(reducing: Data(nonceHasher.finalize()))
        guard !k.isZero else { throw .zeroScalar(field: "adaptor nonce") }

        let r = try Point(scalarTimesGenerator: k)
        guard let r0 = r + encryptionKey else { throw .pointAtInfinity(field: "adaptor nonce R + T") }
        if !r0.hasEvenY {
            k = k.negated
        }
        let e = TaggedHash.challenge(nonceX: r0.xOnlyRepresentation, publicKeyX: publicKeyX, message: messageBytes)
        return AdaptorSignature(noncePoint: r0, s0: k + e * d)
    }

    /// EncVerify: whether this is a valid adaptor signature of the 32-byte `message` by
    /// `publicKey` under `encryptionKey`. Computes R = s0·G − e·P and accepts iff
    /// R0 − R (R0.y even) or R0 + R (R0.y odd) equals T.
    public func isValid(publicKey: Schnorr.PublicKey, encryptionKey: Point, message: some DataProtocol) -> Bool {
        let messageBytes = Data(message)
        guard messageBytes.count == 32 else { return false }
        let e = TaggedHash.challenge(
            nonceX: noncePoint.xOnlyRepresentation, publicKeyX: publicKey.rawRepresentation, message: messageBytes)
        let sG = Point.generatorMultipleOrInfinity(s0)
        let eP = publicKey.point.multipliedOrInfinity(by: e)
        guard let r = addOrInfinity(sG, eP?.negated) else { return false }
        let recovered = noncePoint.hasEvenY ? noncePoint - r : noncePoint + r
        return recovered == encryptionKey
    }

    /// Decrypt: the BIP-340 signature (R0.x, s) with s = s0 + t if R0.y is even, else s0 − t.
    ///
    /// `decryptionKey` must be the exact discrete log of the encryption key used to sign
    /// (for Ishtar's provider keys see ``decryptionKey(for:)``); otherwise the result simply
    /// fails BIP-340 verification.
    public func decrypted(with decryptionKey: Scalar) -> Schnorr.Signature {
        let s = noncePoint.hasEvenY ? s0 + decryptionKey : s0 - decryptionKey
        return Schnorr.Signature(bytes: [UInt8](noncePoint.xOnlyRepresentation) + [UInt8](s.rawRepresentation))
    }

    /// Extract: recovers t from this adaptor signature and its decryption `signature`:
    /// t = s − s0 if R0.y is even, else s0 − s.
    ///
    /// Throws ``CryptoError/adaptorSignatureMismatch`` if the signature's R.x is not R0.x, and
    /// ``CryptoError/adaptorDecryptionKeyMismatch`` unless t·G equals `encryptionKey` exactly
    /// (same parity: extraction yields the very t that decrypted, so no parity slack is needed).
    public func extractDecryptionKey(
        from signature: Schnorr.Signature, encryptionKey: Point
    ) throws(CryptoError) -> Scalar {
        guard signature.nonceX == noncePoint.xOnlyRepresentation else { throw .adaptorSignatureMismatch }
        let s = try Scalar(rawRepresentation: signature.sBytes, field: "signature s")
        let t = noncePoint.hasEvenY ? s - s0 : s0 - s
        guard let tG = Point.generatorMultipleOrInfinity(t), tG == encryptionKey else {
            throw .adaptorDecryptionKeyMismatch
        }
        return t
    }

    /// Ishtar's encryption key for a finality provider: the provider's public point with y
    /// forced even, i.e. `lift_x` of its x-only key.
    public static func encryptionKey(for providerKey: Schnorr.PublicKey) -> Point {
        providerKey.point
    }

    /// Ishtar's decryption key for a finality provider: the secret, negated if its point has odd
    /// y, so that t·G = ``encryptionKey(for:)`` of the provider's public key.
    public static func decryptionKey(for providerKey: Schnorr.PrivateKey) -> Scalar {
        providerKey.point.hasEvenY ? providerKey.scalar : providerKey.scalar.negated
    }
}

extension AdaptorSignature: CustomStringConvertible {
    /// The 65-byte encoding in hex.
    public var description: String { rawRepresentation.hexString }
}
