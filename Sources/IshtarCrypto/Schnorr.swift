import CSecp256k1
import Crypto
import Foundation
import Synchronization

/// BIP-340 Schnorr signatures and BIP-341 key tweaking over libsecp256k1.
public enum Schnorr {
    /// A secp256k1 secret key: a scalar in [1, n). Its bytes are wiped when the last copy dies.
    public struct PrivateKey: Sendable {
        let secret: SecretBox
        let keypair: KeypairBox

        /// `d·G` with its real parity (BIP-340 signs with −d when it is odd).
        public let point: Point

        /// Generates a key from the system's secure random number generator.
        public init() {
            while true {
                var candidate = secureRandomBytes(count: 32)
                defer { candidate.withUnsafeMutableBytes { secureZero($0) } }
                if let key = try? PrivateKey(rawRepresentation: candidate) {
                    self = key
                    return
                }
            }
        }

        /// Parses a 32-byte big-endian secret, rejecting zero and values ≥ n.
        public init(rawRepresentation: some DataProtocol) throws(CryptoError) {
            let scalar = try Scalar(rawRepresentation: rawRepresentation, field: "private key")
            try self.init(scalar: scalar)
        }

        /// A key from a nonzero scalar.
        public init(scalar: Scalar) throws(CryptoError) {
            guard !scalar.isZero else { throw .zeroScalar(field: "private key") }
            let box = SecretBox(scalar.bytes)
            // One keypair computation yields both the public point and the signing state, so
            // signing later costs one point multiplication, as a raw libsecp256k1 call does.
            let keypair = try KeypairBox(secret: box)
            self.secret = box
            self.keypair = keypair
            self.point = keypair.publicPoint
        }

        /// The 32-byte secret. Handle with care: this copy is not wiped.
        public var rawRepresentation: Data { secret.value.data }

        /// The secret as a scalar.
        public var scalar: Scalar { Scalar(bytes: secret.value) }

        /// The BIP-340 x-only public key.
        public var publicKey: PublicKey { PublicKey(point: point) }

        /// The BIP-340 signature of `message` (any length) with 32 bytes of auxiliary randomness.
        ///
        /// libsecp256k1 0.2.0's `secp256k1_schnorrsig_sign32` takes only 32-byte messages, so this
        /// uses `secp256k1_schnorrsig_sign_custom`, which implements BIP-340 for any length
        /// (the 2022 vectors include 0-, 1-, 17- and 100-byte messages).
        public func signature(
            for message: some DataProtocol, auxiliaryRandomness: some DataProtocol
        ) throws(CryptoError) -> Signature {
            guard auxiliaryRandomness.count == 32 else {
                throw .invalidLength(field: "auxiliary randomness", expected: 32, actual: auxiliaryRandomness.count)
            }
            var aux = [UInt8](auxiliaryRandomness)
            let messageBytes = [UInt8](message)
            var keypair = try makeKeypair()
            defer { withUnsafeMutableBytes(of: &keypair) { secureZero($0) } }
            var signature = [UInt8](repeating: 0, count: 64)
            let ok = aux.withUnsafeMutableBytes { auxPointer in
                var parameters = secp256k1_schnorrsig_extraparams(
                    magic: (0xda, 0x6f, 0xb3, 0x8c), noncefp: nil, ndata: auxPointer.baseAddress)
                return messageBytes.withNonNullPointer { messagePointer in
                    secp256k1_schnorrsig_sign_custom(
                        secpContext, &signature, messagePointer, messageBytes.count, &keypair, &parameters)
                }
            }
            guard ok == 1 else { throw .libraryFailure(operation: "secp256k1_schnorrsig_sign_custom") }
            return Signature(bytes: signature)
        }

        /// The BIP-340 signature of `message` with fresh auxiliary randomness.
        public func signature(for message: some DataProtocol) throws(CryptoError) -> Signature {
            try signature(for: message, auxiliaryRandomness: secureRandomBytes(count: 32))
        }

        /// The BIP-341 key-path signing key for an output whose internal key is this key:
        /// negated if `d·G` has odd y, then plus `H_TapTweak(P.x ‖ merkleRoot)`.
        ///
        /// - Parameter merkleRoot: 32 bytes, or `nil` for a key-path-only output.
        public func tapTweaked(merkleRoot: Data?) throws(CryptoError) -> PrivateKey {
            let tweak = try Schnorr.tapTweak(xOnly: point.xOnlyRepresentation, merkleRoot: merkleRoot)
            var keypair = try makeKeypair()
            defer { withUnsafeMutableBytes(of: &keypair) { secureZero($0) } }
            guard secp256k1_keypair_xonly_tweak_add(secpContext, &keypair, tweak) == 1 else {
                throw .invalidTweak(field: "taproot tweak")
            }
            var tweaked = Bytes32()
            defer { tweaked.zeroize() }
            _ = tweaked.withMutableUInt8Pointer { secp256k1_keypair_sec(secpContext, $0, &keypair) }
            return try PrivateKey(scalar: Scalar(bytes: tweaked))
        }

        /// A copy of the cached keypair; callers wipe it when done.
        private func makeKeypair() throws(CryptoError) -> secp256k1_keypair {
            keypair.value
        }
    }

    /// A BIP-340 x-only public key: the point with this x and even y.
    public struct PublicKey: Sendable {
        var xonly: secp256k1_xonly_pubkey

        /// The 32-byte x coordinate.
        public let rawRepresentation: Data

        /// Parses 32 bytes, which must be the x coordinate of a curve point (x < p).
        public init(rawRepresentation: some DataProtocol) throws(CryptoError) {
            try self.init(rawRepresentation: rawRepresentation, field: "public key")
        }

        /// Parses 32 bytes, naming `field` in any error.
        public init(rawRepresentation: some DataProtocol, field: String) throws(CryptoError) {
            let bytes = [UInt8](rawRepresentation)
            guard bytes.count == 32 else {
                throw .invalidLength(field: field, expected: 32, actual: bytes.count)
            }
            var xonly = secp256k1_xonly_pubkey()
            guard secp256k1_xonly_pubkey_parse(secpContext, &xonly, bytes) == 1 else {
                throw .pointNotOnCurve(field: field)
            }
            self.xonly = xonly
            self.rawRepresentation = Data(bytes)
        }

        /// The x-only key of `point` (its parity is dropped).
        public init(point: Point) {
            var full = point.pubkey
            var xonly = secp256k1_xonly_pubkey()
            // Conversion of a valid key always succeeds.
            _ = secp256k1_xonly_pubkey_from_pubkey(secpContext, &xonly, nil, &full)
            self.xonly = xonly
            self.rawRepresentation = point.xOnlyRepresentation
        }

        /// The point this key stands for: x with even y.
        public var point: Point {
            do {
                return try Point(xOnly: rawRepresentation)
            } catch {
                // The bytes were validated as an x coordinate on construction.
                preconditionFailure("validated x-only key failed to lift")
            }
        }

        /// BIP-340 verification. Any message length is accepted.
        /// ``isValidSignature(_:for:)`` over bytes already in memory — a 64-byte signature
        /// and the message — for hot paths that assemble both in a stack buffer instead of
        /// allocating a ``Signature`` and a copy of the message. `false` unless the
        /// signature is exactly 64 bytes.
        public func isValidSignature(rawSignature: UnsafeRawBufferPointer, message: UnsafeRawBufferPointer) -> Bool {
            guard rawSignature.count == 64, let signature = rawSignature.baseAddress else { return false }
            var key = xonly
            var empty: UInt8 = 0
            return withUnsafePointer(to: &empty) { emptyPointer in
                let messagePointer = message.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? emptyPointer
                return secp256k1_schnorrsig_verify(
                    secpContext, signature.assumingMemoryBound(to: UInt8.self), messagePointer, message.count, &key)
            } == 1
        }

        public func isValidSignature(_ signature: Signature, for message: some DataProtocol) -> Bool {
            let messageBytes = [UInt8](message)
            var key = xonly
            return signature.bytes.withNonNullPointer { signaturePointer in
                messageBytes.withNonNullPointer { messagePointer in
                    secp256k1_schnorrsig_verify(
                        secpContext, signaturePointer, messagePointer, messageBytes.count, &key)
                }
            } == 1
        }

        /// The BIP-341 output key `Q = P + H_TapTweak(P.x ‖ merkleRoot)·G` and Q's y parity
        /// (the control block's low bit).
        ///
        /// - Parameter merkleRoot: 32 bytes, or `nil` for a key-path-only output.
        public func tapTweaked(merkleRoot: Data?) throws(CryptoError) -> (outputKey: PublicKey, parityOdd: Bool) {
            let tweak = try Schnorr.tapTweak(xOnly: rawRepresentation, merkleRoot: merkleRoot)
            var key = xonly
            var output = secp256k1_pubkey()
            guard secp256k1_xonly_pubkey_tweak_add(secpContext, &output, &key, tweak) == 1 else {
                throw .invalidTweak(field: "taproot tweak")
            }
            var parity: Int32 = 0
            var outputXonly = secp256k1_xonly_pubkey()
            _ = secp256k1_xonly_pubkey_from_pubkey(secpContext, &outputXonly, &parity, &output)
            let outputKey = PublicKey(point: Point(pubkey: output))
            return (outputKey, parity == 1)
        }
    }

    /// A 64-byte BIP-340 signature `R.x ‖ s`. Its contents are checked by verification, not here.
    public struct Signature: Sendable, Hashable {
        let bytes: [UInt8]

        init(bytes: [UInt8]) {
            self.bytes = bytes
        }

        /// Wraps 64 bytes.
        public init(rawRepresentation: some DataProtocol) throws(CryptoError) {
            guard rawRepresentation.count == 64 else {
                throw .invalidLength(field: "signature", expected: 64, actual: rawRepresentation.count)
            }
            self.bytes = [UInt8](rawRepresentation)
        }

        /// The 64 bytes.
        public var rawRepresentation: Data { Data(bytes) }

        /// The first 32 bytes, R's x coordinate.
        public var nonceX: Data { Data(bytes[0..<32]) }

        /// The last 32 bytes, s (not reduced or range-checked).
        public var sBytes: Data { Data(bytes[32..<64]) }
    }

    /// `H_TapTweak(x ‖ merkleRoot)` as raw bytes, with the root's length checked.
    static func tapTweak(xOnly: Data, merkleRoot: Data?) throws(CryptoError) -> [UInt8] {
        var hasher = TaggedHash.hasher(tag: "TapTweak")
        hasher.update(contiguous: xOnly)
        if let merkleRoot {
            guard merkleRoot.count == 32 else {
                throw .invalidLength(field: "taproot merkle root", expected: 32, actual: merkleRoot.count)
            }
            hasher.update(contiguous: merkleRoot)
        }
        return [UInt8](hasher.finalize())
    }
}

extension Schnorr.PrivateKey: Equatable {
    /// Equal when the secrets are equal (compared without early exit).
    public static func == (lhs: Schnorr.PrivateKey, rhs: Schnorr.PrivateKey) -> Bool {
        lhs.secret.value == rhs.secret.value
    }
}

extension Schnorr.PrivateKey: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// Redacted; shows only the public key.
    public var description: String { "Schnorr.PrivateKey(<redacted>, publicKey: \(publicKey.rawRepresentation.hexString))" }
    /// Redacted, as ``description``.
    public var debugDescription: String { description }
    /// No children, so `dump` cannot print the secret either.
    public var customMirror: Mirror { Mirror(self, children: [:]) }
}

extension Schnorr.PublicKey: Hashable, Comparable, CustomStringConvertible {
    /// Equal when the x coordinates are equal.
    public static func == (lhs: Schnorr.PublicKey, rhs: Schnorr.PublicKey) -> Bool {
        lhs.rawRepresentation == rhs.rawRepresentation
    }

    /// Hashes the x coordinate.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(rawRepresentation)
    }

    /// Byte-wise order of the 32 x-only bytes, the order taproot multisig scripts sort keys in.
    public static func < (lhs: Schnorr.PublicKey, rhs: Schnorr.PublicKey) -> Bool {
        lhs.rawRepresentation.lexicographicallyPrecedes(rhs.rawRepresentation)
    }

    /// The x coordinate in hex.
    public var description: String { rawRepresentation.hexString }
}

extension Schnorr.Signature: CustomStringConvertible {
    /// The 64 bytes in hex.
    public var description: String { rawRepresentation.hexString }
}

/// libsecp256k1's keypair (secret plus public key) for a private key, computed once and wiped
/// when the last copy of the key goes away.
///
/// `@unchecked Sendable`: written once in `init`, only read afterwards; `deinit` wipes it when
/// no other reference can exist.
final class KeypairBox: @unchecked Sendable {
    private var keypair = secp256k1_keypair()

    init(secret: SecretBox) throws(CryptoError) {
        let ok = secret.withUInt8Pointer { secp256k1_keypair_create(secpContext, &keypair, $0) }
        guard ok == 1 else { throw .libraryFailure(operation: "secp256k1_keypair_create") }
    }

    var value: secp256k1_keypair { keypair }

    /// The full public point, with its real parity.
    var publicPoint: Point {
        var pubkey = secp256k1_pubkey()
        var copy = keypair
        defer { withUnsafeMutableBytes(of: &copy) { secureZero($0) } }
        // Cannot fail for a keypair that keypair_create accepted.
        _ = secp256k1_keypair_pub(secpContext, &pubkey, &copy)
        return Point(pubkey: pubkey)
    }

    deinit {
        withUnsafeMutableBytes(of: &keypair) { secureZero($0) }
    }
}

extension Schnorr.PublicKey {
    /// Parsed keys by their 32 bytes, process-wide: parsing lifts x to a curve point (a field
    /// square root, several microseconds, a sixth of a verification), and the same keys —
    /// accounts, finality providers, validators — sign again and again. Only keys that parsed
    /// are kept; the map is emptied when it reaches its bound.
    // Keyed by the 32 key bytes held inline (not `Data`): no hashing through a pointer.
    private static let parsed = Mutex([Digest256: Schnorr.PublicKey]())
    private static let parsedLimit = 16_384

    /// ``init(rawRepresentation:)`` answered from a bounded process-wide memory of keys that
    /// parsed before (parsing is a pure function of the bytes).
    public static func cached(rawRepresentation raw: Data) throws(CryptoError) -> Schnorr.PublicKey {
        // Only exact 32-byte encodings are memoized (anything else fails to parse anyway).
        guard raw.count == 32 else { return try Schnorr.PublicKey(rawRepresentation: raw) }
        let id = Digest256(raw)
        if let hit = parsed.withLock({ $0[id] }) { return hit }
        let key = try Schnorr.PublicKey(rawRepresentation: raw)
        parsed.withLock { map in
            if map.count >= parsedLimit { map.removeAll(keepingCapacity: true) }
            map[id] = key
        }
        return key
    }
}
