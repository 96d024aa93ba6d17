import Foundation
@testable import IshtarCLI
import IshtarNode
import Testing

/// `devnet stop|status|start` signal only processes that are the devnet's: a node killed
/// with SIGKILL leaves `node.pid` behind, and the kernel hands its number to other programs.
@Suite struct DevnetPidTests {
    /// A live process whose arguments read `… node start --home <home>` (a shell that waits).
    func impostor(_ args: [String]) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        // `; :` keeps the shell alive (it would otherwise exec `sleep`, replacing its arguments).
        p.arguments = ["-c", "sleep 30; :"] + args
        try p.run()
        return p
    }

    @Test func aPidFileIsTrustedOnlyForTheNodeOfThatHome() throws {
        let dir = NSTemporaryDirectory() + "ishtar-devnet-pid-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir + "/node0", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let home = NodeHome(path: dir + "/node0")
        func writePid(_ p: Int32) throws { try Data("\(p)\n".utf8).write(to: URL(fileURLWithPath: home.pidPath)) }

        // A stale file naming a live, unrelated process (this test runner): not the node.
        try writePid(getpid())
        #expect(DevnetActions.pid(home) == nil)

        // The node of this home, by absolute path: trusted.
        let node = try impostor(["node", "start", "--home", home.path])
        defer { kill(node.processIdentifier, SIGKILL) }
        usleep(100_000)
        try writePid(node.processIdentifier)
        #expect(DevnetActions.pid(home) == node.processIdentifier)

        // A node of another home, or another subcommand for this one: not trusted.
        let other = try impostor(["node", "start", "--home", dir + "/node1"])
        defer { kill(other.processIdentifier, SIGKILL) }
        let init_ = try impostor(["node", "init", "--home", home.path])
        defer { kill(init_.processIdentifier, SIGKILL) }
        usleep(100_000)
        try writePid(other.processIdentifier)
        #expect(DevnetActions.pid(home) == nil)
        try writePid(init_.processIdentifier)
        #expect(DevnetActions.pid(home) == nil)

        // `--home=` and a relative path resolved against the process's directory: trusted.
        let relative = Process()
        relative.executableURL = URL(fileURLWithPath: "/bin/sh")
        relative.arguments = ["-c", "sleep 30; :", "node", "start", "--home=node0"]
        relative.currentDirectoryURL = URL(fileURLWithPath: dir)
        try relative.run()
        defer { kill(relative.processIdentifier, SIGKILL) }
        usleep(100_000)
        try writePid(relative.processIdentifier)
        #expect(DevnetActions.pid(home) == relative.processIdentifier)

        // A dead pid: nothing.
        kill(node.processIdentifier, SIGKILL)
        node.waitUntilExit()
        try writePid(node.processIdentifier)
        #expect(DevnetActions.pid(home) == nil)
    }
}

@Suite struct DevnetStartTests {
    /// A devnet whose second node is already running (its first was killed, or started by
    /// hand) is refused before any node is spawned: checking node by node used to start
    /// node0, then throw at node1 and leave node0 running with no supervisor.
    @Test func startIsRefusedBeforeSpawningWhenAnyNodeRuns() throws {
        let dir = NSTemporaryDirectory() + "ishtar-devnet-start-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for i in 0..<2 {
            try FileManager.default.createDirectory(atPath: dir + "/node\(i)", withIntermediateDirectories: true)
            try Data("{}".utf8).write(to: URL(fileURLWithPath: dir + "/node\(i)/config.json"))
        }
        let node1 = NodeHome(path: dir + "/node1")
        let running = Process()
        running.executableURL = URL(fileURLWithPath: "/bin/sh")
        running.arguments = ["-c", "sleep 30; :", "node", "start", "--home", node1.path]
        try running.run()
        defer { kill(running.processIdentifier, SIGKILL) }
        usleep(100_000)
        try Data("\(running.processIdentifier)\n".utf8).write(to: URL(fileURLWithPath: node1.pidPath))

        #expect {
            try DevnetActions.start(home: dir, validators: 2, chainID: "ishtar-devnet", basePort: 40_000)
        } throws: { error in
            guard case .badInput(let why)? = error as? CLIError else { return false }
            return why.contains("already running") && why.contains(node1.path) && why.contains("\(running.processIdentifier)")
        }
        #expect(!FileManager.default.fileExists(atPath: dir + "/node0/node.log"), "node0 was never started")
        #expect(!FileManager.default.fileExists(atPath: dir + "/devnet.pid"))

        // A live supervisor of this devnet (its pid file names a `devnet start --home dir`):
        // a second one is refused, naming it.
        kill(running.processIdentifier, SIGKILL)
        running.waitUntilExit()
        let supervisor = Process()
        supervisor.executableURL = URL(fileURLWithPath: "/bin/sh")
        supervisor.arguments = ["-c", "sleep 30; :", "devnet", "start", "--home", dir]
        try supervisor.run()
        defer { kill(supervisor.processIdentifier, SIGKILL) }
        usleep(100_000)
        try Data("\(supervisor.processIdentifier)\n".utf8).write(to: URL(fileURLWithPath: dir + "/devnet.pid"))
        #expect {
            try DevnetActions.start(home: dir, validators: 2, chainID: "ishtar-devnet", basePort: 40_000)
        } throws: { error in
            guard case .badInput(let why)? = error as? CLIError else { return false }
            return why.contains("supervisor") && why.contains("\(supervisor.processIdentifier)")
        }
    }

    @Test func theLastLineOfALogIsReadFromItsTail() throws {
        let path = NSTemporaryDirectory() + "ishtar-devnet-log-\(UUID().uuidString)"
        defer { unlink(path) }
        let body = (0..<20_000).map { "line \($0)" }.joined(separator: "\n") + "\nthe last words\n"
        try Data(body.utf8).write(to: URL(fileURLWithPath: path))
        #expect(DevnetActions.lastLine(ofFile: path) == "the last words")
        #expect(DevnetActions.lastLine(ofFile: path + ".missing") == "")
    }
}
