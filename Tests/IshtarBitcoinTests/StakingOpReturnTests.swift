import Foundation
import IshtarBitcoin
import IshtarCrypto
import Testing

@Suite("Checkpoint and staking marker OP_RETURNs")
struct StakingOpReturnTests {
    let tag = Data("ISHT".utf8)

    func checkpoint() throws -> BitcoinCheckpoint {
        try BitcoinCheckpoint(
            tag: tag, epoch: 0x0102_0304_0506_0708, lastBlockHash: Data(repeating: 0xaa, count: 32),
            bitmap: try BitcoinCheckpoint.bitmap(signers: [0, 3, 8, 103]), submitterID: Data(repeating: 0x55, count: 20),
            quorumCertificateHash: Data(repeating: 0xcc, count: 32))
    }

    @Test func checkpointLayout() throws {
        let cp = try checkpoint()
        let part1 = cp.part1
        let part2 = cp.part2
        #expect(part1.count == 78)
        #expect(part2.count == 63)
        #expect(part1.prefix(5) == tag + [0x00])
        #expect(part1[5..<13].hexString == "0102030405060708")
        #expect(part1[13..<45] == Data(repeating: 0xaa, count: 32))
        // Bits 0, 3 → byte 0 = 0b0000_1001; bit 8 → byte 1 = 1; bit 103 → byte 12 = 0x80.
        #expect(part1[45..<58].hexString == "09" + "01" + String(repeating: "00", count: 10) + "80")
        #expect(part1[58..<78] == Data(repeating: 0x55, count: 20))
        #expect(part2.prefix(5) == tag + [0x10])
        #expect(part2[5..<37] == Data(repeating: 0xcc, count: 32))
        #expect(part2[37..<53] == Data(count: 16))
        #expect(part2[53..<63] == BitcoinHash.sha256(part1.dropFirst(5)).prefix(10))
        #expect(cp.signerIndexes == [0, 3, 8, 103])

        let decoded = try BitcoinCheckpoint(part1: part1, part2: part2, tag: tag)
        #expect(decoded == cp)
        let scripts = cp.scripts
        #expect(try BitcoinCheckpoint(part1Script: scripts.part1, part2Script: scripts.part2) == cp)
        #expect(scripts.part1.bytes.prefix(3).hexString == "6a4c4e")  // OP_RETURN OP_PUSHDATA1 78 (above 75 bytes)
        #expect(scripts.part2.bytes.prefix(2).hexString == "6a3f")  // OP_RETURN, direct push of 63 bytes
    }

    @Test func checkpointDecodeErrors() throws {
        let cp = try checkpoint()
        let part1 = cp.part1
        let part2 = cp.part2
        #expect(throws: OpReturnDecodingError.wrongLength(part: "checkpoint part 1", expected: 78, actual: 77)) {
            try BitcoinCheckpoint(part1: part1.dropLast(), part2: part2)
        }
        #expect(throws: OpReturnDecodingError.wrongLength(part: "checkpoint part 2", expected: 63, actual: 64)) {
            try BitcoinCheckpoint(part1: part1, part2: part2 + [0])
        }
        #expect(throws: OpReturnDecodingError.wrongTag(expected: Data("XXXX".utf8), actual: tag)) {
            try BitcoinCheckpoint(part1: part1, part2: part2, tag: Data("XXXX".utf8))
        }
        var header = part1
        header[4] = 0x01
        #expect(throws: OpReturnDecodingError.wrongHeader(part: "checkpoint part 1", expected: 0, actual: 1)) {
            try BitcoinCheckpoint(part1: header, part2: part2)
        }
        var padding = part2
        padding[40] = 1
        #expect(throws: OpReturnDecodingError.nonZeroPadding) { try BitcoinCheckpoint(part1: part1, part2: padding) }
        var otherEpoch = part1
        otherEpoch[12] ^= 1
        #expect(throws: OpReturnDecodingError.partsDoNotMatch) { try BitcoinCheckpoint(part1: otherEpoch, part2: part2) }
        var otherTag = part2
        otherTag[0] = 0
        #expect(throws: OpReturnDecodingError.self) { try BitcoinCheckpoint(part1: part1, part2: otherTag) }
        #expect(throws: OpReturnDecodingError.validatorIndexOutOfRange(104)) { try BitcoinCheckpoint.bitmap(signers: [104]) }
        #expect(throws: OpReturnDecodingError.invalidTag(length: 3)) {
            try BitcoinCheckpoint(
                tag: Data(count: 3), epoch: 1, lastBlockHash: Data(count: 32), bitmap: Data(count: 13), submitterID: Data(count: 20),
                quorumCertificateHash: Data(count: 32))
        }
        #expect(throws: OpReturnDecodingError.notAnOpReturn) {
            try BitcoinCheckpoint(part1Script: .p2wsh(scriptHash: Data(count: 32)), part2Script: .opReturn(part2))
        }
    }

    @Test func stakingMarkerRoundTripAndErrors() throws {
        let marker = try StakingMarker(
            tag: tag, stakerKey: StakingFixture.key(1).publicKey, finalityProviderKey: StakingFixture.key(2).publicKey,
            stakingTime: 0x1234)
        let payload = marker.payload
        #expect(payload.count == 71)
        #expect(payload.prefix(5) == tag + [0])
        #expect(payload[5..<37] == StakingFixture.key(1).publicKey.rawRepresentation)
        #expect(payload[37..<69] == StakingFixture.key(2).publicKey.rawRepresentation)
        #expect(payload.suffix(2).hexString == "1234")
        #expect(try StakingMarker(payload: payload, tag: tag) == marker)
        #expect(try StakingMarker(script: marker.script) == marker)
        #expect(marker.script.bytes.prefix(2).hexString == "6a47")

        #expect(throws: OpReturnDecodingError.wrongLength(part: "staking marker", expected: 71, actual: 70)) {
            try StakingMarker(payload: payload.dropLast())
        }
        #expect(throws: OpReturnDecodingError.wrongTag(expected: Data("ABCD".utf8), actual: tag)) {
            try StakingMarker(payload: payload, tag: Data("ABCD".utf8))
        }
        var version = payload
        version[4] = 1
        #expect(throws: OpReturnDecodingError.wrongHeader(part: "staking marker", expected: 0, actual: 1)) {
            try StakingMarker(payload: version)
        }
        var badKey = payload
        badKey.replaceSubrange(37..<69, with: Data(repeating: 0xff, count: 32))  // x ≥ p
        #expect(throws: OpReturnDecodingError.invalidKey(field: "finality provider key")) { try StakingMarker(payload: badKey) }
        #expect(throws: OpReturnDecodingError.notAnOpReturn) { try StakingMarker(script: [.op(.return)]) }
    }
}
