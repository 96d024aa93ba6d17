import Foundation
import IshtarCLI
import Testing

/// `Fixtures/bip341-wallet-test-vectors.json`, found from this file's path.
private func bip341Vectors() -> [String: Any] {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/bip341-wallet-test-vectors.json")
    guard let data = try? Data(contentsOf: url),
          let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return [:] }
    return object
}

/// keyPathSpending[0]: `given.rawUnsignedTx` and `auxiliary.fullySignedTx` (a 9-input segwit tx).
private func bip341Transaction(_ path: (String, String)) -> String {
    let spending = (bip341Vectors()["keyPathSpending"] as? [[String: Any]])?.first
    return ((spending?[path.0] as? [String: Any])?[path.1] as? String) ?? ""
}

/// txids and wtxid of those transactions, computed independently (Python hashlib, double SHA-256 of
/// the stripped and the full serialization, byte-reversed). The signed one has a different txid:
/// some of its (non-taproot) inputs carry scriptSigs.
private let bip341Txid = "0384e984ab29806f159d517d7b0215e614501eecdc245d7cdabccc360020eae3"
private let bip341SignedTxid = "fea03dc5c362e2ebd71f90960803aaa2cdbbc6cd536135f49980afedc19e3552"
private let bip341SignedWtxid = "4a5d2b15622b0c8e857527a6a1fc3c614cf7991aad19548cae678aa8306becf7"

@Suite(.serialized) struct BTCCLITests {
    @Test func decodeTxOfASegwitTransaction() throws {
        let signed = bip341Transaction(("auxiliary", "fullySignedTx"))
        #expect(signed.count == 2 * 1139)
        let out = try IshtarProcess.json(["btc", "decode-tx", signed])
        #expect(out["txid"] as? String == bip341SignedTxid)
        #expect(out["wtxid"] as? String == bip341SignedWtxid)
        #expect(out["version"] as? Int == 2)
        #expect(out["locktime"] as? Int == 500_000_000)
        #expect(out["size"] as? Int == 1139)
        let inputs = try #require(out["inputs"] as? [[String: Any]])
        #expect(inputs.count == 9)
        #expect((inputs[0]["witness"] as? [String])?.count == 1)
        #expect(inputs[0]["sequence"] as? Int == 0)
        let outputs = try #require(out["outputs"] as? [[String: Any]])
        #expect(outputs[0]["script_type"] as? String == "p2pkh")
        #expect(outputs[0]["value_sats"] as? Int == 1_000_000_000)
        #expect((outputs[0]["address"] as? String)?.hasPrefix("1") == true)
        let weight = try #require(out["weight"] as? Int)
        #expect(out["vsize"] as? Int == (weight + 3) / 4)

        let text = try IshtarProcess.run(["btc", "decode-tx", signed, "--network", "regtest"])
        #expect(text.status == 0)
        #expect(text.stdout.contains("txid:     \(bip341SignedTxid)"))
    }

    @Test func decodeTxOfTheUnsignedTransactionGivesTheSameTxid() throws {
        let unsigned = bip341Transaction(("given", "rawUnsignedTx"))
        let decoded = try BTCActions.decodeTransaction(hex: unsigned, network: .mainnet)
        #expect(decoded.txid == bip341Txid)
        #expect(decoded.wtxid == bip341Txid, "no witness: wtxid equals txid")
        #expect(decoded.inputs.count == 9)
        #expect(decoded.outputs.count == 2)
        let viaProcess = try IshtarProcess.json(["btc", "decode-tx", unsigned])
        #expect(viaProcess["txid"] as? String == bip341Txid)
    }

    @Test func addressOfP2TRIsBech32m() throws {
        let key = "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
        let out = try IshtarProcess.json(["btc", "address", "--pkscript", "5120" + key, "--network", "regtest"])
        #expect(out["address"] as? String == "bcrt1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqc8gma6")
        #expect(out["script_type"] as? String == "p2tr")
        let mainnet = try IshtarProcess.run(["btc", "address", "--pkscript", "5120" + key])
        #expect(mainnet.status == 0)
        #expect(mainnet.stdout.trimmingCharacters(in: .whitespacesAndNewlines).hasPrefix("bc1p"))
        // P2PKH of the zero hash is the well-known burn address.
        let legacy = try IshtarProcess.run(["btc", "address", "--pkscript", "76a914" + String(repeating: "00", count: 20) + "88ac"])
        #expect(legacy.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "1111111111111111111114oLvT2")
    }

    @Test func badInputExitsTwoWithOneLine() throws {
        // Version, one input (outpoint, empty scriptSig, sequence), then nothing.
        let cut = "02000000" + "01" + String(repeating: "11", count: 36) + "00" + "ffffffff"
        let truncated = try IshtarProcess.run(["btc", "decode-tx", cut])
        #expect(truncated.status == 2)
        #expect(truncated.stderr == "ishtar: error: decode-tx: truncated at byte 46 (reading output count)\n", "\(truncated.stderr)")
        let forged = try IshtarProcess.run(["btc", "decode-tx", "0200000002" + String(repeating: "00", count: 41)])
        #expect(forged.status == 2)
        #expect(forged.stderr.contains("input count 2 at byte 4 exceeds the remaining input"), "\(forged.stderr)")
        #expect(truncated.stderr.split(separator: "\n").count == 1)

        let notHex = try IshtarProcess.run(["btc", "decode-tx", "zz"])
        #expect(notHex.status == 2)
        #expect(notHex.stderr.contains("not valid hex"))

        let opReturn = try IshtarProcess.run(["btc", "address", "--pkscript", "6a0401020304"])
        #expect(opReturn.status == 2)
        #expect(opReturn.stderr.contains("op_return script has no address"), "\(opReturn.stderr)")

        let badNetwork = try IshtarProcess.run(["btc", "address", "--pkscript", "5120" + String(repeating: "11", count: 32), "--network", "moon"])
        #expect(badNetwork.status == 2)

        let badPSBT = try IshtarProcess.run(["btc", "decode-psbt", "cHNidP8="])
        #expect(badPSBT.status == 2)
        #expect(badPSBT.stderr.contains("decode-psbt: truncated at byte 5"), "\(badPSBT.stderr)")
    }

    @Test func decodePSBTSummarizesTaprootFieldsAndFee() throws {
        // BIP-371 valid vector: P2TR key-path input with internal key, derivation and signature.
        let psbt = "cHNidP8BAFICAAAAASd0Srq/MCf+DWzyOpbu4u+xiO9SMBlUWFiD5ptmJLJCAAAAAAD/////AUjmBSoBAAAAFgAUdo4e60z0IIZgM/gKzv8PlyB0SWkAAAAAAAEBKwDyBSoBAAAAIlEgWiws9bUs8x+DrS6Npj/wMYPs2PYJx1EK6KSOA5EKB1cBE0C7U+yRe62dkGrxuocYHEi4as5aritTYFpyXKdGJWMUdvxvW67a9PLuD0d/NvWPOXDVuCc7fkl7l68uPxJcl680IRb+NJBkyY1uKoU/o8mxK9izBKGcGVxg76fuI5MEbT+iMhkAdystp1YAAIABAACAAAAAgAEAAAAAAAAAARcg/jSQZMmNbiqFP6PJsSvYswShnBlcYO+n7iOTBG0/ojIAIgIDa3cqbbdNh1PJioJ5WN5seKszEhCfN9PgMESEJC7Oc9gYdystp1QAAIABAACAAAAAgAAAAAAAAAAAAA=="
        let out = try IshtarProcess.json(["btc", "decode-psbt", psbt])
        #expect(out["fee_sats"] as? Int == 3000)
        let inputs = try #require(out["inputs"] as? [[String: Any]])
        #expect(inputs[0]["has_key_signature"] as? Bool == true)
        #expect(inputs[0]["utxo_script_type"] as? String == "p2tr")
        let fields = try #require(inputs[0]["taproot_fields"] as? [String])
        #expect(fields.contains("tap_key_sig") && fields.contains("tap_internal_key"))
        let text = try IshtarProcess.run(["btc", "decode-psbt", psbt])
        #expect(text.stdout.contains("fee: 3000 sat"))
    }
}
