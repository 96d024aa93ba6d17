import CJemalloc
import Testing
import IshtarStore

/// jemalloc must be the allocator the process actually uses, not just a library that is
/// linked in: Swift's own allocations have to be counted by it.
@Suite struct MemoryAllocatorTests {
    @Test func jemallocAnswersItsControlInterface() throws {
        let version = try #require(MemoryAllocator.version)
        #expect(version.hasPrefix("5."), "unexpected jemalloc version \(version)")
    }

    @Test func swiftAllocationsAreServedByJemalloc() throws {
        // This thread's cumulative allocation counter (no other test can move it).
        func allocatedByThisThread() throws -> UInt64 {
            var value: UInt64 = 0
            var length = MemoryLayout<UInt64>.size
            try #require(mallctl("thread.allocated", &value, &length, nil, 0) == 0)
            return value
        }
        let before = try allocatedByThisThread()
        let size = 8 << 20
        let buffer = [UInt8](repeating: 7, count: size)
        let after = try allocatedByThisThread()
        #expect(buffer.count == size)
        #expect(after - before >= UInt64(size), "an \(size)-byte Swift array moved jemalloc's counter by \(after - before)")
        let total = try #require(MemoryAllocator.allocatedBytes())
        #expect(total >= size)
    }
}
