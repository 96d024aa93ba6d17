import Foundation
import IshtarTestSupport
import Testing

/// Runs the real `ishtar` binary, built beside the test bundle, as a child process.
struct IshtarProcess {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static var binary: URL {
        URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
            .deletingLastPathComponent().appendingPathComponent("ishtar")
    }

    static func run(_ args: [String], environment: [String: String] = [:]) throws -> Result {
        let p = Process()
        p.executableURL = binary
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "ISHTAR_PASSPHRASE")
        env.merge(environment) { _, new in new }
        p.environment = env
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    static func json(_ args: [String], environment: [String: String] = [:]) throws -> [String: Any] {
        let r = try run(args + ["--json"], environment: environment)
        #expect(r.status == 0, "ishtar \(args.joined(separator: " ")) failed: \(r.stderr)")
        let obj = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8))
        return try #require(obj as? [String: Any], "not a JSON object: \(r.stdout)")
    }
}

private func scratch() throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ishtar-cli-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.path
}

@Suite(.serialized) struct CLIProcessTests {
    @Test func keyLifecycleAndDoubleSignLeaksTheKey() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let keyPath = dir + "/fp.key", pwPath = dir + "/pw"
        try Data("hunter2 but longer\n".utf8).write(to: URL(fileURLWithPath: pwPath))
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: pwPath)

        let gen = try IshtarProcess.json(["keys", "generate", "--output", keyPath, "--passphrase-file", pwPath])
        let publicKey = try #require(gen["public_key"] as? String)
        #expect(gen["secret_key"] == nil, "secret printed without --show-secret")
        #expect(gen["encrypted"] as? Bool == true)
        let mode = try FileManager.default.attributesOfItem(atPath: keyPath)[.posixPermissions] as? Int
        #expect(mode == 0o600)

        let shown = try IshtarProcess.json(["keys", "show", "--key-file", keyPath])
        #expect(shown["public_key"] as? String == publicKey)
        #expect(shown["secret_key"] == nil)
        let secret = try #require(
            try IshtarProcess.json(["keys", "show", "--key-file", keyPath, "--show-secret"],
                                   environment: ["ISHTAR_PASSPHRASE": "hunter2 but longer"])["secret_key"] as? String)
        #expect(secret.count == 64)

        let common = ["--key-file", keyPath, "--passphrase-file", pwPath, "--chain-id", "ishtar-test", "--height", "42"]
        let r1 = try IshtarProcess.json(["eots", "randomness"] + common)
        let r2 = try IshtarProcess.json(["eots", "randomness"] + common)
        #expect(r1["public_randomness"] as? String == r2["public_randomness"] as? String, "randomness must be deterministic")
        let pubRand = try #require(r1["public_randomness"] as? String)

        let m1 = "000000000000002a" + String(repeating: "11", count: 32)
        let m2 = "000000000000002a" + String(repeating: "22", count: 32)
        let s1 = try #require(try IshtarProcess.json(["eots", "sign"] + common + ["--message-hex", m1])["signature"] as? String)
        // Recorded like `finality vote` (<key file>.votes): the same vote signs again to the
        // same signature, another hash at the height is refused, and so is a message that is
        // not a vote for --height.
        #expect(try IshtarProcess.json(["eots", "sign"] + common + ["--message-hex", m1])["signature"] as? String == s1)
        let refused = try IshtarProcess.run(["eots", "sign"] + common + ["--message-hex", m2])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("already voted"), "\(refused.stderr)")
        let notAVote = try IshtarProcess.run(["eots", "sign"] + common + ["--message-hex", "00"])
        #expect(notAVote.status != 0)
        #expect(notAVote.stderr.contains("--unsafe-no-record"), "\(notAVote.stderr)")
        // Through a symlink to the key file: the same record.
        let link = dir + "/fp-link.key"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: keyPath)
        let viaLink = ["--key-file", link] + common.dropFirst(2)
        #expect(try IshtarProcess.run(["eots", "sign"] + viaLink + ["--message-hex", m2]).status != 0)
        // Only without a record can the second message be signed — and then the key leaks.
        let s2 = try #require(try IshtarProcess.json(["eots", "sign"] + common + ["--message-hex", m2, "--unsafe-no-record"])["signature"] as? String)

        let ok = try IshtarProcess.run(["eots", "verify", "--public-key", publicKey, "--public-randomness", pubRand,
                                        "--message-hex", m1, "--signature", s1])
        #expect(ok.status == 0)
        #expect(ok.stdout.contains("valid"))
        let bad = try IshtarProcess.run(["eots", "verify", "--public-key", publicKey, "--public-randomness", pubRand,
                                         "--message-hex", m2, "--signature", s1])
        #expect(bad.status == 1, "a wrong signature must exit 1")

        let extracted = try IshtarProcess.json([
            "eots", "extract", "--public-key", publicKey, "--public-randomness", pubRand,
            "--message1-hex", m1, "--signature1", s1, "--message2-hex", m2, "--signature2", s2,
        ])
        #expect(extracted["secret_key"] as? String == secret, "two signatures at one height must reveal the key")
    }

    /// Every malformed input exits 2 with exactly one line on stderr naming the problem.
    @Test(arguments: [
        (["eots", "verify", "--public-key", "zz", "--public-randomness", String(repeating: "00", count: 32),
          "--message-hex", "00", "--signature", String(repeating: "00", count: 32)], "--public-key"),
        (["eots", "verify", "--public-key", String(repeating: "01", count: 31), "--public-randomness", String(repeating: "00", count: 32),
          "--message-hex", "00", "--signature", String(repeating: "00", count: 32)], "expected 32 bytes"),
        // BIP-340 vector 5: an x coordinate with no point on the curve.
        (["eots", "verify", "--public-key", "EEFDEA4CDB677750A420FEE807EACF21EB9898AE79B9768766E4FAA04A2D4A34",
          "--public-randomness", "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798",
          "--message-hex", "00", "--signature", String(repeating: "00", count: 32)], "--public-key"),
        // s = n: a scalar out of range.
        (["eots", "verify", "--public-key", "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798",
          "--public-randomness", "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798",
          "--message-hex", "00", "--signature", "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141"], "--signature"),
        (["eots", "verify", "--public-key", "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798",
          "--public-randomness", "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798",
          "--message-hex", "abc", "--signature", String(repeating: "00", count: 32)], "--message-hex"),
        (["eots", "randomness", "--key-file", "/nonexistent/key", "--chain-id", "c", "--height", "1"], "not found"),
        (["eots", "randomness", "--key-file", "/tmp/x", "--chain-id", "c", "--height", "-1"], "height"),
        (["keys", "generate"], "passphrase"),
        (["no-such-command"], "no-such-command"),
    ] as [([String], String)])
    func badInputExitsTwoWithOneLine(args: [String], mentions: String) throws {
        let r = try IshtarProcess.run(args)
        #expect(r.status == 2, "stdout: \(r.stdout) stderr: \(r.stderr)")
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count == 1, "expected one error line, got: \(r.stderr)")
        #expect(r.stderr.lowercased().contains(mentions.lowercased()), "error should mention \(mentions): \(r.stderr)")
    }

    @Test func wrongPassphraseIsABadInput() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let keyPath = dir + "/k"
        _ = try IshtarProcess.json(["keys", "generate", "--output", keyPath], environment: ["ISHTAR_PASSPHRASE": "right"])
        let r = try IshtarProcess.run(["eots", "randomness", "--key-file", keyPath, "--chain-id", "c", "--height", "1"],
                                      environment: ["ISHTAR_PASSPHRASE": "wrong"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("wrong passphrase"))
    }

    @Test func helpTeachesAndExitsZero() throws {
        let r = try IshtarProcess.run(["eots", "sign", "--help"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("LEAKS YOUR") && r.stdout.contains("--unsafe-no-record"))
        let top = try IshtarProcess.run(["--help"])
        #expect(top.status == 0 && top.stdout.contains("keys") && top.stdout.contains("eots"))
    }
}

/// `ishtar devnet start` supervising real node processes.
@Suite(.serialized) struct DevnetSupervisorTests {
    /// A node that dies is reported at once (who, how, where its log is, its last line); when
    /// none is left the supervisor exits 2 instead of claiming a running devnet.
    @Test(.timeLimit(.minutes(2))) func nodesThatExitAreReportedAndTheLastOneEndsTheSupervisor() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let base = TestPorts.basePort()
        // Another program holds node1's API port (base + 3), so node1 cannot start.
        let holder = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(holder) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(base + 3).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(holder, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(bound == 0 && listen(holder, 1) == 0, "could not hold port \(base + 3)")

        // node1 exits on its own; then node0 is killed: the supervisor must notice both.
        func run() throws -> (status: Int32, stderr: String) {
            let p = Process()
            p.executableURL = IshtarProcess.binary
            p.arguments = ["devnet", "start", "--validators", "2", "--home", dir + "/dv", "--base-port", "\(base)"]
            let err = Pipe()
            p.standardOutput = FileHandle.nullDevice
            p.standardError = err
            let node0Pid = dir + "/dv/node0/node.pid"
            unlink(node0Pid)
            try p.run()
            let stderr = Locked("")
            let reader = Thread {
                let data = err.fileHandleForReading.readDataToEndOfFile()
                stderr.set(String(decoding: data, as: UTF8.self))
            }
            reader.start()
            var waited = 0.0
            while waited < 60, (FileManager.default.contents(atPath: node0Pid) == nil || !FileManager.default.fileExists(atPath: dir + "/dv/node1/node.log")) {
                usleep(100_000); waited += 0.1
            }
            usleep(3_000_000)
            if let text = FileManager.default.contents(atPath: node0Pid), let pid = Int32(String(decoding: text, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) {
                kill(pid, SIGKILL)
            }
            waited = 0
            while p.isRunning, waited < 30 { usleep(100_000); waited += 0.1 }
            if p.isRunning { p.terminate() }
            p.waitUntilExit()
            while reader.isExecuting { usleep(10_000) }
            return (p.terminationStatus, stderr.get())
        }
        let (status, text) = try run()
        #expect(status == 2, "\(text)")
        #expect(text.contains("devnet: \(dir)/dv/node1 exited with status 2"), "\(text)")
        #expect(text.contains("cannot listen on api.listen 127.0.0.1:\(base + 3)"), "node1's last log line is shown: \(text)")
        #expect(text.contains("devnet: \(dir)/dv/node0 killed by signal 9; 0 still running"), "\(text)")
        #expect(text.contains("every node of the devnet exited on its own"), "\(text)")
        // Started again, the nodes append to their logs: the first run's story is kept.
        let (again, _) = try run()
        #expect(again == 2)
        let log = (try? String(contentsOfFile: dir + "/dv/node1/node.log", encoding: .utf8)) ?? ""
        #expect(log.components(separatedBy: "cannot listen on api.listen").count - 1 >= 2, "node1.log holds both runs:\n\(log.suffix(1500))")
    }
}

/// A string shared with a reader thread.
final class Locked: @unchecked Sendable {
    // @unchecked: `value` is only touched under `lock`.
    private let lock = NSLock()
    private var value: String
    init(_ v: String) { value = v }
    func set(_ v: String) { lock.withLock { value = v } }
    func get() -> String { lock.withLock { value } }
}
