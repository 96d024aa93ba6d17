import Foundation
import IshtarConsensus

/// Which proposals (each carrying a whole block) went to which connection, so the gossip
/// tick's re-sends go only where a proposal may be missing instead of to every peer on
/// every tick until the height is decided.
///
/// TCP delivers what was written on a live connection, so a peer lacks a proposal sent on
/// its current connection only if it set the proposal aside — a peer still catching up
/// drops proposals for heights beyond its own. The peer's status (its last committed
/// height, sent every tick) says when that may have happened: a proposal is sent again to
/// a connection when
/// - it has never gone (or come) over that connection;
/// - the peer's reported height changed since it went, unless the peer is already past the
///   proposal's height (it decided without it);
/// - or ``resendAfterTicks`` gossip ticks passed since it went — a bounded safety net for
///   a peer that set it aside for a reason its status does not show (a round it had not
///   reached yet, when it keeps one proposal per future round).
///
/// A proposal that arrives from a connection counts as sent to it. Pure and synchronous:
/// the node service owns one and asks it on every proposal broadcast.
struct ProposalRelayLog {
    /// Ticks after which a proposal goes to a connection again even if nothing changed.
    static let resendAfterTicks: UInt64 = 8

    /// One proposal: its height (for pruning) and signature (unique to the proposal).
    struct ID: Hashable {
        let height: UInt64
        let signature: Data

        init(_ p: SignedProposal) {
            height = p.proposal.height
            signature = p.signature
        }
    }

    private struct Sent {
        /// The peer's reported height when it went (nil: none reported yet).
        var peerHeight: UInt64?
        var tick: UInt64
    }

    private var sent: [ConnectionID: [ID: Sent]] = [:]

    /// Whether `proposal` should go to `connection` now; if so it is recorded as sent.
    /// `peerHeight` is the peer's last reported committed height, `tick` the gossip tick count.
    mutating func shouldSend(_ proposal: ID, to connection: ConnectionID, peerHeight: UInt64?, tick: UInt64) -> Bool {
        if let peerHeight, peerHeight >= proposal.height { return false }
        if let s = sent[connection]?[proposal], s.peerHeight == peerHeight, tick &- s.tick < Self.resendAfterTicks {
            return false
        }
        sent[connection, default: [:]][proposal] = Sent(peerHeight: peerHeight, tick: tick)
        return true
    }

    /// `connection` sent us `proposal`: it has it.
    mutating func received(_ proposal: ID, from connection: ConnectionID, peerHeight: UInt64?, tick: UInt64) {
        sent[connection, default: [:]][proposal] = Sent(peerHeight: peerHeight, tick: tick)
    }

    /// The connection closed (a new one starts with nothing sent).
    mutating func forget(_ connection: ConnectionID) { sent.removeValue(forKey: connection) }

    /// Drops what concerns heights below `height` (decided: never proposed again).
    mutating func prune(below height: UInt64) {
        for (connection, proposals) in sent {
            let kept = proposals.filter { $0.key.height >= height }
            if kept.isEmpty { sent.removeValue(forKey: connection) } else if kept.count != proposals.count { sent[connection] = kept }
        }
    }

    /// Proposals recorded for `connection` (tests).
    func recordedCount(for connection: ConnectionID) -> Int { sent[connection]?.count ?? 0 }
}
