import Crypto
import Foundation
import IshtarCrypto

/// BIP-341 constants and hashes.
public enum Taproot {
    /// The tapscript leaf version (BIP-342).
    public static let tapscriptLeafVersion: UInt8 = 0xc0

    /// The most levels a control block can prove (BIP-341).
    public static let maxPathDepth = 128

    /// The provably unspendable internal key H (x = SHA256 of the uncompressed generator),
    /// which the staking outputs use so that only script paths can spend them (PROTOCOL §1).
    public static let unspendableInternalKey: Schnorr.PublicKey = {
        let x: [UInt8] = [
            0x50, 0x92, 0x9b, 0x74, 0xc1, 0xa0, 0x49, 0x54, 0xb7, 0x8b, 0x4b, 0x60, 0x35, 0xe9, 0x7a, 0x5e,
            0x07, 0x8a, 0x5a, 0x0f, 0x28, 0xec, 0x96, 0xd5, 0x47, 0xbf, 0xee, 0x9a, 0xce, 0x80, 0x3a, 0xc0,
        ]
        do {
            return try Schnorr.PublicKey(rawRepresentation: x)
        } catch {
            // A constant that is a known curve point; the tests check it.
            preconditionFailure("BIP-341 NUMS point failed to parse")
        }
    }()

    /// `H_TapLeaf(version ‖ compact_size(len) ‖ script)`.
    public static func leafHash(script: Script, version: UInt8 = tapscriptLeafVersion) -> Data {
        var hasher = TaggedHash.hasher(tag: "TapLeaf")
        var prefix = Data([version])
        prefix.appendCompactSize(UInt64(script.bytes.count))
        hasher.update(data: prefix)
        hasher.update(data: script.bytes)
        return Data(hasher.finalize())
    }

    /// `H_TapBranch(min(a, b) ‖ max(a, b))`: children sorted, so a proof need not say which side.
    public static func branchHash(_ a: Data, _ b: Data) -> Data {
        var hasher = TaggedHash.hasher(tag: "TapBranch")
        if b.lexicographicallyPrecedes(a) {
            hasher.update(data: b)
            hasher.update(data: a)
        } else {
            hasher.update(data: a)
            hasher.update(data: b)
        }
        return Data(hasher.finalize())
    }

    /// The key-path spend witness: the signature, with the hash type byte appended unless it is
    /// SIGHASH_DEFAULT.
    public static func keyPathWitness(signature: Schnorr.Signature, hashType: SighashType = .default) -> [Data] {
        [signatureBytes(signature, hashType: hashType)]
    }

    /// The script-path spend witness: `stack` (bottom item first), then the leaf script, then
    /// the control block.
    public static func scriptPathWitness(stack: [Data], leaf: TapLeaf, controlBlock: ControlBlock) -> [Data] {
        stack + [leaf.script.bytes, controlBlock.serialized]
    }

    /// A signature as it goes on the witness stack: 64 bytes, or 65 with a non-default hash type.
    public static func signatureBytes(_ signature: Schnorr.Signature, hashType: SighashType) -> Data {
        var bytes = signature.rawRepresentation
        if hashType != .default { bytes.append(hashType.rawValue) }
        return bytes
    }
}

/// A tapscript leaf: a script and its leaf version.
public struct TapLeaf: Hashable, Sendable {
    /// The leaf script.
    public let script: Script
    /// The leaf version, 0xc0 for tapscript; always even.
    public let version: UInt8

    /// A tapscript leaf (version 0xc0).
    public init(script: Script) {
        self.script = script
        self.version = Taproot.tapscriptLeafVersion
    }

    /// A leaf with another version; it must be even (the low bit holds the output key parity
    /// in control blocks) and not 0x50, which would read as an annex.
    public init(script: Script, version: UInt8) throws(TaprootError) {
        guard version & 1 == 0, version != 0x50 else { throw .invalidLeafVersion(version) }
        self.script = script
        self.version = version
    }

    /// `H_TapLeaf(version ‖ compact_size(len) ‖ script)`.
    public var hash: Data { Taproot.leafHash(script: script, version: version) }
}

/// A taproot script tree of any shape.
public indirect enum TapTree: Hashable, Sendable {
    /// A single leaf.
    case leaf(TapLeaf)
    /// An inner node; the order of children does not affect the hash.
    case branch(TapTree, TapTree)

    /// A tree of one tapscript leaf.
    public static func leaf(_ script: Script) -> TapTree { .leaf(TapLeaf(script: script)) }

    /// The node hash; for the root, the merkle root committed in the output key.
    public var hash: Data {
        switch self {
        case .leaf(let leaf): return leaf.hash
        case .branch(let left, let right): return Taproot.branchHash(left.hash, right.hash)
        }
    }

    /// The merkle root (the root node's hash).
    public var merkleRoot: Data { hash }

    /// The leaves, depth first, left to right.
    public var leaves: [TapLeaf] { leafPaths().map(\.leaf) }

    /// The depth of the deepest leaf (0 for a single leaf).
    public var depth: Int {
        switch self {
        case .leaf: return 0
        case .branch(let left, let right): return 1 + max(left.depth, right.depth)
        }
    }

    /// Every leaf, depth first and left to right, with its merkle path: the sibling hashes from
    /// the leaf up to the root, as a control block lists them.
    public func leafPaths() -> [(leaf: TapLeaf, path: [Data])] {
        switch self {
        case .leaf(let leaf):
            return [(leaf, [])]
        case .branch(let left, let right):
            let leftHash = left.hash
            let rightHash = right.hash
            return left.leafPaths().map { ($0.leaf, $0.path + [rightHash]) }
                + right.leafPaths().map { ($0.leaf, $0.path + [leftHash]) }
        }
    }

    /// The merkle path of `leaf` (its first occurrence), or nil if it is not in the tree.
    public func path(for leaf: TapLeaf) -> [Data]? {
        leafPaths().first { $0.leaf == leaf }?.path
    }
}

/// A taproot output: internal key, optional script tree, and the tweaked output key.
public struct TaprootOutput: Hashable, Sendable {
    /// The internal key P.
    public let internalKey: Schnorr.PublicKey
    /// The script tree, or nil for a key-path-only output.
    public let tree: TapTree?
    /// The output key Q = P + H_TapTweak(P ‖ root)·G.
    public let outputKey: Schnorr.PublicKey
    /// Whether Q has odd y (the low bit of every control block's first byte).
    public let outputKeyParityOdd: Bool

    /// Tweaks `internalKey` with the merkle root of `tree` (no script path if nil).
    public init(internalKey: Schnorr.PublicKey, tree: TapTree?) throws(TaprootError) {
        if let tree, tree.depth > Taproot.maxPathDepth { throw .treeTooDeep(depth: tree.depth) }
        self.internalKey = internalKey
        self.tree = tree
        do {
            (outputKey, outputKeyParityOdd) = try internalKey.tapTweaked(merkleRoot: tree?.merkleRoot)
        } catch {
            throw .crypto(error)
        }
    }

    /// The merkle root, or nil without a script tree.
    public var merkleRoot: Data? { tree?.merkleRoot }

    /// `OP_1 <output key>`.
    public var scriptPubKey: Script { .p2tr(outputKey: outputKey) }

    /// The bech32m address on `network`.
    public func address(network: Network) -> SegwitAddress {
        // Version 1 with a 32-byte program is always a valid address.
        SegwitAddress(uncheckedVersion: 1, program: outputKey.rawRepresentation, hrp: network.bech32HRP)
    }

    /// The control block proving `leaf` is in this output's tree.
    public func controlBlock(for leaf: TapLeaf) throws(TaprootError) -> ControlBlock {
        guard let path = tree?.path(for: leaf) else { throw .leafNotInTree }
        return try ControlBlock(
            leafVersion: leaf.version, outputKeyParityOdd: outputKeyParityOdd, internalKey: internalKey, path: path)
    }

    /// The script-path witness spending through `leaf`: `stack` (bottom first), script, control block.
    public func scriptPathWitness(leaf: TapLeaf, stack: [Data]) throws(TaprootError) -> [Data] {
        Taproot.scriptPathWitness(stack: stack, leaf: leaf, controlBlock: try controlBlock(for: leaf))
    }
}

/// A BIP-341 control block: `(leafVersion | parity) ‖ internal key ‖ path`.
public struct ControlBlock: Hashable, Sendable {
    /// The leaf version of the script being spent.
    public let leafVersion: UInt8
    /// Whether the output key has odd y.
    public let outputKeyParityOdd: Bool
    /// The internal key P.
    public let internalKey: Schnorr.PublicKey
    /// The sibling hashes from the leaf up to the root, 32 bytes each.
    public let path: [Data]

    /// A control block from its parts.
    public init(leafVersion: UInt8, outputKeyParityOdd: Bool, internalKey: Schnorr.PublicKey, path: [Data]) throws(TaprootError) {
        guard leafVersion & 1 == 0, leafVersion != 0x50 else { throw .invalidLeafVersion(leafVersion) }
        guard path.count <= Taproot.maxPathDepth else { throw .treeTooDeep(depth: path.count) }
        guard path.allSatisfy({ $0.count == 32 }) else { throw .invalidControlBlockLength(33 + 32 * path.count) }
        self.leafVersion = leafVersion
        self.outputKeyParityOdd = outputKeyParityOdd
        self.internalKey = internalKey
        self.path = path
    }

    /// Parses a control block; its length must be 33 + 32·m with m ≤ 128 and its internal key
    /// a valid x coordinate.
    public init(serialized bytes: some DataProtocol) throws(TaprootError) {
        let raw = [UInt8](bytes)
        guard raw.count >= 33, (raw.count - 33) % 32 == 0, (raw.count - 33) / 32 <= Taproot.maxPathDepth else {
            throw .invalidControlBlockLength(raw.count)
        }
        let key: Schnorr.PublicKey
        do {
            key = try Schnorr.PublicKey(rawRepresentation: raw[1..<33])
        } catch {
            throw .invalidInternalKey
        }
        let path = stride(from: 33, to: raw.count, by: 32).map { Data(raw[$0..<$0 + 32]) }
        try self.init(leafVersion: raw[0] & 0xfe, outputKeyParityOdd: raw[0] & 1 == 1, internalKey: key, path: path)
    }

    /// The encoding.
    public var serialized: Data {
        var out = Data([leafVersion | (outputKeyParityOdd ? 1 : 0)])
        out.append(internalKey.rawRepresentation)
        for node in path { out.append(node) }
        return out
    }

    /// The merkle root implied by spending `script` with this control block.
    public func merkleRoot(for script: Script) -> Data {
        var node = Taproot.leafHash(script: script, version: leafVersion)
        for sibling in path { node = Taproot.branchHash(node, sibling) }
        return node
    }

    /// BIP-341 script-path verification: `script` with this control block commits to
    /// `outputKey` (x coordinate and parity).
    public func verify(script: Script, outputKey: Schnorr.PublicKey) -> Bool {
        guard let (computed, parityOdd) = try? internalKey.tapTweaked(merkleRoot: merkleRoot(for: script)) else {
            return false
        }
        return computed == outputKey && parityOdd == outputKeyParityOdd
    }
}
