import Crypto
import Foundation

/// RFC-6962 Merkle trees (PROTOCOL §4), as CometBFT builds them: leaf = SHA256(0x00 ‖ leaf),
/// inner = SHA256(0x01 ‖ left ‖ right), a node over k > 1 items splits at the largest power of
/// two strictly below k, and the empty tree's root is SHA256("").
public enum MerkleTree {
    /// SHA256(0x00 ‖ leaf).
    public static func leafHash(_ leaf: some DataProtocol) -> Data {
        var digest = Data(count: 32)
        digest.withUnsafeMutableBytes { leafHash(leaf, into: $0) }
        return digest
    }

    /// SHA256(0x00 ‖ leaf) into the first 32 bytes of `out`; a leaf of up to 118 bytes (a
    /// public randomness, a hash) takes the direct two-block path.
    static func leafHash(_ leaf: some DataProtocol, into out: UnsafeMutableRawBufferPointer) {
        if leaf.regions.count == 1, let region = leaf.regions.first {
            region.withUnsafeBytes { leafHash(bytes: $0, into: out) }
            return
        }
        var hasher = InlineSHA256()
        withUnsafeBytes(of: UInt8(0x00)) { hasher.update(bufferPointer: $0) }
        hasher.update(bytes: leaf)
        hasher.finalize(into: out)
    }

    /// ``leafHash(_:into:)`` of contiguous bytes.
    static func leafHash(bytes leaf: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer) {
        if leaf.count < ShortSHA256Block.maximumLength {
            var block = ShortSHA256Block(length: leaf.count + 1)
            block.write(leaf, at: 1)
            block.digest(into: out)
            return
        }
        var hasher = InlineSHA256()
        withUnsafeBytes(of: UInt8(0x00)) { hasher.update(bufferPointer: $0) }
        hasher.update(bufferPointer: leaf)
        hasher.finalize(into: out)
    }

    /// SHA256(0x01 ‖ left ‖ right).
    public static func innerHash(_ left: Data, _ right: Data) -> Data {
        guard left.count == 32, right.count == 32 else {
            var hasher = InlineSHA256()
            withUnsafeBytes(of: UInt8(0x01)) { hasher.update(bufferPointer: $0) }
            hasher.update(data: left)
            hasher.update(data: right)
            return hasher.finalize()
        }
        var pair = ShortSHA256Block(length: 65)
        pair.write(byte: 0x01, at: 0)
        left.withUnsafeBytes { pair.write($0, at: 1) }
        right.withUnsafeBytes { pair.write($0, at: 33) }
        var digest = Data(count: 32)
        digest.withUnsafeMutableBytes { pair.digest(into: $0) }
        return digest
    }

    /// SHA256(""), the root of a tree with no leaves.
    public static let emptyRoot = InlineSHA256.hash(data: Data())

    /// The largest power of two strictly below `count` (`count` ≥ 2).
    static func splitPoint(_ count: Int) -> Int {
        Int(splitPoint(UInt64(count)))
    }

    /// The largest power of two strictly below `count` (`count` ≥ 2), for proof totals.
    static func splitPoint(_ count: UInt64) -> UInt64 {
        var split: UInt64 = 1
        while split < count - split {
            split <<= 1
        }
        return split
    }

    /// The root over `leaves`; O(n) hashes, each leaf hashed once.
    public static func root(leaves: [Data]) -> Data {
        guard !leaves.isEmpty else { return emptyRoot }
        // Bottom-up, level by level, in one buffer of 32-byte nodes: each pair hashes into the
        // front of the level, an odd last node moves up unchanged. That is the same tree as
        // splitting at the largest power of two below the count (the left part is always a
        // full subtree, so its levels pair up exactly), without a `Data` per inner node — a
        // block's transactions root was one allocation per transaction.
        var nodes = [UInt8](repeating: 0, count: 32 * leaves.count)
        nodes.withUnsafeMutableBytes { level in
            for (i, leaf) in leaves.enumerated() {
                leafHash(leaf, into: UnsafeMutableRawBufferPointer(rebasing: level[(32 * i)..<(32 * i + 32)]))
            }
            var pair = ShortSHA256Block(length: 65)
            pair.write(byte: 0x01, at: 0)
            var count = leaves.count
            while count > 1 {
                let pairs = count / 2
                for p in 0..<pairs {
                    pair.write(UnsafeRawBufferPointer(rebasing: level[(64 * p)..<(64 * p + 64)]), at: 1)
                    // Node p is written only after pair p is read, and below every pair not yet read.
                    pair.digest(into: UnsafeMutableRawBufferPointer(rebasing: level[(32 * p)..<(32 * p + 32)]))
                }
                if count % 2 == 1 {
                    let last = 32 * (count - 1)
                    UnsafeMutableRawBufferPointer(rebasing: level[(32 * pairs)..<(32 * pairs + 32)])
                        .copyMemory(from: UnsafeRawBufferPointer(rebasing: level[last..<(last + 32)]))
                }
                count = pairs + count % 2
            }
        }
        return Data(nodes[0..<32])
    }

    private static func subtreeRoot(_ hashes: [Data], _ lower: Int, _ upper: Int) -> Data {
        let count = upper - lower
        if count == 1 { return hashes[lower] }
        let middle = lower + splitPoint(count)
        return innerHash(subtreeRoot(hashes, lower, middle), subtreeRoot(hashes, middle, upper))
    }

    /// The inclusion proof of `leaves[index]`.
    public static func proof(leaves: [Data], index: Int) throws(CryptoError) -> MerkleProof {
        guard index >= 0, index < leaves.count else {
            throw .indexOutOfRange(field: "Merkle leaf index", index: index, count: leaves.count)
        }
        let hashes = leaves.map { leafHash($0) }
        var lower = 0
        var upper = hashes.count
        var topDown = [Data]()
        while upper - lower > 1 {
            let middle = lower + splitPoint(upper - lower)
            if index < middle {
                topDown.append(subtreeRoot(hashes, middle, upper))
                upper = middle
            } else {
                topDown.append(subtreeRoot(hashes, lower, middle))
                lower = middle
            }
        }
        return MerkleProof(index: UInt64(index), total: UInt64(leaves.count), aunts: topDown.reversed())
    }

    /// The root and every leaf's proof at once, in O(n log n).
    public static func proofs(leaves: [Data]) -> (root: Data, proofs: [MerkleProof]) {
        guard !leaves.isEmpty else { return (emptyRoot, []) }
        let hashes = leaves.map { leafHash($0) }
        var aunts = [[Data]](repeating: [], count: hashes.count)
        let root = buildProofs(hashes, 0, hashes.count, &aunts)
        let total = UInt64(leaves.count)
        let proofs = aunts.enumerated().map { MerkleProof(index: UInt64($0.offset), total: total, aunts: $0.element) }
        return (root, proofs)
    }

    /// Returns the subtree root; appends to each leaf's aunts bottom-up (children first).
    private static func buildProofs(_ hashes: [Data], _ lower: Int, _ upper: Int, _ aunts: inout [[Data]]) -> Data {
        let count = upper - lower
        if count == 1 { return hashes[lower] }
        let middle = lower + splitPoint(count)
        let left = buildProofs(hashes, lower, middle, &aunts)
        let right = buildProofs(hashes, middle, upper, &aunts)
        for i in lower..<middle { aunts[i].append(right) }
        for i in middle..<upper { aunts[i].append(left) }
        return innerHash(left, right)
    }
}

/// An RFC-6962 inclusion proof in CometBFT's layout: sibling hashes ("aunts") from the leaf's
/// level up to the root's children.
public struct MerkleProof: Sendable, Hashable, Codable {
    /// The leaf's position, 0-based.
    public var index: UInt64
    /// The number of leaves in the tree.
    public var total: UInt64
    /// Sibling hashes, 32 bytes each, bottom-up.
    public var aunts: [Data]

    /// A proof from its parts (not checked until ``computeRoot(leaf:)``).
    public init(index: UInt64, total: UInt64, aunts: [Data]) {
        self.index = index
        self.total = total
        self.aunts = aunts
    }

    /// The root this proof implies for `leaf`. Throws if index ≥ total, if an aunt is not
    /// 32 bytes, or if the number of aunts is not the leaf's exact depth for `total`.
    public func computeRoot(leaf: some DataProtocol) throws(CryptoError) -> Data {
        if leaf.regions.count == 1, let region = leaf.regions.first {
            return try region.withUnsafeBytes { root(leafBytes: $0) }.get()
        }
        return try computeRoot(leaf: Data(leaf))
    }

    /// ``computeRoot(leaf:)`` for a leaf in one buffer (a vote's randomness): every vote checks
    /// a proof, and the generic byte-collection path cost more than the leaf's hash.
    public func computeRoot(leaf: Data) throws(CryptoError) -> Data {
        try leaf.withUnsafeBytes { root(leafBytes: $0) }.get()
    }

    private func root(leafBytes leaf: UnsafeRawBufferPointer) -> Result<Data, CryptoError> {
        var root = Data(count: 32)
        let outcome = root.withUnsafeMutableBytes { out in
            Result { () throws(CryptoError) in try computeRoot(leafBytes: leaf, into: out) }
        }
        return outcome.map { root }
    }

    /// The root for `leaf` into the first 32 bytes of `node` (which must hold 32).
    private func computeRoot(leafBytes leaf: UnsafeRawBufferPointer, into node: UnsafeMutableRawBufferPointer) throws(CryptoError) {
        guard total > 0, index < total else {
            throw .indexOutOfRange(
                field: "Merkle proof index", index: Int(clamping: index), count: Int(clamping: total))
        }
        for aunt in aunts where aunt.count != 32 {
            throw .invalidLength(field: "Merkle proof aunt", expected: 32, actual: aunt.count)
        }
        let (goesLeft, depth) = Self.shape(index: index, total: total)
        guard depth == aunts.count else {
            throw .invalidLength(field: "Merkle proof aunts", expected: depth, actual: aunts.count)
        }
        // Bottom-up: every vote checks a proof, so nothing here allocates per level, and each
        // inner node is two direct compressions of one padded 65-byte buffer.
        MerkleTree.leafHash(bytes: leaf, into: node)
        var pair = ShortSHA256Block(length: 65)
        pair.write(byte: 0x01, at: 0)
        for (level, aunt) in aunts.enumerated() {
            let left = goesLeft >> UInt64(depth - 1 - level) & 1 == 1
            let (nodeAt, auntAt) = left ? (1, 33) : (33, 1)
            pair.write(UnsafeRawBufferPointer(rebasing: node[0..<32]), at: nodeAt)
            aunt.withUnsafeBytes { pair.write($0, at: auntAt) }
            pair.digest(into: node)
        }
    }

    /// ``verify(leaf:root:)-(some DataProtocol,_)`` for a leaf in one `Data` (a vote's
    /// randomness): every vote checks its proof, and the generic path, through the leaf's
    /// regions and the generic metadata it instantiated at run time, cost as much as the
    /// proof's hashing.
    public func verify(leaf: Data, root: Data) -> Bool {
        guard root.count == 32 else { return false }
        return withUnsafeTemporaryAllocation(byteCount: 32, alignment: 8) { node in
            let computed = leaf.withUnsafeBytes { (l: UnsafeRawBufferPointer) -> Bool in
                (try? computeRoot(leafBytes: l, into: node)) != nil
            }
            guard computed, let b = node.baseAddress else { return false }
            return root.withUnsafeBytes { r in r.baseAddress.map { memcmp($0, b, 32) == 0 } ?? false }
        }
    }

    /// Whether `leaf` is at ``index`` of a ``total``-leaf tree with this `root`.
    public func verify(leaf: some DataProtocol, root: Data) -> Bool {
        guard root.count == 32 else { return false }
        func matches(_ leaf: UnsafeRawBufferPointer) -> Bool {
            withUnsafeTemporaryAllocation(byteCount: 32, alignment: 8) { node in
                guard (try? computeRoot(leafBytes: leaf, into: node)) != nil else { return false }
                return root.withUnsafeBytes { r in
                    guard let a = r.baseAddress, let b = node.baseAddress else { return false }
                    return memcmp(a, b, 32) == 0
                }
            }
        }
        if leaf.regions.count == 1, let region = leaf.regions.first { return region.withUnsafeBytes(matches) }
        return Data(leaf).withUnsafeBytes(matches)
    }

    /// The path of leaf `index` in a `total`-leaf tree (`index < total`), walked down from the
    /// root: bit d of `goesLeft` set = at depth d from the top the path goes left; `depth` is
    /// the number of aunts a proof of that leaf carries. At most 64 levels for a UInt64 count.
    static func shape(index: UInt64, total: UInt64) -> (goesLeft: UInt64, depth: Int) {
        var goesLeft: UInt64 = 0
        var depth = 0
        var position = index
        var size = total
        while size > 1 {
            let split = MerkleTree.splitPoint(size)
            if position < split {
                goesLeft |= 1 << UInt64(depth)
                size = split
            } else {
                position -= split
                size -= split
            }
            depth += 1
        }
        return (goesLeft, depth)
    }
}

