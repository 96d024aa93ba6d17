import Foundation
import IshtarBitcoin
import IshtarChain
import IshtarCrypto
import IshtarStore
import Testing

@Suite struct CheckpointsTests {
    // MARK: - Epochs

    @Test func epochBoundaryRecordsTheCheckpoint() throws {
        let h = try CkptHarness(epochLength: 5)
        #expect(try h.query("current-epoch")["epoch"] as? String == "1")
        for height in 1...4 {
            let r = try h.produce()
            #expect(r.height == UInt64(height))
            #expect(h.events(r, CheckpointsModule.epochEndedEvent).isEmpty)
        }
        #expect(try h.app.query(path: "/modules/checkpoints/epoch/1").isOK == false)
        let end = try h.produce()
        #expect(end.height == 5)
        let ended = h.events(end, CheckpointsModule.epochEndedEvent)
        #expect(ended.count == 1)
        #expect(ended.first?["epoch"] == "1")
        #expect(ended.first?["last_block_hash"] == end.blockHash.hexString)

        let json = try h.query("epoch/1")
        #expect(json["status"] as? String == "ACCUMULATING")
        #expect(json["last_block_hash"] as? String == end.blockHash.hexString)
        #expect(json["last_block_height"] as? String == "5")
        #expect(json["first_height"] as? String == "1")
        #expect((json["validators"] as? [Any])?.count == 3)
        #expect(json["total_power"] as? String == "33")
        #expect(json["qc"] is NSNull)
        #expect(try h.query("current-epoch")["epoch"] as? String == "2")
        #expect(try h.query("current-epoch")["first_height"] as? String == "6")

        // The next epoch ends exactly N blocks later.
        for _ in 0..<4 { #expect(h.events(try h.produce(), CheckpointsModule.epochEndedEvent).isEmpty) }
        let second = try h.produce()
        #expect(h.events(second, CheckpointsModule.epochEndedEvent).first?["epoch"] == "2")
        #expect(try h.query("epoch/2")["last_block_hash"] as? String == second.blockHash.hexString)
    }

    @Test func epochMapping() {
        let p = CheckpointsParams(epochLength: 10, initialHeight: 7)
        #expect(p.epoch(ofHeight: 6) == 0)
        #expect(p.epoch(ofHeight: 7) == 1)
        #expect(p.epoch(ofHeight: 16) == 1)
        #expect(p.epoch(ofHeight: 17) == 2)
        #expect(p.isLastBlockOfEpoch(16))
        #expect(!p.isLastBlockOfEpoch(17))
        #expect(p.heights(ofEpoch: 2) == 17...26)
    }

    // MARK: - Signatures

    @Test func sealsAboveTwoThirdsNotAtTwoThirds() throws {
        let h = try CkptHarness()
        try h.finishEpoch(1)
        // Validator 0 (power 10), then validator 2 (12): 22 of 33 is exactly 2/3, not more.
        var r = try h.expectOK(try h.signatures(1, by: [0]))
        #expect(r.events.contains { $0.type == CheckpointsModule.signatureAddedEvent && $0["signed_power"] == "10" })
        r = try h.expectOK(try h.signatures(1, by: [2]))
        #expect(!r.events.contains { $0.type == CheckpointsModule.sealedEvent })
        #expect(try h.status(1) == "ACCUMULATING")
        #expect(try h.query("epoch/1")["signed_power"] as? String == "22")
        // Validator 1 (11) brings 33 of 33.
        r = try h.expectOK(try h.signatures(1, by: [1]))
        let sealed = try #require(r.events.first { $0.type == CheckpointsModule.sealedEvent })
        #expect(sealed["epoch"] == "1")
        #expect(sealed["signed_power"] == "33")
        let json = try h.query("epoch/1")
        #expect(json["status"] as? String == "SEALED")
        let qc = try #require(json["qc"] as? [String: Any])
        #expect((qc["signatures"] as? [String])?.count == 3)
        // Bits 0…2 set: all three validators, LSB first, 13 bytes.
        #expect(qc["bitmap"] as? String == "07" + String(repeating: "00", count: 12))
        #expect(sealed["qc_hash"] == qc["hash"] as? String)
        let history = try #require(json["status_history"] as? [[String: Any]])
        #expect(history.map { $0["status"] as? String } == ["ACCUMULATING", "SEALED"])
        // The QC is frozen: no more signatures.
        try h.expectRejected(try h.signatures(1, by: [0]), rule: "already-sealed")
    }

    @Test func sealsWithTwoSignersAboveTwoThirds() throws {
        let h = try CkptHarness()
        try h.finishEpoch(1)
        // 11 + 12 = 23 of 33: more than 2/3 with two signers, in one transaction.
        let r = try h.expectOK(try h.signatures(1, by: [1, 2]))
        #expect(r.events.contains { $0.type == CheckpointsModule.sealedEvent })
        let json = try h.query("epoch/1")
        #expect(json["status"] as? String == "SEALED")
        #expect((json["signers"] as? [String])?.count == 2)
        // The bitmap names exactly the signers' positions in address order.
        let addresses = try #require(h.app.validators).validators.map(\.address)
        let signedIndexes = [1, 2].map { i in addresses.firstIndex(of: h.validator(i).publicKey.rawRepresentation) ?? -1 }
        let expected = try BitcoinCheckpoint.bitmap(signers: signedIndexes)
        let qc = try #require(json["qc"] as? [String: Any])
        #expect(qc["bitmap"] as? String == expected.hexString)
    }

    @Test func signatureRejections() throws {
        let h = try CkptHarness()
        try h.finishEpoch(1)
        let cp = try #require(try h.checkpoint(1))
        // Unknown epoch: epoch 2 has not ended.
        try h.expectRejected([try CheckpointsModule.signatureMessage(epoch: 2, lastBlockHash: cp.lastBlockHash,
                                                                     validatorKey: h.validator(0))], rule: "unknown-epoch")
        // Not a validator of the snapshot.
        try h.expectRejected([try CheckpointsModule.signatureMessage(epoch: 1, lastBlockHash: cp.lastBlockHash,
                                                                     validatorKey: testKey("outsider"))], rule: "not-a-validator")
        // Bad signature: signed over another block hash.
        try h.expectRejected([try CheckpointsModule.signatureMessage(epoch: 1, lastBlockHash: Data(repeating: 7, count: 32),
                                                                     validatorKey: h.validator(0))], rule: "invalid-signature")
        // A validator's address with someone else's signature (a forging proposer's attempt).
        let forged = try testKey("forger").signature(
            for: CheckpointsModule.checkpointSigningMessage(epoch: 1, lastBlockHash: cp.lastBlockHash), auxiliaryRandomness: Data(count: 32))
        try h.expectRejected([AddCheckpointSignature(epoch: 1, validator: h.validator(1).publicKey.rawRepresentation,
                                                     signature: forged.rawRepresentation).message], rule: "invalid-signature")
        // Duplicate: in a later transaction, and twice within one.
        try h.expectOK(try h.signatures(1, by: [0]))
        try h.expectRejected(try h.signatures(1, by: [0]), rule: "duplicate-signature")
        try h.expectRejected(try h.signatures(1, by: [2, 2]), rule: "duplicate-signature")
        // Malformed payload (stateless).
        try h.expectRejected([Message(type: AddCheckpointSignature.type, payload: Data([1, 2, 3]))], rule: "malformed-message")
        #expect(try h.query("epoch/1")["signed_power"] as? String == "10")
        #expect(try h.status(1) == "ACCUMULATING")
    }

    // MARK: - Bitcoin

    @Test func submissionConfirmsThenFinalizes() throws {
        let h = try CkptHarness(k: 2, w: 5)
        let (block, tx1, tx2) = try h.submitEpoch1()
        #expect(try h.status(1) == "SUBMITTED")
        #expect(try h.probe("state/1")["active_marker"] as? Bool == true)
        let changes = h.events(try #require(h.lastResult), CheckpointsModule.statusChangedEvent)
        #expect(changes.map { [$0["from"], $0["to"]] } == [["SEALED", "SUBMITTED"]])
        let subs = try #require(try h.query("submissions/1")["submissions"] as? [[String: Any]])
        #expect(subs.count == 1)
        #expect(subs.first?["txid1"] as? String == tx1.txid.displayHex)
        #expect(subs.first?["txid2"] as? String == tx2.txid.displayHex)
        #expect(subs.first?["block1"] as? String == Data(block.reversed()).hexString)
        #expect(subs.first?["depth"] as? String == "0")
        #expect(subs.first?["reporter"] as? String == h.relayer.publicKey.rawRepresentation.hexString)

        // Depth 1: still SUBMITTED; depth 2 = k: CONFIRMED.
        try h.sendHeaders(try h.btc.mineEmpty(1))
        #expect(try h.status(1) == "SUBMITTED")
        try h.sendHeaders(try h.btc.mineEmpty(1))
        #expect(try h.status(1) == "CONFIRMED")
        #expect(try h.query("last-finalized")["epoch"] as? String == "0")
        #expect(ControlPlane.progress(of: h.app).lastFinalizedEpoch == 0)
        // Depth 5 = w: FINALIZED.
        try h.sendHeaders(try h.btc.mineEmpty(2))
        #expect(try h.status(1) == "CONFIRMED")
        try h.sendHeaders(try h.btc.mineEmpty(1))
        #expect(try h.status(1) == "FINALIZED")
        #expect(try h.query("last-finalized")["epoch"] as? String == "1")
        #expect(ControlPlane.progress(of: h.app).lastFinalizedEpoch == 1, "what /status and /metrics report")
        #expect(try h.probe("state/1")["active_marker"] as? Bool == false, "nothing left to watch: the marker goes")
        let history = try #require(try h.query("epoch/1")["status_history"] as? [[String: Any]])
        #expect(history.map { $0["status"] as? String } == ["ACCUMULATING", "SEALED", "SUBMITTED", "CONFIRMED", "FINALIZED"])
        // Terminal: no further submission.
        let (t1, t2) = try ckptTransactions(part1: .opReturn(try h.bitcoinCheckpoint(1).part1),
                                            part2: .opReturn(try h.bitcoinCheckpoint(1).part2), funding: 0xa2)
        let later = try h.btc.mine([t1, t2])
        try h.sendHeaders([later])
        try h.expectRejected([try h.proofMessage(t1, later, t2, later)], rule: "checkpoint-finalized")
        // And no reorg moves it back: a heavier fork from below the submission.
        let fork = try h.btc.mineEmpty(12, on: try #require(h.btc.blocks[block]).header.previousBlockHash.rawValue, salt: 9)
        try h.sendHeaders(fork)
        #expect(try h.status(1) == "FINALIZED")
    }

    @Test func deepSubmissionStepsThroughEveryStatus() throws {
        let h = try CkptHarness(k: 2, w: 5)
        try h.sealEpoch(1)
        let cp = try h.bitcoinCheckpoint(1)
        let (tx1, tx2) = try ckptTransactions(part1: .opReturn(cp.part1), part2: .opReturn(cp.part2), funding: 0xb1)
        // tx 1 and tx 2 in different blocks, both already 3 deep when reported.
        let b1 = try h.btc.mine([tx1])
        let b2 = try h.btc.mine([tx2])
        let rest = try h.btc.mineEmpty(3)
        try h.sendHeaders([b1, b2] + rest)
        try h.expectOK([try h.proofMessage(tx1, b1, tx2, b2)])
        let changes = h.events(try #require(h.lastResult), CheckpointsModule.statusChangedEvent)
        #expect(changes.map { $0["to"] ?? "" } == ["SUBMITTED", "CONFIRMED"])
        let subs = try #require(try h.query("submissions/1")["submissions"] as? [[String: Any]])
        #expect(subs.first?["depth"] as? String == "3") // min of 4 and 3
    }

    /// An epoch keeps at most `maxSubmissionsPerEpoch` submissions (every end-block re-reads
    /// them); once a reorg takes the kept ones off Bitcoin's main chain, they make room.
    @Test func submissionsPerEpochAreBoundedAndOrphansMakeRoom() throws {
        let h = try CkptHarness(k: 2, w: 50)
        try h.sealEpoch(1)
        let cp = try h.bitcoinCheckpoint(1)
        let limit = CheckpointsModule.maxSubmissionsPerEpoch
        let pairs = try (0...limit).map {
            try ckptTransactions(part1: .opReturn(cp.part1), part2: .opReturn(cp.part2), funding: UInt8($0))
        }
        let block = try h.btc.mine(pairs.flatMap { [$0.0, $0.1] })
        try h.sendHeaders([block])
        for (tx1, tx2) in pairs.prefix(limit) { try h.expectOK([try h.proofMessage(tx1, block, tx2, block)]) }
        let last = try #require(pairs.last)
        try h.expectRejected([try h.proofMessage(last.0, block, last.1, block)], rule: "too-many-submissions")
        #expect(try #require(try h.query("submissions/1")["submissions"] as? [Any]).count == limit)

        // A heavier fork without that block: the kept submissions no longer count, and the
        // pair re-mined on the new main chain is accepted in place of all of them.
        let parent = try #require(h.btc.blocks[block]).header.previousBlockHash.rawValue
        let fork = try h.btc.mineEmpty(2, on: parent, salt: 9)
        let again = try h.btc.mine([last.0, last.1], on: fork[fork.count - 1], salt: 9)
        try h.sendHeaders(fork + [again])
        #expect(try h.status(1) == "SEALED")
        let r = try h.expectOK([try h.proofMessage(last.0, again, last.1, again)])
        let pruned = r.events.filter { $0.type == CheckpointsModule.submissionsPrunedEvent }
        #expect(pruned.map { $0["count"] } == [String(limit)])
        #expect(try #require(try h.query("submissions/1")["submissions"] as? [Any]).count == 1)
        #expect(try h.status(1) == "SUBMITTED")
    }

    @Test func reorgRemovingTheSubmissionMovesTheCheckpointBack() throws {
        let h = try CkptHarness(k: 2, w: 5)
        let (block, _, _) = try h.submitEpoch1() // BTC height 1
        let confirming = try h.btc.mineEmpty(2) // heights 2, 3
        try h.sendHeaders(confirming)
        #expect(try h.status(1) == "CONFIRMED")
        // A heavier fork from the submission block's parent (heights 1…4), without the checkpoint.
        let parent = try #require(h.btc.blocks[block]).header.previousBlockHash.rawValue
        let fork = try h.btc.mineEmpty(4, on: parent, salt: 7)
        try h.sendHeaders(fork)
        #expect(try h.status(1) == "SEALED")
        let back = h.events(try #require(h.lastResult), CheckpointsModule.statusChangedEvent)
        #expect(back.map { [$0["from"], $0["to"]] } == [["CONFIRMED", "SEALED"]])
        let subs = try #require(try h.query("submissions/1")["submissions"] as? [[String: Any]])
        #expect(subs.first?["on_main_chain"] as? Bool == false)
        #expect(subs.first?["depth"] is NSNull)
        let history = try #require(try h.query("epoch/1")["status_history"] as? [[String: Any]])
        #expect(history.map { $0["status"] as? String } == ["ACCUMULATING", "SEALED", "SUBMITTED", "CONFIRMED", "SEALED"])

        // The same pair re-mined on the new main chain (height 5), as Bitcoin nodes do after a
        // reorg, is a new, valid submission.
        let cp = try h.bitcoinCheckpoint(1)
        let (tx1, tx2) = try ckptTransactions(part1: .opReturn(cp.part1), part2: .opReturn(cp.part2), funding: 0xa1)
        let again = try h.btc.mine([tx1, tx2], on: fork[fork.count - 1], salt: 7)
        try h.sendHeaders([again])
        try h.expectOK([try h.proofMessage(tx1, again, tx2, again)])
        #expect(try h.status(1) == "SUBMITTED")
        #expect(try #require(try h.query("submissions/1")["submissions"] as? [Any]).count == 2)

        // The old branch wins back (heights 4…6 on it): the first submission counts again, now
        // 5 deep (= w), while the second one left the main chain.
        let revive = try h.btc.mineEmpty(3, on: confirming[confirming.count - 1])
        try h.sendHeaders(revive)
        #expect(try h.status(1) == "FINALIZED")
        #expect(try h.query("last-finalized")["epoch"] as? String == "1")
    }

    @Test func proofRejections() throws {
        let h = try CkptHarness()
        try h.finishEpoch(1)
        try h.finishEpoch(2)
        try h.expectOK(try h.signatures(1, by: [0, 1, 2]))
        let good = try h.bitcoinCheckpoint(1)
        let submitter = CheckpointsModule.submitterID(account: h.relayer.publicKey.rawRepresentation)
        func variant(epoch: UInt64 = 1, lastBlockHash: Data? = nil, bitmap: Data? = nil, qcHash: Data? = nil,
                     submitter sub: Data? = nil, tag: Data? = nil) throws -> BitcoinCheckpoint {
            try BitcoinCheckpoint(tag: tag ?? good.tag, epoch: epoch, lastBlockHash: lastBlockHash ?? good.lastBlockHash,
                                  bitmap: bitmap ?? good.bitmap, submitterID: sub ?? submitter,
                                  quorumCertificateHash: qcHash ?? good.quorumCertificateHash)
        }
        let epoch2 = try #require(try h.checkpoint(2))
        let other = try variant(submitter: Data(repeating: 0xee, count: 20))
        let badPayload = Data(good.part1.dropLast())
        var pairs: [(name: String, rule: String, tx1: IshtarBitcoin.Transaction, tx2: IshtarBitcoin.Transaction)] = []
        func add(_ name: String, _ rule: String, _ p1: Script, _ p2: Script, spend: OutPoint? = nil, extra: Script? = nil) throws {
            let (a, b) = try ckptTransactions(part1: p1, part2: p2, funding: UInt8(pairs.count + 1), spend: spend, extraOutput1: extra)
            pairs.append((name, rule, a, b))
        }
        try add("malformed part 1", "malformed-op-return", .opReturn(badPayload), .opReturn(good.part2))
        try add("two OP_RETURNs", "not-one-op-return", .opReturn(good.part1), .opReturn(good.part2), extra: .opReturn(Data([1])))
        let wrongEpoch = try variant(epoch: 9)
        try add("wrong epoch", "unknown-epoch", .opReturn(wrongEpoch.part1), .opReturn(wrongEpoch.part2))
        let unsealed = try variant(epoch: 2, lastBlockHash: epoch2.lastBlockHash)
        try add("unsealed epoch", "checkpoint-not-sealed", .opReturn(unsealed.part1), .opReturn(unsealed.part2))
        let wrongHash = try variant(lastBlockHash: epoch2.lastBlockHash)
        try add("other epoch's hash", "last-block-hash-mismatch", .opReturn(wrongHash.part1), .opReturn(wrongHash.part2))
        let wrongBitmap = try variant(bitmap: try BitcoinCheckpoint.bitmap(signers: [0, 1]))
        try add("mismatched bitmap", "bitmap-mismatch", .opReturn(wrongBitmap.part1), .opReturn(wrongBitmap.part2))
        let wrongQC = try variant(qcHash: Data(repeating: 0x42, count: 32))
        try add("part-2 QC hash", "qc-hash-mismatch", .opReturn(wrongQC.part1), .opReturn(wrongQC.part2))
        try add("part 2 of another part 1", "parts-do-not-match", .opReturn(good.part1), .opReturn(other.part2))
        let wrongTag = try variant(tag: Data("XXXX".utf8))
        try add("wrong tag", "wrong-tag", .opReturn(wrongTag.part1), .opReturn(wrongTag.part2))
        try add("tx 2 spends elsewhere", "tx2-does-not-spend-tx1", .opReturn(good.part1), .opReturn(good.part2),
                spend: OutPoint(txid: try Hash256(rawValue: Data(repeating: 0x77, count: 32)), index: 1))
        let block = try h.btc.mine(pairs.flatMap { [$0.tx1, $0.tx2] })
        try h.sendHeaders([block])
        for p in pairs {
            try h.expectRejected([try h.proofMessage(p.tx1, block, p.tx2, block)], rule: p.rule)
        }

        // tx 2 spending tx 1's OP_RETURN output rather than a spendable one.
        let (s1, _) = try ckptTransactions(part1: .opReturn(good.part1), part2: .opReturn(good.part2), funding: 0x61)
        let (_, s2) = try ckptTransactions(part1: .opReturn(good.part1), part2: .opReturn(good.part2), funding: 0x61,
                                           spend: OutPoint(txid: s1.txid, index: 0))
        // A valid pair, for the proof-level rules below.
        let (v1, v2) = try ckptTransactions(part1: .opReturn(good.part1), part2: .opReturn(good.part2), funding: 0x62)
        // tx 2 mined in a block below tx 1's.
        let (r1, r2) = try ckptTransactions(part1: .opReturn(good.part1), part2: .opReturn(good.part2), funding: 0x63)
        let low = try h.btc.mine([s1, s2, v1, r2])
        let high = try h.btc.mine([v2, r1])
        try h.sendHeaders([low, high])
        try h.expectRejected([try h.proofMessage(s1, low, s2, low)], rule: "tx2-does-not-spend-tx1")
        try h.expectRejected([try h.proofMessage(r1, high, r2, low)], rule: "tx2-before-tx1")

        // Proof against a header the light client does not know.
        let unknown = try h.btc.mine([v1, v2], on: low, salt: 3)
        try h.expectRejected([try h.proofMessage(v1, unknown, v2, high)], rule: "unknown-btc-header")
        // Proof against a known header off the main chain (the fork block lost).
        try h.sendHeaders([unknown])
        try h.expectRejected([try h.proofMessage(v1, unknown, v2, high)], rule: "header-not-on-main-chain")
        // Bad Merkle proof: tx 1's path presented for tx 2.
        let p1 = try h.btc.proof(of: v1, in: low)
        let p2wrong = BTCInclusionProofPayload(blockHash: high, proof: p1.proof)
        try h.expectRejected([InsertBTCSpvProof(part1: CheckpointTransactionProof(transaction: v1, inclusion: p1),
                                                part2: CheckpointTransactionProof(transaction: v2, inclusion: p2wrong)).message],
                             rule: "invalid-inclusion-proof")
        // Tx 2's path in its own block, with the coinbase and coinbase path of tx 1's block.
        let p2 = try h.btc.proof(of: v2, in: high)
        let foreignCoinbase = BTCInclusionProofPayload(blockHash: high, proof: try PinnedInclusionProof(
            proof: p2.proof.proof, coinbase: p1.proof.coinbase, coinbaseProof: p1.proof.coinbaseProof))
        try h.expectRejected([InsertBTCSpvProof(part1: CheckpointTransactionProof(transaction: v1, inclusion: p1),
                                                part2: CheckpointTransactionProof(transaction: v2, inclusion: foreignCoinbase)).message],
                             rule: "invalid-inclusion-proof")
        // Malformed message.
        try h.expectRejected([Message(type: InsertBTCSpvProof.type, payload: Data([0, 0, 0, 9, 1]))], rule: "malformed-message")

        // The valid pair is accepted once, then is a duplicate.
        try h.expectOK([try h.proofMessage(v1, low, v2, high)])
        #expect(try h.status(1) == "SUBMITTED")
        try h.expectRejected([try h.proofMessage(v1, low, v2, high)], rule: "duplicate-submission")
    }

    @Test func lastFinalizedIsTheContiguousPrefix() throws {
        let h = try CkptHarness(k: 2, w: 4)
        try h.sealEpoch(1)
        try h.sealEpoch(2)
        // Epoch 2 goes to Bitcoin first, epoch 1 two blocks later.
        let cp2 = try h.bitcoinCheckpoint(2)
        let (a1, a2) = try ckptTransactions(part1: .opReturn(cp2.part1), part2: .opReturn(cp2.part2), funding: 0xc2)
        let b2 = try h.btc.mine([a1, a2])
        let cp1 = try h.bitcoinCheckpoint(1)
        let (c1, c2) = try ckptTransactions(part1: .opReturn(cp1.part1), part2: .opReturn(cp1.part2), funding: 0xc1)
        let gap = try h.btc.mineEmpty(1)
        let b1 = try h.btc.mine([c1, c2])
        try h.sendHeaders([b2] + gap + [b1])
        try h.expectOK([try h.proofMessage(a1, b2, a2, b2), try h.proofMessage(c1, b1, c2, b1)])
        #expect(try h.status(2) == "CONFIRMED")
        #expect(try h.status(1) == "SUBMITTED")
        try h.sendHeaders(try h.btc.mineEmpty(2))
        #expect(try h.status(2) == "FINALIZED")
        #expect(try h.status(1) == "CONFIRMED")
        // Epoch 1 is not final yet, so nothing is final "up to" any epoch.
        #expect(try h.query("last-finalized")["epoch"] as? String == "0")
        try h.sendHeaders(try h.btc.mineEmpty(2))
        #expect(try h.status(1) == "FINALIZED")
        #expect(try h.query("last-finalized")["epoch"] as? String == "2")
    }

    @Test func quorumCertificateIsTheDocumentedEncoding() throws {
        let h = try CkptHarness()
        try h.finishEpoch(1)
        try h.expectOK(try h.signatures(1, by: [2, 0, 1]))
        let json = try h.query("epoch/1")
        let qc = try #require(json["qc"] as? [String: Any])
        let bitmap = try Data(hex: try #require(qc["bitmap"] as? String))
        let signatures = try #require(qc["signatures"] as? [String]).map { try Data(hex: $0) }
        // SHA256(bitmap ‖ signatures in validator order).
        #expect(qc["hash"] as? String == BitcoinHash.sha256(signatures.reduce(bitmap, +)).hexString)
        // Each signature is the BIP-340 signature of the validator at that index over the 40
        // bytes BE8(epoch) ‖ lastBlockHash themselves (PROTOCOL §5), not a hash of them.
        let lastBlockHash = try Data(hex: try #require(json["last_block_hash"] as? String))
        let digest = CheckpointsModule.checkpointSigningMessage(epoch: 1, lastBlockHash: lastBlockHash)
        #expect(digest == Data([0, 0, 0, 0, 0, 0, 0, 1]) + lastBlockHash)
        let validators = try #require(h.app.validators).validators
        #expect(signatures.count == validators.count)
        for (i, sig) in signatures.enumerated() {
            let key = try Schnorr.PublicKey(rawRepresentation: validators[i].address)
            #expect(key.isValidSignature(try Schnorr.Signature(rawRepresentation: sig), for: digest))
        }
    }

    @Test func truncatedMessagesNeverDecode() throws {
        let cp = try BitcoinCheckpoint(tag: CheckpointsParams.defaultTag, epoch: 1, lastBlockHash: Data(count: 32),
                                       bitmap: Data(count: 13), submitterID: Data(count: 20), quorumCertificateHash: Data(count: 32))
        let (tx1, tx2) = try ckptTransactions(part1: .opReturn(cp.part1), part2: .opReturn(cp.part2), funding: 1)
        let path = try TransactionInclusionProof(txids: [tx1.txid, tx2.txid], index: 0)
        let proof = BTCInclusionProofPayload(blockHash: Data(count: 32), proof: try PinnedInclusionProof(proof: path, coinbase: tx1, coinbaseProof: path))
        let message = InsertBTCSpvProof(part1: CheckpointTransactionProof(transaction: tx1, inclusion: proof),
                                        part2: CheckpointTransactionProof(transaction: tx2, inclusion: proof))
        let bytes = message.encoded
        #expect(try InsertBTCSpvProof(decoding: bytes) == message)
        for n in 0..<bytes.count {
            #expect(throws: CodecError.self) { try InsertBTCSpvProof(decoding: bytes.prefix(n)) }
        }
        #expect(throws: CodecError.self) { try InsertBTCSpvProof(decoding: bytes + [0]) }
        let sig = AddCheckpointSignature(epoch: 3, validator: Data(count: 32), signature: Data(count: 64))
        #expect(try AddCheckpointSignature(decoding: sig.encoded) == sig)
        for n in 0..<sig.encoded.count {
            #expect(throws: CodecError.self) { try AddCheckpointSignature(decoding: sig.encoded.prefix(n)) }
        }
    }

    // MARK: - Determinism and queries

    @Test func twoAppsAgree() throws {
        let h = try CkptHarness(k: 2, w: 5, mirror: true)
        let (block, _, _) = try h.submitEpoch1()
        try h.sendHeaders(try h.btc.mineEmpty(3))
        let parent = try #require(h.btc.blocks[block]).header.previousBlockHash.rawValue
        try h.sendHeaders(try h.btc.mineEmpty(6, on: parent, salt: 5))
        try h.finishEpoch(h.params.epoch(ofHeight: try #require(h.app.lastHeight) + 1))
        #expect(try h.status(1) == "SEALED")
        let mirror = try #require(h.mirror)
        #expect(mirror.lastAppHash == h.app.lastAppHash)
        #expect(try mirror.query(path: "/modules/checkpoints/epoch/1").value == (try h.app.query(path: "/modules/checkpoints/epoch/1")).value)
    }

    @Test func queriesAndParams() throws {
        let h = try CkptHarness(epochLength: 3, k: 4, w: 9)
        let params = try h.query("params")
        #expect(params["epoch_length"] as? String == "3")
        #expect(params["btc_confirmation_depth"] as? String == "4")
        #expect(params["btc_finalization_timeout"] as? String == "9")
        #expect(params["checkpoint_tag"] as? String == CheckpointsParams.defaultTag.hexString)
        #expect(try h.query("last-finalized")["epoch"] as? String == "0")
        #expect(!(try h.app.query(path: "/modules/checkpoints/status/1")).isOK)
        #expect(!(try h.app.query(path: "/modules/checkpoints/epoch/x")).isOK)
        #expect(!(try h.app.query(path: "/modules/checkpoints/nope")).isOK)
        try h.finishEpoch(1)
        let probe = try h.app.query(path: "/modules/ckptprobe/state/1")
        let state = try #require(try JSONSerialization.jsonObject(with: probe.value) as? [String: Any])
        #expect(state["status"] as? String == "ACCUMULATING")
        #expect(state["epoch_of_height"] as? Int == 1)
        // Payloads of an unsealed checkpoint are refused.
        #expect(!(try h.app.query(path: "/modules/ckptprobe/payloads/1/" + Data(count: 20).hexString)).isOK)
        #expect(try h.query("submissions/1")["submissions"] as? [Any] != nil)
    }

    @Test func genesisParameterValidation() throws {
        for (json, ok) in [
            (#"{"epoch_length":0}"#, false), (#"{"btc_confirmation_depth":5,"btc_finalization_timeout":5}"#, false),
            (#"{"checkpoint_tag":"abcd"}"#, false), (#"{"unknown":1}"#, false),
            (#"{"checkpoint_tag":"61626364","epoch_length":2}"#, true),
        ] {
            let net = try TestNet(validators: 1, moduleParams: [CheckpointsModule.moduleName: Data(json.utf8)])
            let app = try Application(store: InMemoryStore(columnFamilies: Application.columnFamilies),
                                      modules: [BTCLightClientModule(), CheckpointsModule()], verifier: TestCommitVerifier())
            let result = Result { () throws -> Data in try app.initChain(net.genesis) }
            #expect(((try? result.get()) != nil) == ok, "\(json)")
        }
        // w must be below staking's unbonding time (Babylon's minimum unbonding time): an
        // unbonding stake stays slashable until the checkpoints it voted under are final.
        let covenant = (1...3).map { testKey("ckpt-genesis-cov-\($0)").publicKey }
        let control = try ControlPlane.genesisModuleParams(ControlPlaneGenesisOptions(
            covenantKeys: covenant, covenantQuorum: 2, unbondingTime: 150))
        for (w, ok) in [(149, true), (150, false), (400, false)] {
            var params = control
            params[CheckpointsModule.moduleName] = Data(#"{"btc_confirmation_depth":10,"btc_finalization_timeout":\#(w)}"#.utf8)
            let net = try TestNet(validators: 1, moduleParams: params)
            let app = try Application(store: InMemoryStore(columnFamilies: Application.columnFamilies),
                                      modules: [BTCLightClientModule(), StakingModule(), CheckpointsModule(), FinalityModule()], verifier: TestCommitVerifier())
            let result = Result { () throws -> Data in try app.initChain(net.genesis) }
            #expect(((try? result.get()) != nil) == ok, "w \(w)")
            if !ok { #expect("\(result)".contains("unbonding_time_blocks (150)"), "\(result)") }
        }
        // A Bitcoin checkpoint's bitmap has 13 bytes: 104 validators fit, 105 would leave every
        // epoch unwritable to Bitcoin, so such a genesis is refused.
        for (count, ok) in [(104, true), (105, false)] {
            let net = try TestNet(validators: count)
            let app = try Application(store: InMemoryStore(columnFamilies: Application.columnFamilies),
                                      modules: [BTCLightClientModule(), CheckpointsModule()], verifier: TestCommitVerifier())
            let result = Result { () throws -> Data in try app.initChain(net.genesis) }
            #expect(((try? result.get()) != nil) == ok, "\(count) validators")
            if case .failure(let error) = result { #expect("\(error)".contains("at most 104"), "\(error)") }
        }
    }
}
