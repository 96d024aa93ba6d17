import Foundation

/// A cursor into a JSON response that knows its path (e.g. `result.tx[2].vout[0].value`),
/// so decoding failures become ``BitcoinRPCError/malformedResponse(field:reason:)``
/// naming the exact field.
struct JSONReader {
    /// `nil` means the member was absent.
    let value: JSONValue?
    let path: String

    init(_ value: JSONValue?, path: String) {
        self.value = value
        self.path = path
    }

    func fail(_ reason: String) -> BitcoinRPCError { .malformedResponse(field: path, reason: reason) }

    /// Member `key` (absent members read as missing, not as an error, until used).
    subscript(key: String) -> JSONReader {
        JSONReader(value?.objectValue?[key], path: path + "." + key)
    }

    /// Throws unless this is an object.
    func requireObject() throws(BitcoinRPCError) {
        guard case .object = value else { throw fail(value == nil ? "missing" : "expected object") }
    }

    /// `true` if absent or `null`.
    var isAbsent: Bool { value == nil || value == .null }

    func string() throws(BitcoinRPCError) -> String {
        guard let v = value else { throw fail("missing") }
        guard case .string(let s) = v else { throw fail("expected string") }
        return s
    }

    func bool() throws(BitcoinRPCError) -> Bool {
        guard let v = value else { throw fail("missing") }
        guard case .bool(let b) = v else { throw fail("expected boolean") }
        return b
    }

    func int() throws(BitcoinRPCError) -> Int {
        guard let v = value else { throw fail("missing") }
        guard case .number(let s) = v else { throw fail("expected number") }
        guard let i = Int(s) else { throw fail("expected integer, got \(s.prefix(40))") }
        return i
    }

    /// A block height, count or confirmation number: an integer in 0…2^31 − 1. A hostile or
    /// broken server's -1 or 2^63 is refused here, before callers subtract with it.
    func height() throws(BitcoinRPCError) -> Int {
        let i = try int()
        guard i >= 0, i <= Int(Int32.max) else { throw fail("expected a height or count in 0…\(Int32.max), got \(i)") }
        return i
    }

    func int64() throws(BitcoinRPCError) -> Int64 {
        guard let v = value else { throw fail("missing") }
        guard case .number(let s) = v else { throw fail("expected number") }
        guard let i = Int64(s) else { throw fail("expected integer, got \(s.prefix(40))") }
        return i
    }

    func double() throws(BitcoinRPCError) -> Double {
        guard let v = value else { throw fail("missing") }
        guard case .number(let s) = v, let d = Double(s) else { throw fail("expected number") }
        return d
    }

    /// A BTC amount converted exactly to satoshis (see ``BitcoinAmount``).
    func sats() throws(BitcoinRPCError) -> Int64 {
        guard let v = value else { throw fail("missing") }
        guard case .number(let s) = v else { throw fail("expected number (BTC amount)") }
        guard let sats = BitcoinAmount.sats(fromBTC: s) else { throw fail("BTC amount out of range: \(s.prefix(40))") }
        return sats
    }

    /// A hex string decoded to bytes.
    func hexData() throws(BitcoinRPCError) -> Data {
        let s = try string()
        guard let d = Data(hexString: s) else { throw fail("invalid hex") }
        return d
    }

    func array() throws(BitcoinRPCError) -> [JSONReader] {
        guard let v = value else { throw fail("missing") }
        guard case .array(let a) = v else { throw fail("expected array") }
        return a.enumerated().map { JSONReader($0.element, path: "\(path)[\($0.offset)]") }
    }

    func map<T>(_ transform: (JSONReader) throws(BitcoinRPCError) -> T) throws(BitcoinRPCError) -> [T] {
        var out: [T] = []
        for element in try array() { out.append(try transform(element)) }
        return out
    }

    func strings() throws(BitcoinRPCError) -> [String] {
        try map { (r) throws(BitcoinRPCError) in try r.string() }
    }

    /// `nil` if absent or `null`, otherwise `transform(self)`.
    func optional<T>(_ transform: (JSONReader) throws(BitcoinRPCError) -> T) throws(BitcoinRPCError) -> T? {
        isAbsent ? nil : try transform(self)
    }

    /// bitcoind's `warnings`: a string before v28, an array of strings since.
    func warnings() throws(BitcoinRPCError) -> [String] {
        switch value {
        case nil, .null?: return []
        case .string(let s)?: return s.isEmpty ? [] : [s]
        default: return try strings()
        }
    }
}

extension Data {
    /// Decodes a hex string (either case, even length); `nil` if invalid.
    init?(hexString: String) {
        let utf8 = Array(hexString.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        var bytes = [UInt8]()
        bytes.reserveCapacity(utf8.count / 2)
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
            default: return nil
            }
        }
        var i = 0
        while i < utf8.count {
            guard let hi = nibble(utf8[i]), let lo = nibble(utf8[i + 1]) else { return nil }
            bytes.append(hi << 4 | lo)
            i += 2
        }
        self.init(bytes)
    }

    /// Lower-case hex.
    var hexString: String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(count * 2)
        for b in self {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
