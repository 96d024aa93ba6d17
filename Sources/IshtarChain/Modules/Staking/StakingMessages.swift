import Foundation
import IshtarBitcoin
import IshtarCrypto

// Payload layouts use the frame's codec: integers big-endian, `bytes`/`str` u32-length-
// prefixed, `opt(x)` = presence byte 0/1 then x. Keys are 32-byte x-only; txids and block
// hashes are 32 bytes in Bitcoin's internal byte order; Bitcoin transactions are their
// standard serialization (witness allowed).

private func decodeBitcoinTransaction(_ r: inout BinaryReader, _ field: String) throws(CodecError) -> IshtarBitcoin.Transaction {
    let raw = try r.bytes(field, limit: StakingModule.maxBitcoinTransactionBytes)
    do {
        return try IshtarBitcoin.Transaction(serialized: raw)
    } catch {
        throw .nonCanonical(field: field, reason: "not a Bitcoin transaction: \(error)")
    }
}

/// A Merkle proof that a Bitcoin transaction is in the block with `blockHash`, pinned to the
/// depth of the block's tree by the block's coinbase and its path (``PinnedInclusionProof``).
/// Layout: `blockHash(32) ‖ u32 index ‖ bytes siblings (32 × depth, ≤ 32 levels) ‖
/// bytes coinbase (its serialization without witness) ‖ bytes coinbase siblings (32 × depth)`.
public struct BTCInclusionProofPayload: Hashable, Sendable, BinaryCodable {
    /// Largest coinbase accepted, bytes without witness (a block's stripped size is at most
    /// 1,000,000 bytes).
    public static let maxCoinbaseBytes = 1_000_000
    /// The block's hash, internal byte order.
    public var blockHash: Data
    /// The transaction's path and the coinbase's.
    public var proof: PinnedInclusionProof

    /// From its parts.
    public init(blockHash: Data, proof: PinnedInclusionProof) {
        self.blockHash = blockHash
        self.proof = proof
    }

    /// See the type's layout.
    public func encode(to w: inout BinaryWriter) {
        w.fixed(blockHash)
        w.u32(proof.proof.index)
        w.bytes(proof.proof.serializedSiblings)
        w.bytes(proof.coinbase.serialized(includingWitness: false))
        w.bytes(proof.coinbaseProof.serializedSiblings)
    }

    /// Inverse of ``encode(to:)``; the coinbase must be in its canonical serialization
    /// without witness.
    public init(from r: inout BinaryReader) throws(CodecError) {
        blockHash = try r.fixed(32, "block hash")
        let index = try r.u32("proof index")
        let siblings = try r.bytes("proof siblings", limit: 32 * 32)
        let rawCoinbase = try r.bytes("coinbase", limit: Self.maxCoinbaseBytes)
        let coinbase: IshtarBitcoin.Transaction
        do {
            coinbase = try IshtarBitcoin.Transaction(serialized: rawCoinbase)
        } catch {
            throw .nonCanonical(field: "coinbase", reason: "not a Bitcoin transaction: \(error)")
        }
        guard coinbase.serialized(includingWitness: false) == rawCoinbase else {
            throw .nonCanonical(field: "coinbase", reason: "not the canonical serialization without witness")
        }
        let coinbaseSiblings = try r.bytes("coinbase siblings", limit: 32 * 32)
        do {
            proof = try PinnedInclusionProof(proof: TransactionInclusionProof(index: index, serializedSiblings: siblings),
                                             coinbase: coinbase,
                                             coinbaseProof: TransactionInclusionProof(index: 0, serializedSiblings: coinbaseSiblings))
        } catch {
            throw .nonCanonical(field: "inclusion proof", reason: "\(error)")
        }
    }
}

/// `staking/CreateFinalityProvider`.
/// Layout: `btcKey(32) ‖ pop(64) ‖ description ‖ u64 commission (10⁻¹⁸ units) ‖ str consumerChainID`,
/// description = `str moniker(≤70) ‖ str identity(≤3000) ‖ str website(≤140) ‖ str securityContact(≤140) ‖ str details(≤280)`.
/// `pop` = BIP-340 signature by `btcKey` over ``StakingModule/proofOfPossessionDigest(chainID:account:)``.
public struct CreateFinalityProvider: Hashable, Sendable, BinaryCodable {
    /// The message type.
    public static let type = "staking/CreateFinalityProvider"
    /// x-only key.
    public var btcKey: Data
    /// Proof of possession of `btcKey`, bound to the chain and the sender.
    public var proofOfPossession: Data
    /// Description.
    public var description: FinalityProviderDescription
    /// Commission (≥ the minimum, ≤ 1).
    public var commission: Commission
    /// The chain it serves: the control plane's own chain id, or a consumer chain's.
    public var consumerChainID: String

    /// From its parts.
    public init(btcKey: Data, proofOfPossession: Data, description: FinalityProviderDescription, commission: Commission,
                consumerChainID: String) {
        self.btcKey = btcKey
        self.proofOfPossession = proofOfPossession
        self.description = description
        self.commission = commission
        self.consumerChainID = consumerChainID
    }

    /// See the type's layout.
    public func encode(to w: inout BinaryWriter) {
        w.fixed(btcKey)
        w.fixed(proofOfPossession)
        description.encode(to: &w)
        w.u64(commission.units)
        w.string(consumerChainID)
    }

    /// Inverse of ``encode(to:)``.
    public init(from r: inout BinaryReader) throws(CodecError) {
        btcKey = try r.fixed(32, "btc key")
        proofOfPossession = try r.fixed(64, "proof of possession")
        description = try FinalityProviderDescription(from: &r)
        commission = Commission(units: try r.u64("commission"))
        consumerChainID = try r.string("consumer chain id", limit: StakingModule.maxChainIDBytes)
    }

    /// As a transaction message.
    public var message: Message { Message(type: Self.type, payload: encoded) }
}

/// `staking/EditFinalityProvider` (only by the registering account): replaces the
/// description and commission. Layout: `btcKey(32) ‖ description ‖ u64 commission`.
public struct EditFinalityProvider: Hashable, Sendable, BinaryCodable {
    /// The message type.
    public static let type = "staking/EditFinalityProvider"
    /// The provider's key.
    public var btcKey: Data
    /// New description.
    public var description: FinalityProviderDescription
    /// New commission.
    public var commission: Commission

    /// From its parts.
    public init(btcKey: Data, description: FinalityProviderDescription, commission: Commission) {
        self.btcKey = btcKey
        self.description = description
        self.commission = commission
    }

    /// See the type's layout.
    public func encode(to w: inout BinaryWriter) {
        w.fixed(btcKey)
        description.encode(to: &w)
        w.u64(commission.units)
    }

    /// Inverse of ``encode(to:)``.
    public init(from r: inout BinaryReader) throws(CodecError) {
        btcKey = try r.fixed(32, "btc key")
        description = try FinalityProviderDescription(from: &r)
        commission = Commission(units: try r.u64("commission"))
    }

    /// As a transaction message.
    public var message: Message { Message(type: Self.type, payload: encoded) }
}

/// `staking/CreateBTCDelegation`. Layout:
/// `stakerKey(32) ‖ stakerPoP(64) ‖ u32 n ‖ n × fpKey(32) ‖ bytes stakingTx ‖ u32 outputIndex ‖
/// u16 stakingTime ‖ u64 stakingValue ‖ bytes unbondingTx ‖ u16 unbondingTime ‖ u64 unbondingValue ‖
/// bytes slashingTx ‖ sig(64) ‖ bytes unbondingSlashingTx ‖ sig(64) ‖ opt(BTCInclusionProofPayload)`.
public struct CreateBTCDelegation: Hashable, Sendable, BinaryCodable {
    /// The message type.
    public static let type = "staking/CreateBTCDelegation"
    /// Staker's x-only key.
    public var stakerKey: Data
    /// Staker's proof of possession (same format as a provider's).
    public var stakerProofOfPossession: Data
    /// Finality-provider keys (the chain accepts exactly one).
    public var finalityProviderKeys: [Data]
    /// Staking transaction.
    public var stakingTransaction: IshtarBitcoin.Transaction
    /// Staking output index.
    public var stakingOutputIndex: UInt32
    /// Staking time, BTC blocks.
    public var stakingTime: UInt16
    /// Staking value, sats.
    public var stakingValue: UInt64
    /// Unbonding transaction (unsigned).
    public var unbondingTransaction: IshtarBitcoin.Transaction
    /// Unbonding time (must equal the parameter).
    public var unbondingTime: UInt16
    /// Unbonding value (must equal the unbonding output).
    public var unbondingValue: UInt64
    /// Slashing transaction of the staking output.
    public var slashingTransaction: IshtarBitcoin.Transaction
    /// Staker's signature on it.
    public var stakerSlashingSignature: Data
    /// Slashing transaction of the unbonding output.
    public var unbondingSlashingTransaction: IshtarBitcoin.Transaction
    /// Staker's signature on it.
    public var stakerUnbondingSlashingSignature: Data
    /// Optional inclusion proof of the staking transaction.
    public var inclusionProof: BTCInclusionProofPayload?

    /// From its parts.
    public init(stakerKey: Data, stakerProofOfPossession: Data, finalityProviderKeys: [Data],
                stakingTransaction: IshtarBitcoin.Transaction, stakingOutputIndex: UInt32, stakingTime: UInt16,
                stakingValue: UInt64, unbondingTransaction: IshtarBitcoin.Transaction, unbondingTime: UInt16,
                unbondingValue: UInt64, slashingTransaction: IshtarBitcoin.Transaction, stakerSlashingSignature: Data,
                unbondingSlashingTransaction: IshtarBitcoin.Transaction, stakerUnbondingSlashingSignature: Data,
                inclusionProof: BTCInclusionProofPayload? = nil) {
        self.stakerKey = stakerKey
        self.stakerProofOfPossession = stakerProofOfPossession
        self.finalityProviderKeys = finalityProviderKeys
        self.stakingTransaction = stakingTransaction
        self.stakingOutputIndex = stakingOutputIndex
        self.stakingTime = stakingTime
        self.stakingValue = stakingValue
        self.unbondingTransaction = unbondingTransaction
        self.unbondingTime = unbondingTime
        self.unbondingValue = unbondingValue
        self.slashingTransaction = slashingTransaction
        self.stakerSlashingSignature = stakerSlashingSignature
        self.unbondingSlashingTransaction = unbondingSlashingTransaction
        self.stakerUnbondingSlashingSignature = stakerUnbondingSlashingSignature
        self.inclusionProof = inclusionProof
    }

    /// See the type's layout.
    public func encode(to w: inout BinaryWriter) {
        w.fixed(stakerKey)
        w.fixed(stakerProofOfPossession)
        w.count(finalityProviderKeys.count)
        for k in finalityProviderKeys { w.fixed(k) }
        w.bytes(stakingTransaction.serialized())
        w.u32(stakingOutputIndex)
        w.u16(stakingTime)
        w.u64(stakingValue)
        w.bytes(unbondingTransaction.serialized())
        w.u16(unbondingTime)
        w.u64(unbondingValue)
        w.bytes(slashingTransaction.serialized())
        w.fixed(stakerSlashingSignature)
        w.bytes(unbondingSlashingTransaction.serialized())
        w.fixed(stakerUnbondingSlashingSignature)
        w.bool(inclusionProof != nil)
        inclusionProof?.encode(to: &w)
    }

    /// Inverse of ``encode(to:)``.
    public init(from r: inout BinaryReader) throws(CodecError) {
        stakerKey = try r.fixed(32, "staker key")
        stakerProofOfPossession = try r.fixed(64, "staker proof of possession")
        let n = try r.count("finality provider keys", minElementSize: 32, limit: 16)
        var keys: [Data] = []
        for _ in 0..<n { keys.append(try r.fixed(32, "finality provider key")) }
        finalityProviderKeys = keys
        stakingTransaction = try decodeBitcoinTransaction(&r, "staking transaction")
        stakingOutputIndex = try r.u32("staking output index")
        stakingTime = try r.u16("staking time")
        stakingValue = try r.u64("staking value")
        unbondingTransaction = try decodeBitcoinTransaction(&r, "unbonding transaction")
        unbondingTime = try r.u16("unbonding time")
        unbondingValue = try r.u64("unbonding value")
        slashingTransaction = try decodeBitcoinTransaction(&r, "slashing transaction")
        stakerSlashingSignature = try r.fixed(64, "staker slashing signature")
        unbondingSlashingTransaction = try decodeBitcoinTransaction(&r, "unbonding slashing transaction")
        stakerUnbondingSlashingSignature = try r.fixed(64, "staker unbonding slashing signature")
        inclusionProof = try r.presence("inclusion proof") ? try BTCInclusionProofPayload(from: &r) : nil
    }

    /// As a transaction message.
    public var message: Message { Message(type: Self.type, payload: encoded) }
}

/// `staking/AddCovenantSigs`: one covenant member's signatures on one delegation. Layout:
/// `stakingTxid(32) ‖ covenantKey(32) ‖ unbondingSig(64) ‖ u32 n ‖ n × (fpKey(32) ‖ adaptor(65)) ‖
/// u32 m ‖ m × (fpKey(32) ‖ adaptor(65))` — slashing then unbonding-slashing adaptor
/// signatures, each list strictly ascending by provider key.
public struct AddCovenantSigs: Hashable, Sendable, BinaryCodable {
    /// The message type.
    public static let type = "staking/AddCovenantSigs"
    /// The delegation's staking txid (internal order).
    public var stakingTxid: Data
    /// The covenant member's signatures.
    public var signatures: StoredCovenantSignatures

    /// From its parts.
    public init(stakingTxid: Data, signatures: StoredCovenantSignatures) {
        self.stakingTxid = stakingTxid
        self.signatures = signatures
    }

    /// From the Bitcoin layer's signature set (e.g. ``CovenantSigner/sign(delegation:parameters:covenantKey:)``).
    public init(stakingTxid: Data, set: CovenantSignatureSet) {
        func list(_ d: [Schnorr.PublicKey: AdaptorSignature]) -> [ProviderAdaptorSignature] {
            d.map { ProviderAdaptorSignature(finalityProviderKey: $0.key.rawRepresentation, adaptorSignature: $0.value.rawRepresentation) }
                .sorted { $0.finalityProviderKey.lexicographicallyPrecedes($1.finalityProviderKey) }
        }
        self.init(stakingTxid: stakingTxid, signatures: StoredCovenantSignatures(
            covenantKey: set.covenantKey.rawRepresentation, unbondingSignature: set.unbondingSignature.rawRepresentation,
            slashingAdaptors: list(set.slashingAdaptorSignatures),
            unbondingSlashingAdaptors: list(set.unbondingSlashingAdaptorSignatures)))
    }

    /// See the type's layout.
    public func encode(to w: inout BinaryWriter) {
        w.fixed(stakingTxid)
        signatures.encode(to: &w)
    }

    /// Inverse of ``encode(to:)``.
    public init(from r: inout BinaryReader) throws(CodecError) {
        stakingTxid = try r.fixed(32, "staking txid")
        signatures = try StoredCovenantSignatures(from: &r)
    }

    /// As a transaction message.
    public var message: Message { Message(type: Self.type, payload: encoded) }
}

/// `staking/AddBTCDelegationInclusionProof`. Layout: `stakingTxid(32) ‖ BTCInclusionProofPayload`.
public struct AddBTCDelegationInclusionProof: Hashable, Sendable, BinaryCodable {
    /// The message type.
    public static let type = "staking/AddBTCDelegationInclusionProof"
    /// The delegation's staking txid (internal order).
    public var stakingTxid: Data
    /// Where the staking transaction is included.
    public var proof: BTCInclusionProofPayload

    /// From its parts.
    public init(stakingTxid: Data, proof: BTCInclusionProofPayload) {
        self.stakingTxid = stakingTxid
        self.proof = proof
    }

    /// See the type's layout.
    public func encode(to w: inout BinaryWriter) {
        w.fixed(stakingTxid)
        proof.encode(to: &w)
    }

    /// Inverse of ``encode(to:)``.
    public init(from r: inout BinaryReader) throws(CodecError) {
        stakingTxid = try r.fixed(32, "staking txid")
        proof = try BTCInclusionProofPayload(from: &r)
    }

    /// As a transaction message.
    public var message: Message { Message(type: Self.type, payload: encoded) }
}

/// `staking/BTCUndelegate`: reports the delegation's unbonding transaction included on
/// Bitcoin. Layout: `stakingTxid(32) ‖ bytes unbondingTx ‖ BTCInclusionProofPayload`.
public struct BTCUndelegate: Hashable, Sendable, BinaryCodable {
    /// The message type.
    public static let type = "staking/BTCUndelegate"
    /// The delegation's staking txid (internal order).
    public var stakingTxid: Data
    /// The unbonding transaction as mined (with witness).
    public var unbondingTransaction: IshtarBitcoin.Transaction
    /// Where it is included.
    public var proof: BTCInclusionProofPayload

    /// From its parts.
    public init(stakingTxid: Data, unbondingTransaction: IshtarBitcoin.Transaction, proof: BTCInclusionProofPayload) {
        self.stakingTxid = stakingTxid
        self.unbondingTransaction = unbondingTransaction
        self.proof = proof
    }

    /// See the type's layout.
    public func encode(to w: inout BinaryWriter) {
        w.fixed(stakingTxid)
        w.bytes(unbondingTransaction.serialized())
        proof.encode(to: &w)
    }

    /// Inverse of ``encode(to:)``.
    public init(from r: inout BinaryReader) throws(CodecError) {
        stakingTxid = try r.fixed(32, "staking txid")
        unbondingTransaction = try decodeBitcoinTransaction(&r, "unbonding transaction")
        proof = try BTCInclusionProofPayload(from: &r)
    }

    /// As a transaction message.
    public var message: Message { Message(type: Self.type, payload: encoded) }
}
