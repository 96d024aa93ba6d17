import Foundation

/// Bech32 (BIP-173) and bech32m (BIP-350) strings.
public enum Bech32 {
    /// The checksum variant.
    public enum Variant: Hashable, Sendable {
        /// BIP-173, used for witness version 0.
        case bech32
        /// BIP-350, used for witness versions 1 to 16.
        case bech32m

        var constant: UInt32 { self == .bech32 ? 1 : 0x2bc8_30a3 }
    }

    static let alphabet: [UInt8] = Array("qpzry9x8gf2tvdw0s3jn54khce6mua7l".utf8)
    private static let reverseAlphabet: [Int8] = {
        var table = [Int8](repeating: -1, count: 128)
        for (index, character) in alphabet.enumerated() { table[Int(character)] = Int8(index) }
        return table
    }()

    /// The longest valid string (BIP-173).
    public static let maxLength = 90

    private static func polymod(_ values: [UInt8]) -> UInt32 {
        let generator: [UInt32] = [0x3b6a_57b2, 0x2650_8e6d, 0x1ea1_19fa, 0x3d42_33dd, 0x2a14_62b3]
        var checksum: UInt32 = 1
        for value in values {
            let top = checksum >> 25
            checksum = (checksum & 0x1ff_ffff) << 5 ^ UInt32(value)
            for index in 0..<5 where (top >> index) & 1 == 1 { checksum ^= generator[index] }
        }
        return checksum
    }

    private static func expandHRP(_ hrp: [UInt8]) -> [UInt8] {
        hrp.map { $0 >> 5 } + [0] + hrp.map { $0 & 31 }
    }

    /// Encodes `hrp` (case is normalized to lower) and 5-bit `data` values with a checksum.
    public static func encode(hrp: String, data: [UInt8], variant: Variant) throws(AddressError) -> String {
        let hrpBytes = Array(hrp.lowercased().utf8)
        guard !hrpBytes.isEmpty else { throw .emptyHumanReadablePart }
        for (position, character) in hrpBytes.enumerated() where !(33...126).contains(character) {
            throw .characterOutOfRange(position: position)
        }
        let length = hrpBytes.count + 1 + data.count + 6
        guard length <= maxLength else { throw .tooLong(length: length) }
        for (position, value) in data.enumerated() where value >= 32 {
            throw .invalidDataCharacter(position: hrpBytes.count + 1 + position)
        }
        let values = expandHRP(hrpBytes) + data + [0, 0, 0, 0, 0, 0]
        let checksum = polymod(values) ^ variant.constant
        var out = hrpBytes + [UInt8(ascii: "1")]
        for value in data { out.append(alphabet[Int(value)]) }
        for index in 0..<6 { out.append(alphabet[Int((checksum >> (5 * (5 - UInt32(index)))) & 31)]) }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes a bech32 or bech32m string into its lowercase human-readable part, 5-bit data
    /// values (checksum removed) and the checksum variant that matched.
    public static func decode(_ string: String) throws(AddressError) -> (hrp: String, data: [UInt8], variant: Variant) {
        let characters = Array(string.utf8)
        // Non-ASCII scalars show up as multi-byte UTF-8; each byte is then out of range.
        guard characters.count <= maxLength else { throw .tooLong(length: characters.count) }
        var hasLower = false
        var hasUpper = false
        for (position, character) in characters.enumerated() {
            guard (33...126).contains(character) else { throw .characterOutOfRange(position: position) }
            if (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(character) { hasLower = true }
            if (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(character) { hasUpper = true }
        }
        guard !(hasLower && hasUpper) else { throw .mixedCase }
        let lowered = characters.map { (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) ? $0 + 32 : $0 }
        guard let separator = lowered.lastIndex(of: UInt8(ascii: "1")) else { throw .noSeparator }
        guard separator > 0 else { throw .emptyHumanReadablePart }
        guard lowered.count - separator - 1 >= 6 else { throw .checksumTooShort }
        let hrp = Array(lowered[..<separator])
        var values = [UInt8]()
        values.reserveCapacity(lowered.count - separator - 1)
        for position in (separator + 1)..<lowered.count {
            let value = reverseAlphabet[Int(lowered[position])]
            guard value >= 0 else { throw .invalidDataCharacter(position: position) }
            values.append(UInt8(value))
        }
        let variant: Variant
        switch polymod(expandHRP(hrp) + values) {
        case Variant.bech32.constant: variant = .bech32
        case Variant.bech32m.constant: variant = .bech32m
        default: throw .invalidChecksum
        }
        return (String(decoding: hrp, as: UTF8.self), Array(values.dropLast(6)), variant)
    }

    /// Regroups bits, e.g. 8-bit bytes to 5-bit values (`pad: true`) or back (`pad: false`,
    /// where leftover bits must be fewer than `from` and zero).
    static func convertBits(_ data: [UInt8], from: Int, to: Int, pad: Bool) throws(AddressError) -> [UInt8] {
        var accumulator = 0
        var bits = 0
        let maxValue = (1 << to) - 1
        var out = [UInt8]()
        out.reserveCapacity(data.count * from / to + 1)
        for value in data {
            accumulator = (accumulator << from) | Int(value)
            bits += from
            while bits >= to {
                bits -= to
                out.append(UInt8((accumulator >> bits) & maxValue))
            }
            accumulator &= (1 << bits) - 1
        }
        if pad {
            if bits > 0 { out.append(UInt8((accumulator << (to - bits)) & maxValue)) }
        } else if bits >= from || (accumulator << (to - bits)) & maxValue != 0 {
            throw .invalidPadding
        }
        return out
    }
}

/// A segwit address (BIP-173/350): a network prefix, a witness version and program.
public struct SegwitAddress: Hashable, Sendable, CustomStringConvertible {
    /// The lowercase human-readable part: `bc`, `tb` or `bcrt`.
    public let hrp: String
    /// The witness version, 0...16.
    public let version: UInt8
    /// The witness program, 2...40 bytes (20 or 32 for version 0).
    public let program: Data

    /// An address for `network`, validating version and program length.
    public init(version: UInt8, program: Data, network: Network) throws(AddressError) {
        try SegwitAddress.validate(version: version, program: program)
        self.hrp = network.bech32HRP
        self.version = version
        self.program = program
    }

    init(uncheckedVersion version: UInt8, program: Data, hrp: String) {
        self.hrp = hrp
        self.version = version
        self.program = program
    }

    /// The address that `scriptPubKey` pays to on `network`.
    public init(scriptPubKey: Script, network: Network) throws(AddressError) {
        guard let (version, program) = scriptPubKey.witnessProgram else { throw .notAWitnessProgram }
        try self.init(version: version, program: program, network: network)
    }

    /// Parses an address of any known network (`bc`, `tb`, `bcrt`).
    public init(_ string: String) throws(AddressError) {
        let (hrp, data, variant) = try Bech32.decode(string)
        guard !Network.networks(forHRP: hrp).isEmpty else { throw .unknownHumanReadablePart(hrp) }
        guard let version = data.first else { throw .emptyData }
        guard version <= 16 else { throw .invalidWitnessVersion(version) }
        let program = Data(try Bech32.convertBits(Array(data.dropFirst()), from: 5, to: 8, pad: false))
        try SegwitAddress.validate(version: version, program: program)
        guard variant == (version == 0 ? .bech32 : .bech32m) else { throw .wrongChecksumVariant(witnessVersion: version) }
        self.hrp = hrp
        self.version = version
        self.program = program
    }

    /// Parses an address that must belong to `network`.
    public init(_ string: String, network: Network) throws(AddressError) {
        try self.init(string)
        guard hrp == network.bech32HRP else { throw .wrongNetwork(expected: network.bech32HRP, found: hrp) }
    }

    private static func validate(version: UInt8, program: Data) throws(AddressError) {
        guard version <= 16 else { throw .invalidWitnessVersion(version) }
        guard (2...40).contains(program.count) else { throw .invalidProgramLength(program.count) }
        guard version != 0 || program.count == 20 || program.count == 32 else {
            throw .invalidVersion0ProgramLength(program.count)
        }
    }

    /// The output script paying to this address.
    public var scriptPubKey: Script { .uncheckedWitnessProgram(version: version, program: program) }

    /// The networks this address is valid on (`tb` is both testnet and signet).
    public var networks: [Network] { Network.networks(forHRP: hrp) }

    /// The lowercase encoding.
    public var encoded: String {
        let data = [version] + ((try? Bech32.convertBits([UInt8](program), from: 8, to: 5, pad: true)) ?? [])
        // Validated version, program and a known short HRP always fit in 90 characters.
        return (try? Bech32.encode(hrp: hrp, data: data, variant: version == 0 ? .bech32 : .bech32m)) ?? ""
    }

    /// The lowercase encoding.
    public var description: String { encoded }
}
