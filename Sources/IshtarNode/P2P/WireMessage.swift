import Foundation
import IshtarConsensus
import IshtarCrypto

/// Why a peer's frame was refused. Any of these disconnects the peer.
public enum WireError: Error, Sendable, Equatable, CustomStringConvertible {
    case truncated
    case trailingBytes
    case unknownType(UInt8)
    case fieldTooLarge(String)
    case consensus(String)
    case frameTooLarge(Int)

    public var description: String {
        switch self {
        case .truncated: "truncated message"
        case .trailingBytes: "trailing bytes"
        case .unknownType(let t): "unknown message type \(t)"
        case .fieldTooLarge(let f): "field too large: \(f)"
        case .consensus(let m): "bad consensus payload: \(m)"
        case .frameTooLarge(let n): "frame of \(n) bytes exceeds the limit"
        }
    }
}

/// Peer-to-peer messages. On the wire every message is one frame:
/// `BE32 length ‖ u8 type ‖ body`, where `length` counts `type ‖ body` and is bounded by
/// the configured `max_frame_bytes`. Bodies use big-endian integers and `BE32 length ‖ bytes`
/// for variable fields; consensus messages use ``CanonicalEncoding``'s wire format.
public enum WireMessage: Sendable, Equatable {
    /// First frame on a connection, both directions: who I am and a fresh 32-byte challenge.
    case hello(chainID: String, nodeKey: Data, challenge: Data)
    /// Second frame: BIP-340 signature by my node key over ``handshakeDigest``.
    case helloProof(signature: Data)
    case proposal(SignedProposal)
    case vote(SignedVote)
    /// A decided value with its certificate (catch-up and block sync).
    case commit(CommitCertificate, block: Data)
    case transaction(Data)
    /// Several transactions in one frame (gossip is batched per node turn: one frame and
    /// one hand-off to the node per batch instead of per transaction).
    case transactions([Data])
    /// My last committed height (sent periodically).
    case status(height: UInt64)
    /// Please send me ``commit(_:block:)`` for this height.
    case syncRequest(height: UInt64)

    static let typeHello: UInt8 = 1, typeProof: UInt8 = 2, typeProposal: UInt8 = 10, typeVote: UInt8 = 11
    static let typeCommit: UInt8 = 12, typeTx: UInt8 = 13, typeStatus: UInt8 = 14, typeSync: UInt8 = 15
    static let typeTxs: UInt8 = 16

    /// What a node signs to prove it holds `nodeKey`: binds the peer's challenge, the chain
    /// id and the key itself, so a proof can be neither replayed to another peer (fresh
    /// challenge) nor moved to another chain.
    public static func handshakeDigest(peerChallenge: Data, chainID: String, nodeKey: Data) -> Data {
        var w = WireWriter()
        w.long(peerChallenge)
        w.long(Data(chainID.utf8))
        w.long(nodeKey)
        return TaggedHash.hash(tag: "ishtar/p2p/handshake", data: w.data)
    }

    /// `u8 type ‖ body` (without the frame length).
    public func encoded() -> Data {
        var w = WireWriter()
        switch self {
        case .hello(let chainID, let key, let challenge):
            w.u8(Self.typeHello)
            w.long(Data(chainID.utf8))
            w.long(key)
            w.long(challenge)
        case .helloProof(let sig):
            w.u8(Self.typeProof)
            w.long(sig)
        case .proposal(let p):
            w.u8(Self.typeProposal)
            w.raw(CanonicalEncoding.encode(p))
        case .vote(let v):
            w.u8(Self.typeVote)
            w.raw(CanonicalEncoding.encode(v))
        case .commit(let c, let block):
            w.u8(Self.typeCommit)
            w.long(CanonicalEncoding.encode(c))
            w.long(block)
        case .transaction(let tx):
            w.u8(Self.typeTx)
            w.long(tx)
        case .transactions(let txs):
            w.u8(Self.typeTxs)
            w.u32(UInt32(clamping: txs.count))
            for tx in txs { w.long(tx) }
        case .status(let h):
            w.u8(Self.typeStatus)
            w.u64(h)
        case .syncRequest(let h):
            w.u8(Self.typeSync)
            w.u64(h)
        }
        return w.data
    }

    /// Decodes one frame payload; typed errors, never traps.
    public static func decode(_ data: Data) throws(WireError) -> WireMessage {
        var r = WireReader(data)
        let type = try r.u8()
        let m: WireMessage
        switch type {
        case typeHello:
            let chain = try r.long(max: 255)
            let key = try r.long(max: 32)
            let challenge = try r.long(max: 32)
            guard key.count == 32, challenge.count == 32 else { throw .fieldTooLarge("hello key/challenge must be 32 bytes") }
            m = .hello(chainID: String(decoding: chain, as: UTF8.self), nodeKey: key, challenge: challenge)
        case typeProof:
            let sig = try r.long(max: 64)
            guard sig.count == 64 else { throw .fieldTooLarge("signature must be 64 bytes") }
            m = .helloProof(signature: sig)
        case typeProposal:
            do { m = .proposal(try CanonicalEncoding.decodeProposal(r.rest())) } catch { throw .consensus("\(error)") }
            return m
        case typeVote:
            do { m = .vote(try CanonicalEncoding.decodeVote(r.rest())) } catch { throw .consensus("\(error)") }
            return m
        case typeCommit:
            let cert = try r.long(max: Int.max)
            let block = try r.long(max: Int.max)
            do { m = .commit(try CanonicalEncoding.decodeCommit(cert), block: block) } catch { throw .consensus("\(error)") }
        case typeTx:
            m = .transaction(try r.long(max: Int.max))
        case typeTxs:
            let n = Int(try r.u32())
            // Each entry takes at least its 4-byte length: refuse absurd counts up front.
            guard n <= r.remaining / 4 else { throw .fieldTooLarge("\(n) transactions") }
            var txs: [Data] = []
            txs.reserveCapacity(n)
            for _ in 0..<n { txs.append(try r.long(max: Int.max)) }
            m = .transactions(txs)
        case typeStatus:
            m = .status(height: try r.u64())
        case typeSync:
            m = .syncRequest(height: try r.u64())
        default:
            throw .unknownType(type)
        }
        guard r.atEnd else { throw .trailingBytes }
        return m
    }
}

/// Big-endian writer for wire bodies.
struct WireWriter {
    var data = Data()
    mutating func u8(_ v: UInt8) { data.append(v) }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.bigEndian) { data.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.bigEndian) { data.append(contentsOf: $0) } }
    mutating func long(_ d: Data) {
        u32(UInt32(clamping: d.count))
        data.append(d)
    }
    mutating func raw(_ d: Data) { data.append(d) }
}

/// Bounds-checked reader for wire bodies; every failure is a typed ``WireError``.
struct WireReader {
    private let bytes: [UInt8]
    private var offset = 0

    init(_ data: Data) { bytes = [UInt8](data) }

    var atEnd: Bool { offset == bytes.count }
    var remaining: Int { bytes.count - offset }

    mutating func u8() throws(WireError) -> UInt8 {
        guard offset < bytes.count else { throw .truncated }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func u32() throws(WireError) -> UInt32 {
        guard bytes.count - offset >= 4 else { throw .truncated }
        var v: UInt32 = 0
        for i in 0..<4 { v = v << 8 | UInt32(bytes[offset + i]) }
        offset += 4
        return v
    }

    mutating func u64() throws(WireError) -> UInt64 {
        guard bytes.count - offset >= 8 else { throw .truncated }
        var v: UInt64 = 0
        for i in 0..<8 { v = v << 8 | UInt64(bytes[offset + i]) }
        offset += 8
        return v
    }

    mutating func long(max: Int) throws(WireError) -> Data {
        let n = Int(try u32())
        guard n <= max else { throw .fieldTooLarge("\(n) bytes") }
        guard bytes.count - offset >= n else { throw .truncated }
        defer { offset += n }
        return Data(bytes[offset..<offset + n])
    }

    mutating func rest() -> Data {
        defer { offset = bytes.count }
        return Data(bytes[offset...])
    }
}
