import Foundation
import IshtarBitcoin
import IshtarChain
import IshtarCrypto
import Testing

@Suite("StakingModule")
struct StakingModuleTests {
    let fpKey = stkKey(0x21)
    let fpKey2 = stkKey(0x22)
    let fpKey3 = stkKey(0x23)
    let stakerKey = stkKey(0x31)

    func description(_ moniker: String = "fp") -> FinalityProviderDescription {
        FinalityProviderDescription(moniker: moniker, website: "https://example.org")
    }

    func registerMessage(_ key: Schnorr.PrivateKey, _ owner: StakingActor, commission: String = "0.1",
                         chainID: String = testChainID, popAccount: Data? = nil) throws -> Message {
        CreateFinalityProvider(
            btcKey: key.publicKey.rawRepresentation,
            proofOfPossession: try StakingModule.proofOfPossession(key: key, chainID: testChainID, account: popAccount ?? owner.account),
            description: description(), commission: try #require(Commission(decimal: commission)), consumerChainID: chainID).message
    }

    // MARK: - Finality providers

    @Test func finalityProviderRegistrationAndEditing() throws {
        let net = try StakingWorld.net()
        let app = try StakingWorld.app(net)
        let owner = StakingActor("fp-owner")
        let other = StakingActor("other")
        // Bad PoP: signed for another account.
        try stkExpectRejected(net, app, owner, [try registerMessage(fpKey, owner, popAccount: other.account)],
                              rule: "invalid-proof-of-possession")
        try stkExpectRejected(net, app, owner, [try registerMessage(fpKey, owner, commission: "0.04")],
                              rule: "commission-below-minimum")
        // Consumer chain ids follow the genesis alphabet: "\u{212A}" (the Kelvin sign) would
        // equal "K" under Swift's String == while its state keys hold other bytes.
        // A stateless rule: refused at checkTx (and a proposal carrying it is refused).
        for id in ["\u{212A}-chain", "with space", ""] {
            let checked = try app.checkTx(try owner.tx([try registerMessage(fpKey, owner, chainID: id)]))
            #expect(checked.result.rule == "invalid-consumer-chain-id", "\(id): \(checked.result.log)")
        }
        #expect(try stkRun(net, app, owner, [try registerMessage(fpKey, owner)]).isOK)
        try stkExpectRejected(net, app, other, [try registerMessage(fpKey, other)], rule: "finality-provider-exists")
        let edit = EditFinalityProvider(btcKey: fpKey.publicKey.rawRepresentation, description: description("renamed"),
                                        commission: try #require(Commission(decimal: "0.2"))).message
        try stkExpectRejected(net, app, other, [edit], rule: "not-finality-provider-owner")
        // Stateless rules.
        let bad = CreateFinalityProvider(btcKey: fpKey2.publicKey.rawRepresentation, proofOfPossession: Data(count: 64),
                                         description: description(""), commission: .zero, consumerChainID: testChainID).message
        // Stateless rules reject in checkTx (and a proposal carrying it is refused).
        let checked = try app.checkTx(try owner.tx([bad]))
        #expect(checked.result.rule == "empty-moniker")
        #expect(checked.result.codespace == "staking")
        #expect(try stkRun(net, app, owner, [edit]).isOK)
        let fp = try stkQuery(app, "finality-provider/" + fpKey.publicKey.rawRepresentation.hexString)
        #expect((fp["description"] as? [String: Any])?["moniker"] as? String == "renamed")
        #expect(fp["commission"] as? String == "0.2")
        #expect(fp["status"] as? String == "REGISTERED")
        #expect(fp["owner"] as? String == owner.account.hexString)
        #expect(fp["consumer_chain_id"] as? String == testChainID)
        let all = try stkQuery(app, "finality-providers")
        #expect((all["finality_providers"] as? [Any])?.count == 1)
        let params = try stkQuery(app, "params/0")
        #expect(params["version"] as? Int == 0)
        #expect((params["params"] as? [String: Any])?["min_commission"] as? String == "0.05")
        #expect(try !app.query(path: "/modules/staking/params/1").isOK)
    }

    @Test func commissionParsing() throws {
        #expect(Commission(decimal: "0.05")?.units == 50_000_000_000_000_000)
        #expect(Commission(decimal: "1")?.units == Commission.scale)
        #expect(Commission(decimal: "1.5") == nil)
        #expect(Commission(decimal: "0.") == nil)
        #expect(Commission(decimal: "-0.1") == nil)
        #expect(Commission(decimal: "0.050")?.description == "0.05")
        #expect(Commission(decimal: "0")?.description == "0")
    }

    // MARK: - Delegations

    /// Registers `fpKey` and returns the app, net, actors, BTC chain and maker.
    func setUp(maxActive: UInt32 = 100) throws -> (TestNet, Application, StakingActor, StakingActor, RegtestChain, DelegationMaker) {
        let net = try StakingWorld.net(maxActive: maxActive)
        let app = try StakingWorld.app(net)
        let owner = StakingActor("fp-owner")
        let staker = StakingActor("staker")
        #expect(try stkRun(net, app, owner, [try registerMessage(fpKey, owner)]).isOK)
        let maker = DelegationMaker(staker: stakerKey, provider: fpKey.publicKey)
        return (net, app, owner, staker, RegtestChain(), maker)
    }

    func status(_ app: Application, _ d: DelegationTransactions) throws -> String? {
        try stkQuery(app, "delegation/" + d.stakingTransaction.txid.displayHex)["status"] as? String
    }

    func power(_ app: Application, at height: UInt64) throws -> [(String, String)] {
        let table = try stkQuery(app, "voting-power/\(height)")["table"] as? [[String: Any]] ?? []
        return table.map { ($0["fp_btc_pk"] as? String ?? "", $0["power"] as? String ?? "") }
    }

    @Test func delegationLifecycle() throws {
        let (net, app, _, staker, btc, maker) = try setUp()
        let relayer = StakingActor("relayer")
        let covenant = StakingActor("covenant")
        let d = try maker.make(funding: 1)

        // Creation checks.
        var lowSlash = d
        lowSlash.slashingTransaction.outputs[0].value = stkSats(99_999)
        lowSlash.slashingTransaction.outputs[1].value = stkSats(1_000_000 - 99_999 - 1_000)
        try maker.resign(&lowSlash)
        try stkExpectRejected(net, app, staker, [try maker.message(lowSlash, sender: staker)], rule: "invalid-delegation",
                              contains: "slashingOutputBelowRate")
        var unknownFP = DelegationMaker(staker: stakerKey, provider: fpKey2.publicKey)
        unknownFP.stakingValue = stkSats(1_000_000)
        try stkExpectRejected(net, app, staker, [try unknownFP.message(try unknownFP.make(funding: 9), sender: staker)],
                              rule: "unknown-finality-provider")
        #expect(try stkRun(net, app, staker, [try maker.message(d, sender: staker)]).isOK)
        #expect(try status(app, d) == "PENDING")
        try stkExpectRejected(net, app, staker, [try maker.message(d, sender: staker)], rule: "duplicate-delegation")

        // Covenant signatures.
        #expect(try stkRun(net, app, covenant, [try maker.covenantMessage(d, covenant: 0)]).isOK)
        #expect(try stkRun(net, app, covenant, [try maker.covenantMessage(d, covenant: 1)]).isOK)
        #expect(try status(app, d) == "PENDING")
        try stkExpectRejected(net, app, covenant, [try maker.covenantMessage(d, covenant: 1)], rule: "duplicate-covenant-signature")
        // A bad adaptor signature: covenant 2's slashing adaptor replaced by one over another message.
        var bad = try AddCovenantSigs(decoding: try maker.covenantMessage(d, covenant: 2).payload)
        let wrong = try CovenantAdaptor.sign(covenantKey: StakingWorld.covenants[2], sighash: Data(repeating: 7, count: 32),
                                             finalityProviderKey: fpKey.publicKey, auxiliaryRandomness: Data(count: 32))
        bad.signatures.slashingAdaptors[0].adaptorSignature = wrong.rawRepresentation
        try stkExpectRejected(net, app, covenant, [bad.message], rule: "invalid-covenant-signatures",
                              contains: "invalidCovenantAdaptorSignature")
        // A key outside the committee.
        var outsider = try AddCovenantSigs(decoding: try maker.covenantMessage(d, covenant: 2).payload)
        outsider.signatures.covenantKey = stkKey(0x66).publicKey.rawRepresentation
        try stkExpectRejected(net, app, covenant, [outsider.message], rule: "not-covenant-member")
        #expect(try stkRun(net, app, covenant, [try maker.covenantMessage(d, covenant: 2)]).isOK)
        #expect(try status(app, d) == "VERIFIED")

        // Inclusion: mined, but only 9 deep (k = 10) → refused; one more block → ACTIVE.
        let block = try btc.mine([d.stakingTransaction])
        try btc.mineEmpty(9)
        #expect(try stkRun(net, app, relayer, [btc.takeUnsent()]).isOK)
        let proof = AddBTCDelegationInclusionProof(stakingTxid: d.stakingTransaction.txid.rawValue,
                                                   proof: try btc.proof(of: d.stakingTransaction, in: block)).message
        try stkExpectRejected(net, app, relayer, [proof], rule: "header-not-deep-enough")
        // A proof for another transaction does not verify.
        var wrongTx = try AddBTCDelegationInclusionProof(decoding: proof.payload)
        wrongTx.proof = try btc.proof(of: d.stakingTransaction, in: block)
        wrongTx.proof.blockHash = btc.headers[0].hash.rawValue
        try btc.mine()
        #expect(try stkRun(net, app, relayer, [btc.takeUnsent()]).isOK)
        try stkExpectRejected(net, app, relayer, [wrongTx.message], rule: "invalid-inclusion-proof")
        let activation = try net.produce(app, [try relayer.tx([proof])])
        #expect(activation.txResults[0].isOK, "\(activation.txResults[0].log)")
        relayer.nonce += 1
        #expect(activation.txResults[0].events.contains { $0.type == "staking.delegation_active" })
        #expect(try status(app, d) == "ACTIVE")
        let h = activation.height
        let fpHex = fpKey.publicKey.rawRepresentation.hexString
        #expect(try power(app, at: h).isEmpty)
        #expect(try power(app, at: h + 1).map(\.0) == [fpHex])
        #expect(try power(app, at: h + 1).map(\.1) == ["1000000"])
        #expect(try stkQuery(app, "finality-provider/" + fpHex)["status"] as? String == "ACTIVE")
        let del = try stkQuery(app, "delegation/" + d.stakingTransaction.txid.displayHex)
        #expect(del["start_height"] as? String == "1")
        #expect(del["end_height"] as? String == "41")
        #expect((del["covenant_sigs"] as? [Any])?.count == 3)
        #expect(((try stkQuery(app, "finality-provider/\(fpHex)/delegations"))["delegations"] as? [Any])?.count == 1)
        #expect(((try stkQuery(app, "delegations/staker/" + stakerKey.publicKey.rawRepresentation.hexString))["delegations"] as? [Any])?.count == 1)

        // Unbonding: the reported transaction must be the delegation's unbonding transaction.
        var signedUnbonding = d.unbondingTransaction
        signedUnbonding.inputs[0].witness = [Data(repeating: 1, count: 64)]
        let ubBlock = try btc.mine([signedUnbonding])
        #expect(try stkRun(net, app, relayer, [btc.takeUnsent()]).isOK)
        var other = d.unbondingTransaction
        other.lockTime = 1
        let wrongReport = BTCUndelegate(stakingTxid: d.stakingTransaction.txid.rawValue, unbondingTransaction: other,
                                        proof: try btc.proof(of: signedUnbonding, in: ubBlock)).message
        try stkExpectRejected(net, app, staker, [wrongReport], rule: "not-unbonding-transaction")
        let report = BTCUndelegate(stakingTxid: d.stakingTransaction.txid.rawValue, unbondingTransaction: signedUnbonding,
                                   proof: try btc.proof(of: signedUnbonding, in: ubBlock)).message
        let unbond = try net.produce(app, [try staker.tx([report])])
        #expect(unbond.txResults[0].isOK, "\(unbond.txResults[0].log)")
        staker.nonce += 1
        #expect(try status(app, d) == "UNBONDED")
        // Kept without the witness the reporter sent: the proof covers the txid only.
        let unbonded = try stkQuery(app, "delegation/" + d.stakingTransaction.txid.displayHex)
        #expect(unbonded["unbonding_spend_tx"] as? String == signedUnbonding.serialized(includingWitness: false).hexString)
        // The provider that lost its delegations' power stops counting at the next height.
        #expect(try power(app, at: unbond.height).map(\.0) == [fpHex])
        #expect(try power(app, at: unbond.height + 1).isEmpty)
        #expect(try power(app, at: h + 1).map(\.0) == [fpHex])
        #expect(try stkQuery(app, "finality-provider/" + fpHex)["status"] as? String == "INACTIVE")
        try stkExpectRejected(net, app, staker, [report], rule: "wrong-delegation-status")
        #expect(try app.recomputeAppHash() == app.lastAppHash)
    }

    @Test func withoutQuorumStaysPending() throws {
        let (net, app, _, staker, btc, maker) = try setUp()
        let relayer = StakingActor("relayer")
        let d = try maker.make(funding: 2)
        let block = try btc.mine([d.stakingTransaction])
        try btc.mineEmpty(12)
        #expect(try stkRun(net, app, relayer, [btc.takeUnsent()]).isOK)
        // Created with a k-deep inclusion proof, but only two covenant signatures.
        let r = try stkRun(net, app, staker, [try maker.message(d, sender: staker, proof: try btc.proof(of: d.stakingTransaction, in: block))])
        #expect(r.isOK, "\(r.log)")
        #expect(try stkRun(net, app, relayer, [try maker.covenantMessage(d, covenant: 3), try maker.covenantMessage(d, covenant: 4)]).isOK)
        for _ in 0..<3 { try net.produce(app, []) }
        #expect(try status(app, d) == "PENDING")
        #expect(try power(app, at: (app.lastHeight ?? 0) + 1).isEmpty)
        // The third signature activates it at once (inclusion already proven).
        #expect(try stkRun(net, app, relayer, [try maker.covenantMessage(d, covenant: 0)]).isOK)
        #expect(try status(app, d) == "ACTIVE")
    }

    @Test func aSlashedProvidersPendingDelegationsGetNoCovenantSignatures() throws {
        let (net, app, _, staker, btc, maker) = try setUp()
        let relayer = StakingActor("relayer")
        let d = try maker.make(funding: 5)
        let block = try btc.mine([d.stakingTransaction])
        try btc.mineEmpty(12)
        #expect(try stkRun(net, app, relayer, [btc.takeUnsent()]).isOK)
        // Created without its inclusion proof, with one covenant signature.
        #expect(try stkRun(net, app, staker, [try maker.message(d, sender: staker)]).isOK)
        #expect(try stkRun(net, app, relayer, [try maker.covenantMessage(d, covenant: 0)]).isOK)
        // Its provider is slashed: its key is public from now on.
        let fp = fpKey.publicKey.rawRepresentation.hexString
        #expect(try stkRun(net, app, relayer, [Message(type: "stktest/Slash", payload: try Data(hex: fp))]).isOK)
        // No more covenant adaptor signatures (anyone could decrypt them with the leaked key
        // and slash the staker), and no activation either.
        try stkExpectRejected(net, app, relayer, [try maker.covenantMessage(d, covenant: 1)], rule: "finality-provider-slashed")
        try stkExpectRejected(net, app, relayer, [AddBTCDelegationInclusionProof(
            stakingTxid: d.stakingTransaction.txid.rawValue, proof: try btc.proof(of: d.stakingTransaction, in: block)).message],
                              rule: "finality-provider-slashed")
        #expect(try status(app, d) == "PENDING")
    }

    @Test func malformedCovenantSignaturesNameTheirField() throws {
        let (net, app, _, staker, _, maker) = try setUp()
        let relayer = StakingActor("relayer")
        let d = try maker.make(funding: 6)
        #expect(try stkRun(net, app, staker, [try maker.message(d, sender: staker)]).isOK)
        var sigs = try AddCovenantSigs(decoding: try maker.covenantMessage(d, covenant: 0).payload)
        // An adaptor signature whose point prefix byte is neither 0x02 nor 0x03.
        var adaptor = sigs.signatures.slashingAdaptors[0].adaptorSignature
        adaptor[adaptor.startIndex] = 0x04
        sigs.signatures.slashingAdaptors[0].adaptorSignature = adaptor
        try stkExpectRejected(net, app, relayer, [sigs.message], rule: "malformed-covenant-signature",
                              contains: "slashing adaptor signature")
    }

    @Test func expiryFollowsTheBitcoinTip() throws {
        let (net, app, _, staker, btc, maker) = try setUp()
        let relayer = StakingActor("relayer")
        let d = try maker.make(funding: 3)
        #expect(try stkRun(net, app, staker, [try maker.message(d, sender: staker)]).isOK)
        #expect(try stkRun(net, app, relayer, (0..<3).map { try maker.covenantMessage(d, covenant: $0) }).isOK)
        let block = try btc.mine([d.stakingTransaction]) // height 1: end = 41, expires when tip ≥ 41 − 10 = 31
        try btc.mineEmpty(10)
        #expect(try stkRun(net, app, relayer, [btc.takeUnsent(),
                                               AddBTCDelegationInclusionProof(stakingTxid: d.stakingTransaction.txid.rawValue,
                                                                              proof: try btc.proof(of: d.stakingTransaction, in: block)).message]).isOK)
        #expect(try status(app, d) == "ACTIVE")
        try btc.mineEmpty(19) // tip 30
        #expect(try stkRun(net, app, relayer, [btc.takeUnsent()]).isOK)
        #expect(try status(app, d) == "ACTIVE")
        try btc.mine() // tip 31
        let result = try net.produce(app, [try relayer.tx([btc.takeUnsent()])])
        relayer.nonce += 1
        #expect(result.events.contains { $0.type == "staking.delegation_expired" })
        #expect(try status(app, d) == "EXPIRED")
        #expect(try power(app, at: result.height + 1).isEmpty)
        #expect(try power(app, at: result.height).count == 1)
        #expect(try app.recomputeAppHash() == app.lastAppHash)
    }

    @Test func lateInclusionProofIsRefused() throws {
        let (net, app, _, staker, btc, maker) = try setUp()
        let relayer = StakingActor("relayer")
        let d = try maker.make(funding: 4)
        let block = try btc.mine([d.stakingTransaction])
        try btc.mineEmpty(30) // tip 31 ≥ 41 − 10
        #expect(try stkRun(net, app, relayer, [btc.takeUnsent()]).isOK)
        try stkExpectRejected(net, app, staker, [try maker.message(d, sender: staker, proof: try btc.proof(of: d.stakingTransaction, in: block))],
                              rule: "staking-time-elapsed")
    }

    // MARK: - Voting power

    @Test func votingPowerTableOrderingTopNAndSlashing() throws {
        let (net, app, owner, staker, btc, _) = try setUp(maxActive: 2)
        let relayer = StakingActor("relayer")
        #expect(try stkRun(net, app, owner, [try registerMessage(fpKey2, owner), try registerMessage(fpKey3, owner),
                                             try registerMessage(stkKey(0x24), owner, chainID: "consumer-1")]).isOK)
        // fp1: 2 × 500k = 1M, fp2: 1M (tie with fp1), fp3: 600k, consumer fp: 5M (not on this chain's table).
        var specs: [(Schnorr.PublicKey, Int64, UInt8)] = [
            (fpKey.publicKey, 500_000, 10), (fpKey.publicKey, 500_000, 11), (fpKey2.publicKey, 1_000_000, 12),
            (fpKey3.publicKey, 600_000, 13),
        ]
        specs.append((stkKey(0x24).publicKey, 5_000_000, 14))
        var delegations: [DelegationTransactions] = []
        var makers: [DelegationMaker] = []
        for (fp, value, funding) in specs {
            var m = DelegationMaker(staker: stakerKey, provider: fp)
            m.stakingValue = stkSats(value)
            makers.append(m)
            delegations.append(try m.make(funding: funding))
        }
        let block = try btc.mine(delegations.map(\.stakingTransaction))
        try btc.mineEmpty(10)
        #expect(try stkRun(net, app, relayer, [btc.takeUnsent()]).isOK)
        var messages: [Message] = []
        for (m, d) in zip(makers, delegations) {
            messages.append(try m.message(d, sender: staker, proof: try btc.proof(of: d.stakingTransaction, in: block)))
        }
        let created = try stkRun(net, app, staker, messages)
        #expect(created.isOK, "\(created.log)")
        var sigs: [Message] = []
        for (m, d) in zip(makers, delegations) { for c in 0..<3 { sigs.append(try m.covenantMessage(d, covenant: c)) } }
        let verified = try net.produce(app, [try relayer.tx(sigs)])
        #expect(verified.txResults[0].isOK, "\(verified.txResults[0].log)")
        relayer.nonce += 1
        let h = verified.height + 1
        let k1 = fpKey.publicKey.rawRepresentation.hexString
        let k2 = fpKey2.publicKey.rawRepresentation.hexString
        let k3 = fpKey3.publicKey.rawRepresentation.hexString
        // Ties by key ascending; every eligible provider is listed (the finality module takes
        // its top N after the randomness rule), the top 2 have status ACTIVE.
        let expected = [k1, k2].sorted()
        #expect(try power(app, at: h).map(\.0) == expected + [k3])
        #expect(try power(app, at: h).map(\.1) == ["1000000", "1000000", "600000"])
        #expect(try stkQuery(app, "finality-provider/" + expected[0])["status"] as? String == "ACTIVE")
        #expect(try stkQuery(app, "finality-provider/" + k3)["status"] as? String == "REGISTERED")

        // Slashing the first of the tie: fp3 enters at the next height.
        let slashed = expected[0]
        let result = try net.produce(app, [try relayer.tx([Message(type: "stktest/Slash", payload: try Data(hex: slashed))])])
        #expect(result.txResults[0].isOK, "\(result.txResults[0].log)")
        relayer.nonce += 1
        #expect(result.txResults[0].events.contains { $0.type == "staking.fp_slashed" })
        #expect(try power(app, at: result.height).map(\.0) == expected + [k3])
        #expect(try power(app, at: result.height + 1).map(\.0) == [expected[1], k3])
        #expect(try stkQuery(app, "finality-provider/" + k3)["status"] as? String == "ACTIVE")
        #expect(try stkQuery(app, "finality-provider/" + slashed)["status"] as? String == "SLASHED")
        // A slashed provider takes no new delegations.
        let slashedMaker = DelegationMaker(staker: stakerKey, provider: try Schnorr.PublicKey(rawRepresentation: try Data(hex: slashed)))
        try stkExpectRejected(net, app, staker, [try slashedMaker.message(try slashedMaker.make(funding: 30), sender: staker)],
                              rule: "finality-provider-slashed")

        // Jail and unjail.
        let jailed = try net.produce(app, [try relayer.tx([Message(type: "stktest/Jail", payload: try Data(hex: k3))])])
        relayer.nonce += 1
        #expect(try power(app, at: jailed.height + 1).map(\.0) == [expected[1]])
        #expect(try stkQuery(app, "finality-provider/" + k3)["status"] as? String == "JAILED")
        let unjailed = try net.produce(app, [try relayer.tx([Message(type: "stktest/Unjail", payload: try Data(hex: k3))])])
        relayer.nonce += 1
        #expect(try power(app, at: unjailed.height + 1).map(\.0) == [expected[1], k3])
        #expect(try power(app, at: jailed.height + 1).map(\.0) == [expected[1]])
        #expect(try app.recomputeAppHash() == app.lastAppHash)
    }

    // MARK: - Determinism

    @Test func twoAppsAgree() throws {
        let net = try StakingWorld.net()
        let apps = [try StakingWorld.app(net), try StakingWorld.app(net)]
        let owner = StakingActor("fp-owner")
        let staker = StakingActor("staker")
        let relayer = StakingActor("relayer")
        let btc = RegtestChain()
        let maker = DelegationMaker(staker: stakerKey, provider: fpKey.publicKey)
        let d = try maker.make(funding: 5)
        let block = try btc.mine([d.stakingTransaction])
        try btc.mineEmpty(10)
        let txs: [[Data]] = [
            [try owner.tx([try registerMessage(fpKey, owner)]), try relayer.tx([btc.takeUnsent()])],
            [try staker.tx([try maker.message(d, sender: staker, proof: try btc.proof(of: d.stakingTransaction, in: block))])],
        ]
        relayer.nonce += 1
        let sigs = try relayer.tx((0..<3).map { try maker.covenantMessage(d, covenant: $0) })
        for app in apps {
            for block in txs + [[sigs], []] {
                let r = try net.produce(app, block)
                let allOK = r.txResults.allSatisfy { $0.isOK }
                #expect(allOK, "\(r.txResults.map(\.log))")
            }
        }
        #expect(apps[0].lastAppHash == apps[1].lastAppHash)
        #expect(try status(apps[1], d) == "ACTIVE")
    }
}
