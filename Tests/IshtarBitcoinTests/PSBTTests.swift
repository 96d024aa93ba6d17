import Foundation
import IshtarBitcoin
import IshtarBitcoinRPC
import IshtarCrypto
import IshtarTestSupport
import Testing

/// `Fixtures/psbt-vectors.json`: BIP-174 and BIP-371 test vectors.
private struct PSBTVectorFile: Decodable {
    struct Vector: Decodable {
        var desc: String
        var source: String
        var base64: String?
        var hex: String?
        var error: String?
        var location: String?
        var key_type: UInt64?

        var bytes: Data {
            if let base64 { return Data(base64Encoded: base64) ?? Data() }
            return (try? Data(hex: hex ?? "")) ?? Data()
        }
    }
    var comment: String
    var invalid: [Vector]
    var valid: [Vector]
}

/// The PSBTError case name and, where it has one, its map, so vectors can name the expected error.
private func classify(_ error: PSBTError) -> (kind: String, location: String?, keyType: UInt64?) {
    switch error {
    case .invalidBase64: ("invalidBase64", nil, nil)
    case .notAPSBT: ("notAPSBT", nil, nil)
    case .truncated(let map, _, _): ("truncated", map.description, nil)
    case .nonMinimalCompactSize(let map, _): ("nonMinimalCompactSize", map.description, nil)
    case .duplicateKey(let map, let type, _): ("duplicateKey", map.description, type)
    case .invalidKeyLength(let map, let type, _, _): ("invalidKeyLength", map.description, type)
    case .invalidValue(let map, let type, _, _): ("invalidValue", map.description, type)
    case .missingUnsignedTransaction: ("missingUnsignedTransaction", nil, nil)
    case .invalidUnsignedTransaction: ("invalidUnsignedTransaction", "global", 0)
    case .unsignedTransactionNotEmpty(let input): ("unsignedTransactionNotEmpty", "input \(input)", nil)
    case .unsupportedVersion: ("unsupportedVersion", "global", 0xfb)
    case .nonWitnessUTXOMismatch(let input, _, _): ("nonWitnessUTXOMismatch", "input \(input)", 0)
    case .nonWitnessUTXOMissingOutput(let input, _): ("nonWitnessUTXOMissingOutput", "input \(input)", 0)
    case .trailingBytes: ("trailingBytes", nil, nil)
    case .invalidConstruction: ("invalidConstruction", nil, nil)
    }
}

private func loadVectors() throws -> PSBTVectorFile {
    try #require(Fixtures.json("psbt-vectors.json", as: PSBTVectorFile.self), "Fixtures/psbt-vectors.json missing or malformed")
}

private func key(_ byte: UInt8) throws -> Schnorr.PrivateKey {
    try Schnorr.PrivateKey(rawRepresentation: Data(repeating: byte, count: 31) + Data([0x01]))
}

private func outpoint(_ n: UInt8) -> OutPoint {
    OutPoint(txid: (try? Hash256(rawValue: Data(repeating: n, count: 32))) ?? .zero, index: UInt32(n))
}

/// Plays the external wallet: decodes the exported PSBT, signs what it is asked to, re-exports.
private func externalWalletSign(
    _ base64: String, keyPathKey: Schnorr.PrivateKey? = nil, scriptKey: Schnorr.PrivateKey? = nil,
    hashType: SighashType = .default
) throws -> String {
    var psbt = try PSBT(base64: base64)
    let sighasher = try psbt.taprootSighasher()
    for index in psbt.inputs.indices {
        let input = psbt.inputs[index]
        if let keyPathKey, let internalKey = input.tapInternalKey, internalKey == keyPathKey.publicKey, input.tapLeafScripts.isEmpty {
            let witness = try sighasher.keyPathWitness(
                inputIndex: index, internalKey: keyPathKey, merkleRoot: input.tapMerkleRoot, hashType: hashType)
            psbt.inputs[index].tapKeySignature = witness[0]
        }
        if let scriptKey {
            for leafScript in input.tapLeafScripts where leafScript.leaf.script.bytes.contains(scriptKey.publicKey.rawRepresentation) {
                let sig = try sighasher.scriptPathSignature(inputIndex: index, key: scriptKey, leaf: leafScript.leaf, hashType: hashType)
                psbt.inputs[index].setTapScriptSignature(TapScriptSignature(
                    xOnlyKey: scriptKey.publicKey.rawRepresentation, leafHash: leafScript.leaf.hash, signature: sig))
            }
        }
    }
    return psbt.base64
}

@Suite struct PSBTVectorTests {
    @Test func validVectorsRoundTripByteIdentical() throws {
        let file = try loadVectors()
        #expect(file.valid.count == 6)
        for vector in file.valid {
            let bytes = vector.bytes
            let psbt = try PSBT(serialized: bytes)
            #expect(psbt.serialized == bytes, "\(vector.source): \(vector.desc)")
            if let b64 = vector.base64 { #expect(try PSBT(base64: b64).base64 == b64) }
            #expect(try PSBT(serialized: psbt.serialized) == psbt)
        }
    }

    @Test func invalidVectorsRejectedWithTheRightError() throws {
        let file = try loadVectors()
        #expect(file.invalid.count == 21)
        for vector in file.invalid {
            do {
                _ = try PSBT(serialized: vector.bytes)
                Issue.record("accepted invalid PSBT: \(vector.source): \(vector.desc)")
            } catch {
                let (kind, location, keyType) = classify(error)
                #expect(kind == vector.error, "\(vector.desc): \(error)")
                if let expected = vector.location { #expect(location == expected, "\(vector.desc): \(error)") }
                if let expected = vector.key_type { #expect(keyType == expected, "\(vector.desc): \(error)") }
            }
        }
    }

    @Test func taprootFieldsOfTheBIP371VectorsParse() throws {
        let file = try loadVectors()
        // Key-path input with internal key, derivation and signature.
        let signed = try PSBT(serialized: file.valid[1].bytes)
        #expect(signed.inputs[0].tapKeySignature?.count == 64)
        #expect(signed.inputs[0].tapInternalKey?.rawRepresentation.hexString
            == "fe349064c98d6e2a853fa3c9b12bd8b304a19c195c60efa7ee2393046d3fa232")
        #expect(signed.inputs[0].tapBIP32Derivations.first?.path.count == 5)
        #expect(signed.fee == .sats(3000))
        // Script-path output with a three-leaf tree.
        let tree = try PSBT(serialized: file.valid[4].bytes)
        #expect(tree.outputs[0].tapTree?.map(\.depth) == [2, 2, 1])
        #expect(tree.outputs[0].tapBIP32Derivations.count == 4)
        // Script-path input with leaf scripts whose control blocks verify, and signatures.
        let scripts = try PSBT(serialized: file.valid[5].bytes)
        let input = scripts.inputs[0]
        #expect(input.tapLeafScripts.count == 3)
        #expect(input.tapScriptSignatures.count == 3)
        #expect(input.tapMerkleRoot != nil)
        let spent = try #require(input.witnessUTXO)
        guard case .p2tr(let outputKey) = spent.scriptPubKey.type else {
            Issue.record("not p2tr")
            return
        }
        let q = try Schnorr.PublicKey(rawRepresentation: outputKey)
        for leafScript in input.tapLeafScripts {
            #expect(leafScript.controlBlock.verify(script: leafScript.leaf.script, outputKey: q))
            #expect(leafScript.controlBlock.merkleRoot(for: leafScript.leaf.script) == input.tapMerkleRoot)
        }
    }

    @Test func truncatedAndCorruptedInputsThrowWithoutCrashing() throws {
        let file = try loadVectors()
        var rng = SplitMix64(seed: 174)
        for vector in file.valid {
            let bytes = [UInt8](vector.bytes)
            for length in 0..<bytes.count {
                #expect(throws: PSBTError.self) { _ = try PSBT(serialized: bytes[0..<length]) }
            }
            for _ in 0..<300 {
                var mutated = bytes
                let position = Int(rng.next() % UInt64(bytes.count))
                mutated[position] = UInt8(truncatingIfNeeded: rng.next())
                if let decoded = try? PSBT(serialized: mutated) {
                    // Whatever decodes must re-encode to the same bytes.
                    #expect(decoded.serialized == Data(mutated))
                }
            }
        }
        #expect(throws: PSBTError.invalidBase64) { _ = try PSBT(base64: "not base64!") }
        #expect(throws: PSBTError.notAPSBT) { _ = try PSBT(serialized: Data([0x70, 0x73, 0x62, 0x74])) }
        // A value length far beyond the input must not allocate or trap.
        let forged = PSBT.magic + Data([0x01, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f])
        #expect(throws: PSBTError.truncated(map: .global, field: "value", offset: 16)) { _ = try PSBT(serialized: forged) }
    }

    @Test func duplicateKeysAndNonWitnessUTXOMismatchAreRejected() throws {
        let prev = Transaction(inputs: [TxIn(previousOutput: outpoint(9))], outputs: [TxOut(value: .sats(1000), scriptPubKey: [.op(.return)])])
        let tx = Transaction(inputs: [TxIn(previousOutput: OutPoint(txid: prev.txid, index: 0))], outputs: [])
        var psbt = try PSBT(unsignedTransaction: tx)
        psbt.inputs[0].nonWitnessUTXO = prev
        #expect(try PSBT(serialized: psbt.serialized) == psbt)
        #expect(psbt.spentOutputs == [prev.outputs[0]])

        var wrong = try PSBT(unsignedTransaction: Transaction(inputs: [TxIn(previousOutput: outpoint(3))], outputs: []))
        wrong.inputs[0].nonWitnessUTXO = prev
        #expect(throws: PSBTError.nonWitnessUTXOMismatch(
            input: 0, expected: outpoint(3).txid.displayHex, found: prev.txid.displayHex)) {
            _ = try PSBT(serialized: wrong.serialized)
        }

        var duplicated = psbt
        duplicated.inputs[0].entries.append(duplicated.inputs[0].entries[0])
        #expect(throws: PSBTError.self) { _ = try PSBT(serialized: duplicated.serialized) }

        // Unknown pairs survive a round trip in their place.
        var unknown = psbt
        unknown.inputs[0].entries.insert(PSBTKeyValue(key: Data([0xfc, 0x01, 0x02]), value: Data([0xaa])), at: 0)
        unknown.global.entries.append(PSBTKeyValue(key: Data([0x42]), value: Data([0x01])))
        let decoded = try PSBT(serialized: unknown.serialized)
        #expect(decoded == unknown)
        #expect(decoded.global.unknown.count == 1)
    }
}

@Suite struct PSBTSigningTests {
    private let destination = Script.p2wpkh(pubKeyHash: Data(repeating: 0x11, count: 20))

    @Test func keyPathConstructExportSignImportFinalize() throws {
        let internalPriv = try key(0x21)
        let output = try TaprootOutput(internalKey: internalPriv.publicKey, tree: nil)
        let utxo = TxOut(value: .sats(100_000), scriptPubKey: output.scriptPubKey)
        let tx = Transaction(inputs: [TxIn(previousOutput: outpoint(1))], outputs: [TxOut(value: .sats(90_000), scriptPubKey: destination)])
        let psbt = try PSBT(unsignedTransaction: tx, witnessUTXOs: [utxo], spends: [.keyPath(internalKey: internalPriv.publicKey, merkleRoot: nil)])
        #expect(psbt.fee?.sats == 10_000)
        #expect(psbt.inputs[0].tapInternalKey == internalPriv.publicKey)

        // Unsigned: nothing to finalize.
        #expect(throws: PSBTFinalizeError.missingSignature(input: 0)) { _ = try psbt.finalizedTransaction() }

        let signedBase64 = try externalWalletSign(psbt.base64, keyPathKey: internalPriv)
        let imported = try PSBT(base64: signedBase64)
        #expect(imported.inputs[0].tapKeySignature?.count == 64)
        let final = try imported.finalizedTransaction()
        #expect(final.txid == tx.txid)
        #expect(final.inputs[0].witness.count == 1)

        // The witness signature verifies against the BIP-341 sighash under the output key.
        let sighash = try TaprootSighasher(transaction: tx, prevouts: [utxo]).signatureHash(inputIndex: 0, hashType: .default)
        let signature = try Schnorr.Signature(rawRepresentation: final.inputs[0].witness[0])
        #expect(output.outputKey.isValidSignature(signature, for: sighash))

        // finalize() writes FINAL_SCRIPTWITNESS, drops the signing fields, and survives a round trip.
        var finalized = imported
        try finalized.finalize()
        #expect(finalized.inputs[0].tapKeySignature == nil)
        #expect(finalized.inputs[0].finalScriptWitness == final.inputs[0].witness)
        #expect(try PSBT(base64: finalized.base64).extractTransaction() == final)
        #expect(try PSBT(base64: finalized.base64).finalizedTransaction() == final)

        // A signature with the wrong key or over other outputs is refused.
        var forged = imported
        forged.inputs[0].tapKeySignature = try Schnorr.PrivateKey().signature(for: sighash).rawRepresentation
        #expect(throws: PSBTFinalizeError.invalidSignature(input: 0, key: output.outputKey.rawRepresentation.hexString)) {
            _ = try forged.finalizedTransaction()
        }
        // SIGHASH_ALL (65 bytes) works, but not when the input demands another type.
        var all = try PSBT(base64: try externalWalletSign(psbt.base64, keyPathKey: internalPriv, hashType: .all))
        #expect(try all.finalizedTransaction().inputs[0].witness[0].count == 65)
        all.inputs[0].sighashType = 0x03
        #expect(throws: PSBTFinalizeError.invalidHashType(input: 0, hashType: 0x01)) { _ = try all.finalizedTransaction() }
    }

    @Test func scriptPathSingleKeyLeafFinalizes() throws {
        let signer = try key(0x31)
        let other = try key(0x32)
        let signerLeaf = TapLeaf(script: [.push(signer.publicKey.rawRepresentation), .op(.checkSig)])
        let otherLeaf = TapLeaf(script: [.push(other.publicKey.rawRepresentation), .op(.checkSig), .op(.verify)])
        let output = try TaprootOutput(
            internalKey: Taproot.unspendableInternalKey, tree: .branch(.leaf(signerLeaf), .leaf(otherLeaf)))
        let utxo = TxOut(value: .sats(50_000), scriptPubKey: output.scriptPubKey)
        let keyUTXO = try TaprootOutput(internalKey: other.publicKey, tree: nil)
        let tx = Transaction(
            inputs: [TxIn(previousOutput: outpoint(2)), TxIn(previousOutput: outpoint(3))],
            outputs: [TxOut(value: .sats(140_000), scriptPubKey: destination)])
        let psbt = try PSBT(
            unsignedTransaction: tx,
            witnessUTXOs: [utxo, TxOut(value: .sats(100_000), scriptPubKey: keyUTXO.scriptPubKey)],
            spends: [.scriptPath(leaf: signerLeaf, controlBlock: try output.controlBlock(for: signerLeaf)),
                     .keyPath(internalKey: other.publicKey, merkleRoot: nil)])
        #expect(psbt.inputs[0].tapMerkleRoot == output.merkleRoot)

        let signed = try PSBT(base64: try externalWalletSign(
            try externalWalletSign(psbt.base64, scriptKey: signer), keyPathKey: other))
        #expect(signed.inputs[0].tapScriptSignatures.count == 1)
        let final = try signed.finalizedTransaction()
        let witness = final.inputs[0].witness
        #expect(witness.count == 3)
        #expect(witness[1] == signerLeaf.script.bytes)
        let block = try ControlBlock(serialized: witness[2])
        #expect(block.verify(script: signerLeaf.script, outputKey: output.outputKey))
        let sighash = try TaprootSighasher(transaction: tx, prevouts: signed.spentOutputs.compactMap { $0 })
            .signatureHash(inputIndex: 0, hashType: .default, leafHash: signerLeaf.hash)
        #expect(signer.publicKey.isValidSignature(try Schnorr.Signature(rawRepresentation: witness[0]), for: sighash))

        // A leaf the generic finalizer cannot satisfy is reported, not guessed at.
        let unsupported = try PSBT(
            unsignedTransaction: tx, witnessUTXOs: [utxo, TxOut(value: .sats(100_000), scriptPubKey: keyUTXO.scriptPubKey)],
            spends: [.scriptPath(leaf: otherLeaf, controlBlock: try output.controlBlock(for: otherLeaf)), nil])
        #expect(throws: PSBTFinalizeError.self) { _ = try unsupported.finalizedTransaction() }
        do {
            _ = try unsupported.finalizedTransaction()
        } catch {
            guard case .unsupportedScript(input: 0, _) = error else {
                Issue.record("expected unsupportedScript, got \(error)")
                return
            }
        }
    }

    @Test func constructionRejectsMismatchedArguments() throws {
        let tx = Transaction(inputs: [TxIn(previousOutput: outpoint(1))], outputs: [])
        #expect(throws: PSBTError.self) { _ = try PSBT(unsignedTransaction: tx, witnessUTXOs: []) }
        var signedTx = tx
        signedTx.inputs[0].witness = [Data([1])]
        #expect(throws: PSBTError.unsignedTransactionNotEmpty(input: 0)) { _ = try PSBT(unsignedTransaction: signedTx) }
    }
}

@Suite(.serialized, .enabled(if: regtestNodeAvailable)) struct PSBTRegtestTests {
    @Test func psbtFinalizedKeyPathSpendOfMatureCoinbaseIsAccepted() async throws {
        try await withRegtestNode { node in
            let rpc = node.client()
            let internalPriv = try key(0x41)
            let output = try TaprootOutput(internalKey: internalPriv.publicKey, tree: nil)
            let address = output.address(network: .regtest).encoded
            let blockHash = try #require(try await rpc.generateToAddress(1, address: address).first)
            _ = try await rpc.generateToAddress(100, address: TestAddress.p2wpkh)  // coinbase maturity

            let block = try await rpc.getBlockWithTransactions(blockHash)
            let coinbase = try Transaction(serialized: try Data(hex: try #require(block.transactions.first?.hex)))
            let vout = try #require(coinbase.outputs.firstIndex { $0.scriptPubKey == output.scriptPubKey })
            let utxo = coinbase.outputs[vout]
            let payTo = try SegwitAddress(TestAddress.p2wpkh, network: .regtest).scriptPubKey
            let tx = Transaction(
                inputs: [TxIn(previousOutput: OutPoint(txid: coinbase.txid, index: UInt32(vout)))],
                outputs: [TxOut(value: try utxo.value - .sats(10_000), scriptPubKey: payTo)])
            let psbt = try PSBT(
                unsignedTransaction: tx, witnessUTXOs: [utxo], spends: [.keyPath(internalKey: internalPriv.publicKey, merkleRoot: nil)])

            let signed = try PSBT(base64: try externalWalletSign(psbt.base64, keyPathKey: internalPriv))
            let final = try signed.finalizedTransaction()
            let hex = final.serialized().hexString
            let accept = try await rpc.testMempoolAccept([hex])
            #expect(accept.first?.allowed == true, "rejected: \(accept.first?.rejectReason ?? "?")")
            let txid = try await rpc.sendRawTransaction(hex: hex)
            #expect(txid == final.txid.displayHex)
            #expect(try await rpc.getRawMempool().contains(txid))
        }
    }
}
