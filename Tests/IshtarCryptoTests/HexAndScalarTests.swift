import Foundation
import IshtarCrypto
import IshtarTestSupport
import Testing

@Suite struct HexTests {
    @Test func roundTripsAndAcceptsBothCases() throws {
        #expect(try Data(hex: "00ffAbCd") == Data([0x00, 0xff, 0xab, 0xcd]))
        #expect(Data([0x00, 0xff, 0xab, 0xcd]).hexString == "00ffabcd")
        #expect(try Data(hex: "") == Data())
    }

    @Test func rejectsOddLengthAndNonHex() {
        #expect(throws: CryptoError.invalidHex(field: "key")) { try Data(hex: "abc", field: "key") }
        #expect(throws: CryptoError.invalidHex(field: "hex")) { try Data(hex: "zz") }
        #expect(throws: CryptoError.invalidHex(field: "hex")) { try Data(hex: "0x00") }
    }

    @Test func errorDescriptionsNameTheField() {
        let error = CryptoError.invalidLength(field: "public key", expected: 32, actual: 31)
        #expect(error.description == "public key: expected 32 bytes, got 31")
        #expect(CryptoError.scalarOutOfRange(field: "private key").description.contains("private key"))
    }
}

@Suite struct ScalarTests {
    static let n = "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141"

    @Test func rejectsOrderAndWrongLengths() throws {
        #expect(throws: CryptoError.scalarOutOfRange(field: "scalar")) {
            try Scalar(rawRepresentation: hex(Self.n))
        }
        #expect(throws: CryptoError.scalarOutOfRange(field: "private key")) {
            try Schnorr.PrivateKey(rawRepresentation: hex(Self.n))
        }
        #expect(throws: CryptoError.zeroScalar(field: "private key")) {
            try Schnorr.PrivateKey(rawRepresentation: Data(count: 32))
        }
        #expect(throws: CryptoError.invalidLength(field: "scalar", expected: 32, actual: 31)) {
            try Scalar(rawRepresentation: Data(count: 31))
        }
        #expect(throws: CryptoError.invalidLength(field: "private key", expected: 32, actual: 33)) {
            try Schnorr.PrivateKey(rawRepresentation: Data(count: 33))
        }
        // Zero is a Scalar (it can be an s value or a difference), just not a key.
        #expect(try Scalar(rawRepresentation: Data(count: 32)).isZero)
        #expect(Scalar.order == (try hex(Self.n)))
    }

    @Test func reducesModuloOrder() throws {
        let nPlusFive = try hex("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364146")
        #expect(Scalar(reducing: nPlusFive).rawRepresentation == Data(count: 31) + Data([5]))
        #expect(Scalar(reducing: try hex(Self.n)).isZero)
        #expect(Scalar(reducing: Data([1, 0])).rawRepresentation == Data(count: 30) + Data([1, 0]))
        // 2^256 mod n = 2^256 − n (checked with Python: hex(2**256 % n)).
        let twoTo256 = Data([1]) + Data(count: 32)
        #expect(Scalar(reducing: twoTo256).rawRepresentation
            == (try hex("000000000000000000000000000000014551231950b75fc4402da1732fc9bebf")))
    }

    @Test func arithmeticHandlesZeroAndWraps() throws {
        let one = Scalar.one
        let minusOne = one.negated
        #expect(minusOne.rawRepresentation == (try hex("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364140")))
        #expect((one + minusOne).isZero)
        #expect((one - one).isZero)
        #expect(Scalar.zero.negated.isZero)
        #expect((minusOne * minusOne) == one)
        #expect((Scalar.zero * minusOne).isZero)
        #expect(Scalar.zero + one == one)
        #expect(throws: CryptoError.zeroScalar(field: "scalar to invert")) { try Scalar.zero.inverse() }
    }

    /// Inverses computed independently with Python 3.11: `'%064x' % pow(x, -1, n)` with
    /// n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141.
    static let knownInverses: [(String, String)] = [
        ("0000000000000000000000000000000000000000000000000000000000000002",
         "7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a1"),
        ("0000000000000000000000000000000000000000000000000000000000000003",
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa9d1c9e899ca306ad27fe1945de0242b81"),
        ("00000000000000000000000000000000000000000000000000000000deadbeef",
         "c7a08c98bee4c0ba899d8cf72783c19a17a6ef2b81b68d19274e6e7d970237f0"),
        ("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364140",
         "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364140"),
        ("b7e151628aed2a6abf7158809cf4f3c762e7160f38b4da56a784d9045190cfef",
         "60cf6ddb4c1cdebb1228a9c3042a8cd49a623a4ad4dff10517933b5ba3e1d2a3"),
        ("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
         "2b359de5cfb5937a5610d565dceaef2a760ceeaec96e68140757f0c8371534e0"),
    ]

    @Test(arguments: knownInverses)
    func inverseMatchesPython(value: String, expected: String) throws {
        let x = try Scalar(rawRepresentation: hex(value))
        #expect(try x.inverse().rawRepresentation.hexString == expected)
    }

    @Test func inverseTimesValueIsOne() throws {
        var rng = SplitMix64(seed: 1)
        for _ in 0..<200 {
            let x = Scalar(reducing: rng.bytes(32))
            guard !x.isZero else { continue }
            #expect(try x * x.inverse() == .one)
        }
    }

    @Test func descriptionIsRedacted() throws {
        let key = try Schnorr.PrivateKey(rawRepresentation: hex("b7e151628aed2a6abf7158809cf4f3c762e7160f38b4da56a784d9045190cfef"))
        #expect(!String(describing: key).contains("b7e15162"))
        #expect(!String(reflecting: key).contains("b7e15162"))
        #expect(!String(describing: key.scalar).contains("b7e15162"))
        var dumped = ""
        dump(key, to: &dumped)
        #expect(!dumped.contains("b7e15162"))
    }
}
