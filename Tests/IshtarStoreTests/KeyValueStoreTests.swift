import IshtarTestSupport
import Foundation
import Testing
import IshtarStore

/// Behaviour every `KeyValueStore` must share; each test runs on RocksDB and on
/// `InMemoryStore`, so the in-memory store is held to the same contract.
@Suite("KeyValueStore contract")
struct KeyValueStoreTests {
    @Test(arguments: Backend.allCases)
    func batchIsAllOrNothing(_ backend: Backend) throws {
        let tmp = TempDir()
        let store = try makeStore(backend, tmp, columnFamilies: ["blocks", "index"])

        // A batch that is built but never written leaves nothing behind.
        var unwritten = WriteBatch()
        unwritten.put(d("h1"), d("block1"), in: "blocks")
        unwritten.put(d("tip"), d("h1"), in: "index")
        #expect(unwritten.count == 2)
        #expect(try store.get(d("h1"), in: "blocks") == nil)
        #expect(try store.get(d("tip"), in: "index") == nil)

        // A batch naming an unknown CF fails as a whole: its valid ops are not applied.
        var bad = WriteBatch()
        bad.put(d("h1"), d("block1"), in: "blocks")
        bad.put(d("x"), d("y"), in: "nope")
        #expect(throws: StoreError.unknownColumnFamily("nope")) { try store.write(bad) }
        #expect(try store.get(d("h1"), in: "blocks") == nil)

        // A good batch across CFs: everything visible, in one step, to a snapshot
        // taken just before (nothing) and after (everything).
        let before = try store.snapshot()
        var commit = WriteBatch()
        commit.put(d("h1"), d("block1"), in: "blocks")
        commit.put(d("h2"), d("block2"), in: "blocks")
        commit.put(d("tip"), d("h2"), in: "index")
        commit.delete(d("never-existed"), in: "index")
        try store.write(commit, sync: true)
        let after = try store.snapshot()
        for (key, cf) in [(d("h1"), "blocks"), (d("h2"), "blocks"), (d("tip"), "index")] {
            #expect(try before.get(key, in: cf) == nil)
            #expect(try after.get(key, in: cf) != nil)
        }

        // Later ops in a batch win over earlier ones on the same key.
        var overwrite = WriteBatch()
        overwrite.put(d("tip"), d("h3"), in: "index")
        overwrite.delete(d("tip"), in: "index")
        overwrite.put(d("tip"), d("h4"), in: "index")
        try store.write(overwrite)
        #expect(try store.get(d("tip"), in: "index") == d("h4"))

        // deleteRange removes [start, end) only; an inverted range is a no-op.
        var ranged = WriteBatch()
        for k in ["a", "b", "c", "d"] { ranged.put(d(k), d(k)) }
        try store.write(ranged)
        var deletion = WriteBatch()
        deletion.deleteRange(d("b"), d("d"))
        deletion.deleteRange(d("d"), d("a"))
        try store.write(deletion)
        #expect(try keys(store.scan(defaultColumnFamily, .all, direction: .forward)) == [d("a"), d("d")])
        try store.close()
    }

    @Test(arguments: Backend.allCases)
    func iterationBoundaries(_ backend: Backend) throws {
        let tmp = TempDir()
        let store = try makeStore(backend, tmp, columnFamilies: ["cf"])
        let all: [Data] = [
            Data(), b(0x00), b(0x01), b(0x01, 0x00), b(0x01, 0xff), b(0x02),
            b(0x7f), b(0x80), b(0xfe, 0xff), b(0xff), b(0xff, 0x00), b(0xff, 0xff), b(0xff, 0xff, 0x01),
        ]
        var batch = WriteBatch()
        // Insert shuffled: order must come from the comparator, not insertion.
        var rng = SplitMix64(seed: 42)
        for key in all.shuffled(using: &rng) { batch.put(key, key + b(0xaa), in: "cf") }
        try store.write(batch)
        // Something in another CF must never leak into "cf" scans.
        try put(store, b(0x01), d("other"))

        func scan(_ range: KeyRange, _ direction: ScanDirection = .forward) throws -> [Data] {
            try keys(store.scan("cf", range, direction: direction))
        }

        // Bytewise order: unsigned bytes, shorter prefix first.
        #expect(try scan(.all) == all)
        #expect(try scan(.all, .reverse) == all.reversed())
        let values = try pairs(store.scan("cf", .all, direction: .forward))
        #expect(values.allSatisfy { $0.value == $0.key + b(0xaa) })

        // Empty prefix = everything.
        #expect(try scan(.prefix(Data())) == all)
        #expect(try scan(.prefix(Data()), .reverse) == all.reversed())
        // Ordinary prefix.
        #expect(try scan(.prefix(b(0x01))) == [b(0x01), b(0x01, 0x00), b(0x01, 0xff)])
        #expect(try scan(.prefix(b(0x01)), .reverse) == [b(0x01, 0xff), b(0x01, 0x00), b(0x01)])
        // Prefixes of 0xff bytes have no successor: unbounded above.
        #expect(try scan(.prefix(b(0xff))) == [b(0xff), b(0xff, 0x00), b(0xff, 0xff), b(0xff, 0xff, 0x01)])
        #expect(try scan(.prefix(b(0xff, 0xff)), .reverse) == [b(0xff, 0xff, 0x01), b(0xff, 0xff)])
        // Prefix ending in 0xff: successor increments the previous byte.
        #expect(try scan(.prefix(b(0xfe, 0xff))) == [b(0xfe, 0xff)])
        #expect(KeyRange.prefixSuccessor(b(0xfe, 0xff)) == b(0xff))
        #expect(KeyRange.prefixSuccessor(b(0xff, 0xff)) == nil)
        #expect(KeyRange.prefixSuccessor(Data()) == nil)
        // No match.
        #expect(try scan(.prefix(b(0x03))) == [])
        #expect(try scan(.prefix(b(0x03)), .reverse) == [])

        // Range: start inclusive, end exclusive, both directions.
        #expect(try scan(.range(b(0x01), b(0x02))) == [b(0x01), b(0x01, 0x00), b(0x01, 0xff)])
        #expect(try scan(.range(b(0x01), b(0x02)), .reverse) == [b(0x01, 0xff), b(0x01, 0x00), b(0x01)])
        #expect(try scan(.range(b(0x01, 0x00), b(0x7f))) == [b(0x01, 0x00), b(0x01, 0xff), b(0x02)])
        // Bounds that are not keys.
        #expect(try scan(.range(b(0x03), b(0x80, 0x00))) == [b(0x7f), b(0x80)])
        #expect(try scan(.range(b(0x03), b(0x80, 0x00)), .reverse) == [b(0x80), b(0x7f)])
        // Open ends.
        #expect(try scan(.range(nil, b(0x01))) == [Data(), b(0x00)])
        #expect(try scan(.range(nil, b(0x01)), .reverse) == [b(0x00), Data()])
        #expect(try scan(.range(b(0xff, 0xff), nil)) == [b(0xff, 0xff), b(0xff, 0xff, 0x01)])
        // Empty and inverted ranges yield nothing.
        #expect(try scan(.range(b(0x02), b(0x02))) == [])
        #expect(try scan(.range(b(0x02), b(0x02)), .reverse) == [])
        #expect(try scan(.range(b(0x80), b(0x02))) == [])
        #expect(try scan(.range(b(0x80), b(0x02)), .reverse) == [])
        // Single-key range.
        #expect(try scan(.range(b(0x02), b(0x02, 0x00))) == [b(0x02)])
        #expect(try scan(.range(b(0x02), b(0x02, 0x00)), .reverse) == [b(0x02)])

        // The convenience forms agree with KeyRange.
        #expect(try keys(store.scan("cf", prefix: b(0x01), direction: .forward)) == scan(.prefix(b(0x01))))
        #expect(try keys(store.scan("cf", from: b(0x02), to: b(0xff))) == scan(.range(b(0x02), b(0xff))))

        // An iterator is a point-in-time view: writes after its creation are invisible.
        let iterator = try store.scan("cf", .all, direction: .forward)
        #expect(try iterator.nextPair()?.key == Data())
        var later = WriteBatch()
        later.put(b(0x00, 0x01), d("late"), in: "cf")
        later.delete(b(0x01), in: "cf")
        try store.write(later)
        let rest = try keys(iterator)
        #expect(rest == Array(all.dropFirst()))
        #expect(try iterator.nextPair() == nil)  // stays exhausted
        try store.close()
    }

    @Test(arguments: Backend.allCases)
    func snapshotIsolation(_ backend: Backend) throws {
        let tmp = TempDir()
        let store = try makeStore(backend, tmp, columnFamilies: ["cf"])
        var initial = WriteBatch()
        for i in 0..<10 { initial.put(d("k\(i)"), d("v\(i)"), in: "cf") }
        try store.write(initial)

        let snapshot = try store.snapshot()

        var changes = WriteBatch()
        changes.put(d("k0"), d("changed"), in: "cf")
        changes.delete(d("k1"), in: "cf")
        changes.put(d("k99"), d("new"), in: "cf")
        changes.deleteRange(d("k5"), d("k8"), in: "cf")
        try store.write(changes)

        // Live view sees the changes…
        #expect(try store.get(d("k0"), in: "cf") == d("changed"))
        #expect(try store.get(d("k1"), in: "cf") == nil)
        #expect(try keys(store.scan("cf", .all, direction: .forward)).count == 7)
        // …the snapshot does not, through get or iteration, in either direction.
        #expect(try snapshot.get(d("k0"), in: "cf") == d("v0"))
        #expect(try snapshot.get(d("k1"), in: "cf") == d("v1"))
        #expect(try snapshot.get(d("k99"), in: "cf") == nil)
        let expected = (0..<10).map { d("k\($0)") }
        #expect(try keys(snapshot.scan("cf", .all, direction: .forward)) == expected)
        #expect(try keys(snapshot.scan("cf", .all, direction: .reverse)) == expected.reversed())
        #expect(try keys(snapshot.scan("cf", prefix: d("k9"))) == [d("k9")])
        #expect(try pairs(snapshot.scan("cf", from: d("k5"), to: d("k7"))) ==
                [Pair(key: d("k5"), value: d("v5")), Pair(key: d("k6"), value: d("v6"))])
        #expect(throws: StoreError.unknownColumnFamily("zz")) { try snapshot.get(d("k0"), in: "zz") }

        try store.close()
        #expect(throws: StoreError.closed) { try snapshot.get(d("k0"), in: "cf") }
        #expect(throws: StoreError.closed) { try store.get(d("k0"), in: "cf") }
        var batch = WriteBatch()
        batch.put(d("a"), d("b"))
        #expect(throws: StoreError.closed) { try store.write(batch) }
        try store.close()  // idempotent
    }

    /// `value(_:in:equals:)` answers exactly what comparing `get` would: absent is `nil`,
    /// equal bytes `true`, and a value that differs in one byte, is a prefix or extends the
    /// expected bytes `false`. On RocksDB the same answers hold once the values were flushed
    /// to tables (pinned from a block rather than the memtable) after a reopen.
    @Test(arguments: Backend.allCases)
    func valueEqualsMatchesGet(_ backend: Backend) throws {
        let tmp = TempDir()
        var store = try makeStore(backend, tmp, columnFamilies: ["blocks"])
        let big = Data((0..<70_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        var flipped = big
        flipped[50_000] ^= 1
        try put(store, d("big"), big, in: "blocks")
        try put(store, d("empty"), Data(), in: "blocks")
        try put(store, d("small"), d("abc"))
        func check(_ store: any KeyValueStore) throws {
            #expect(try store.value(d("big"), in: "blocks", equals: big) == true)
            #expect(try store.value(d("big"), in: "blocks", equals: flipped) == false)
            #expect(try store.value(d("big"), in: "blocks", equals: big.prefix(69_999)) == false)
            #expect(try store.value(d("big"), in: "blocks", equals: big + Data([0])) == false)
            #expect(try store.value(d("big"), in: "blocks", equals: Data(big[1...])) == false)
            #expect(try store.value(d("empty"), in: "blocks", equals: Data()) == true)
            #expect(try store.value(d("empty"), in: "blocks", equals: d("x")) == false)
            #expect(try store.value(d("small"), in: defaultColumnFamily, equals: d("abc")) == true)
            #expect(try store.value(d("small"), in: defaultColumnFamily, equals: Data()) == false)
            #expect(try store.value(d("absent"), in: "blocks", equals: Data()) == nil)
            #expect(try store.value(d("big"), in: defaultColumnFamily, equals: big) == nil)
            #expect(throws: StoreError.unknownColumnFamily("nope")) { try store.value(d("big"), in: "nope", equals: big) }
        }
        try check(store)
        if backend == .rocksdb {
            try store.close()
            store = try makeStore(backend, tmp, columnFamilies: ["blocks"])
            try check(store)
        }
        try store.close()
    }

    /// A batch keeps its operations' bytes in one buffer; what it hands back must be exactly
    /// what was queued, in order, whichever `put` took the bytes, across interleaved column
    /// families, with empty keys and values — and `clear` must forget the families too.
    @Test func writeBatchGivesBackWhatWasQueued() {
        var batch = WriteBatch()
        batch.put(d("k1"), d("v1"), in: "a")
        d("k2").withUnsafeBytes { k in d("v2").withUnsafeBytes { batch.put(key: k, value: $0, in: "b") } }
        batch.put(Array("k3".utf8), [], in: "a")
        batch.delete(Data(), in: "b")
        d("k4").withUnsafeBytes { batch.delete(key: $0) }
        batch.deleteRange(d("a"), d("z"), in: "a")
        batch.put(Data(), Data())
        let expected: [BatchOperation] = [
            .put(columnFamily: "a", key: d("k1"), value: d("v1")),
            .put(columnFamily: "b", key: d("k2"), value: d("v2")),
            .put(columnFamily: "a", key: d("k3"), value: Data()),
            .delete(columnFamily: "b", key: Data()),
            .delete(columnFamily: defaultColumnFamily, key: d("k4")),
            .deleteRange(columnFamily: "a", start: d("a"), end: d("z")),
            .put(columnFamily: defaultColumnFamily, key: Data(), value: Data()),
        ]
        #expect(batch.operations == expected)
        #expect(batch.count == expected.count && !batch.isEmpty)
        var same = WriteBatch()
        for op in expected {
            switch op {
            case .put(let cf, let k, let v): same.put(k, v, in: cf)
            case .delete(let cf, let k): same.delete(k, in: cf)
            case .deleteRange(let cf, let s, let e): same.deleteRange(s, e, in: cf)
            }
        }
        #expect(same == batch)
        same.put(d("one more"), d("x"))
        #expect(same != batch)
        batch.clear()
        #expect(batch.isEmpty && batch.operations.isEmpty)
        batch.put(d("after"), d("clear"), in: "c")
        #expect(batch.operations == [.put(columnFamily: "c", key: d("after"), value: d("clear"))])
    }

    /// The same seeded random operation sequence on both stores must produce the same
    /// observations at every step: gets, full and random range scans in both
    /// directions, and reads through snapshots taken along the way.
    @Test(arguments: [1, 2, 3, 0xDEAD_BEEF] as [UInt64])
    func inMemoryStoreMatchesRocksDB(seed: UInt64) throws {
        let tmp = TempDir()
        let cfs = ["a", "b"]
        let rocks = try Database.open(path: tmp.path(), options: DatabaseOptions(columnFamilies: cfs))
        let memory = InMemoryStore(columnFamilies: cfs)
        let stores: [any KeyValueStore] = [rocks, memory]
        var rng = SplitMix64(seed: seed)

        // Small key alphabet with 0x00/0xff edges so keys collide, share prefixes and
        // hit the bytewise-order corner cases.
        func randomKey() -> Data {
            let alphabet: [UInt8] = [0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff]
            return Data((0..<Int.random(in: 0...3, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! })
        }
        func randomCF() -> String { (cfs + [defaultColumnFamily]).randomElement(using: &rng)! }
        func randomRange() -> KeyRange {
            switch Int.random(in: 0..<4, using: &rng) {
            case 0: return .all
            case 1: return .prefix(randomKey())
            case 2: return .range(randomKey(), randomKey())
            default: return .range(Bool.random(using: &rng) ? nil : randomKey(), Bool.random(using: &rng) ? nil : randomKey())
            }
        }

        var snapshots: [(any KeyValueReader, any KeyValueReader)] = []
        for step in 0..<400 {
            var batch = WriteBatch()
            for _ in 0..<Int.random(in: 1...6, using: &rng) {
                switch Int.random(in: 0..<10, using: &rng) {
                case 0..<6: batch.put(randomKey(), Data([UInt8(truncatingIfNeeded: step)]) + randomKey(), in: randomCF())
                case 6..<9: batch.delete(randomKey(), in: randomCF())
                default: batch.deleteRange(randomKey(), randomKey(), in: randomCF())
                }
            }
            if Int.random(in: 0..<25, using: &rng) == 0 { batch.put(d("x"), d("y"), in: "unknown") }
            var outcomes: [String] = []
            for store in stores {
                do { try store.write(batch, sync: false); outcomes.append("ok") } catch { outcomes.append("\(error)") }
            }
            #expect(outcomes[0] == outcomes[1], "step \(step)")

            if step % 40 == 0 {
                snapshots.append((try rocks.snapshot(), try memory.snapshot()))
            }
            let key = randomKey(), cf = randomCF()
            #expect(try rocks.get(key, in: cf) == memory.get(key, in: cf), "get step \(step)")
            let range = randomRange()
            let direction: ScanDirection = Bool.random(using: &rng) ? .forward : .reverse
            let scanCF = randomCF()
            #expect(try pairs(rocks.scan(scanCF, range, direction: direction)) ==
                    pairs(memory.scan(scanCF, range, direction: direction)), "scan step \(step) \(range)")
            if let (rs, ms) = snapshots.randomElement(using: &rng) {
                #expect(try pairs(rs.scan(scanCF, range, direction: direction)) ==
                        pairs(ms.scan(scanCF, range, direction: direction)), "snapshot scan step \(step)")
                #expect(try rs.get(key, in: cf) == ms.get(key, in: cf))
            }
        }
        for cf in cfs + [defaultColumnFamily] {
            #expect(try pairs(rocks.scan(cf, .all, direction: .forward)) == pairs(memory.scan(cf, .all, direction: .forward)))
        }
        snapshots.removeAll()
        try rocks.close()
    }
}
