import Foundation
import IshtarCrypto
import IshtarTestSupport
import Testing

/// ``AESKeystream`` calls BoringSSL's AES directly: its bytes must be AES-256-CTR from the zero
/// counter as another implementation computes it. Expected values were made with OpenSSL's
/// command line (`openssl enc -aes-256-ctr -K <key> -iv 00…00` over zero bytes), not with
/// this code.
@Suite struct AESKeystreamTests {
    static func keystream(key: [UInt8], count: Int) -> [UInt8]? {
        var out = [UInt8](repeating: 0xAA, count: count)
        let ok = out.withUnsafeMutableBytes { o in key.withUnsafeBytes { AESKeystream.fill(o, key: $0) } }
        return ok ? out : nil
    }

    /// The zero key's first block is AES-256 of the zero block under the zero key, the
    /// well-known dc95c078….
    @Test func zeroKeyFirstBlock() throws {
        let stream = try #require(Self.keystream(key: [UInt8](repeating: 0, count: 32), count: 16))
        #expect(Data(stream).hexString == "dc95c078a2408989ad48a21492842087")
    }

    /// Key 00 01 … 1f: three blocks in full, and a 2 KiB stream (a state element's size) by
    /// its SHA-256 — which also shows the counter stepping through 128 blocks.
    @Test func sequentialKeyStreams() throws {
        let key = (0..<32).map { UInt8($0) }
        let three = try #require(Self.keystream(key: key, count: 48))
        #expect(Data(three).hexString == "f29000b62a499fd0a9f39a6add2e7780f05d76ae4ab99fe5a6f69b3148c2363d0ebcb5deb52c83bd08a8a935182c9199")
        let element = try #require(Self.keystream(key: key, count: 2048))
        #expect(InlineSHA256.hash(data: Data(element)).hexString == "7bb5efb323a159a0310e83b87286e596d177ce0b7d0d594f08ea6dc3f9c9d3c2")
        // A length that is not a whole number of blocks is the same stream, cut short;
        // whatever the buffer held before is overwritten.
        let partial = try #require(Self.keystream(key: key, count: 37))
        #expect(partial == Array(three.prefix(37)))
    }

    @Test func refusesAKeyThatIsNot32Bytes() {
        #expect(Self.keystream(key: [UInt8](repeating: 1, count: 31), count: 16) == nil)
        #expect(Self.keystream(key: [UInt8](repeating: 1, count: 16), count: 16) == nil)
        #expect(Self.keystream(key: [UInt8](repeating: 1, count: 32), count: 0) == [])
    }
}
