import Foundation
import IshtarBitcoin

/// Rules of the staking module (codespace `"staking"`).
public enum StakingModuleError: ChainRuleError, Equatable {
    /// A message payload does not decode canonically.
    case malformedMessage(type: String, CodecError)
    /// The message type is not one of this module's.
    case unknownMessage(String)
    /// A key field is not a valid BIP-340 x-only public key.
    case invalidKey(field: String)
    /// A proof of possession does not verify: BIP-340 by the key over H_"ishtar/staking/pop"(str chainID ‖ sender).
    case invalidProofOfPossession(field: String)
    /// The description's moniker must not be empty.
    case emptyMoniker
    /// The consumer chain id must be 1…64 bytes.
    case invalidConsumerChainID(String)
    /// The consumer chain is not registered: genesis's finality `consumer_chains` does not
    /// list it and `allow_unlisted_consumer_chains` is false.
    case unlistedConsumerChain(String)
    /// A commission rate must not exceed 1.
    case commissionAboveOne(Commission)
    /// The commission is below the chain's minimum commission.
    case commissionBelowMinimum(commission: Commission, minimum: Commission)
    /// A finality provider with this BTC key is already registered (one registration per key).
    case finalityProviderExists(Data)
    /// No finality provider is registered with this BTC key.
    case unknownFinalityProvider(Data)
    /// Only the account that registered a finality provider may edit it.
    case notFinalityProviderOwner(key: Data, sender: Data)
    /// The finality provider is slashed: it accepts no delegations, no covenant signatures or
    /// inclusion proofs for its pending ones, and cannot be edited, jailed or unjailed.
    case finalityProviderSlashed(Data)
    /// The finality provider is not jailed, so it cannot be unjailed.
    case finalityProviderNotJailed(Data)
    /// The delegation's Bitcoin transactions break a rule of the Bitcoin layer's validation (the reason names it).
    case invalidDelegation(StakingError)
    /// A delegation with this staking txid already exists (delegations are unique by staking txid).
    case duplicateDelegation(txid: String)
    /// No delegation has this staking txid.
    case unknownDelegation(txid: String)
    /// The declared unbonding time differs from the parameters' unbonding time.
    case unbondingTimeMismatch(declared: UInt16, required: UInt16)
    /// The declared unbonding value differs from the unbonding transaction's output.
    case unbondingValueMismatch(declared: UInt64, actual: UInt64)
    /// The key is not a member of the covenant committee of the delegation's parameter version.
    case notCovenantMember(Data)
    /// This covenant member has already signed the delegation (one signature set per key).
    case duplicateCovenantSignature(Data)
    /// The covenant signatures fail the Bitcoin layer's validation (the reason names the rule: EncVerify, BIP-340…).
    case invalidCovenantSignatures(StakingError)
    /// The delegation's state does not allow this message.
    case wrongDelegationStatus(txid: String, status: String, allowed: String)
    /// The staking transaction's inclusion was already proven.
    case inclusionAlreadyProven(txid: String)
    /// The BTC light client has no header with this hash.
    case unknownBTCHeader(String)
    /// The header is not on the BTC light client's main chain.
    case headerNotOnMainChain(String)
    /// The header is not k-deep: depth (tip height − header height) below the confirmation depth.
    case headerNotDeepEnough(hash: String, depth: UInt64, required: UInt64)
    /// The Merkle inclusion proof does not lead from the transaction to the header's Merkle root.
    case invalidInclusionProof(String)
    /// The staking time has (nearly) run out: BTC tip + unbonding time ≥ end height, so it could never be active.
    case stakingTimeElapsed(endHeight: UInt64, tipPlusUnbonding: UInt64)
    /// The reported transaction is not the delegation's unbonding transaction (txids differ).
    case notUnbondingTransaction(expected: String, actual: String)
    /// The staking module's parameters are missing from state (genesis did not configure them).
    case notConfigured
    /// A covenant signature set holds bytes that are not a key, signature or adaptor
    /// signature at all (named by `field`), before any signature check.
    case malformedCovenantSignature(field: String)

    /// `"staking"`.
    public static let codespace = StakingModule.moduleName

    /// Stable code per case.
    public var code: UInt32 {
        switch self {
        case .malformedMessage: return 2
        case .unknownMessage: return 3
        case .invalidKey: return 4
        case .invalidProofOfPossession: return 5
        case .emptyMoniker: return 6
        case .invalidConsumerChainID: return 7
        case .commissionAboveOne: return 8
        case .commissionBelowMinimum: return 9
        case .finalityProviderExists: return 10
        case .unknownFinalityProvider: return 11
        case .notFinalityProviderOwner: return 12
        case .finalityProviderSlashed: return 13
        case .finalityProviderNotJailed: return 14
        case .invalidDelegation: return 15
        case .duplicateDelegation: return 16
        case .unknownDelegation: return 17
        case .unbondingTimeMismatch: return 18
        case .unbondingValueMismatch: return 19
        case .notCovenantMember: return 20
        case .duplicateCovenantSignature: return 21
        case .invalidCovenantSignatures: return 22
        case .wrongDelegationStatus: return 23
        case .inclusionAlreadyProven: return 24
        case .unknownBTCHeader: return 25
        case .headerNotOnMainChain: return 26
        case .headerNotDeepEnough: return 27
        case .invalidInclusionProof: return 28
        case .stakingTimeElapsed: return 29
        case .notUnbondingTransaction: return 30
        case .notConfigured: return 31
        case .malformedCovenantSignature: return 32
        case .unlistedConsumerChain: return 33
        }
    }

    /// Stable rule name per case.
    public var rule: String {
        switch self {
        case .malformedMessage: return "malformed-message"
        case .unknownMessage: return "unknown-message"
        case .invalidKey: return "invalid-key"
        case .invalidProofOfPossession: return "invalid-proof-of-possession"
        case .emptyMoniker: return "empty-moniker"
        case .invalidConsumerChainID: return "invalid-consumer-chain-id"
        case .unlistedConsumerChain: return "unlisted-consumer-chain"
        case .commissionAboveOne: return "commission-above-one"
        case .commissionBelowMinimum: return "commission-below-minimum"
        case .finalityProviderExists: return "finality-provider-exists"
        case .unknownFinalityProvider: return "unknown-finality-provider"
        case .notFinalityProviderOwner: return "not-finality-provider-owner"
        case .finalityProviderSlashed: return "finality-provider-slashed"
        case .finalityProviderNotJailed: return "finality-provider-not-jailed"
        case .invalidDelegation: return "invalid-delegation"
        case .duplicateDelegation: return "duplicate-delegation"
        case .unknownDelegation: return "unknown-delegation"
        case .unbondingTimeMismatch: return "unbonding-time-mismatch"
        case .unbondingValueMismatch: return "unbonding-value-mismatch"
        case .notCovenantMember: return "not-covenant-member"
        case .duplicateCovenantSignature: return "duplicate-covenant-signature"
        case .invalidCovenantSignatures: return "invalid-covenant-signatures"
        case .wrongDelegationStatus: return "wrong-delegation-status"
        case .inclusionAlreadyProven: return "inclusion-already-proven"
        case .unknownBTCHeader: return "unknown-btc-header"
        case .headerNotOnMainChain: return "header-not-on-main-chain"
        case .headerNotDeepEnough: return "header-not-deep-enough"
        case .invalidInclusionProof: return "invalid-inclusion-proof"
        case .stakingTimeElapsed: return "staking-time-elapsed"
        case .notUnbondingTransaction: return "not-unbonding-transaction"
        case .notConfigured: return "not-configured"
        case .malformedCovenantSignature: return "malformed-covenant-signature"
        }
    }

    /// One line naming the rule and the offending values.
    public var description: String {
        switch self {
        case let .malformedMessage(type, e): return "\(type) payload: \(e)"
        case .unknownMessage(let t): return "staking does not handle \(t)"
        case .invalidKey(let f): return "\(f) is not a valid x-only public key"
        case .invalidProofOfPossession(let f): return "\(f) proof of possession does not verify"
        case .emptyMoniker: return "the description's moniker must not be empty"
        case .invalidConsumerChainID(let c):
            return "consumer chain id \"\(c)\" must be 1…\(StakingModule.maxChainIDBytes) bytes of A-Z a-z 0-9 . - _"
        case .unlistedConsumerChain(let c):
            return "consumer chain \(c) is not registered: genesis (modules.finality.consumer_chains) does not list it, and allow_unlisted_consumer_chains is false"
        case .commissionAboveOne(let c): return "commission \(c) exceeds 1"
        case let .commissionBelowMinimum(c, m): return "commission \(c) is below the minimum commission \(m)"
        case .finalityProviderExists(let k): return "finality provider \(k.hexString) is already registered"
        case .unknownFinalityProvider(let k): return "no finality provider is registered with key \(k.hexString)"
        case let .notFinalityProviderOwner(k, s):
            return "account \(s.hexString) did not register finality provider \(k.hexString)"
        case .finalityProviderSlashed(let k): return "finality provider \(k.hexString) is slashed"
        case .finalityProviderNotJailed(let k): return "finality provider \(k.hexString) is not jailed"
        case .invalidDelegation(let e): return "invalid delegation: \(Self.caseName(e)): \(e)"
        case .duplicateDelegation(let t): return "a delegation with staking txid \(t) already exists"
        case .unknownDelegation(let t): return "no delegation with staking txid \(t)"
        case let .unbondingTimeMismatch(d, r): return "declared unbonding time \(d) differs from the parameter \(r)"
        case let .unbondingValueMismatch(d, a):
            return "declared unbonding value \(d) sat differs from the unbonding output's \(a) sat"
        case .notCovenantMember(let k): return "\(k.hexString) is not a covenant committee key of the delegation's parameters"
        case .duplicateCovenantSignature(let k): return "covenant \(k.hexString) has already signed this delegation"
        case .invalidCovenantSignatures(let e): return "invalid covenant signatures: \(Self.caseName(e)): \(e)"
        case let .wrongDelegationStatus(t, s, a): return "delegation \(t) is \(s); this message needs \(a)"
        case .inclusionAlreadyProven(let t): return "inclusion of staking transaction \(t) is already proven"
        case .unknownBTCHeader(let h): return "the BTC light client has no header \(h)"
        case .headerNotOnMainChain(let h): return "BTC header \(h) is not on the light client's main chain"
        case let .headerNotDeepEnough(h, d, r): return "BTC header \(h) is \(d) deep, fewer than the required \(r)"
        case .invalidInclusionProof(let why): return "inclusion proof does not verify: \(why)"
        case let .stakingTimeElapsed(end, tip):
            return "BTC tip + unbonding time (\(tip)) ≥ end height \(end): the staking time has run out"
        case let .notUnbondingTransaction(e, a): return "reported transaction \(a) is not the unbonding transaction \(e)"
        case .notConfigured: return "staking parameters are missing from state"
        case .malformedCovenantSignature(let field): return "covenant signature set: \(field) is malformed"
        }
    }

    /// The Bitcoin-layer rule's case name (e.g. `slashingOutputBelowRate`), so the message
    /// names the rule even for cases whose description is prose.
    static func caseName(_ e: StakingError) -> String {
        switch e {
        case .wrongStakingScript: return "wrongStakingScript"
        case .wrongUnbondingScript: return "wrongUnbondingScript"
        case .noFinalityProviderKeys: return "noFinalityProviderKeys"
        case .amountOverflow: return "amountOverflow"
        default: return Mirror(reflecting: e).children.first?.label ?? "stakingError"
        }
    }
}
