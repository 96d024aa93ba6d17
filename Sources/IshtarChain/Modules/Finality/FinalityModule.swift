import Crypto
import Foundation
import IshtarCrypto
import IshtarStore

/// Module `"finality"`: EOTS public-randomness commitments, finality votes, tallying,
/// equivocation evidence and liveness (PROTOCOL §4, §6). Register it after `staking`.
///
/// **Active set** of (chain c, height h): providers registered for c with power, not jailed,
/// not slashed, with randomness committed covering h, by power desc then key asc, top
/// `max_active_finality_providers`. For the control plane the power is the staking module's
/// table in force at h (so a provider whose delegations went away at h − 1 is absent from
/// h on; the table lists every eligible provider, so the top N is taken here, after the
/// randomness and jail checks, as PROTOCOL §6 orders) and the set is fixed in the
/// begin-block hook of h — copied from h − 1 when neither the table nor any commitment,
/// jailing or slashing changed it; for a consumer chain the power is
/// the providers' current ACTIVE sats, the set is fixed the first time it is needed (its
/// first vote, or the tally reaching it), and randomness is not a membership condition
/// there (only a voting one): fixed at a vote far ahead of the consumer, it would have let
/// the one provider that committed that far finalize alone. Once fixed, a set never changes; a provider slashed
/// later loses its power in every height not yet finalized — its votes stop counting and its
/// power leaves the denominator — so double-voting cannot stall finality.
///
/// **Votes** are accepted only from members of the height's active set, with the committed
/// randomness for that height (Merkle proof against the commitment) and a valid EOTS
/// signature over `BE8(height) ‖ blockHash`. On the control plane the hash must be the block
/// committed at that height (votes for heights not yet committed are refused); consumer
/// chains are tallied per block hash. A second vote by the same provider for another hash at
/// the same height is evidence: both signatures are stored, the provider is slashed at once,
/// and `finality.equivocation` carries everything needed to extract its key.
///
/// **Tally** (end block): per chain, heights in order from the cursor: a height with no
/// active power (slashed members not counted) is skipped (never finalized, never blocks the
/// next); otherwise it finalizes when voted power × 3 > active power × 2, both without slashed
/// members, or the cursor stops there.
///
/// **Liveness**: on the control plane, at the end of block h, height h − `finality_sig_timeout`
/// is judged; a consumer chain's height is judged `finality_sig_timeout` control-plane blocks
/// after its tally decided it (the control plane has no clock of the consumer's). Each member
/// of the judged height's active set that did not vote records a miss. The window is the
/// last `signed_blocks_window` heights of the provider's chain (heights where it was not
/// active never count as misses); more than `window − round(min_signed × window)` misses jails
/// it for `jail_duration_ms`. Only misses write state, so signing providers cost no writes.
///
/// Cost per vote: a handful of point reads (the provider, the height's vote list, the block hash,
/// its latest commitment — a binary search over its commitments only if the height is older —,
/// the active set; membership in the lists is a binary search over raw bytes), one Merkle path, one
/// BIP-340 verification, and two values rewritten (the height's vote list and tally), so a
/// block of votes adds only a few keys to the app-hash update.
///
/// State (keys under `finality/`): `params`; `first` → BE8 first block height;
/// `cs/<chain>` → tally cursor; `as/<chain><BE8 h>` → active set; `bh/<BE8 h>` → control-plane
/// block hash; `prl/<fp><chain>` → BE8 number of commitments ‖ the latest;
/// `pr/<fp><chain><BE8 seq>` → commitment; `votes/<chain><BE8 h>` → the height's votes (one
/// sorted list, see ``VoteList``); `tally/<chain><BE8 h><hash>` → BE8 voted power;
/// `fin/<chain><BE8 h>` → finalized hash; `ev/<fp><chain><BE8 h>` → evidence; `slashed` →
/// sorted keys of providers slashed for equivocation; `ascache`, `asdirty` → whether the
/// previous control-plane active set can be reused; `si/<fp>` → signing info (its misses
/// still in the window); `ld/<chain><BE8 b>` → BE8 from ‖ BE8 to, the consumer heights
/// `from..<to` whose liveness block b judges. `<chain>` is `u8 length ‖ UTF-8`.
///
/// Limits, by choice: a consumer chain's tally starts at the height genesis lists for it
/// (`consumer_chains`) or, for a chain not listed, at its first accepted commitment's start
/// height (only if genesis allows unlisted chains: `allow_unlisted_consumer_chains`); later commitments must start within `max_pub_rand_start_offset` of its cursor; a
/// height with active power that never gets enough votes stops that chain's finality (as in
/// Babylon); on the control plane a vote for another hash than the committed
/// block is refused unless the provider already voted the committed one (then it is evidence).
public struct FinalityModule: Module {
    /// `"finality"`.
    public static let moduleName = "finality"
    /// Event of a double vote committed as evidence (the provider is slashed).
    public static let equivocationEvent = "finality.equivocation"
    /// Block event of a provider jailed for missing too many votes.
    public static let jailedEvent = "finality.fp_jailed"
    /// Most heights one end-block hook walks per chain (bounds the work of skipping heights
    /// without active power).
    static let maxTallySteps = 1000

    /// The module.
    public init() {}

    /// `"finality"`.
    public var name: String { Self.moduleName }
    /// The three message types.
    public var messageTypes: [String] { [CommitPubRand.type, AddFinalitySig.type, UnjailFinalityProvider.type] }

    // MARK: - Keys

    static let paramsKey = Data("params".utf8)
    static let firstHeightKey = Data("first".utf8)
    static let slashedKey = Data("slashed".utf8)
    /// `u64 validUntil ‖ u64 tableHeight` of the last computed control-plane active set: the
    /// power table it was computed from is the one staking wrote for `tableHeight`.
    static let activeSetCacheKey = Data("ascache".utf8)
    /// Set when a commitment, jailing, unjailing or slashing may change the next active set.
    static let activeSetDirtyKey = Data("asdirty".utf8)
    static let marker = Data([1])

    static func be8(_ v: UInt64) -> Data { Data(bigEndian8: v) }
    static func readBE8(_ d: some DataProtocol) -> UInt64 { d.prefix(8).reduce(0) { $0 << 8 | UInt64($1) } }
    /// ``readBE8(_:)-(DataProtocol)`` for `Data` (a tally is read once per vote).
    static func readBE8(_ d: Data) -> UInt64 { d.withUnsafeBytes { $0.prefix(8).reduce(0) { $0 << 8 | UInt64($1) } } }
    static func chainKey(_ chain: String) -> Data { key("") { appendChain(&$0, chain) } }

    // Keys are built in one byte buffer (several per vote; `Data` concatenation and
    // `Data(String.utf8)` allocate and copy at every step).
    static func key(_ prefix: StaticString, _ build: (inout [UInt8]) -> Void) -> Data {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(96)
        prefix.withUTF8Buffer { bytes.append(contentsOf: $0) }
        build(&bytes)
        return bytes.withUnsafeBytes { Data($0) }
    }

    /// `u8 length ‖ UTF-8`.
    static func appendChain(_ bytes: inout [UInt8], _ chain: String) {
        var chain = chain
        chain.withUTF8 { utf8 in
            bytes.append(UInt8(truncatingIfNeeded: utf8.count))
            bytes.append(contentsOf: utf8)
        }
    }

    static func appendBE8(_ bytes: inout [UInt8], _ v: UInt64) {
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: v >> UInt64(shift))) }
    }

    static func appendData(_ bytes: inout [UInt8], _ d: Data) {
        d.withUnsafeBytes { bytes.append(contentsOf: $0) }
    }

    static func chainStateKey(_ c: String) -> Data { key("cs/") { appendChain(&$0, c) } }
    static func activeSetKey(_ c: String, _ h: UInt64) -> Data { key("as/") { appendChain(&$0, c); appendBE8(&$0, h) } }
    static func blockHashKey(_ h: UInt64) -> Data { key("bh/") { appendBE8(&$0, h) } }
    static func latestCommitKey(_ fp: Data, _ c: String) -> Data { key("prl/") { appendData(&$0, fp); appendChain(&$0, c) } }
    static func commitPrefix(_ fp: Data, _ c: String) -> Data { key("pr/") { appendData(&$0, fp); appendChain(&$0, c) } }
    static func commitKey(_ fp: Data, _ c: String, _ seq: UInt64) -> Data {
        key("pr/") { appendData(&$0, fp); appendChain(&$0, c); appendBE8(&$0, seq) }
    }
    static func votesKey(_ c: String, _ h: UInt64) -> Data { key("votes/") { appendChain(&$0, c); appendBE8(&$0, h) } }
    static func tallyPrefix(_ c: String, _ h: UInt64) -> Data { key("tally/") { appendChain(&$0, c); appendBE8(&$0, h) } }
    static func tallyKey(_ c: String, _ h: UInt64, _ hash: Data) -> Data {
        key("tally/") { appendChain(&$0, c); appendBE8(&$0, h); appendData(&$0, hash) }
    }
    static func finalizedKey(_ c: String, _ h: UInt64) -> Data { key("fin/") { appendChain(&$0, c); appendBE8(&$0, h) } }
    static let evidencePrefix = Data("ev/".utf8)
    static func evidenceKey(_ fp: Data, _ c: String, _ h: UInt64) -> Data {
        key("ev/") { appendData(&$0, fp); appendChain(&$0, c); appendBE8(&$0, h) }
    }
    static func signingInfoKey(_ fp: Data) -> Data { key("si/") { appendData(&$0, fp) } }
    static func livenessDueKey(_ c: String, _ b: UInt64) -> Data { key("ld/") { appendChain(&$0, c); appendBE8(&$0, b) } }

    // MARK: - Reading state (public API)

    /// The parameters.
    public static func parameters(in store: ModuleStore) throws(ExecutionError) -> FinalityParams {
        guard let p = try store.read(FinalityParams.self, at: paramsKey) else { throw .rule(FinalityModuleError.notConfigured) }
        return p
    }

    /// The last finalized height of `chainID`, if any.
    public static func lastFinalizedHeight(chainID: String, in store: ModuleStore) throws(ExecutionError) -> UInt64? {
        try chainState(chainID, store)?.lastFinalized
    }

    /// The finalized block hash at `height` of `chainID`, if that height is finalized.
    public static func finalizedBlockHash(chainID: String, height: UInt64, in store: ModuleStore) throws(ExecutionError) -> Data? {
        try store.get(finalizedKey(chainID, height))
    }

    /// Every equivocation evidence of `fpKey`, by chain then height.
    public static func evidence(of fpKey: Data, in store: ModuleStore) throws(ExecutionError) -> [EquivocationEvidence] {
        try decodeAll(EquivocationEvidence.self, store.scan(prefix: evidencePrefix + fpKey), "evidence")
    }

    /// The provider's commitments for `chainID`, ascending.
    public static func commitments(of fpKey: Data, chainID: String, in store: ModuleStore) throws(ExecutionError) -> [PubRandCommitment] {
        try decodeAll(PubRandCommitment.self, store.scan(prefix: commitPrefix(fpKey, chainID)), "commitment")
    }

    /// The active set of (chain, height), if it has been fixed.
    public static func activeSet(chainID: String, height: UInt64, in store: ModuleStore) throws(ExecutionError) -> ActiveSet? {
        try activeSet(at: store.key(activeSetKey(chainID, height)), in: store)
    }

    static func activeSet(at key: StateKey, in store: ModuleStore) throws(ExecutionError) -> ActiveSet? {
        try store.read(at: key) { raw throws(CodecError) in try ActiveSet(stored: raw) }
    }

    static func decodeAll<T: BinaryCodable>(_ type: T.Type, _ rows: [KeyValue], _ what: String) throws(ExecutionError) -> [T] {
        var out: [T] = []
        for row in rows {
            do { out.append(try T(decoding: row.value)) } catch { throw .fatal(.corruptState("finality \(what): \(error)")) }
        }
        return out
    }

    static func chainState(_ c: String, _ store: ModuleStore) throws(ExecutionError) -> ChainTallyState? {
        try store.read(ChainTallyState.self, at: chainStateKey(c))
    }

    /// The chains with a tally state, in the key order of their states: one value read every
    /// block (from memory once cached) instead of an iterator opened over `cs/` every block.
    static let chainsKey = Data("chains".utf8)

    static func tallyChains(_ store: ModuleStore) throws(ExecutionError) -> [String] {
        try store.read(at: chainsKey) { raw throws(CodecError) -> [String] in
            var r = BinaryReader(raw)
            let n = try r.count("chains", minElementSize: 5)
            var chains: [String] = []
            chains.reserveCapacity(n)
            for _ in 0..<n { chains.append(try r.string("chain id", limit: StakingModule.maxChainIDBytes)) }
            try r.finish()
            return chains
        } ?? []
    }

    /// Creates `c`'s tally state, starting at `next`, and lists the chain.
    static func startTally(_ c: String, next: UInt64, _ store: ModuleStore) throws(ExecutionError) {
        store.write(ChainTallyState(next: next), at: chainStateKey(c))
        var chains = try tallyChains(store)
        guard !chains.contains(c) else { return }
        chains.append(c)
        chains.sort { chainStateKey($0).lexicographicallyPrecedes(chainStateKey($1)) }
        var w = BinaryWriter()
        w.count(chains.count)
        for chain in chains { w.string(chain) }
        store.set(chainsKey, w.data)
    }

    static func u64(_ store: ModuleStore, _ key: Data) throws(ExecutionError) -> UInt64? {
        try u64(store, store.key(key))
    }

    static func u64(_ store: ModuleStore, _ key: StateKey) throws(ExecutionError) -> UInt64? {
        guard let raw = try store.get(key) else { return nil }
        guard raw.count == 8 else { throw .fatal(.corruptState("\(key.full.data.hexString): expected 8 bytes, found \(raw.count)")) }
        return readBE8(raw)
    }

    /// The stored form of ``latestCommitment(_:_:_:)``.
    struct LatestCommitment {
        var commitment: PubRandCommitment
        var count: UInt64
    }

    /// The latest commitment of (fp, chain) and how many there are: one read (it is kept
    /// under its own key as `u64 count ‖ commitment` besides the numbered history).
    static func latestCommitment(_ fp: Data, _ c: String, _ store: ModuleStore) throws(ExecutionError) -> (PubRandCommitment, UInt64)? {
        try latestCommitment(at: store.key(latestCommitKey(fp, c)), store)
    }

    static func latestCommitment(at key: StateKey, _ store: ModuleStore) throws(ExecutionError) -> (PubRandCommitment, UInt64)? {
        let latest = try store.read(at: key) { raw throws(CodecError) -> LatestCommitment in
            var r = BinaryReader(raw)
            let n = try r.u64("commitment count")
            let latest = try PubRandCommitment(from: &r)
            try r.finish()
            return LatestCommitment(commitment: latest, count: n)
        }
        return latest.map { ($0.commitment, $0.count) }
    }

    /// The commitment of (fp, chain) covering `height`: the latest one first (where nearly
    /// every vote lands), else a binary search over the earlier ones (their ranges ascend and
    /// never overlap). O(log commitments) reads.
    static func commitment(_ fp: Data, _ c: String, covering height: UInt64, _ store: ModuleStore) throws(ExecutionError) -> PubRandCommitment? {
        guard let (latest, n) = try latestCommitment(fp, c, store) else { return nil }
        return try commitment(fp, c, covering: height, latest: latest, count: n, store)
    }

    static func commitment(_ fp: Data, _ c: String, covering height: UInt64, latest: PubRandCommitment, count n: UInt64,
                           _ store: ModuleStore) throws(ExecutionError) -> PubRandCommitment? {
        if latest.covers(height) { return latest }
        guard height < latest.startHeight else { return nil }
        var lower: UInt64 = 0
        var upper: UInt64 = n - 1
        var found: PubRandCommitment?
        while lower < upper {
            let mid = lower + (upper - lower) / 2
            guard let c = try store.read(PubRandCommitment.self, at: commitKey(fp, c, mid)) else {
                throw .fatal(.corruptState("finality: commitment \(mid) of \(fp.hexString) missing"))
            }
            if c.startHeight <= height {
                found = c
                lower = mid + 1
            } else {
                upper = mid
            }
        }
        guard let found, found.covers(height) else { return nil }
        return found
    }

    /// The votes of (chain, height).
    static func votes(_ c: String, _ h: UInt64, _ store: ModuleStore) throws(ExecutionError) -> VoteList {
        try votes(at: store.key(votesKey(c, h)), store)
    }

    static func votes(at key: StateKey, _ store: ModuleStore) throws(ExecutionError) -> VoteList {
        try store.read(at: key) { raw throws(CodecError) in try VoteList(stored: raw) } ?? VoteList()
    }

    /// The start of the first commitment of (fp, chain) starting after `height`, given that
    /// the latest one does. O(log commitments) reads.
    static func firstCommitmentStart(_ fp: Data, _ c: String, after height: UInt64, latest: PubRandCommitment, count n: UInt64,
                                     _ store: ModuleStore) throws(ExecutionError) -> UInt64 {
        var lower: UInt64 = 0
        var upper: UInt64 = n - 1
        var start = latest.startHeight
        while lower < upper {
            let mid = lower + (upper - lower) / 2
            guard let commitment = try store.read(PubRandCommitment.self, at: commitKey(fp, c, mid)) else {
                throw .fatal(.corruptState("finality: commitment \(mid) of \(fp.hexString) missing"))
            }
            if commitment.startHeight > height {
                start = commitment.startHeight
                upper = mid
            } else {
                lower = mid + 1
            }
        }
        return start
    }

    static func slashedKeys(_ store: ModuleStore) throws(ExecutionError) -> [Data] {
        guard let raw = try store.get(slashedKey) else { return [] }
        guard raw.count % 32 == 0 else { throw .fatal(.corruptState("finality/slashed: length \(raw.count)")) }
        return stride(from: 0, to: raw.count, by: 32).map { Data(raw[raw.startIndex + $0..<raw.startIndex + $0 + 32]) }
    }

    /// Whether `voted × 3 > total × 2`, without overflow.
    static func exceedsTwoThirds(voted: UInt64, total: UInt64) -> Bool {
        let lhs = voted.multipliedFullWidth(by: 3)
        let rhs = total.multipliedFullWidth(by: 2)
        return lhs.high != rhs.high ? lhs.high > rhs.high : lhs.low > rhs.low
    }

    // MARK: - Active sets

    /// The active set of (chain, height), fixing it now if it was not yet (see the type's doc).
    static func activeSetFixing(_ c: String, _ h: UInt64, controlPlane: Bool, _ context: ExecutionContext,
                                _ params: FinalityParams) throws(ExecutionError) -> ActiveSet {
        let store = context.store
        if let set = try activeSet(chainID: c, height: h, in: store) { return set }
        // The control plane's sets are fixed at their block; a height without one predates
        // this module's first block.
        if controlPlane { return ActiveSet(entries: []) }
        let set = try computeActiveSet(c, h, controlPlane: false, context, params).set
        store.set(activeSetKey(c, h), set.stored)
        return set
    }

    /// Computes the active set of (chain, height) and the last height up to which it stays
    /// the same as long as the power table does and no commitment, jailing, unjailing or
    /// slashing happens (members' commitments end; a table provider's later commitment starts).
    static func computeActiveSet(_ c: String, _ h: UInt64, controlPlane: Bool, _ context: ExecutionContext,
                                 _ params: FinalityParams,
                                 table: [VotingPowerEntry]? = nil) throws(ExecutionError) -> (set: ActiveSet, validUntil: UInt64) {
        let staking = context.store(of: StakingModule.moduleName)
        let store = context.store
        var candidates: [VotingPowerEntry] = []
        if controlPlane {
            if let table { candidates = table } else { candidates = try StakingModule.votingPowerEntries(height: h, in: staking) }
        } else {
            for fp in try StakingModule.finalityProviders(in: staking)
            where fp.consumerChainID == c && fp.slashedHeight == nil && !fp.jailed && fp.activeSats > 0 {
                candidates.append(VotingPowerEntry(fpKey: fp.btcKey, power: fp.activeSats))
            }
            candidates.sort { $0.power != $1.power ? $0.power > $1.power : $0.fpKey.lexicographicallyPrecedes($1.fpKey) }
        }
        var members: [VotingPowerEntry] = []
        var validUntil = UInt64.max
        for e in candidates {
            guard members.count < Int(params.maxActiveFinalityProviders) else { break }
            if !controlPlane {
                // A consumer chain's set is fixed when first needed — possibly long before the
                // consumer reaches h, at a vote for a height far ahead. Asking for randomness
                // covering h then would make whoever committed furthest ahead the only member
                // there, its lone vote finalizing any hash. So members are the top N by stake
                // (as a consumer's finality gadget counts them); each still needs randomness
                // covering h to vote.
                members.append(e)
                continue
            }
            if controlPlane {
                // The table was written before the previous block's end-block jailing; re-check.
                guard let fp = try StakingModule.finalityProvider(key: e.fpKey, in: staking),
                      fp.slashedHeight == nil, !fp.jailed else { continue }
            }
            guard let (latest, n) = try latestCommitment(e.fpKey, c, store) else { continue }
            if let covering = try commitment(e.fpKey, c, covering: h, latest: latest, count: n, store) {
                members.append(e)
                validUntil = min(validUntil, covering.endHeight)
            } else if latest.startHeight > h {
                // It joins when its first commitment after h starts (not necessarily the latest).
                let next = try firstCommitmentStart(e.fpKey, c, after: h, latest: latest, count: n, store)
                validUntil = min(validUntil, next - 1)
            }
        }
        return (ActiveSet(entries: members), validUntil)
    }

    // MARK: - Genesis

    /// Validates `modules.finality` (see ``FinalityParams``) and starts the control plane's tally.
    public func initGenesis(_ context: GenesisContext) throws(ExecutionError) {
        var genesis = FinalityGenesis()
        if let raw = context.params {
            do {
                if let object = try JSONSerialization.jsonObject(with: raw) as? [String: Any] {
                    let allowed = Set(FinalityGenesis.CodingKeys.allCases.map(\.rawValue))
                    if let unknown = object.keys.sorted().first(where: { !allowed.contains($0) }) {
                        throw ExecutionError.rule(ParamsError.malformed(module: name, reason: "unknown field \(unknown)"))
                    }
                    let entryFields = Set(ConsumerChainStart.CodingKeys.allCases.map(\.rawValue))
                    for entry in object["consumer_chains"] as? [[String: Any]] ?? [] {
                        if let unknown = entry.keys.sorted().first(where: { !entryFields.contains($0) }) {
                            throw ExecutionError.rule(ParamsError.malformed(module: name, reason: "unknown field consumer_chains[].\(unknown)"))
                        }
                    }
                }
                genesis = try JSONDecoder().decode(FinalityGenesis.self, from: raw)
            } catch let e as ExecutionError {
                throw e
            } catch {
                throw .rule(ParamsError.malformed(module: name, reason: "\(error)"))
            }
        }
        let params = try genesis.validated(module: name)
        // One N for the chain: staking shows its table's top N as ACTIVE, and an operator
        // reading that status must see the set that votes (when staking runs beside us).
        if let (_, staking) = try? StakingModule.currentParameters(in: context.store(of: StakingModule.moduleName)),
           staking.maxActiveFinalityProviders != params.maxActiveFinalityProviders {
            throw .rule(ParamsError.outOfRange(
                module: name, name: "max_active_finality_providers",
                reason: "\(params.maxActiveFinalityProviders) differs from staking's \(staking.maxActiveFinalityProviders); set both to the same N"))
        }
        if let problem = FinalityGenesis.consumerChainsProblem(params.consumerChains, controlPlane: context.block.chainID) {
            throw .rule(ParamsError.outOfRange(module: name, name: "consumer_chains", reason: problem))
        }
        let first = context.block.height + 1
        context.store.write(params, at: Self.paramsKey)
        context.store.set(Self.firstHeightKey, Self.be8(first))
        try Self.startTally(context.block.chainID, next: first, context.store)
        // A listed consumer's cursor exists from genesis, so no commitment can choose it.
        for consumer in params.consumerChains {
            try Self.startTally(consumer.chainID, next: consumer.startHeight, context.store)
        }
    }

    // MARK: - Messages

    static func decode<T: BinaryCodable>(_ type: T.Type, _ message: Message) throws(ExecutionError) -> T {
        do {
            return try T(decoding: message.payload)
        } catch {
            throw .rule(FinalityModuleError.malformedMessage(type: message.type, error))
        }
    }

    /// Each commitment's last verified randomness path: a provider's next vote proves the
    /// next leaf, whose path differs only below where the two meet (``MerklePathMemo``).
    static let proofPaths = MerklePathMemo(capacity: 4096)

    /// A vote decoded and its EOTS signature verified. The application keeps the result with
    /// the admitted transaction (``validatedForm(of:sender:)``), so a vote is decoded and
    /// verified once per node however often it is checked before its block.
    static func decodeVote(_ message: Message) throws(ExecutionError) -> DecodedVote {
        // Its fields are slices of the payload: the decoded vote is kept with its
        // transaction, and each copied 32-byte field was two more allocations to make and
        // later free.
        var r = BinaryReader(slicing: message.payload)
        let decoded: AddFinalitySig
        do throws(CodecError) {
            let vote = try AddFinalitySig(from: &r)
            try r.finish()
            decoded = vote
        } catch {
            throw .rule(FinalityModuleError.malformedMessage(type: message.type, error))
        }
        // The EOTS signature needs nothing from state, so it is checked here, with the
        // transaction's other signatures: a forged vote costs no state reads, and a block
        // carrying one is invalid, like one carrying a bad transaction signature.
        return try DecodedVote(verifying: decoded)
    }

    /// Stateless checks: canonical payloads (fixed-size keys, hashes and signatures, chain id
    /// 1…64 bytes, proof depth ≤ 64). Keys are checked against the registered provider.
    public func validateMessage(_ message: Message, sender: Data) throws(ExecutionError) {
        switch message.type {
        case CommitPubRand.type: _ = try Self.decode(CommitPubRand.self, message)
        case AddFinalitySig.type: _ = try Self.decodeVote(message)
        case UnjailFinalityProvider.type: _ = try Self.decode(UnjailFinalityProvider.self, message)
        default: throw .rule(FinalityModuleError.unknownMessage(message.type))
        }
    }

    /// A vote's decoded form (``decodeVote(_:)``): the one `checkTx` kept with the
    /// transaction saves looking the vote up by its bytes again.
    public func validatedForm(of message: Message, sender: Data) throws(ExecutionError) -> AnyObject? {
        guard message.type == AddFinalitySig.type else {
            try validateMessage(message, sender: sender)
            return nil
        }
        return try Self.decodeVote(message)
    }

    /// Executes one message: every check first, then the writes.
    public func deliverMessage(_ message: Message, _ context: TxContext) throws(ExecutionError) {
        switch message.type {
        case CommitPubRand.type: try commitPubRand(Self.decode(CommitPubRand.self, message), context)
        case AddFinalitySig.type:
            // A form kept by the application was made from these very bytes (see
            // ``Module/validatedForm(of:sender:)``), so it is what decoding would return.
            if let kept = context.validatedForm as? DecodedVote {
                try addFinalitySig(kept, context)
            } else {
                try addFinalitySig(Self.decodeVote(message), context)
            }
        case UnjailFinalityProvider.type: try unjail(Self.decode(UnjailFinalityProvider.self, message), context)
        default: throw .rule(FinalityModuleError.unknownMessage(message.type))
        }
    }

    /// The registered provider for `key` serving `chainID`.
    static func provider(_ key: Data, chainID: String, _ context: ExecutionContext) throws(ExecutionError) -> FinalityProvider {
        let staking = context.store(of: StakingModule.moduleName)
        return try provider(key, at: staking.key(StakingModule.fpKey(key)), chainID: chainID, staking)
    }

    /// ``provider(_:chainID:_:)`` with the record's key already made (`stateKey`, of `staking`).
    static func provider(_ key: Data, at stateKey: StateKey, chainID: String, _ staking: ModuleStore) throws(ExecutionError) -> FinalityProvider {
        try provider(key, at: stateKey, chainID: chainID, staking, reading: { $0 })
    }

    /// A provider record found for a vote or commitment: serving the requested chain (with
    /// what was read of it), or registered for another.
    private enum ProviderLookup<R> { case serving(R), registeredFor(String) }

    /// What `project` reads of the registered provider for `key` serving `chainID`. The record
    /// is read in place: a vote needs two flags of it, and copying it out retained each of its
    /// keys and description strings twice a vote.
    static func provider<R>(_ key: Data, at stateKey: StateKey, chainID: String, _ staking: ModuleStore,
                            reading project: (borrowing FinalityProvider) -> R) throws(ExecutionError) -> R {
        let found = try staking.read(FinalityProvider.self, at: stateKey) { fp in
            fp.consumerChainID == chainID ? ProviderLookup.serving(project(fp)) : .registeredFor(fp.consumerChainID)
        }
        switch found {
        case nil: throw .rule(FinalityModuleError.unknownFinalityProvider(key))
        case .registeredFor(let registered)?:
            throw .rule(FinalityModuleError.wrongChain(key: key, registered: registered, requested: chainID))
        case .serving(let value)?: return value
        }
    }

    func commitPubRand(_ m: CommitPubRand, _ context: TxContext) throws(ExecutionError) {
        let store = context.store
        let params = try Self.parameters(in: store)
        let fp = try Self.provider(m.fpKey, chainID: m.chainID, context)
        guard fp.slashedHeight == nil else { throw .rule(FinalityModuleError.finalityProviderSlashed(m.fpKey)) }
        guard m.count >= params.minPubRand else {
            throw .rule(FinalityModuleError.tooFewPublicRandomness(count: m.count, minimum: params.minPubRand))
        }
        // start + count, not start + count − 1: a tally cursor moves to the height after the
        // last committed one, which must fit in 64 bits.
        guard !m.startHeight.addingReportingOverflow(m.count).overflow else {
            throw .rule(FinalityModuleError.commitmentRangeOverflow(start: m.startHeight, count: m.count))
        }
        let state = try Self.chainState(m.chainID, store)
        // Every consumer chain genesis lists has its tally state from genesis. (Staking refuses
        // to register a provider for an unlisted chain in the first place; this keeps the rule
        // where the tally is opened.)
        if state == nil, !params.allowUnlistedConsumerChains, m.chainID != context.block.chainID {
            throw .rule(FinalityModuleError.unlistedConsumerChain(m.chainID))
        }
        // Bounded ahead of what the chain knows: the current height on the control plane, the
        // tally cursor on a consumer chain (its first commitment sets that cursor).
        let reference: UInt64? = m.chainID == context.block.chainID ? context.block.height : state?.next
        if let reference {
            let (limit, overflow) = reference.addingReportingOverflow(params.maxPubRandStartOffset)
            if !overflow, m.startHeight > limit {
                throw .rule(FinalityModuleError.startHeightTooFarAhead(start: m.startHeight, limit: limit))
            }
        }
        let latest = try Self.latestCommitment(m.fpKey, m.chainID, store)
        if let (previous, _) = latest, m.startHeight <= previous.endHeight {
            throw .rule(FinalityModuleError.overlappingCommitment(start: m.startHeight, previousEnd: previous.endHeight))
        }
        guard let key = try? Schnorr.PublicKey(rawRepresentation: m.fpKey),
              let signature = try? Schnorr.Signature(rawRepresentation: m.signature),
              key.isValidSignature(signature, for: CommitPubRand.signedDigest(startHeight: m.startHeight, count: m.count,
                                                                               root: m.root)) else {
            throw .rule(FinalityModuleError.invalidCommitmentSignature)
        }

        let seq = latest?.1 ?? 0
        let commitment = PubRandCommitment(startHeight: m.startHeight, count: m.count, root: m.root,
                                           committedAt: context.block.height)
        store.write(commitment, at: Self.commitKey(m.fpKey, m.chainID, seq))
        var latestRecord = BinaryWriter()
        latestRecord.u64(seq + 1)
        commitment.encode(to: &latestRecord)
        store.set(Self.latestCommitKey(m.fpKey, m.chainID), latestRecord.data)
        if state == nil { try Self.startTally(m.chainID, next: m.startHeight, store) }
        if m.chainID == context.block.chainID { store.set(Self.activeSetDirtyKey, Self.marker) }
        context.emit(Event(type: "finality.pub_rand_committed", attributes: [
            EventAttribute("fp_btc_pk", m.fpKey.hexString), EventAttribute("chain_id", m.chainID),
            EventAttribute("start_height", String(m.startHeight)), EventAttribute("count", String(m.count)),
            EventAttribute("root", m.root.hexString),
        ]))
    }

    /// The control plane's block hash at `height`, if committed: the stored record, or for the
    /// last committed block (whose record the current block's begin hook writes, and which
    /// `checkTx` has not run) the current block's previous hash.
    static func controlPlaneBlockHash(_ height: UInt64, _ context: ExecutionContext) throws(ExecutionError) -> Data? {
        guard height < context.block.height else { return nil }
        // The common case needs no read. Before the first block the previous hash is zeros.
        if height + 1 == context.block.height {
            let previous = context.block.previousBlockHash
            return previous.count == 32 && previous.withUnsafeBytes({ $0.contains { $0 != 0 } }) ? previous : nil
        }
        return try context.store.get(blockHashKey(height))
    }

    /// Checks the randomness proof of a vote against `commitment`, once per decoded vote and
    /// commitment: the mark on the decoded vote says it passed with exactly these inputs (the
    /// memory is keyed on the exact payload bytes, and the check reads nothing but the vote
    /// and the commitment's start, count and root). The EOTS signature was checked when the
    /// vote was decoded (``decodeVote(_:)``).
    static func verifyVote(_ d: DecodedVote, _ commitment: PubRandCommitment) throws(ExecutionError) {
        if d.wasVerified(against: commitment) { return }
        try verifyRandomness(d.vote, commitment)
        d.markVerified(against: commitment)
    }

    /// The vote's public randomness is the committed one for its height: the proof's
    /// position is the height's offset in the commitment and it leads to the committed root.
    static func verifyRandomness(_ m: AddFinalitySig, _ commitment: PubRandCommitment) throws(ExecutionError) {
        guard m.proof.index == m.height - commitment.startHeight, m.proof.total == commitment.count else {
            throw .rule(FinalityModuleError.invalidInclusionProof(
                "index \(m.proof.index)/total \(m.proof.total) must be \(m.height - commitment.startHeight)/\(commitment.count)"))
        }
        guard m.proof.verify(leaf: m.publicRandomness, root: commitment.root, memo: proofPaths) else {
            throw .rule(FinalityModuleError.invalidInclusionProof("does not lead to the committed root"))
        }
    }

    /// The vote's EOTS signature under the provider key over `BE8(height) ‖ blockHash`,
    /// with the vote's public randomness as the nonce. Stateless.
    static func verifySignature(_ m: AddFinalitySig, key: Schnorr.PublicKey) throws(ExecutionError) {
        // EOTS verification is BIP-340 verification of (R.x, s) over SHA256(message)
        // (PROTOCOL §4, `EOTS.isValid`); building the signature directly skips lifting R.
        guard m.publicRandomness.count == 32, m.signature.count == 32, m.blockHash.count == 32 else {
            throw .rule(FinalityModuleError.invalidFinalitySignature)
        }
        // One stack buffer: signature R.x ‖ s (64), message BE8(height) ‖ block hash (40),
        // digest SHA256(message) (32) — the same check as `EOTS.isValid`, allocating nothing.
        let valid = withUnsafeTemporaryAllocation(byteCount: 136, alignment: 8) { b -> Bool in
            let signature = UnsafeMutableRawBufferPointer(rebasing: b[0..<64])
            let message = UnsafeMutableRawBufferPointer(rebasing: b[64..<104])
            let digest = UnsafeMutableRawBufferPointer(rebasing: b[104..<136])
            m.publicRandomness.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: signature[0..<32]).copyMemory(from: $0) }
            m.signature.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: signature[32..<64]).copyMemory(from: $0) }
            withUnsafeBytes(of: m.height.bigEndian) { UnsafeMutableRawBufferPointer(rebasing: message[0..<8]).copyMemory(from: $0) }
            m.blockHash.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: message[8..<40]).copyMemory(from: $0) }
            var hasher = InlineSHA256()
            hasher.update(bufferPointer: UnsafeRawBufferPointer(message))
            hasher.finalize(into: digest)
            return key.isValidSignature(rawSignature: UnsafeRawBufferPointer(signature), message: UnsafeRawBufferPointer(digest))
        }
        guard valid else { throw .rule(FinalityModuleError.invalidFinalitySignature) }
    }

    func addFinalitySig(_ d: DecodedVote, _ context: TxContext) throws(ExecutionError) {
        let m = d.vote
        let store = context.store
        let controlPlane = m.chainID == context.block.chainID
        let votesKey = d.keys.votes
        // A vote this node admitted against the committed state the block runs on, where
        // nothing since has written what that admission read: its rules would read the same
        // values and pass again, so only the height's vote list (which this block's earlier
        // votes change) and the block hash (the executed block's own) are looked at again.
        if !context.isCheck, let power = Self.admittedPower(d, context) {
            var votes = try Self.votes(at: votesKey, store)
            let (index, found) = votes.search(m.fpKey)
            if !found {
                if controlPlane { try Self.checkControlPlaneBlockHash(m, context) }
                try record(d, power: power, in: &votes, at: index, controlPlane: controlPlane, context)
                return
            }
            // A duplicate or a second vote: the full rules below decide it.
        }
        let fp = try Self.provider(m.fpKey, at: d.keys.provider, chainID: m.chainID, context.store(of: StakingModule.moduleName),
                                   reading: { (slashed: $0.slashedHeight != nil, jailed: $0.jailed) })
        var votes = try Self.votes(at: votesKey, store)
        let (index, found) = votes.search(m.fpKey)
        if found {
            let previous = votes.vote(at: index)
            guard !sameBytes(previous.blockHash, m.blockHash) else {
                throw .rule(FinalityModuleError.duplicateVote(key: m.fpKey, height: m.height))
            }
            try equivocation(d, previous: previous, providerSlashed: fp.slashed, context)
            return
        }
        guard !fp.slashed else { throw .rule(FinalityModuleError.finalityProviderSlashed(m.fpKey)) }
        guard !fp.jailed else { throw .rule(FinalityModuleError.finalityProviderJailed(m.fpKey)) }
        if controlPlane { try Self.checkControlPlaneBlockHash(m, context) }
        guard let (latest, n) = try Self.latestCommitment(at: d.keys.latestCommitment, store),
              let commitment = try Self.commitment(m.fpKey, m.chainID, covering: m.height, latest: latest, count: n, store) else {
            throw .rule(FinalityModuleError.noRandomnessCommitted(key: m.fpKey, height: m.height))
        }
        let set: ActiveSet
        let setWasFixed: Bool
        if let fixed = try Self.activeSet(at: d.keys.activeSet, in: store) {
            (set, setWasFixed) = (fixed, true)
        } else {
            set = try Self.activeSetFixing(m.chainID, m.height, controlPlane: controlPlane, context, Self.parameters(in: store))
            setWasFixed = false
        }
        guard let power = set.power(of: m.fpKey) else {
            throw .rule(FinalityModuleError.finalityProviderNotActive(key: m.fpKey, height: m.height))
        }
        try Self.verifyVote(d, commitment)
        // Mempool admission ends here: the vote is valid against the committed state.
        // Recording it (the height's list, the tally, the event) is delivery's work; doing it
        // in the check state too would double the cost of every vote for nothing — a second
        // copy of a vote fails at delivery as a duplicate either way.
        if context.isCheck {
            // Delivery may rely on this admission only if it read committed state alone: the
            // provider's record, a latest commitment covering the height (no earlier one
            // read), an active set already fixed (not computed here), none of them written
            // by a transaction admitted before this one.
            if setWasFixed, latest.covers(m.height), let version = context.overlay.committedVersion,
               Self.readsOnlyCommittedState(d, context) {
                d.markAdmitted(atVersion: version, power: power)
            }
            return
        }
        try record(d, power: power, in: &votes, at: index, controlPlane: controlPlane, context)
    }

    /// The power with which this node admitted `d` (``DecodedVote/markAdmitted(atVersion:power:)``),
    /// if that admission read the committed state `context` reads (the same version) and no
    /// level of `context` has written since what it read.
    static func admittedPower(_ d: DecodedVote, _ context: ExecutionContext) -> UInt64? {
        guard let version = context.overlay.committedVersion, let power = d.admittedPower(atVersion: version),
              readsOnlyCommittedState(d, context) else { return nil }
        return power
    }

    /// Whether no level of `context` has written the provider record, latest commitment or
    /// active set that `d`'s admission rules read.
    static func readsOnlyCommittedState(_ d: DecodedVote, _ context: ExecutionContext) -> Bool {
        let overlay = context.overlay
        return !overlay.hasPendingWrite(d.keys.provider.full) && !overlay.hasPendingWrite(d.keys.latestCommitment.full)
            && !overlay.hasPendingWrite(d.keys.activeSet.full)
    }

    /// A control-plane vote is for the block committed at its height.
    static func checkControlPlaneBlockHash(_ m: AddFinalitySig, _ context: ExecutionContext) throws(ExecutionError) {
        guard let canonical = try controlPlaneBlockHash(m.height, context) else {
            throw .rule(FinalityModuleError.blockNotCommitted(height: m.height))
        }
        guard sameBytes(canonical, m.blockHash) else {
            throw .rule(FinalityModuleError.blockHashMismatch(height: m.height, expected: canonical, actual: m.blockHash))
        }
    }

    /// Records an admitted vote: into the height's list (`votes`, at `index`), its power into
    /// its block hash's tally, the chain's highest voted height, and the event.
    private func record(_ d: DecodedVote, power: UInt64, in votes: inout VoteList, at index: Int, controlPlane: Bool,
                        _ context: TxContext) throws(ExecutionError) {
        let m = d.vote
        let store = context.store
        let votesKey = d.keys.votes
        // The list grows by one entry per vote; all votes of one transaction insert into one
        // buffer rather than each copying the whole list.
        store.prepareInPlaceUpdate(votesKey)
        votes.insert(key: m.fpKey, StoredVote(blockHash: m.blockHash, publicRandomness: m.publicRandomness, signature: m.signature),
                     at: index)
        store.set(votesKey, votes.stored)
        let tallyKey = d.keys.tally
        let voted = try Self.u64(store, tallyKey) ?? 0
        store.set(tallyKey, Self.be8(voted &+ power))
        if !controlPlane, var state = try Self.chainState(m.chainID, store), m.height > state.maxVoted {
            state.maxVoted = m.height
            store.write(state, at: Self.chainStateKey(m.chainID))
        }
        context.emit(Event(type: "finality.vote_added", attributes: [
            EventAttribute("fp_btc_pk", d.fpKeyHex), EventAttribute("chain_id", m.chainID),
            EventAttribute("height", String(m.height)), EventAttribute("block_hash", d.blockHashHex),
        ]))
    }

    /// A second vote for another hash at a height where the provider already voted: verified
    /// like any vote, then stored as evidence; the provider is slashed at once (its power
    /// leaves the next table; its votes stop counting in every tally not yet finalized).
    func equivocation(_ d: DecodedVote, previous: StoredVote, providerSlashed: Bool, _ context: TxContext) throws(ExecutionError) {
        let m = d.vote
        let store = context.store
        guard !providerSlashed else { throw .rule(FinalityModuleError.finalityProviderSlashed(m.fpKey)) }
        guard let commitment = try Self.commitment(m.fpKey, m.chainID, covering: m.height, store) else {
            throw .fatal(.corruptState("finality: vote of \(m.fpKey.hexString) at \(m.height) without its commitment"))
        }
        try Self.verifyVote(d, commitment)
        if context.isCheck { return }

        let evidence = EquivocationEvidence(
            fpKey: m.fpKey, chainID: m.chainID, height: m.height, publicRandomness: previous.publicRandomness,
            blockHash1: previous.blockHash, signature1: previous.signature, blockHash2: m.blockHash, signature2: m.signature,
            recordedAt: context.block.height)
        store.write(evidence, at: Self.evidenceKey(m.fpKey, m.chainID, m.height))
        var slashed = try Self.slashedKeys(store)
        if !slashed.contains(m.fpKey) {
            slashed.append(m.fpKey)
            slashed.sort { $0.lexicographicallyPrecedes($1) }
            store.set(Self.slashedKey, slashed.reduce(Data(), +))
        }
        try StakingModule.slashFinalityProvider(key: m.fpKey, in: context)
        store.set(Self.activeSetDirtyKey, Self.marker)
        context.emit(Event(type: Self.equivocationEvent, attributes: [
            EventAttribute("fp_btc_pk", m.fpKey.hexString), EventAttribute("chain_id", m.chainID),
            EventAttribute("height", String(m.height)), EventAttribute("public_randomness", previous.publicRandomness.hexString),
            EventAttribute("block_hash_1", previous.blockHash.hexString), EventAttribute("signature_1", previous.signature.hexString),
            EventAttribute("block_hash_2", m.blockHash.hexString), EventAttribute("signature_2", m.signature.hexString),
        ]))
    }

    func unjail(_ m: UnjailFinalityProvider, _ context: TxContext) throws(ExecutionError) {
        let staking = context.store(of: StakingModule.moduleName)
        guard let fp = try StakingModule.finalityProvider(key: m.fpKey, in: staking) else {
            throw .rule(FinalityModuleError.unknownFinalityProvider(m.fpKey))
        }
        guard fp.owner == context.sender else {
            throw .rule(FinalityModuleError.notFinalityProviderOwner(key: m.fpKey, sender: context.sender))
        }
        guard fp.slashedHeight == nil else { throw .rule(FinalityModuleError.finalityProviderSlashed(m.fpKey)) }
        guard fp.jailed else { throw .rule(FinalityModuleError.finalityProviderNotJailed(m.fpKey)) }
        let info = try context.store.read(SigningInfo.self, at: Self.signingInfoKey(m.fpKey)) ?? SigningInfo()
        guard context.block.time >= info.jailedUntil else {
            throw .rule(FinalityModuleError.jailNotExpired(key: m.fpKey, until: info.jailedUntil, now: context.block.time))
        }
        context.emit(try StakingModule.unjailFinalityProvider(key: m.fpKey, in: staking))
        context.store.set(Self.activeSetDirtyKey, Self.marker)
        context.emit(Event(type: "finality.fp_unjailed", attributes: [EventAttribute("fp_btc_pk", m.fpKey.hexString)]))
    }

    // MARK: - Block hooks

    /// Records the previous block's hash and fixes this height's control-plane active set.
    public func beginBlock(_ context: BlockContext) throws(ExecutionError) {
        let store = context.store
        guard let params = try store.read(FinalityParams.self, at: Self.paramsKey),
              let first = try Self.u64(store, Self.firstHeightKey) else { return }
        let h = context.block.height
        if h > first, context.block.previousBlockHash.count == 32 {
            store.set(Self.blockHashKey(h - 1), context.block.previousBlockHash)
        }
        // Consecutive heights nearly always have the same set: reuse the previous one unless
        // the power table changed, something marked the set dirty, or a commitment boundary
        // was reached (see computeActiveSet), instead of re-reading every provider.
        let c = context.block.chainID
        let staking = context.store(of: StakingModule.moduleName)
        // Which table is in force, not its contents: the table is read and decoded only when
        // the set must be recomputed.
        let tableHeight = try StakingModule.votingPowerTableHeight(atOrBefore: h, in: staking)
        if let cache = try store.get(Self.activeSetCacheKey), cache.count == 16, Self.readBE8(cache.dropFirst(8)) == tableHeight,
           h <= Self.readBE8(cache), try store.get(Self.activeSetDirtyKey) == nil, h > first,
           let previous = try store.get(Self.activeSetKey(c, h - 1)) {
            store.set(Self.activeSetKey(c, h), previous)
            return
        }
        let table = try StakingModule.votingPowerEntries(height: h, in: staking)
        let (set, validUntil) = try Self.computeActiveSet(c, h, controlPlane: true, context, params, table: table)
        store.set(Self.activeSetKey(c, h), set.stored)
        store.set(Self.activeSetCacheKey, Self.be8(validUntil) + Self.be8(tableHeight))
        store.delete(Self.activeSetDirtyKey)
    }

    /// Tallies every chain and judges the liveness of what is due: the control plane's height
    /// h − timeout, and each consumer chain's heights its tally decided `timeout` blocks ago.
    public func endBlock(_ context: BlockContext) throws(ExecutionError) {
        let store = context.store
        guard let params = try store.read(FinalityParams.self, at: Self.paramsKey) else { return }
        for chain in try Self.tallyChains(store) {
            guard let state = try Self.chainState(chain, store) else {
                throw .fatal(.corruptState("finality: chain \(chain) is listed without a tally state"))
            }
            let decided = try tally(chain, state, context, params)
            if chain != context.block.chainID {
                try judgeConsumerLiveness(chain, decided: decided, context, params)
            }
        }
        try judgeLiveness(context, params)
    }

    /// Walks `c`'s tally from its cursor; returns the heights it decided (finalized, or
    /// skipped for having no active power) in this block.
    @discardableResult
    func tally(_ c: String, _ initial: ChainTallyState, _ context: BlockContext, _ params: FinalityParams) throws(ExecutionError) -> Range<UInt64> {
        let store = context.store
        let controlPlane = c == context.block.chainID
        // The control plane's blocks up to h − 1 are committed; a consumer's up to its highest vote.
        let limit: UInt64 = controlPlane ? (context.block.height > 0 ? context.block.height - 1 : 0) : initial.maxVoted
        var state = initial
        var steps = 0
        // Providers slashed for equivocation lose their power in every height not yet
        // finalized: their votes stop counting and their power leaves the denominator, so a
        // provider cannot stall finality by double-voting (its stake stays out of reach of a
        // quorum). One read per chain and block; the list is short and usually empty.
        let slashed = try Self.slashedKeys(store)
        // `h + 1` below stays in range: no commitment reaches 2^64 − 1, so neither does a vote
        // or a consumer chain's highest voted height.
        while state.next <= limit, state.next < .max, steps < Self.maxTallySteps {
            steps += 1
            let h = state.next
            let set = try Self.activeSetFixing(c, h, controlPlane: controlPlane, context, params)
            var total = set.totalPower
            var slashedMembers: [(key: Data, power: UInt64)] = []
            for key in slashed {
                guard let power = set.power(of: key) else { continue }
                slashedMembers.append((key, power))
                total -= min(power, total)
            }
            // No power left to vote (none at all, or every member slashed): never finalized,
            // never blocks the next height.
            if total == 0 {
                state.next = h + 1
                continue
            }
            var candidates: [(hash: Data, voted: UInt64)] = []
            if controlPlane {
                if let hash = try store.get(Self.blockHashKey(h)), let voted = try Self.u64(store, Self.tallyKey(c, h, hash)) {
                    candidates.append((hash, voted))
                }
            } else {
                let prefix = Self.tallyPrefix(c, h)
                for row in try store.scan(prefix: prefix) {
                    candidates.append((Data(row.key.dropFirst(prefix.count)), Self.readBE8(row.value)))
                }
            }
            var winner: Data?
            var votes: VoteList?
            for candidate in candidates where Self.exceedsTwoThirds(voted: candidate.voted, total: total) {
                // The running tally is an upper bound: remove the votes of slashed members.
                var voted = candidate.voted
                if !slashedMembers.isEmpty {
                    let list: VoteList
                    if let votes { list = votes } else { list = try Self.votes(c, h, store) }
                    votes = list
                    for member in slashedMembers {
                        guard let vote = list.vote(of: member.key), vote.blockHash == candidate.hash else { continue }
                        voted -= min(member.power, voted)
                    }
                }
                if Self.exceedsTwoThirds(voted: voted, total: total) {
                    winner = candidate.hash
                    break
                }
            }
            guard let winner else { break }
            store.set(Self.finalizedKey(c, h), winner)
            state.lastFinalized = h
            state.next = h + 1
            context.emit(Event(type: "finality.block_finalized", attributes: [
                EventAttribute("chain_id", c), EventAttribute("height", String(h)), EventAttribute("block_hash", winner.hexString),
            ]))
        }
        if state != initial { store.write(state, at: Self.chainStateKey(c)) }
        return initial.next..<state.next
    }

    /// Liveness of the control plane's height h − timeout.
    func judgeLiveness(_ context: BlockContext, _ params: FinalityParams) throws(ExecutionError) {
        let store = context.store
        guard let first = try Self.u64(store, Self.firstHeightKey), params.finalitySigTimeout >= 1,
              context.block.height >= first + params.finalitySigTimeout else { return }
        try judge(context.block.chainID, context.block.height - params.finalitySigTimeout, context, params)
    }

    /// Liveness of a consumer chain. The control plane cannot see a consumer's clock, only its
    /// votes, so it judges a consumer height on its own: `finality_sig_timeout` control-plane
    /// blocks after the tally decided it, which gives a provider that many blocks to add a vote
    /// the quorum did not wait for. The heights decided in this block are queued under the
    /// block that will judge them (one key per chain and block, only when the tally moved);
    /// the ones queued for this block are judged and their key deleted.
    func judgeConsumerLiveness(_ c: String, decided: Range<UInt64>, _ context: BlockContext, _ params: FinalityParams) throws(ExecutionError) {
        let store = context.store
        let timeout = params.finalitySigTimeout
        guard timeout >= 1 else { return }
        let b = context.block.height
        if !decided.isEmpty {
            let (due, overflow) = b.addingReportingOverflow(timeout)
            if !overflow { store.set(Self.livenessDueKey(c, due), Self.be8(decided.lowerBound) + Self.be8(decided.upperBound)) }
        }
        let dueKey = Self.livenessDueKey(c, b)
        guard let queued = try store.get(dueKey) else { return }
        let lower = Self.readBE8(queued), upper = Self.readBE8(queued.dropFirst(8))
        guard queued.count == 16, lower < upper, upper - lower <= UInt64(Self.maxTallySteps) else {
            throw .fatal(.corruptState("finality: liveness queue of \(c) at \(b) holds \(queued.count) bytes, range \(lower)..<\(upper)"))
        }
        for h in lower..<upper { try judge(c, h, context, params) }
        store.delete(dueKey)
    }

    /// Liveness of height `judged` of chain `c`: one read of the height's votes; a member of
    /// its active set that did not vote has the miss added to its signing info (which keeps
    /// only the misses still in the window) and is jailed when they exceed the limit. A
    /// provider serves one chain, so its window holds heights of that chain only.
    func judge(_ c: String, _ judged: UInt64, _ context: BlockContext, _ params: FinalityParams) throws(ExecutionError) {
        let store = context.store
        guard let set = try Self.activeSet(chainID: c, height: judged, in: store) else { return }
        let controlPlane = c == context.block.chainID
        let staking = context.store(of: StakingModule.moduleName)
        let votes = try Self.votes(c, judged, store)
        for key in set.keys(withoutVoteIn: votes) {
            guard let fp = try StakingModule.finalityProvider(key: key, in: staking), fp.slashedHeight == nil, !fp.jailed else { continue }
            var info = try store.read(SigningInfo.self, at: Self.signingInfoKey(key)) ?? SigningInfo()
            // Misses that left the window drop off the front; this one goes on the back.
            info.missedHeights = info.missedHeights.filter { $0 + params.signedBlocksWindow > judged } + [judged]
            let missed = UInt64(info.missedHeights.count)
            if missed > params.maxMissedBlocks {
                if let e = try StakingModule.jailFinalityProvider(key: key, in: staking) { context.emit(e) }
                // Consumer sets are fixed when first needed and read the provider's status then.
                if controlPlane { store.set(Self.activeSetDirtyKey, Self.marker) }
                let (until, overflow) = context.block.time.addingReportingOverflow(params.jailDurationMs)
                info.jailedUntil = overflow ? .max : until
                info.jailCount += 1
                // A fresh window after unjailing.
                info.missedHeights = []
                context.emit(Event(type: Self.jailedEvent, attributes: [
                    EventAttribute("fp_btc_pk", key.hexString), EventAttribute("chain_id", c), EventAttribute("height", String(judged)),
                    EventAttribute("missed", String(missed)), EventAttribute("jailed_until", String(info.jailedUntil)),
                ]))
            }
            store.write(info, at: Self.signingInfoKey(key))
        }
    }
}
