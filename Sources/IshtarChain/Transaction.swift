import Crypto
import Foundation
import IshtarCrypto

/// SHA-256 of `data`, as `Data`.
@inline(__always)
func sha256(_ data: some DataProtocol) -> Data { Data(SHA256.hash(data: data)) }

/// SHA-256 of contiguous bytes, hashed in one call without allocating a hash context.
func sha256(_ data: Data) -> Data { InlineSHA256.hash(data: data) }

/// One message of a transaction: a type name owned by exactly one module
/// (`"<module>/<Name>"`) and a payload that only that module decodes.
public struct Message: Hashable, Sendable, BinaryCodable {
    /// Longest accepted type name, in UTF-8 bytes.
    public static let maxTypeBytes = 128

    /// `"<module>/<Name>"`, e.g. `"accounts/SetLabel"`.
    public var type: String
    /// The module-defined canonical encoding of the message body.
    public var payload: Data

    /// A message from its parts.
    public init(type: String, payload: Data) {
        self.type = type
        self.payload = payload
    }

    /// Type string then length-prefixed payload.
    public func encode(to w: inout BinaryWriter) {
        w.string(type)
        w.bytes(payload)
    }

    /// Inverse of ``encode(to:)``.
    public init(from r: inout BinaryReader) throws(CodecError) {
        type = try r.string("message type", limit: Self.maxTypeBytes)
        payload = try r.bytes("message payload")
    }
}

/// A signed transaction.
///
/// Encoding (all integers big-endian): `u8 version (1) ‖ str chainID ‖ sender(32) ‖
/// u64 nonce ‖ u32 count ‖ count × (str type ‖ bytes payload) ‖ signature(64)`, where
/// `str`/`bytes` are `u32`-length-prefixed. The *sign bytes* are that encoding without
/// the trailing signature; the sender signs, with BIP-340, the 32-byte digest
/// `H_"ishtar/tx"(signBytes)` (a BIP-340 tagged hash — domain-separated from every other
/// signature in the system, e.g. consensus votes or EOTS, and bound to the chain id,
/// which is inside the sign bytes). The transaction hash is SHA-256 of the full encoding.
public struct Transaction: Hashable, Sendable, BinaryCodable {
    /// The only encoding version.
    public static let version: UInt8 = 1
    /// Most messages one transaction may carry.
    public static let maxMessages = 64
    /// Longest chain id, in bytes.
    public static let maxChainIDBytes = 64
    /// The tag of the signing digest.
    public static let signingTag = "ishtar/tx"

    /// The chain this transaction is for.
    public var chainID: String
    /// The sender's 32-byte x-only BIP-340 public key; it is also the account address.
    public var sender: Data
    /// Must equal the sender account's nonce (0 for a new account).
    public var nonce: UInt64
    /// Executed in order; all or none take effect.
    public var messages: [Message]
    /// 64-byte BIP-340 signature over ``signingDigest``.
    public var signature: Data

    /// A transaction from its parts (not signed or checked).
    public init(chainID: String, sender: Data, nonce: UInt64, messages: [Message], signature: Data = Data(count: 64)) {
        self.chainID = chainID
        self.sender = sender
        self.nonce = nonce
        self.messages = messages
        self.signature = signature
    }

    /// Builds and signs a transaction with `key`.
    public static func signed(
        chainID: String, key: Schnorr.PrivateKey, nonce: UInt64, messages: [Message],
        auxiliaryRandomness: Data = Data(count: 32)
    ) throws(IshtarCrypto.CryptoError) -> Transaction {
        var tx = Transaction(chainID: chainID, sender: key.publicKey.rawRepresentation, nonce: nonce, messages: messages)
        tx.signature = try key.signature(for: tx.signingDigest, auxiliaryRandomness: auxiliaryRandomness).rawRepresentation
        return tx
    }

    private func encodeUnsigned(to w: inout BinaryWriter) {
        w.u8(Self.version)
        w.string(chainID)
        w.fixed(sender)
        w.u64(nonce)
        w.count(messages.count)
        for m in messages { m.encode(to: &w) }
    }

    /// Everything but the signature.
    public var signBytes: Data {
        var w = BinaryWriter()
        encodeUnsigned(to: &w)
        return w.data
    }

    /// `H_"ishtar/tx"(signBytes)`: what the sender signs.
    public var signingDigest: Data { TaggedHash.hash(tag: Self.signingTag, data: signBytes) }

    /// The canonical encoding.
    public func encode(to w: inout BinaryWriter) {
        encodeUnsigned(to: &w)
        w.fixed(signature)
    }

    /// Inverse of ``encode(to:)``; rejects unknown versions, over-long fields and counts
    /// that cannot fit.
    public init(from r: inout BinaryReader) throws(CodecError) {
        let v = try r.u8("transaction version")
        guard v == Self.version else { throw .unknownVersion(field: "transaction version", value: v) }
        chainID = try r.string("chain id", limit: Self.maxChainIDBytes)
        sender = try r.fixed(32, "sender")
        nonce = try r.u64("nonce")
        // Each message is at least 8 bytes (two empty length prefixes).
        let n = try r.count("messages", minElementSize: 8)
        var ms: [Message] = []
        ms.reserveCapacity(n)
        for _ in 0..<n { ms.append(try Message(from: &r)) }
        messages = ms
        signature = try r.fixed(64, "signature")
    }

    /// SHA-256 of the canonical encoding.
    public var hash: Data { sha256(encoded) }

    /// SHA-256 of raw transaction bytes (the hash of a transaction as it sits in a block).
    ///
    /// Remembered per process: a node hashes the same transaction at check-tx, in the proposal
    /// it builds or receives (the transactions root), at execution and for the index — a vote
    /// transaction of ~6 KB hashed three times cost more than its tally. A hit compares the
    /// bytes in full, so it is exactly the hash; what is kept is bounded in entries and bytes.
    public static func hash(of bytes: Data) -> Data { knownHashes.value(bytes) { sha256($0) } }

    /// Transaction bytes → their hash: 8,192 entries or 16 MiB a generation, two generations.
    static let knownHashes = DecodeMemo<Data>(capacity: 8192, byteCapacity: 16 << 20, copiesPayloads: true)

    /// The stateless rules every transaction must pass: chain id, message count, a valid
    /// sender key, a valid signature. Module-specific checks come after.
    ///
    /// `signatureVerified` skips only the BIP-340 verification, for a caller that has
    /// already verified a signature over these exact bytes (see `Application`'s cache keyed
    /// by the SHA-256 of the encoded transaction, which covers sender, signed fields and
    /// signature alike).
    public func validateBasic(chainID expected: String, signatureVerified: Bool = false) throws(TxError) {
        try validateBasic(chainID: expected, signatureVerified: signatureVerified, encoded: nil)
    }

    /// ``validateBasic(chainID:signatureVerified:)`` for a transaction decoded from `encoded`:
    /// the signed bytes are `encoded` without its trailing signature — the decoder accepts
    /// only the canonical encoding, which ends with the signature — so they are hashed in
    /// place instead of re-encoded (the re-encoding copied every message payload).
    public func validateBasic(chainID expected: String, signatureVerified: Bool, encoded: Data?) throws(TxError) {
        // Byte for byte: Swift's `==` treats canonically equivalent Unicode as equal (the
        // Kelvin sign U+212A equals "K"), and the chain id is a byte string.
        guard chainID.utf8.elementsEqual(expected.utf8) else { throw .wrongChainID(expected: expected, actual: chainID) }
        guard !messages.isEmpty else { throw .noMessages }
        guard messages.count <= Self.maxMessages else {
            throw .tooManyMessages(count: messages.count, limit: Self.maxMessages)
        }
        // A verified signature implies the key parsed.
        if signatureVerified { return }
        guard let key = try? Schnorr.PublicKey.cached(rawRepresentation: sender) else { throw .invalidSenderKey }
        let digest: Data
        if let encoded, encoded.count >= signature.count {
            let signed = encoded.dropLast(signature.count)
            assert(signed == signBytes, "a decoded transaction's bytes are its canonical encoding")
            digest = TaggedHash.hash(tag: Self.signingTag, data: signed)
        } else {
            digest = signingDigest
        }
        guard let sig = try? Schnorr.Signature(rawRepresentation: signature),
              key.isValidSignature(sig, for: digest)
        else { throw .invalidSignature }
    }
}

/// One key/value attribute of an ``Event``.
public struct EventAttribute: Hashable, Sendable, Codable {
    /// Attribute name.
    public var key: String
    /// Attribute value (hex for bytes, decimal for numbers, by convention).
    public var value: String

    /// An attribute from its parts.
    public init(_ key: String, _ value: String) {
        self.key = key
        self.value = value
    }
}

/// Something that happened during execution, for indexers, the HTTP API and watchers
/// (e.g. `"provider_slashed"` carrying the evidence). ABCI-shaped: a type and ordered
/// attributes. Events of a rejected transaction are dropped with its state changes.
public struct Event: Hashable, Sendable, Codable, BinaryCodable {
    /// Event type, conventionally `"<module>.<what>"`.
    public var type: String
    /// Ordered attributes.
    public var attributes: [EventAttribute]

    /// An event from its parts.
    public init(type: String, attributes: [EventAttribute] = []) {
        self.type = type
        self.attributes = attributes
    }

    /// The value of the first attribute named `key`.
    public subscript(key: String) -> String? { attributes.first { $0.key == key }?.value }

    /// `str type ‖ u32 count ‖ (str key ‖ str value)*`.
    public func encode(to w: inout BinaryWriter) {
        w.string(type)
        w.count(attributes.count)
        for a in attributes {
            w.string(a.key)
            w.string(a.value)
        }
    }

    /// Inverse of ``encode(to:)``.
    public init(from r: inout BinaryReader) throws(CodecError) {
        type = try r.string("event type")
        let n = try r.count("event attributes", minElementSize: 8)
        var attrs: [EventAttribute] = []
        attrs.reserveCapacity(n)
        for _ in 0..<n {
            let k = try r.string("attribute key")
            let v = try r.string("attribute value")
            attrs.append(EventAttribute(k, v))
        }
        attributes = attrs
    }
}

extension Array where Element == Event {
    func encode(to w: inout BinaryWriter) {
        w.count(count)
        for e in self { e.encode(to: &w) }
    }

    init(from r: inout BinaryReader, field: String) throws(CodecError) {
        let n = try r.count(field, minElementSize: 8)
        var out: [Event] = []
        out.reserveCapacity(n)
        for _ in 0..<n { out.append(try Event(from: &r)) }
        self = out
    }
}
