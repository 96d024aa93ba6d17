import Foundation
import IshtarBitcoin
import IshtarCrypto
import IshtarTestSupport
import Testing

@Suite("Blocks and decoder fuzzing")
struct FuzzTests {
    private var genesisBlockBytes: Data {
        Network.mainnet.genesisHeader.serialized + Data([1]) + hex(genesisCoinbaseHex)
    }

    @Test func genesisBlockRoundTrip() throws {
        let block = try Block(serialized: genesisBlockBytes)
        #expect(block.serialized == genesisBlockBytes)
        #expect(block.header.hash.displayHex == "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f")
        try block.checkMerkleRoot()
        let proof = try block.inclusionProof(index: 0)
        #expect(proof.siblings.isEmpty)
        try proof.verify(transaction: block.transactions[0], merkleRoot: block.header.merkleRoot)

        var doubled = block
        doubled.transactions.append(block.transactions[0])
        #expect(throws: MerkleError.mutatedTree(level: 0, index: 0)) { try doubled.checkMerkleRoot() }
        var emptied = block
        emptied.transactions = []
        #expect(throws: MerkleError.noTransactions) { try emptied.checkMerkleRoot() }
        #expect(throws: BitcoinDecodingError.truncated(field: "version", offset: 285, needed: 4, available: 0)) {
            try Block(serialized: Network.mainnet.genesisHeader.serialized + Data([2]) + hex(genesisCoinbaseHex))
        }
        #expect(throws: BitcoinDecodingError.countExceedsInput(field: "transaction count", offset: 80, value: 5)) {
            try Block(serialized: Network.mainnet.genesisHeader.serialized + Data([5]) + hex(genesisCoinbaseHex))
        }
    }

    @Test func fuzzBlockDecoder() {
        var rng = SplitMix64(seed: 7)
        let seed = genesisBlockBytes
        for iteration in 0..<2000 {
            var bytes = seed
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                let position = Int.random(in: 0..<bytes.count, using: &rng)
                if Bool.random(using: &rng) {
                    bytes[position] = UInt8.random(in: 0...255, using: &rng)
                } else {
                    bytes = bytes.prefix(position)
                }
                if bytes.isEmpty { break }
            }
            if let block = try? Block(serialized: bytes) {
                #expect(block.serialized == bytes, "iteration \(iteration)")
            }
        }
    }

    @Test func fuzzScriptsAddressesAndControlBlocks() {
        var rng = SplitMix64(seed: 0x5c21)
        let alphabet = Array("qpzry9x8gf2tvdw0s3jn54khce6mua7l1bcBCtT")
        for _ in 0..<3000 {
            let length = Int.random(in: 0..<120, using: &rng)
            let bytes = Data((0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) })
            let script = Script(bytes: bytes)
            if let instructions = try? script.instructions() {
                // Re-encoding every instruction exactly as parsed gives the same bytes back.
                var rebuilt = Data()
                for instruction in instructions {
                    rebuilt.append(instruction.opcode.rawValue)
                    if let data = instruction.data {
                        switch instruction.opcode {
                        case .pushData1: rebuilt.append(UInt8(data.count))
                        case .pushData2: rebuilt.append(contentsOf: [UInt8(data.count & 0xff), UInt8(data.count >> 8)])
                        case .pushData4:
                            rebuilt.append(contentsOf: (0..<4).map { UInt8((data.count >> (8 * $0)) & 0xff) })
                        default: break
                        }
                        rebuilt.append(data)
                    }
                }
                #expect(rebuilt == bytes)
            }
            _ = script.type
            _ = script.asm
            _ = try? ScriptNumber.decode(bytes.prefix(9), maxSize: 9)
            if let controlBlock = try? ControlBlock(serialized: bytes) {
                #expect(controlBlock.serialized.dropFirst() == bytes.dropFirst())
            }
            _ = try? TransactionInclusionProof(index: UInt32.random(in: 0...UInt32.max, using: &rng), serializedSiblings: bytes)
            let text = String((0..<Int.random(in: 0..<95, using: &rng)).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &rng)] })
            _ = try? SegwitAddress(text)
            _ = try? Bech32.decode(String(decoding: bytes, as: UTF8.self))
        }
    }

    @Test func witnessProgramBuilder() throws {
        #expect(try Script.witnessProgram(version: 1, program: Data(count: 32)).bytes.prefix(2).hexString == "5120")
        #expect(throws: AddressError.invalidWitnessVersion(17)) { try Script.witnessProgram(version: 17, program: Data(count: 32)) }
        #expect(throws: AddressError.invalidProgramLength(41)) { try Script.witnessProgram(version: 1, program: Data(count: 41)) }
        #expect(throws: AddressError.invalidVersion0ProgramLength(21)) { try Script.witnessProgram(version: 0, program: Data(count: 21)) }
    }
}
