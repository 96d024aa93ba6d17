import Foundation
import IshtarBitcoin
import IshtarCrypto
import IshtarTestSupport
import Testing

/// Mainnet block 1, serialized.
let mainnetBlock1Hex =
    "010000006fe28c0ab6f1b372c1a6a246ae63f74f931e8365e15a089c68d6190000000000982051fd1e4ba744bbbe680e1fee14677ba1a3c3540bf7b1cdb606e857233e0e61bc6649ffff001d01e36299"

@Suite("Block headers and proof of work")
struct HeaderTests {
    @Test(arguments: [
        (Network.mainnet, "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"),
        (.testnet, "000000000933ea01ad0ee984209779baaec3ced90fa3f408719526f8d77f4943"),
        (.signet, "00000008819873e925422c1ff0f99f7cc9bbb232af63a077a480a3633bee1ef6"),
        (.regtest, "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206"),
    ])
    func genesisHashes(network: Network, hash: String) throws {
        let genesis = network.genesisHeader
        #expect(genesis.hash.displayHex == hash)
        #expect(try BlockHeader(serialized: genesis.serialized) == genesis)
        try genesis.checkProofOfWork(powLimit: network.powParameters.powLimit)
        let coinbase = try Transaction(serialized: hex(genesisCoinbaseHex))
        #expect(try BlockMerkle.root(transactions: [coinbase]) == genesis.merkleRoot)
    }

    @Test func mainnetBlock1() throws {
        let header = try BlockHeader(serialized: hex(mainnetBlock1Hex))
        #expect(header.serialized.hexString == mainnetBlock1Hex)
        #expect(header.hash.displayHex == "00000000839a8e6886ab5951d76f411475428afc90947ee320161bbf18eb6048")
        #expect(header.previousBlockHash == Network.mainnet.genesisHeader.hash)
        #expect(header.merkleRoot.displayHex == "0e3e2357e806b6cdb1f70b54c3a3a17b6714ee1f0e68bebb44a74b1efd512098")
        #expect(header.time == 1_231_469_665)
        #expect(header.nonce == 2_573_394_689)
        var chain = HeaderChain(base: Network.mainnet.genesisHeader, height: 0, parameters: .mainnet)
        try chain.append(header)
        #expect(chain.tipHeight == 1)
        // Genesis and block 1 each carry 0x100010001 work.
        #expect(header.work == UInt256(0x1_0001_0001))
        #expect(chain.totalWork == UInt256(0x2_0002_0002))
        #expect(chain.totalWork.bigEndianBytes.hexString == String(repeating: "0", count: 54) + "0200020002")
        // A changed nonce no longer meets the target.
        var forged = header
        forged.nonce &+= 1
        #expect(throws: PowError.self) { try forged.checkProofOfWork(powLimit: PowParameters.mainnet.powLimit) }
    }

    @Test func headerDecodingRejections() {
        let bytes = hex(mainnetBlock1Hex)
        #expect(throws: BitcoinDecodingError.trailingBytes(offset: 80, count: 1)) { try BlockHeader(serialized: bytes + Data([0])) }
        for length in [0, 3, 4, 36, 68, 72, 76, 79] {
            #expect(throws: BitcoinDecodingError.self) { try BlockHeader(serialized: bytes.prefix(length)) }
        }
    }

    @Test func fuzzHeaderDecoder() {
        var rng = SplitMix64(seed: 80)
        var accepted = 0
        for _ in 0..<3000 {
            let length = Int.random(in: 76...84, using: &rng)
            let bytes = Data((0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) })
            if let header = try? BlockHeader(serialized: bytes) {
                accepted += 1
                #expect(header.serialized == bytes)
                // Arbitrary bits must never trap the target and work computations.
                _ = header.work
                _ = try? header.checkProofOfWork(powLimit: PowParameters.regtest.powLimit)
            }
        }
        #expect(accepted > 0)
    }

    /// Bitcoin Core's arith_uint256 SetCompact/GetCompact cases.
    @Test(arguments: [
        (UInt32(0x0000_0000), "0", false, false, UInt32(0)), (0x0012_3456, "0", false, false, 0),
        (0x0100_3456, "0", false, false, 0), (0x0200_0056, "0", false, false, 0), (0x0300_0000, "0", false, false, 0),
        (0x0400_0000, "0", false, false, 0), (0x0092_3456, "0", false, false, 0), (0x0180_3456, "0", false, false, 0),
        (0x0280_0056, "0", false, false, 0), (0x0380_0000, "0", false, false, 0), (0x0480_0000, "0", false, false, 0),
        (0x0112_3456, "12", false, false, 0x0112_0000), (0x01fe_dcba, "7e", true, false, 0x017e_0000),
        (0x0212_3456, "1234", false, false, 0x0212_3400), (0x0312_3456, "123456", false, false, 0x0312_3456),
        (0x0412_3456, "12345600", false, false, 0x0412_3456), (0x0492_3456, "12345600", true, false, 0x0412_3456),
        (0x0500_9234, "92340000", false, false, 0x0500_9234),
        (0x2012_3456, "123456" + String(repeating: "00", count: 29), false, false, 0x2012_3456),
        (0xff12_3456, nil as String?, false, true, 0), (0x2100_0100, nil, false, false, 0x2001_0000),
        (0x2101_0000, nil, false, true, 0), (0x2200_0001, nil, false, false, 0x2001_0000),
        (0x2200_0100, nil, false, true, 0), (0x2300_0001, nil, false, true, 0),
    ])
    func compactTargets(bits: UInt32, value: String?, negative: Bool, overflow: Bool, recompact: UInt32) {
        let decoded = UInt256.decodeCompact(bits)
        #expect(decoded.negative == negative)
        #expect(decoded.overflow == overflow)
        guard !overflow else { return }
        if let value {
            #expect(decoded.value == UInt256(bigEndian: hex(value.count % 2 == 0 ? value : "0" + value)))
        }
        if recompact != 0 {
            #expect(decoded.value.compact == recompact)
        }
    }

    @Test func targetChecks() {
        let limit = PowParameters.mainnet.powLimit
        #expect(throws: PowError.negativeTarget(bits: 0x0492_3456)) { try ProofOfWork.target(bits: 0x0492_3456, powLimit: limit) }
        #expect(throws: PowError.targetOverflow(bits: 0xff12_3456)) { try ProofOfWork.target(bits: 0xff12_3456, powLimit: limit) }
        #expect(throws: PowError.zeroTarget(bits: 0x0100_3456)) { try ProofOfWork.target(bits: 0x0100_3456, powLimit: limit) }
        #expect(throws: PowError.targetAbovePowLimit(bits: 0x1d01_0000)) { try ProofOfWork.target(bits: 0x1d01_0000, powLimit: limit) }
        #expect(PowParameters.mainnet.powLimitBits == 0x1d00_ffff)
        #expect(PowParameters.regtest.powLimitBits == 0x207f_ffff)
        #expect(PowParameters.signet.powLimitBits == 0x1e03_77ae)
        #expect(ProofOfWork.work(bits: 0x0492_3456) == .zero)
        #expect(ProofOfWork.work(bits: 0x207f_ffff) == UInt256(2))
    }

    @Test func uint256Arithmetic() throws {
        let a = UInt256(bigEndian: hex("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"))
        #expect(a.bigEndianBytes.hexString == "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
        #expect(((a << 4) >> 4) == (a & UInt256(bigEndian: hex("0fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"))))
        #expect(((a >> 68) << 68) == a &- (a & UInt256(bigEndian: hex("0fffffffffffffffff"))))
        let (q, r) = try #require(a.quotientAndRemainder(dividingBy: UInt256(1_000_003)))
        #expect(q.multipliedWrapping(by: 1_000_003) &+ r == a)
        #expect(r < UInt256(1_000_003))
        #expect(a.quotientAndRemainder(dividingBy: .zero) == nil)
        #expect(UInt256.max &+ UInt256(1) == .zero)
        #expect(UInt256.max.addingReportingOverflow(UInt256(1)).overflow)
        #expect(UInt256(1) << 255 > UInt256(UInt64.max))
        #expect((UInt256(1) << 200).bitWidth == 201)
    }

    /// Bitcoin Core's pow_tests: retarget arithmetic on real mainnet periods.
    @Test(arguments: [
        (UInt32(1_262_152_739), UInt32(1_261_130_161), UInt32(0x1d00_ffff), UInt32(0x1d00_d86a)),
        (1_233_061_996, 1_231_006_505, 0x1d00_ffff, 0x1d00_ffff),
        (1_279_297_671, 1_279_008_237, 0x1c05_a3f4, 0x1c01_68fd),
        (1_269_211_443, 1_263_163_443, 0x1c38_7f6f, 0x1d00_e1fd),
    ])
    func mainnetRetargets(lastTime: UInt32, firstTime: UInt32, lastBits: UInt32, expected: UInt32) {
        #expect(ProofOfWork.retarget(lastBits: lastBits, lastTime: lastTime, firstTime: firstTime, parameters: .mainnet) == expected)
        #expect(ProofOfWork.retarget(lastBits: lastBits, lastTime: lastTime, firstTime: firstTime, parameters: .regtest) == lastBits)
    }

    @Test func retargetBoundaryUsesPeriodStart() throws {
        // Synthetic headers (no real work): a period of 2016 blocks that took half the target timespan.
        let parameters = PowParameters.mainnet
        let start: UInt32 = 1_300_000_000
        var headers = [Int: BlockHeader]()
        for height in 0..<2016 {
            headers[height] = BlockHeader(
                version: 1, previousBlockHash: .zero, merkleRoot: .zero,
                time: start + UInt32(height) * 300 * 2016 / 2015, bits: 0x1c7f_ff80, nonce: 0)
        }
        let last = try #require(headers[2015])
        let bits = try ProofOfWork.nextWorkRequired(
            lastHeight: 2015, last: last, newBlockTime: last.time + 600, parameters: parameters, ancestor: { headers[$0] })
        #expect(bits == ProofOfWork.retarget(lastBits: 0x1c7f_ff80, lastTime: last.time, firstTime: start, parameters: parameters))
        #expect(bits == 0x1c3f_ffc0)
        // Mid-period the bits stay.
        #expect(try ProofOfWork.nextWorkRequired(
            lastHeight: 2000, last: last, newBlockTime: last.time + 6000, parameters: parameters, ancestor: { headers[$0] }) == 0x1c7f_ff80)
        #expect(throws: PowError.missingAncestor(height: 0)) {
            try ProofOfWork.nextWorkRequired(lastHeight: 2015, last: last, newBlockTime: 0, parameters: parameters, ancestor: { _ in nil })
        }
    }

    @Test func testnetMinimumDifficultyRule() throws {
        let parameters = PowParameters.testnet
        let limitBits = parameters.powLimitBits
        let realBits: UInt32 = 0x1c0f_fff0
        func header(_ time: UInt32, _ bits: UInt32) -> BlockHeader {
            BlockHeader(version: 1, previousBlockHash: .zero, merkleRoot: .zero, time: time, bits: bits, nonce: 0)
        }
        // 4040 has real difficulty; 4041...4043 were mined under the 20-minute rule.
        // 4032 (= 2 × 2016, a period start) was itself a min-difficulty block.
        let headers: [Int: BlockHeader] = [
            4032: header(500, limitBits), 4033: header(700, limitBits),
            4040: header(1000, realBits), 4041: header(3000, limitBits),
            4042: header(5000, limitBits), 4043: header(7000, limitBits),
        ]
        let last = try #require(headers[4043])
        // More than 20 minutes later: minimum difficulty allowed.
        #expect(try ProofOfWork.nextWorkRequired(
            lastHeight: 4043, last: last, newBlockTime: 7000 + 1201, parameters: parameters, ancestor: { headers[$0] }) == limitBits)
        // Within 20 minutes: the last block not mined under the rule sets the bits.
        #expect(try ProofOfWork.nextWorkRequired(
            lastHeight: 4043, last: last, newBlockTime: 7000 + 1200, parameters: parameters, ancestor: { headers[$0] }) == realBits)
        // The walk back stops at a period start.
        let early = try #require(headers[4033])
        #expect(try ProofOfWork.nextWorkRequired(
            lastHeight: 4033, last: early, newBlockTime: 700 + 600, parameters: parameters, ancestor: { headers[$0] }) == limitBits)
        // Mainnet has no such rule.
        #expect(try ProofOfWork.nextWorkRequired(
            lastHeight: 4043, last: last, newBlockTime: 7000 + 100_000, parameters: .mainnet, ancestor: { headers[$0] }) == limitBits)
        #expect(throws: PowError.missingAncestor(height: 4042)) {
            try ProofOfWork.nextWorkRequired(lastHeight: 4043, last: last, newBlockTime: 7001, parameters: parameters, ancestor: { _ in nil })
        }
    }

    /// Mines `header` on regtest by grinding the nonce (about two tries per block).
    private func mine(_ header: BlockHeader, target: UInt256, meeting: Bool = true) -> BlockHeader {
        var candidate = header
        while (candidate.hash.asUInt256 <= target) != meeting { candidate.nonce &+= 1 }
        return candidate
    }

    @Test func regtestChain() throws {
        let parameters = PowParameters.regtest
        let genesis = Network.regtest.genesisHeader
        var chain = HeaderChain(base: genesis, height: 0, parameters: parameters)
        var time = genesis.time
        for height in 1...30 {
            time += 600
            let header = mine(BlockHeader(
                version: 0x2000_0000, previousBlockHash: chain.tip.hash, merkleRoot: Hash256.zero,
                time: time, bits: 0x207f_ffff, nonce: UInt32(height) << 16), target: parameters.powLimit)
            try chain.append(header)
        }
        #expect(chain.tipHeight == 30)
        #expect(chain.totalWork == UInt256(62))
        #expect(chain.header(at: 30) == chain.tip)
        #expect(chain.header(at: 31) == nil)

        let template = BlockHeader(
            version: 0x2000_0000, previousBlockHash: chain.tip.hash, merkleRoot: Hash256.zero,
            time: time + 600, bits: 0x207f_ffff, nonce: 0)
        var wrongParent = template
        wrongParent.previousBlockHash = genesis.hash
        #expect(throws: PowError.previousHashMismatch(height: 31)) { try chain.append(mine(wrongParent, target: parameters.powLimit)) }
        var wrongBits = template
        wrongBits.bits = 0x207f_fffe
        #expect(throws: PowError.unexpectedBits(height: 31, expected: 0x207f_ffff, found: 0x207f_fffe)) {
            try chain.append(mine(wrongBits, target: parameters.powLimit))
        }
        let unworked = mine(template, target: parameters.powLimit, meeting: false)
        #expect(throws: PowError.insufficientProofOfWork(hash: unworked.hash.displayHex)) { try chain.append(unworked) }
        var old = template
        old.time = time - 600 * 10
        #expect(throws: PowError.timestampTooOld(height: 31)) { try chain.append(mine(old, target: parameters.powLimit)) }
        #expect(chain.tipHeight == 30)
        try chain.append(mine(template, target: parameters.powLimit))
        #expect(chain.tipHeight == 31)
    }
}
