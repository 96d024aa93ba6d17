import Foundation
import IshtarChain
import IshtarCrypto

/// A validator's duty at the end of every epoch (PROTOCOL §5): sign `BE8(epoch) ‖
/// lastBlockHash` and send the signature in an ordinary transaction from the validator key's
/// own account, so it travels through the mempool and gossip like any other and no single
/// proposer can keep it out. ``NodeService`` calls this after committing a block whose events
/// include `checkpoints.epoch_ended`.
///
/// Nothing is persisted: the signature is deterministic (zero auxiliary randomness) and
/// re-signing the same epoch is harmless (the chain refuses a duplicate), so there is no
/// signing record to keep; a signature lost in a crash is covered by the other validators'
/// quorum.
public enum CheckpointDuty {
    /// An epoch whose last block was just committed.
    public struct EndedEpoch: Sendable, Hashable {
        /// The epoch number.
        public var epoch: UInt64
        /// Its last block's hash (32 bytes).
        public var lastBlockHash: Data

        public init(epoch: UInt64, lastBlockHash: Data) {
            self.epoch = epoch
            self.lastBlockHash = lastBlockHash
        }
    }

    /// The epochs a block's events announce as ended (malformed events are skipped: they come
    /// from our own state machine, so one would be a bug to log, not a reason to stop).
    public static func endedEpochs(in events: [Event]) -> [EndedEpoch] {
        events.compactMap { event in
            guard event.type == CheckpointsModule.epochEndedEvent, let epoch = event["epoch"].flatMap({ UInt64($0) }),
                  let hex = event["last_block_hash"], let hash = try? Data(hex: hex), hash.count == 32 else { return nil }
            return EndedEpoch(epoch: epoch, lastBlockHash: hash)
        }
    }

    /// The signed `checkpoints/AddCheckpointSignature` transaction of `validatorKey` for `epoch`,
    /// sent from the validator key's account with `nonce`.
    public static func transaction(chainID: String, validatorKey: Schnorr.PrivateKey, nonce: UInt64,
                                   epoch: EndedEpoch) throws(IshtarCrypto.CryptoError) -> Data {
        let message = try CheckpointsModule.signatureMessage(epoch: epoch.epoch, lastBlockHash: epoch.lastBlockHash,
                                                             validatorKey: validatorKey)
        return try Transaction.signed(chainID: chainID, key: validatorKey, nonce: nonce, messages: [message]).encoded
    }

    /// The last ended epoch if its checkpoint still gathers signatures and `validator` is in
    /// its snapshot but has not signed: what a node restarted between an epoch's end and its
    /// signature still owes. `nil` otherwise (or before the first epoch ends).
    public static func owedEpoch(app: Application, validator: Data) -> EndedEpoch? {
        guard let current = queryJSON(app, "/modules/checkpoints/current-epoch"),
              let text = current["epoch"] as? String, let epoch = UInt64(text), epoch > 1,
              let cp = queryJSON(app, "/modules/checkpoints/epoch/\(epoch - 1)"),
              cp["status"] as? String == "ACCUMULATING",
              let members = cp["validators"] as? [[String: Any]],
              members.contains(where: { $0["address"] as? String == validator.hexString && $0["signed"] as? Bool == false }),
              let hex = cp["last_block_hash"] as? String, let hash = try? Data(hex: hex), hash.count == 32
        else { return nil }
        return EndedEpoch(epoch: epoch - 1, lastBlockHash: hash)
    }

    static func queryJSON(_ app: Application, _ path: String) -> [String: Any]? {
        guard let result = try? app.query(path: path), result.isOK else { return nil }
        return try? JSONSerialization.jsonObject(with: result.value) as? [String: Any]
    }

    /// The account's committed nonce (0 for an account the chain has never seen).
    public static func committedNonce(app: Application, account: Data) -> UInt64 {
        guard let object = queryJSON(app, "/modules/accounts/account/" + account.hexString),
              let text = object["nonce"] as? String, let nonce = UInt64(text) else { return 0 }
        return nonce
    }
}
