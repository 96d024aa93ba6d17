import Foundation
import IshtarBitcoinRPC
import IshtarTestSupport
import Testing

@Suite("BTC amount → sats")
struct AmountTests {
    @Test(arguments: [
        ("0", Int64(0)), ("0.00000000", 0), ("0.00000001", 1), ("1", 100_000_000), ("1.0", 100_000_000),
        ("50.00000000", 5_000_000_000), ("21000000.00000000", 2_100_000_000_000_000),
        ("0.1", 10_000_000), ("0.29", 29_000_000), ("0.57", 57_000_000),  // 0.29*1e8 and 0.57*1e8 are not exact in Double
        ("-0.5", -50_000_000), ("-0.00000001", -1), ("1e-8", 1), ("1E-8", 1), ("2.5e2", 25_000_000_000),
        ("0.000000005", 0), ("0.000000015", 2), ("0.0000000150000001", 2), ("0.000000025", 2),  // ties to even
        ("0.000000024999", 2), ("0.000000009", 1), ("0.0000000049", 0), ("1e-20", 0), ("0e99999999999", 0),
        ("92233720368.54775807", Int64.max),
    ])
    func exact(text: String, sats: Int64) {
        #expect(BitcoinAmount.sats(fromBTC: text) == sats)
    }

    @Test func doubleWouldBeWrong() {
        // The reason for parsing text: Double(“0.29”) * 1e8 truncates to 28999999.
        #expect(Int64(Double("0.29")! * 1e8) == 28_999_999)
        #expect(BitcoinAmount.sats(fromBTC: "0.29") == 29_000_000)
    }

    @Test(arguments: ["", "-", ".", "abc", "1..0", "1e", "1e+", "0x10", "1,5", "92233720368.54775808", "1e30", "1e99999999999"])
    func rejected(text: String) {
        #expect(BitcoinAmount.sats(fromBTC: text) == nil)
    }

    @Test func formatting() {
        #expect(BitcoinAmount.decimalString(sats: 0) == "0.00000000")
        #expect(BitcoinAmount.decimalString(sats: 1) == "0.00000001")
        #expect(BitcoinAmount.decimalString(sats: 5_000_000_000) == "50.00000000")
        #expect(BitcoinAmount.decimalString(sats: -12_345) == "-0.00012345")
        #expect(BitcoinAmount.decimalString(sats: Int64.min) == "-92233720368.54775808")
        for s: Int64 in [0, 1, 99_999_999, 100_000_001, 2_100_000_000_000_000, -7] {
            #expect(BitcoinAmount.sats(fromBTC: BitcoinAmount.decimalString(sats: s)) == s)
        }
        #expect(JSONValue.amount(sats: 12_345).jsonText == "0.00012345")
    }
}

@Suite("Cookie file")
struct CookieTests {
    @Test func parsesBitcoindCookie() throws {
        let hex = String(repeating: "ab", count: 32)
        let c = try #require(BitcoinRPCCookie.parse("__cookie__:\(hex)"))
        #expect(c.user == "__cookie__")
        #expect(c.password == hex)
        let withNewline = try #require(BitcoinRPCCookie.parse("__cookie__:\(hex)\n"))
        #expect(withNewline.password == hex)
        let crlf = try #require(BitcoinRPCCookie.parse("__cookie__:\(hex)\r\n"))
        #expect(crlf.password == hex)
        // Only the first ':' separates.
        let colon = try #require(BitcoinRPCCookie.parse("u:p:q"))
        #expect(colon.user == "u" && colon.password == "p:q")
    }

    @Test(arguments: ["", "\n", "nocolon", ":password", "user:", "a:b\nc:d"])
    func rejectsMalformed(text: String) {
        #expect(BitcoinRPCCookie.parse(text) == nil)
    }

    @Test func readsFile() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("cookie-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: url) }
        try "__cookie__:00ff".write(to: url, atomically: true, encoding: .utf8)
        let c = try BitcoinRPCCookie.read(path: url.path)
        #expect(c.user == "__cookie__" && c.password == "00ff")
        #expect(throws: BitcoinRPCError.self) { try BitcoinRPCCookie.read(path: url.path + ".missing") }
    }
}

@Suite("JSON")
struct JSONTests {
    @Test func parsesAndKeepsNumberText() throws {
        let v = try JSONValue.parse(#"{"a":[1,-2.50,3e-8,true,false,null],"s":"x\"\\\/\n\u00e9\ud83d\ude00","v":50.00000000}"#)
        #expect(v["a"]?[1] == .number("-2.50"))
        #expect(v["a"]?[2] == .number("3e-8"))
        #expect(v["a"]?[3] == .bool(true))
        #expect(v["a"]?[5] == .null)
        #expect(v["s"]?.stringValue == "x\"\\/\né😀")
        #expect(v["v"] == .number("50.00000000"))
        // Round trip.
        #expect(try JSONValue.parse(v.jsonText) == v)
    }

    @Test(arguments: [
        "", "{", "[1,]", "{\"a\"}", "{\"a\":}", "01", "1.", "-", "tru", "\"abc", "\"\\x\"", "\"\\u12\"", "[1] 2",
        "{\"a\":1,}", "nul", "\u{1}", "[\"a\u{0}\"]", "<html>",
    ])
    func rejectsMalformed(text: String) {
        #expect(throws: JSONParseError.self) { try JSONValue.parse(text) }
    }

    @Test func nestingIsBounded() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: JSONParseError.self) { try JSONValue.parse(deep) }
        let ok = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect((try? JSONValue.parse(ok)) != nil)
    }

    @Test func lonelySurrogateBecomesReplacement() throws {
        #expect(try JSONValue.parse(#""\ud800x""#) == .string("\u{FFFD}x"))
        // A high surrogate followed by another escape that is not a low one: that escape stays.
        #expect(try JSONValue.parse(#""\ud83d\u4e00""#) == .string("\u{FFFD}一"))
        #expect(try JSONValue.parse(#""\ud83d\ud83d\ude00""#) == .string("\u{FFFD}😀"))
    }

    @Test func retryBackoff() {
        let p = BitcoinRPCRetryPolicy(maxAttempts: 5, initialBackoff: .milliseconds(100), multiplier: 2, maxBackoff: .milliseconds(350))
        #expect(p.backoff(afterAttempt: 1) == .milliseconds(100))
        #expect(p.backoff(afterAttempt: 2) == .milliseconds(200))
        #expect(p.backoff(afterAttempt: 3) == .milliseconds(350))
        #expect(p.backoff(afterAttempt: 1000) == .milliseconds(350))
    }
}

@Suite("JSON fuzzing")
struct JSONFuzzTests {
    /// Replies shaped like bitcoind's: a verbose header, a decoded transaction, an error,
    /// and a batch.
    static let replies: [String] = [
        #"{"result":{"hash":"0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206","confirmations":101,"height":0,"version":1,"versionHex":"00000001","merkleroot":"4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b","time":1296688602,"mediantime":1296688602,"nonce":2,"bits":"207fffff","difficulty":4.656542373906925e-10,"chainwork":"0000000000000000000000000000000000000000000000000000000000000002","nTx":1,"nextblockhash":"5f1a5f35bd1d6eab1a6ed3bd6b44b8e0a2b5f2d5c8aa2bd41e4d4c1d0a5e3bb0"},"error":null,"id":1}"#,
        #"{"result":{"txid":"aa","hash":"bb","version":2,"size":225,"vsize":144,"weight":573,"locktime":0,"vin":[{"txid":"cc","vout":0,"scriptSig":{"asm":"","hex":""},"txinwitness":["30440220","02ab"],"sequence":4294967293}],"vout":[{"value":0.00100000,"n":0,"scriptPubKey":{"asm":"1 ab","hex":"5120ab","address":"bcrt1pxyz","type":"witness_v1_taproot"}},{"value":21000000.00000000,"n":1,"scriptPubKey":{"hex":"6a","type":"nulldata"}}],"hex":"0200"},"error":null,"id":"x"}"#,
        #"{"result":null,"error":{"code":-5,"message":"Block not found \"\u00e9\ud83d\ude00\\n"},"id":7}"#,
        #"[{"result":1,"error":null,"id":0},{"result":[true,false,null,-0.0,1E+2,-12e-3],"error":null,"id":1}]"#,
    ]

    @Test func mutatedRepliesParseOrFailWithoutTrapping() throws {
        var rng = SplitMix64(seed: 0x6a73_6f6e)
        var (parsed, refused) = (0, 0)
        for i in 0..<20_000 {
            let seed = Data(Self.replies[i % Self.replies.count].utf8)
            let bytes = i % 2 == 0 ? rng.mutated(seed) : rng.mutatedJSON(seed)
            let value: JSONValue
            do {
                value = try JSONValue.parse(bytes)
            } catch {
                refused += 1
                // And nothing Foundation reads as JSON is refused.
                #expect((try? JSONSerialization.jsonObject(with: bytes, options: [.fragmentsAllowed])) == nil,
                        "refused (\(error)) what Foundation accepts: \(String(decoding: bytes, as: UTF8.self).prefix(200))")
                continue
            }
            parsed += 1
            // What parsed prints back to text that parses to the same value.
            #expect(try JSONValue.parse(value.jsonText) == value, "\(String(decoding: bytes, as: UTF8.self).prefix(200))")
            // Foundation's parser agrees that it is JSON, except where ours is documented to
            // be lenient: invalid UTF-8 and lone surrogates become U+FFFD.
            let lenient = String(validating: bytes, as: UTF8.self).map { $0.lowercased().contains("\\ud") } ?? true
            if !lenient {
                #expect((try? JSONSerialization.jsonObject(with: bytes, options: [.fragmentsAllowed])) != nil,
                        "accepted what Foundation refuses: \(String(decoding: bytes, as: UTF8.self).prefix(200))")
            }
        }
        #expect(parsed > 3000 && refused > 3000, "\(parsed) parsed, \(refused) refused")
    }
}
