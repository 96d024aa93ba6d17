import Foundation

/// Which key-value map of a PSBT an entry belongs to.
public enum PSBTMapLocation: Hashable, Sendable, CustomStringConvertible {
    /// The global map.
    case global
    /// The map of input `index`.
    case input(Int)
    /// The map of output `index`.
    case output(Int)

    /// "global", "input 3", "output 0".
    public var description: String {
        switch self {
        case .global: "global"
        case .input(let i): "input \(i)"
        case .output(let i): "output \(i)"
        }
    }
}

/// Why bytes could not be decoded as a PSBT (BIP-174 version 0 with BIP-371 taproot fields).
/// Offsets are byte offsets from the start of the PSBT (the magic is at 0).
public enum PSBTError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The text was not valid base64.
    case invalidBase64
    /// The input does not start with the magic `psbt\xff`.
    case notAPSBT
    /// The input ended inside `field` of the `map` at `offset`.
    case truncated(map: PSBTMapLocation, field: String, offset: Int)
    /// A CompactSize (key length, value length or key type) at `offset` in `map` was not minimally
    /// encoded, so the PSBT would have two encodings.
    case nonMinimalCompactSize(map: PSBTMapLocation, offset: Int)
    /// `map` holds the key starting at `offset` (key type `keyType`) twice; BIP-174 forbids it.
    case duplicateKey(map: PSBTMapLocation, keyType: UInt64, offset: Int)
    /// The key at `offset` in `map` has type `keyType` but `length` bytes (type included),
    /// which that type does not allow (e.g. an x-only key given as 33-byte compressed).
    case invalidKeyLength(map: PSBTMapLocation, keyType: UInt64, length: Int, offset: Int)
    /// The value of the key of type `keyType` at `offset` in `map` is malformed: `reason` says how.
    case invalidValue(map: PSBTMapLocation, keyType: UInt64, reason: String, offset: Int)
    /// The global map has no PSBT_GLOBAL_UNSIGNED_TX (type 0x00).
    case missingUnsignedTransaction
    /// PSBT_GLOBAL_UNSIGNED_TX did not decode as a transaction.
    case invalidUnsignedTransaction(BitcoinDecodingError)
    /// Input `input` of the unsigned transaction has a scriptSig or witness; BIP-174 requires both empty.
    case unsignedTransactionNotEmpty(input: Int)
    /// PSBT_GLOBAL_VERSION is `version`; only version 0 is supported.
    case unsupportedVersion(UInt32)
    /// The NON_WITNESS_UTXO of input `input` has txid `found`, but the input spends `expected`.
    case nonWitnessUTXOMismatch(input: Int, expected: String, found: String)
    /// The NON_WITNESS_UTXO of input `input` has `outputCount` outputs, fewer than the spent index requires.
    case nonWitnessUTXOMissingOutput(input: Int, outputCount: Int)
    /// `count` bytes follow the last output map, starting at `offset`.
    case trailingBytes(offset: Int, count: Int)
    /// A construction argument is inconsistent: `reason` says how (not a decoding error).
    case invalidConstruction(String)

    /// One line naming what is wrong and where.
    public var description: String {
        switch self {
        case .invalidBase64: "not valid base64"
        case .notAPSBT: "does not start with the PSBT magic 70736274ff"
        case .truncated(let map, let field, let offset): "truncated at byte \(offset) (reading \(map) \(field))"
        case .nonMinimalCompactSize(let map, let offset): "non-minimal CompactSize at byte \(offset) in \(map) map"
        case .duplicateKey(let map, let type, let offset):
            "duplicate key of type 0x\(String(type, radix: 16)) at byte \(offset) in \(map) map"
        case .invalidKeyLength(let map, let type, let length, let offset):
            "key of type 0x\(String(type, radix: 16)) at byte \(offset) in \(map) map has invalid length \(length)"
        case .invalidValue(let map, let type, let reason, let offset):
            "value of key type 0x\(String(type, radix: 16)) at byte \(offset) in \(map) map: \(reason)"
        case .missingUnsignedTransaction: "global map has no unsigned transaction (key type 0x00)"
        case .invalidUnsignedTransaction(let error): "unsigned transaction: \(error)"
        case .unsignedTransactionNotEmpty(let input): "unsigned transaction input \(input) has a scriptSig or witness"
        case .unsupportedVersion(let v): "unsupported PSBT version \(v) (only 0)"
        case .nonWitnessUTXOMismatch(let input, let expected, let found):
            "input \(input) non-witness UTXO has txid \(found), but the input spends \(expected)"
        case .nonWitnessUTXOMissingOutput(let input, let count):
            "input \(input) non-witness UTXO has only \(count) outputs"
        case .trailingBytes(let offset, let count): "\(count) trailing bytes at byte \(offset)"
        case .invalidConstruction(let reason): reason
        }
    }
}

/// Why a PSBT could not be verified or finalized into a transaction.
public enum PSBTFinalizeError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Input `input` has neither WITNESS_UTXO nor NON_WITNESS_UTXO, so its sighash cannot be computed.
    case missingUTXO(input: Int)
    /// Input `input` spends a script that is not P2TR; this finalizer only handles taproot.
    case notTaproot(input: Int)
    /// Input `input` has no key-path signature and no script-path signature it can use.
    case missingSignature(input: Int)
    /// The signature on input `input` (by `key`, hex; the output key for key path) does not verify.
    case invalidSignature(input: Int, key: String)
    /// The signature on input `input` has hash type `hashType`, which BIP-341 does not allow, or which
    /// contradicts the input's SIGHASH_TYPE field.
    case invalidHashType(input: Int, hashType: UInt8)
    /// Input `input` spends a leaf script this finalizer cannot satisfy; `reason` says why.
    case unsupportedScript(input: Int, reason: String)
    /// The control block on input `input` does not commit its leaf script to the spent output key.
    case controlBlockMismatch(input: Int)
    /// The existing FINAL_SCRIPTWITNESS of input `input` does not verify: `reason`.
    case invalidFinalWitness(input: Int, reason: String)
    /// Computing the sighash failed.
    case sighash(input: Int, SighashError)

    /// One line naming the input and the problem.
    public var description: String {
        switch self {
        case .missingUTXO(let i): "input \(i): no witness or non-witness UTXO"
        case .notTaproot(let i): "input \(i): spent output is not P2TR"
        case .missingSignature(let i): "input \(i): no usable signature"
        case .invalidSignature(let i, let key): "input \(i): signature by \(key) does not verify"
        case .invalidHashType(let i, let t): "input \(i): hash type 0x\(String(t, radix: 16)) not allowed"
        case .unsupportedScript(let i, let reason): "input \(i): \(reason)"
        case .controlBlockMismatch(let i): "input \(i): control block does not match the spent output key"
        case .invalidFinalWitness(let i, let reason): "input \(i): final witness: \(reason)"
        case .sighash(let i, let e): "input \(i): sighash: \(e)"
        }
    }
}
