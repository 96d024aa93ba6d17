import Foundation
import IshtarCrypto
import IshtarTestSupport
import Testing

@Suite struct AdaptorSignatureTests {
    static let presigRows = Fixtures.csvRows("schnorr-adaptor-presig-vectors.csv")
    static let adaptRows = Fixtures.csvRows("schnorr-adaptor-adapt-vectors.csv")

    @Test func allVectorsLoaded() {
        #expect(Self.presigRows.count == 15)
        #expect(Self.adaptRows.count == 5)
    }

    /// Rows with a secret key: EncSign must reproduce the pre-signature byte for byte.
    /// Every row: EncVerify must equal `result`; any field that fails to parse counts as FALSE.
    @Test(arguments: presigRows)
    func presignatureVector(row: [String: String]) throws {
        let index = row["index"] ?? "?"
        let message = try hex(row["message"] ?? "")
        let expected = row["result"] == "TRUE"
        let presignatureBytes = try hex(row["pre-signature"] ?? "")
        let encryptionKey = try? Point(compressedRepresentation: hex(row["adaptor"] ?? ""))

        if let secretHex = row["secret key"], !secretHex.isEmpty {
            let key = try Schnorr.PrivateKey(rawRepresentation: hex(secretHex))
            #expect(key.publicKey.rawRepresentation == (try hex(row["public key"] ?? "")), "row \(index)")
            let produced = try AdaptorSignature.encryptedSign(
                privateKey: key, encryptionKey: try #require(encryptionKey), message: message,
                auxiliaryRandomness: hex(row["aux_rand"] ?? ""))
            #expect(produced.rawRepresentation == presignatureBytes, "row \(index): pre-signature bytes")
        }

        var verified = false
        if let publicKey = try? Schnorr.PublicKey(rawRepresentation: hex(row["public key"] ?? "")),
           let encryptionKey,
           let presignature = try? AdaptorSignature(rawRepresentation: presignatureBytes) {
            #expect(presignature.rawRepresentation == presignatureBytes)
            verified = presignature.isValid(publicKey: publicKey, encryptionKey: encryptionKey, message: message)
        }
        #expect(verified == expected, "row \(index): \(row["comment"] ?? "")")
    }

    /// Decrypt must produce the listed BIP-340 signature byte for byte; its BIP-340 validity must
    /// equal `result`; and extraction must give back the decryption key.
    @Test(arguments: adaptRows)
    func adaptVector(row: [String: String]) throws {
        let index = row["index"] ?? "?"
        let publicKey = try Schnorr.PublicKey(rawRepresentation: hex(row["pubkey"] ?? ""))
        let message = try hex(row["message"] ?? "")
        let t = try Scalar(rawRepresentation: hex(row["secadaptor"] ?? ""))
        let presignature = try AdaptorSignature(rawRepresentation: hex(row["pre-signature"] ?? ""))
        let expectedSignature = try Schnorr.Signature(rawRepresentation: hex(row["BIP340 signature"] ?? ""))

        let signature = presignature.decrypted(with: t)
        #expect(signature == expectedSignature, "row \(index): signature bytes")
        #expect(publicKey.isValidSignature(signature, for: message) == (row["result"] == "TRUE"),
                "row \(index): \(row["comment"] ?? "")")
        let encryptionKey = try Point(scalarTimesGenerator: t)
        #expect(try presignature.extractDecryptionKey(from: signature, encryptionKey: encryptionKey) == t)
    }

    @Test func ishtarProviderKeysRoundTrip() throws {
        var rng = SplitMix64(seed: 3)
        for _ in 0..<200 {
            let signer = try rng.privateKey()
            let provider = try rng.privateKey()
            let message = rng.bytes(32)
            let encryptionKey = AdaptorSignature.encryptionKey(for: provider.publicKey)
            let decryptionKey = AdaptorSignature.decryptionKey(for: provider)
            #expect(encryptionKey.hasEvenY)
            #expect(try Point(scalarTimesGenerator: decryptionKey) == encryptionKey)

            let presignature = try AdaptorSignature.encryptedSign(
                privateKey: signer, encryptionKey: encryptionKey, message: message, auxiliaryRandomness: rng.bytes(32))
            #expect(try AdaptorSignature(rawRepresentation: presignature.rawRepresentation) == presignature)
            #expect(presignature.isValid(publicKey: signer.publicKey, encryptionKey: encryptionKey, message: message))

            // Wrong T, wrong message, wrong signer all fail EncVerify.
            #expect(!presignature.isValid(
                publicKey: signer.publicKey, encryptionKey: encryptionKey.negated, message: message))
            #expect(!presignature.isValid(
                publicKey: signer.publicKey, encryptionKey: signer.point, message: message))
            var otherMessage = message
            otherMessage[5] ^= 0x40
            #expect(!presignature.isValid(publicKey: signer.publicKey, encryptionKey: encryptionKey, message: otherMessage))
            #expect(!presignature.isValid(publicKey: provider.publicKey, encryptionKey: encryptionKey, message: message))

            // The pre-signature itself is not a valid signature; its decryption is.
            let signature = presignature.decrypted(with: decryptionKey)
            #expect(signer.publicKey.isValidSignature(signature, for: message))
            #expect(!signer.publicKey.isValidSignature(presignature.decrypted(with: .zero), for: message))

            // Extraction gives back t, which is the provider's key (even-y form).
            let extracted = try presignature.extractDecryptionKey(from: signature, encryptionKey: encryptionKey)
            #expect(extracted == decryptionKey)
            #expect(try Schnorr.PrivateKey(scalar: extracted).publicKey == provider.publicKey)
        }
    }

    @Test func extractionErrors() throws {
        var rng = SplitMix64(seed: 8)
        let signer = try rng.privateKey()
        let provider = try rng.privateKey()
        let message = rng.bytes(32)
        let encryptionKey = AdaptorSignature.encryptionKey(for: provider.publicKey)
        let presignature = try AdaptorSignature.encryptedSign(
            privateKey: signer, encryptionKey: encryptionKey, message: message, auxiliaryRandomness: rng.bytes(32))
        let unrelated = try signer.signature(for: message)
        #expect(throws: CryptoError.adaptorSignatureMismatch) {
            try presignature.extractDecryptionKey(from: unrelated, encryptionKey: encryptionKey)
        }
        let signature = presignature.decrypted(with: AdaptorSignature.decryptionKey(for: provider))
        #expect(throws: CryptoError.adaptorDecryptionKeyMismatch) {
            try presignature.extractDecryptionKey(from: signature, encryptionKey: signer.point)
        }
    }

    @Test func parsingErrors() throws {
        #expect(throws: CryptoError.invalidLength(field: "adaptor signature", expected: 65, actual: 64)) {
            try AdaptorSignature(rawRepresentation: Data(count: 64))
        }
        #expect(throws: CryptoError.invalidPointEncoding(field: "adaptor signature nonce")) {
            try AdaptorSignature(rawRepresentation: Data(count: 65))
        }
        let signer = Schnorr.PrivateKey()
        #expect(throws: CryptoError.invalidLength(field: "adaptor message", expected: 32, actual: 33)) {
            try AdaptorSignature.encryptedSign(
                privateKey: signer, encryptionKey: .generator, message: Data(count: 33), auxiliaryRandomness: Data(count: 32))
        }
    }
}
