import Dispatch
import Foundation
import IshtarChain
import Logging
import Synchronization

/// Runs a node from its home: the ``NodeService`` (consensus, P2P, mempool) plus the HTTP API,
/// until cancelled. `ishtar node start` calls ``runBlocking(home:passphrase:)``.
public enum NodeRunner {
    /// swift-log may be bootstrapped once per process; a `static let` runs once.
    private static let loggingBootstrap: Void = {
        LoggingSystem.bootstrap { label in StreamLogHandler.standardError(label: label) }
    }()

    /// Loads the home, starts the node and its API, and runs until the task is cancelled.
    /// Writes `node.pid` while running.
    public static func run(home: NodeHome, passphrase: Data?, logger baseLogger: Logger? = nil,
                           onStarted: (@Sendable (NodeService) async -> Void)? = nil) async throws {
        if baseLogger == nil { _ = loggingBootstrap }
        let config = try home.loadConfig()
        var logger = baseLogger ?? Logger(label: "ishtar.node")
        logger.logLevel = Logger.Level(rawValue: config.logLevel) ?? .info
        logger[metadataKey: "node"] = "\(config.moniker)"
        let genesis = try home.loadGenesis()
        logger.info("control plane", metadata: controlPlaneSummary(genesis))
        let validatorKey = try home.loadValidatorKey(config: config, passphrase: passphrase)
        let nodeKey = try home.loadNodeKey(config: config)
        guard let api = HostPort(config.api.listen) else { throw NodeError.badHome("bad api.listen \(config.api.listen)") }
        let token = try home.loadAPIToken(config: config)
        logger.info("api", metadata: ["listen": "\(config.api.listen)", "post_txs_auth": "\(token == nil ? "none" : "bearer token")"])
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
        try? Data("\(getpid())\n".utf8).write(to: URL(fileURLWithPath: home.pidPath))
        defer { unlink(home.pidPath) }
        await onStarted?(node)
        let runLogger = logger
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await runAPIServer(backend: node, configuration: APIServerConfiguration(host: api.host, port: api.port, bearerToken: token),
                                           logger: runLogger)
                }
                group.addTask {
                    while !Task.isCancelled { try? await Task.sleep(nanoseconds: 200_000_000) }
                }
                _ = try await group.next()
                group.cancelAll()
            }
        } catch {
            runLogger.error("node stopping after error", metadata: ["error": "\(error)"])
            await node.stop()
            throw error
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

    /// For a synchronous command: runs ``run(home:passphrase:logger:onStarted:)`` on a task
    /// and blocks the calling (main) thread until it ends; SIGINT/SIGTERM cancel it, which
    /// stops the API, closes peers and closes the store cleanly.
    public static func runBlocking(home: NodeHome, passphrase: Data?) throws {
        let outcome = ErrorBox()
        let done = DispatchSemaphore(value: 0)
        let task = Task {
            do { try await run(home: home, passphrase: passphrase) } catch { outcome.set(error) }
            done.signal()
        }
        let sources = onTerminationSignals { task.cancel() }
        done.wait()
        sources.forEach { $0.cancel() }
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

/// Carries the node task's error back to the blocked thread.
final class ErrorBox: Sendable {
    private let value = Mutex<(any Error)?>(nil)
    func set(_ e: any Error) { value.withLock { $0 = e } }
    func get() -> (any Error)? { value.withLock { $0 } }
}
