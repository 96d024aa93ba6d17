import Foundation

/// Queries (`/modules/finality/…`, canonical JSON; keys and hashes as hex, heights and
/// powers as decimal strings):
/// - `params` → the parameters (genesis shape)
/// - `block/<chain>/<height>` → `{chain_id, height, finalized, block_hash?, active_power?, tallies: [{block_hash, voted_power}]}`
/// - `votes/<chain>/<height>` → `{votes: [{fp_btc_pk, block_hash, public_randomness, signature}]}` by key
/// - `last-finalized/<chain>` → `{chain_id, height?, next_height}` (not found for an unknown chain)
/// - `evidence` → `{evidence: [...], next_cursor}` all; `evidence/<fp key>` → that provider's (paged)
/// - `signing-info/<fp key>` → `{fp_btc_pk, chain_id, missed_in_window, last_missed_height, jailed_until, jail_count}`
///   (misses in the window ending at its chain's last judged height — a consumer chain's last decided one; 0 right after a jail)
/// - `commitments/<fp key>/<chain>` → `{commitments: [{start_height, count, end_height, root, committed_at}],
///   next_cursor}` oldest first (paged)
/// - `commitment/<fp key>/<chain>/<height>` → the commitment covering the height (not found if none)
/// - `active-set/<chain>/<height>` → `{chain_id, height, total_power, providers: [{fp_btc_pk, power}]}`
///   (power desc, key asc; not found until the set is fixed)
extension FinalityModule {
    static func parseKey(_ text: String) throws(ExecutionError) -> Data {
        guard let key = try? Data(hex: text), key.count == 32 else {
            throw .rule(QueryError.invalidArgument("key must be 64 hex digits"))
        }
        return key
    }

    static func parseHeight(_ text: String) throws(ExecutionError) -> UInt64 {
        guard let h = UInt64(text) else { throw .rule(QueryError.invalidArgument("height must be a number")) }
        return h
    }

    /// Answers the paths above against the last committed state.
    public func query(_ request: QueryRequest, _ context: QueryContext) throws(ExecutionError) -> Data {
        let store = context.store
        let p = request.path
        switch (p.count, p.first ?? "") {
        case (1, "params"):
            return canonicalJSON(try Self.parameters(in: store).json)
        case (3, "block"):
            let (c, h) = (p[1], try Self.parseHeight(p[2]))
            let finalized = try Self.finalizedBlockHash(chainID: c, height: h, in: store)
            var out: [String: Any] = ["chain_id": c, "height": String(h), "finalized": finalized != nil]
            if let finalized {
                out["block_hash"] = finalized.hexString
            } else if c == context.block.chainID, let hash = try store.get(Self.blockHashKey(h)) {
                out["block_hash"] = hash.hexString
            }
            if let set = try Self.activeSet(chainID: c, height: h, in: store) {
                out["active_power"] = String(set.totalPower)
                // Members slashed since: their power and votes do not count while the height
                // is not finalized (the tallies below still include their votes).
                let slashed = try Self.slashedKeys(store).reduce(UInt64(0)) { $0 &+ (set.power(of: $1) ?? 0) }
                out["slashed_power"] = String(slashed)
            }
            let prefix = Self.tallyPrefix(c, h)
            out["tallies"] = try store.scan(prefix: prefix).map {
                ["block_hash": Data($0.key.dropFirst(prefix.count)).hexString, "voted_power": String(Self.readBE8($0.value))]
            }
            return canonicalJSON(out)
        case (3, "votes"):
            let (c, h) = (p[1], try Self.parseHeight(p[2]))
            let list = try Self.votes(c, h, store)
            let votes: [[String: Any]] = (0..<list.count).map { i in
                let vote = list.vote(at: i)
                return ["fp_btc_pk": list.key(at: i).hexString, "block_hash": vote.blockHash.hexString,
                        "public_randomness": vote.publicRandomness.hexString, "signature": vote.signature.hexString]
            }
            return canonicalJSON(["chain_id": c, "height": String(h), "votes": votes])
        case (2, "last-finalized"):
            guard let state = try Self.chainState(p[1], store) else { throw .rule(QueryError.notFound("chain \(p[1])")) }
            var out: [String: Any] = ["chain_id": p[1], "next_height": String(state.next)]
            if let last = state.lastFinalized { out["height"] = String(last) }
            return canonicalJSON(out)
        case (1, "evidence"), (2, "evidence"):
            let prefix = p.count == 1 ? Self.evidencePrefix : Self.evidencePrefix + (try Self.parseKey(p[1]))
            let page = try store.scan(prefix: prefix, page: request.pageOrFirst)
            let list = try Self.decodeAll(EquivocationEvidence.self, page.rows, "evidence")
            return canonicalJSON(["evidence": list.map(\.json), "next_cursor": page.nextCursorJSON])
        case (2, "signing-info"):
            let key = try Self.parseKey(p[1])
            let info = try store.read(SigningInfo.self, at: Self.signingInfoKey(key)) ?? SigningInfo()
            let params = try Self.parameters(in: store)
            // The window of the latest judged height of the provider's chain: on the control
            // plane h − timeout; on a consumer chain its last decided height (the judged ones
            // trail it by up to `timeout` blocks).
            let chain = try StakingModule.finalityProvider(key: key, in: context.store(of: StakingModule.moduleName))?.consumerChainID
                ?? context.block.chainID
            let judged: UInt64
            if chain == context.block.chainID {
                judged = context.block.height > params.finalitySigTimeout ? context.block.height - params.finalitySigTimeout : 0
            } else {
                judged = (try Self.chainState(chain, store)?.next).map { $0 > 0 ? $0 - 1 : 0 } ?? 0
            }
            return canonicalJSON(["fp_btc_pk": key.hexString, "chain_id": chain,
                                  "missed_in_window": String(info.missed(window: params.signedBlocksWindow, endingAt: judged)),
                                  "last_missed_height": String(info.missedHeights.last ?? 0),
                                  "jailed_until": String(info.jailedUntil), "jail_count": String(info.jailCount)])
        case (3, "commitments"):
            let page = try store.scan(prefix: Self.commitPrefix(try Self.parseKey(p[1]), p[2]), page: request.pageOrFirst)
            let list = try Self.decodeAll(PubRandCommitment.self, page.rows, "commitment")
            return canonicalJSON(["commitments": list.map(\.json), "next_cursor": page.nextCursorJSON])
        case (4, "commitment"):
            let (key, c, h) = (try Self.parseKey(p[1]), p[2], try Self.parseHeight(p[3]))
            guard let commitment = try Self.commitment(key, c, covering: h, store) else {
                throw .rule(QueryError.notFound("commitment of \(p[1]) on \(c) covering \(h)"))
            }
            return canonicalJSON(commitment.json)
        case (3, "active-set"):
            let (c, h) = (p[1], try Self.parseHeight(p[2]))
            guard let set = try Self.activeSet(chainID: c, height: h, in: store) else {
                throw .rule(QueryError.notFound("active set of \(c) at \(h)"))
            }
            return canonicalJSON(["chain_id": c, "height": String(h), "total_power": String(set.totalPower),
                                  "providers": set.entries.map { ["fp_btc_pk": $0.fpKey.hexString, "power": String($0.power)] }])
        default:
            break
        }
        throw .rule(QueryError.unknownPath("/modules/finality/" + p.joined(separator: "/")))
    }
}
