import Foundation
@testable import IshtarChain
import IshtarCrypto
import IshtarStore
import IshtarTestSupport
import Testing

/// Listings answer a page at a time (``PageRequest``): the limited overlay scan behind them
/// must return exactly the head of the full merged scan, and following `next_cursor` must
/// visit every item once, in order.
@Suite("Paged listings")
struct PagingTests {
    /// A random overlay stack over a random store: every limited scan, from every cursor,
    /// equals the same slice of the full merged scan, and says whether more follow.
    @Test(arguments: 0..<40)
    func limitedScanIsTheHeadOfTheFullScan(seed: Int) throws {
        var rng = SplitMix64(seed: 0x9A6E_0000 + UInt64(seed))
        let alphabet: [UInt8] = [0x00, 0x01, 0x7f, 0xfe, 0xff]
        func randomKey() -> Data {
            // Inside and just outside the scanned prefix "p".
            let head: UInt8 = [UInt8(ascii: "p"), UInt8(ascii: "p"), UInt8(ascii: "p"), UInt8(ascii: "o"), UInt8(ascii: "q")][Int.random(in: 0..<5, using: &rng)]
            return Data([head] + (0..<Int.random(in: 0...3, using: &rng)).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &rng)] })
        }
        let store = InMemoryStore(columnFamilies: ["state"])
        var batch = WriteBatch()
        for _ in 0..<Int.random(in: 0...40, using: &rng) { batch.put(randomKey(), Data([UInt8.random(in: 0...255, using: &rng)]), in: "state") }
        try store.write(batch, sync: false)
        let root = Overlay(base: store, columnFamily: "state", cache: CommittedCache(byteLimit: 1 << 20))
        let block = Overlay(parent: root)
        let tx = Overlay(parent: block)
        for layer in [block, tx] {
            for _ in 0..<Int.random(in: 0...12, using: &rng) {
                if Bool.random(using: &rng) { layer.set(randomKey(), Data([0xAA])) } else { layer.delete(randomKey()) }
            }
        }
        let range = KeyRange.prefix(Data("p".utf8))
        let full = try tx.scan(range)
        for limit in 1...7 {
            // From the start and after every listed key (the cursor a previous page returns).
            for start in [nil] + full.map({ Optional($0.key) }) {
                let lower = start.map { $0 + Data([0]) } ?? range.lower
                let (rows, more) = try tx.scan(KeyRange(lower: lower, upper: range.upper), limit: limit)
                let rest = full.filter { row in start.map { bytesPrecede($0, row.key) } ?? true }
                #expect(rows.map(\.key) == Array(rest.prefix(limit)).map(\.key), "seed \(seed) limit \(limit)")
                #expect(rows.map(\.value) == Array(rest.prefix(limit)).map(\.value), "seed \(seed) limit \(limit)")
                #expect(more == (rest.count > limit), "seed \(seed) limit \(limit)")
            }
        }
    }

    @Test func pageRequestsAreParsedStrictly() throws {
        #expect(try PageRequest.parse(limit: nil, cursor: nil) == nil)
        let page = try #require(try PageRequest.parse(limit: "5", cursor: "0aff"))
        #expect(page.limit == 5 && page.cursor == Data([0x0a, 0xff]))
        #expect(try PageRequest.parse(limit: nil, cursor: "01")?.limit == PageRequest.defaultLimit)
        for (limit, cursor) in [("0", nil), ("1001", nil), ("-1", nil), ("ten", nil), (nil, "xyz"), (nil, "abc"), (nil, ""),
                                (nil, String(repeating: "ab", count: PageRequest.maxCursorBytes + 1))] as [(String?, String?)] {
            #expect(throws: QueryError.self, "limit \(limit ?? "-") cursor \(cursor?.prefix(8) ?? "-")") {
                try PageRequest.parse(limit: limit, cursor: cursor)
            }
        }
    }

    /// Providers registered out of key order list in key order, page by page, each once,
    /// the last page with a null cursor; a cursor past the end answers an empty last page.
    @Test func providersAreListedPageByPage() throws {
        let net = try StakingWorld.net()
        let app = try StakingWorld.app(net)
        let owner = StakingActor("paging-owner")
        let keys = (0x60..<0x67).map { stkKey(UInt8($0)) }
        var rng = SplitMix64(seed: 0x5EED_0A6E)
        for key in keys.shuffled(using: &rng) {
            let message = CreateFinalityProvider(
                btcKey: key.publicKey.rawRepresentation,
                proofOfPossession: try StakingModule.proofOfPossession(key: key, chainID: testChainID, account: owner.account),
                description: FinalityProviderDescription(moniker: "fp", website: "https://example.org"),
                commission: try #require(Commission(decimal: "0.1")), consumerChainID: testChainID).message
            #expect(try stkRun(net, app, owner, [message]).isOK)
        }
        func page(_ limit: Int, _ cursor: Data?) throws -> (keys: [String], next: String?) {
            let r = try app.query(path: "/modules/staking/finality-providers", page: try PageRequest(limit: limit, cursor: cursor))
            let object = try #require(try JSONSerialization.jsonObject(with: r.value) as? [String: Any], "\(r.log)")
            let list = try #require(object["finality_providers"] as? [[String: Any]])
            #expect(object.keys.contains("next_cursor"))
            return (list.compactMap { $0["btc_pk"] as? String }, object["next_cursor"] as? String)
        }
        var seen: [String] = []
        var cursor: Data?
        var pages = 0
        repeat {
            let (listed, next) = try page(3, cursor)
            seen += listed
            pages += 1
            cursor = try next.map { try Data(hex: $0) }
            #expect(listed.count == (next == nil ? keys.count - 3 * (pages - 1) : 3))
        } while cursor != nil && pages < 10
        #expect(pages == 3)
        #expect(seen == keys.map { $0.publicKey.rawRepresentation.hexString }.sorted())
        // Without a page: the first page of the default size holds all seven.
        #expect(((try stkQuery(app, "finality-providers"))["finality_providers"] as? [Any])?.count == keys.count)
        // After the last key: nothing, and no next page.
        let last = try page(3, try Data(hex: try #require(seen.last)))
        #expect(last.keys.isEmpty && last.next == nil)
    }
}
