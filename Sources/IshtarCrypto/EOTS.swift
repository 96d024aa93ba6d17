import Crypto
import Foundation

/// Extractable one-time signatures (PROTOCOL §4): BIP-340 signatures whose nonce is committed
/// in advance, so that signing two messages with one nonce reveals the secret key.
public enum EOTS {
    /// The secret nonce k for one height, a nonzero scalar. Wiped when the last copy dies.
    public struct SecretRandomness: Sendable {
        let secret: SecretBox
        /// `k·G` with its real parity.
        let noncePoint: Point

        /// Parses a 32-byte scalar, rejecting zero and values ≥ n.
        public init(rawRepresentation: some DataProtocol) throws(CryptoError) {
            let scalar = try Scalar(rawRepresentation: rawRepresentation, field: "EOTS secret randomness")
            try self.init(scalar: scalar)
        }

        init(scalar: Scalar) throws(CryptoError) {
            guard !scalar.isZero else { throw .zeroScalar(field: "EOTS secret randomness") }
            self.noncePoint = try Point(scalarTimesGenerator: scalar)
            self.secret = SecretBox(scalar.bytes)
        }

        /// The 32 bytes of k, for persisting. This copy is not wiped.
        public var rawRepresentation: Data { secret.value.data }

        /// The matching public randomness, x-only(k·G).
        public var publicRandomness: PublicRandomness { PublicRandomness(point: noncePoint) }
    }

    /// Public randomness R: the 32-byte x coordinate of k·G.
    public struct PublicRandomness: Sendable, Hashable, CustomStringConvertible {
        /// The 32-byte x coordinate.
        public let rawRepresentation: Data

        /// Parses 32 bytes, which must be the x coordinate of a curve point.
        public init(rawRepresentation: some DataProtocol) throws(CryptoError) {
            let bytes = Data(rawRepresentation)
            _ = try Point(xOnly: bytes, field: "EOTS public randomness")
            self.rawRepresentation = bytes
        }

        init(point: Point) {
            self.rawRepresentation = point.xOnlyRepresentation
        }

        /// The point x with even y (what BIP-340 verification uses as R).
        public var point: Point {
            do {
                return try Point(xOnly: rawRepresentation)
            } catch {
                // Validated as an x coordinate on construction.
                preconditionFailure("validated public randomness failed to lift")
            }
        }

        /// The x coordinate in hex.
        public var description: String { rawRepresentation.hexString }
    }

    /// An EOTS signature: only s (32 bytes); R is known from the committed public randomness.
    public struct Signature: Sendable, Hashable, CustomStringConvertible {
        /// s as a scalar.
        public let s: Scalar

        /// Parses 32 bytes, rejecting values ≥ n.
        public init(rawRepresentation: some DataProtocol) throws(CryptoError) {
            self.s = try Scalar(rawRepresentation: rawRepresentation, field: "EOTS signature")
        }

        init(s: Scalar) {
            self.s = s
        }

        /// The 32 bytes of s.
        public var rawRepresentation: Data { s.rawRepresentation }

        /// The equivalent BIP-340 signature `(R.x, s)` over `SHA256(message)`.
        public func asBIP340(publicRandomness: PublicRandomness) -> Schnorr.Signature {
            Schnorr.Signature(bytes: [UInt8](publicRandomness.rawRepresentation) + [UInt8](s.rawRepresentation))
        }

        /// s in hex (a signature is public).
        public var description: String { rawRepresentation.hexString }
    }

    /// SHA256(message): what EOTS actually signs with BIP-340.
    public static func messageDigest(_ message: some DataProtocol) -> Data {
        Data(SHA256.hash(data: Data(message)))
    }

    /// Derives the randomness for `height` deterministically, so a restarted provider
    /// regenerates exactly what it committed: k = HMAC-SHA256(key = secret key,
    /// BE8(height) ‖ chainID ‖ BE8(iter)) for the first iter = 0, 1, … giving a scalar in [1, n).
    public static func randomness(
        secretKey: Schnorr.PrivateKey, chainID: some DataProtocol, height: UInt64
    ) -> (secret: SecretRandomness, public: PublicRandomness) {
        let key = secretKey.secret.withUInt8Pointer { SymmetricKey(data: UnsafeBufferPointer(start: $0, count: 32)) }
        var prefix = Data(bigEndian8: height)
        prefix.append(contentsOf: chainID)
        var iteration: UInt64 = 0
        while true {
            var message = prefix
            message.append(Data(bigEndian8: iteration))
            var code = HMAC<SHA256>.authenticationCode(for: message, using: key).withUnsafeBytes { [UInt8]($0) }
            defer { code.withUnsafeMutableBytes { secureZero($0) } }
            // A 256-bit HMAC output is ≥ n or zero with probability below 2⁻¹²⁷ per try.
            if let scalar = try? Scalar(rawRepresentation: code, field: "EOTS randomness"),
               let secret = try? SecretRandomness(scalar: scalar) {
                return (secret, secret.publicRandomness)
            }
            iteration &+= 1
        }
    }

    /// Signs `message` (any bytes; it is hashed with SHA-256 first) with the one-time nonce:
    /// s = k' + e·d' where e = H_challenge(R.x ‖ P.x ‖ SHA256(message)) and k', d' are k, d
    /// negated when R, P have odd y. The result is the BIP-340 signature of SHA256(message)
    /// with nonce k.
    public static func sign(
        privateKey: Schnorr.PrivateKey, secretRandomness: SecretRandomness, message: some DataProtocol
    ) throws(CryptoError) -> Signature {
        let digest = messageDigest(message)
        let nonce = secretRandomness.noncePoint
        let e = TaggedHash.challenge(
            nonceX: nonce.xOnlyRepresentation, publicKeyX: privateKey.point.xOnlyRepresentation, message: digest)
        let k = Scalar(bytes: secretRandomness.secret.value)
        let d = privateKey.scalar
        let kEven = nonce.hasEvenY ? k : k.negated
        let dEven = privateKey.point.hasEvenY ? d : d.negated
        return Signature(s: kEven + e * dEven)
    }

    /// Whether `signature` is valid for `message` under `publicKey` and `publicRandomness`:
    /// exactly BIP-340 verification of `(R.x, s)` over SHA256(message).
    public static func isValid(
        signature: Signature, publicKey: Schnorr.PublicKey, publicRandomness: PublicRandomness,
        message: some DataProtocol
    ) -> Bool {
        let digest = messageDigest(message)
        return publicKey.isValidSignature(signature.asBIP340(publicRandomness: publicRandomness), for: digest)
    }

    /// Recovers the secret key from two signatures made with the same randomness on different
    /// messages: d = (s1 − s2)/(e1 − e2) mod n, checked against `publicKey`.
    ///
    /// The key is returned in its even-y form (the one `publicKey` lifts to); when the original
    /// secret had odd y this is its negation, which signs identically under BIP-340.
    public static func extract(
        publicKey: Schnorr.PublicKey, publicRandomness: PublicRandomness,
        message1: some DataProtocol, signature1: Signature,
        message2: some DataProtocol, signature2: Signature
    ) throws(CryptoError) -> Schnorr.PrivateKey {
        let digest1 = messageDigest(message1)
        let digest2 = messageDigest(message2)
        guard digest1 != digest2 else { throw .eotsSameMessage }
        guard signature1 != signature2 else { throw .eotsIdenticalSignatures }
        let e1 = TaggedHash.challenge(
            nonceX: publicRandomness.rawRepresentation, publicKeyX: publicKey.rawRepresentation, message: digest1)
        let e2 = TaggedHash.challenge(
            nonceX: publicRandomness.rawRepresentation, publicKeyX: publicKey.rawRepresentation, message: digest2)
        let challengeDifference = e1 - e2
        // Distinct digests colliding mod n would be a SHA-256 break; treat it as a mismatch.
        guard let inverse = try? challengeDifference.inverse() else { throw .eotsExtractedKeyMismatch }
        let d = (signature1.s - signature2.s) * inverse
        guard let key = try? Schnorr.PrivateKey(scalar: d), key.point == publicKey.point else {
            throw .eotsExtractedKeyMismatch
        }
        return key
    }

    /// The message a finality provider signs for a block: BE8(height) ‖ blockHash (32 bytes).
    public static func finalityVoteMessage(height: UInt64, blockHash: Data) throws(CryptoError) -> Data {
        guard blockHash.count == 32 else {
            throw .invalidLength(field: "block hash", expected: 32, actual: blockHash.count)
        }
        return Data(bigEndian8: height) + blockHash
    }
}

extension EOTS.SecretRandomness: Equatable {
    /// Equal when the nonces are equal (compared without early exit).
    public static func == (lhs: EOTS.SecretRandomness, rhs: EOTS.SecretRandomness) -> Bool {
        lhs.secret.value == rhs.secret.value
    }
}

extension EOTS.SecretRandomness: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// Redacted; shows only the public randomness.
    public var description: String {
        "EOTS.SecretRandomness(<redacted>, public: \(publicRandomness.rawRepresentation.hexString))"
    }
    /// Redacted, as ``description``.
    public var debugDescription: String { description }
    /// No children, so `dump` cannot print the secret either.
    public var customMirror: Mirror { Mirror(self, children: [:]) }
}

extension Data {
    /// The 8-byte big-endian encoding of `value` (PROTOCOL's BE8).
    public init(bigEndian8 value: UInt64) {
        var big = value.bigEndian
        self = Swift.withUnsafeBytes(of: &big) { Data($0) }
    }
}
