import Foundation
import IshtarCrypto

/// How one taproot input of a PSBT will be spent; the constructor writes the BIP-371 fields a
/// signer needs for it.
public enum PSBTTaprootSpend: Hashable, Sendable {
    /// Key path: TAP_INTERNAL_KEY, and TAP_MERKLE_ROOT when the output also has a script tree
    /// (the signer tweaks its key with it).
    case keyPath(internalKey: Schnorr.PublicKey, merkleRoot: Data?)
    /// Script path: TAP_LEAF_SCRIPT (leaf + control block), TAP_INTERNAL_KEY and TAP_MERKLE_ROOT
    /// (derived from the control block).
    case scriptPath(leaf: TapLeaf, controlBlock: ControlBlock)
}

extension PSBT {
    /// The PSBT of an unsigned transaction whose inputs all spend segwit outputs: WITNESS_UTXO for
    /// every input (BIP-341 signatures commit to all spent amounts and scripts, so the full previous
    /// transactions are not needed), plus the taproot fields of `spends[i]` when given.
    public init(
        unsignedTransaction: Transaction, witnessUTXOs: [TxOut], spends: [PSBTTaprootSpend?] = []
    ) throws(PSBTError) {
        guard witnessUTXOs.count == unsignedTransaction.inputs.count else {
            throw .invalidConstruction(
                "\(witnessUTXOs.count) witness UTXOs for \(unsignedTransaction.inputs.count) inputs")
        }
        guard spends.isEmpty || spends.count == unsignedTransaction.inputs.count else {
            throw .invalidConstruction("\(spends.count) taproot spends for \(unsignedTransaction.inputs.count) inputs")
        }
        try self.init(unsignedTransaction: unsignedTransaction)
        for (index, utxo) in witnessUTXOs.enumerated() {
            inputs[index].witnessUTXO = utxo
            if index < spends.count, let spend = spends[index] { setTaprootSpend(spend, input: index) }
        }
    }

    /// Writes the BIP-371 fields for spending input `input` as `spend`.
    public mutating func setTaprootSpend(_ spend: PSBTTaprootSpend, input: Int) {
        switch spend {
        case .keyPath(let internalKey, let merkleRoot):
            inputs[input].tapInternalKey = internalKey
            inputs[input].tapMerkleRoot = merkleRoot
        case .scriptPath(let leaf, let controlBlock):
            inputs[input].setTapLeafScript(TapLeafScript(controlBlock: controlBlock, leaf: leaf))
            inputs[input].tapInternalKey = controlBlock.internalKey
            inputs[input].tapMerkleRoot = controlBlock.merkleRoot(for: leaf.script)
        }
    }

    /// The output each input spends, from WITNESS_UTXO or NON_WITNESS_UTXO; nil where neither is given.
    public var spentOutputs: [TxOut?] {
        inputs.enumerated().map { index, input in
            if let utxo = input.witnessUTXO { return utxo }
            let vout = Int(unsignedTransaction.inputs[index].previousOutput.index)
            if let tx = input.nonWitnessUTXO, vout < tx.outputs.count { return tx.outputs[vout] }
            return nil
        }
    }

    /// Inputs minus outputs, when every spent output is known (nil otherwise, or if negative).
    public var fee: Amount? {
        let spent = spentOutputs
        guard spent.allSatisfy({ $0 != nil }),
              let totalIn = try? Amount.sum(spent.compactMap { $0?.value }),
              let totalOut = try? Amount.sum(unsignedTransaction.outputs.map(\.value)) else { return nil }
        return try? totalIn - totalOut
    }

    /// The BIP-341 sighasher over the unsigned transaction and every spent output.
    public func taprootSighasher() throws(PSBTFinalizeError) -> TaprootSighasher {
        var prevouts = [TxOut]()
        for (index, spent) in spentOutputs.enumerated() {
            guard let spent else { throw .missingUTXO(input: index) }
            prevouts.append(spent)
        }
        do {
            return try TaprootSighasher(transaction: unsignedTransaction, prevouts: prevouts)
        } catch {
            throw .sighash(input: 0, error)
        }
    }

    /// Verifies every taproot signature present (TAP_KEY_SIG, TAP_SCRIPT_SIG, and the signatures in
    /// a FINAL_SCRIPTWITNESS of a supported shape) against its BIP-341 sighash, and writes
    /// FINAL_SCRIPTWITNESS for every input that is not final yet. Like a BIP-174 finalizer, it then
    /// removes the fields a final input no longer needs (signatures, scripts, keys, derivations).
    ///
    /// Supported: key-path spends (witness `[sig]`), and script-path spends of a single-key leaf
    /// `<32-byte key> OP_CHECKSIG` (witness `[sig, script, control block]`). Other leaf scripts
    /// (multisig `CHECKSIGADD` leaves, timelocks, hash locks) need a finalizer that knows the
    /// script, so they are reported as `unsupportedScript` — the staking layer builds those witnesses itself.
    public mutating func finalize() throws(PSBTFinalizeError) {
        let sighasher = try taprootSighasher()
        for index in inputs.indices {
            let witness = try Self.finalWitness(for: inputs[index], index: index, sighasher: sighasher)
            inputs[index].finalScriptWitness = witness
            for type: UInt8 in [0x02, 0x03, 0x04, 0x05, 0x06, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18] {
                inputs[index].removeAll(ofType: type)
            }
        }
    }

    /// The signed transaction: every input must have a FINAL_SCRIPTWITNESS (call `finalize()` first).
    public func extractTransaction() throws(PSBTFinalizeError) -> Transaction {
        var tx = unsignedTransaction
        for index in inputs.indices {
            guard let witness = inputs[index].finalScriptWitness else { throw .missingSignature(input: index) }
            tx.inputs[index].witness = witness
            if let scriptSig = inputs[index].finalScriptSig { tx.inputs[index].scriptSig = scriptSig }
        }
        return tx
    }

    /// `finalize()` on a copy, then `extractTransaction()`.
    public func finalizedTransaction() throws(PSBTFinalizeError) -> Transaction {
        var copy = self
        try copy.finalize()
        return try copy.extractTransaction()
    }

    // MARK: - Finalizer internals

    /// The single-key tapscript `<key> OP_CHECKSIG`, or nil for any other script.
    static func singleKey(of script: Script) -> Data? {
        let raw = [UInt8](script.bytes)
        guard raw.count == 34, raw[0] == 0x20, raw[33] == Opcode.checkSig.rawValue else { return nil }
        return Data(raw[1..<33])
    }

    private static func finalWitness(
        for input: PSBTInput, index: Int, sighasher: TaprootSighasher
    ) throws(PSBTFinalizeError) -> [Data] {
        guard case .p2tr(let outputKeyBytes) = sighasher.prevouts[index].scriptPubKey.type,
              let outputKey = try? Schnorr.PublicKey(rawRepresentation: outputKeyBytes) else {
            throw .notTaproot(input: index)
        }
        let required = input.sighashType

        if let final = input.finalScriptWitness {
            // Already final: check what we can rather than trusting it.
            var stack = final
            if stack.count >= 2, stack.last?.first == 0x50 { stack.removeLast() }  // annex: not supported below
            if stack.count == 1 {
                try verify(stack[0], key: outputKey, index: index, leafHash: nil, required: required, sighasher: sighasher)
            } else if stack.count == 3, let block = try? ControlBlock(serialized: stack[2]),
                      let key = singleKey(of: Script(bytes: stack[1])) {
                let script = Script(bytes: stack[1])
                guard block.verify(script: script, outputKey: outputKey) else { throw .controlBlockMismatch(input: index) }
                guard let signer = try? Schnorr.PublicKey(rawRepresentation: key) else {
                    throw .invalidFinalWitness(input: index, reason: "leaf key is not a valid x-only key")
                }
                try verify(stack[0], key: signer, index: index,
                           leafHash: Taproot.leafHash(script: script, version: block.leafVersion), required: required,
                           sighasher: sighasher)
            } else {
                throw .invalidFinalWitness(input: index, reason: "only key-path and single-key script-path witnesses can be checked")
            }
            return final
        }

        if let signature = input.tapKeySignature {
            try verify(signature, key: outputKey, index: index, leafHash: nil, required: required, sighasher: sighasher)
            return [signature]
        }

        var reason = "no TAP_KEY_SIG and no TAP_SCRIPT_SIG for a leaf script"
        for leafScript in input.tapLeafScripts {
            let script = leafScript.leaf.script
            guard leafScript.controlBlock.verify(script: script, outputKey: outputKey) else {
                throw .controlBlockMismatch(input: index)
            }
            guard let key = singleKey(of: script) else {
                reason = "leaf script is not `<key> OP_CHECKSIG`; only single-key leaves can be finalized here"
                continue
            }
            let leafHash = leafScript.leaf.hash
            guard let sig = input.tapScriptSignatures.first(where: { $0.xOnlyKey == key && $0.leafHash == leafHash }),
                  let signer = try? Schnorr.PublicKey(rawRepresentation: key) else { continue }
            try verify(sig.signature, key: signer, index: index, leafHash: leafHash, required: required, sighasher: sighasher)
            return [sig.signature, script.bytes, leafScript.controlBlock.serialized]
        }
        if input.tapLeafScripts.isEmpty || reason.hasPrefix("no ") { throw .missingSignature(input: index) }
        throw .unsupportedScript(input: index, reason: reason)
    }

    /// Checks one BIP-340 signature (64 bytes, or 65 with an explicit hash type) against the
    /// input's BIP-341 sighash.
    private static func verify(
        _ signatureBytes: Data, key: Schnorr.PublicKey, index: Int, leafHash: Data?, required: UInt32?,
        sighasher: TaprootSighasher
    ) throws(PSBTFinalizeError) {
        let keyHex = key.rawRepresentation.hexString
        guard signatureBytes.count == 64 || signatureBytes.count == 65 else {
            throw .invalidSignature(input: index, key: keyHex)
        }
        let hashType = SighashType(rawValue: signatureBytes.count == 65 ? signatureBytes[signatureBytes.startIndex + 64] : 0)
        // BIP-341: a 65-byte signature must not carry SIGHASH_DEFAULT explicitly.
        guard hashType.isValidForTaproot, signatureBytes.count == 64 || hashType != .default else {
            throw .invalidHashType(input: index, hashType: hashType.rawValue)
        }
        if let required, UInt32(hashType.rawValue) != required {
            throw .invalidHashType(input: index, hashType: hashType.rawValue)
        }
        let sighash: Data
        do {
            sighash = try sighasher.signatureHash(inputIndex: index, hashType: hashType, leafHash: leafHash)
        } catch {
            throw .sighash(input: index, error)
        }
        guard let signature = try? Schnorr.Signature(rawRepresentation: signatureBytes.prefix(64)),
              key.isValidSignature(signature, for: sighash) else {
            throw .invalidSignature(input: index, key: keyHex)
        }
    }
}
