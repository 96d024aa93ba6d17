import Foundation
import IshtarCrypto
import IshtarTestSupport
import Testing

@Suite struct PointTests {
    static let gx = "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"

    @Test func generatorEncodings() throws {
        #expect(Point.generator.compressedRepresentation.hexString == "02" + Self.gx)
        #expect(Point.generator.xOnlyRepresentation.hexString == Self.gx)
        #expect(Point.generator.hasEvenY)
        #expect(try Point(xOnly: hex(Self.gx)) == Point.generator)
        #expect(!Point.generator.negated.hasEvenY)
    }

    @Test func rejectsBadEncodings() throws {
        #expect(throws: CryptoError.invalidLength(field: "point", expected: 33, actual: 32)) {
            try Point(compressedRepresentation: hex(Self.gx))
        }
        #expect(throws: CryptoError.invalidPointEncoding(field: "point")) {
            try Point(compressedRepresentation: hex("04" + Self.gx))
        }
        // x = 5: 5³ + 7 = 132 is not a square mod p.
        let notOnCurve = String(repeating: "0", count: 63) + "5"
        #expect(throws: CryptoError.pointNotOnCurve(field: "x-only point")) { try Point(xOnly: hex(notOnCurve)) }
        #expect(throws: CryptoError.pointNotOnCurve(field: "public key")) {
            try Schnorr.PublicKey(rawRepresentation: hex(notOnCurve))
        }
        #expect(throws: CryptoError.invalidLength(field: "public key", expected: 32, actual: 31)) {
            try Schnorr.PublicKey(rawRepresentation: Data(count: 31))
        }
        #expect(throws: CryptoError.invalidLength(field: "public key", expected: 32, actual: 33)) {
            try Schnorr.PublicKey(rawRepresentation: Data(count: 33))
        }
        // x = p is not a field element.
        let p = "fffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2f"
        #expect(throws: CryptoError.pointNotOnCurve(field: "public key")) {
            try Schnorr.PublicKey(rawRepresentation: hex(p))
        }
    }

    @Test func groupLaws() throws {
        let g = Point.generator
        let two = Scalar.one + .one
        let three = two + .one
        let sum: Point? = g + g
        let twoG = try #require(sum)
        #expect(twoG == (try Point(scalarTimesGenerator: two)))
        #expect(twoG == (try g.multiplied(by: two)))
        #expect((twoG + g) == (try Point(scalarTimesGenerator: three)))
        #expect((g + g.negated) == nil)
        #expect((twoG - g) == g)
        #expect(throws: CryptoError.zeroScalar(field: "point multiplier")) { try g.multiplied(by: .zero) }
        #expect(throws: CryptoError.zeroScalar(field: "multiplier of G")) { try Point(scalarTimesGenerator: .zero) }
        // 2G from the SEC2 tables.
        #expect(twoG.compressedRepresentation.hexString
            == "02c6047f9441ed7d6d3045406e95c07cd85c778e4b8cef3ca7abac09b95c709ee5")
    }

    @Test func scalarMultiplicationDistributes() throws {
        var rng = SplitMix64(seed: 7)
        for _ in 0..<50 {
            let a = Scalar(reducing: rng.bytes(32))
            let b = Scalar(reducing: rng.bytes(32))
            guard !a.isZero, !b.isZero, !(a + b).isZero, !(a * b).isZero else { continue }
            let aG = try Point(scalarTimesGenerator: a)
            let bG = try Point(scalarTimesGenerator: b)
            let sumG = try Point(scalarTimesGenerator: a + b)
            #expect((aG + bG) == sumG)
            #expect(try aG.multiplied(by: b) == Point(scalarTimesGenerator: a * b))
        }
    }
}

@Suite struct TaggedHashTests {
    /// Expected values from Python 3: `h = sha256(tag).digest(); sha256(h + h + b"hello").hexdigest()`.
    static let helloHashes: [(String, String)] = [
        ("BIP0340/challenge", "a97ff4dc59e2e158c00a7d9cf1e7d60fb090ecf5f728b6d17be7cbbb0fc572dd"),
        ("TapLeaf", "cc0d501f9c9c9610e44edb939ad98d59a1a98739d0e26dbe932660ae33a8196e"),
        ("SchnorrAdaptor/nonce", "8c55381466ff2115239966029a7d809c1156c94aa0e022cdeaec218dd1b6c2ab"),
        ("Some/Other/Tag", "5f8d82c15f94c9b2f15f3d54a8701f8d4f72841aaaf4d5934567e81984834537"),
    ]

    @Test(arguments: helloHashes)
    func matchesPythonForCachedAndUncachedTags(tag: String, expected: String) {
        #expect(TaggedHash.hash(tag: tag, data: Data("hello".utf8)).hexString == expected)
    }

    @Test func knownTapLeafHash() throws {
        // BIP-341 wallet vectors, scriptPubKey[1]: leaf version 0xc0, 34-byte script.
        let script = try hex("20d85a959b0290bf19bb89ed43c916be835475d013da4b362117393e25a48229b8ac")
        let leaf = TaggedHash.hash(tag: "TapLeaf", data: Data([0xc0, UInt8(script.count)]) + script)
        #expect(leaf.hexString == "5b75adecf53548f3ec6ad7d78383bf84cc57b55a3127c72b9a2481752dd88b21")
    }
}
