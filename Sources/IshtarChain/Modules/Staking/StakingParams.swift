import Foundation
import IshtarBitcoin
import IshtarCrypto

/// One version of the staking module's parameters: the Bitcoin-layer ``StakingParameters``
/// (covenant committee and quorum, stake and time bounds, unbonding and slashing terms)
/// plus the chain-side rules. Genesis writes version 0; a delegation records the version it
/// was validated against and is always re-checked against that same version.
public struct StakingModuleParams: Hashable, Sendable, BinaryCodable {
    /// The Bitcoin layer's rules (passed as-is to ``StakingValidation``).
    public var btc: StakingParameters
    /// Lowest commission a finality provider may set.
    public var minCommission: Commission
    /// N of "the top N providers by power": a provider in the table's top N has status
    /// ACTIVE. (The table itself lists every eligible provider; a height's active set is the
    /// finality module's, with its own N, taken after the randomness rule.)
    public var maxActiveFinalityProviders: UInt32
    /// k: how deep a staking transaction's block must be (tip height − block height ≥ k).
    public var btcConfirmationDepth: UInt32

    /// From its parts.
    public init(btc: StakingParameters, minCommission: Commission = .zero, maxActiveFinalityProviders: UInt32 = 100,
                btcConfirmationDepth: UInt32 = 10) {
        self.btc = btc
        self.minCommission = minCommission
        self.maxActiveFinalityProviders = maxActiveFinalityProviders
        self.btcConfirmationDepth = btcConfirmationDepth
    }

    /// `u32 n ‖ n × covenantKey(32) ‖ u32 quorum ‖ u64 minStake ‖ u64 maxStake ‖ u16 minTime ‖
    /// u16 maxTime ‖ u16 unbondingTime ‖ u64 unbondingFee ‖ bytes slashingScript ‖
    /// u64 rateNumerator ‖ u64 rateDenominator ‖ u64 minSlashingFee ‖ str network ‖
    /// u64 minCommission ‖ u32 maxActiveFPs ‖ u32 k`.
    public func encode(to w: inout BinaryWriter) {
        w.count(btc.covenantKeys.count)
        for k in btc.covenantKeys { w.fixed(k.rawRepresentation) }
        w.u32(UInt32(clamping: btc.covenantQuorum))
        w.u64(UInt64(clamping: btc.minStakingValue.sats))
        w.u64(UInt64(clamping: btc.maxStakingValue.sats))
        w.u16(btc.minStakingTime)
        w.u16(btc.maxStakingTime)
        w.u16(btc.unbondingTime)
        w.u64(UInt64(clamping: btc.unbondingFee.sats))
        w.bytes(btc.slashingPkScript.bytes)
        w.u64(btc.slashingRate.numerator)
        w.u64(btc.slashingRate.denominator)
        w.u64(UInt64(clamping: btc.minSlashingFee.sats))
        w.string(btc.network.rawValue)
        w.u64(minCommission.units)
        w.u32(maxActiveFinalityProviders)
        w.u32(btcConfirmationDepth)
    }

    /// Inverse of ``encode(to:)``.
    public init(from r: inout BinaryReader) throws(CodecError) {
        let n = try r.count("covenant keys", minElementSize: 32, limit: 1024)
        var keys: [Schnorr.PublicKey] = []
        for _ in 0..<n {
            let raw = try r.fixed(32, "covenant key")
            guard let key = try? Schnorr.PublicKey(rawRepresentation: raw) else {
                throw .nonCanonical(field: "covenant key", reason: "not a valid x-only key")
            }
            keys.append(key)
        }
        let quorum = Int(try r.u32("covenant quorum"))
        func amount(_ field: String) throws(CodecError) -> Amount {
            let v = try r.u64(field)
            guard v <= UInt64(Int64.max), let a = try? Amount(sats: Int64(v)) else {
                throw .nonCanonical(field: field, reason: "not a valid amount")
            }
            return a
        }
        let minValue = try amount("min staking value")
        let maxValue = try amount("max staking value")
        let minTime = try r.u16("min staking time")
        let maxTime = try r.u16("max staking time")
        let unbondingTime = try r.u16("unbonding time")
        let unbondingFee = try amount("unbonding fee")
        let script = Script(bytes: try r.bytes("slashing script", limit: 10_000))
        let num = try r.u64("slashing rate numerator")
        let den = try r.u64("slashing rate denominator")
        guard let rate = try? SlashingRate(numerator: num, denominator: den) else {
            throw .nonCanonical(field: "slashing rate", reason: "must be strictly between 0 and 1")
        }
        let minSlashingFee = try amount("min slashing fee")
        let networkName = try r.string("network", limit: 16)
        guard let network = Network(rawValue: networkName) else {
            throw .nonCanonical(field: "network", reason: "unknown network \(networkName)")
        }
        btc = StakingParameters(
            covenantKeys: keys, covenantQuorum: quorum, minStakingValue: minValue, maxStakingValue: maxValue,
            minStakingTime: minTime, maxStakingTime: maxTime, unbondingTime: unbondingTime, unbondingFee: unbondingFee,
            slashingPkScript: script, slashingRate: rate, minSlashingFee: minSlashingFee, network: network)
        minCommission = Commission(units: try r.u64("min commission"))
        maxActiveFinalityProviders = try r.u32("max active finality providers")
        btcConfirmationDepth = try r.u32("btc confirmation depth")
    }

    /// The parameters as JSON (the genesis shape).
    public var json: [String: Any] {
        [
            "btc_staking": [
                "covenant_keys": btc.covenantKeys.map(\.rawRepresentation.hexString),
                "covenant_quorum": btc.covenantQuorum,
                "min_staking_value_sat": btc.minStakingValue.sats, "max_staking_value_sat": btc.maxStakingValue.sats,
                "min_staking_time_blocks": Int(btc.minStakingTime), "max_staking_time_blocks": Int(btc.maxStakingTime),
                "unbonding_time_blocks": Int(btc.unbondingTime), "unbonding_fee_sat": btc.unbondingFee.sats,
                "slashing_pk_script": btc.slashingPkScript.bytes.hexString, "slashing_rate": btc.slashingRate.description,
                "min_slashing_fee_sat": btc.minSlashingFee.sats, "network": btc.network.rawValue,
            ] as [String: Any],
            "min_commission": minCommission.description,
            "max_active_finality_providers": Int(maxActiveFinalityProviders),
            "btc_confirmation_depth": Int(btcConfirmationDepth),
        ]
    }
}

/// The genesis shape of `modules.staking`:
///
/// ```json
/// { "btc_staking": { StakingParameters JSON: covenant_keys, covenant_quorum, min_staking_value_sat, … },
///   "min_commission": "0.03", "max_active_finality_providers": 100, "btc_confirmation_depth": 10 }
/// ```
///
/// `btc_staking` is required (there is no default covenant committee); the other fields
/// default to PROTOCOL §6 (0, 100, 10). Unknown fields are rejected.
public struct StakingGenesis: Sendable, Codable {
    /// Bitcoin-layer parameters.
    public var btcStaking: StakingParameters
    /// Minimum commission as an exact decimal string.
    public var minCommission: String?
    /// Top-N size of the voting-power table.
    public var maxActiveFinalityProviders: UInt32?
    /// k.
    public var btcConfirmationDepth: UInt32?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case btcStaking = "btc_staking", minCommission = "min_commission"
        case maxActiveFinalityProviders = "max_active_finality_providers", btcConfirmationDepth = "btc_confirmation_depth"
    }

    /// From its parts.
    public init(btcStaking: StakingParameters, minCommission: String? = nil, maxActiveFinalityProviders: UInt32? = nil,
                btcConfirmationDepth: UInt32? = nil) {
        self.btcStaking = btcStaking
        self.minCommission = minCommission
        self.maxActiveFinalityProviders = maxActiveFinalityProviders
        self.btcConfirmationDepth = btcConfirmationDepth
    }

    /// Canonical JSON (sorted keys) for `Genesis.moduleParams["staking"]`.
    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(self)
    }
}
