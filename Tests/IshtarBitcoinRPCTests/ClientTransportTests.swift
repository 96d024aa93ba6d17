import IshtarTestSupport
import Foundation
import IshtarBitcoinRPC
import Testing

/// Client behaviour against a scripted loopback server (no bitcoind needed).
@Suite("Client transport")
struct ClientTransportTests {
    static func client(
        _ url: String, credentials: BitcoinRPCCredentials = .userPassword(user: "alice", password: "s3cret-pw"),
        attempts: Int = 3, log: LogCapture? = nil, maxResponseBytes: Int = 1 << 20
    ) -> BitcoinRPCClient {
        var config = BitcoinRPCConfiguration(url: url, credentials: credentials)
        config.retry = BitcoinRPCRetryPolicy(maxAttempts: attempts, initialBackoff: .milliseconds(10))
        config.connectTimeout = .seconds(2)
        config.requestTimeout = .seconds(5)
        config.maxResponseBytes = maxResponseBytes
        if let log { return BitcoinRPCClient(configuration: config, logger: log.logger()) }
        return BitcoinRPCClient(configuration: config)
    }

    @Test func successAndRequestShape() async throws {
        let server = try ScriptedServer(replies: [.http(200, #"{"result":{"n":0.29},"error":null,"id":1}"#)])
        defer { server.stop() }
        let log = LogCapture()
        let result = try await Self.client(server.url, log: log).call(method: "echo", params: ["x", 1, .null])
        #expect(result["n"] == .number("0.29"))
        let req = try #require(server.requests.first)
        #expect(req.head.hasPrefix("POST / HTTP/1.1"))
        #expect(req.head.lowercased().contains("content-type: application/json"))
        // Basic base64("alice:s3cret-pw")
        #expect(req.authorization == "Basic " + Data("alice:s3cret-pw".utf8).base64EncodedString())
        let body = try JSONValue.parse(req.body)
        #expect(body["method"] == "echo")
        #expect(body["params"] == ["x", 1])  // trailing null trimmed
        // One debug line, with method/attempts/duration, and no credentials anywhere.
        #expect(log.callLines.count == 1)
        #expect(log.callLines.first?.metadata["method"] == "echo")
        #expect(log.callLines.first?.metadata["attempts"] == "1")
        #expect(log.callLines.first?.metadata["ms"] != nil)
        #expect(!log.allText.contains("s3cret-pw"))
    }

    @Test func noCredentialsSendsNoAuthorization() async throws {
        let server = try ScriptedServer(replies: [.http(200, #"{"result":null,"error":null,"id":1}"#)])
        defer { server.stop() }
        #expect(try await Self.client(server.url, credentials: .none).call(method: "x") == .null)
        #expect(server.requests.first?.authorization == nil)
    }

    @Test func connectionRefusedIsRetriedThenTransport() async throws {
        let (held, port) = try ScriptedServer.refusingPort()
        defer { close(held) }
        let log = LogCapture()
        let client = Self.client("http://127.0.0.1:\(port)/", attempts: 3, log: log)
        do {
            _ = try await client.getBlockCount()
            Issue.record("expected failure")
        } catch {
            guard case .transport(let code, let message) = error else {
                Issue.record("expected .transport, got \(error)")
                return
            }
            #expect(code == 7)  // CURLE_COULDNT_CONNECT
            #expect(!message.isEmpty)
            #expect(error.isRetryable)
        }
        #expect(log.lines.filter { $0.message.contains("retrying") }.count == 2)
        #expect(log.callLines.count == 1)
        #expect(log.callLines.first?.metadata["attempts"] == "3")
    }

    @Test func silentServerTimesOut() async throws {
        let server = try ScriptedServer(replies: [.stall(milliseconds: 1_000)])
        defer { server.stop() }
        var config = BitcoinRPCConfiguration(url: server.url, credentials: .none)
        config.requestTimeout = .milliseconds(200)
        config.retry = BitcoinRPCRetryPolicy(maxAttempts: 2, initialBackoff: .milliseconds(10))
        let log = LogCapture()
        let client = BitcoinRPCClient(configuration: config, logger: log.logger())
        do throws(BitcoinRPCError) {
            _ = try await client.getBlockCount()
            Issue.record("expected timeout")
        } catch {
            guard case .timeout = error else {
                Issue.record("expected .timeout, got \(error)")
                return
            }
        }
        #expect(log.callLines.first?.metadata["attempts"] == "2")
    }

    @Test func emptyReplyIsRetriedAndCanRecover() async throws {
        let server = try ScriptedServer(replies: [.close, .http(200, #"{"result":7,"error":null,"id":1}"#)])
        defer { server.stop() }
        let log = LogCapture()
        let n = try await Self.client(server.url, log: log).getBlockCount()
        #expect(n == 7)
        #expect(server.requests.count == 2)
        #expect(log.callLines.first?.metadata["attempts"] == "2")
    }

    @Test func rpcErrorIsNotRetried() async throws {
        let server = try ScriptedServer(replies: [
            .http(500, #"{"result":null,"error":{"code":-8,"message":"Block height out of range"},"id":1}"#)
        ])
        defer { server.stop() }
        await #expect(throws: BitcoinRPCError.rpc(code: RPCErrorCode.invalidParameter, message: "Block height out of range")) {
            _ = try await Self.client(server.url, attempts: 5).getBlockHash(height: 99)
        }
        #expect(server.requests.count == 1)
    }

    @Test func unauthorizedIsNotRetried() async throws {
        let server = try ScriptedServer(replies: [.http(401, "", headers: [#"WWW-Authenticate: Basic realm="jsonrpc""#])])
        defer { server.stop() }
        do {
            _ = try await Self.client(server.url, attempts: 5).getBlockCount()
            Issue.record("expected failure")
        } catch {
            #expect(error.isUnauthorized)
            #expect(error == .http(status: 401, body: ""))
        }
        #expect(server.requests.count == 1)
    }

    @Test func cookieIsReReadAfter401() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cookie-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let cookie = dir.appendingPathComponent(".cookie")
        try "__cookie__:0000".write(to: cookie, atomically: true, encoding: .utf8)
        let server = try ScriptedServer(replies: [
            .http(200, #"{"result":1,"error":null,"id":1}"#), .http(401, ""),
            .http(200, #"{"result":2,"error":null,"id":2}"#),
        ])
        defer { server.stop() }
        let client = Self.client(server.url, credentials: .cookieFile(path: cookie.path))
        #expect(try await client.getBlockCount() == 1)
        // "Restart": the node writes a new cookie; the next call gets 401, re-reads, succeeds.
        try "__cookie__:1111".write(to: cookie, atomically: true, encoding: .utf8)
        #expect(try await client.getBlockCount() == 2)
        let auths = server.requests.map(\.authorization)
        let old = "Basic " + Data("__cookie__:0000".utf8).base64EncodedString()
        let new = "Basic " + Data("__cookie__:1111".utf8).base64EncodedString()
        #expect(auths == [old, old, new])
    }

    @Test func missingCookieFileIsConfigurationError() async throws {
        let client = Self.client("http://127.0.0.1:1/", credentials: .cookieFile(path: "/nonexistent/.cookie"))
        await #expect {
            _ = try await client.getBlockCount()
        } throws: { error in
            if case .configuration = error as? BitcoinRPCError { return true }
            return false
        }
    }

    /// Garbage from the server must map to `.malformedResponse`, never crash.
    @Test(arguments: [
        ScriptedServer.Reply.http(200, "this is not json"),
        .http(200, #"{"result": [1, 2"#),
        .http(200, "[" + String(repeating: "[", count: 50_000)),
        .http(200, #"{"error":null,"id":1}"#),  // no result
        .http(200, #"{"result":1,"error":{"message":"no code"},"id":1}"#),
        .http(200, #"{"result":1,"error":null,"id":999}"#),  // wrong id
        .http(200, #"[1,2,3]"#),
        .raw(Array("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"result\":".utf8)),  // truncated body
        .raw(Array("SSH-2.0-OpenSSH_9.2\r\n\r\n".utf8)),  // not HTTP at all
        .raw(Array("HTTP/1.1 200 OK\r\nContent-Length: zz\r\n\r\n{}".utf8)),
        .raw([0xFF, 0x00, 0x13, 0x37, 0x0D, 0x0A, 0x0D, 0x0A]),
    ])
    func garbageIsMalformedResponse(reply: ScriptedServer.Reply) async throws {
        let server = try ScriptedServer(replies: [reply])
        defer { server.stop() }
        do {
            _ = try await Self.client(server.url, attempts: 3).call(method: "getblockcount")
            Issue.record("expected failure")
        } catch {
            guard case .malformedResponse = error else {
                Issue.record("expected .malformedResponse, got \(error)")
                return
            }
        }
        #expect(server.requests.count == 1)  // never retried
    }

    @Test func typedFieldErrorNamesTheField() async throws {
        let server = try ScriptedServer(replies: [.http(200, #"{"result":{"feerate":"cheap","blocks":2},"error":null,"id":1}"#)])
        defer { server.stop() }
        await #expect(throws: BitcoinRPCError.malformedResponse(field: "estimatesmartfee.result.feerate", reason: "expected number (BTC amount)")) {
            _ = try await Self.client(server.url).estimateSmartFee(confTarget: 2)
        }
    }

    @Test func oversizedResponseIsRejected() async throws {
        let big = #"{"result":""# + String(repeating: "a", count: 200_000) + #"","error":null,"id":1}"#
        let server = try ScriptedServer(replies: [.http(200, big)])
        defer { server.stop() }
        await #expect(throws: BitcoinRPCError.responseTooLarge(limit: 50_000)) {
            _ = try await Self.client(server.url, maxResponseBytes: 50_000).call(method: "x")
        }
    }

    @Test func httpErrorWithoutJSON() async throws {
        let server = try ScriptedServer(replies: [.http(503, "Work queue depth exceeded")])
        defer { server.stop() }
        await #expect(throws: BitcoinRPCError.http(status: 503, body: "Work queue depth exceeded")) {
            _ = try await Self.client(server.url).call(method: "x")
        }
    }

    @Test func batchMatchesByIdOutOfOrder() async throws {
        // Replies in reverse order; a fresh client numbers its first batch 1, 2, 3.
        let echo = try EchoBatchServer()
        defer { echo.server.stop() }
        let results = try await Self.client(echo.server.url).batch([
            .init(method: "a"), .init(method: "fail"), .init(method: "c"),
        ])
        #expect(results.count == 3)
        #expect(try results[0].get() == "a")
        #expect(results[1] == .failure(.rpc(code: -5, message: "nope")))
        #expect(try results[2].get() == "c")
    }
}

/// Serves a fixed batch reply, out of order, for a fresh client's first batch (ids 1, 2, 3).
struct EchoBatchServer {
    let server: ScriptedServer
    init() throws {
        // A fresh client's first batch uses ids 1, 2, 3.
        let reply = #"[{"result":"c","error":null,"id":3},{"result":null,"error":{"code":-5,"message":"nope"},"id":2},{"result":"a","error":null,"id":1}]"#
        server = try ScriptedServer(replies: [.http(200, reply)])
    }
}
