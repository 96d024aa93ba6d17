import Foundation
import IshtarBitcoin
import IshtarCrypto

/// Module `"btclightclient"`: a Bitcoin header chain from a trusted base header, extended by
/// `btclightclient/InsertHeaders` messages from any account.
///
/// Rules, checked for every header of a message before anything is written (a rejected
/// message leaves no trace): the message carries 1…`max_headers_per_message` headers; the
/// first builds on a known header (main chain or fork) and each later one on the one before
/// it; no header is already known (a message is rejected, not trimmed, if it repeats one);
/// the bits equal what the network's difficulty rules require on that branch; the hash meets
/// the target; the time is after the median of the 11 previous headers on that branch. On
/// success the headers are stored with their cumulative work; if the new branch has strictly
/// more work than the main chain's tip, the main chain switches to it (a reorg of any depth;
/// on equal work the first-seen chain stays).
///
/// Events, in order: `btclightclient.roll_back` for every header leaving the main chain
/// (old tip first), then `btclightclient.roll_forward` for every header joining it (lowest
/// first), each with attributes `hash` (display hex) and `height`. Extending the tip is a
/// roll-forward only.
///
/// State (keys under `btclightclient/`):
/// - `params` → ``BTCLightClientParams``
/// - `h‖hash(32, internal order)` → stored header (header, height, cumulative work, walk memo),
///   for every known header, forks included
/// - `m‖BE8(height)` → hash of the main-chain header at that height (base … tip)
/// - `tip` → hash of the main chain's tip
///
/// Every insertion costs O(1) store operations per header (plus O(reorg depth) on a reorg,
/// and one period-start lookup per retarget); nothing rescans the chain.
///
/// Queries (`/modules/btclightclient/…`, JSON, hashes as 64 hex digits in Bitcoin display
/// order, heights and depths as decimal strings):
/// - `tip`, `header/<hash>`, `header-by-height/<h>` (main chain) → a header object:
///   `{hash, height, header (160 hex, serialized), previous_hash, time, bits (8 hex),
///   cumulative_work (64 hex, big-endian), on_main_chain (bool), depth (string, or null off
///   the main chain)}`
/// - `depth/<hash>` → `{hash, on_main_chain, depth}` (depth null off the main chain)
/// - `is-ancestor/<a>/<b>` → `{ancestor, descendant, is_ancestor (bool)}`
/// - `params` → `{network, base_hash, base_height, max_headers_per_message}`
public struct BTCLightClientModule: Module {
    /// `"btclightclient"`.
    public static let moduleName = "btclightclient"
    /// Absolute bound on headers per message, whatever the parameter says.
    public static let headersHardLimit = 10_000
    /// Event type of a header leaving the main chain.
    public static let rollBackEvent = "btclightclient.roll_back"
    /// Event type of a header joining the main chain.
    public static let rollForwardEvent = "btclightclient.roll_forward"

    static let paramsKey = Data("params".utf8)
    static let tipKey = Data("tip".utf8)

    /// The module.
    public init() {}

    /// `"btclightclient"`.
    public var name: String { Self.moduleName }
    /// `btclightclient/InsertHeaders`.
    public var messageTypes: [String] { [InsertHeaders.type] }

    static func headerKey(_ hash: Data) -> Data { Data([UInt8(ascii: "h")]) + hash }

    static func mainKey(_ height: UInt64) -> Data {
        var w = BinaryWriter()
        w.u8(UInt8(ascii: "m"))
        w.u64(height)
        return w.data
    }

    // MARK: - Public read API (for other modules)

    /// The main chain's tip; `nil` only before genesis.
    public static func tip(in store: ModuleStore) throws(ExecutionError) -> BTCHeaderInfo? {
        guard let hash = try store.get(tipKey) else { return nil }
        guard let stored = try stored(hash, in: store) else {
            throw .fatal(.corruptState("btclightclient: tip \(hash.hexString) has no header"))
        }
        return stored.info(hash: hash)
    }

    /// Any known header (main chain or fork) by its hash (32 bytes, internal byte order).
    public static func header(hash: Data, in store: ModuleStore) throws(ExecutionError) -> BTCHeaderInfo? {
        try stored(hash, in: store)?.info(hash: hash)
    }

    /// The main-chain header at `height`, if the main chain has one there.
    public static func mainChainHeader(height: UInt64, in store: ModuleStore) throws(ExecutionError) -> BTCHeaderInfo? {
        guard let hash = try store.get(mainKey(height)) else { return nil }
        guard let stored = try stored(hash, in: store) else {
            throw .fatal(.corruptState("btclightclient: main-chain hash at \(height) has no header"))
        }
        return stored.info(hash: hash)
    }

    /// Whether `hash` is a header of the current main chain.
    public static func isOnMainChain(hash: Data, in store: ModuleStore) throws(ExecutionError) -> Bool {
        guard let stored = try stored(hash, in: store) else { return false }
        return try store.get(mainKey(stored.height)) == hash
    }

    /// `tip.height − height` if `hash` is on the main chain (0 for the tip), else `nil`.
    public static func depth(of hash: Data, in store: ModuleStore) throws(ExecutionError) -> UInt64? {
        guard let stored = try stored(hash, in: store), try store.get(mainKey(stored.height)) == hash,
              let tip = try tip(in: store), tip.height >= stored.height else { return nil }
        return tip.height - stored.height
    }

    /// Whether `ancestor` is a strict ancestor of `descendant` (a header is not its own
    /// ancestor), on any branch. `false` if either is unknown.
    public static func isAncestor(_ ancestor: Data, of descendant: Data, in store: ModuleStore) throws(ExecutionError) -> Bool {
        guard let a = try stored(ancestor, in: store), var cursor = try stored(descendant, in: store),
              a.height < cursor.height else { return false }
        var cursorHash = descendant
        // Walk the descendant's branch down to the ancestor's height, or to the main chain,
        // where the height index answers at once.
        while cursor.height > a.height {
            if try store.get(mainKey(cursor.height)) == cursorHash {
                return try store.get(mainKey(a.height)) == ancestor
            }
            cursorHash = cursor.header.previousBlockHash.rawValue
            guard let parent = try stored(cursorHash, in: store) else { return false }
            cursor = parent
        }
        return cursorHash == ancestor
    }

    /// The headers of the branch ending at `hash` that are not on the current main chain,
    /// from `hash` down to (excluding) the header where the branch meets the main chain.
    /// Called with a main-chain tip remembered from an earlier block, these are exactly the
    /// headers that have left the main chain since (and are still off it): what a module
    /// holding references to Bitcoin blocks must re-check after a reorg, at O(their number)
    /// reads instead of a scan of its own references. Empty if `hash` is on the main chain
    /// or unknown.
    public static func headersOffMainChain(endingAt hash: Data, in store: ModuleStore) throws(ExecutionError) -> [Data] {
        var out: [Data] = []
        var cursor = hash
        while let s = try stored(cursor, in: store), try store.get(mainKey(s.height)) != cursor {
            out.append(cursor)
            cursor = s.header.previousBlockHash.rawValue
        }
        return out
    }

    /// The light client's parameters (genesis values).
    public static func params(in store: ModuleStore) throws(ExecutionError) -> BTCLightClientParams {
        guard let p = try store.read(BTCLightClientParams.self, at: paramsKey) else {
            throw .fatal(.corruptState("btclightclient: parameters missing"))
        }
        return p
    }

    static func stored(_ hash: Data, in store: ModuleStore) throws(ExecutionError) -> StoredHeader? {
        guard hash.count == 32 else { return nil }
        return try store.read(StoredHeader.self, at: headerKey(hash))
    }

    // MARK: - Genesis

    /// Validates the parameters and stores the base header as the main chain's only header.
    public func initGenesis(_ context: GenesisContext) throws(ExecutionError) {
        if let raw = context.params {
            let object = (try? JSONSerialization.jsonObject(with: raw)) as? [String: Any] ?? [:]
            let allowed: Set<String> = ["network", "base_header", "base_height", "max_headers_per_message"]
            if let unknown = object.keys.sorted().first(where: { !allowed.contains($0) }) {
                throw .rule(ParamsError.malformed(module: name, reason: "unknown field \(unknown)"))
            }
        }
        let json = try context.decodeParams(BTCLightClientParamsJSON.self, defaults: BTCLightClientParamsJSON())
        var params = BTCLightClientParams()
        if let text = json.network {
            guard let network = Network(rawValue: text) else {
                throw .rule(ParamsError.outOfRange(module: name, name: "network",
                                                   reason: "must be mainnet, testnet, signet or regtest, got \"\(text)\""))
            }
            params = BTCLightClientParams(network: network)
        }
        if let hex = json.baseHeader {
            // A base header without its network would be judged by regtest's rules, which a
            // mainnet or testnet header also meets — and then anyone could extend it cheaply.
            guard json.network != nil else {
                throw .rule(ParamsError.outOfRange(module: name, name: "network",
                                                   reason: "must be given with base_header (mainnet, testnet, signet or regtest)"))
            }
            guard let bytes = try? Data(hex: hex), let header = try? BTCBlockHeader(serialized: bytes) else {
                throw .rule(ParamsError.outOfRange(module: name, name: "base_header", reason: "must be 160 hex digits (80 bytes)"))
            }
            params.baseHeader = header
        }
        params.baseHeight = json.baseHeight ?? 0
        params.maxHeadersPerMessage = json.maxHeadersPerMessage ?? 200
        let pow = params.network.powParameters
        guard params.baseHeight <= UInt64(UInt32.max) else {
            throw .rule(ParamsError.outOfRange(module: name, name: "base_height", reason: "must be ≤ \(UInt32.max)"))
        }
        if !pow.noRetargeting, params.baseHeight % UInt64(pow.adjustmentInterval) != 0 {
            throw .rule(ParamsError.outOfRange(
                module: name, name: "base_height",
                reason: "must be a multiple of \(pow.adjustmentInterval) on \(params.network.rawValue) (a retarget boundary)"))
        }
        guard (1...Self.headersHardLimit).contains(params.maxHeadersPerMessage) else {
            throw .rule(ParamsError.outOfRange(module: name, name: "max_headers_per_message",
                                               reason: "must be in 1…\(Self.headersHardLimit)"))
        }
        do {
            try params.baseHeader.checkProofOfWork(powLimit: pow.powLimit)
        } catch {
            throw .rule(ParamsError.outOfRange(module: name, name: "base_header",
                                               reason: "does not meet \(params.network.rawValue) proof of work: \(error)"))
        }
        let base = params.baseHeader
        let hash = base.hash.rawValue
        // The walk stops at the base: on retargeting networks it sits on a boundary; on
        // regtest every header carries the limit bits, so the walk's answer is the base's bits.
        let stored = StoredHeader(header: base, height: params.baseHeight, cumulativeWork: base.work, walkBits: base.bits)
        let store = context.store
        store.write(params, at: Self.paramsKey)
        store.write(stored, at: Self.headerKey(hash))
        store.set(Self.mainKey(params.baseHeight), hash)
        store.set(Self.tipKey, hash)
    }

    /// How far past the block's time a header's time may be (Bitcoin Core: 2 hours past its
    /// network-adjusted clock). Without it, testnet's 20-minute minimum-difficulty rule let
    /// anyone mine long chains of cheap future-dated headers that outweigh the real tip for a
    /// while — enough to expire delegations and finalize checkpoints early, for good.
    static let maxFutureSeconds: UInt64 = 7200

    // MARK: - Messages

    /// Decodes the payload; checks it carries at least one header.
    public func validateMessage(_ message: Message, sender: Data) throws(ExecutionError) {
        guard message.type == InsertHeaders.type else { throw .rule(BTCLightClientError.unknownMessage(message.type)) }
        _ = try Self.decode(message)
    }

    static func decode(_ message: Message) throws(ExecutionError) -> InsertHeaders {
        let msg: InsertHeaders
        do {
            msg = try InsertHeaders(decoding: message.payload)
        } catch {
            throw .rule(BTCLightClientError.malformedMessage(type: message.type, error))
        }
        guard !msg.headers.isEmpty else { throw .rule(BTCLightClientError.noHeaders) }
        return msg
    }

    /// `InsertHeaders`: validates every header, then stores them and reorganizes if the new
    /// branch has more work.
    public func deliverMessage(_ message: Message, _ context: TxContext) throws(ExecutionError) {
        guard message.type == InsertHeaders.type else { throw .rule(BTCLightClientError.unknownMessage(message.type)) }
        let msg = try Self.decode(message)
        let store = context.store
        let params = try Self.params(in: store)
        guard msg.headers.count <= params.maxHeadersPerMessage else {
            throw .rule(BTCLightClientError.tooManyHeaders(count: msg.headers.count, limit: params.maxHeadersPerMessage))
        }
        let inserter = try Inserter(store: store, params: params, blockTimeMs: context.block.time)
        let accepted = try inserter.validate(msg.headers)
        // Everything is checked; from here on only writes.
        for item in accepted { store.write(item.stored, at: Self.headerKey(item.hash)) }
        guard let newTip = accepted.last, newTip.stored.cumulativeWork > inserter.tip.stored.cumulativeWork else { return }
        for event in try inserter.switchMainChain(to: newTip, accepted: accepted) { context.emit(event) }
    }

    // MARK: - Queries

    /// See the type's documentation for paths and shapes.
    public func query(_ request: QueryRequest, _ context: QueryContext) throws(ExecutionError) -> Data {
        let store = context.store
        let p = request.path
        switch (p.first, p.count) {
        case ("tip", 1):
            guard let tip = try Self.tip(in: store) else { throw .rule(QueryError.notFound("tip")) }
            return canonicalJSON(try Self.json(tip, in: store))
        case ("header", 2):
            let hash = try Self.parseHash(p[1])
            guard let info = try Self.header(hash: hash, in: store) else { throw .rule(QueryError.notFound("header \(p[1])")) }
            return canonicalJSON(try Self.json(info, in: store))
        case ("header-by-height", 2):
            guard let height = UInt64(p[1]) else { throw .rule(QueryError.invalidArgument("height must be a decimal number")) }
            guard let info = try Self.mainChainHeader(height: height, in: store) else {
                throw .rule(QueryError.notFound("main-chain header at height \(height)"))
            }
            return canonicalJSON(try Self.json(info, in: store))
        case ("depth", 2):
            let hash = try Self.parseHash(p[1])
            guard try Self.header(hash: hash, in: store) != nil else { throw .rule(QueryError.notFound("header \(p[1])")) }
            let depth = try Self.depth(of: hash, in: store)
            return canonicalJSON(["hash": Self.display(hash), "on_main_chain": depth != nil,
                                  "depth": depth.map { String($0) as Any } ?? NSNull()])
        case ("is-ancestor", 3):
            let a = try Self.parseHash(p[1])
            let b = try Self.parseHash(p[2])
            for (h, text) in [(a, p[1]), (b, p[2])] where try Self.header(hash: h, in: store) == nil {
                throw .rule(QueryError.notFound("header \(text)"))
            }
            return canonicalJSON(["ancestor": Self.display(a), "descendant": Self.display(b),
                                  "is_ancestor": try Self.isAncestor(a, of: b, in: store)])
        case ("params", 1):
            let params = try Self.params(in: store)
            return canonicalJSON(["network": params.network.rawValue, "base_hash": params.baseHeader.hash.displayHex,
                                  "base_height": String(params.baseHeight),
                                  "max_headers_per_message": params.maxHeadersPerMessage])
        default:
            throw .rule(QueryError.unknownPath("/modules/\(name)/" + p.joined(separator: "/")))
        }
    }

    static func display(_ hash: Data) -> String { Data(hash.reversed()).hexString }

    /// A hash in display order (64 hex digits) → internal order.
    static func parseHash(_ text: String) throws(ExecutionError) -> Data {
        guard let hash = try? Hash256(displayHex: text) else {
            throw .rule(QueryError.invalidArgument("hash must be 64 hex digits (display order)"))
        }
        return hash.rawValue
    }

    static func json(_ info: BTCHeaderInfo, in store: ModuleStore) throws(ExecutionError) -> [String: Any] {
        let depth = try depth(of: info.hash, in: store)
        return [
            "hash": info.displayHash, "height": String(info.height), "header": info.header.serialized.hexString,
            "previous_hash": info.header.previousBlockHash.displayHex, "time": String(info.header.time),
            "bits": String(hex32(info.header.bits).dropFirst(2)),
            "cumulative_work": info.cumulativeWork.bigEndianBytes.hexString,
            "on_main_chain": depth != nil, "depth": depth.map { String($0) as Any } ?? NSNull(),
        ]
    }
}

/// One header validated by an ``Inserter``: its hash (internal order) and what will be stored.
struct AcceptedHeader {
    var hash: Data
    var stored: StoredHeader
}

/// The validation and main-chain switch of one `InsertHeaders` message. Validation only
/// reads; ``switchMainChain(to:accepted:)`` writes the height index and the tip.
struct Inserter {
    let store: ModuleStore
    let params: BTCLightClientParams
    let pow: PowParameters
    let interval: UInt64
    let limitBits: UInt32
    /// The main chain's tip before the message.
    let tip: AcceptedHeader
    /// The latest header time accepted: the block's time plus two hours (Bitcoin Core's
    /// `time-too-new` margin, with the chain's agreed block time as the clock).
    let maxHeaderTime: UInt64

    init(store: ModuleStore, params: BTCLightClientParams, blockTimeMs: UInt64) throws(ExecutionError) {
        self.store = store
        self.params = params
        maxHeaderTime = blockTimeMs / 1000 + BTCLightClientModule.maxFutureSeconds
        pow = params.network.powParameters
        interval = UInt64(pow.adjustmentInterval)
        limitBits = pow.powLimitBits
        guard let tipHash = try store.get(BTCLightClientModule.tipKey),
              let tipStored = try BTCLightClientModule.stored(tipHash, in: store) else {
            throw .fatal(.corruptState("btclightclient: tip missing"))
        }
        tip = AcceptedHeader(hash: tipHash, stored: tipStored)
    }

    func isMain(_ h: AcceptedHeader) throws(ExecutionError) -> Bool {
        // Nothing above the tip is on the main chain: saves a read per new header.
        guard h.stored.height <= tip.stored.height else { return false }
        return try store.get(BTCLightClientModule.mainKey(h.stored.height)) == h.hash
    }

    /// The header `hash`, from this message's accepted headers or the store.
    func lookup(_ hash: Data, pending: [Data: Int], accepted: [AcceptedHeader]) throws(ExecutionError) -> AcceptedHeader? {
        if let i = pending[hash] { return accepted[i] }
        guard let s = try BTCLightClientModule.stored(hash, in: store) else { return nil }
        return AcceptedHeader(hash: hash, stored: s)
    }

    /// The header at `height` on the branch ending at `top` (stored headers only).
    func ancestor(at height: UInt64, of top: AcceptedHeader) throws(ExecutionError) -> AcceptedHeader? {
        var cursor = top
        while cursor.stored.height > height {
            if try isMain(cursor) {
                guard let hash = try store.get(BTCLightClientModule.mainKey(height)),
                      let s = try BTCLightClientModule.stored(hash, in: store) else { return nil }
                return AcceptedHeader(hash: hash, stored: s)
            }
            guard let parent = try BTCLightClientModule.stored(cursor.stored.header.previousBlockHash.rawValue, in: store)
            else { return nil }
            cursor = AcceptedHeader(hash: cursor.stored.header.previousBlockHash.rawValue, stored: parent)
        }
        return cursor.stored.height == height ? cursor : nil
    }

    /// Checks every header in order; returns the new ones with heights, work and walk memos.
    ///
    /// Headers the light client already holds at the start of the message are skipped, not
    /// refused: relayers send overlapping batches, and anyone could otherwise copy one header
    /// of a pending batch into a message of its own, land it first and void the whole batch
    /// (no fee stops them). A message with nothing new is refused as a duplicate.
    func validate(_ all: [BTCBlockHeader]) throws(ExecutionError) -> [AcceptedHeader] {
        guard !all.isEmpty else { throw .rule(BTCLightClientError.noHeaders) }
        var known = 0
        while known < all.count, try store.contains(BTCLightClientModule.headerKey(all[known].hash.rawValue)) { known += 1 }
        guard known < all.count else {
            throw .rule(BTCLightClientError.duplicateHeader(index: all.count - 1, hash: all[all.count - 1].hash.displayHex))
        }
        let headers = all[known...]
        let first = all[known]
        if known > 0, first.previousBlockHash != all[known - 1].hash {
            throw .rule(BTCLightClientError.brokenLinkage(index: known, expectedPrevious: all[known - 1].hash.displayHex,
                                                          found: first.previousBlockHash.displayHex))
        }
        let rootHash = first.previousBlockHash.rawValue
        guard let rootStored = try BTCLightClientModule.stored(rootHash, in: store) else {
            throw .rule(BTCLightClientError.unknownParent(previousHash: first.previousBlockHash.displayHex))
        }
        let root = AcceptedHeader(hash: rootHash, stored: rootStored)
        // Timestamps of up to 11 headers ending at the parent, oldest first: read once per
        // message, then slid along the batch.
        var recent: [UInt32] = [rootStored.header.time]
        var cursor = rootStored
        while recent.count < 11, cursor.height > params.baseHeight,
              let parent = try BTCLightClientModule.stored(cursor.header.previousBlockHash.rawValue, in: store) {
            recent.insert(parent.header.time, at: 0)
            cursor = parent
        }
        var accepted: [AcceptedHeader] = []
        accepted.reserveCapacity(headers.count)
        var parent = root
        for (index, header) in zip(headers.indices, headers) {
            let hash = header.hash.rawValue
            if index > known, header.previousBlockHash.rawValue != parent.hash {
                throw .rule(BTCLightClientError.brokenLinkage(
                    index: index, expectedPrevious: BTCLightClientModule.display(parent.hash),
                    found: header.previousBlockHash.displayHex))
            }
            guard parent.stored.height < UInt64(UInt32.max) * 2 else { throw .rule(BTCLightClientError.heightOverflow(index: index)) }
            let height = parent.stored.height + 1
            if try store.contains(BTCLightClientModule.headerKey(hash)) {
                throw .rule(BTCLightClientError.duplicateHeader(index: index, hash: header.hash.displayHex))
            }
            guard UInt64(header.time) <= maxHeaderTime else {
                throw .rule(BTCLightClientError.timestampTooNew(index: index, height: height, time: header.time, limit: maxHeaderTime))
            }
            let minimumVersion = params.network.minimumBlockVersion(atHeight: height)
            guard header.version >= minimumVersion else {
                throw .rule(BTCLightClientError.badVersion(index: index, height: height, version: header.version, minimum: minimumVersion))
            }
            let expected = try requiredBits(after: parent, newTime: header.time, root: root, accepted: accepted)
            guard header.bits == expected else {
                throw .rule(BTCLightClientError.wrongDifficulty(index: index, height: height, expected: expected, found: header.bits))
            }
            // The target check of `BlockHeader.checkProofOfWork`, against the hash computed
            // once above (hashing is the dominant cost of insertion).
            let target: UInt256
            do {
                target = try ProofOfWork.target(bits: header.bits, powLimit: pow.powLimit)
            } catch {
                throw .rule(BTCLightClientError.invalidTarget(index: index, bits: header.bits))
            }
            guard UInt256(littleEndian: hash) <= target else {
                throw .rule(BTCLightClientError.insufficientProofOfWork(index: index, hash: header.hash.displayHex))
            }
            if recent.count == 11 || params.baseHeight == 0 {
                let median = recent.sorted()[recent.count / 2]
                guard header.time > median else {
                    throw .rule(BTCLightClientError.timestampTooOld(index: index, height: height, time: header.time,
                                                                     medianTimePast: median))
                }
            }
            let (work, overflow) = parent.stored.cumulativeWork.addingReportingOverflow(ProofOfWork.work(bits: header.bits))
            guard !overflow else { throw .rule(BTCLightClientError.workOverflow(index: index)) }
            let walkBits = (height % interval == 0 || header.bits != limitBits) ? header.bits : parent.stored.walkBits
            let item = AcceptedHeader(hash: hash, stored: StoredHeader(header: header, height: height,
                                                                        cumulativeWork: work, walkBits: walkBits))
            accepted.append(item)
            parent = item
            recent.append(header.time)
            if recent.count > 11 { recent.removeFirst() }
        }
        return accepted
    }

    /// The bits the header after `parent` must carry: Bitcoin Core's `GetNextWorkRequired`
    /// through ``ProofOfWork/nextWorkRequired(lastHeight:last:newBlockTime:parameters:ancestor:)``,
    /// except the minimum-difficulty walk, answered from the parent's memo.
    func requiredBits(after parent: AcceptedHeader, newTime: UInt32, root: AcceptedHeader,
                      accepted: [AcceptedHeader]) throws(ExecutionError) -> UInt32 {
        let last = parent.stored
        if pow.allowMinDifficultyBlocks, (last.height + 1) % interval != 0,
           Int64(newTime) <= Int64(last.header.time) + pow.targetSpacing * 2 {
            return last.walkBits
        }
        // Only a retarget asks for an ancestor (the period's first header): from this
        // message's headers when it is among them, else down the root's branch.
        var failure: ExecutionError?
        let firstAcceptedHeight = root.stored.height + 1
        do throws(PowError) {
            return try ProofOfWork.nextWorkRequired(
                lastHeight: Int(last.height), last: last.header, newBlockTime: newTime, parameters: pow,
                ancestor: { h -> BTCBlockHeader? in
                    guard h >= 0 else { return nil }
                    let height = UInt64(h)
                    if height >= firstAcceptedHeight {
                        let i = Int(height - firstAcceptedHeight)
                        return accepted.indices.contains(i) ? accepted[i].stored.header : nil
                    }
                    do throws(ExecutionError) {
                        return try ancestor(at: height, of: root)?.stored.header
                    } catch {
                        failure = error
                        return nil
                    }
                })
        } catch {
            if let failure { throw failure }
            switch error {
            case .missingAncestor(let h): throw .rule(BTCLightClientError.missingAncestor(height: UInt64(max(h, 0))))
            default: throw .rule(BTCLightClientError.invalidTarget(index: accepted.count, bits: last.header.bits))
            }
        }
    }

    /// Makes the branch ending at `newTip` the main chain: unwinds the height index down to
    /// the fork point, then extends it along the branch. Returns the events, in order.
    func switchMainChain(to newTip: AcceptedHeader, accepted: [AcceptedHeader]) throws(ExecutionError) -> [Event] {
        var pending: [Data: Int] = [:]
        for (i, a) in accepted.enumerated() { pending[a.hash] = i }
        var branch: [AcceptedHeader] = []
        var cursor = newTip
        while try !isMain(cursor) {
            branch.append(cursor)
            guard let parent = try lookup(cursor.stored.header.previousBlockHash.rawValue, pending: pending, accepted: accepted)
            else { throw .fatal(.corruptState("btclightclient: branch of \(cursor.hash.hexString) does not reach the main chain")) }
            cursor = parent
        }
        let forkHeight = cursor.stored.height
        var events: [Event] = []
        var height = tip.stored.height
        while height > forkHeight {
            let key = BTCLightClientModule.mainKey(height)
            guard let hash = try store.get(key) else {
                throw .fatal(.corruptState("btclightclient: main chain has no header at \(height)"))
            }
            store.delete(key)
            events.append(Event(type: BTCLightClientModule.rollBackEvent, attributes: [
                EventAttribute("hash", BTCLightClientModule.display(hash)), EventAttribute("height", String(height)),
            ]))
            height -= 1
        }
        for item in branch.reversed() {
            store.set(BTCLightClientModule.mainKey(item.stored.height), item.hash)
            events.append(Event(type: BTCLightClientModule.rollForwardEvent, attributes: [
                EventAttribute("hash", BTCLightClientModule.display(item.hash)),
                EventAttribute("height", String(item.stored.height)),
            ]))
        }
        store.set(BTCLightClientModule.tipKey, newTip.hash)
        return events
    }
}
