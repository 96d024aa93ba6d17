import Dispatch
import Foundation
import IshtarChain
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// Runs a node from its home: the ``NodeService`` (consensus, P2P, mempool) plus the HTTP API,
/// until cancelled. `ishtar node start` calls ``runBlocking(home:passphrase:)``.
public enum NodeRunner {
    /// swift-log may be bootstrapped once per process; a `static let` runs once.
    private static let loggingBootstrap: Void = {
        LoggingSystem.bootstrap { label in StreamLogHandler.standardError(label: label) }
    }()

    /// Descriptors the node may hold at once besides RocksDB's: API connections, peers
    /// (inbound, plus one dial per persistent peer) and a margin for logs and pipes.
    static func descriptorsNeeded(_ config: NodeConfig) -> UInt64 {
        UInt64(config.api.maxConnections + config.p2p.maxInboundPeers + config.p2p.persistentPeers.count + 64)
    }

    /// Raises the soft open-file limit toward the hard one (at most 65,536): Debian's
    /// default soft limit of 1,024 is shared by RocksDB's table files, the peers and the
    /// API's connections, and a RocksDB write that cannot open a file halts the node. Warns
    /// when the limit stays too low for the configured connections plus RocksDB's files.
    static func raiseOpenFileLimit(config: NodeConfig, logger: Logger) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
        let wanted = min(limit.rlim_max, 65_536)
        if limit.rlim_cur < wanted {
            var raised = limit
            raised.rlim_cur = wanted
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        // RocksDB keeps its table files open; a few hundred covers a node's first gigabytes.
        let needed = descriptorsNeeded(config) + 512
        let metadata: Logger.Metadata = ["open_file_limit": "\(limit.rlim_cur)", "needed_at_least": "\(needed)"]
        if limit.rlim_cur < needed {
            logger.warning("open-file limit is low for api.max_connections and the peers; raise it (ulimit -n) or lower them",
                           metadata: metadata)
        } else {
            logger.debug("open-file limit", metadata: metadata)
        }
    }

    /// Loads the home, starts the node and its API, and runs them as one service group until
    /// the task is cancelled or — with `terminationSignals` — SIGTERM or SIGINT arrives. Either
    /// way the group shuts down in reverse order: the API stops taking requests first, then the
    /// node stops consensus, closes its peers and closes its store. Writes `node.pid` while
    /// running.
    public static func run(home: NodeHome, passphrase: Data?, logger baseLogger: Logger? = nil,
                           terminationSignals: Bool = false,
                           onStarted: (@Sendable (NodeService) async -> Void)? = nil) async throws {
        if baseLogger == nil { _ = loggingBootstrap }
        let config = try home.loadConfig()
        var logger = baseLogger ?? Logger(label: "ishtar.node")
        logger.logLevel = Logger.Level(rawValue: config.logLevel) ?? .info
        logger[metadataKey: "node"] = "\(config.moniker)"
        let genesis = try home.loadGenesis()
        logger.info("control plane", metadata: controlPlaneSummary(genesis))
        let validatorKey = try home.loadValidatorKey(config: config, passphrase: passphrase)
        // A passphrase given for a key stored in plaintext: the file may have been swapped
        // for one someone else knows — say so loudly rather than start silently.
        if passphrase != nil, (try? home.validatorKeyIsEncrypted(config: config)) == false {
            logger.warning("validator key file is stored in plaintext: the passphrase given was not used; if it was encrypted before, it was replaced",
                           metadata: ["file": "\(home.resolve(config.validatorKeyFile))",
                                      "public_key": "\(validatorKey.publicKey.rawRepresentation.hexEncoded)"])
        }
        let nodeKey = try home.loadNodeKey(config: config)
        guard let api = HostPort(config.api.listen) else { throw NodeError.badHome("bad api.listen \(config.api.listen)") }
        let token = try home.loadAPIToken(config: config)
        logger.info("api", metadata: ["listen": "\(config.api.listen)", "post_txs_auth": "\(token == nil ? "none" : "bearer token")"])
        let apiConfiguration = APIServerConfiguration(host: api.host, port: api.port, bearerToken: token,
                                                      maxConnections: config.api.maxConnections)
        // Submitting changes state: beyond this machine it needs a token.
        guard token != nil || apiConfiguration.isLoopback else {
            throw NodeError.badHome(
                "api.listen \(config.api.listen) is reachable beyond this machine, and api.bearer_token_file is not set: "
                + "POST /txs would take submissions from anyone. Set api.bearer_token_file (a mode-0600 file holding "
                + "the token), or listen on 127.0.0.1")
        }
        raiseOpenFileLimit(config: config, logger: logger)
        NodeMetrics.bootstrap()
        let node = try NodeService(
            options: NodeServiceOptions(genesis: genesis, config: config, validatorKey: validatorKey, nodeKey: nodeKey,
                                        databasePath: home.databasePath),
            logger: logger)
        do {
            try await node.start()
        } catch {
            await node.stop()
            throw error
        }
        // Replaced by rename, never written through a link someone left at the name.
        try? NodeHomeSetup.atomicWrite(Data("\(getpid())\n".utf8), to: home.pidPath)
        defer { unlink(home.pidPath) }
        await onStarted?(node)
        // Either service ending (the API failing to bind, say) shuts the other down too.
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: [
                .init(service: NodeLifetime(node: node, logger: logger), successTerminationBehavior: .gracefullyShutdownGroup,
                      failureTerminationBehavior: .gracefullyShutdownGroup, serviceName: "node"),
                .init(service: makeAPIApplication(backend: node, configuration: apiConfiguration, logger: logger),
                      successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup,
                      serviceName: "api"),
            ],
            gracefulShutdownSignals: terminationSignals ? [.sigterm, .sigint] : [],
            logger: logger))
        do {
            try await group.run()
        } catch {
            // The API's listener is the one thing here that fails on the machine's state (the
            // P2P listener is bound in `node.start()` with its own message): name the setting.
            let reported: any Error = (error as? IOError).map {
                NodeError.network("cannot listen on api.listen \(config.api.listen): \(String(cString: strerror($0.errnoCode)))")
            } ?? error
            logger.error("node stopping after error", metadata: ["error": "\(reported)"])
            await node.stop()
            throw reported
        }
        await node.stop()
    }

    /// The modules the node runs and where its BTC light client starts, for the start-up log.
    static func controlPlaneSummary(_ genesis: Genesis) -> Logger.Metadata {
        var out: Logger.Metadata = ["modules": "\((["consensus", "accounts"] + ControlPlane.moduleNames).joined(separator: ","))"]
        if let raw = genesis.moduleParams[BTCLightClientModule.moduleName],
           let object = try? JSONSerialization.jsonObject(with: raw) as? [String: Any] {
            out["btc_network"] = "\(object["network"] as? String ?? "regtest")"
            out["btc_base_height"] = "\((object["base_height"] as? NSNumber)?.stringValue ?? "0")"
        }
        if let raw = genesis.moduleParams[CheckpointsModule.moduleName],
           let object = try? JSONSerialization.jsonObject(with: raw) as? [String: Any],
           let length = object["epoch_length"] as? NSNumber {
            out["epoch_length"] = "\(length)"
        }
        return out
    }

    /// For a synchronous command: runs ``run(home:passphrase:logger:terminationSignals:onStarted:)``
    /// with SIGTERM/SIGINT as its graceful shutdown, blocking the calling (main) thread until
    /// it ends.
    public static func runBlocking(home: NodeHome, passphrase: Data?) throws {
        let outcome = ErrorBox()
        let done = DispatchSemaphore(value: 0)
        Task {
            do { try await run(home: home, passphrase: passphrase, terminationSignals: true) } catch { outcome.set(error) }
            done.signal()
        }
        done.wait()
        if let error = outcome.get() { throw error }
    }

    /// Installs SIGINT/SIGTERM handlers that call `handler` (on a dispatch queue).
    public static func onTerminationSignals(_ handler: @escaping @Sendable () -> Void) -> [any DispatchSourceSignal] {
        [SIGINT, SIGTERM].map { sig in
            signal(sig, SIG_IGN)  // let the dispatch source see it instead of the default action
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler(handler: handler)
            s.resume()
            return s
        }
    }
}

/// The node's part of the service group: runs until the group shuts down gracefully (or is
/// cancelled), then stops the node.
struct NodeLifetime: Service {
    let node: NodeService
    let logger: Logger

    func run() async throws {
        // Returns at graceful shutdown; throws if the task is cancelled instead — both end here.
        try? await gracefulShutdown()
        logger.info("shutting down: the API stops first, then consensus, peers and the store")
        await node.stop()
    }
}

/// Carries the node task's error back to the blocked thread.
final class ErrorBox: Sendable {
    private let value = Mutex<(any Error)?>(nil)
    func set(_ e: any Error) { value.withLock { $0 = e } }
    func get() -> (any Error)? { value.withLock { $0 } }
}
