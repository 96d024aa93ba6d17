/// Exact conversion between bitcoind's BTC amounts and satoshis.
///
/// bitcoind renders amounts as JSON numbers in BTC with 8 decimals (`0.00012345`).
/// Going through `Double` can be off by one satoshi, so these helpers work on the
/// decimal text itself (kept verbatim by ``JSONValue/number(_:)``):
///
/// - the literal is parsed digit by digit (sign, integer part, fraction, optional
///   exponent — `1e-8` is accepted);
/// - amounts with more than 8 decimals (never produced by bitcoind, but possible
///   for fee rates from other servers) are rounded to the nearest satoshi,
///   ties to even — the same as Python's `Decimal.quantize` default;
/// - values outside `Int64` satoshis yield `nil`, never a trap.
public enum BitcoinAmount {
    /// Satoshis per bitcoin.
    public static let satsPerBTC: Int64 = 100_000_000

    /// Converts a decimal BTC literal such as `"21000000.00000000"`, `"-0.5"` or
    /// `"1e-8"` to satoshis. Returns `nil` if the text is not a number or the
    /// result does not fit in `Int64`.
    public static func sats(fromBTC text: String) -> Int64? {
        var bytes = Array(text.utf8)[...]
        var negative = false
        if let first = bytes.first, first == UInt8(ascii: "-") || first == UInt8(ascii: "+") {
            negative = first == UInt8(ascii: "-")
            bytes = bytes.dropFirst()
        }
        var digits: [UInt8] = []
        var fractionDigits = 0
        var sawDigit = false
        var sawPoint = false
        var exponent = 0
        var index = bytes.startIndex
        while index < bytes.endIndex {
            let b = bytes[index]
            if b >= UInt8(ascii: "0"), b <= UInt8(ascii: "9") {
                sawDigit = true
                digits.append(b - UInt8(ascii: "0"))
                if sawPoint { fractionDigits += 1 }
            } else if b == UInt8(ascii: "."), !sawPoint {
                sawPoint = true
            } else if b == UInt8(ascii: "e") || b == UInt8(ascii: "E") {
                guard sawDigit, let e = parseExponent(bytes[(index + 1)...]) else { return nil }
                exponent = e
                break
            } else {
                return nil
            }
            index += 1
        }
        guard sawDigit else { return nil }
        // Drop leading zeros; an all-zero mantissa is zero whatever the exponent.
        let firstNonZero = digits.firstIndex { $0 != 0 } ?? digits.endIndex
        digits.removeSubrange(0..<firstNonZero)
        if digits.isEmpty { return 0 }

        // value = D × 10^(exponent − fractionDigits); sats = D × 10^shift.
        let shift = exponent - fractionDigits + 8
        var result: Int64 = 0
        if shift >= 0 {
            guard digits.count + shift <= 19 else { return nil }
            for d in digits {
                guard let r = mulAdd(result, 10, Int64(d)) else { return nil }
                result = r
            }
            for _ in 0..<shift {
                guard let r = mulAdd(result, 10, 0) else { return nil }
                result = r
            }
        } else {
            let keep = digits.count + shift  // may be ≤ 0: |value| < 1 sat
            if keep > 19 { return nil }
            let kept: [UInt8] = keep > 0 ? Array(digits[0..<keep]) : []
            let dropped: ArraySlice<UInt8> = keep > 0 ? digits[keep...] : digits[...]
            for d in kept {
                guard let r = mulAdd(result, 10, Int64(d)) else { return nil }
                result = r
            }
            // Round to nearest, ties to even. When keep < 0, the first dropped
            // digit position is below the rounding digit, so it rounds down.
            if keep >= 0, let firstDropped = dropped.first {
                let restNonZero = dropped.dropFirst().contains { $0 != 0 }
                let roundUp =
                    firstDropped > 5 || (firstDropped == 5 && (restNonZero || (kept.last ?? 0) % 2 == 1))
                if roundUp {
                    guard let r = mulAdd(result, 1, 1) else { return nil }
                    result = r
                }
            }
        }
        return negative ? -result : result
    }

    /// Exact decimal BTC text, 8 decimals, for `sats` (e.g. `12345` → `"0.00012345"`).
    public static func decimalString(sats: Int64) -> String {
        let magnitude = sats.magnitude
        let whole = magnitude / UInt64(satsPerBTC)
        let fraction = String(magnitude % UInt64(satsPerBTC))
        let padded = String(repeating: "0", count: 8 - fraction.count) + fraction
        return (sats < 0 ? "-" : "") + "\(whole).\(padded)"
    }

    private static func mulAdd(_ a: Int64, _ m: Int64, _ b: Int64) -> Int64? {
        let (p, o1) = a.multipliedReportingOverflow(by: m)
        if o1 { return nil }
        let (s, o2) = p.addingReportingOverflow(b)
        return o2 ? nil : s
    }

    /// Parses an exponent, clamping its magnitude at 10 000 (anything larger
    /// over- or underflows anyway) so huge exponents can't overflow `Int`.
    private static func parseExponent(_ bytes: ArraySlice<UInt8>) -> Int? {
        var rest = bytes
        var negative = false
        if let first = rest.first, first == UInt8(ascii: "-") || first == UInt8(ascii: "+") {
            negative = first == UInt8(ascii: "-")
            rest = rest.dropFirst()
        }
        guard !rest.isEmpty else { return nil }
        var value = 0
        for b in rest {
            guard b >= UInt8(ascii: "0"), b <= UInt8(ascii: "9") else { return nil }
            value = min(value * 10 + Int(b - UInt8(ascii: "0")), 10_000)
        }
        return negative ? -value : value
    }
}
