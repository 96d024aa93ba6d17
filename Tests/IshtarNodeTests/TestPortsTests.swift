import Foundation
import IshtarTestSupport
import Testing

/// The base ports handed to node tests: tests that start nodes at the same time must never
/// be given overlapping ports (random bases once collided in CI: "Address already in use").
struct TestPortsTests {
    @Test func concurrentCallersGetDisjointFreeBlocks() async {
        let bases = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<24 { group.addTask { TestPorts.basePort() } }
            return await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(Set(bases).count == bases.count, "a base handed out twice: \(bases.sorted())")
        let sorted = bases.sorted()
        for (a, b) in zip(sorted, sorted.dropFirst()) {
            #expect(b - a >= TestPorts.portBlockSpan, "blocks at \(a) and \(b) overlap")
        }
        for base in bases {
            #expect(base % 2 == 0 && base >= 20_000 && base + TestPorts.portBlockSpan <= 32_000, "\(base) outside 20000..<32000 or odd")
        }
    }
}
