import Foundation
import IshtarCrypto

/// The three leaves and the taproot output of a staking output (PROTOCOL §1):
/// root = TapBranch(TapBranch(timelock, unbonding), slashing) under the unspendable key H.
public struct StakingScripts: Hashable, Sendable {
    /// The staker's x-only key.
    public let stakerKey: Schnorr.PublicKey
    /// The finality providers the stake is delegated to (the chain accepts exactly one).
    public let finalityProviderKeys: [Schnorr.PublicKey]
    /// The covenant committee.
    public let covenantKeys: [Schnorr.PublicKey]
    /// Covenant signatures required on the unbonding and slashing leaves.
    public let covenantQuorum: Int
    /// The staking timelock in blocks.
    public let stakingTime: UInt16

    /// `<staker> OP_CHECKSIGVERIFY <stakingTime> OP_CHECKSEQUENCEVERIFY`.
    public let timelockLeaf: TapLeaf
    /// `<staker> OP_CHECKSIGVERIFY` ‖ covenant multisig (quorum, last).
    public let unbondingLeaf: TapLeaf
    /// `<staker> OP_CHECKSIGVERIFY` ‖ provider multisig (1, not last) ‖ covenant multisig (quorum, last).
    public let slashingLeaf: TapLeaf
    /// P2TR(H, TapBranch(TapBranch(timelock, unbonding), slashing)).
    public let output: TaprootOutput

    /// Builds the leaves and output; keys must be distinct, at least one provider, 1 ≤ quorum ≤
    /// covenant count, staking time ≥ 1.
    public init(
        stakerKey: Schnorr.PublicKey, finalityProviderKeys: [Schnorr.PublicKey], covenantKeys: [Schnorr.PublicKey],
        covenantQuorum: Int, stakingTime: UInt16
    ) throws(StakingError) {
        try StakingScripts.checkKeys(
            stakerKey: stakerKey, finalityProviderKeys: finalityProviderKeys, covenantKeys: covenantKeys,
            covenantQuorum: covenantQuorum)
        self.stakerKey = stakerKey
        self.finalityProviderKeys = finalityProviderKeys
        self.covenantKeys = covenantKeys
        self.covenantQuorum = covenantQuorum
        self.stakingTime = stakingTime
        timelockLeaf = TapLeaf(script: try StakingScripts.timelockScript(stakerKey: stakerKey, blocks: stakingTime))
        unbondingLeaf = TapLeaf(
            script: try StakingScripts.unbondingScript(
                stakerKey: stakerKey, covenantKeys: covenantKeys, covenantQuorum: covenantQuorum))
        slashingLeaf = TapLeaf(
            script: try StakingScripts.slashingScript(
                stakerKey: stakerKey, finalityProviderKeys: finalityProviderKeys, covenantKeys: covenantKeys,
                covenantQuorum: covenantQuorum))
        output = try StakingScripts.taprootOutput(
            .branch(.branch(.leaf(timelockLeaf), .leaf(unbondingLeaf)), .leaf(slashingLeaf)))
    }

    /// The staking output's script, `OP_1 <output key>`.
    public var pkScript: Script { output.scriptPubKey }

    /// The staking address on `network`.
    public func address(network: Network) -> SegwitAddress { output.address(network: network) }

    // MARK: Leaf scripts

    /// `<key> OP_CHECKSIGVERIFY <blocks> OP_CHECKSEQUENCEVERIFY`, the number pushed minimally.
    public static func timelockScript(stakerKey: Schnorr.PublicKey, blocks: UInt16) throws(StakingError) -> Script {
        guard blocks >= 1 else { throw .invalidTimelock(blocks: blocks) }
        return [.push(stakerKey.rawRepresentation), .op(.checkSigVerify), .number(Int64(blocks)), .op(.checkSequenceVerify)]
    }

    /// `<staker> OP_CHECKSIGVERIFY` ‖ covenant multisig (threshold = quorum, last).
    public static func unbondingScript(
        stakerKey: Schnorr.PublicKey, covenantKeys: [Schnorr.PublicKey], covenantQuorum: Int
    ) throws(StakingError) -> Script {
        let covenant = try multisig(keys: covenantKeys, threshold: covenantQuorum, last: true)
        return Script([.push(stakerKey.rawRepresentation), .op(.checkSigVerify)]) + covenant
    }

    /// `<staker> OP_CHECKSIGVERIFY` ‖ provider multisig (threshold 1, not last) ‖ covenant
    /// multisig (threshold = quorum, last).
    public static func slashingScript(
        stakerKey: Schnorr.PublicKey, finalityProviderKeys: [Schnorr.PublicKey], covenantKeys: [Schnorr.PublicKey],
        covenantQuorum: Int
    ) throws(StakingError) -> Script {
        guard !finalityProviderKeys.isEmpty else { throw .noFinalityProviderKeys }
        let providers = try multisig(keys: finalityProviderKeys, threshold: 1, last: false)
        let covenant = try multisig(keys: covenantKeys, threshold: covenantQuorum, last: true)
        return Script([.push(stakerKey.rawRepresentation), .op(.checkSigVerify)]) + providers + covenant
    }

    /// Keys sorted ascending by their 32 bytes, the order every staking multisig lists them in.
    public static func sorted(_ keys: [Schnorr.PublicKey]) -> [Schnorr.PublicKey] {
        keys.sorted { $0.rawRepresentation.lexicographicallyPrecedes($1.rawRepresentation) }
    }

    static func multisig(keys: [Schnorr.PublicKey], threshold: Int, last: Bool) throws(StakingError) -> Script {
        do {
            return try Script.multisig(keys: keys, threshold: threshold, last: last)
        } catch .duplicateKey {
            // Name the key: the plain script error does not.
            try StakingParameters.requireDistinct(keys)
            throw .invalidParameters(reason: "duplicate multisig key")
        } catch {
            throw .invalidCovenantQuorum(quorum: threshold, keyCount: keys.count)
        }
    }

    /// The §1 key rules: all keys distinct, at least one provider, a usable quorum.
    static func checkKeys(
        stakerKey: Schnorr.PublicKey, finalityProviderKeys: [Schnorr.PublicKey], covenantKeys: [Schnorr.PublicKey],
        covenantQuorum: Int
    ) throws(StakingError) {
        guard !finalityProviderKeys.isEmpty else { throw .noFinalityProviderKeys }
        try StakingParameters.requireDistinct([stakerKey] + finalityProviderKeys + covenantKeys)
        guard covenantQuorum >= 1, covenantQuorum <= covenantKeys.count else {
            throw .invalidCovenantQuorum(quorum: covenantQuorum, keyCount: covenantKeys.count)
        }
    }

    static func taprootOutput(_ tree: TapTree) throws(StakingError) -> TaprootOutput {
        do {
            return try TaprootOutput(internalKey: Taproot.unspendableInternalKey, tree: tree)
        } catch {
            throw .taproot(error)
        }
    }
}

/// The unbonding output (PROTOCOL §2): P2TR(H, TapBranch(timelock(unbondingTime), slashing)),
/// both leaves at depth 1, the slashing leaf identical to the staking output's.
public struct UnbondingScripts: Hashable, Sendable {
    /// `<staker> OP_CHECKSIGVERIFY <unbondingTime> OP_CHECKSEQUENCEVERIFY`.
    public let timelockLeaf: TapLeaf
    /// The same slashing leaf as the staking output's.
    public let slashingLeaf: TapLeaf
    /// The taproot output.
    public let output: TaprootOutput

    /// The unbonding output for the staking scripts' keys and `unbondingTime` blocks.
    public init(staking: StakingScripts, unbondingTime: UInt16) throws(StakingError) {
        timelockLeaf = TapLeaf(script: try StakingScripts.timelockScript(stakerKey: staking.stakerKey, blocks: unbondingTime))
        slashingLeaf = staking.slashingLeaf
        output = try StakingScripts.taprootOutput(.branch(.leaf(timelockLeaf), .leaf(slashingLeaf)))
    }

    /// The unbonding output's script.
    public var pkScript: Script { output.scriptPubKey }
}

/// The change output of a slashing transaction (PROTOCOL §2): P2TR(H, single leaf
/// `<staker> OP_CHECKSIGVERIFY <unbondingTime> OP_CSV`), spendable by the staker after the
/// unbonding time.
public struct SlashingChangeScripts: Hashable, Sendable {
    /// The only leaf.
    public let timelockLeaf: TapLeaf
    /// The taproot output.
    public let output: TaprootOutput

    /// The change output of `stakerKey` locked for `unbondingTime` blocks.
    public init(stakerKey: Schnorr.PublicKey, unbondingTime: UInt16) throws(StakingError) {
        timelockLeaf = TapLeaf(script: try StakingScripts.timelockScript(stakerKey: stakerKey, blocks: unbondingTime))
        output = try StakingScripts.taprootOutput(.leaf(timelockLeaf))
    }

    /// The change output's script.
    public var pkScript: Script { output.scriptPubKey }
}
