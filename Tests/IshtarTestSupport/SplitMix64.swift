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
