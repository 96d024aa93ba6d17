import Foundation
import Synchronization
import IshtarCrypto

// Payload layouts use the frame's codec: integers big-endian, `str` u32-length-prefixed
// UTF-8 (chain ids ≤ 64 bytes). Keys are 32-byte x-only; hashes and randomness 32 bytes.

/// Deepest accepted Merkle proof (a tree of 2⁶⁴ leaves has depth 64).
let maxProofDepth = 64

func readChainID(_ r: inout BinaryReader) throws(CodecError) -> String {
    let raw = try r.bytes("chain id", limit: StakingModule.maxChainIDBytes)
    // Nearly every message names the chain the last one named: its bytes were validated then.
    if let known = lastChainID.withLock({ last in last.flatMap { sameBytes($0.raw, raw) ? $0.id : nil } }) { return known }
    guard let id = String(validating: raw, as: UTF8.self) else { throw .invalidUTF8(field: "chain id") }
    guard Genesis.isValidChainID(id) else {
        throw .nonCanonical(field: "chain id", reason: "must be 1…\(StakingModule.maxChainIDBytes) bytes of A-Z a-z 0-9 . - _")
    }
    // A copy: `raw` may be a slice of a whole message, which the memory must not keep alive.
    let copy = raw.withUnsafeBytes { Data($0) }
    lastChainID.withLock { $0 = (copy, id) }
    return id
}

private let lastChainID = Mutex<(raw: Data, id: String)?>(nil)

/// `finality/CommitPubRand`: a provider commits EOTS public randomness for heights
/// `start … start + count − 1` of `chainID` (PROTOCOL §4). Any account may send it; the
/// BIP-340 signature by `fpKey` over `SHA256(BE8(start) ‖ BE8(count) ‖ root)` authenticates it.
/// Layout: `fpKey(32) ‖ str chainID ‖ u64 start ‖ u64 count ‖ root(32) ‖ sig(64)`.
public struct CommitPubRand: Hashable, Sendable, BinaryCodable {
    /// The message type.
    public static let type = "finality/CommitPubRand"
    /// The provider's key.
    public var fpKey: Data
    /// The chain the randomness is for.
    public var chainID: String
    /// First height.
    public var startHeight: UInt64
    /// Number of heights.
    public var count: UInt64
    /// RFC-6962 Merkle root of the 32-byte public randomness values in height order.
    public var root: Data
    /// BIP-340 signature by `fpKey` over ``CommitPubRand/signedDigest(startHeight:count:root:)``.
    public var signature: Data

    /// From its parts.
    public init(fpKey: Data, chainID: String, startHeight: UInt64, count: UInt64, root: Data, signature: Data) {
        self.fpKey = fpKey
        self.chainID = chainID
        self.startHeight = startHeight
        self.count = count
        self.root = root
        self.signature = signature
    }

    /// `SHA256(BE8(start) ‖ BE8(count) ‖ root)`: what the commitment signature signs.
    public static func signedDigest(startHeight: UInt64, count: UInt64, root: Data) -> Data {
        EOTS.messageDigest(Data(bigEndian8: startHeight) + Data(bigEndian8: count) + root)
    }

    /// See the type's layout.
    public func encode(to w: inout BinaryWriter) {
        w.fixed(fpKey)
        w.string(chainID)
        w.u64(startHeight)
        w.u64(count)
        w.fixed(root)
        w.fixed(signature)
    }

    /// Inverse of ``encode(to:)``.
    public init(from r: inout BinaryReader) throws(CodecError) {
        fpKey = try r.fixed(32, "fp key")
        chainID = try readChainID(&r)
        startHeight = try r.u64("start height")
        count = try r.u64("count")
        root = try r.fixed(32, "merkle root")
        signature = try r.fixed(64, "commitment signature")
    }

    /// As a transaction message.
    public var message: Message { Message(type: Self.type, payload: encoded) }
}

/// `finality/AddFinalitySig`: a provider's EOTS vote for `blockHash` at `height` of `chainID`.
/// Any account may send it (a relayer may bundle many); the EOTS signature authenticates it.
/// Layout: `fpKey(32) ‖ str chainID ‖ u64 height ‖ pubRand(32) ‖ u64 proofIndex ‖ u64 proofTotal ‖
/// u32 n ‖ n × aunt(32) (n ≤ 64) ‖ blockHash(32) ‖ s(32)`.
public struct AddFinalitySig: Hashable, Sendable, BinaryCodable {
    /// The message type.
    public static let type = "finality/AddFinalitySig"
    /// The provider's key.
    public var fpKey: Data
    /// The chain voted on.
    public var chainID: String
    /// The height voted on.
    public var height: UInt64
    /// The committed public randomness for `height`.
    public var publicRandomness: Data
    /// Its inclusion proof in the commitment (index = height − start, total = count).
    public var proof: MerkleProof
    /// The block voted for.
    public var blockHash: Data
    /// The EOTS signature s over `BE8(height) ‖ blockHash`.
    public var signature: Data

    /// From its parts.
    public init(fpKey: Data, chainID: String, height: UInt64, publicRandomness: Data, proof: MerkleProof,
                blockHash: Data, signature: Data) {
        self.fpKey = fpKey
        self.chainID = chainID
        self.height = height
        self.publicRandomness = publicRandomness
        self.proof = proof
        self.blockHash = blockHash
        self.signature = signature
    }

    /// See the type's layout.
    public func encode(to w: inout BinaryWriter) {
        w.fixed(fpKey)
        w.string(chainID)
        w.u64(height)
        w.fixed(publicRandomness)
        w.u64(proof.index)
        w.u64(proof.total)
        w.count(proof.aunts.count)
        for a in proof.aunts { w.fixed(a) }
        w.fixed(blockHash)
        w.fixed(signature)
    }

    /// Inverse of ``encode(to:)``.
    public init(from r: inout BinaryReader) throws(CodecError) {
        fpKey = try r.fixed(32, "fp key")
        chainID = try readChainID(&r)
        height = try r.u64("height")
        publicRandomness = try r.fixed(32, "public randomness")
        let index = try r.u64("proof index")
        let total = try r.u64("proof total")
        let n = try r.count("proof aunts", minElementSize: 32, limit: maxProofDepth)
        // One read for all the aunts, each then a slice of it: a vote's proof is one
        // allocation instead of one per level (every vote is decoded, and remembered).
        let auntBytes = try r.fixed(32 * n, "proof aunts")
        let aunts = (0..<n).map { i in auntBytes[(auntBytes.startIndex + 32 * i)..<(auntBytes.startIndex + 32 * i + 32)] }
        proof = MerkleProof(index: index, total: total, aunts: aunts)
        let tail = try r.fixed(64, "block hash and EOTS signature")
        blockHash = tail[tail.startIndex..<(tail.startIndex + 32)]
        signature = tail[(tail.startIndex + 32)..<(tail.startIndex + 64)]
    }

    /// As a transaction message.
    public var message: Message { Message(type: Self.type, payload: encoded) }
}

/// `finality/Unjail`: the provider's owner account asks to leave jail after the jail time.
/// Layout: `fpKey(32)`.
public struct UnjailFinalityProvider: Hashable, Sendable, BinaryCodable {
    /// The message type.
    public static let type = "finality/Unjail"
    /// The provider's key.
    public var fpKey: Data

    /// From its key.
    public init(fpKey: Data) { self.fpKey = fpKey }

    /// See the type's layout.
    public func encode(to w: inout BinaryWriter) { w.fixed(fpKey) }

    /// Inverse of ``encode(to:)``.
    public init(from r: inout BinaryReader) throws(CodecError) { fpKey = try r.fixed(32, "fp key") }

    /// As a transaction message.
    public var message: Message { Message(type: Self.type, payload: encoded) }
}

// MARK: - Stored records

/// One accepted randomness commitment.
/// Layout: `u64 start ‖ u64 count ‖ root(32) ‖ u64 committedAt`.
public struct PubRandCommitment: Hashable, Sendable, BinaryCodable {
    /// First height.
    public var startHeight: UInt64
    /// Number of heights.
    public var count: UInt64
    /// Merkle root.
    public var root: Data
    /// Control-plane height of acceptance.
    public var committedAt: UInt64

    /// Last covered height (`start + count − 1`; the message rules keep it in range).
    public var endHeight: UInt64 { startHeight + count - 1 }

    /// Whether `height` is covered.
    public func covers(_ height: UInt64) -> Bool { height >= startHeight && height <= endHeight }

    /// See the type's layout.
    public func encode(to w: inout BinaryWriter) {
        w.u64(startHeight)
        w.u64(count)
        w.fixed(root)
        w.u64(committedAt)
    }

    /// Inverse of ``encode(to:)``.
    public init(from r: inout BinaryReader) throws(CodecError) {
        startHeight = try r.u64("start height")
        count = try r.u64("count")
        root = try r.fixed(32, "root")
        committedAt = try r.u64("committed at")
        guard count >= 1, startHeight.addingReportingOverflow(count - 1).overflow == false else {
            throw .nonCanonical(field: "commitment", reason: "empty or overflowing range")
        }
    }

    init(startHeight: UInt64, count: UInt64, root: Data, committedAt: UInt64) {
        self.startHeight = startHeight
        self.count = count
        self.root = root
        self.committedAt = committedAt
    }

    var json: [String: Any] {
        ["start_height": String(startHeight), "count": String(count), "end_height": String(endHeight),
         "root": root.hexString, "committed_at": String(committedAt)]
    }
}

/// One accepted vote.
struct StoredVote: Hashable, Sendable {
    var blockHash: Data
    var publicRandomness: Data
    var signature: Data
}

/// Every accepted vote of one (chain, height), in one value: `n × (key(32) ‖ blockHash(32) ‖
/// pubRand(32) ‖ s(32))` sorted by key. One value per height instead of one per vote because
/// each written key costs an app-hash element (65 SHA-256 compressions and 1024 lane
/// additions), far more than copying the height's list; lookups are binary searches over the
/// raw bytes.
struct VoteList: Sendable {
    static let entrySize = 128
    /// The stored bytes themselves: reading and writing the list copies nothing extra.
    private(set) var stored: Data

    init() { stored = Data() }

    init(stored: Data) throws(CodecError) {
        guard stored.count % Self.entrySize == 0 else {
            throw .invalidLength(field: "vote list", expected: stored.count / Self.entrySize * Self.entrySize, actual: stored.count)
        }
        self.stored = stored
    }

    var count: Int { stored.count / Self.entrySize }

    /// The index of `key`, or where it would be inserted.
    func search(_ key: Data) -> (index: Int, found: Bool) {
        guard key.count == 32 else { return (count, false) }
        return stored.withUnsafeBytes { list in
            key.withUnsafeBytes { target in
                var lower = 0
                var upper = count
                while lower < upper {
                    let mid = (lower + upper) / 2
                    let order = memcmp(list.baseAddress! + mid * Self.entrySize, target.baseAddress!, 32)
                    if order == 0 { return (mid, true) }
                    if order < 0 { lower = mid + 1 } else { upper = mid }
                }
                return (lower, false)
            }
        }
    }

    func key(at index: Int) -> Data { slice(index, 0) }

    func vote(at index: Int) -> StoredVote {
        StoredVote(blockHash: slice(index, 32), publicRandomness: slice(index, 64), signature: slice(index, 96))
    }

    /// The vote of `key`, if any.
    func vote(of key: Data) -> StoredVote? {
        let (index, found) = search(key)
        return found ? vote(at: index) : nil
    }

    /// Inserts a vote of a key not yet in the list.
    mutating func insert(key: Data, _ vote: StoredVote, at index: Int) {
        // The entry is assembled on the stack and spliced in with one raw copy: a `Data`
        // entry and the generic collection insert were a tenth of delivering a vote. Every
        // field is 32 bytes (checked at decode); a shorter one would leave zeros, not trap.
        withUnsafeTemporaryAllocation(byteCount: Self.entrySize, alignment: 1) { entry in
            entry.initializeMemory(as: UInt8.self, repeating: 0)
            func put(_ field: Data, at offset: Int) {
                field.prefix(32).withUnsafeBytes { bytes in
                    UnsafeMutableRawBufferPointer(rebasing: entry[offset..<offset + bytes.count]).copyMemory(from: bytes)
                }
            }
            put(key, at: 0)
            put(vote.blockHash, at: 32)
            put(vote.publicRandomness, at: 64)
            put(vote.signature, at: 96)
            guard let base = entry.baseAddress else { return }
            let at = stored.startIndex + index * Self.entrySize
            stored.replaceSubrange(at..<at, with: base, count: Self.entrySize)
        }
    }

    private func slice(_ index: Int, _ field: Int) -> Data {
        let offset = stored.startIndex + index * Self.entrySize + field
        return Data(stored[offset..<offset + 32])
    }
}

/// The active set of one (chain, height), fixed when first taken.
///
/// Stored as `u64 totalPower ‖ u32 n ‖ n × (key(32) ‖ u64 power)` sorted by key, so a
/// provider's power is found by binary search over the raw bytes without decoding the set.
public struct ActiveSet: Hashable, Sendable {
    static let entrySize = 40
    /// Sum of the members' power.
    public let totalPower: UInt64
    let bytes: [UInt8]

    /// Number of members.
    public var count: Int { (bytes.count - 12) / Self.entrySize }

    /// From members (any order; sorted here).
    init(entries: [VotingPowerEntry]) {
        let sorted = entries.sorted { $0.fpKey.lexicographicallyPrecedes($1.fpKey) }
        var w = BinaryWriter()
        let total = sorted.reduce(UInt64(0)) { $0 &+ $1.power }
        w.u64(total)
        w.count(sorted.count)
        for e in sorted {
            w.fixed(e.fpKey)
            w.u64(e.power)
        }
        totalPower = total
        bytes = w.bytes
    }

    /// Parses the stored form.
    init(stored: Data) throws(CodecError) {
        let raw = [UInt8](stored)
        var r = BinaryReader(raw)
        totalPower = try r.u64("total power")
        let n = try r.count("active set", minElementSize: Self.entrySize)
        guard raw.count == 12 + n * Self.entrySize else { throw .trailingBytes(count: raw.count - 12 - n * Self.entrySize) }
        bytes = raw
    }

    var stored: Data { Data(bytes) }

    /// The power of `key`, or `nil` if it is not a member. O(log n), no allocation.
    public func power(of key: Data) -> UInt64? {
        guard key.count == 32 else { return nil }
        let found: Int? = bytes.withUnsafeBytes { set in
            key.withUnsafeBytes { target in
                guard let setBase = set.baseAddress, let targetBase = target.baseAddress else { return nil }
                var lower = 0
                var upper = count
                while lower < upper {
                    let mid = (lower + upper) / 2
                    let offset = 12 + mid * Self.entrySize
                    let order = memcmp(setBase + offset, targetBase, 32)
                    if order == 0 { return offset }
                    if order < 0 { lower = mid + 1 } else { upper = mid }
                }
                return nil
            }
        }
        return found.map { power(at: $0 + 32) }
    }

    private func power(at offset: Int) -> UInt64 {
        var v: UInt64 = 0
        for i in 0..<8 { v = v << 8 | UInt64(bytes[offset + i]) }
        return v
    }

    /// Members' keys that have no vote in `votes`, ascending: one merge walk of the two
    /// sorted lists, allocating only for the members it returns (liveness asks this every
    /// block, and nearly every member has voted).
    func keys(withoutVoteIn votes: VoteList) -> [Data] {
        var missing: [Data] = []
        let n = count
        votes.stored.withUnsafeBytes { list in
            bytes.withUnsafeBytes { set in
                guard let setBase = set.baseAddress else { return }
                var j = 0
                for i in 0..<n {
                    let key = setBase + 12 + i * Self.entrySize
                    var found = false
                    if let listBase = list.baseAddress {
                        while j < votes.count {
                            let order = memcmp(listBase + j * VoteList.entrySize, key, 32)
                            if order < 0 { j += 1; continue }
                            found = order == 0
                            break
                        }
                    }
                    if !found { missing.append(Data(bytes: key, count: 32)) }
                }
            }
        }
        return missing
    }

    /// Members' keys, ascending.
    var keys: [Data] {
        (0..<count).map { i in
            let offset = 12 + i * Self.entrySize
            return Data(bytes[offset..<offset + 32])
        }
    }

    /// Members by power desc, key asc.
    public var entries: [VotingPowerEntry] {
        (0..<count).map { i in
            let offset = 12 + i * Self.entrySize
            return VotingPowerEntry(fpKey: Data(bytes[offset..<offset + 32]), power: power(at: offset + 32))
        }.sorted { $0.power != $1.power ? $0.power > $1.power : $0.fpKey.lexicographicallyPrecedes($1.fpKey) }
    }
}

/// Evidence of equivocation. Layout: `str chainID ‖ u64 height ‖ pubRand(32) ‖
/// hash1(32) ‖ s1(32) ‖ hash2(32) ‖ s2(32) ‖ u64 recordedAt`.
public struct EquivocationEvidence: Hashable, Sendable, BinaryCodable {
    /// The provider.
    public var fpKey: Data
    /// The chain.
    public var chainID: String
    /// The height.
    public var height: UInt64
    /// The public randomness both signatures used.
    public var publicRandomness: Data
    /// The first (stored) vote's block hash.
    public var blockHash1: Data
    /// Its EOTS s.
    public var signature1: Data
    /// The conflicting vote's block hash.
    public var blockHash2: Data
    /// Its EOTS s.
    public var signature2: Data
    /// Control-plane height at which the evidence was recorded.
    public var recordedAt: UInt64

    /// From its parts.
    public init(fpKey: Data, chainID: String, height: UInt64, publicRandomness: Data, blockHash1: Data, signature1: Data,
                blockHash2: Data, signature2: Data, recordedAt: UInt64) {
        self.fpKey = fpKey
        self.chainID = chainID
        self.height = height
        self.publicRandomness = publicRandomness
        self.blockHash1 = blockHash1
        self.signature1 = signature1
        self.blockHash2 = blockHash2
        self.signature2 = signature2
        self.recordedAt = recordedAt
    }

    /// `key(32)` then the type's layout.
    public func encode(to w: inout BinaryWriter) {
        w.fixed(fpKey)
        w.string(chainID)
        w.u64(height)
        w.fixed(publicRandomness)
        w.fixed(blockHash1)
        w.fixed(signature1)
        w.fixed(blockHash2)
        w.fixed(signature2)
        w.u64(recordedAt)
    }

    /// Inverse of ``encode(to:)``.
    public init(from r: inout BinaryReader) throws(CodecError) {
        fpKey = try r.fixed(32, "fp key")
        chainID = try readChainID(&r)
        height = try r.u64("height")
        publicRandomness = try r.fixed(32, "public randomness")
        blockHash1 = try r.fixed(32, "block hash 1")
        signature1 = try r.fixed(32, "signature 1")
        blockHash2 = try r.fixed(32, "block hash 2")
        signature2 = try r.fixed(32, "signature 2")
        recordedAt = try r.u64("recorded at")
    }

    /// Recovers the provider's secret key from the two signatures with IshtarCrypto's EOTS
    /// extraction (the even-y form of the key).
    public func extractSecretKey() throws(IshtarCrypto.CryptoError) -> Schnorr.PrivateKey {
        let key = try Schnorr.PublicKey(rawRepresentation: fpKey)
        let r = try EOTS.PublicRandomness(rawRepresentation: publicRandomness)
        return try EOTS.extract(
            publicKey: key, publicRandomness: r,
            message1: try EOTS.finalityVoteMessage(height: height, blockHash: blockHash1),
            signature1: try EOTS.Signature(rawRepresentation: signature1),
            message2: try EOTS.finalityVoteMessage(height: height, blockHash: blockHash2),
            signature2: try EOTS.Signature(rawRepresentation: signature2))
    }

    var json: [String: Any] {
        ["fp_btc_pk": fpKey.hexString, "chain_id": chainID, "height": String(height),
         "public_randomness": publicRandomness.hexString, "block_hash_1": blockHash1.hexString,
         "signature_1": signature1.hexString, "block_hash_2": blockHash2.hexString, "signature_2": signature2.hexString,
         "recorded_at": String(recordedAt)]
    }
}

/// Per-chain tally progress. Layout: `u64 next ‖ opt(u64 lastFinalized) ‖ u64 maxVoted`.
struct ChainTallyState: Hashable, Sendable, BinaryCodable {
    /// The next height to tally.
    var next: UInt64
    /// The last finalized height.
    var lastFinalized: UInt64?
    /// The highest height with a vote (consumer chains bound the cursor by it).
    var maxVoted: UInt64

    init(next: UInt64, lastFinalized: UInt64? = nil, maxVoted: UInt64 = 0) {
        self.next = next
        self.lastFinalized = lastFinalized
        self.maxVoted = maxVoted
    }

    func encode(to w: inout BinaryWriter) {
        w.u64(next)
        w.bool(lastFinalized != nil)
        if let lastFinalized { w.u64(lastFinalized) }
        w.u64(maxVoted)
    }

    init(from r: inout BinaryReader) throws(CodecError) {
        next = try r.u64("next")
        lastFinalized = try r.presence("last finalized") ? try r.u64("last finalized") : nil
        maxVoted = try r.u64("max voted")
    }
}

/// Liveness record of a provider (control-plane chain). Written only when it misses a
/// height, is jailed, so providers that sign cost no writes and counting needs no scan.
/// Layout: `u32 n ‖ n × u64 missedHeight (ascending) ‖ u64 jailedUntil ‖ u64 jailCount`.
public struct SigningInfo: Hashable, Sendable, BinaryCodable {
    /// The heights it missed that were in the window at its last miss (at most
    /// `max missed + 1`: one more jails it and clears the list).
    public var missedHeights: [UInt64]
    /// Block time (ms) from which an unjail is accepted (0: never jailed).
    public var jailedUntil: UInt64
    /// How many times it was jailed.
    public var jailCount: UInt64

    init(missedHeights: [UInt64] = [], jailedUntil: UInt64 = 0, jailCount: UInt64 = 0) {
        self.missedHeights = missedHeights
        self.jailedUntil = jailedUntil
        self.jailCount = jailCount
    }

    /// Misses within the window ending at `height`.
    public func missed(window: UInt64, endingAt height: UInt64) -> Int {
        missedHeights.filter { $0 <= height && $0 + window > height }.count
    }

    /// See the type's layout.
    public func encode(to w: inout BinaryWriter) {
        w.count(missedHeights.count)
        for h in missedHeights { w.u64(h) }
        w.u64(jailedUntil)
        w.u64(jailCount)
    }

    /// Inverse of ``encode(to:)``.
    public init(from r: inout BinaryReader) throws(CodecError) {
        let n = try r.count("missed heights", minElementSize: 8)
        var heights: [UInt64] = []
        heights.reserveCapacity(n)
        for _ in 0..<n { heights.append(try r.u64("missed height")) }
        missedHeights = heights
        jailedUntil = try r.u64("jailed until")
        jailCount = try r.u64("jail count")
    }
}

/// A finality vote as decoded once per process, its EOTS signature verified, with the
/// commitment (start, count, root) against which its randomness proof last verified.
final class DecodedVote: Sendable {
    let vote: AddFinalitySig
    /// The state keys the vote is checked and recorded under, built with the decode: the
    /// same vote is looked up at admission and again at delivery, and joining and hashing
    /// each key twice was a visible share of both.
    let keys: Keys
    /// The provider key and block hash in hex, for the vote's event.
    let fpKeyHex: String
    let blockHashHex: String
    private let marks = Mutex<Marks>(Marks())

    /// What checks of this vote established, each valid only with the inputs it names.
    private struct Marks {
        /// The commitment (start, count, root) its randomness proof last verified against.
        var verified: (startHeight: UInt64, count: UInt64, root: Data)?
        /// The last admission that passed reading only committed state, the version of that
        /// state (``CommittedCache/version``), and the provider's power it found.
        var admitted: (version: UInt64, power: UInt64)?
    }

    struct Keys: Sendable {
        /// The provider's record (the staking module's store).
        let provider: StateKey
        /// The (chain, height) vote list, active set and the tally of the vote's block hash,
        /// and the provider's latest commitment on the chain (the finality module's store).
        let votes: StateKey
        let activeSet: StateKey
        let tally: StateKey
        let latestCommitment: StateKey

        /// The same bytes as `StakingModule.fpKey` and `FinalityModule.votesKey`,
        /// `activeSetKey`, `tallyKey` and `latestCommitKey` under their module prefixes (tested),
        /// each built in one buffer.
        init(_ v: AddFinalitySig) {
            self.init(provider: VotingProvider.recordKey(v.fpKey),
                      latestCommitment: VotingProvider.latestCommitmentKey(v.fpKey, chainID: v.chainID), block: VotedBlock.of(v))
        }

        fileprivate init(provider: StateKey, latestCommitment: StateKey, block: VotedBlock) {
            self.provider = provider
            self.latestCommitment = latestCommitment
            (votes, activeSet, tally) = (block.votes, block.activeSet, block.tally)
        }
    }

    /// Checks the vote's EOTS signature (``FinalityModule/verifySignature(_:key:)``) first:
    /// no decoded vote exists whose signature was not verified.
    init(verifying vote: AddFinalitySig) throws(ExecutionError) {
        let provider = try VotingProvider.of(vote.fpKey, chainID: vote.chainID)
        try FinalityModule.verifySignature(vote, key: provider.publicKey)
        let block = VotedBlock.of(vote)
        self.vote = vote
        keys = Keys(provider: provider.recordKey, latestCommitment: provider.latestCommitment(chainID: vote.chainID), block: block)
        fpKeyHex = provider.hex
        blockHashHex = block.hashHex
    }

    func wasVerified(against c: PubRandCommitment) -> Bool {
        marks.withLock { m in
            guard let v = m.verified else { return false }
            return v.startHeight == c.startHeight && v.count == c.count && sameBytes(v.root, c.root)
        }
    }

    func markVerified(against c: PubRandCommitment) {
        marks.withLock { $0.verified = (c.startHeight, c.count, c.root) }
    }

    /// The power an admission found reading only committed state at `version`, if one did
    /// (see ``FinalityModule/admittedPower(_:_:)``).
    func admittedPower(atVersion version: UInt64) -> UInt64? {
        marks.withLock { m in m.admitted.flatMap { $0.version == version ? $0.power : nil } }
    }

    func markAdmitted(atVersion version: UInt64, power: UInt64) {
        marks.withLock { $0.admitted = (version, power) }
    }
}

/// What every vote of one provider needs besides its own fields — the parsed key, the state
/// keys of its record and of its latest commitment on the chain it votes on, and its hex
/// form — made once per provider instead of once per vote. A class: each vote takes one
/// reference instead of copying (and retaining) every field.
final class VotingProvider: Sendable {
    let publicKey: Schnorr.PublicKey
    let recordKey: StateKey
    let hex: String
    /// The chain of the vote that made this entry, and the provider's latest-commitment key
    /// there: a provider votes on one chain at a time almost always.
    let chainID: String
    let latestCommitmentOnChain: StateKey

    private init(publicKey: Schnorr.PublicKey, fpKey: Data, chainID: String) {
        self.publicKey = publicKey
        recordKey = Self.recordKey(fpKey)
        hex = fpKey.hexString
        self.chainID = chainID
        latestCommitmentOnChain = Self.latestCommitmentKey(fpKey, chainID: chainID)
    }

    /// The provider's latest-commitment key on `chainID` (`FinalityModule.latestCommitKey`
    /// under the finality prefix).
    func latestCommitment(chainID c: String) -> StateKey {
        // Byte for byte, as chain ids are compared everywhere else.
        if c.utf8.elementsEqual(chainID.utf8) { return latestCommitmentOnChain }
        return Self.latestCommitmentKey(Data(publicKey.rawRepresentation), chainID: c)
    }

    /// The provider `fpKey` (32 bytes, an x coordinate on the curve), from a bounded memory;
    /// `chainID` is the chain its vote is for.
    static func of(_ fpKey: Data, chainID: String) throws(ExecutionError) -> VotingProvider {
        guard fpKey.count == 32 else { throw .rule(FinalityModuleError.invalidKey(field: "fp key")) }
        let id = Digest256(fpKey)
        if let known = known.withLock({ $0[id] }) { return known }
        guard let key = try? Schnorr.PublicKey(rawRepresentation: fpKey) else {
            throw .rule(FinalityModuleError.invalidKey(field: "fp key"))
        }
        let made = VotingProvider(publicKey: key, fpKey: fpKey, chainID: chainID)
        Self.known.withLock { map in
            if map.count >= 16_384 { map.removeAll(keepingCapacity: true) }
            map[id] = made
        }
        return made
    }

    /// `StakingModule.fpKey(fpKey)` under the staking module's prefix.
    static func recordKey(_ fpKey: Data) -> StateKey {
        StateKey(module: "staking", "fp/") { FinalityModule.appendData(&$0, fpKey) }
    }

    /// `FinalityModule.latestCommitKey(fpKey, chainID)` under the finality module's prefix.
    static func latestCommitmentKey(_ fpKey: Data, chainID: String) -> StateKey {
        StateKey(module: "finality", "prl/") { FinalityModule.appendData(&$0, fpKey); FinalityModule.appendChain(&$0, chainID) }
    }

    private static let known = Mutex<[Digest256: VotingProvider]>([:])
}

/// What every vote for one (chain, height, block hash) shares: the keys of the height's vote
/// list, active set and tally, and the hash in hex. All votes of a block carry the same, so
/// the last ones made are kept and handed out again — the votes' lookups then compare one
/// key buffer with itself.
struct VotedBlock: Sendable {
    let chainID: String
    let height: UInt64
    let hash: Data
    let votes: StateKey
    let activeSet: StateKey
    let tally: StateKey
    let hashHex: String

    static func of(_ v: AddFinalitySig) -> VotedBlock {
        if let kept = last.withLock({ k in
            k.flatMap { $0.height == v.height && $0.chainID == v.chainID && sameBytes($0.hash, v.blockHash) ? $0 : nil }
        }) {
            return kept
        }
        typealias F = FinalityModule
        let made = VotedBlock(
            chainID: v.chainID, height: v.height, hash: v.blockHash,
            votes: StateKey(module: "finality", "votes/") { F.appendChain(&$0, v.chainID); F.appendBE8(&$0, v.height) },
            activeSet: StateKey(module: "finality", "as/") { F.appendChain(&$0, v.chainID); F.appendBE8(&$0, v.height) },
            tally: StateKey(module: "finality", "tally/") {
                F.appendChain(&$0, v.chainID); F.appendBE8(&$0, v.height); F.appendData(&$0, v.blockHash)
            },
            hashHex: v.blockHash.hexString)
        last.withLock { $0 = made }
        return made
    }

    private static let last = Mutex<VotedBlock?>(nil)
}
