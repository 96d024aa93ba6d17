import Foundation

/// Deterministic byte encodings: the bytes validators sign, and a compact wire format for
/// the node shell. Integers are big-endian; optionals are a 0/1 flag byte followed by the
/// value; variable-length fields carry an explicit length prefix. The format is fixed by
/// this file, not by any Swift `Codable` coder, so every implementation can reproduce it.
public enum CanonicalEncoding {
    /// Domain separation: these bytes never collide with anything else a validator key signs
    /// (BIP-340 messages elsewhere in Ishtar are tagged hashes of a different shape).
    public static let domainTag = Data("ISHTAR/CONSENSUS/V1".utf8)

    /// Message-type byte inside sign bytes (votes use ``VoteType`` raw values 1 and 2).
    public static let proposalTypeByte: UInt8 = 0x20

    /// `tag ‖ u8 len(chainID) ‖ chainID ‖ u8 type ‖ BE64 height ‖ BE32 round ‖ u8 hasValue ‖ [32 hash]`
    public static func voteSignBytes(
        chainID: ChainID, type: VoteType, height: Height, round: Round, value: BlockHash?
    ) -> Data {
        var w = ByteWriter()
        w.bytes(domainTag)
        w.u8(UInt8(chainID.utf8.count))
        w.bytes(chainID.utf8)
        w.u8(type.rawValue)
        w.u64(height)
        w.u32(round)
        w.optionalHash(value)
        return w.data
    }

    /// `tag ‖ u8 len(chainID) ‖ chainID ‖ 0x20 ‖ BE64 height ‖ BE32 round ‖ u8 hasPOL ‖ [BE32 polRound] ‖ 32 hash`
    public static func proposalSignBytes(
        chainID: ChainID, height: Height, round: Round, polRound: Round?, value: BlockHash
    ) -> Data {
        var w = ByteWriter()
        w.bytes(domainTag)
        w.u8(UInt8(chainID.utf8.count))
        w.bytes(chainID.utf8)
        w.u8(proposalTypeByte)
        w.u64(height)
        w.u32(round)
        w.optionalU32(polRound)
        w.bytes(value.bytes)
        return w.data
    }

    // MARK: wire format

    /// Wire encoding of a signed vote.
    public static func encode(_ v: SignedVote) -> Data {
        var w = ByteWriter()
        w.vote(v)
        return w.data
    }

    /// Decodes exactly one signed vote; rejects trailing bytes.
    public static func decodeVote(_ data: Data) throws(ConsensusError) -> SignedVote {
        var r = ByteReader(data)
        let v = try r.vote()
        try r.finish()
        return v
    }

    /// Wire encoding of a signed proposal (including the block bytes).
    public static func encode(_ p: SignedProposal) -> Data {
        var w = ByteWriter()
        w.proposal(p)
        return w.data
    }

    /// Decodes exactly one signed proposal; rejects trailing bytes.
    public static func decodeProposal(_ data: Data) throws(ConsensusError) -> SignedProposal {
        var r = ByteReader(data)
        let p = try r.proposal()
        try r.finish()
        return p
    }

    /// Wire encoding of a commit certificate.
    public static func encode(_ c: CommitCertificate) -> Data {
        var w = ByteWriter()
        w.u64(c.height)
        w.u32(c.round)
        w.bytes(c.value.bytes)
        w.u32(UInt32(clamping: c.precommits.count))
        for v in c.precommits { w.vote(v) }
        return w.data
    }

    /// Decodes a commit certificate. Structural checks only; call
    /// ``CommitCertificate/verify(chainID:validators:verifier:)`` before trusting it.
    public static func decodeCommit(_ data: Data) throws(ConsensusError) -> CommitCertificate {
        var r = ByteReader(data)
        let h = try r.u64()
        let round = try r.u32()
        let value = try r.hash()
        let n = try r.u32()
        // Each encoded vote takes at least 17 bytes: reject absurd counts up front.
        guard Int(n) <= r.remaining / 17 else { throw .malformedMessage("vote count too large") }
        var votes: [SignedVote] = []
        for _ in 0..<n { votes.append(try r.vote()) }
        try r.finish()
        return CommitCertificate(height: h, round: round, value: value, precommits: votes)
    }

    /// Wire encoding of duplicate-vote evidence (two votes).
    public static func encode(_ e: DuplicateVoteEvidence) -> Data {
        var w = ByteWriter()
        w.vote(e.voteA)
        w.vote(e.voteB)
        return w.data
    }

    /// Decodes duplicate-vote evidence. Call ``DuplicateVoteEvidence/verify(chainID:validators:verifier:)``.
    public static func decodeEvidence(_ data: Data) throws(ConsensusError) -> DuplicateVoteEvidence {
        var r = ByteReader(data)
        let a = try r.vote()
        let b = try r.vote()
        try r.finish()
        return DuplicateVoteEvidence(a, b)
    }
}

struct ByteWriter {
    var data = Data()

    mutating func u8(_ v: UInt8) { data.append(v) }
    mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.bigEndian) { data.append(contentsOf: $0) } }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.bigEndian) { data.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.bigEndian) { data.append(contentsOf: $0) } }
    mutating func bytes(_ d: Data) { data.append(d) }
    mutating func optionalHash(_ h: BlockHash?) {
        if let h {
            u8(1)
            bytes(h.bytes)
        } else {
            u8(0)
        }
    }
    mutating func optionalU32(_ v: UInt32?) {
        if let v {
            u8(1)
            u32(v)
        } else {
            u8(0)
        }
    }
    /// Short byte string (addresses): u8 length. Callers keep addresses ≤ 255 bytes
    /// (``ValidatorSet`` enforces it); longer input is truncated rather than trapping.
    mutating func short(_ d: Data) {
        let d = d.prefix(255)
        u8(UInt8(d.count))
        bytes(d)
    }
    mutating func medium(_ d: Data) {
        let d = d.prefix(Int(UInt16.max))
        u16(UInt16(d.count))
        bytes(d)
    }
    mutating func long(_ d: Data) {
        let d = d.prefix(Int(UInt32.max))
        u32(UInt32(d.count))
        bytes(d)
    }
    mutating func vote(_ sv: SignedVote) {
        u8(sv.vote.type.rawValue)
        u64(sv.vote.height)
        u32(sv.vote.round)
        optionalHash(sv.vote.value)
        short(sv.vote.validator)
        medium(sv.signature)
    }
    mutating func proposal(_ sp: SignedProposal) {
        let p = sp.proposal
        u64(p.height)
        u32(p.round)
        optionalU32(p.polRound)
        bytes(p.value.hash.bytes)
        long(p.value.block)
        short(p.proposer)
        medium(sp.signature)
    }
}

struct ByteReader {
    private let data: Data
    private var pos: Int

    init(_ data: Data) {
        self.data = Data(data)  // re-base to index 0
        pos = 0
    }

    var remaining: Int { data.count - pos }

    mutating func take(_ n: Int) throws(ConsensusError) -> Data {
        guard n >= 0, n <= remaining else { throw .malformedMessage("truncated") }
        defer { pos += n }
        return data.subdata(in: pos..<(pos + n))
    }
    mutating func u8() throws(ConsensusError) -> UInt8 { try take(1)[0] }
    mutating func uint(_ width: Int) throws(ConsensusError) -> UInt64 {
        try take(width).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    }
    mutating func u16() throws(ConsensusError) -> UInt16 { UInt16(try uint(2)) }
    mutating func u32() throws(ConsensusError) -> UInt32 { UInt32(try uint(4)) }
    mutating func u64() throws(ConsensusError) -> UInt64 { try uint(8) }
    mutating func flag() throws(ConsensusError) -> Bool {
        switch try u8() {
        case 0: return false
        case 1: return true
        default: throw .malformedMessage("bad flag byte")
        }
    }
    mutating func hash() throws(ConsensusError) -> BlockHash { try BlockHash(try take(32)) }
    mutating func optionalHash() throws(ConsensusError) -> BlockHash? { try flag() ? try hash() : nil }
    mutating func optionalU32() throws(ConsensusError) -> UInt32? { try flag() ? try u32() : nil }
    mutating func short() throws(ConsensusError) -> Data { try take(Int(try u8())) }
    mutating func medium() throws(ConsensusError) -> Data { try take(Int(try u16())) }
    mutating func long() throws(ConsensusError) -> Data { try take(Int(try u32())) }

    mutating func vote() throws(ConsensusError) -> SignedVote {
        guard let type = VoteType(rawValue: try u8()) else { throw .malformedMessage("bad vote type") }
        let h = try u64()
        let r = try u32()
        let value = try optionalHash()
        let validator = try short()
        let sig = try medium()
        return SignedVote(
            vote: Vote(type: type, height: h, round: r, value: value, validator: validator), signature: sig)
    }
    mutating func proposal() throws(ConsensusError) -> SignedProposal {
        let h = try u64()
        let r = try u32()
        let pol = try optionalU32()
        let hash = try hash()
        let block = try long()
        let proposer = try short()
        let sig = try medium()
        return SignedProposal(
            proposal: Proposal(
                height: h, round: r, polRound: pol, value: ProposalValue(hash: hash, block: block),
                proposer: proposer),
            signature: sig)
    }
    func finish() throws(ConsensusError) {
        guard remaining == 0 else { throw .malformedMessage("trailing bytes") }
    }
}
