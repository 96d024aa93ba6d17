import ArgumentParser
import Foundation
import IshtarBitcoin
import IshtarChain
import IshtarCrypto
import IshtarNode
import Synchronization

/// `ishtar devnet …`: a local multi-validator network of child processes.
struct DevnetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devnet",
        abstract: "Run a local devnet: N validator processes on loopback.",
        subcommands: [Start.self, Stop.self, Status.self])

    struct Start: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create (if needed) and start N validators; stops them all on Ctrl-C/SIGTERM.",
            discussion: """
                Homes are DIR/node0 … DIR/node{N-1} (created with INSECURE plaintext keys and \
                short timeouts unless they exist); logs go to DIR/nodeI/node.log.
                A new devnet's genesis takes the same control-plane options as `ishtar node init` \
                (BTC light-client base, covenant committee, k); by default the light client \
                starts at the regtest genesis header, so a fresh Scripts/regtest-node can feed \
                it, and a devnet covenant committee is generated into DIR/covenant/. Start prints \
                where the light client's base is and which modules run.
                Example: ishtar devnet start --validators 4 --home /tmp/devnet
                """)

        @Option(name: .long, help: ArgumentHelp("The devnet directory.", valueName: "dir")) var home: String
        @Option(name: .long, help: "How many validators.") var validators: Int = 4
        @Option(name: .long, help: "Chain id of a new devnet.") var chainId: String = "ishtar-devnet"
        @Option(name: .long, help: "First loopback port.") var basePort: Int = 26656
        @OptionGroup var genesis: GenesisModuleOptions

        func run() throws {
            try DevnetActions.start(home: home, validators: validators, chainID: try Parse.chainID(chainId), basePort: basePort,
                                    controlPlane: try genesis.controlPlaneOptions(chainID: chainId))
        }
    }

    struct Stop: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop the devnet's node processes (SIGTERM).")
        @Option(name: .long, help: ArgumentHelp("The devnet directory.", valueName: "dir")) var home: String
        @OptionGroup var format: OutputOptions

        func run() throws { format.emit(try DevnetActions.stop(home: home)) }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show each node's process and chain height.")
        @Option(name: .long, help: ArgumentHelp("The devnet directory.", valueName: "dir")) var home: String
        @OptionGroup var format: OutputOptions

        func run() throws { format.emit(try DevnetActions.status(home: home)) }
    }
}

/// The logic behind `ishtar devnet`.
public enum DevnetActions {
    public struct NodeState: Codable, Sendable {
        public var home: String
        public var pid: Int32?
        public var running: Bool
        public var api: String
        public var height: UInt64?
        /// The last height finalized by BTC-staked votes, once one is.
        public var btcFinalizedHeight: UInt64?

        enum CodingKeys: String, CodingKey {
            case home, pid, running, api, height, btcFinalizedHeight = "btc_finalized_height"
        }
    }

    public struct StatusOutput: CommandOutput, Sendable {
        public var nodes: [NodeState]
        var text: String {
            nodes.map {
                "\($0.home): \($0.running ? "running pid \($0.pid ?? 0)" : "stopped") api http://\($0.api) height \($0.height.map(String.init) ?? "-")"
                    + ($0.btcFinalizedHeight.map { " (BTC-finalized \($0))" } ?? "")
            }.joined(separator: "\n")
        }
    }

    static func homes(_ dir: String) -> [NodeHome] {
        var out: [NodeHome] = []
        var i = 0
        while FileManager.default.fileExists(atPath: dir + "/node\(i)/config.json") {
            out.append(NodeHome(path: dir + "/node\(i)"))
            i += 1
        }
        return out
    }

    /// The pid in `home`'s `node.pid` if that process is alive and is `ishtar node start`
    /// for this home. A node killed with SIGKILL leaves its pid file behind, and the kernel
    /// reuses pids: signalling whatever now holds that number could stop an unrelated program.
    static func pid(_ home: NodeHome) -> Int32? {
        livePid(file: home.pidPath, command: ["node", "start"], home: home.path)
    }

    /// The pid written in `file` if a live process holds it whose arguments are `command`
    /// followed (anywhere later) by `--home` naming `home` (compared after resolving both
    /// paths, a relative one against the process's working directory).
    static func livePid(file: String, command: [String], home: String) -> Int32? {
        guard let d = FileManager.default.contents(atPath: file),
            let p = Int32(String(decoding: d, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)), p > 0,
            kill(p, 0) == 0
        else { return nil }
        return isProcess(p, running: command, home: home) ? p : nil
    }

    /// Whether process `pid`'s arguments (`/proc/<pid>/cmdline`) contain `command` in order
    /// and a `--home` whose path is `home`'s. Unreadable means no: never signal a guess.
    static func isProcess(_ pid: Int32, running command: [String], home: String) -> Bool {
        guard let raw = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
        let args = raw.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        guard let start = (0..<args.count).first(where: { i in
            i + command.count <= args.count && Array(args[i..<(i + command.count)]) == command
        }) else { return false }
        var homeArg: String?
        var i = start + command.count
        while i < args.count {
            if args[i] == "--home", i + 1 < args.count {
                homeArg = args[i + 1]
                i += 2
            } else if args[i].hasPrefix("--home=") {
                homeArg = String(args[i].dropFirst("--home=".count))
                i += 1
            } else {
                i += 1
            }
        }
        guard var path = homeArg else { return false }
        if !path.hasPrefix("/") {
            let cwd = URL(fileURLWithPath: "/proc/\(pid)/cwd").resolvingSymlinksInPath().path
            path = cwd + "/" + path
        }
        let resolve = { (p: String) in URL(fileURLWithPath: p).standardizedFileURL.resolvingSymlinksInPath().path }
        return resolve(path) == resolve(home)
    }

    /// Starts every node as a child process and supervises them until SIGINT/SIGTERM.
    public static func start(home: String, validators: Int, chainID: String, basePort: Int,
                             controlPlane: ControlPlaneGenesisOptions = ControlPlaneGenesisOptions(covenantKeys: [])) throws {
        if homes(home).isEmpty {
            let out = try NodeActions.initialize(
                home: home, chainID: chainID, validators: max(2, validators), moniker: "node", basePort: basePort,
                passphraseFile: nil, insecurePlaintext: true, fastTimeouts: true, controlPlane: controlPlane)
            print(out.text)
        } else if let first = homes(home).first {
            // An existing devnet: its genesis, not the flags, says what runs.
            print(genesisSummary(first).joined(separator: "\n"))
        }
        let all = homes(home)
        // Everything is checked before anything starts: a node found running half-way
        // through would leave the ones already spawned running with no supervisor.
        if let p = livePid(file: home + "/devnet.pid", command: ["devnet", "start"], home: home) {
            throw CLIError.badInput("a devnet supervisor for \(home) is already running (pid \(p)); `ishtar devnet stop --home \(home)` stops it")
        }
        let running = all.compactMap { h in pid(h).map { "\(h.path) (pid \($0))" } }
        if !running.isEmpty {
            throw CLIError.badInput("already running: \(running.joined(separator: ", ")); `ishtar devnet stop --home \(home)` stops them")
        }
        // Written before the first node starts, so a second `devnet start` is refused (and
        // `devnet stop` finds this supervisor) from the moment any node may be running.
        let pidFile = home + "/devnet.pid"
        try? NodeHomeSetup.atomicWrite(Data("\(getpid())\n".utf8), to: pidFile)
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var children: [Process] = []
        let done = DispatchSemaphore(value: 0)
        let watch = ChildWatch(count: all.count)
        for h in all {
            let p = Process()
            p.executableURL = exe
            // An absolute home: `devnet stop` recognises the node by it (``isProcess(_:running:home:)``)
            // without needing to read the process's working directory.
            p.arguments = ["node", "start", "--home", URL(fileURLWithPath: h.path).standardizedFileURL.path]
            // Appended to across restarts: createFile would empty the last run's log.
            if !FileManager.default.fileExists(atPath: h.logPath) {
                _ = FileManager.default.createFile(atPath: h.logPath, contents: nil)
            }
            let log = FileHandle(forWritingAtPath: h.logPath)
            _ = log?.seekToEndOfFile()
            p.standardOutput = log
            p.standardError = log
            // A node that dies on its own is reported at once, with where to look; when none
            // is left the supervisor stops too instead of saying the devnet is running.
            let logPath = h.logPath, name = h.path
            p.terminationHandler = { child in
                guard let remaining = watch.exited() else { return }
                let last = lastLine(ofFile: logPath)
                let how = child.terminationReason == .uncaughtSignal ? "killed by signal" : "exited with status"
                FileHandle.standardError.write(Data(
                    "devnet: \(name) \(how) \(child.terminationStatus); \(remaining) still running; log \(logPath)\n  \(last)\n".utf8))
                if remaining == 0 { done.signal() }
            }
            do { try p.run() } catch {
                children.forEach { $0.terminate() }
                removeOwnPidFile(pidFile)
                throw CLIError.badInput("cannot start \(h.path): \(error)")
            }
            children.append(p)
            let api = (try? h.loadConfig().api.listen) ?? "?"
            print("\(h.path): pid \(p.processIdentifier) api http://\(api) log \(h.logPath)")
        }
        print("devnet running; Ctrl-C to stop")
        let sources = NodeRunner.onTerminationSignals { done.signal() }
        done.wait()
        sources.forEach { $0.cancel() }
        let allExited = watch.stop()
        for c in children where c.isRunning { c.terminate() }
        let deadline = Date().addingTimeInterval(10)
        while children.contains(where: \.isRunning), Date() < deadline { usleep(100_000) }
        for c in children where c.isRunning { kill(c.processIdentifier, SIGKILL) }
        removeOwnPidFile(pidFile)
        if allExited { throw CLIError.badInput("every node of the devnet exited on its own; see their logs above") }
        print("devnet stopped")
    }

    /// Removes the supervisor's pid file only while it still names this process.
    static func removeOwnPidFile(_ path: String) {
        guard let d = FileManager.default.contents(atPath: path),
            Int32(String(decoding: d, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) == getpid()
        else { return }
        unlink(path)
    }

    /// The last non-empty line of a file, read from its last 4 KiB: a node's log grows for
    /// as long as the devnet lives, and reading it whole on every exit cost its size in memory.
    static func lastLine(ofFile path: String) -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { return "" }
        defer { try? handle.close() }
        guard let size = try? handle.seekToEnd() else { return "" }
        let start = size > 4096 ? size - 4096 : 0
        guard (try? handle.seek(toOffset: start)) != nil, let tail = try? handle.readToEnd() else { return "" }
        return String(decoding: tail, as: UTF8.self).split(separator: "\n").last.map(String.init) ?? ""
    }

    /// The control-plane facts of an existing home's genesis: modules and the light client's base.
    static func genesisSummary(_ home: NodeHome) -> [String] {
        guard let genesis = try? home.loadGenesis() else { return ["genesis: unreadable \(home.genesisPath)"] }
        var lines = ["chain id: \(genesis.chainID)", "modules: consensus, accounts, " + ControlPlane.moduleNames.joined(separator: ", ")]
        if let raw = genesis.moduleParams[BTCLightClientModule.moduleName],
            let obj = try? JSONSerialization.jsonObject(with: raw) as? [String: Any]
        {
            let network = obj["network"] as? String ?? "regtest"
            var base = "genesis header"
            if let hex = obj["base_header"] as? String, let bytes = try? Data(hex: hex), let header = try? BTCBlockHeader(serialized: bytes) {
                base = header.hash.displayHex
            }
            lines.append("btc light client: \(network) base \(base) at height \((obj["base_height"] as? NSNumber)?.stringValue ?? "0")")
        }
        return lines
    }

    /// Sends SIGTERM to the supervisor and every node whose pid file names a live process
    /// that is that node (a stale pid file from a killed node is ignored).
    public static func stop(home: String) throws -> StatusOutput {
        let all = homes(home)
        guard !all.isEmpty else { throw CLIError.badInput("no devnet in \(home)") }
        if let p = livePid(file: home + "/devnet.pid", command: ["devnet", "start"], home: home) {
            kill(p, SIGTERM)
        }
        for h in all { if let p = pid(h) { kill(p, SIGTERM) } }
        let deadline = Date().addingTimeInterval(10)
        while all.contains(where: { pid($0) != nil }), Date() < deadline { usleep(100_000) }
        return try status(home: home)
    }

    /// Each node's pid and, if it answers, its height.
    public static func status(home: String) throws -> StatusOutput {
        let all = homes(home)
        guard !all.isEmpty else { throw CLIError.badInput("no devnet in \(home)") }
        return StatusOutput(nodes: all.map { h in
            let api = (try? h.loadConfig().api.listen) ?? "?"
            let p = pid(h)
            var height: UInt64?
            var finalized: UInt64?
            if p != nil, let client = try? NodeAPIClient(url: "http://\(api)", timeoutSeconds: 2),
                let reply = try? client.get("/status"), reply.status == 200,
                let obj = try? JSONSerialization.jsonObject(with: reply.body) as? [String: Any]
            {
                height = (obj["height"] as? NSNumber)?.uint64Value
                finalized = (obj["btc_finalized_height"] as? NSNumber)?.uint64Value
            }
            return NodeState(home: h.path, pid: p, running: p != nil, api: api, height: height, btcFinalizedHeight: finalized)
        })
    }
}

/// Counts a devnet's nodes as they exit, until the supervisor starts stopping them itself.
final class ChildWatch: Sendable {
    private let state: Mutex<(running: Int, stopping: Bool)>

    init(count: Int) { state = Mutex((count, false)) }

    /// A child exited: how many still run, or nil when the supervisor is stopping them.
    func exited() -> Int? {
        state.withLock { s in
            guard !s.stopping else { return nil }
            s.running -= 1
            return s.running
        }
    }

    /// The supervisor stops the rest; returns whether none was left running.
    func stop() -> Bool {
        state.withLock { s in
            s.stopping = true
            return s.running == 0
        }
    }
}
