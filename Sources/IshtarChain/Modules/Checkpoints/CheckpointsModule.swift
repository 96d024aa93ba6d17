import Foundation
import IshtarBitcoin
import IshtarCrypto

/// Module `"checkpoints"`: epochs and their Bitcoin checkpoints (PROTOCOL §5, §6).
///
/// **Epochs.** Epoch e ≥ 1 is heights `initialHeight + (e−1)·N … initialHeight + e·N − 1`
/// (N = `epoch_length`, `initialHeight` = the genesis `initial_height`; with the defaults,
/// epoch 1 is heights 1…10). The end-block hook of an epoch's last block records checkpoint e
/// as ACCUMULATING with that block's hash (``BlockInfo/hash``) and a snapshot of the validator
/// set in force, and emits `checkpoints.epoch_ended` {`epoch` (decimal), `last_block_hash`
/// (hex), `height`}. The node reacts to that event after commit by having each validator send
/// its signature.
///
/// **Signatures.** A validator signs, with BIP-340, the 40-byte message
/// `BE8(epoch) ‖ lastBlockHash` itself (PROTOCOL §5; ``checkpointSigningMessage(epoch:lastBlockHash:)``;
/// BIP-340 takes messages of any length and hashes them into its challenge). The signature travels in
/// `checkpoints/AddCheckpointSignature` from ANY account: the signature authenticates the
/// validator, so a proposer cannot forge one, and since it is an ordinary gossiped
/// transaction no single proposer can keep it out forever. Rejected: unknown epoch, a
/// checkpoint already sealed, a key not in the epoch's snapshot, a duplicate, a signature
/// that does not verify. When the signers' power × 3 > the snapshot's total × 2 the
/// checkpoint becomes SEALED and `checkpoints.sealed` is emitted. **The quorum certificate is
/// frozen at sealing**: later signatures are rejected (`already-sealed`), because SHA256(QC)
/// is what goes to Bitcoin and must not change under a relayer's feet.
///
/// **QC.** ``QuorumCertificate``: bitmap over the snapshot in address order (bit i = validator
/// i, LSB first; 13 bytes, the Bitcoin layout) ‖ the signatures of the set bits ascending;
/// SHA256 of exactly those bytes is part 2's QC hash. A snapshot of more than 104 validators
/// cannot be written to Bitcoin (``bitcoinCheckpoint(epoch:submitterID:in:)`` refuses it).
///
/// **Bitcoin.** `checkpoints/InsertBTCSpvProof` carries the two transactions with Merkle
/// proofs. Checked in this order, all before any write: each block is known to the light
/// client and on its main chain, each proof leads to the block's Merkle root, each
/// transaction has exactly one OP_RETURN output, the pair decodes as a ``BitcoinCheckpoint``
/// with this chain's tag and part 2 links to part 1, transaction 2 spends a non-OP_RETURN
/// output of transaction 1 and is not in a lower block, the epoch has a checkpoint that is
/// sealed and not finalized, whose last block hash, bitmap and QC hash part 1/2 carry, and the
/// pair is new in those blocks (the same pair re-mined in other blocks after a reorg is a new
/// submission). Up to ``maxSubmissionsPerEpoch`` submissions per epoch are kept (all listed
/// by the query); at that bound a new one is refused unless some kept ones have left
/// Bitcoin's main chain, which are then deleted (`checkpoints.submissions_pruned`).
///
/// **Status.** Re-evaluated in every end-block hook for the epochs in the active index (those
/// with a submission and not FINALIZED — never all epochs): a submission counts while both its
/// blocks are on the light client's main chain, with depth = min of the two depths (tip height
/// − block height); the best (deepest) counting submission gives SUBMITTED, CONFIRMED (depth ≥
/// k) or FINALIZED (depth ≥ w); none → back to SEALED (a reorg removed it). Forward moves step
/// through each status (one `checkpoints.status_changed` {`epoch`, `from`, `to`} each); backward
/// moves go straight to the new status. **FINALIZED is terminal**: w is the reorg bound the
/// chain trusts, as in Babylon. The last finalized epoch is the highest e such that every
/// epoch 1…e is FINALIZED (what a timestamp user needs: everything up to e is BTC-final).
///
/// State (keys under `checkpoints/`):
/// - `params` → ``CheckpointsParams``
/// - `ckpt/BE8(epoch)` → ``EpochCheckpoint`` (snapshot, signatures, status, history)
/// - `sub/BE8(epoch)‖SHA256(txid1‖txid2‖block1‖block2)` → ``CheckpointSubmission``
/// - `act/BE8(epoch)` → marker: epochs with a submission, not FINALIZED
/// - `lastfin` → BE8 last finalized epoch
///
/// Queries (`/modules/checkpoints/…`, canonical JSON; 64-bit numbers as decimal strings,
/// Bitcoin hashes in display order, Ishtar hashes and keys in hex): `epoch/<n>`, `status/<n>`,
/// `last-finalized`, `submissions/<n>`, `params`, `current-epoch`.
public struct CheckpointsModule: Module {
    /// `"checkpoints"`.
    public static let moduleName = "checkpoints"
    /// Event of an epoch's last block.
    public static let epochEndedEvent = "checkpoints.epoch_ended"
    /// Event of an accepted signature.
    public static let signatureAddedEvent = "checkpoints.signature_added"
    /// Event of a checkpoint reaching > 2/3 power.
    public static let sealedEvent = "checkpoints.sealed"
    /// Event of an accepted Bitcoin submission.
    public static let submissionAddedEvent = "checkpoints.submission_added"
    /// Event of submissions no longer on Bitcoin's main chain deleted to make room for a new
    /// one (`epoch`, `count`).
    public static let submissionsPrunedEvent = "checkpoints.submissions_pruned"
    /// Most submissions kept per epoch (see ``CheckpointsError/tooManySubmissions(epoch:limit:)``).
    /// One on the main chain is enough; honest relayers rarely send more than a few.
    public static let maxSubmissionsPerEpoch = 32
    /// Event of every status change after sealing.
    public static let statusChangedEvent = "checkpoints.status_changed"

    /// The module.
    public init() {}

    /// `"checkpoints"`.
    public var name: String { Self.moduleName }
    /// `AddCheckpointSignature`, `InsertBTCSpvProof`.
    public var messageTypes: [String] { [AddCheckpointSignature.type, InsertBTCSpvProof.type] }

    // MARK: - Keys

    static let paramsKey = Data("params".utf8)
    static let lastFinalizedKey = Data("lastfin".utf8)
    static let checkpointPrefix = Data("ckpt/".utf8)
    static let submissionPrefix = Data("sub/".utf8)
    static let activePrefix = Data("act/".utf8)
    /// Present while the active index (`act/…`) may hold an epoch: the end-block hook reads
    /// this one key instead of opening an iterator over an index that is nearly always empty.
    static let activeMarkerKey = Data("active".utf8)

    static func be8(_ v: UInt64) -> Data { Data(bigEndian8: v) }
    static func readBE8(_ d: some Collection<UInt8>) -> UInt64 { d.prefix(8).reduce(0) { $0 << 8 | UInt64($1) } }
    static func checkpointKey(_ epoch: UInt64) -> Data { checkpointPrefix + be8(epoch) }
    static func submissionsPrefix(_ epoch: UInt64) -> Data { submissionPrefix + be8(epoch) }
    /// A submission is identified by its transactions AND blocks: after a Bitcoin reorg the
    /// same transactions are usually mined again in new blocks, and that proof must be accepted.
    static func submissionKey(_ epoch: UInt64, txids: [Data], blocks: [Data]) -> Data {
        submissionsPrefix(epoch) + BitcoinHash.sha256(txids[0] + txids[1] + blocks[0] + blocks[1])
    }
    static func activeKey(_ epoch: UInt64) -> Data { activePrefix + be8(epoch) }

    // MARK: - Signing (shared with the node and the tests)

    /// What a validator signs for epoch `epoch` with BIP-340: the 40 bytes
    /// `BE8(epoch) ‖ lastBlockHash`, as PROTOCOL §5 writes it (not a hash of them).
    public static func checkpointSigningMessage(epoch: UInt64, lastBlockHash: Data) -> Data {
        be8(epoch) + lastBlockHash
    }

    /// A ready `AddCheckpointSignature` message: `validatorKey` signs the checkpoint message of
    /// `epoch` (deterministic BIP-340 with zero auxiliary randomness).
    public static func signatureMessage(epoch: UInt64, lastBlockHash: Data,
                                        validatorKey: Schnorr.PrivateKey) throws(IshtarCrypto.CryptoError) -> Message {
        let signed = checkpointSigningMessage(epoch: epoch, lastBlockHash: lastBlockHash)
        let signature = try validatorKey.signature(for: signed, auxiliaryRandomness: Data(count: 32))
        return AddCheckpointSignature(epoch: epoch, validator: validatorKey.publicKey.rawRepresentation,
                                      signature: signature.rawRepresentation).message
    }

    static func verify(signature: Data, validator: Data, message: Data) -> Bool {
        guard let key = try? Schnorr.PublicKey(rawRepresentation: validator),
              let sig = try? Schnorr.Signature(rawRepresentation: signature) else { return false }
        return key.isValidSignature(sig, for: message)
    }

    /// The conventional 20-byte submitter id of an account: the first 20 bytes of
    /// SHA256(account key). Part 1 carries it; the chain records it but does not require it to
    /// match the reporting account (anyone may relay a proof).
    public static func submitterID(account: Data) -> Data { Data(BitcoinHash.sha256(account).prefix(20)) }

    // MARK: - Reading state (public API)

    /// The parameters (genesis values).
    public static func params(in store: ModuleStore) throws(ExecutionError) -> CheckpointsParams {
        guard let p = try store.read(CheckpointsParams.self, at: paramsKey) else {
            throw .rule(CheckpointsError.notConfigured)
        }
        return p
    }

    /// The checkpoint of `epoch`, if the epoch has ended.
    public static func checkpoint(epoch: UInt64, in store: ModuleStore) throws(ExecutionError) -> EpochCheckpoint? {
        try store.read(EpochCheckpoint.self, at: checkpointKey(epoch))
    }

    /// The status of `epoch`'s checkpoint, if the epoch has ended.
    public static func status(epoch: UInt64, in store: ModuleStore) throws(ExecutionError) -> CheckpointStatus? {
        try checkpoint(epoch: epoch, in: store)?.status
    }

    /// The highest epoch e such that every epoch 1…e is FINALIZED (0 if none).
    public static func lastFinalizedEpoch(in store: ModuleStore) throws(ExecutionError) -> UInt64 {
        guard let raw = try store.get(lastFinalizedKey) else { return 0 }
        return readBE8(raw)
    }

    /// Every submission of `epoch`, in key order (SHA256 of txids and blocks).
    public static func submissions(epoch: UInt64, in store: ModuleStore) throws(ExecutionError) -> [CheckpointSubmission] {
        var out: [CheckpointSubmission] = []
        for row in try store.scan(prefix: submissionsPrefix(epoch)) {
            do { out.append(try CheckpointSubmission(decoding: row.value)) } catch {
                throw .fatal(.corruptState("checkpoints/sub: \(error)"))
            }
        }
        return out
    }

    /// The epoch that holds `height` (0 before the first block).
    public static func epoch(ofHeight height: UInt64, in store: ModuleStore) throws(ExecutionError) -> UInt64 {
        try params(in: store).epoch(ofHeight: height)
    }

    /// The Bitcoin checkpoint of a sealed (or later) epoch, for a relayer to write to Bitcoin:
    /// part 1 = tag ‖ 0x00 ‖ BE8(epoch) ‖ lastBlockHash ‖ bitmap ‖ `submitterID` (20 bytes),
    /// part 2 = tag ‖ 0x10 ‖ SHA256(QC) ‖ 16 zero bytes ‖ link (see ``QuorumCertificate``).
    public static func bitcoinCheckpoint(epoch: UInt64, submitterID: Data,
                                         in store: ModuleStore) throws(ExecutionError) -> BitcoinCheckpoint {
        let params = try params(in: store)
        guard let cp = try checkpoint(epoch: epoch, in: store) else { throw .rule(CheckpointsError.unknownEpoch(epoch)) }
        guard cp.status >= .sealed else { throw .rule(CheckpointsError.checkpointNotSealed(epoch: epoch)) }
        let qc = cp.quorumCertificate
        do {
            return try BitcoinCheckpoint(tag: params.tag, epoch: epoch, lastBlockHash: cp.lastBlockHash, bitmap: qc.bitmap,
                                         submitterID: submitterID, quorumCertificateHash: qc.hash)
        } catch {
            throw .rule(CheckpointsError.malformedOpReturn(error))
        }
    }

    /// The two OP_RETURN payloads (78 and 63 bytes) of ``bitcoinCheckpoint(epoch:submitterID:in:)``.
    public static func bitcoinPayloads(epoch: UInt64, submitter: Data,
                                       in store: ModuleStore) throws(ExecutionError) -> (part1: Data, part2: Data) {
        let cp = try bitcoinCheckpoint(epoch: epoch, submitterID: submitter, in: store)
        return (cp.part1, cp.part2)
    }

    static func btcTipHeight(_ context: ExecutionContext) throws(ExecutionError) -> UInt64 {
        try BTCLightClientModule.tip(in: context.store(of: BTCLightClientModule.moduleName))?.height ?? 0
    }

    static func display(_ hash: Data) -> String { Data(hash.reversed()).hexString }

    // MARK: - Genesis

    /// Validates `modules.checkpoints` (see ``CheckpointsParams``) and stores the parameters.
    public func initGenesis(_ context: GenesisContext) throws(ExecutionError) {
        if let raw = context.params {
            let object = (try? JSONSerialization.jsonObject(with: raw)) as? [String: Any] ?? [:]
            let allowed: Set<String> = ["epoch_length", "btc_confirmation_depth", "btc_finalization_timeout", "checkpoint_tag"]
            if let unknown = object.keys.sorted().first(where: { !allowed.contains($0) }) {
                throw .rule(ParamsError.malformed(module: name, reason: "unknown field \(unknown)"))
            }
        }
        let json = try context.decodeParams(CheckpointsParamsJSON.self, defaults: CheckpointsParamsJSON())
        var params = CheckpointsParams(initialHeight: context.genesis.initialHeight)
        params.epochLength = json.epochLength ?? params.epochLength
        params.confirmationDepth = json.btcConfirmationDepth ?? params.confirmationDepth
        params.finalizationTimeout = json.btcFinalizationTimeout ?? params.finalizationTimeout
        if let hex = json.checkpointTag {
            guard let tag = try? Data(hex: hex), tag.count == 4 else {
                throw .rule(ParamsError.outOfRange(module: name, name: "checkpoint_tag", reason: "must be 8 hex digits (4 bytes)"))
            }
            params.tag = tag
        }
        guard params.epochLength >= 1 else {
            throw .rule(ParamsError.outOfRange(module: name, name: "epoch_length", reason: "must be ≥ 1"))
        }
        guard params.confirmationDepth >= 1 else {
            throw .rule(ParamsError.outOfRange(module: name, name: "btc_confirmation_depth", reason: "must be ≥ 1"))
        }
        guard params.finalizationTimeout > params.confirmationDepth else {
            throw .rule(ParamsError.outOfRange(module: name, name: "btc_finalization_timeout",
                                               reason: "must be > btc_confirmation_depth (\(params.confirmationDepth))"))
        }
        // Babylon's minimum unbonding time: an unbonding stake must stay slashable until the
        // checkpoints of the blocks it voted in are FINALIZED (w deep on Bitcoin); a shorter
        // unbonding time lets a staker walk away while a conflicting history could still be
        // checkpointed — double votes its provider cast would go unpunished.
        if let (_, staking) = try? StakingModule.currentParameters(in: context.store(of: StakingModule.moduleName)),
           UInt64(staking.btc.unbondingTime) <= params.finalizationTimeout {
            throw .rule(ParamsError.outOfRange(
                module: name, name: "btc_finalization_timeout",
                reason: "\(params.finalizationTimeout) is not below staking's unbonding_time_blocks (\(staking.btc.unbondingTime)); "
                    + "an unbonding stake must stay slashable until its checkpoints are final"))
        }
        // The Bitcoin checkpoint's bitmap has 13 bytes, one bit per validator: with more
        // validators no epoch could be written to Bitcoin, so none would ever be finalized.
        let maxValidators = 8 * BitcoinCheckpoint.bitmapLength
        guard context.genesis.validators.validators.count <= maxValidators else {
            throw .rule(ParamsError.outOfRange(module: name, name: "validators",
                                               reason: "\(context.genesis.validators.validators.count) validators; a Bitcoin checkpoint's bitmap holds at most \(maxValidators)"))
        }
        context.store.write(params, at: Self.paramsKey)
    }

    // MARK: - Messages

    /// Decodes the payload (canonically, Bitcoin transactions included).
    public func validateMessage(_ message: Message, sender: Data) throws(ExecutionError) {
        switch message.type {
        case AddCheckpointSignature.type: _ = try Self.decode(AddCheckpointSignature.self, message)
        case InsertBTCSpvProof.type: _ = try Self.decode(InsertBTCSpvProof.self, message)
        default: throw .rule(CheckpointsError.unknownMessage(message.type))
        }
    }

    static func decode<T: BinaryCodable>(_ type: T.Type, _ message: Message) throws(ExecutionError) -> T {
        do {
            return try T(decoding: message.payload)
        } catch {
            throw .rule(CheckpointsError.malformedMessage(type: message.type, error))
        }
    }

    /// Executes one message: every rule first, then the writes.
    public func deliverMessage(_ message: Message, _ context: TxContext) throws(ExecutionError) {
        switch message.type {
        case AddCheckpointSignature.type: try addSignature(try Self.decode(AddCheckpointSignature.self, message), context)
        case InsertBTCSpvProof.type: try insertProof(try Self.decode(InsertBTCSpvProof.self, message), context)
        default: throw .rule(CheckpointsError.unknownMessage(message.type))
        }
    }

    /// Index of `address` in the (address-sorted) snapshot.
    static func index(of address: Data, in set: ChainValidatorSet) -> Int? {
        let list = set.validators
        var lo = 0
        var hi = list.count
        while lo < hi {
            let mid = (lo + hi) / 2
            let k = list[mid].publicKey
            if k == address { return mid }
            if k.lexicographicallyPrecedes(address) { lo = mid + 1 } else { hi = mid }
        }
        return nil
    }

    func addSignature(_ m: AddCheckpointSignature, _ context: TxContext) throws(ExecutionError) {
        let store = context.store
        _ = try Self.params(in: store)
        guard var cp = try Self.checkpoint(epoch: m.epoch, in: store) else {
            throw .rule(CheckpointsError.unknownEpoch(m.epoch))
        }
        guard cp.status == .accumulating else { throw .rule(CheckpointsError.alreadySealed(epoch: m.epoch, status: cp.status)) }
        guard let index = Self.index(of: m.validator, in: cp.validators) else {
            throw .rule(CheckpointsError.notAValidator(epoch: m.epoch, validator: m.validator))
        }
        guard !cp.signatures.contains(where: { $0.index == UInt32(index) }) else {
            throw .rule(CheckpointsError.duplicateSignature(epoch: m.epoch, validator: m.validator))
        }
        let signed = Self.checkpointSigningMessage(epoch: m.epoch, lastBlockHash: cp.lastBlockHash)
        guard Self.verify(signature: m.signature, validator: m.validator, message: signed) else {
            throw .rule(CheckpointsError.invalidSignature(epoch: m.epoch, validator: m.validator))
        }
        let tip = try Self.btcTipHeight(context)
        // Every rule holds; from here on only writes.
        let power = cp.validators.validators[index].power
        let position = cp.signatures.firstIndex { $0.index > UInt32(index) } ?? cp.signatures.count
        cp.signatures.insert(CheckpointSignature(index: UInt32(index), signature: m.signature), at: position)
        cp.signedPower += power // bounded: the snapshot's total is ≤ maxTotalPower
        context.emit(Event(type: Self.signatureAddedEvent, attributes: [
            EventAttribute("epoch", String(m.epoch)), EventAttribute("validator", m.validator.hexString),
            EventAttribute("power", String(power)), EventAttribute("signed_power", String(cp.signedPower)),
        ]))
        if cp.validators.isSupermajority(cp.signedPower) {
            cp.status = .sealed
            cp.history.append(CheckpointTransition(status: .sealed, height: context.block.height, btcTipHeight: tip))
            context.emit(Event(type: Self.sealedEvent, attributes: [
                EventAttribute("epoch", String(m.epoch)), EventAttribute("last_block_hash", cp.lastBlockHash.hexString),
                EventAttribute("signed_power", String(cp.signedPower)),
                EventAttribute("total_power", String(cp.validators.totalPower)),
                EventAttribute("qc_hash", cp.quorumCertificate.hash.hexString),
            ]))
        }
        store.write(cp, at: Self.checkpointKey(m.epoch))
    }

    /// Where one part's transaction is: block hash and height on the light client.
    struct LocatedPart {
        var blockHash: Data
        var height: UInt64
        var opReturn: Script
        var opReturnIndex: Int
    }

    static func locate(_ part: CheckpointTransactionProof, number: Int, lc: ModuleStore) throws(ExecutionError) -> LocatedPart {
        let hash = part.inclusion.blockHash
        guard let header = try BTCLightClientModule.header(hash: hash, in: lc) else {
            throw .rule(CheckpointsError.unknownBTCHeader(part: number, hash: display(hash)))
        }
        guard try BTCLightClientModule.isOnMainChain(hash: hash, in: lc) else {
            throw .rule(CheckpointsError.headerNotOnMainChain(part: number, hash: display(hash)))
        }
        do {
            try part.inclusion.proof.verify(transaction: part.transaction, merkleRoot: header.header.merkleRoot)
        } catch {
            throw .rule(CheckpointsError.invalidInclusionProof(part: number, reason: "\(error)"))
        }
        let returns = part.transaction.outputs.indices.filter {
            part.transaction.outputs[$0].scriptPubKey.bytes.first == Opcode.return.rawValue
        }
        guard returns.count == 1, let only = returns.first else {
            throw .rule(CheckpointsError.notOneOpReturn(part: number, count: returns.count))
        }
        return LocatedPart(blockHash: hash, height: header.height,
                           opReturn: part.transaction.outputs[only].scriptPubKey, opReturnIndex: only)
    }

    func insertProof(_ m: InsertBTCSpvProof, _ context: TxContext) throws(ExecutionError) {
        let store = context.store
        let params = try Self.params(in: store)
        let lc = context.store(of: BTCLightClientModule.moduleName)
        let p1 = try Self.locate(m.part1, number: 1, lc: lc)
        let p2 = try Self.locate(m.part2, number: 2, lc: lc)
        let decoded: BitcoinCheckpoint
        do {
            decoded = try BitcoinCheckpoint(part1Script: p1.opReturn, part2Script: p2.opReturn, tag: params.tag)
        } catch {
            switch error {
            case let .wrongTag(expected, actual): throw .rule(CheckpointsError.wrongTag(expected: expected, actual: actual))
            case .partsDoNotMatch: throw .rule(CheckpointsError.partsDoNotMatch)
            default: throw .rule(CheckpointsError.malformedOpReturn(error))
            }
        }
        let tx1 = m.part1.transaction
        let txid1 = tx1.txid
        let spendsTx1 = m.part2.transaction.inputs.contains {
            $0.previousOutput.txid == txid1 && Int($0.previousOutput.index) < tx1.outputs.count
                && Int($0.previousOutput.index) != p1.opReturnIndex
        }
        guard spendsTx1 else { throw .rule(CheckpointsError.tx2DoesNotSpendTx1) }
        guard p2.height >= p1.height else { throw .rule(CheckpointsError.tx2BeforeTx1(height1: p1.height, height2: p2.height)) }
        let epoch = decoded.epoch
        guard let cp = try Self.checkpoint(epoch: epoch, in: store) else { throw .rule(CheckpointsError.unknownEpoch(epoch)) }
        guard cp.status >= .sealed else { throw .rule(CheckpointsError.checkpointNotSealed(epoch: epoch)) }
        guard cp.status < .finalized else { throw .rule(CheckpointsError.checkpointFinalized(epoch: epoch)) }
        guard decoded.lastBlockHash == cp.lastBlockHash else { throw .rule(CheckpointsError.lastBlockHashMismatch(epoch: epoch)) }
        let qc = cp.quorumCertificate
        guard decoded.bitmap == qc.bitmap else { throw .rule(CheckpointsError.bitmapMismatch(epoch: epoch)) }
        guard decoded.quorumCertificateHash == qc.hash else { throw .rule(CheckpointsError.qcHashMismatch(epoch: epoch)) }
        let txid2 = m.part2.transaction.txid
        let key = Self.submissionKey(epoch, txids: [txid1.rawValue, txid2.rawValue], blocks: [p1.blockHash, p2.blockHash])
        guard try !store.contains(key) else { throw .rule(CheckpointsError.duplicateSubmission(epoch: epoch)) }
        // Bounded per epoch: every end-block re-reads an active epoch's submissions. At the
        // bound, those no longer on Bitcoin's main chain (a reorg took them; they count for
        // nothing) make room — a pair that comes back can be reported again.
        let existing = try Self.submissions(epoch: epoch, in: store)
        var stale: [Data] = []
        if existing.count >= Self.maxSubmissionsPerEpoch {
            for s in existing {
                guard s.blockHashes.count == 2, s.txids.count == 2 else {
                    throw .fatal(.corruptState("checkpoints: a submission of epoch \(epoch) without two transactions and blocks"))
                }
                let onMain0 = try BTCLightClientModule.isOnMainChain(hash: s.blockHashes[0], in: lc)
                let onMain1 = try BTCLightClientModule.isOnMainChain(hash: s.blockHashes[1], in: lc)
                if !onMain0 || !onMain1 { stale.append(Self.submissionKey(epoch, txids: s.txids, blocks: s.blockHashes)) }
            }
            guard existing.count - stale.count < Self.maxSubmissionsPerEpoch else {
                throw .rule(CheckpointsError.tooManySubmissions(epoch: epoch, limit: Self.maxSubmissionsPerEpoch))
            }
        }
        // Every rule holds; from here on only writes. The status follows in the end-block hook.
        for old in stale { store.delete(old) }
        if !stale.isEmpty {
            context.emit(Event(type: Self.submissionsPrunedEvent, attributes: [
                EventAttribute("epoch", String(epoch)), EventAttribute("count", String(stale.count)),
            ]))
        }
        let submission = CheckpointSubmission(
            reporter: context.sender, submitterID: decoded.submitterID, txids: [txid1.rawValue, txid2.rawValue],
            blockHashes: [p1.blockHash, p2.blockHash], blockHeights: [p1.height, p2.height], height: context.block.height)
        store.write(submission, at: key)
        store.set(Self.activeKey(epoch), Data([1]))
        store.set(Self.activeMarkerKey, Data([1]))
        context.emit(Event(type: Self.submissionAddedEvent, attributes: [
            EventAttribute("epoch", String(epoch)), EventAttribute("reporter", context.senderHex),
            EventAttribute("txid1", txid1.displayHex), EventAttribute("txid2", txid2.displayHex),
            EventAttribute("block1", Self.display(p1.blockHash)), EventAttribute("block2", Self.display(p2.blockHash)),
        ]))
    }

    // MARK: - Blocks

    /// Records the checkpoint of an epoch that ends with this block, then re-evaluates the
    /// status of every epoch in the active index against the light client.
    public func endBlock(_ context: BlockContext) throws(ExecutionError) {
        let store = context.store
        guard let params = try store.read(CheckpointsParams.self, at: Self.paramsKey) else { return }
        let height = context.block.height
        let tip = try Self.btcTipHeight(context)
        if params.isLastBlockOfEpoch(height) {
            let epoch = params.epoch(ofHeight: height)
            guard context.block.hash.count == 32 else {
                throw .fatal(.outOfOrder("checkpoints: end of epoch \(epoch) executed without the block hash"))
            }
            let cp = EpochCheckpoint(epoch: epoch, lastBlockHash: context.block.hash, lastBlockHeight: height,
                                     validators: context.validators, status: .accumulating,
                                     history: [CheckpointTransition(status: .accumulating, height: height, btcTipHeight: tip)])
            store.write(cp, at: Self.checkpointKey(epoch))
            context.emit(Event(type: Self.epochEndedEvent, attributes: [
                EventAttribute("epoch", String(epoch)), EventAttribute("last_block_hash", context.block.hash.hexString),
                EventAttribute("height", String(height)),
            ]))
        }
        try updateStatuses(params: params, tip: tip, context)
    }

    /// The best depth among `epoch`'s submissions whose two blocks are both on the main chain.
    static func bestDepth(epoch: UInt64, in store: ModuleStore, lc: ModuleStore) throws(ExecutionError) -> UInt64? {
        var best: UInt64?
        for s in try submissions(epoch: epoch, in: store) {
            guard let d1 = try BTCLightClientModule.depth(of: s.blockHashes[0], in: lc),
                  let d2 = try BTCLightClientModule.depth(of: s.blockHashes[1], in: lc) else { continue }
            best = max(best ?? 0, min(d1, d2))
        }
        return best
    }

    func updateStatuses(params: CheckpointsParams, tip: UInt64, _ context: BlockContext) throws(ExecutionError) {
        let store = context.store
        let lc = context.store(of: BTCLightClientModule.moduleName)
        guard try store.contains(Self.activeMarkerKey) else { return }
        var finalizedAny = false
        var remaining = 0
        for row in try store.scan(prefix: Self.activePrefix) {
            remaining += 1
            let epoch = Self.readBE8(row.key.dropFirst(Self.activePrefix.count))
            guard var cp = try Self.checkpoint(epoch: epoch, in: store) else {
                throw .fatal(.corruptState("checkpoints: active epoch \(epoch) has no checkpoint"))
            }
            let target: CheckpointStatus
            switch try Self.bestDepth(epoch: epoch, in: store, lc: lc) {
            case nil: target = .sealed
            case let d? where d >= params.finalizationTimeout: target = .finalized
            case let d? where d >= params.confirmationDepth: target = .confirmed
            case _?: target = .submitted
            }
            guard target != cp.status else { continue }
            let steps: [CheckpointStatus]
            if target > cp.status {
                steps = CheckpointStatus.allCases.filter { $0 > cp.status && $0 <= target }
            } else {
                steps = [target]
            }
            for next in steps {
                context.emit(Event(type: Self.statusChangedEvent, attributes: [
                    EventAttribute("epoch", String(epoch)), EventAttribute("from", cp.status.name),
                    EventAttribute("to", next.name),
                ]))
                cp.status = next
                cp.history.append(CheckpointTransition(status: next, height: context.block.height, btcTipHeight: tip))
            }
            store.write(cp, at: Self.checkpointKey(epoch))
            if target == .finalized {
                store.delete(row.key)
                finalizedAny = true
                remaining -= 1
            }
        }
        if remaining == 0 { store.delete(Self.activeMarkerKey) }
        guard finalizedAny else { return }
        var last = try Self.lastFinalizedEpoch(in: store)
        while let next = try Self.checkpoint(epoch: last + 1, in: store), next.status == .finalized { last += 1 }
        store.set(Self.lastFinalizedKey, Self.be8(last))
    }
}
