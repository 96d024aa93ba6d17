import Foundation
import IshtarBitcoin

/// Queries (`/modules/staking/…`, canonical JSON; keys as 64 hex digits, txids in Bitcoin
/// display order, amounts and heights as decimal strings):
/// - `params` → `{version, params}`; `params/<version>` → the same for that version
/// - `finality-providers` → `{finality_providers: [provider]}` ascending by key
/// - `finality-provider/<key>` → provider; `finality-provider/<key>/delegations` → `{delegations: [...]}`
/// - `delegations/staker/<key>` → `{delegations: [...]}`
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

    static func delegationsJSON(_ list: [(stakingTxid: Data, delegation: BTCDelegation)]) -> Data {
        canonicalJSON(["delegations": list.map { $0.delegation.json(txid: $0.stakingTxid) }])
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
            return canonicalJSON(["finality_providers": try Self.finalityProviders(in: store).map(\.json)])
        case (2, "finality-provider"), (3, "finality-provider"):
            let key = try Self.parseKey(p[1])
            guard let fp = try Self.finalityProvider(key: key, in: store) else {
                throw .rule(QueryError.notFound("finality provider \(p[1])"))
            }
            if p.count == 2 { return canonicalJSON(fp.json) }
            guard p[2] == "delegations" else { break }
            return Self.delegationsJSON(try Self.delegations(of: key, in: store))
        case (3, "delegations") where p[1] == "staker":
            return Self.delegationsJSON(try Self.delegations(ofStaker: try Self.parseKey(p[2]), in: store))
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
