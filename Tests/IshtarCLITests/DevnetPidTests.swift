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
