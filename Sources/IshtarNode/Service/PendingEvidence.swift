import IshtarChain

/// The node's record of equivocation evidence it detected and no committed block has
/// carried yet, kept in its consensus column family so that a restart does not forget an
/// offence (its votes were gossiped once; peers will not send them again).
///
/// Encoding: `u32 count ‖ evidence*` (each ``DoubleVoteEvidence``'s canonical encoding),
/// at most ``NodeService/maxPendingEvidence`` entries.
struct PendingEvidence: BinaryCodable, Equatable {
    /// The offences, oldest first.
    var evidence: [DoubleVoteEvidence]

    init(_ evidence: [DoubleVoteEvidence]) { self.evidence = evidence }

    func encode(to w: inout BinaryWriter) {
        w.count(evidence.count)
        for e in evidence { e.encode(to: &w) }
    }

    init(from r: inout BinaryReader) throws(CodecError) {
        // 188 bytes: the smallest encoding of one piece of evidence (as in a block).
        let n = try r.count("pending evidence", minElementSize: 188, limit: NodeService.maxPendingEvidence)
        var list: [DoubleVoteEvidence] = []
        list.reserveCapacity(n)
        for _ in 0..<n { list.append(try DoubleVoteEvidence(from: &r)) }
        evidence = list
    }
}
