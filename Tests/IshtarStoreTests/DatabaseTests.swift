import IshtarTestSupport
import Foundation
import Testing
@testable import IshtarStore

@Suite("Database (RocksDB)")
struct DatabaseTests {
    @Test func roundTripPerColumnFamily() throws {
        let tmp = TempDir()
        let db = try Database.open(path: tmp.path(), options: DatabaseOptions(columnFamilies: ["blocks", "signing"]))
        #expect(db.columnFamilies == ["default", "blocks", "signing"])

        // Same key, different value per CF: column families are separate keyspaces.
        try db.put(d("k"), d("v-default"))
        try db.put(d("k"), d("v-blocks"), in: "blocks")
        try db.put(d("k"), d("v-signing"), in: "signing", sync: false)
        #expect(try db.get(d("k")) == d("v-default"))
        #expect(try db.get(d("k"), in: "blocks") == d("v-blocks"))
        #expect(try db.get(d("k"), in: "signing") == d("v-signing"))
        #expect(try db.get(d("absent"), in: "blocks") == nil)

        // Empty key and empty value are legal and distinct from "absent".
        try db.put(Data(), Data(), in: "blocks")
        #expect(try db.get(Data(), in: "blocks") == Data())

        // Binary values survive unchanged.
        let blob = Data((0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        try db.put(b(0x00, 0xff), blob, in: "signing")
        #expect(try db.get(b(0x00, 0xff), in: "signing") == blob)

        try db.delete(d("k"), in: "blocks")
        #expect(try db.get(d("k"), in: "blocks") == nil)
        #expect(try db.get(d("k")) == d("v-default"))

        #expect(try db.multiGet([d("k"), d("nope"), Data()], in: "blocks") == [nil, nil, Data()])
        #expect(try db.multiGet([d("k")]) == [d("v-default")])
        #expect(try db.multiGet([], in: "blocks") == [])

        #expect(throws: StoreError.unknownColumnFamily("nope")) { try db.get(d("k"), in: "nope") }
        #expect(throws: StoreError.unknownColumnFamily("nope")) { try db.put(d("k"), d("v"), in: "nope") }
        #expect(throws: StoreError.unknownColumnFamily("nope")) { try db.scan("nope", .all, direction: .forward) }
        try db.close()
    }

    /// The order `write` and `multiGet` hand keys to RocksDB in (which `multiGet` tells
    /// RocksDB is sorted) must be exactly bytewise order, ties by position: checked against
    /// a plain sort of random keys that share long heads and end around the 16-byte mark.
    @Test(arguments: [1, 2, 3] as [UInt64])
    func keyOrderIsBytewiseOrder(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        let keys: [[UInt8]] = (0..<500).map { _ in
            let head = [UInt8](repeating: UInt8(rng.next() % 2), count: Int(rng.next() % 20))
            return head + (0..<Int(rng.next() % 4)).map { _ in UInt8(rng.next() % 3) * 127 }
        }
        var arena: [UInt8] = []
        var offsets: [Int] = []
        for key in keys { offsets.append(arena.count); arena += key }
        arena.append(0)
        let order = arena.withUnsafeBytes { buffer in
            Database.keyOrder(keys.count, base: buffer.baseAddress!) { (offsets[$0], keys[$0].count) }
        }
        let expected = keys.indices.sorted { i, j in
            keys[i] == keys[j] ? i < j : keys[i].lexicographicallyPrecedes(keys[j])
        }
        #expect(order == expected)
    }

    /// `multiGet` (RocksDB's batched lookup) answers keys in the caller's order, from the
    /// memtable and from flushed tables alike, repeats a repeated key, and read through a
    /// snapshot sees the values as of the snapshot.
    @Test func multiGetAnswersInOrderAcrossMemtableTablesAndSnapshots() throws {
        let tmp = TempDir()
        let db = try Database.open(path: tmp.path(), options: DatabaseOptions(columnFamilies: ["state"]))
        for i in stride(from: 0, to: 200, by: 2) { try db.put(d("k\(i)"), d("flushed-\(i)"), in: "state", sync: false) }
        try db.flush()
        for i in stride(from: 1, to: 200, by: 4) { try db.put(d("k\(i)"), d("memtable-\(i)"), in: "state", sync: false) }
        let keys = (0..<200).reversed().map { d("k\($0)") } + [d("k4"), d("k4"), d("missing")]
        var expected: [Data?] = []
        for i in (0..<200).reversed() {
            if i % 2 == 0 { expected.append(d("flushed-\(i)")) } else if i % 4 == 1 { expected.append(d("memtable-\(i)")) } else { expected.append(nil) }
        }
        expected += [d("flushed-4"), d("flushed-4"), nil]
        #expect(try db.multiGet(keys, in: "state") == expected)
        #expect(try db.multiGet(keys, in: "state") == keys.map { try? db.get($0, in: "state") })
        // The same keys laid out in one buffer, with an empty key among them.
        try db.put(Data(), d("empty key"), in: "state", sync: false)
        var list = KeyList()
        for key in keys + [Data()] { list.append(key) }
        #expect(list.keys == keys + [Data()])
        #expect(try db.multiGet(list, in: "state") == expected + [d("empty key")])
        var onlyEmpty = KeyList()
        onlyEmpty.append(Data())
        onlyEmpty.append(Data())
        #expect(try db.multiGet(onlyEmpty, in: "state") == [d("empty key"), d("empty key")])
        #expect(try db.multiGet(KeyList(), in: "state") == [])

        let snapshot = try db.snapshot()
        try db.put(d("k4"), d("after the snapshot"), in: "state", sync: false)
        try db.delete(d("k1"), in: "state", sync: false)
        #expect(try snapshot.multiGet([d("k4"), d("k1")], in: "state") == [d("flushed-4"), d("memtable-1")])
        var pair = KeyList()
        pair.append(d("k4"))
        pair.append(d("k1"))
        #expect(try snapshot.multiGet(pair, in: "state") == [d("flushed-4"), d("memtable-1")])
        #expect(try db.multiGet([d("k4"), d("k1")], in: "state") == [d("after the snapshot"), nil])
        #expect(throws: StoreError.unknownColumnFamily("nope")) { try db.multiGet([d("k4")], in: "nope") }
        try db.close()
    }

    /// The memtable bloom (`memtableBloomPrefixBytes`, `memtableWholeKeyBloom`) must only
    /// ever skip keys that are absent: keys shorter than, equal to and longer than the
    /// prefix, keys sharing a prefix, read from the memtable and again from tables after a
    /// reopen; and scans that cross prefixes must still see every key in order. The same
    /// holds for a family listed in `columnFamiliesWithoutMemtableBloom` (its own options,
    /// without the filter, beside the other families').
    @Test(arguments: [nil, 4, 16], ["prefix", "whole keys", "none for the family"])
    func prefixBloomNeverHidesKeysOrBreaksScans(prefix: Int?, bloom: String) throws {
        let tmp = TempDir()
        var options = DatabaseOptions(columnFamilies: ["state", "other"])
        options.memtableBloomPrefixBytes = prefix
        options.memtableWholeKeyBloom = bloom != "prefix"
        if bloom == "none for the family" { options.columnFamiliesWithoutMemtableBloom = ["state"] }
        // RocksDB records each family's options in the database's OPTIONS file: the listed
        // family must have its own, without the filter.
        func bloomRatio(of family: String) throws -> String? {
            let files = try FileManager.default.contentsOfDirectory(atPath: tmp.path()).filter { $0.hasPrefix("OPTIONS-") }
            let latest = try #require(files.max { Int($0.dropFirst(8)) ?? 0 < Int($1.dropFirst(8)) ?? 0 })
            let text = try String(contentsOfFile: tmp.path() + "/" + latest, encoding: .utf8)
            let section = text.components(separatedBy: "[CFOptions \"\(family)\"]").dropFirst().first?
                .components(separatedBy: "\n[").first ?? ""
            return section.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
                .first { $0.hasPrefix("memtable_prefix_bloom_size_ratio=") }.map { String($0.dropFirst(33)) }
        }
        var present: [Data] = []
        var absent: [Data] = []
        for length in [0, 1, 3, 4, 5, 15, 16, 17, 40] {
            for variant in 0..<6 {
                var key = Data((0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })
                if length > 0 { key[key.count - 1] = UInt8(variant) }
                if variant % 2 == 0 { present.append(key) } else { absent.append(key) }
            }
        }
        present = Array(Set(present))
        absent = Array(Set(absent).subtracting(present))
        var db = try Database.open(path: tmp.path(), options: options)
        let filtered = prefix != nil || bloom != "prefix"
        #expect(try bloomRatio(of: "other").map { Double($0) } == (filtered ? 0.05 : 0))
        #expect(try bloomRatio(of: "state").map { Double($0) } == (filtered && bloom != "none for the family" ? 0.05 : 0))
        for (i, key) in present.enumerated() { try db.put(key, Data("v\(i)".utf8), in: "state", sync: false) }
        for (i, key) in present.enumerated() { try db.put(key, Data("o\(i)".utf8), in: "other", sync: false) }
        for round in 0..<2 {
            for (i, key) in present.enumerated() { #expect(try db.get(key, in: "state") == Data("v\(i)".utf8), "round \(round)") }
            for key in absent { #expect(try db.get(key, in: "state") == nil, "round \(round)") }
            #expect(try db.multiGet(absent + present, in: "state")
                == absent.map { _ in nil } + present.indices.map { Data("v\($0)".utf8) }, "round \(round)")
            #expect(try db.multiGet(present, in: "other") == present.indices.map { Data("o\($0)".utf8) }, "round \(round)")
            let scanned = try keys(db.scan("state", .all, direction: .forward))
            #expect(scanned == present.sorted { $0.lexicographicallyPrecedes($1) }, "round \(round)")
            let reversed = try keys(db.scan("state", .all, direction: .reverse))
            #expect(reversed == scanned.reversed(), "round \(round)")
            // Ranges that start and end inside long keys (in the prefix's domain) and cross
            // into other prefixes: a prefix-mode seek would stop at the first prefix.
            for start in scanned + absent where start.count >= 16 {
                let expected = scanned.filter { !$0.lexicographicallyPrecedes(start) }
                #expect(try keys(db.scan("state", .range(start, nil), direction: .forward)) == expected)
                let below = scanned.filter { $0.lexicographicallyPrecedes(start) }
                #expect(try keys(db.scan("state", .range(nil, start), direction: .reverse)) == below.reversed())
            }
            // Reopen: the memtable is flushed to a table, whose filters answer instead.
            try db.close()
            db = try Database.open(path: tmp.path(), options: options)
        }
        try db.close()
    }

    @Test func propertiesReportRocksDBsOwnCountersPerColumnFamily() throws {
        let tmp = TempDir()
        let db = try Database.open(path: tmp.path(), options: DatabaseOptions(columnFamilies: ["state", "blocks"]))
        for i in 0..<100 { try db.put(d("key-\(i)"), Data(repeating: 7, count: 100), in: "state", sync: false) }
        // The writes sit in the state family's memtable; the blocks family has none.
        let stateMemtable = try #require(try db.integerProperty("rocksdb.cur-size-all-mem-tables", in: ["state"]))
        let blocksEntries = try #require(try db.integerProperty("rocksdb.num-entries-active-mem-table", in: ["blocks"]))
        #expect(try db.integerProperty("rocksdb.num-entries-active-mem-table", in: ["state"]) == 100)
        #expect(blocksEntries == 0)
        #expect(stateMemtable >= 100 * 100)
        #expect(try db.integerProperty("rocksdb.num-files-at-level0") == 0)
        // A flush moves them into one L0 file of the state family.
        try db.flush()
        #expect(try db.integerProperty("rocksdb.num-files-at-level0", in: ["state"]) == 1)
        #expect(try db.integerProperty("rocksdb.num-entries-active-mem-table", in: ["state"]) == 0)
        // The multi-line report is text, not an integer; an unknown name is nil, not an error.
        #expect(try db.property("rocksdb.stats")?.contains("Compaction") == true)
        #expect(try db.integerProperty("rocksdb.stats") == nil)
        #expect(try db.property("rocksdb.no-such-property") == nil)
        #expect(throws: StoreError.unknownColumnFamily("nope")) { try db.property("rocksdb.stats", in: "nope") }
        try db.close()
        #expect(throws: StoreError.closed) { try db.property("rocksdb.stats") }
    }

    @Test func columnFamiliesAndDataPersistAcrossReopen() throws {
        let tmp = TempDir()
        do {
            let db = try Database.open(path: tmp.path(), options: DatabaseOptions(columnFamilies: ["a", "b"]))
            try db.put(d("x"), d("1"), in: "a")
            try db.put(d("y"), d("2"), in: "b")
            try db.close()
        }
        // Reopen asking for no CF at all: the existing ones must still be opened
        // (RocksDB refuses otherwise) and their data readable.
        do {
            let db = try Database.open(path: tmp.path())
            #expect(db.columnFamilies == ["default", "a", "b"])
            #expect(try db.get(d("x"), in: "a") == d("1"))
            #expect(try db.get(d("y"), in: "b") == d("2"))
            try db.close()
        }
        // Asking for a new CF adds it next to the existing ones.
        do {
            let db = try Database.open(path: tmp.path(), options: DatabaseOptions(columnFamilies: ["c", "a"]))
            #expect(Set(db.columnFamilies) == ["default", "a", "b", "c"])
            try db.put(d("z"), d("3"), in: "c")
            try db.close()
        }
        let db = try Database.open(path: tmp.path())
        #expect(try db.get(d("z"), in: "c") == d("3"))
        #expect(try db.get(d("x"), in: "a") == d("1"))
    }

    @Test func unsyncedWritesSurviveDropWithoutExplicitClose() throws {
        // Dropping the last reference closes in deinit (WAL sync + flush).
        let tmp = TempDir()
        do {
            let db = try Database.open(path: tmp.path())
            for i in 0..<100 { try db.put(d("k\(i)"), d("v\(i)"), sync: false) }
        }
        let db = try Database.open(path: tmp.path())
        for i in 0..<100 { #expect(try db.get(d("k\(i)")) == d("v\(i)")) }
    }

    @Test func secondOpenOfSamePathReportsLockHeld() throws {
        let tmp = TempDir()
        let path = tmp.path()
        let first = try Database.open(path: path)
        #expect(throws: StoreError.lockHeld(path)) { try Database.open(path: path) }
        // The failed open must not have disturbed the first handle.
        try first.put(d("k"), d("v"))
        try first.close()
        // After close the lock is free again.
        let second = try Database.open(path: path)
        #expect(try second.get(d("k")) == d("v"))
    }

    @Test func missingParentDirectoryIsTyped() throws {
        let tmp = TempDir()
        let parent = tmp.url.appendingPathComponent("no/such").path
        #expect(throws: StoreError.missingDirectory(parent)) {
            try Database.open(path: parent + "/db")
        }
    }

    @Test func openingAbsentDatabaseWithoutCreateIsInvalidArgument() throws {
        let tmp = TempDir()
        var options = DatabaseOptions()
        options.createIfMissing = false
        do {
            _ = try Database.open(path: tmp.path(), options: options)
            Issue.record("open should fail")
        } catch let error as StoreError {
            guard case .invalidArgument(let message) = error else {
                Issue.record("unexpected \(error)")
                return
            }
            #expect(message.contains("does not exist"))
        }
    }

    @Test func garbageCURRENTIsCorruption() throws {
        let tmp = TempDir()
        try Database.open(path: tmp.path()).close()
        try Data("\u{1}\u{2}garbage".utf8).write(to: tmp.url.appendingPathComponent("db/CURRENT"))
        do {
            _ = try Database.open(path: tmp.path())
            Issue.record("open should fail")
        } catch let error as StoreError {
            guard case .corruption = error else {
                Issue.record("expected .corruption, got \(error)")
                return
            }
        }
    }

    @Test func garbageMANIFESTIsCorruption() throws {
        let tmp = TempDir()
        do {
            let db = try Database.open(path: tmp.path(), options: DatabaseOptions(columnFamilies: ["a"]))
            try db.put(d("k"), d("v"), in: "a")
            try db.close()
        }
        let dir = tmp.url.appendingPathComponent("db")
        let manifests = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix("MANIFEST-") }
        #expect(!manifests.isEmpty)
        var rng = SplitMix64(seed: 7)
        let garbage = Data((0..<4096).map { _ in UInt8.random(in: 0...255, using: &rng) })
        for name in manifests { try garbage.write(to: dir.appendingPathComponent(name)) }
        do {
            _ = try Database.open(path: tmp.path())
            Issue.record("open should fail")
        } catch let error as StoreError {
            guard case .corruption = error else {
                Issue.record("expected .corruption, got \(error)")
                return
            }
        }
    }

    @Test func corruptTableSurfacesThroughIteratorAndGet() throws {
        let tmp = TempDir()
        var rng = SplitMix64(seed: 11)
        // Random (incompressible) values so data blocks fill most of the SST file.
        let value = { Data((0..<200).map { _ in UInt8.random(in: 0...255, using: &rng) }) }
        do {
            let db = try Database.open(path: tmp.path())
            var batch = WriteBatch()
            for i in 0..<3000 { batch.put(d(String(format: "key%05d", i)), value()) }
            try db.write(batch)
            try db.flush()  // memtable -> SST, so the next open reads from the file
            try db.close()
        }
        let dir = tmp.url.appendingPathComponent("db")
        let tables = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".sst") }
        try #require(!tables.isEmpty)
        for name in tables {
            let url = dir.appendingPathComponent(name)
            var bytes = try Data(contentsOf: url)
            // Flip bytes inside the data blocks (the first half of the file), leaving
            // the footer and index intact so the open itself succeeds.
            for offset in stride(from: bytes.count / 8, to: bytes.count / 2, by: 997) { bytes[offset] ^= 0x5a }
            try bytes.write(to: url)
        }
        let db = try Database.open(path: tmp.path())
        // The scan must end with a thrown corruption error (rocksdb_iter_get_error),
        // not silently stop as if the range were exhausted.
        let iterator = try db.scan(defaultColumnFamily, .all, direction: .forward)
        #expect {
            while try iterator.nextPair() != nil {}
        } throws: { error in
            guard case .corruption(let message) = error as? StoreError else { return false }
            return message.contains("checksum") || message.contains("block")
        }
        // The Sequence form stops early and keeps the error.
        let sequence = try db.scan(defaultColumnFamily, .all, direction: .forward)
        let seen = sequence.reduce(0) { count, _ in count + 1 }
        #expect(seen < 3000)
        #expect(sequence.error is StoreError)
        #expect(throws: StoreError.self) { try sequence.checkError() }
        // A point read inside a damaged block fails too, as a typed corruption.
        var corruptReads = 0
        for i in stride(from: 0, to: 3000, by: 50) {
            do { _ = try db.get(d(String(format: "key%05d", i))) } catch let error as StoreError {
                if case .corruption = error { corruptReads += 1 } else { Issue.record("unexpected \(error)") }
            }
        }
        #expect(corruptReads > 0)
    }

    @Test func useAfterCloseThrowsClosed() throws {
        let tmp = TempDir()
        let db = try Database.open(path: tmp.path(), options: DatabaseOptions(columnFamilies: ["a"]))
        try db.put(d("a1"), d("1"), in: "a")
        try db.put(d("a2"), d("2"), in: "a")
        let snapshot = try db.snapshot()
        let iterator = try db.scan("a", .all, direction: .forward)
        #expect(try iterator.nextPair()?.key == d("a1"))
        let cursor = try db.makeCursor(columnFamily: "a")

        try db.close()
        #expect(db.isClosed)
        try db.close()  // idempotent

        var batch = WriteBatch()
        batch.put(d("k"), d("v"))
        #expect(throws: StoreError.closed) { try db.get(d("a1"), in: "a") }
        #expect(throws: StoreError.closed) { try db.multiGet([d("a1")], in: "a") }
        #expect(throws: StoreError.closed) { try db.put(d("k"), d("v")) }
        #expect(throws: StoreError.closed) { try db.delete(d("k")) }
        #expect(throws: StoreError.closed) { try db.write(batch) }
        #expect(throws: StoreError.closed) { try db.scan("a", .all, direction: .forward) }
        #expect(throws: StoreError.closed) { try db.snapshot() }
        #expect(throws: StoreError.closed) { try db.flush() }
        #expect(throws: StoreError.closed) { try db.syncWAL() }
        // Iterators and snapshots made before close were released by it.
        #expect(throws: StoreError.closed) { try iterator.nextPair() }
        #expect(throws: StoreError.closed) { try cursor.seekToFirst() }
        #expect(throws: StoreError.closed) { try cursor.current() }
        #expect(throws: StoreError.closed) { try snapshot.get(d("a1"), in: "a") }
        #expect(throws: StoreError.closed) { try snapshot.scan("a", .all, direction: .forward) }

        // The LOCK was released even though an iterator and a snapshot are still
        // referenced: the data directory can be reopened right away.
        let reopened = try Database.open(path: tmp.path())
        #expect(try reopened.get(d("a2"), in: "a") == d("2"))
        withExtendedLifetime((iterator, cursor, snapshot)) {}
    }

    @Test func sequenceIterationSurfacesErrorThroughCheckError() throws {
        let tmp = TempDir()
        let db = try Database.open(path: tmp.path())
        for i in 0..<5 { try db.put(d("k\(i)"), d("v")) }
        let iterator = try db.scan(defaultColumnFamily, .all, direction: .forward)
        var seen = 0
        for _ in iterator {
            seen += 1
            if seen == 2 { try db.close() }
        }
        #expect(seen == 2)
        #expect(throws: StoreError.closed) { try iterator.checkError() }
    }

    @Test func cursorSeekAndSeekForPrev() throws {
        let tmp = TempDir()
        let db = try Database.open(path: tmp.path())
        for k in ["b", "d", "f"] { try db.put(d(k), d(k.uppercased())) }
        let cursor = try db.makeCursor(columnFamily: defaultColumnFamily)
        try cursor.seek(d("c"))
        #expect(try cursor.current()?.key == d("d"))
        try cursor.seekForPrev(d("c"))
        #expect(try cursor.current()?.key == d("b"))
        try cursor.seekForPrev(d("d"))
        #expect(try cursor.current()?.value == d("D"))
        try cursor.prev()
        try cursor.prev()
        #expect(try cursor.current() == nil)
        try cursor.seek(d("g"))
        #expect(try cursor.current() == nil)
        try cursor.seekToLast()
        #expect(try cursor.current()?.key == d("f"))
        try cursor.seekToFirst()
        #expect(try cursor.current()?.key == d("b"))

        // Native bounds: [c, f) hides b and f.
        let bounded = try db.makeCursor(columnFamily: defaultColumnFamily, lowerBound: d("c"), upperBound: d("f"))
        try bounded.seekToFirst()
        #expect(try bounded.current()?.key == d("d"))
        try bounded.next()
        #expect(try bounded.current() == nil)
        try bounded.seekToLast()
        #expect(try bounded.current()?.key == d("d"))
    }

    @Test func snapshotOfAnotherDatabaseIsRejected() throws {
        let tmp = TempDir()
        let a = try Database.open(path: tmp.path("a"))
        let other = try Database.open(path: tmp.path("b"))
        let snapshot = try other.snapshot()
        #expect(throws: StoreError.self) { try a.scan(defaultColumnFamily, .all, direction: .forward, snapshot: snapshot) }
    }

    /// Native batches are reused between writes: each write must carry only its own
    /// operations. Between batches a plain put changes a key an earlier batch wrote, so a
    /// stale operation replayed from a reused batch would undo it; and every batch deletes
    /// the key the previous one put.
    @Test func reusedBatchesCarryOnlyTheirOwnOperations() throws {
        let tmp = TempDir()
        let db = try Database.open(path: tmp.path(), options: DatabaseOptions(columnFamilies: ["state"]))
        for i in 0..<4 {
            var batch = WriteBatch()
            batch.put(d("shared"), d("batch \(i)"), in: "state")
            try db.write(batch, sync: false)
            try db.put(d("shared"), d("plain \(i)"), in: "state", sync: false)
            var other = WriteBatch()
            other.put(d("other"), d("\(i)"), in: "state")
            try db.write(other, sync: false)
            #expect(try db.get(d("shared"), in: "state") == d("plain \(i)"), "round \(i)")
        }
        try db.delete(d("shared"), in: "state")
        try db.delete(d("other"), in: "state")
        for i in 0..<8 {
            var batch = WriteBatch()
            if i > 0 { batch.delete(d("k\(i - 1)"), in: "state") }
            batch.put(d("k\(i)"), d("v\(i)"), in: "state")
            if i % 3 == 2 { batch.deleteRange(d("a"), d("b"), in: "state") }
            try db.write(batch, sync: false)
            #expect(try keys(db.scan("state", .all, direction: .forward)) == [d("k\(i)")], "after batch \(i)")
        }
        // A batch that fails (unknown column family) writes nothing and leaves no residue.
        var bad = WriteBatch()
        bad.put(d("zombie"), d("x"), in: "state")
        bad.put(d("k"), d("v"), in: "nope")
        #expect(throws: StoreError.unknownColumnFamily("nope")) { try db.write(bad) }
        var next = WriteBatch()
        next.put(d("after"), d("1"), in: "state")
        try db.write(next)
        #expect(try keys(db.scan("state", .all, direction: .forward)) == [d("after"), d("k7")])
        try db.close()
    }

    /// `write` puts a batch's operations into RocksDB in key order (faster memtable inserts);
    /// that must not change what the batch does. Seeded random batches — repeated keys, a
    /// key put then deleted then put again, empty keys, two column families, some batches
    /// with a range delete (written as queued) — go to RocksDB and to the in-memory store,
    /// which applies operations strictly in order; after every batch both hold the same.
    @Test(arguments: [1, 2, 3] as [UInt64])
    func batchesInKeyOrderDoWhatTheirQueueSays(seed: UInt64) throws {
        let tmp = TempDir()
        let families = ["state", "blocks"]
        let db = try Database.open(path: tmp.path(), options: DatabaseOptions(columnFamilies: families))
        let reference = InMemoryStore(columnFamilies: families)
        var rng = SplitMix64(seed: seed)
        // Few short keys so batches hit the same key several times; lengths 0–3 so keys are
        // prefixes of each other (memcmp ties broken by length). A third get a long common
        // head (14–17 bytes) first: the sort compares the first 16 bytes as two words, so keys
        // that differ only past them, or end just before or after them, must still keep order.
        func key() -> Data {
            let tail = Data((0..<Int(rng.next() % 4)).map { _ in UInt8(rng.next() % 3) })
            guard rng.next() % 3 == 0 else { return tail }
            return Data(repeating: UInt8(rng.next() % 2), count: 14 + Int(rng.next() % 4)) + tail
        }
        for round in 0..<200 {
            var batch = WriteBatch()
            let withRange = round % 7 == 6
            for i in 0..<Int(1 + rng.next() % 40) {
                let cf = families[Int(rng.next() % 2)]
                switch rng.next() % 5 {
                case 0: batch.delete(key(), in: cf)
                case 1 where withRange && i % 5 == 0: batch.deleteRange(key(), key(), in: cf)
                default: batch.put(key(), Data("r\(round) op\(i)".utf8), in: cf)
                }
            }
            try db.write(batch, sync: false)
            try reference.write(batch, sync: false)
            for cf in families {
                let got = try pairs(db.scan(cf, .all, direction: .forward))
                let want = try pairs(reference.scan(cf, .all, direction: .forward))
                #expect(got == want, "seed \(seed) round \(round) family \(cf)")
                if got != want { return }
            }
        }
        try db.close()
    }

    @Test func concurrentWritersAndReaders() async throws {
        let tmp = TempDir()
        let db = try Database.open(path: tmp.path())
        try await withThrowingTaskGroup(of: Void.self) { group in
            for t in 0..<4 {
                group.addTask {
                    for i in 0..<200 {
                        var batch = WriteBatch()
                        batch.put(d("t\(t)/\(i)/a"), d("\(i)"))
                        batch.put(d("t\(t)/\(i)/b"), d("\(i)"))
                        try db.write(batch, sync: false)
                        _ = try db.get(d("t\(t)/\(i)/a"))
                    }
                }
            }
            try await group.waitForAll()
        }
        for t in 0..<4 {
            #expect(try db.scan(defaultColumnFamily, prefix: d("t\(t)/")).collect().count == 400)
        }
    }

    @Test func rawBaselineWritesReadableData() throws {
        let tmp = TempDir()
        let batches = (0..<10).map { n in
            (0..<5).map { i in (key: Array("b\(n)k\(i)".utf8), value: [UInt8(n), UInt8(i)]) }
        }
        let elapsed = try RawRocksBaseline.writeBatches(path: tmp.path(), batches: batches, sync: false)
        #expect(elapsed >= .zero)
        let db = try Database.open(path: tmp.path())
        #expect(try db.get(d("b9k4")) == b(9, 4))
        #expect(try db.scan(defaultColumnFamily, .all, direction: .forward).collect().count == 50)
    }
}
