import Foundation
import IshtarCrypto
import IshtarTestSupport
import Testing

@Suite struct BIP340Tests {
    static let rows = Fixtures.csvRows("bip340-test-vectors.csv")

    @Test func allVectorsLoaded() {
        #expect(Self.rows.count == 19)
    }

    @Test(arguments: rows)
    func vector(row: [String: String]) throws {
        let index = row["index"] ?? "?"
        let message = try hex(row["message"] ?? "")
        let signature = try Schnorr.Signature(rawRepresentation: hex(row["signature"] ?? ""))
        let expected = row["verification result"] == "TRUE"

        if let secretHex = row["secret key"], !secretHex.isEmpty {
            let key = try Schnorr.PrivateKey(rawRepresentation: hex(secretHex))
            #expect(key.publicKey.rawRepresentation == (try hex(row["public key"] ?? "")), "row \(index)")
            let produced = try key.signature(for: message, auxiliaryRandomness: hex(row["aux_rand"] ?? ""))
            #expect(produced == signature, "row \(index): signature bytes")
        }

        // A key that is not a valid x coordinate counts as "verification false".
        let verified: Bool
        if let publicKey = try? Schnorr.PublicKey(rawRepresentation: hex(row["public key"] ?? "")) {
            verified = publicKey.isValidSignature(signature, for: message)
            // The raw-buffer entry point answers exactly as the typed one (the vectors include
            // an empty and a long message).
            let raw = signature.rawRepresentation.withUnsafeBytes { sig in
                message.withUnsafeBytes { publicKey.isValidSignature(rawSignature: sig, message: $0) }
            }
            #expect(raw == verified, "row \(index): raw-buffer verification")
            let short = signature.rawRepresentation.dropLast().withUnsafeBytes { sig in
                message.withUnsafeBytes { publicKey.isValidSignature(rawSignature: sig, message: $0) }
            }
            #expect(!short, "row \(index): a 63-byte signature is refused")
        } else {
            verified = false
        }
        #expect(verified == expected, "row \(index): \(row["comment"] ?? "")")
    }

    @Test func auxiliaryRandomnessMustBe32Bytes() throws {
        let key = Schnorr.PrivateKey()
        #expect(throws: CryptoError.invalidLength(field: "auxiliary randomness", expected: 32, actual: 31)) {
            try key.signature(for: Data(count: 32), auxiliaryRandomness: Data(count: 31))
        }
        #expect(throws: CryptoError.invalidLength(field: "signature", expected: 64, actual: 63)) {
            try Schnorr.Signature(rawRepresentation: Data(count: 63))
        }
    }

    @Test func randomKeysSignAndVerify() throws {
        var rng = SplitMix64(seed: 340)
        for _ in 0..<200 {
            let key = try rng.privateKey()
            let message = rng.bytes(32)
            let signature = try key.signature(for: message)
            #expect(key.publicKey.isValidSignature(signature, for: message))
            var tampered = message
            tampered[0] ^= 1
            #expect(!key.publicKey.isValidSignature(signature, for: tampered))
        }
        #expect(Schnorr.PrivateKey() != Schnorr.PrivateKey())
    }
}

@Suite struct TaprootTests {
    /// BIP-341 `bip341-wallet-test-vectors.json`: scriptPubKey (public tweak) and
    /// keyPathSpending (private tweak) cases.
    static func json() throws -> [String: Any] {
        let url = try #require(Fixtures.url("bip341-wallet-test-vectors.json"))
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: url))
        return try #require(object as? [String: Any])
    }

    @Test func publicKeyTweaks() throws {
        let cases = try #require(try Self.json()["scriptPubKey"] as? [[String: Any]])
        #expect(cases.count == 7)
        for testCase in cases {
            let given = try #require(testCase["given"] as? [String: Any])
            let intermediary = try #require(testCase["intermediary"] as? [String: Any])
            let internalKey = try Schnorr.PublicKey(rawRepresentation: hex(try #require(given["internalPubkey"] as? String)))
            let root = try (intermediary["merkleRoot"] as? String).map { try hex($0) }
            let (output, _) = try internalKey.tapTweaked(merkleRoot: root)
            #expect(output.rawRepresentation.hexString == intermediary["tweakedPubkey"] as? String)
            if let expected = testCase["expected"] as? [String: Any],
               let blocks = expected["scriptPathControlBlocks"] as? [String], let first = blocks.first {
                let (_, parityOdd) = try internalKey.tapTweaked(merkleRoot: root)
                #expect(first.hasPrefix(parityOdd ? "c1" : "c0"))
            }
        }
    }

    @Test func privateKeyTweaks() throws {
        let spending = try #require(try Self.json()["keyPathSpending"] as? [[String: Any]])
        let inputs = try #require(spending.first?["inputSpending"] as? [[String: Any]])
        #expect(inputs.count == 7)
        for input in inputs {
            let given = try #require(input["given"] as? [String: Any])
            let intermediary = try #require(input["intermediary"] as? [String: Any])
            let key = try Schnorr.PrivateKey(rawRepresentation: hex(try #require(given["internalPrivkey"] as? String)))
            let root = try (given["merkleRoot"] as? String).map { try hex($0) }
            #expect(key.publicKey.rawRepresentation.hexString == intermediary["internalPubkey"] as? String)
            let tweaked = try key.tapTweaked(merkleRoot: root)
            #expect(tweaked.rawRepresentation.hexString == intermediary["tweakedPrivkey"] as? String)
            #expect(tweaked.publicKey == (try key.publicKey.tapTweaked(merkleRoot: root).outputKey))
        }
    }

    @Test func rejectsBadMerkleRootLength() throws {
        let key = Schnorr.PrivateKey()
        #expect(throws: CryptoError.invalidLength(field: "taproot merkle root", expected: 32, actual: 31)) {
            try key.publicKey.tapTweaked(merkleRoot: Data(count: 31))
        }
    }
}
