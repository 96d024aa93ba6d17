import Foundation
import IshtarBitcoin
import IshtarChain
import IshtarCrypto
import IshtarStore
import IshtarTestSupport
import Testing

@Suite("BTC light client")
struct BTCLightClientTests {
    let genesisHeader = Network.regtest.genesisHeader

    func events(_ r: TxResult) -> [String] {
        r.events.filter { $0.type.hasPrefix("btclightclient.") }.map {
            ($0.type == BTCLightClientModule.rollBackEvent ? "back " : "fwd ") + ($0["height"] ?? "?") + " " + ($0["hash"] ?? "?")
        }
    }

    func fwd(_ h: BTCBlockHeader, _ height: Int) -> String { "fwd \(height) \(h.hash.displayHex)" }
    func back(_ h: BTCBlockHeader, _ height: Int) -> String { "back \(height) \(h.hash.displayHex)" }

    @Test func insertsAChainOfTwenty() throws {
        let lc = try LCHarness()
        let chain = try lcChain(on: genesisHeader, count: 20)
        let r = try lc.insert(Array(chain[0..<12]))
        #expect(r.isOK, "\(r.log)")
        #expect(events(r) == chain[0..<12].enumerated().map { fwd($0.element, $0.offset + 1) })
        let r2 = try lc.insert(Array(chain[12...]))
        #expect(r2.isOK, "\(r2.log)")
        #expect(events(r2) == chain[12...].enumerated().map { fwd($0.element, $0.offset + 13) })
        #expect(try lc.tipHeight() == 20)
        #expect(try lc.tipHash() == lcHash(chain[19]).hexString)
        for (i, h) in chain.enumerated() {
            #expect(try lc.mainHash(i + 1) == lcHash(h).hexString)
            #expect(try lc.depth(h) == 19 - i)
        }
        #expect(try lc.depth(genesisHeader) == 20)
        #expect(try lc.mainHash(21) == "")
        #expect(try lc.isAncestor(chain[3], chain[10]))
        #expect(try !lc.isAncestor(chain[10], chain[3]))
        #expect(try !lc.isAncestor(chain[3], chain[3]))
        #expect(try lc.isAncestor(genesisHeader, chain[19]))
        // The same chain is valid for IshtarBitcoin's standalone validator.
        var reference = HeaderChain(base: genesisHeader, height: 0, parameters: .regtest)
        for h in chain { try reference.append(h) }
        let tip = try lc.query("/modules/btclightclient/tip")
        #expect(tip["cumulative_work"] as? String == reference.totalWork.bigEndianBytes.hexString)
    }

    /// Every rejection names its rule and leaves the state, and the app hash, unchanged.
    @Test func rejectionsLeaveNoTrace() throws {
        let lc = try LCHarness(params: BTCLightClientParams(maxHeadersPerMessage: 25))
        let chain = try lcChain(on: genesisHeader, count: 12)
        #expect(try lc.insert(chain).isOK)
        let tip = chain[11]
        let good = try lcMine(tip, time: tip.time + 600)
        let next = try lcMine(good, time: good.time + 600)
        let badPow = try lcMine(tip, time: tip.time + 600, meeting: false)
        let wrongBits = try lcMine(tip, time: tip.time + 600, bits: 0x207f_fffe)
        let orphan = try lcMine(try lcMine(tip, time: tip.time + 600, salt: 9), time: tip.time + 1200, salt: 9)
        // Median of the last 11 times (headers 2…12): header 7's time.
        let mtp = chain[6].time
        let stale = try lcMine(tip, time: mtp)
        let skipped = try lcMine(next, time: next.time + 600)
        let many = try lcChain(on: tip, count: 26)
        // Regtest buries BIP-34/66/65 at height 1: versions below 4 are Bitcoin Core's
        // `bad-version`, and so is a version with the sign bit set.
        let version3 = try lcMine(tip, time: tip.time + 600, version: 3)
        let negative = try lcMine(tip, time: tip.time + 600, version: Int32(bitPattern: 0x8000_0004))

        let cases: [([BTCBlockHeader], BTCLightClientError)] = [
            ([badPow], .insufficientProofOfWork(index: 0, hash: badPow.hash.displayHex)),
            ([wrongBits], .wrongDifficulty(index: 0, height: 13, expected: lcRegtestBits, found: 0x207f_fffe)),
            ([good, skipped], .brokenLinkage(index: 1, expectedPrevious: good.hash.displayHex,
                                             found: next.hash.displayHex)),
            ([orphan], .unknownParent(previousHash: orphan.previousBlockHash.displayHex)),
            ([stale], .timestampTooOld(index: 0, height: 13, time: mtp, medianTimePast: mtp)),
            (many, .tooManyHeaders(count: 26, limit: 25)),
            ([chain[5]], .duplicateHeader(index: 0, hash: chain[5].hash.displayHex)),
            // Nothing new: a batch of known headers is a duplicate as a whole.
            (Array(chain[3...6]), .duplicateHeader(index: 3, hash: chain[6].hash.displayHex)),
            // Known headers are skipped, but the first new one must still follow the last of them.
            ([chain[10], good], .brokenLinkage(index: 1, expectedPrevious: chain[10].hash.displayHex,
                                               found: tip.hash.displayHex)),
            // A good header first: the bad second one rejects the whole message.
            ([good, try lcMine(good, time: good.time + 600, meeting: false)],
             .insufficientProofOfWork(index: 1, hash: try lcMine(good, time: good.time + 600, meeting: false).hash.displayHex)),
            ([], .noHeaders),
            ([version3], .badVersion(index: 0, height: 13, version: 3, minimum: 4)),
            ([negative], .badVersion(index: 0, height: 13, version: Int32(bitPattern: 0x8000_0004), minimum: 4)),
        ]
        for (headers, expected) in cases {
            let stateBefore = try dump(lc.store)[Application.stateColumnFamily]
            let hashBefore = lc.app.lastAppHash
            let raw = try lc.tx(headers)
            let check = try lc.app.checkTx(raw)
            if expected == .noHeaders {
                #expect(check.result.violation == expected.violation)
            }
            let r = try lc.submit(raw)
            #expect(r.violation == expected.violation)
            #expect(r.events.isEmpty)
            #expect(try dump(lc.store)[Application.stateColumnFamily] == stateBefore)
            #expect(lc.app.lastAppHash == hashBefore)
        }
        // A header dated far past the block's time (Bitcoin Core's time-too-new, with the
        // chain's block time as the clock): on testnet such headers could use minimum
        // difficulty and outweigh the real tip for a while.
        let future = try lcMine(tip, time: UInt32.max - 1)
        let hashBeforeFuture = lc.app.lastAppHash
        let refused = try lc.submit(try lc.tx([future]))
        #expect(refused.rule == "timestamp-too-new", "\(refused.log)")
        #expect(lc.app.lastAppHash == hashBeforeFuture)
        // A malformed payload.
        let malformed = try Transaction.signed(chainID: testChainID, key: lc.key, nonce: lc.nonce,
                                               messages: [Message(type: InsertHeaders.type, payload: Data([0, 0, 0, 1, 7]))])
        let hashBefore = lc.app.lastAppHash
        let r = try lc.submit(malformed.encoded)
        #expect(r.rule == "malformed-message")
        #expect(r.codespace == "btclightclient")
        #expect(lc.app.lastAppHash == hashBefore)
        // After all that, the good header still goes in.
        #expect(try lc.insert([good, next]).isOK)
        #expect(try lc.tipHeight() == 14)
    }

    /// Relayers' batches overlap, and anyone may copy a header of a pending batch into a
    /// message of its own that lands first: the batch's known headers are then skipped and
    /// its new ones still go in.
    @Test func aBatchWhoseFirstHeadersAreKnownInsertsTheRest() throws {
        let lc = try LCHarness()
        let chain = try lcChain(on: genesisHeader, count: 12)
        #expect(try lc.insert(Array(chain[0..<5])).isOK)
        // Someone front-runs a relayer's batch 5…11 with its first header.
        #expect(try lc.insert([chain[5]]).isOK)
        let r = try lc.insert(Array(chain[3..<12]))
        #expect(r.isOK, "\(r.log)")
        #expect(try lc.tipHeight() == 12)
        // The roll-forward events name only the headers this message added.
        #expect(events(r) == (6..<12).map { fwd(chain[$0], $0 + 1) })
    }

    @Test func lighterForkStaysAFork() throws {
        let lc = try LCHarness()
        let main = try lcChain(on: genesisHeader, count: 10)
        #expect(try lc.insert(main).isOK)
        // Fork from height 7: heights 8, 9 (less work), then 10 (equal work: first seen wins).
        let fork = try lcChain(on: main[6], count: 3, salt: 1)
        let r = try lc.insert(Array(fork[0..<2]))
        #expect(r.isOK, "\(r.log)")
        #expect(events(r).isEmpty)
        let r2 = try lc.insert([fork[2]])
        #expect(r2.isOK, "\(r2.log)")
        #expect(events(r2).isEmpty)
        #expect(try lc.tipHash() == lcHash(main[9]).hexString)
        for (i, f) in fork.enumerated() {
            let view = try lc.api(f)
            #expect(view["known"] as? Bool == true)
            #expect(view["height"] as? Int == 8 + i)
            #expect(view["main"] as? Bool == false)
            #expect(view["depth"] as? Int == -1)
        }
        #expect(try lc.mainHash(8) == lcHash(main[7]).hexString)
        #expect(try lc.isAncestor(main[6], fork[2]))
        #expect(try lc.isAncestor(fork[0], fork[2]))
        #expect(try !lc.isAncestor(main[7], fork[2]))
        #expect(try !lc.isAncestor(fork[0], main[9]))
        let q = try lc.query("/modules/btclightclient/header/" + fork[1].hash.displayHex)
        #expect(q["on_main_chain"] as? Bool == false)
        #expect(q["depth"] is NSNull)
    }

    /// A fork from 4 blocks below the tip overtakes by 3: 4 headers roll back (tip first),
    /// 7 roll forward (lowest first); then the old branch comes back 7 deep.
    @Test func reorgDeeperThanOneBlock() throws {
        let lc = try LCHarness()
        let main = try lcChain(on: genesisHeader, count: 10) // heights 1…10
        #expect(try lc.insert(main).isOK)
        let fork = try lcChain(on: main[5], count: 7, salt: 2) // heights 7…13
        // First part: still lighter (heights 7…9), stored as a fork.
        let r1 = try lc.insert(Array(fork[0..<3]))
        #expect(r1.isOK, "\(r1.log)")
        #expect(events(r1).isEmpty)
        // Second part builds on a stored fork header and overtakes.
        let r2 = try lc.insert(Array(fork[3...]))
        #expect(r2.isOK, "\(r2.log)")
        let expected = [back(main[9], 10), back(main[8], 9), back(main[7], 8), back(main[6], 7)]
            + fork.enumerated().map { fwd($0.element, $0.offset + 7) }
        #expect(events(r2) == expected)
        #expect(try lc.tipHeight() == 13)
        #expect(try lc.tipHash() == lcHash(fork[6]).hexString)
        for (i, f) in fork.enumerated() {
            #expect(try lc.mainHash(i + 7) == lcHash(f).hexString)
            #expect(try lc.depth(f) == 6 - i)
        }
        for old in main[6...] {
            #expect(try !lc.isMain(old))
            #expect(try lc.depth(old) == -1)
        }
        #expect(try lc.depth(main[5]) == 7)
        // Ancestry across branches.
        #expect(try lc.isAncestor(main[5], fork[6]))
        #expect(try lc.isAncestor(main[5], main[9]))
        #expect(try lc.isAncestor(main[6], main[9]))
        #expect(try !lc.isAncestor(main[6], fork[6]))
        #expect(try !lc.isAncestor(fork[0], main[9]))
        #expect(try lc.isAncestor(genesisHeader, main[9]))

        // The old branch grows to 14 and wins back: 7 deep.
        let back2 = try lcChain(on: main[9], count: 4, salt: 3) // heights 11…14
        let r3 = try lc.insert(back2)
        #expect(r3.isOK, "\(r3.log)")
        let expected3 = (0..<7).map { back(fork[6 - $0], 13 - $0) }
            + main[6...].enumerated().map { fwd($0.element, $0.offset + 7) }
            + back2.enumerated().map { fwd($0.element, $0.offset + 11) }
        #expect(events(r3) == expected3)
        #expect(try lc.tipHeight() == 14)
        #expect(try lc.depth(main[6]) == 7)
        #expect(try lc.depth(fork[0]) == -1)
        #expect(try lc.mainHash(13) == lcHash(back2[2]).hexString)
    }

    @Test func queries() throws {
        let lc = try LCHarness(params: BTCLightClientParams(maxHeadersPerMessage: 50))
        let chain = try lcChain(on: genesisHeader, count: 5)
        #expect(try lc.insert(chain).isOK)
        let fork = try lcChain(on: chain[2], count: 1, salt: 4)
        #expect(try lc.insert(fork).isOK)

        let tip = try lc.query("/modules/btclightclient/tip")
        #expect(tip["hash"] as? String == chain[4].hash.displayHex)
        #expect(tip["height"] as? String == "5")
        #expect(tip["header"] as? String == chain[4].serialized.hexString)
        #expect(tip["previous_hash"] as? String == chain[3].hash.displayHex)
        #expect(tip["time"] as? String == String(chain[4].time))
        #expect(tip["bits"] as? String == "207fffff")
        #expect(tip["cumulative_work"] as? String == String(repeating: "0", count: 63) + "c") // 6 headers × 2
        #expect(tip["on_main_chain"] as? Bool == true)
        #expect(tip["depth"] as? String == "0")

        let byHeight = try lc.query("/modules/btclightclient/header-by-height/2")
        #expect(byHeight["hash"] as? String == chain[1].hash.displayHex)
        #expect(byHeight["depth"] as? String == "3")
        let byHash = try lc.query("/modules/btclightclient/header/" + chain[1].hash.displayHex)
        #expect(NSDictionary(dictionary: byHash) == NSDictionary(dictionary: byHeight))

        let depth = try lc.query("/modules/btclightclient/depth/" + chain[0].hash.displayHex)
        #expect(depth["depth"] as? String == "4")
        #expect(depth["on_main_chain"] as? Bool == true)
        let forkDepth = try lc.query("/modules/btclightclient/depth/" + fork[0].hash.displayHex)
        #expect(forkDepth["depth"] is NSNull)
        #expect(forkDepth["on_main_chain"] as? Bool == false)

        let anc = try lc.query("/modules/btclightclient/is-ancestor/\(chain[0].hash.displayHex)/\(fork[0].hash.displayHex)")
        #expect(anc["is_ancestor"] as? Bool == true)
        #expect(anc["ancestor"] as? String == chain[0].hash.displayHex)
        let notAnc = try lc.query("/modules/btclightclient/is-ancestor/\(chain[3].hash.displayHex)/\(fork[0].hash.displayHex)")
        #expect(notAnc["is_ancestor"] as? Bool == false)

        let params = try lc.query("/modules/btclightclient/params")
        #expect(params["network"] as? String == "regtest")
        #expect(params["base_hash"] as? String == genesisHeader.hash.displayHex)
        #expect(params["base_height"] as? String == "0")
        #expect(params["max_headers_per_message"] as? Int == 50)

        let unknown = String(repeating: "ab", count: 32)
        for (path, rule) in [("header/" + unknown, "not-found"), ("header/xyz", "invalid-argument"),
                             ("header-by-height/99", "not-found"), ("header-by-height/-1", "invalid-argument"),
                             ("depth/" + unknown, "not-found"),
                             ("is-ancestor/\(unknown)/\(chain[0].hash.displayHex)", "not-found"), ("nope", "unknown-path")] {
            let r = try lc.app.query(path: "/modules/btclightclient/" + path)
            #expect(!r.isOK)
            #expect(r.codespace == "query")
            #expect(r.log.isEmpty == false, "\(path) → \(rule)")
            let codes = ["not-found": QueryError.notFound("").code, "invalid-argument": QueryError.invalidArgument("").code,
                         "unknown-path": QueryError.unknownPath("").code]
            #expect(r.code == codes[rule], "\(path)")
        }
    }

    /// Two applications fed the same blocks reach the same app hash, with a reorg on the way.
    @Test func deterministic() throws {
        let a = try LCHarness()
        let b = try LCHarness()
        let main = try lcChain(on: genesisHeader, count: 8)
        let fork = try lcChain(on: main[2], count: 8, salt: 5)
        for lc in [a, b] {
            #expect(try lc.insert(main).isOK)
            #expect(try lc.insert(fork).isOK)
        }
        #expect(a.app.lastAppHash == b.app.lastAppHash)
        #expect(try dump(a.store) == dump(b.store))
        #expect(try a.tipHash() == lcHash(fork[7]).hexString)
    }

    /// The state survives a restart over RocksDB.
    @Test func persistsOverRocksDB() throws {
        let dir = TempDir()
        let net = try TestNet(moduleParams: [BTCLightClientModule.moduleName: BTCLightClientParams().jsonData])
        let chain = try lcChain(on: genesisHeader, count: 6)
        let key = testKey("relayer")
        var hash: Data?
        do {
            let db = try openDatabase(dir)
            let app = try makeApp(net, modules: [BTCLightClientModule(), LCProbeModule()], store: db)
            let tx = try Transaction.signed(chainID: testChainID, key: key, nonce: 0,
                                            messages: [InsertHeaders(headers: chain).message]).encoded
            #expect(try net.produce(app, [tx]).txResults.map(\.isOK) == [true])
            hash = app.lastAppHash
            try db.close()
        }
        let db = try openDatabase(dir)
        let app = try Application(store: db, modules: [BTCLightClientModule(), LCProbeModule()], verifier: TestCommitVerifier())
        #expect(app.lastAppHash == hash)
        let r = try app.query(path: "/modules/btclightclient/tip")
        #expect(String(decoding: r.value, as: UTF8.self).contains(chain[5].hash.displayHex))
        try db.close()
    }

    /// Real mainnet headers: genesis as the base, blocks 1 and 2 on top.
    @Test func mainnetHeaders() throws {
        let block1 = try BTCBlockHeader(serialized: try Data(hex:
            "010000006fe28c0ab6f1b372c1a6a246ae63f74f931e8365e15a089c68d6190000000000982051fd1e4ba744bbbe680e1fee14677ba1a3c3540bf7b1cdb606e857233e0e61bc6649ffff001d01e36299"))
        let block2 = try BTCBlockHeader(serialized: try Data(hex:
            "010000004860eb18bf1b1620e37e9490fc8a427514416fd75159ab86688e9a8300000000d5fdcc541e25de1c7a5addedf24858b8bb665c9f36ef744ee42c316022c90f9bb0bc6649ffff001d08d2bd61"))
        #expect(block2.hash.displayHex == "000000006a625f06636b8bb6ac7b960a8d03705d1ace08b1a19da3fdcc99ddbd")
        let lc = try LCHarness(params: BTCLightClientParams(network: .mainnet))
        // Regtest-difficulty headers are far too easy for mainnet.
        let easy = try lcMine(Network.mainnet.genesisHeader, time: block1.time)
        let r0 = try lc.insert([easy])
        #expect(r0.violation == BTCLightClientError.wrongDifficulty(index: 0, height: 1, expected: 0x1d00_ffff,
                                                                     found: lcRegtestBits).violation)
        let r = try lc.insert([block1, block2])
        #expect(r.isOK, "\(r.log)")
        #expect(try lc.tipHeight() == 2)
        #expect(try lc.query("/modules/btclightclient/tip")["hash"] as? String == block2.hash.displayHex)
        // Work of 0x1d00ffff is 0x100010001 per header.
        #expect(try lc.query("/modules/btclightclient/tip")["cumulative_work"] as? String
            == String(repeating: "0", count: 54) + "0300030003")
    }

    @Test func minimumVersionsFollowBitcoinCoresBuriedDeployments() {
        let cases: [(Network, UInt64, Int32)] = [
            (.mainnet, 227_930, 1), (.mainnet, 227_931, 2), (.mainnet, 363_724, 2), (.mainnet, 363_725, 3),
            (.mainnet, 388_380, 3), (.mainnet, 388_381, 4), (.testnet, 21_110, 1), (.testnet, 21_111, 2),
            (.testnet, 330_776, 3), (.testnet, 581_885, 4), (.regtest, 0, 1), (.regtest, 1, 4), (.signet, 1, 4),
        ]
        for (network, height, minimum) in cases {
            #expect(network.minimumBlockVersion(atHeight: height) == minimum, "\(network) at \(height)")
        }
    }

    @Test func genesisParameters() throws {
        func initChain(_ json: String) throws -> Bool {
            let net = try TestNet(moduleParams: [BTCLightClientModule.moduleName: Data(json.utf8)])
            let app = try Application(store: InMemoryStore(columnFamilies: Application.columnFamilies),
                                      modules: [BTCLightClientModule()], verifier: TestCommitVerifier())
            do {
                try app.initChain(net.genesis)
                return true
            } catch {
                return false
            }
        }
        let mainnetGenesis = Network.mainnet.genesisHeader.serialized.hexString
        #expect(try initChain("{}"))
        #expect(try initChain(#"{"network":"mainnet","base_header":"\#(mainnetGenesis)","base_height":4032}"#))
        #expect(try !initChain(#"{"network":"mainnet","base_header":"\#(mainnetGenesis)","base_height":5}"#))
        #expect(try !initChain(#"{"network":"moonnet"}"#))
        #expect(try !initChain(#"{"base_header":"abcd"}"#))
        // A base header needs its network: regtest's rules would let a mainnet header through.
        #expect(try !initChain(#"{"base_header":"\#(mainnetGenesis)"}"#))
        #expect(try !initChain(#"{"max_headers_per_message":0}"#))
        #expect(try !initChain(#"{"max_header_per_message":10}"#))
        // A regtest header fails mainnet proof of work.
        let regtestGenesis = Network.regtest.genesisHeader.serialized.hexString
        #expect(try !initChain(#"{"network":"mainnet","base_header":"\#(regtestGenesis)"}"#))
        // Defaults: the regtest genesis header at height 0.
        let lc = try LCHarness()
        #expect(try lc.tipHash() == lcHash(genesisHeader).hexString)
        #expect(try lc.tipHeight() == 0)
    }
}
