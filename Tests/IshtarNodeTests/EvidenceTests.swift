import Foundation
import IshtarChain
import IshtarConsensus
import IshtarCrypto
@testable import IshtarNode
import IshtarStore
import Testing

/// A 4-validator chain on a real application with the node's real consensus verifier: every
/// commit and every vote in evidence is a real engine signature.
struct EvidenceChain {
    static let chainID = "ishtar-evidence"
    let keys: [Schnorr.PrivateKey]
    let signers: [SchnorrConsensusSigner]
    let app: Application
    let chain: ChainID

    init() throws {
        keys = (0..<4).map { _ in Schnorr.PrivateKey() }
        signers = keys.map { SchnorrConsensusSigner(key: $0) }
        let genesis = try Genesis(
            chainID: Self.chainID, genesisTime: 1_735_689_600_000,
            validators: keys.enumerated().map {
                ChainValidator(publicKey: $0.element.publicKey.rawRepresentation, power: 10, name: "v\($0.offset)")
            })
        app = try Application(store: InMemoryStore(columnFamilies: Application.columnFamilies), verifier: ConsensusCommitVerifier())
        _ = try app.initChain(genesis)
        chain = try ChainID(Self.chainID)
    }

    /// A real engine vote by validator `i`.
    func vote(_ i: Int, type: VoteType = .prevote, height: UInt64, round: UInt32 = 0, hash: Data?) throws -> SignedVote {
        let value = try hash.map { try BlockHash($0) }
        let v = Vote(type: type, height: height, round: round, value: value, validator: signers[i].validatorAddress)
        return SignedVote(vote: v, signature: try signers[i].sign(v.signBytes(chainID: chain)))
    }

    /// Evidence as the node builds it from the engine's detection.
    func evidence(_ i: Int, height: UInt64, round: UInt32 = 0, type: VoteType = .prevote) throws -> DoubleVoteEvidence {
        ConsensusMapping.evidence(IshtarConsensus.DuplicateVoteEvidence(
            try vote(i, type: type, height: height, round: round, hash: Data(repeating: 0xA1, count: 32)),
            try vote(i, type: type, height: height, round: round, hash: nil)))
    }

    func nextBlock(evidence: [DoubleVoteEvidence] = [], transactions: [Data] = []) throws -> Block {
        let tip = try #require(app.tip)
        let validators = try #require(app.validators)
        var lastCommit: CommitInfo?
        if tip.lastHeight >= tip.initialHeight {
            let hash = try BlockHash(tip.lastBlockHash)
            let bytes = CanonicalEncoding.voteSignBytes(chainID: chain, type: .precommit, height: tip.lastHeight, round: 0, value: hash)
            lastCommit = CommitInfo(
                height: tip.lastHeight, round: 0, blockHash: tip.lastBlockHash,
                signatures: try signers.map { CommitSignature(address: $0.validatorAddress, signature: try $0.sign(bytes)) }
                    .sorted { $0.address.lexicographicallyPrecedes($1.address) })
        }
        return Block.make(tip: tip, time: tip.lastBlockTime + 1000, proposer: signers[0].validatorAddress, validators: validators,
                          lastCommit: lastCommit, transactions: transactions, evidence: evidence)
    }

    @discardableResult
    func commit(_ block: Block) throws -> FinalizeResult {
        let r = try app.finalizeBlock(block)
        try app.commit()
        return r
    }

    func recorded() throws -> [[String: Any]] {
        let q = try app.query(path: "/modules/consensus/evidence")
        let o = try #require(try JSONSerialization.jsonObject(with: q.value) as? [String: Any])
        return try #require(o["evidence"] as? [[String: Any]])
    }
}

@Suite struct EvidenceTests {
    /// The rule a rejected block broke, or nil when accepted.
    func rule(_ c: EvidenceChain, _ block: Block) throws -> String? {
        if case .reject(let e) = try c.app.processProposal(block) { return e.rule }
        return nil
    }

    /// Rejected by process-proposal and by finalize, leaving the app hash and height as they were.
    func expectRejected(_ c: EvidenceChain, _ block: Block, rule expected: String, _ why: String) throws {
        let before = (c.app.lastAppHash, c.app.lastHeight)
        #expect(try rule(c, block) == expected, "\(why)")
        #expect(throws: ChainError.self, "\(why)") { _ = try c.app.finalizeBlock(block) }
        #expect(c.app.lastAppHash == before.0 && c.app.lastHeight == before.1, "\(why): state changed")
        // Round-trips through bytes as a peer would send it, with the same verdict.
        if case .reject(let e) = try c.app.processProposal(bytes: block.encoded) { #expect(e.rule == expected) }
    }

    @Test func validEvidenceIsCommittedRecordedAndAnnounced() throws {
        let c = try EvidenceChain()
        try c.commit(try c.nextBlock())
        let e = try c.evidence(3, height: 1)
        let block = try c.nextBlock(evidence: [e])
        // The block round-trips with its evidence (version 2) and the header commits to it.
        let decoded = try Block(decoding: block.encoded)
        #expect(decoded == block)
        #expect(decoded.evidence == [e])
        #expect(block.header.evidenceHash == DoubleVoteEvidence.root([e]))
        #expect(block.bodyMatchesHeader)
        var stripped = block
        stripped.evidence = []
        #expect(!stripped.bodyMatchesHeader, "dropping the evidence a header commits to is told apart")
        #expect(try rule(c, block) == nil)
        let hashBefore = c.app.lastAppHash
        let result = try c.commit(block)
        #expect(c.app.lastAppHash != hashBefore, "recording evidence changes the state")
        let event = try #require(result.events.first { $0.type == "equivocation" })
        #expect(event["validator"] == c.signers[3].validatorAddress.hexString)
        #expect(event["height"] == "1")
        #expect(event["vote_type"] == "prevote")
        let list = try c.recorded()
        #expect(list.count == 1)
        #expect(list.first?["validator"] as? String == c.signers[3].validatorAddress.hexString)
        #expect(list.first?["committed_height"] as? String == "2")
        #expect(try c.app.isEvidenceCommitted(e))

        // The same offence again, even proven by another pair of votes, is refused.
        let again = try c.evidence(3, height: 1)
        #expect(again != e, "fresh signatures make a different pair")
        try expectRejected(c, try c.nextBlock(evidence: [again]), rule: "invalid-evidence", "already committed offence")
        // A different offence by the same validator (precommits) is fine.
        let other = try c.evidence(3, height: 2, type: .precommit)
        #expect(try rule(c, try c.nextBlock(evidence: [other])) == nil)
        // Blocks without evidence keep the version-1 encoding.
        #expect(try c.nextBlock().encoded.first == 1)
    }

    @Test func invalidEvidenceIsRejectedAndLeavesStateUnchanged() throws {
        let c = try EvidenceChain()
        try c.commit(try c.nextBlock())
        try c.commit(try c.nextBlock())
        let good = try c.evidence(2, height: 2)

        // Forged: vote B's signature replaced by another validator's signature of the same vote.
        var forged = good
        let otherSig = try c.signers[1].sign(Vote(
            type: .prevote, height: 2, round: 0, value: try good.voteB.blockHash.map { try BlockHash($0) },
            validator: c.signers[2].validatorAddress).signBytes(chainID: c.chain))
        forged.voteB.signature = otherSig
        try expectRejected(c, try c.nextBlock(evidence: [forged]), rule: "invalid-evidence", "forged signature")

        // Same block id twice (two valid signatures of one vote are no equivocation).
        func nilVote() throws -> EvidenceVote {
            EvidenceVote(type: EvidenceVote.prevote, height: 2, round: 0, blockHash: nil, signature: try c.vote(2, height: 2, hash: nil).signature)
        }
        let same = DoubleVoteEvidence(validator: c.signers[2].validatorAddress, try nilVote(), try nilVote())
        #expect(same.voteA.blockHash == same.voteB.blockHash)
        try expectRejected(c, try c.nextBlock(evidence: [same]), rule: "invalid-evidence", "same block id")

        // Unknown validator: a correctly signed double vote by a key outside the set.
        let outsider = SchnorrConsensusSigner(key: Schnorr.PrivateKey())
        func outsiderVote(_ hash: Data?) throws -> SignedVote {
            let v = Vote(type: .prevote, height: 2, round: 0, value: try hash.map { try BlockHash($0) }, validator: outsider.validatorAddress)
            return SignedVote(vote: v, signature: try outsider.sign(v.signBytes(chainID: c.chain)))
        }
        let unknown = ConsensusMapping.evidence(IshtarConsensus.DuplicateVoteEvidence(
            try outsiderVote(nil), try outsiderVote(Data(repeating: 2, count: 32))))
        try expectRejected(c, try c.nextBlock(evidence: [unknown]), rule: "invalid-evidence", "unknown validator")

        // Malformed: different rounds, different types, wrong order, unknown vote type, future height.
        var rounds = good
        rounds.voteB.round = 1
        try expectRejected(c, try c.nextBlock(evidence: [rounds]), rule: "invalid-evidence", "different rounds")
        let types = DoubleVoteEvidence(validator: good.validator, good.voteA,
                                       EvidenceVote(type: 2, height: 2, round: 0, blockHash: nil, signature: good.voteB.signature))
        try expectRejected(c, try c.nextBlock(evidence: [types]), rule: "invalid-evidence", "different types")
        var swapped = good
        swapped.voteA = good.voteB
        swapped.voteB = good.voteA
        try expectRejected(c, try c.nextBlock(evidence: [swapped]), rule: "invalid-evidence", "non-canonical order")
        var badType = good
        badType.voteA.type = 9
        badType.voteB.type = 9
        try expectRejected(c, try c.nextBlock(evidence: [badType]), rule: "invalid-evidence", "unknown vote type")
        let future = try c.evidence(2, height: 50)
        try expectRejected(c, try c.nextBlock(evidence: [future]), rule: "invalid-evidence", "future height")

        // Duplicate offence inside one block.
        let twice = try c.evidence(2, height: 2)
        try expectRejected(c, try c.nextBlock(evidence: [good, twice]), rule: "invalid-evidence", "duplicate in block")

        // Evidence swapped after the header committed to another list.
        var tampered = try c.nextBlock(evidence: [good])
        tampered.evidence = [try c.evidence(1, height: 2)]
        try expectRejected(c, tampered, rule: "wrong-evidence-hash", "tampered evidence")
        var stripped = try c.nextBlock(evidence: [good])
        stripped.evidence = []
        try expectRejected(c, stripped, rule: "wrong-evidence-hash", "evidence removed")

        // Undecodable: version 2 with an empty evidence list, and truncated evidence.
        var bytes = [UInt8](try c.nextBlock().encoded)
        bytes[0] = 2
        #expect(throws: (any Error).self) { _ = try Block(decoding: Data(bytes) + Data([0, 0, 0, 0])) }
        let withEvidence = try c.nextBlock(evidence: [good]).encoded
        #expect(throws: (any Error).self) { _ = try Block(decoding: withEvidence.dropLast(10)) }
        if case .reject(let e) = try c.app.processProposal(bytes: withEvidence.dropLast(10)) {
            #expect(e.rule == "malformed")
        } else {
            Issue.record("truncated evidence accepted")
        }

        // None of the above changed anything; the valid evidence still goes in.
        #expect(try c.recorded().isEmpty)
        #expect(try rule(c, try c.nextBlock(evidence: [good])) == nil)
    }
}
