import Foundation

/// Every way a byte string can fail to decode as a canonical Ishtar value.
///
/// The chain's binary format has exactly one encoding per value, so a decoder that accepts
/// bytes also guarantees that re-encoding the value gives the same bytes (hashes and
/// signatures over encodings stay unambiguous).
public enum CodecError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The input ended before `field` could be read: `needed` bytes, `remaining` left.
    case truncated(field: String, needed: Int, remaining: Int)
    /// Bytes were left after a complete value: an encoding has no trailing data.
    case trailingBytes(count: Int)
    /// A length prefix of `field` exceeded the field's limit.
    case lengthTooLarge(field: String, length: UInt64, limit: Int)
    /// An element count of `field` cannot fit in the remaining input (each element needs
    /// at least one byte), so it is rejected before any allocation.
    case countTooLarge(field: String, count: UInt64, remaining: Int)
    /// A boolean byte was neither 0 nor 1 (non-canonical).
    case invalidBool(field: String, value: UInt8)
    /// An optional-presence tag was neither 0 nor 1 (non-canonical).
    case invalidOptionalTag(field: String, value: UInt8)
    /// A string field was not valid UTF-8.
    case invalidUTF8(field: String)
    /// A version or kind byte had a value this software does not know.
    case unknownVersion(field: String, value: UInt8)
    /// A fixed-length field had the wrong length.
    case invalidLength(field: String, expected: Int, actual: Int)
    /// A value was decodable but not in its single canonical form (e.g. unsorted or
    /// duplicate entries where the format requires strict order).
    case nonCanonical(field: String, reason: String)

    /// One line naming the rule that failed.
    public var description: String {
        switch self {
        case let .truncated(field, needed, remaining):
            return "\(field): input truncated (needed \(needed) bytes, \(remaining) left)"
        case let .trailingBytes(count): return "\(count) trailing bytes after the value"
        case let .lengthTooLarge(field, length, limit): return "\(field): length \(length) exceeds the limit \(limit)"
        case let .countTooLarge(field, count, remaining):
            return "\(field): count \(count) cannot fit in the \(remaining) remaining bytes"
        case let .invalidBool(field, value): return "\(field): boolean byte must be 0 or 1, got \(value)"
        case let .invalidOptionalTag(field, value): return "\(field): presence tag must be 0 or 1, got \(value)"
        case let .invalidUTF8(field): return "\(field): not valid UTF-8"
        case let .unknownVersion(field, value): return "\(field): unknown version \(value)"
        case let .invalidLength(field, expected, actual): return "\(field): expected \(expected) bytes, got \(actual)"
        case let .nonCanonical(field, reason): return "\(field): non-canonical encoding (\(reason))"
        }
    }
}

/// Appends the canonical binary encoding: fixed-width big-endian integers, `u32`
/// length-prefixed byte strings and UTF-8 strings, `u32` element counts.
public struct BinaryWriter: Sendable {
    /// The bytes written so far.
    public private(set) var bytes: [UInt8] = []

    /// An empty writer.
    public init() {}

    /// An empty writer with room for `capacity` bytes, so writing a large value (a block of
    /// many transactions) does not regrow — and recopy — its buffer on the way.
    public init(reservingCapacity capacity: Int) {
        // Reserving 0 would still allocate a buffer for the empty array.
        if capacity > 0 { bytes.reserveCapacity(capacity) }
    }

    /// The bytes written so far, as `Data`.
    public var data: Data { Data(bytes) }

    /// One byte.
    public mutating func u8(_ v: UInt8) { bytes.append(v) }
    /// Two bytes, big-endian.
    public mutating func u16(_ v: UInt16) { bytes.append(UInt8(v >> 8)); bytes.append(UInt8(v & 0xff)) }
    /// Four bytes, big-endian.
    public mutating func u32(_ v: UInt32) {
        withUnsafeBytes(of: v.bigEndian) { bytes.append(contentsOf: $0) }
    }
    /// Eight bytes, big-endian.
    public mutating func u64(_ v: UInt64) {
        withUnsafeBytes(of: v.bigEndian) { bytes.append(contentsOf: $0) }
    }
    /// 0 or 1.
    public mutating func bool(_ v: Bool) { bytes.append(v ? 1 : 0) }
    /// Raw bytes with no length prefix (fixed-length fields such as 32-byte hashes).
    public mutating func fixed(_ d: some DataProtocol) { bytes.append(contentsOf: d) }
    /// ``fixed(_:)`` for `Data`: one copy of its contiguous bytes, not an element walk.
    public mutating func fixed(_ d: Data) { d.withUnsafeBytes { bytes.append(contentsOf: $0) } }
    /// A `u32` length, then the bytes.
    public mutating func bytes(_ d: some DataProtocol) {
        u32(UInt32(truncatingIfNeeded: d.count))
        bytes.append(contentsOf: d)
    }
    /// ``bytes(_:)`` for `Data`.
    public mutating func bytes(_ d: Data) {
        u32(UInt32(truncatingIfNeeded: d.count))
        fixed(d)
    }
    /// A `u32` length, then the UTF-8 bytes.
    public mutating func string(_ s: String) {
        // One copy from the string's contiguous UTF-8 (the element-wise UTF8View append grew
        // the buffer in steps: event attributes made it a visible share of a block's commit).
        var s = s
        s.withUTF8 { utf8 in
            u32(UInt32(truncatingIfNeeded: utf8.count))
            bytes.append(contentsOf: UnsafeRawBufferPointer(utf8))
        }
    }
    /// A `u32` element count.
    public mutating func count(_ n: Int) { u32(UInt32(truncatingIfNeeded: n)) }
}

/// Reads the canonical binary encoding written by ``BinaryWriter``; every read is bounds
/// checked, every length and count is checked against the remaining input before any
/// allocation, and ``finish()`` rejects trailing bytes.
public struct BinaryReader: Sendable {
    private let bytes: [UInt8]
    /// When set, ``fixed(_:_:)`` answers with slices of it (see ``init(slicing:)``).
    private let source: Data?
    /// The read position.
    public private(set) var offset: Int = 0

    /// A reader over `data`.
    public init(_ data: some DataProtocol) {
        bytes = [UInt8](data)
        source = nil
    }

    /// ``init(_:)-(DataProtocol)`` for `Data`: one `memcpy` (the generic copy walks the
    /// collection's indices, a visible share of decoding a small message).
    public init(_ data: Data) {
        bytes = data.withUnsafeBytes { [UInt8]($0) }
        source = nil
    }

    /// A reader over `data` whose byte fields (``fixed(_:_:)``, ``bytes(_:limit:)``) are
    /// slices of `data` — sharing its storage, with `data`'s indices — instead of copies:
    /// for values decoded from bytes that stay around anyway (a transaction's, a remembered
    /// vote's), whose every key, hash and payload was otherwise two allocations.
    /// Acceptance and errors are exactly those of ``init(_:)``.
    init(slicing data: Data) {
        bytes = data.withUnsafeBytes { [UInt8]($0) }
        source = data
    }

    /// Bytes not yet read.
    public var remaining: Int { bytes.count - offset }

    private mutating func take(_ n: Int, field: String) throws(CodecError) -> ArraySlice<UInt8> {
        guard n >= 0, n <= remaining else { throw .truncated(field: field, needed: n, remaining: remaining) }
        defer { offset += n }
        return bytes[offset..<offset + n]
    }

    /// One byte.
    public mutating func u8(_ field: String) throws(CodecError) -> UInt8 {
        try take(1, field: field).first ?? 0
    }
    /// Two bytes, big-endian.
    public mutating func u16(_ field: String) throws(CodecError) -> UInt16 {
        UInt16(truncatingIfNeeded: try uint(2, field))
    }
    /// Four bytes, big-endian.
    public mutating func u32(_ field: String) throws(CodecError) -> UInt32 {
        UInt32(truncatingIfNeeded: try uint(4, field))
    }
    /// Eight bytes, big-endian.
    public mutating func u64(_ field: String) throws(CodecError) -> UInt64 { try uint(8, field) }

    private mutating func uint(_ width: Int, _ field: String) throws(CodecError) -> UInt64 {
        var v: UInt64 = 0
        for b in try take(width, field: field) { v = v << 8 | UInt64(b) }
        return v
    }

    /// A boolean; only 0 and 1 are canonical.
    public mutating func bool(_ field: String) throws(CodecError) -> Bool {
        let b = try u8(field)
        guard b <= 1 else { throw .invalidBool(field: field, value: b) }
        return b == 1
    }

    /// An optional's presence tag; only 0 and 1 are canonical.
    public mutating func presence(_ field: String) throws(CodecError) -> Bool {
        let b = try u8(field)
        guard b <= 1 else { throw .invalidOptionalTag(field: field, value: b) }
        return b == 1
    }

    /// Exactly `n` raw bytes.
    public mutating func fixed(_ n: Int, _ field: String) throws(CodecError) -> Data {
        let start = offset
        let taken = try take(n, field: field)
        if let source {
            let from = source.startIndex + start
            return source[from..<from + n]
        }
        return Data(taken)
    }

    /// A `u32`-length-prefixed byte string of at most `limit` bytes.
    public mutating func bytes(_ field: String, limit: Int = Int(UInt32.max)) throws(CodecError) -> Data {
        let length = try u32(field)
        guard UInt64(length) <= UInt64(max(limit, 0)) else {
            throw .lengthTooLarge(field: field, length: UInt64(length), limit: limit)
        }
        let start = offset
        let taken = try take(Int(length), field: field)
        if let source {
            let from = source.startIndex + start
            return source[from..<from + Int(length)]
        }
        return Data(taken)
    }

    /// A `u32`-length-prefixed UTF-8 string of at most `limit` bytes.
    public mutating func string(_ field: String, limit: Int = Int(UInt32.max)) throws(CodecError) -> String {
        let raw = try bytes(field, limit: limit)
        guard let s = String(validating: raw, as: UTF8.self) else { throw .invalidUTF8(field: field) }
        return s
    }

    /// A `u32` element count, rejected unless `count × minElementSize` bytes remain (so a
    /// hostile count cannot force a huge allocation) and `count ≤ limit`.
    public mutating func count(_ field: String, minElementSize: Int, limit: Int = Int(UInt32.max)) throws(CodecError) -> Int {
        let n = try u32(field)
        guard UInt64(n) <= UInt64(max(limit, 0)) else {
            throw .lengthTooLarge(field: field, length: UInt64(n), limit: limit)
        }
        guard UInt64(n) * UInt64(max(minElementSize, 1)) <= UInt64(remaining) else {
            throw .countTooLarge(field: field, count: UInt64(n), remaining: remaining)
        }
        return Int(n)
    }

    /// Throws unless every byte was consumed.
    public func finish() throws(CodecError) {
        guard remaining == 0 else { throw .trailingBytes(count: remaining) }
    }
}

/// A value with one canonical binary encoding.
public protocol BinaryCodable: Sendable {
    /// Appends the canonical encoding.
    func encode(to writer: inout BinaryWriter)
    /// Reads one value (not checking for trailing bytes).
    init(from reader: inout BinaryReader) throws(CodecError)
    /// About how many bytes ``encoded`` will take (0: unknown); large values say so, so that
    /// their encoding is written into one buffer of the right size.
    var encodedSizeHint: Int { get }
}

extension BinaryCodable {
    /// Unknown: the writer grows as needed.
    public var encodedSizeHint: Int { 0 }

    /// The canonical encoding.
    public var encoded: Data {
        var w = BinaryWriter(reservingCapacity: encodedSizeHint)
        encode(to: &w)
        return w.data
    }

    /// Decodes exactly one value: trailing bytes are an error.
    public init(decoding data: some DataProtocol) throws(CodecError) {
        var r = BinaryReader(data)
        self = try Self(from: &r)
        try r.finish()
    }

    /// ``init(decoding:)-(DataProtocol)`` for `Data`, copied into the reader in one `memcpy`.
    public init(decoding data: Data) throws(CodecError) {
        var r = BinaryReader(data)
        self = try Self(from: &r)
        try r.finish()
    }
}
