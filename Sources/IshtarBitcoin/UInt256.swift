import Foundation
import IshtarCrypto

/// An unsigned 256-bit integer, just enough for proof of work: targets, header hashes and
/// chain work. Arithmetic wraps modulo 2^256 like Bitcoin Core's `arith_uint256`, so that
/// difficulty computations match Core bit for bit.
public struct UInt256: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// Limbs, least significant first.
    private var limbs: (UInt64, UInt64, UInt64, UInt64)

    /// Zero.
    public static let zero = UInt256(0)
    /// 2^256 − 1.
    public static let max = UInt256(limbs: (.max, .max, .max, .max))

    private init(limbs: (UInt64, UInt64, UInt64, UInt64)) { self.limbs = limbs }

    /// The value of `value`.
    public init(_ value: UInt64) { limbs = (value, 0, 0, 0) }

    /// Reads up to 32 big-endian bytes (shorter input is left-padded with zeros, longer is
    /// truncated to its last 32 bytes).
    public init(bigEndian bytes: some DataProtocol) {
        self.init(littleEndian: Data([UInt8](bytes).reversed()))
    }

    /// Reads up to 32 little-endian bytes, as a block hash is compared against its target.
    public init(littleEndian bytes: some DataProtocol) {
        let raw = [UInt8](bytes)
        var words: [UInt64] = [0, 0, 0, 0]
        for (index, byte) in raw.prefix(32).enumerated() {
            words[index / 8] |= UInt64(byte) << (8 * UInt64(index % 8))
        }
        limbs = (words[0], words[1], words[2], words[3])
    }

    private subscript(index: Int) -> UInt64 {
        get {
            switch index {
            case 0: return limbs.0
            case 1: return limbs.1
            case 2: return limbs.2
            default: return limbs.3
            }
        }
        set {
            switch index {
            case 0: limbs.0 = newValue
            case 1: limbs.1 = newValue
            case 2: limbs.2 = newValue
            default: limbs.3 = newValue
            }
        }
    }

    /// 32 bytes, most significant first (how chain work is usually stored and shown).
    public var bigEndianBytes: Data {
        var out = Data(capacity: 32)
        for index in (0..<4).reversed() {
            let word = self[index]
            for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: word >> UInt64(shift))) }
        }
        return out
    }

    /// Big-endian hex, 64 digits.
    public var description: String { bigEndianBytes.hexString }

    /// Whether the value is zero.
    public var isZero: Bool { limbs.0 == 0 && limbs.1 == 0 && limbs.2 == 0 && limbs.3 == 0 }

    /// The lowest 64 bits.
    public var low64: UInt64 { limbs.0 }

    /// The number of significant bits (0 for zero).
    public var bitWidth: Int {
        for index in (0..<4).reversed() where self[index] != 0 {
            return 64 * index + 64 - self[index].leadingZeroBitCount
        }
        return 0
    }

    /// Equality of all limbs.
    public static func == (lhs: UInt256, rhs: UInt256) -> Bool {
        lhs.limbs.0 == rhs.limbs.0 && lhs.limbs.1 == rhs.limbs.1 && lhs.limbs.2 == rhs.limbs.2 && lhs.limbs.3 == rhs.limbs.3
    }

    /// Hashes all limbs.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(limbs.0)
        hasher.combine(limbs.1)
        hasher.combine(limbs.2)
        hasher.combine(limbs.3)
    }

    /// Numeric order.
    public static func < (lhs: UInt256, rhs: UInt256) -> Bool {
        for index in (0..<4).reversed() where lhs[index] != rhs[index] {
            return lhs[index] < rhs[index]
        }
        return false
    }

    /// The sum and whether it wrapped past 2^256.
    public func addingReportingOverflow(_ other: UInt256) -> (partialValue: UInt256, overflow: Bool) {
        var result = UInt256.zero
        var carry: UInt64 = 0
        for index in 0..<4 {
            let (sum1, overflow1) = self[index].addingReportingOverflow(other[index])
            let (sum2, overflow2) = sum1.addingReportingOverflow(carry)
            result[index] = sum2
            carry = (overflow1 ? 1 : 0) + (overflow2 ? 1 : 0)
        }
        return (result, carry != 0)
    }

    /// Wrapping addition.
    public static func &+ (lhs: UInt256, rhs: UInt256) -> UInt256 { lhs.addingReportingOverflow(rhs).partialValue }

    /// Wrapping subtraction.
    public static func &- (lhs: UInt256, rhs: UInt256) -> UInt256 { lhs &+ (~rhs &+ UInt256(1)) }

    /// Bitwise and.
    public static func & (lhs: UInt256, rhs: UInt256) -> UInt256 {
        UInt256(limbs: (lhs.limbs.0 & rhs.limbs.0, lhs.limbs.1 & rhs.limbs.1, lhs.limbs.2 & rhs.limbs.2, lhs.limbs.3 & rhs.limbs.3))
    }

    /// Bitwise complement.
    public static prefix func ~ (value: UInt256) -> UInt256 {
        UInt256(limbs: (~value.limbs.0, ~value.limbs.1, ~value.limbs.2, ~value.limbs.3))
    }

    /// Left shift; bits past 2^256 are dropped.
    public static func << (lhs: UInt256, rhs: Int) -> UInt256 {
        guard rhs > 0 else { return rhs == 0 ? lhs : lhs >> -rhs }
        guard rhs < 256 else { return .zero }
        var result = UInt256.zero
        let wordShift = rhs / 64
        let bitShift = UInt64(rhs % 64)
        for index in (wordShift..<4).reversed() {
            var word = lhs[index - wordShift] << bitShift
            if bitShift > 0, index - wordShift - 1 >= 0 { word |= lhs[index - wordShift - 1] >> (64 - bitShift) }
            result[index] = word
        }
        return result
    }

    /// Right shift.
    public static func >> (lhs: UInt256, rhs: Int) -> UInt256 {
        guard rhs > 0 else { return rhs == 0 ? lhs : lhs << -rhs }
        guard rhs < 256 else { return .zero }
        var result = UInt256.zero
        let wordShift = rhs / 64
        let bitShift = UInt64(rhs % 64)
        for index in 0..<(4 - wordShift) {
            var word = lhs[index + wordShift] >> bitShift
            if bitShift > 0, index + wordShift + 1 < 4 { word |= lhs[index + wordShift + 1] << (64 - bitShift) }
            result[index] = word
        }
        return result
    }

    /// The product with `factor`, wrapping modulo 2^256.
    public func multipliedWrapping(by factor: UInt64) -> UInt256 {
        var result = UInt256.zero
        var carry: UInt64 = 0
        for index in 0..<4 {
            let (high, low) = self[index].multipliedFullWidth(by: factor)
            let (sum, overflow) = low.addingReportingOverflow(carry)
            result[index] = sum
            carry = high &+ (overflow ? 1 : 0)
        }
        return result
    }

    /// The quotient and remainder of division by `divisor`; nil when dividing by zero.
    public func quotientAndRemainder(dividingBy divisor: UInt256) -> (quotient: UInt256, remainder: UInt256)? {
        guard !divisor.isZero else { return nil }
        guard divisor <= self else { return (.zero, self) }
        var quotient = UInt256.zero
        var remainder = UInt256.zero
        for bit in (0..<bitWidth).reversed() {
            remainder = remainder << 1
            if (self[bit / 64] >> UInt64(bit % 64)) & 1 == 1 { remainder[0] |= 1 }
            if remainder >= divisor {
                remainder = remainder &- divisor
                quotient[bit / 64] |= 1 << UInt64(bit % 64)
            }
        }
        return (quotient, remainder)
    }

    // MARK: Compact ("nBits") form

    /// Decodes a compact target exactly as Bitcoin Core's `SetCompact`: a 1-byte size and a
    /// 23-bit mantissa with a sign bit.
    public static func decodeCompact(_ bits: UInt32) -> (value: UInt256, negative: Bool, overflow: Bool) {
        let size = Int(bits >> 24)
        var word = bits & 0x007f_ffff
        let value: UInt256
        if size <= 3 {
            word >>= 8 * UInt32(3 - size)
            value = UInt256(UInt64(word))
        } else {
            value = UInt256(UInt64(word)) << (8 * (size - 3))
        }
        let negative = word != 0 && bits & 0x0080_0000 != 0
        let overflow = word != 0 && (size > 34 || (word > 0xff && size > 33) || (word > 0xffff && size > 32))
        return (value, negative, overflow)
    }

    /// Encodes as a compact target exactly as Bitcoin Core's `GetCompact` (lossy: keeps the top
    /// 23 bits of mantissa).
    public var compact: UInt32 {
        var size = (bitWidth + 7) / 8
        var compact: UInt32
        if size <= 3 {
            compact = UInt32(truncatingIfNeeded: low64 << (8 * UInt64(3 - size)))
        } else {
            compact = UInt32(truncatingIfNeeded: (self >> (8 * (size - 3))).low64)
        }
        if compact & 0x0080_0000 != 0 {
            compact >>= 8
            size += 1
        }
        return compact | UInt32(size) << 24
    }
}
