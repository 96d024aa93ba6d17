import Foundation
import IshtarCrypto

/// Why a checkpoint or staking-marker OP_RETURN payload could not be decoded.
public enum OpReturnDecodingError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The payload of `part` has `actual` bytes instead of `expected`.
    case wrongLength(part: String, expected: Int, actual: Int)
    /// The 4-byte tag is not the expected one.
    case wrongTag(expected: Data, actual: Data)
    /// The version/part byte after the tag is not `expected`.
    case wrongHeader(part: String, expected: UInt8, actual: UInt8)
    /// Part 2's 16 reserved bytes (the unused BLS-signature space) are not all zero.
    case nonZeroPadding
    /// Part 2's 10-byte link is not the start of SHA256(part 1 without its header).
    case partsDoNotMatch
    /// A tag must be exactly 4 bytes.
    case invalidTag(length: Int)
    /// A bitmap names a validator index ≥ 104 (13 bytes × 8 bits).
    case validatorIndexOutOfRange(Int)
    /// A field has the wrong size when encoding.
    case invalidField(name: String, expected: Int, actual: Int)
    /// A key in a staking marker is not a valid x-only public key.
    case invalidKey(field: String)
    /// The script is not an OP_RETURN with a single data push.
    case notAnOpReturn

    /// One line naming the rule that failed.
    public var description: String {
        switch self {
        case .wrongLength(let part, let expected, let actual): "\(part): expected \(expected) bytes, got \(actual)"
        case .wrongTag(let expected, let actual): "tag \(actual.hexString) is not \(expected.hexString)"
        case .wrongHeader(let part, let expected, let actual):
            "\(part): version/part byte must be 0x\(String(expected, radix: 16)), is 0x\(String(actual, radix: 16))"
        case .nonZeroPadding: "checkpoint part 2: the 16 reserved bytes must be zero"
        case .partsDoNotMatch: "checkpoint part 2 does not link to part 1 (hash prefix mismatch)"
        case .invalidTag(let length): "a tag must be 4 bytes, got \(length)"
        case .validatorIndexOutOfRange(let index): "validator index \(index) does not fit the 104-bit bitmap"
        case .invalidField(let name, let expected, let actual): "\(name): expected \(expected) bytes, got \(actual)"
        case .invalidKey(let field): "\(field) is not a valid x-only public key"
        case .notAnOpReturn: "not an OP_RETURN output with a single data push"
        }
    }
}

/// An epoch checkpoint as written to Bitcoin (PROTOCOL §5) in two OP_RETURN payloads:
///
/// - part 1 (78 bytes): tag(4) ‖ 0x00 ‖ BE8(epoch) ‖ lastBlockHash(32) ‖ bitmap(13) ‖ submitter(20)
/// - part 2 (63 bytes): tag(4) ‖ 0x10 ‖ SHA256(QC)(32) ‖ 16 zero bytes ‖ SHA256(part 1[5...])[0..<10]
public struct BitcoinCheckpoint: Hashable, Sendable {
    /// Part 1's payload length.
    public static let part1Length = 78
    /// Part 2's payload length.
    public static let part2Length = 63
    /// Part 1's version/part byte.
    public static let part1Header: UInt8 = 0x00
    /// Part 2's version/part byte.
    public static let part2Header: UInt8 = 0x10
    /// Bitmap length: 104 validators.
    public static let bitmapLength = 13

    /// The 4-byte tag of the deployment.
    public let tag: Data
    /// The epoch number.
    public let epoch: UInt64
    /// The hash of the epoch's last block (32 bytes).
    public let lastBlockHash: Data
    /// Signer bitmap: bit i (LSB first within each byte) set when validator i (address order) signed.
    public let bitmap: Data
    /// The submitter's 20-byte account id.
    public let submitterID: Data
    /// SHA256 of the quorum certificate stored on the chain.
    public let quorumCertificateHash: Data

    /// A checkpoint from its parts, with every field length checked.
    public init(
        tag: Data, epoch: UInt64, lastBlockHash: Data, bitmap: Data, submitterID: Data, quorumCertificateHash: Data
    ) throws(OpReturnDecodingError) {
        guard tag.count == 4 else { throw .invalidTag(length: tag.count) }
        for (name, value, size) in [
            ("last block hash", lastBlockHash, 32), ("bitmap", bitmap, Self.bitmapLength), ("submitter id", submitterID, 20),
            ("QC hash", quorumCertificateHash, 32),
        ] where value.count != size {
            throw .invalidField(name: name, expected: size, actual: value.count)
        }
        self.tag = Data(tag)
        self.epoch = epoch
        self.lastBlockHash = Data(lastBlockHash)
        self.bitmap = Data(bitmap)
        self.submitterID = Data(submitterID)
        self.quorumCertificateHash = Data(quorumCertificateHash)
    }

    /// The 13-byte bitmap with bit i set for each validator index i (LSB first).
    public static func bitmap(signers: some Sequence<Int>) throws(OpReturnDecodingError) -> Data {
        var bytes = [UInt8](repeating: 0, count: bitmapLength)
        for index in signers {
            guard index >= 0, index < bitmapLength * 8 else { throw .validatorIndexOutOfRange(index) }
            bytes[index / 8] |= 1 << UInt8(index % 8)
        }
        return Data(bytes)
    }

    /// The validator indexes whose bits are set, ascending.
    public var signerIndexes: [Int] {
        let bytes = [UInt8](bitmap)
        return (0..<(bytes.count * 8)).filter { bytes[$0 / 8] & (1 << UInt8($0 % 8)) != 0 }
    }

    /// Part 1's 78-byte payload.
    public var part1: Data {
        var out = tag
        out.append(Self.part1Header)
        out.append(Data(bigEndian8: epoch))
        out.append(lastBlockHash)
        out.append(bitmap)
        out.append(submitterID)
        return out
    }

    /// Part 2's 63-byte payload.
    public var part2: Data {
        var out = tag
        out.append(Self.part2Header)
        out.append(quorumCertificateHash)
        out.append(Data(count: 16))
        out.append(Self.link(part1: part1))
        return out
    }

    /// The OP_RETURN output scripts of the two transactions.
    public var scripts: (part1: Script, part2: Script) { (.opReturn(part1), .opReturn(part2)) }

    /// First 10 bytes of SHA256(part 1 without its 5-byte header).
    static func link(part1: Data) -> Data { Data(BitcoinHash.sha256(part1.dropFirst(5)).prefix(10)) }

    /// Decodes and cross-checks both payloads; `tag` must match when given.
    public init(part1: Data, part2: Data, tag expectedTag: Data? = nil) throws(OpReturnDecodingError) {
        let p1 = [UInt8](part1)
        let p2 = [UInt8](part2)
        guard p1.count == Self.part1Length else {
            throw .wrongLength(part: "checkpoint part 1", expected: Self.part1Length, actual: p1.count)
        }
        guard p2.count == Self.part2Length else {
            throw .wrongLength(part: "checkpoint part 2", expected: Self.part2Length, actual: p2.count)
        }
        let tag = Data(p1[0..<4])
        if let expectedTag {
            guard expectedTag.count == 4 else { throw .invalidTag(length: expectedTag.count) }
            guard tag == expectedTag else { throw .wrongTag(expected: expectedTag, actual: tag) }
        }
        guard Data(p2[0..<4]) == tag else { throw .wrongTag(expected: tag, actual: Data(p2[0..<4])) }
        guard p1[4] == Self.part1Header else {
            throw .wrongHeader(part: "checkpoint part 1", expected: Self.part1Header, actual: p1[4])
        }
        guard p2[4] == Self.part2Header else {
            throw .wrongHeader(part: "checkpoint part 2", expected: Self.part2Header, actual: p2[4])
        }
        guard p2[37..<53].allSatisfy({ $0 == 0 }) else { throw .nonZeroPadding }
        guard Data(p2[53..<63]) == Self.link(part1: Data(p1)) else { throw .partsDoNotMatch }
        var epoch: UInt64 = 0
        for byte in p1[5..<13] { epoch = epoch << 8 | UInt64(byte) }
        try self.init(
            tag: tag, epoch: epoch, lastBlockHash: Data(p1[13..<45]), bitmap: Data(p1[45..<58]),
            submitterID: Data(p1[58..<78]), quorumCertificateHash: Data(p2[5..<37]))
    }

    /// Decodes from the two OP_RETURN output scripts.
    public init(part1Script: Script, part2Script: Script, tag: Data? = nil) throws(OpReturnDecodingError) {
        try self.init(part1: try opReturnPayload(part1Script), part2: try opReturnPayload(part2Script), tag: tag)
    }
}

/// The optional staking-transaction marker (PROTOCOL §7), 71 bytes of OP_RETURN data:
/// tag(4) ‖ 0x00 ‖ staker(32) ‖ provider(32) ‖ BE16(stakingTime).
public struct StakingMarker: Hashable, Sendable {
    /// Payload length.
    public static let length = 71
    /// Version byte.
    public static let version: UInt8 = 0x00

    /// The 4-byte tag.
    public let tag: Data
    /// The staker's key.
    public let stakerKey: Schnorr.PublicKey
    /// The finality provider's key.
    public let finalityProviderKey: Schnorr.PublicKey
    /// The staking time in blocks.
    public let stakingTime: UInt16

    /// A marker from its parts; the tag must be 4 bytes.
    public init(
        tag: Data, stakerKey: Schnorr.PublicKey, finalityProviderKey: Schnorr.PublicKey, stakingTime: UInt16
    ) throws(OpReturnDecodingError) {
        guard tag.count == 4 else { throw .invalidTag(length: tag.count) }
        self.tag = Data(tag)
        self.stakerKey = stakerKey
        self.finalityProviderKey = finalityProviderKey
        self.stakingTime = stakingTime
    }

    /// The 71-byte payload.
    public var payload: Data {
        var out = tag
        out.append(Self.version)
        out.append(stakerKey.rawRepresentation)
        out.append(finalityProviderKey.rawRepresentation)
        out.append(UInt8(stakingTime >> 8))
        out.append(UInt8(stakingTime & 0xff))
        return out
    }

    /// `OP_RETURN <payload>`.
    public var script: Script { .opReturn(payload) }

    /// Decodes a payload; `tag` must match when given.
    public init(payload: Data, tag expectedTag: Data? = nil) throws(OpReturnDecodingError) {
        let bytes = [UInt8](payload)
        guard bytes.count == Self.length else {
            throw .wrongLength(part: "staking marker", expected: Self.length, actual: bytes.count)
        }
        let tag = Data(bytes[0..<4])
        if let expectedTag, tag != expectedTag { throw .wrongTag(expected: expectedTag, actual: tag) }
        guard bytes[4] == Self.version else {
            throw .wrongHeader(part: "staking marker", expected: Self.version, actual: bytes[4])
        }
        let staker: Schnorr.PublicKey
        let provider: Schnorr.PublicKey
        do {
            staker = try Schnorr.PublicKey(rawRepresentation: bytes[5..<37])
        } catch {
            throw .invalidKey(field: "staker key")
        }
        do {
            provider = try Schnorr.PublicKey(rawRepresentation: bytes[37..<69])
        } catch {
            throw .invalidKey(field: "finality provider key")
        }
        try self.init(
            tag: tag, stakerKey: staker, finalityProviderKey: provider,
            stakingTime: UInt16(bytes[69]) << 8 | UInt16(bytes[70]))
    }

    /// Decodes from an OP_RETURN output script.
    public init(script: Script, tag: Data? = nil) throws(OpReturnDecodingError) {
        try self.init(payload: try opReturnPayload(script), tag: tag)
    }
}

/// The data of `OP_RETURN <one push>`.
func opReturnPayload(_ script: Script) throws(OpReturnDecodingError) -> Data {
    guard script.bytes.first == Opcode.return.rawValue,
        let instructions = try? Script(bytes: script.bytes.dropFirst()).instructions(),
        instructions.count == 1, let data = instructions[0].data, instructions[0].isMinimalPush
    else { throw .notAnOpReturn }
    return data
}
