import Foundation
import IshtarBitcoin
import IshtarChain
import IshtarCrypto
import IshtarStore
import Testing

/// An amount from a literal known to be valid.
func stkSats(_ v: Int64) -> Amount { (try? Amount(sats: v)) ?? .zero }

/// A small key from a scalar (always valid for small nonzero scalars).
func stkKey(_ scalar: UInt8) -> Schnorr.PrivateKey {
    (try? Schnorr.PrivateKey(rawRepresentation: Data(repeating: 0, count: 31) + [scalar])) ?? Schnorr.PrivateKey()
}

/// Covenant committee of five (3-of-5), regtest parameters with short times so tests can mine
/// past them: staking time 40…1000, unbonding 10 blocks, k = 10.
struct StakingWorld {
    static let covenants: [Schnorr.PrivateKey] = (0x41...0x45).map { stkKey(UInt8($0)) }
    static let unbondingTime: UInt16 = 10
    static let stakingTime: UInt16 = 40

    static var btcParams: StakingParameters {
        var p = StakingParameters.ishtarDefaults(covenantKeys: covenants.map(\.publicKey), covenantQuorum: 3, network: .regtest)
        p.minStakingTime = 40
        p.maxStakingTime = 1000
        p.unbondingTime = unbondingTime
        return p
    }

    /// A test net whose genesis configures the light client (regtest genesis at height 0)
    /// and staking.
    static func net(minCommission: String = "0.05", maxActive: UInt32 = 100) throws -> TestNet {
        let staking = try StakingGenesis(btcStaking: btcParams, minCommission: minCommission,
                                         maxActiveFinalityProviders: maxActive, btcConfirmationDepth: 10).jsonData()
        return try TestNet(moduleParams: [
            StakingModule.moduleName: staking,
            BTCLightClientModule.moduleName: BTCLightClientParams(network: .regtest).jsonData,
        ])
    }

    static func app(_ net: TestNet) throws -> Application {
        let app = try makeApp(net, modules: [BTCLightClientModule(), StakingModule(), StakingTestHookModule()])
        // The first block sets the expiry cursor; later rejection tests compare app hashes.
        try net.produce(app, [])
        return app
    }
}

/// An account sending transactions with increasing nonces (a rejected one does not use its nonce).
final class StakingActor {
    let key: Schnorr.PrivateKey
    var nonce: UInt64 = 0
    init(_ label: String) { key = testKey(label) }
    var account: Data { key.publicKey.rawRepresentation }

    func tx(_ messages: [Message]) throws -> Data {
        try IshtarChain.Transaction.signed(chainID: testChainID, key: key, nonce: nonce, messages: messages).encoded
    }
}

/// Runs one block with one transaction from `actor`; returns its result.
@discardableResult
func stkRun(_ net: TestNet, _ app: Application, _ actor: StakingActor, _ messages: [Message]) throws -> TxResult {
    let result = try net.produce(app, [try actor.tx(messages)])
    let r = result.txResults[0]
    if r.isOK { actor.nonce += 1 }
    return r
}

/// Expects the messages to be rejected with `rule` (codespace `staking` unless given) and the
/// state to be exactly as before.
func stkExpectRejected(_ net: TestNet, _ app: Application, _ actor: StakingActor, _ messages: [Message], rule: String,
                       codespace: String = "staking", contains: String? = nil,
                       sourceLocation: SourceLocation = #_sourceLocation) throws {
    let before = app.lastAppHash
    let r = try stkRun(net, app, actor, messages)
    #expect(!r.isOK, sourceLocation: sourceLocation)
    #expect(r.codespace == codespace, "\(r.log)", sourceLocation: sourceLocation)
    #expect(r.rule == rule, "\(r.log)", sourceLocation: sourceLocation)
    if let contains { #expect(r.log.contains(contains), "\(r.log)", sourceLocation: sourceLocation) }
    #expect(app.lastAppHash == before, "a rejected message changed state", sourceLocation: sourceLocation)
}

func stkQuery(_ app: Application, _ path: String) throws -> [String: Any] {
    let r = try app.query(path: "/modules/staking/" + path)
    guard r.isOK else { throw TestFailure("query \(path): \(r.log)") }
    return try #require(try JSONSerialization.jsonObject(with: r.value) as? [String: Any])
}

/// A regtest Bitcoin chain built in the test: blocks of a coinbase plus given transactions,
/// headers ground to the regtest target.
final class RegtestChain {
    private(set) var headers: [BTCBlockHeader] = [Network.regtest.genesisHeader]
    private var blocks: [Data: [IshtarBitcoin.Transaction]] = [:]
    /// Headers not yet sent to the light client.
    private(set) var unsent: [BTCBlockHeader] = []

    var tipHeight: UInt64 { UInt64(headers.count - 1) }

    /// Mines one block holding `transactions` after a coinbase; returns its hash.
    @discardableResult
    func mine(_ transactions: [IshtarBitcoin.Transaction] = []) throws -> Data {
        let height = headers.count
        let coinbase = IshtarBitcoin.Transaction(
            inputs: [TxIn(previousOutput: OutPoint(txid: .zero, index: .max),
                          scriptSig: Script(bytes: Data([0x04]) + withUnsafeBytes(of: UInt32(height).littleEndian) { Data($0) }))],
            outputs: [TxOut(value: stkSats(5_000_000_000), scriptPubKey: Script(bytes: Data([0x51])))])
        let txs = [coinbase] + transactions
        var header = BTCBlockHeader(version: 0x2000_0000, previousBlockHash: headers[headers.count - 1].hash,
                                 merkleRoot: try BlockMerkle.root(transactions: txs),
                                 time: Network.regtest.genesisHeader.time + UInt32(600 * height), bits: 0x207f_ffff, nonce: 0)
        while (try? header.checkProofOfWork(powLimit: PowParameters.regtest.powLimit)) == nil { header.nonce &+= 1 }
        headers.append(header)
        unsent.append(header)
        blocks[header.hash.rawValue] = txs
        return header.hash.rawValue
    }

    /// Mines `count` empty blocks.
    func mineEmpty(_ count: Int) throws {
        for _ in 0..<count { try mine() }
    }

    /// The inclusion proof of `tx` in block `hash`.
    func proof(of tx: IshtarBitcoin.Transaction, in hash: Data) throws -> BTCInclusionProofPayload {
        let txs = try #require(blocks[hash])
        let index = try #require(txs.firstIndex { $0.txid == tx.txid })
        return BTCInclusionProofPayload(blockHash: hash, proof: try PinnedInclusionProof(transactions: txs, index: index))
    }

    /// The `InsertHeaders` message for the headers not yet sent.
    func takeUnsent() -> Message {
        defer { unsent = [] }
        return InsertHeaders(headers: unsent).message
    }
}

/// Builds genuinely valid delegations with the Bitcoin layer's builders and signers.
struct DelegationMaker {
    var staker: Schnorr.PrivateKey
    var provider: Schnorr.PublicKey
    var parameters = StakingWorld.btcParams
    var stakingTime = StakingWorld.stakingTime
    var stakingValue = stkSats(1_000_000)

    /// A fully staker-signed delegation whose staking transaction spends a made-up outpoint
    /// distinguished by `funding` (so each call with a new value has a new txid).
    func make(funding: UInt8) throws -> DelegationTransactions {
        let builder = try StakingBuilder(stakerKey: staker.publicKey, finalityProviderKeys: [provider],
                                         stakingTime: stakingTime, parameters: parameters)
        let staking = IshtarBitcoin.Transaction(
            inputs: [TxIn(previousOutput: OutPoint(txid: try Hash256(rawValue: Data(repeating: funding, count: 32)), index: 0))],
            outputs: [TxOut(value: stkSats(5_000), scriptPubKey: .p2tr(outputKey: staker.publicKey)), builder.stakingOutput(value: stakingValue)])
        let outPoint = OutPoint(txid: staking.txid, index: 1)
        let unbonding = try builder.unbondingTransaction(stakingOutPoint: outPoint, stakingValue: stakingValue)
        let slashing = try builder.slashingTransaction(stakingOutPoint: outPoint, stakingValue: stakingValue)
        let unbondingSlashing = try builder.unbondingSlashingTransaction(unbondingTransaction: unbonding)
        let placeholder = try Schnorr.Signature(rawRepresentation: Data(count: 64))
        var d = DelegationTransactions(
            stakerKey: staker.publicKey, finalityProviderKeys: [provider], stakingTime: stakingTime, stakingValue: stakingValue,
            stakingTransaction: staking, stakingOutputIndex: 1, unbondingTransaction: unbonding, slashingTransaction: slashing,
            unbondingSlashingTransaction: unbondingSlashing, stakerSlashingSignature: placeholder,
            stakerUnbondingSlashingSignature: placeholder)
        try resign(&d)
        return d
    }

    /// Re-makes the staker's two slashing signatures after a change.
    func resign(_ d: inout DelegationTransactions) throws {
        let builder = try StakingBuilder(stakerKey: d.stakerKey, finalityProviderKeys: d.finalityProviderKeys,
                                         stakingTime: d.stakingTime, parameters: parameters)
        let value = d.stakingTransaction.outputs[Int(d.stakingOutputIndex)].value
        let unbondingValue = d.unbondingTransaction.outputs.first?.value ?? .zero
        d.stakerSlashingSignature = try StakingSigner.sign(
            sighash: builder.slashingSighash(slashingTransaction: d.slashingTransaction, stakingValue: value),
            key: staker, auxiliaryRandomness: Data(count: 32))
        d.stakerUnbondingSlashingSignature = try StakingSigner.sign(
            sighash: builder.unbondingSlashingSighash(unbondingSlashingTransaction: d.unbondingSlashingTransaction,
                                                      unbondingValue: unbondingValue),
            key: staker, auxiliaryRandomness: Data(count: 32))
    }

    /// The `CreateBTCDelegation` message for `d` sent by `sender`.
    func message(_ d: DelegationTransactions, sender: StakingActor, proof: BTCInclusionProofPayload? = nil) throws -> Message {
        CreateBTCDelegation(
            stakerKey: d.stakerKey.rawRepresentation,
            stakerProofOfPossession: try StakingModule.proofOfPossession(key: staker, chainID: testChainID, account: sender.account),
            finalityProviderKeys: d.finalityProviderKeys.map(\.rawRepresentation), stakingTransaction: d.stakingTransaction,
            stakingOutputIndex: d.stakingOutputIndex, stakingTime: d.stakingTime, stakingValue: UInt64(d.stakingValue.sats),
            unbondingTransaction: d.unbondingTransaction, unbondingTime: parameters.unbondingTime,
            unbondingValue: UInt64(d.unbondingTransaction.outputs.first?.value.sats ?? 0),
            slashingTransaction: d.slashingTransaction, stakerSlashingSignature: d.stakerSlashingSignature.rawRepresentation,
            unbondingSlashingTransaction: d.unbondingSlashingTransaction,
            stakerUnbondingSlashingSignature: d.stakerUnbondingSlashingSignature.rawRepresentation,
            inclusionProof: proof).message
    }

    /// Covenant member `index`'s `AddCovenantSigs` message (deterministic aux randomness).
    func covenantMessage(_ d: DelegationTransactions, covenant index: Int) throws -> Message {
        let key = StakingWorld.covenants[index]
        let valid = try StakingValidation.validate(delegation: d, parameters: parameters)
        let unbonding = try StakingSigner.sign(sighash: valid.unbondingSighash, key: key, auxiliaryRandomness: Data(count: 32))
        let slashing = try CovenantAdaptor.sign(covenantKey: key, sighash: valid.slashingSighash, finalityProviderKey: provider,
                                                auxiliaryRandomness: Data(count: 32))
        let unbondingSlashing = try CovenantAdaptor.sign(covenantKey: key, sighash: valid.unbondingSlashingSighash,
                                                         finalityProviderKey: provider, auxiliaryRandomness: Data(count: 32))
        let set = CovenantSignatureSet(covenantKey: key.publicKey, unbondingSignature: unbonding,
                                       slashingAdaptorSignatures: [provider: slashing],
                                       unbondingSlashingAdaptorSignatures: [provider: unbondingSlashing])
        return AddCovenantSigs(stakingTxid: d.stakingTransaction.txid.rawValue, set: set).message
    }
}

/// Test-only module standing in for the finality module: calls the staking module's public
/// slash/jail/unjail API from a message (`stktest/Slash|Jail|Unjail`, payload = fp key).
struct StakingTestHookModule: Module {
    var name: String { "stktest" }
    var messageTypes: [String] { ["stktest/Slash", "stktest/Jail", "stktest/Unjail"] }

    func deliverMessage(_ message: Message, _ context: TxContext) throws(ExecutionError) {
        let store = context.store(of: StakingModule.moduleName)
        switch message.type {
        case "stktest/Slash": try StakingModule.slashFinalityProvider(key: message.payload, in: context)
        case "stktest/Jail":
            if let e = try StakingModule.jailFinalityProvider(key: message.payload, in: store) { context.emit(e) }
        default: context.emit(try StakingModule.unjailFinalityProvider(key: message.payload, in: store))
        }
    }
}
