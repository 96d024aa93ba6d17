import Foundation
import IshtarBitcoin

/// Queries (`/modules/staking/…`, canonical JSON; keys as 64 hex digits, txids in Bitcoin
/// display order, amounts and heights as decimal strings):
/// - `params` → `{version, params}`; `params/<version>` → the same for that version
/// - `finality-providers` → `{finality_providers: [provider], next_cursor}` ascending by key (paged)
/// - `finality-provider/<key>` → provider; `finality-provider/<key>/delegations` →
///   `{delegations: [...], next_cursor}` ascending by staking txid (paged)
/// - `delegations/staker/<key>` → `{delegations: [...], next_cursor}` (paged)
///
/// Paged listings answer `limit` items (default 100, at most 1,000) after `cursor`; see
/// ``PageRequest``.
/// - `delegation/<staking txid>` → delegation
/// - `voting-power/<height>` → `{height, table: [{fp_btc_pk, power}], total_power}`
extension StakingModule {
    static func parseKey(_ text: String) throws(ExecutionError) -> Data {
        guard let key = try? Data(hex: text), key.count == 32 else {
            throw .rule(QueryError.invalidArgument("key must be 64 hex digits"))
        }
        return key
    }

    static func paramsJSON(_ version: UInt32, _ params: StakingModuleParams) -> Data {
        canonicalJSON(["version": Int(version), "params": params.json])
    }

    /// One page of the delegations listed under an index prefix.
    static func delegationsPage(indexPrefix: Data, _ page: PageRequest, in store: ModuleStore) throws(ExecutionError) -> Data {
        let rows = try store.scan(prefix: indexPrefix, page: page)
        let list = try delegations(indexRows: rows.rows, in: store)
        return canonicalJSON(["delegations": list.map { $0.delegation.json(txid: $0.stakingTxid) }, "next_cursor": rows.nextCursorJSON])
    }

    /// Answers the paths above against the last committed state.
    public func query(_ request: QueryRequest, _ context: QueryContext) throws(ExecutionError) -> Data {
        let store = context.store
        let p = request.path
        switch (p.count, p.first ?? "") {
        case (1, "params"):
            let (version, params) = try Self.currentParameters(in: store)
            return Self.paramsJSON(version, params)
        case (2, "params"):
            guard let version = UInt32(p[1]) else { throw .rule(QueryError.invalidArgument("version must be a number")) }
            guard let params = try Self.parameters(version: version, in: store) else {
                throw .rule(QueryError.notFound("parameters version \(version)"))
            }
            return Self.paramsJSON(version, params)
        case (1, "finality-providers"):
            let page = try store.scan(prefix: Self.fpPrefix, page: request.pageOrFirst)
            var list: [[String: Any]] = []
            for row in page.rows {
                do { list.append(try FinalityProvider(decoding: row.value).json) } catch {
                    throw .fatal(.corruptState("staking/fp: \(error)"))
                }
            }
            return canonicalJSON(["finality_providers": list, "next_cursor": page.nextCursorJSON])
        case (2, "finality-provider"), (3, "finality-provider"):
            let key = try Self.parseKey(p[1])
            guard let fp = try Self.finalityProvider(key: key, in: store) else {
                throw .rule(QueryError.notFound("finality provider \(p[1])"))
            }
            if p.count == 2 { return canonicalJSON(fp.json) }
            guard p[2] == "delegations" else { break }
            return try Self.delegationsPage(indexPrefix: Self.fpDelegationsPrefix(key), request.pageOrFirst, in: store)
        case (3, "delegations") where p[1] == "staker":
            return try Self.delegationsPage(indexPrefix: Self.stakerDelegationsPrefix(try Self.parseKey(p[2])), request.pageOrFirst, in: store)
        case (2, "delegation"):
            guard let txid = try? Hash256(displayHex: p[1]) else {
                throw .rule(QueryError.invalidArgument("staking txid must be 64 hex digits"))
            }
            guard let d = try Self.delegation(stakingTxid: txid.rawValue, in: store) else {
                throw .rule(QueryError.notFound("delegation \(p[1])"))
            }
            return canonicalJSON(d.json(txid: txid.rawValue))
        case (2, "voting-power"):
            guard let height = UInt64(p[1]) else { throw .rule(QueryError.invalidArgument("height must be a number")) }
            let table = try Self.votingPowerEntries(height: height, in: store)
            return canonicalJSON([
                "height": String(height),
                "table": table.map { ["fp_btc_pk": $0.fpKey.hexString, "power": String($0.power)] },
                "total_power": String(table.reduce(UInt64(0)) { $0 &+ $1.power }),
            ])
        default:
            break
        }
        throw .rule(QueryError.unknownPath("/modules/staking/" + p.joined(separator: "/")))
    }
}
