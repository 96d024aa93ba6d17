/// A script opcode. Every byte value is an opcode (unknown ones included), so this is a
/// struct over the byte with named constants rather than a closed enum: a parser can hand
/// back whatever a script contains.
public struct Opcode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The opcode byte.
    public let rawValue: UInt8

    /// The opcode for byte `rawValue`.
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// OP_0 / OP_FALSE: pushes an empty array.
    public static let op0 = Opcode(rawValue: 0x00)
    /// OP_PUSHDATA1: the next byte is the length of the data.
    public static let pushData1 = Opcode(rawValue: 0x4c)
    /// OP_PUSHDATA2: the next 2 bytes (little-endian) are the length of the data.
    public static let pushData2 = Opcode(rawValue: 0x4d)
    /// OP_PUSHDATA4: the next 4 bytes (little-endian) are the length of the data.
    public static let pushData4 = Opcode(rawValue: 0x4e)
    /// OP_1NEGATE: pushes -1.
    public static let op1Negate = Opcode(rawValue: 0x4f)
    /// OP_RESERVED.
    public static let reserved = Opcode(rawValue: 0x50)
    /// OP_1 / OP_TRUE.
    public static let op1 = Opcode(rawValue: 0x51)
    /// OP_16.
    public static let op16 = Opcode(rawValue: 0x60)
    /// OP_NOP.
    public static let nop = Opcode(rawValue: 0x61)
    /// OP_IF.
    public static let `if` = Opcode(rawValue: 0x63)
    /// OP_NOTIF.
    public static let notIf = Opcode(rawValue: 0x64)
    /// OP_ELSE.
    public static let `else` = Opcode(rawValue: 0x67)
    /// OP_ENDIF.
    public static let endIf = Opcode(rawValue: 0x68)
    /// OP_VERIFY.
    public static let verify = Opcode(rawValue: 0x69)
    /// OP_RETURN: marks the output unspendable; carries data (checkpoints, staking markers).
    public static let `return` = Opcode(rawValue: 0x6a)
    /// OP_TOALTSTACK.
    public static let toAltStack = Opcode(rawValue: 0x6b)
    /// OP_FROMALTSTACK.
    public static let fromAltStack = Opcode(rawValue: 0x6c)
    /// OP_2DROP.
    public static let twoDrop = Opcode(rawValue: 0x6d)
    /// OP_IFDUP.
    public static let ifDup = Opcode(rawValue: 0x73)
    /// OP_DEPTH.
    public static let depth = Opcode(rawValue: 0x74)
    /// OP_DROP.
    public static let drop = Opcode(rawValue: 0x75)
    /// OP_DUP.
    public static let dup = Opcode(rawValue: 0x76)
    /// OP_NIP.
    public static let nip = Opcode(rawValue: 0x77)
    /// OP_OVER.
    public static let over = Opcode(rawValue: 0x78)
    /// OP_SWAP.
    public static let swap = Opcode(rawValue: 0x7c)
    /// OP_SIZE.
    public static let size = Opcode(rawValue: 0x82)
    /// OP_EQUAL.
    public static let equal = Opcode(rawValue: 0x87)
    /// OP_EQUALVERIFY.
    public static let equalVerify = Opcode(rawValue: 0x88)
    /// OP_1ADD.
    public static let add1 = Opcode(rawValue: 0x8b)
    /// OP_NOT.
    public static let not = Opcode(rawValue: 0x91)
    /// OP_ADD.
    public static let add = Opcode(rawValue: 0x93)
    /// OP_SUB.
    public static let sub = Opcode(rawValue: 0x94)
    /// OP_BOOLAND.
    public static let boolAnd = Opcode(rawValue: 0x9a)
    /// OP_BOOLOR.
    public static let boolOr = Opcode(rawValue: 0x9b)
    /// OP_NUMEQUAL: the threshold check that ends a tapscript multisig.
    public static let numEqual = Opcode(rawValue: 0x9c)
    /// OP_NUMEQUALVERIFY: OP_NUMEQUAL then OP_VERIFY, for a multisig that is not last.
    public static let numEqualVerify = Opcode(rawValue: 0x9d)
    /// OP_LESSTHAN.
    public static let lessThan = Opcode(rawValue: 0x9f)
    /// OP_GREATERTHAN.
    public static let greaterThan = Opcode(rawValue: 0xa0)
    /// OP_GREATERTHANOREQUAL.
    public static let greaterThanOrEqual = Opcode(rawValue: 0xa2)
    /// OP_MIN.
    public static let min = Opcode(rawValue: 0xa3)
    /// OP_MAX.
    public static let max = Opcode(rawValue: 0xa4)
    /// OP_WITHIN.
    public static let within = Opcode(rawValue: 0xa5)
    /// OP_RIPEMD160.
    public static let ripemd160 = Opcode(rawValue: 0xa6)
    /// OP_SHA1.
    public static let sha1 = Opcode(rawValue: 0xa7)
    /// OP_SHA256.
    public static let sha256 = Opcode(rawValue: 0xa8)
    /// OP_HASH160.
    public static let hash160 = Opcode(rawValue: 0xa9)
    /// OP_HASH256.
    public static let hash256 = Opcode(rawValue: 0xaa)
    /// OP_CODESEPARATOR.
    public static let codeSeparator = Opcode(rawValue: 0xab)
    /// OP_CHECKSIG.
    public static let checkSig = Opcode(rawValue: 0xac)
    /// OP_CHECKSIGVERIFY.
    public static let checkSigVerify = Opcode(rawValue: 0xad)
    /// OP_CHECKMULTISIG (not available in tapscript).
    public static let checkMultisig = Opcode(rawValue: 0xae)
    /// OP_CHECKMULTISIGVERIFY (not available in tapscript).
    public static let checkMultisigVerify = Opcode(rawValue: 0xaf)
    /// OP_CHECKLOCKTIMEVERIFY (BIP-65).
    public static let checkLockTimeVerify = Opcode(rawValue: 0xb1)
    /// OP_CHECKSEQUENCEVERIFY (BIP-112): relative timelocks, as in the staking timelock leaf.
    public static let checkSequenceVerify = Opcode(rawValue: 0xb2)
    /// OP_CHECKSIGADD (BIP-342): the tapscript multisig accumulator.
    public static let checkSigAdd = Opcode(rawValue: 0xba)
    /// OP_INVALIDOPCODE.
    public static let invalidOpcode = Opcode(rawValue: 0xff)

    /// OP_n for n in 1...16; nil otherwise.
    public static func smallInteger(_ n: Int) -> Opcode? {
        (1...16).contains(n) ? Opcode(rawValue: 0x50 + UInt8(n)) : nil
    }

    /// The value 0...16 of OP_0, OP_1 ... OP_16; nil for other opcodes.
    public var smallIntegerValue: Int? {
        if self == .op0 { return 0 }
        if (0x51...0x60).contains(rawValue) { return Int(rawValue) - 0x50 }
        return nil
    }

    /// Whether this opcode pushes data (OP_0, direct pushes 1-75, OP_PUSHDATA1/2/4).
    public var isPush: Bool { rawValue <= 0x4e }

    /// The Bitcoin Core name, e.g. "OP_CHECKSIG"; "OP_UNKNOWN(0xNN)" for unassigned bytes.
    public var name: String {
        switch rawValue {
        case 0x00: return "OP_0"
        case 0x01...0x4b: return "OP_PUSHBYTES_\(rawValue)"
        case 0x51...0x60: return "OP_\(rawValue - 0x50)"
        default:
            if let name = Opcode.names[rawValue] { return name }
            return "OP_UNKNOWN(0x" + String(rawValue, radix: 16) + ")"
        }
    }

    /// The name.
    public var description: String { name }

    private static let names: [UInt8: String] = [
        0x4c: "OP_PUSHDATA1", 0x4d: "OP_PUSHDATA2", 0x4e: "OP_PUSHDATA4", 0x4f: "OP_1NEGATE",
        0x50: "OP_RESERVED", 0x61: "OP_NOP", 0x62: "OP_VER", 0x63: "OP_IF", 0x64: "OP_NOTIF",
        0x65: "OP_VERIF", 0x66: "OP_VERNOTIF", 0x67: "OP_ELSE", 0x68: "OP_ENDIF", 0x69: "OP_VERIFY",
        0x6a: "OP_RETURN", 0x6b: "OP_TOALTSTACK", 0x6c: "OP_FROMALTSTACK", 0x6d: "OP_2DROP",
        0x6e: "OP_2DUP", 0x6f: "OP_3DUP", 0x70: "OP_2OVER", 0x71: "OP_2ROT", 0x72: "OP_2SWAP",
        0x73: "OP_IFDUP", 0x74: "OP_DEPTH", 0x75: "OP_DROP", 0x76: "OP_DUP", 0x77: "OP_NIP",
        0x78: "OP_OVER", 0x79: "OP_PICK", 0x7a: "OP_ROLL", 0x7b: "OP_ROT", 0x7c: "OP_SWAP",
        0x7d: "OP_TUCK", 0x7e: "OP_CAT", 0x7f: "OP_SUBSTR", 0x80: "OP_LEFT", 0x81: "OP_RIGHT",
        0x82: "OP_SIZE", 0x83: "OP_INVERT", 0x84: "OP_AND", 0x85: "OP_OR", 0x86: "OP_XOR",
        0x87: "OP_EQUAL", 0x88: "OP_EQUALVERIFY", 0x89: "OP_RESERVED1", 0x8a: "OP_RESERVED2",
        0x8b: "OP_1ADD", 0x8c: "OP_1SUB", 0x8d: "OP_2MUL", 0x8e: "OP_2DIV", 0x8f: "OP_NEGATE",
        0x90: "OP_ABS", 0x91: "OP_NOT", 0x92: "OP_0NOTEQUAL", 0x93: "OP_ADD", 0x94: "OP_SUB",
        0x95: "OP_MUL", 0x96: "OP_DIV", 0x97: "OP_MOD", 0x98: "OP_LSHIFT", 0x99: "OP_RSHIFT",
        0x9a: "OP_BOOLAND", 0x9b: "OP_BOOLOR", 0x9c: "OP_NUMEQUAL", 0x9d: "OP_NUMEQUALVERIFY",
        0x9e: "OP_NUMNOTEQUAL", 0x9f: "OP_LESSTHAN", 0xa0: "OP_GREATERTHAN",
        0xa1: "OP_LESSTHANOREQUAL", 0xa2: "OP_GREATERTHANOREQUAL", 0xa3: "OP_MIN", 0xa4: "OP_MAX",
        0xa5: "OP_WITHIN", 0xa6: "OP_RIPEMD160", 0xa7: "OP_SHA1", 0xa8: "OP_SHA256",
        0xa9: "OP_HASH160", 0xaa: "OP_HASH256", 0xab: "OP_CODESEPARATOR", 0xac: "OP_CHECKSIG",
        0xad: "OP_CHECKSIGVERIFY", 0xae: "OP_CHECKMULTISIG", 0xaf: "OP_CHECKMULTISIGVERIFY",
        0xb0: "OP_NOP1", 0xb1: "OP_CHECKLOCKTIMEVERIFY", 0xb2: "OP_CHECKSEQUENCEVERIFY",
        0xb3: "OP_NOP4", 0xb4: "OP_NOP5", 0xb5: "OP_NOP6", 0xb6: "OP_NOP7", 0xb7: "OP_NOP8",
        0xb8: "OP_NOP9", 0xb9: "OP_NOP10", 0xba: "OP_CHECKSIGADD", 0xff: "OP_INVALIDOPCODE",
    ]
}
