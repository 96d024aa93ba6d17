import Foundation

/// Re-checking delegations after a BTC light-client reorg.
///
/// Rule (Babylon's): a staking transaction's inclusion block must be k-deep on the light
/// client's main chain when the proof is accepted; after that, depth is never re-checked — a
/// reorg that keeps the block on the main chain (even one that leaves it less than k deep for
/// a while) changes nothing. Only a block that LEAVES the main chain invalidates what was
/// proven with it:
/// - a delegation whose staking inclusion block left: its inclusion is forgotten; ACTIVE goes
///   back to VERIFIED (power removed, so it leaves the table from the next height), PENDING
///   stays PENDING. A new proof in the new chain (`AddBTCDelegationInclusionProof`, k-deep
///   again) re-activates it. Event `staking.delegation_inclusion_reorged`.
/// - an UNBONDED delegation whose unbonding block left: the unbonding report is forgotten and
///   the delegation returns to the status its remaining facts give (PENDING / VERIFIED without
///   quorum or inclusion, else ACTIVE again — or EXPIRED if the BTC tip has passed its due
///   height), since the staking output is unspent again on Bitcoin. A new `BTCUndelegate`
///   with a proof in the new chain unbonds it again. Event `staking.delegation_unbonding_reorged`.
///
/// Bounded work: delegations are indexed by the block they were proven in (`inc/<block32><txid32>`
/// for staking inclusions of PENDING/VERIFIED/ACTIVE delegations, `unb/<block32><txid32>` for
/// unbonding inclusions of UNBONDED ones). The end-block hook remembers the light client's tip
/// (`lctip`); when the remembered tip is no longer on the main chain it walks from it to the
/// fork point (``BTCLightClientModule/headersOffMainChain(endingAt:in:)``, O(reorg depth)),
/// and it also re-checks every block a proof referenced during this block (`touched/<block32>`,
/// plus a `touched` marker so that a block without proofs does not open an iterator to find
/// none; both cleared each block, so they never reach committed state), which catches a block
/// that joined and left the main chain within one block. Each block found off the main chain
/// costs one prefix scan of each index. A block with no reorg and no proofs costs three reads.
extension StakingModule {
    static let lastLightClientTipKey = Data("lctip".utf8)
    static let inclusionIndexPrefix = Data("inc/".utf8)
    static let unbondingIndexPrefix = Data("unb/".utf8)
    static let touchedPrefix = Data("touched/".utf8)
    /// Set with any `touched/` entry: the end-block check reads it (a cached point read) and
    /// scans `touched/` only when it is there. One entry per block touched keeps each proof's
    /// cost constant however many distinct blocks one control-plane block references.
    static let touchedMarkerKey = Data("touched".utf8)

    static func inclusionIndexKey(_ block: Data, _ txid: Data) -> Data { inclusionIndexPrefix + block + txid }
    static func unbondingIndexKey(_ block: Data, _ txid: Data) -> Data { unbondingIndexPrefix + block + txid }

    /// Indexes `d`'s staking inclusion (called when it is proven or restored).
    static func indexInclusion(_ d: BTCDelegation, txid: Data, store: ModuleStore) {
        guard let inclusion = d.inclusion else { return }
        store.set(inclusionIndexKey(inclusion.blockHash, txid), marker)
        touch(inclusion.blockHash, store: store)
    }

    /// Marks `block` for this block's end-block re-check.
    static func touch(_ block: Data, store: ModuleStore) {
        store.set(touchedPrefix + block, marker)
        store.set(touchedMarkerKey, marker)
    }

    /// Drops `d`'s staking-inclusion index entry (it reached a terminal status).
    static func unindexInclusion(_ d: BTCDelegation, txid: Data, store: ModuleStore) {
        guard let inclusion = d.inclusion else { return }
        store.delete(inclusionIndexKey(inclusion.blockHash, txid))
    }

    /// Indexes `d`'s unbonding inclusion (called when the unbonding is reported).
    static func indexUnbonding(_ d: BTCDelegation, txid: Data, store: ModuleStore) {
        guard let inclusion = d.unbondingInclusion else { return }
        store.set(unbondingIndexKey(inclusion.blockHash, txid), marker)
        touch(inclusion.blockHash, store: store)
    }

    /// The end-block re-check (see the extension's documentation). Runs before expiry and the
    /// power-table update, so removed power leaves the table written for the next height.
    func recheckAfterReorg(_ context: BlockContext) throws(ExecutionError) {
        let store = context.store
        let lc = context.store(of: BTCLightClientModule.moduleName)
        guard let tip = try BTCLightClientModule.tip(in: lc) else { return }
        var gone = Set<Data>()
        let remembered = try store.get(Self.lastLightClientTipKey)
        if remembered != tip.hash {
            if let remembered {
                for hash in try BTCLightClientModule.headersOffMainChain(endingAt: remembered, in: lc) { gone.insert(hash) }
            }
            store.set(Self.lastLightClientTipKey, tip.hash)
        }
        if try store.get(Self.touchedMarkerKey) != nil {
            store.delete(Self.touchedMarkerKey)
            for row in try store.scan(prefix: Self.touchedPrefix) {
                store.delete(row.key)
                let hash = Data(row.key.dropFirst(Self.touchedPrefix.count))
                if try !BTCLightClientModule.isOnMainChain(hash: hash, in: lc) { gone.insert(hash) }
            }
        }
        guard !gone.isEmpty else { return }
        // Sorted: the order reaches state (power updates) and events.
        for block in gone.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
            for row in try store.scan(prefix: Self.unbondingIndexPrefix + block) {
                try revertUnbonding(txid: Data(row.key.suffix(32)), key: row.key, lc: lc, context)
            }
            for row in try store.scan(prefix: Self.inclusionIndexPrefix + block) {
                try forgetInclusion(txid: Data(row.key.suffix(32)), key: row.key, context)
            }
        }
    }

    /// The staking inclusion block of `txid` left the main chain.
    func forgetInclusion(txid: Data, key: Data, _ context: BlockContext) throws(ExecutionError) {
        let store = context.store
        store.delete(key)
        guard var d = try Self.delegation(stakingTxid: txid, in: store), let inclusion = d.inclusion,
              key == Self.inclusionIndexKey(inclusion.blockHash, txid) else {
            throw .fatal(.corruptState("staking: inclusion index entry for \(txid.hexString) does not match its delegation"))
        }
        switch d.status {
        case .active:
            try Self.deactivate(d, txid: txid, params: try Self.paramsOf(d, in: store), store: store)
            d.status = .verified
        case .pending, .verified:
            break
        case .unbonded, .expired:
            throw .fatal(.corruptState("staking: inclusion index entry for \(d.status) delegation \(txid.hexString)"))
        }
        d.inclusion = nil
        store.write(d, at: Self.delegationKey(txid))
        var event = Self.statusEvent("staking.delegation_inclusion_reorged", txid, d)
        event.attributes.append(EventAttribute("btc_block_hash", Self.display(inclusion.blockHash)))
        event.attributes.append(EventAttribute("btc_height", String(inclusion.height)))
        context.emit(event)
    }

    /// The unbonding block of `txid` left the main chain: back to the status before the report.
    func revertUnbonding(txid: Data, key: Data, lc: ModuleStore, _ context: BlockContext) throws(ExecutionError) {
        let store = context.store
        store.delete(key)
        guard var d = try Self.delegation(stakingTxid: txid, in: store), d.status == .unbonded,
              let unbonding = d.unbondingInclusion, key == Self.unbondingIndexKey(unbonding.blockHash, txid) else {
            throw .fatal(.corruptState("staking: unbonding index entry for \(txid.hexString) does not match its delegation"))
        }
        let params = try Self.paramsOf(d, in: store)
        d.unbondingSpend = nil
        d.unbondingInclusion = nil
        // The staking block may have left in the same reorg (it is usually below the unbonding one).
        if let inclusion = d.inclusion, try !BTCLightClientModule.isOnMainChain(hash: inclusion.blockHash, in: lc) {
            d.inclusion = nil
        }
        d.status = d.covenantSignatures.count >= params.btc.covenantQuorum ? .verified : .pending
        if d.inclusion != nil {
            if let inclusion = d.inclusion { store.set(Self.inclusionIndexKey(inclusion.blockHash, txid), Self.marker) }
            if d.status == .verified {
                // Expiring on the spot drops the index entry again.
                try Self.activateOrExpire(&d, txid: txid, params: params, context)
            }
        }
        store.write(d, at: Self.delegationKey(txid))
        var event = Self.statusEvent("staking.delegation_unbonding_reorged", txid, d)
        event.attributes.append(EventAttribute("btc_block_hash", Self.display(unbonding.blockHash)))
        event.attributes.append(EventAttribute("btc_height", String(unbonding.height)))
        context.emit(event)
    }
}
