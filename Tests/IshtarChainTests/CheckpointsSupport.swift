import Foundation
import IshtarBitcoin
import IshtarChain
import IshtarCrypto
import IshtarStore
import Testing

/// A regtest Bitcoin block tree built in the test, forks included: blocks of a coinbase
/// (salted, so sibling blocks differ) plus given transactions, headers ground to the regtest
/// target.
final class CkptBitcoin {
    struct Block {
        var header: BTCBlockHeader
        var height: UInt64
        var transactions: [IshtarBitcoin.Transaction]
    }

    private(set) var blocks: [Data: Block] = [:]
    let genesis = Network.regtest.genesisHeader
    /// The hash (internal order) of the tip of the branch extended last.
    private(set) var tip: Data

    init() {
        tip = genesis.hash.rawValue
        blocks[tip] = Block(header: genesis, height: 0, transactions: [])
    }

    /// Mines one block on `parent` (default: the last tip) holding `transactions` after a
    /// coinbase salted with `salt`; returns its hash.
    @discardableResult
    func mine(_ transactions: [IshtarBitcoin.Transaction] = [], on parent: Data? = nil, salt: UInt8 = 0) throws -> Data {
        let parentHash = parent ?? tip
        let prev = try #require(blocks[parentHash])
        let height = prev.height + 1
        var tag = Data([0x04])
        tag.append(contentsOf: withUnsafeBytes(of: UInt32(height).littleEndian) { Data($0) })
        tag.append(contentsOf: [0x01, salt])
        let coinbase = IshtarBitcoin.Transaction(
            inputs: [TxIn(previousOutput: OutPoint(txid: .zero, index: .max), scriptSig: Script(bytes: tag))],
            outputs: [TxOut(value: ckptSats(5_000_000_000), scriptPubKey: Script(bytes: Data([0x51])))])
        let txs = [coinbase] + transactions
        var header = BTCBlockHeader(version: 0x2000_0000, previousBlockHash: prev.header.hash,
                                    merkleRoot: try BlockMerkle.root(transactions: txs),
                                    time: prev.header.time + 600, bits: 0x207f_ffff, nonce: 0)
        while (try? header.checkProofOfWork(powLimit: PowParameters.regtest.powLimit)) == nil { header.nonce &+= 1 }
        let hash = header.hash.rawValue
        blocks[hash] = Block(header: header, height: height, transactions: txs)
        tip = hash
        return hash
    }

    /// Mines `count` empty blocks on `parent` (default: the tip); returns their hashes.
    @discardableResult
    func mineEmpty(_ count: Int, on parent: Data? = nil, salt: UInt8 = 0) throws -> [Data] {
        var out: [Data] = []
        var cursor = parent ?? tip
        for _ in 0..<count {
            cursor = try mine(on: cursor, salt: salt)
            out.append(cursor)
        }
        return out
    }

    /// The headers of `hashes`.
    func headers(_ hashes: [Data]) throws -> [BTCBlockHeader] { try hashes.map { try #require(blocks[$0]).header } }

    /// The inclusion proof of `tx` in block `hash`.
    func proof(of tx: IshtarBitcoin.Transaction, in hash: Data) throws -> BTCInclusionProofPayload {
        let txs = try #require(blocks[hash]).transactions
        let index = try #require(txs.firstIndex { $0.txid == tx.txid })
        return BTCInclusionProofPayload(blockHash: hash, proof: try PinnedInclusionProof(transactions: txs, index: index))
    }
}

func ckptSats(_ v: Int64) -> Amount { (try? Amount(sats: v)) ?? .zero }

/// The two checkpoint transactions: tx 1 spends a made-up outpoint (distinguished by
/// `funding`) into `OP_RETURN part1` and a change output; tx 2 spends `spend` (default: tx 1's
/// change output) into `OP_RETURN part2` and change.
func ckptTransactions(part1: Script, part2: Script, funding: UInt8,
                      spend: OutPoint? = nil, extraOutput1: Script? = nil) throws -> (IshtarBitcoin.Transaction, IshtarBitcoin.Transaction) {
    let change = Script.p2wpkh(pubKeyHash: Data(repeating: 0x11, count: 20))
    var outputs1 = [TxOut(value: .zero, scriptPubKey: part1), TxOut(value: ckptSats(90_000), scriptPubKey: change)]
    if let extraOutput1 { outputs1.append(TxOut(value: .zero, scriptPubKey: extraOutput1)) }
    let tx1 = IshtarBitcoin.Transaction(
        inputs: [TxIn(previousOutput: OutPoint(txid: try Hash256(rawValue: Data(repeating: funding, count: 32)), index: 0))],
        outputs: outputs1)
    let tx2 = IshtarBitcoin.Transaction(
        inputs: [TxIn(previousOutput: spend ?? OutPoint(txid: tx1.txid, index: 1))],
        outputs: [TxOut(value: .zero, scriptPubKey: part2), TxOut(value: ckptSats(80_000), scriptPubKey: change)])
    return (tx1, tx2)
}

/// An application with the light client and the checkpoints module on a three-validator net
/// (powers 10, 11, 12 by label index: validators 0 and 2 hold exactly 2/3), an optional mirror
/// app fed the same blocks, and a relayer account.
final class CkptHarness {
    let net: TestNet
    let app: Application
    let mirror: Application?
    let params: CheckpointsParams
    let relayer = testKey("ckpt-relayer")
    var nonce: UInt64 = 0
    let btc = CkptBitcoin()
    /// The result of the last block produced.
    var lastResult: FinalizeResult?

    init(epochLength: UInt64 = 5, k: UInt64 = 2, w: UInt64 = 5, mirror: Bool = false) throws {
        params = CheckpointsParams(epochLength: epochLength, confirmationDepth: k, finalizationTimeout: w)
        net = try TestNet(validators: 3, moduleParams: [
            CheckpointsModule.moduleName: params.jsonData,
            BTCLightClientModule.moduleName: BTCLightClientParams(network: .regtest).jsonData,
        ])
        app = try makeApp(net, modules: [BTCLightClientModule(), CheckpointsModule(), CkptProbeModule()])
        self.mirror = mirror ? try makeApp(net, modules: [BTCLightClientModule(), CheckpointsModule(), CkptProbeModule()]) : nil
    }

    /// Validator key by label index (power 10 + index).
    func validator(_ i: Int) -> Schnorr.PrivateKey { net.validatorKeys[i] }

    /// Produces one block (on the mirror too, checking both reach the same app hash).
    @discardableResult
    func produce(_ transactions: [Data] = []) throws -> FinalizeResult {
        let block = try net.nextBlock(app, transactions)
        let result = try app.finalizeBlock(block)
        try app.commit()
        if let mirror {
            let other = try mirror.finalizeBlock(block)
            try mirror.commit()
            #expect(other.appHash == result.appHash, "mirror diverged at height \(block.header.height)")
            #expect(other == result)
        }
        lastResult = result
        return result
    }

    /// Produces blocks until the one ending `epoch`; returns that block's result.
    @discardableResult
    func finishEpoch(_ epoch: UInt64) throws -> FinalizeResult {
        while true {
            let result = try produce()
            if result.height == params.heights(ofEpoch: epoch).upperBound { return result }
            guard result.height < params.heights(ofEpoch: epoch).upperBound else { throw TestFailure("epoch \(epoch) already over") }
        }
    }

    /// Runs one block with one transaction of `messages` from the relayer.
    @discardableResult
    func run(_ messages: [Message]) throws -> TxResult {
        let raw = try Transaction.signed(chainID: testChainID, key: relayer, nonce: nonce, messages: messages).encoded
        let result = try produce([raw])
        let r = try #require(result.txResults.first)
        if r.isOK { nonce += 1 }
        return r
    }

    /// Runs `messages` and expects success.
    @discardableResult
    func expectOK(_ messages: [Message], sourceLocation: SourceLocation = #_sourceLocation) throws -> TxResult {
        let r = try run(messages)
        #expect(r.isOK, "\(r.log)", sourceLocation: sourceLocation)
        return r
    }

    /// Expects `messages` rejected with `rule` in `codespace`, and the state unchanged. The
    /// block is kept off an epoch's last height (whose checkpoint would change the state).
    func expectRejected(_ messages: [Message], rule: String, codespace: String = "checkpoints",
                        sourceLocation: SourceLocation = #_sourceLocation) throws {
        while params.isLastBlockOfEpoch(try #require(app.lastHeight) + 1) { try produce() }
        let before = app.lastAppHash
        let r = try run(messages)
        #expect(!r.isOK, sourceLocation: sourceLocation)
        #expect(r.codespace == codespace, "\(r.log)", sourceLocation: sourceLocation)
        #expect(r.rule == rule, "\(r.log)", sourceLocation: sourceLocation)
        #expect(r.events.isEmpty, sourceLocation: sourceLocation)
        #expect(app.lastAppHash == before, "a rejected message changed state", sourceLocation: sourceLocation)
    }

    /// Sends the headers of `hashes` to the light client.
    func sendHeaders(_ hashes: [Data], sourceLocation: SourceLocation = #_sourceLocation) throws {
        try expectOK([InsertHeaders(headers: try btc.headers(hashes)).message], sourceLocation: sourceLocation)
    }

    /// Signature messages of the validators at label indexes `signers` for `epoch`.
    func signatures(_ epoch: UInt64, by signers: [Int]) throws -> [Message] {
        let cp = try #require(try checkpoint(epoch))
        return try signers.map {
            try CheckpointsModule.signatureMessage(epoch: epoch, lastBlockHash: cp.lastBlockHash, validatorKey: validator($0))
        }
    }

    /// Ends `epoch` and seals it with every validator's signature.
    func sealEpoch(_ epoch: UInt64) throws {
        try finishEpoch(epoch)
        try expectOK(try signatures(epoch, by: [0, 1, 2]))
        #expect(try status(epoch) == "SEALED")
    }

    func query(_ path: String) throws -> [String: Any] {
        let r = try app.query(path: "/modules/checkpoints/" + path)
        guard r.isOK else { throw TestFailure("query \(path): \(r.log)") }
        return try #require(try JSONSerialization.jsonObject(with: r.value) as? [String: Any])
    }

    /// A `/modules/ckptprobe/…` answer (internal state the public queries do not show).
    func probe(_ path: String) throws -> [String: Any] {
        let r = try app.query(path: "/modules/ckptprobe/" + path)
        guard r.isOK else { throw TestFailure("probe \(path): \(r.log)") }
        return try #require(try JSONSerialization.jsonObject(with: r.value) as? [String: Any])
    }

    func status(_ epoch: UInt64) throws -> String { try query("status/\(epoch)")["status"] as? String ?? "" }

    /// The stored checkpoint, through the module's public API (via a probe-free path: the
    /// epoch query carries every field a test needs, but the API is what the node uses).
    func checkpoint(_ epoch: UInt64) throws -> (lastBlockHash: Data, qcHash: Data?, bitmap: Data?)? {
        let r = try app.query(path: "/modules/checkpoints/epoch/\(epoch)")
        guard r.isOK else { return nil }
        let json = try #require(try JSONSerialization.jsonObject(with: r.value) as? [String: Any])
        let hash = try Data(hex: try #require(json["last_block_hash"] as? String))
        let qc = json["qc"] as? [String: Any]
        return (hash, try (qc?["hash"] as? String).map { try Data(hex: $0) }, try (qc?["bitmap"] as? String).map { try Data(hex: $0) })
    }

    /// The Bitcoin checkpoint of a sealed epoch as a relayer builds it.
    func bitcoinCheckpoint(_ epoch: UInt64, submitter: Data? = nil) throws -> BitcoinCheckpoint {
        let cp = try #require(try checkpoint(epoch))
        return try BitcoinCheckpoint(tag: params.tag, epoch: epoch, lastBlockHash: cp.lastBlockHash,
                                     bitmap: try #require(cp.bitmap),
                                     submitterID: submitter ?? CheckpointsModule.submitterID(account: relayer.publicKey.rawRepresentation),
                                     quorumCertificateHash: try #require(cp.qcHash))
    }

    /// The two payloads from the module's own ``CheckpointsModule/bitcoinPayloads(epoch:submitter:in:)``
    /// (through the probe module).
    func payloads(_ epoch: UInt64, submitter: Data) throws -> (part1: Data, part2: Data) {
        let r = try app.query(path: "/modules/ckptprobe/payloads/\(epoch)/" + submitter.hexString)
        guard r.isOK else { throw TestFailure("payloads: \(r.log)") }
        let json = try #require(try JSONSerialization.jsonObject(with: r.value) as? [String: Any])
        return (try Data(hex: try #require(json["part1"] as? String)), try Data(hex: try #require(json["part2"] as? String)))
    }

    /// The `InsertBTCSpvProof` message for `tx1` in `block1` and `tx2` in `block2`.
    func proofMessage(_ tx1: IshtarBitcoin.Transaction, _ block1: Data, _ tx2: IshtarBitcoin.Transaction,
                      _ block2: Data) throws -> Message {
        InsertBTCSpvProof(part1: CheckpointTransactionProof(transaction: tx1, inclusion: try btc.proof(of: tx1, in: block1)),
                          part2: CheckpointTransactionProof(transaction: tx2, inclusion: try btc.proof(of: tx2, in: block2))).message
    }

    /// Events of `type` in a block result (block-level and every transaction's).
    func events(_ result: FinalizeResult, _ type: String) -> [Event] {
        (result.events + result.txResults.flatMap(\.events)).filter { $0.type == type }
    }
}

/// Calls the checkpoints module's public read API from another module, as the node and
/// other modules do: `/modules/ckptprobe/payloads/<epoch>/<submitter hex>` and
/// `/modules/ckptprobe/state/<epoch>`.
struct CkptProbeModule: Module {
    var name: String { "ckptprobe" }

    func query(_ request: QueryRequest, _ context: QueryContext) throws(ExecutionError) -> Data {
        let store = context.store(of: CheckpointsModule.moduleName)
        let p = request.path
        guard p.count >= 2, let epoch = UInt64(p[1]) else { throw .rule(QueryError.invalidArgument("path")) }
        if p[0] == "payloads", p.count == 3 {
            let submitter = (try? Data(hex: p[2])) ?? Data()
            let parts = try CheckpointsModule.bitcoinPayloads(epoch: epoch, submitter: submitter, in: store)
            return canonicalJSON(["part1": parts.part1.hexString, "part2": parts.part2.hexString])
        }
        let cp = try CheckpointsModule.checkpoint(epoch: epoch, in: store)
        return canonicalJSON([
            "status": try CheckpointsModule.status(epoch: epoch, in: store)?.name ?? "",
            "last_finalized": Int(try CheckpointsModule.lastFinalizedEpoch(in: store)),
            "submissions": try CheckpointsModule.submissions(epoch: epoch, in: store).count,
            "qc_hash": cp?.quorumCertificate.hash.hexString ?? "",
            "epoch_of_height": Int(try CheckpointsModule.epoch(ofHeight: context.block.height, in: store)),
            // The marker that lets end blocks skip the active index (`act/…`) when it is empty.
            "active_marker": try store.contains(Data("active".utf8)),
        ])
    }
}

extension CkptHarness {
    /// Seals epoch 1, writes it to a BTC block and submits the proof; returns the BTC block.
    func submitEpoch1() throws -> (block: Data, tx1: IshtarBitcoin.Transaction, tx2: IshtarBitcoin.Transaction) {
        try sealEpoch(1)
        let submitter = CheckpointsModule.submitterID(account: relayer.publicKey.rawRepresentation)
        let parts = try payloads(1, submitter: submitter)
        #expect(parts.part1 == (try bitcoinCheckpoint(1)).part1)
        #expect(parts.part2 == (try bitcoinCheckpoint(1)).part2)
        let (tx1, tx2) = try ckptTransactions(part1: .opReturn(parts.part1), part2: .opReturn(parts.part2), funding: 0xa1)
        let block = try btc.mine([tx1, tx2])
        try sendHeaders([block])
        let r = try expectOK([try proofMessage(tx1, block, tx2, block)])
        #expect(r.events.contains { $0.type == CheckpointsModule.submissionAddedEvent && $0["epoch"] == "1" })
        return (block, tx1, tx2)
    }
}
