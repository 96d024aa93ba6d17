import Foundation
import IshtarBitcoin

/// Rules of the checkpoints module (codespace `"checkpoints"`). Every rejection names the
/// rule it broke; a rejected message leaves no trace in state.
public enum CheckpointsError: ChainRuleError, Equatable {
    /// A message payload does not decode canonically.
    case malformedMessage(type: String, CodecError)
    /// The message type is not one of this module's.
    case unknownMessage(String)
    /// No checkpoint exists for the epoch (it has not ended yet, or never will).
    case unknownEpoch(UInt64)
    /// The key is not a validator of the epoch's validator-set snapshot.
    case notAValidator(epoch: UInt64, validator: Data)
    /// The BIP-340 signature does not verify for the validator over the checkpoint digest.
    case invalidSignature(epoch: UInt64, validator: Data)
    /// This validator's signature for the epoch is already recorded.
    case duplicateSignature(epoch: UInt64, validator: Data)
    /// The checkpoint is sealed: its quorum certificate is frozen (its hash goes to Bitcoin).
    case alreadySealed(epoch: UInt64, status: CheckpointStatus)
    /// The Bitcoin header named by a proof is not known to the light client.
    case unknownBTCHeader(part: Int, hash: String)
    /// The Bitcoin header named by a proof is not on the light client's main chain.
    case headerNotOnMainChain(part: Int, hash: String)
    /// The Merkle proof does not lead from the transaction to the header's Merkle root.
    case invalidInclusionProof(part: Int, reason: String)
    /// A checkpoint transaction must have exactly one OP_RETURN output.
    case notOneOpReturn(part: Int, count: Int)
    /// An OP_RETURN payload is not a checkpoint part (length, header byte, padding, push form).
    case malformedOpReturn(OpReturnDecodingError)
    /// The OP_RETURN tag is not this chain's checkpoint tag.
    case wrongTag(expected: Data, actual: Data)
    /// Part 2's 10-byte link is not the start of SHA256(part 1 without its header).
    case partsDoNotMatch
    /// Transaction 2 does not spend a non-OP_RETURN output of transaction 1.
    case tx2DoesNotSpendTx1
    /// Transaction 2 sits in a Bitcoin block below transaction 1's.
    case tx2BeforeTx1(height1: UInt64, height2: UInt64)
    /// The checkpoint is still collecting signatures: there is no quorum certificate to match.
    case checkpointNotSealed(epoch: UInt64)
    /// The checkpoint is already FINALIZED (terminal): further submissions are pointless.
    case checkpointFinalized(epoch: UInt64)
    /// Part 1's last block hash is not the epoch's.
    case lastBlockHashMismatch(epoch: UInt64)
    /// Part 1's signer bitmap is not the sealed quorum certificate's.
    case bitmapMismatch(epoch: UInt64)
    /// Part 2's SHA256(QC) is not the hash of the sealed quorum certificate.
    case qcHashMismatch(epoch: UInt64)
    /// This transaction pair, in these blocks, is already recorded for the epoch.
    case duplicateSubmission(epoch: UInt64)
    /// The epoch already holds ``CheckpointsModule/maxSubmissionsPerEpoch`` submissions on
    /// Bitcoin's main chain: another adds nothing but work to every end-block.
    case tooManySubmissions(epoch: UInt64, limit: Int)
    /// The checkpoints module's parameters are missing from state.
    case notConfigured

    /// `"checkpoints"`.
    public static let codespace = CheckpointsModule.moduleName

    /// Stable code per case.
    public var code: UInt32 {
        switch self {
        case .malformedMessage: return 2
        case .unknownMessage: return 3
        case .unknownEpoch: return 4
        case .notAValidator: return 5
        case .invalidSignature: return 6
        case .duplicateSignature: return 7
        case .alreadySealed: return 8
        case .unknownBTCHeader: return 9
        case .headerNotOnMainChain: return 10
        case .invalidInclusionProof: return 11
        case .notOneOpReturn: return 12
        case .malformedOpReturn: return 13
        case .wrongTag: return 14
        case .partsDoNotMatch: return 15
        case .tx2DoesNotSpendTx1: return 16
        case .tx2BeforeTx1: return 17
        case .checkpointNotSealed: return 18
        case .checkpointFinalized: return 19
        case .lastBlockHashMismatch: return 20
        case .bitmapMismatch: return 21
        case .qcHashMismatch: return 22
        case .duplicateSubmission: return 23
        case .notConfigured: return 24
        case .tooManySubmissions: return 25
        }
    }

    /// Stable rule name per case.
    public var rule: String {
        switch self {
        case .malformedMessage: return "malformed-message"
        case .unknownMessage: return "unknown-message"
        case .unknownEpoch: return "unknown-epoch"
        case .notAValidator: return "not-a-validator"
        case .invalidSignature: return "invalid-signature"
        case .duplicateSignature: return "duplicate-signature"
        case .alreadySealed: return "already-sealed"
        case .unknownBTCHeader: return "unknown-btc-header"
        case .headerNotOnMainChain: return "header-not-on-main-chain"
        case .invalidInclusionProof: return "invalid-inclusion-proof"
        case .notOneOpReturn: return "not-one-op-return"
        case .malformedOpReturn: return "malformed-op-return"
        case .wrongTag: return "wrong-tag"
        case .partsDoNotMatch: return "parts-do-not-match"
        case .tx2DoesNotSpendTx1: return "tx2-does-not-spend-tx1"
        case .tx2BeforeTx1: return "tx2-before-tx1"
        case .checkpointNotSealed: return "checkpoint-not-sealed"
        case .checkpointFinalized: return "checkpoint-finalized"
        case .lastBlockHashMismatch: return "last-block-hash-mismatch"
        case .bitmapMismatch: return "bitmap-mismatch"
        case .qcHashMismatch: return "qc-hash-mismatch"
        case .duplicateSubmission: return "duplicate-submission"
        case .tooManySubmissions: return "too-many-submissions"
        case .notConfigured: return "not-configured"
        }
    }

    /// One line naming the rule and the offending values.
    public var description: String {
        switch self {
        case let .malformedMessage(type, e): return "\(type) payload: \(e)"
        case .unknownMessage(let t): return "checkpoints does not handle \(t)"
        case .unknownEpoch(let e): return "no checkpoint for epoch \(e)"
        case let .notAValidator(e, v): return "\(v.hexString) is not a validator of epoch \(e)"
        case let .invalidSignature(e, v): return "signature of \(v.hexString) for epoch \(e) does not verify"
        case let .duplicateSignature(e, v): return "\(v.hexString) already signed epoch \(e)"
        case let .alreadySealed(e, s): return "checkpoint \(e) is \(s.name): its quorum certificate is frozen"
        case let .unknownBTCHeader(p, h): return "part \(p): Bitcoin header \(h) is not known to the light client"
        case let .headerNotOnMainChain(p, h): return "part \(p): Bitcoin header \(h) is not on the light client's main chain"
        case let .invalidInclusionProof(p, r): return "part \(p): inclusion proof does not verify: \(r)"
        case let .notOneOpReturn(p, c): return "part \(p): transaction has \(c) OP_RETURN outputs, must have exactly one"
        case .malformedOpReturn(let e): return "checkpoint OP_RETURN: \(e)"
        case let .wrongTag(expected, actual): return "OP_RETURN tag \(actual.hexString) is not \(expected.hexString)"
        case .partsDoNotMatch: return "part 2 does not link to part 1 (SHA256 prefix mismatch)"
        case .tx2DoesNotSpendTx1: return "transaction 2 does not spend an output of transaction 1"
        case let .tx2BeforeTx1(h1, h2): return "transaction 2's block (\(h2)) is below transaction 1's (\(h1))"
        case .checkpointNotSealed(let e): return "checkpoint \(e) is not sealed yet"
        case .checkpointFinalized(let e): return "checkpoint \(e) is already finalized"
        case .lastBlockHashMismatch(let e): return "part 1's last block hash is not epoch \(e)'s"
        case .bitmapMismatch(let e): return "part 1's bitmap is not the quorum certificate's of epoch \(e)"
        case .qcHashMismatch(let e): return "part 2's QC hash is not the hash of epoch \(e)'s quorum certificate"
        case .duplicateSubmission(let e): return "this transaction pair in these blocks is already recorded for epoch \(e)"
        case let .tooManySubmissions(e, limit): return "epoch \(e) already has \(limit) submissions on Bitcoin's main chain (the most kept)"
        case .notConfigured: return "checkpoints parameters missing"
        }
    }
}
