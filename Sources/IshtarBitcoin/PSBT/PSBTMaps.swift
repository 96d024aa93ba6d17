import Foundation
import IshtarCrypto

/// A PSBT_IN_TAP_SCRIPT_SIG: a signature by `xOnlyKey` for spending through the leaf `leafHash`.
public struct TapScriptSignature: Hashable, Sendable {
    /// The signer's 32-byte x-only key.
    public var xOnlyKey: Data
    /// The 32-byte tapleaf hash.
    public var leafHash: Data
    /// The signature: 64 bytes, or 65 with a non-default hash type.
    public var signature: Data

    /// A script signature from its parts.
    public init(xOnlyKey: Data, leafHash: Data, signature: Data) {
        self.xOnlyKey = xOnlyKey
        self.leafHash = leafHash
        self.signature = signature
    }
}

/// A PSBT_IN_TAP_LEAF_SCRIPT: a leaf script and the control block proving it.
public struct TapLeafScript: Hashable, Sendable {
    /// The control block (the pair's key data).
    public var controlBlock: ControlBlock
    /// The leaf (script and version).
    public var leaf: TapLeaf

    /// A leaf script from its parts.
    public init(controlBlock: ControlBlock, leaf: TapLeaf) {
        self.controlBlock = controlBlock
        self.leaf = leaf
    }
}

/// The map of one PSBT input.
public struct PSBTInput: PSBTMap, Hashable, Sendable {
    /// The pairs, in order.
    public var entries: [PSBTKeyValue]

    /// A map holding `entries`.
    public init(entries: [PSBTKeyValue] = []) { self.entries = entries }

    private typealias T = PSBTKeyType.Input

    /// PSBT_IN_NON_WITNESS_UTXO: the whole previous transaction.
    public var nonWitnessUTXO: Transaction? {
        get { value(type: T.nonWitnessUTXO).flatMap { try? Transaction(serialized: $0) } }
        set { setValue(newValue?.serialized(), type: T.nonWitnessUTXO) }
    }

    /// PSBT_IN_WITNESS_UTXO: the spent output.
    public var witnessUTXO: TxOut? {
        get { value(type: T.witnessUTXO).flatMap(PSBTCodec.parseTxOut) }
        set { setValue(newValue?.serialized, type: T.witnessUTXO) }
    }

    /// PSBT_IN_SIGHASH_TYPE: the hash type signers must use.
    public var sighashType: UInt32? {
        get { value(type: T.sighashType).flatMap(PSBTCodec.littleEndianUInt32) }
        set {
            var bytes: Data?
            if let newValue {
                bytes = Data()
                bytes?.appendLittleEndian(newValue)
            }
            setValue(bytes, type: T.sighashType)
        }
    }

    /// PSBT_IN_FINAL_SCRIPTSIG.
    public var finalScriptSig: Script? {
        get { value(type: T.finalScriptSig).map { Script(bytes: $0) } }
        set { setValue(newValue?.bytes, type: T.finalScriptSig) }
    }

    /// PSBT_IN_FINAL_SCRIPTWITNESS: the finished witness stack.
    public var finalScriptWitness: [Data]? {
        get { value(type: T.finalScriptWitness).flatMap(PSBTCodec.parseWitness) }
        set { setValue(newValue.map(PSBTCodec.encodeWitness), type: T.finalScriptWitness) }
    }

    /// PSBT_IN_TAP_KEY_SIG: the key-path signature (64 or 65 bytes).
    public var tapKeySignature: Data? {
        get { value(type: T.tapKeySig) }
        set { setValue(newValue, type: T.tapKeySig) }
    }

    /// PSBT_IN_TAP_SCRIPT_SIG pairs, in order.
    public var tapScriptSignatures: [TapScriptSignature] {
        entries(ofType: T.tapScriptSig).map { entry in
            let data = entry.keyData
            return TapScriptSignature(xOnlyKey: Data(data.prefix(32)), leafHash: Data(data.dropFirst(32)), signature: entry.value)
        }
    }

    /// Adds or replaces the script-path signature of `xOnlyKey` for `leafHash`.
    public mutating func setTapScriptSignature(_ signature: TapScriptSignature) {
        setValue(signature.signature, type: T.tapScriptSig, keyData: signature.xOnlyKey + signature.leafHash)
    }

    /// PSBT_IN_TAP_LEAF_SCRIPT pairs, in order.
    public var tapLeafScripts: [TapLeafScript] {
        entries(ofType: T.tapLeafScript).compactMap { entry in
            guard let block = try? ControlBlock(serialized: entry.keyData), let version = entry.value.last,
                  let leaf = try? TapLeaf(script: Script(bytes: entry.value.dropLast()), version: version) else { return nil }
            return TapLeafScript(controlBlock: block, leaf: leaf)
        }
    }

    /// Adds or replaces a leaf script with its control block.
    public mutating func setTapLeafScript(_ leafScript: TapLeafScript) {
        setValue(leafScript.leaf.script.bytes + Data([leafScript.leaf.version]), type: T.tapLeafScript,
                 keyData: leafScript.controlBlock.serialized)
    }

    /// PSBT_IN_TAP_BIP32_DERIVATION pairs, in order.
    public var tapBIP32Derivations: [TapBIP32Derivation] {
        entries(ofType: T.tapBIP32Derivation).compactMap { TapBIP32Derivation.parse(key: $0.keyData, value: $0.value) }
    }

    /// Adds or replaces the derivation of `derivation.xOnlyKey`.
    public mutating func setTapBIP32Derivation(_ derivation: TapBIP32Derivation) {
        setValue(derivation.value, type: T.tapBIP32Derivation, keyData: derivation.xOnlyKey)
    }

    /// PSBT_IN_TAP_INTERNAL_KEY.
    public var tapInternalKey: Schnorr.PublicKey? {
        get { value(type: T.tapInternalKey).flatMap { try? Schnorr.PublicKey(rawRepresentation: $0) } }
        set { setValue(newValue?.rawRepresentation, type: T.tapInternalKey) }
    }

    /// PSBT_IN_TAP_MERKLE_ROOT.
    public var tapMerkleRoot: Data? {
        get { value(type: T.tapMerkleRoot) }
        set { setValue(newValue, type: T.tapMerkleRoot) }
    }

    /// Checks every pair of a decoded input map: key lengths per type, value formats, and that a
    /// non-witness UTXO is the transaction the input spends from.
    static func validate(_ entries: [(entry: PSBTKeyValue, offset: Int)], index: Int, spending outpoint: OutPoint) throws(PSBTError) {
        let map = PSBTMapLocation.input(index)
        for (entry, offset) in entries {
            guard let type = entry.keyType, type <= 0xff else { continue }
            func keyLength(_ allowed: Set<Int>) throws(PSBTError) {
                try PSBT.requireKeyLength(entry, offset: offset, map: map, allowed: allowed)
            }
            func bad(_ reason: String) -> PSBTError { .invalidValue(map: map, keyType: type, reason: reason, offset: offset) }
            let value = entry.value
            switch UInt8(type) {
            case T.nonWitnessUTXO:
                try keyLength([1])
                let tx: Transaction
                do { tx = try Transaction(serialized: value) } catch { throw bad("not a transaction: \(error)") }
                guard tx.txid == outpoint.txid else {
                    throw .nonWitnessUTXOMismatch(input: index, expected: outpoint.txid.displayHex, found: tx.txid.displayHex)
                }
                guard Int(outpoint.index) < tx.outputs.count else {
                    throw .nonWitnessUTXOMissingOutput(input: index, outputCount: tx.outputs.count)
                }
            case T.witnessUTXO:
                try keyLength([1])
                guard PSBTCodec.parseTxOut(value) != nil else { throw bad("not an amount and a script") }
            case T.partialSig:
                try keyLength([34, 66])
            case T.sighashType:
                try keyLength([1])
                guard value.count == 4 else { throw bad("sighash type must be 4 bytes") }
            case T.redeemScript, T.witnessScript, T.finalScriptSig:
                try keyLength([1])
            case T.bip32Derivation:
                try keyLength([34, 66])
                guard value.count >= 4, value.count % 4 == 0 else { throw bad("fingerprint and path must be a multiple of 4 bytes") }
            case T.finalScriptWitness:
                try keyLength([1])
                guard PSBTCodec.parseWitness(value) != nil else { throw bad("not a witness stack") }
            case 0x0a, 0x0c:  // RIPEMD160 and HASH160 preimages: 20-byte hash keys.
                try keyLength([21])
            case 0x0b, 0x0d:  // SHA256 and HASH256 preimages: 32-byte hash keys.
                try keyLength([33])
            case T.tapKeySig:
                try keyLength([1])
                guard value.count == 64 || value.count == 65 else { throw bad("signature must be 64 or 65 bytes, got \(value.count)") }
            case T.tapScriptSig:
                try keyLength([65])
                guard value.count == 64 || value.count == 65 else { throw bad("signature must be 64 or 65 bytes, got \(value.count)") }
            case T.tapLeafScript:
                let blockLength = entry.key.count - 1
                guard blockLength >= 33, (blockLength - 33) % 32 == 0, (blockLength - 33) / 32 <= Taproot.maxPathDepth else {
                    throw .invalidKeyLength(map: map, keyType: type, length: entry.key.count, offset: offset)
                }
                do { _ = try ControlBlock(serialized: entry.keyData) } catch { throw bad("control block: \(error)") }
                guard let version = value.last else { throw bad("missing leaf version") }
                guard version & 1 == 0, version != 0x50 else { throw bad("invalid leaf version 0x\(String(version, radix: 16))") }
            case T.tapBIP32Derivation:
                try keyLength([33])
                guard TapBIP32Derivation.parse(key: entry.keyData, value: value) != nil else {
                    throw bad("not leaf hashes, fingerprint and path")
                }
            case T.tapInternalKey:
                try keyLength([1])
                guard value.count == 32 else { throw bad("x-only key must be 32 bytes, got \(value.count)") }
                guard (try? Schnorr.PublicKey(rawRepresentation: value)) != nil else { throw bad("not a valid x-only key") }
            case T.tapMerkleRoot:
                try keyLength([1])
                guard value.count == 32 else { throw bad("merkle root must be 32 bytes, got \(value.count)") }
            default:
                break
            }
        }
    }
}

/// The map of one PSBT output.
public struct PSBTOutput: PSBTMap, Hashable, Sendable {
    /// The pairs, in order.
    public var entries: [PSBTKeyValue]

    /// A map holding `entries`.
    public init(entries: [PSBTKeyValue] = []) { self.entries = entries }

    private typealias T = PSBTKeyType.Output

    /// PSBT_OUT_TAP_INTERNAL_KEY.
    public var tapInternalKey: Schnorr.PublicKey? {
        get { value(type: T.tapInternalKey).flatMap { try? Schnorr.PublicKey(rawRepresentation: $0) } }
        set { setValue(newValue?.rawRepresentation, type: T.tapInternalKey) }
    }

    /// PSBT_OUT_TAP_TREE: the leaves in depth-first order.
    public var tapTree: [PSBTTapTreeLeaf]? {
        get { value(type: T.tapTree).flatMap(PSBTCodec.parseTapTree) }
        set { setValue(newValue.map(PSBTCodec.encodeTapTree), type: T.tapTree) }
    }

    /// PSBT_OUT_TAP_BIP32_DERIVATION pairs, in order.
    public var tapBIP32Derivations: [TapBIP32Derivation] {
        entries(ofType: T.tapBIP32Derivation).compactMap { TapBIP32Derivation.parse(key: $0.keyData, value: $0.value) }
    }

    /// Adds or replaces the derivation of `derivation.xOnlyKey`.
    public mutating func setTapBIP32Derivation(_ derivation: TapBIP32Derivation) {
        setValue(derivation.value, type: T.tapBIP32Derivation, keyData: derivation.xOnlyKey)
    }

    static func validate(_ entries: [(entry: PSBTKeyValue, offset: Int)], index: Int) throws(PSBTError) {
        let map = PSBTMapLocation.output(index)
        for (entry, offset) in entries {
            guard let type = entry.keyType, type <= 0xff else { continue }
            func keyLength(_ allowed: Set<Int>) throws(PSBTError) {
                try PSBT.requireKeyLength(entry, offset: offset, map: map, allowed: allowed)
            }
            func bad(_ reason: String) -> PSBTError { .invalidValue(map: map, keyType: type, reason: reason, offset: offset) }
            switch UInt8(type) {
            case T.redeemScript, T.witnessScript:
                try keyLength([1])
            case T.bip32Derivation:
                try keyLength([34, 66])
                guard entry.value.count >= 4, entry.value.count % 4 == 0 else {
                    throw bad("fingerprint and path must be a multiple of 4 bytes")
                }
            case T.tapInternalKey:
                try keyLength([1])
                guard entry.value.count == 32 else { throw bad("x-only key must be 32 bytes, got \(entry.value.count)") }
                guard (try? Schnorr.PublicKey(rawRepresentation: entry.value)) != nil else { throw bad("not a valid x-only key") }
            case T.tapTree:
                try keyLength([1])
                guard PSBTCodec.parseTapTree(entry.value) != nil else { throw bad("not a list of (depth ≤ 128, version, script)") }
            case T.tapBIP32Derivation:
                try keyLength([33])
                guard TapBIP32Derivation.parse(key: entry.keyData, value: entry.value) != nil else {
                    throw bad("not leaf hashes, fingerprint and path")
                }
            default:
                break
            }
        }
    }
}
