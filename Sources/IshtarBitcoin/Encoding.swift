import Crypto
import Foundation
import IshtarCrypto

/// Bitcoin's CompactSize ("varint") length prefix: 1, 3, 5 or 9 bytes, little-endian.
public enum CompactSize {
    /// The shortest encoding of `value`.
    public static func encode(_ value: UInt64) -> Data {
        var out = Data()
        out.appendCompactSize(value)
        return out
    }

    /// Decodes one CompactSize at the start of `bytes`, requiring the minimal encoding.
    ///
    /// - Returns: the value and how many bytes it took.
    public static func decode(_ bytes: some DataProtocol) throws(BitcoinDecodingError) -> (value: UInt64, length: Int) {
        var reader = ByteReader([UInt8](bytes))
        let value = try reader.readCompactSize(field: "compact size")
        return (value, reader.offset)
    }

    /// The number of bytes the minimal encoding of `value` takes.
    public static func size(of value: UInt64) -> Int {
        switch value {
        case 0..<0xfd: return 1
        case 0xfd...0xffff: return 3
        case 0x1_0000...0xffff_ffff: return 5
        default: return 9
        }
    }
}

extension Data {
    mutating func appendCompactSize(_ value: UInt64) {
        switch value {
        case 0..<0xfd:
            append(UInt8(value))
        case 0xfd...0xffff:
            append(0xfd)
            appendLittleEndian(UInt16(value))
        case 0x1_0000...0xffff_ffff:
            append(0xfe)
            appendLittleEndian(UInt32(value))
        default:
            append(0xff)
            appendLittleEndian(value)
        }
    }

    mutating func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }

    /// Appends a CompactSize length followed by the bytes themselves.
    mutating func appendVarBytes(_ bytes: Data) {
        appendCompactSize(UInt64(bytes.count))
        append(bytes)
    }
}

/// A cursor over untrusted bytes. Every read checks the remaining length first and reports
/// the offset of the failure; nothing here can trap on malformed input.
struct ByteReader {
    let bytes: [UInt8]
    private(set) var offset: Int = 0

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    var remaining: Int { bytes.count - offset }
    var isAtEnd: Bool { offset == bytes.count }

    private func require(_ count: Int, field: String) throws(BitcoinDecodingError) {
        guard count <= remaining else {
            throw .truncated(field: field, offset: offset, needed: count, available: remaining)
        }
    }

    mutating func readBytes(_ count: Int, field: String) throws(BitcoinDecodingError) -> [UInt8] {
        try require(count, field: field)
        let slice = Array(bytes[offset..<offset + count])
        offset += count
        return slice
    }

    mutating func readData(_ count: Int, field: String) throws(BitcoinDecodingError) -> Data {
        Data(try readBytes(count, field: field))
    }

    mutating func readUInt8(field: String) throws(BitcoinDecodingError) -> UInt8 {
        try require(1, field: field)
        defer { offset += 1 }
        return bytes[offset]
    }

    func peekUInt8() -> UInt8? {
        offset < bytes.count ? bytes[offset] : nil
    }

    mutating func readLittleEndian<T: FixedWidthInteger>(_: T.Type, field: String) throws(BitcoinDecodingError) -> T {
        let size = MemoryLayout<T>.size
        try require(size, field: field)
        var value: T = 0
        for index in 0..<size {
            value |= T(truncatingIfNeeded: bytes[offset + index]) << (8 * index)
        }
        offset += size
        return value
    }

    mutating func readCompactSize(field: String) throws(BitcoinDecodingError) -> UInt64 {
        let start = offset
        let first = try readUInt8(field: field)
        let value: UInt64
        let minimum: UInt64
        switch first {
        case 0xfd:
            value = UInt64(try readLittleEndian(UInt16.self, field: field))
            minimum = 0xfd
        case 0xfe:
            value = UInt64(try readLittleEndian(UInt32.self, field: field))
            minimum = 0x1_0000
        case 0xff:
            value = try readLittleEndian(UInt64.self, field: field)
            minimum = 0x1_0000_0000
        default:
            return UInt64(first)
        }
        guard value >= minimum else { throw .nonMinimalCompactSize(field: field, offset: start) }
        return value
    }

    /// Reads a count of elements each at least `minimumElementSize` bytes long, refusing counts
    /// the remaining input cannot hold, so that a forged count never drives an allocation.
    mutating func readCount(field: String, minimumElementSize: Int) throws(BitcoinDecodingError) -> Int {
        let start = offset
        let value = try readCompactSize(field: field)
        guard value <= UInt64(remaining / max(minimumElementSize, 1)) else {
            throw .countExceedsInput(field: field, offset: start, value: value)
        }
        return Int(value)
    }

    /// Reads a CompactSize-prefixed byte string.
    mutating func readVarBytes(field: String) throws(BitcoinDecodingError) -> Data {
        let start = offset
        let length = try readCompactSize(field: field)
        guard length <= UInt64(remaining) else {
            throw .countExceedsInput(field: field, offset: start, value: length)
        }
        return try readData(Int(length), field: field)
    }

    func requireEnd() throws(BitcoinDecodingError) {
        guard isAtEnd else { throw .trailingBytes(offset: offset, count: remaining) }
    }
}

/// Bitcoin's hash functions.
public enum BitcoinHash {
    /// SHA256(SHA256(data)), used for txids, block hashes and the transaction Merkle tree.
    public static func hash256(_ data: some DataProtocol) -> Data {
        Data(SHA256.hash(data: Data(SHA256.hash(data: data))))
    }

    /// SHA256(data).
    public static func sha256(_ data: some DataProtocol) -> Data {
        Data(SHA256.hash(data: data))
    }

    /// RIPEMD160(SHA256(data)), used by P2PKH, P2SH and P2WPKH.
    public static func hash160(_ data: some DataProtocol) -> Data {
        RIPEMD160.hash(sha256(data))
    }
}

/// A 32-byte double-SHA256 digest (txid, wtxid, block hash), stored in internal byte order
/// (the order it is hashed and serialized in). Bitcoin displays these byte-reversed.
public struct Hash256: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The 32 bytes in internal (serialization) order.
    public let rawValue: Data

    /// The all-zero hash (the coinbase prevout, the genesis block's parent).
    public static let zero = Hash256(unchecked: Data(count: 32))

    /// Wraps 32 bytes in internal byte order.
    public init(rawValue: some DataProtocol) throws(BitcoinDecodingError) {
        let bytes = Data(rawValue)
        guard bytes.count == 32 else { throw .invalidLength(field: "hash", expected: 32, actual: bytes.count) }
        self.rawValue = bytes
    }

    init(unchecked bytes: Data) {
        self.rawValue = bytes
    }

    /// Parses the display form: 64 hex digits, byte-reversed (as block explorers and RPC show).
    public init(displayHex: String) throws(BitcoinDecodingError) {
        let bytes: Data
        do {
            bytes = try Data(hex: displayHex, field: "hash")
        } catch {
            throw .invalidHex(field: "hash")
        }
        try self.init(rawValue: Data(bytes.reversed()))
    }

    /// The display form: byte-reversed hex.
    public var displayHex: String { Data(rawValue.reversed()).hexString }

    /// The display form.
    public var description: String { displayHex }

    /// The hash read as a little-endian 256-bit number, as proof of work compares it.
    public var asUInt256: UInt256 { UInt256(littleEndian: rawValue) }

    /// Orders by the internal byte order, lexicographically.
    public static func < (lhs: Hash256, rhs: Hash256) -> Bool {
        lhs.rawValue.lexicographicallyPrecedes(rhs.rawValue)
    }
}

/// The transaction id type: double-SHA256 of the serialization without witness.
public typealias TxID = Hash256
/// The block hash type: double-SHA256 of the 80-byte header.
public typealias BlockHash = Hash256
