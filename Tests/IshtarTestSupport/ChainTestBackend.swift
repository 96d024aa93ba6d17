import Foundation
import IshtarChain
import IshtarCrypto
import IshtarNode
import IshtarStore

/// Deterministic test key: the secret is a tagged hash of a label.
public func chainTestKey(_ label: String) -> Schnorr.PrivateKey {
    var seed = Data(label.utf8)
    while true {
        let secret = TaggedHash.hash(tag: "api-test", data: seed)
        if let key = try? Schnorr.PrivateKey(rawRepresentation: secret) { return key }
        seed = secret
    }
}

/// A real `NodeBackend` for API tests: an `IshtarChain.Application` on RocksDB in a temp
/// directory, a plain mempool, and block production by hand (prepare → finalize → commit),
/// with one validator and no consensus engine.
public actor ChainTestBackend: NodeBackend {
    public static let chainID = "ishtar-test"
    /// Now, to the second, when the chain is made: blocks then follow one second apart, near
    /// the wall clock, as on a live chain — the light client refuses Bitcoin headers dated over
    /// two hours past the block's time, and the regtest node dates its blocks now.
    public let genesisTime: UInt64 = UInt64(Date().timeIntervalSince1970) * 1000

    public let dir: TempDir
    public let database: Database
    public let app: Application
    public let validatorKey: Schnorr.PrivateKey
    public private(set) var mempool: [Data] = []
    public var healthy = true

    /// A chain of the consensus and accounts modules plus `modules` (e.g.
    /// `ControlPlane.modules()`), with their genesis parameters.
    public init(modules: [any Module] = [], moduleParams: [String: Data] = [:]) throws {
        dir = TempDir(prefix: "ishtar-api")
        database = try Database.open(path: dir.path("db"), options: Application.databaseOptions())
        app = try Application(store: database, modules: modules)
        validatorKey = chainTestKey("validator")
        let genesis = try Genesis(
            chainID: Self.chainID, genesisTime: genesisTime,
            validators: [ChainValidator(publicKey: validatorKey.publicKey.rawRepresentation, power: 10, name: "v0")],
            moduleParams: moduleParams)
        try app.initChain(genesis)
    }

    public func setHealthy(_ value: Bool) { healthy = value }

    /// Builds, executes and commits a block of the mempool's transactions.
    @discardableResult
    public func produceBlock() throws -> FinalizeResult {
        guard let tip = app.tip, let validators = app.validators else { throw ChainError.notInitialized }
        let proposer = validatorKey.publicKey.rawRepresentation
        let time = tip.lastHeight >= tip.initialHeight ? tip.lastBlockTime + 1000 : tip.lastBlockTime
        let txs = try app.prepareProposal(PrepareProposalRequest(
            transactions: mempool, maxTxBytes: 1 << 20, height: tip.nextHeight, time: time, proposer: proposer))
        var lastCommit: CommitInfo?
        if tip.lastHeight >= tip.initialHeight {
            // The application is opened without a commit verifier, so this signature is
            // checked for shape and power only; sign something real anyway.
            let digest = TaggedHash.hash(tag: "api-test/vote", data: tip.lastBlockHash)
            let signature = try validatorKey.signature(for: digest, auxiliaryRandomness: Data(count: 32)).rawRepresentation
            lastCommit = CommitInfo(height: tip.lastHeight, round: 0, blockHash: tip.lastBlockHash,
                                    signatures: [CommitSignature(address: proposer, signature: signature)])
        }
        let block = Block.make(tip: tip, time: time, proposer: proposer, validators: validators,
                               lastCommit: lastCommit, transactions: txs)
        let result = try app.finalizeBlock(block)
        try app.commit()
        mempool.removeAll { tx in txs.contains(tx) }
        return result
    }

    // MARK: NodeBackend

    public func status() async -> NodeStatus {
        let tip = app.tip
        return NodeStatus(
            chainID: Self.chainID, nodeID: validatorKey.publicKey.rawRepresentation.hexString,
            validatorAddress: validatorKey.publicKey.rawRepresentation.hexString, height: tip?.lastHeight ?? 0, round: 0,
            latestBlockHash: tip?.lastBlockHash.hexString ?? "", latestBlockTime: tip?.lastBlockTime ?? 0,
            appHash: tip?.lastAppHash.hexString ?? "", peers: 0, mempoolSize: mempool.count, catchingUp: false)
    }

    public func health() async -> NodeHealth {
        NodeHealth(healthy: healthy, reasons: healthy ? [] : ["consensus is not running"])
    }

    public func block(at height: UInt64) async throws -> Block? { try app.block(at: height) }

    public func latestBlock() async throws -> Block? { try app.latestBlock() }

    public func transaction(hash: Data) async throws -> CommittedTransaction? { try app.committedTransaction(hash: hash) }

    public func submitTransaction(_ bytes: Data) async -> CheckTxResult {
        do {
            let result = try app.checkTx(bytes)
            if result.result.isOK { mempool.append(bytes) }
            return result
        } catch {
            // A real node would report itself unhealthy; the tests never get here.
            return CheckTxResult(
                result: TxResult(violation: RuleViolation(codespace: "node", code: 1, rule: "internal", message: "\(error)")),
                hash: Transaction.hash(of: bytes))
        }
    }

    public func pendingNonces(of account: Data) async -> [UInt64] {
        mempool.compactMap { try? Transaction(decoding: $0) }.filter { $0.sender == account }.map(\.nonce)
    }

    public func query(path: String, data: Data, page: PageRequest?) async -> QueryResult {
        do {
            return try app.query(path: path, data: data, page: page)
        } catch {
            return QueryResult(code: 1, codespace: "node", log: "\(error)", value: Data(), height: app.lastHeight ?? 0)
        }
    }
}

/// A signed `accounts/SetLabel` transaction.
public func chainTestLabelTx(_ key: Schnorr.PrivateKey, nonce: UInt64, label: String = "hello") throws -> Data {
    try Transaction.signed(chainID: ChainTestBackend.chainID, key: key, nonce: nonce, messages: [SetLabel(label: label).message]).encoded
}
