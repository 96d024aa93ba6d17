import Foundation
import IshtarBitcoin
import IshtarCrypto

// MARK: - Commission

/// A commission rate in [0, 1], held exactly as an integer number of 10⁻¹⁸ units (never a
/// floating-point number): "0.05" is 50_000_000_000_000_000 units.
public struct Commission: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// Units per whole (10¹⁸): the rate 1.0.
    public static let scale: UInt64 = 1_000_000_000_000_000_000
    /// 0.
    public static let zero = Commission(units: 0)

    /// The rate × 10¹⁸.
    public let units: UInt64

    /// A rate from its 10⁻¹⁸ units (may exceed 1; messages reject that).
    public init(units: UInt64) { self.units = units }

    /// Parses `"0"`, `"1"`, `"0.05"`, `"1.0"` (at most 18 fractional digits) exactly; `nil`
    /// for anything else or for values above 1.
    public init?(decimal text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 1 || parts.count == 2, let whole = parts.first, whole == "0" || whole == "1" else { return nil }
        var units: UInt64 = whole == "1" ? Self.scale : 0
        if parts.count == 2 {
            let fraction = parts[1]
            guard !fraction.isEmpty, fraction.count <= 18, fraction.allSatisfy({ $0.isASCII && $0.isNumber }),
                  var value = UInt64(fraction) else { return nil }
            for _ in fraction.count..<18 { value *= 10 }
            units += value
        }
        guard units <= Self.scale else { return nil }
        self.units = units
    }

    /// Shortest exact decimal, e.g. `"0.05"`, `"1"`, `"0"`.
    public var description: String {
        let whole = units / Self.scale
        var fraction = units % Self.scale
        guard fraction != 0 else { return String(whole) }
        var digits = 18
        while fraction % 10 == 0 {
            fraction /= 10
            digits -= 1
        }
        let body = String(fraction)
        return "\(whole)." + String(repeating: "0", count: digits - body.count) + body
    }

    /// Ordered by value.
    public static func < (lhs: Commission, rhs: Commission) -> Bool { lhs.units < rhs.units }
}

// MARK: - Description

/// A finality provider's public description (Cosmos validator-description bounds).
public struct FinalityProviderDescription: Hashable, Sendable, BinaryCodable {
    /// Longest moniker, bytes.
    public static let maxMonikerBytes = 70
    /// Longest identity (e.g. a Keybase id), bytes.
    public static let maxIdentityBytes = 3000
    /// Longest website, bytes.
    public static let maxWebsiteBytes = 140
    /// Longest security contact, bytes.
    public static let maxSecurityContactBytes = 140
    /// Longest details text, bytes.
    public static let maxDetailsBytes = 280

    /// Display name; must not be empty.
    public var moniker: String
    /// Optional identity signature (e.g. Keybase).
    public var identity: String
    /// Optional website.
    public var website: String
    /// Optional security contact.
    public var securityContact: String
    /// Optional free text.
    public var details: String

    /// A description from its parts.
    public init(moniker: String, identity: String = "", website: String = "", securityContact: String = "", details: String = "") {
        self.moniker = moniker
        self.identity = identity
        self.website = website
        self.securityContact = securityContact
        self.details = details
    }

    /// `str moniker ‖ str identity ‖ str website ‖ str securityContact ‖ str details`.
    public func encode(to w: inout BinaryWriter) {
        w.string(moniker)
        w.string(identity)
        w.string(website)
        w.string(securityContact)
        w.string(details)
    }

    /// Inverse of ``encode(to:)``; each field is bounded by its limit.
    public init(from r: inout BinaryReader) throws(CodecError) {
        moniker = try r.string("moniker", limit: Self.maxMonikerBytes)
        identity = try r.string("identity", limit: Self.maxIdentityBytes)
        website = try r.string("website", limit: Self.maxWebsiteBytes)
        securityContact = try r.string("security contact", limit: Self.maxSecurityContactBytes)
        details = try r.string("details", limit: Self.maxDetailsBytes)
    }

    var json: [String: Any] {
        ["moniker": moniker, "identity": identity, "website": website, "security_contact": securityContact, "details": details]
    }
}

// MARK: - Finality provider

/// A finality provider's status (derived from its flags).
public enum FinalityProviderStatus: String, Sendable, Hashable {
    /// Registered, never in the active set.
    case registered = "REGISTERED"
    /// In the active set of the latest voting-power table.
    case active = "ACTIVE"
    /// Was in the active set, is not now.
    case inactive = "INACTIVE"
    /// Jailed for missing votes; excluded until unjailed.
    case jailed = "JAILED"
    /// Slashed for equivocation; terminal, never counts again.
    case slashed = "SLASHED"
}

/// A registered finality provider.
public struct FinalityProvider: Hashable, Sendable, BinaryCodable {
    static let version: UInt8 = 1

    /// x-only BIP-340 key (32 bytes): its identity on Bitcoin and on the chain.
    public var btcKey: Data
    /// The account that registered it (only it may edit).
    public var owner: Data
    /// Public description.
    public var description: FinalityProviderDescription
    /// Commission rate.
    public var commission: Commission
    /// The chain it provides finality for (the control plane's own chain id, or a consumer's).
    public var consumerChainID: String
    /// Chain height of registration.
    public var registeredHeight: UInt64
    /// Total sats of its ACTIVE delegations, maintained on every transition.
    public var activeSats: UInt64
    /// Jailed (by the finality module) and not yet unjailed.
    public var jailed: Bool
    /// Chain height at which it was slashed, if it was.
    public var slashedHeight: UInt64?
    /// In the latest voting-power table.
    public var inActiveSet: Bool
    /// Has ever been in a voting-power table.
    public var everActive: Bool

    /// The status named by its flags (SLASHED ≻ JAILED ≻ ACTIVE ≻ INACTIVE ≻ REGISTERED).
    public var status: FinalityProviderStatus {
        if slashedHeight != nil { return .slashed }
        if jailed { return .jailed }
        if inActiveSet { return .active }
        return everActive ? .inactive : .registered
    }

    /// `u8 version ‖ key(32) ‖ owner(32) ‖ description ‖ u64 commission ‖ str chainID ‖
    /// u64 registeredHeight ‖ u64 activeSats ‖ bool jailed ‖ opt(u64 slashedHeight) ‖
    /// bool inActiveSet ‖ bool everActive`.
    public func encode(to w: inout BinaryWriter) {
        w.u8(Self.version)
        w.fixed(btcKey)
        w.fixed(owner)
        description.encode(to: &w)
        w.u64(commission.units)
        w.string(consumerChainID)
        w.u64(registeredHeight)
        w.u64(activeSats)
        w.bool(jailed)
        w.bool(slashedHeight != nil)
        if let slashedHeight { w.u64(slashedHeight) }
        w.bool(inActiveSet)
        w.bool(everActive)
    }

    /// Inverse of ``encode(to:)``.
    public init(from r: inout BinaryReader) throws(CodecError) {
        let v = try r.u8("finality provider version")
        guard v == Self.version else { throw .unknownVersion(field: "finality provider version", value: v) }
        btcKey = try r.fixed(32, "btc key")
        owner = try r.fixed(32, "owner")
        description = try FinalityProviderDescription(from: &r)
        commission = Commission(units: try r.u64("commission"))
        consumerChainID = try r.string("consumer chain id", limit: StakingModule.maxChainIDBytes)
        registeredHeight = try r.u64("registered height")
        activeSats = try r.u64("active sats")
        jailed = try r.bool("jailed")
        slashedHeight = try r.presence("slashed") ? try r.u64("slashed height") : nil
        inActiveSet = try r.bool("in active set")
        everActive = try r.bool("ever active")
    }

    init(btcKey: Data, owner: Data, description: FinalityProviderDescription, commission: Commission,
         consumerChainID: String, registeredHeight: UInt64) {
        self.btcKey = btcKey
        self.owner = owner
        self.description = description
        self.commission = commission
        self.consumerChainID = consumerChainID
        self.registeredHeight = registeredHeight
        self.activeSats = 0
        self.jailed = false
        self.slashedHeight = nil
        self.inActiveSet = false
        self.everActive = false
    }

    var json: [String: Any] {
        var out: [String: Any] = [
            "btc_pk": btcKey.hexString, "owner": owner.hexString, "description": description.json,
            "commission": commission.description, "consumer_chain_id": consumerChainID,
            "registered_height": String(registeredHeight), "active_sats": String(activeSats),
            "jailed": jailed, "status": status.rawValue,
        ]
        if let slashedHeight { out["slashed_height"] = String(slashedHeight) }
        return out
    }
}

// MARK: - Delegation

/// A BTC delegation's state (PROTOCOL §6).
public enum DelegationStatus: UInt8, Sendable, Hashable, CustomStringConvertible {
    /// Registered, covenant quorum not reached.
    case pending = 0
    /// Covenant quorum reached, staking transaction not yet proven k-deep.
    case verified = 1
    /// Quorum and k-deep inclusion: carries voting power.
    case active = 2
    /// Early unbonding seen on Bitcoin (terminal).
    case unbonded = 3
    /// BTC tip + unbonding time ≥ end height (terminal).
    case expired = 4

    /// `"PENDING"` etc.
    public var description: String {
        switch self {
        case .pending: return "PENDING"
        case .verified: return "VERIFIED"
        case .active: return "ACTIVE"
        case .unbonded: return "UNBONDED"
        case .expired: return "EXPIRED"
        }
    }
}

/// One covenant member's signatures as stored on the chain.
public struct StoredCovenantSignatures: Hashable, Sendable, BinaryCodable {
    /// The covenant member's x-only key.
    public var covenantKey: Data
    /// BIP-340 signature on the unbonding transaction (64 bytes).
    public var unbondingSignature: Data
    /// Adaptor signatures (65 bytes) on the staking slashing transaction, by provider key, ascending.
    public var slashingAdaptors: [ProviderAdaptorSignature]
    /// Adaptor signatures on the unbonding slashing transaction, by provider key, ascending.
    public var unbondingSlashingAdaptors: [ProviderAdaptorSignature]

    /// From its parts.
    public init(covenantKey: Data, unbondingSignature: Data, slashingAdaptors: [ProviderAdaptorSignature],
                unbondingSlashingAdaptors: [ProviderAdaptorSignature]) {
        self.covenantKey = covenantKey
        self.unbondingSignature = unbondingSignature
        self.slashingAdaptors = slashingAdaptors
        self.unbondingSlashingAdaptors = unbondingSlashingAdaptors
    }

    /// `key(32) ‖ sig(64) ‖ adaptors ‖ adaptors` (see ``ProviderAdaptorSignature``).
    public func encode(to w: inout BinaryWriter) {
        w.fixed(covenantKey)
        w.fixed(unbondingSignature)
        ProviderAdaptorSignature.encodeList(slashingAdaptors, to: &w)
        ProviderAdaptorSignature.encodeList(unbondingSlashingAdaptors, to: &w)
    }

    /// Inverse of ``encode(to:)``; adaptor lists must be strictly ascending by provider key.
    public init(from r: inout BinaryReader) throws(CodecError) {
        covenantKey = try r.fixed(32, "covenant key")
        unbondingSignature = try r.fixed(64, "covenant unbonding signature")
        slashingAdaptors = try ProviderAdaptorSignature.decodeList(&r, field: "slashing adaptor signatures")
        unbondingSlashingAdaptors = try ProviderAdaptorSignature.decodeList(&r, field: "unbonding slashing adaptor signatures")
    }

    /// As the Bitcoin layer's type; `nil` if a key or signature is not well-formed.
    /// The set as the Bitcoin layer's type; bytes that are not a key, signature or adaptor
    /// signature are named in the error.
    func signatureSet() throws(StakingModuleError) -> CovenantSignatureSet {
        guard let key = try? Schnorr.PublicKey(rawRepresentation: covenantKey) else {
            throw .malformedCovenantSignature(field: "covenant key")
        }
        guard let sig = try? Schnorr.Signature(rawRepresentation: unbondingSignature) else {
            throw .malformedCovenantSignature(field: "unbonding signature")
        }
        func map(_ list: [ProviderAdaptorSignature], _ kind: String) throws(StakingModuleError) -> [Schnorr.PublicKey: AdaptorSignature] {
            var out: [Schnorr.PublicKey: AdaptorSignature] = [:]
            for item in list {
                guard let k = try? Schnorr.PublicKey(rawRepresentation: item.finalityProviderKey) else {
                    throw .malformedCovenantSignature(field: "finality provider key of a \(kind) adaptor signature")
                }
                guard let a = try? AdaptorSignature(rawRepresentation: item.adaptorSignature) else {
                    throw .malformedCovenantSignature(field: "\(kind) adaptor signature for \(item.finalityProviderKey.hexString)")
                }
                out[k] = a
            }
            return out
        }
        return CovenantSignatureSet(covenantKey: key, unbondingSignature: sig,
                                    slashingAdaptorSignatures: try map(slashingAdaptors, "slashing"),
                                    unbondingSlashingAdaptorSignatures: try map(unbondingSlashingAdaptors, "unbonding slashing"))
    }

    var json: [String: Any] {
        [
            "covenant_pk": covenantKey.hexString, "unbonding_sig": unbondingSignature.hexString,
            "slashing_adaptor_sigs": slashingAdaptors.map(\.json),
            "unbonding_slashing_adaptor_sigs": unbondingSlashingAdaptors.map(\.json),
        ]
    }
}

/// A covenant adaptor signature (65 bytes) encrypted under one finality provider's key.
public struct ProviderAdaptorSignature: Hashable, Sendable {
    /// The provider's x-only key (the encryption key, lifted to even y).
    public var finalityProviderKey: Data
    /// The 65-byte adaptor signature (PROTOCOL §3).
    public var adaptorSignature: Data

    /// From its parts.
    public init(finalityProviderKey: Data, adaptorSignature: Data) {
        self.finalityProviderKey = finalityProviderKey
        self.adaptorSignature = adaptorSignature
    }

    /// `u32 count ‖ count × (key(32) ‖ adaptor(65))`, ascending by key.
    static func encodeList(_ list: [ProviderAdaptorSignature], to w: inout BinaryWriter) {
        w.count(list.count)
        for item in list {
            w.fixed(item.finalityProviderKey)
            w.fixed(item.adaptorSignature)
        }
    }

    /// Inverse of ``encodeList(_:to:)``; keys must be strictly ascending (one encoding only).
    static func decodeList(_ r: inout BinaryReader, field: String) throws(CodecError) -> [ProviderAdaptorSignature] {
        let n = try r.count(field, minElementSize: 97, limit: 16)
        var out: [ProviderAdaptorSignature] = []
        for _ in 0..<n {
            let key = try r.fixed(32, "\(field) key")
            let sig = try r.fixed(65, "\(field) signature")
            if let last = out.last, !last.finalityProviderKey.lexicographicallyPrecedes(key) {
                throw .nonCanonical(field: field, reason: "provider keys must be strictly ascending")
            }
            out.append(ProviderAdaptorSignature(finalityProviderKey: key, adaptorSignature: sig))
        }
        return out
    }

    var json: [String: Any] { ["fp_btc_pk": finalityProviderKey.hexString, "adaptor_sig": adaptorSignature.hexString] }
}

/// Where a Bitcoin transaction was proven included.
public struct BTCInclusion: Hashable, Sendable {
    /// The block's hash, internal byte order.
    public var blockHash: Data
    /// The block's height on the light client.
    public var height: UInt64
}

/// A BTC delegation as stored on the chain.
public struct BTCDelegation: Hashable, Sendable, BinaryCodable {
    static let version: UInt8 = 1

    /// The account that registered it.
    public var owner: Data
    /// The staker's x-only key.
    public var stakerKey: Data
    /// The finality provider's x-only key (the chain accepts exactly one).
    public var finalityProviderKey: Data
    /// The chain the provider serves (copied from the provider at creation).
    public var consumerChainID: String
    /// Staking timelock, BTC blocks.
    public var stakingTime: UInt16
    /// Staked sats.
    public var stakingValue: UInt64
    /// Index of the staking output.
    public var stakingOutputIndex: UInt32
    /// The staking transaction, without witness.
    public var stakingTransaction: Data
    /// The unsigned unbonding transaction.
    public var unbondingTransaction: Data
    /// The staking output's slashing transaction.
    public var slashingTransaction: Data
    /// The staker's signature on it (64 bytes).
    public var stakerSlashingSignature: Data
    /// The unbonding output's slashing transaction.
    public var unbondingSlashingTransaction: Data
    /// The staker's signature on it (64 bytes).
    public var stakerUnbondingSlashingSignature: Data
    /// The parameter version it was validated against.
    public var paramsVersion: UInt32
    /// Its state.
    public var status: DelegationStatus
    /// Covenant signature sets, ascending by covenant key.
    public var covenantSignatures: [StoredCovenantSignatures]
    /// Where the staking transaction was proven included, if it was.
    public var inclusion: BTCInclusion?
    /// Chain height at which it was created.
    public var createdHeight: UInt64
    /// The reported unbonding transaction, without its witness (the inclusion proof covers
    /// only the txid, and anyone may report it), once UNBONDED.
    public var unbondingSpend: Data?
    /// Where the unbonding transaction was included, once UNBONDED.
    public var unbondingInclusion: BTCInclusion?

    /// The staking transaction's txid (internal order), from the stored bytes.
    public var stakingTxid: Data { (try? IshtarBitcoin.Transaction(serialized: stakingTransaction).txid.rawValue) ?? Data() }

    /// inclusion height + staking time, once included.
    public var endHeight: UInt64? { inclusion.map { $0.height + UInt64(stakingTime) } }

    /// `u8 version ‖ owner(32) ‖ staker(32) ‖ fp(32) ‖ str chainID ‖ u16 stakingTime ‖
    /// u64 value ‖ u32 outputIndex ‖ bytes stakingTx ‖ bytes unbondingTx ‖ bytes slashingTx ‖
    /// sig(64) ‖ bytes unbondingSlashingTx ‖ sig(64) ‖ u32 paramsVersion ‖ u8 status ‖
    /// u32 n ‖ n × covenant sets ‖ opt(hash(32) ‖ u64 height) ‖ u64 createdHeight ‖
    /// opt(bytes unbondingSpend) ‖ opt(hash(32) ‖ u64 height)`.
    public func encode(to w: inout BinaryWriter) {
        w.u8(Self.version)
        w.fixed(owner)
        w.fixed(stakerKey)
        w.fixed(finalityProviderKey)
        w.string(consumerChainID)
        w.u16(stakingTime)
        w.u64(stakingValue)
        w.u32(stakingOutputIndex)
        w.bytes(stakingTransaction)
        w.bytes(unbondingTransaction)
        w.bytes(slashingTransaction)
        w.fixed(stakerSlashingSignature)
        w.bytes(unbondingSlashingTransaction)
        w.fixed(stakerUnbondingSlashingSignature)
        w.u32(paramsVersion)
        w.u8(status.rawValue)
        w.count(covenantSignatures.count)
        for set in covenantSignatures { set.encode(to: &w) }
        Self.encodeInclusion(inclusion, to: &w)
        w.u64(createdHeight)
        w.bool(unbondingSpend != nil)
        if let unbondingSpend { w.bytes(unbondingSpend) }
        Self.encodeInclusion(unbondingInclusion, to: &w)
    }

    private static func encodeInclusion(_ inclusion: BTCInclusion?, to w: inout BinaryWriter) {
        w.bool(inclusion != nil)
        if let inclusion {
            w.fixed(inclusion.blockHash)
            w.u64(inclusion.height)
        }
    }

    private static func decodeInclusion(_ r: inout BinaryReader, _ field: String) throws(CodecError) -> BTCInclusion? {
        guard try r.presence(field) else { return nil }
        return BTCInclusion(blockHash: try r.fixed(32, "\(field) block hash"), height: try r.u64("\(field) height"))
    }

    /// Inverse of ``encode(to:)``.
    public init(from r: inout BinaryReader) throws(CodecError) {
        let v = try r.u8("delegation version")
        guard v == Self.version else { throw .unknownVersion(field: "delegation version", value: v) }
        owner = try r.fixed(32, "owner")
        stakerKey = try r.fixed(32, "staker key")
        finalityProviderKey = try r.fixed(32, "finality provider key")
        consumerChainID = try r.string("consumer chain id", limit: StakingModule.maxChainIDBytes)
        stakingTime = try r.u16("staking time")
        stakingValue = try r.u64("staking value")
        stakingOutputIndex = try r.u32("staking output index")
        stakingTransaction = try r.bytes("staking transaction", limit: StakingModule.maxBitcoinTransactionBytes)
        unbondingTransaction = try r.bytes("unbonding transaction", limit: StakingModule.maxBitcoinTransactionBytes)
        slashingTransaction = try r.bytes("slashing transaction", limit: StakingModule.maxBitcoinTransactionBytes)
        stakerSlashingSignature = try r.fixed(64, "staker slashing signature")
        unbondingSlashingTransaction = try r.bytes("unbonding slashing transaction", limit: StakingModule.maxBitcoinTransactionBytes)
        stakerUnbondingSlashingSignature = try r.fixed(64, "staker unbonding slashing signature")
        paramsVersion = try r.u32("params version")
        let s = try r.u8("status")
        guard let status = DelegationStatus(rawValue: s) else { throw .unknownVersion(field: "status", value: s) }
        self.status = status
        let n = try r.count("covenant signatures", minElementSize: 104, limit: 256)
        var sets: [StoredCovenantSignatures] = []
        for _ in 0..<n { sets.append(try StoredCovenantSignatures(from: &r)) }
        covenantSignatures = sets
        inclusion = try Self.decodeInclusion(&r, "inclusion")
        createdHeight = try r.u64("created height")
        unbondingSpend = try r.presence("unbonding spend") ? try r.bytes("unbonding spend", limit: StakingModule.maxBitcoinTransactionBytes) : nil
        unbondingInclusion = try Self.decodeInclusion(&r, "unbonding inclusion")
    }

    init(owner: Data, stakerKey: Data, finalityProviderKey: Data, consumerChainID: String, stakingTime: UInt16,
         stakingValue: UInt64, stakingOutputIndex: UInt32, stakingTransaction: Data, unbondingTransaction: Data,
         slashingTransaction: Data, stakerSlashingSignature: Data, unbondingSlashingTransaction: Data,
         stakerUnbondingSlashingSignature: Data, paramsVersion: UInt32, createdHeight: UInt64) {
        self.owner = owner
        self.stakerKey = stakerKey
        self.finalityProviderKey = finalityProviderKey
        self.consumerChainID = consumerChainID
        self.stakingTime = stakingTime
        self.stakingValue = stakingValue
        self.stakingOutputIndex = stakingOutputIndex
        self.stakingTransaction = stakingTransaction
        self.unbondingTransaction = unbondingTransaction
        self.slashingTransaction = slashingTransaction
        self.stakerSlashingSignature = stakerSlashingSignature
        self.unbondingSlashingTransaction = unbondingSlashingTransaction
        self.stakerUnbondingSlashingSignature = stakerUnbondingSlashingSignature
        self.paramsVersion = paramsVersion
        self.status = .pending
        self.covenantSignatures = []
        self.inclusion = nil
        self.createdHeight = createdHeight
        self.unbondingSpend = nil
        self.unbondingInclusion = nil
    }

    /// As the Bitcoin layer's input to ``StakingValidation``, with the given covenant sets;
    /// `nil` only if stored bytes are damaged.
    func transactions(covenantSignatures sets: [CovenantSignatureSet]) -> DelegationTransactions? {
        guard let staker = try? Schnorr.PublicKey(rawRepresentation: stakerKey),
              let fp = try? Schnorr.PublicKey(rawRepresentation: finalityProviderKey),
              let value = try? Amount(sats: Int64(clamping: stakingValue)),
              let staking = try? IshtarBitcoin.Transaction(serialized: stakingTransaction),
              let unbonding = try? IshtarBitcoin.Transaction(serialized: unbondingTransaction),
              let slashing = try? IshtarBitcoin.Transaction(serialized: slashingTransaction),
              let unbondingSlashing = try? IshtarBitcoin.Transaction(serialized: unbondingSlashingTransaction),
              let s1 = try? Schnorr.Signature(rawRepresentation: stakerSlashingSignature),
              let s2 = try? Schnorr.Signature(rawRepresentation: stakerUnbondingSlashingSignature)
        else { return nil }
        return DelegationTransactions(
            stakerKey: staker, finalityProviderKeys: [fp], stakingTime: stakingTime, stakingValue: value,
            stakingTransaction: staking, stakingOutputIndex: stakingOutputIndex, unbondingTransaction: unbonding,
            slashingTransaction: slashing, unbondingSlashingTransaction: unbondingSlashing,
            stakerSlashingSignature: s1, stakerUnbondingSlashingSignature: s2, covenantSignatures: sets)
    }

    func json(txid: Data) -> [String: Any] {
        var out: [String: Any] = [
            "staking_txid": Data(txid.reversed()).hexString, "owner": owner.hexString, "staker_btc_pk": stakerKey.hexString,
            "fp_btc_pk": finalityProviderKey.hexString, "consumer_chain_id": consumerChainID,
            "staking_time": Int(stakingTime), "staking_value_sat": String(stakingValue),
            "staking_output_index": Int(stakingOutputIndex), "staking_tx": stakingTransaction.hexString,
            "unbonding_tx": unbondingTransaction.hexString, "slashing_tx": slashingTransaction.hexString,
            "staker_slashing_sig": stakerSlashingSignature.hexString,
            "unbonding_slashing_tx": unbondingSlashingTransaction.hexString,
            "staker_unbonding_slashing_sig": stakerUnbondingSlashingSignature.hexString,
            "params_version": Int(paramsVersion), "status": status.description,
            "covenant_sigs": covenantSignatures.map(\.json), "created_height": String(createdHeight),
        ]
        if let inclusion {
            out["inclusion_block_hash"] = Data(inclusion.blockHash.reversed()).hexString
            out["start_height"] = String(inclusion.height)
            out["end_height"] = String(inclusion.height + UInt64(stakingTime))
        }
        if let unbondingSpend { out["unbonding_spend_tx"] = unbondingSpend.hexString }
        if let unbondingInclusion {
            out["unbonding_block_hash"] = Data(unbondingInclusion.blockHash.reversed()).hexString
            out["unbonding_height"] = String(unbondingInclusion.height)
        }
        return out
    }
}

// MARK: - Voting power table

/// One row of a voting-power table.
public struct VotingPowerEntry: Hashable, Sendable {
    /// The provider's x-only key.
    public var fpKey: Data
    /// Its power: the sats of its ACTIVE delegations.
    public var power: UInt64

    /// From its parts.
    public init(fpKey: Data, power: UInt64) {
        self.fpKey = fpKey
        self.power = power
    }
}

/// The voting-power table in force from `height` on (until the next stored table), with a
/// link to the previous stored table so a lookup at an older height walks back.
struct StoredPowerTable: Hashable, Sendable, BinaryCodable {
    /// The height of the previously stored table (0: none).
    var previousHeight: UInt64
    /// Rows, by power descending then key ascending.
    var entries: [VotingPowerEntry]

    /// `u64 previousHeight ‖ u32 n ‖ n × (key(32) ‖ u64 power)`.
    func encode(to w: inout BinaryWriter) {
        w.u64(previousHeight)
        w.count(entries.count)
        for e in entries {
            w.fixed(e.fpKey)
            w.u64(e.power)
        }
    }

    init(previousHeight: UInt64, entries: [VotingPowerEntry]) {
        self.previousHeight = previousHeight
        self.entries = entries
    }

    init(from r: inout BinaryReader) throws(CodecError) {
        previousHeight = try r.u64("previous height")
        let n = try r.count("power entries", minElementSize: 40)
        var out: [VotingPowerEntry] = []
        out.reserveCapacity(n)
        for _ in 0..<n { out.append(VotingPowerEntry(fpKey: try r.fixed(32, "fp key"), power: try r.u64("power"))) }
        entries = out
    }
}
