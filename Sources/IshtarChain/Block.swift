import Foundation
import IshtarCrypto

/// One precommit signature of a commit: the validator's address and its 64-byte BIP-340
/// signature over the consensus engine's canonical vote bytes.
public struct CommitSignature: Hashable, Sendable, BinaryCodable {
    /// Validator address (32-byte x-only key).
    public var address: Data
    /// 64-byte BIP-340 signature.
    public var signature: Data

    /// A signature from its parts.
    public init(address: Data, signature: Data) {
        self.address = address
        self.signature = signature
    }

    /// `address(32) ‖ signature(64)`.
    public func encode(to w: inout BinaryWriter) {
        w.fixed(address)
        w.fixed(signature)
    }

    /// Inverse of ``encode(to:)``.
    public init(from r: inout BinaryReader) throws(CodecError) {
        address = try r.fixed(32, "commit signer")
        signature = try r.fixed(64, "commit signature")
    }
}

/// The commit certificate of a block, as the node layer copies it from the consensus
/// engine's decision: > 2/3 of the power precommitted `blockHash` at `height`/`round`.
public struct CommitInfo: Hashable, Sendable, BinaryCodable {
    /// Height of the committed block.
    public var height: UInt64
    /// Consensus round of the decision.
    public var round: UInt32
    /// Hash of the committed block.
    public var blockHash: Data
    /// Strictly ascending by address.
    public var signatures: [CommitSignature]

    /// A commit from its parts.
    public init(height: UInt64, round: UInt32, blockHash: Data, signatures: [CommitSignature]) {
        self.height = height
        self.round = round
        self.blockHash = blockHash
        self.signatures = signatures
    }

    /// `u64 height ‖ u32 round ‖ hash(32) ‖ u32 count ‖ signatures`.
    public func encode(to w: inout BinaryWriter) {
        w.u64(height)
        w.u32(round)
        w.fixed(blockHash)
        w.count(signatures.count)
        for s in signatures { s.encode(to: &w) }
    }

    /// Inverse of ``encode(to:)``.
    public init(from r: inout BinaryReader) throws(CodecError) {
        height = try r.u64("commit height")
        round = try r.u32("commit round")
        blockHash = try r.fixed(32, "commit block hash")
        let n = try r.count("commit signatures", minElementSize: 96)
        var sigs: [CommitSignature] = []
        sigs.reserveCapacity(n)
        for _ in 0..<n { sigs.append(try CommitSignature(from: &r)) }
        signatures = sigs
    }
}

/// Verifies one commit signature. The node plugs in the consensus engine's canonical vote
/// bytes; the chain frame itself does not know them.
public protocol CommitVerifier: Sendable {
    /// Whether `signature` is a valid precommit for `commit` by the validator with `publicKey`.
    func isValid(_ signature: CommitSignature, of commit: CommitInfo, chainID: String, publicKey: Data) -> Bool
}

/// A block header. Times are milliseconds since the Unix epoch (UTC).
///
/// Encoding: `u8 version (1) ‖ str chainID ‖ u64 height ‖ u64 time ‖ previousBlockHash(32)
/// ‖ transactionsRoot(32) ‖ appHash(32) ‖ proposer(32) ‖ validatorsHash(32) ‖
/// u8 present ‖ [CommitInfo]`. The block hash is SHA-256 of this encoding; the last
/// commit's signatures are inside it, as the issue asks.
public struct BlockHeader: Hashable, Sendable, BinaryCodable {
    /// The only header version.
    public static let version: UInt8 = 1

    /// The chain id from genesis.
    public var chainID: String
    /// Height, starting at the genesis `initial_height`.
    public var height: UInt64
    /// Proposer's time, ms since the epoch; strictly increasing.
    public var time: UInt64
    /// Hash of the previous block; 32 zero bytes for the first block.
    public var previousBlockHash: Data
    /// RFC-6962 Merkle root of the transactions' SHA-256 hashes.
    public var transactionsRoot: Data
    /// The app hash after executing the previous block (or genesis).
    public var appHash: Data
    /// Address of the proposer.
    public var proposer: Data
    /// Hash of the validator set that decides this block.
    public var validatorsHash: Data
    /// The commit of the previous block; `nil` only for the first block.
    public var lastCommit: CommitInfo?
    /// Root of the block's equivocation evidence (``DoubleVoteEvidence/root(_:)``); nil
    /// when it has none. A header with it is version 2 (`v1 fields ‖ 32 evidenceHash`), so
    /// blocks without evidence keep the version-1 encoding and hash.
    public var evidenceHash: Data?

    /// A header from its parts.
    public init(chainID: String, height: UInt64, time: UInt64, previousBlockHash: Data, transactionsRoot: Data,
                appHash: Data, proposer: Data, validatorsHash: Data, lastCommit: CommitInfo?) {
        self.chainID = chainID
        self.height = height
        self.time = time
        self.previousBlockHash = previousBlockHash
        self.transactionsRoot = transactionsRoot
        self.appHash = appHash
        self.proposer = proposer
        self.validatorsHash = validatorsHash
        self.lastCommit = lastCommit
    }

    /// The canonical encoding.
    public func encode(to w: inout BinaryWriter) {
        w.u8(evidenceHash == nil ? Self.version : 2)
        w.string(chainID)
        w.u64(height)
        w.u64(time)
        w.fixed(previousBlockHash)
        w.fixed(transactionsRoot)
        w.fixed(appHash)
        w.fixed(proposer)
        w.fixed(validatorsHash)
        if let lastCommit {
            w.u8(1)
            lastCommit.encode(to: &w)
        } else {
            w.u8(0)
        }
        if let evidenceHash { w.fixed(evidenceHash) }
    }

    /// Inverse of ``encode(to:)``.
    public init(from r: inout BinaryReader) throws(CodecError) {
        let v = try r.u8("header version")
        guard v == Self.version || v == 2 else { throw .unknownVersion(field: "header version", value: v) }
        chainID = try r.string("chain id", limit: Transaction.maxChainIDBytes)
        height = try r.u64("height")
        time = try r.u64("time")
        previousBlockHash = try r.fixed(32, "previous block hash")
        transactionsRoot = try r.fixed(32, "transactions root")
        appHash = try r.fixed(32, "app hash")
        proposer = try r.fixed(32, "proposer")
        validatorsHash = try r.fixed(32, "validators hash")
        lastCommit = try r.presence("last commit") ? try CommitInfo(from: &r) : nil
        evidenceHash = v == 2 ? try r.fixed(32, "evidence hash") : nil
    }

    /// SHA-256 of the canonical encoding: the 32-byte value consensus agrees on.
    public var hash: Data { sha256(encoded) }
}

/// What the next block must build on: the chain's tip as the application knows it.
public struct ChainTip: Hashable, Sendable {
    /// The chain id.
    public var chainID: String
    /// The genesis `initial_height`.
    public var initialHeight: UInt64
    /// The last committed height (`initialHeight − 1` before the first block).
    public var lastHeight: UInt64
    /// Hash of the last committed block (zeros before the first block).
    public var lastBlockHash: Data
    /// The app hash after the last committed block (or genesis).
    public var lastAppHash: Data
    /// Time of the last block (genesis time before the first block), ms since the epoch.
    public var lastBlockTime: UInt64

    /// The height the next block must have.
    public var nextHeight: UInt64 { lastHeight &+ 1 }
}

/// A block: header plus the raw transaction bytes, as proposed. Transactions stay raw so
/// that a block with an undecodable transaction is still a decodable block that can be
/// rejected with a precise reason.
public struct Block: Hashable, Sendable, BinaryCodable {
    /// The only block version.
    public static let version: UInt8 = 1

    /// The header.
    public var header: BlockHeader
    /// Encoded transactions, in execution order.
    public var transactions: [Data]
    /// Equivocation evidence the proposer included (its root is in the header). A block
    /// with evidence is version 2: `v1 encoding ‖ u32 count ‖ evidence*` (count ≥ 1).
    public var evidence: [DoubleVoteEvidence]

    /// A block from its parts.
    public init(header: BlockHeader, transactions: [Data], evidence: [DoubleVoteEvidence] = []) {
        self.header = header
        self.transactions = transactions
        self.evidence = evidence
    }

    /// The transactions with their length prefixes, plus room for the header, the last
    /// commit's signatures and any evidence.
    public var encodedSizeHint: Int {
        transactions.reduce(1024 + 80 * (header.lastCommit?.signatures.count ?? 0) + 512 * evidence.count) { $0 + 4 + $1.count }
    }

    /// The length of ``encoded``, without building it: the header and any evidence are
    /// encoded (a few hundred bytes), the transactions only counted. Executing a block needs
    /// its size for the block-size rule; encoding tens of kilobytes of transactions for a
    /// count was a measurable share of a block of finality votes.
    public var encodedSize: Int {
        var size = 1 + header.encoded.count + 4
        for t in transactions { size += 4 + t.count }
        if !evidence.isEmpty {
            size += 4
            for e in evidence { size += e.encoded.count }
        }
        return size
    }

    /// `u8 version ‖ header ‖ u32 count ‖ bytes*`.
    public func encode(to w: inout BinaryWriter) {
        w.u8(evidence.isEmpty ? Self.version : 2)
        header.encode(to: &w)
        w.count(transactions.count)
        for t in transactions { w.bytes(t) }
        if !evidence.isEmpty {
            w.count(evidence.count)
            for e in evidence { e.encode(to: &w) }
        }
    }

    /// Inverse of ``encode(to:)``.
    public init(from r: inout BinaryReader) throws(CodecError) {
        let v = try r.u8("block version")
        guard v == Self.version || v == 2 else { throw .unknownVersion(field: "block version", value: v) }
        header = try BlockHeader(from: &r)
        let n = try r.count("transactions", minElementSize: 4)
        var txs: [Data] = []
        txs.reserveCapacity(n)
        for _ in 0..<n { txs.append(try r.bytes("transaction")) }
        transactions = txs
        var ev: [DoubleVoteEvidence] = []
        if v == 2 {
            // Each entry is at least 32 + 2 × 78 bytes; an empty list must use version 1.
            let m = try r.count("evidence", minElementSize: 188)
            guard m > 0 else { throw .unknownVersion(field: "block version (2 without evidence)", value: v) }
            ev.reserveCapacity(m)
            for _ in 0..<m { ev.append(try DoubleVoteEvidence(from: &r)) }
        }
        evidence = ev
    }

    /// The block hash (the header's hash).
    public var hash: Data { header.hash }

    /// The hash of the block encoded in `bytes`, reading only its version and header (the
    /// transactions after them are neither decoded nor checked).
    public static func headerHash(ofEncoded bytes: Data) throws(CodecError) -> Data {
        var r = BinaryReader(slicing: bytes)
        let v = try r.u8("block version")
        guard v == Self.version || v == 2 else { throw .unknownVersion(field: "block version", value: v) }
        return try BlockHeader(from: &r).hash
    }

    /// Whether the body is the one the header commits to: its transactions' root and its
    /// evidence's root. Stateless; the block hash covers only the header, so without this a
    /// relay could pass another body off under a real, signed hash.
    public var bodyMatchesHeader: Bool {
        header.transactionsRoot == Block.transactionsRoot(transactions)
            && header.evidenceHash == (evidence.isEmpty ? nil : DoubleVoteEvidence.root(evidence))
    }

    /// RFC-6962 root over the SHA-256 hashes of `transactions`.
    public static func transactionsRoot(_ transactions: [Data]) -> Data {
        MerkleTree.root(leaves: transactions.map { Transaction.hash(of: $0) })
    }

    /// The root over already computed transaction hashes (`sha256` of each transaction),
    /// so a block's transactions are hashed once for the root, execution and the tx index.
    static func transactionsRoot(hashes: [Data]) -> Data {
        MerkleTree.root(leaves: hashes)
    }

    /// Builds a block whose transactions root is computed from `transactions`.
    public static func make(
        tip: ChainTip, time: UInt64, proposer: Data, validators: ChainValidatorSet,
        lastCommit: CommitInfo?, transactions: [Data], evidence: [DoubleVoteEvidence] = []
    ) -> Block {
        var header = BlockHeader(
            chainID: tip.chainID, height: tip.nextHeight, time: time, previousBlockHash: tip.lastBlockHash,
            transactionsRoot: transactionsRoot(transactions), appHash: tip.lastAppHash, proposer: proposer,
            validatorsHash: validators.hash, lastCommit: lastCommit)
        if !evidence.isEmpty { header.evidenceHash = DoubleVoteEvidence.root(evidence) }
        return Block(header: header, transactions: transactions, evidence: evidence)
    }

    /// The structural and header rules: everything about a block that can be checked
    /// without executing it. Transactions are checked separately (see
    /// ``Application/processProposal(_:)``).
    ///
    /// - Parameters:
    ///   - tip: what the block must extend.
    ///   - validators: the current validator set.
    ///   - maxBlockBytes: the consensus limit on the encoded block.
    ///   - verifier: checks commit signatures; `nil` checks their shape and power only.
    public func validate(
        tip: ChainTip, validators: ChainValidatorSet, maxBlockBytes: Int, verifier: (any CommitVerifier)?
    ) throws(BlockError) {
        try validate(tip: tip, validators: validators, maxBlockBytes: maxBlockBytes, verifier: verifier,
                     encodedSize: encodedSize, transactionHashes: transactions.map { Transaction.hash(of: $0) })
    }

    /// ``validate(tip:validators:maxBlockBytes:verifier:)`` with the block's encoded size
    /// and its transactions' hashes already computed by the caller, who needs them too.
    func validate(
        tip: ChainTip, validators: ChainValidatorSet, maxBlockBytes: Int, verifier: (any CommitVerifier)?,
        encodedSize size: Int, transactionHashes: [Data]
    ) throws(BlockError) {
        guard size <= maxBlockBytes else { throw .tooLarge(size: size, limit: maxBlockBytes) }
        let h = header
        guard h.chainID.utf8.elementsEqual(tip.chainID.utf8) else { throw .wrongChainID(expected: tip.chainID, actual: h.chainID) }
        guard h.height == tip.nextHeight else { throw .wrongHeight(expected: tip.nextHeight, actual: h.height) }
        guard h.previousBlockHash == tip.lastBlockHash else { throw .wrongPreviousHash }
        guard h.appHash == tip.lastAppHash else { throw .wrongAppHash(expected: tip.lastAppHash, actual: h.appHash) }
        guard h.transactionsRoot == Block.transactionsRoot(hashes: transactionHashes) else { throw .wrongTransactionsRoot }
        guard h.validatorsHash == validators.hash else { throw .wrongValidatorsHash }
        guard validators.validator(address: h.proposer) != nil else { throw .unknownProposer(h.proposer) }
        try validateEvidence(tip: tip, validators: validators, verifier: verifier)
        let isFirst = h.height == tip.initialHeight
        // The first block may carry the genesis time itself; later ones must move forward.
        guard isFirst ? h.time >= tip.lastBlockTime : h.time > tip.lastBlockTime else {
            throw .timeNotMonotonic(previous: tip.lastBlockTime, actual: h.time)
        }
        if isFirst {
            guard h.lastCommit == nil else { throw .unexpectedLastCommit }
            return
        }
        guard let commit = h.lastCommit else { throw .missingLastCommit }
        guard commit.height == tip.lastHeight else {
            throw .lastCommitMismatch("commit is for height \(commit.height), expected \(tip.lastHeight)")
        }
        guard commit.blockHash == tip.lastBlockHash else {
            throw .lastCommitMismatch("commit is for another block than the previous one")
        }
        var signed: UInt64 = 0
        var previous: Data?
        for s in commit.signatures {
            if let previous, !previous.lexicographicallyPrecedes(s.address) { throw .unsortedCommitSignatures }
            previous = s.address
            guard let v = validators.validator(address: s.address) else { throw .unknownCommitSigner(s.address) }
            if let verifier, !verifier.isValid(s, of: commit, chainID: tip.chainID, publicKey: v.publicKey) {
                throw .invalidCommitSignature(s.address)
            }
            signed += v.power
        }
        guard validators.isSupermajority(signed) else {
            throw .insufficientCommitPower(signed: signed, total: validators.totalPower)
        }
    }
}
