import Foundation
import IshtarBitcoin
import IshtarChain
import IshtarCrypto
import Testing

@Suite("FinalityModule")
struct FinalityModuleTests {
    let a = stkKey(0x51)
    let b = stkKey(0x52)
    let c = stkKey(0x53)
    let d = stkKey(0x54)

    /// Four providers with power 200k, 200k, 100k, 100k (total 600k, two thirds = 400k),
    /// each with randomness committed from the returned first height, which is the last
    /// committed block. With `finalizeFirst`, all four vote for it (it finalizes) and one
    /// more block is committed.
    func fourProviders(_ h: FinalityHarness, count: UInt64 = 20, finalizeFirst: Bool = false) throws -> (batches: [PubRandBatch], first: UInt64) {
        try h.register([a, b, c, d])
        try h.delegate([(a, 200_000), (b, 200_000), (c, 100_000), (d, 100_000)])
        let batches = try h.commit([a, b, c, d], count: count)
        let first = batches[0].startHeight
        while h.height < first { try h.produce([]) }
        if finalizeFirst {
            try h.ok(h.relayer, try h.votes(batches, at: first))
            #expect(try h.isFinalized(first))
        }
        return (batches, first)
    }

    // MARK: - Commitments

    @Test func commitmentRules() throws {
        let h = try FinalityHarness()
        try h.register([a])
        let start = h.height + 2
        let relayer = h.relayer
        // Count below the minimum (20).
        try h.expectRejected(relayer, [try PubRandBatch(fpKey: a, chainID: testChainID, startHeight: start, count: 19).commitMessage()],
                             rule: "too-few-public-randomness")
        // Start beyond current height + 50.
        try h.expectRejected(relayer, [try PubRandBatch(fpKey: a, chainID: testChainID, startHeight: h.height + 1 + 51,
                                                        count: 20).commitMessage()],
                             rule: "start-height-too-far-ahead")
        // Signature by another key.
        var forged = try CommitPubRand(decoding: try PubRandBatch(fpKey: a, chainID: testChainID, startHeight: start, count: 20)
            .commitMessage().payload)
        forged.signature = try b.signature(for: CommitPubRand.signedDigest(startHeight: start, count: 20, root: forged.root),
                                           auxiliaryRandomness: Data(count: 32)).rawRepresentation
        try h.expectRejected(relayer, [forged.message], rule: "invalid-commitment-signature")
        // A different root than the one signed.
        var swapped = try CommitPubRand(decoding: try PubRandBatch(fpKey: a, chainID: testChainID, startHeight: start, count: 20)
            .commitMessage().payload)
        swapped.root = Data(repeating: 7, count: 32)
        try h.expectRejected(relayer, [swapped.message], rule: "invalid-commitment-signature")
        // Unregistered provider; provider of another chain.
        try h.expectRejected(relayer, [try PubRandBatch(fpKey: b, chainID: testChainID, startHeight: start, count: 20).commitMessage()],
                             rule: "unknown-finality-provider")
        try h.expectRejected(relayer, [try PubRandBatch(fpKey: a, chainID: "consumer-1", startHeight: start, count: 20).commitMessage()],
                             rule: "wrong-chain")
        // Accepted, from any account.
        let batch = try PubRandBatch(fpKey: a, chainID: testChainID, startHeight: start + 10, count: 20)
        try h.ok(StakingActor("anyone"), [try batch.commitMessage()])
        // Overlapping (and earlier) commitments are refused; the next range is accepted.
        try h.expectRejected(relayer, [try PubRandBatch(fpKey: a, chainID: testChainID, startHeight: start + 29, count: 20).commitMessage()],
                             rule: "overlapping-commitment")
        try h.expectRejected(relayer, [try PubRandBatch(fpKey: a, chainID: testChainID, startHeight: start, count: 20).commitMessage()],
                             rule: "overlapping-commitment")
        try h.ok(relayer, [try PubRandBatch(fpKey: a, chainID: testChainID, startHeight: start + 30, count: 25).commitMessage()])
        let list = try #require(try h.query("commitments/\(a.hexKey)/\(testChainID)")["commitments"] as? [[String: Any]])
        #expect(list.map { $0["start_height"] as? String } == [String(start + 10), String(start + 30)])
        #expect(list.map { $0["count"] as? String } == ["20", "25"])
        #expect(list.first?["root"] as? String == batch.root.hexString)
        // Malformed payloads are refused statelessly.
        let bad = try h.app.checkTx(try relayer.tx([Message(type: CommitPubRand.type, payload: Data([1, 2, 3]))]))
        #expect(bad.result.rule == "malformed-message")
        #expect(try h.app.recomputeAppHash() == h.app.lastAppHash)
    }

    // MARK: - Votes

    @Test func voteAdmissionRules() throws {
        // A long liveness window: nobody votes during the setup, and nobody may be jailed for it.
        var params = FinalityHarness.defaultParams
        params.signedBlocksWindow = 1000
        let h = try FinalityHarness(params: params)
        let e = stkKey(0x55) // registered, committed, no delegation: never active
        try h.register([e])
        let (batches, first) = try fourProviders(h)
        let eBatch = try h.commit([e], start: first + 2)[0]
        try h.produce([])
        let target = first + 2
        while h.height < target { try h.produce([]) }
        let relayer = h.relayer
        let hash = try h.hash(target)
        #expect(try h.activeSet(target).sorted() == [a, b, c, d].map(\.hexKey).sorted())

        // Not active (no power), unregistered.
        try h.expectRejected(relayer, [try eBatch.voteMessage(height: target, blockHash: hash)], rule: "finality-provider-not-active")
        let stranger = try PubRandBatch(fpKey: stkKey(0x5f), chainID: testChainID, startHeight: first, count: 20)
        try h.expectRejected(relayer, [try stranger.voteMessage(height: target, blockHash: hash)], rule: "unknown-finality-provider")
        // Heights not committed yet (the current one and beyond).
        try h.expectRejected(relayer, [try batches[0].voteMessage(height: h.height + 1, blockHash: hash)], rule: "block-not-committed")
        // Another hash than the committed block, with no earlier vote: refused.
        try h.expectRejected(relayer, [try batches[0].voteMessage(height: target, blockHash: Data(repeating: 9, count: 32))],
                             rule: "block-hash-mismatch")
        // Randomness outside the committed range: a batch the chain never saw, for a height before the commitment.
        let early = try PubRandBatch(fpKey: a, chainID: testChainID, startHeight: 1, count: 20)
        try h.expectRejected(relayer, [try early.voteMessage(height: first - 1, blockHash: try h.hash(first - 1))],
                             rule: "no-randomness-committed")
        // Bad inclusion proofs: a tampered aunt, a wrong index, randomness of another height.
        var tampered = try batches[0].vote(height: target, blockHash: hash)
        tampered.proof.aunts[0] = Data(repeating: 0xee, count: 32)
        try h.expectRejected(relayer, [tampered.message], rule: "invalid-inclusion-proof")
        var shifted = try batches[0].vote(height: target, blockHash: hash)
        shifted.proof.index += 1
        try h.expectRejected(relayer, [shifted.message], rule: "invalid-inclusion-proof")
        // (Signed with that height's secret randomness, so the EOTS signature itself is valid.)
        var otherRandomness = try batches[0].vote(height: target, blockHash: hash)
        otherRandomness.publicRandomness = batches[0].publicRandomness[0]
        otherRandomness.signature = try EOTS.sign(
            privateKey: a, secretRandomness: EOTS.randomness(secretKey: a, chainID: Data(testChainID.utf8), height: batches[0].startHeight).secret,
            message: try EOTS.finalityVoteMessage(height: target, blockHash: hash)).rawRepresentation
        try h.expectRejected(relayer, [otherRandomness.message], rule: "invalid-inclusion-proof")
        // Bad EOTS signature (s of another height's vote): refused statelessly, like a bad
        // transaction signature — at admission, and a block carrying it is invalid.
        var badSig = try batches[0].vote(height: target, blockHash: hash)
        badSig.signature = try batches[0].vote(height: target - 1, blockHash: try h.hash(target - 1)).signature
        let forged = try relayer.tx([badSig.message])
        #expect(try h.app.checkTx(forged).result.rule == "invalid-finality-signature")
        let carrying = try h.net.nextBlock(h.app, [forged])
        guard case .reject(let error) = try h.app.processProposal(carrying) else {
            Issue.record("accepted a block carrying a forged finality signature")
            return
        }
        guard case .invalidTransaction(index: 0, let violation) = error else {
            Issue.record("rejected for another reason: \(error)")
            return
        }
        #expect(violation.rule == "invalid-finality-signature", "\(violation)")
        // The mempool admits a vote for the last committed block (whose hash record the next
        // block's begin hook writes) and refuses one for the block not yet committed.
        let latest = h.height
        let admitted = try h.app.checkTx(try relayer.tx([try batches[1].voteMessage(height: latest, blockHash: try h.hash(latest))]))
        #expect(admitted.result.isOK, "\(admitted.result.log)")
        let premature = try h.app.checkTx(try StakingActor("another-relayer").tx([try batches[1].voteMessage(height: latest + 1, blockHash: try h.hash(latest))]))
        #expect(premature.result.rule == "block-not-committed")
        // Accepted; then a duplicate for the same hash is refused (not evidence).
        try h.ok(relayer, [try batches[0].voteMessage(height: target, blockHash: hash)])
        try h.expectRejected(relayer, [try batches[0].voteMessage(height: target, blockHash: hash)], rule: "duplicate-vote")
        // Jailed and slashed providers are refused at once.
        try h.ok(relayer, [Message(type: "stktest/Jail", payload: c.publicKey.rawRepresentation)])
        try h.expectRejected(relayer, [try batches[2].voteMessage(height: target, blockHash: hash)], rule: "finality-provider-jailed")
        try h.ok(relayer, [Message(type: "stktest/Slash", payload: d.publicKey.rawRepresentation)])
        try h.expectRejected(relayer, [try batches[3].voteMessage(height: target, blockHash: hash)], rule: "finality-provider-slashed")
        let votes = try #require(try h.query("votes/\(testChainID)/\(target)")["votes"] as? [[String: Any]])
        #expect(votes.map { $0["fp_btc_pk"] as? String } == [a.hexKey])
        #expect(votes.first?["block_hash"] as? String == hash.hexString)
        #expect(try h.app.recomputeAppHash() == h.app.lastAppHash)
    }

    /// A transaction whose stateless rules passed before its block — admitted by `checkTx`,
    /// pre-checked by `checkStateless` (a mempool replacement) or seen in a proposal — keeps
    /// its votes' decoded, verified forms for its block (`Module.validatedForm`). Executed
    /// from them, the block's results, events and state are those of a twin that never saw
    /// the transactions before their block — including a second copy of a vote, which the
    /// check state admits (it records nothing) and the block refuses as a duplicate.
    @Test func votesKeptFromAdmissionExecuteLikeFreshOnes() throws {
        let h = try FinalityHarness()
        let (batches, first) = try fourProviders(h)
        try h.produce([])
        let (fresh, preChecked, proposed) = (try h.replay(), try h.replay(), try h.replay())
        let votes = try h.relayer.tx(try h.votes([batches[0], batches[1]], at: first))
        let copy = try StakingActor("second-relayer").tx(try h.votes([batches[0]], at: first))
        #expect(try h.app.checkTx(votes).result.isOK)
        #expect(try h.app.checkTx(copy).result.isOK)
        #expect(try preChecked.checkStateless(votes).result.isOK)
        #expect(try preChecked.checkStateless(copy).result.isOK)
        let kept = try h.produce([votes, copy])
        #expect(kept.txResults[0].isOK, "\(kept.txResults[0].log)")
        #expect(kept.txResults[1].rule == "duplicate-vote", "\(kept.txResults[1].log)")
        let twins = [
            ("never seen", try h.net.produce(fresh, [votes, copy], requireValidProposal: false)),
            ("pre-checked", try h.net.produce(preChecked, [votes, copy], requireValidProposal: false)),
            ("proposed", try h.net.produce(proposed, [votes, copy])),
        ]
        for (name, twin) in twins {
            #expect(kept.txResults == twin.txResults, "\(name)")
            #expect(kept.events == twin.events, "\(name)")
            #expect(kept.appHash == twin.appHash, "\(name)")
        }
        #expect(try h.app.recomputeAppHash() == h.app.lastAppHash)
    }

    /// A transaction whose stateless rules passed but which then fell out of the memory of
    /// kept transactions (two generations of 4,096) has its votes' forms made again when it
    /// is next checked; its block executes like that of a twin that never saw it.
    @Test func aTransactionThatFellOutOfMemoryExecutesLikeAFreshOne() throws {
        let h = try FinalityHarness()
        let (batches, first) = try fourProviders(h)
        try h.produce([])
        let fresh = try h.replay()
        let votes = try h.relayer.tx(try h.votes([batches[0], batches[1]], at: first))
        #expect(try h.app.checkStateless(votes).result.isOK)
        let filler = StakingActor("filler")
        var admitted = 0
        for n in 0..<8_200 {
            filler.nonce = UInt64(n)
            if try h.app.checkStateless(try filler.tx([SetLabel(label: "f").message])).result.isOK { admitted += 1 }
        }
        #expect(admitted == 8_200)
        #expect(try h.app.checkTx(votes).result.isOK)
        let kept = try h.produce([votes])
        let twin = try h.net.produce(fresh, [votes], requireValidProposal: false)
        #expect(kept.txResults[0].isOK, "\(kept.txResults[0].log)")
        #expect(kept.txResults == twin.txResults)
        #expect(kept.events == twin.events)
        #expect(kept.appHash == twin.appHash)
    }

    /// Delivery reuses what a vote's admission found only while nothing that admission read
    /// has changed. A vote admitted before a block that jails its provider, or in the same
    /// block after a transaction that jails or slashes it, is refused at delivery; a vote
    /// whose provider nothing touched counts. Results, events and app hash equal a twin's
    /// that never admitted the votes.
    @Test func admittedVotesAreJudgedAgainWhenWhatTheyReadChanged() throws {
        let h = try FinalityHarness()
        let (batches, first) = try fourProviders(h)
        try h.produce([])
        // Admitted, then a committed block jails its provider.
        let cVote = try StakingActor("relayer-c").tx(try h.votes([batches[2]], at: first))
        #expect(try h.app.checkTx(cVote).result.isOK)
        try h.ok(StakingActor("jailer"), [Message(type: "stktest/Jail", payload: c.publicKey.rawRepresentation)])
        let fresh = try h.replay()
        // Admitted against the same committed state as their block; that block jails a and
        // slashes b before their votes run, and leaves d alone.
        let aVote = try StakingActor("relayer-a").tx(try h.votes([batches[0]], at: first))
        let bVote = try StakingActor("relayer-b").tx(try h.votes([batches[1]], at: first))
        let dVote = try StakingActor("relayer-d").tx(try h.votes([batches[3]], at: first))
        for tx in [aVote, bVote, dVote] { #expect(try h.app.checkTx(tx).result.isOK) }
        let hooks = StakingActor("hooks")
        let jailA = try hooks.tx([Message(type: "stktest/Jail", payload: a.publicKey.rawRepresentation)])
        hooks.nonce += 1
        let slashB = try hooks.tx([Message(type: "stktest/Slash", payload: b.publicKey.rawRepresentation)])
        let block = [jailA, slashB, aVote, bVote, cVote, dVote]
        let kept = try h.produce(block)
        let results = kept.txResults
        #expect(results.count == 6)
        #expect(results[0].isOK && results[1].isOK, "\(results[0].log) \(results[1].log)")
        #expect(results[2].rule == "finality-provider-jailed", "\(results[2].log)")
        #expect(results[3].rule == "finality-provider-slashed", "\(results[3].log)")
        #expect(results[4].rule == "finality-provider-jailed", "\(results[4].log)")
        #expect(results[5].isOK, "\(results[5].log)")
        let twin = try h.net.produce(fresh, block, requireValidProposal: false)
        #expect(kept.txResults == twin.txResults)
        #expect(kept.events == twin.events)
        #expect(kept.appHash == twin.appHash)
        let tallies = try #require(try h.query("block/\(testChainID)/\(first)")["tallies"] as? [[String: Any]])
        #expect(tallies.first?["voted_power"] as? String == "100000", "d's power alone")
        #expect(try h.app.recomputeAppHash() == h.app.lastAppHash)
    }

    // MARK: - Tally

    @Test func finalizationAtTheThresholdAndInHeightOrder() throws {
        let h = try FinalityHarness()
        let (batches, first) = try fourProviders(h)
        try h.produce([])
        let (h1, h2) = (first, first + 1)
        #expect(try h.query("block/\(testChainID)/\(h1)")["active_power"] as? String == "600000")
        // Heights before any provider was active have no active power: skipped, never finalized.
        #expect(try h.query("block/\(testChainID)/\(h1 - 1)")["active_power"] as? String == "0")
        // h2: a + b + c = 500k > 400k, but h1 is not finalized, so h2 waits.
        try h.ok(h.relayer, try h.votes([batches[0], batches[1], batches[2]], at: h2))
        #expect(try !h.isFinalized(h2))
        // h1: a + b = 400k: 400k × 3 = 600k × 2 exactly, not more → not finalized.
        try h.ok(h.relayer, try h.votes([batches[0], batches[1]], at: h1))
        #expect(try !h.isFinalized(h1))
        let tallies = try #require(try h.query("block/\(testChainID)/\(h1)")["tallies"] as? [[String: Any]])
        #expect(tallies.first?["voted_power"] as? String == "400000")
        #expect(try h.lastFinalized() == nil)
        #expect(ControlPlane.progress(of: h.app).btcFinalizedHeight == nil, "nothing finalized yet")
        #expect(try h.query("last-finalized/\(testChainID)")["next_height"] as? String == String(h1))
        // d (100k) tips h1 over; h1 and h2 finalize together, in order.
        let block = try h.ok(StakingActor("other-relayer"), try h.votes([batches[3]], at: h1))
        let finalized = block.events.filter { $0.type == "finality.block_finalized" }
        #expect(finalized.map { $0.attributes.first { $0.key == "height" }?.value } == [String(h1), String(h2)])
        #expect(finalized.first?.attributes.first { $0.key == "block_hash" }?.value == (try h.hash(h1)).hexString)
        #expect(try h.isFinalized(h1) && h.isFinalized(h2))
        #expect(try h.lastFinalized() == String(h2))
        // What /status and /metrics report: the same height, and the light client's tip as
        // its own query answers (this chain has no checkpoints module: no epoch).
        let progress = ControlPlane.progress(of: h.app)
        #expect(progress.btcFinalizedHeight == h2)
        let tip = try h.app.query(path: "/modules/btclightclient/tip")
        let tipHeight = (try JSONSerialization.jsonObject(with: tip.value) as? [String: Any])?["height"] as? String
        #expect(progress.btcLightClientHeight.map(String.init) == tipHeight && tipHeight != nil)
        #expect(progress.lastFinalizedEpoch == nil)
        #expect(try h.query("block/\(testChainID)/\(h2)")["block_hash"] as? String == (try h.hash(h2)).hexString)
        // Late votes for a finalized block are still accepted.
        try h.ok(h.relayer, try h.votes([batches[3]], at: h2))
        #expect(try h.lastFinalized() == String(h2))
        // h2's list was built by three votes of one transaction (inserted into one buffer in
        // place) and one of a later block: all four, in key order, each with its own vote.
        let listed = try #require(try h.query("votes/\(testChainID)/\(h2)")["votes"] as? [[String: Any]])
        let keys = listed.compactMap { $0["fp_btc_pk"] as? String }
        #expect(keys.count == 4 && keys == keys.sorted())
        #expect(Set(keys) == Set(batches.map { $0.fpKey.publicKey.rawRepresentation.hexString }))
        #expect(try h.query("last-finalized/\(testChainID)")["next_height"] as? String == String(h2 + 1))
        #expect(try h.app.recomputeAppHash() == h.app.lastAppHash)
    }

    // MARK: - Equivocation

    @Test func equivocationRevealsTheKeyAndSlashesAtOnce() throws {
        let h = try FinalityHarness()
        let (batches, first) = try fourProviders(h, finalizeFirst: true)
        let target = first + 1
        let canonical = try h.hash(target)
        let fork = Data(repeating: 0xab, count: 32)
        // In one block: a, b, c vote (500k of 600k), and a also votes for a fork → evidence;
        // a loses its power at once, votes and denominator alike: b + c hold 300k of the 400k
        // left, more than two thirds, so the height still finalizes (a double vote cannot
        // stall finality).
        let block = try h.ok(h.relayer, try h.votes([batches[0], batches[1], batches[2]], at: target)
            + [try batches[0].voteMessage(height: target, blockHash: fork)])
        let event = try #require(block.allEvents.first { $0.type == "finality.equivocation" })
        func attr(_ k: String) -> String? { event.attributes.first { $0.key == k }?.value }
        #expect(attr("fp_btc_pk") == a.hexKey)
        #expect(attr("height") == String(target))
        #expect(attr("block_hash_1") == canonical.hexString)
        #expect(attr("block_hash_2") == fork.hexString)
        #expect(block.allEvents.contains { $0.type == "staking.fp_slashed" })
        #expect(try h.isFinalized(target))
        #expect(try h.query("block/\(testChainID)/\(target)")["slashed_power"] as? String == "200000")
        #expect(try h.stakingStatus(a) == "SLASHED")

        // Anyone can recover the provider's real secret key from the event's two signatures.
        let s1 = try EOTS.Signature(rawRepresentation: try Data(hex: try #require(attr("signature_1"))))
        let s2 = try EOTS.Signature(rawRepresentation: try Data(hex: try #require(attr("signature_2"))))
        let extracted = try EOTS.extract(
            publicKey: a.publicKey,
            publicRandomness: try EOTS.PublicRandomness(rawRepresentation: try Data(hex: try #require(attr("public_randomness")))),
            message1: try EOTS.finalityVoteMessage(height: target, blockHash: canonical), signature1: s1,
            message2: try EOTS.finalityVoteMessage(height: target, blockHash: fork), signature2: s2)
        let expected = a.point.hasEvenY ? a.scalar : a.scalar.negated
        #expect(extracted.scalar == expected)
        // The stored evidence says the same.
        let stored = try #require(try h.query("evidence/\(a.hexKey)")["evidence"] as? [[String: Any]])
        #expect(stored.count == 1)
        #expect(stored.first?["signature_2"] as? String == attr("signature_2"))
        #expect((try h.query("evidence")["evidence"] as? [Any])?.count == 1)

        // a is out of the next height's active set and may not vote any more.
        let next = h.height + 1
        try h.produce([])
        #expect(try !h.activeSet(next).contains(a.hexKey))
        #expect(try h.query("block/\(testChainID)/\(next)")["active_power"] as? String == "400000")
        try h.expectRejected(h.relayer, [try batches[0].voteMessage(height: next, blockHash: try h.hash(next))],
                             rule: "finality-provider-slashed")
        // b + c + d (400k of 400k, a's power gone from the heights before too) finalize every
        // height up to `next`.
        for height in (target + 1)...next { try h.ok(h.relayer, try h.votes([batches[1], batches[2], batches[3]], at: height)) }
        #expect(try h.isFinalized(next))
        #expect(try h.app.recomputeAppHash() == h.app.lastAppHash)
    }

    @Test func slashedPowerLeavesPendingHeightsButTheQuorumStillCounts() throws {
        let h = try FinalityHarness()
        let (batches, first) = try fourProviders(h, finalizeFirst: true)
        let target = first + 1
        // b (200k) votes, then double-votes: slashed. Of the 400k left, c + d (200k) are not
        // more than two thirds; a joins and 400k of 400k finalize.
        try h.ok(h.relayer, try h.votes([batches[1]], at: target))
        try h.ok(h.relayer, [try batches[1].voteMessage(height: target, blockHash: Data(repeating: 7, count: 32))])
        try h.ok(h.relayer, try h.votes([batches[2], batches[3]], at: target))
        #expect(try !h.isFinalized(target))
        try h.ok(h.relayer, try h.votes([batches[0]], at: target))
        #expect(try h.isFinalized(target))
        // The same blocks replayed give the same state.
        #expect(try h.replay().lastAppHash == h.app.lastAppHash)
    }

    @Test func equivocationEvidenceExtractsTheKeyThroughTheStoredRecord() throws {
        let h = try FinalityHarness()
        let (batches, first) = try fourProviders(h, finalizeFirst: true)
        let target = first + 1
        try h.ok(h.relayer, try h.votes([batches[1]], at: target))
        try h.ok(h.relayer, [try batches[1].voteMessage(height: target, blockHash: Data(repeating: 1, count: 32))])
        // A second conflicting vote from a slashed provider is refused.
        try h.expectRejected(h.relayer, [try batches[1].voteMessage(height: target, blockHash: Data(repeating: 2, count: 32))],
                             rule: "finality-provider-slashed")
        let raw = try h.query("evidence/\(b.hexKey)")["evidence"] as? [[String: Any]] ?? []
        let e = try #require(raw.first)
        func bytes(_ k: String) throws -> Data { try Data(hex: try #require(e[k] as? String)) }
        let evidence = EquivocationEvidence(
            fpKey: try bytes("fp_btc_pk"), chainID: testChainID, height: target, publicRandomness: try bytes("public_randomness"),
            blockHash1: try bytes("block_hash_1"), signature1: try bytes("signature_1"), blockHash2: try bytes("block_hash_2"),
            signature2: try bytes("signature_2"), recordedAt: 0)
        let key = try evidence.extractSecretKey()
        #expect(key.scalar == (b.point.hasEvenY ? b.scalar : b.scalar.negated))
        #expect(key.publicKey.rawRepresentation == b.publicKey.rawRepresentation)
    }

    // MARK: - Power changes

    @Test func lostDelegationPowerStopsCountingAtTheNextHeight() throws {
        let h = try FinalityHarness()
        try h.register([a, b, c, d])
        let made = try h.delegate([(a, 200_000), (b, 200_000), (c, 100_000), (d, 100_000)])
        let batches = try h.commit([a, b, c, d], count: 40)
        while h.height < batches[0].startHeight { try h.produce([]) }
        let unbonded = try h.unbond(made[1]) // b unbonds in block u
        let u = unbonded.height
        try h.produce([])
        // At u, b still counts; from u + 1 it is gone from the active set and its votes are refused.
        #expect(try h.activeSet(u).contains(b.hexKey))
        #expect(try !h.activeSet(u + 1).contains(b.hexKey))
        #expect(try h.query("block/\(testChainID)/\(u)")["active_power"] as? String == "600000")
        #expect(try h.query("block/\(testChainID)/\(u + 1)")["active_power"] as? String == "400000")
        try h.expectRejected(h.relayer, [try batches[1].voteMessage(height: u + 1, blockHash: try h.hash(u + 1))],
                             rule: "finality-provider-not-active")
        // Everyone votes every height up to u (b's vote at u counts), then a + c (300k of
        // 400k) at u + 1: every height finalizes.
        var votes: [Message] = []
        for height in batches[0].startHeight...u { votes += try h.votes(batches, at: height) }
        votes += try h.votes([batches[0], batches[2]], at: u + 1)
        try h.ok(h.relayer, votes)
        let tallies = try #require(try h.query("block/\(testChainID)/\(u)")["tallies"] as? [[String: Any]])
        #expect(tallies.first?["voted_power"] as? String == "600000")
        #expect(try h.lastFinalized() == String(u + 1))
    }

    @Test func activeSetFollowsCommitmentRanges() throws {
        var params = FinalityHarness.defaultParams
        params.signedBlocksWindow = 1000 // nobody votes here; nobody may be jailed for it
        let h = try FinalityHarness(params: params)
        try h.register([a, b])
        try h.delegate([(a, 200_000), (b, 100_000)])
        // a: [s, s + 19], [s + 25, s + 44] and [s + 45, s + 64], all committed now; b: [s, s + 39].
        let s = h.height + 2
        let a1 = try PubRandBatch(fpKey: a, chainID: testChainID, startHeight: s, count: 20)
        let a2 = try PubRandBatch(fpKey: a, chainID: testChainID, startHeight: s + 25, count: 20)
        let a3 = try PubRandBatch(fpKey: a, chainID: testChainID, startHeight: s + 45, count: 20)
        let b1 = try PubRandBatch(fpKey: b, chainID: testChainID, startHeight: s, count: 40)
        try h.ok(h.relayer, [try a1.commitMessage(), try a2.commitMessage(), try a3.commitMessage(), try b1.commitMessage()])
        while h.height < s + 26 { try h.produce([]) }
        // No message changed anything in between: the set still follows a's ranges.
        #expect(try h.activeSet(s - 1).isEmpty)
        #expect(try h.activeSet(s + 19) == [a.hexKey, b.hexKey])
        for height in (s + 20)...(s + 24) { #expect(try h.activeSet(height) == [b.hexKey]) }
        #expect(try h.activeSet(s + 25) == [a.hexKey, b.hexKey])
        #expect(try h.query("block/\(testChainID)/\(s + 22)")["active_power"] as? String == "100000")
        // a's vote in its gap is refused (no randomness), and earlier commitments still serve
        // late votes (found by binary search behind the latest one).
        try h.expectRejected(h.relayer, [try PubRandBatch(fpKey: a, chainID: testChainID, startHeight: s + 20, count: 5)
                                .voteMessage(height: s + 21, blockHash: try h.hash(s + 21))], rule: "no-randomness-committed")
        try h.ok(h.relayer, [try a1.voteMessage(height: s + 3, blockHash: try h.hash(s + 3))])
    }

    // MARK: - Liveness

    @Test func livenessJailsAndUnjails() throws {
        let h = try FinalityHarness()
        try h.register([a, d])
        try h.delegate([(a, 300_000), (d, 100_000)])
        let batches = try h.commit([a, d], count: 40)
        let first = batches[0].startHeight
        while h.height < first { try h.produce([]) }
        // a votes every block; d never does. Window 10, min signed 0.5: the 6th miss jails d.
        var jailedAt: UInt64?
        while jailedAt == nil, h.height < first + 12 {
            let block = try h.ok(h.relayer, try h.votes([batches[0]], at: h.height))
            if block.events.contains(where: { $0.type == "finality.fp_jailed" }) { jailedAt = block.height }
        }
        let jailBlock = try #require(jailedAt)
        // Height `first` is judged at first + 1 (timeout 1); the 6th miss is height first + 5.
        #expect(jailBlock == first + 6)
        #expect(try h.stakingStatus(d) == "JAILED")
        #expect(try h.stakingStatus(a) == "ACTIVE")
        let info = try h.query("signing-info/\(d.hexKey)")
        #expect(info["jail_count"] as? String == "1")
        #expect(try h.query("signing-info/\(a.hexKey)")["jail_count"] as? String == "0")
        try h.produce([])
        #expect(try !h.activeSet(h.height).contains(d.hexKey))
        // Only the owner, and only after 5 s of block time (blocks are 1 s apart).
        let unjail = UnjailFinalityProvider(fpKey: d.publicKey.rawRepresentation).message
        try h.expectRejected(h.relayer, [unjail], rule: "not-finality-provider-owner")
        try h.expectRejected(h.owner, [unjail], rule: "jail-not-expired")
        try h.expectRejected(h.owner, [UnjailFinalityProvider(fpKey: a.publicKey.rawRepresentation).message],
                             rule: "finality-provider-not-jailed")
        while h.height < jailBlock + 4 { try h.ok(h.relayer, try h.votes([batches[0]], at: h.height)) }
        let unjailed = try h.ok(h.owner, [unjail])
        #expect(unjailed.allEvents.contains { $0.type == "staking.fp_unjailed" })
        #expect(try h.stakingStatus(d) != "JAILED")
        try h.produce([])
        try h.produce([])
        #expect(try h.activeSet(h.height).contains(d.hexKey))
        #expect(try h.app.recomputeAppHash() == h.app.lastAppHash)
    }

    // MARK: - Consumer chains

    @Test func consumerChainVotesAreTalliedSeparately() throws {
        var params = FinalityHarness.defaultParams
        params.allowUnlistedConsumerChains = true
        let h = try FinalityHarness(params: params)
        let x = stkKey(0x61)
        let y = stkKey(0x62)
        try h.register([a])
        try h.register([x, y], chainID: "consumer-1")
        try h.delegate([(a, 100_000), (x, 300_000), (y, 100_000)])
        // The consumer's heights are its own; its first commitment starts its tally there.
        let cx = try h.commit([x, y], count: 20, chainID: "consumer-1", start: 5000)
        _ = try h.commit([a])
        let consumerHash = Data(repeating: 0xc1, count: 32)
        // A control-plane provider cannot vote on the consumer chain, and vice versa.
        try h.expectRejected(h.relayer, [try PubRandBatch(fpKey: a, chainID: "consumer-1", startHeight: 5000, count: 20)
                                .voteMessage(height: 5000, blockHash: consumerHash)], rule: "wrong-chain")
        // x alone (300k of 400k) finalizes consumer height 5000 with whatever hash it signed.
        try h.ok(h.relayer, [try cx[0].voteMessage(height: 5000, blockHash: consumerHash)])
        #expect(try h.isFinalized(5000, chainID: "consumer-1"))
        #expect(try h.lastFinalized(chainID: "consumer-1") == "5000")
        #expect(try h.query("block/consumer-1/5000")["block_hash"] as? String == consumerHash.hexString)
        #expect(try h.activeSet(5000, chainID: "consumer-1") == [x.hexKey, y.hexKey])
        // Split votes at 5001: y's hash has 100k, x's another 300k: x's hash wins.
        let other = Data(repeating: 0xc2, count: 32)
        try h.ok(h.relayer, [try cx[1].voteMessage(height: 5001, blockHash: other)])
        #expect(try !h.isFinalized(5001, chainID: "consumer-1"))
        try h.ok(h.relayer, [try cx[0].voteMessage(height: 5001, blockHash: consumerHash)])
        #expect(try h.query("block/consumer-1/5001")["block_hash"] as? String == consumerHash.hexString)
        // The control plane's tally is untouched.
        #expect(try h.lastFinalized() == nil)
        // Equivocation on a consumer chain is evidence too.
        let evidence = try h.ok(h.relayer, [try cx[1].voteMessage(height: 5001, blockHash: consumerHash)])
        #expect(evidence.allEvents.contains { $0.type == "finality.equivocation" })
        #expect(try h.stakingStatus(y) == "SLASHED")
    }

    /// A consumer chain listed at genesis starts its tally where genesis says: a first
    /// commitment far ahead cannot move the start (an unlisted chain starts at its first
    /// commitment, as `consumerChainVotesAreTalliedSeparately` shows), and every commitment
    /// must start within the offset of that cursor.
    @Test func aConsumerChainListedAtGenesisStartsWhereGenesisSays() throws {
        var params = FinalityHarness.defaultParams
        params.consumerChains = [ConsumerChainStart(chainID: "consumer-3", startHeight: 100)]
        params.allowUnlistedConsumerChains = true  // listed chains keep their start either way
        let h = try FinalityHarness(params: params)
        let x = stkKey(0x66), y = stkKey(0x67)
        try h.register([x, y], chainID: "consumer-3")
        try h.delegate([(x, 300_000), (y, 100_000)])
        #expect(try h.query("last-finalized/consumer-3")["next_height"] as? String == "100")
        let listed = try #require(h.query("params")["consumer_chains"] as? [[String: Any]])
        #expect(listed.count == 1 && listed[0]["chain_id"] as? String == "consumer-3" && listed[0]["start_height"] as? Int == 100)
        // The offset is 50: nothing may start beyond 150, not even the first commitment.
        try h.expectRejected(h.relayer, [try PubRandBatch(fpKey: y, chainID: "consumer-3", startHeight: 151, count: 20).commitMessage()],
                             rule: "start-height-too-far-ahead")
        let cy = try h.commit([y], count: 20, chainID: "consumer-3", start: 150)
        #expect(try h.query("last-finalized/consumer-3")["next_height"] as? String == "100")
        // y's lone vote at 150 finalizes nothing: heights 100… come first, in order.
        let consumerHash = Data(repeating: 0xc3, count: 32)
        try h.ok(h.relayer, [try cy[0].voteMessage(height: 150, blockHash: consumerHash)])
        #expect(try !h.isFinalized(150, chainID: "consumer-3"))
        // x (300k of 400k) committed from the start finalizes 100.
        let cx = try h.commit([x], count: 20, chainID: "consumer-3", start: 100)
        try h.ok(h.relayer, [try cx[0].voteMessage(height: 100, blockHash: consumerHash)])
        #expect(try h.lastFinalized(chainID: "consumer-3") == "100")
        #expect(try h.app.recomputeAppHash() == h.app.lastAppHash)
    }

    /// By default (`allow_unlisted_consumer_chains: false`) genesis's list is the registry of
    /// consumer chains: a provider cannot register for another consumer chain id (so nobody
    /// can commit for one and open its tally at a height of their choosing); listed chains
    /// and the control plane work.
    @Test func unlistedConsumerChainsAreRefusedByDefault() throws {
        var params = FinalityHarness.defaultParams
        params.consumerChains = [ConsumerChainStart(chainID: "consumer-5", startHeight: 10)]
        #expect(params.allowUnlistedConsumerChains == nil)
        let h = try FinalityHarness(params: params)
        let x = stkKey(0x6a), y = stkKey(0x6b)
        #expect(try h.query("params")["allow_unlisted_consumer_chains"] as? Bool == false)
        try h.expectRejected(h.owner, [try h.registration(y, chainID: "consumer-6")], rule: "unlisted-consumer-chain", codespace: "staking")
        try h.expectRejected(h.relayer, [try PubRandBatch(fpKey: y, chainID: "consumer-6", startHeight: 10, count: 20).commitMessage()],
                             rule: "unknown-finality-provider")
        #expect(throws: (any Error).self) { try h.query("last-finalized/consumer-6") }
        try h.register([x], chainID: "consumer-5")
        try h.register([a])
        _ = try h.commit([x], count: 20, chainID: "consumer-5", start: 10)
        _ = try h.commit([a])
        #expect(try h.app.recomputeAppHash() == h.app.lastAppHash)
        // Open only when genesis says so (as consumerChainVotesAreTalliedSeparately does).
        #expect(!FinalityParams().allowUnlistedConsumerChains)
    }

    /// A consumer chain's heights are judged for liveness `finality_sig_timeout` (1)
    /// control-plane blocks after its tally decided them: a vote in that time is no miss, a
    /// provider that stops voting is jailed at its sixth miss (window 10, min signed 5), leaves
    /// the sets fixed afterwards, and unjails like a control-plane provider.
    @Test func consumerChainProvidersAreJailedForMissedVotes() throws {
        var params = FinalityHarness.defaultParams
        params.consumerChains = [ConsumerChainStart(chainID: "consumer-4", startHeight: 200)]
        let h = try FinalityHarness(params: params)
        let x = stkKey(0x68), y = stkKey(0x69)
        try h.register([x, y], chainID: "consumer-4")
        try h.delegate([(x, 300_000), (y, 100_000)])
        let batches = try h.commit([x, y], count: 40, chainID: "consumer-4", start: 200)
        let hash = Data(repeating: 0xc4, count: 32)
        func vote(_ i: Int, _ height: UInt64) throws -> Message { try batches[i].voteMessage(height: height, blockHash: hash) }
        func jailings(_ r: FinalizeResult) -> [Event] { r.events.filter { $0.type == FinalityModule.jailedEvent } }

        // x alone finalizes 200; y's vote one block later, before 200 is judged, is no miss.
        try h.ok(h.relayer, [try vote(0, 200)])
        #expect(try h.isFinalized(200, chainID: "consumer-4"))
        try h.ok(h.relayer, [try vote(1, 200), try vote(0, 201)])
        #expect(try h.query("signing-info/\(y.hexKey)")["missed_in_window"] as? String == "0")
        // From 201 on y is silent; each height is judged one block after x's vote decides it.
        var jailed: [Event] = []
        for height in UInt64(202)...207 {
            let r = try h.ok(h.relayer, [try vote(0, height)])
            jailed += jailings(r)
            #expect(jailed.isEmpty || height == 207, "jailed before its sixth miss, at \(height)")
            if height == 204 {
                // Judged so far: 201, 202, 203 (204 was decided in this block).
                let info = try h.query("signing-info/\(y.hexKey)")
                #expect(info["missed_in_window"] as? String == "3" && info["last_missed_height"] as? String == "203", "\(info)")
                #expect(info["chain_id"] as? String == "consumer-4")
            }
        }
        let judgeBlock = try h.produce([])
        jailed += jailings(judgeBlock)
        // Misses 201…206 are six: the sixth (206) was judged with the vote for 207.
        #expect(try h.query("signing-info/\(x.hexKey)")["missed_in_window"] as? String == "0")
        let event = try #require(jailed.first)
        #expect(jailed.count == 1)
        func attr(_ k: String) -> String? { event.attributes.first { $0.key == k }?.value }
        #expect(attr("fp_btc_pk") == y.hexKey && attr("chain_id") == "consumer-4" && attr("height") == "206" && attr("missed") == "6")
        #expect(try h.stakingStatus(y) == "JAILED")
        #expect(try h.stakingStatus(x) != "JAILED")
        #expect(try h.query("signing-info/\(y.hexKey)")["jail_count"] as? String == "1")
        #expect(try h.query("signing-info/\(x.hexKey)")["jail_count"] as? String == "0")
        // A jailed provider's vote is refused; the next set is fixed without it.
        try h.expectRejected(h.relayer, [try vote(1, 208)], rule: "finality-provider-jailed")
        try h.ok(h.relayer, [try vote(0, 208)])
        #expect(try h.activeSet(208, chainID: "consumer-4") == [x.hexKey])
        #expect(try h.isFinalized(208, chainID: "consumer-4"))
        // After the jail time (5 s of 1 s blocks) its owner unjails it and it counts again.
        let unjail = UnjailFinalityProvider(fpKey: y.publicKey.rawRepresentation).message
        try h.expectRejected(h.owner, [unjail], rule: "jail-not-expired")
        while h.height < judgeBlock.height + 5 { try h.produce([]) }
        try h.ok(h.owner, [unjail])
        try h.ok(h.relayer, [try vote(0, 209), try vote(1, 209)])
        #expect(try h.activeSet(209, chainID: "consumer-4") == [x.hexKey, y.hexKey])
        #expect(try h.app.recomputeAppHash() == h.app.lastAppHash)
        #expect(try h.replay().lastAppHash == h.app.lastAppHash)
    }

    @Test func consumerChainListsAreValidatedAtGenesis() throws {
        func rejected(_ chains: [ConsumerChainStart], _ reason: String) {
            var params = FinalityHarness.defaultParams
            params.consumerChains = chains
            do {
                _ = try FinalityHarness(params: params)
                Issue.record("accepted: \(reason)")
            } catch {
                #expect("\(error)".contains("consumer_chains"), "\(reason): \(error)")
            }
        }
        rejected([ConsumerChainStart(chainID: "a", startHeight: 1), ConsumerChainStart(chainID: "a", startHeight: 2)], "listed twice")
        rejected([ConsumerChainStart(chainID: "bad id", startHeight: 1)], "invalid id")
        rejected([ConsumerChainStart(chainID: testChainID, startHeight: 1)], "the control plane's own id")
        rejected([ConsumerChainStart(chainID: "c", startHeight: .max)], "start at 2^64 − 1")
        rejected((0...FinalityGenesis.maxConsumerChains).map { ConsumerChainStart(chainID: "c\($0)", startHeight: 1) }, "too many")
        // Unknown fields inside an entry are refused like unknown top-level fields.
        var raw = try #require(try JSONSerialization.jsonObject(with: FinalityHarness.defaultParams.jsonData()) as? [String: Any])
        raw["consumer_chains"] = [["chain_id": "d", "start_height": 1, "start": 5]]
        let net = try TestNet(moduleParams: [FinalityModule.moduleName: try JSONSerialization.data(withJSONObject: raw)])
        do {
            _ = try makeApp(net, modules: [FinalityModule()])
            Issue.record("a consumer_chains entry with an unknown field was accepted")
        } catch {
            #expect("\(error)".contains("unknown field consumer_chains[].start"), "\(error)")
        }
    }

    /// A consumer chain's set is fixed at the first vote for a height, maybe far ahead of
    /// the consumer. A small provider that commits randomness further ahead than the others
    /// and votes there first must not become that height's only member (its lone vote would
    /// finalize any hash, and the honest votes would be refused as not active).
    @Test func aVoteFarAheadOnAConsumerChainDoesNotMakeItsSignerTheWholeSet() throws {
        var params = FinalityHarness.defaultParams
        params.allowUnlistedConsumerChains = true
        let h = try FinalityHarness(params: params)
        let x = stkKey(0x64), f = stkKey(0x65)
        try h.register([x, f], chainID: "consumer-2")
        try h.delegate([(x, 300_000), (f, 10_000)])
        let honest = try h.commit([x], count: 20, chainID: "consumer-2", start: 5000)[0]
        let ahead = try h.commit([f], count: 20, chainID: "consumer-2", start: 5020)[0]
        let fake = Data(repeating: 0xfa, count: 32), real = Data(repeating: 0x4e, count: 32)
        try h.ok(h.relayer, [try ahead.voteMessage(height: 5030, blockHash: fake)])
        #expect(try h.activeSet(5030, chainID: "consumer-2") == [x.hexKey, f.hexKey], "members by stake, not by who committed that far")
        #expect(try !h.isFinalized(5030, chainID: "consumer-2"))
        // x votes its way up, commits its next batch, and its vote at 5030 counts.
        try h.ok(h.relayer, try (5000...5019).map { try honest.voteMessage(height: $0, blockHash: real) })
        let next = try h.commit([x], count: 20, chainID: "consumer-2", start: 5020)[0]
        try h.ok(h.relayer, try (5020...5030).map { try next.voteMessage(height: $0, blockHash: real) })
        #expect(try h.lastFinalized(chainID: "consumer-2") == "5030")
        #expect(try h.query("block/consumer-2/5030")["block_hash"] as? String == real.hexString)
        #expect(try h.replay().lastAppHash == h.app.lastAppHash)
    }

    @Test func commitmentsStopBelowTheLastHeight() throws {
        // Unlisted, so its first commitment may start its tally near 2^64.
        var params = FinalityHarness.defaultParams
        params.allowUnlistedConsumerChains = true
        let h = try FinalityHarness(params: params)
        let x = stkKey(0x63)
        try h.register([x], chainID: "consumer-top")
        try h.delegate([(x, 100_000)])
        // Reaching 2^64 − 1 is refused: the tally cursor moves to the height after a vote's.
        try h.expectRejected(h.relayer, [try PubRandBatch(fpKey: x, chainID: "consumer-top", startHeight: .max - 19, count: 20)
                                .commitMessage()], rule: "commitment-range-overflow")
        // Ending one below is fine, and votes up to that last height finalize every height
        // (tallying the last one once trapped: the cursor went to 2^64 in the end-block hook,
        // halting the chain).
        let batch = try h.commit([x], count: 20, chainID: "consumer-top", start: .max - 20)[0]
        let hash = Data(repeating: 0xee, count: 32)
        let votes = try (UInt64.max - 20...UInt64.max - 1).map { try batch.voteMessage(height: $0, blockHash: hash) }
        try h.ok(h.relayer, Array(votes[0..<10]))
        try h.ok(h.relayer, Array(votes[10...]))
        #expect(try h.isFinalized(.max - 1, chainID: "consumer-top"))
        #expect(try h.lastFinalized(chainID: "consumer-top") == String(UInt64.max - 1))
        try h.produce([])
        #expect(try h.replay().lastAppHash == h.app.lastAppHash)
    }

    @Test func theTopNIsTakenAfterTheRandomnessRule() throws {
        // N = 2. a (200k) commits no randomness: PROTOCOL §6 removes it first, then takes the
        // top two of the rest, b and c — not b alone.
        let h = try FinalityHarness(params: FinalityGenesis(signedBlocksWindow: 10, minSignedPerWindow: "0.5", jailDurationMs: 5000,
                                                            minPubRand: 20, maxActiveFinalityProviders: 2,
                                                            maxPubRandStartOffset: 50, finalitySigTimeout: 1),
                                    maxActiveInStaking: 2)
        try h.register([a, b, c])
        try h.delegate([(a, 300_000), (b, 200_000), (c, 100_000)])
        let batches = try h.commit([b, c])
        let first = batches[0].startHeight
        while h.height < first { try h.produce([]) }
        #expect(try Set(h.activeSet(first)) == [b.hexKey, c.hexKey])
        // Staking's status still names the top two by power.
        #expect(try h.stakingStatus(a) == "ACTIVE")
        #expect(try h.stakingStatus(c) == "INACTIVE" || h.stakingStatus(c) == "REGISTERED")
        // c's vote counts: b + c are 300k of 300k.
        try h.ok(h.relayer, try h.votes(batches, at: first))
        #expect(try h.isFinalized(first))
    }

    // MARK: - Determinism, params

    @Test func twoAppsAgree() throws {
        let h = try FinalityHarness()
        let (batches, first) = try fourProviders(h, finalizeFirst: true)
        try h.ok(h.relayer, try h.votes(batches, at: first + 1))
        try h.ok(h.relayer, [try batches[3].voteMessage(height: first + 1, blockHash: Data(repeating: 3, count: 32))])
        for _ in 0..<3 { try h.produce([]) }
        let twin = try h.replay()
        #expect(twin.lastAppHash == h.app.lastAppHash)
        #expect(try h.app.recomputeAppHash() == h.app.lastAppHash)
        #expect(try h.isFinalized(first + 1))
    }

    @Test func genesisParameters() throws {
        let h = try FinalityHarness(params: FinalityGenesis())
        let p = try h.query("params")
        #expect(p["signed_blocks_window"] as? Int == 100)
        #expect(p["min_signed_per_window"] as? String == "0.5")
        #expect(p["jail_duration_ms"] as? Int == 86_400_000)
        #expect(p["min_pub_rand"] as? Int == 100)
        #expect(p["max_pub_rand_start_offset"] as? Int == 10_000)
        #expect(p["finality_sig_timeout"] as? Int == 3)
        #expect(p["max_active_finality_providers"] as? Int == 100)
        var bad = try TestNet(moduleParams: [FinalityModule.moduleName: Data(#"{"signed_blocks_window": 0}"#.utf8)])
        #expect(throws: (any Error).self) { try makeApp(bad, modules: [FinalityModule()]) }
        bad = try TestNet(moduleParams: [FinalityModule.moduleName: Data(#"{"finality_sig_timeout": 0}"#.utf8)])
        #expect(throws: (any Error).self) { try makeApp(bad, modules: [FinalityModule()]) }
        // Upper bounds: heights plus the window or the timeout would otherwise overflow.
        bad = try TestNet(moduleParams: [FinalityModule.moduleName: Data(#"{"signed_blocks_window": 18446744073709551615}"#.utf8)])
        #expect(throws: (any Error).self) { try makeApp(bad, modules: [FinalityModule()]) }
        bad = try TestNet(moduleParams: [FinalityModule.moduleName: Data(#"{"finality_sig_timeout": 100001}"#.utf8)])
        #expect(throws: (any Error).self) { try makeApp(bad, modules: [FinalityModule()]) }
        // One N for the chain: finality's must equal staking's.
        #expect(throws: (any Error).self) {
            try FinalityHarness(params: FinalityGenesis(maxActiveFinalityProviders: 5), maxActiveInStaking: 100)
        }
        let largest = try TestNet(moduleParams: [FinalityModule.moduleName: Data(#"{"signed_blocks_window": 100000, "finality_sig_timeout": 100000}"#.utf8)])
        _ = try makeApp(largest, modules: [FinalityModule()])
        bad = try TestNet(moduleParams: [FinalityModule.moduleName: Data(#"{"min_signed_per_window": "1.5"}"#.utf8)])
        #expect(throws: (any Error).self) { try makeApp(bad, modules: [FinalityModule()]) }
        bad = try TestNet(moduleParams: [FinalityModule.moduleName: Data(#"{"bogus": 1}"#.utf8)])
        #expect(throws: (any Error).self) { try makeApp(bad, modules: [FinalityModule()]) }
        var params = FinalityParams()
        params.signedBlocksWindow = 10
        #expect(params.maxMissedBlocks == 5)
        params.minSignedPerWindow = try #require(Commission(decimal: "0.25"))
        #expect(params.maxMissedBlocks == 7) // round(2.5) = 3 signed
    }
}
