import Foundation

/// Produces this node's consensus signatures.
///
/// Production plugs a BIP-340 Schnorr signer from `IshtarCrypto` (32-byte x-only public
/// key, 64-byte signature over `SHA256(signBytes)` or a tagged hash thereof). The engine
/// never looks inside signatures, so it does not depend on the scheme. The simulation uses
/// a cheap HMAC-SHA256 stand-in.
///
/// The signer must be deterministic for the engine to be deterministic; BIP-340 with
/// RFC-6979-style or fixed auxiliary randomness is, or the shell may accept that
/// re-signing identical bytes yields a different (equally valid) signature — the sign
/// guard never re-signs identical bytes anyway, it returns the persisted signature.
public protocol ConsensusSigner: Sendable {
    /// This validator's address in the ``ValidatorSet``.
    var validatorAddress: Data { get }
    /// Signs canonical sign bytes.
    func sign(_ bytes: Data) throws(ConsensusError) -> Data
}

/// Checks a signature by a validator over canonical sign bytes. Must be pure and
/// deterministic; must return `false` (never trap) on malformed keys or signatures.
public protocol SignatureVerifier: Sendable {
    func verify(signature: Data, message: Data, by validator: Validator) -> Bool
}

/// The durable "last signed" record — the double-sign guard. The shell must make the
/// record from ``ConsensusAction/persistSignState(_:)`` durable (fsync / synced RocksDB
/// write) before it executes any later action of the same batch, because the next action
/// is the broadcast of the message this record describes.
///
/// It also carries the lock (`lockedValue`/`lockedRound`): a validator that forgot its lock
/// after a crash could prevote against it and break agreement, so the lock travels with
/// every signature (the lock only changes when a precommit is signed, so it is always
/// persisted in time).
///
/// And it carries every message this validator signed in the same height and round
/// (at most proposal, prevote, precommit): after a restart the engine re-gossips them.
/// Without that, peers that lost e.g. our prevote before the crash could wait forever for
/// a prevote quorum that only our (forgotten) vote completes — the role a WAL plays in
/// Tendermint.
public struct SignState: Hashable, Sendable {
    /// The last message this validator signed (proposal with block, or vote).
    public let message: SignedMessage
    /// Earlier messages signed at the same height and round as `message`, oldest first.
    public let sameRound: [SignedMessage]
    /// The lock at the time of signing (valid for `message.height` only).
    public let lockedRound: Round?
    public let lockedValue: ProposalValue?
    /// The prevotes for `lockedValue` at `lockedRound` that this validator held when it
    /// signed: the proof-of-lock. A validator locked on a value can only bring the others to
    /// it by showing them that proof (with a re-proposal, or relayed), and an equivocator
    /// may have shown its part of the proof to this validator alone. Without it in the
    /// record, a restart forgot the proof while keeping the lock, and the honest validators
    /// could stay split between two locks for good (simulation seed 29000813).
    public let lockProof: [SignedVote]

    public init(message: SignedMessage, sameRound: [SignedMessage] = [], lockedRound: Round?, lockedValue: ProposalValue?,
                lockProof: [SignedVote] = []) {
        self.message = message
        self.sameRound = sameRound
        self.lockedRound = lockedRound
        self.lockedValue = lockedValue
        self.lockProof = lockedValue == nil ? [] : lockProof
    }

    /// All messages of the record, oldest first.
    public var messages: [SignedMessage] { sameRound + [message] }

    public var height: Height { message.height }
    public var round: Round { message.round }
    public var step: Step { message.step }

    /// Canonical encoding for storage.
    public func encoded() -> Data {
        var w = ByteWriter()
        w.u8(2)  // record version (1: without the proof-of-lock; still read)
        let all = Array(messages.suffix(256))  // in practice ≤ 3
        w.u8(UInt8(all.count - 1))
        for m in all {
            switch m {
            case .proposal(let p):
                w.u8(1)
                w.proposal(p)
            case .vote(let v):
                w.u8(2)
                w.vote(v)
            }
        }
        w.optionalU32(lockedRound)
        if let lockedValue {
            w.u8(1)
            w.bytes(lockedValue.hash.bytes)
            w.long(lockedValue.block)
            let proof = Array(lockProof.prefix(Int(UInt16.max)))
            w.u16(UInt16(proof.count))
            for v in proof { w.vote(v) }
        } else {
            w.u8(0)
        }
        return w.data
    }

    /// Decodes ``encoded()``; throws on anything else.
    public init(encoded data: Data) throws(ConsensusError) {
        var r = ByteReader(data)
        let version = try r.u8()
        guard version == 1 || version == 2 else { throw .malformedMessage("unknown sign-state version") }
        let earlier = Int(try r.u8())
        var all: [SignedMessage] = []
        for _ in 0...earlier {
            switch try r.u8() {
            case 1: all.append(.proposal(try r.proposal()))
            case 2: all.append(.vote(try r.vote()))
            default: throw .malformedMessage("unknown sign-state message kind")
            }
        }
        guard let last = all.popLast() else { throw .malformedMessage("empty sign state") }
        message = last
        sameRound = all
        lockedRound = try r.optionalU32()
        if try r.flag() {
            let h = try r.hash()
            lockedValue = ProposalValue(hash: h, block: try r.long())
            var proof: [SignedVote] = []
            if version == 2 {
                let n = Int(try r.u16())
                guard n <= r.remaining / 17 else { throw .malformedMessage("proof-of-lock vote count too large") }
                proof.reserveCapacity(n)
                for _ in 0..<n { proof.append(try r.vote()) }
            }
            lockProof = proof
        } else {
            lockedValue = nil
            lockProof = []
        }
        try r.finish()
    }
}

/// Outcome of asking the guard to sign.
enum GuardDecision {
    /// New HRS: sign it.
    case sign
    /// Identical bytes at the last HRS: re-use the persisted signature (no new signature).
    case reuse(SignedMessage)
    /// Same HRS, different bytes: refuse; the persisted message is what was really sent.
    case conflict(SignedMessage)
    /// Older HRS than the last signature: refuse.
    case regression
}

/// Pure sign-guard logic (Tendermint's FilePV rule): height/round/step must be
/// non-decreasing; at an equal HRS only byte-identical messages may be (re)issued.
enum SignGuard {
    static func check(last: SignState?, height: Height, round: Round, step: Step, signBytes: Data, chainID: ChainID)
        -> GuardDecision
    {
        guard let last else { return .sign }
        let a = (height, round, step.rawValue), b = (last.height, last.round, last.step.rawValue)
        if a < b { return .regression }
        if a > b { return .sign }
        return last.message.signBytes(chainID: chainID) == signBytes ? .reuse(last.message) : .conflict(last.message)
    }
}
