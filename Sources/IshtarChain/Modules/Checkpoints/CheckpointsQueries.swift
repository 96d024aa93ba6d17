import Foundation
import IshtarBitcoin

extension CheckpointsModule {
    /// Answers `/modules/checkpoints/…`:
    /// - `epoch/<n>` → `{epoch, status, last_block_hash, last_block_height, first_height,
    ///   validators: [{address, power, signed}], signers: [address], signed_power, total_power,
    ///   qc: {bitmap, signatures, hash} (null while ACCUMULATING), status_history: [{status,
    ///   height, btc_tip_height}]}`
    /// - `status/<n>` → `{epoch, status}`
    /// - `last-finalized` → `{epoch}` ("0" if none)
    /// - `submissions/<n>` → `{epoch, submissions: [{reporter, submitter_id, txid1, txid2, block1,
    ///   block2, block1_height, block2_height, height, on_main_chain, depth (null off it)}],
    ///   next_cursor}` (paged: see ``PageRequest``)
    /// - `bitcoin-payloads/<n>/<submitter id hex>` → `{epoch, submitter_id, part1, part2}`: the
    ///   two OP_RETURN payloads (PROTOCOL §5) a relayer puts on Bitcoin for a sealed epoch.
    /// - `params` → `{epoch_length, btc_confirmation_depth, btc_finalization_timeout,
    ///   checkpoint_tag, initial_height}`
    /// - `current-epoch` → `{epoch, first_height, last_height, next_height}`: the epoch of the
    ///   next block to be executed.
    public func query(_ request: QueryRequest, _ context: QueryContext) throws(ExecutionError) -> Data {
        let store = context.store
        let p = request.path
        switch (p.first, p.count) {
        case ("epoch", 2):
            let cp = try Self.requireCheckpoint(p[1], store)
            return canonicalJSON(try Self.json(cp, store))
        case ("status", 2):
            let cp = try Self.requireCheckpoint(p[1], store)
            return canonicalJSON(["epoch": String(cp.epoch), "status": cp.status.name])
        case ("last-finalized", 1):
            return canonicalJSON(["epoch": String(try Self.lastFinalizedEpoch(in: store))])
        case ("submissions", 2):
            let epoch = try Self.parseEpoch(p[1])
            guard try Self.checkpoint(epoch: epoch, in: store) != nil else { throw .rule(QueryError.notFound("epoch \(epoch)")) }
            let lc = context.store(of: BTCLightClientModule.moduleName)
            var list: [[String: Any]] = []
            let page = try store.scan(prefix: Self.submissionsPrefix(epoch), page: request.pageOrFirst)
            for row in page.rows {
                let s: CheckpointSubmission
                do { s = try CheckpointSubmission(decoding: row.value) } catch {
                    throw .fatal(.corruptState("checkpoints/sub: \(error)"))
                }
                let d1 = try BTCLightClientModule.depth(of: s.blockHashes[0], in: lc)
                let d2 = try BTCLightClientModule.depth(of: s.blockHashes[1], in: lc)
                let depth: Any
                if let a = d1, let b = d2 { depth = String(min(a, b)) } else { depth = NSNull() }
                list.append([
                    "reporter": s.reporter.hexString, "submitter_id": s.submitterID.hexString,
                    "txid1": Self.display(s.txids[0]), "txid2": Self.display(s.txids[1]),
                    "block1": Self.display(s.blockHashes[0]), "block2": Self.display(s.blockHashes[1]),
                    "block1_height": String(s.blockHeights[0]), "block2_height": String(s.blockHeights[1]),
                    "height": String(s.height), "on_main_chain": d1 != nil && d2 != nil, "depth": depth,
                ])
            }
            return canonicalJSON(["epoch": String(epoch), "submissions": list, "next_cursor": page.nextCursorJSON])
        case ("bitcoin-payloads", 3):
            let epoch = try Self.parseEpoch(p[1])
            guard let submitter = try? Data(hex: p[2]), submitter.count == 20 else {
                throw .rule(QueryError.invalidArgument("submitter id must be 40 hex digits (20 bytes)"))
            }
            let parts = try Self.bitcoinPayloads(epoch: epoch, submitter: submitter, in: store)
            return canonicalJSON(["epoch": String(epoch), "submitter_id": submitter.hexString,
                                  "part1": parts.part1.hexString, "part2": parts.part2.hexString])
        case ("params", 1):
            let params = try Self.params(in: store)
            return canonicalJSON([
                "epoch_length": String(params.epochLength), "btc_confirmation_depth": String(params.confirmationDepth),
                "btc_finalization_timeout": String(params.finalizationTimeout), "checkpoint_tag": params.tag.hexString,
                "initial_height": String(params.initialHeight),
            ])
        case ("current-epoch", 1):
            let params = try Self.params(in: store)
            let next = max(context.block.height + 1, params.initialHeight)
            let epoch = params.epoch(ofHeight: next)
            let range = params.heights(ofEpoch: epoch)
            return canonicalJSON(["epoch": String(epoch), "first_height": String(range.lowerBound),
                                  "last_height": String(range.upperBound), "next_height": String(next)])
        default:
            throw .rule(QueryError.unknownPath("/modules/\(name)/" + p.joined(separator: "/")))
        }
    }

    static func parseEpoch(_ text: String) throws(ExecutionError) -> UInt64 {
        guard let epoch = UInt64(text) else { throw .rule(QueryError.invalidArgument("epoch must be a decimal number")) }
        return epoch
    }

    static func requireCheckpoint(_ text: String, _ store: ModuleStore) throws(ExecutionError) -> EpochCheckpoint {
        let epoch = try parseEpoch(text)
        guard let cp = try checkpoint(epoch: epoch, in: store) else { throw .rule(QueryError.notFound("epoch \(epoch)")) }
        return cp
    }

    static func json(_ cp: EpochCheckpoint, _ store: ModuleStore) throws(ExecutionError) -> [String: Any] {
        let params = try params(in: store)
        let signed = Set(cp.signatures.map { Int($0.index) })
        let validators: [[String: Any]] = cp.validators.validators.enumerated().map { i, v in
            ["address": v.address.hexString, "power": String(v.power), "signed": signed.contains(i)]
        }
        let signers = cp.signatures.map { cp.validators.validators[Int($0.index)].address.hexString }
        let qc: Any
        if cp.status >= .sealed {
            let q = cp.quorumCertificate
            qc = ["bitmap": q.bitmap.hexString, "signatures": q.signatures.map(\.hexString), "hash": q.hash.hexString]
                as [String: Any]
        } else {
            qc = NSNull()
        }
        return [
            "epoch": String(cp.epoch), "status": cp.status.name, "last_block_hash": cp.lastBlockHash.hexString,
            "last_block_height": String(cp.lastBlockHeight),
            "first_height": String(params.heights(ofEpoch: cp.epoch).lowerBound),
            "validators": validators, "signers": signers, "signed_power": String(cp.signedPower),
            "total_power": String(cp.validators.totalPower), "qc": qc,
            "status_history": cp.history.map {
                ["status": $0.status.name, "height": String($0.height), "btc_tip_height": String($0.btcTipHeight)]
            },
        ]
    }
}
