import Foundation
import IshtarBitcoin
import IshtarChain
import IshtarCrypto
import IshtarTestSupport
import Testing

/// Every module message type's payload comes from whoever signs a transaction: mutations of
/// real messages (taken from transactions a valid flow committed) must be rejected by the
/// decoders without a crash, and — signed into transactions and executed in a block — must
/// leave no trace in state.
@Suite("Message fuzzing")
struct MessageFuzzTests {
    let a = stkKey(0x61)
    let b = stkKey(0x62)

    /// `FUZZ_SCALE=n` runs n times the mutations (and `FUZZ_SEED` another seed) by hand.
    static let scale = Int(ProcessInfo.processInfo.environment["FUZZ_SCALE"] ?? "").map { max(1, $0) } ?? 1
    static let seedOffset = UInt64(ProcessInfo.processInfo.environment["FUZZ_SEED"] ?? "") ?? 0

    /// Every message of every transaction in `blocks`, by type.
    static func messages(in blocks: [[Data]]) throws -> [String: [Message]] {
        var byType: [String: [Message]] = [:]
        for raw in blocks.joined() {
            for m in try IshtarChain.Transaction(decoding: raw).messages { byType[m.type, default: []].append(m) }
        }
        return byType
    }

    /// A light client + staking + finality chain taken through registration, delegation
    /// (headers, creation with its inclusion proof, covenant signatures), randomness, votes
    /// and an unbonding; returns it and the messages its blocks committed, plus the message
    /// types the flow does not send, made by hand (they only need to decode).
    func finalityFlow() throws -> (FinalityHarness, [String: [Message]]) {
        let h = try FinalityHarness()
        try h.register([a, b])
        let made = try h.delegate([(a, 200_000), (b, 100_000)])
        let batches = try h.commit([a, b])
        while h.height < batches[0].startHeight { try h.produce([]) }
        try h.ok(h.relayer, try h.votes(batches, at: batches[0].startHeight))
        _ = try h.unbond(made[1])
        var seeds = try Self.messages(in: h.history)
        let creation = try #require(seeds[CreateBTCDelegation.type]?.first)
        let proof = try #require(try CreateBTCDelegation(decoding: creation.payload).inclusionProof)
        seeds[EditFinalityProvider.type] = [EditFinalityProvider(
            btcKey: a.publicKey.rawRepresentation, description: FinalityProviderDescription(moniker: "edited"),
            commission: try #require(Commission(decimal: "0.2"))).message]
        seeds[UnjailFinalityProvider.type] = [UnjailFinalityProvider(fpKey: a.publicKey.rawRepresentation).message]
        seeds[AddBTCDelegationInclusionProof.type] = [AddBTCDelegationInclusionProof(
            stakingTxid: made[0].1.stakingTransaction.txid.rawValue, proof: proof).message]
        seeds[SetLabel.type] = [SetLabel(label: "a label").message]
        return (h, seeds)
    }

    /// A light client + checkpoints chain with epoch 1 sealed and submitted to Bitcoin.
    func checkpointsFlow() throws -> (CkptHarness, [String: [Message]]) {
        let h = try CkptHarness(k: 2, w: 5, mirror: true)
        _ = try h.submitEpoch1()
        var blocks: [[Data]] = []
        for height in 1...(try #require(h.app.lastHeight)) {
            blocks.append(try #require(try h.app.block(at: height)).transactions)
        }
        return (h, try Self.messages(in: blocks))
    }

    /// One message type's decoder, for the fuzz: whether bytes decode (to steer half of
    /// the mutations past the decoders, into the rules that read state), and the decoder fuzz.
    struct MessageKind: Sendable {
        let type: String
        let decodes: @Sendable (Data) -> Bool
        let fuzz: @Sendable (_ seeds: [Data], _ seed: UInt64) -> (accepted: Int, rejected: Int)

        init<T: BinaryCodable & Equatable>(_ t: T.Type, _ type: String) {
            self.type = type
            decodes = { (try? T(decoding: $0)) != nil }
            fuzz = { fuzzDecoder(T.self, seeds: $0, iterations: 1500, seed: $1) }
        }
    }

    /// Every message type of the accounts module and the control plane.
    static let kinds: [MessageKind] = [
        MessageKind(SetLabel.self, SetLabel.type), MessageKind(InsertHeaders.self, InsertHeaders.type),
        MessageKind(CreateFinalityProvider.self, CreateFinalityProvider.type),
        MessageKind(EditFinalityProvider.self, EditFinalityProvider.type),
        MessageKind(CreateBTCDelegation.self, CreateBTCDelegation.type), MessageKind(AddCovenantSigs.self, AddCovenantSigs.type),
        MessageKind(AddBTCDelegationInclusionProof.self, AddBTCDelegationInclusionProof.type),
        MessageKind(BTCUndelegate.self, BTCUndelegate.type), MessageKind(CommitPubRand.self, CommitPubRand.type),
        MessageKind(AddFinalitySig.self, AddFinalitySig.type), MessageKind(UnjailFinalityProvider.self, UnjailFinalityProvider.type),
        MessageKind(AddCheckpointSignature.self, AddCheckpointSignature.type),
        MessageKind(InsertBTCSpvProof.self, InsertBTCSpvProof.type),
    ]

    /// Mutations of each seed message's payload — half of them ones that still decode — and
    /// now and then of its type.
    static func mutations(of seeds: [String: [Message]], perType: Int, rng: inout SplitMix64) -> [Message] {
        var out: [Message] = []
        for type in seeds.keys.sorted() {
            guard let list = seeds[type] else { continue }
            for i in 0..<perType {
                let m = list[Int.random(in: 0..<list.count, using: &rng)]
                if Int.random(in: 0..<10, using: &rng) == 0 {
                    out.append(Message(type: String(decoding: rng.mutated(Data(type.utf8)), as: UTF8.self), payload: m.payload))
                    continue
                }
                var payload = rng.mutated(m.payload)
                if i % 2 == 0, let decodes = kinds.first(where: { $0.type == type })?.decodes {
                    for _ in 0..<200 where !decodes(payload) { payload = rng.mutated(m.payload) }
                }
                out.append(Message(type: m.type, payload: payload))
            }
        }
        return out
    }

    /// Each mutated message in its own transaction from a fresh account (so one failure
    /// cannot change a later transaction's nonce check), checked for the mempool, then all
    /// executed in one decided block; `twin` executes the same block without the failed
    /// transactions. The two states must be equal: a failed transaction left no trace.
    static func executeLeavesNoTraceOfFailures(_ messages: [Message], net: TestNet, app: Application, twin: Application,
                                               sourceLocation: SourceLocation = #_sourceLocation) throws -> (ok: Int, failed: Int) {
        #expect(app.lastAppHash == twin.lastAppHash, sourceLocation: sourceLocation)
        let txs = try messages.enumerated().map { i, m in
            try IshtarChain.Transaction.signed(chainID: testChainID, key: testKey("fuzz-sender-\(i)"), nonce: 0, messages: [m]).encoded
        }
        for tx in txs { _ = try app.checkTx(tx) }
        let result = try net.produce(app, txs, requireValidProposal: false)
        let survivors = zip(txs, result.txResults).filter { $0.1.isOK }.map(\.0)
        try net.produce(twin, survivors)
        #expect(app.lastAppHash == twin.lastAppHash, "a failed transaction changed state", sourceLocation: sourceLocation)
        #expect(try app.recomputeAppHash() == app.lastAppHash, sourceLocation: sourceLocation)
        return (survivors.count, txs.count - survivors.count)
    }

    @Test func everyMessageDecoderRejectsMutationsWithoutCrashing() throws {
        let (_, finality) = try finalityFlow()
        let (_, checkpoints) = try checkpointsFlow()
        let seeds = finality.merging(checkpoints) { $0 + $1 }
        for (i, kind) in Self.kinds.enumerated() {
            let payloads = try #require(seeds[kind.type], "no seed for \(kind.type)").map(\.payload)
            for p in payloads { #expect(kind.decodes(p), "\(kind.type) seed does not decode") }
            let (accepted, rejected) = kind.fuzz(payloads, UInt64(i + 1))
            #expect(accepted + rejected == 1500)
            #expect(rejected > 1000, "\(kind.type): only \(rejected) of 1500 mutations rejected")
        }
        // Every type a module of the control plane accepts has been fuzzed.
        let registered = ControlPlane.modules().flatMap(\.messageTypes) + AccountsModule().messageTypes
        let checked = Set(Self.kinds.map(\.type))
        #expect(Set(registered) == checked, "unfuzzed: \(Set(registered).subtracting(checked).sorted())")
    }

    @Test func mutatedStakingAndFinalityMessagesLeaveNoTrace() throws {
        var rng = SplitMix64(seed: 0x5eed_f1 &+ Self.seedOffset)
        var (ok, failed) = (0, 0)
        // One block of mutations per round (a block holds a few hundred), each on a fresh chain.
        for _ in 0..<Self.scale {
            let (h, seeds) = try finalityFlow()
            let twin = try h.replay()
            let r = try Self.executeLeavesNoTraceOfFailures(Self.mutations(of: seeds, perType: 40, rng: &rng),
                                                            net: h.net, app: h.app, twin: twin)
            (ok, failed) = (ok + r.ok, failed + r.failed)
        }
        #expect(failed > ok, "mutations mostly fail (\(ok) succeeded, \(failed) failed)")
    }

    @Test func mutatedCheckpointMessagesLeaveNoTrace() throws {
        var rng = SplitMix64(seed: 0x5eed_c4 &+ Self.seedOffset)
        var (ok, failed) = (0, 0)
        for _ in 0..<Self.scale {
            let (h, seeds) = try checkpointsFlow()
            let twin = try #require(h.mirror)
            // Off an epoch's last block, whose checkpoint records the block's own hash (which
            // differs between the two blocks).
            while h.params.isLastBlockOfEpoch(try #require(h.app.lastHeight) + 1) { try h.produce() }
            let r = try Self.executeLeavesNoTraceOfFailures(Self.mutations(of: seeds, perType: 40, rng: &rng),
                                                            net: h.net, app: h.app, twin: twin)
            (ok, failed) = (ok + r.ok, failed + r.failed)
        }
        #expect(failed > ok, "mutations mostly fail (\(ok) succeeded, \(failed) failed)")
    }

    // MARK: - Queries

    /// Every module query path, `*` marking an argument a caller chooses.
    static let queryTemplates: [String] = [
        "accounts/account/*", "accounts/params",
        "btclightclient/tip", "btclightclient/header/*", "btclightclient/header-by-height/*", "btclightclient/depth/*",
        "btclightclient/is-ancestor/*/*", "btclightclient/params",
        "staking/params", "staking/params/*", "staking/finality-providers", "staking/finality-provider/*",
        "staking/finality-provider/*/delegations", "staking/delegations/staker/*", "staking/delegation/*", "staking/voting-power/*",
        "checkpoints/epoch/*", "checkpoints/status/*", "checkpoints/last-finalized", "checkpoints/submissions/*",
        "checkpoints/bitcoin-payloads/*/*", "checkpoints/params", "checkpoints/current-epoch",
        "finality/params", "finality/block/*/*", "finality/votes/*/*", "finality/last-finalized/*", "finality/evidence",
        "finality/evidence/*", "finality/signing-info/*", "finality/commitments/*/*", "finality/commitment/*/*/*",
        "finality/active-set/*/*", "consensus/validators", "consensus/params", "consensus/evidence",
    ]

    /// What a caller may put in a path component: numbers past every width, negative,
    /// fractional, hex of the wrong length or case, empty, huge, control characters.
    static let hostileComponents: [String] = [
        "", "0", "1", "-1", "18446744073709551615", "18446744073709551616", "4294967296", "1.5", "1e3", "zz",
        "00", String(repeating: "ab", count: 32), String(repeating: "AB", count: 32), String(repeating: "ab", count: 33),
        String(repeating: "a", count: 100_000), "%00", "..", "\u{0}", "é", testChainID,
    ]

    /// Every template with every hostile argument (and a valid one where one exists) answers
    /// with a result — success, or an error with a code and a message — and never traps.
    static func queryEveryPath(_ app: Application, valid: [String], sourceLocation: SourceLocation = #_sourceLocation) -> (ok: Int, refused: Int) {
        var (ok, refused) = (0, 0)
        let values = hostileComponents + valid
        for template in queryTemplates {
            let parts = template.split(separator: "/").map(String.init)
            for i in values.indices {
                // The i-th value in the first argument, the values after it in later ones.
                var k = i
                let path = parts.map { part -> String in
                    guard part == "*" else { return part }
                    defer { k += 1 }
                    return values[k % values.count]
                }
                let r: QueryResult
                do {
                    r = try app.query(path: "/modules/" + path.joined(separator: "/"))
                } catch {
                    // A thrown ChainError means the node itself failed (its store, its state).
                    Issue.record("\(template) with \(path.map { $0.prefix(20) }): \(error)", sourceLocation: sourceLocation)
                    continue
                }
                if r.isOK {
                    ok += 1
                    #expect((try? JSONSerialization.jsonObject(with: r.value)) != nil, "\(template): not JSON", sourceLocation: sourceLocation)
                } else {
                    refused += 1
                    #expect(r.code != 0 && !r.log.isEmpty, "\(template): an error without a code or message", sourceLocation: sourceLocation)
                }
            }
        }
        return (ok, refused)
    }

    @Test func hostileQueryArgumentsAreAnsweredWithErrorsNotTraps() throws {
        let (h, _) = try finalityFlow()
        let valid = [a.publicKey.rawRepresentation.hexString, String(h.height), try h.hash(h.height).hexString]
        let finality = Self.queryEveryPath(h.app, valid: valid)
        let (c, _) = try checkpointsFlow()
        let checkpoints = Self.queryEveryPath(c.app, valid: ["1", c.relayer.publicKey.rawRepresentation.hexString])
        #expect(finality.ok > 50 && finality.refused > 300, "\(finality)")
        #expect(checkpoints.ok > 20 && checkpoints.refused > 300, "\(checkpoints)")
    }
}
