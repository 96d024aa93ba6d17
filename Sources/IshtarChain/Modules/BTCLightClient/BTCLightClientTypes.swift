import Foundation
import IshtarBitcoin
import IshtarCrypto

/// A Bitcoin block header (``IshtarBitcoin/BlockHeader``); named apart from the chain's own
/// `BlockHeader`, which it would otherwise shadow inside this module.
public typealias BTCBlockHeader = IshtarBitcoin.BlockHeader

/// Rules of the Bitcoin light client (codespace `"btclightclient"`). Every rejection of an
/// `InsertHeaders` message names the header (its index in the message) that broke the rule.
public enum BTCLightClientError: ChainRuleError, Equatable {
    /// A message payload does not decode.
    case malformedMessage(type: String, CodecError)
    /// The message type is not one of this module's.
    case unknownMessage(String)
    /// An `InsertHeaders` message must carry at least one header.
    case noHeaders
    /// The message carries more headers than the `max_headers_per_message` parameter.
    case tooManyHeaders(count: Int, limit: Int)
    /// The first header's previous-block hash names no header the light client knows.
    case unknownParent(previousHash: String)
    /// A header does not build on the header before it in the message.
    case brokenLinkage(index: Int, expectedPrevious: String, found: String)
    /// The header is already known (the message must carry only new headers).
    case duplicateHeader(index: Int, hash: String)
    /// The header's bits are not the difficulty the network's rules require on its branch.
    case wrongDifficulty(index: Int, height: UInt64, expected: UInt32, found: UInt32)
    /// The header's compact target is negative, overflowing, zero or easier than the network's limit.
    case invalidTarget(index: Int, bits: UInt32)
    /// The header's hash is above the target its bits encode (proof of work not met).
    case insufficientProofOfWork(index: Int, hash: String)
    /// The header's time is not after the median time of the 11 headers before it on its branch.
    case timestampTooOld(index: Int, height: UInt64, time: UInt32, medianTimePast: UInt32)
    /// The difficulty rules need a header below the light client's base (the genesis base is unusable).
    case missingAncestor(height: UInt64)
    /// The header's height would not fit the light client's height range.
    case heightOverflow(index: Int)
    /// The branch's cumulative work would exceed 2^256 − 1.
    case workOverflow(index: Int)
    /// The header's time is more than two hours past the block's time (Bitcoin Core's
    /// `time-too-new`, with the chain's block time as the clock).
    case timestampTooNew(index: Int, height: UInt64, time: UInt32, limit: UInt64)
    /// The header's version is below what its height requires once BIP-34, BIP-66 and BIP-65
    /// are active (Bitcoin Core's `bad-version`).
    case badVersion(index: Int, height: UInt64, version: Int32, minimum: Int32)

    /// `"btclightclient"`.
    public static let codespace = BTCLightClientModule.moduleName

    /// Stable code per case.
    public var code: UInt32 {
        switch self {
        case .malformedMessage: return 2
        case .unknownMessage: return 3
        case .noHeaders: return 4
        case .tooManyHeaders: return 5
        case .unknownParent: return 6
        case .brokenLinkage: return 7
        case .duplicateHeader: return 8
        case .wrongDifficulty: return 9
        case .invalidTarget: return 10
        case .insufficientProofOfWork: return 11
        case .timestampTooOld: return 12
        case .missingAncestor: return 13
        case .heightOverflow: return 14
        case .workOverflow: return 15
        case .badVersion: return 16
        case .timestampTooNew: return 17
        }
    }

    /// Stable rule name per case.
    public var rule: String {
        switch self {
        case .malformedMessage: return "malformed-message"
        case .unknownMessage: return "unknown-message"
        case .noHeaders: return "no-headers"
        case .tooManyHeaders: return "too-many-headers"
        case .unknownParent: return "unknown-parent"
        case .brokenLinkage: return "broken-linkage"
        case .duplicateHeader: return "duplicate-header"
        case .wrongDifficulty: return "wrong-difficulty"
        case .invalidTarget: return "invalid-target"
        case .insufficientProofOfWork: return "insufficient-proof-of-work"
        case .timestampTooOld: return "timestamp-too-old"
        case .missingAncestor: return "missing-ancestor"
        case .heightOverflow: return "height-overflow"
        case .workOverflow: return "work-overflow"
        case .badVersion: return "bad-version"
        case .timestampTooNew: return "timestamp-too-new"
        }
    }

    /// One line naming the rule and the offending values.
    public var description: String {
        switch self {
        case let .malformedMessage(type, e): return "\(type) payload: \(e)"
        case .unknownMessage(let t): return "btclightclient does not handle \(t)"
        case .noHeaders: return "InsertHeaders carries no headers"
        case let .tooManyHeaders(count, limit): return "InsertHeaders carries \(count) headers, over the limit \(limit)"
        case .unknownParent(let h): return "first header's parent \(h) is not a known header"
        case let .brokenLinkage(i, expected, found):
            return "header \(i) has previous hash \(found), not the hash \(expected) of header \(i - 1)"
        case let .duplicateHeader(i, h): return "header \(i) (\(h)) is already known"
        case let .wrongDifficulty(i, height, expected, found):
            return "header \(i) at height \(height) has bits \(hex32(found)), the difficulty rules require \(hex32(expected))"
        case let .invalidTarget(i, bits): return "header \(i) has an invalid compact target \(hex32(bits))"
        case let .insufficientProofOfWork(i, h): return "header \(i) hash \(h) is above its target"
        case let .timestampTooOld(i, height, time, mtp):
            return "header \(i) at height \(height) has time \(time), not after the median time past \(mtp)"
        case .missingAncestor(let h): return "difficulty rules need the header at height \(h), below the light client's base"
        case .heightOverflow(let i): return "header \(i) would exceed the maximum height"
        case .workOverflow(let i): return "header \(i) would overflow the cumulative work"
        case let .timestampTooNew(i, height, time, limit):
            return "header \(i) at height \(height) has time \(time), more than 2 hours past the block's time (limit \(limit))"
        case let .badVersion(i, height, version, minimum):
            return "header \(i) at height \(height) has version \(version) (\(hex32(UInt32(bitPattern: version)))); at least \(minimum) is required there"
        }
    }
}

/// `0x`-prefixed, 8-digit hex of a compact target.
func hex32(_ v: UInt32) -> String {
    let s = String(v, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, 8 - s.count)) + s
}

/// What the light client knows about one Bitcoin header (main chain or fork).
public struct BTCHeaderInfo: Sendable, Hashable {
    /// The block hash, 32 bytes in internal byte order (as hashed; display order is reversed).
    public var hash: Data
    /// The header's height on its branch.
    public var height: UInt64
    /// The header.
    public var header: BTCBlockHeader
    /// Total work from the base header (inclusive) to this header (inclusive).
    public var cumulativeWork: UInt256

    /// Info from its parts.
    public init(hash: Data, height: UInt64, header: BTCBlockHeader, cumulativeWork: UInt256) {
        self.hash = hash
        self.height = height
        self.header = header
        self.cumulativeWork = cumulativeWork
    }

    /// The hash in Bitcoin's display order (byte-reversed hex).
    public var displayHash: String { Data(hash.reversed()).hexString }
    /// The previous block's hash, internal byte order.
    public var previousHash: Data { header.previousBlockHash.rawValue }
}

/// One stored header: `header(80) ‖ u64 height ‖ cumulativeWork(32, big-endian) ‖ u32 walkBits`.
///
/// `walkBits` memoizes the minimum-difficulty walk of networks that allow minimum-difficulty
/// blocks (Bitcoin Core's `GetNextWorkRequired` loop over `pprev`): the bits of the nearest
/// header at or below this one that sits on a retarget boundary or does not carry the
/// network's limit bits. Keeping it per header makes the walk O(1) instead of up to 2015
/// steps (which regtest, where every header carries the limit bits, would pay on every header).
struct StoredHeader: Sendable, BinaryCodable {
    var header: BTCBlockHeader
    var height: UInt64
    var cumulativeWork: UInt256
    var walkBits: UInt32

    func encode(to w: inout BinaryWriter) {
        w.fixed(header.serialized)
        w.u64(height)
        w.fixed(cumulativeWork.bigEndianBytes)
        w.u32(walkBits)
    }

    init(header: BTCBlockHeader, height: UInt64, cumulativeWork: UInt256, walkBits: UInt32) {
        self.header = header
        self.height = height
        self.cumulativeWork = cumulativeWork
        self.walkBits = walkBits
    }

    init(from r: inout BinaryReader) throws(CodecError) {
        let raw = try r.fixed(BTCBlockHeader.serializedSize, "header")
        do {
            header = try BTCBlockHeader(serialized: raw)
        } catch {
            throw .invalidLength(field: "header", expected: BTCBlockHeader.serializedSize, actual: raw.count)
        }
        height = try r.u64("height")
        cumulativeWork = UInt256(bigEndian: try r.fixed(32, "cumulative work"))
        walkBits = try r.u32("walk bits")
    }

    func info(hash: Data) -> BTCHeaderInfo {
        BTCHeaderInfo(hash: hash, height: height, header: header, cumulativeWork: cumulativeWork)
    }
}

/// `btclightclient/InsertHeaders`: Bitcoin headers to add, from any account. The first must
/// build on a known header (main chain or fork), each following one on the one before it.
public struct InsertHeaders: Hashable, Sendable, BinaryCodable {
    /// The message type.
    public static let type = "btclightclient/InsertHeaders"
    /// The headers, parent first.
    public var headers: [BTCBlockHeader]

    /// A message from its headers.
    public init(headers: [BTCBlockHeader]) { self.headers = headers }

    /// `u32 count ‖ count × 80-byte header`.
    public func encode(to w: inout BinaryWriter) {
        w.count(headers.count)
        for h in headers { w.fixed(h.serialized) }
    }

    /// Inverse of ``encode(to:)``; at most ``BTCLightClientModule/headersHardLimit`` headers.
    public init(from r: inout BinaryReader) throws(CodecError) {
        let n = try r.count("headers", minElementSize: BTCBlockHeader.serializedSize, limit: BTCLightClientModule.headersHardLimit)
        var out: [BTCBlockHeader] = []
        out.reserveCapacity(n)
        for _ in 0..<n {
            let raw = try r.fixed(BTCBlockHeader.serializedSize, "header")
            do {
                out.append(try BTCBlockHeader(serialized: raw))
            } catch {
                // Unreachable: every 80-byte string is a header.
                throw .invalidLength(field: "header", expected: BTCBlockHeader.serializedSize, actual: raw.count)
            }
        }
        headers = out
    }

    /// As a transaction message.
    public var message: Message { Message(type: Self.type, payload: encoded) }
}

/// Parameters of the light client (`modules.btclightclient` in genesis):
///
/// ```json
/// { "network": "mainnet|testnet|signet|regtest",
///   "base_header": "<160 hex: the 80-byte serialized header>",
///   "base_height": 0,
///   "max_headers_per_message": 200 }
/// ```
/// Every field is optional: the defaults are the regtest genesis header at height 0 and 200
/// headers per message; `network` is required when `base_header` is given. The base header
/// is trusted (it must only meet its own proof of work). Each header must also carry the
/// version its height requires (``Network/minimumBlockVersion(atHeight:)``).
///
/// Trust on signet: a signet block is valid only with the signet challenge's signature in its
/// coinbase, which headers do not carry, so here signet headers are judged by proof of work
/// alone (difficulty 0x1e0377ae at the limit): whoever out-mines the real signet's work with
/// unsigned headers can reorganize this light client. Use signet for testing only. A header's
/// time may be at most 2 hours past the block's time (Bitcoin Core's `time-too-new`, with
/// the chain's agreed block time as the clock).
/// On networks that retarget (all but regtest), `base_height` must be a multiple of 2016:
/// then every later retarget finds the period's first header on the light client, and
/// testnet's minimum-difficulty walk stops at the base. The median-time-past rule applies
/// from the 11th header after the base (from the first one if the base is at height 0),
/// as in ``HeaderChain``.
public struct BTCLightClientParams: Hashable, Sendable, BinaryCodable {
    /// The Bitcoin network whose difficulty rules apply.
    public var network: Network
    /// The trusted base header.
    public var baseHeader: BTCBlockHeader
    /// Its height.
    public var baseHeight: UInt64
    /// Most headers one `InsertHeaders` message may carry, 1…``BTCLightClientModule/headersHardLimit``.
    public var maxHeadersPerMessage: Int

    /// Parameters from their parts (validated by genesis).
    public init(network: Network = .regtest, baseHeader: BTCBlockHeader? = nil, baseHeight: UInt64 = 0,
                maxHeadersPerMessage: Int = 200) {
        self.network = network
        self.baseHeader = baseHeader ?? network.genesisHeader
        self.baseHeight = baseHeight
        self.maxHeadersPerMessage = maxHeadersPerMessage
    }

    /// Canonical JSON for `modules.btclightclient` in a genesis.
    public var jsonData: Data {
        canonicalJSON(["network": network.rawValue, "base_header": baseHeader.serialized.hexString,
                       "base_height": baseHeight, "max_headers_per_message": maxHeadersPerMessage])
    }

    /// `str network ‖ header(80) ‖ u64 baseHeight ‖ u32 maxHeadersPerMessage`.
    public func encode(to w: inout BinaryWriter) {
        w.string(network.rawValue)
        w.fixed(baseHeader.serialized)
        w.u64(baseHeight)
        w.u32(UInt32(clamping: maxHeadersPerMessage))
    }

    /// Inverse of ``encode(to:)``.
    public init(from r: inout BinaryReader) throws(CodecError) {
        let name = try r.string("network", limit: 16)
        guard let network = Network(rawValue: name) else {
            throw .nonCanonical(field: "network", reason: "unknown network \(name)")
        }
        self.network = network
        let raw = try r.fixed(BTCBlockHeader.serializedSize, "base header")
        do {
            baseHeader = try BTCBlockHeader(serialized: raw)
        } catch {
            throw .invalidLength(field: "base header", expected: BTCBlockHeader.serializedSize, actual: raw.count)
        }
        baseHeight = try r.u64("base height")
        maxHeadersPerMessage = Int(try r.u32("max headers per message"))
    }
}

/// The JSON shape of the parameters; every field optional (see ``BTCLightClientParams``).
struct BTCLightClientParamsJSON: Decodable {
    var network: String?
    var baseHeader: String?
    var baseHeight: UInt64?
    var maxHeadersPerMessage: Int?
}
