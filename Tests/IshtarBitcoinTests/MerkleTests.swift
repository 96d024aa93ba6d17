import Foundation
import IshtarBitcoin
import IshtarCrypto
import Testing

/// A straightforward recursive reference of Bitcoin's Merkle root, to check the real one against.
private func referenceRoot(_ nodes: [Data]) -> Data {
    if nodes.count == 1 { return nodes[0] }
    var padded = nodes
    if padded.count % 2 == 1 { padded.append(padded[padded.count - 1]) }
    return referenceRoot(stride(from: 0, to: padded.count, by: 2).map { BitcoinHash.hash256(padded[$0] + padded[$0 + 1]) })
}

private func txids(_ count: Int) -> [TxID] {
    (0..<count).map { index in (try? Hash256(rawValue: BitcoinHash.sha256(Data([UInt8(index), 0xee])))) ?? .zero }
}

@Suite("Block Merkle trees and inclusion proofs")
struct MerkleTests {
    @Test(arguments: 1...17)
    func rootsAndProofs(count: Int) throws {
        let ids = txids(count)
        let root = try BlockMerkle.root(txids: ids)
        #expect(root.rawValue == referenceRoot(ids.map(\.rawValue)))
        #expect(BlockMerkle.computeRoot(txids: ids) == (root, false))
        for index in 0..<count {
            let proof = try TransactionInclusionProof(txids: ids, index: index)
            #expect(proof.computeRoot(txid: ids[index]) == root)
            let reparsed = try TransactionInclusionProof(index: proof.index, serializedSiblings: proof.serializedSiblings)
            #expect(reparsed == proof)
            // The same path does not prove a different transaction.
            #expect(proof.computeRoot(txid: ids[(index + 1) % count]) != root || count == 1)
        }
    }

    @Test func mutationDetected() throws {
        let ids = txids(3)
        let mutated = ids + [ids[2]]
        // The duplicated list has the same root, which is why it must be refused.
        #expect(BlockMerkle.computeRoot(txids: mutated).root == (try BlockMerkle.root(txids: ids)))
        #expect(BlockMerkle.computeRoot(txids: mutated).mutated)
        #expect(throws: MerkleError.mutatedTree(level: 0, index: 2)) { try BlockMerkle.root(txids: mutated) }
        #expect(throws: MerkleError.mutatedTree(level: 0, index: 2)) { try TransactionInclusionProof(txids: mutated, index: 0) }
        // Six leaves where the last pair repeats the middle pair one level up.
        let six = Array(ids[0..<2]) + Array(ids[0..<2])
        #expect(throws: MerkleError.mutatedTree(level: 1, index: 0)) { try BlockMerkle.root(txids: six) }
        #expect(throws: MerkleError.noTransactions) { try BlockMerkle.root(txids: []) }
        #expect(BlockMerkle.computeRoot(txids: []).root == .zero)

        // A forged proof for the padding copy of the last transaction is refused.
        let root = try BlockMerkle.root(txids: ids)
        let left = try Hash256(rawValue: BitcoinHash.hash256(ids[0].rawValue + ids[1].rawValue))
        let forged = try TransactionInclusionProof(index: 3, siblings: [ids[2], left])
        #expect(forged.computeRoot(txid: ids[2]) == nil)
        let honest = try TransactionInclusionProof(index: 2, siblings: [ids[2], left])
        #expect(honest.computeRoot(txid: ids[2]) == root)
    }

    @Test func malformedProofs() {
        #expect(throws: MerkleError.malformedProof) { try TransactionInclusionProof(index: 4, siblings: txids(2)) }
        #expect(throws: MerkleError.malformedProof) { try TransactionInclusionProof(index: 0, siblings: txids(33)) }
        #expect(throws: MerkleError.malformedProof) { try TransactionInclusionProof(index: 0, serializedSiblings: Data(count: 33)) }
        #expect(throws: MerkleError.indexOutOfRange(index: 3, count: 3)) { try TransactionInclusionProof(txids: txids(3), index: 3) }
    }

    @Test func verifiesTransactions() throws {
        let transactions = (0..<5).map { index in
            Transaction(
                inputs: [TxIn(previousOutput: OutPoint(txid: .zero, index: UInt32(index)))],
                outputs: [TxOut(value: .sats(Int64(1000 + index)), scriptPubKey: .opReturn(Data("ishtar".utf8)))])
        }
        let ids = transactions.map(\.txid)
        let root = try BlockMerkle.root(transactions: transactions)
        for (index, transaction) in transactions.enumerated() {
            let proof = try TransactionInclusionProof(txids: ids, index: index)
            try proof.verify(transaction: transaction, merkleRoot: root)
            #expect(throws: MerkleError.rootMismatch) { try proof.verify(transaction: transactions[(index + 1) % 5], merkleRoot: root) }
        }
    }

    @Test func refusesSixtyFourByteTransactions() throws {
        // 4 version + 1 + 41 input + 1 + 8 value + 1 + 4 script + 4 lock time = 64 bytes.
        let tx = Transaction(
            inputs: [TxIn(previousOutput: OutPoint(txid: .zero, index: 0))],
            outputs: [TxOut(value: .sats(1), scriptPubKey: Script(bytes: Data([0x51, 0x51, 0x51, 0x51])))])
        #expect(tx.strippedSize == 64)
        let ids = [tx.txid] + txids(3)
        let proof = try TransactionInclusionProof(txids: ids, index: 0)
        let root = try BlockMerkle.root(txids: ids)
        #expect(proof.computeRoot(txid: tx.txid) == root)
        #expect(throws: MerkleError.sixtyFourByteTransaction) { try proof.verify(transaction: tx, merkleRoot: root) }
        // A witness does not help: the txid commits to the stripped 64 bytes.
        var witnessed = tx
        witnessed.inputs[0].witness = [Data([1])]
        #expect(throws: MerkleError.sixtyFourByteTransaction) { try proof.verify(transaction: witnessed, merkleRoot: root) }
    }

    /// A coinbase whose script makes it `scriptBytes + 60` bytes long without witness.
    private func coinbase(scriptBytes: Int = 6) -> Transaction {
        Transaction(inputs: [TxIn(previousOutput: OutPoint(txid: .zero, index: .max), scriptSig: Script(bytes: Data(repeating: 0x03, count: scriptBytes)))],
                    outputs: [TxOut(value: .sats(5_000_000_000), scriptPubKey: Script(bytes: Data()))])
    }

    private func payments(_ count: Int) -> [Transaction] {
        (0..<count).map { index in
            Transaction(inputs: [TxIn(previousOutput: OutPoint(txid: txids(1)[0], index: UInt32(index)))],
                        outputs: [TxOut(value: .sats(Int64(1000 + index)), scriptPubKey: .opReturn(Data("ishtar".utf8)))])
        }
    }

    @Test(arguments: [1, 2, 3, 5, 8, 9])
    func pinnedProofsVerifyEveryTransaction(count: Int) throws {
        let transactions = [coinbase()] + payments(count)
        let block = Block(header: BlockHeader(version: 2, previousBlockHash: .zero, merkleRoot: try BlockMerkle.root(transactions: transactions),
                                              time: 0, bits: 0x207f_ffff, nonce: 0),
                          transactions: transactions)
        for index in transactions.indices {
            let pinned = try block.pinnedInclusionProof(index: index)
            try pinned.verify(transaction: transactions[index], merkleRoot: block.header.merkleRoot)
            #expect(pinned.coinbaseProof.index == 0)
            #expect(pinned.proof.siblings.count == pinned.coinbaseProof.siblings.count)
        }
        // A block whose first transaction is not a coinbase has no pinned proofs.
        #expect(throws: MerkleError.notACoinbase) { try PinnedInclusionProof(transactions: payments(count), index: 0) }
    }

    /// The forgery the coinbase closes: a path one level longer than the tree, running through
    /// a 64-byte transaction of the block read as an inner node whose left half is the forged
    /// transaction's txid.
    @Test func longerPathThroughASixtyFourByteTransactionIsRefused() throws {
        let forged = Transaction(inputs: [TxIn(previousOutput: OutPoint(txid: txids(1)[0], index: 7))],
                                 outputs: [TxOut(value: .sats(21_000_000), scriptPubKey: .opReturn(Data("not in any block".utf8)))])
        #expect(forged.strippedSize != 64)
        // The 64 bytes a miner would have to accept as a transaction: the forged txid and any
        // 32 bytes. Only its txid enters the tree, which is all the forgery needs.
        let rightHalf = txids(2)[1].rawValue
        let planted = try Hash256(rawValue: BitcoinHash.hash256(forged.txid.rawValue + rightHalf))
        let cb = coinbase()
        let ids = [cb.txid] + payments(2).map(\.txid) + [planted]
        let root = try BlockMerkle.root(txids: ids)
        let plantedPath = try TransactionInclusionProof(txids: ids, index: 3)
        let longer = try TransactionInclusionProof(index: plantedPath.index << 1,
                                                   siblings: [try Hash256(rawValue: rightHalf)] + plantedPath.siblings)
        // Without the depth, the forged transaction "is in the block".
        try longer.verify(transaction: forged, merkleRoot: root)
        // With the coinbase's path, its path is one level too long.
        let pinned = try PinnedInclusionProof(proof: longer, coinbase: cb, coinbaseProof: try TransactionInclusionProof(txids: ids, index: 0))
        #expect(throws: MerkleError.depthMismatch(proof: 3, tree: 2)) { try pinned.verify(transaction: forged, merkleRoot: root) }
    }

    @Test func theCoinbaseItselfIsChecked() throws {
        let cb = coinbase()
        let others = payments(3)
        let transactions = [cb] + others
        let root = try BlockMerkle.root(transactions: transactions)
        let ids = transactions.map(\.txid)
        let path = try TransactionInclusionProof(txids: ids, index: 2)
        let cbPath = try TransactionInclusionProof(txids: ids, index: 0)
        // Not a coinbase in the coinbase's place.
        let notCoinbase = try PinnedInclusionProof(proof: path, coinbase: others[0], coinbaseProof: cbPath)
        #expect(throws: MerkleError.notACoinbase) { try notCoinbase.verify(transaction: others[1], merkleRoot: root) }
        // Another block's coinbase.
        let foreign = try PinnedInclusionProof(proof: path, coinbase: coinbase(scriptBytes: 7), coinbaseProof: cbPath)
        #expect(throws: MerkleError.coinbaseRootMismatch) { try foreign.verify(transaction: others[1], merkleRoot: root) }
        // A 64-byte coinbase could be an inner node: refused.
        let short = coinbase(scriptBytes: 4)
        #expect(short.strippedSize == 64)
        let shortIDs = [short.txid] + others.map(\.txid)
        let shortPinned = try PinnedInclusionProof(proof: try TransactionInclusionProof(txids: shortIDs, index: 2), coinbase: short,
                                                   coinbaseProof: try TransactionInclusionProof(txids: shortIDs, index: 0))
        #expect(throws: MerkleError.sixtyFourByteTransaction) {
            try shortPinned.verify(transaction: others[1], merkleRoot: try BlockMerkle.root(txids: shortIDs))
        }
        // The coinbase's path must be for index 0.
        #expect(throws: MerkleError.malformedProof) { try PinnedInclusionProof(proof: path, coinbase: cb, coinbaseProof: path) }
    }
}
