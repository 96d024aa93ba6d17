import Foundation
import IshtarBitcoin
import IshtarBitcoinRPC
import IshtarChain
import IshtarCLI
import IshtarCrypto
import IshtarNode
import IshtarTestSupport
import Testing

/// The control plane end to end, with real parts only: four `ishtar node` processes on
/// loopback, Bitcoin Core's consensus code through `Scripts/regtest-node`, and a test driver
/// standing in for the daemons of a later issue (header relayer, staker, covenant members,
/// finality providers) that talks to them through JSON-RPC and the node's HTTP API.
///
/// Register three providers; stake BTC to them in real staking transactions mined on
/// regtest; covenant-sign; activate with inclusion proofs once k-deep on the light client;
/// commit EOTS randomness and vote until blocks are finalized by BTC stake; make one provider
/// double-vote and see it slashed on chain, with its key recoverable from the stored
/// evidence (and that key completing the stake's slashing transaction on regtest); and see
/// the validators' own checkpoint signatures seal an epoch.
@Suite(.serialized, .enabled(if: regtestNodeAvailable, "Scripts/regtest-node not found; scenario skipped"))
struct StakingScenarioTests {
    static let chainID = "ishtar-scenario"
    static let stakingTime: UInt16 = 1_000
    /// Stakes of the three providers, in BTC; provider 0 (the smallest) double-votes, so the
    /// other two (5 of 6) still finalize afterwards.
    static let stakes: [Int64] = [1, 2, 3]

    @Test(.timeLimit(.minutes(5))) func fourValidatorDevnetStakesFinalizesAndSlashes() async throws {
        let dir = try nodeScratch("scenario")
        // Below Linux's ephemeral range (32768–60999): the driver's many short HTTP connections
        // take ephemeral ports, which could otherwise hold a node's port when it starts.
        let net = Devnet(dir: dir, count: 4, basePort: freeBasePort())
        defer {
            net.killAll()
            try? FileManager.default.removeItem(atPath: dir)
        }
        let covenants = (0..<5).map { _ in Schnorr.PrivateKey() }
        let providers = (0..<3).map { _ in evenYKey() }
        let staker = Schnorr.PrivateKey()
        let parameters = StakingParameters.ishtarDefaults(covenantKeys: covenants.map(\.publicKey), covenantQuorum: 3,
                                                          network: .regtest)

        let began = Date()
        /// Progress on stderr, so a slow or failing run shows where it was.
        func step(_ text: String) {
            FileHandle.standardError.write(Data(String(format: "[scenario %6.1fs] %@\n", Date().timeIntervalSince(began), text).utf8))
        }
        try await withRegtestNode { btc in
            let rpc = btc.client()
            let bitcoin = ScenarioBitcoin(rpc: rpc, funder: Schnorr.PrivateKey())

            // The devnet: genesis names this covenant committee; the light client starts at
            // the regtest genesis header, which is where the fresh regtest node starts too.
            let initOut = try ScenarioChain.initialize(
                net, chainID: Self.chainID,
                extra: covenants.flatMap { ["--covenant-pk", $0.publicKey.rawRepresentation.hexString] } + ["--covenant-quorum", "3"])
            #expect((initOut["network"] as? [String: Any])?["btc_base_hash"] as? String == Network.regtest.genesisHeader.hash.displayHex)
            for i in 0..<4 { try net.start(i) }
            func diagnostics() -> String { (0..<4).map { "--- node\($0)\n" + String(net.log($0).suffix(2500)) }.joined(separator: "\n") }
            try #require(await waitUntil(40) { (0..<4).allSatisfy { (net.height($0) ?? 0) >= 2 } }, "devnet did not start\n\(diagnostics())")
            let chain = ScenarioChain(net: net, chainID: Self.chainID)
            step("devnet of 4 validators at height \(chain.height)")
            let lcParams = try chain.require("/modules/btclightclient/params")
            #expect(lcParams["network"] as? String == "regtest")
            #expect(lcParams["base_hash"] as? String == (try await rpc.getBlockHash(height: 0)))
            let stakingParams = try chain.require("/modules/staking/params")
            let btcStaking = (stakingParams["params"] as? [String: Any])?["btc_staking"] as? [String: Any]
            #expect(btcStaking?["covenant_keys"] as? [String] == covenants.map(\.publicKey.rawRepresentation.hexString))

            // Fund three coinbases (mature), relay every header.
            let relayer = ScenarioAccount()
            let coins = try await bitcoin.matureCoins(3)
            try await chain.relayHeaders(rpc, from: relayer)
            step("light client follows regtest to height \(try await rpc.getBlockCount())")

            // 1. Three finality providers, each from its own operator account, in parallel.
            let operators = providers.map { _ in ScenarioAccount() }
            var registrations: [Data] = []
            for (i, fp) in providers.enumerated() {
                let message = CreateFinalityProvider(
                    btcKey: fp.publicKey.rawRepresentation,
                    proofOfPossession: try StakingModule.proofOfPossession(key: fp, chainID: Self.chainID, account: operators[i].address),
                    description: FinalityProviderDescription(moniker: "fp\(i)"),
                    commission: Commission(decimal: "0.05") ?? .zero, consumerChainID: Self.chainID).message
                registrations.append(try chain.submit(operators[i], [message]))
            }
            for hash in registrations { #expect((try await chain.committed(hash))["code"] as? NSNumber == 0) }
            for fp in providers {
                let info = try chain.require("/modules/staking/finality-provider/" + fp.publicKey.rawRepresentation.hexString)
                #expect(info["status"] as? String == "REGISTERED")
            }

            // 2. Real staking transactions (checked by Bitcoin Core before anything else) and
            // their delegations: PENDING, then covenant quorum → VERIFIED.
            var stakes: [ScenarioStake] = []
            for (i, fp) in providers.enumerated() {
                let stake = try ScenarioStake.make(
                    staker: staker, provider: fp, stakingTime: Self.stakingTime, value: try Amount(sats: Self.stakes[i] * 100_000_000),
                    parameters: parameters, coin: coins[i], bitcoin: bitcoin)
                let accepted = try await rpc.testMempoolAccept([stake.staking.serialized().hexString])
                #expect(accepted.first?.allowed == true, "staking tx \(i): \(accepted.first?.rejectReason ?? "")")
                stakes.append(stake)
            }
            // What `ishtar staking delegate` sends: the delegation built around each staking
            // transaction under the parameters the node reports, validated, staker-signed.
            let api = try chain.net.client(chain.node)
            let stakerAccount = ScenarioAccount()
            try await chain.run(stakerAccount, try stakes.map {
                try StakingActions.delegationMessage(
                    node: api, staker: staker, account: stakerAccount.address, chainID: Self.chainID,
                    finalityProvider: $0.provider.publicKey, stakingTime: Self.stakingTime, stakingTransaction: $0.staking,
                    stakingOutputIndex: nil)
            })
            for stake in stakes { #expect(chain.delegationStatus(stake.txid) == "PENDING") }
            // What `ishtar covenant sign` sends: the delegation and its parameters read from
            // the node, validated by the shared function, then signed.
            let outsider = Schnorr.PrivateKey()
            let notMember = #expect(throws: CLIError.self) {
                try CovenantActions.signMessage(node: api, covenantKey: outsider, stakingTxid: stakes[0].txid.displayHex)
            }
            #expect(notMember?.description.contains("refusing to sign") == true, "\(String(describing: notMember))")
            let covenantAccount = ScenarioAccount()
            try await chain.run(covenantAccount, try stakes.flatMap { stake in
                try covenants.prefix(3).map { try CovenantActions.signMessage(node: api, covenantKey: $0, stakingTxid: stake.txid.displayHex) }
            })
            for stake in stakes { #expect(chain.delegationStatus(stake.txid) == "VERIFIED") }
            // Once VERIFIED there is nothing left to sign.
            let late = #expect(throws: CLIError.self) {
                try CovenantActions.signMessage(node: api, covenantKey: covenants[3], stakingTxid: stakes[0].txid.displayHex)
            }
            #expect(late?.description.contains("not PENDING") == true, "\(String(describing: late))")
            step("3 providers registered; 3 delegations PENDING then VERIFIED by 3 of 5 covenant members")

            // 3. Broadcast and mine the staking transactions; k = 10 blocks on top; relay;
            // inclusion proofs → ACTIVE, and the providers carry the stake as voting power.
            for stake in stakes { _ = try await rpc.sendRawTransaction(stake.staking.serialized()) }
            let stakingBlock = try #require(try await rpc.generateToAddress(1, address: TestAddress.opTrue).first)
            _ = try await rpc.generateToAddress(10, address: TestAddress.opTrue)
            try await chain.relayHeaders(rpc, from: relayer)
            var proofs: [Message] = []
            for stake in stakes {
                // What `ishtar relay activation` sends: the block found through the regtest
                // node's transaction index, the proof checked against its header.
                let message = try await RelayActions.activationMessage(rpc: rpc, stakingTxid: stake.txid.displayHex)
                let sent = try AddBTCDelegationInclusionProof(decoding: message.payload)
                #expect(sent.proof.blockHash == (try Hash256(displayHex: stakingBlock)).rawValue)
                proofs.append(message)
            }
            try await chain.run(relayer, proofs)
            for stake in stakes { #expect(chain.delegationStatus(stake.txid) == "ACTIVE") }
            for (i, fp) in providers.enumerated() {
                let info = try chain.require("/modules/staking/finality-provider/" + fp.publicKey.rawRepresentation.hexString)
                #expect(info["active_sats"] as? String == String(Self.stakes[i] * 100_000_000))
            }
            step("staking txs mined in \(stakingBlock), 10 deep; delegations ACTIVE at control-plane height \(chain.height)")

            // 4. Finality: each provider commits EOTS randomness, then votes for every
            // committed block of its active set until blocks are finalized.
            let start = chain.height + 3
            var batches: [PubRandBatch] = []
            var commits: [Data] = []
            for (i, fp) in providers.enumerated() {
                let (message, batch) = try FinalityModule.commitPubRandMessage(fpKey: fp, chainID: Self.chainID,
                                                                               startHeight: start, count: 2_000)
                batches.append(batch)
                commits.append(try chain.submit(operators[i], [message]))
            }
            for hash in commits { #expect((try await chain.committed(hash))["code"] as? NSNumber == 0) }
            var voter = ScenarioVoter(chain: chain, batches: batches, accounts: operators, next: start)
            func lastFinalized() -> UInt64? {
                (chain.json("/modules/finality/last-finalized/" + Self.chainID)?["height"] as? String).flatMap(UInt64.init)
            }
            let finalizedByStake = await voter.vote(until: 60) { (lastFinalized() ?? 0) >= start + 3 }
            try #require(finalizedByStake, "no block finalized by BTC stake; failures \(voter.failures)\n\(diagnostics())")
            #expect(voter.failures.isEmpty, "\(voter.failures)")
            let finalized = try #require(lastFinalized())
            step("randomness committed from \(start); last finalized height \(finalized) (votes: \(voter.voted.map(\.count)))")
            let block = try chain.require("/modules/finality/block/\(Self.chainID)/\(finalized)")
            #expect(block["finalized"] as? Bool == true)
            #expect(block["block_hash"] as? String == (try chain.blockHash(finalized)).hexString)
            // Every node agrees on the finalized block — once it has committed the block that
            // finalized it (the node answering above may be a block ahead of the others).
            for i in 0..<4 {
                var seen: [String: Any]?
                let caughtUp = await waitUntil(30) {
                    seen = chain.json("/modules/finality/block/\(Self.chainID)/\(finalized)", node: i)
                    return seen?["finalized"] as? Bool == true
                }
                #expect(caughtUp, "node \(i) never reported height \(finalized) finalized: \(String(describing: seen))")
                #expect(seen?["block_hash"] as? String == block["block_hash"] as? String, "node \(i)")
            }

            // 5. Provider 0 signs a second, different block hash at a height it voted for.
            let culprit = providers[0]
            let culpritHex = culprit.publicKey.rawRepresentation.hexString
            let height = try #require(voter.voted[0].max())
            // Its honest vote at `height` must be on chain first: a forged vote that reaches a
            // node while the honest one is still in a mempool is (rightly) refused as a vote
            // for a block that is not the one at `height`, not recorded as a double vote.
            let settled = await voter.settle(within: 60)
            try #require(settled, "votes still uncommitted: \(voter.failures)\n\(diagnostics())")
            let forged = Data((0..<32).map { _ in UInt8.random(in: 0...255) })
            try await chain.run(operators[0], [try batches[0].voteMessage(height: height, blockHash: forged)])
            voter.excluded.insert(0)

            let evidenceList = try chain.require("/modules/finality/evidence/" + culpritHex)["evidence"] as? [[String: Any]]
            let evidence = try #require(evidenceList?.first, "no evidence stored")
            func bytes(_ field: String) throws -> Data { try Data(hex: try #require(evidence[field] as? String)) }
            #expect(evidence["height"] as? String == String(height))
            let extracted = try EOTS.extract(
                publicKey: culprit.publicKey, publicRandomness: try EOTS.PublicRandomness(rawRepresentation: try bytes("public_randomness")),
                message1: try EOTS.finalityVoteMessage(height: height, blockHash: try bytes("block_hash_1")),
                signature1: try EOTS.Signature(rawRepresentation: try bytes("signature_1")),
                message2: try EOTS.finalityVoteMessage(height: height, blockHash: try bytes("block_hash_2")),
                signature2: try EOTS.Signature(rawRepresentation: try bytes("signature_2")))
            #expect(extracted.rawRepresentation == culprit.rawRepresentation, "the key extracted from the evidence is not the provider's")
            let slashed = try chain.require("/modules/staking/finality-provider/" + culpritHex)
            #expect(slashed["status"] as? String == "SLASHED")
            step("provider 0 double-voted at \(height): evidence stored, key extracted = secret: \(extracted.rawRepresentation == culprit.rawRepresentation), status \(slashed["status"] ?? "?")")
            // An operator sees both from outside: /status carries BTC finality's progress, and
            // /metrics counts the evidence the node committed.
            let status = try chain.require("/status")
            #expect(((status["btc_finalized_height"] as? NSNumber)?.uint64Value ?? 0) >= finalized, "status: \(status)")
            #expect(status["btc_light_client_height"] is NSNumber, "status: \(status)")
            let metrics = String(decoding: try chain.net.client(chain.node).get("/metrics").body, as: UTF8.self)
            #expect(metrics.contains("\(NodeMetricName.equivocations) 1"), "metrics: \(metrics)")
            #expect(metrics.contains("\(NodeMetricName.btcFinalizedHeight) "), "metrics: \(metrics)")
            // The node process runs on jemalloc and reports what it holds (megabytes, not zero).
            let allocated = metrics.split(separator: "\n").first { $0.hasPrefix("\(NodeMetricName.allocatedBytes) ") }
                .flatMap { Double($0.split(separator: " ").last ?? "") }
            #expect((allocated ?? 0) > 1_000_000, "metrics: \(metrics)")
            let devnet = try DevnetActions.status(home: chain.net.dir)
            #expect(devnet.nodes.count == 4 && devnet.nodes.allSatisfy(\.running), "devnet status: \(devnet.nodes)")
            #expect(devnet.nodes.allSatisfy { ($0.btcFinalizedHeight ?? 0) >= finalized }, "devnet status: \(devnet.nodes)")

            // The stolen key is worth the stake: it decrypts the covenant's adaptor signatures
            // stored on chain and completes the pre-signed slashing transaction, which Bitcoin
            // Core accepts; mined, it burns the slashed share and spends the staking output.
            // `ishtar watch slash` does exactly this: a delegation of an honest provider has
            // nothing to slash; the culprit's is burned.
            do {
                _ = try await WatchActions.slash(node: api, rpc: rpc, stakingTxid: stakes[1].txid.displayHex, broadcast: false)
                Issue.record("a delegation to an honest provider was slashable")
            } catch let error as CLIError {
                #expect(error.exitCode == 1 && error.description.contains("no equivocation evidence"), "\(error)")
            }
            // (`ishtar watch slash-provider`: every delegation of the culprit — here one.)
            let sweep = try await WatchActions.slashProvider(node: api, rpc: rpc, provider: culprit.publicKey, broadcast: true)
            #expect(sweep.delegations.map(\.stakingTxid) == [stakes[0].txid.displayHex])
            let burned = try #require(sweep.delegations.first?.slashed, "\(sweep.delegations)")
            #expect(burned.covenantSignatures == 3, "covenant signatures decrypted with the extracted key")
            #expect(burned.spends == WatchActions.SlashedOutput.staking && burned.finalityProvider == culpritHex && burned.broadcast)
            _ = try await rpc.generateToAddress(1, address: TestAddress.opTrue)
            #expect(try await rpc.getTxOut(txid: stakes[0].txid.displayHex, vout: 0) == nil, "staking output not spent")
            // Run again, nothing is left to burn: reported, not an error.
            let again = try await WatchActions.slashProvider(node: api, rpc: rpc, provider: culprit.publicKey, broadcast: false)
            #expect(again.delegations.first?.slashed == nil && again.delegations.first?.refused?.contains("already slashed") == true,
                    "\(again.delegations)")
            step("slashing tx \(burned.txid) accepted by Bitcoin Core and mined")

            // Its power is gone from the table; the other two (5 of 6) keep finalizing.
            let afterSlash = chain.height
            let resumed = await voter.vote(until: 40) { (lastFinalized() ?? 0) >= afterSlash + 2 }
            #expect(resumed, "finality stopped after the slash; failures \(voter.failures)")
            let table = try chain.require("/modules/staking/voting-power/\(chain.height)")
            let keys = (table["table"] as? [[String: Any]])?.compactMap { $0["fp_btc_pk"] as? String } ?? []
            #expect(!keys.isEmpty)
            #expect(!keys.contains(culpritHex), "slashed provider still has power: \(table)")
            #expect(table["total_power"] as? String == String((Self.stakes[1] + Self.stakes[2]) * 100_000_000))

            step("finality resumed without it: last finalized \(lastFinalized() ?? 0), table total \(table["total_power"] ?? "?")")

            // 6. The validators signed the first epochs' checkpoints themselves.
            try await ScenarioCheckpoints.expectSealed(chain, diagnostics: diagnostics)
            step("epoch 1 checkpoint: \(chain.json("/modules/checkpoints/status/1")?["status"] ?? "?")")

            // ...and a relayer puts it on Bitcoin (`relay checkpoint-submit`'s code: both
            // OP_RETURN transactions accepted by Bitcoin Core), mines them, reports them
            // (`relay checkpoint-proof`): SUBMITTED, then CONFIRMED once k = 10 blocks deep.
            let (cp1, cp2) = try await RelayActions.submitCheckpoint(node: api, rpc: rpc, epoch: 1, account: relayer.address,
                                                                    fundingKey: bitcoin.funder, fee: 1_000)
            // A second run before the first pair is mined takes another coin: the chain's view
            // of the funding address still shows the first one unspent, and spending it again
            // would replace (or, at this fee, be refused against) the pair just broadcast.
            let (again1, again2) = try await RelayActions.submitCheckpoint(node: api, rpc: rpc, epoch: 1, account: relayer.address,
                                                                          fundingKey: bitcoin.funder, fee: 1_000)
            #expect(again1.inputs[0].previousOutput != cp1.inputs[0].previousOutput)
            let pending = Set(try await rpc.getRawMempool())
            #expect([cp1, cp2, again1, again2].allSatisfy { pending.contains($0.txid.displayHex) }, "both pairs wait in the mempool")
            _ = try await rpc.generateToAddress(1, address: TestAddress.opTrue)
            try await chain.relayHeaders(rpc, from: relayer)
            try await chain.run(relayer, [try await RelayActions.checkpointProofMessage(rpc: rpc, txid1: cp1.txid.displayHex,
                                                                                 txid2: cp2.txid.displayHex)])
            #expect(chain.json("/modules/checkpoints/status/1")?["status"] as? String == "SUBMITTED")
            _ = try await rpc.generateToAddress(10, address: TestAddress.opTrue)
            try await chain.relayHeaders(rpc, from: relayer)
            let confirmed = await waitUntil(20) { chain.json("/modules/checkpoints/status/1")?["status"] as? String == "CONFIRMED" }
            #expect(confirmed, "epoch 1: \(chain.json("/modules/checkpoints/epoch/1") ?? [:])")
            step("epoch 1 checkpoint on Bitcoin (\(cp1.txid.displayHex), \(cp2.txid.displayHex)): CONFIRMED")

            // 7. Provider 2 double-votes too, and its staker races the watchtower: stake 2's
            // unbonding transaction, signed by the staker and the covenant quorum as the chain
            // stored them, is accepted and mined by Bitcoin Core before anyone slashes. The
            // watchtower then burns the unbonding output instead (`ishtar watch slash` reads
            // where the stake is from bitcoind), and `relay unbonding`'s report ends the
            // delegation on chain.
            let settledAgain = await voter.settle(within: 60)
            try #require(settledAgain, "votes still uncommitted: \(voter.failures)\n\(diagnostics())")
            let secondHeight = try #require(voter.voted[2].max())
            try await chain.run(operators[2], [try batches[2].voteMessage(height: secondHeight,
                                                                    blockHash: Data((0..<32).map { _ in UInt8.random(in: 0...255) }))])
            voter.excluded.insert(2)
            let secondCulprit = try chain.require("/modules/staking/finality-provider/" + providers[2].publicKey.rawRepresentation.hexString)
            #expect(secondCulprit["status"] as? String == "SLASHED")
            let leaving = stakes[2]
            // (`ishtar staking unbond`; another key than the staker's is refused.)
            do {
                _ = try await StakingActions.unbond(node: api, rpc: rpc, staker: Schnorr.PrivateKey(),
                                                    stakingTxid: leaving.txid.displayHex, broadcast: false)
                Issue.record("a stranger's key unbonded a stake")
            } catch let error as CLIError {
                #expect(error.exitCode == 1 && error.description.contains("staker key"), "\(error)")
            }
            let unbonded = try await StakingActions.unbond(node: api, rpc: rpc, staker: staker, stakingTxid: leaving.txid.displayHex,
                                                           broadcast: true)
            #expect(unbonded.covenantSignatures == 3 && unbonded.broadcast)
            let unbonding = try IshtarBitcoin.Transaction(serialized: try Data(hex: unbonded.transaction))
            _ = try await rpc.generateToAddress(1, address: TestAddress.opTrue)
            let raced = try await WatchActions.slash(node: api, rpc: rpc, stakingTxid: leaving.txid.displayHex, broadcast: true)
            #expect(raced.spends == WatchActions.SlashedOutput.unbonding && raced.covenantSignatures == 3, "\(raced)")
            _ = try await rpc.generateToAddress(1, address: TestAddress.opTrue)
            #expect(try await rpc.getTxOut(txid: unbonding.txid.displayHex, vout: 0) == nil, "unbonding output not slashed")
            step("provider 2 double-voted at \(secondHeight); its staker unbonded first; slashing tx \(raced.txid) burned the unbonding output")
            try await chain.relayHeaders(rpc, from: relayer)
            try await chain.run(relayer, [try await RelayActions.unbondingMessage(node: api, rpc: rpc, stakingTxid: leaving.txid.displayHex)])
            #expect(chain.delegationStatus(leaving.txid) == "UNBONDED")
            let leaver = try chain.require("/modules/staking/finality-provider/" + leaving.provider.publicKey.rawRepresentation.hexString)
            #expect(leaver["active_sats"] as? String == "0", "\(leaver)")
            step("stake 2's unbonding (\(unbonding.txid.displayHex)) reported: UNBONDED on chain")

            // 8. The staker takes back what is left (`ishtar staking withdraw`): stake 1 is
            // unbonded now; its unbonding output, like the change of both slashing
            // transactions, opens to the staker's key alone after the unbonding time — not a
            // block earlier, and never to another key.
            let honest = stakes[1]
            let unbondedHonest = try await StakingActions.unbond(node: api, rpc: rpc, staker: staker,
                                                                 stakingTxid: honest.txid.displayHex, broadcast: true)
            _ = try await rpc.generateToAddress(1, address: TestAddress.opTrue)
            func withdraw(_ stake: ScenarioStake, key: Schnorr.PrivateKey = staker) async throws -> StakingActions.WithdrawOutput {
                try await StakingActions.withdraw(node: api, rpc: rpc, staker: key, stakingTxid: stake.txid.displayHex,
                                                  to: TestAddress.p2tr, feeRate: 2, broadcast: true)
            }
            func refusal(_ stake: ScenarioStake, key: Schnorr.PrivateKey = staker) async -> String {
                do {
                    let out = try await withdraw(stake, key: key)
                    return "withdrew \(out.txid)"
                } catch let error as CLIError {
                    return error.exitCode == 1 ? error.description : "exit \(error.exitCode): \(error)"
                } catch { return "\(error)" }
            }
            // (`ishtar staking status`: the chain still counts stake 1 — nobody reported the
            // unbonding — while bitcoind holds it in the unbonding output, locked for a while.)
            let seen = try await StakingActions.status(node: api, rpc: rpc, stakingTxid: honest.txid.displayHex)
            #expect(seen.status == "ACTIVE" && seen.heldIn == .unbonding && seen.confirmations == 1
                        && seen.withdrawableInBlocks == Int(parameters.unbondingTime) - 1, "\(seen)")
            step("staking status of stake 1 after its unbonding was mined:\n\(seen)")
            let slashedSeen = try await StakingActions.status(node: api, rpc: rpc, stakingTxid: stakes[0].txid.displayHex)
            #expect(slashedSeen.finalityProviderStatus == "SLASHED" && slashedSeen.heldIn == .slashingChange, "\(slashedSeen)")
            let early = await refusal(honest)
            #expect(early.contains("has 1 confirmations") && early.contains("after \(parameters.unbondingTime - 1) more blocks"), "\(early)")
            let stranger = await refusal(honest, key: Schnorr.PrivateKey())
            #expect(stranger.contains("not this delegation's staker key"), "\(stranger)")
            let onMainnet = "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0"
            do {
                _ = try await StakingActions.withdraw(node: api, rpc: rpc, staker: staker, stakingTxid: honest.txid.displayHex,
                                                      to: onMainnet, feeRate: 2, broadcast: false)
                Issue.record("a mainnet address was accepted on regtest")
            } catch let error as CLIError {
                #expect(error.exitCode == 2 && error.description.contains("network"), "\(error)")
            }
            _ = try await rpc.generateToAddress(Int(parameters.unbondingTime) - 1, address: TestAddress.opTrue)
            let ready = try await StakingActions.status(node: api, rpc: rpc, stakingTxid: honest.txid.displayHex)
            #expect(ready.withdrawableInBlocks == 0 && ready.confirmations == Int(parameters.unbondingTime), "\(ready)")
            var withdrawals: [(ScenarioStake, WithdrawalSource, StakingActions.WithdrawOutput)] = []
            for (stake, source) in [(stakes[0], WithdrawalSource.slashingChange), (honest, .unbonding),
                                    (stakes[2], .unbondingSlashingChange)] {
                let out = try await withdraw(stake)
                #expect(out.spends == source && out.broadcast && out.feeSat > 0 && out.amountSat == out.inputSat - out.feeSat, "\(out)")
                withdrawals.append((stake, source, out))
            }
            let honestUnbonding = try IshtarBitcoin.Transaction(serialized: try Data(hex: unbondedHonest.transaction))
            #expect(withdrawals[1].2.outpoint == "\(honestUnbonding.txid.displayHex):0")
            _ = try await rpc.generateToAddress(1, address: TestAddress.opTrue)
            let destination = try SegwitAddress(TestAddress.p2tr).scriptPubKey.bytes.hexString
            for (stake, source, out) in withdrawals {
                let paid = try await rpc.getTxOut(txid: out.txid, vout: 0)
                #expect(paid?.confirmations == 1 && paid?.value == out.amountSat && paid?.scriptPubKey.hex == destination,
                        "stake \(stake.txid.displayHex): withdrawal of its \(source) output not mined")
            }
            let twice = await refusal(honest)
            #expect(twice.hasPrefix("nothing to withdraw"), "\(twice)")
            let gone = try await StakingActions.status(node: api, rpc: rpc, stakingTxid: honest.txid.displayHex)
            #expect(gone.heldIn == nil && gone.withdrawableInBlocks == nil && gone.description.contains("nothing left"), "\(gone)")
            step("the staker withdrew the slashing change of stakes 0 and 2 and stake 1's unbonding output after \(parameters.unbondingTime) blocks: "
                + withdrawals.map(\.2.txid).joined(separator: ", "))
        }
    }
}

/// Stand-in for the finality-provider daemons: after each commit, every active provider
/// (per the chain's active set of that height) votes with its committed randomness. Votes
/// are pipelined (no waiting for inclusion) so they land within a block or two, well inside
/// the liveness window.
struct ScenarioVoter {
    let chain: ScenarioChain
    let batches: [PubRandBatch]
    let accounts: [ScenarioAccount]
    /// Next height to vote for.
    var next: UInt64
    /// Providers that no longer vote.
    var excluded: Set<Int> = []
    /// Heights each provider voted for.
    var voted: [[UInt64]]
    /// Submissions or executions that failed.
    var failures: [String] = []
    private var pending: [(provider: Int, hash: Data)] = []

    init(chain: ScenarioChain, batches: [PubRandBatch], accounts: [ScenarioAccount], next: UInt64) {
        self.chain = chain
        self.batches = batches
        self.accounts = accounts
        self.next = next
        voted = batches.map { _ in [] }
    }

    /// Votes on every new committed height until `done` holds or `seconds` pass.
    mutating func vote(until seconds: Double, _ done: () -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if done() { return true }
            step()
            await pause(0.1)
        }
        return done()
    }

    private mutating func step() {
        checkPending()
        let tip = chain.height
        guard tip >= next else { return }
        var votes: [Int: [Message]] = [:]
        for h in next...tip {
            // Not found: no provider was active at h (nothing to vote on).
            guard let set = chain.json("/modules/finality/active-set/\(chain.chainID)/\(h)"),
                  let members = set["providers"] as? [[String: Any]], let hash = try? chain.blockHash(h) else { continue }
            let active = Set(members.compactMap { $0["fp_btc_pk"] as? String })
            for (i, batch) in batches.enumerated() where !excluded.contains(i) {
                guard active.contains(batch.fpKey.publicKey.rawRepresentation.hexString), batch.covers(h) else { continue }
                do {
                    votes[i, default: []].append(try batch.voteMessage(height: h, blockHash: hash))
                    voted[i].append(h)
                } catch {
                    failures.append("vote \(i)@\(h): \(error)")
                }
            }
        }
        next = tip + 1
        for (i, messages) in votes.sorted(by: { $0.key < $1.key }) {
            for chunk in stride(from: 0, to: messages.count, by: 50) {
                let part = Array(messages[chunk..<min(chunk + 50, messages.count)])
                do {
                    pending.append((i, try chain.submit(accounts[i], part)))
                } catch {
                    // Likely a nonce gap after an evicted transaction: resync and retry once.
                    accounts[i].nonce = chain.chainNonce(accounts[i])
                    do { pending.append((i, try chain.submit(accounts[i], part))) } catch { failures.append("submit \(i): \(error)") }
                }
            }
        }
    }

    /// Waits until every submitted vote transaction is committed (or refused, which is
    /// recorded in `failures`); false if some are still outstanding after `seconds`.
    mutating func settle(within seconds: Double) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            checkPending()
            if pending.isEmpty { return true }
            guard Date() < deadline else { return false }
            await pause(0.1)
        }
    }

    /// Records failed vote transactions (a vote the chain refused is a scenario failure).
    private mutating func checkPending() {
        var still: [(provider: Int, hash: Data)] = []
        for p in pending {
            guard let tx = chain.json("/txs/" + p.hash.hexString), let result = tx["result"] as? [String: Any] else {
                still.append(p)
                continue
            }
            if (result["code"] as? NSNumber)?.intValue != 0 {
                failures.append("votes of \(p.provider): \(result["rule"] ?? "") \(result["log"] ?? "")")
                accounts[p.provider].nonce = chain.chainNonce(accounts[p.provider])
            }
        }
        pending = still
    }
}
