import Foundation
import IshtarChain
import IshtarCrypto
import IshtarTestSupport
import Testing

@Suite("Codec")
struct CodecTests {
    func sampleTx() throws -> Transaction {
        try Transaction.signed(chainID: testChainID, key: testKey("alice"), nonce: 7,
                               messages: [SetLabel(label: "alice").message, CounterModule.add(3)])
    }

    func sampleBlock() throws -> Block {
        let tx = try sampleTx().encoded
        let header = BlockHeader(
            chainID: testChainID, height: 5, time: 123_456, previousBlockHash: Data(repeating: 1, count: 32),
            transactionsRoot: Block.transactionsRoot([tx, Data([9])]), appHash: Data(repeating: 2, count: 32),
            proposer: Data(repeating: 3, count: 32), validatorsHash: Data(repeating: 4, count: 32),
            lastCommit: CommitInfo(height: 4, round: 1, blockHash: Data(repeating: 1, count: 32), signatures: [
                CommitSignature(address: Data(repeating: 5, count: 32), signature: Data(repeating: 6, count: 64)),
            ]))
        return Block(header: header, transactions: [tx, Data([9])])
    }

    @Test func integersAreBigEndianAndFixedWidth() throws {
        var w = BinaryWriter()
        w.u16(0x0102)
        w.u32(0x0304_0506)
        w.u64(0x0708_090a_0b0c_0d0e)
        w.string("é")
        #expect(w.data.hexString == "0102" + "03040506" + "0708090a0b0c0d0e" + "00000002c3a9")
        var r = BinaryReader(w.data)
        #expect(try r.u16("a") == 0x0102)
        #expect(try r.u32("b") == 0x0304_0506)
        #expect(try r.u64("c") == 0x0708_090a_0b0c_0d0e)
        #expect(try r.string("d") == "é")
        try r.finish()
    }

    @Test func transactionRoundTripsAndVerifies() throws {
        let tx = try sampleTx()
        let decoded = try Transaction(decoding: tx.encoded)
        #expect(decoded == tx)
        #expect(decoded.encoded == tx.encoded)
        try decoded.validateBasic(chainID: testChainID)
        #expect(tx.hash == testSHA256Plain(tx.encoded))
        // Checked over the bytes it was decoded from (what the application does): the same
        // verdicts as over its re-encoding, for the signed transaction and for one whose
        // signed bytes changed under the same signature.
        try decoded.validateBasic(chainID: testChainID, signatureVerified: false, encoded: tx.encoded)
        var other = tx
        other.nonce += 1
        #expect(throws: TxError.invalidSignature) { try other.validateBasic(chainID: testChainID) }
        #expect(throws: TxError.invalidSignature) {
            try other.validateBasic(chainID: testChainID, signatureVerified: false, encoded: other.encoded)
        }
    }

    @Test func blockRoundTrips() throws {
        let block = try sampleBlock()
        #expect(try Block(decoding: block.encoded) == block)
        var first = block
        first.header.lastCommit = nil
        #expect(try Block(decoding: first.encoded) == first)
        #expect(block.hash != first.hash, "the last commit is covered by the block hash")
        #expect(try BlockHeader(decoding: block.header.encoded).hash == block.hash)
    }

    @Test func nonCanonicalInputsAreRejected() throws {
        let tx = try sampleTx().encoded
        #expect(throws: CodecError.trailingBytes(count: 1)) { try Transaction(decoding: tx + Data([0])) }
        #expect(throws: CodecError.self) { try Transaction(decoding: tx.dropLast()) }
        var badVersion = tx
        badVersion[badVersion.startIndex] = 2
        #expect(throws: CodecError.unknownVersion(field: "transaction version", value: 2)) {
            try Transaction(decoding: badVersion)
        }
        // A presence tag of 2 for the last commit is not canonical.
        var header = try sampleBlock().header
        header.lastCommit = nil
        var bytes = header.encoded
        bytes[bytes.index(before: bytes.endIndex)] = 2
        #expect(throws: CodecError.invalidOptionalTag(field: "last commit", value: 2)) { try BlockHeader(decoding: bytes) }
        // A huge message count is refused before allocating.
        var w = BinaryWriter()
        w.u8(1)
        w.string(testChainID)
        w.fixed(Data(count: 32))
        w.u64(0)
        w.u32(UInt32.max)
        #expect(throws: CodecError.self) { try Transaction(decoding: w.data) }
        // Invalid UTF-8 in a string.
        var s = BinaryWriter()
        s.bytes(Data([0xff, 0xfe]))
        var r = BinaryReader(s.data)
        #expect(throws: CodecError.invalidUTF8(field: "x")) { try r.string("x") }
    }

    @Test func resultAndEventRoundTrip() throws {
        let ok = TxResult.ok(events: [Event(type: "a.b", attributes: [EventAttribute("k", "v")])])
        #expect(try TxResult(decoding: ok.encoded) == ok)
        let bad = TxResult(violation: AccountsError.nonceMismatch(expected: 1, actual: 2).violation)
        #expect(try TxResult(decoding: bad.encoded) == bad)
        #expect(bad.violation?.rule == "nonce-mismatch")
    }

    @Test func fuzzTransactionDecoder() throws {
        let seeds = [try sampleTx().encoded,
                     try Transaction.signed(chainID: "x", key: testKey("b"), nonce: 0, messages: [CounterModule.add(1)]).encoded]
        let (accepted, rejected) = fuzzDecoder(Transaction.self, seeds: seeds, iterations: 6000, seed: 0x7478)
        #expect(accepted + rejected == 6000)
        #expect(rejected > 0 && accepted > 0)
    }

    @Test func fuzzBlockDecoder() throws {
        var noCommit = try sampleBlock()
        noCommit.header.lastCommit = nil
        noCommit.transactions = []
        let seeds = [try sampleBlock().encoded, noCommit.encoded]
        let (accepted, rejected) = fuzzDecoder(Block.self, seeds: seeds, iterations: 6000, seed: 0x626c6b)
        #expect(accepted + rejected == 6000)
        #expect(rejected > 0 && accepted > 0)
    }

    @Test func fuzzedTransactionsNeverChangeState() throws {
        // Decoder fuzzing end to end: random mutations through checkTx and a block.
        let net = try TestNet()
        let app = try makeApp(net)
        let before = try #require(app.lastAppHash)
        var rng = SplitMix64(seed: 99)
        let valid = try labelTx(testKey("fuzz"), nonce: 0)
        var junk: [Data] = []
        for _ in 0..<300 {
            var bytes = [UInt8](valid)
            bytes[Int.random(in: 0..<bytes.count, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng)
            junk.append(Data(bytes))
        }
        for tx in junk {
            let result = try app.checkTx(tx).result
            // A flipped byte may land in the label text and still decode, but then the
            // signature no longer verifies: nothing gets through.
            #expect(!result.isOK)
        }
        #expect(app.lastAppHash == before)
    }
}

func testSHA256Plain(_ data: Data) -> Data {
    Transaction.hash(of: data)
}
