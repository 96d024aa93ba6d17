import Crypto
import Foundation

/// An 80-byte Bitcoin block header.
public struct BlockHeader: Hashable, Sendable {
    /// The serialized size.
    public static let serializedSize = 80

    /// nVersion (BIP-9 version bits).
    public var version: Int32
    /// The hash of the previous block's header.
    public var previousBlockHash: BlockHash
    /// The Merkle root of the block's txids.
    public var merkleRoot: Hash256
    /// Block time, Unix seconds.
    public var time: UInt32
    /// The compact target ("nBits").
    public var bits: UInt32
    /// The nonce varied by miners.
    public var nonce: UInt32

    /// A header from its fields.
    public init(version: Int32, previousBlockHash: BlockHash, merkleRoot: Hash256, time: UInt32, bits: UInt32, nonce: UInt32) {
        self.version = version
        self.previousBlockHash = previousBlockHash
        self.merkleRoot = merkleRoot
        self.time = time
        self.bits = bits
        self.nonce = nonce
    }

    /// Parses exactly 80 bytes.
    public init(serialized bytes: some DataProtocol) throws(BitcoinDecodingError) {
        var reader = ByteReader([UInt8](bytes))
        try self.init(reader: &reader)
        try reader.requireEnd()
    }

    init(reader: inout ByteReader) throws(BitcoinDecodingError) {
        version = try reader.readLittleEndian(Int32.self, field: "header version")
        previousBlockHash = Hash256(unchecked: try reader.readData(32, field: "header previous block hash"))
        merkleRoot = Hash256(unchecked: try reader.readData(32, field: "header merkle root"))
        time = try reader.readLittleEndian(UInt32.self, field: "header time")
        bits = try reader.readLittleEndian(UInt32.self, field: "header bits")
        nonce = try reader.readLittleEndian(UInt32.self, field: "header nonce")
    }

    /// The 80-byte serialization.
    public var serialized: Data {
        var out = Data(capacity: 80)
        out.appendLittleEndian(version)
        out.append(previousBlockHash.rawValue)
        out.append(merkleRoot.rawValue)
        out.appendLittleEndian(time)
        out.appendLittleEndian(bits)
        out.appendLittleEndian(nonce)
        return out
    }

    /// The block hash: double-SHA256 of the 80 bytes.
    ///
    /// Header sync hashes every header it sees, so this serializes into a fixed stack buffer
    /// and hashes it in place instead of building intermediate `Data` values.
    public var hash: BlockHash {
        var buffer: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        return withUnsafeMutableBytes(of: &buffer) { raw in
            raw.storeBytes(of: UInt32(bitPattern: version).littleEndian, toByteOffset: 0, as: UInt32.self)
            previousBlockHash.rawValue.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: raw[4..<36]).copyMemory(from: $0) }
            merkleRoot.rawValue.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: raw[36..<68]).copyMemory(from: $0) }
            raw.storeBytes(of: time.littleEndian, toByteOffset: 68, as: UInt32.self)
            raw.storeBytes(of: bits.littleEndian, toByteOffset: 72, as: UInt32.self)
            raw.storeBytes(of: nonce.littleEndian, toByteOffset: 76, as: UInt32.self)
            var inner = SHA256()
            inner.update(bufferPointer: UnsafeRawBufferPointer(raw))
            let second = inner.finalize().withUnsafeBytes { digest in
                var outer = SHA256()
                outer.update(bufferPointer: digest)
                return outer.finalize()
            }
            return Hash256(unchecked: second.withUnsafeBytes { Data($0) })
        }
    }

    /// The target encoded by `bits`, with Bitcoin Core's checks (`DeriveTarget`): not negative,
    /// not overflowing, not zero, and not easier than `powLimit`.
    public func target(powLimit: UInt256) throws(PowError) -> UInt256 {
        try ProofOfWork.target(bits: bits, powLimit: powLimit)
    }

    /// Checks the proof of work: a valid target no easier than `powLimit`, and hash ≤ target.
    public func checkProofOfWork(powLimit: UInt256) throws(PowError) {
        let target = try target(powLimit: powLimit)
        let hash = self.hash
        guard hash.asUInt256 <= target else { throw .insufficientProofOfWork(hash: hash.displayHex) }
    }

    /// The expected number of hashes to find this header: 2^256 / (target + 1), zero for an
    /// invalid target (as Bitcoin Core's `GetBlockProof`).
    public var work: UInt256 { ProofOfWork.work(bits: bits) }
}

/// A network's difficulty rules (Bitcoin Core's consensus parameters).
public struct PowParameters: Hashable, Sendable {
    /// The easiest allowed target.
    public let powLimit: UInt256
    /// The desired time between blocks, seconds (600).
    public let targetSpacing: Int64
    /// The retarget period, seconds (two weeks).
    public let targetTimespan: Int64
    /// Testnet's rule: a block more than 2 × spacing after its parent may use powLimit.
    public let allowMinDifficultyBlocks: Bool
    /// Regtest's rule: the target never changes.
    public let noRetargeting: Bool

    /// Blocks per retarget period (2016).
    public var adjustmentInterval: Int { targetSpacing > 0 ? max(1, Int(targetTimespan / targetSpacing)) : 1 }

    /// `powLimit` in compact form.
    public var powLimitBits: UInt32 { powLimit.compact }

    /// Rules from their parts.
    public init(powLimit: UInt256, targetSpacing: Int64 = 600, targetTimespan: Int64 = 14 * 24 * 60 * 60,
                allowMinDifficultyBlocks: Bool, noRetargeting: Bool) {
        self.powLimit = powLimit
        self.targetSpacing = targetSpacing
        self.targetTimespan = targetTimespan
        self.allowMinDifficultyBlocks = allowMinDifficultyBlocks
        self.noRetargeting = noRetargeting
    }

    /// Mainnet: powLimit 0x00000000ffff…, retarget every 2016 blocks.
    public static let mainnet = PowParameters(
        powLimit: ~UInt256.zero >> 32, allowMinDifficultyBlocks: false, noRetargeting: false)
    /// testnet3: as mainnet plus the 20-minute minimum-difficulty rule.
    public static let testnet = PowParameters(
        powLimit: ~UInt256.zero >> 32, allowMinDifficultyBlocks: true, noRetargeting: false)
    /// Default signet: powLimit 0x00000377ae…, retargets like mainnet.
    public static let signet = PowParameters(
        powLimit: UInt256(0x0377ae) << (256 - 40), allowMinDifficultyBlocks: false, noRetargeting: false)
    /// Regtest: powLimit 0x7fffff…, never retargets.
    public static let regtest = PowParameters(
        powLimit: ~UInt256.zero >> 1, allowMinDifficultyBlocks: true, noRetargeting: true)
}

/// Proof-of-work rules.
public enum ProofOfWork {
    /// The target of `bits` with Bitcoin Core's checks.
    public static func target(bits: UInt32, powLimit: UInt256) throws(PowError) -> UInt256 {
        let (target, negative, overflow) = UInt256.decodeCompact(bits)
        guard !negative else { throw .negativeTarget(bits: bits) }
        guard !overflow else { throw .targetOverflow(bits: bits) }
        guard !target.isZero else { throw .zeroTarget(bits: bits) }
        guard target <= powLimit else { throw .targetAbovePowLimit(bits: bits) }
        return target
    }

    /// 2^256 / (target + 1), computed as ~target / (target + 1) + 1 to stay within 256 bits;
    /// zero for a negative, overflowing or zero target.
    public static func work(bits: UInt32) -> UInt256 {
        let (target, negative, overflow) = UInt256.decodeCompact(bits)
        guard !negative, !overflow, !target.isZero else { return .zero }
        guard let (quotient, _) = (~target).quotientAndRemainder(dividingBy: target &+ UInt256(1)) else {
            // target = 2^256 − 1: target + 1 wraps to zero; that target's work is exactly 1.
            return UInt256(1)
        }
        return quotient &+ UInt256(1)
    }

    /// The retarget at the end of a period (Bitcoin Core's `CalculateNextWorkRequired`):
    /// scale the last target by the period's actual timespan, clamped to a factor of 4, capped
    /// at powLimit.
    public static func retarget(lastBits: UInt32, lastTime: UInt32, firstTime: UInt32, parameters: PowParameters) -> UInt32 {
        if parameters.noRetargeting { return lastBits }
        var actual = Int64(lastTime) - Int64(firstTime)
        actual = min(max(actual, parameters.targetTimespan / 4), parameters.targetTimespan * 4)
        let old = UInt256.decodeCompact(lastBits).value
        // Wraps like arith_uint256; cannot for real networks' powLimits (≤ 2^224 · 2^23).
        var new = old.multipliedWrapping(by: UInt64(actual))
        new = new.quotientAndRemainder(dividingBy: UInt256(UInt64(parameters.targetTimespan)))?.quotient ?? new
        if new > parameters.powLimit { new = parameters.powLimit }
        return new.compact
    }

    /// The bits the block after `last` (at height `lastHeight`) must carry (Bitcoin Core's
    /// `GetNextWorkRequired`).
    ///
    /// - Parameters:
    ///   - newBlockTime: the new block's timestamp (for testnet's minimum-difficulty rule).
    ///   - ancestor: the header at a given height on the same chain; needed at a retarget
    ///     (the period's first block) and for testnet's walk back over min-difficulty blocks.
    public static func nextWorkRequired(
        lastHeight: Int, last: BlockHeader, newBlockTime: UInt32, parameters: PowParameters,
        ancestor: (Int) -> BlockHeader?
    ) throws(PowError) -> UInt32 {
        let interval = parameters.adjustmentInterval
        let limitBits = parameters.powLimitBits
        if (lastHeight + 1) % interval != 0 {
            guard parameters.allowMinDifficultyBlocks else { return last.bits }
            if Int64(newBlockTime) > Int64(last.time) + parameters.targetSpacing * 2 { return limitBits }
            var height = lastHeight
            var header = last
            while height > 0, height % interval != 0, header.bits == limitBits {
                height -= 1
                guard let previous = ancestor(height) else { throw .missingAncestor(height: height) }
                header = previous
            }
            return header.bits
        }
        if parameters.noRetargeting { return last.bits }
        let firstHeight = lastHeight - (interval - 1)
        guard firstHeight >= 0, let first = ancestor(firstHeight) else { throw .missingAncestor(height: firstHeight) }
        return retarget(lastBits: last.bits, lastTime: last.time, firstTime: first.time, parameters: parameters)
    }
}

/// A chain of headers validated as they are appended: linkage, difficulty bits, proof of work,
/// and timestamps above the median of the previous 11. It starts from a trusted header at a
/// known height (a checkpoint, or genesis), enough history before a retarget to be exact.
public struct HeaderChain: Sendable {
    /// The network's difficulty rules.
    public let parameters: PowParameters
    /// The height of `headers[0]`.
    public let baseHeight: Int
    /// The headers, lowest first.
    public private(set) var headers: [BlockHeader]
    /// Cumulative work from the base header (inclusive) to each header.
    public private(set) var cumulativeWork: [UInt256]

    /// A chain starting at the trusted `base` header at `height`.
    public init(base: BlockHeader, height: Int, parameters: PowParameters) {
        self.parameters = parameters
        self.baseHeight = height
        self.headers = [base]
        self.cumulativeWork = [base.work]
    }

    /// The tip's height.
    public var tipHeight: Int { baseHeight + headers.count - 1 }
    /// The tip header.
    public var tip: BlockHeader { headers[headers.count - 1] }
    /// Total work from the base to the tip.
    public var totalWork: UInt256 { cumulativeWork[cumulativeWork.count - 1] }

    /// The header at `height`, if this chain holds it.
    public func header(at height: Int) -> BlockHeader? {
        let index = height - baseHeight
        return headers.indices.contains(index) ? headers[index] : nil
    }

    /// Validates `header` as the next block and appends it.
    public mutating func append(_ header: BlockHeader) throws(PowError) {
        let height = tipHeight + 1
        guard header.previousBlockHash == tip.hash else { throw .previousHashMismatch(height: height) }
        let expected = try ProofOfWork.nextWorkRequired(
            lastHeight: tipHeight, last: tip, newBlockTime: header.time, parameters: parameters,
            ancestor: { self.header(at: $0) })
        guard header.bits == expected else { throw .unexpectedBits(height: height, expected: expected, found: header.bits) }
        try header.checkProofOfWork(powLimit: parameters.powLimit)
        let recent = headers.suffix(11).map(\.time).sorted()
        if recent.count == 11 || baseHeight == 0 {
            guard header.time > recent[recent.count / 2] else { throw .timestampTooOld(height: height) }
        }
        headers.append(header)
        cumulativeWork.append(totalWork &+ header.work)
    }
}
