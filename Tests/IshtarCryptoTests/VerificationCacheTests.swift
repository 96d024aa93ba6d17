import Foundation
import IshtarCrypto
import Testing

@Suite struct VerificationCacheTests {
    static func key(_ byte: UInt8) throws -> Schnorr.PrivateKey {
        try Schnorr.PrivateKey(rawRepresentation: Data(repeating: byte, count: 32))
    }

    static func flipped(_ data: Data, at index: Int) -> Data {
        var copy = data
        copy[copy.startIndex + index] ^= 0x01
        return copy
    }

    @Test func remembersOnlyTheExactTripleThatVerified() throws {
        let cache = VerificationCache(capacity: 16)
        let signer = try Self.key(7)
        let other = try Self.key(8)
        let message = Data(repeating: 0xab, count: 32)
        let signature = try signer.signature(for: message).rawRepresentation
        let publicKey = signer.publicKey.rawRepresentation

        #expect(cache.isValid(signature: signature, publicKey: publicKey, message: message))
        #expect(cache.count == 1)
        // A hit answers the same.
        #expect(cache.isValid(signature: signature, publicKey: publicKey, message: message))
        #expect(cache.count == 1)

        // Another key, message or signature never hits, whichever byte differs.
        #expect(!cache.isValid(signature: signature, publicKey: other.publicKey.rawRepresentation, message: message))
        for i in [0, 17, 31] {
            #expect(!cache.isValid(signature: signature, publicKey: publicKey, message: Self.flipped(message, at: i)))
        }
        for i in [0, 31, 32, 63] {
            #expect(!cache.isValid(signature: Self.flipped(signature, at: i), publicKey: publicKey, message: message))
        }
        // A longer or shorter message with the same prefix is another message.
        #expect(!cache.isValid(signature: signature, publicKey: publicKey, message: message + Data([0])))
        #expect(!cache.isValid(signature: signature, publicKey: publicKey, message: message.dropLast()))
        // Malformed sizes are invalid, not a crash.
        #expect(!cache.isValid(signature: signature.dropLast(), publicKey: publicKey, message: message))
        #expect(!cache.isValid(signature: signature, publicKey: publicKey.dropLast(), message: message))
        // Failures are not remembered.
        #expect(cache.count == 1)
    }

    @Test func evictsTheOldestBeyondCapacity() throws {
        let cache = VerificationCache(capacity: 3)
        let signer = try Self.key(9)
        for i in 0..<10 {
            let message = Data(repeating: UInt8(i), count: 32)
            let signature = try signer.signature(for: message).rawRepresentation
            #expect(cache.isValid(signature: signature, publicKey: signer.publicKey.rawRepresentation, message: message))
            #expect(cache.count == min(i + 1, 3))
        }
    }

    @Test func concurrentUseAgreesWithDirectVerification() async throws {
        let cache = VerificationCache(capacity: 8)
        let signer = try Self.key(10)
        let publicKey = signer.publicKey.rawRepresentation
        let messages = (0..<32).map { Data(repeating: UInt8($0), count: 32) }
        let signatures = try messages.map { try signer.signature(for: $0).rawRepresentation }
        let results = await withTaskGroup(of: (Bool, Bool).self) { group in
            for i in 0..<64 {
                let m = messages[i % 32]
                // Odd tasks pair a message with the next one's signature: never valid.
                let s = i % 2 == 0 ? signatures[i % 32] : signatures[(i + 1) % 32]
                group.addTask { (cache.isValid(signature: s, publicKey: publicKey, message: m), i % 2 == 0) }
            }
            var out: [(Bool, Bool)] = []
            for await r in group { out.append(r) }
            return out
        }
        #expect(results.count == 64)
        #expect(results.allSatisfy { $0.0 == $0.1 })
        #expect(cache.count <= 8)
    }

    @Test func rawEntriesHitOnlyWhenIdentical() {
        let cache = VerificationCache(capacity: 4)
        let entry = Data([1, 2, 3, 4])
        #expect(!cache.contains(entry))
        cache.insert(entry)
        #expect(cache.contains(entry))
        #expect(!cache.contains(Data([1, 2, 3])))
        #expect(!cache.contains(Data([1, 2, 3, 4, 0])))
        #expect(!cache.contains(Data([1, 2, 3, 5])))
    }
}

@Suite("Schnorr.PublicKey.cached")
struct CachedPublicKeyTests {
    @Test func cachedParseEqualsAFreshParseAndVerifiesTheSame() throws {
        let key = try Schnorr.PrivateKey(rawRepresentation: Data(repeating: 0x21, count: 32))
        let raw = key.publicKey.rawRepresentation
        let message = Data(repeating: 7, count: 32)
        let signature = try key.signature(for: message)
        for _ in 0..<2 { // the second call is answered from the cache
            let cached = try Schnorr.PublicKey.cached(rawRepresentation: raw)
            #expect(cached.rawRepresentation == raw)
            #expect(cached.isValidSignature(signature, for: message))
            #expect(!cached.isValidSignature(signature, for: Data(repeating: 8, count: 32)))
        }
    }

    @Test func invalidKeysAreRejectedEveryTime() throws {
        // x = p (not a field element) and x = 5 (no curve point has it).
        let notField = try Data(hex: "fffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2f")
        let notOnCurve = Data(repeating: 0, count: 31) + Data([5])
        for raw in [notField, notOnCurve, Data([1, 2, 3])] {
            for _ in 0..<2 {
                #expect(throws: CryptoError.self) { try Schnorr.PublicKey.cached(rawRepresentation: raw) }
            }
        }
    }
}
