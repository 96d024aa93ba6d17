import Foundation
import IshtarBitcoin
import IshtarCrypto

/// Where an epoch checkpoint stands (PROTOCOL §5).
public enum CheckpointStatus: UInt8, Sendable, Hashable, Comparable, CaseIterable {
    /// The epoch ended; validators' signatures are being collected.
    case accumulating = 0
    /// Signers hold more than 2/3 of the epoch's power; the quorum certificate is frozen.
    case sealed = 1
    /// Both Bitcoin transactions are in blocks on the light client's main chain.
    case submitted = 2
    /// The younger of the two blocks is at least k deep.
    case confirmed = 3
    /// The younger of the two blocks is at least w deep. Terminal.
    case finalized = 4

    /// Upper-case name, as in queries and events.
    public var name: String {
        switch self {
        case .accumulating: return "ACCUMULATING"
        case .sealed: return "SEALED"
        case .submitted: return "SUBMITTED"
        case .confirmed: return "CONFIRMED"
        case .finalized: return "FINALIZED"
        }
    }

    /// Order of the life cycle.
    public static func < (a: CheckpointStatus, b: CheckpointStatus) -> Bool { a.rawValue < b.rawValue }
}

/// Parameters (`modules.checkpoints` in genesis):
///
/// ```json
/// { "epoch_length": 10, "btc_confirmation_depth": 10, "btc_finalization_timeout": 100,
///   "checkpoint_tag": "49534854" }
/// ```
/// Every field is optional (defaults: PROTOCOL §6, tag `"ISHT"`). `epoch_length` ≥ 1;
/// 1 ≤ k < w. Unknown fields are rejected.
public struct CheckpointsParams: Hashable, Sendable, BinaryCodable {
    /// The default 4-byte OP_RETURN tag, ASCII `"ISHT"`.
    public static let defaultTag = Data("ISHT".utf8)

    /// N: blocks per epoch.
    public var epochLength: UInt64
    /// k: depth at which a submission is CONFIRMED.
    public var confirmationDepth: UInt64
    /// w: depth at which a submission is FINALIZED.
    public var finalizationTimeout: UInt64
    /// The 4-byte tag of both OP_RETURN parts.
    public var tag: Data
    /// The chain's first height (genesis `initial_height`); epoch 1 starts there.
    public var initialHeight: UInt64

    /// From its parts (validated by genesis).
    public init(epochLength: UInt64 = 10, confirmationDepth: UInt64 = 10, finalizationTimeout: UInt64 = 100,
                tag: Data = CheckpointsParams.defaultTag, initialHeight: UInt64 = 1) {
        self.epochLength = epochLength
        self.confirmationDepth = confirmationDepth
        self.finalizationTimeout = finalizationTimeout
        self.tag = tag
        self.initialHeight = initialHeight
    }

    /// Canonical JSON for `Genesis.moduleParams["checkpoints"]` (the initial height comes from
    /// the genesis itself, not from here).
    public var jsonData: Data {
        canonicalJSON(["epoch_length": epochLength, "btc_confirmation_depth": confirmationDepth,
                       "btc_finalization_timeout": finalizationTimeout, "checkpoint_tag": tag.hexString])
    }

    /// `u64 N ‖ u64 k ‖ u64 w ‖ tag(4) ‖ u64 initialHeight`.
    public func encode(to w: inout BinaryWriter) {
        w.u64(epochLength)
        w.u64(confirmationDepth)
        w.u64(finalizationTimeout)
        w.fixed(tag)
        w.u64(initialHeight)
    }

    /// Inverse of ``encode(to:)``.
    public init(from r: inout BinaryReader) throws(CodecError) {
        epochLength = try r.u64("epoch length")
        confirmationDepth = try r.u64("confirmation depth")
        finalizationTimeout = try r.u64("finalization timeout")
        tag = try r.fixed(4, "tag")
        initialHeight = try r.u64("initial height")
    }

    /// The epoch holding `height` (0 for heights before the first block).
    ///
    /// Mapping: epoch e ≥ 1 covers heights `initialHeight + (e−1)·N … initialHeight + e·N − 1`,
    /// so with the default initial height 1 and N = 10, epoch 1 is heights 1…10.
    public func epoch(ofHeight height: UInt64) -> UInt64 {
        guard height >= initialHeight, epochLength > 0 else { return 0 }
        return (height - initialHeight) / epochLength + 1
    }

    /// Whether `height` is the last block of its epoch.
    public func isLastBlockOfEpoch(_ height: UInt64) -> Bool {
        guard height >= initialHeight, epochLength > 0 else { return false }
        return (height - initialHeight + 1) % epochLength == 0
    }

    /// The first and last heights of `epoch` (epoch 0 is treated as 1), saturating at `UInt64.max`.
    public func heights(ofEpoch epoch: UInt64) -> ClosedRange<UInt64> {
        let length = max(epochLength, 1)
        let (offset, o1) = (max(epoch, 1) - 1).multipliedReportingOverflow(by: length)
        let (start, o2) = initialHeight.addingReportingOverflow(offset)
        guard !o1, !o2 else { return UInt64.max...UInt64.max }
        let (end, o3) = start.addingReportingOverflow(length - 1)
        return start...(o3 ? UInt64.max : end)
    }
}

/// The JSON shape of the parameters; every field optional.
struct CheckpointsParamsJSON: Decodable {
    var epochLength: UInt64?
    var btcConfirmationDepth: UInt64?
    var btcFinalizationTimeout: UInt64?
    var checkpointTag: String?
}

/// A quorum certificate: the signer bitmap over the epoch's validators in address order
/// (bit i = validator i, LSB first within each byte; 13 bytes, the Bitcoin layout, or
/// ⌈n/8⌉ bytes if the snapshot has more than 104 validators) and the BIP-340 signatures of
/// the set bits, in ascending validator index.
///
/// Canonical encoding, which is also what SHA256(QC) in part 2 hashes:
/// `bitmap ‖ sig(64) × (number of set bits)` — no length prefixes: the bitmap length follows
/// from the snapshot's size and the signature count from the bitmap.
public struct QuorumCertificate: Hashable, Sendable {
    /// Signer bitmap.
    public var bitmap: Data
    /// Signatures of the set bits, ascending by validator index.
    public var signatures: [Data]

    /// From its parts.
    public init(bitmap: Data, signatures: [Data]) {
        self.bitmap = bitmap
        self.signatures = signatures
    }

    /// The canonical bytes (see the type's documentation).
    public var canonicalBytes: Data { signatures.reduce(into: bitmap) { $0.append($1) } }
    /// SHA256 of ``canonicalBytes``: part 2's QC hash.
    public var hash: Data { BitcoinHash.sha256(canonicalBytes) }

    /// Bitmap length for a snapshot of `validatorCount` validators: 13 bytes (the Bitcoin
    /// layout) unless more are needed.
    public static func bitmapLength(validatorCount: Int) -> Int {
        max(BitcoinCheckpoint.bitmapLength, (validatorCount + 7) / 8)
    }
}

/// One status change of a checkpoint.
public struct CheckpointTransition: Hashable, Sendable {
    /// The new status.
    public var status: CheckpointStatus
    /// The Ishtar height of the block whose execution made the change.
    public var height: UInt64
    /// The light client's tip height then (0 if none).
    public var btcTipHeight: UInt64
}

/// One validator's signature on its epoch's checkpoint.
public struct CheckpointSignature: Hashable, Sendable {
    /// The validator's index in the snapshot (address order).
    public var index: UInt32
    /// The 64-byte BIP-340 signature.
    public var signature: Data
}

/// The checkpoint of one epoch, as stored at `ckpt/BE8(epoch)`.
public struct EpochCheckpoint: Hashable, Sendable, BinaryCodable {
    /// The epoch (≥ 1).
    public var epoch: UInt64
    /// The hash of the epoch's last block.
    public var lastBlockHash: Data
    /// The height of the epoch's last block.
    public var lastBlockHeight: UInt64
    /// The validator set in force when the epoch ended: who may sign, with what power.
    public var validators: ChainValidatorSet
    /// Signatures so far, ascending by validator index.
    public var signatures: [CheckpointSignature]
    /// Sum of the signers' power.
    public var signedPower: UInt64
    /// Current status.
    public var status: CheckpointStatus
    /// Every status taken, oldest first (starts with ACCUMULATING).
    public var history: [CheckpointTransition]

    /// The quorum certificate of the signatures so far (frozen once sealed).
    public var quorumCertificate: QuorumCertificate {
        var bytes = [UInt8](repeating: 0, count: QuorumCertificate.bitmapLength(validatorCount: validators.validators.count))
        for s in signatures { bytes[Int(s.index) / 8] |= 1 << UInt8(s.index % 8) }
        return QuorumCertificate(bitmap: Data(bytes), signatures: signatures.map(\.signature))
    }

    /// `u64 epoch ‖ hash(32) ‖ u64 lastHeight ‖ validatorSet ‖ u32 n ‖ n × (u32 index ‖ sig(64)) ‖
    /// u64 signedPower ‖ u8 status ‖ u32 m ‖ m × (u8 status ‖ u64 height ‖ u64 btcTip)`.
    public func encode(to w: inout BinaryWriter) {
        w.u64(epoch)
        w.fixed(lastBlockHash)
        w.u64(lastBlockHeight)
        validators.encode(to: &w)
        w.count(signatures.count)
        for s in signatures {
            w.u32(s.index)
            w.fixed(s.signature)
        }
        w.u64(signedPower)
        w.u8(status.rawValue)
        w.count(history.count)
        for t in history {
            w.u8(t.status.rawValue)
            w.u64(t.height)
            w.u64(t.btcTipHeight)
        }
    }

    /// Inverse of ``encode(to:)``.
    public init(from r: inout BinaryReader) throws(CodecError) {
        epoch = try r.u64("epoch")
        lastBlockHash = try r.fixed(32, "last block hash")
        lastBlockHeight = try r.u64("last block height")
        validators = try ChainValidatorSet(from: &r)
        let n = try r.count("signatures", minElementSize: 68)
        var sigs: [CheckpointSignature] = []
        for _ in 0..<n {
            let index = try r.u32("signer index")
            guard Int(index) < validators.validators.count, sigs.last.map({ $0.index < index }) ?? true else {
                throw .nonCanonical(field: "signer index", reason: "out of range or not ascending")
            }
            sigs.append(CheckpointSignature(index: index, signature: try r.fixed(64, "signature")))
        }
        signatures = sigs
        signedPower = try r.u64("signed power")
        status = try Self.status(try r.u8("status"))
        let m = try r.count("history", minElementSize: 17)
        var history: [CheckpointTransition] = []
        for _ in 0..<m {
            let s = try Self.status(try r.u8("history status"))
            history.append(CheckpointTransition(status: s, height: try r.u64("history height"),
                                                btcTipHeight: try r.u64("history btc tip")))
        }
        self.history = history
    }

    static func status(_ raw: UInt8) throws(CodecError) -> CheckpointStatus {
        guard let s = CheckpointStatus(rawValue: raw) else { throw .unknownVersion(field: "status", value: raw) }
        return s
    }

    /// From its parts.
    init(epoch: UInt64, lastBlockHash: Data, lastBlockHeight: UInt64, validators: ChainValidatorSet,
         status: CheckpointStatus, history: [CheckpointTransition]) {
        self.epoch = epoch
        self.lastBlockHash = lastBlockHash
        self.lastBlockHeight = lastBlockHeight
        self.validators = validators
        self.signatures = []
        self.signedPower = 0
        self.status = status
        self.history = history
    }
}

/// One accepted `InsertBTCSpvProof`, stored at `sub/BE8(epoch)‖SHA256(txid1‖txid2‖block1‖block2)`.
public struct CheckpointSubmission: Hashable, Sendable, BinaryCodable {
    /// The account that sent the proof.
    public var reporter: Data
    /// Part 1's 20-byte submitter id.
    public var submitterID: Data
    /// Transaction ids (internal order) of part 1 and part 2.
    public var txids: [Data]
    /// Bitcoin block hashes (internal order) holding part 1 and part 2.
    public var blockHashes: [Data]
    /// Their heights on the light client.
    public var blockHeights: [UInt64]
    /// The Ishtar height at which the proof was accepted.
    public var height: UInt64

    /// `reporter(32) ‖ submitter(20) ‖ 2 × (txid(32) ‖ blockHash(32) ‖ u64 height) ‖ u64 height`.
    public func encode(to w: inout BinaryWriter) {
        w.fixed(reporter)
        w.fixed(submitterID)
        for i in 0..<2 {
            w.fixed(txids[i])
            w.fixed(blockHashes[i])
            w.u64(blockHeights[i])
        }
        w.u64(height)
    }

    /// Inverse of ``encode(to:)``.
    public init(from r: inout BinaryReader) throws(CodecError) {
        reporter = try r.fixed(32, "reporter")
        submitterID = try r.fixed(20, "submitter id")
        var t: [Data] = [], b: [Data] = [], h: [UInt64] = []
        for _ in 0..<2 {
            t.append(try r.fixed(32, "txid"))
            b.append(try r.fixed(32, "block hash"))
            h.append(try r.u64("block height"))
        }
        txids = t
        blockHashes = b
        blockHeights = h
        height = try r.u64("height")
    }

    init(reporter: Data, submitterID: Data, txids: [Data], blockHashes: [Data], blockHeights: [UInt64], height: UInt64) {
        self.reporter = reporter
        self.submitterID = submitterID
        self.txids = txids
        self.blockHashes = blockHashes
        self.blockHeights = blockHeights
        self.height = height
    }
}

/// `checkpoints/AddCheckpointSignature`: a validator's BIP-340 signature over
/// ``CheckpointsModule/checkpointSigningMessage(epoch:lastBlockHash:)``, from any account
/// (the signature authenticates the validator, so it cannot be forged by a proposer, and as
/// an ordinary gossiped transaction no single proposer can keep it out forever).
///
/// Layout: `u64 epoch ‖ validator(32) ‖ signature(64)`.
public struct AddCheckpointSignature: Hashable, Sendable, BinaryCodable {
    /// The message type.
    public static let type = "checkpoints/AddCheckpointSignature"
    /// The epoch signed.
    public var epoch: UInt64
    /// The validator's 32-byte x-only key (its address).
    public var validator: Data
    /// 64-byte BIP-340 signature.
    public var signature: Data

    /// From its parts.
    public init(epoch: UInt64, validator: Data, signature: Data) {
        self.epoch = epoch
        self.validator = validator
        self.signature = signature
    }

    /// See the type's layout.
    public func encode(to w: inout BinaryWriter) {
        w.u64(epoch)
        w.fixed(validator)
        w.fixed(signature)
    }

    /// Inverse of ``encode(to:)``.
    public init(from r: inout BinaryReader) throws(CodecError) {
        epoch = try r.u64("epoch")
        validator = try r.fixed(32, "validator")
        signature = try r.fixed(64, "signature")
    }

    /// As a transaction message.
    public var message: Message { Message(type: Self.type, payload: encoded) }
}

/// One checkpoint transaction and where it is on Bitcoin.
public struct CheckpointTransactionProof: Hashable, Sendable, BinaryCodable {
    /// Largest transaction accepted, bytes.
    public static let maxTransactionBytes = 100_000
    /// The transaction (must carry the part's OP_RETURN output).
    public var transaction: IshtarBitcoin.Transaction
    /// The block holding it and the Merkle path.
    public var inclusion: BTCInclusionProofPayload

    /// From its parts.
    public init(transaction: IshtarBitcoin.Transaction, inclusion: BTCInclusionProofPayload) {
        self.transaction = transaction
        self.inclusion = inclusion
    }

    /// `bytes tx (Bitcoin serialization) ‖` the inclusion proof (``BTCInclusionProofPayload``).
    public func encode(to w: inout BinaryWriter) {
        w.bytes(transaction.serialized())
        inclusion.encode(to: &w)
    }

    /// Inverse of ``encode(to:)``; the transaction must be in its canonical serialization.
    public init(from r: inout BinaryReader) throws(CodecError) {
        let raw = try r.bytes("bitcoin transaction", limit: Self.maxTransactionBytes)
        do {
            transaction = try IshtarBitcoin.Transaction(serialized: raw)
        } catch {
            throw .nonCanonical(field: "bitcoin transaction", reason: "\(error)")
        }
        guard transaction.serialized() == raw else {
            throw .nonCanonical(field: "bitcoin transaction", reason: "not the canonical serialization")
        }
        inclusion = try BTCInclusionProofPayload(from: &r)
    }
}

/// `checkpoints/InsertBTCSpvProof`: the two checkpoint transactions (PROTOCOL §5) with their
/// Merkle inclusion proofs against light-client headers, from any account.
///
/// Layout: `part1 ‖ part2`, each a ``CheckpointTransactionProof``.
public struct InsertBTCSpvProof: Hashable, Sendable, BinaryCodable {
    /// The message type.
    public static let type = "checkpoints/InsertBTCSpvProof"
    /// The transaction with the part-1 OP_RETURN.
    public var part1: CheckpointTransactionProof
    /// The transaction with the part-2 OP_RETURN (spends an output of part 1's).
    public var part2: CheckpointTransactionProof

    /// From its parts.
    public init(part1: CheckpointTransactionProof, part2: CheckpointTransactionProof) {
        self.part1 = part1
        self.part2 = part2
    }

    /// See the type's layout.
    public func encode(to w: inout BinaryWriter) {
        part1.encode(to: &w)
        part2.encode(to: &w)
    }

    /// Inverse of ``encode(to:)``.
    public init(from r: inout BinaryReader) throws(CodecError) {
        part1 = try CheckpointTransactionProof(from: &r)
        part2 = try CheckpointTransactionProof(from: &r)
    }

    /// As a transaction message.
    public var message: Message { Message(type: Self.type, payload: encoded) }
}
