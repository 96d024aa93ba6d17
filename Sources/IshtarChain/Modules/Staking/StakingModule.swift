import Foundation
import IshtarBitcoin
import IshtarCrypto

/// Module `"staking"`: finality providers and BTC delegations (PROTOCOL §1–3, §6).
///
/// Every message is checked completely before anything is written, so a rejected message
/// leaves no trace. Delegations are validated ONLY with ``StakingValidation/validate(delegation:parameters:requireCovenantQuorum:)``
/// — the covenant signer calls the same function — against the parameter version in force
/// at creation, which the delegation records and is re-checked against forever after.
///
/// Delegation life cycle: `CreateBTCDelegation` → PENDING; `AddCovenantSigs` up to the
/// quorum → VERIFIED; the staking transaction's inclusion proof, k-deep on the BTC light
/// client's main chain (from `CreateBTCDelegation` or `AddBTCDelegationInclusionProof`) →
/// ACTIVE (end height = inclusion height + staking time); `BTCUndelegate` → UNBONDED; the
/// end-block hook → EXPIRED once BTC tip + unbonding time ≥ end height.
///
/// Voting power is maintained incrementally: each provider's `activeSats` changes on every
/// ACTIVE transition, and a power index (`pwr/`) holds the eligible providers (control-plane
/// chain id, not slashed, not jailed, power > 0) sorted by power desc, key asc. The end-block
/// hook of height h writes the table in force from h + 1 (the whole index; its top N have
/// status ACTIVE) only when something changed, so a change made at height h counts from h + 1.
///
/// State (keys under `staking/`):
/// - `cid` → the control plane's chain id; `params/latest` → BE4 version;
///   `params/v/BE4(version)` → ``StakingModuleParams``
/// - `fp/<key32>` → ``FinalityProvider``; `pwr/<BE8(~power)><key32>` → power index
/// - `del/<txid32>` → ``BTCDelegation``; `fpdel/<fp32><txid32>`, `stkdel/<staker32><txid32>`
///   (all delegations by provider / staker), `fpact/<fp32><txid32>` (ACTIVE by provider)
/// - `exp/<BE8(end − unbondingTime)><txid32>` (ACTIVE, by the BTC height at which they
///   expire), `expcur` → BE8 highest BTC height whose expiries are done
/// - `vp/<BE8(height)>` → ``StoredPowerTable`` (only heights where the table changed, each
///   linking to the previous), `vplast` → BE8 latest such height; `dirty` while the index
///   changed in the current block
///
/// After a BTC reorg, delegations proven in blocks that left the light client's main chain
/// lose that proof (ACTIVE → VERIFIED, UNBONDED → back); see `StakingReorg.swift` for the rule
/// and its keys (`inc/`, `unb/`, `touched/`, `lctip`).
///
/// Not done: expiry of PENDING/VERIFIED delegations (they carry no power, so only their displayed
/// status is affected); randomness-commitment filtering of the power table (the finality
/// module applies it when it uses the table).
public struct StakingModule: Module {
    /// `"staking"`.
    public static let moduleName = "staking"
    /// Longest chain id, bytes.
    public static let maxChainIDBytes = 64
    /// Largest Bitcoin transaction accepted in a message, bytes.
    public static let maxBitcoinTransactionBytes = 100_000
    /// Tag of the proof-of-possession digest.
    public static let proofOfPossessionTag = "ishtar/staking/pop"

    /// The module.
    public init() {}

    /// `"staking"`.
    public var name: String { Self.moduleName }
    /// The six message types.
    public var messageTypes: [String] {
        [CreateFinalityProvider.type, EditFinalityProvider.type, CreateBTCDelegation.type, AddCovenantSigs.type,
         AddBTCDelegationInclusionProof.type, BTCUndelegate.type]
    }

    // MARK: - Keys

    static let chainIDKey = Data("cid".utf8)
    static let latestParamsKey = Data("params/latest".utf8)
    static let dirtyKey = Data("dirty".utf8)
    static let expiryCursorKey = Data("expcur".utf8)
    static let lastTableKey = Data("vplast".utf8)
    static let marker = Data([1])

    static func be8(_ v: UInt64) -> Data {
        var w = BinaryWriter()
        w.u64(v)
        return w.data
    }

    static func readBE8(_ d: Data) -> UInt64 {
        d.prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
    }

    static func paramsKey(_ version: UInt32) -> Data {
        var w = BinaryWriter()
        w.fixed(Data("params/v/".utf8))
        w.u32(version)
        return w.data
    }

    static let fpPrefix = Data("fp/".utf8)
    static func fpKey(_ key: Data) -> Data { joined(fpPrefix, key) }
    static let powerPrefix = Data("pwr/".utf8)
    static func powerKey(_ key: Data, _ power: UInt64) -> Data { powerPrefix + be8(~power) + key }
    static func delegationKey(_ txid: Data) -> Data { Data("del/".utf8) + txid }
    static func fpDelegationsPrefix(_ fp: Data) -> Data { Data("fpdel/".utf8) + fp }
    static func stakerDelegationsPrefix(_ staker: Data) -> Data { Data("stkdel/".utf8) + staker }
    static func fpActivePrefix(_ fp: Data) -> Data { Data("fpact/".utf8) + fp }
    static let expiryPrefix = Data("exp/".utf8)
    static func expiryKey(_ due: UInt64, _ txid: Data) -> Data { expiryPrefix + be8(due) + txid }
    static func tableKey(_ height: UInt64) -> Data { Data("vp/".utf8) + be8(height) }

    static func display(_ txid: Data) -> String { Data(txid.reversed()).hexString }

    // MARK: - Proof of possession

    /// What a proof of possession signs: `H_"ishtar/staking/pop"(str chainID ‖ account(32))`,
    /// where `str` is a u32 big-endian length then the UTF-8 bytes, `chainID` the control
    /// plane's chain id and `account` the sender's 32-byte key. Binding the sender means a
    /// key cannot be registered by an account whose owner does not hold its secret.
    public static func proofOfPossessionDigest(chainID: String, account: Data) -> Data {
        var w = BinaryWriter()
        w.string(chainID)
        w.fixed(account)
        return TaggedHash.hash(tag: proofOfPossessionTag, data: w.bytes)
    }

    /// A BIP-340 proof of possession of `key` for `account` on `chainID`.
    public static func proofOfPossession(key: Schnorr.PrivateKey, chainID: String, account: Data) throws(IshtarCrypto.CryptoError) -> Data {
        try key.signature(for: proofOfPossessionDigest(chainID: chainID, account: account),
                          auxiliaryRandomness: Data(count: 32)).rawRepresentation
    }

    static func verifyProofOfPossession(key: Data, signature: Data, chainID: String, account: Data) -> Bool {
        guard let pk = try? Schnorr.PublicKey(rawRepresentation: key),
              let sig = try? Schnorr.Signature(rawRepresentation: signature) else { return false }
        return pk.isValidSignature(sig, for: proofOfPossessionDigest(chainID: chainID, account: account))
    }

    // MARK: - Reading state (public API for other modules)

    /// The parameter version in force (the latest).
    public static func currentParamsVersion(in store: ModuleStore) throws(ExecutionError) -> UInt32 {
        guard let raw = try store.get(latestParamsKey) else { throw .rule(StakingModuleError.notConfigured) }
        var r = BinaryReader(raw)
        do { return try r.u32("params version") } catch { throw .fatal(.corruptState("staking/params/latest: \(error)")) }
    }

    /// Parameters of `version`, if it exists.
    public static func parameters(version: UInt32, in store: ModuleStore) throws(ExecutionError) -> StakingModuleParams? {
        try store.read(StakingModuleParams.self, at: paramsKey(version))
    }

    /// The parameters in force and their version.
    public static func currentParameters(in store: ModuleStore) throws(ExecutionError) -> (version: UInt32, params: StakingModuleParams) {
        let version = try currentParamsVersion(in: store)
        guard let params = try parameters(version: version, in: store) else {
            throw .fatal(.corruptState("staking: parameters version \(version) missing"))
        }
        return (version, params)
    }

    static func paramsOf(_ d: BTCDelegation, in store: ModuleStore) throws(ExecutionError) -> StakingModuleParams {
        guard let p = try parameters(version: d.paramsVersion, in: store) else {
            throw .fatal(.corruptState("staking: parameters version \(d.paramsVersion) missing"))
        }
        return p
    }

    /// The control plane's own chain id (as stored at genesis).
    public static func controlPlaneChainID(in store: ModuleStore) throws(ExecutionError) -> String {
        guard let raw = try store.get(chainIDKey) else { throw .rule(StakingModuleError.notConfigured) }
        return String(decoding: raw, as: UTF8.self)
    }

    /// The finality provider with BTC key `key` (32 bytes), if registered.
    public static func finalityProvider(key: Data, in store: ModuleStore) throws(ExecutionError) -> FinalityProvider? {
        try store.read(FinalityProvider.self, at: fpKey(key))
    }

    /// The finality provider at `key`, a key made by this module's store from ``fpKey(_:)``.
    static func finalityProvider(at key: StateKey, in store: ModuleStore) throws(ExecutionError) -> FinalityProvider? {
        try store.read(FinalityProvider.self, at: key)
    }

    /// Every finality provider, ascending by key.
    public static func finalityProviders(in store: ModuleStore) throws(ExecutionError) -> [FinalityProvider] {
        var out: [FinalityProvider] = []
        for row in try store.scan(prefix: fpPrefix) {
            do { out.append(try FinalityProvider(decoding: row.value)) } catch {
                throw .fatal(.corruptState("staking/fp: \(error)"))
            }
        }
        return out
    }

    /// The delegation with this staking txid (32 bytes, internal order).
    public static func delegation(stakingTxid: Data, in store: ModuleStore) throws(ExecutionError) -> BTCDelegation? {
        try store.read(BTCDelegation.self, at: delegationKey(stakingTxid))
    }

    static func delegations(indexPrefix: Data, in store: ModuleStore) throws(ExecutionError) -> [(stakingTxid: Data, delegation: BTCDelegation)] {
        try delegations(indexRows: store.scan(prefix: indexPrefix), in: store)
    }

    /// The delegations an index's rows name (each key ends with the staking txid).
    static func delegations(indexRows: [(key: Data, value: Data)], in store: ModuleStore) throws(ExecutionError) -> [(stakingTxid: Data, delegation: BTCDelegation)] {
        var out: [(stakingTxid: Data, delegation: BTCDelegation)] = []
        for row in indexRows {
            let txid = Data(row.key.suffix(32))
            guard let d = try delegation(stakingTxid: txid, in: store) else {
                throw .fatal(.corruptState("staking: index entry for missing delegation \(txid.hexString)"))
            }
            out.append((txid, d))
        }
        return out
    }

    /// The ACTIVE delegations of a provider, ascending by staking txid — what the watcher
    /// needs to find the slashing transactions once the provider's key leaks.
    public static func activeDelegations(of fpKey: Data, in store: ModuleStore) throws(ExecutionError) -> [(stakingTxid: Data, delegation: BTCDelegation)] {
        try delegations(indexPrefix: fpActivePrefix(fpKey), in: store)
    }

    /// Every delegation of a provider, ascending by staking txid.
    public static func delegations(of fpKey: Data, in store: ModuleStore) throws(ExecutionError) -> [(stakingTxid: Data, delegation: BTCDelegation)] {
        try delegations(indexPrefix: fpDelegationsPrefix(fpKey), in: store)
    }

    /// Every delegation of a staker key, ascending by staking txid.
    public static func delegations(ofStaker stakerKey: Data, in store: ModuleStore) throws(ExecutionError) -> [(stakingTxid: Data, delegation: BTCDelegation)] {
        try delegations(indexPrefix: stakerDelegationsPrefix(stakerKey), in: store)
    }

    // MARK: - Genesis

    /// Validates `modules.staking` (see ``StakingGenesis``) and stores version 0.
    public func initGenesis(_ context: GenesisContext) throws(ExecutionError) {
        guard let raw = context.params else {
            throw .rule(ParamsError.malformed(module: name, reason: "btc_staking parameters are required (covenant committee)"))
        }
        let genesis: StakingGenesis
        do {
            if let object = try JSONSerialization.jsonObject(with: raw) as? [String: Any] {
                let allowed = Set(StakingGenesis.CodingKeys.allCases.map(\.rawValue))
                if let unknown = object.keys.sorted().first(where: { !allowed.contains($0) }) {
                    throw ExecutionError.rule(ParamsError.malformed(module: name, reason: "unknown field \(unknown)"))
                }
            }
            genesis = try JSONDecoder().decode(StakingGenesis.self, from: raw)
        } catch let e as ExecutionError {
            throw e
        } catch {
            throw .rule(ParamsError.malformed(module: name, reason: "\(error)"))
        }
        do {
            try genesis.btcStaking.validated()
        } catch {
            throw .rule(ParamsError.outOfRange(module: name, name: "btc_staking", reason: error.description))
        }
        var minCommission = Commission.zero
        if let text = genesis.minCommission {
            guard let c = Commission(decimal: text) else {
                throw .rule(ParamsError.outOfRange(module: name, name: "min_commission", reason: "must be an exact decimal in [0, 1]"))
            }
            minCommission = c
        }
        let maxActive = genesis.maxActiveFinalityProviders ?? 100
        guard maxActive >= 1 else {
            throw .rule(ParamsError.outOfRange(module: name, name: "max_active_finality_providers", reason: "must be ≥ 1"))
        }
        let depth = genesis.btcConfirmationDepth ?? 10
        guard depth >= 1 else {
            throw .rule(ParamsError.outOfRange(module: name, name: "btc_confirmation_depth", reason: "must be ≥ 1"))
        }
        let params = StakingModuleParams(btc: genesis.btcStaking, minCommission: minCommission,
                                         maxActiveFinalityProviders: maxActive, btcConfirmationDepth: depth)
        context.store.write(params, at: Self.paramsKey(0))
        var w = BinaryWriter()
        w.u32(0)
        context.store.set(Self.latestParamsKey, w.data)
        context.store.set(Self.chainIDKey, Data(context.block.chainID.utf8))
    }

    // MARK: - Messages

    static func decode<T: BinaryCodable>(_ type: T.Type, _ message: Message) throws(ExecutionError) -> T {
        do {
            return try T(decoding: message.payload)
        } catch {
            throw .rule(StakingModuleError.malformedMessage(type: message.type, error))
        }
    }

    static func requireKey(_ key: Data, _ field: String) throws(ExecutionError) {
        guard (try? Schnorr.PublicKey(rawRepresentation: key)) != nil else {
            throw .rule(StakingModuleError.invalidKey(field: field))
        }
    }

    static func checkDescription(_ d: FinalityProviderDescription, commission: Commission) throws(ExecutionError) {
        guard !d.moniker.isEmpty else { throw .rule(StakingModuleError.emptyMoniker) }
        guard commission.units <= Commission.scale else { throw .rule(StakingModuleError.commissionAboveOne(commission)) }
    }

    /// Stateless checks: canonical payload, well-formed keys, bounded description, commission ≤ 1.
    public func validateMessage(_ message: Message, sender: Data) throws(ExecutionError) {
        switch message.type {
        case CreateFinalityProvider.type:
            let m = try Self.decode(CreateFinalityProvider.self, message)
            try Self.requireKey(m.btcKey, "finality provider key")
            try Self.checkDescription(m.description, commission: m.commission)
            guard Genesis.isValidChainID(m.consumerChainID) else {
                throw .rule(StakingModuleError.invalidConsumerChainID(m.consumerChainID))
            }
        case EditFinalityProvider.type:
            let m = try Self.decode(EditFinalityProvider.self, message)
            try Self.requireKey(m.btcKey, "finality provider key")
            try Self.checkDescription(m.description, commission: m.commission)
        case CreateBTCDelegation.type:
            let m = try Self.decode(CreateBTCDelegation.self, message)
            try Self.requireKey(m.stakerKey, "staker key")
            for k in m.finalityProviderKeys { try Self.requireKey(k, "finality provider key") }
        case AddCovenantSigs.type:
            let m = try Self.decode(AddCovenantSigs.self, message)
            try Self.requireKey(m.signatures.covenantKey, "covenant key")
        case AddBTCDelegationInclusionProof.type:
            _ = try Self.decode(AddBTCDelegationInclusionProof.self, message)
        case BTCUndelegate.type:
            _ = try Self.decode(BTCUndelegate.self, message)
        default:
            throw .rule(StakingModuleError.unknownMessage(message.type))
        }
    }

    /// Executes one message: every check first, then the writes.
    public func deliverMessage(_ message: Message, _ context: TxContext) throws(ExecutionError) {
        try validateMessage(message, sender: context.sender)
        switch message.type {
        case CreateFinalityProvider.type: try createFinalityProvider(Self.decode(CreateFinalityProvider.self, message), context)
        case EditFinalityProvider.type: try editFinalityProvider(Self.decode(EditFinalityProvider.self, message), context)
        case CreateBTCDelegation.type: try createDelegation(Self.decode(CreateBTCDelegation.self, message), context)
        case AddCovenantSigs.type: try addCovenantSigs(Self.decode(AddCovenantSigs.self, message), context)
        case AddBTCDelegationInclusionProof.type:
            try addInclusionProof(Self.decode(AddBTCDelegationInclusionProof.self, message), context)
        case BTCUndelegate.type: try undelegate(Self.decode(BTCUndelegate.self, message), context)
        default: throw .rule(StakingModuleError.unknownMessage(message.type))
        }
    }

    func createFinalityProvider(_ m: CreateFinalityProvider, _ context: TxContext) throws(ExecutionError) {
        let store = context.store
        let (_, params) = try Self.currentParameters(in: store)
        guard Self.verifyProofOfPossession(key: m.btcKey, signature: m.proofOfPossession, chainID: context.block.chainID,
                                           account: context.sender) else {
            throw .rule(StakingModuleError.invalidProofOfPossession(field: "finality provider"))
        }
        guard try Self.finalityProvider(key: m.btcKey, in: store) == nil else {
            throw .rule(StakingModuleError.finalityProviderExists(m.btcKey))
        }
        guard m.commission >= params.minCommission else {
            throw .rule(StakingModuleError.commissionBelowMinimum(commission: m.commission, minimum: params.minCommission))
        }
        // Refused here, not only at its first randomness commitment, so a provider learns at
        // registration that it could never vote (a chain without the finality module has no
        // registry and accepts any id).
        if m.consumerChainID != context.block.chainID,
           let finality = try context.store(of: FinalityModule.moduleName).read(FinalityParams.self, at: FinalityModule.paramsKey),
           !finality.allowUnlistedConsumerChains, !finality.consumerChains.contains(where: { $0.chainID == m.consumerChainID }) {
            throw .rule(StakingModuleError.unlistedConsumerChain(m.consumerChainID))
        }
        let fp = FinalityProvider(btcKey: m.btcKey, owner: context.sender, description: m.description,
                                  commission: m.commission, consumerChainID: m.consumerChainID,
                                  registeredHeight: context.block.height)
        store.write(fp, at: Self.fpKey(m.btcKey))
        context.emit(Event(type: "staking.fp_registered", attributes: [
            EventAttribute("fp_btc_pk", m.btcKey.hexString), EventAttribute("owner", context.senderHex),
            EventAttribute("consumer_chain_id", m.consumerChainID), EventAttribute("commission", m.commission.description),
        ]))
    }

    func editFinalityProvider(_ m: EditFinalityProvider, _ context: TxContext) throws(ExecutionError) {
        let store = context.store
        let (_, params) = try Self.currentParameters(in: store)
        guard var fp = try Self.finalityProvider(key: m.btcKey, in: store) else {
            throw .rule(StakingModuleError.unknownFinalityProvider(m.btcKey))
        }
        guard fp.owner == context.sender else {
            throw .rule(StakingModuleError.notFinalityProviderOwner(key: m.btcKey, sender: context.sender))
        }
        guard fp.slashedHeight == nil else { throw .rule(StakingModuleError.finalityProviderSlashed(m.btcKey)) }
        guard m.commission >= params.minCommission else {
            throw .rule(StakingModuleError.commissionBelowMinimum(commission: m.commission, minimum: params.minCommission))
        }
        fp.description = m.description
        fp.commission = m.commission
        store.write(fp, at: Self.fpKey(m.btcKey))
        context.emit(Event(type: "staking.fp_edited", attributes: [
            EventAttribute("fp_btc_pk", m.btcKey.hexString), EventAttribute("commission", m.commission.description),
        ]))
    }

    /// Checks that `payload` proves `transaction` in a header on the light client's main
    /// chain, at least `depth` deep if given; returns where.
    static func verifyInclusion(_ payload: BTCInclusionProofPayload, of transaction: IshtarBitcoin.Transaction,
                                minimumDepth: UInt64?, _ context: ExecutionContext) throws(ExecutionError) -> BTCInclusion {
        let lc = context.store(of: BTCLightClientModule.moduleName)
        let shown = display(payload.blockHash)
        guard let header = try BTCLightClientModule.header(hash: payload.blockHash, in: lc) else {
            throw .rule(StakingModuleError.unknownBTCHeader(shown))
        }
        guard try BTCLightClientModule.isOnMainChain(hash: payload.blockHash, in: lc),
              let depth = try BTCLightClientModule.depth(of: payload.blockHash, in: lc) else {
            throw .rule(StakingModuleError.headerNotOnMainChain(shown))
        }
        if let minimumDepth, depth < minimumDepth {
            throw .rule(StakingModuleError.headerNotDeepEnough(hash: shown, depth: depth, required: minimumDepth))
        }
        do {
            try payload.proof.verify(transaction: transaction, merkleRoot: header.header.merkleRoot)
        } catch {
            throw .rule(StakingModuleError.invalidInclusionProof("\(error)"))
        }
        return BTCInclusion(blockHash: payload.blockHash, height: header.height)
    }

    /// The light client's tip height (0 if it has none).
    static func btcTipHeight(_ context: ExecutionContext) throws(ExecutionError) -> UInt64 {
        try BTCLightClientModule.tip(in: context.store(of: BTCLightClientModule.moduleName))?.height ?? 0
    }

    /// The BTC height at which an ACTIVE delegation expires: end height − unbonding time.
    static func dueHeight(endHeight: UInt64, unbondingTime: UInt16) -> UInt64 {
        endHeight >= UInt64(unbondingTime) ? endHeight - UInt64(unbondingTime) : 0
    }

    func createDelegation(_ m: CreateBTCDelegation, _ context: TxContext) throws(ExecutionError) {
        let store = context.store
        let (version, params) = try Self.currentParameters(in: store)
        guard Self.verifyProofOfPossession(key: m.stakerKey, signature: m.stakerProofOfPossession,
                                           chainID: context.block.chainID, account: context.sender) else {
            throw .rule(StakingModuleError.invalidProofOfPossession(field: "staker"))
        }
        var providers: [FinalityProvider] = []
        for key in m.finalityProviderKeys {
            guard let fp = try Self.finalityProvider(key: key, in: store) else {
                throw .rule(StakingModuleError.unknownFinalityProvider(key))
            }
            guard fp.slashedHeight == nil else { throw .rule(StakingModuleError.finalityProviderSlashed(key)) }
            providers.append(fp)
        }
        let txid = m.stakingTransaction.txid.rawValue
        guard try !store.contains(Self.delegationKey(txid)) else {
            throw .rule(StakingModuleError.duplicateDelegation(txid: Self.display(txid)))
        }
        // Keys were checked by validateMessage; signatures only need to be 64 bytes here —
        // whether they verify is the validation function's call.
        guard let staker = try? Schnorr.PublicKey(rawRepresentation: m.stakerKey),
              let s1 = try? Schnorr.Signature(rawRepresentation: m.stakerSlashingSignature),
              let s2 = try? Schnorr.Signature(rawRepresentation: m.stakerUnbondingSlashingSignature)
        else { throw .rule(StakingModuleError.invalidKey(field: "staker key")) }
        var fpKeys: [Schnorr.PublicKey] = []
        for k in m.finalityProviderKeys {
            guard let pk = try? Schnorr.PublicKey(rawRepresentation: k) else {
                throw .rule(StakingModuleError.invalidKey(field: "finality provider key"))
            }
            fpKeys.append(pk)
        }
        guard m.stakingValue <= UInt64(Int64.max), let value = try? Amount(sats: Int64(m.stakingValue)) else {
            throw .rule(StakingModuleError.invalidDelegation(.amountOverflow))
        }
        let transactions = DelegationTransactions(
            stakerKey: staker, finalityProviderKeys: fpKeys, stakingTime: m.stakingTime, stakingValue: value,
            stakingTransaction: m.stakingTransaction, stakingOutputIndex: m.stakingOutputIndex,
            unbondingTransaction: m.unbondingTransaction, slashingTransaction: m.slashingTransaction,
            unbondingSlashingTransaction: m.unbondingSlashingTransaction, stakerSlashingSignature: s1,
            stakerUnbondingSlashingSignature: s2)
        let validated: ValidatedDelegation
        do {
            validated = try StakingValidation.validate(delegation: transactions, parameters: params.btc)
        } catch {
            throw .rule(StakingModuleError.invalidDelegation(error))
        }
        guard m.unbondingTime == params.btc.unbondingTime else {
            throw .rule(StakingModuleError.unbondingTimeMismatch(declared: m.unbondingTime, required: params.btc.unbondingTime))
        }
        let unbondingValue = UInt64(clamping: validated.unbondingOutput.value.sats)
        guard m.unbondingValue == unbondingValue else {
            throw .rule(StakingModuleError.unbondingValueMismatch(declared: m.unbondingValue, actual: unbondingValue))
        }
        // The validation function accepted exactly one provider.
        guard let provider = providers.first else { throw .rule(StakingModuleError.invalidDelegation(.noFinalityProviderKeys)) }
        var inclusion: BTCInclusion?
        if let proof = m.inclusionProof {
            let included = try Self.verifyInclusion(proof, of: m.stakingTransaction,
                                                    minimumDepth: UInt64(params.btcConfirmationDepth), context)
            let end = included.height + UInt64(m.stakingTime)
            let tip = try Self.btcTipHeight(context)
            guard tip + UInt64(params.btc.unbondingTime) < end else {
                throw .rule(StakingModuleError.stakingTimeElapsed(endHeight: end, tipPlusUnbonding: tip + UInt64(params.btc.unbondingTime)))
            }
            inclusion = included
        }

        // Everything checked: write.
        var d = BTCDelegation(
            owner: context.sender, stakerKey: m.stakerKey, finalityProviderKey: provider.btcKey,
            consumerChainID: provider.consumerChainID, stakingTime: m.stakingTime, stakingValue: m.stakingValue,
            stakingOutputIndex: m.stakingOutputIndex,
            stakingTransaction: m.stakingTransaction.serialized(includingWitness: false),
            unbondingTransaction: m.unbondingTransaction.serialized(includingWitness: false),
            slashingTransaction: m.slashingTransaction.serialized(includingWitness: false),
            stakerSlashingSignature: m.stakerSlashingSignature,
            unbondingSlashingTransaction: m.unbondingSlashingTransaction.serialized(includingWitness: false),
            stakerUnbondingSlashingSignature: m.stakerUnbondingSlashingSignature, paramsVersion: version,
            createdHeight: context.block.height)
        d.inclusion = inclusion
        Self.indexInclusion(d, txid: txid, store: store)
        store.set(Self.fpDelegationsPrefix(provider.btcKey) + txid, Self.marker)
        store.set(Self.stakerDelegationsPrefix(m.stakerKey) + txid, Self.marker)
        store.write(d, at: Self.delegationKey(txid))
        context.emit(Event(type: "staking.delegation_created", attributes: [
            EventAttribute("staking_txid", Self.display(txid)), EventAttribute("staker_btc_pk", m.stakerKey.hexString),
            EventAttribute("fp_btc_pk", provider.btcKey.hexString), EventAttribute("value_sat", String(m.stakingValue)),
            EventAttribute("staking_time", String(m.stakingTime)), EventAttribute("params_version", String(version)),
            EventAttribute("status", d.status.description),
        ]))
        if let inclusion {
            context.emit(Event(type: "staking.delegation_inclusion_proven", attributes: [
                EventAttribute("staking_txid", Self.display(txid)), EventAttribute("btc_height", String(inclusion.height)),
            ]))
        }
    }

    func addCovenantSigs(_ m: AddCovenantSigs, _ context: TxContext) throws(ExecutionError) {
        let store = context.store
        let txid = m.stakingTxid
        guard var d = try Self.delegation(stakingTxid: txid, in: store) else {
            throw .rule(StakingModuleError.unknownDelegation(txid: Self.display(txid)))
        }
        guard [.pending, .verified, .active].contains(d.status) else {
            throw .rule(StakingModuleError.wrongDelegationStatus(txid: Self.display(txid), status: d.status.description,
                                                                 allowed: "PENDING, VERIFIED or ACTIVE"))
        }
        // The provider's key has leaked: with the covenant's adaptor signatures on chain anyone
        // could decrypt them and slash this staker. Without them nobody can; the staker waits
        // out the timelock instead.
        try Self.requireNotSlashed(d.finalityProviderKey, in: store)
        let params = try Self.paramsOf(d, in: store)
        let covenantKey = m.signatures.covenantKey
        guard params.btc.covenantKeys.contains(where: { $0.rawRepresentation == covenantKey }) else {
            throw .rule(StakingModuleError.notCovenantMember(covenantKey))
        }
        guard !d.covenantSignatures.contains(where: { $0.covenantKey == covenantKey }) else {
            throw .rule(StakingModuleError.duplicateCovenantSignature(covenantKey))
        }
        let set: CovenantSignatureSet
        do throws(StakingModuleError) { set = try m.signatures.signatureSet() } catch { throw .rule(error) }
        // THE validation function, with only the new set: the stored ones were verified when
        // they were added, against the same parameter version.
        guard let transactions = d.transactions(covenantSignatures: [set]) else {
            throw .fatal(.corruptState("staking: delegation \(Self.display(txid)) does not decode"))
        }
        do {
            _ = try StakingValidation.validate(delegation: transactions, parameters: params.btc)
        } catch {
            throw .rule(StakingModuleError.invalidCovenantSignatures(error))
        }
        d.covenantSignatures.append(m.signatures)
        d.covenantSignatures.sort { $0.covenantKey.lexicographicallyPrecedes($1.covenantKey) }
        context.emit(Event(type: "staking.covenant_signature_added", attributes: [
            EventAttribute("staking_txid", Self.display(txid)), EventAttribute("covenant_btc_pk", covenantKey.hexString),
            EventAttribute("count", String(d.covenantSignatures.count)),
        ]))
        if d.status == .pending, d.covenantSignatures.count >= params.btc.covenantQuorum {
            d.status = .verified
            context.emit(Self.statusEvent("staking.delegation_verified", txid, d))
            if d.inclusion != nil { try Self.activateOrExpire(&d, txid: txid, params: params, context) }
        }
        store.write(d, at: Self.delegationKey(txid))
    }

    static func requireNotSlashed(_ key: Data, in store: ModuleStore) throws(ExecutionError) {
        guard let fp = try finalityProvider(key: key, in: store) else {
            throw .fatal(.corruptState("staking: delegation to unknown provider \(key.hexString)"))
        }
        guard fp.slashedHeight == nil else { throw .rule(StakingModuleError.finalityProviderSlashed(key)) }
    }

    func addInclusionProof(_ m: AddBTCDelegationInclusionProof, _ context: TxContext) throws(ExecutionError) {
        let store = context.store
        let txid = m.stakingTxid
        guard var d = try Self.delegation(stakingTxid: txid, in: store) else {
            throw .rule(StakingModuleError.unknownDelegation(txid: Self.display(txid)))
        }
        guard d.status == .pending || d.status == .verified else {
            throw .rule(StakingModuleError.wrongDelegationStatus(txid: Self.display(txid), status: d.status.description,
                                                                 allowed: "PENDING or VERIFIED"))
        }
        guard d.inclusion == nil else { throw .rule(StakingModuleError.inclusionAlreadyProven(txid: Self.display(txid))) }
        // No delegation to a slashed provider becomes ACTIVE (it would carry no power anyway).
        try Self.requireNotSlashed(d.finalityProviderKey, in: store)
        let params = try Self.paramsOf(d, in: store)
        guard let staking = try? IshtarBitcoin.Transaction(serialized: d.stakingTransaction) else {
            throw .fatal(.corruptState("staking: delegation \(Self.display(txid)) does not decode"))
        }
        let included = try Self.verifyInclusion(m.proof, of: staking, minimumDepth: UInt64(params.btcConfirmationDepth), context)
        let end = included.height + UInt64(d.stakingTime)
        let tip = try Self.btcTipHeight(context)
        guard tip + UInt64(params.btc.unbondingTime) < end else {
            throw .rule(StakingModuleError.stakingTimeElapsed(endHeight: end, tipPlusUnbonding: tip + UInt64(params.btc.unbondingTime)))
        }
        d.inclusion = included
        Self.indexInclusion(d, txid: txid, store: store)
        context.emit(Event(type: "staking.delegation_inclusion_proven", attributes: [
            EventAttribute("staking_txid", Self.display(txid)), EventAttribute("btc_height", String(included.height)),
        ]))
        if d.status == .verified { try Self.activateOrExpire(&d, txid: txid, params: params, context) }
        store.write(d, at: Self.delegationKey(txid))
    }

    func undelegate(_ m: BTCUndelegate, _ context: TxContext) throws(ExecutionError) {
        let store = context.store
        let txid = m.stakingTxid
        guard var d = try Self.delegation(stakingTxid: txid, in: store) else {
            throw .rule(StakingModuleError.unknownDelegation(txid: Self.display(txid)))
        }
        guard [.pending, .verified, .active].contains(d.status) else {
            throw .rule(StakingModuleError.wrongDelegationStatus(txid: Self.display(txid), status: d.status.description,
                                                                 allowed: "PENDING, VERIFIED or ACTIVE"))
        }
        guard let expected = try? IshtarBitcoin.Transaction(serialized: d.unbondingTransaction) else {
            throw .fatal(.corruptState("staking: delegation \(Self.display(txid)) does not decode"))
        }
        // txid-equal: the mined transaction carries a witness the stored one lacks.
        guard m.unbondingTransaction.txid == expected.txid else {
            throw .rule(StakingModuleError.notUnbondingTransaction(expected: expected.txid.displayHex,
                                                                   actual: m.unbondingTransaction.txid.displayHex))
        }
        let included = try Self.verifyInclusion(m.proof, of: m.unbondingTransaction, minimumDepth: nil, context)
        let params = try Self.paramsOf(d, in: store)
        if d.status == .active { try Self.deactivate(d, txid: txid, params: params, store: store) }
        Self.unindexInclusion(d, txid: txid, store: store)
        d.status = .unbonded
        // Without its witness: the proof covers the txid only, and anyone may send this
        // message, so a witness here would be whatever its sender made up.
        d.unbondingSpend = m.unbondingTransaction.serialized(includingWitness: false)
        d.unbondingInclusion = included
        Self.indexUnbonding(d, txid: txid, store: store)
        store.write(d, at: Self.delegationKey(txid))
        context.emit(Self.statusEvent("staking.delegation_unbonded", txid, d))
    }

    static func statusEvent(_ type: String, _ txid: Data, _ d: BTCDelegation) -> Event {
        Event(type: type, attributes: [
            EventAttribute("staking_txid", display(txid)), EventAttribute("fp_btc_pk", d.finalityProviderKey.hexString),
            EventAttribute("staker_btc_pk", d.stakerKey.hexString), EventAttribute("value_sat", String(d.stakingValue)),
            EventAttribute("status", d.status.description),
        ])
    }

    // MARK: - Transitions and power

    /// VERIFIED + included → ACTIVE (power added, indexed for expiry), or straight to
    /// EXPIRED if the BTC tip has already passed its due height.
    static func activateOrExpire(_ d: inout BTCDelegation, txid: Data, params: StakingModuleParams,
                                 _ context: ExecutionContext) throws(ExecutionError) {
        guard let end = d.endHeight else { return }
        let store = context.store
        let due = dueHeight(endHeight: end, unbondingTime: params.btc.unbondingTime)
        let tip = try btcTipHeight(context)
        if tip >= due {
            d.status = .expired
            unindexInclusion(d, txid: txid, store: store)
            context.emit(statusEvent("staking.delegation_expired", txid, d))
            return
        }
        d.status = .active
        try adjustPower(fpKey: d.finalityProviderKey, add: d.stakingValue, remove: 0, store: store)
        store.set(fpActivePrefix(d.finalityProviderKey) + txid, marker)
        store.set(expiryKey(due, txid), marker)
        // Keep "every entry due at or below the cursor is done" true after a BTC reorg
        // lowered the tip below the cursor.
        if let raw = try store.get(expiryCursorKey), readBE8(raw) >= due { store.set(expiryCursorKey, be8(due - 1)) }
        context.emit(statusEvent("staking.delegation_active", txid, d))
    }

    /// Removes an ACTIVE delegation's power and index entries (the caller sets its status).
    static func deactivate(_ d: BTCDelegation, txid: Data, params: StakingModuleParams, store: ModuleStore) throws(ExecutionError) {
        try adjustPower(fpKey: d.finalityProviderKey, add: 0, remove: d.stakingValue, store: store)
        store.delete(fpActivePrefix(d.finalityProviderKey) + txid)
        if let end = d.endHeight { store.delete(expiryKey(dueHeight(endHeight: end, unbondingTime: params.btc.unbondingTime), txid)) }
    }

    /// Whether a provider belongs in the power index.
    static func isEligible(_ fp: FinalityProvider, chainID: String) -> Bool {
        fp.consumerChainID == chainID && fp.slashedHeight == nil && !fp.jailed && fp.activeSats > 0
    }

    /// Writes `updated` and moves its power-index entry from `old`'s place.
    static func writeProvider(_ updated: FinalityProvider, old: FinalityProvider, store: ModuleStore) throws(ExecutionError) {
        let chainID = try controlPlaneChainID(in: store)
        let wasIn = isEligible(old, chainID: chainID)
        let isIn = isEligible(updated, chainID: chainID)
        if wasIn != isIn || (isIn && old.activeSats != updated.activeSats) {
            if wasIn { store.delete(powerKey(old.btcKey, old.activeSats)) }
            if isIn { store.set(powerKey(updated.btcKey, updated.activeSats), marker) }
            store.set(dirtyKey, marker)
        }
        store.write(updated, at: fpKey(updated.btcKey))
    }

    static func adjustPower(fpKey key: Data, add: UInt64, remove: UInt64, store: ModuleStore) throws(ExecutionError) {
        guard let old = try finalityProvider(key: key, in: store) else {
            throw .fatal(.corruptState("staking: delegation of unknown provider \(key.hexString)"))
        }
        var fp = old
        let (sum, overflow) = fp.activeSats.addingReportingOverflow(add)
        guard !overflow, sum >= remove else {
            throw .fatal(.corruptState("staking: power of \(key.hexString) out of range"))
        }
        fp.activeSats = sum - remove
        try writeProvider(fp, old: old, store: store)
    }

    /// Marks a provider SLASHED (terminal) at `height`; its power leaves the table from the
    /// next height. Returns the event to emit, or `nil` if it was already slashed.
    @discardableResult
    public static func slashFinalityProvider(key: Data, height: UInt64, in store: ModuleStore) throws(ExecutionError) -> Event? {
        guard let old = try finalityProvider(key: key, in: store) else { throw .rule(StakingModuleError.unknownFinalityProvider(key)) }
        guard old.slashedHeight == nil else { return nil }
        var fp = old
        fp.slashedHeight = height
        try writeProvider(fp, old: old, store: store)
        return Event(type: "staking.fp_slashed", attributes: [
            EventAttribute("fp_btc_pk", key.hexString), EventAttribute("height", String(height)),
        ])
    }

    /// ``slashFinalityProvider(key:height:in:)`` from another module's hook: uses the block
    /// height and emits `staking.fp_slashed`. Returns whether it changed anything.
    @discardableResult
    public static func slashFinalityProvider(key: Data, in context: ExecutionContext) throws(ExecutionError) -> Bool {
        guard let e = try slashFinalityProvider(key: key, height: context.block.height, in: context.store(of: moduleName)) else {
            return false
        }
        context.emit(e)
        return true
    }

    /// Jails a provider (JAILED; power leaves the table from the next height). Returns the
    /// event to emit, or `nil` if it was already jailed. A slashed provider cannot be jailed.
    @discardableResult
    public static func jailFinalityProvider(key: Data, in store: ModuleStore) throws(ExecutionError) -> Event? {
        guard let old = try finalityProvider(key: key, in: store) else { throw .rule(StakingModuleError.unknownFinalityProvider(key)) }
        guard old.slashedHeight == nil else { throw .rule(StakingModuleError.finalityProviderSlashed(key)) }
        guard !old.jailed else { return nil }
        var fp = old
        fp.jailed = true
        try writeProvider(fp, old: old, store: store)
        return Event(type: "staking.fp_jailed", attributes: [EventAttribute("fp_btc_pk", key.hexString)])
    }

    /// Unjails a provider; its power counts again from the next height. Returns the event to emit.
    @discardableResult
    public static func unjailFinalityProvider(key: Data, in store: ModuleStore) throws(ExecutionError) -> Event {
        guard let old = try finalityProvider(key: key, in: store) else { throw .rule(StakingModuleError.unknownFinalityProvider(key)) }
        guard old.slashedHeight == nil else { throw .rule(StakingModuleError.finalityProviderSlashed(key)) }
        guard old.jailed else { throw .rule(StakingModuleError.finalityProviderNotJailed(key)) }
        var fp = old
        fp.jailed = false
        try writeProvider(fp, old: old, store: store)
        return Event(type: "staking.fp_unjailed", attributes: [EventAttribute("fp_btc_pk", key.hexString)])
    }

    // MARK: - End block

    /// Re-checks delegations proven in BTC blocks that left the light client's main chain
    /// (see `StakingReorg.swift`), expires due ACTIVE delegations, then writes the voting-power table for the next height
    /// if the power index changed.
    public func endBlock(_ context: BlockContext) throws(ExecutionError) {
        let store = context.store
        guard try store.get(Self.latestParamsKey) != nil else { return }
        try recheckAfterReorg(context)
        try expire(context)
        try updatePowerTable(context)
    }

    /// Walks only the due part of the expiry index: heights (cursor, tip]. Small gaps are
    /// walked height by height (one prefix seek each); a large jump (e.g. a header sync)
    /// walks the index once from its start and stops at the first entry not yet due.
    func expire(_ context: BlockContext) throws(ExecutionError) {
        let store = context.store
        let lc = context.store(of: BTCLightClientModule.moduleName)
        guard let tip = try BTCLightClientModule.tip(in: lc)?.height else { return }
        // No cursor before the first end-block: walk from the index's start. (Starting at the
        // tip would miss a delegation activated earlier in the first block whose due height
        // the same block's headers then reached.)
        let cursor = try store.get(Self.expiryCursorKey).map(Self.readBE8) ?? 0
        guard tip > cursor else {
            // A reorg lowered the tip: entries above it were never due, so lower the cursor.
            if tip < cursor { store.set(Self.expiryCursorKey, Self.be8(tip)) }
            return
        }
        var due: [Data] = []
        if tip - cursor <= 64 {
            for h in (cursor + 1)...tip {
                for row in try store.scan(prefix: Self.expiryPrefix + Self.be8(h)) { due.append(Data(row.key.suffix(32))) }
            }
        } else {
            for row in try store.scan(prefix: Self.expiryPrefix) {
                let h = Self.readBE8(Data(row.key.dropFirst(Self.expiryPrefix.count).prefix(8)))
                if h > tip { break }
                due.append(Data(row.key.suffix(32)))
            }
        }
        for txid in due {
            guard var d = try Self.delegation(stakingTxid: txid, in: store), d.status == .active else {
                throw .fatal(.corruptState("staking: expiry entry for non-active delegation \(txid.hexString)"))
            }
            let params = try Self.paramsOf(d, in: store)
            try Self.deactivate(d, txid: txid, params: params, store: store)
            Self.unindexInclusion(d, txid: txid, store: store)
            d.status = .expired
            store.write(d, at: Self.delegationKey(txid))
            context.emit(Self.statusEvent("staking.delegation_expired", txid, d))
        }
        store.set(Self.expiryCursorKey, Self.be8(tip))
    }

    /// Every eligible provider (this chain's, not jailed, not slashed, power > 0) by power
    /// (desc), ties by key (asc), from the power index. Not cut at the top N: PROTOCOL §6
    /// takes the top N only after removing providers without randomness for the height,
    /// which the finality module knows, so a provider ranked below N here may still be in a
    /// height's active set.
    static func computeTable(store: ModuleStore) throws(ExecutionError) -> [VotingPowerEntry] {
        var out: [VotingPowerEntry] = []
        for row in try store.scan(prefix: powerPrefix) {
            let body = row.key.dropFirst(powerPrefix.count)
            out.append(VotingPowerEntry(fpKey: Data(body.suffix(32)), power: ~readBE8(Data(body.prefix(8)))))
        }
        return out
    }

    func updatePowerTable(_ context: BlockContext) throws(ExecutionError) {
        let store = context.store
        guard try store.get(Self.dirtyKey) != nil else { return }
        store.delete(Self.dirtyKey)
        let (_, params) = try Self.currentParameters(in: store)
        let table = try Self.computeTable(store: store)
        let lastHeight = try store.get(Self.lastTableKey).map(Self.readBE8)
        var previous: [VotingPowerEntry] = []
        if let lastHeight, let stored = try store.read(StoredPowerTable.self, at: Self.tableKey(lastHeight)) {
            previous = stored.entries
        }
        guard table != previous else { return }
        let height = context.block.height + 1
        store.write(StoredPowerTable(previousHeight: lastHeight ?? 0, entries: table), at: Self.tableKey(height))
        store.set(Self.lastTableKey, Self.be8(height))
        // A provider's status (ACTIVE / INACTIVE) follows its place in the table's top N.
        let n = Int(params.maxActiveFinalityProviders)
        let before = Set(previous.prefix(n).map(\.fpKey))
        let after = Set(table.prefix(n).map(\.fpKey))
        for key in before.union(after).sorted(by: { $0.lexicographicallyPrecedes($1) }) where before.contains(key) != after.contains(key) {
            guard var fp = try Self.finalityProvider(key: key, in: store) else { continue }
            fp.inActiveSet = after.contains(key)
            if fp.inActiveSet { fp.everActive = true }
            store.write(fp, at: Self.fpKey(key))
        }
        context.emit(Event(type: "staking.power_table_updated", attributes: [
            EventAttribute("height", String(height)), EventAttribute("providers", String(table.count)),
            EventAttribute("total_power", String(table.reduce(UInt64(0)) { $0 &+ $1.power })),
        ]))
    }

    /// The voting-power table in force at `height` (providers by power desc, key asc; empty
    /// before the first table). The table written at the end of block h is in force from h + 1.
    public static func votingPowerTable(height: UInt64, in store: ModuleStore) throws(ExecutionError) -> [(fpKey: Data, power: UInt64)] {
        try votingPowerEntries(height: height, in: store).map { ($0.fpKey, $0.power) }
    }

    /// The height the table in force at `height` was written for (0 = none yet): tables are
    /// written only when the power index changed, each under its own height and never
    /// rewritten, so equal answers for two heights mean the same table.
    static func votingPowerTableHeight(atOrBefore height: UInt64, in store: ModuleStore) throws(ExecutionError) -> UInt64 {
        guard let raw = try store.get(lastTableKey) else { return 0 }
        var h = readBE8(raw)
        while h > height {
            guard let table = try store.read(StoredPowerTable.self, at: tableKey(h)) else {
                throw .fatal(.corruptState("staking: power table at \(h) missing"))
            }
            h = table.previousHeight
        }
        return h
    }

    /// ``votingPowerTable(height:in:)`` as values. Walks back from the latest stored table:
    /// O(number of table changes after `height`).
    public static func votingPowerEntries(height: UInt64, in store: ModuleStore) throws(ExecutionError) -> [VotingPowerEntry] {
        let h = try votingPowerTableHeight(atOrBefore: height, in: store)
        guard h > 0 else { return [] }
        guard let table = try store.read(StoredPowerTable.self, at: tableKey(h)) else {
            throw .fatal(.corruptState("staking: power table at \(h) missing"))
        }
        return table.entries
    }
}
