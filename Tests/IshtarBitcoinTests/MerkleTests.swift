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
}
