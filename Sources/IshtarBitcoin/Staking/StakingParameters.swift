import Foundation
import IshtarCrypto

/// A slashing rate in (0, 1), held exactly as a reduced fraction, never a floating-point
/// number: the slashed amount decides real money, and `0.1` has no exact binary form.
public struct SlashingRate: Hashable, Sendable, Codable, CustomStringConvertible {
    /// The numerator of the reduced fraction.
    public let numerator: UInt64
    /// The denominator of the reduced fraction.
    public let denominator: UInt64

    /// The rate `numerator / denominator`, reduced; it must lie strictly between 0 and 1.
    public init(numerator: UInt64, denominator: UInt64) throws(StakingError) {
        guard denominator > 0, numerator > 0, numerator < denominator else {
            throw .invalidParameters(reason: "slashing rate \(numerator)/\(denominator) must be strictly between 0 and 1")
        }
        let divisor = Self.gcd(numerator, denominator)
        self.numerator = numerator / divisor
        self.denominator = denominator / divisor
    }

    /// A constant already in lowest terms with 0 < numerator < denominator.
    init(reducedNumerator: UInt64, denominator: UInt64) {
        self.numerator = reducedNumerator
        self.denominator = denominator
    }

    /// Parses a decimal such as `0.1` or `0.001` (at most 18 fractional digits), exactly.
    public init(decimal text: String) throws(StakingError) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0] == "0", !parts[1].isEmpty, parts[1].count <= 18,
            parts[1].allSatisfy({ $0.isASCII && $0.isNumber }), let fraction = UInt64(parts[1])
        else {
            throw .invalidParameters(reason: "slashing rate \"\(text)\" must be a decimal 0.x with 1 to 18 fractional digits")
        }
        var denominator: UInt64 = 1
        for _ in 0..<parts[1].count { denominator *= 10 }
        try self.init(numerator: fraction, denominator: denominator)
    }

    /// The slashed part of `value`: value × rate rounded half away from zero (PROTOCOL §2),
    /// in exact 128-bit integer arithmetic: ⌊(2·value·num + den) / (2·den)⌋.
    public func slashedAmount(of value: Amount) -> Amount {
        let doubled = UInt128(UInt64(value.sats)) * UInt128(numerator) * 2 + UInt128(denominator)
        let result = doubled / (UInt128(denominator) * 2)
        // rate < 1, so the result is ≤ value, which is a valid amount.
        return (try? Amount(sats: Int64(result))) ?? value
    }

    /// The shortest exact decimal when the denominator is a product of 2s and 5s and it needs
    /// at most 18 digits (e.g. "0.1"), else "numerator/denominator".
    public var description: String {
        var twos = 0
        var fives = 0
        var rest = denominator
        while rest % 2 == 0 { rest /= 2; twos += 1 }
        while rest % 5 == 0 { rest /= 5; fives += 1 }
        let digits = max(twos, fives)
        // 18 digits keep numerator × 10^digits below 2^128 (a rate of 1/2^39 needs 39: its
        // scale alone would overflow and trap every query of the parameters).
        guard rest == 1, digits <= 18 else { return "\(numerator)/\(denominator)" }
        var scale = UInt128(1)
        for _ in 0..<digits { scale *= 10 }
        let scaled = UInt128(numerator) * scale / UInt128(denominator)
        let body = String(scaled)
        return "0." + String(repeating: "0", count: max(0, digits - body.count)) + body
    }

    /// Decodes from a decimal string ("0.1") or "n/d".
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        let fraction = text.split(separator: "/")
        if fraction.count == 2, let n = UInt64(fraction[0]), let d = UInt64(fraction[1]) {
            try self.init(numerator: n, denominator: d)
        } else {
            try self.init(decimal: text)
        }
    }

    /// Encodes as ``description``.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    private static func gcd(_ a: UInt64, _ b: UInt64) -> UInt64 {
        var (x, y) = (a, b)
        while y != 0 { (x, y) = (y, x % y) }
        return x
    }
}

/// The chain's staking rules (PROTOCOL §6): which covenant committee co-signs, how much and
/// how long one may stake, and the terms of unbonding and slashing. Every value is a genesis
/// parameter; ``validated()`` checks that a set is usable.
public struct StakingParameters: Hashable, Sendable, Codable {
    /// The covenant committee's x-only keys.
    public var covenantKeys: [Schnorr.PublicKey]
    /// How many covenant signatures a spend through a covenant leaf needs.
    public var covenantQuorum: Int
    /// The smallest stake accepted.
    public var minStakingValue: Amount
    /// The largest stake accepted.
    public var maxStakingValue: Amount
    /// The shortest staking time accepted, in Bitcoin blocks.
    public var minStakingTime: UInt16
    /// The longest staking time accepted, in Bitcoin blocks.
    public var maxStakingTime: UInt16
    /// The relative timelock of the unbonding output and of slashing change, in blocks.
    public var unbondingTime: UInt16
    /// The exact fee of the unbonding transaction.
    public var unbondingFee: Amount
    /// The script output 0 of every slashing transaction pays (Babylon mainnet burns to
    /// `OP_RETURN "babylon"`).
    public var slashingPkScript: Script
    /// The share of the stake output 0 of a slashing transaction takes at least.
    public var slashingRate: SlashingRate
    /// The smallest fee a slashing transaction may pay.
    public var minSlashingFee: Amount
    /// The Bitcoin network staking happens on.
    public var network: Network

    /// A parameter set from its parts; call ``validated()`` before trusting it.
    public init(
        covenantKeys: [Schnorr.PublicKey], covenantQuorum: Int, minStakingValue: Amount, maxStakingValue: Amount,
        minStakingTime: UInt16, maxStakingTime: UInt16, unbondingTime: UInt16, unbondingFee: Amount,
        slashingPkScript: Script, slashingRate: SlashingRate, minSlashingFee: Amount, network: Network
    ) {
        self.covenantKeys = covenantKeys
        self.covenantQuorum = covenantQuorum
        self.minStakingValue = minStakingValue
        self.maxStakingValue = maxStakingValue
        self.minStakingTime = minStakingTime
        self.maxStakingTime = maxStakingTime
        self.unbondingTime = unbondingTime
        self.unbondingFee = unbondingFee
        self.slashingPkScript = slashingPkScript
        self.slashingRate = slashingRate
        self.minSlashingFee = minSlashingFee
        self.network = network
    }

    /// Babylon mainnet's burn script, `OP_RETURN "babylon"` (`6a07626162796c6f6e`).
    public static let babylonBurnScript = Script.opReturn(Data("babylon".utf8))

    /// The default unbonding time, BTC blocks (PROTOCOL §6).
    public static let defaultUnbondingTime: UInt16 = 200

    /// Ishtar's defaults (PROTOCOL §6) for a committee: quorum 3 (of 5 by default), stake
    /// 10,000 … 10^10 sat, staking time 400 … 65,535 blocks, unbonding 200 blocks with a
    /// 1,000 sat fee, slashing rate 0.1 burned to `OP_RETURN "babylon"`, minimum slashing fee 1,000 sat.
    public static func ishtarDefaults(
        covenantKeys: [Schnorr.PublicKey], covenantQuorum: Int = 3, network: Network = .mainnet
    ) -> StakingParameters {
        StakingParameters(
            covenantKeys: covenantKeys, covenantQuorum: covenantQuorum,
            minStakingValue: satoshis(10_000), maxStakingValue: satoshis(10_000_000_000),
            minStakingTime: 400, maxStakingTime: 65_535, unbondingTime: defaultUnbondingTime, unbondingFee: satoshis(1_000),
            slashingPkScript: babylonBurnScript, slashingRate: tenth, minSlashingFee: satoshis(1_000),
            network: network)
    }

    /// Babylon mainnet's values (PROTOCOL §6) for a committee: quorum 6 (of 9), stake
    /// 500,000 … 5×10^11 sat, staking time exactly 64,000 blocks, unbonding 1,008 blocks with a
    /// 32,000 sat fee, slashing rate 0.001 burned, minimum slashing fee 100,000 sat.
    public static func babylonMainnetLike(
        covenantKeys: [Schnorr.PublicKey], covenantQuorum: Int = 6
    ) -> StakingParameters {
        StakingParameters(
            covenantKeys: covenantKeys, covenantQuorum: covenantQuorum,
            minStakingValue: satoshis(500_000), maxStakingValue: satoshis(500_000_000_000),
            minStakingTime: 64_000, maxStakingTime: 64_000, unbondingTime: 1_008, unbondingFee: satoshis(32_000),
            slashingPkScript: babylonBurnScript, slashingRate: thousandth, minSlashingFee: satoshis(100_000),
            network: .mainnet)
    }

    /// Checks that the parameters can describe valid delegations at all; returns them unchanged.
    ///
    /// Rules: covenant keys distinct and non-empty; 1 ≤ quorum ≤ key count; 0 < min stake ≤ max
    /// stake; 1 ≤ min staking time ≤ max staking time; unbonding time ≥ 1; the minimum stake
    /// covers the unbonding fee, the minimum slashing fee and the slashed share of the unbonded
    /// value with non-dust change left; a non-empty, standard slashing script; at most
    /// ``maxCovenantCommitteeSize`` covenant keys.
    @discardableResult
    public func validated() throws(StakingError) -> StakingParameters {
        guard !covenantKeys.isEmpty else { throw .invalidParameters(reason: "the covenant committee is empty") }
        guard covenantKeys.count <= Self.maxCovenantCommitteeSize else {
            throw .invalidParameters(reason: "the covenant committee has \(covenantKeys.count) keys; at most "
                + "\(Self.maxCovenantCommitteeSize) (a delegation stores one signature set per member, at most that many)")
        }
        try Self.requireDistinct(covenantKeys)
        guard covenantQuorum >= 1, covenantQuorum <= covenantKeys.count else {
            throw .invalidCovenantQuorum(quorum: covenantQuorum, keyCount: covenantKeys.count)
        }
        guard minStakingValue.sats > 0, minStakingValue <= maxStakingValue else {
            throw .invalidParameters(
                reason: "need 0 < min stake (\(minStakingValue.sats)) ≤ max stake (\(maxStakingValue.sats))")
        }
        guard minStakingTime >= 1, minStakingTime <= maxStakingTime else {
            throw .invalidParameters(
                reason: "need 1 ≤ min staking time (\(minStakingTime)) ≤ max staking time (\(maxStakingTime))")
        }
        guard unbondingTime >= 1 else { throw .invalidTimelock(blocks: unbondingTime) }
        guard unbondingFee.sats > 0 else { throw .invalidParameters(reason: "the unbonding fee must be positive") }
        guard minSlashingFee.sats > 0 else { throw .invalidParameters(reason: "the minimum slashing fee must be positive") }
        guard !slashingPkScript.bytes.isEmpty else { throw .invalidParameters(reason: "the slashing script is empty") }
        // Like a fee under the relay floor: a slashing output Bitcoin Core will not relay
        // makes every slashing transaction unbroadcastable, so no stake could be slashed.
        guard Self.isStandardOutput(slashingPkScript) else {
            throw .invalidParameters(reason: "the slashing script \(slashingPkScript.bytes.hexString) is not a standard output "
                + "(P2PKH, P2SH, P2WPKH, P2WSH, P2TR, a future witness version, or OP_RETURN with pushes only, at most "
                + "\(Self.maxStandardNullDataBytes) bytes): Bitcoin Core would not relay a slashing transaction paying it")
        }
        // Pre-signed transactions cannot raise their fee later: one paying under Bitcoin
        // Core's default minimum relay fee (1 sat/vB) never propagates, so no staker could
        // unbond and no one could slash (the regtest oracle checks consensus, not relay policy).
        let floors = Self.relayFeeFloors(committee: covenantKeys.count, quorum: covenantQuorum,
                                          slashingScriptLength: slashingPkScript.bytes.count)
        guard unbondingFee.sats >= floors.unbonding else {
            throw .invalidParameters(reason: "the unbonding fee (\(unbondingFee.sats) sat) is below 1 sat/vB for the unbonding "
                + "transaction (~\(floors.unbonding) vB with this committee): it would never be relayed")
        }
        guard minSlashingFee.sats >= floors.slashing else {
            throw .invalidParameters(reason: "the minimum slashing fee (\(minSlashingFee.sats) sat) is below 1 sat/vB for a slashing "
                + "transaction (~\(floors.slashing) vB with this committee): it would never be relayed")
        }
        // The smallest stake must still be unbondable and then slashable with non-dust change.
        let changeDust = StakingValidation.dustThreshold(forScriptLength: 34, witnessProgram: true)
        let unbonded = minStakingValue.sats - unbondingFee.sats
        let slashed = slashingRate.slashedAmount(of: (try? Amount(sats: max(unbonded, 0))) ?? .zero).sats
        guard unbonded > 0, unbonded - slashed - minSlashingFee.sats >= changeDust.sats else {
            throw .invalidParameters(
                reason: "the minimum stake \(minStakingValue.sats) sat cannot pay the unbonding fee, the slashing "
                    + "share and the minimum slashing fee with non-dust change")
        }
        // A spendable slashing script must receive a non-dust amount even from the smallest stake.
        let slashingDust = StakingValidation.dustThreshold(for: slashingPkScript)
        guard slashed >= slashingDust.sats else {
            throw .invalidParameters(
                reason: "the slashed share of the minimum stake (\(slashed) sat) is dust for the slashing script "
                    + "(threshold \(slashingDust.sats) sat)")
        }
        return self
    }

    /// Upper estimates of the virtual sizes (vB) of the unbonding transaction and of a
    /// slashing transaction for a committee of `committee` keys with `quorum` signers, each
    /// spending its output through a script path (PROTOCOL §1–2) to the outputs §2 names.
    /// Non-witness part: version, one input, outputs, lock time; witness: every signature
    /// (64 bytes, the others empty), the leaf script and a control block of depth ≤ 2.
    public static func relayFeeFloors(committee n: Int, quorum q: Int, slashingScriptLength: Int) -> (unbonding: Int64, slashing: Int64) {
        let p2tr = 8 + 1 + 34
        let base = 4 + 1 + 41 + 1 + 4
        // <staker> CHECKSIGVERIFY, then the covenant multisig (<key> CHECKSIG(ADD) each, <q> NUMEQUAL).
        let multisig = 35 * n + 4
        let unbondingScript = 34 + multisig
        let slashingScript = 34 + 34 + multisig
        func witness(signatures: Int, script: Int) -> Int {
            1 + signatures * 65 + (n - q) + 3 + script + 1 + 33 + 64
        }
        let unbondingWeight = 4 * (base + p2tr) + 2 + witness(signatures: q + 1, script: unbondingScript)
        let slashingWeight = 4 * (base + 8 + 1 + slashingScriptLength + p2tr) + 2 + witness(signatures: q + 2, script: slashingScript)
        return (Int64((unbondingWeight + 3) / 4), Int64((slashingWeight + 3) / 4))
    }

    /// Throws ``StakingError/duplicateKey(_:)`` for the first key that appears twice.
    /// The largest covenant committee: a stored delegation keeps at most one signature set
    /// per member and its decoder takes at most 256 (far under tapscript's 1,000-element
    /// stack, which a committee's multisig witness must fit).
    public static let maxCovenantCommitteeSize = 256

    /// The longest OP_RETURN output script relayed under every Bitcoin Core default (83
    /// bytes until v30 raised the data-carrier limit).
    public static let maxStandardNullDataBytes = 83

    /// Whether Bitcoin Core's standardness rules (`IsStandard` of the output's type) accept
    /// `script` as an output: the templates it solves (bare multisig aside), witness versions 1–16 for future
    /// soft forks, and OP_RETURN followed only by pushes within the data-carrier limit. A
    /// version-0 witness program must be 20 or 32 bytes (anything else can never be spent).
    public static func isStandardOutput(_ script: Script) -> Bool {
        switch script.type {
        case .p2pkh, .p2sh, .p2wpkh, .p2wsh, .p2tr: return true
        case .witnessUnknown(let version, _): return version != 0
        case .opReturn: return script.bytes.count <= maxStandardNullDataBytes
        case .unknown:
            // Bare P2PK (a compressed or uncompressed key, then OP_CHECKSIG).
            let raw = [UInt8](script.bytes)
            if raw.count == 35, raw[0] == 33, raw[1] == 2 || raw[1] == 3, raw[34] == Opcode.checkSig.rawValue { return true }
            if raw.count == 67, raw[0] == 65, raw[1] == 4, raw[66] == Opcode.checkSig.rawValue { return true }
            return false
        }
    }

    static func requireDistinct(_ keys: [Schnorr.PublicKey]) throws(StakingError) {
        var seen = Set<Schnorr.PublicKey>()
        for key in keys where !seen.insert(key).inserted { throw .duplicateKey(key) }
    }

    // MARK: Codable: keys and scripts as hex.

    private enum CodingKeys: String, CodingKey {
        case covenantKeys = "covenant_keys", covenantQuorum = "covenant_quorum"
        case minStakingValue = "min_staking_value_sat", maxStakingValue = "max_staking_value_sat"
        case minStakingTime = "min_staking_time_blocks", maxStakingTime = "max_staking_time_blocks"
        case unbondingTime = "unbonding_time_blocks", unbondingFee = "unbonding_fee_sat"
        case slashingPkScript = "slashing_pk_script", slashingRate = "slashing_rate"
        case minSlashingFee = "min_slashing_fee_sat", network
    }

    /// Decodes, with keys and the slashing script as hex strings. The values are not validated
    /// here; call ``validated()``.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let keyHexes = try c.decode([String].self, forKey: .covenantKeys)
        covenantKeys = try keyHexes.map { try Schnorr.PublicKey(rawRepresentation: Data(hex: $0, field: "covenant key")) }
        covenantQuorum = try c.decode(Int.self, forKey: .covenantQuorum)
        minStakingValue = try c.decode(Amount.self, forKey: .minStakingValue)
        maxStakingValue = try c.decode(Amount.self, forKey: .maxStakingValue)
        minStakingTime = try c.decode(UInt16.self, forKey: .minStakingTime)
        maxStakingTime = try c.decode(UInt16.self, forKey: .maxStakingTime)
        unbondingTime = try c.decode(UInt16.self, forKey: .unbondingTime)
        unbondingFee = try c.decode(Amount.self, forKey: .unbondingFee)
        slashingPkScript = Script(
            bytes: try Data(hex: c.decode(String.self, forKey: .slashingPkScript), field: "slashing pk script"))
        slashingRate = try c.decode(SlashingRate.self, forKey: .slashingRate)
        minSlashingFee = try c.decode(Amount.self, forKey: .minSlashingFee)
        network = try c.decode(Network.self, forKey: .network)
    }

    /// Encodes with keys and the slashing script as hex strings.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(covenantKeys.map(\.rawRepresentation.hexString), forKey: .covenantKeys)
        try c.encode(covenantQuorum, forKey: .covenantQuorum)
        try c.encode(minStakingValue, forKey: .minStakingValue)
        try c.encode(maxStakingValue, forKey: .maxStakingValue)
        try c.encode(minStakingTime, forKey: .minStakingTime)
        try c.encode(maxStakingTime, forKey: .maxStakingTime)
        try c.encode(unbondingTime, forKey: .unbondingTime)
        try c.encode(unbondingFee, forKey: .unbondingFee)
        try c.encode(slashingPkScript.bytes.hexString, forKey: .slashingPkScript)
        try c.encode(slashingRate, forKey: .slashingRate)
        try c.encode(minSlashingFee, forKey: .minSlashingFee)
        try c.encode(network, forKey: .network)
    }
}

/// A constant amount; callers pass literals within range.
private func satoshis(_ value: Int64) -> Amount { (try? Amount(sats: value)) ?? .zero }

private let tenth = SlashingRate(reducedNumerator: 1, denominator: 10)
private let thousandth = SlashingRate(reducedNumerator: 1, denominator: 1_000)
