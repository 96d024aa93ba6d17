import Foundation

/// A reference to one output of a previous transaction.
public struct OutPoint: Hashable, Sendable, CustomStringConvertible {
    /// The id of the transaction holding the output.
    public var txid: TxID
    /// The output's index in that transaction.
    public var index: UInt32

    /// The serialized size: 32-byte txid and 4-byte index.
    public static let serializedSize = 36

    /// The outpoint of output `index` of transaction `txid`.
    public init(txid: TxID, index: UInt32) {
        self.txid = txid
        self.index = index
    }

    /// The 36-byte serialization: txid in internal order, then the little-endian index.
    public var serialized: Data {
        var out = Data(capacity: 36)
        append(to: &out)
        return out
    }

    func append(to out: inout Data) {
        out.append(txid.rawValue)
        out.appendLittleEndian(index)
    }

    init(reader: inout ByteReader, field: String) throws(BitcoinDecodingError) {
        self.txid = Hash256(unchecked: try reader.readData(32, field: field + " txid"))
        self.index = try reader.readLittleEndian(UInt32.self, field: field + " index")
    }

    /// `txid:index`, the form RPC and explorers use.
    public var description: String { "\(txid.displayHex):\(index)" }
}

/// A transaction input: what it spends, its scriptSig, sequence and (segwit) witness stack.
public struct TxIn: Hashable, Sendable {
    /// The output being spent.
    public var previousOutput: OutPoint
    /// The input script; empty for segwit spends.
    public var scriptSig: Script
    /// nSequence: relative lock time (BIP-68) and replaceability signal.
    public var sequence: UInt32
    /// The witness stack, bottom item first; empty for non-segwit spends.
    public var witness: [Data]

    /// The default sequence: final, no relative lock time, no RBF signal.
    public static let finalSequence: UInt32 = 0xffff_ffff

    /// An input spending `previousOutput`.
    public init(previousOutput: OutPoint, scriptSig: Script = Script(), sequence: UInt32 = TxIn.finalSequence, witness: [Data] = []) {
        self.previousOutput = previousOutput
        self.scriptSig = scriptSig
        self.sequence = sequence
        self.witness = witness
    }
}

/// A transaction output: an amount locked by a script.
public struct TxOut: Hashable, Sendable {
    /// The amount.
    public var value: Amount
    /// The locking script.
    public var scriptPubKey: Script

    /// An output paying `value` to `scriptPubKey`.
    public init(value: Amount, scriptPubKey: Script) {
        self.value = value
        self.scriptPubKey = scriptPubKey
    }

    /// The serialization: 8-byte little-endian value, then the CompactSize-prefixed script.
    /// BIP-341 hashes outputs in this form.
    public var serialized: Data {
        var out = Data()
        append(to: &out)
        return out
    }

    func append(to out: inout Data) {
        out.appendLittleEndian(value.sats)
        out.appendVarBytes(scriptPubKey.bytes)
    }

    init(reader: inout ByteReader, field: String) throws(BitcoinDecodingError) {
        let valueOffset = reader.offset
        let sats = try reader.readLittleEndian(Int64.self, field: field + " value")
        do {
            self.value = try Amount(sats: sats)
        } catch {
            throw .invalidAmount(offset: valueOffset, sats: sats)
        }
        self.scriptPubKey = Script(bytes: try reader.readVarBytes(field: field + " scriptPubKey"))
    }
}

/// A Bitcoin transaction, serialized with BIP-144 segwit encoding when any input has a witness.
public struct Transaction: Hashable, Sendable {
    /// nVersion; 2 enables BIP-68 relative lock times.
    public var version: UInt32
    /// The inputs, in order.
    public var inputs: [TxIn]
    /// The outputs, in order.
    public var outputs: [TxOut]
    /// nLockTime: block height (< 500,000,000) or Unix time before which it cannot be mined.
    public var lockTime: UInt32

    /// A transaction from its parts.
    public init(version: UInt32 = 2, inputs: [TxIn], outputs: [TxOut], lockTime: UInt32 = 0) {
        self.version = version
        self.inputs = inputs
        self.outputs = outputs
        self.lockTime = lockTime
    }

    /// Whether any input carries a witness, so that the segwit serialization is used.
    public var hasWitness: Bool { inputs.contains { !$0.witness.isEmpty } }

    /// The serialization: with witness (BIP-144) if `includingWitness` and any input has one,
    /// else the legacy serialization that the txid commits to.
    public func serialized(includingWitness: Bool = true) -> Data {
        let withWitness = includingWitness && hasWitness
        var out = Data()
        out.reserveCapacity(estimatedSize)
        out.appendLittleEndian(version)
        if withWitness {
            out.append(contentsOf: [0x00, 0x01])
        }
        out.appendCompactSize(UInt64(inputs.count))
        for input in inputs {
            input.previousOutput.append(to: &out)
            out.appendVarBytes(input.scriptSig.bytes)
            out.appendLittleEndian(input.sequence)
        }
        out.appendCompactSize(UInt64(outputs.count))
        for output in outputs { output.append(to: &out) }
        if withWitness {
            for input in inputs {
                out.appendCompactSize(UInt64(input.witness.count))
                for item in input.witness { out.appendVarBytes(item) }
            }
        }
        out.appendLittleEndian(lockTime)
        return out
    }

    private var estimatedSize: Int {
        10 + inputs.count * 41 + inputs.reduce(0) { $0 + $1.scriptSig.bytes.count }
            + outputs.reduce(0) { $0 + 9 + $1.scriptPubKey.bytes.count }
    }

    /// Decodes a whole transaction; any bytes after it are an error.
    public init(serialized bytes: some DataProtocol) throws(BitcoinDecodingError) {
        var reader = ByteReader([UInt8](bytes))
        try self.init(reader: &reader)
        try reader.requireEnd()
    }

    /// Decodes a transaction from `reader`, accepting either serialization, and rejecting every
    /// form that would not re-serialize to the same bytes.
    init(reader: inout ByteReader) throws(BitcoinDecodingError) {
        version = try reader.readLittleEndian(UInt32.self, field: "version")
        var segwit = false
        if reader.peekUInt8() == 0x00 {
            let markerOffset = reader.offset
            _ = try reader.readUInt8(field: "segwit marker")
            let flag = try reader.readUInt8(field: "segwit flag")
            guard flag == 0x01 else {
                // 0x00 0x00 would be "no inputs, no outputs": unserializable, so rejected too.
                throw flag == 0x00 ? .noInputs(offset: markerOffset) : .unknownSegwitFlag(offset: markerOffset, flag: flag)
            }
            segwit = true
        }
        // An input takes at least 41 bytes: outpoint, empty script length, sequence.
        let inputCountOffset = reader.offset
        let inputCount = try reader.readCount(field: "input count", minimumElementSize: 41)
        guard inputCount > 0 else { throw .noInputs(offset: inputCountOffset) }
        var inputs = [TxIn]()
        inputs.reserveCapacity(inputCount)
        for index in 0..<inputCount {
            let field = "input \(index)"
            let previousOutput = try OutPoint(reader: &reader, field: field + " outpoint")
            let scriptSig = try reader.readVarBytes(field: field + " scriptSig")
            let sequence = try reader.readLittleEndian(UInt32.self, field: field + " sequence")
            inputs.append(TxIn(previousOutput: previousOutput, scriptSig: Script(bytes: scriptSig), sequence: sequence))
        }
        // An output takes at least 9 bytes: value and empty script length.
        let outputCount = try reader.readCount(field: "output count", minimumElementSize: 9)
        var outputs = [TxOut]()
        outputs.reserveCapacity(outputCount)
        for index in 0..<outputCount {
            outputs.append(try TxOut(reader: &reader, field: "output \(index)"))
        }
        if segwit {
            for index in 0..<inputCount {
                let itemCount = try reader.readCount(field: "input \(index) witness count", minimumElementSize: 1)
                var stack = [Data]()
                stack.reserveCapacity(itemCount)
                for item in 0..<itemCount {
                    stack.append(try reader.readVarBytes(field: "input \(index) witness item \(item)"))
                }
                inputs[index].witness = stack
            }
            guard inputs.contains(where: { !$0.witness.isEmpty }) else {
                throw .superfluousWitness(offset: reader.offset)
            }
        }
        lockTime = try reader.readLittleEndian(UInt32.self, field: "lock time")
        self.inputs = inputs
        self.outputs = outputs
    }

    /// The transaction id: double-SHA256 of the serialization without witness.
    public var txid: TxID { Hash256(unchecked: BitcoinHash.hash256(serialized(includingWitness: false))) }

    /// The witness transaction id: double-SHA256 of the full serialization (equals the txid
    /// when there is no witness).
    public var wtxid: TxID { Hash256(unchecked: BitcoinHash.hash256(serialized())) }

    /// Size in bytes without witness data.
    public var strippedSize: Int { serialized(includingWitness: false).count }

    /// Size in bytes with witness data.
    public var totalSize: Int { serialized().count }

    /// BIP-141 weight: 3 × stripped size + total size.
    public var weight: Int { 3 * strippedSize + totalSize }

    /// Virtual size: weight / 4, rounded up.
    public var virtualSize: Int { (weight + 3) / 4 }

    /// Whether this is a coinbase: one input spending the null outpoint.
    public var isCoinbase: Bool {
        inputs.count == 1 && inputs[0].previousOutput.txid == .zero && inputs[0].previousOutput.index == .max
    }
}
