import Foundation
import IshtarCrypto

/// One key-value pair of a PSBT map, kept exactly as it was encoded.
public struct PSBTKeyValue: Hashable, Sendable {
    /// The whole key: CompactSize key type followed by the key data.
    public var key: Data
    /// The value bytes.
    public var value: Data

    /// A pair from its raw key and value.
    public init(key: Data, value: Data) {
        self.key = key
        self.value = value
    }

    /// A pair whose key is `type` (one byte, as every defined v0 type is) followed by `keyData`.
    public init(type: UInt8, keyData: Data = Data(), value: Data) {
        self.key = Data([type]) + keyData
        self.value = value
    }

    /// The key type, or nil if the key does not start with a minimal CompactSize.
    public var keyType: UInt64? {
        var reader = ByteReader([UInt8](key))
        return try? reader.readCompactSize(field: "key type")
    }

    /// The key bytes after the key type.
    public var keyData: Data {
        var reader = ByteReader([UInt8](key))
        guard (try? reader.readCompactSize(field: "key type")) != nil else { return Data() }
        return Data(key.dropFirst(reader.offset))
    }
}

/// A map of key-value pairs in their encoded order. Every typed accessor on PSBT maps reads and
/// writes these entries, so that decoding then encoding gives back the same bytes, unknown and
/// proprietary pairs included.
public protocol PSBTMap {
    /// The pairs, in order.
    var entries: [PSBTKeyValue] { get set }
}

extension PSBTMap {
    /// The value of the pair whose key is exactly `type ‖ keyData`.
    public func value(type: UInt8, keyData: Data = Data()) -> Data? {
        let key = Data([type]) + keyData
        return entries.first { $0.key == key }?.value
    }

    /// All pairs of key type `type`.
    public func entries(ofType type: UInt8) -> [PSBTKeyValue] {
        entries.filter { $0.key.first == type }
    }

    /// Sets (replacing in place, or appending) or with nil removes the pair with key `type ‖ keyData`.
    public mutating func setValue(_ value: Data?, type: UInt8, keyData: Data = Data()) {
        let key = Data([type]) + keyData
        if let index = entries.firstIndex(where: { $0.key == key }) {
            if let value { entries[index].value = value } else { entries.remove(at: index) }
        } else if let value {
            entries.append(PSBTKeyValue(key: key, value: value))
        }
    }

    /// Removes every pair of key type `type`.
    public mutating func removeAll(ofType type: UInt8) {
        entries.removeAll { $0.key.first == type }
    }
}

/// The global map.
public struct PSBTGlobal: PSBTMap, Hashable, Sendable {
    /// The pairs, in order, PSBT_GLOBAL_UNSIGNED_TX included.
    public var entries: [PSBTKeyValue]

    /// PSBT_GLOBAL_XPUB pairs: key data is the 78-byte serialized extended key, value the fingerprint and path.
    public var xpubs: [PSBTKeyValue] { entries(ofType: PSBTKeyType.Global.xpub) }
    /// Pairs of types this implementation does not interpret (kept and re-encoded as they were).
    public var unknown: [PSBTKeyValue] {
        entries.filter { ![PSBTKeyType.Global.unsignedTx, PSBTKeyType.Global.xpub, PSBTKeyType.Global.version].contains($0.key.first) }
    }
}

/// The key types this implementation reads (BIP-174, BIP-371).
public enum PSBTKeyType {
    /// Global key types.
    public enum Global {
        /// PSBT_GLOBAL_UNSIGNED_TX.
        public static let unsignedTx: UInt8 = 0x00
        /// PSBT_GLOBAL_XPUB.
        public static let xpub: UInt8 = 0x01
        /// PSBT_GLOBAL_VERSION.
        public static let version: UInt8 = 0xfb
    }

    /// Input key types.
    public enum Input {
        /// PSBT_IN_NON_WITNESS_UTXO.
        public static let nonWitnessUTXO: UInt8 = 0x00
        /// PSBT_IN_WITNESS_UTXO.
        public static let witnessUTXO: UInt8 = 0x01
        /// PSBT_IN_PARTIAL_SIG.
        public static let partialSig: UInt8 = 0x02
        /// PSBT_IN_SIGHASH_TYPE.
        public static let sighashType: UInt8 = 0x03
        /// PSBT_IN_REDEEM_SCRIPT.
        public static let redeemScript: UInt8 = 0x04
        /// PSBT_IN_WITNESS_SCRIPT.
        public static let witnessScript: UInt8 = 0x05
        /// PSBT_IN_BIP32_DERIVATION.
        public static let bip32Derivation: UInt8 = 0x06
        /// PSBT_IN_FINAL_SCRIPTSIG.
        public static let finalScriptSig: UInt8 = 0x07
        /// PSBT_IN_FINAL_SCRIPTWITNESS.
        public static let finalScriptWitness: UInt8 = 0x08
        /// PSBT_IN_TAP_KEY_SIG.
        public static let tapKeySig: UInt8 = 0x13
        /// PSBT_IN_TAP_SCRIPT_SIG.
        public static let tapScriptSig: UInt8 = 0x14
        /// PSBT_IN_TAP_LEAF_SCRIPT.
        public static let tapLeafScript: UInt8 = 0x15
        /// PSBT_IN_TAP_BIP32_DERIVATION.
        public static let tapBIP32Derivation: UInt8 = 0x16
        /// PSBT_IN_TAP_INTERNAL_KEY.
        public static let tapInternalKey: UInt8 = 0x17
        /// PSBT_IN_TAP_MERKLE_ROOT.
        public static let tapMerkleRoot: UInt8 = 0x18
    }

    /// Output key types.
    public enum Output {
        /// PSBT_OUT_REDEEM_SCRIPT.
        public static let redeemScript: UInt8 = 0x00
        /// PSBT_OUT_WITNESS_SCRIPT.
        public static let witnessScript: UInt8 = 0x01
        /// PSBT_OUT_BIP32_DERIVATION.
        public static let bip32Derivation: UInt8 = 0x02
        /// PSBT_OUT_TAP_INTERNAL_KEY.
        public static let tapInternalKey: UInt8 = 0x05
        /// PSBT_OUT_TAP_TREE.
        public static let tapTree: UInt8 = 0x06
        /// PSBT_OUT_TAP_BIP32_DERIVATION.
        public static let tapBIP32Derivation: UInt8 = 0x07
    }
}

/// A Partially Signed Bitcoin Transaction, version 0 (BIP-174), with the taproot fields of BIP-371.
///
/// The maps keep every pair in its encoded order, so `serialized` returns exactly the bytes a
/// PSBT was decoded from; the typed properties on `PSBTInput`/`PSBTOutput` read and write those pairs.
public struct PSBT: Hashable, Sendable {
    /// The magic every PSBT starts with: "psbt" and 0xff.
    public static let magic = Data([0x70, 0x73, 0x62, 0x74, 0xff])

    /// The transaction being signed, with empty scriptSigs and witnesses.
    public let unsignedTransaction: Transaction
    /// The global map (it holds the unsigned transaction's own pair too).
    public var global: PSBTGlobal
    /// One map per transaction input.
    public var inputs: [PSBTInput]
    /// One map per transaction output.
    public var outputs: [PSBTOutput]

    /// A PSBT for `unsignedTransaction` with empty input and output maps.
    public init(unsignedTransaction: Transaction) throws(PSBTError) {
        for (index, input) in unsignedTransaction.inputs.enumerated()
        where !input.scriptSig.bytes.isEmpty || !input.witness.isEmpty {
            throw .unsignedTransactionNotEmpty(input: index)
        }
        self.unsignedTransaction = unsignedTransaction
        self.global = PSBTGlobal(entries: [
            PSBTKeyValue(type: PSBTKeyType.Global.unsignedTx, value: unsignedTransaction.serialized(includingWitness: false))
        ])
        self.inputs = Array(repeating: PSBTInput(entries: []), count: unsignedTransaction.inputs.count)
        self.outputs = Array(repeating: PSBTOutput(entries: []), count: unsignedTransaction.outputs.count)
    }

    /// Decodes base64 text (surrounding whitespace ignored).
    public init(base64: String) throws(PSBTError) {
        let trimmed = base64.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let data = Data(base64Encoded: trimmed) else { throw .invalidBase64 }
        try self.init(serialized: data)
    }

    /// Decodes and validates binary PSBT bytes; anything after the last output map is an error.
    public init(serialized bytes: some DataProtocol) throws(PSBTError) {
        let raw = [UInt8](bytes)
        guard raw.count >= 5, Data(raw[0..<5]) == PSBT.magic else { throw .notAPSBT }
        var reader = ByteReader(raw)
        _ = try? reader.readBytes(5, field: "magic")

        let globalEntries = try PSBT.readMap(&reader, location: .global)
        var transaction: Transaction?
        for (entry, offset) in globalEntries {
            guard let type = entry.keyType else { throw .nonMinimalCompactSize(map: .global, offset: offset) }
            switch type {
            case UInt64(PSBTKeyType.Global.unsignedTx):
                try PSBT.requireKeyLength(entry, offset: offset, map: .global, allowed: [1])
                let tx: Transaction
                do { tx = try Transaction(serialized: entry.value) } catch { throw .invalidUnsignedTransaction(error) }
                for (index, input) in tx.inputs.enumerated() where !input.scriptSig.bytes.isEmpty || !input.witness.isEmpty {
                    throw .unsignedTransactionNotEmpty(input: index)
                }
                transaction = tx
            case UInt64(PSBTKeyType.Global.xpub):
                try PSBT.requireKeyLength(entry, offset: offset, map: .global, allowed: [79])
                guard entry.value.count >= 4, entry.value.count % 4 == 0 else {
                    throw .invalidValue(map: .global, keyType: type, reason: "fingerprint and path must be a multiple of 4 bytes", offset: offset)
                }
            case UInt64(PSBTKeyType.Global.version):
                try PSBT.requireKeyLength(entry, offset: offset, map: .global, allowed: [1])
                guard entry.value.count == 4 else {
                    throw .invalidValue(map: .global, keyType: type, reason: "version must be 4 bytes", offset: offset)
                }
                let version = entry.value.enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) }
                guard version == 0 else { throw .unsupportedVersion(version) }
            default:
                break
            }
        }
        guard let transaction else { throw .missingUnsignedTransaction }

        var inputs = [PSBTInput]()
        for index in transaction.inputs.indices {
            let entries = try PSBT.readMap(&reader, location: .input(index))
            try PSBTInput.validate(entries, index: index, spending: transaction.inputs[index].previousOutput)
            inputs.append(PSBTInput(entries: entries.map(\.entry)))
        }
        var outputs = [PSBTOutput]()
        for index in transaction.outputs.indices {
            let entries = try PSBT.readMap(&reader, location: .output(index))
            try PSBTOutput.validate(entries, index: index)
            outputs.append(PSBTOutput(entries: entries.map(\.entry)))
        }
        guard reader.isAtEnd else { throw .trailingBytes(offset: reader.offset, count: reader.remaining) }
        self.unsignedTransaction = transaction
        self.global = PSBTGlobal(entries: globalEntries.map(\.entry))
        self.inputs = inputs
        self.outputs = outputs
    }

    /// The binary encoding: magic, then every map's pairs in order, each map closed by 0x00.
    public var serialized: Data {
        var out = PSBT.magic
        func write(_ entries: [PSBTKeyValue]) {
            for entry in entries {
                out.appendVarBytes(entry.key)
                out.appendVarBytes(entry.value)
            }
            out.append(0x00)
        }
        write(global.entries)
        for input in inputs { write(input.entries) }
        for output in outputs { write(output.entries) }
        return out
    }

    /// The base64 encoding, as wallets exchange PSBTs.
    public var base64: String { serialized.base64EncodedString() }

    // MARK: - Decoding helpers

    /// Reads one map up to its 0x00 separator, rejecting duplicate keys. Each pair comes with the
    /// offset of its key length, for error messages.
    static func readMap(_ reader: inout ByteReader, location: PSBTMapLocation) throws(PSBTError) -> [(entry: PSBTKeyValue, offset: Int)] {
        var entries = [(entry: PSBTKeyValue, offset: Int)]()
        var seen = Set<Data>()
        while true {
            let offset = reader.offset
            let keyLength = try read(&reader, location: location, field: "key length") { r throws(BitcoinDecodingError) in
                try r.readCompactSize(field: "key length")
            }
            if keyLength == 0 { break }
            let key = try readBytes(&reader, count: keyLength, location: location, field: "key")
            let valueLength = try read(&reader, location: location, field: "value length") { r throws(BitcoinDecodingError) in
                try r.readCompactSize(field: "value length")
            }
            let value = try readBytes(&reader, count: valueLength, location: location, field: "value")
            let entry = PSBTKeyValue(key: key, value: value)
            guard let type = entry.keyType else { throw .nonMinimalCompactSize(map: location, offset: offset) }
            guard seen.insert(key).inserted else { throw .duplicateKey(map: location, keyType: type, offset: offset) }
            entries.append((entry, offset))
        }
        return entries
    }

    private static func read<T>(
        _ reader: inout ByteReader, location: PSBTMapLocation, field: String,
        _ body: (inout ByteReader) throws(BitcoinDecodingError) -> T
    ) throws(PSBTError) -> T {
        let offset = reader.offset
        do {
            return try body(&reader)
        } catch {
            if case .nonMinimalCompactSize = error { throw .nonMinimalCompactSize(map: location, offset: offset) }
            throw .truncated(map: location, field: field, offset: offset)
        }
    }

    private static func readBytes(
        _ reader: inout ByteReader, count: UInt64, location: PSBTMapLocation, field: String
    ) throws(PSBTError) -> Data {
        // Checked before converting, so a forged length never allocates or traps.
        guard count <= UInt64(reader.remaining) else { throw .truncated(map: location, field: field, offset: reader.offset) }
        return try read(&reader, location: location, field: field) { r throws(BitcoinDecodingError) in
            try r.readData(Int(count), field: field)
        }
    }

    static func requireKeyLength(
        _ entry: PSBTKeyValue, offset: Int, map: PSBTMapLocation, allowed: Set<Int>
    ) throws(PSBTError) {
        guard allowed.contains(entry.key.count) else {
            throw .invalidKeyLength(map: map, keyType: entry.keyType ?? 0, length: entry.key.count, offset: offset)
        }
    }
}

// MARK: - Value codecs shared by inputs and outputs

/// A BIP-371 taproot BIP-32 derivation: the leaf hashes the key signs for, and the key's origin.
public struct TapBIP32Derivation: Hashable, Sendable {
    /// The 32-byte x-only public key (the pair's key data).
    public var xOnlyKey: Data
    /// Hashes of the leaves that use this key; empty for the internal key.
    public var leafHashes: [Data]
    /// The master key fingerprint.
    public var fingerprint: Data
    /// The derivation path indexes.
    public var path: [UInt32]

    /// A derivation from its parts.
    public init(xOnlyKey: Data, leafHashes: [Data], fingerprint: Data, path: [UInt32]) {
        self.xOnlyKey = xOnlyKey
        self.leafHashes = leafHashes
        self.fingerprint = fingerprint
        self.path = path
    }

    /// Parses the value `<count> <leaf hash>* <fingerprint> <path>*`; nil if malformed.
    static func parse(key: Data, value: Data) -> TapBIP32Derivation? {
        var reader = ByteReader([UInt8](value))
        guard let count = try? reader.readCount(field: "hashes", minimumElementSize: 32) else { return nil }
        var hashes = [Data]()
        for _ in 0..<count {
            guard let hash = try? reader.readData(32, field: "hash") else { return nil }
            hashes.append(hash)
        }
        guard reader.remaining >= 4, reader.remaining % 4 == 0, let fingerprint = try? reader.readData(4, field: "fp") else {
            return nil
        }
        var path = [UInt32]()
        while !reader.isAtEnd {
            guard let index = try? reader.readLittleEndian(UInt32.self, field: "path") else { return nil }
            path.append(index)
        }
        return TapBIP32Derivation(xOnlyKey: key, leafHashes: hashes, fingerprint: fingerprint, path: path)
    }

    /// The encoded value.
    var value: Data {
        var out = Data()
        out.appendCompactSize(UInt64(leafHashes.count))
        for hash in leafHashes { out.append(hash) }
        out.append(fingerprint)
        for index in path { out.appendLittleEndian(index) }
        return out
    }
}

/// One leaf of a PSBT_OUT_TAP_TREE: its depth in the tree, leaf version and script.
public struct PSBTTapTreeLeaf: Hashable, Sendable {
    /// Depth from the root (0 for a single-leaf tree), at most 128.
    public var depth: UInt8
    /// The leaf version.
    public var leafVersion: UInt8
    /// The leaf script.
    public var script: Script

    /// A leaf entry from its parts.
    public init(depth: UInt8, leafVersion: UInt8, script: Script) {
        self.depth = depth
        self.leafVersion = leafVersion
        self.script = script
    }
}

enum PSBTCodec {
    static func parseTxOut(_ value: Data) -> TxOut? {
        var reader = ByteReader([UInt8](value))
        guard let out = try? TxOut(reader: &reader, field: "witness utxo"), reader.isAtEnd else { return nil }
        return out
    }

    static func parseWitness(_ value: Data) -> [Data]? {
        var reader = ByteReader([UInt8](value))
        guard let count = try? reader.readCount(field: "witness", minimumElementSize: 1) else { return nil }
        var stack = [Data]()
        for _ in 0..<count {
            guard let item = try? reader.readVarBytes(field: "item") else { return nil }
            stack.append(item)
        }
        return reader.isAtEnd ? stack : nil
    }

    static func encodeWitness(_ stack: [Data]) -> Data {
        var out = Data()
        out.appendCompactSize(UInt64(stack.count))
        for item in stack { out.appendVarBytes(item) }
        return out
    }

    static func parseTapTree(_ value: Data) -> [PSBTTapTreeLeaf]? {
        var reader = ByteReader([UInt8](value))
        var leaves = [PSBTTapTreeLeaf]()
        while !reader.isAtEnd {
            guard let depth = try? reader.readUInt8(field: "depth"), depth <= 128,
                  let version = try? reader.readUInt8(field: "version"),
                  let script = try? reader.readVarBytes(field: "script") else { return nil }
            leaves.append(PSBTTapTreeLeaf(depth: depth, leafVersion: version, script: Script(bytes: script)))
        }
        return leaves.isEmpty ? nil : leaves
    }

    static func encodeTapTree(_ leaves: [PSBTTapTreeLeaf]) -> Data {
        var out = Data()
        for leaf in leaves {
            out.append(leaf.depth)
            out.append(leaf.leafVersion)
            out.appendVarBytes(leaf.script.bytes)
        }
        return out
    }

    static func littleEndianUInt32(_ value: Data) -> UInt32? {
        guard value.count == 4 else { return nil }
        return value.enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) }
    }
}
