import Foundation
import IshtarBitcoin
import IshtarCrypto

/// The control plane's state machine: the modules every Ishtar node registers after the
/// built-in `consensus` and `accounts`, in hook order. The node, the command line and the
/// tests all take the list from here, so every node of a chain runs the same state machine
/// (a different list or order would give different app hashes).
public enum ControlPlane {
    /// Names of ``modules()``, in order.
    public static var moduleNames: [String] { modules().map(\.name) }

    /// `btclightclient`, `staking`, `checkpoints`, `finality`, in that order: the light client
    /// first (staking reads its depths in the same block), staking before finality (finality
    /// reads the voting-power table staking writes at end-block).
    public static func modules() -> [any Module] {
        [BTCLightClientModule(), StakingModule(), CheckpointsModule(), FinalityModule()]
    }

    /// Genesis `modules` for the control plane: the light client's base, staking's covenant
    /// committee and rules (PROTOCOL §6 defaults otherwise), and each other module's defaults.
    /// Keyed by module name, canonical JSON, ready for ``Genesis/moduleParams``.
    public static func genesisModuleParams(_ options: ControlPlaneGenesisOptions) throws(GenesisError) -> [String: Data] {
        var out: [String: Data] = [:]
        let lc = BTCLightClientParams(network: options.btcNetwork, baseHeader: options.btcBaseHeader,
                                      baseHeight: options.btcBaseHeight)
        out[BTCLightClientModule.moduleName] = lc.jsonData
        var btc = StakingParameters.ishtarDefaults(covenantKeys: options.covenantKeys, covenantQuorum: options.covenantQuorum,
                                                   network: options.btcNetwork)
        if let t = options.minStakingTime { btc.minStakingTime = t }
        if let t = options.unbondingTime { btc.unbondingTime = t }
        do {
            try btc.validated()
        } catch {
            throw .invalidModuleParams(module: StakingModule.moduleName, reason: error.description)
        }
        let staking = StakingGenesis(btcStaking: btc, minCommission: options.minCommission,
                                     maxActiveFinalityProviders: options.maxActiveFinalityProviders,
                                     btcConfirmationDepth: options.btcConfirmationDepth)
        do {
            out[StakingModule.moduleName] = try staking.jsonData()
        } catch {
            throw .invalidModuleParams(module: StakingModule.moduleName, reason: "\(error)")
        }
        let checkpoints = CheckpointsParams(epochLength: options.epochLength,
                                            confirmationDepth: UInt64(options.btcConfirmationDepth),
                                            finalizationTimeout: options.btcFinalizationDepth)
        guard options.epochLength >= 1 else {
            throw .invalidModuleParams(module: CheckpointsModule.moduleName, reason: "epoch_length must be ≥ 1")
        }
        guard options.btcFinalizationDepth > UInt64(options.btcConfirmationDepth) else {
            throw .invalidModuleParams(module: CheckpointsModule.moduleName,
                                       reason: "btc_finalization_timeout (w) must be > btc_confirmation_depth (k)")
        }
        // The checkpoints module's genesis rule, said here with the options' names.
        guard UInt64(btc.unbondingTime) > options.btcFinalizationDepth else {
            throw .invalidModuleParams(module: CheckpointsModule.moduleName,
                                       reason: "btc_finalization_timeout (w, \(options.btcFinalizationDepth)) must be below the unbonding time (\(btc.unbondingTime) blocks): an unbonding stake must stay slashable until its checkpoints are final")
        }
        out[CheckpointsModule.moduleName] = checkpoints.jsonData
        // Written out in full (not `{}`), so an operator sees every value in genesis.json.
        let f = FinalityParams()
        let finality = FinalityGenesis(
            signedBlocksWindow: f.signedBlocksWindow, minSignedPerWindow: f.minSignedPerWindow.description,
            jailDurationMs: f.jailDurationMs, minPubRand: f.minPubRand, maxActiveFinalityProviders: options.maxActiveFinalityProviders ?? f.maxActiveFinalityProviders,
            maxPubRandStartOffset: f.maxPubRandStartOffset, finalitySigTimeout: f.finalitySigTimeout, consumerChains: options.consumerChains,
            allowUnlistedConsumerChains: options.allowUnlistedConsumerChains)
        do {
            out[FinalityModule.moduleName] = try finality.jsonData()
        } catch {
            throw .invalidModuleParams(module: FinalityModule.moduleName, reason: "\(error)")
        }
        return out
    }
}

/// What `ishtar node init` lets an operator choose about the control plane's genesis; every
/// other parameter takes its PROTOCOL §6 default (edit `genesis.json` before the first start
/// to change more).
public struct ControlPlaneGenesisOptions: Sendable, Hashable {
    /// The Bitcoin network the light client follows and stakes live on.
    public var btcNetwork: Network
    /// The light client's trusted base header (nil: the network's genesis header).
    public var btcBaseHeader: BTCBlockHeader?
    /// The base header's height (0 for the genesis header).
    public var btcBaseHeight: UInt64
    /// The covenant committee's x-only keys.
    public var covenantKeys: [Schnorr.PublicKey]
    /// Covenant signatures required.
    public var covenantQuorum: Int
    /// k: confirmations before a staking transaction activates its delegation, and before a
    /// checkpoint is CONFIRMED.
    public var btcConfirmationDepth: UInt32
    /// w: depth at which a checkpoint is FINALIZED.
    public var btcFinalizationDepth: UInt64
    /// Control-plane blocks per epoch (one checkpoint each).
    public var epochLength: UInt64
    /// Shortest accepted staking time in BTC blocks (nil: 400).
    public var minStakingTime: UInt16?
    /// Unbonding time in BTC blocks (nil: 200).
    public var unbondingTime: UInt16?
    /// Lowest provider commission, exact decimal (nil: 0).
    public var minCommission: String?
    /// Top-N providers that carry voting power (nil: 100).
    public var maxActiveFinalityProviders: UInt32?
    /// Consumer chains whose finality tally starts at a fixed height.
    public var consumerChains: [ConsumerChainStart]
    /// Whether chain ids `consumerChains` does not list may be used (their tally starts at
    /// their first commitment, whoever sends it); default false.
    public var allowUnlistedConsumerChains: Bool

    /// Options from their parts; defaults are PROTOCOL §6 on regtest from its genesis header.
    public init(btcNetwork: Network = .regtest, btcBaseHeader: BTCBlockHeader? = nil, btcBaseHeight: UInt64 = 0,
                covenantKeys: [Schnorr.PublicKey], covenantQuorum: Int = 3, btcConfirmationDepth: UInt32 = 10,
                btcFinalizationDepth: UInt64 = 100, epochLength: UInt64 = 10, minStakingTime: UInt16? = nil, unbondingTime: UInt16? = nil, minCommission: String? = nil,
                maxActiveFinalityProviders: UInt32? = nil, consumerChains: [ConsumerChainStart] = [],
                allowUnlistedConsumerChains: Bool = false) {
        self.btcNetwork = btcNetwork
        self.btcBaseHeader = btcBaseHeader
        self.btcBaseHeight = btcBaseHeight
        self.covenantKeys = covenantKeys
        self.covenantQuorum = covenantQuorum
        self.btcConfirmationDepth = btcConfirmationDepth
        self.btcFinalizationDepth = btcFinalizationDepth
        self.epochLength = epochLength
        self.minStakingTime = minStakingTime
        self.unbondingTime = unbondingTime
        self.minCommission = minCommission
        self.maxActiveFinalityProviders = maxActiveFinalityProviders
        self.consumerChains = consumerChains
        self.allowUnlistedConsumerChains = allowUnlistedConsumerChains
    }
}

/// Where the control plane's Bitcoin-facing work stands after the last committed block: the
/// three numbers an operator or a watchtower alerts on (the light client stops following
/// Bitcoin when no relayer runs; BTC finality stops when providers stop voting; checkpoints
/// stop finalizing when no one submits them to Bitcoin). Served in `GET /status` and as
/// Prometheus gauges.
public struct ControlPlaneProgress: Sendable, Hashable {
    /// The BTC light client's main-chain tip height (nil if the chain has no light client).
    public var btcLightClientHeight: UInt64?
    /// The last control-plane height finalized by BTC-staked votes (nil until the first).
    public var btcFinalizedHeight: UInt64?
    /// The last epoch whose checkpoint is FINALIZED on Bitcoin (0 while none is; nil if the
    /// chain has no checkpoints module).
    public var lastFinalizedEpoch: UInt64?

    /// Values from their parts.
    public init(btcLightClientHeight: UInt64? = nil, btcFinalizedHeight: UInt64? = nil, lastFinalizedEpoch: UInt64? = nil) {
        self.btcLightClientHeight = btcLightClientHeight
        self.btcFinalizedHeight = btcFinalizedHeight
        self.lastFinalizedEpoch = lastFinalizedEpoch
    }
}

extension ControlPlane {
    /// ``ControlPlaneProgress`` of `app`'s last committed state, read through the modules'
    /// own queries (the answers the HTTP API gives), so a chain without one of the modules
    /// simply leaves that number out. Cheap: three reads.
    public static func progress(of app: Application) -> ControlPlaneProgress {
        func number(_ path: String, _ field: String) -> UInt64? {
            guard let result = try? app.query(path: path), result.code == 0,
                  let object = try? JSONSerialization.jsonObject(with: result.value) as? [String: Any],
                  let text = object[field] as? String else { return nil }
            return UInt64(text)
        }
        var progress = ControlPlaneProgress()
        progress.btcLightClientHeight = number("/modules/\(BTCLightClientModule.moduleName)/tip", "height")
        if let chainID = app.chainID {
            progress.btcFinalizedHeight = number("/modules/\(FinalityModule.moduleName)/last-finalized/\(chainID)", "height")
        }
        progress.lastFinalizedEpoch = number("/modules/\(CheckpointsModule.moduleName)/last-finalized", "epoch")
        return progress
    }
}
