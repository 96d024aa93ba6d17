import ArgumentParser
import Foundation
import IshtarChain
import IshtarCrypto
import IshtarNode

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `ishtar finality …`: a finality provider's messages, built, signed and sent by hand —
/// what the provider daemon of a later issue will automate.
struct FinalityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "finality",
        abstract: "Act as a finality provider by hand: register, commit EOTS randomness, vote, unjail.",
        discussion: """
            Each command builds one control-plane message, signs it and sends it in a \
            transaction from --account-key-file (its nonce read from the node unless --nonce \
            is given). The provider's BTC key (--btc-key-file) signs what only the provider \
            may sign: its proof of possession, its randomness commitments and its EOTS votes. \
            Both key files are unlocked with the same passphrase.
            A provider's life: register (REGISTERED) → BTC delegations make it ACTIVE → \
            commit-randomness for a range of heights → vote for each height it is active at. \
            EOTS randomness is derived from the BTC key, the consumer chain id and the \
            height, so a second vote at a height reveals the key — and anyone can then burn \
            the provider's stake. `vote` therefore writes each (chain, height, block hash) to \
            a vote record (--vote-record, a directory) and syncs it before it signs; it \
            refuses to sign another hash at a height the record holds.
            Exit codes: 0 accepted into the mempool, 1 refused (by check-tx, or a vote the \
            record forbids), 2 bad input or unreachable node.
            """,
        subcommands: [Register.self, CommitRandomness.self, Vote.self, Unjail.self])

    /// The node, the two key files, the chain and the nonce: what every subcommand needs.
    struct SenderOptions: ParsableArguments {
        @OptionGroup var api: NodeAPIOptions

        @Option(name: .long, help: ArgumentHelp("Key file of the account that signs and sends the transaction.", valueName: "file"))
        var accountKeyFile: String

        @Option(name: .long, help: ArgumentHelp("The provider's BTC (EOTS) key file.", valueName: "file"))
        var btcKeyFile: String

        @OptionGroup var passphrase: KeysCommand.PassphraseOptions

        @Option(name: .long, help: ArgumentHelp("The control plane's chain id (the transaction is signed for it).", valueName: "id"),
                transform: Parse.chainID)
        var chainID: String

        @Option(name: .long, help: ArgumentHelp(
            "The chain the provider serves (default: --chain-id, the control plane itself).", valueName: "id"),
                transform: Parse.chainID)
        var consumerChainID: String?

        @OptionGroup var nonce: NonceOption

        var servedChain: String { consumerChainID ?? chainID }

        /// Unlocks both keys and connects.
        func open() throws -> FinalityActions.Sender {
            let secret = try passphrase.resolve()
            let account = try KeysActions.unlock(path: accountKeyFile, passphrase: secret)
            let btc = try KeysActions.unlock(path: btcKeyFile, passphrase: secret)
            return FinalityActions.Sender(client: try api.client(), account: account, btcKey: btc, chainID: chainID,
                                          nonce: nonce.explicit)
        }
    }

    struct Register: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Register the BTC key as a finality provider (staking/CreateFinalityProvider).",
            discussion: """
                The account that sends it owns the provider (only it may unjail it). Example:
                  ishtar finality register --account-key-file op.key --btc-key-file fp.key \\
                    --chain-id ishtar-devnet --moniker my-provider --commission 0.05
                Watch it: ishtar query module staking finality-provider <btc public key>
                """)

        @OptionGroup var sender: SenderOptions

        @Option(name: .long, help: ArgumentHelp("Display name (1 to 70 bytes).", valueName: "name"))
        var moniker: String

        @Option(name: .long, help: ArgumentHelp("Commission rate, a decimal in [0, 1], at least the chain's minimum.", valueName: "rate"))
        var commission: String

        @Option(name: .long, help: ArgumentHelp("Optional website.", valueName: "url"))
        var website = ""

        @Option(name: .long, help: ArgumentHelp("Optional free text.", valueName: "text"))
        var details = ""

        @OptionGroup var format: OutputOptions

        func validate() throws {
            guard Commission(decimal: commission) != nil else {
                throw ValidationError("--commission: expected a decimal between 0 and 1 with at most 18 places, got \"\(commission)\"")
            }
            guard !moniker.isEmpty, moniker.utf8.count <= FinalityProviderDescription.maxMonikerBytes else {
                throw ValidationError("--moniker: must be 1 to \(FinalityProviderDescription.maxMonikerBytes) bytes")
            }
            guard website.utf8.count <= FinalityProviderDescription.maxWebsiteBytes else {
                throw ValidationError("--website: at most \(FinalityProviderDescription.maxWebsiteBytes) bytes")
            }
            guard details.utf8.count <= FinalityProviderDescription.maxDetailsBytes else {
                throw ValidationError("--details: at most \(FinalityProviderDescription.maxDetailsBytes) bytes")
            }
        }

        func run() throws {
            let s = try sender.open()
            guard let rate = Commission(decimal: commission) else { throw ValidationError("--commission: unparseable") }
            let message = try FinalityActions.registerMessage(
                btcKey: s.btcKey, account: s.account.publicKey.rawRepresentation, chainID: s.chainID,
                description: FinalityProviderDescription(moniker: moniker, website: website, details: details),
                commission: rate, consumerChainID: sender.servedChain)
            try s.submit([message], format)
        }
    }

    struct CommitRandomness: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "commit-randomness",
            abstract: "Commit EOTS public randomness for heights start … start+count−1 (finality/CommitPubRand).",
            discussion: """
                The randomness is derived from the BTC key, the served chain id and each \
                height, so `vote` re-derives it; nothing but the key needs keeping. Ranges may \
                not overlap an earlier commitment, must hold at least the chain's minimum count \
                and start at most the chain's maximum offset above its current height. Example:
                  ishtar finality commit-randomness --account-key-file op.key --btc-key-file fp.key \\
                    --chain-id ishtar-devnet --start 120 --count 1000
                Watch it: ishtar query module finality commitments <btc public key> <chain id>
                """)

        @OptionGroup var sender: SenderOptions

        @Option(name: .long, help: ArgumentHelp("First height.", valueName: "height"))
        var start: UInt64

        @Option(name: .long, help: ArgumentHelp("Number of heights (at least the chain's min_pub_rand).", valueName: "n"))
        var count: UInt64

        @OptionGroup var format: OutputOptions

        func validate() throws {
            guard count >= 1, count <= FinalityActions.maxCommitmentCount else { throw ValidationError("--count: must be 1 to 1,000,000") }
            guard !start.addingReportingOverflow(count - 1).overflow else { throw ValidationError("--start: the range overflows") }
        }

        func run() throws {
            let s = try sender.open()
            let batch = try FinalityActions.batch(btcKey: s.btcKey, chainID: sender.servedChain, start: start, count: count)
            try s.submit([try batch.commitMessage()], format)
        }
    }

    struct Vote: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Vote for the block at a height with an EOTS signature (finality/AddFinalitySig).",
            discussion: """
                For the control plane's own blocks the hash is read from the node \
                (/blocks/<height>); for a consumer chain give --block-hash. The randomness \
                commitment covering the height is read from the node and re-derived from the \
                key (they must match). Before signing, the vote is written to the vote record \
                and synced: the same vote again is allowed (it is the same signature), another \
                hash at a recorded height is refused with exit code 1 and nothing is signed. \
                Example:
                  ishtar finality vote --account-key-file op.key --btc-key-file fp.key \\
                    --chain-id ishtar-devnet --height 125
                Watch it: ishtar query module finality votes <chain id> <height>
                """)

        @OptionGroup var sender: SenderOptions

        @Option(name: .long, help: ArgumentHelp("The height voted for.", valueName: "height"))
        var height: UInt64

        @Option(name: .long, help: ArgumentHelp(
            "The block's hash, hex (default: read from the node; required for a consumer chain).", valueName: "hex"))
        var blockHash: String?

        @Option(name: .long, help: ArgumentHelp(
            "Directory of the votes EOTS keys have signed, one subdirectory per public key (default: <btc key file>.votes, symlinks resolved). Keep it with the key: `ishtar eots sign` uses the same one.",
            valueName: "dir"))
        var voteRecord: String?

        @OptionGroup var format: OutputOptions

        func validate() throws {
            if let blockHash { _ = try Parse.hex(blockHash, option: "--block-hash", length: 32) }
            if blockHash == nil, let consumer = sender.consumerChainID, consumer != sender.chainID {
                throw ValidationError("--block-hash: required when voting for a consumer chain's block")
            }
        }

        func run() throws {
            let s = try sender.open()
            var hash = try blockHash.map { try Parse.hex($0, option: "--block-hash", length: 32) }
            if sender.servedChain == sender.chainID {
                // The control plane's own block: the node knows it. A hash given by hand is
                // checked against it before it can be recorded — a wrong one would otherwise
                // use up the height.
                let committed = try FinalityActions.committedBlockHash(client: s.client, height: height)
                if let given = hash, given != committed {
                    throw CLIError.verificationFailed(
                        "the node's block at \(height) is \(committed.hexString), not \(given.hexString): refusing to vote for it")
                }
                hash = committed
            }
            guard let hash else { throw ValidationError("--block-hash: required when voting for a consumer chain's block") }
            let record = VoteRecord.forKey(file: sender.btcKeyFile, publicKey: s.btcKey.publicKey.rawRepresentation,
                                           directory: voteRecord)
            let message = try FinalityActions.voteMessage(client: s.client, btcKey: s.btcKey, chainID: sender.servedChain,
                                                          height: height, blockHash: hash, record: record)
            try s.submit([message], format)
        }
    }

    struct Unjail: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Unjail the provider once its jail time has passed (finality/Unjail, from the owning account).",
            discussion: """
                Watch it: ishtar query module finality signing-info <btc public key>
                """)

        @OptionGroup var sender: SenderOptions
        @OptionGroup var format: OutputOptions

        func run() throws {
            let s = try sender.open()
            let message = UnjailFinalityProvider(fpKey: s.btcKey.publicKey.rawRepresentation).message
            try s.submit([message], format)
        }
    }
}

/// What `ishtar finality` does, callable from tests.
public enum FinalityActions {
    /// The most heights one `commit-randomness` commits (and so the most a vote re-derives).
    public static let maxCommitmentCount: UInt64 = 1_000_000

    /// A connected node, the unlocked keys and the transaction's chain and nonce.
    public struct Sender {
        public let client: NodeAPIClient
        public let account: Schnorr.PrivateKey
        public let btcKey: Schnorr.PrivateKey
        public let chainID: String
        /// Explicit nonce, or nil to read the committed one.
        public let nonce: UInt64?

        public init(client: NodeAPIClient, account: Schnorr.PrivateKey, btcKey: Schnorr.PrivateKey, chainID: String, nonce: UInt64?) {
            self.client = client
            self.account = account
            self.btcKey = btcKey
            self.chainID = chainID
            self.nonce = nonce
        }

        /// Sends `messages` in one transaction from the account and prints the verdict
        /// (``TxActions/submit(client:key:chainID:nonce:messages:format:)``).
        func submit(_ messages: [Message], _ format: OutputOptions) throws {
            try TxActions.submit(client: client, key: account, chainID: chainID, nonce: nonce, messages: messages, format: format)
        }
    }

    /// `staking/CreateFinalityProvider` with the key's proof of possession, bound to the
    /// control plane's chain id and the sending account.
    public static func registerMessage(btcKey: Schnorr.PrivateKey, account: Data, chainID: String,
                                       description: FinalityProviderDescription, commission: Commission,
                                       consumerChainID: String) throws -> Message {
        let pop: Data
        do {
            pop = try StakingModule.proofOfPossession(key: btcKey, chainID: chainID, account: account)
        } catch {
            throw CLIError.badInput("proof of possession: \(error)")
        }
        return CreateFinalityProvider(btcKey: btcKey.publicKey.rawRepresentation, proofOfPossession: pop,
                                      description: description, commission: commission, consumerChainID: consumerChainID).message
    }

    /// The key's randomness batch for `start … start+count−1` of `chainID`.
    public static func batch(btcKey: Schnorr.PrivateKey, chainID: String, start: UInt64, count: UInt64) throws -> PubRandBatch {
        do {
            return try PubRandBatch(fpKey: btcKey, chainID: chainID, startHeight: start, count: count)
        } catch {
            throw CLIError.badInput("randomness for \(start)+\(count): \(error)")
        }
    }

    /// The hash of the committed control-plane block at `height` (exit 1 if there is none yet).
    public static func committedBlockHash(client: NodeAPIClient, height: UInt64) throws -> Data {
        let block = try QueryActions.block(client: client, which: String(height))
        guard let hash = try? Data(hex: block.hash, field: "block hash"), hash.count == 32 else {
            throw CLIError.badInput("node returned a malformed block hash \"\(block.hash.prefix(80))\"")
        }
        return hash
    }

    /// One commitment as `/modules/finality/commitment/<key>/<chain>/<height>` answers it.
    struct CommitmentJSON: Decodable {
        var startHeight: String
        var count: String
        var root: String
        enum CodingKeys: String, CodingKey { case startHeight = "start_height", count, root }
    }

    /// The vote message for `blockHash` at `height`, after checking the node holds a
    /// commitment of this key covering the height whose root the key re-derives, and after
    /// `record` has durably accepted (chain, height, hash) — so no signature for a second
    /// hash at a height can ever be made by this command.
    public static func voteMessage(client: NodeAPIClient, btcKey: Schnorr.PrivateKey, chainID: String, height: UInt64,
                                   blockHash: Data, record: VoteRecord) throws -> Message {
        // A height already voted for another hash is refused before anything else is asked.
        try record.check(chainID: chainID, height: height, blockHash: blockHash)
        let key = btcKey.publicKey.rawRepresentation.hexString
        // A chain id is A-Z a-z 0-9 . - _ (Parse.chainID): safe as a path segment.
        let reply = try TxActions.call { () throws(NodeAPIClientError) in
            try client.get("/modules/finality/commitment/\(key)/\(chainID)/\(height)")
        }
        if reply.status == 404 {
            throw CLIError.verificationFailed(
                "no randomness of \(key) is committed on \(chainID) for height \(height): run `ishtar finality commit-randomness` first")
        }
        let c = try TxActions.decodeOK(CommitmentJSON.self, reply, what: "commitment")
        guard let start = UInt64(c.startHeight), let count = UInt64(c.count), height >= start, height - start < count else {
            throw CLIError.badInput("node returned a commitment (start \(c.startHeight), count \(c.count)) that does not cover height \(height)")
        }
        // The batch is re-derived whole (one point multiplication per height): a count from
        // the node beyond what `commit-randomness` ever makes would be hours of work and
        // gigabytes on the node's word alone.
        guard count <= maxCommitmentCount else {
            throw CLIError.verificationFailed(
                "node returned a commitment of \(count) heights; `commit-randomness` makes at most \(maxCommitmentCount), so this key did not make it")
        }
        let covering = (start: start, count: count, root: c.root)
        let batch = try batch(btcKey: btcKey, chainID: chainID, start: covering.start, count: covering.count)
        guard batch.root.hexString == covering.root.lowercased() else {
            throw CLIError.verificationFailed(
                "the commitment for \(covering.start)+\(covering.count) has root \(covering.root), but this key derives \(batch.root.hexString): it was not made from this key's deterministic randomness")
        }
        _ = try record.record(chainID: chainID, height: height, blockHash: blockHash)
        do {
            return try batch.vote(height: height, blockHash: blockHash).message
        } catch {
            throw CLIError.badInput("signing the vote: \(error)")
        }
    }
}

/// The votes an EOTS key has signed, one file per (chain, height) holding the block hash,
/// so that a provider never signs two hashes at one height — which would reveal its key.
///
/// A vote is recorded before it is signed: the file is written and synced under a
/// temporary name and then linked into place (`link` fails if the name exists, so two
/// processes racing for the same height cannot both win), and the directory is synced. A
/// crash therefore leaves either no record and no signature, or a complete record.
public struct VoteRecord: Sendable {
    /// The record's directory (created 0700 on first use).
    public let directory: String

    /// What recording a vote found.
    public enum Outcome: Equatable, Sendable {
        /// The height was free; the vote is now recorded.
        case recorded
        /// The same hash was recorded before: signing it again yields the same signature.
        case alreadyRecorded
    }

    public init(directory: String) { self.directory = directory }

    /// The record of the EOTS key `publicKey` kept in `key file`'s place: `<key file>.votes`
    /// (or `directory`) with the symlinks of the key file's path resolved — two paths to one
    /// file must find one record — and a subdirectory per public key, so records of several
    /// keys may share a directory without mixing.
    public static func forKey(file: String, publicKey: Data, directory: String? = nil) -> VoteRecord {
        let base = directory ?? (URL(fileURLWithPath: file).resolvingSymlinksInPath().path + ".votes")
        return VoteRecord(directory: base + "/" + publicKey.hexString)
    }

    /// The file that holds the vote of `chainID` at `height` (the chain id hex-encoded, as
    /// it may contain any printable character).
    public func path(chainID: String, height: UInt64) -> String {
        "\(directory)/\(Data(chainID.utf8).hexString)/\(height)"
    }

    /// Records `blockHash` at (`chainID`, `height`), or confirms it is already recorded.
    /// - Throws: `CLIError.verificationFailed` if another hash is recorded there (nothing is
    ///   changed), `CLIError.badInput` if the record cannot be written or read.
    @discardableResult
    public func record(chainID: String, height: UInt64, blockHash: Data) throws -> Outcome {
        let chainDir = "\(directory)/\(Data(chainID.utf8).hexString)"
        let parent = (directory as NSString).deletingLastPathComponent
        if !parent.isEmpty, parent != directory { try Self.makeDirectory(parent) }
        try Self.makeDirectory(directory)
        try Self.makeDirectory(chainDir)
        let final = path(chainID: chainID, height: height)
        if let existing = try Self.read(final) {
            // Another run may have linked it and died before syncing the directory: sync it
            // before this signature leaves, so the record outlives a power loss.
            let outcome = try Self.compare(existing, blockHash, final, chainID, height)
            try Self.syncDirectory(chainDir)
            return outcome
        }
        let temp = "\(chainDir)/.\(height).\(getpid()).\(UInt64.random(in: 0 ... .max))"
        defer { unlink(temp) }
        try Self.writeSynced(temp, Data(blockHash.hexString.utf8) + Data("\n".utf8))
        if link(temp, final) != 0 {
            let e = errno
            guard e == EEXIST, let existing = try Self.read(final) else {
                throw CLIError.badInput("vote record: cannot create \(final): \(String(cString: strerror(e)))")
            }
            let outcome = try Self.compare(existing, blockHash, final, chainID, height)
            try Self.syncDirectory(chainDir)
            return outcome
        }
        try Self.syncDirectory(chainDir)
        return .recorded
    }

    /// Refuses (like ``record(chainID:height:blockHash:)``) if another hash is recorded at
    /// (`chainID`, `height`); records nothing.
    public func check(chainID: String, height: UInt64, blockHash: Data) throws {
        let file = path(chainID: chainID, height: height)
        if let existing = try Self.read(file) { _ = try Self.compare(existing, blockHash, file, chainID, height) }
    }

    static func compare(_ existing: Data, _ blockHash: Data, _ file: String, _ chainID: String, _ height: UInt64) throws -> Outcome {
        let text = String(decoding: existing, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let recorded = try? Data(hex: text, field: "recorded hash"), recorded.count == 32 else {
            throw CLIError.badInput("vote record: \(file) does not hold a 32-byte hex hash; refusing to sign at \(chainID) height \(height)")
        }
        guard recorded == blockHash else {
            throw CLIError.verificationFailed(
                "refusing to sign: this key already voted for \(recorded.hexString) at \(chainID) height \(height) (\(file)); a second EOTS signature at that height would reveal the key")
        }
        return .alreadyRecorded
    }

    /// Creates `path` (0700) if missing, and then syncs its parent: the new entry must
    /// survive a power loss with the records below it.
    static func makeDirectory(_ path: String) throws {
        if mkdir(path, 0o700) != 0 {
            guard errno == EEXIST else {
                throw CLIError.badInput("vote record: cannot create directory \(path): \(String(cString: strerror(errno)))")
            }
            return
        }
        let parent = (path as NSString).deletingLastPathComponent
        try syncDirectory(parent.isEmpty ? "." : parent)
    }

    static func read(_ path: String) throws -> Data? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CLIError.badInput("vote record: cannot read \(path)")
        }
        return data
    }

    static func writeSynced(_ path: String, _ data: Data) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else { throw CLIError.badInput("vote record: cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let written = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == data.count, fsync(fd) == 0 else {
            throw CLIError.badInput("vote record: cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }

    static func syncDirectory(_ path: String) throws {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw CLIError.badInput("vote record: cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw CLIError.badInput("vote record: cannot sync \(path): \(String(cString: strerror(errno)))") }
    }
}
