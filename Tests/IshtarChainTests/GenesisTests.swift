import Foundation
import IshtarChain
import IshtarCrypto
import IshtarStore
import IshtarTestSupport
import Testing

@Suite("Genesis")
struct GenesisTests {
    let k1 = testKey("g1").publicKey.rawRepresentation.hexString
    let k2 = testKey("g2").publicKey.rawRepresentation.hexString

    func json(_ body: String) -> Data { Data(body.utf8) }

    func validJSON(validators: String? = nil, extra: String = "") -> String {
        """
        {"chain_id": "ishtar-devnet-1", "genesis_time": "2025-01-01T00:00:00Z", "initial_height": 1,
         "validators": \(validators ?? "[{\"pub_key\": \"\(k1)\", \"power\": 10, \"name\": \"a\"}, {\"pub_key\": \"\(k2)\", \"power\": \"5\"}]"),
         "consensus_params": {"max_block_bytes": 1048576, "max_tx_bytes": 4096},
         "modules": {"accounts": {"max_label_bytes": 32}}\(extra)}
        """
    }

    @Test func parsesAValidFile() throws {
        let dir = TempDir()
        let path = dir.path("genesis.json")
        try json(validJSON()).write(to: URL(fileURLWithPath: path))
        let g = try Genesis.load(path: path)
        #expect(g.chainID == "ishtar-devnet-1")
        #expect(g.genesisTime == genesisTime)
        #expect(g.validators.totalPower == 15)
        #expect(g.validators.validators.map(\.publicKey.hexString) == [k1, k2].sorted())
        #expect(g.consensusParams == ConsensusParams(maxBlockBytes: 1_048_576, maxTxBytes: 4096))
        #expect(g.moduleParams["accounts"] == Data("{\"max_label_bytes\":32}".utf8))
        // The canonical JSON round-trips and the validator hash is order-independent.
        #expect(try Genesis.parse(g.jsonData()) == g)
        let swapped = try Genesis(chainID: g.chainID, genesisTime: g.genesisTime, validators: g.validators.validators.reversed())
        #expect(swapped.validators.hash == g.validators.hash)
        // Module params reach the module.
        let app = try Application(store: InMemoryStore(columnFamilies: Application.columnFamilies))
        try app.initChain(g)
        #expect(try app.query(path: "/modules/accounts/params").value == Data("{\"max_label_bytes\":32}".utf8))
    }

    @Test func reportsClearErrors() throws {
        let cases: [(String, GenesisError)] = [
            ("{", .invalidJSON("")),
            ("[]", .wrongType(field: "(root)", expected: "an object")),
            (validJSON().replacingOccurrences(of: "\"chain_id\": \"ishtar-devnet-1\",", with: ""), .missingField("chain_id")),
            (validJSON().replacingOccurrences(of: "ishtar-devnet-1", with: "bad chain!"),
             .invalidChainID("only A-Z a-z 0-9 . - _ are allowed")),
            (validJSON().replacingOccurrences(of: "2025-01-01T00:00:00Z", with: "2025-13-01T00:00:00Z"),
             .invalidTime("2025-13-01T00:00:00Z")),
            (validJSON(validators: "[]"), .noValidators),
            (validJSON(validators: "[{\"pub_key\": \"\(k1)\", \"power\": 1}, {\"pub_key\": \"\(k1)\", \"power\": 2}]"),
             .duplicateValidator(k1)),
            (validJSON(validators: "[{\"pub_key\": \"\(k1)\", \"power\": 0}]"), .zeroPower(index: 0)),
            (validJSON(validators: "[{\"pub_key\": \"zz\", \"power\": 1}]"), .invalidValidatorKey(index: 0, reason: "not hex")),
            (validJSON(validators: "[{\"pub_key\": \"abcd\", \"power\": 1}]"),
             .invalidValidatorKey(index: 0, reason: "must be 32 bytes, got 2")),
            (validJSON(validators: "[{\"pub_key\": \"\(k1)\"}]"), .missingField("validators[0].power")),
            (validJSON(validators: "[{\"pub_key\": \"\(k1)\", \"power\": -3}]"),
             .wrongType(field: "validators[0].power", expected: "a non-negative integer")),
            (validJSON(validators: "[{\"pub_key\": \"\(k1)\", \"power\": \"\(UInt64.max)\"}]"), .totalPowerOverflow),
            (validJSON(validators: "[{\"pub_key\": \"\(k1)\", \"power\": 1, \"pwr\": 1}]"), .unknownField("validators[0].pwr")),
            (validJSON(extra: ", \"chainid\": 1"), .unknownField("chainid")),
            // A name the consensus state could store but never read back (found by the fuzz below).
            (validJSON(validators: "[{\"pub_key\": \"\(k1)\", \"power\": 1, \"name\": \"\(String(repeating: "é", count: 129))\"}]"),
             .validatorNameTooLong(index: 0)),
            // Heights must stay far from 2^64 (a chain started at its end traps a block later).
            (validJSON().replacingOccurrences(of: "\"initial_height\": 1", with: "\"initial_height\": \"18446744073709551615\""),
             .invalidInitialHeight(UInt64.max)),
            (validJSON().replacingOccurrences(of: "\"initial_height\": 1", with: "\"initial_height\": \"\((UInt64(1) << 62) + 1)\""),
             .invalidInitialHeight((1 << 62) + 1)),
            (validJSON().replacingOccurrences(of: "\"max_tx_bytes\": 4096", with: "\"max_tx_bytes\": 10"),
             .invalidConsensusParam(name: "max_tx_bytes", reason: "must be in 256…max_block_bytes")),
        ]
        for (text, expected) in cases {
            do {
                _ = try Genesis.parse(json(text))
                Issue.record("accepted invalid genesis; expected \(expected)")
            } catch {
                if case .invalidJSON = expected, case .invalidJSON = error { continue }
                #expect(error == expected)
                #expect(!error.description.isEmpty)
            }
        }
        #expect(try Genesis.parse(json(validJSON().replacingOccurrences(of: "\"initial_height\": 1",
                                                                       with: "\"initial_height\": \"\(UInt64(1) << 62)\""))).initialHeight == 1 << 62)
        #expect(throws: GenesisError.self) { try Genesis.load(path: "/nonexistent/genesis.json") }
        let longest = String(repeating: "v", count: ChainValidator.maxNameBytes)
        #expect(try Genesis.parse(json(validJSON(validators: "[{\"pub_key\": \"\(k1)\", \"power\": 1, \"name\": \"\(longest)\"}]")))
            .validators.validators.first?.name == longest)
    }

    @Test func moduleParamsAreValidatedAtInitChain() throws {
        let app = try Application(store: InMemoryStore(columnFamilies: Application.columnFamilies))
        let unknown = try Genesis.parse(json(validJSON(extra: "").replacingOccurrences(of: "\"accounts\"", with: "\"bank\"")))
        #expect(throws: ChainError.invalidGenesis(.unknownModule("bank"))) { try app.initChain(unknown) }
        let bad = try Genesis.parse(json(validJSON().replacingOccurrences(of: "\"max_label_bytes\": 32", with: "\"max_label_bytes\": 0")))
        #expect(throws: ChainError.invalidGenesis(.invalidModuleParams(module: "accounts", reason: "max_label_bytes must be in 1…1024"))) {
            try app.initChain(bad)
        }
        #expect(app.tip == nil, "a failed initChain writes nothing")
    }

    @Test func mutatedControlPlaneGenesisIsRefusedWithATypedErrorOrStartsAChain() throws {
        // A genesis file is written by hand: every field of a control-plane genesis (module
        // parameters included) replaced by hostile values, removed, or byte-mangled. Parsing
        // and initChain either succeed or throw their typed errors — never trap — and a
        // refused initChain leaves the store empty.
        let covenant = (1...3).map { testKey("genesis-cov-\($0)").publicKey }
        let params = try ControlPlane.genesisModuleParams(ControlPlaneGenesisOptions(covenantKeys: covenant, covenantQuorum: 2))
        let valid = try Genesis(chainID: "ishtar-fuzz", genesisTime: genesisTime, validators: [
            ChainValidator(publicKey: testKey("g1").publicKey.rawRepresentation, power: 10, name: "a"),
            ChainValidator(publicKey: testKey("g2").publicKey.rawRepresentation, power: 5, name: "b"),
        ], moduleParams: params)
        let seed = valid.jsonData()
        var rng = SplitMix64(seed: 0x6765_6e65_7369_73)
        var (unparsable, refused, started) = (0, 0, 0)
        // The whole file, then (most edits of the whole file break its outer structure) each
        // module's parameters alone.
        var inputs: [() throws -> Genesis] = (0..<600).map { _ in
            let input = rng.mutatedJSON(seed)
            return { try Genesis.parse(input) }
        }
        for name in params.keys.sorted() {
            guard let moduleSeed = params[name] else { continue }
            for _ in 0..<150 {
                var mutated = params
                mutated[name] = rng.mutatedJSON(moduleSeed)
                inputs.append { try Genesis(chainID: valid.chainID, genesisTime: valid.genesisTime,
                                            validators: valid.validators.validators, moduleParams: mutated) }
            }
        }
        for makeGenesis in inputs {
            let genesis: Genesis
            do {
                genesis = try makeGenesis()
            } catch {
                unparsable += 1
                continue
            }
            let input = genesis.jsonData()
            let store = InMemoryStore(columnFamilies: Application.columnFamilies)
            let app = try Application(store: store, modules: ControlPlane.modules())
            do {
                try app.initChain(genesis)
                started += 1
            } catch {
                guard case .invalidGenesis = error else {
                    Issue.record("initChain: \(error) is not an invalid-genesis error, for \(String(decoding: input, as: UTF8.self).prefix(300))")
                    continue
                }
                refused += 1
                #expect(try dump(store).values.allSatisfy(\.isEmpty), "a refused genesis wrote state")
            }
        }
        #expect(unparsable > 100 && refused > 200 && started > 50, "\(unparsable) unparsable, \(refused) refused, \(started) started")
    }

    @Test func rfc3339() {
        #expect(RFC3339.parse("1970-01-01T00:00:00Z") == 0)
        #expect(RFC3339.parse("2025-01-01T00:00:00Z") == genesisTime)
        #expect(RFC3339.parse("2025-01-01T01:00:00.5+01:00") == genesisTime + 500)
        #expect(RFC3339.parse("2024-02-29T12:00:00.123456Z") == RFC3339.parse("2024-02-29T12:00:00.123Z"))
        #expect(RFC3339.parse("2023-02-29T12:00:00Z") == nil)
        #expect(RFC3339.parse("2025-01-01 00:00:00Z") == nil)
        #expect(RFC3339.parse("1969-12-31T23:59:59Z") == nil)
        #expect(RFC3339.format(genesisTime + 42) == "2025-01-01T00:00:00.042Z")
        #expect(RFC3339.parse(RFC3339.format(1_234_567_890_123)) == 1_234_567_890_123)
    }
}
