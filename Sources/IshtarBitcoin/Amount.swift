/// An amount of bitcoin in satoshis, always within 0 ... 21,000,000 BTC. Arithmetic is checked:
/// a result outside that range throws instead of wrapping.
public struct Amount: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    /// Satoshis per bitcoin.
    public static let satsPerBitcoin: Int64 = 100_000_000
    /// The largest valid amount, 21 million BTC (Bitcoin Core's MAX_MONEY).
    public static let maxMoney = Amount(uncheckedSats: 21_000_000 * satsPerBitcoin)
    /// Zero satoshis.
    public static let zero = Amount(uncheckedSats: 0)

    /// The value in satoshis.
    public let sats: Int64

    /// An amount of `sats` satoshis; throws if negative or above `maxMoney`.
    public init(sats: Int64) throws(AmountError) {
        guard sats >= 0 else { throw .negative(sats: sats) }
        guard sats <= Amount.maxMoney.sats else { throw .exceedsMaxMoney(sats: sats) }
        self.sats = sats
    }

    private init(uncheckedSats: Int64) {
        self.sats = uncheckedSats
    }

    /// Decodes and range-checks, so a stored amount can never be out of range.
    public init(from decoder: any Decoder) throws {
        let sats = try decoder.singleValueContainer().decode(Int64.self)
        try self.init(sats: sats)
    }

    /// Encodes as a bare integer of satoshis.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(sats)
    }

    /// `lhs + rhs`, throwing if the sum passes `maxMoney`.
    public static func + (lhs: Amount, rhs: Amount) throws(AmountError) -> Amount {
        let (sum, overflow) = lhs.sats.addingReportingOverflow(rhs.sats)
        guard !overflow else { throw .arithmeticOverflow }
        return try Amount(sats: sum)
    }

    /// `lhs - rhs`, throwing if the result would be negative.
    public static func - (lhs: Amount, rhs: Amount) throws(AmountError) -> Amount {
        guard rhs.sats <= lhs.sats else { throw .arithmeticOverflow }
        return Amount(uncheckedSats: lhs.sats - rhs.sats)
    }

    /// `self × factor`, throwing on overflow or a result out of range.
    public func multiplied(by factor: Int64) throws(AmountError) -> Amount {
        let (product, overflow) = sats.multipliedReportingOverflow(by: factor)
        guard !overflow else { throw .arithmeticOverflow }
        return try Amount(sats: product)
    }

    /// The sum of `amounts`, throwing if any partial sum passes `maxMoney`.
    public static func sum(_ amounts: some Sequence<Amount>) throws(AmountError) -> Amount {
        var total = Amount.zero
        for amount in amounts { total = try total + amount }
        return total
    }

    /// Compares by value.
    public static func < (lhs: Amount, rhs: Amount) -> Bool { lhs.sats < rhs.sats }

    /// For example "0.00012345 BTC".
    public var description: String {
        let whole = sats / Amount.satsPerBitcoin
        let fraction = String(sats % Amount.satsPerBitcoin)
        return "\(whole).\(String(repeating: "0", count: 8 - fraction.count))\(fraction) BTC"
    }
}
