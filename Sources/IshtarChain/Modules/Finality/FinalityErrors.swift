import Foundation

/// Rules of the finality module (codespace `"finality"`).
public enum FinalityModuleError: ChainRuleError, Equatable {
    /// The payload does not decode canonically.
    case malformedMessage(type: String, CodecError)
    /// No such message type in this module.
    case unknownMessage(String)
    /// A key is not a valid x-only public key.
    case invalidKey(field: String)
    /// The chain id is empty or too long.
    case invalidChainID(String)
    /// No finality provider has this key.
    case unknownFinalityProvider(Data)
    /// The provider is registered for another chain.
    case wrongChain(key: Data, registered: String, requested: String)
    /// The provider is slashed (terminal).
    case finalityProviderSlashed(Data)
    /// The provider is jailed.
    case finalityProviderJailed(Data)
    /// A commitment with fewer values than the minimum.
    case tooFewPublicRandomness(count: UInt64, minimum: UInt64)
    /// The commitment's heights reach 2^64 − 1: its last height must be below it, so the
    /// height after it (where a tally cursor moves next) still fits in 64 bits.
    case commitmentRangeOverflow(start: UInt64, count: UInt64)
    /// A commitment for a consumer chain genesis does not list, on a chain whose genesis
    /// refuses unlisted consumer chains (`allow_unlisted_consumer_chains: false`, the default).
    case unlistedConsumerChain(String)
    /// The commitment does not start after the provider's latest commitment for the chain.
    case overlappingCommitment(start: UInt64, previousEnd: UInt64)
    /// The commitment starts too far ahead.
    case startHeightTooFarAhead(start: UInt64, limit: UInt64)
    /// The BIP-340 signature over the commitment does not verify.
    case invalidCommitmentSignature
    /// No commitment of the provider covers the height.
    case noRandomnessCommitted(key: Data, height: UInt64)
    /// The inclusion proof does not prove the public randomness in the commitment.
    case invalidInclusionProof(String)
    /// The EOTS signature does not verify.
    case invalidFinalitySignature
    /// The control plane has not committed a block at that height yet.
    case blockNotCommitted(height: UInt64)
    /// The vote's block hash is not the control plane's block at that height.
    case blockHashMismatch(height: UInt64, expected: Data, actual: Data)
    /// The provider already voted for this block.
    case duplicateVote(key: Data, height: UInt64)
    /// The provider is not in the active set at that height.
    case finalityProviderNotActive(key: Data, height: UInt64)
    /// Only the provider's owner account may send this.
    case notFinalityProviderOwner(key: Data, sender: Data)
    /// Unjail of a provider that is not jailed.
    case finalityProviderNotJailed(Data)
    /// Unjail before the jail time has passed.
    case jailNotExpired(key: Data, until: UInt64, now: UInt64)
    /// The module was not initialized at genesis.
    case notConfigured

    /// `"finality"`.
    public static let codespace = "finality"

    /// Stable code per case.
    public var code: UInt32 {
        switch self {
        case .malformedMessage: return 2
        case .unknownMessage: return 3
        case .invalidKey: return 4
        case .invalidChainID: return 5
        case .unknownFinalityProvider: return 6
        case .wrongChain: return 7
        case .finalityProviderSlashed: return 8
        case .finalityProviderJailed: return 9
        case .tooFewPublicRandomness: return 10
        case .commitmentRangeOverflow: return 11
        case .overlappingCommitment: return 12
        case .startHeightTooFarAhead: return 13
        case .invalidCommitmentSignature: return 14
        case .noRandomnessCommitted: return 15
        case .invalidInclusionProof: return 16
        case .invalidFinalitySignature: return 17
        case .blockNotCommitted: return 18
        case .blockHashMismatch: return 19
        case .duplicateVote: return 20
        case .finalityProviderNotActive: return 21
        case .notFinalityProviderOwner: return 22
        case .finalityProviderNotJailed: return 23
        case .jailNotExpired: return 24
        case .notConfigured: return 25
        case .unlistedConsumerChain: return 26
        }
    }

    /// Stable rule name per case.
    public var rule: String {
        switch self {
        case .malformedMessage: return "malformed-message"
        case .unknownMessage: return "unknown-message"
        case .invalidKey: return "invalid-key"
        case .invalidChainID: return "invalid-chain-id"
        case .unknownFinalityProvider: return "unknown-finality-provider"
        case .wrongChain: return "wrong-chain"
        case .finalityProviderSlashed: return "finality-provider-slashed"
        case .finalityProviderJailed: return "finality-provider-jailed"
        case .tooFewPublicRandomness: return "too-few-public-randomness"
        case .commitmentRangeOverflow: return "commitment-range-overflow"
        case .overlappingCommitment: return "overlapping-commitment"
        case .startHeightTooFarAhead: return "start-height-too-far-ahead"
        case .unlistedConsumerChain: return "unlisted-consumer-chain"
        case .invalidCommitmentSignature: return "invalid-commitment-signature"
        case .noRandomnessCommitted: return "no-randomness-committed"
        case .invalidInclusionProof: return "invalid-inclusion-proof"
        case .invalidFinalitySignature: return "invalid-finality-signature"
        case .blockNotCommitted: return "block-not-committed"
        case .blockHashMismatch: return "block-hash-mismatch"
        case .duplicateVote: return "duplicate-vote"
        case .finalityProviderNotActive: return "finality-provider-not-active"
        case .notFinalityProviderOwner: return "not-finality-provider-owner"
        case .finalityProviderNotJailed: return "finality-provider-not-jailed"
        case .jailNotExpired: return "jail-not-expired"
        case .notConfigured: return "not-configured"
        }
    }

    /// One line naming the rule and the offending values.
    public var description: String {
        switch self {
        case let .malformedMessage(type, e): return "\(type) payload is malformed: \(e)"
        case let .unknownMessage(t): return "unknown finality message type \(t)"
        case let .invalidKey(field): return "\(field) is not a valid x-only public key"
        case let .invalidChainID(c): return "chain id \"\(c)\" must be 1…\(StakingModule.maxChainIDBytes) bytes"
        case let .unknownFinalityProvider(k): return "no finality provider with key \(k.hexString)"
        case let .wrongChain(k, registered, requested):
            return "finality provider \(k.hexString) serves chain \(registered), not \(requested)"
        case let .finalityProviderSlashed(k): return "finality provider \(k.hexString) is slashed"
        case let .finalityProviderJailed(k): return "finality provider \(k.hexString) is jailed"
        case let .tooFewPublicRandomness(count, minimum):
            return "commitment of \(count) public randomness values is below the minimum \(minimum)"
        case let .commitmentRangeOverflow(start, count): return "commitment start \(start) + count \(count) must not exceed 2^64 − 1"
        case let .overlappingCommitment(start, previousEnd):
            return "commitment starting at \(start) must start after the latest commitment's end \(previousEnd)"
        case let .startHeightTooFarAhead(start, limit): return "commitment start \(start) is beyond the limit \(limit)"
        case let .unlistedConsumerChain(c):
            return "consumer chain \(c) is not listed in genesis (modules.finality.consumer_chains), and this chain refuses unlisted ones (allow_unlisted_consumer_chains is false)"
        case .invalidCommitmentSignature: return "the commitment's BIP-340 signature does not verify under the provider key"
        case let .noRandomnessCommitted(k, h): return "finality provider \(k.hexString) has no randomness committed for height \(h)"
        case let .invalidInclusionProof(why): return "public randomness inclusion proof is invalid: \(why)"
        case .invalidFinalitySignature: return "the EOTS signature does not verify"
        case let .blockNotCommitted(h): return "no block committed at height \(h) yet"
        case let .blockHashMismatch(h, expected, actual):
            return "block hash \(actual.hexString) is not the block at height \(h) (\(expected.hexString))"
        case let .duplicateVote(k, h): return "finality provider \(k.hexString) already voted for this block at height \(h)"
        case let .finalityProviderNotActive(k, h): return "finality provider \(k.hexString) is not active at height \(h)"
        case let .notFinalityProviderOwner(k, sender):
            return "account \(sender.hexString) is not the owner of finality provider \(k.hexString)"
        case let .finalityProviderNotJailed(k): return "finality provider \(k.hexString) is not jailed"
        case let .jailNotExpired(k, until, now):
            return "finality provider \(k.hexString) is jailed until \(until) ms (block time \(now) ms)"
        case .notConfigured: return "the finality module has no parameters (genesis did not initialize it)"
        }
    }
}
