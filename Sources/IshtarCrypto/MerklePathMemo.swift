import Foundation
import Synchronization

/// The last verified proof path of each tree, so that a proof of a nearby leaf of the same
/// tree hashes only up to where the two paths meet.
///
/// A finality provider's votes prove consecutive leaves of one randomness commitment: the
/// proof of leaf i + 1 shares every node above its meeting point with leaf i's, and hashing
/// those again was most of a vote's proof check. The answer never depends on the memo:
/// ``MerkleProof/verify(leaf:root:memo:)`` accepts through it only when the proof's own
/// siblings above the meeting point are the remembered ones and the node it computes there is
/// the remembered node, which are exactly the inputs from which a full verification would
/// hash up to the same, already verified, root. Anything else is hashed to the top.
public final class MerklePathMemo: Sendable {
    /// One verified path. A class: a lookup takes one reference instead of copying (and
    /// retaining) each buffer, and nodes and siblings share one allocation.
    final class Path: Sendable {
        let total: UInt64
        let goesLeft: UInt64
        let depth: Int
        /// The path's nodes by depth from the top, 32 bytes each: the root first, the leaf's
        /// hash last (`depth + 1` of them); then the sibling combined with the node at depth
        /// d + 1 to make the node at depth d, 32 bytes each (`depth` of them).
        let bytes: [UInt8]

        init(total: UInt64, goesLeft: UInt64, depth: Int, bytes: [UInt8]) {
            (self.total, self.goesLeft, self.depth, self.bytes) = (total, goesLeft, depth, bytes)
        }

        /// Where the siblings start in ``bytes``.
        var siblingsOffset: Int { (depth + 1) * 32 }
    }

    /// Most trees remembered; when full, the memo starts over (it only saves work).
    public let capacity: Int
    private let paths = Mutex<[Digest256: Path]>([:])

    /// An empty memo for up to `capacity` (≥ 1) trees.
    public init(capacity: Int) { self.capacity = max(1, capacity) }

    /// Number of trees remembered.
    public var count: Int { paths.withLock { $0.count } }

    func path(root: Digest256, total: UInt64) -> Path? {
        paths.withLock { p in p[root].flatMap { $0.total == total ? $0 : nil } }
    }

    func remember(_ path: Path, root: Digest256) {
        paths.withLock { p in
            if p.count >= capacity, p[root] == nil { p.removeAll(keepingCapacity: true) }
            p[root] = path
        }
    }
}

extension MerkleProof {
    /// ``verify(leaf:root:)-(Data,_)``, hashing only the part of the path that `memo` has not
    /// seen verified under `root` (see ``MerklePathMemo``); the answer is the same.
    public func verify(leaf: Data, root: Data, memo: MerklePathMemo) -> Bool {
        guard root.count == 32, total > 0, index < total, aunts.allSatisfy({ $0.count == 32 }) else { return false }
        let (goesLeft, depth) = Self.shape(index: index, total: total)
        guard depth == aunts.count else { return false }
        let key = Digest256(root)
        let known = memo.path(root: key, total: total)
        func wentLeft(_ bits: UInt64, _ d: Int) -> Bool { bits >> UInt64(d) & 1 == 1 }
        // The depth down to which this path and the remembered one are the same nodes.
        var meet = 0
        if let known {
            let shared = min(depth, known.depth)
            while meet < shared, wentLeft(goesLeft, meet) == wentLeft(known.goesLeft, meet) { meet += 1 }
        }
        // Nodes (depth + 1) then siblings (depth), 32 bytes each, in the buffer a verified
        // path is remembered in.
        var buffer = [UInt8](repeating: 0, count: (2 * depth + 1) * 32)
        let siblingsAt = (depth + 1) * 32
        let valid = buffer.withUnsafeMutableBytes { b -> Bool in
            func node(_ d: Int) -> UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(rebasing: b[d * 32 ..< d * 32 + 32]) }
            func sibling(_ d: Int) -> UnsafeMutableRawBufferPointer {
                UnsafeMutableRawBufferPointer(rebasing: b[siblingsAt + d * 32 ..< siblingsAt + d * 32 + 32])
            }
            for (k, aunt) in aunts.enumerated() {
                aunt.withUnsafeBytes { sibling(depth - 1 - k).copyMemory(from: $0) }
            }
            leaf.withUnsafeBytes { MerkleTree.leafHash(bytes: $0, into: node(depth)) }
            var pair = ShortSHA256Block(length: 65)
            pair.write(byte: 0x01, at: 0)
            func hash(up d: Int) {
                let (childAt, siblingAt) = wentLeft(goesLeft, d) ? (1, 33) : (33, 1)
                pair.write(UnsafeRawBufferPointer(node(d + 1)), at: childAt)
                pair.write(UnsafeRawBufferPointer(sibling(d)), at: siblingAt)
                pair.digest(into: node(d))
            }
            var d = depth
            while d > meet { d -= 1; hash(up: d) }
            if let known, known.bytes.withUnsafeBytes({ k in
                let knownSiblings = known.siblingsOffset
                return sameBytes(UnsafeRawBufferPointer(node(meet)), UnsafeRawBufferPointer(rebasing: k[meet * 32 ..< meet * 32 + 32]))
                    && sameBytes(UnsafeRawBufferPointer(rebasing: b[siblingsAt ..< siblingsAt + meet * 32]),
                                 UnsafeRawBufferPointer(rebasing: k[knownSiblings ..< knownSiblings + meet * 32]))
            }) {
                known.bytes.withUnsafeBytes { b.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[0 ..< meet * 32])) }
                return true
            }
            while d > 0 { d -= 1; hash(up: d) }
            return root.withUnsafeBytes { sameBytes(UnsafeRawBufferPointer(node(0)), $0) }
        }
        if valid { memo.remember(MerklePathMemo.Path(total: total, goesLeft: goesLeft, depth: depth, bytes: buffer), root: key) }
        return valid
    }
}

private func sameBytes(_ x: UnsafeRawBufferPointer, _ y: UnsafeRawBufferPointer) -> Bool {
    guard x.count == y.count else { return false }
    guard let p = x.baseAddress, let q = y.baseAddress else { return true }
    return memcmp(p, q, x.count) == 0
}
