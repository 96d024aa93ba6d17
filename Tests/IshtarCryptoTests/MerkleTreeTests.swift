import Foundation
import IshtarCrypto
import IshtarTestSupport
import Testing

extension Data {
    init(bigEndian4 value: UInt32) {
        var big = value.bigEndian
        self = Swift.withUnsafeBytes(of: &big) { Data($0) }
    }
}

@Suite struct MerkleTreeTests {
    static func leaves(_ count: Int) -> [Data] {
        (0..<count).map { Data([UInt8($0)]) }
    }

    /// Roots from an independent Python 3 implementation of RFC-6962 (leaf = sha256(b"\x00" + x),
    /// inner = sha256(b"\x01" + l + r), split at the largest power of two below the count,
    /// empty = sha256(b"")) over leaves bytes([0]), bytes([1]), ….
    static let pythonRoots: [(Int, String)] = [
        (0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        (1, "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
        (2, "a20bf9a7cc2dc8a08f5f415a71b19f6ac427bab54d24eec868b5d3103449953a"),
        (3, "3b6cccd7e3e023ff393006f030315ee7ad9eb111b022b41fba7e5b7a3973f688"),
        (5, "b855b42d6c30f5b087e05266783fbd6e394f7b926013ccaa67700a8b0c5a596f"),
        (7, "3560191803028444b232018ac047fdb561c09c23a7a6876c85e08b5e4d48e9f3"),
        (40, "4d90c59b3516f06030728abf39f5033ef1e26cf6a691234189d16cf2e52886f3"),
    ]

    @Test(arguments: pythonRoots)
    func rootMatchesPython(count: Int, expected: String) {
        #expect(MerkleTree.root(leaves: Self.leaves(count)).hexString == expected)
        #expect(MerkleTree.proofs(leaves: Self.leaves(count)).root.hexString == expected)
    }

    /// 10,000 leaves (4-byte big-endian counters); same Python implementation.
    @Test func tenThousandLeaves() {
        let leaves = (UInt32(0)..<10_000).map { (i: UInt32) -> Data in Data(bigEndian4: i) }
        let start = ContinuousClock.now
        let root = MerkleTree.root(leaves: leaves)
        let elapsed = ContinuousClock.now - start
        #expect(root.hexString == "b876e493732f46556b9c61c2e904aa61a1a59149743673365d545a6a0c5dff17")
        #expect(elapsed < .seconds(1))
        let (allRoot, proofs) = MerkleTree.proofs(leaves: leaves)
        #expect(allRoot == root)
        #expect(proofs[9_999].verify(leaf: leaves[9_999], root: root))
        // 10,000 = 8192 + 1808: leaf 0 sits 14 levels deep, the last leaf only 8.
        #expect(proofs[0].aunts.count == 14)
        #expect(proofs[9_999].aunts.count == 8)
    }

    @Test(arguments: 1...40)
    func proofsVerifyAndRejectTampering(count: Int) throws {
        let leaves = Self.leaves(count)
        let (root, proofs) = MerkleTree.proofs(leaves: leaves)
        #expect(proofs.count == count)
        // The level-by-level root and the recursive split-at-a-power-of-two tree agree.
        #expect(MerkleTree.root(leaves: leaves) == root)
        var rejectedTotals = 0
        for index in 0..<count {
            let proof = proofs[index]
            #expect(try MerkleTree.proof(leaves: leaves, index: index) == proof)
            #expect(proof.verify(leaf: leaves[index], root: root))
            #expect(try proof.computeRoot(leaf: leaves[index]) == root)

            // Wrong leaf, wrong root.
            #expect(!proof.verify(leaf: Data([0xff, 0xff]), root: root))
            #expect(!proof.verify(leaf: leaves[index], root: Data(count: 32)))
            // Wrong index (every other position), index = total, index past total.
            for other in 0..<count where other != index {
                var moved = proof
                moved.index = UInt64(other)
                #expect(!moved.verify(leaf: leaves[index], root: root))
            }
            var past = proof
            past.index = UInt64(count)
            #expect(!past.verify(leaf: leaves[index], root: root))
            // Wrong total. The total only enters through the path's shape (depth and the
            // left/right turn at each level), exactly as in CometBFT: a total that keeps the
            // shape is indistinguishable, any total that changes it must be rejected.
            for total in 1...(2 * count + 1) where total != count && index < total {
                var resized = proof
                resized.total = UInt64(total)
                let sameShape = Self.pathShape(index: index, total: total) == Self.pathShape(index: index, total: count)
                #expect(resized.verify(leaf: leaves[index], root: root) == sameShape)
                if !sameShape { rejectedTotals += 1 }
            }
            // Aunts: one flipped bit, one extra, one missing, one of the wrong length.
            if !proof.aunts.isEmpty {
                for auntIndex in proof.aunts.indices {
                    var flipped = proof
                    flipped.aunts[auntIndex][0] ^= 1
                    #expect(!flipped.verify(leaf: leaves[index], root: root))
                }
                var missing = proof
                missing.aunts.removeLast()
                #expect(!missing.verify(leaf: leaves[index], root: root))
                var short = proof
                short.aunts[0] = short.aunts[0].prefix(31)
                #expect(throws: CryptoError.invalidLength(field: "Merkle proof aunt", expected: 32, actual: 31)) {
                    try short.computeRoot(leaf: leaves[index])
                }
            }
            var extra = proof
            extra.aunts.append(root)
            #expect(!extra.verify(leaf: leaves[index], root: root))
        }
        #expect(rejectedTotals > 0)
    }

    /// Every way of tampering with the proof of one leaf that the test above tries.
    static func tamperings(_ proof: MerkleProof, leaf: Data, count: Int) -> [(MerkleProof, Data)] {
        var out: [(MerkleProof, Data)] = [(proof, leaf), (proof, Data([0xff, 0xff]))]
        for other in 0...(count + 1) where other != Int(proof.index) {
            var moved = proof
            moved.index = UInt64(other)
            out.append((moved, leaf))
        }
        for total in 1...(2 * count + 1) where total != count {
            var resized = proof
            resized.total = UInt64(total)
            out.append((resized, leaf))
        }
        for auntIndex in proof.aunts.indices {
            var flipped = proof
            flipped.aunts[auntIndex][31] ^= 0x80
            out.append((flipped, leaf))
            var swapped = proof
            swapped.aunts[auntIndex] = leaf.count == 32 ? leaf : MerkleTree.leafHash(leaf)
            out.append((swapped, leaf))
        }
        if !proof.aunts.isEmpty {
            var missing = proof
            missing.aunts.removeLast()
            out.append((missing, leaf))
        }
        var extra = proof
        extra.aunts.append(Data(count: 32))
        out.append((extra, leaf))
        return out
    }

    /// A proof checked through a ``MerklePathMemo`` gets the answer of a full check in every
    /// case: with the memo empty, holding this leaf's own path, or a neighbour's (the case
    /// where it skips hashing), and for every tampering — a forged sibling above the meeting
    /// point must not pass because the node below it matched.
    @Test(arguments: [1, 2, 3, 5, 8, 13, 33])
    func memoizedProofsAnswerLikeFullOnes(count: Int) {
        let leaves = Self.leaves(count)
        let (root, proofs) = MerkleTree.proofs(leaves: leaves)
        for index in 0..<count {
            for primer in Set([index - 1, index, index + 1, count - 1 - index, 0]) where primer >= 0 && primer < count {
                for (proof, leaf) in Self.tamperings(proofs[index], leaf: leaves[index], count: count) {
                    let memo = MerklePathMemo(capacity: 8)
                    #expect(proofs[primer].verify(leaf: leaves[primer], root: root, memo: memo))
                    #expect(proof.verify(leaf: leaf, root: root, memo: memo) == proof.verify(leaf: leaf, root: root),
                            "count \(count) index \(index) primed with \(primer), proof \(proof)")
                    // Whatever it just saw, the memo still answers every genuine proof.
                    for other in [index, primer, (index + 1) % count] {
                        #expect(proofs[other].verify(leaf: leaves[other], root: root, memo: memo))
                        #expect(!proofs[other].verify(leaf: Data([0xee]), root: root, memo: memo))
                    }
                }
            }
        }
        // Walking the leaves in order, as a provider's votes do, through one memo.
        let memo = MerklePathMemo(capacity: 1)
        for index in 0..<count { #expect(proofs[index].verify(leaf: leaves[index], root: root, memo: memo)) }
        #expect(memo.count == 1)
        // Another tree's root is not answered from this one's path.
        let (otherRoot, otherProofs) = MerkleTree.proofs(leaves: leaves.map { $0 + Data([1]) })
        #expect(!proofs[0].verify(leaf: leaves[0], root: otherRoot, memo: memo))
        #expect(otherProofs[0].verify(leaf: leaves[0] + Data([1]), root: otherRoot, memo: memo))
    }

    /// The turns from the root down to `index` (true = left), written independently of the
    /// library: recursive halving at the largest power of two below the size.
    static func pathShape(index: Int, total: Int) -> [Bool] {
        guard total > 1 else { return [] }
        var split = 1
        while split * 2 < total { split *= 2 }
        return index < split
            ? [true] + pathShape(index: index, total: split)
            : [false] + pathShape(index: index - split, total: total - split)
    }

    @Test func errorsAndCodable() throws {
        #expect(throws: CryptoError.indexOutOfRange(field: "Merkle leaf index", index: 3, count: 3)) {
            try MerkleTree.proof(leaves: Self.leaves(3), index: 3)
        }
        #expect(throws: CryptoError.indexOutOfRange(field: "Merkle leaf index", index: 0, count: 0)) {
            try MerkleTree.proof(leaves: [], index: 0)
        }
        #expect(MerkleTree.proofs(leaves: []).proofs.isEmpty)
        let zeroTotal = MerkleProof(index: 0, total: 0, aunts: [])
        #expect(!zeroTotal.verify(leaf: Data(), root: MerkleTree.emptyRoot))

        let proof = try MerkleTree.proof(leaves: Self.leaves(5), index: 4)
        let decoded = try JSONDecoder().decode(MerkleProof.self, from: JSONEncoder().encode(proof))
        #expect(decoded == proof)
    }
}
