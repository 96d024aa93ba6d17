import Foundation
import IshtarBitcoin
import IshtarTestSupport
import Testing

struct BIP350Vectors: Decodable, Sendable {
    struct Invalid: Decodable, Sendable {
        let string: String
        let reason: String
    }
    struct ValidAddress: Decodable, Sendable {
        let address: String
        let scriptPubKey: String
    }
    struct InvalidAddress: Decodable, Sendable {
        let address: String
        let reason: String
    }
    let bech32m_valid: [String]
    let bech32m_invalid: [Invalid]
    let segwit_address_valid: [ValidAddress]
    let segwit_address_invalid: [InvalidAddress]

    static let loaded = Fixtures.json("bip350-vectors.json", as: BIP350Vectors.self)
}

@Suite("BIP-350 bech32m and segwit addresses")
struct BIP350Tests {
    @Test func vectorsLoad() throws {
        let vectors = try #require(BIP350Vectors.loaded)
        #expect(vectors.bech32m_valid.count == 7)
        #expect(vectors.bech32m_invalid.count == 14)
        #expect(vectors.segwit_address_valid.count == 8)
        #expect(vectors.segwit_address_invalid.count == 15)
    }

    @Test(arguments: BIP350Vectors.loaded?.bech32m_valid ?? [])
    func validBech32m(_ string: String) throws {
        let decoded = try Bech32.decode(string)
        #expect(decoded.variant == .bech32m)
        let reencoded = try Bech32.encode(hrp: decoded.hrp, data: decoded.data, variant: .bech32m)
        #expect(reencoded == string.lowercased())
    }

    @Test(arguments: BIP350Vectors.loaded?.bech32m_invalid ?? [])
    func invalidBech32m(_ vector: BIP350Vectors.Invalid) {
        // Either no valid checksum at all, or (for none of these) a bech32 one.
        let decoded = try? Bech32.decode(vector.string)
        #expect(decoded == nil || decoded?.variant != .bech32m, "\(vector.reason)")
    }

    @Test(arguments: BIP350Vectors.loaded?.segwit_address_valid ?? [])
    func validAddress(_ vector: BIP350Vectors.ValidAddress) throws {
        let address = try SegwitAddress(vector.address)
        #expect(address.scriptPubKey.bytes == hex(vector.scriptPubKey))
        #expect(address.encoded == vector.address.lowercased())
        let network = try #require(address.networks.first)
        let fromScript = try SegwitAddress(scriptPubKey: Script(bytes: hex(vector.scriptPubKey)), network: network)
        #expect(fromScript == address)
        #expect(throws: AddressError.self) {
            try SegwitAddress(vector.address, network: .regtest)
        }
    }

    @Test(arguments: BIP350Vectors.loaded?.segwit_address_invalid ?? [])
    func invalidAddress(_ vector: BIP350Vectors.InvalidAddress) {
        #expect(throws: AddressError.self, "\(vector.reason)") {
            try SegwitAddress(vector.address)
        }
    }

    @Test func specificErrors() {
        #expect(throws: AddressError.mixedCase) {
            try SegwitAddress("tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq47Zagq")
        }
        #expect(throws: AddressError.unknownHumanReadablePart("tc")) {
            try SegwitAddress("tc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq5zuyut")
        }
        #expect(throws: AddressError.wrongChecksumVariant(witnessVersion: 1)) {
            try SegwitAddress("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqh2y7hd")
        }
        #expect(throws: AddressError.wrongChecksumVariant(witnessVersion: 0)) {
            try SegwitAddress("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kemeawh")
        }
        #expect(throws: AddressError.invalidWitnessVersion(17)) {
            try SegwitAddress("BC130XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ7ZWS8R")
        }
        #expect(throws: AddressError.invalidProgramLength(1)) { try SegwitAddress("bc1pw5dgrnzv") }
        #expect(throws: AddressError.invalidVersion0ProgramLength(16)) {
            try SegwitAddress("BC1QR508D6QEJXTDG4Y5R3ZARVARYV98GJ9P")
        }
        #expect(throws: AddressError.invalidPadding) {
            try SegwitAddress("tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vpggkg4j")
        }
        #expect(throws: AddressError.emptyData) { try SegwitAddress("bc1gmk9yu") }
        #expect(throws: AddressError.noSeparator) { try Bech32.decode("qyrz8wqd2c9m") }
        #expect(throws: AddressError.emptyHumanReadablePart) { try Bech32.decode("1qyrz8wqd2c9m") }
        #expect(throws: AddressError.checksumTooShort) { try Bech32.decode("in1muywd") }
        #expect(throws: AddressError.tooLong(length: 91)) {
            try Bech32.decode("an84characterslonghumanreadablepartthatcontainsthetheexcludedcharactersbioandnumber11d6pts4")
        }
    }

    @Test func networksAndScripts() throws {
        let program = Data(repeating: 0xab, count: 32)
        for network in Network.allCases {
            let address = try SegwitAddress(version: 1, program: program, network: network)
            #expect(address.encoded.hasPrefix(network.bech32HRP + "1p"))
            #expect(try SegwitAddress(address.encoded, network: network) == address)
        }
        #expect(throws: AddressError.notAWitnessProgram) {
            try SegwitAddress(scriptPubKey: Script.p2pkh(pubKeyHash: Data(count: 20)), network: .mainnet)
        }
        #expect(throws: AddressError.wrongNetwork(expected: "bc", found: "tb")) {
            try SegwitAddress("tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7", network: .mainnet)
        }
        // Bitcoin Core's regtest example address round-trips.
        let regtest = try SegwitAddress(version: 0, program: Data(repeating: 0x11, count: 20), network: .regtest)
        #expect(regtest.encoded.hasPrefix("bcrt1q"))
        #expect(try SegwitAddress(regtest.encoded).networks == [.regtest])
    }

    @Test func bech32ClassicRoundTrip() throws {
        // BIP-173 valid bech32 strings decode as bech32, not bech32m.
        for string in ["A12UEL5L", "a12uel5l", "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw", "?1ezyfcl"] {
            let decoded = try Bech32.decode(string)
            #expect(decoded.variant == .bech32)
        }
    }
}
