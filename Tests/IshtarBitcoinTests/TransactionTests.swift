import Foundation
import IshtarBitcoin
import IshtarCrypto
import IshtarTestSupport
import Testing

/// The genesis coinbase, the only transaction of every genesis block.
let genesisCoinbaseHex =
    "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff4d04ffff001d0104455468652054696d65732030332f4a616e2f32303039204368616e63656c6c6f72206f6e206272696e6b206f66207365636f6e64206261696c6f757420666f722062616e6b73ffffffff0100f2052a01000000434104678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb649f6bc3f4cef38c4f35504e51ec112de5c384df7ba0b8d578a4c702b6bf11d5fac00000000"

@Suite("Transactions")
struct TransactionTests {
    @Test func genesisCoinbase() throws {
        let tx = try Transaction(serialized: hex(genesisCoinbaseHex))
        #expect(tx.txid.displayHex == "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b")
        #expect(tx.wtxid == tx.txid)
        #expect(tx.isCoinbase)
        #expect(!tx.hasWitness)
        #expect(tx.outputs[0].value == .sats(50 * 100_000_000))
        #expect(tx.serialized().hexString == genesisCoinbaseHex)
        #expect(tx.weight == 4 * tx.totalSize)
        #expect(tx.virtualSize == tx.totalSize)
    }

    @Test func segwitSizesAndIds() throws {
        let vectors = try #require(BIP341Vectors.loaded)
        let signedHex = try #require(vectors.keyPathSpending.first?.auxiliary.fullySignedTx)
        let tx = try Transaction(serialized: hex(signedHex))
        #expect(tx.hasWitness)
        #expect(tx.txid != tx.wtxid)
        #expect(tx.strippedSize == tx.serialized(includingWitness: false).count)
        #expect(tx.totalSize == hex(signedHex).count)
        #expect(tx.weight == 3 * tx.strippedSize + tx.totalSize)
        #expect(tx.virtualSize == (tx.weight + 3) / 4)
        // Stripping the witness gives a valid legacy transaction with the same txid.
        var stripped = tx
        for index in stripped.inputs.indices { stripped.inputs[index].witness = [] }
        let legacy = try Transaction(serialized: stripped.serialized())
        #expect(legacy.txid == tx.txid)
        #expect(legacy.wtxid == tx.txid)
    }

    @Test func txidDisplayIsReversed() throws {
        let id = try Hash256(displayHex: "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b")
        #expect(id.rawValue.first == 0x3b)
        #expect(id.description == "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b")
        #expect(throws: BitcoinDecodingError.invalidHex(field: "hash")) { try Hash256(displayHex: "zz") }
        #expect(throws: BitcoinDecodingError.invalidLength(field: "hash", expected: 32, actual: 2)) {
            try Hash256(displayHex: "abcd")
        }
        let outpoint = OutPoint(txid: id, index: 7)
        #expect(outpoint.serialized.count == 36)
        #expect(outpoint.description.hasSuffix(":7"))
    }

    @Test(arguments: [
        (UInt64(0), "00"), (0xfc, "fc"), (0xfd, "fdfd00"), (0xffff, "fdffff"), (0x1_0000, "fe00000100"),
        (0xffff_ffff, "feffffffff"), (0x1_0000_0000, "ff0000000001000000"), (UInt64.max, "ffffffffffffffffff"),
    ])
    func compactSize(value: UInt64, encoding: String) throws {
        #expect(CompactSize.encode(value).hexString == encoding)
        #expect(CompactSize.size(of: value) == encoding.count / 2)
        let decoded = try CompactSize.decode(hex(encoding))
        #expect(decoded.value == value)
        #expect(decoded.length == encoding.count / 2)
    }

    @Test(arguments: ["fd0000", "fdfc00", "fe0000000000", "feffff0000", "ff0000000000000000", "ffffffffff00000000"])
    func nonMinimalCompactSize(_ encoding: String) {
        #expect(throws: BitcoinDecodingError.nonMinimalCompactSize(field: "compact size", offset: 0)) {
            try CompactSize.decode(hex(encoding))
        }
    }

    @Test func truncatedCompactSize() {
        #expect(throws: BitcoinDecodingError.truncated(field: "compact size", offset: 1, needed: 2, available: 1)) {
            try CompactSize.decode(hex("fd01"))
        }
    }

    // MARK: Malformed input

    private var sample: Transaction {
        Transaction(
            version: 2,
            inputs: [
                TxIn(previousOutput: OutPoint(txid: .zero, index: 1), sequence: 0xffff_fffd, witness: [Data([1, 2, 3]), Data()]),
                TxIn(previousOutput: OutPoint(txid: .zero, index: 2), scriptSig: Script([.push(Data([0xaa]))])),
            ],
            outputs: [TxOut(value: .sats(1234), scriptPubKey: .p2wpkh(pubKeyHash: Data(repeating: 7, count: 20)))],
            lockTime: 99)
    }

    @Test func roundTrips() throws {
        let tx = sample
        let bytes = tx.serialized()
        #expect(try Transaction(serialized: bytes) == tx)
        var legacy = tx
        legacy.inputs[0].witness = []
        #expect(try Transaction(serialized: legacy.serialized()) == legacy)
        #expect(legacy.serialized() == tx.serialized(includingWitness: false))
    }

    @Test func rejectsTrailingBytes() {
        let bytes = sample.serialized() + Data([0])
        #expect(throws: BitcoinDecodingError.trailingBytes(offset: bytes.count - 1, count: 1)) {
            try Transaction(serialized: bytes)
        }
    }

    @Test func rejectsEveryTruncation() {
        let bytes = sample.serialized()
        for length in 0..<bytes.count {
            #expect(throws: BitcoinDecodingError.self) { try Transaction(serialized: bytes.prefix(length)) }
        }
    }

    @Test func rejectsWitnessFlagWithEmptyWitnesses() {
        var tx = sample
        tx.inputs[0].witness = []
        // Hand-build a segwit serialization where both witness stacks are empty.
        var bytes = Data([2, 0, 0, 0, 0x00, 0x01])
        let legacy = tx.serialized(includingWitness: false)
        bytes.append(legacy.dropFirst(4).dropLast(4))
        bytes.append(contentsOf: [0x00, 0x00])
        bytes.append(legacy.suffix(4))
        #expect(throws: BitcoinDecodingError.superfluousWitness(offset: bytes.count - 4)) {
            try Transaction(serialized: bytes)
        }
    }

    @Test func rejectsBadFlagsAndCounts() {
        // Unknown segwit flag.
        #expect(throws: BitcoinDecodingError.unknownSegwitFlag(offset: 4, flag: 2)) {
            try Transaction(serialized: hex("02000000" + "0002" + "00"))
        }
        // Zero inputs (reads as marker + flag 0x00).
        #expect(throws: BitcoinDecodingError.noInputs(offset: 4)) {
            try Transaction(serialized: hex("02000000" + "0000" + "00000000"))
        }
        // Segwit with zero inputs.
        #expect(throws: BitcoinDecodingError.noInputs(offset: 6)) {
            try Transaction(serialized: hex("02000000" + "0001" + "00" + "00" + "00000000"))
        }
        // An absurd input count is refused before allocating anything.
        #expect(throws: BitcoinDecodingError.countExceedsInput(field: "input count", offset: 4, value: 0xffff_ffff_ffff_ffff)) {
            try Transaction(serialized: hex("02000000" + "ffffffffffffffffff" + String(repeating: "00", count: 100)))
        }
        // A scriptSig longer than the rest of the input.
        let outpoint = String(repeating: "00", count: 36)
        #expect(throws: BitcoinDecodingError.countExceedsInput(field: "input 0 scriptSig", offset: 41, value: 0xfd00)) {
            try Transaction(serialized: hex("02000000" + "01" + outpoint + "fd00fd" + String(repeating: "00", count: 50)))
        }
        // A non-minimal output count.
        #expect(throws: BitcoinDecodingError.nonMinimalCompactSize(field: "output count", offset: 46)) {
            try Transaction(serialized: hex("02000000" + "01" + outpoint + "00" + "ffffffff" + "fd0100" + String(repeating: "00", count: 20)))
        }
        // A negative output value.
        #expect(throws: BitcoinDecodingError.invalidAmount(offset: 47, sats: -1)) {
            try Transaction(serialized: hex("02000000" + "01" + outpoint + "00" + "ffffffff" + "01" + "ffffffffffffffff" + "00" + "00000000"))
        }
    }

    /// Random bytes and random mutations of valid transactions: the decoder must never trap,
    /// and whatever it accepts must re-serialize to exactly the input.
    @Test func fuzzDecoder() throws {
        var rng = SplitMix64(seed: 0x1157_4a12)
        let vectors = try #require(BIP341Vectors.loaded)
        let seeds: [Data] = [
            sample.serialized(), hex(genesisCoinbaseHex),
            hex(vectors.keyPathSpending.first?.given.rawUnsignedTx ?? ""),
            hex(vectors.keyPathSpending.first?.auxiliary.fullySignedTx ?? ""),
        ]
        var accepted = 0
        for iteration in 0..<4000 {
            var bytes: Data
            if iteration % 4 == 0 {
                let length = Int.random(in: 0..<300, using: &rng)
                bytes = Data((0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) })
                if iteration % 8 == 0, bytes.count > 6 { bytes[4] = 0; bytes[5] = 1 }
            } else {
                bytes = seeds[Int.random(in: 0..<seeds.count, using: &rng)]
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    guard !bytes.isEmpty else { break }
                    let position = Int.random(in: 0..<bytes.count, using: &rng)
                    switch Int.random(in: 0..<4, using: &rng) {
                    case 0: bytes[position] = UInt8.random(in: 0...255, using: &rng)
                    case 1: bytes = bytes.prefix(position)
                    case 2: bytes.insert(UInt8.random(in: 0...255, using: &rng), at: position)
                    default: bytes.remove(at: position)
                    }
                }
            }
            do {
                let tx = try Transaction(serialized: bytes)
                accepted += 1
                #expect(tx.serialized() == bytes, "iteration \(iteration)")
            } catch {
                // A typed BitcoinDecodingError is the only other outcome.
                _ = error
            }
        }
        #expect(accepted > 0)
    }
}

@Suite("Amounts")
struct AmountTests {
    @Test func ranges() throws {
        #expect(throws: AmountError.negative(sats: -1)) { try Amount(sats: -1) }
        #expect(throws: AmountError.exceedsMaxMoney(sats: 2_100_000_000_000_001)) { try Amount(sats: 2_100_000_000_000_001) }
        #expect(try Amount(sats: 2_100_000_000_000_000) == .maxMoney)
        #expect(throws: AmountError.exceedsMaxMoney(sats: 2_100_000_000_000_001)) { try Amount.maxMoney + Amount(sats: 1) }
        #expect(throws: AmountError.arithmeticOverflow) { try Amount(sats: 1) - Amount(sats: 2) }
        #expect(throws: AmountError.arithmeticOverflow) { try Amount.maxMoney.multiplied(by: .max) }
        #expect(try Amount(sats: 5) + Amount(sats: 7) == Amount(sats: 12))
        #expect(try Amount.sum([.sats(1), .sats(2), .sats(3)]) == .sats(6))
        #expect(Amount.sats(123_456_789).description == "1.23456789 BTC")
        #expect(Amount.sats(5).description == "0.00000005 BTC")
        let json = try JSONEncoder().encode(Amount.sats(42))
        #expect(String(decoding: json, as: UTF8.self) == "42")
        #expect(throws: (any Error).self) { try JSONDecoder().decode(Amount.self, from: Data("-5".utf8)) }
    }
}
