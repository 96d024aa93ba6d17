import Foundation
import IshtarChain
import IshtarConsensus
import IshtarCrypto
@testable import IshtarNode
import IshtarTestSupport
import Logging
import Testing

@Suite struct SignerTests {
    @Test func signAndVerifyRoundTrip() throws {
        let key = Schnorr.PrivateKey()
        let signer = SchnorrConsensusSigner(key: key)
        #expect(signer.validatorAddress == key.publicKey.rawRepresentation)
        let bytes = Data("some sign bytes".utf8)
        let sig = try signer.sign(bytes)
        #expect(sig.count == 64)
        let v = Validator(address: signer.validatorAddress, publicKey: signer.validatorAddress, power: 1)
        let verifier = SchnorrSignatureVerifier()
        #expect(verifier.verify(signature: sig, message: bytes, by: v))
        #expect(!verifier.verify(signature: sig, message: bytes + Data([0]), by: v))
        var flipped = sig
        flipped[5] ^= 1
        #expect(!verifier.verify(signature: flipped, message: bytes, by: v))
        // Malformed inputs from peers: false, never a trap.
        #expect(!verifier.verify(signature: Data(count: 63), message: bytes, by: v))
        #expect(!verifier.verify(signature: sig, message: bytes, by: Validator(address: Data([1]), publicKey: Data([1, 2]), power: 1)))
        let other = Schnorr.PrivateKey().publicKey.rawRepresentation
        #expect(!verifier.verify(signature: sig, message: bytes, by: Validator(address: other, publicKey: other, power: 1)))
    }

    @Test func commitVerifierAcceptsEnginePrecommitsAndMappingRoundTrips() throws {
        let keys = (0..<4).map { _ in Schnorr.PrivateKey() }
        let chain = try ChainID("ishtar-unit")
        let hash = try BlockHash(Data(repeating: 7, count: 32))
        let votes = try keys.map { k in
            let vote = Vote(type: .precommit, height: 5, round: 2, value: hash, validator: k.publicKey.rawRepresentation)
            return SignedVote(vote: vote, signature: try SchnorrConsensusSigner(key: k).sign(vote.signBytes(chainID: chain)))
        }
        let cert = CommitCertificate(height: 5, round: 2, value: hash, precommits: votes)
        let set = try ValidatorSet(keys.map {
            Validator(address: $0.publicKey.rawRepresentation, publicKey: $0.publicKey.rawRepresentation, power: 10)
        })
        try cert.verify(chainID: chain, validators: set, verifier: SchnorrSignatureVerifier())

        let info = ConsensusMapping.commitInfo(cert)
        #expect(info.signatures.map(\.address) == info.signatures.map(\.address).sorted { $0.lexicographicallyPrecedes($1) })
        let cv = ConsensusCommitVerifier()
        for s in info.signatures {
            #expect(cv.isValid(s, of: info, chainID: "ishtar-unit", publicKey: s.address))
            #expect(!cv.isValid(s, of: info, chainID: "other-chain", publicKey: s.address))
            var wrongRound = info
            wrongRound.round = 3
            #expect(!cv.isValid(s, of: wrongRound, chainID: "ishtar-unit", publicKey: s.address))
        }
        #expect(try ConsensusMapping.certificate(info) == cert)
    }
}

@Suite struct WireTests {
    /// One message of every wire type (two batches: empty and not).
    static func everyType() throws -> [WireMessage] {
        let key = try Schnorr.PrivateKey(rawRepresentation: Data(repeating: 7, count: 32))
        let chain = try ChainID("c")
        let hash = try BlockHash(Data(repeating: 1, count: 32))
        let signer = SchnorrConsensusSigner(key: key)
        let vote = Vote(type: .prevote, height: 3, round: 0, value: hash, validator: key.publicKey.rawRepresentation)
        let sv = SignedVote(vote: vote, signature: try signer.sign(vote.signBytes(chainID: chain)))
        let proposal = Proposal(height: 3, round: 1, polRound: 0, value: ProposalValue(hash: hash, block: Data([1, 2, 3])),
                                proposer: key.publicKey.rawRepresentation)
        let sp = SignedProposal(proposal: proposal, signature: try signer.sign(proposal.signBytes(chainID: chain)))
        return [
            .hello(chainID: "c", nodeKey: key.publicKey.rawRepresentation, challenge: Data(repeating: 9, count: 32)),
            .helloProof(signature: Data(repeating: 3, count: 64)),
            .proposal(sp),
            .vote(sv),
            .commit(CommitCertificate(height: 3, round: 0, value: hash, precommits: [sv]), block: Data([1, 2, 3])),
            .transaction(Data([4, 5])),
            .transactions([Data([6]), Data([7, 8, 9]), Data()]),
            .transactions([]),
            .status(height: 42),
            .syncRequest(height: 43),
        ]
    }

    @Test func messagesRoundTrip() throws {
        for m in try Self.everyType() { #expect(try WireMessage.decode(m.encoded()) == m) }
    }

    @Test func mutatedFramesAreRejectedOrDecodeConsistently() throws {
        // What a peer can send: mutations of every frame type. Nothing traps; what decodes
        // re-encodes to a frame that decodes to the same message.
        let seeds = try Self.everyType().map { $0.encoded() }
        var rng = SplitMix64(seed: 0x77_6972_65)
        var rejected = 0
        for _ in 0..<20_000 {
            let frame = rng.mutated(seeds[Int.random(in: 0..<seeds.count, using: &rng)])
            do {
                let m = try WireMessage.decode(frame)
                #expect(try WireMessage.decode(m.encoded()) == m, "frame \(frame.hexString)")
            } catch {
                rejected += 1
            }
        }
        #expect(rejected > 10_000)
    }

    @Test func malformedFramesAreTypedErrors() {
        #expect(throws: WireError.truncated) { try WireMessage.decode(Data()) }
        #expect(throws: WireError.unknownType(99)) { try WireMessage.decode(Data([99])) }
        #expect(throws: WireError.trailingBytes) { try WireMessage.decode(WireMessage.status(height: 1).encoded() + Data([0])) }
        #expect(throws: WireError.truncated) { try WireMessage.decode(Data([WireMessage.typeTx, 0, 0, 0, 9, 1])) }
        #expect(throws: (any Error).self) { try WireMessage.decode(Data([WireMessage.typeVote, 1, 2, 3])) }
        // A batch claiming more entries than its bytes can hold, or cut short.
        #expect(throws: WireError.fieldTooLarge("1000000 transactions")) {
            try WireMessage.decode(Data([WireMessage.typeTxs, 0, 0x0F, 0x42, 0x40, 0, 0, 0, 0]))
        }
        #expect(throws: WireError.truncated) { try WireMessage.decode(Data([WireMessage.typeTxs, 0, 0, 0, 1, 0, 0, 0, 9, 5])) }
    }

    @Test func handshakeDigestBindsChallengeChainAndKey() {
        let a = WireMessage.handshakeDigest(peerChallenge: Data(count: 32), chainID: "x", nodeKey: Data(repeating: 1, count: 32))
        #expect(a != WireMessage.handshakeDigest(peerChallenge: Data(repeating: 1, count: 32), chainID: "x", nodeKey: Data(repeating: 1, count: 32)))
        #expect(a != WireMessage.handshakeDigest(peerChallenge: Data(count: 32), chainID: "y", nodeKey: Data(repeating: 1, count: 32)))
        #expect(a != WireMessage.handshakeDigest(peerChallenge: Data(count: 32), chainID: "x", nodeKey: Data(repeating: 2, count: 32)))
    }
}

@Suite struct HomeTests {
    @Test func initWritesKeysConfigAndSharedGenesis() throws {
        let dir = try nodeScratch("home")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = try NodeHomeSetup.initialize(
            at: dir, options: HomeInitOptions(chainID: "ishtar-home", validators: 3, passphrase: Data("pw pw pw".utf8), basePort: 40000),
            logger: quietLogger("t"))
        #expect(out.count == 3)
        let homes = (0..<3).map { NodeHome(path: dir + "/node\($0)") }
        let g0 = try homes[0].loadGenesis()
        #expect(g0.chainID == "ishtar-home")
        #expect(g0.validators.validators.count == 3)
        for (i, h) in homes.enumerated() {
            #expect(try h.loadGenesis() == g0)
            let c = try h.loadConfig()
            #expect(c.p2p.listen == "127.0.0.1:\(40000 + 2 * i)")
            #expect(c.api.listen == "127.0.0.1:\(40000 + 2 * i + 1)")
            #expect(c.p2p.persistentPeers.count == 2)
            #expect(c.p2p.persistentPeers.allSatisfy { PeerAddress($0)?.nodeID != nil })
            // Encrypted: no passphrase → clear error; right passphrase → the genesis key.
            #expect(throws: NodeError.self) { try h.loadValidatorKey(config: c, passphrase: nil) }
            #expect(throws: NodeError.self) { try h.loadValidatorKey(config: c, passphrase: Data("wrong".utf8)) }
            let k = try h.loadValidatorKey(config: c, passphrase: Data("pw pw pw".utf8))
            #expect(g0.validators.validator(address: k.publicKey.rawRepresentation) != nil)
            #expect(k.publicKey.rawRepresentation != (try h.loadNodeKey(config: c)).publicKey.rawRepresentation)
            let mode = try FileManager.default.attributesOfItem(atPath: h.path + "/validator_key.json")[.posixPermissions] as? Int
            #expect(mode == 0o600)
        }
        // Never overwrite an initialized home; refuse unencrypted keys unless asked.
        #expect(throws: NodeError.self) {
            try NodeHomeSetup.initialize(at: dir, options: HomeInitOptions(chainID: "x", validators: 3, insecurePlaintext: true), logger: quietLogger("t"))
        }
        #expect(throws: NodeError.self) {
            try NodeHomeSetup.initialize(at: dir + "/fresh", options: HomeInitOptions(chainID: "x"), logger: quietLogger("t"))
        }
        // An init killed after writing keys but before config.json and genesis.json: the next
        // one says what happened and what to do, instead of naming a file that "already exists".
        let interrupted = dir + "/interrupted"
        _ = try NodeHomeSetup.initialize(at: interrupted, options: HomeInitOptions(chainID: "x", insecurePlaintext: true),
                                         logger: quietLogger("t"))
        let home = NodeHome(path: interrupted)
        try FileManager.default.removeItem(atPath: home.configPath)
        try FileManager.default.removeItem(atPath: home.genesisPath)
        try FileManager.default.removeItem(atPath: interrupted + "/covenant")
        #expect {
            try NodeHomeSetup.initialize(at: interrupted, options: HomeInitOptions(chainID: "x", insecurePlaintext: true),
                                         logger: quietLogger("t"))
        } throws: { "\($0)".contains("interrupted") }
    }

    @Test func configDefaultsFillMissingFields() throws {
        let c = try NodeConfig.parse(Data(#"{"moniker":"m","p2p":{"listen":"0.0.0.0:1"}}"#.utf8))
        #expect(c.moniker == "m")
        #expect(c.p2p.listen == "0.0.0.0:1")
        #expect(c.api.listen == "127.0.0.1:26657")
        #expect(c.mempool == MempoolConfig())
        #expect(try NodeConfig.parse(c.jsonData()) == c)
        #expect(HostPort("127.0.0.1:80") == HostPort(host: "127.0.0.1", port: 80))
        #expect(HostPort("nope") == nil)
        #expect(PeerAddress("zz@1.2.3.4:5") == nil)
    }

    @Test func configValuesOutsideTheirRangesAreRefusedByName() throws {
        let cases: [(String, ConfigError)] = [
            (#"{"consensus":{"propose_delta_ms":18446744073709551615}}"#,
             .outOfRange(field: "consensus.propose_delta_ms", value: "18446744073709551615", allowed: "0…86400000")),
            (#"{"consensus":{"gossip_interval_ms":0}}"#,
             .outOfRange(field: "consensus.gossip_interval_ms", value: "0", allowed: "50…86400000")),
            (#"{"consensus":{"prevote_base_ms":0}}"#, .outOfRange(field: "consensus.prevote_base_ms", value: "0", allowed: "1…86400000")),
            (#"{"mempool":{"max_per_sender":-1}}"#, .outOfRange(field: "mempool.max_per_sender", value: "-1", allowed: "1…10000000")),
            (#"{"p2p":{"max_frame_bytes":100}}"#, .outOfRange(field: "p2p.max_frame_bytes", value: "100", allowed: "65536…1073741824")),
            (#"{"p2p":{"max_inbound_peers":0}}"#, .outOfRange(field: "p2p.max_inbound_peers", value: "0", allowed: "1…10000")),
            (#"{"p2p":{"max_inbound_peers_per_ip":0}}"#, .outOfRange(field: "p2p.max_inbound_peers_per_ip", value: "0", allowed: "1…10000")),
            (#"{"p2p":{"listen":"26656"}}"#, .invalid(field: "p2p.listen", reason: "\"26656\" is not host:port")),
            (#"{"p2p":{"persistent_peers":["1.2.3.4:5","peer"]}}"#,
             .invalid(field: "p2p.persistent_peers[1]", reason: "\"peer\" is not nodeIDhex@host:port or host:port")),
            (#"{"log_level":"verbose"}"#,
             .invalid(field: "log_level", reason: "\"verbose\" is not one of trace, debug, info, notice, warning, error, critical")),
        ]
        for (json, expected) in cases {
            #expect(throws: expected, "\(json)") { try NodeConfig.parse(Data(json.utf8)) }
        }
        // A misspelled key is refused by name (it used to be ignored, its default used).
        for (json, field) in [(#"{"consensus":{"propose_base_msec":0}}"#, "consensus.propose_base_msec"),
                              (#"{"mempol":{}}"#, "mempol"), (#"{"p2p":{"max_inbound":3}}"#, "p2p.max_inbound")] {
            #expect("\(json)") { try NodeConfig.parse(Data(json.utf8)) } throws: {
                if case .invalid(let f, let reason) = $0 as? ConfigError { return f == field && reason.hasPrefix("unknown field") }
                return false
            }
        }
        #expect(try NodeConfig.parse(Data(#"{"consensus":{"min_block_interval_ms":0,"propose_delta_ms":86400000}}"#.utf8))
            .consensus.proposeDeltaMillis == 86_400_000)
        // The documented example is a valid config.
        let example = try Data(contentsOf: repositoryRoot.appendingPathComponent("Config/node.example.json"))
        #expect(try NodeConfig.parse(example).moniker.isEmpty == false)
    }

    @Test func mutatedConfigFilesParseToUsableValuesOrFail() throws {
        // Every accepted config holds values the node can use: its timers cannot overflow
        // and its addresses parse.
        let seed = NodeConfig(p2p: P2PConfig(persistentPeers: ["127.0.0.1:1"])).jsonData()
        var rng = SplitMix64(seed: 0x636f_6e66)
        var (accepted, refused) = (0, 0)
        for _ in 0..<3000 {
            guard let c = try? NodeConfig.parse(rng.mutatedJSON(seed)) else {
                refused += 1
                continue
            }
            accepted += 1
            #expect(HostPort(c.p2p.listen) != nil && HostPort(c.api.listen) != nil)
            for step in [Step.propose, .prevote, .precommit] {
                #expect(c.consensus.timeouts.durationMillis(step: step, round: 1000) < UInt64.max / 1_000_000)
            }
            #expect(c.consensus.gossipIntervalMillis >= 50 && c.mempool.maxTransactions >= 1)
        }
        #expect(accepted > 100 && refused > 1000, "\(accepted) accepted, \(refused) refused")
    }
}
