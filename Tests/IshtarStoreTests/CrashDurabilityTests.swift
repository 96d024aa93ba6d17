import IshtarTestSupport
import Foundation
import Testing
import IshtarStore
#if canImport(Glibc)
import Glibc
#endif

/// Durability across a real `SIGKILL`.
///
/// The test binary re-executes itself (`/proc/self/exe`) filtered to
/// `crashWriterChild`, with `ISHTAR_STORE_CRASH_CHILD` naming the database path. In
/// that child the writer loops over synced multi-CF batches and acknowledges each on
/// stdout *after* `write` returns; the parent kills it with SIGKILL mid-stream, reopens
/// the database and checks that every acknowledged batch is there in full and that no
/// batch is ever partially applied. In a normal run (variable unset) the child test
/// does nothing.
@Suite("Crash durability")
struct CrashDurabilityTests {
    static let childVariable = "ISHTAR_STORE_CRASH_CHILD"
    static let columnFamilies = ["blocks", "index"]

    /// One batch = the three keys of record `n` in two CFs plus the tip pointer.
    static func batch(_ n: Int) -> WriteBatch {
        var batch = WriteBatch()
        let id = String(format: "%08d", n)
        batch.put(d("block/\(id)"), Data(repeating: UInt8(truncatingIfNeeded: n), count: 512), in: "blocks")
        batch.put(d("header/\(id)"), d("h\(n)"), in: "blocks")
        batch.put(d("height/\(id)"), d(id), in: "index")
        batch.put(d("tip"), d(id), in: "index")
        return batch
    }

    @Test func crashWriterChild() throws {
        guard let path = ProcessInfo.processInfo.environment[Self.childVariable] else { return }
        let db = try Database.open(path: path, options: DatabaseOptions(columnFamilies: Self.columnFamilies))
        for n in 0..<1_000_000 {
            try db.write(Self.batch(n), sync: true)
            // Unbuffered write(2): the ack reaches the pipe before the next batch starts.
            FileHandle.standardOutput.write(Data("ack \(n)\n".utf8))
        }
    }

    #if os(Linux)
    @Test(.timeLimit(.minutes(2)))
    func acknowledgedSyncedBatchesSurviveSIGKILL() throws {
        let tmp = TempDir()
        let path = tmp.path()
        let executable = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")

        let child = Process()
        child.executableURL = URL(fileURLWithPath: executable)
        child.arguments = ["--testing-library", "swift-testing", "--filter", "crashWriterChild"]
        var environment = ProcessInfo.processInfo.environment
        environment[Self.childVariable] = path
        child.environment = environment
        let stdout = Pipe()
        child.standardOutput = stdout
        child.standardError = FileHandle.nullDevice
        try child.run()

        // Read acks until enough batches are acknowledged, then kill mid-stream.
        var buffer = Data()
        var acked = -1
        func consume(_ chunk: Data) {
            buffer.append(chunk)
            while let newline = buffer.firstIndex(of: 0x0a) {
                let line = String(decoding: buffer[buffer.startIndex..<newline], as: UTF8.self)
                buffer.removeSubrange(buffer.startIndex...newline)
                if line.hasPrefix("ack "), let n = Int(line.dropFirst(4)) {
                    #expect(n == acked + 1, "acks arrive in order")
                    acked = n
                }
            }
        }
        let reader = stdout.fileHandleForReading
        while acked < 150 {
            let chunk = reader.availableData
            if chunk.isEmpty { break }  // child ended on its own: failure reported below
            consume(chunk)
        }
        #expect(child.isRunning, "writer must still be running when killed")
        // Another *process* holds the LOCK: the typed error, not a generic I/O error.
        #expect(throws: StoreError.lockHeld(path)) { try Database.open(path: path) }
        kill(child.processIdentifier, SIGKILL)
        // Acks written before the kill are acknowledged too.
        while true {
            let chunk = reader.availableData
            if chunk.isEmpty { break }
            consume(chunk)
        }
        child.waitUntilExit()
        #expect(child.terminationReason == .uncaughtSignal)
        #expect(child.terminationStatus == SIGKILL)
        try #require(acked >= 150, "child acknowledged only \(acked + 1) batches")

        let db = try Database.open(path: path)
        #expect(Set(db.columnFamilies) == Set([defaultColumnFamily] + Self.columnFamilies))
        // Every acknowledged batch is complete.
        for n in 0...acked {
            let id = String(format: "%08d", n)
            #expect(try db.get(d("block/\(id)"), in: "blocks") == Data(repeating: UInt8(truncatingIfNeeded: n), count: 512))
            #expect(try db.get(d("header/\(id)"), in: "blocks") == d("h\(n)"))
            #expect(try db.get(d("height/\(id)"), in: "index") == d(id))
        }
        // At most one batch past the last ack (in flight when killed), and it is
        // either fully present or fully absent; the tip points at the last batch.
        let heights = try db.scan("index", prefix: d("height/")).collect()
        #expect(heights.count == acked + 1 || heights.count == acked + 2)
        let last = heights.count - 1
        let lastID = String(format: "%08d", last)
        #expect(try db.get(d("tip"), in: "index") == d(lastID))
        #expect(try db.get(d("block/\(lastID)"), in: "blocks") != nil)
        #expect(try db.get(d("header/\(lastID)"), in: "blocks") == d("h\(last)"))
        #expect(try db.scan("blocks", prefix: d("block/")).collect().count == heights.count)
        #expect(try db.scan("blocks", prefix: d("header/")).collect().count == heights.count)
        try db.close()
    }
    #endif
}
