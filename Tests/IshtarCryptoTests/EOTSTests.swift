import Foundation
import IshtarCrypto
import IshtarTestSupport
import Testing

@Suite struct EOTSTests {
    static let chainID = Data("ishtar-test".utf8)

    @Test func randomnessIsDeterministicAndDomainSeparated() throws {
        var rng = SplitMix64(seed: 4)
        for height in UInt64(0)..<50 {
            let key = try rng.privateKey()
            let a = EOTS.randomness(secretKey: key, chainID: Self.chainID, height: height)
            let b = EOTS.randomness(secretKey: key, chainID: Self.chainID, height: height)
            #expect(a.secret == b.secret)
            #expect(a.public == b.public)
            #expect(a.secret.publicRandomness == a.public)
            let nextHeight = EOTS.randomness(secretKey: key, chainID: Self.chainID, height: height + 1)
            let otherChain = EOTS.randomness(secretKey: key, chainID: Data("other".utf8), height: height)
            #expect(nextHeight.public != a.public)
            #expect(otherChain.public != a.public)
        }
    }

    /// PROTOCOL §4 by hand: HMAC-SHA256(key, BE8(height) ‖ chainID ‖ BE8(0)). Expected value from
    /// Python 3: `hmac.new(bytes([1]*32), (7).to_bytes(8,'big') + b'ishtar-test' + bytes(8),
    /// hashlib.sha256).hexdigest()`.
    @Test func randomnessMatchesPython() throws {
        let key = try Schnorr.PrivateKey(rawRepresentation: Data(repeating: 1, count: 32))
        let (secret, _) = EOTS.randomness(secretKey: key, chainID: Self.chainID, height: 7)
        #expect(secret.rawRepresentation.hexString == Self.pythonHMAC)
    }

    static let pythonHMAC = "456fd9fe2bb12438e808926bb656e336cc7e72d011cdc064c7386e5cac5d5bc3"

    @Test func signatureIsBIP340OverSHA256AndExtractionRecoversKey() throws {
        var rng = SplitMix64(seed: 5)
        for height in UInt64(0)..<200 {
            let key = try rng.privateKey()
            let (secret, publicRandomness) = EOTS.randomness(secretKey: key, chainID: Self.chainID, height: height)
            let message1 = try EOTS.finalityVoteMessage(height: height, blockHash: rng.bytes(32))
            let message2 = try EOTS.finalityVoteMessage(height: height, blockHash: rng.bytes(32))
            let signature1 = try EOTS.sign(privateKey: key, secretRandomness: secret, message: message1)
            let signature2 = try EOTS.sign(privateKey: key, secretRandomness: secret, message: message2)

            #expect(EOTS.isValid(
                signature: signature1, publicKey: key.publicKey, publicRandomness: publicRandomness, message: message1))
            #expect(!EOTS.isValid(
                signature: signature1, publicKey: key.publicKey, publicRandomness: publicRandomness, message: message2))
            // The BIP-340 view: (R.x, s) over SHA256(message), checked by libsecp256k1's verifier.
            let digest = Self.sha256(message1)
            #expect(key.publicKey.isValidSignature(signature1.asBIP340(publicRandomness: publicRandomness), for: digest))

            let extracted = try EOTS.extract(
                publicKey: key.publicKey, publicRandomness: publicRandomness,
                message1: message1, signature1: signature1, message2: message2, signature2: signature2)
            #expect(extracted.publicKey == key.publicKey)
            // The even-y form of the key: the key itself, or its negation when d·G has odd y.
            #expect(extracted.scalar == (key.point.hasEvenY ? key.scalar : key.scalar.negated))
        }
    }

    @Test func extractionErrors() throws {
        var rng = SplitMix64(seed: 6)
        let key = try rng.privateKey()
        let (secret, publicRandomness) = EOTS.randomness(secretKey: key, chainID: Self.chainID, height: 1)
        let m1 = Data("block a".utf8)
        let m2 = Data("block b".utf8)
        let s1 = try EOTS.sign(privateKey: key, secretRandomness: secret, message: m1)
        let s2 = try EOTS.sign(privateKey: key, secretRandomness: secret, message: m2)
        #expect(throws: CryptoError.eotsSameMessage) {
            try EOTS.extract(publicKey: key.publicKey, publicRandomness: publicRandomness,
                             message1: m1, signature1: s1, message2: m1, signature2: s1)
        }
        #expect(throws: CryptoError.eotsIdenticalSignatures) {
            try EOTS.extract(publicKey: key.publicKey, publicRandomness: publicRandomness,
                             message1: m1, signature1: s1, message2: m2, signature2: s1)
        }
        let other = try rng.privateKey()
        #expect(throws: CryptoError.eotsExtractedKeyMismatch) {
            try EOTS.extract(publicKey: other.publicKey, publicRandomness: publicRandomness,
                             message1: m1, signature1: s1, message2: m2, signature2: s2)
        }
        // Different randomness per message: the algebra gives a wrong key, which must be caught.
        let (secret2, _) = EOTS.randomness(secretKey: key, chainID: Self.chainID, height: 2)
        let s2OtherNonce = try EOTS.sign(privateKey: key, secretRandomness: secret2, message: m2)
        #expect(throws: CryptoError.eotsExtractedKeyMismatch) {
            try EOTS.extract(publicKey: key.publicKey, publicRandomness: publicRandomness,
                             message1: m1, signature1: s1, message2: m2, signature2: s2OtherNonce)
        }
    }

    @Test func encodings() throws {
        #expect(try EOTS.finalityVoteMessage(height: 0x0102, blockHash: Data(repeating: 0xaa, count: 32))
            == Data([0, 0, 0, 0, 0, 0, 1, 2]) + Data(repeating: 0xaa, count: 32))
        #expect(throws: CryptoError.invalidLength(field: "block hash", expected: 32, actual: 31)) {
            try EOTS.finalityVoteMessage(height: 1, blockHash: Data(count: 31))
        }
        #expect(throws: CryptoError.scalarOutOfRange(field: "EOTS signature")) {
            try EOTS.Signature(rawRepresentation: Scalar.order)
        }
        #expect(throws: CryptoError.zeroScalar(field: "EOTS secret randomness")) {
            try EOTS.SecretRandomness(rawRepresentation: Data(count: 32))
        }
        let secret = try EOTS.SecretRandomness(rawRepresentation: Data(repeating: 9, count: 32))
        #expect(!String(describing: secret).contains("0909"))
        #expect(try EOTS.SecretRandomness(rawRepresentation: secret.rawRepresentation) == secret)
    }

    /// The digest EOTS signs is plain SHA-256: FIPS 180-2's "abc" example pins it down, so the
    /// BIP-340 property above checks against an independently known function.
    @Test func messageDigestIsSHA256() {
        #expect(EOTS.messageDigest(Data("abc".utf8)).hexString
            == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    static func sha256(_ data: Data) -> Data {
        EOTS.messageDigest(data)
    }
}
