import Foundation
import IshtarBitcoin
import IshtarChain
import IshtarCrypto
import Testing

/// A regtest block tree (forks allowed): blocks of a coinbase plus given transactions, each
/// coinbase salted so sibling blocks with the same transactions differ.
final class ForkingBTC {
    private var blocks: [Data: [IshtarBitcoin.Transaction]] = [:]
    let genesis = Network.regtest.genesisHeader

    /// Mines one block on `parent` holding `transactions`.
    func mine(on parent: BTCBlockHeader, _ transactions: [IshtarBitcoin.Transaction] = [], salt: UInt8 = 0) throws -> BTCBlockHeader {
        let coinbase = IshtarBitcoin.Transaction(
            inputs: [TxIn(previousOutput: OutPoint(txid: .zero, index: .max),
                          scriptSig: Script(bytes: Data([0x04, salt]) + parent.hash.rawValue.prefix(8)))],
            outputs: [TxOut(value: stkSats(5_000_000_000), scriptPubKey: Script(bytes: Data([0x51])))])
        let txs = [coinbase] + transactions
        var header = BTCBlockHeader(version: 0x2000_0000, previousBlockHash: parent.hash,
                                    merkleRoot: try BlockMerkle.root(transactions: txs), time: parent.time + 600,
                                    bits: 0x207f_ffff, nonce: 0)
        while (try? header.checkProofOfWork(powLimit: PowParameters.regtest.powLimit)) == nil { header.nonce &+= 1 }
        blocks[header.hash.rawValue] = txs
        return header
    }

    /// `count` blocks on `parent`, the first holding `first`.
    func branch(on parent: BTCBlockHeader, count: Int, first: [IshtarBitcoin.Transaction] = [], salt: UInt8) throws -> [BTCBlockHeader] {
        var out: [BTCBlockHeader] = []
        var prev = parent
        for i in 0..<count {
            prev = try mine(on: prev, i == 0 ? first : [], salt: salt)
            out.append(prev)
        }
        return out
    }

    func proof(of tx: IshtarBitcoin.Transaction, in header: BTCBlockHeader) throws -> BTCInclusionProofPayload {
        let txs = try #require(blocks[header.hash.rawValue])
        let index = try #require(txs.firstIndex { $0.txid == tx.txid })
        return BTCInclusionProofPayload(blockHash: header.hash.rawValue,
                                        proof: try PinnedInclusionProof(transactions: txs, index: index))
    }
}

@Suite("StakingReorg")
struct StakingReorgTests {
    let fpKey = stkKey(0x21)
    let stakerKey = stkKey(0x31)

    /// One chain with a registered provider and a VERIFIED delegation (3-of-5 covenant sigs).
    struct World {
        let net: TestNet
        let app: Application
        let staker = StakingActor("staker")
        let relayer = StakingActor("relayer")
        let btc = ForkingBTC()
        let maker: DelegationMaker
        let d: DelegationTransactions

        var txid: Data { d.stakingTransaction.txid.rawValue }

        func status() throws -> String? {
            try stkQuery(app, "delegation/" + d.stakingTransaction.txid.displayHex)["status"] as? String
        }

        func powerKeys(at height: UInt64) throws -> [String] {
            let table = try stkQuery(app, "voting-power/\(height)")["table"] as? [[String: Any]] ?? []
            return table.map { $0["fp_btc_pk"] as? String ?? "" }
        }

        func insert(_ headers: [BTCBlockHeader]) throws -> FinalizeResult {
            try produce([InsertHeaders(headers: headers).message])
        }

        /// One block with one relayer transaction; expects it to succeed.
        func produce(_ messages: [Message]) throws -> FinalizeResult {
            let r = try net.produce(app, [try relayer.tx(messages)])
            #expect(r.txResults[0].isOK, "\(r.txResults[0].log)")
            if r.txResults[0].isOK { relayer.nonce += 1 }
            return r
        }

        func proofMessage(in header: BTCBlockHeader) throws -> Message {
            AddBTCDelegationInclusionProof(stakingTxid: txid, proof: try btc.proof(of: d.stakingTransaction, in: header)).message
        }
    }

    func world(funding: UInt8 = 7) throws -> World {
        let net = try StakingWorld.net()
        let app = try StakingWorld.app(net)
        let owner = StakingActor("fp-owner")
        let register = CreateFinalityProvider(
            btcKey: fpKey.publicKey.rawRepresentation,
            proofOfPossession: try StakingModule.proofOfPossession(key: fpKey, chainID: testChainID, account: owner.account),
            description: FinalityProviderDescription(moniker: "fp", website: ""), commission: try #require(Commission(decimal: "0.1")),
            consumerChainID: testChainID).message
        #expect(try stkRun(net, app, owner, [register]).isOK)
        let maker = DelegationMaker(staker: stakerKey, provider: fpKey.publicKey)
        let d = try maker.make(funding: funding)
        let w = World(net: net, app: app, maker: maker, d: d)
        #expect(try stkRun(net, app, w.staker, [try maker.message(d, sender: w.staker)]).isOK)
        _ = try w.produce((0..<3).map { try maker.covenantMessage(d, covenant: $0) })
        #expect(try w.status() == "VERIFIED")
        return w
    }

    var fpHex: String { fpKey.publicKey.rawRepresentation.hexString }

    /// Chain A: a1 holds the staking tx, then 10 more (a1 is 10 deep at a11); the proof activates.
    func activateOnChainA(_ w: World) throws -> (chain: [BTCBlockHeader], activatedAt: UInt64) {
        let a = try w.btc.branch(on: w.btc.genesis, count: 11, first: [w.d.stakingTransaction], salt: 0xA)
        _ = try w.insert(a)
        let r = try w.produce([try w.proofMessage(in: a[0])])
        #expect(try w.status() == "ACTIVE")
        #expect(try w.powerKeys(at: r.height + 1) == [fpHex])
        return (a, r.height)
    }

    @Test func reorgDeactivatesAndNewProofReactivates() throws {
        let w = try world()
        let (a, _) = try activateOnChainA(w)
        // Chain B from genesis, one block longer, with the staking tx in b2 (10 deep at b12).
        var b = [try w.btc.mine(on: w.btc.genesis, salt: 0xB)]
        b += try w.btc.branch(on: b[0], count: 11, first: [w.d.stakingTransaction], salt: 0xB)
        let reorg = try w.insert(b)
        #expect(reorg.txResults[0].events.contains { $0.type == BTCLightClientModule.rollBackEvent })
        let reorged = reorg.events.filter { $0.type == "staking.delegation_inclusion_reorged" }
        #expect(reorged.count == 1)
        #expect(reorged.first?.attributes.contains(EventAttribute("status", "VERIFIED")) == true)
        #expect(reorged.first?.attributes.contains(EventAttribute("btc_block_hash", a[0].hash.displayHex)) == true)
        #expect(try w.status() == "VERIFIED")
        let del = try stkQuery(w.app, "delegation/" + w.d.stakingTransaction.txid.displayHex)
        #expect(del["inclusion_block_hash"] == nil)
        // Still counts at the reorg's height; gone from the next.
        #expect(try w.powerKeys(at: reorg.height) == [fpHex])
        #expect(try w.powerKeys(at: reorg.height + 1).isEmpty)
        #expect(try stkQuery(w.app, "finality-provider/" + fpHex)["status"] as? String == "INACTIVE")
        // The old proof no longer verifies (its block is off the main chain); a proof in b2 does.
        let stale = try w.net.produce(w.app, [try w.relayer.tx([try w.proofMessage(in: a[0])])])
        #expect(stale.txResults[0].rule == "header-not-on-main-chain")
        let again = try w.produce([try w.proofMessage(in: b[1])])
        #expect(again.txResults[0].events.contains { $0.type == "staking.delegation_active" })
        #expect(try w.status() == "ACTIVE")
        #expect(try w.powerKeys(at: again.height + 1) == [fpHex])
        #expect(try w.app.recomputeAppHash() == w.app.lastAppHash)
    }

    @Test func reorgNotTouchingTheBlockChangesNothing() throws {
        let w = try world()
        let (a, activatedAt) = try activateOnChainA(w)
        let path = "delegation/" + w.d.stakingTransaction.txid.displayHex
        let before = try w.app.query(path: "/modules/staking/" + path).value
        // Replace a6…a11 by c6…c12: a1 stays on the main chain (and is 11 deep).
        let c = try w.btc.branch(on: a[4], count: 7, salt: 0xC)
        let reorg = try w.insert(c)
        #expect(reorg.txResults[0].events.filter { $0.type == BTCLightClientModule.rollBackEvent }.count == 6)
        #expect(!reorg.events.contains { $0.type.hasPrefix("staking.") })
        #expect(try w.app.query(path: "/modules/staking/" + path).value == before)
        #expect(try w.powerKeys(at: reorg.height + 1) == [fpHex])
        #expect(try w.powerKeys(at: activatedAt + 1) == [fpHex])
        #expect(try w.status() == "ACTIVE")
    }

    @Test func unbondingReorgedOutRestoresPower() throws {
        let w = try world()
        let (a, _) = try activateOnChainA(w)
        var spend = w.d.unbondingTransaction
        spend.inputs[0].witness = [Data(repeating: 1, count: 64)]
        let u = try w.btc.mine(on: a[10], [spend], salt: 0xA)
        _ = try w.insert([u])
        let report = BTCUndelegate(stakingTxid: w.txid, unbondingTransaction: spend, proof: try w.btc.proof(of: spend, in: u)).message
        let unbond = try w.produce([report])
        #expect(try w.status() == "UNBONDED")
        #expect(try w.powerKeys(at: unbond.height + 1).isEmpty)
        // Two blocks on a11 replace u: the unbonding report is forgotten, the delegation is
        // ACTIVE again (a1 is still on the main chain) and counts from the next height.
        let reorg = try w.insert(try w.btc.branch(on: a[10], count: 2, salt: 0xD))
        let reverted = reorg.events.filter { $0.type == "staking.delegation_unbonding_reorged" }
        #expect(reverted.count == 1)
        #expect(reverted.first?.attributes.contains(EventAttribute("status", "ACTIVE")) == true)
        #expect(try w.status() == "ACTIVE")
        let del = try stkQuery(w.app, "delegation/" + w.d.stakingTransaction.txid.displayHex)
        #expect(del["unbonding_block_hash"] == nil)
        #expect(try w.powerKeys(at: reorg.height).isEmpty)
        #expect(try w.powerKeys(at: reorg.height + 1) == [fpHex])
        // The same report is refused (its block is off the main chain); unbonding in the new chain works.
        let stale = try w.net.produce(w.app, [try w.relayer.tx([report])])
        #expect(stale.txResults[0].rule == "header-not-on-main-chain")
        #expect(try w.app.recomputeAppHash() == w.app.lastAppHash)
    }

    /// A block that joins and leaves the main chain within one control-plane block: the
    /// activation made in between is undone at the end of that block.
    @Test func activationAndReorgInOneBlock() throws {
        let w = try world()
        let a = try w.btc.branch(on: w.btc.genesis, count: 11, first: [w.d.stakingTransaction], salt: 0xA)
        let b = try w.btc.branch(on: w.btc.genesis, count: 12, salt: 0xB)
        let r = try w.produce([InsertHeaders(headers: a).message, try w.proofMessage(in: a[0]),
                               InsertHeaders(headers: b).message])
        #expect(r.txResults[0].events.contains { $0.type == "staking.delegation_active" })
        #expect(r.events.contains { $0.type == "staking.delegation_inclusion_reorged" })
        #expect(try w.status() == "VERIFIED")
        #expect(try w.powerKeys(at: r.height + 1).isEmpty)
        #expect(try w.app.recomputeAppHash() == w.app.lastAppHash)
    }

    /// Two applications fed the same blocks (activation, reorg, re-proof) agree on every app hash.
    @Test func appHashDeterminism() throws {
        let worlds = [try world(), try world()]
        var hashes: [[Data]] = [[], []]
        for (i, w) in worlds.enumerated() {
            let a = try w.btc.branch(on: w.btc.genesis, count: 11, first: [w.d.stakingTransaction], salt: 0xA)
            var b = [try w.btc.mine(on: w.btc.genesis, salt: 0xB)]
            b += try w.btc.branch(on: b[0], count: 11, first: [w.d.stakingTransaction], salt: 0xB)
            hashes[i].append(try w.insert(a).appHash)
            hashes[i].append(try w.produce([try w.proofMessage(in: a[0])]).appHash)
            hashes[i].append(try w.insert(b).appHash)
            hashes[i].append(try w.produce([try w.proofMessage(in: b[1])]).appHash)
            #expect(try w.status() == "ACTIVE")
        }
        #expect(hashes[0] == hashes[1])
        #expect(Set(hashes[0]).count == 4)
    }
}
