import Foundation

/// A full block: header and transactions, as `getblock <hash> 0` returns it.
public struct Block: Hashable, Sendable {
    /// The header.
    public var header: BlockHeader
    /// The transactions, coinbase first.
    public var transactions: [Transaction]

    /// A block from its parts.
    public init(header: BlockHeader, transactions: [Transaction]) {
        self.header = header
        self.transactions = transactions
    }

    /// Decodes a serialized block; trailing bytes are an error.
    public init(serialized bytes: some DataProtocol) throws(BitcoinDecodingError) {
        var reader = ByteReader([UInt8](bytes))
        header = try BlockHeader(reader: &reader)
        // The smallest transaction serializes to 51 bytes: one input with empty script, no outputs.
        let count = try reader.readCount(field: "transaction count", minimumElementSize: 51)
        var transactions = [Transaction]()
        transactions.reserveCapacity(count)
        for _ in 0..<count { transactions.append(try Transaction(reader: &reader)) }
        try reader.requireEnd()
        self.transactions = transactions
    }

    /// The serialization, transactions with their witnesses.
    public var serialized: Data {
        var out = header.serialized
        out.appendCompactSize(UInt64(transactions.count))
        for transaction in transactions { out.append(transaction.serialized()) }
        return out
    }

    /// Checks that the header's Merkle root commits to exactly these transactions, refusing
    /// an empty or mutated (CVE-2012-2459) transaction list.
    public func checkMerkleRoot() throws(MerkleError) {
        guard try BlockMerkle.root(transactions: transactions) == header.merkleRoot else { throw .rootMismatch }
    }

    /// The inclusion proof of the transaction at `index`.
    public func inclusionProof(index: Int) throws(MerkleError) -> TransactionInclusionProof {
        try TransactionInclusionProof(txids: transactions.map(\.txid), index: index)
    }

    /// The inclusion proof of the transaction at `index`, pinned to the tree's depth by the
    /// block's coinbase (``PinnedInclusionProof``).
    public func pinnedInclusionProof(index: Int) throws(MerkleError) -> PinnedInclusionProof {
        try PinnedInclusionProof(transactions: transactions, index: index)
    }
}
