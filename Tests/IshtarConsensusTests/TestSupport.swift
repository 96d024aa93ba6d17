import Crypto
import Foundation
@testable import IshtarConsensus

/// SplitMix64: seeds xoshiro and is good enough on its own for small draws.
struct SplitMix64 {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// xoshiro256** — the simulation's only source of randomness (never the system RNG),
/// so one seed replays the same run bit for bit.
struct SimRNG: RandomNumberGenerator {
    private var s: (UInt64, UInt64, UInt64, UInt64)

    init(seed: UInt64) {
        var sm = SplitMix64(state: seed)
        s = (sm.next(), sm.next(), sm.next(), sm.next())
    }

    mutating func next() -> UInt64 {
        let result = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
        let t = s.1 << 17
        s.2 ^= s.0
        s.3 ^= s.1
        s.1 ^= s.2
        s.0 ^= s.3
        s.2 ^= t
        s.3 = s.3 << 45 | s.3 >> 19
        return result
    }

    /// Uniform in `range` (via the standard library's unbiased bounded draw).
    mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &self) }
    mutating func u64(_ range: ClosedRange<UInt64>) -> UInt64 { UInt64.random(in: range, using: &self) }
    mutating func chance(_ p: Double) -> Bool { Double(next() >> 11) / Double(1 << 53) < p }
}

/// Stand-in for BIP-340 in tests: a keyed hash `SHA-256(key ‖ message)` where the key is
/// the validator's "public key" (a shared secret the verifier knows). Deterministic and
/// cheap; production plugs BIP-340 Schnorr signatures from IshtarCrypto behind the same
/// protocols. (Length-extension does not matter here: sign bytes are never extended.)
struct FakeSigner: ConsensusSigner {
    let validatorAddress: Data
    let key: Data

    func sign(_ bytes: Data) throws(ConsensusError) -> Data { FakeSigner.mac(key: key, bytes) }

    static func mac(key: Data, _ bytes: Data) -> Data {
        var h = SHA256()
        h.update(data: key)
        h.update(data: bytes)
        return Data(h.finalize())
    }
}

struct FakeVerifier: SignatureVerifier {
    func verify(signature: Data, message: Data, by validator: Validator) -> Bool {
        signature.count == 32 && FakeSigner.mac(key: validator.publicKey, message) == signature
    }
}

/// A signer that always fails (tests the engine's handling of signer errors).
struct FailingSigner: ConsensusSigner {
    let validatorAddress: Data
    func sign(_ bytes: Data) throws(ConsensusError) -> Data { throw .signingFailed("hsm offline") }
}

enum Fixtures {
    static func address(_ i: Int) -> Data { Data([0xA0, UInt8(i)]) }
    static func keyBytes(_ i: Int) -> Data { Data(SHA256.hash(data: Data("sim-key-\(i)".utf8))) }
    static func signer(_ i: Int) -> FakeSigner { FakeSigner(validatorAddress: address(i), key: keyBytes(i)) }
    static let chainID: ChainID = {
        do { return try ChainID("ishtar-sim") } catch { fatalError("static chain id") }  // test constant
    }()

    static func validatorSet(powers: [UInt64]) throws -> ValidatorSet {
        try ValidatorSet(
            powers.enumerated().map { Validator(address: address($0.offset), publicKey: keyBytes($0.offset), power: $0.element) })
    }

    /// A block for tests and the simulation: "height|tag" bytes; hash = SHA-256 of the bytes.
    static func value(height: Height, tag: String) -> ProposalValue {
        let block = Data("\(height)|\(tag)".utf8)
        return ProposalValue(hash: hash(of: block), block: block)
    }

    static func hash(of block: Data) -> BlockHash {
        // SHA-256 output is always 32 bytes.
        (try? BlockHash(Data(SHA256.hash(data: block)))) ?? Fixtures.zeroHash
    }

    static let zeroHash: BlockHash = {
        do { return try BlockHash(Data(count: 32)) } catch { fatalError("32 zero bytes") }
    }()

    /// The simulation's process-proposal: block bytes hash to the value and name the height,
    /// and are not marked invalid.
    static func isValid(_ v: ProposalValue, height: Height) -> Bool {
        guard hash(of: v.block) == v.hash else { return false }
        let text = String(decoding: v.block, as: UTF8.self)
        return text.hasPrefix("\(height)|") && !text.contains("INVALID")
    }
}
