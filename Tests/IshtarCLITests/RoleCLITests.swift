import Foundation
import IshtarBitcoin
import IshtarChain
import IshtarCLI
import IshtarCrypto
import IshtarKeys
import IshtarNode
import IshtarTestSupport
import Synchronization
import Testing

/// The role commands — `ishtar finality`, `covenant sign`, `staking delegate` — as the real
/// binary against a live API over a control-plane chain, and the vote record that keeps a
/// provider from signing twice at a height.
@Suite(.serialized) struct RoleCLITests {
    static let passphrase = ["ISHTAR_PASSPHRASE": "finality cli test passphrase"]

    /// A live node whose chain runs the control-plane modules.
    static func controlPlaneNode() async throws -> LiveNode {
        let covenant = (0..<3).map { cliTestKey("covenant-\($0)").publicKey }
        let params = try ControlPlane.genesisModuleParams(ControlPlaneGenesisOptions(covenantKeys: covenant, covenantQuorum: 2))
        return try await LiveNode.start(backend: try CLIChainBackend(modules: ControlPlane.modules(), moduleParams: params))
    }

    func key(_ dir: TempDir, _ name: String) async throws -> (path: String, publicKey: String) {
        let path = dir.path(name)
        let made = try await ishtar(["keys", "generate", "--output", path, "--json"], environment: Self.passphrase)
        #expect(made.status == 0, "\(made.stderr)")
        let shown = try parseJSON(try await ishtar(["keys", "show", "--key-file", path, "--json"], environment: Self.passphrase))
        return (path, try #require(shown["public_key"] as? String))
    }

    @Test func registerCommitAndVoteThroughTheCLI() async throws {
        let node = try await Self.controlPlaneNode()
        try await node.stopping {
            let dir = TempDir(prefix: "finality-cli")
            let (account, _) = try await key(dir, "operator.key")
            let (fp, fpKey) = try await key(dir, "fp.key")
            let common = ["--node", node.url, "--account-key-file", account, "--btc-key-file", fp, "--chain-id", CLIChainBackend.chainID, "--json"]

            // Register: REGISTERED, owned by the sending account.
            let registered = try await ishtar(["finality", "register"] + common + ["--moniker", "cli-fp", "--commission", "0.05"],
                                              environment: Self.passphrase)
            #expect(registered.status == 0, "\(registered.stdout) \(registered.stderr)")
            try await node.backend.produceBlock()
            let provider = try parseJSON(try await ishtar(["query", "module", "staking", "finality-provider", fpKey, "--node", node.url]))
            #expect(provider["status"] as? String == "REGISTERED", "\(provider)")

            // Commit randomness from two heights ahead; the node lists the commitment.
            let client = try NodeAPIClient(url: node.url)
            func height() async throws -> UInt64 { try await offPool { try QueryActions.block(client: client, which: "latest").header.height } }
            let start = try await height() + 2
            let committed = try await ishtar(["finality", "commit-randomness"] + common + ["--start", String(start), "--count", "100"],
                                             environment: Self.passphrase)
            #expect(committed.status == 0, "\(committed.stdout) \(committed.stderr)")
            try await node.backend.produceBlock()
            while try await height() < start { try await node.backend.produceBlock() }
            let list = try parseJSON(try await ishtar(["query", "module", "finality", "commitments", fpKey, CLIChainBackend.chainID,
                                                       "--node", node.url]))
            let commitment = try #require((list["commitments"] as? [[String: Any]])?.first)
            #expect(commitment["start_height"] as? String == String(start))
            #expect(list["next_cursor"] is NSNull, "one commitment: one page")
            let root = try Data(hex: try #require(commitment["root"] as? String), field: "root")

            // Two more commitments: the listing comes a page at a time, `--cursor` takes the next
            // page, `--all` follows every page into one list.
            for later in [start + 100, start + 200] {
                let more = try await ishtar(["finality", "commit-randomness"] + common + ["--start", String(later), "--count", "100"],
                                            environment: Self.passphrase)
                #expect(more.status == 0, "\(more.stdout) \(more.stderr)")
                try await node.backend.produceBlock()
            }
            let listing = ["query", "module", "finality", "commitments", fpKey, CLIChainBackend.chainID, "--node", node.url]
            let firstPage = try parseJSON(try await ishtar(listing + ["--limit", "2"]))
            #expect((firstPage["commitments"] as? [[String: Any]])?.compactMap { $0["start_height"] as? String } == [String(start), String(start + 100)])
            let cursor = try #require(firstPage["next_cursor"] as? String)
            let secondPage = try parseJSON(try await ishtar(listing + ["--limit", "2", "--cursor", cursor]))
            #expect((secondPage["commitments"] as? [[String: Any]])?.compactMap { $0["start_height"] as? String } == [String(start + 200)])
            #expect(secondPage["next_cursor"] is NSNull)
            let everything = try parseJSON(try await ishtar(listing + ["--limit", "1", "--all"]))
            #expect((everything["commitments"] as? [[String: Any]])?.compactMap { $0["start_height"] as? String }
                    == [start, start + 100, start + 200].map { String($0) })
            #expect(everything["next_cursor"] == nil)
            let badLimit = try await ishtar(listing + ["--limit", "0"])
            #expect(badLimit.status == 2 && badLimit.stderr.contains("--limit"), "\(badLimit.stderr)")
            let notAListing = try await ishtar(["query", "module", "finality", "params", "--node", node.url, "--all"])
            #expect(notAListing.status == 2 && notAListing.stderr.contains("next_cursor"), "\(notAListing.stderr)")
            // The API refuses a malformed page with a JSON error naming it.
            let raw = try await offPool { try client.get("/modules/finality/commitments/\(fpKey)/\(CLIChainBackend.chainID)?limit=5000") }
            #expect(raw.status == 400 && raw.error?.code == "invalid_page", "\(raw.status) \(String(decoding: raw.body, as: UTF8.self))")

            // The vote the CLI builds verifies: its randomness is the committed leaf for the
            // height, its EOTS signature is valid for the block's hash.
            let hash = try await offPool { try FinalityActions.committedBlockHash(client: client, height: start) }
            let keyFile = try await offPool {
                try KeyFileStore.read(from: fp).unlock(passphrase: Data(Self.passphrase["ISHTAR_PASSPHRASE", default: ""].utf8))
            }
            let probe = VoteRecord(directory: dir.path("probe-record"))
            let message = try await offPool {
                try FinalityActions.voteMessage(client: client, btcKey: keyFile, chainID: CLIChainBackend.chainID, height: start,
                                                blockHash: hash, record: probe)
            }
            let vote = try AddFinalitySig(decoding: message.payload)
            #expect(vote.proof.verify(leaf: vote.publicRandomness, root: root))
            #expect(EOTS.isValid(signature: try EOTS.Signature(rawRepresentation: vote.signature),
                                 publicKey: keyFile.publicKey, publicRandomness: try EOTS.PublicRandomness(rawRepresentation: vote.publicRandomness),
                                 message: try EOTS.finalityVoteMessage(height: start, blockHash: hash)))

            // Through the binary: the chain takes it through every stateless rule (decode, EOTS
            // signature) and refuses it only because the provider holds no stake.
            let voted = try await ishtar(["finality", "vote"] + common + ["--height", String(start)], environment: Self.passphrase)
            #expect(voted.status == 1)
            #expect(try parseJSON(voted)["rule"] as? String == "finality-provider-not-active", "\(voted.stdout) \(voted.stderr)")
            // The record sits beside the key file, one subdirectory per public key.
            let record = VoteRecord.forKey(file: fp, publicKey: try Data(hex: fpKey, field: "fp key"))
            #expect(record.directory == URL(fileURLWithPath: fp).resolvingSymlinksInPath().path + ".votes/" + fpKey)
            #expect(FileManager.default.fileExists(atPath: record.path(chainID: CLIChainBackend.chainID, height: start)))

            // A hash by hand that is not the node's block at the height is refused before it is
            // recorded (it would use the height up).
            let mempool = await node.backend.mempool.count
            let other = String(repeating: "ab", count: 32)
            let wrong = try await ishtar(["finality", "vote"] + common + ["--height", String(start - 1), "--block-hash", other],
                                         environment: Self.passphrase)
            #expect(wrong.status == 1)
            #expect(wrong.stderr.contains("refusing to vote"), "\(wrong.stderr)")
            #expect(!FileManager.default.fileExists(atPath: record.path(chainID: CLIChainBackend.chainID, height: start - 1)))

            // Another hash at a recorded height is refused before anything is signed or sent
            // (a consumer chain's hash is taken as given, so the record is what stops it).
            try record.record(chainID: "consumer-1", height: 9, blockHash: hash)
            let consumer = common + ["--consumer-chain-id", "consumer-1"]
            let refused = try await ishtar(["finality", "vote"] + consumer + ["--height", "9", "--block-hash", other],
                                           environment: Self.passphrase)
            #expect(refused.status == 1)
            #expect(refused.stderr.contains("refusing to sign"), "\(refused.stderr)")
            #expect(await node.backend.mempool.count == mempool)

            // Heights without a commitment are refused locally, naming the fix.
            let uncommitted = try await ishtar(["finality", "vote"] + consumer + ["--height", "500", "--block-hash", other],
                                               environment: Self.passphrase)
            #expect(uncommitted.status == 1)
            #expect(uncommitted.stderr.contains("commit-randomness"), "\(uncommitted.stderr)")

            // Bad input is exit code 2 with the option named.
            let bad = try await ishtar(["finality", "register"] + common + ["--moniker", "x", "--commission", "1.5"], environment: Self.passphrase)
            #expect(bad.status == 2)
            #expect(bad.stderr.contains("--commission"), "\(bad.stderr)")
        }
    }

    /// Genesis's consumer chain list is the registry: through the binary, registering a
    /// provider for an unlisted chain fails naming the rule, and one for a listed chain
    /// registers and commits randomness for it from its start height.
    @Test func consumerProvidersRegisterOnlyForListedChains() async throws {
        let covenant = (0..<3).map { cliTestKey("covenant-\($0)").publicKey }
        let params = try ControlPlane.genesisModuleParams(ControlPlaneGenesisOptions(
            covenantKeys: covenant, covenantQuorum: 2, consumerChains: [ConsumerChainStart(chainID: "rollup-1", startHeight: 7)]))
        let node = try await LiveNode.start(backend: try CLIChainBackend(modules: ControlPlane.modules(), moduleParams: params))
        try await node.stopping {
            let dir = TempDir(prefix: "consumer-cli")
            let (account, _) = try await key(dir, "operator.key")
            let (fp, fpKey) = try await key(dir, "fp.key")
            let common = ["--node", node.url, "--account-key-file", account, "--btc-key-file", fp, "--chain-id", CLIChainBackend.chainID, "--json"]

            let unlisted = try await ishtar(["finality", "register"] + common + ["--consumer-chain-id", "rollup-2", "--moniker", "fp", "--commission", "0.05"],
                                            environment: Self.passphrase)
            #expect(unlisted.status == 1)
            #expect(try parseJSON(unlisted)["rule"] as? String == "unlisted-consumer-chain", "\(unlisted.stdout) \(unlisted.stderr)")

            let listed = try await ishtar(["finality", "register"] + common + ["--consumer-chain-id", "rollup-1", "--moniker", "fp", "--commission", "0.05"],
                                          environment: Self.passphrase)
            #expect(listed.status == 0, "\(listed.stdout) \(listed.stderr)")
            try await node.backend.produceBlock()
            let provider = try parseJSON(try await ishtar(["query", "module", "staking", "finality-provider", fpKey, "--node", node.url]))
            #expect(provider["consumer_chain_id"] as? String == "rollup-1", "\(provider)")
            let committed = try await ishtar(["finality", "commit-randomness"] + common
                                                + ["--consumer-chain-id", "rollup-1", "--start", "7", "--count", "100"], environment: Self.passphrase)
            #expect(committed.status == 0, "\(committed.stdout) \(committed.stderr)")
            try await node.backend.produceBlock()
            let list = try parseJSON(try await ishtar(["query", "module", "finality", "commitments", fpKey, "rollup-1", "--node", node.url]))
            #expect((list["commitments"] as? [[String: Any]])?.first?["start_height"] as? String == "7", "\(list)")
        }
    }

    /// `ishtar covenant sign` answers for what it cannot sign (the signing itself runs in
    /// the devnet scenario, against real delegations).
    @Test func covenantSignRefusesWhatItCannotSign() async throws {
        let node = try await Self.controlPlaneNode()
        try await node.stopping {
            let dir = TempDir(prefix: "covenant-cli")
            let (member, _) = try await key(dir, "member.key")
            let common = ["covenant", "sign", "--node", node.url, "--key-file", member, "--account-key-file", member,
                          "--chain-id", CLIChainBackend.chainID]
            let unknown = try await ishtar(common + ["--staking-txid", String(repeating: "12", count: 32)], environment: Self.passphrase)
            #expect(unknown.status == 1)
            #expect(unknown.stderr.contains("not_found") || unknown.stderr.contains("delegation"), "\(unknown.stderr)")
            let malformed = try await ishtar(common + ["--staking-txid", "xyz"], environment: Self.passphrase)
            #expect(malformed.status == 2)
            #expect(malformed.stderr.contains("--staking-txid"), "\(malformed.stderr)")
        }
    }

    /// `ishtar staking delegate` refuses a transaction that does not stake to the script of
    /// this staker, provider and time under the chain's parameters (the accepted path runs in
    /// the devnet scenario, with real staking transactions).
    @Test func stakingDelegateRefusesWhatIsNotAStake() async throws {
        let node = try await Self.controlPlaneNode()
        try await node.stopping { try await delegateChecks(node) }
    }

    func delegateChecks(_ node: LiveNode) async throws {
        let dir = TempDir(prefix: "delegate-cli")
        let (staker, stakerPublicKey) = try await key(dir, "staker.key")
        let (_, fpKey) = try await key(dir, "fp.key")
        let notAStake = IshtarBitcoin.Transaction(
            inputs: [TxIn(previousOutput: OutPoint(txid: try Hash256(rawValue: Data(repeating: 7, count: 32)), index: 0))],
            outputs: [TxOut(value: try Amount(sats: 5_000_000), scriptPubKey: Script(bytes: [0x51]))])
        let common = ["staking", "delegate", "--node", node.url, "--key-file", staker, "--account-key-file", staker,
                      "--chain-id", CLIChainBackend.chainID, "--fp-pk", fpKey, "--staking-time", "1000"]
        let refused = try await ishtar(common + ["--staking-tx", notAStake.serialized().hexString], environment: Self.passphrase)
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("--staking-vout"), "\(refused.stderr)")
        // Told which output, it is still not a stake: the chain's validation names why.
        let wrongOutput = try await ishtar(common + ["--staking-tx", notAStake.serialized().hexString, "--staking-vout", "0"],
                                           environment: Self.passphrase)
        #expect(wrongOutput.status == 1)
        #expect(wrongOutput.stderr.contains("not a valid delegation"), "\(wrongOutput.stderr)")
        let garbage = try await ishtar(common + ["--staking-tx", "00"], environment: Self.passphrase)
        #expect(garbage.status == 2)
        #expect(garbage.stderr.contains("--staking-tx"), "\(garbage.stderr)")

        // A real stake for this staker, provider and time: the parameters (and so what the
        // slashing transactions burn) come from the node, so the staker can bound them.
        let parameters = try StakingActions.currentParameters(node: try NodeAPIClient(url: node.url))
        let builder = try StakingBuilder(stakerKey: try Schnorr.PublicKey(rawRepresentation: try Data(hex: stakerPublicKey, field: "staker")),
                                         finalityProviderKeys: [try Schnorr.PublicKey(rawRepresentation: try Data(hex: fpKey, field: "fp"))],
                                         stakingTime: 1000, parameters: parameters)
        let stake = IshtarBitcoin.Transaction(
            inputs: [TxIn(previousOutput: OutPoint(txid: try Hash256(rawValue: Data(repeating: 8, count: 32)), index: 0))],
            outputs: [builder.stakingOutput(value: try Amount(sats: 5_000_000))])
        let bounded = try await ishtar(common + ["--staking-tx", stake.serialized().hexString, "--max-slashing-rate", "0.01"],
                                       environment: Self.passphrase)
        #expect(bounded.status == 1)
        #expect(bounded.stderr.contains("refusing to sign: the slashing transaction burns"), "\(bounded.stderr)")
        let feeBound = try await ishtar(common + ["--staking-tx", stake.serialized().hexString, "--max-slashing-fee", "1"],
                                        environment: Self.passphrase)
        #expect(feeBound.status == 1)
        #expect(feeBound.stderr.contains("--max-slashing-fee"), "\(feeBound.stderr)")
        // Within the bounds it is signed and sent, with a note of what slashing would take.
        let sent = try await ishtar(common + ["--staking-tx", stake.serialized().hexString, "--max-slashing-rate",
                                              parameters.slashingRate.description], environment: Self.passphrase)
        #expect(sent.stderr.contains("note: if slashed, the stake loses"), "\(sent.stdout) \(sent.stderr)")
    }

    @Test func theVoteRecordRefusesASecondHashAtAHeight() throws {
        let dir = TempDir(prefix: "vote-record")
        let record = VoteRecord(directory: dir.path("votes"))
        let a = Data(repeating: 0xaa, count: 32), b = Data(repeating: 0xbb, count: 32)
        #expect(try record.record(chainID: "chain/one", height: 7, blockHash: a) == .recorded)
        #expect(try record.record(chainID: "chain/one", height: 7, blockHash: a) == .alreadyRecorded)
        #expect(throws: CLIError.self) { try record.record(chainID: "chain/one", height: 7, blockHash: b) }
        // The read-only check answers the same, for a recorded height and a free one.
        #expect(throws: CLIError.self) { try record.check(chainID: "chain/one", height: 7, blockHash: b) }
        #expect(throws: Never.self) { try record.check(chainID: "chain/one", height: 7, blockHash: a) }
        #expect(throws: Never.self) { try record.check(chainID: "chain/one", height: 70, blockHash: b) }
        #expect(!FileManager.default.fileExists(atPath: record.path(chainID: "chain/one", height: 70)))
        // Other heights and other chains are independent.
        #expect(try record.record(chainID: "chain/one", height: 8, blockHash: b) == .recorded)
        #expect(try record.record(chainID: "chain-two", height: 7, blockHash: b) == .recorded)
        // The refusal changed nothing, and the record is private.
        let file = record.path(chainID: "chain/one", height: 7)
        #expect(String(decoding: try #require(FileManager.default.contents(atPath: file)), as: UTF8.self) == a.hexString + "\n")
        let mode = try #require(try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int)
        #expect(mode & 0o077 == 0)
        // A damaged record is never read as permission to sign.
        let damaged = record.path(chainID: "chain/one", height: 9)
        try Data("not a hash".utf8).write(to: URL(fileURLWithPath: damaged))
        #expect(throws: CLIError.self) { try record.record(chainID: "chain/one", height: 9, blockHash: a) }
    }

    /// Two processes racing for one height with different hashes: exactly one records.
    @Test func racingVotesForOneHeightRecordOnce() throws {
        let dir = TempDir(prefix: "vote-race")
        for round in 0..<20 {
            let record = VoteRecord(directory: dir.path("votes-\(round)"))
            let wins = Mutex(0)
            DispatchQueue.concurrentPerform(iterations: 8) { i in
                if (try? record.record(chainID: "race", height: 1, blockHash: Data(repeating: UInt8(i), count: 32))) == .recorded {
                    wins.withLock { $0 += 1 }
                }
            }
            #expect(wins.withLock { $0 } == 1, "round \(round)")
        }
    }
}
