import Foundation

/// Why module parameters from genesis were rejected (codespace `"params"`).
public enum ParamsError: ChainRuleError, Equatable {
    /// The JSON does not have the module's parameter shape.
    case malformed(module: String, reason: String)
    /// A parameter is out of range.
    case outOfRange(module: String, name: String, reason: String)

    /// `"params"`.
    public static let codespace = "params"

    /// Stable code per case.
    public var code: UInt32 {
        switch self {
        case .malformed: return 2
        case .outOfRange: return 3
        }
    }

    /// Stable rule name per case.
    public var rule: String {
        switch self {
        case .malformed: return "malformed"
        case .outOfRange: return "out-of-range"
        }
    }

    /// One line.
    public var description: String {
        switch self {
        case let .malformed(module, reason): return "\(module) parameters are malformed: \(reason)"
        case let .outOfRange(_, name, reason): return "\(name) \(reason)"
        }
    }
}

extension GenesisContext {
    /// Decodes `params` (snake_case JSON keys) into `T`, or returns `defaults` when the
    /// genesis has no entry for this module.
    public func decodeParams<T: Decodable>(_ type: T.Type, defaults: T) throws(ExecutionError) -> T {
        guard let params else { return defaults }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        do {
            return try decoder.decode(T.self, from: params)
        } catch {
            throw .rule(ParamsError.malformed(module: module, reason: "\(error)"))
        }
    }
}

/// Built-in module `"consensus"`: the chain id, the governance-free validator set from
/// genesis and the consensus limits, kept in state so the app hash covers them.
/// Equivocation evidence committed in blocks is recorded under `evidence/<offence key>`
/// (``DoubleVoteEvidence/offenceKey``) with the height of the block that carried it, and
/// announced by an `equivocation` block event; an offence is recorded once.
/// Queries: `/modules/consensus/validators`, `/modules/consensus/params`,
/// `/modules/consensus/evidence` (paged: see ``PageRequest``).
public struct ConsensusModule: Module {
    /// `"consensus"`.
    public static let moduleName = "consensus"
    static let validatorsKey = Data("validators".utf8)
    static let paramsKey = Data("params".utf8)
    static let chainIDKey = Data("chain_id".utf8)
    static let evidencePrefix = Data("evidence/".utf8)

    /// A recorded offence: `u64 committedHeight ‖ evidence`.
    struct RecordedEvidence: BinaryCodable {
        var committedHeight: UInt64
        var evidence: DoubleVoteEvidence
        func encode(to w: inout BinaryWriter) {
            w.u64(committedHeight)
            evidence.encode(to: &w)
        }
        init(committedHeight: UInt64, evidence: DoubleVoteEvidence) {
            self.committedHeight = committedHeight
            self.evidence = evidence
        }
        init(from r: inout BinaryReader) throws(CodecError) {
            committedHeight = try r.u64("evidence committed height")
            evidence = try DoubleVoteEvidence(from: &r)
        }
    }

    /// Whether the offence `evidence` proves is already recorded.
    public static func hasEvidence(_ evidence: DoubleVoteEvidence, in store: ModuleStore) throws(ExecutionError) -> Bool {
        try store.contains(evidencePrefix + evidence.offenceKey)
    }

    /// Records a committed block's (validated, not yet recorded) evidence and returns its event.
    static func recordEvidence(_ evidence: DoubleVoteEvidence, height: UInt64, in store: ModuleStore) -> Event {
        store.write(RecordedEvidence(committedHeight: height, evidence: evidence), at: evidencePrefix + evidence.offenceKey)
        return Event(type: "equivocation", attributes: [
            EventAttribute("validator", evidence.validator.hexString),
            EventAttribute("height", String(evidence.voteA.height)),
            EventAttribute("round", String(evidence.voteA.round)),
            EventAttribute("vote_type", evidence.voteA.type == EvidenceVote.prevote ? "prevote" : "precommit"),
        ])
    }

    /// The module.
    public init() {}

    /// `"consensus"`.
    public var name: String { Self.moduleName }

    /// Stores the chain id, validators and consensus parameters from genesis.
    public func initGenesis(_ context: GenesisContext) throws(ExecutionError) {
        if let params = context.params, params != Data("{}".utf8) {
            throw .rule(ParamsError.malformed(module: name, reason: "the consensus module takes no parameters"))
        }
        let g = context.genesis
        context.store.set(Self.chainIDKey, Data(g.chainID.utf8))
        context.store.write(g.validators, at: Self.validatorsKey)
        context.store.write(g.consensusParams, at: Self.paramsKey)
    }

    /// The validator set in `store` (this module's slice).
    public static func validators(in store: ModuleStore) throws(ExecutionError) -> ChainValidatorSet? {
        try store.read(ChainValidatorSet.self, at: validatorsKey)
    }

    /// The consensus parameters in `store` (this module's slice).
    public static func params(in store: ModuleStore) throws(ExecutionError) -> ConsensusParams? {
        try store.read(ConsensusParams.self, at: paramsKey)
    }

    /// `validators` → JSON list; `params` → JSON object; `evidence` → `{evidence, next_cursor}`.
    public func query(_ request: QueryRequest, _ context: QueryContext) throws(ExecutionError) -> Data {
        switch request.path {
        case ["validators"]:
            guard let set = try Self.validators(in: context.store) else { throw .rule(QueryError.notFound("validator set")) }
            return canonicalJSON([
                "total_power": String(set.totalPower),
                "hash": set.hash.hexString,
                "validators": set.validators.map {
                    ["pub_key": $0.publicKey.hexString, "power": String($0.power), "name": $0.name]
                },
            ])
        case ["params"]:
            guard let p = try Self.params(in: context.store) else { throw .rule(QueryError.notFound("consensus params")) }
            return canonicalJSON(["max_block_bytes": p.maxBlockBytes, "max_tx_bytes": p.maxTxBytes])
        case ["evidence"]:
            var list: [[String: Any]] = []
            let page = try context.store.scan(prefix: Self.evidencePrefix, page: request.pageOrFirst)
            for row in page.rows {
                guard let rec = try? RecordedEvidence(decoding: row.value) else {
                    throw .fatal(.corruptState("consensus/evidence/\(row.key.hexString)"))
                }
                func vote(_ v: EvidenceVote) -> [String: Any] {
                    ["block_hash": v.blockHash?.hexString ?? "", "signature": v.signature.hexString]
                }
                let e = rec.evidence
                list.append([
                    "validator": e.validator.hexString, "height": String(e.voteA.height), "round": Int(e.voteA.round),
                    "vote_type": e.voteA.type == EvidenceVote.prevote ? "prevote" : "precommit",
                    "committed_height": String(rec.committedHeight), "vote_a": vote(e.voteA), "vote_b": vote(e.voteB),
                ])
            }
            return canonicalJSON(["evidence": list, "next_cursor": page.nextCursorJSON])
        default:
            throw .rule(QueryError.unknownPath("/modules/consensus/" + request.path.joined(separator: "/")))
        }
    }
}
