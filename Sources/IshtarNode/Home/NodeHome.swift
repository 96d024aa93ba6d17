import Foundation
import IshtarBitcoin
import IshtarChain
import IshtarCrypto
import IshtarKeys
import Logging

/// Errors of home setup and node start, each with a one-line operator message.
public enum NodeError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The home is not usable (missing or malformed file).
    case badHome(String)
    /// Another process holds the database lock.
    case alreadyRunning(String)
    /// The key could not be unlocked.
    case key(String)
    /// The store or application failed.
    case storage(String)
    /// Networking failed to start.
    case network(String)

    public var description: String {
        switch self {
        case .badHome(let m): "node home: \(m)"
        case .alreadyRunning(let p): "another node is already running on this home (database lock held: \(p))"
        case .key(let m): "key: \(m)"
        case .storage(let m): "storage: \(m)"
        case .network(let m): "network: \(m)"
        }
    }
}

/// A node's home directory:
///
/// ```
/// DIR/config.json          NodeConfig
/// DIR/genesis.json         the chain's genesis (identical on every node)
/// DIR/validator_key.json   consensus key (encrypted unless --insecure-plaintext)
/// DIR/node_key.json        P2P identity key (plaintext, mode 0600)
/// DIR/data/db              RocksDB: chain state + blocks + node records
/// DIR/node.pid             pid of the running node (devnet stop/status)
/// ```
///
/// The node key is separate from the validator key: it is loaded unattended on every start
/// and used for every connection handshake, so it must not be the key that controls
/// voting (and money). Like CometBFT's `node_key.json` it is stored unencrypted with mode
/// 0600; stealing it lets one impersonate the node's network identity, not sign votes.
public struct NodeHome: Sendable, Hashable {
    public let path: String

    public init(path: String) { self.path = URL(fileURLWithPath: path).standardizedFileURL.path }

    public var configPath: String { path + "/config.json" }
    public var genesisPath: String { path + "/genesis.json" }
    public var dataPath: String { path + "/data" }
    public var databasePath: String { path + "/data/db" }
    public var pidPath: String { path + "/node.pid" }
    public var logPath: String { path + "/node.log" }

    func resolve(_ file: String) -> String { file.hasPrefix("/") ? file : path + "/" + file }

    /// Reads `config.json`.
    public func loadConfig() throws(NodeError) -> NodeConfig {
        guard let data = FileManager.default.contents(atPath: configPath) else {
            throw .badHome("missing \(configPath) (run `ishtar node init` first)")
        }
        do { return try NodeConfig.parse(data) } catch { throw .badHome("config.json: \(error)") }
    }

    /// Reads and validates `genesis.json`.
    public func loadGenesis() throws(NodeError) -> Genesis {
        do { return try Genesis.load(path: genesisPath) } catch { throw .badHome("genesis.json: \(error)") }
    }

    /// Unlocks the validator key (passphrase nil for a plaintext file).
    public func loadValidatorKey(config: NodeConfig, passphrase: Data?) throws(NodeError) -> Schnorr.PrivateKey {
        let file = resolve(config.validatorKeyFile)
        do {
            let kf = try KeyFileStore.read(from: file)
            if kf.isEncrypted, passphrase == nil {
                throw NodeError.key("\(file) is encrypted: give --passphrase-file or set ISHTAR_PASSPHRASE")
            }
            return try kf.unlock(passphrase: kf.isEncrypted ? passphrase : nil)
        } catch let e as NodeError {
            throw e
        } catch {
            throw .key("\(file): \(error)")
        }
    }

    /// Whether the validator key file is encrypted (read without unlocking it).
    public func validatorKeyIsEncrypted(config: NodeConfig) throws(NodeError) -> Bool {
        let file = resolve(config.validatorKeyFile)
        do { return try KeyFileStore.read(from: file).isEncrypted } catch { throw .key("\(file): \(error)") }
    }

    /// Loads the node (P2P identity) key.
    public func loadNodeKey(config: NodeConfig) throws(NodeError) -> Schnorr.PrivateKey {
        let file = resolve(config.nodeKeyFile)
        do { return try KeyFileStore.read(from: file).unlock(passphrase: nil) } catch { throw .key("\(file): \(error)") }
    }

    /// The bearer token `POST /txs` requires (`api.bearer_token_file`'s first line), or nil
    /// when none is configured. Refused — so the node does not start open by mistake — when
    /// the file is missing, readable or writable by others, empty, or not a plain token.
    public func loadAPIToken(config: NodeConfig) throws(NodeError) -> String? {
        guard let name = config.api.bearerTokenFile else { return nil }
        let file = resolve(name)
        var st = stat()
        guard stat(file, &st) == 0 else { throw .key("api.bearer_token_file \(file): \(String(cString: strerror(errno)))") }
        let mode = st.st_mode & 0o777
        guard mode & 0o077 == 0 else {
            throw .key("api.bearer_token_file \(file): mode \(String(mode, radix: 8)) lets others read it (chmod 600)")
        }
        guard let data = FileManager.default.contents(atPath: file), data.count <= 64 << 10 else {
            throw .key("api.bearer_token_file \(file): unreadable or larger than 64 KiB")
        }
        let line = String(decoding: data, as: UTF8.self).split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        let token = line.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !token.isEmpty else { throw .key("api.bearer_token_file \(file): the first line is empty") }
        // It goes into an HTTP header: visible ASCII only.
        guard token.utf8.allSatisfy({ (0x21...0x7e).contains($0) }) else {
            throw .key("api.bearer_token_file \(file): the token must be printable ASCII without spaces")
        }
        return token
    }

    /// The node id (hex x-only public key of the node key), without unlocking anything secret.
    public func nodeID(config: NodeConfig) throws(NodeError) -> String {
        let file = resolve(config.nodeKeyFile)
        do { return try KeyFileStore.read(from: file).publicKey.lowercased() } catch { throw .key("\(file): \(error)") }
    }
}

/// Options of `ishtar node init` / `devnet start`.
public struct HomeInitOptions: Sendable {
    public var chainID: String
    public var validators: Int
    public var moniker: String
    /// nil with `insecurePlaintext`; otherwise the passphrase that encrypts validator keys.
    public var passphrase: Data?
    public var insecurePlaintext: Bool
    /// Node i listens for P2P on `basePort + 2i` and serves the API on `basePort + 2i + 1`.
    public var basePort: Int
    public var host: String
    public var consensus: ConsensusConfig
    public var genesisTime: UInt64?
    /// The control plane's genesis choices (light-client base, covenant committee, k, …).
    /// With no covenant keys, init generates a devnet committee of
    /// ``generatedCovenantMembers`` keys and writes them to `DIR/covenant/` (see
    /// ``NodeHomeSetup/initialize(at:options:logger:)``).
    public var controlPlane: ControlPlaneGenesisOptions
    /// Size of a generated devnet covenant committee (PROTOCOL §6: 5, quorum 3).
    public var generatedCovenantMembers: Int

    public init(chainID: String, validators: Int = 1, moniker: String = "node", passphrase: Data? = nil,
                insecurePlaintext: Bool = false, basePort: Int = 26656, host: String = "127.0.0.1",
                consensus: ConsensusConfig = ConsensusConfig(), genesisTime: UInt64? = nil,
                controlPlane: ControlPlaneGenesisOptions = ControlPlaneGenesisOptions(covenantKeys: []),
                generatedCovenantMembers: Int = 5) {
        self.controlPlane = controlPlane
        self.generatedCovenantMembers = generatedCovenantMembers
        self.chainID = chainID
        self.validators = validators
        self.moniker = moniker
        self.passphrase = passphrase
        self.insecurePlaintext = insecurePlaintext
        self.basePort = basePort
        self.host = host
        self.consensus = consensus
        self.genesisTime = genesisTime
    }
}

/// What `node init` created.
public struct InitializedHome: Sendable, Hashable, Codable {
    public var home: String
    public var moniker: String
    public var nodeID: String
    public var validatorAddress: String
    public var p2pAddress: String
    public var apiAddress: String
}

/// Where `node init` put the generated devnet covenant committee (empty when the operator
/// gave the committee's public keys).
public struct GeneratedCovenantKey: Sendable, Hashable, Codable {
    /// The key file (encrypted like the validator keys, or plaintext with --insecure-plaintext).
    public var keyFile: String
    /// Its x-only public key, hex.
    public var publicKey: String
}

/// Everything `node init` created: the homes, the generated covenant keys, and the
/// control-plane genesis facts an operator needs to see.
public struct InitializedNetwork: Sendable, Hashable, Codable {
    /// The node homes, in validator order.
    public var homes: [InitializedHome]
    /// The generated devnet covenant keys (empty when the committee was given).
    public var covenantKeys: [GeneratedCovenantKey]
    /// `modules.btclightclient.network` as written.
    public var btcNetwork: String
    /// The light client's base header hash, Bitcoin display hex.
    public var btcBaseHash: String
    /// The base header's height.
    public var btcBaseHeight: UInt64
    /// The covenant committee's public keys, hex.
    public var covenantCommittee: [String]
    /// Covenant signatures a delegation needs.
    public var covenantQuorum: Int
    /// The control-plane modules registered after `consensus` and `accounts`.
    public var modules: [String]
}

/// Creates node homes.
public enum NodeHomeSetup {
    /// One validator: writes `options` into `dir` itself. Several: `dir/node0 … node{N-1}`,
    /// with one shared genesis and every node listing all others as persistent peers.
    /// Refuses to touch a directory that already holds a `config.json` or `genesis.json`.
    public static func initialize(at dir: String, options: HomeInitOptions, logger: Logger) throws(NodeError)
        -> [InitializedHome]
    {
        try initializeNetwork(at: dir, options: options, logger: logger).homes
    }

    /// Same as ``initialize(at:options:logger:)``, also reporting the generated covenant keys
    /// and the control-plane genesis. Without covenant keys in `options.controlPlane`, a devnet
    /// committee is generated into `dir/covenant/covenantI.json` (encrypted with the validator
    /// passphrase, or plaintext with `insecurePlaintext`) so a devnet can co-sign delegations;
    /// a real chain passes its committee's public keys instead.
    public static func initializeNetwork(at dir: String, options: HomeInitOptions, logger: Logger) throws(NodeError)
        -> InitializedNetwork
    {
        guard options.validators >= 1, options.validators <= 64 else { throw .badHome("--validators must be 1…64") }
        guard options.insecurePlaintext || options.passphrase != nil else {
            throw .key("validator keys need a passphrase (--passphrase-file or ISHTAR_PASSPHRASE) or --insecure-plaintext")
        }
        if options.insecurePlaintext {
            logger.warning("INSECURE: validator keys are written UNENCRYPTED (--insecure-plaintext). Use only for throwaway devnets and tests.")
        }
        let n = options.validators
        let homes = n == 1 ? [NodeHome(path: dir)] : (0..<n).map { NodeHome(path: dir + "/node\($0)") }
        for h in homes {
            if FileManager.default.fileExists(atPath: h.configPath) || FileManager.default.fileExists(atPath: h.genesisPath) {
                throw .badHome("\(h.path) is already initialized")
            }
            // Keys without config.json and genesis.json (written last): an init that was
            // interrupted. Nothing ever ran from them, but init will not overwrite keys.
            let defaults = NodeConfig()
            for key in [defaults.validatorKeyFile, defaults.nodeKeyFile] where FileManager.default.fileExists(atPath: h.path + "/" + key) {
                throw .badHome("\(h.path) holds \(key) but no config.json or genesis.json: a `node init` was interrupted there. "
                    + "No node ever ran from it; remove \(dir) (or those files) and run init again")
            }
        }
        var validatorKeys: [Schnorr.PrivateKey] = []
        var nodeKeys: [Schnorr.PrivateKey] = []
        for _ in 0..<n {
            validatorKeys.append(Schnorr.PrivateKey())
            nodeKeys.append(Schnorr.PrivateKey())
        }
        let monikers = (0..<n).map { n == 1 ? options.moniker : "\(options.moniker)\($0)" }
        var controlPlane = options.controlPlane
        var covenantSecrets: [Schnorr.PrivateKey] = []
        if controlPlane.covenantKeys.isEmpty {
            guard (1...64).contains(options.generatedCovenantMembers) else { throw .badHome("covenant committee must be 1…64 keys") }
            covenantSecrets = (0..<options.generatedCovenantMembers).map { _ in Schnorr.PrivateKey() }
            controlPlane.covenantKeys = covenantSecrets.map(\.publicKey)
            controlPlane.covenantQuorum = min(controlPlane.covenantQuorum, covenantSecrets.count)
            let covenantDir = dir + "/covenant"
            if FileManager.default.fileExists(atPath: covenantDir) {
                throw .badHome("\(covenantDir) already exists (from an interrupted `node init`, or another chain's): "
                    + "remove it, or pass the committee's keys with --covenant-pk")
            }
        }
        let genesis: Genesis
        do {
            genesis = try Genesis(
                chainID: options.chainID,
                genesisTime: options.genesisTime ?? UInt64(Date().timeIntervalSince1970 * 1000),
                validators: validatorKeys.enumerated().map {
                    ChainValidator(publicKey: $0.element.publicKey.rawRepresentation, power: 10, name: monikers[$0.offset])
                },
                moduleParams: try ControlPlane.genesisModuleParams(controlPlane))
        } catch {
            throw .badHome("genesis: \(error)")
        }
        var covenantFiles: [GeneratedCovenantKey] = []
        if !covenantSecrets.isEmpty {
            let covenantDir = dir + "/covenant"
            do {
                try FileManager.default.createDirectory(atPath: covenantDir, withIntermediateDirectories: true)
                for (i, key) in covenantSecrets.enumerated() {
                    let path = covenantDir + "/covenant\(i).json"
                    let protection: KeyFile.Protection =
                        options.insecurePlaintext ? .insecurePlaintext : .passphrase(options.passphrase ?? Data())
                    try KeyFileStore.write(KeyFile(privateKey: key, protection: protection), to: path)
                    covenantFiles.append(GeneratedCovenantKey(keyFile: path, publicKey: key.publicKey.rawRepresentation.hexEncoded))
                }
            } catch {
                throw .badHome("writing covenant keys: \(error)")
            }
            logger.notice("generated a devnet covenant committee", metadata: [
                "members": "\(covenantSecrets.count)", "quorum": "\(controlPlane.covenantQuorum)", "dir": "\(covenantDir)",
            ])
        }
        func p2p(_ i: Int) -> String { "\(options.host):\(options.basePort + 2 * i)" }
        func api(_ i: Int) -> String { "\(options.host):\(options.basePort + 2 * i + 1)" }
        var out: [InitializedHome] = []
        for (i, home) in homes.enumerated() {
            do {
                try FileManager.default.createDirectory(atPath: home.dataPath, withIntermediateDirectories: true)
            } catch {
                throw .badHome("cannot create \(home.dataPath): \(error)")
            }
            let peers = (0..<n).filter { $0 != i }.map { nodeKeys[$0].publicKey.rawRepresentation.hexEncoded + "@" + p2p($0) }
            let config = NodeConfig(
                moniker: monikers[i], p2p: P2PConfig(listen: p2p(i), persistentPeers: peers),
                api: APIConfig(listen: api(i)), consensus: options.consensus)
            do {
                let protection: KeyFile.Protection =
                    options.insecurePlaintext ? .insecurePlaintext : .passphrase(options.passphrase ?? Data())
                try KeyFileStore.write(KeyFile(privateKey: validatorKeys[i], protection: protection),
                                       to: home.resolve(config.validatorKeyFile))
                try KeyFileStore.write(KeyFile(privateKey: nodeKeys[i], protection: .insecurePlaintext),
                                       to: home.resolve(config.nodeKeyFile))
                try atomicWrite(config.jsonData() + Data("\n".utf8), to: home.configPath)
                try atomicWrite(genesis.jsonData() + Data("\n".utf8), to: home.genesisPath)
            } catch let e as NodeError {
                throw e
            } catch {
                throw .badHome("writing \(home.path): \(error)")
            }
            out.append(InitializedHome(
                home: home.path, moniker: monikers[i], nodeID: nodeKeys[i].publicKey.rawRepresentation.hexEncoded,
                validatorAddress: validatorKeys[i].publicKey.rawRepresentation.hexEncoded, p2pAddress: p2p(i),
                apiAddress: api(i)))
        }
        let base = controlPlane.btcBaseHeader ?? controlPlane.btcNetwork.genesisHeader
        return InitializedNetwork(
            homes: out, covenantKeys: covenantFiles, btcNetwork: controlPlane.btcNetwork.rawValue,
            btcBaseHash: base.hash.displayHex, btcBaseHeight: controlPlane.btcBaseHeight,
            covenantCommittee: controlPlane.covenantKeys.map(\.rawRepresentation.hexEncoded),
            covenantQuorum: controlPlane.covenantQuorum, modules: ControlPlane.moduleNames)
    }

    /// Writes `data` to a temporary file, syncs it, renames it into place and syncs the
    /// directory: after a power loss the file is either the old one or all of the new one.
    public static func atomicWrite(_ data: Data, to path: String) throws(NodeError) {
        let tmp = path + ".tmp-\(getpid())"
        // A fresh file, never one found there: in a shared directory another user could have
        // put a symlink at the temporary name to have us write through it.
        unlink(tmp)
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o644)
        guard fd >= 0 else { throw .badHome("cannot write \(tmp): \(String(cString: strerror(errno)))") }
        let written = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd) == 0
        close(fd)
        guard written == data.count, synced else {
            unlink(tmp)
            throw .badHome("cannot write and sync \(tmp)")
        }
        guard rename(tmp, path) == 0 else {
            unlink(tmp)
            throw .badHome("cannot rename \(tmp) to \(path)")
        }
        let dir = (path as NSString).deletingLastPathComponent
        let dirFD = open(dir.isEmpty ? "." : dir, O_RDONLY)
        guard dirFD >= 0 else { throw .badHome("cannot open \(dir) to sync it") }
        defer { close(dirFD) }
        guard fsync(dirFD) == 0 else { throw .badHome("cannot sync \(dir)") }
    }
}
