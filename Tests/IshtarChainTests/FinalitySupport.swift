import Foundation
import IshtarBitcoin
import IshtarChain
import IshtarCrypto
import Testing

/// A chain with the light client, staking and finality (plus the staking test hook module,
/// to jail/slash directly), driven block by block, keeping every block's transactions so
/// a twin app can be replayed to the same state.
///
/// A rejected message is checked against a replayed twin that gets an empty block at the same
/// height: the finality module writes bookkeeping every block (the previous block's hash, the
/// height's active set), so "unchanged app hash" means "the same as without the message".
final class FinalityHarness {
    let net: TestNet
    let app: Application
    private(set) var history: [[Data]] = []
    private(set) var hashes: [UInt64: Data] = [:]
    let owner = StakingActor("fp-owner")
    let staker = StakingActor("staker")
    let relayer = StakingActor("relayer")
    let btc = RegtestChain()
    let stakerKey = stkKey(0x31)
    private var funding: UInt8 = 0x80

    /// Window 10, min signed 0.5 (so 6 misses jail), jail 5 s, 20 values per commitment,
    /// liveness judged one block late.
    static let defaultParams = FinalityGenesis(signedBlocksWindow: 10, minSignedPerWindow: "0.5", jailDurationMs: 5000,
                                               minPubRand: 20, maxActiveFinalityProviders: 100,
                                               maxPubRandStartOffset: 50, finalitySigTimeout: 1)

    init(params: FinalityGenesis = FinalityHarness.defaultParams, maxActiveInStaking: UInt32 = 100) throws {
        let staking = try StakingGenesis(btcStaking: StakingWorld.btcParams, minCommission: "0.05",
                                         maxActiveFinalityProviders: maxActiveInStaking, btcConfirmationDepth: 10).jsonData()
        net = try TestNet(moduleParams: [
            StakingModule.moduleName: staking,
            BTCLightClientModule.moduleName: BTCLightClientParams(network: .regtest).jsonData,
            FinalityModule.moduleName: try params.jsonData(),
        ])
        app = try Self.freshApp(net)
        try produce([])
    }

    static func freshApp(_ net: TestNet) throws -> Application {
        try makeApp(net, modules: [BTCLightClientModule(), StakingModule(), FinalityModule(), StakingTestHookModule()])
    }

    /// The last committed height.
    var height: UInt64 { app.lastHeight ?? 0 }

    /// The committed block hash at `height`.
    func hash(_ height: UInt64) throws -> Data { try #require(hashes[height]) }

    @discardableResult
    func produce(_ transactions: [Data]) throws -> FinalizeResult {
        let r = try net.produce(app, transactions)
        history.append(transactions)
        hashes[r.height] = r.blockHash
        return r
    }

    /// One block with one transaction of `messages` from `actor`.
    @discardableResult
    func run(_ actor: StakingActor, _ messages: [Message]) throws -> (TxResult, FinalizeResult) {
        let block = try produce([try actor.tx(messages)])
        let r = block.txResults[0]
        if r.isOK { actor.nonce += 1 }
        return (r, block)
    }

    /// Runs and expects success.
    @discardableResult
    func ok(_ actor: StakingActor, _ messages: [Message], sourceLocation: SourceLocation = #_sourceLocation) throws -> FinalizeResult {
        let (r, block) = try run(actor, messages)
        #expect(r.isOK, "\(r.log)", sourceLocation: sourceLocation)
        return block
    }

    /// A fresh app replaying every block so far.
    func replay() throws -> Application {
        let twin = try Self.freshApp(net)
        for block in history { try net.produce(twin, block) }
        return twin
    }

    /// Expects the messages to be rejected with `rule` and to leave no trace: the app hash
    /// equals a replayed twin's that got an empty block instead.
    func expectRejected(_ actor: StakingActor, _ messages: [Message], rule: String, codespace: String = "finality",
                        sourceLocation: SourceLocation = #_sourceLocation) throws {
        let twin = try replay()
        #expect(twin.lastAppHash == app.lastAppHash, sourceLocation: sourceLocation)
        let (r, _) = try run(actor, messages)
        try net.produce(twin, [])
        #expect(!r.isOK, sourceLocation: sourceLocation)
        #expect(r.codespace == codespace, "\(r.log)", sourceLocation: sourceLocation)
        #expect(r.rule == rule, "\(r.log)", sourceLocation: sourceLocation)
        #expect(app.lastAppHash == twin.lastAppHash, "a rejected message changed state", sourceLocation: sourceLocation)
    }

    /// Registers providers owned by ``owner``.
    func register(_ keys: [Schnorr.PrivateKey], chainID: String = testChainID) throws {
        try ok(owner, try keys.map { try registration($0, chainID: chainID) })
    }

    /// ``owner``'s registration of `key` as a provider serving `chainID`.
    func registration(_ key: Schnorr.PrivateKey, chainID: String = testChainID) throws -> Message {
        CreateFinalityProvider(
            btcKey: key.publicKey.rawRepresentation,
            proofOfPossession: try StakingModule.proofOfPossession(key: key, chainID: testChainID, account: owner.account),
            description: FinalityProviderDescription(moniker: "fp"), commission: try #require(Commission(decimal: "0.1")),
            consumerChainID: chainID).message
    }

    /// Creates ACTIVE delegations (power counts from the height after the returned block).
    @discardableResult
    func delegate(_ specs: [(Schnorr.PrivateKey, Int64)]) throws -> [(DelegationMaker, DelegationTransactions)] {
        var made: [(DelegationMaker, DelegationTransactions)] = []
        for (fp, value) in specs {
            var m = DelegationMaker(staker: stakerKey, provider: fp.publicKey)
            m.stakingValue = stkSats(value)
            funding &+= 1
            made.append((m, try m.make(funding: funding)))
        }
        let block = try btc.mine(made.map(\.1.stakingTransaction))
        try btc.mineEmpty(10)
        try ok(relayer, [btc.takeUnsent()])
        // Chunks keep transactions under the message-count and size limits.
        let creations = try made.map { try $0.0.message($0.1, sender: staker, proof: try btc.proof(of: $0.1.stakingTransaction, in: block)) }
        for chunk in stride(from: 0, to: creations.count, by: 10) {
            try ok(staker, Array(creations[chunk..<min(chunk + 10, creations.count)]))
        }
        var sigs: [Message] = []
        for (m, d) in made { for c in 0..<3 { sigs.append(try m.covenantMessage(d, covenant: c)) } }
        for chunk in stride(from: 0, to: sigs.count, by: 30) {
            try ok(relayer, Array(sigs[chunk..<min(chunk + 30, sigs.count)]))
        }
        return made
    }

    /// Reports the delegation's unbonding on Bitcoin; returns the block it happened in.
    func unbond(_ made: (DelegationMaker, DelegationTransactions)) throws -> FinalizeResult {
        var signed = made.1.unbondingTransaction
        signed.inputs[0].witness = [Data(repeating: 1, count: 64)]
        let block = try btc.mine([signed])
        try ok(relayer, [btc.takeUnsent()])
        return try ok(staker, [BTCUndelegate(stakingTxid: made.1.stakingTransaction.txid.rawValue, unbondingTransaction: signed,
                                             proof: try btc.proof(of: signed, in: block)).message])
    }

    /// Commits randomness for every key (one transaction), starting two heights after the
    /// last committed one (so the first covered height's active set includes them).
    func commit(_ keys: [Schnorr.PrivateKey], count: UInt64 = 20, chainID: String = testChainID,
                start: UInt64? = nil) throws -> [PubRandBatch] {
        let first = start ?? height + 2
        let batches = try keys.map { try PubRandBatch(fpKey: $0, chainID: chainID, startHeight: first, count: count) }
        try ok(relayer, try batches.map { try $0.commitMessage() })
        return batches
    }

    /// Votes of `batches` for the control plane's committed block at `height`.
    func votes(_ batches: [PubRandBatch], at height: UInt64) throws -> [Message] {
        let hash = try hash(height)
        return try batches.map { try $0.voteMessage(height: height, blockHash: hash) }
    }

    func query(_ path: String) throws -> [String: Any] {
        let r = try app.query(path: "/modules/finality/" + path)
        guard r.isOK else { throw TestFailure("query \(path): \(r.log)") }
        return try #require(try JSONSerialization.jsonObject(with: r.value) as? [String: Any])
    }

    func stakingStatus(_ key: Schnorr.PrivateKey) throws -> String? {
        try stkQuery(app, "finality-provider/" + key.publicKey.rawRepresentation.hexString)["status"] as? String
    }

    func isFinalized(_ height: UInt64, chainID: String = testChainID) throws -> Bool {
        try query("block/\(chainID)/\(height)")["finalized"] as? Bool ?? false
    }

    func lastFinalized(chainID: String = testChainID) throws -> String? {
        try query("last-finalized/\(chainID)")["height"] as? String
    }

    func activeSet(_ height: UInt64, chainID: String = testChainID) throws -> [String] {
        let set = try query("active-set/\(chainID)/\(height)")
        return (set["providers"] as? [[String: Any]] ?? []).compactMap { $0["fp_btc_pk"] as? String }
    }
}

extension Schnorr.PrivateKey {
    /// The x-only key in hex.
    var hexKey: String { publicKey.rawRepresentation.hexString }
}

extension FinalizeResult {
    /// The transactions' events then the block hooks' events.
    var allEvents: [Event] { txResults.flatMap(\.events) + events }
}
