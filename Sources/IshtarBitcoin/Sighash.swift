import Crypto
import Foundation
import IshtarCrypto

/// A signature hash type byte.
public struct SighashType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The byte appended to (non-default) signatures.
    public let rawValue: UInt8

    /// The hash type for byte `rawValue` (not validated; see `isValidForTaproot`).
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// SIGHASH_DEFAULT (taproot only): like ALL, with a 64-byte signature.
    public static let `default` = SighashType(rawValue: 0x00)
    /// SIGHASH_ALL: commit to all inputs and outputs.
    public static let all = SighashType(rawValue: 0x01)
    /// SIGHASH_NONE: commit to no outputs.
    public static let none = SighashType(rawValue: 0x02)
    /// SIGHASH_SINGLE: commit to the output at the input's index only.
    public static let single = SighashType(rawValue: 0x03)
    /// SIGHASH_ALL | ANYONECANPAY.
    public static let allAnyoneCanPay = SighashType(rawValue: 0x81)
    /// SIGHASH_NONE | ANYONECANPAY.
    public static let noneAnyoneCanPay = SighashType(rawValue: 0x82)
    /// SIGHASH_SINGLE | ANYONECANPAY.
    public static let singleAnyoneCanPay = SighashType(rawValue: 0x83)

    /// Whether only this input is committed to.
    public var anyoneCanPay: Bool { rawValue & 0x80 != 0 }
    /// The output mode: the low two bits (0 and 1 both mean ALL).
    var outputMode: UInt8 { rawValue & 0x03 }

    /// BIP-341 accepts only 0x00-0x03 and 0x81-0x83.
    public var isValidForTaproot: Bool {
        [0x00, 0x01, 0x02, 0x03, 0x81, 0x82, 0x83].contains(rawValue)
    }

    /// E.g. "SIGHASH_SINGLE|ANYONECANPAY".
    public var description: String {
        let base: String
        switch rawValue & 0x7f {
        case 0: base = "SIGHASH_DEFAULT"
        case 1: base = "SIGHASH_ALL"
        case 2: base = "SIGHASH_NONE"
        case 3: base = "SIGHASH_SINGLE"
        default: base = "SIGHASH(0x" + String(rawValue, radix: 16) + ")"
        }
        return anyoneCanPay ? base + "|ANYONECANPAY" : base
    }
}

/// BIP-341 signature hashes of one transaction. The per-transaction hashes (sha_prevouts,
/// sha_amounts, sha_scriptpubkeys, sha_sequences, sha_outputs) are computed once here and
/// shared by every input's signature hash.
public struct TaprootSighasher: Sendable {
    /// The transaction being signed.
    public let transaction: Transaction
    /// The outputs every input spends, in input order; BIP-341 commits to all their amounts and scripts.
    public let prevouts: [TxOut]

    /// SHA256 of all outpoints.
    public let shaPrevouts: Data
    /// SHA256 of all spent amounts (8 bytes each).
    public let shaAmounts: Data
    /// SHA256 of all spent scriptPubKeys (CompactSize-prefixed).
    public let shaScriptPubKeys: Data
    /// SHA256 of all input sequences.
    public let shaSequences: Data
    /// SHA256 of all outputs (serialized as in the transaction).
    public let shaOutputs: Data

    /// Precomputes the transaction-wide hashes. `prevouts` must match the inputs one for one.
    public init(transaction: Transaction, prevouts: [TxOut]) throws(SighashError) {
        guard prevouts.count == transaction.inputs.count else {
            throw .prevoutsCountMismatch(provided: prevouts.count, inputCount: transaction.inputs.count)
        }
        self.transaction = transaction
        self.prevouts = prevouts
        var outpoints = Data()
        var sequences = Data()
        for input in transaction.inputs {
            input.previousOutput.append(to: &outpoints)
            sequences.appendLittleEndian(input.sequence)
        }
        var amounts = Data()
        var scripts = Data()
        for prevout in prevouts {
            amounts.appendLittleEndian(prevout.value.sats)
            scripts.appendVarBytes(prevout.scriptPubKey.bytes)
        }
        var outputs = Data()
        for output in transaction.outputs { output.append(to: &outputs) }
        shaPrevouts = BitcoinHash.sha256(outpoints)
        shaSequences = BitcoinHash.sha256(sequences)
        shaAmounts = BitcoinHash.sha256(amounts)
        shaScriptPubKeys = BitcoinHash.sha256(scripts)
        shaOutputs = BitcoinHash.sha256(outputs)
    }

    /// The message hashed for input `inputIndex`, including the leading epoch byte 0x00:
    /// `0x00 ‖ SigMsg(hash_type, ext_flag)` plus the tapscript extension for a script path.
    ///
    /// - Parameters:
    ///   - leafHash: the tapleaf hash for a script-path spend (ext_flag 1); nil for key path.
    ///   - annex: the annex (starting with 0x50) if the witness has one.
    ///   - codeSeparatorPosition: the opcode position of the last executed OP_CODESEPARATOR,
    ///     0xffffffff if none.
    public func signatureMessage(
        inputIndex: Int, hashType: SighashType, leafHash: Data? = nil, annex: Data? = nil,
        codeSeparatorPosition: UInt32 = 0xffff_ffff
    ) throws(SighashError) -> Data {
        guard hashType.isValidForTaproot else { throw .invalidHashType(hashType.rawValue) }
        let inputs = transaction.inputs
        guard inputIndex >= 0, inputIndex < inputs.count else {
            throw .inputIndexOutOfRange(index: inputIndex, inputCount: inputs.count)
        }
        if let leafHash, leafHash.count != 32 { throw .invalidLeafHashLength(leafHash.count) }
        if let annex, annex.first != 0x50 { throw .invalidAnnex }
        let isSingle = hashType.outputMode == 3
        if isSingle, inputIndex >= transaction.outputs.count {
            throw .singleWithoutMatchingOutput(index: inputIndex, outputCount: transaction.outputs.count)
        }

        var message = Data([0x00, hashType.rawValue])
        message.reserveCapacity(260)
        message.appendLittleEndian(transaction.version)
        message.appendLittleEndian(transaction.lockTime)
        if !hashType.anyoneCanPay {
            message.append(shaPrevouts)
            message.append(shaAmounts)
            message.append(shaScriptPubKeys)
            message.append(shaSequences)
        }
        if hashType.outputMode != 2 && !isSingle {
            message.append(shaOutputs)
        }
        let extFlag: UInt8 = leafHash == nil ? 0 : 1
        message.append(extFlag * 2 + (annex == nil ? 0 : 1))
        if hashType.anyoneCanPay {
            let input = inputs[inputIndex]
            input.previousOutput.append(to: &message)
            message.appendLittleEndian(prevouts[inputIndex].value.sats)
            message.appendVarBytes(prevouts[inputIndex].scriptPubKey.bytes)
            message.appendLittleEndian(input.sequence)
        } else {
            message.appendLittleEndian(UInt32(inputIndex))
        }
        if let annex {
            var prefixed = Data()
            prefixed.appendVarBytes(annex)
            message.append(BitcoinHash.sha256(prefixed))
        }
        if isSingle {
            message.append(BitcoinHash.sha256(transaction.outputs[inputIndex].serialized))
        }
        if let leafHash {
            message.append(leafHash)
            message.append(0x00)  // key_version 0: BIP-340 keys
            message.appendLittleEndian(codeSeparatorPosition)
        }
        return message
    }

    /// The 32-byte BIP-341 signature hash: `H_TapSighash(signatureMessage(...))`.
    public func signatureHash(
        inputIndex: Int, hashType: SighashType, leafHash: Data? = nil, annex: Data? = nil,
        codeSeparatorPosition: UInt32 = 0xffff_ffff
    ) throws(SighashError) -> Data {
        let message = try signatureMessage(
            inputIndex: inputIndex, hashType: hashType, leafHash: leafHash, annex: annex,
            codeSeparatorPosition: codeSeparatorPosition)
        return TaggedHash.hash(tag: "TapSighash", data: message)
    }

    /// Signs input `inputIndex` through the key path and returns its witness.
    ///
    /// - Parameters:
    ///   - internalKey: the untweaked internal private key; it is tweaked with `merkleRoot` here.
    ///   - auxiliaryRandomness: 32 bytes for BIP-340 nonce hardening; nil for fresh randomness.
    public func keyPathWitness(
        inputIndex: Int, internalKey: Schnorr.PrivateKey, merkleRoot: Data?, hashType: SighashType = .default,
        auxiliaryRandomness: Data? = nil
    ) throws(TaprootError) -> [Data] {
        if let merkleRoot, merkleRoot.count != 32 { throw .invalidMerkleRootLength(merkleRoot.count) }
        let sighash: Data
        do {
            sighash = try signatureHash(inputIndex: inputIndex, hashType: hashType)
        } catch {
            throw .sighash(error)
        }
        do {
            let tweaked = try internalKey.tapTweaked(merkleRoot: merkleRoot)
            let signature = try Self.sign(sighash, with: tweaked, auxiliaryRandomness: auxiliaryRandomness)
            return Taproot.keyPathWitness(signature: signature, hashType: hashType)
        } catch {
            throw .crypto(error)
        }
    }

    /// The signature of `key` for spending input `inputIndex` through `leaf`, as it goes on the
    /// witness stack (64 bytes, or 65 with a non-default hash type).
    public func scriptPathSignature(
        inputIndex: Int, key: Schnorr.PrivateKey, leaf: TapLeaf, hashType: SighashType = .default,
        auxiliaryRandomness: Data? = nil
    ) throws(TaprootError) -> Data {
        let sighash: Data
        do {
            sighash = try signatureHash(inputIndex: inputIndex, hashType: hashType, leafHash: leaf.hash)
        } catch {
            throw .sighash(error)
        }
        do {
            let signature = try Self.sign(sighash, with: key, auxiliaryRandomness: auxiliaryRandomness)
            return Taproot.signatureBytes(signature, hashType: hashType)
        } catch {
            throw .crypto(error)
        }
    }

    private static func sign(
        _ sighash: Data, with key: Schnorr.PrivateKey, auxiliaryRandomness: Data?
    ) throws(IshtarCrypto.CryptoError) -> Schnorr.Signature {
        if let auxiliaryRandomness {
            return try key.signature(for: sighash, auxiliaryRandomness: auxiliaryRandomness)
        }
        return try key.signature(for: sighash)
    }
}
