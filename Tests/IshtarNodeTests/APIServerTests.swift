import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import IshtarChain
import IshtarCrypto
import IshtarNode
import IshtarTestSupport
import Logging
import Metrics
import NIOCore
import Testing
#if canImport(Glibc)
import Glibc
#endif

private func json(_ response: TestResponse) throws -> [String: Any] {
    let object = try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView))
    return try #require(object as? [String: Any], "not a JSON object: \(String(buffer: response.body))")
}

private func errorCode(_ response: TestResponse) throws -> String? {
    (try json(response)["error"] as? [String: Any])?["code"] as? String
}

private func jsonBody(_ object: [String: Any]) throws -> ByteBuffer {
    ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: object))
}

private let jsonHeaders: HTTPFields = [.contentType: "application/json"]

/// Every route of the HTTP API against a real chain application on RocksDB.
@Suite struct APIServerTests {
    let backend: ChainBackend
    let logger = Logger(label: "api-test")

    init() throws { backend = try ChainBackend() }

    func app(token: String? = nil, maxBody: Int = 1 << 20) -> some ApplicationProtocol {
        makeAPIApplication(backend: backend,
                           configuration: APIServerConfiguration(port: 0, bearerToken: token, maxRequestBodyBytes: maxBody),
                           logger: logger)
    }

    @Test func statusAndHealth() async throws {
        try await backend.produceBlock()
        try await app().test(.router) { client in
            let status = try await client.execute(uri: "/status", method: .get)
            #expect(status.status == .ok)
            let s = try json(status)
            #expect(s["chain_id"] as? String == ChainBackend.chainID)
            #expect(s["height"] as? Int == 1)
            #expect((s["latest_block_hash"] as? String)?.count == 64)
            #expect(s["mempool_size"] as? Int == 0)
            #expect(s["catching_up"] as? Bool == false)
            #expect(status.headers[.contentType]?.hasPrefix("application/json") == true)

            let healthy = try await client.execute(uri: "/health", method: .get)
            #expect(healthy.status == .ok)
            #expect(try json(healthy)["healthy"] as? Bool == true)
            await backend.setHealthy(false)
            let sick = try await client.execute(uri: "/health", method: .get)
            #expect(sick.status == .serviceUnavailable)
            #expect(try json(sick)["reasons"] as? [String] == ["consensus is not running"])
        }
    }

    @Test func blocksByHeightLatestAndErrors() async throws {
        let sender = apiTestKey("alice")
        try await app().test(.router) { client in
            let none = try await client.execute(uri: "/blocks/latest", method: .get)
            #expect(none.status == .notFound)
            #expect(try errorCode(none) == "block_not_found")

            let tx = try apiLabelTx(sender, nonce: 0)
            #expect(await backend.submitTransaction(tx).result.isOK)
            try await backend.produceBlock()
            try await backend.produceBlock()

            let first = try await client.execute(uri: "/blocks/1", method: .get)
            #expect(first.status == .ok)
            let b1 = try json(first)
            let header = try #require(b1["header"] as? [String: Any])
            #expect(header["height"] as? Int == 1)
            #expect(header["chain_id"] as? String == ChainBackend.chainID)
            #expect(header["last_commit"] is NSNull, "the first block has no last commit")
            for field in ["previous_block_hash", "transactions_root", "app_hash", "proposer", "validators_hash"] {
                #expect((header[field] as? String)?.count == 64, "\(field)")
            }
            #expect(b1["tx_count"] as? Int == 1)
            let txs = try #require(b1["transactions"] as? [[String: Any]])
            #expect(txs.first?["hash"] as? String == Transaction.hash(of: tx).hexString)
            #expect(txs.first?["bytes"] as? String == tx.hexString)
            let decoded = try #require(txs.first?["decoded"] as? [String: Any])
            #expect(decoded["sender"] as? String == sender.publicKey.rawRepresentation.hexString)
            #expect(decoded["nonce"] as? Int == 0)
            #expect(decoded["message_types"] as? [String] == [SetLabel.type])

            let latest = try json(try await client.execute(uri: "/blocks/latest", method: .get))
            let latestHeader = try #require(latest["header"] as? [String: Any])
            #expect(latestHeader["height"] as? Int == 2)
            let commit = try #require(latestHeader["last_commit"] as? [String: Any])
            #expect(commit["block_hash"] as? String == b1["hash"] as? String)
            #expect(commit["signature_count"] as? Int == 1)

            let missing = try await client.execute(uri: "/blocks/99", method: .get)
            #expect(missing.status == .notFound)
            #expect(try errorCode(missing) == "block_not_found")
            for bad in ["/blocks/abc", "/blocks/-1", "/blocks/1.5", "/blocks/99999999999999999999999"] {
                let r = try await client.execute(uri: bad, method: .get)
                #expect(r.status == .badRequest, "\(bad)")
                #expect(try errorCode(r) == "invalid_height", "\(bad)")
            }
        }
    }

    @Test func submitAcceptedRefusedMalformedAndOversize() async throws {
        let sender = apiTestKey("bob")
        try await app(maxBody: 4096).test(.router) { client in
            let tx0 = try apiLabelTx(sender, nonce: 0)
            let ok = try await client.execute(uri: "/txs", method: .post, headers: jsonHeaders,
                                              body: try jsonBody(["tx": tx0.hexString]))
            #expect(ok.status == .ok)
            let accepted = try json(ok)
            #expect(accepted["accepted"] as? Bool == true)
            #expect(accepted["code"] as? Int == 0)
            #expect(accepted["hash"] as? String == Transaction.hash(of: tx0).hexString)

            // Raw bytes are accepted too; nonce 1 queues behind nonce 0 in the check state.
            let tx1 = try apiLabelTx(sender, nonce: 1)
            let raw = try await client.execute(uri: "/txs", method: .post, headers: [.contentType: "application/octet-stream"],
                                               body: ByteBuffer(bytes: tx1))
            #expect(raw.status == .ok)
            #expect(await backend.mempool.count == 2)

            // A stale nonce: check-tx refuses it with the accounts rule.
            let stale = try apiLabelTx(sender, nonce: 0, label: "again")
            let refused = try await client.execute(uri: "/txs", method: .post, headers: jsonHeaders,
                                                   body: try jsonBody(["tx": stale.hexString]))
            #expect(refused.status == .unprocessableContent)
            let r = try json(refused)
            #expect(r["accepted"] as? Bool == false)
            #expect(r["codespace"] as? String == "accounts")
            #expect(r["rule"] as? String == "nonce-mismatch")
            #expect((r["log"] as? String)?.contains("nonce") == true)

            // Bytes that are no transaction: check-tx's own "malformed" rule, still 422.
            let garbage = try await client.execute(uri: "/txs", method: .post, headers: jsonHeaders,
                                                   body: try jsonBody(["tx": "00ff"]))
            #expect(garbage.status == .unprocessableContent)
            #expect(try json(garbage)["rule"] as? String == "malformed")

            // Malformed bodies: 400 naming what is wrong, never a crash.
            let cases: [(ByteBuffer, HTTPFields, String)] = [
                (ByteBuffer(string: "{not json"), jsonHeaders, "invalid_json"),
                (try jsonBody(["transaction": "00"]), jsonHeaders, "invalid_body"),
                (try jsonBody(["tx": 42]), jsonHeaders, "invalid_body"),
                (try jsonBody(["tx": "zz"]), jsonHeaders, "invalid_tx_hex"),
                (try jsonBody(["tx": "abc"]), jsonHeaders, "invalid_tx_hex"),
                (try jsonBody(["tx": ""]), jsonHeaders, "invalid_tx_hex"),
                (ByteBuffer(), jsonHeaders, "empty_body"),
                (ByteBuffer(), [.contentType: "application/octet-stream"], "empty_body"),
            ]
            for (body, headers, code) in cases {
                let response = try await client.execute(uri: "/txs", method: .post, headers: headers, body: body)
                #expect(response.status == .badRequest, "\(code)")
                #expect(try errorCode(response) == code)
            }
            let wrongType = try await client.execute(uri: "/txs", method: .post, headers: [.contentType: "text/plain"],
                                                     body: ByteBuffer(string: "00"))
            #expect(wrongType.status == .unsupportedMediaType)

            let big = try await client.execute(uri: "/txs", method: .post, headers: [.contentType: "application/octet-stream"],
                                               body: ByteBuffer(bytes: [UInt8](repeating: 1, count: 5000)))
            #expect(big.status == .contentTooLarge)
            #expect(try errorCode(big) == "body_too_large")
            #expect(await backend.mempool.count == 2, "refused and malformed submissions leave the mempool alone")
        }
    }

    @Test func mutatedRequestsAreAnsweredWithJSONNeverATrap() async throws {
        // What any local process can send: mutated submission bodies (JSON and raw, single and
        // batch) and hostile path arguments. Every answer is one of the documented statuses
        // with a JSON body; the mempool takes only what check-tx accepts.
        let tx = try apiLabelTx(apiTestKey("fuzz-api"), nonce: 0)
        var framed = Data()
        for t in [tx, try apiLabelTx(apiTestKey("fuzz-api-2"), nonce: 0)] {
            withUnsafeBytes(of: UInt32(t.count).bigEndian) { framed.append(contentsOf: $0) }
            framed.append(t)
        }
        let seeds: [(uri: String, type: String, body: Data, json: Bool)] = [
            ("/txs", "application/json", try JSONSerialization.data(withJSONObject: ["tx": tx.hexString]), true),
            ("/txs", "application/octet-stream", tx, false),
            ("/txs/batch", "application/json", try JSONSerialization.data(withJSONObject: ["txs": [tx.hexString, tx.hexString]]), true),
            ("/txs/batch", "application/octet-stream", framed, false),
        ]
        let hostile = ["", "0", "-1", "18446744073709551615", "18446744073709551616", "zz", String(repeating: "ab", count: 32),
                       String(repeating: "ab", count: 33), "latest", "%00", "..", String(repeating: "9", count: 5000)]
        var rng = SplitMix64(seed: 0x6170_69)
        let requests = (0..<1200).map { i in
            let seed = seeds[i % seeds.count]
            return (seed.uri, seed.type, seed.json ? rng.mutatedJSON(seed.body) : rng.mutated(seed.body))
        }
        try await app(maxBody: 1 << 16).test(.router) { client in
            var statuses: [Int: Int] = [:]
            for (uri, type, body) in requests {
                let seed = (uri: uri, type: type)
                let response = try await client.execute(uri: seed.uri, method: .post, headers: [.contentType: seed.type],
                                                        body: ByteBuffer(bytes: body))
                statuses[response.status.code, default: 0] += 1
                #expect([200, 400, 413, 422].contains(response.status.code), "\(seed.uri): \(response.status)")
                #expect((try? JSONSerialization.jsonObject(with: Data(response.body.readableBytesView))) != nil)
            }
            for value in hostile {
                for uri in ["/blocks/\(value)", "/txs/\(value)", "/modules/accounts/account/\(value)", "/modules/\(value)/params"] {
                    let response = try await client.execute(uri: uri, method: .get)
                    #expect([200, 400, 404, 422].contains(response.status.code), "\(uri.prefix(60)): \(response.status)")
                    #expect((try? JSONSerialization.jsonObject(with: Data(response.body.readableBytesView))) != nil,
                            "\(uri.prefix(60)): not JSON")
                }
            }
            #expect(statuses[400, default: 0] > 300 && statuses[422, default: 0] > 50, "\(statuses)")
        }
    }

    @Test func bearerTokenGuardsSubmissionWhenConfigured() async throws {
        let tx = try apiLabelTx(apiTestKey("carol"), nonce: 0)
        try await app(token: "s3cret-token").test(.router) { client in
            let body = try jsonBody(["tx": tx.hexString])
            let none = try await client.execute(uri: "/txs", method: .post, headers: jsonHeaders, body: body)
            #expect(none.status == .unauthorized)
            #expect(try errorCode(none) == "unauthorized")
            #expect(none.headers[.wwwAuthenticate]?.hasPrefix("Bearer") == true)
            var wrong = jsonHeaders
            wrong[.authorization] = "Bearer s3cret-tokex"
            #expect(try await client.execute(uri: "/txs", method: .post, headers: wrong, body: body).status == .unauthorized)
            var right = jsonHeaders
            right[.authorization] = "Bearer s3cret-token"
            #expect(try await client.execute(uri: "/txs", method: .post, headers: right, body: body).status == .ok)
            // Reads stay open.
            #expect(try await client.execute(uri: "/status", method: .get).status == .ok)
        }
    }

    @Test func committedTransactionByHash() async throws {
        let key = apiTestKey("dave")
        let tx = try apiLabelTx(key, nonce: 0, label: "dave")
        #expect(await backend.submitTransaction(tx).result.isOK)
        try await backend.produceBlock()
        try await app().test(.router) { client in
            let hash = Transaction.hash(of: tx).hexString
            let found = try await client.execute(uri: "/txs/\(hash)", method: .get)
            #expect(found.status == .ok)
            let t = try json(found)
            #expect(t["hash"] as? String == hash)
            #expect(t["bytes"] as? String == tx.hexString)
            #expect(t["height"] as? Int == 1)
            #expect(t["index"] as? Int == 0)
            let result = try #require(t["result"] as? [String: Any])
            #expect(result["code"] as? Int == 0)
            #expect(result["rule"] as? String == "")
            let events = try #require(result["events"] as? [[String: Any]])
            #expect(events.contains { $0["type"] as? String == "accounts.label_set" })

            let missing = try await client.execute(uri: "/txs/\(String(repeating: "ab", count: 32))", method: .get)
            #expect(missing.status == .notFound)
            #expect(try errorCode(missing) == "tx_not_found")
            for bad in ["/txs/1234", "/txs/\(String(repeating: "zz", count: 32))"] {
                let r = try await client.execute(uri: bad, method: .get)
                #expect(r.status == .badRequest)
                #expect(try errorCode(r) == "invalid_hash")
            }
        }
    }

    @Test func moduleQueries() async throws {
        let key = apiTestKey("erin")
        #expect(await backend.submitTransaction(try apiLabelTx(key, nonce: 0, label: "erin")).result.isOK)
        try await backend.produceBlock()
        let hex = key.publicKey.rawRepresentation.hexString
        try await app().test(.router) { client in
            let account = try await client.execute(uri: "/modules/accounts/account/\(hex)", method: .get)
            #expect(account.status == .ok)
            let a = try json(account)
            #expect(a["pub_key"] as? String == hex)
            #expect(a["nonce"] as? String == "1")
            #expect(a["label"] as? String == "erin")
            let heightHeader = try #require(HTTPField.Name("X-Ishtar-Height"))
            #expect(account.headers[heightHeader] == "1")

            let params = try await client.execute(uri: "/modules/accounts/params", method: .get)
            #expect(params.status == .ok)

            let absent = try await client.execute(uri: "/modules/accounts/account/\(String(repeating: "11", count: 32))", method: .get)
            #expect(absent.status == .notFound)
            #expect(try errorCode(absent) == "not_found")
            let badKey = try await client.execute(uri: "/modules/accounts/account/xyz", method: .get)
            #expect(badKey.status == .badRequest)
            #expect(try errorCode(badKey) == "invalid_argument")
            let noModule = try await client.execute(uri: "/modules/nosuch/thing", method: .get)
            #expect(noModule.status == .notFound)
            #expect(try errorCode(noModule) == "unknown_module")
            let noPath = try await client.execute(uri: "/modules/accounts/what/ever", method: .get)
            #expect(noPath.status == .notFound)
            #expect(try errorCode(noPath) == "unknown_query_path")
            let bare = try await client.execute(uri: "/modules/accounts", method: .get)
            #expect(bare.status == .notFound)
            let badData = try await client.execute(uri: "/modules/accounts/params?data=zz", method: .get)
            #expect(badData.status == .badRequest)
            #expect(try errorCode(badData) == "invalid_data_hex")
        }
    }

    @Test func theNextNonceCountsPendingTransactions() async throws {
        let key = apiTestKey("nonce")
        let account = key.publicKey.rawRepresentation.hexString
        try await app().test(.router) { client in
            func nonce() async throws -> [String: Any] {
                let r = try await client.execute(uri: "/accounts/\(account)/nonce", method: .get)
                #expect(r.status == .ok)
                return try json(r)
            }
            var n = try await nonce()
            #expect(n["committed_nonce"] as? String == "0" && n["next_nonce"] as? String == "0", "a new account: \(n)")
            for i in 0..<2 { #expect(await backend.submitTransaction(try apiLabelTx(key, nonce: UInt64(i))).result.isOK) }
            n = try await nonce()
            #expect(n["committed_nonce"] as? String == "0" && n["pending_transactions"] as? Int == 2 && n["next_nonce"] as? String == "2")
            try await backend.produceBlock()
            n = try await nonce()
            #expect(n["committed_nonce"] as? String == "2" && n["pending_transactions"] as? Int == 0 && n["next_nonce"] as? String == "2")
            for bad in ["zz", String(repeating: "a", count: 63)] {
                let r = try await client.execute(uri: "/accounts/\(bad)/nonce", method: .get)
                #expect(r.status == .badRequest)
                #expect(try errorCode(r) == "invalid_account")
            }
        }
    }

    @Test func openAPIDocumentListsEveryRoute() async throws {
        try await app().test(.router) { client in
            let response = try await client.execute(uri: "/openapi.json", method: .get)
            #expect(response.status == .ok)
            let doc = try json(response)
            #expect((doc["openapi"] as? String)?.hasPrefix("3.0") == true)
            let paths = try #require(doc["paths"] as? [String: Any])
            let expected: [String: [String]] = [
                "/status": ["get"], "/health": ["get"], "/blocks/latest": ["get"], "/blocks/{height}": ["get"],
                "/txs/{hash}": ["get"], "/txs": ["post"], "/txs/batch": ["post"], "/modules/{module}/{path}": ["get"],
                "/accounts/{account}/nonce": ["get"],
                "/openapi.json": ["get"], "/metrics": ["get"],
            ]
            #expect(Set(paths.keys) == Set(expected.keys))
            for (path, methods) in expected {
                let item = try #require(paths[path] as? [String: Any], "\(path)")
                for m in methods { #expect(item[m] != nil, "\(m) \(path)") }
            }
            // Every $ref resolves.
            let text = String(buffer: response.body)
            let components = try #require(doc["components"] as? [String: Any])
            let schemas = try #require(components["schemas"] as? [String: Any])
            let responses = try #require(components["responses"] as? [String: Any])
            var rest = Substring(text)
            while let range = rest.range(of: "\"$ref\": \"#/components/") {
                rest = rest[range.upperBound...]
                let ref = rest.prefix { $0 != "\"" }
                let parts = ref.split(separator: "/")
                #expect(parts.count == 2)
                let table = parts.first == "schemas" ? schemas : responses
                #expect(table[String(parts.last ?? "")] != nil, "unresolved $ref \(ref)")
            }
        }
    }

    @Test func metricsExposeNodeMetricNames() async throws {
        let registry = NodeMetrics.bootstrap()
        #expect(NodeMetrics.bootstrap() === registry, "bootstrap is idempotent")
        // Recorded the way the node records them: through swift-metrics.
        Metrics.Gauge(label: NodeMetricName.round).record(3)
        Metrics.Timer(label: NodeMetricName.blockTime).recordMilliseconds(1200)
        Metrics.Counter(label: NodeMetricName.committedTransactions).increment(by: 2)
        try await backend.produceBlock()
        try await app().test(.router) { client in
            let response = try await client.execute(uri: "/metrics", method: .get)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType]?.hasPrefix("text/plain; version=0.0.4") == true)
            let text = String(buffer: response.body)
            for name in [NodeMetricName.height, NodeMetricName.round, NodeMetricName.peers, NodeMetricName.mempoolSize,
                         NodeMetricName.blockTime, NodeMetricName.committedTransactions] {
                #expect(text.contains(name), "missing \(name)")
            }
            #expect(text.contains("\(NodeMetricName.height) 1"), "height gauge refreshed from status: \(text)")
            #expect(text.contains("\(NodeMetricName.blockTime)_count"))
        }
    }

    @Test func unknownRoutesAndMethodsAnswerJSON() async throws {
        try await app().test(.router) { client in
            let r = try await client.execute(uri: "/nope/nothing", method: .get)
            #expect(r.status == .notFound)
            #expect(try errorCode(r) == "route_not_found")
            #expect((try json(r)["error"] as? [String: Any])?["message"] as? String == "no route for GET /nope/nothing")
            let wrongMethod = try await client.execute(uri: "/status", method: .delete)
            #expect(wrongMethod.status.code >= 400 && wrongMethod.status.code < 500)
            #expect(try errorCode(wrongMethod) != nil)
        }
    }

    @Test func liveServerBindsLoopbackByDefault() async throws {
        #expect(APIServerConfiguration().host == "127.0.0.1")
        #expect(APIServerConfiguration().isLoopback)
        for (host, loopback) in [("127.0.0.1", true), ("127.8.9.10", true), ("localhost", true), ("::1", true),
                                 ("127.example.com", false), ("0.0.0.0", false), ("10.0.0.1", false), ("1270.0.0.1", false)] {
            #expect(APIServerConfiguration(host: host).isLoopback == loopback, "\(host)")
        }
        try await app().test(.live) { client in
            let r = try await client.execute(uri: "/health", method: .get)
            #expect(r.status == .ok)
        }
    }

    /// Clients holding connections open cannot take more than `maxConnections`
    /// descriptors: the next client waits, unserved, until one of them closes. Run through
    /// `runAPIServer`, as the node runs it (HummingbirdTesting's live server drops the
    /// connection limit when it rebinds to a free port).
    @Test func connectionsBeyondTheCapWaitUntilOneCloses() async throws {
        let (ports, announce) = AsyncStream<Int>.makeStream()
        let server = Task { [backend, logger] in
            try await runAPIServer(backend: backend, configuration: APIServerConfiguration(port: 0, maxConnections: 2),
                                   logger: logger, onServerRunning: { announce.yield($0) })
        }
        defer { server.cancel() }
        var next = ports.makeAsyncIterator()
        let port = try #require(await next.next())
        // Two kept-alive connections take the whole cap. Each is served once first, which
        // proves the server accepted it before the next client connects.
        let first = try HTTPSocket(port: port)
        try first.send("GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        #expect(try await first.readSome().hasPrefix("HTTP/1.1 200"))
        let second = try HTTPSocket(port: port)
        try second.send("GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        #expect(try await second.readSome().hasPrefix("HTTP/1.1 200"))
        let third = try HTTPSocket(port: port)
        try third.send("GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        #expect(try await third.waitReadable(milliseconds: 1500) == false, "served past the connection cap")
        first.close()
        #expect(try await third.waitReadable(milliseconds: 10_000), "not served after a connection closed")
        #expect(try await third.readAll().hasPrefix("HTTP/1.1 200"))
        second.close()
        server.cancel()
        _ = await server.result
    }

    @Test func runAPIServerRejectsAnEmptyToken() async throws {
        await #expect(throws: APIServerError.emptyBearerToken) {
            try await runAPIServer(backend: backend, configuration: APIServerConfiguration(port: 0, bearerToken: ""),
                                   logger: logger)
        }
    }
}

/// A blocking loopback TCP client for what HTTP clients do not expose: holding a
/// connection open, and seeing whether a response has arrived yet.
private final class HTTPSocket {
    private var fd: Int32

    init(port: Int) throws { fd = try connectLoopback(port: port) }

    deinit { close() }

    func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    func send(_ text: String) throws {
        let bytes = Array(text.utf8)
        guard Glibc.send(fd, bytes, bytes.count, Int32(MSG_NOSIGNAL)) == bytes.count else { throw LoopbackSocketError("send failed") }
    }

    /// Whether bytes (or the end of the stream) arrive within `milliseconds`. Polls without
    /// blocking and sleeps between polls: the server's handlers run on the same two-thread
    /// cooperative pool as the tests, and a blocked thread could starve them.
    func waitReadable(milliseconds: Int) async throws -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(milliseconds)
        while true {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let n = poll(&p, 1, 0)
            guard n >= 0 else { throw LoopbackSocketError("poll failed (errno \(errno))") }
            if n == 1 { return true }
            if ContinuousClock.now >= deadline { return false }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// What has arrived once anything has (within 10 s).
    func readSome() async throws -> String {
        guard try await waitReadable(milliseconds: 10_000) else { throw LoopbackSocketError("no response within 10 s") }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = recv(fd, &buffer, buffer.count, 0)
        guard n > 0 else { throw LoopbackSocketError("connection closed") }
        return String(decoding: buffer[0..<n], as: UTF8.self)
    }

    /// Everything until the server closes the connection (the request asked it to).
    func readAll() async throws -> String {
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            guard try await waitReadable(milliseconds: 10_000) else { throw LoopbackSocketError("no response within 10 s") }
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            out += buffer[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }
}
