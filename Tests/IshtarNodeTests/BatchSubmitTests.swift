import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import IshtarChain
import IshtarCrypto
@testable import IshtarNode
import Logging
import NIOCore
import Testing

/// `POST /txs/batch` against a real single-validator node service.
@Suite(.serialized) struct BatchSubmitTests {
    static let chainID = "ishtar-batch"

    /// A started node on a fresh one-validator home; remove the returned directory when done.
    func startNode() async throws -> (NodeService, String) {
        let (home, config) = try singleValidatorHome("batch", chainID: Self.chainID)
        let node = try NodeService(options: try serviceOptions(home, config), logger: quietLogger("batch"))
        try await node.start()
        return (node, home.path)
    }

    static func framed(_ txs: [Data]) -> ByteBuffer {
        var out = Data()
        for tx in txs {
            withUnsafeBytes(of: UInt32(tx.count).bigEndian) { out.append(contentsOf: $0) }
            out.append(tx)
        }
        return ByteBuffer(bytes: out)
    }

    static func results(_ r: TestResponse) throws -> [[String: Any]] {
        let o = try #require(try JSONSerialization.jsonObject(with: Data(r.body.readableBytesView)) as? [String: Any])
        return try #require(o["results"] as? [[String: Any]])
    }

    static func errorCode(_ r: TestResponse) -> String? {
        let o = (try? JSONSerialization.jsonObject(with: Data(r.body.readableBytesView))) as? [String: Any]
        return (o?["error"] as? [String: Any])?["code"] as? String
    }

    @Test(.timeLimit(.minutes(3))) func batchAdmitsInOrderReportsEachVerdictAndCommits() async throws {
        let (node, dir) = try await startNode()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let api = makeAPIApplication(backend: node, configuration: APIServerConfiguration(port: 0, maxRequestBodyBytes: 64 << 10),
                                     logger: quietLogger("api"))
        let alice = Schnorr.PrivateKey(), bob = Schnorr.PrivateKey()
        // Nonces 0,1,2 of one sender in one batch: admitted in order against the check state.
        let good = try (0..<3).map { try labelTx(alice, nonce: UInt64($0), chainID: Self.chainID, label: "a\($0)") }
        let gap = try labelTx(alice, nonce: 5, chainID: Self.chainID, label: "gap")
        var forged = try Transaction(decoding: try labelTx(bob, nonce: 0, chainID: Self.chainID))
        forged.signature = Data(repeating: 7, count: 64)
        let bobTx = try labelTx(bob, nonce: 0, chainID: Self.chainID, label: "b")
        let batch = good + [gap, forged.encoded, Data([1, 2, 3]), bobTx]

        try await api.test(.router) { client in
            let r = try await client.execute(uri: "/txs/batch", method: .post, headers: [.contentType: "application/octet-stream"],
                                             body: Self.framed(batch))
            #expect(r.status == .ok)
            let verdicts = try Self.results(r)
            #expect(verdicts.count == batch.count)
            #expect(verdicts.map { $0["accepted"] as? Bool } == [true, true, true, false, false, false, true])
            #expect(verdicts.map { $0["hash"] as? String } == batch.map { Transaction.hash(of: $0).hexString })
            #expect(verdicts[3]["rule"] as? String == "nonce-mismatch")
            #expect(verdicts[4]["rule"] as? String == "invalid-signature")
            #expect(verdicts[5]["rule"] as? String == "malformed")

            // JSON form.
            let carol = Schnorr.PrivateKey()
            let c0 = try labelTx(carol, nonce: 0, chainID: Self.chainID)
            // The same nonce again, another label: it replaces the pending one, naming it.
            let c0b = try labelTx(carol, nonce: 0, chainID: Self.chainID, label: "instead")
            let j = try await client.execute(
                uri: "/txs/batch", method: .post, headers: [.contentType: "application/json"],
                body: ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: ["txs": [c0.hexString, c0b.hexString]])))
            #expect(j.status == .ok)
            let second = try Self.results(j)
            #expect(second.map { $0["accepted"] as? Bool } == [true, true])
            #expect((second[1]["log"] as? String)?.contains("replaced pending transaction \(Transaction.hash(of: c0).hexString)") == true)
            // The replaced version, sent again: refused.
            let back = try await client.execute(
                uri: "/txs/batch", method: .post, headers: [.contentType: "application/json"],
                body: ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: ["txs": [c0.hexString]])))
            let third = try Self.results(back)
            #expect(third.map { $0["accepted"] as? Bool } == [false])
            // The node makes blocks on its own clock: if one took the replacement since, the
            // nonce is spent and that is the reason given (MempoolTests pins the pending case).
            let reason = third[0]["log"] as? String ?? ""
            #expect(reason.contains("replaced here") || third[0]["rule"] as? String == "nonce-mismatch", "\(reason)")

            // Malformed batches are 400s naming what is wrong.
            let truncated = Self.framed([bobTx]).getSlice(at: 0, length: 10) ?? ByteBuffer()
            var zero = ByteBuffer()
            zero.writeInteger(UInt32(0))
            let cases: [(ByteBuffer, HTTPFields, String)] = [
                (truncated, [.contentType: "application/octet-stream"], "invalid_batch"),
                (ByteBuffer(bytes: [0, 0]), [.contentType: "application/octet-stream"], "invalid_batch"),
                (zero, [.contentType: "application/octet-stream"], "invalid_batch"),
                (ByteBuffer(), [.contentType: "application/octet-stream"], "empty_body"),
                (ByteBuffer(string: #"{"txs": ["zz"]}"#), [.contentType: "application/json"], "invalid_tx_hex"),
                (ByteBuffer(string: #"{"tx": "00"}"#), [.contentType: "application/json"], "invalid_body"),
                (ByteBuffer(string: #"{"txs": []}"#), [.contentType: "application/json"], "empty_body"),
            ]
            for (body, headers, code) in cases {
                let bad = try await client.execute(uri: "/txs/batch", method: .post, headers: headers, body: body)
                #expect(bad.status == .badRequest, "\(code)")
                #expect(Self.errorCode(bad) == code)
            }
            let many = Self.framed(Array(repeating: Data([9]), count: APIRoutes.maxBatchTransactions + 1))
            let tooMany = try await client.execute(uri: "/txs/batch", method: .post,
                                                   headers: [.contentType: "application/octet-stream"], body: many)
            #expect(tooMany.status == .badRequest)
            #expect(Self.errorCode(tooMany) == "batch_too_large")
        }
        // The admitted transactions commit.
        let last = Transaction.hash(of: good[2])
        #expect(try await eventually(20) { try await node.transaction(hash: last) != nil })
        #expect(try await node.transaction(hash: Transaction.hash(of: bobTx)) != nil)
        #expect(try await node.transaction(hash: Transaction.hash(of: forged.encoded)) == nil)
        await node.stop()
    }
}
