import Foundation

/// Block height. Heights start at 1 (height 0 is genesis and never voted on).
public typealias Height = UInt64

/// Round number inside a height. Rounds start at 0.
public typealias Round = UInt32

/// The single error type of the module. Pure code uses typed throws with it.
public enum ConsensusError: Error, Hashable, Sendable {
    /// The validator set is empty, has a zero-power or duplicate validator, or its total
    /// power exceeds ``ValidatorSet/maxTotalVotingPower``.
    case invalidValidatorSet(String)
    /// The chain ID is empty or longer than 255 UTF-8 bytes.
    case invalidChainID
    /// A block hash is not exactly 32 bytes.
    case invalidBlockHash
    /// A wire message could not be decoded (truncated, trailing bytes, unknown tag, bad lengths).
    case malformedMessage(String)
    /// The signer could not produce a signature (key unavailable, HSM error …).
    case signingFailed(String)
    /// The sign guard refused to sign because it would conflict with, or regress behind,
    /// the last persisted signature.
    case signRefused(String)
    /// A commit certificate or evidence did not verify.
    case invalidCertificate(String)
}

/// The kind of vote. Raw values are part of the canonical sign-bytes encoding.
public enum VoteType: UInt8, Sendable, Hashable, CustomStringConvertible {
    case prevote = 1
    case precommit = 2

    public var description: String { self == .prevote ? "prevote" : "precommit" }
}

/// The step of a round. The ordering (`propose < prevote < precommit`) is the order in
/// which a validator signs within one round, which the sign guard relies on.
public enum Step: UInt8, Sendable, Hashable, Comparable, CustomStringConvertible {
    case propose = 1
    case prevote = 2
    case precommit = 3

    public static func < (a: Step, b: Step) -> Bool { a.rawValue < b.rawValue }
    public var description: String {
        switch self {
        case .propose: "propose"
        case .prevote: "prevote"
        case .precommit: "precommit"
        }
    }
}

/// A 32-byte block identifier. The engine treats it as opaque: the application defines how
/// it is derived from the block bytes and checks that binding when it validates a proposal.
public struct BlockHash: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// Exactly 32 bytes.
    public let bytes: Data

    /// Fails unless `bytes` is exactly 32 bytes long.
    public init(_ bytes: Data) throws(ConsensusError) {
        guard bytes.count == 32 else { throw .invalidBlockHash }
        self.bytes = Data(bytes)  // re-base so indices start at 0
    }

    public static func < (a: BlockHash, b: BlockHash) -> Bool {
        a.bytes.lexicographicallyPrecedes(b.bytes)
    }

    public var description: String { bytes.prefix(4).map { String(format: "%02x", $0) }.joined() }
}

/// A value being agreed on: the block identifier plus the block bytes it names.
public struct ProposalValue: Hashable, Sendable {
    /// What votes are cast over.
    public let hash: BlockHash
    /// The opaque block the application proposed. Not covered by the proposal signature;
    /// the application's validity check must confirm it hashes to ``hash``.
    public let block: Data

    public init(hash: BlockHash, block: Data) {
        self.hash = hash
        self.block = block
    }
}

/// Identifies a scheduled timeout; the shell hands it back in ``ConsensusEvent/timeout(_:)``.
public struct TimeoutInfo: Hashable, Sendable, CustomStringConvertible {
    public let height: Height
    public let round: Round
    public let step: Step

    public init(height: Height, round: Round, step: Step) {
        self.height = height
        self.round = round
        self.step = step
    }

    public var description: String { "timeout(\(height)/\(round)/\(step))" }
}

/// Timeouts grow linearly with the round so that after the network stabilises a round
/// eventually lasts longer than the message delay (the paper's liveness argument).
public struct TimeoutConfig: Hashable, Sendable {
    public var proposeBaseMillis: UInt64
    public var proposeDeltaMillis: UInt64
    public var prevoteBaseMillis: UInt64
    public var prevoteDeltaMillis: UInt64
    public var precommitBaseMillis: UInt64
    public var precommitDeltaMillis: UInt64

    public init(
        proposeBaseMillis: UInt64 = 3000, proposeDeltaMillis: UInt64 = 500,
        prevoteBaseMillis: UInt64 = 1000, prevoteDeltaMillis: UInt64 = 500,
        precommitBaseMillis: UInt64 = 1000, precommitDeltaMillis: UInt64 = 500
    ) {
        self.proposeBaseMillis = proposeBaseMillis
        self.proposeDeltaMillis = proposeDeltaMillis
        self.prevoteBaseMillis = prevoteBaseMillis
        self.prevoteDeltaMillis = prevoteDeltaMillis
        self.precommitBaseMillis = precommitBaseMillis
        self.precommitDeltaMillis = precommitDeltaMillis
    }

    /// `base + round × delta` for the step, saturating instead of overflowing.
    public func durationMillis(step: Step, round: Round) -> UInt64 {
        let (base, delta): (UInt64, UInt64) =
            switch step {
            case .propose: (proposeBaseMillis, proposeDeltaMillis)
            case .prevote: (prevoteBaseMillis, prevoteDeltaMillis)
            case .precommit: (precommitBaseMillis, precommitDeltaMillis)
            }
        let (grow, o1) = delta.multipliedReportingOverflow(by: UInt64(round))
        let (sum, o2) = base.addingReportingOverflow(grow)
        return (o1 || o2) ? UInt64.max : sum
    }
}
