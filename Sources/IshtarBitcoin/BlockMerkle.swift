import Foundation

/// The Merkle tree of a block's transactions: double-SHA256 of concatenated pairs, an odd
/// node paired with itself at every level.
public enum BlockMerkle {
    private static func parent(_ left: Data, _ right: Data) -> Data {
        BitcoinHash.hash256(left + right)
    }

    /// The root of `txids` and whether the list is mutated (CVE-2012-2459): two equal
    /// siblings anywhere, meaning some other, shorter list has the same root. Like Bitcoin
    /// Core's `ComputeMerkleRoot`. An empty list gives the zero hash.
    public static func computeRoot(txids: [TxID]) -> (root: Hash256, mutated: Bool) {
        var level = txids.map(\.rawValue)
        guard !level.isEmpty else { return (.zero, false) }
        var mutated = false
        while level.count > 1 {
            for index in stride(from: 0, to: level.count - 1, by: 2) where level[index] == level[index + 1] {
                mutated = true
            }
            if level.count % 2 == 1, let last = level.last { level.append(last) }
            level = stride(from: 0, to: level.count, by: 2).map { parent(level[$0], level[$0 + 1]) }
        }
        return (Hash256(unchecked: level[0]), mutated)
    }

    /// The root of a block's `txids`, rejecting an empty list and a mutated one.
    public static func root(txids: [TxID]) throws(MerkleError) -> Hash256 {
        guard !txids.isEmpty else { throw .noTransactions }
        var level = txids.map(\.rawValue)
        var depth = 0
        while level.count > 1 {
            for index in stride(from: 0, to: level.count - 1, by: 2) where level[index] == level[index + 1] {
                throw .mutatedTree(level: depth, index: index)
            }
            if level.count % 2 == 1, let last = level.last { level.append(last) }
            level = stride(from: 0, to: level.count, by: 2).map { parent(level[$0], level[$0 + 1]) }
            depth += 1
        }
        return Hash256(unchecked: level[0])
    }

    /// The root committing to `transactions` by txid.
    public static func root(transactions: [Transaction]) throws(MerkleError) -> Hash256 {
        try root(txids: transactions.map(\.txid))
    }
}

/// A proof that a transaction is in a block: its index and the sibling hashes from the leaf
/// level up to (not including) the root.
public struct TransactionInclusionProof: Hashable, Sendable {
    /// The transaction's position in the block; its bits, lowest first, say on which side
    /// each sibling sits.
    public let index: UInt32
    /// The sibling hashes, leaf level first.
    public let siblings: [Hash256]

    /// A proof from its parts; more than 32 levels or an index with bits beyond the depth
    /// cannot describe a block.
    public init(index: UInt32, siblings: [Hash256]) throws(MerkleError) {
        guard siblings.count <= 32, siblings.count == 32 || index >> UInt32(siblings.count) == 0 else {
            throw .malformedProof
        }
        self.index = index
        self.siblings = siblings
    }

    /// Builds the proof for the transaction at `index` of a block with `txids`, refusing a
    /// mutated list (its root is ambiguous).
    public init(txids: [TxID], index: Int) throws(MerkleError) {
        guard index >= 0, index < txids.count else { throw .indexOutOfRange(index: index, count: txids.count) }
        _ = try BlockMerkle.root(txids: txids)
        var level = txids.map(\.rawValue)
        var position = index
        var siblings = [Hash256]()
        while level.count > 1 {
            if level.count % 2 == 1, let last = level.last { level.append(last) }
            siblings.append(Hash256(unchecked: level[position ^ 1]))
            level = stride(from: 0, to: level.count, by: 2).map { BitcoinHash.hash256(level[$0] + level[$0 + 1]) }
            position /= 2
        }
        try self.init(index: UInt32(index), siblings: siblings)
    }

    /// The root this proof leads to from `txid`, or nil if the path is a duplicated-node
    /// path: a right-hand node equal to its left sibling only arises as the copy of an odd
    /// last node, so the index points past the block's real transactions (CVE-2012-2459).
    public func computeRoot(txid: TxID) -> Hash256? {
        var node = txid.rawValue
        for (level, sibling) in siblings.enumerated() {
            if (index >> UInt32(level)) & 1 == 1 {
                if sibling.rawValue == node { return nil }
                node = BitcoinHash.hash256(sibling.rawValue + node)
            } else {
                node = BitcoinHash.hash256(node + sibling.rawValue)
            }
        }
        return Hash256(unchecked: node)
    }

    /// Verifies that `transaction` is in the block with `merkleRoot`. A transaction of exactly
    /// 64 bytes without witness is refused: its two halves could be an inner node's children,
    /// so a forged proof could "include" it without it being in the block.
    ///
    /// This does not fix the tree's depth, so it cannot refuse a path one level longer than
    /// the tree that runs through a real 64-byte transaction of the block (see
    /// ``PinnedInclusionProof``, which can).
    public func verify(transaction: Transaction, merkleRoot: Hash256) throws(MerkleError) {
        guard transaction.strippedSize != 64 else { throw .sixtyFourByteTransaction }
        guard computeRoot(txid: transaction.txid) == merkleRoot else { throw .rootMismatch }
    }

    /// The proof in the common flat form: the sibling hashes concatenated, 32 bytes each.
    public var serializedSiblings: Data { siblings.reduce(into: Data()) { $0.append($1.rawValue) } }

    /// Parses the flat form: concatenated 32-byte sibling hashes for the transaction at `index`.
    public init(index: UInt32, serializedSiblings bytes: some DataProtocol) throws(MerkleError) {
        let raw = [UInt8](bytes)
        guard raw.count % 32 == 0 else { throw .malformedProof }
        let siblings = stride(from: 0, to: raw.count, by: 32).map { Hash256(unchecked: Data(raw[$0..<$0 + 32])) }
        try self.init(index: index, siblings: siblings)
    }
}

/// An inclusion proof together with the block's coinbase transaction and the coinbase's own
/// path, which fixes the depth of the block's tree.
///
/// Every transaction of a Bitcoin block sits at the same depth, but a header does not say
/// what that depth is. A path one level longer than the tree can reach the root through a
/// real 64-byte transaction of the block, read as an inner node whose halves are a forged
/// transaction's txid and a sibling (the other half of that 64-byte transaction). Such a
/// transaction is non-standard and must be mined, and the forged txid must match the bits
/// the 64-byte transaction cannot choose freely: expensive, not impossible. The coinbase
/// closes it: it is always the first transaction, so its path (index 0) is as long as the
/// tree, and it cannot itself be such a forgery — read as an inner node, its first 32 bytes
/// would have to be a txid whose last 27 bytes are zero (the null outpoint's), and 64-byte
/// coinbases are refused. A proof is accepted only if its path has the coinbase's length.
public struct PinnedInclusionProof: Hashable, Sendable {
    /// The proven transaction's path.
    public let proof: TransactionInclusionProof
    /// The block's first transaction.
    public let coinbase: Transaction
    /// The coinbase's path (index 0).
    public let coinbaseProof: TransactionInclusionProof

    /// From its parts; `coinbaseProof` must be for index 0.
    public init(proof: TransactionInclusionProof, coinbase: Transaction, coinbaseProof: TransactionInclusionProof) throws(MerkleError) {
        guard coinbaseProof.index == 0 else { throw .malformedProof }
        self.proof = proof
        self.coinbase = coinbase
        self.coinbaseProof = coinbaseProof
    }

    /// The pinned proof of the transaction at `index` of a block's `transactions` (the first
    /// must be its coinbase), refusing a mutated list.
    public init(transactions: [Transaction], index: Int) throws(MerkleError) {
        guard let first = transactions.first else { throw .noTransactions }
        guard first.isCoinbase else { throw .notACoinbase }
        let txids = transactions.map(\.txid)
        try self.init(proof: TransactionInclusionProof(txids: txids, index: index), coinbase: first,
                      coinbaseProof: TransactionInclusionProof(txids: txids, index: 0))
    }

    /// Verifies that `transaction` is in the block with `merkleRoot` at the depth of that
    /// block's tree: the coinbase is a coinbase, not 64 bytes, and leads to the root from
    /// index 0; the proof has as many levels and leads to the root from `transaction`, which
    /// is not 64 bytes either.
    public func verify(transaction: Transaction, merkleRoot: Hash256) throws(MerkleError) {
        guard coinbase.isCoinbase else { throw .notACoinbase }
        guard coinbase.strippedSize != 64 else { throw .sixtyFourByteTransaction }
        guard coinbaseProof.computeRoot(txid: coinbase.txid) == merkleRoot else { throw .coinbaseRootMismatch }
        guard proof.siblings.count == coinbaseProof.siblings.count else {
            throw .depthMismatch(proof: proof.siblings.count, tree: coinbaseProof.siblings.count)
        }
        try proof.verify(transaction: transaction, merkleRoot: merkleRoot)
    }
}
