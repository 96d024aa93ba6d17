import Crypto
import Foundation
import IshtarCrypto
import IshtarTestSupport
import Testing

/// ``InlineSHA256`` reaches BoringSSL directly instead of through swift-crypto's `SHA256`:
/// it must be SHA-256 — the FIPS 180-2 examples — and agree with swift-crypto everywhere.
@Suite struct InlineSHA256Tests {
    /// FIPS 180-2 appendix B (one block, two blocks) and the empty message.
    static let vectors: [(String, String)] = [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
    ]

    @Test(arguments: vectors)
    func fipsExamples(message: String, digest: String) {
        #expect(InlineSHA256.hash(data: Data(message.utf8)).hexString == digest)
    }

    /// A million "a", fed in uneven pieces (FIPS 180-2 B.3).
    @Test func millionAInPieces() {
        var h = InlineSHA256()
        var fed = 0
        var piece = 1
        while fed < 1_000_000 {
            let n = min(piece, 1_000_000 - fed)
            h.update(data: Data(repeating: UInt8(ascii: "a"), count: n))
            fed += n
            piece = piece * 3 % 997 + 1
        }
        #expect(h.finalize().hexString == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    /// Every length 0…300 (each padding case), whole and split at a random point, against
    /// swift-crypto; finalizing twice, and a copy taken midway, do not disturb the state.
    @Test func agreesWithSwiftCrypto() {
        var rng = SplitMix64(seed: 0x5A5A_1234)
        for length in 0...300 {
            let data = rng.bytes(length)
            let expected = Data(SHA256.hash(data: data))
            #expect(InlineSHA256.hash(data: data) == expected, "length \(length)")
            let cut = Int.random(in: 0...length, using: &rng)
            var h = InlineSHA256()
            h.update(data: data.prefix(cut))
            let fork = h
            h.update(bytes: data.suffix(from: cut))
            #expect(h.finalize() == expected, "length \(length) split at \(cut)")
            #expect(h.finalize() == expected, "finalizing again, length \(length)")
            #expect(fork.finalize() == Data(SHA256.hash(data: data.prefix(cut))), "fork at \(cut)")
            let digest = withUnsafeTemporaryAllocation(byteCount: 32, alignment: 1) { out in
                h.finalize(into: out)
                return Data(UnsafeRawBufferPointer(out))
            }
            #expect(digest == expected)
        }
    }

    /// Tagged hashes through the inline states equal BIP-340's definition computed plainly.
    @Test(arguments: ["BIP0340/challenge", "ishtar/tx", "ishtar/state-element", "a tag nobody cached"])
    func taggedHashes(tag: String) {
        let data = Data("some bytes to tag".utf8)
        let t = Data(SHA256.hash(data: Data(tag.utf8)))
        #expect(TaggedHash.hash(tag: tag, data: data) == Data(SHA256.hash(data: t + t + data)))
        var viaSwiftCrypto = TaggedHash.hasher(tag: tag)
        viaSwiftCrypto.update(data: data)
        #expect(TaggedHash.hash(tag: tag, data: data) == Data(viaSwiftCrypto.finalize()))
    }

    /// The direct two-block path equals SHA-256 at every length it accepts (each padding case:
    /// one block up to 55 bytes, two from 56), written whole or in pieces, and a buffer reused
    /// with new bytes at the same offsets hashes the new message.
    @Test func shortBlocksAgreeWithSwiftCrypto() {
        var rng = SplitMix64(seed: 0x0B10_C4ED)
        for length in 0...ShortSHA256Block.maximumLength {
            for round in 0..<2 {
                let data = rng.bytes(length)
                var block = ShortSHA256Block(length: length)
                let cut = Int.random(in: 0...length, using: &rng)
                data.prefix(cut).withUnsafeBytes { block.write($0, at: 0) }
                data.suffix(from: cut).withUnsafeBytes { block.write($0, at: cut) }
                let digest = withUnsafeTemporaryAllocation(byteCount: 32, alignment: 1) { out in
                    block.digest(into: out)
                    return Data(UnsafeRawBufferPointer(out))
                }
                #expect(digest == Data(SHA256.hash(data: data)), "length \(length), round \(round)")
            }
        }
        // Writes past the declared length are ignored rather than spilling into the padding.
        var block = ShortSHA256Block(length: 3)
        Data("abcdef".utf8).withUnsafeBytes { block.write($0, at: 0) }
        block.write(byte: 0xFF, at: 3)
        let digest = withUnsafeTemporaryAllocation(byteCount: 32, alignment: 1) { out in
            block.digest(into: out)
            return Data(UnsafeRawBufferPointer(out))
        }
        #expect(digest.hexString == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }
}
