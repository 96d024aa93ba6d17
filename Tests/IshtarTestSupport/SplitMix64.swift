import Foundation

/// SplitMix64: a tiny deterministic generator, so every randomized test replays exactly from
/// its seed. Never use the system generator in a test whose failure must be reproducible.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// `count` pseudo-random bytes.
    public mutating func bytes(_ count: Int) -> Data {
        Data((0..<count).map { _ in UInt8.random(in: 0...255, using: &self) })
    }
}

extension SplitMix64 {
    /// `seed` with one to four random edits — a byte overwritten, up to 40 trailing bytes cut,
    /// junk appended, a 4-byte window turned into a huge length, a byte inserted — or, one
    /// time in five, replaced by up to 300 random bytes: the inputs a decoder of untrusted
    /// bytes meets (corrupted, truncated, padded, lying about lengths).
    public mutating func mutated(_ seed: Data) -> Data {
        if Int.random(in: 0..<5, using: &self) == 0 { return bytes(Int.random(in: 0...300, using: &self)) }
        var input = [UInt8](seed)
        for _ in 0..<Int.random(in: 1...4, using: &self) {
            switch Int.random(in: 0..<5, using: &self) {
            case 0 where !input.isEmpty:
                input[Int.random(in: 0..<input.count, using: &self)] = UInt8.random(in: 0...255, using: &self)
            case 1 where !input.isEmpty:
                input.removeLast(Int.random(in: 1...min(input.count, 40), using: &self))
            case 2:
                input += [UInt8](bytes(Int.random(in: 1...8, using: &self)))
            case 3 where input.count > 4:
                let at = Int.random(in: 0..<(input.count - 4), using: &self)
                input.replaceSubrange(at..<at + 4, with: [0xff, 0xff, UInt8.random(in: 0...255, using: &self), 0xff])
            default:
                input.insert(UInt8.random(in: 0...255, using: &self), at: Int.random(in: 0...input.count, using: &self))
            }
        }
        return Data(input)
    }
}

extension SplitMix64 {
    /// Values that break assumptions about a JSON field: out of every integer width's range,
    /// negative, fractional, huge, empty, of the wrong type.
    static var hostileJSONValues: [Any] { [
        0, -1, 1, 255, 256, 65_535, 65_536, 4_294_967_295, 4_294_967_296, Int64.max, Int64.min, UInt64.max, 1e308, -1e308,
        0.5, "", "-1", "0", "1", "18446744073709551616", "99999999999999999999999999999", "0.000000000000000000001",
        "1e400", "abc", "zz", "00", String(repeating: "f", count: 64), String(repeating: "a", count: 5000), NSNull(),
        [Any](), [String: Any](), true, false,
    ] }

    /// `seed` (a JSON document) with one to three structural edits — a value anywhere in the
    /// tree replaced by one of ``hostileJSONValues``, a key removed, an array element
    /// dropped or repeated — or, one time in five, with ``mutated(_:)``'s byte edits. For
    /// the files an operator writes by hand (genesis, config, key files): what a typo, an
    /// out-of-range number or a truncated copy gives the parser after JSON itself accepted it.
    public mutating func mutatedJSON(_ seed: Data) -> Data {
        guard Int.random(in: 0..<5, using: &self) != 0, var tree = try? JSONSerialization.jsonObject(with: seed) else {
            return mutated(seed)
        }
        for _ in 0..<Int.random(in: 1...3, using: &self) { tree = edit(tree) }
        // `data(withJSONObject:)` traps (not throws) on a scalar root or a non-JSON value.
        guard JSONSerialization.isValidJSONObject(tree) else { return mutated(seed) }
        return (try? JSONSerialization.data(withJSONObject: tree, options: [.sortedKeys])) ?? mutated(seed)
    }

    /// One edit at a random depth of `node`.
    private mutating func edit(_ node: Any) -> Any {
        let descend = Int.random(in: 0..<3, using: &self) != 0
        if var object = node as? [String: Any], !object.isEmpty {
            let keys = object.keys.sorted()
            let key = keys[Int.random(in: 0..<keys.count, using: &self)]
            guard let child = object[key] else { return node }
            if descend, child is [String: Any] || child is [Any] {
                object[key] = edit(child)
            } else if Int.random(in: 0..<4, using: &self) == 0 {
                object.removeValue(forKey: key)
            } else {
                object[key] = Self.hostileJSONValues[Int.random(in: 0..<Self.hostileJSONValues.count, using: &self)]
            }
            return object
        }
        if var array = node as? [Any], !array.isEmpty {
            let i = Int.random(in: 0..<array.count, using: &self)
            let child = array[i]
            if descend, child is [String: Any] || child is [Any] {
                array[i] = edit(child)
            } else {
                switch Int.random(in: 0..<3, using: &self) {
                case 0: array.remove(at: i)
                case 1: array.append(child)
                default: array[i] = Self.hostileJSONValues[Int.random(in: 0..<Self.hostileJSONValues.count, using: &self)]
                }
            }
            return array
        }
        return Self.hostileJSONValues[Int.random(in: 0..<Self.hostileJSONValues.count, using: &self)]
    }
}
