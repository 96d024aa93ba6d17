import Foundation

extension Data {
    /// Decodes a hex string (upper or lower case, no prefix, no separators).
    ///
    /// - Parameter field: names the input in the error, so callers can say which argument was bad.
    public init(hex: String, field: String = "hex") throws(CryptoError) {
        let utf8 = hex.utf8
        guard utf8.count % 2 == 0 else { throw .invalidHex(field: field) }
        var bytes = [UInt8]()
        bytes.reserveCapacity(utf8.count / 2)
        var high: UInt8?
        for character in utf8 {
            guard let nibble = Self.nibble(character) else { throw .invalidHex(field: field) }
            if let h = high {
                bytes.append(h << 4 | nibble)
                high = nil
            } else {
                high = nibble
            }
        }
        self.init(bytes)
    }

    /// Lowercase hex, two digits per byte.
    public var hexString: String {
        // Written straight into the string's storage: event attributes hex-encode keys and
        // hashes for every transaction, and the byte-array round trip was most of that cost.
        withUnsafeBytes { bytes in
            String(unsafeUninitializedCapacity: bytes.count * 2) { out in
                let digits: StaticString = "0123456789abcdef"
                let table = digits.utf8Start
                var i = 0
                for byte in bytes {
                    out[i] = table[Int(byte >> 4)]
                    out[i + 1] = table[Int(byte & 0x0f)]
                    i += 2
                }
                return i
            }
        }
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
