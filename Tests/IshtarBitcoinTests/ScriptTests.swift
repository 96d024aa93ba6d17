import Foundation
import IshtarBitcoin
import IshtarCrypto
import Testing

@Suite("Scripts")
struct ScriptTests {
    @Test(arguments: [
        (Int64(0), ""), (1, "01"), (-1, "81"), (16, "10"), (127, "7f"), (128, "8000"), (-128, "8080"),
        (255, "ff00"), (256, "0001"), (1000, "e803"), (-1000, "e883"), (32767, "ff7f"), (32768, "008000"),
        (65535, "ffff00"), (2_147_483_647, "ffffff7f"), (-2_147_483_647, "ffffffff"), (2_147_483_648, "0000008000"),
    ])
    func scriptNumbers(value: Int64, encoding: String) throws {
        #expect(ScriptNumber.encode(value).hexString == encoding)
        #expect(try ScriptNumber.decode(hex(encoding), maxSize: 5) == value)
    }

    @Test func scriptNumberRejections() {
        #expect(throws: ScriptError.nonMinimalNumber) { try ScriptNumber.decode(hex("00")) }
        #expect(throws: ScriptError.nonMinimalNumber) { try ScriptNumber.decode(hex("80")) }
        #expect(throws: ScriptError.nonMinimalNumber) { try ScriptNumber.decode(hex("0100")) }
        #expect(throws: ScriptError.nonMinimalNumber) { try ScriptNumber.decode(hex("0180")) }
        #expect(throws: ScriptError.numberTooLong(size: 5, maxSize: 4)) { try ScriptNumber.decode(hex("0000008000")) }
        // 0x80 0x00 is minimal (the 0x00 carries the sign of a value whose top bit is set).
        #expect((try? ScriptNumber.decode(hex("8000"))) == 128)
        #expect((try? ScriptNumber.decode(hex("0100"), requireMinimal: false)) == 1)
    }

    @Test func minimalPushes() {
        #expect(Script([.push(Data())]).bytes.hexString == "00")
        #expect(Script([.push(Data([5]))]).bytes.hexString == "55")
        #expect(Script([.push(Data([16]))]).bytes.hexString == "60")
        #expect(Script([.push(Data([17]))]).bytes.hexString == "0111")
        #expect(Script([.push(Data([0x81]))]).bytes.hexString == "4f")
        #expect(Script([.push(Data([0]))]).bytes.hexString == "0100")
        #expect(Script([.push(Data(repeating: 1, count: 75))]).bytes.prefix(1).hexString == "4b")
        #expect(Script([.push(Data(repeating: 1, count: 76))]).bytes.prefix(2).hexString == "4c4c")
        #expect(Script([.push(Data(repeating: 1, count: 255))]).bytes.prefix(2).hexString == "4cff")
        #expect(Script([.push(Data(repeating: 1, count: 256))]).bytes.prefix(3).hexString == "4d0001")
        #expect(Script([.push(Data(repeating: 1, count: 65536))]).bytes.prefix(5).hexString == "4e00000100")
        // PROTOCOL §1: 1000 → 02 e803, 18 → 01 12, 1...16 → OP_n.
        #expect(Script([.number(1000)]).bytes.hexString == "02e803")
        #expect(Script([.number(18)]).bytes.hexString == "0112")
        #expect(Script([.number(3)]).bytes.hexString == "53")
        #expect(Script([.number(0)]).bytes.hexString == "00")
        #expect(Script([.number(-1)]).bytes.hexString == "4f")
    }

    @Test func parseRoundTrip() throws {
        let script: Script = [
            .op(.dup), .push(Data(repeating: 9, count: 80)), .number(1000), .push(Data(repeating: 2, count: 300)),
            .op(.checkSigAdd), .number(5), .op(.numEqual),
        ]
        let instructions = try script.instructions()
        #expect(instructions.map(\.opcode) == [.dup, .pushData1, Opcode(rawValue: 2), .pushData2, .checkSigAdd, Opcode(rawValue: 0x55), .numEqual])
        #expect(instructions.filter { !$0.isMinimalPush }.isEmpty)
        #expect(instructions[1].data?.count == 80)
        #expect(instructions[1].offset == 1)
        #expect(try ScriptNumber.decode(instructions[2].pushedBytes ?? Data()) == 1000)
        #expect(try ScriptNumber.decode(instructions[5].pushedBytes ?? Data()) == 5)
        // A non-minimal push parses but is flagged.
        let loose = try Script(bytes: hex("4c0101")).instructions()
        #expect(loose.first?.isMinimalPush == false)
        #expect(Script([.op(.dup), .op(.hash160)]).asm == "OP_DUP OP_HASH160")
    }

    @Test(arguments: [
        ("01", 0, 1, 0), ("4c", 0, 1, 0), ("4c05aa", 0, 5, 1), ("4d01", 0, 2, 1), ("4d0100", 0, 1, 0), ("4e000001", 0, 4, 3),
        ("76" + "4b" + "00", 1, 75, 1), ("4e01000000", 0, 1, 0),
    ])
    func truncatedPushes(script: String, offset: Int, declared: Int, available: Int) {
        #expect(throws: ScriptError.truncatedPush(offset: offset, declared: declared, available: available)) {
            try Script(bytes: hex(script)).instructions()
        }
    }

    @Test func classification() {
        let hash20 = Data(repeating: 0x11, count: 20)
        let hash32 = Data(repeating: 0x22, count: 32)
        #expect(Script.p2pkh(pubKeyHash: hash20).type == .p2pkh(pubKeyHash: hash20))
        #expect(Script.p2sh(scriptHash: hash20).type == .p2sh(scriptHash: hash20))
        #expect(Script.p2wpkh(pubKeyHash: hash20).type == .p2wpkh(pubKeyHash: hash20))
        #expect(Script.p2wsh(scriptHash: hash32).type == .p2wsh(scriptHash: hash32))
        #expect(Script(bytes: hex("5120" + hash32.hexString)).type == .p2tr(outputKey: hash32))
        #expect(Script(bytes: hex("6002751e")).type == .witnessUnknown(version: 16, program: hex("751e")))
        #expect(Script(bytes: hex("0014" + hash32.prefix(19).hexString + "ff")).type == .p2wpkh(pubKeyHash: hash32.prefix(19) + Data([0xff])))
        // Babylon's burn script, PROTOCOL §2.
        #expect(Script(bytes: hex("6a07626162796c6f6e")).type == .opReturn(data: Data("babylon".utf8)))
        #expect(Script.opReturn(Data(repeating: 1, count: 78)).type == .opReturn(data: Data(repeating: 1, count: 78)))
        #expect(Script([.op(.return)]).type == .opReturn(data: Data()))
        #expect(Script([.op(.return)]).isUnspendable)
        #expect(Script([.op(.return), .op(.dup)]).type == .unknown)
        #expect(Script(bytes: hex("6a4c")).type == .unknown)
        #expect(Script([.op(.op1)]).type == .unknown)
        #expect(Script(bytes: hex("0015" + String(repeating: "00", count: 21))).type == .witnessUnknown(version: 0, program: Data(count: 21)))
        #expect(Script(bytes: hex("0001ff")).type == .unknown)
        #expect(Script.p2wsh(witnessScript: Script([.op(.op1)])).type
            == .p2wsh(scriptHash: BitcoinHash.sha256(Data([0x51]))))
    }

    @Test func multisig() throws {
        let keys = try (1...3).map { byte in
            try Schnorr.PrivateKey(rawRepresentation: Data(repeating: UInt8(byte), count: 32)).publicKey
        }
        let sorted = keys.sorted()
        let script = try Script.multisig(keys: keys, threshold: 2, last: true)
        let expected = Script([
            .push(sorted[0].rawRepresentation), .op(.checkSig),
            .push(sorted[1].rawRepresentation), .op(.checkSigAdd),
            .push(sorted[2].rawRepresentation), .op(.checkSigAdd),
            .number(2), .op(.numEqual),
        ])
        #expect(script == expected)
        #expect(try Script.multisig(keys: keys, threshold: 2, last: false).bytes.last == Opcode.numEqualVerify.rawValue)
        #expect(try Script.multisig(keys: [keys[0]], threshold: 1, last: true)
            == Script([.push(keys[0].rawRepresentation), .op(.checkSig)]))
        #expect(try Script.multisig(keys: [keys[0]], threshold: 1, last: false)
            == Script([.push(keys[0].rawRepresentation), .op(.checkSigVerify)]))
        #expect(throws: ScriptError.invalidThreshold(threshold: 4, keyCount: 3)) { try Script.multisig(keys: keys, threshold: 4, last: true) }
        #expect(throws: ScriptError.invalidThreshold(threshold: 0, keyCount: 3)) { try Script.multisig(keys: keys, threshold: 0, last: true) }
        #expect(throws: ScriptError.duplicateKey) { try Script.multisig(keys: [keys[0], keys[0]], threshold: 1, last: true) }
    }

    @Test func opcodeNames() {
        #expect(Opcode.checkSigAdd.name == "OP_CHECKSIGADD")
        #expect(Opcode.checkSequenceVerify.name == "OP_CHECKSEQUENCEVERIFY")
        #expect(Opcode.numEqualVerify.name == "OP_NUMEQUALVERIFY")
        #expect(Opcode.return.name == "OP_RETURN")
        #expect(Opcode(rawValue: 0x55).name == "OP_5")
        #expect(Opcode.smallInteger(16) == .op16)
        #expect(Opcode.smallInteger(17) == nil)
        #expect(Opcode(rawValue: 0xc0).name == "OP_UNKNOWN(0xc0)")
    }

    @Test(arguments: [
        ("", "9c1185a5c5e9fc54612808977ee8f548b2258d31"),
        ("abc", "8eb208f7e05d987a9b044a8e98c6b087f15a0bfc"),
        ("message digest", "5d0689ef49d2fae572b881b123a85ffa21595f36"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "12a053384a9c0c88e405a06c27dcf49ada62eb2b"),
        (String(repeating: "1234567890", count: 8), "9b752e45573d4b39f4dbd3323cab82bf63326bfb"),
    ])
    func ripemd160(input: String, digest: String) {
        #expect(RIPEMD160.hash(Data(input.utf8)).hexString == digest)
    }

    @Test func hash160OfGenerator() {
        // HASH160 of the compressed generator point, the key of the BIP-341 vector's P2WPKH input… and of many tests.
        let generator = hex("0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
        #expect(BitcoinHash.hash160(generator).hexString == "751e76e8199196d454941c45d1b3a323f1433bd6")
    }
}
