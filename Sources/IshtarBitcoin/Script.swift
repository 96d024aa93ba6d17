import Foundation
import IshtarCrypto

/// One element to build a script from.
public enum ScriptElement: Hashable, Sendable {
    /// A non-push opcode such as OP_CHECKSIG.
    case op(Opcode)
    /// Data, pushed with the minimal encoding (OP_0, OP_1...OP_16, OP_1NEGATE, direct, PUSHDATA1/2/4).
    case push(Data)
    /// A script number (CScriptNum), pushed minimally: 0 → OP_0, 1...16 → OP_n, -1 → OP_1NEGATE,
    /// else the minimal little-endian sign-magnitude bytes (1000 → `02 e803`).
    case number(Int64)
}

/// One parsed instruction of a script, exactly as it is encoded.
public struct ScriptInstruction: Hashable, Sendable {
    /// The opcode byte; for pushes, the push opcode (OP_0, 0x01...0x4b, OP_PUSHDATA1/2/4).
    public let opcode: Opcode
    /// The pushed bytes for push opcodes (empty for OP_0); nil for every other opcode.
    public let data: Data?
    /// The byte offset of the opcode in the script.
    public let offset: Int

    /// Whether a push uses the shortest encoding for its data (Bitcoin Core's CheckMinimalPush);
    /// true for non-push opcodes.
    public var isMinimalPush: Bool {
        guard let data else { return true }
        return Script.pushEncoding(of: data) == Script.encodedPush(opcode: opcode, data: data)
    }

    /// The value pushed on the stack as a script number source: data for pushes, the number for
    /// OP_1NEGATE and OP_1...OP_16; nil otherwise.
    public var pushedBytes: Data? {
        if let data { return data }
        if opcode == .op1Negate { return Data([0x81]) }
        if let value = opcode.smallIntegerValue { return Data([UInt8(value)]) }
        return nil
    }
}

/// A Bitcoin script: raw bytes, which need not parse (an output may lock to anything), with a
/// builder, a parser and a classifier on top.
public struct Script: Hashable, Sendable, ExpressibleByArrayLiteral, CustomStringConvertible {
    /// The encoded script.
    public var bytes: Data

    /// The empty script.
    public init() { bytes = Data() }

    /// A script with exactly these bytes.
    public init(bytes: some DataProtocol) { self.bytes = Data(bytes) }

    /// A script built from `elements`, every push minimally encoded.
    public init(_ elements: [ScriptElement]) {
        bytes = Data()
        for element in elements { append(element) }
    }

    /// A script built from `elements`, every push minimally encoded.
    public init(arrayLiteral elements: ScriptElement...) { self.init(elements) }

    /// Appends one element.
    public mutating func append(_ element: ScriptElement) {
        switch element {
        case .op(let opcode): bytes.append(opcode.rawValue)
        case .push(let data): bytes.append(Script.pushEncoding(of: data))
        case .number(let value): bytes.append(Script.pushEncoding(of: ScriptNumber.encode(value)))
        }
    }

    /// Appends another script's bytes.
    public mutating func append(contentsOf other: Script) { bytes.append(other.bytes) }

    /// Concatenation.
    public static func + (lhs: Script, rhs: Script) -> Script { Script(bytes: lhs.bytes + rhs.bytes) }

    /// The minimal push of `data`.
    static func pushEncoding(of data: Data) -> Data {
        if data.isEmpty { return Data([Opcode.op0.rawValue]) }
        if data.count == 1, let first = data.first {
            if (1...16).contains(first) { return Data([0x50 + first]) }
            if first == 0x81 { return Data([Opcode.op1Negate.rawValue]) }
        }
        let opcode: Opcode
        switch data.count {
        case 1...75: opcode = Opcode(rawValue: UInt8(data.count))
        case 76...0xff: opcode = .pushData1
        case 0x100...0xffff: opcode = .pushData2
        default: opcode = .pushData4
        }
        return encodedPush(opcode: opcode, data: data)
    }

    static func encodedPush(opcode: Opcode, data: Data) -> Data {
        var out = Data([opcode.rawValue])
        switch opcode {
        case .pushData1: out.append(UInt8(truncatingIfNeeded: data.count))
        case .pushData2: out.appendLittleEndian(UInt16(truncatingIfNeeded: data.count))
        case .pushData4: out.appendLittleEndian(UInt32(truncatingIfNeeded: data.count))
        default: break
        }
        out.append(data)
        return out
    }

    /// Parses the script into instructions, rejecting a push that runs past the end.
    public func instructions() throws(ScriptError) -> [ScriptInstruction] {
        let raw = [UInt8](bytes)
        var result = [ScriptInstruction]()
        var offset = 0
        while offset < raw.count {
            let start = offset
            let opcode = Opcode(rawValue: raw[offset])
            offset += 1
            guard opcode.isPush else {
                result.append(ScriptInstruction(opcode: opcode, data: nil, offset: start))
                continue
            }
            var length: Int
            var lengthBytes = 0
            switch opcode {
            case .pushData1: lengthBytes = 1
            case .pushData2: lengthBytes = 2
            case .pushData4: lengthBytes = 4
            default: lengthBytes = 0
            }
            if lengthBytes == 0 {
                length = Int(opcode.rawValue)
            } else {
                guard raw.count - offset >= lengthBytes else {
                    throw .truncatedPush(offset: start, declared: lengthBytes, available: raw.count - offset)
                }
                length = 0
                for index in 0..<lengthBytes { length |= Int(raw[offset + index]) << (8 * index) }
                offset += lengthBytes
            }
            guard raw.count - offset >= length else {
                throw .truncatedPush(offset: start, declared: length, available: raw.count - offset)
            }
            result.append(ScriptInstruction(opcode: opcode, data: Data(raw[offset..<offset + length]), offset: start))
            offset += length
        }
        return result
    }

    /// Whether every instruction is a push (OP_0...OP_16, OP_1NEGATE or data), as scriptSigs
    /// and OP_RETURN payloads must be for standardness. False if the script does not parse.
    public var isPushOnly: Bool {
        guard let parsed = try? instructions() else { return false }
        // Like Bitcoin Core, OP_RESERVED (0x50) counts as a push here.
        return parsed.allSatisfy { $0.opcode.rawValue <= 0x60 }
    }

    /// Bitcoin Core style disassembly; an unparsable tail is shown as "[error]".
    public var asm: String {
        var parts = [String]()
        let raw = [UInt8](bytes)
        do {
            for instruction in try instructions() {
                if let data = instruction.data, instruction.opcode != .op0 {
                    parts.append(data.hexString)
                } else {
                    parts.append(instruction.opcode.name)
                }
            }
        } catch {
            parts = [Data(raw).hexString, "[error]"]
        }
        return parts.joined(separator: " ")
    }

    /// The disassembly.
    public var description: String { asm }
}

// MARK: - Standard scripts

extension Script {
    /// `OP_DUP OP_HASH160 <20-byte hash> OP_EQUALVERIFY OP_CHECKSIG`.
    public static func p2pkh(pubKeyHash: Data) -> Script {
        [.op(.dup), .op(.hash160), .push(pubKeyHash), .op(.equalVerify), .op(.checkSig)]
    }

    /// `OP_HASH160 <20-byte hash> OP_EQUAL`.
    public static func p2sh(scriptHash: Data) -> Script {
        [.op(.hash160), .push(scriptHash), .op(.equal)]
    }

    /// `OP_n <program>`: a segwit output of witness `version` (0...16) and a 2...40-byte
    /// program (20 or 32 bytes for version 0), as BIP-141 and the address rules require.
    public static func witnessProgram(version: UInt8, program: Data) throws(AddressError) -> Script {
        guard version <= 16 else { throw .invalidWitnessVersion(version) }
        guard (2...40).contains(program.count) else { throw .invalidProgramLength(program.count) }
        guard version != 0 || program.count == 20 || program.count == 32 else {
            throw .invalidVersion0ProgramLength(program.count)
        }
        return uncheckedWitnessProgram(version: version, program: program)
    }

    /// The caller has checked version ≤ 16.
    static func uncheckedWitnessProgram(version: UInt8, program: Data) -> Script {
        [version == 0 ? .op(.op0) : .op(Opcode(rawValue: 0x50 + version)), .push(program)]
    }

    /// `OP_0 <key hash>`; the hash should be the 20-byte HASH160 of a compressed key.
    public static func p2wpkh(pubKeyHash: Data) -> Script { uncheckedWitnessProgram(version: 0, program: pubKeyHash) }

    /// `OP_0 <script hash>`; the hash should be the 32-byte SHA256 of the witness script.
    public static func p2wsh(scriptHash: Data) -> Script { uncheckedWitnessProgram(version: 0, program: scriptHash) }

    /// The P2WSH output locking to `witnessScript`: `OP_0 SHA256(script)`.
    public static func p2wsh(witnessScript: Script) -> Script {
        p2wsh(scriptHash: BitcoinHash.sha256(witnessScript.bytes))
    }

    /// `OP_1 <32-byte output key>`.
    public static func p2tr(outputKey: Schnorr.PublicKey) -> Script {
        uncheckedWitnessProgram(version: 1, program: outputKey.rawRepresentation)
    }

    /// `OP_RETURN <data>`: an unspendable output carrying `data` in one minimal push.
    public static func opReturn(_ data: Data) -> Script { [.op(.return), .push(data)] }

    /// A BIP-342 threshold multisig over x-only keys, as the staking scripts use (PROTOCOL §1).
    ///
    /// Keys are sorted ascending by their 32 bytes. One key gives `<k> OP_CHECKSIG` (or
    /// `OP_CHECKSIGVERIFY` when not `last`); more give
    /// `<k1> OP_CHECKSIG <k2> OP_CHECKSIGADD … <kn> OP_CHECKSIGADD <t> OP_NUMEQUAL`
    /// (`OP_NUMEQUALVERIFY` when not `last`).
    ///
    /// - Parameter last: whether this is the script's final check, leaving its result on the stack.
    public static func multisig(keys: [Schnorr.PublicKey], threshold: Int, last: Bool) throws(ScriptError) -> Script {
        guard !keys.isEmpty, threshold >= 1, threshold <= keys.count else {
            throw .invalidThreshold(threshold: threshold, keyCount: keys.count)
        }
        let sorted = keys.sorted { $0.rawRepresentation.lexicographicallyPrecedes($1.rawRepresentation) }
        for index in sorted.indices.dropFirst() where sorted[index] == sorted[index - 1] {
            throw .duplicateKey
        }
        if sorted.count == 1 {
            return [.push(sorted[0].rawRepresentation), .op(last ? .checkSig : .checkSigVerify)]
        }
        var script = Script()
        for (index, key) in sorted.enumerated() {
            script.append(.push(key.rawRepresentation))
            script.append(.op(index == 0 ? .checkSig : .checkSigAdd))
        }
        script.append(.number(Int64(threshold)))
        script.append(.op(last ? .numEqual : .numEqualVerify))
        return script
    }
}

// MARK: - Classification

/// What kind of output a script is.
public enum ScriptType: Hashable, Sendable {
    /// Pay to public key hash (legacy).
    case p2pkh(pubKeyHash: Data)
    /// Pay to script hash (BIP-16).
    case p2sh(scriptHash: Data)
    /// Segwit v0 key hash.
    case p2wpkh(pubKeyHash: Data)
    /// Segwit v0 script hash.
    case p2wsh(scriptHash: Data)
    /// Segwit v1 taproot, with the 32-byte x-only output key.
    case p2tr(outputKey: Data)
    /// Another witness version or program length (reserved for future soft forks).
    case witnessUnknown(version: UInt8, program: Data)
    /// `OP_RETURN` followed only by pushes: unspendable, carrying the concatenated pushed bytes.
    case opReturn(data: Data)
    /// Anything else.
    case unknown
}

extension Script {
    /// The witness version and program if this is a witness program (BIP-141: a version opcode
    /// then one direct push of 2...40 bytes, nothing else).
    public var witnessProgram: (version: UInt8, program: Data)? {
        let raw = [UInt8](bytes)
        guard raw.count >= 4, raw.count <= 42 else { return nil }
        let version: UInt8
        switch raw[0] {
        case 0x00: version = 0
        case 0x51...0x60: version = raw[0] - 0x50
        default: return nil
        }
        guard Int(raw[1]) + 2 == raw.count else { return nil }
        return (version, Data(raw[2...]))
    }

    /// The kind of output this script is.
    public var type: ScriptType {
        let raw = [UInt8](bytes)
        if raw.count == 25, raw[0] == 0x76, raw[1] == 0xa9, raw[2] == 20, raw[23] == 0x88, raw[24] == 0xac {
            return .p2pkh(pubKeyHash: Data(raw[3..<23]))
        }
        if raw.count == 23, raw[0] == 0xa9, raw[1] == 20, raw[22] == 0x87 {
            return .p2sh(scriptHash: Data(raw[2..<22]))
        }
        if let (version, program) = witnessProgram {
            switch (version, program.count) {
            case (0, 20): return .p2wpkh(pubKeyHash: program)
            case (0, 32): return .p2wsh(scriptHash: program)
            case (1, 32): return .p2tr(outputKey: program)
            default: return .witnessUnknown(version: version, program: program)
            }
        }
        if raw.first == Opcode.return.rawValue {
            let rest = Script(bytes: raw.dropFirst())
            if rest.isPushOnly, let parsed = try? rest.instructions() {
                var payload = Data()
                for instruction in parsed { payload.append(instruction.pushedBytes ?? Data()) }
                return .opReturn(data: payload)
            }
        }
        return .unknown
    }

    /// Whether the output can never be spent: it starts with OP_RETURN or exceeds the
    /// 10,000-byte script limit (Bitcoin Core's IsUnspendable).
    public var isUnspendable: Bool {
        bytes.first == Opcode.return.rawValue || bytes.count > 10_000
    }
}

// MARK: - Script numbers

/// CScriptNum: the little-endian sign-magnitude integers of script arithmetic, lock times
/// and multisig thresholds.
public enum ScriptNumber {
    /// The minimal encoding of `value` (empty for zero).
    public static func encode(_ value: Int64) -> Data {
        if value == 0 { return Data() }
        let negative = value < 0
        var magnitude = value.magnitude
        var out = [UInt8]()
        while magnitude > 0 {
            out.append(UInt8(magnitude & 0xff))
            magnitude >>= 8
        }
        if let last = out.last, last & 0x80 != 0 {
            out.append(negative ? 0x80 : 0x00)
        } else if negative {
            out[out.count - 1] |= 0x80
        }
        return Data(out)
    }

    /// Decodes a script number of at most `maxSize` bytes (consensus: 4; 5 for CLTV/CSV;
    /// capped at 8 here), by default requiring the minimal encoding.
    public static func decode(_ data: some DataProtocol, maxSize: Int = 4, requireMinimal: Bool = true) throws(ScriptError) -> Int64 {
        let raw = [UInt8](data)
        let limit = min(maxSize, 8)
        guard raw.count <= limit else { throw .numberTooLong(size: raw.count, maxSize: limit) }
        guard let last = raw.last else { return 0 }
        if requireMinimal, last & 0x7f == 0 {
            guard raw.count > 1, raw[raw.count - 2] & 0x80 != 0 else { throw .nonMinimalNumber }
        }
        var magnitude: UInt64 = 0
        for (index, byte) in raw.enumerated() {
            let value = index == raw.count - 1 ? byte & 0x7f : byte
            magnitude |= UInt64(value) << (8 * UInt64(index))
        }
        // With at most 8 bytes and the sign bit masked off, magnitude < 2^63.
        let signed = Int64(truncatingIfNeeded: magnitude)
        return last & 0x80 != 0 ? -signed : signed
    }
}
