import Foundation
import IshtarChain
import IshtarConsensus
import IshtarCrypto
@testable import IshtarNode
import IshtarStore
import Testing

@Suite(.serialized) struct NodeServiceTests {
    @Test(.timeLimit(.minutes(3))) func singleValidatorProducesBlocksCommitsTxsAndRestarts() async throws {
        let (home, config) = try singleValidatorHome("single", chainID: "ishtar-single")
        defer { try? FileManager.default.removeItem(atPath: home.path) }
        let opts = try serviceOptions(home, config)

        let node = try NodeService(options: opts, logger: quietLogger("n"))
        try await node.start()
        #expect(await eventually(15) { await node.lastHeight >= 3 })

        // A second node on the same home must refuse with a clear error, not corrupt it.
        #expect(throws: NodeError.self) { _ = try NodeService(options: opts, logger: quietLogger("n2")) }

        let user = Schnorr.PrivateKey()
        let tx = try labelTx(user, nonce: 0, chainID: "ishtar-single")
        let res = await node.submitTransaction(tx)
        #expect(res.result.isOK, "\(res.result)")
        // Same sender, next nonce: queued in the mempool behind the first.
        let tx1 = try labelTx(user, nonce: 1, chainID: "ishtar-single", label: "second")
        #expect(await node.submitTransaction(tx1).result.isOK)
        let bad = await node.submitTransaction(Data([1, 2, 3]))
        #expect(!bad.result.isOK)
        let hash = Transaction.hash(of: tx1)
        #expect(try await eventually(15) { try await node.transaction(hash: hash) != nil })
        let committed = try #require(try await node.transaction(hash: Transaction.hash(of: tx)))
        #expect(committed.bytes == tx)
        #expect(committed.record.result.isOK)
        let status = await node.status()
        #expect(status.chainID == "ishtar-single")
        #expect(await node.health().healthy)
        let heightBefore = await node.lastHeight
        let hashBefore = await node.appHash(at: heightBefore)
        await node.stop()

        // Restart on the same store: resumes after the last height, history intact.
        let again = try NodeService(options: opts, logger: quietLogger("n3"))
        #expect(await again.lastHeight == heightBefore)
        #expect(await again.appHash(at: heightBefore) == hashBefore)
        try await again.start()
        #expect(await eventually(15) { await again.lastHeight >= heightBefore + 2 })
        #expect(try await again.transaction(hash: hash) != nil)
        await again.stop()

        // A genesis edited after init (here one more unit of power) is refused: the engine
        // would take its validators from the file and the application from its state.
        var edited = opts
        let v = edited.genesis.validators.validators[0]
        edited.genesis = try Genesis(chainID: opts.genesis.chainID, genesisTime: opts.genesis.genesisTime,
                                     validators: [ChainValidator(publicKey: v.publicKey, power: v.power + 1, name: v.name)],
                                     consensusParams: opts.genesis.consensusParams, moduleParams: opts.genesis.moduleParams)
        #expect {
            _ = try NodeService(options: edited, logger: quietLogger("n4"))
        } throws: { "\($0)".contains("genesis.json differs") }
        // The original still opens.
        _ = try NodeService(options: opts, logger: quietLogger("n5"))

        // The database removed (a "resync"): its record of what this validator signed went
        // with it, so the node refuses to start from height 1 and sign again.
        let marker = NodeService.signedMarkerPath(databasePath: opts.databasePath)
        #expect(FileManager.default.fileExists(atPath: marker))
        try FileManager.default.removeItem(atPath: opts.databasePath)
        #expect {
            _ = try NodeService(options: opts, logger: quietLogger("n6"))
        } throws: { "\($0)".contains("has signed before") }
        // The operator's explicit decision: remove the marker, and it starts over.
        try FileManager.default.removeItem(atPath: marker)
        _ = try NodeService(options: opts, logger: quietLogger("n7"))
    }

    /// The `<db>.signed` marker goes with the sign state: restored before anything is sent
    /// when the database has a sign state and the marker is missing; a database without a
    /// sign state in a home whose validator signed is refused.
    @Test(.timeLimit(.minutes(3))) func theSignedMarkerFollowsTheSignState() async throws {
        let (home, config) = try singleValidatorHome("signed-marker", chainID: "ishtar-signed-marker")
        defer { try? FileManager.default.removeItem(atPath: home.path) }
        let opts = try serviceOptions(home, config)
        let node = try NodeService(options: opts, logger: quietLogger("sm1"))
        try await node.start()
        #expect(await eventually(15) { await node.lastHeight >= 2 })
        await node.stop()
        let marker = NodeService.signedMarkerPath(databasePath: opts.databasePath)
        #expect(FileManager.default.fileExists(atPath: marker))

        // Lost (a crash between the synced sign state and the marker, or a database from
        // before markers): opening the node writes it again, before it can send anything.
        try FileManager.default.removeItem(atPath: marker)
        let reopened = try NodeService(options: opts, logger: quietLogger("sm2"))
        #expect(FileManager.default.fileExists(atPath: marker))
        await reopened.stop()

        // The database with another validator's key (as if copied from that validator): its
        // record says nothing of what this key signed, so it counts as no record — refused
        // while this key's marker says it signed, a fresh start without the marker.
        var other = opts
        other.validatorKey = Schnorr.PrivateKey()
        #expect {
            _ = try NodeService(options: other, logger: quietLogger("sm-other"))
        } throws: { "\($0)".contains("holds no record of this validator's signatures (its record is of another validator") }
        let otherMarker = NodeService.signedMarkerPath(databasePath: other.databasePath)
        try FileManager.default.moveItem(atPath: marker, toPath: marker + ".kept")
        let fresh = try NodeService(options: other, logger: quietLogger("sm-fresh"))
        #expect(!FileManager.default.fileExists(atPath: otherMarker), "a foreign record wrote this key's marker")
        await fresh.stop()
        try FileManager.default.moveItem(atPath: marker + ".kept", toPath: marker)

        // A database holding blocks but no record of this validator's signatures (copied
        // from a peer, restored from before it signed): refused while the marker says it signed.
        let db = try Database.open(path: opts.databasePath, options: DatabaseOptions(
            columnFamilies: Application.columnFamilies + [NodeService.consensusCF, NodeService.commitsCF]))
        try db.delete(NodeService.signStateKey, in: NodeService.consensusCF)
        try db.close()
        #expect {
            _ = try NodeService(options: opts, logger: quietLogger("sm3"))
        } throws: { "\($0)".contains("holds no record of this validator's signatures") }
    }

    @Test(.timeLimit(.minutes(3))) func evidenceDetectedBeforeARestartIsStillProposed() async throws {
        let chainID = "ishtar-pending-evidence"
        let (home, config) = try singleValidatorHome("pending-evidence", chainID: chainID)
        defer { try? FileManager.default.removeItem(atPath: home.path) }
        let opts = try serviceOptions(home, config)
        let first = try NodeService(options: opts, logger: quietLogger("pe1"))
        try await first.start()
        #expect(await eventually(15) { await first.lastHeight >= 2 })
        await first.stop()

        // The validator's two prevotes for different values at height 1, round 7, as the
        // engine reports them when it sees both.
        let signer = SchnorrConsensusSigner(key: opts.validatorKey)
        let chain = try ChainID(chainID)
        func prevote(_ value: BlockHash?) throws -> SignedVote {
            let v = Vote(type: .prevote, height: 1, round: 7, value: value, validator: signer.validatorAddress)
            return SignedVote(vote: v, signature: try signer.sign(v.signBytes(chainID: chain)))
        }
        let evidence = ConsensusMapping.evidence(DuplicateVoteEvidence(
            try prevote(BlockHash(Data(repeating: 0xE7, count: 32))), try prevote(nil)))

        // Detected, then the node stops before proposing again: the offence is in its
        // database, not only in memory.
        let detecting = try NodeService(options: opts, logger: quietLogger("pe2"))
        await detecting.addPendingEvidence(evidence)
        await detecting.addPendingEvidence(evidence)
        #expect(await detecting.pendingEvidenceCount == 1)
        await detecting.stop()

        let restarted = try NodeService(options: opts, logger: quietLogger("pe3"))
        #expect(await restarted.pendingEvidenceCount == 1)
        try await restarted.start()
        #expect(await eventually(15) { await restarted.pendingEvidenceCount == 0 })
        let answer = await restarted.query(path: "/modules/consensus/evidence", data: Data())
        #expect(answer.code == 0, "\(answer.log)")
        let recorded = try #require(try JSONSerialization.jsonObject(with: answer.value) as? [String: Any])
        let list = try #require(recorded["evidence"] as? [[String: Any]])
        #expect(list.count == 1)
        #expect("\(list)".contains(signer.validatorAddress.hexString))
        await restarted.stop()

        // Carried by a block: the record is gone, and nothing is proposed twice.
        let again = try NodeService(options: opts, logger: quietLogger("pe4"))
        #expect(await again.pendingEvidenceCount == 0)
        await again.stop()
    }

    /// The pending-evidence record: what is written reads back; a damaged one is refused by
    /// the decoder with the field named (the node then starts without it).
    @Test func pendingEvidenceRecordRoundTripsAndRefusesDamage() throws {
        let c = try EvidenceChain()
        let list = try [c.evidence(0, height: 1), c.evidence(1, height: 2, round: 3, type: .precommit)]
        let encoded = PendingEvidence(list).encoded
        #expect(try PendingEvidence(decoding: encoded).evidence == list)
        #expect(throws: CodecError.self) { _ = try PendingEvidence(decoding: encoded.dropLast()) }
        var huge = encoded
        huge.replaceSubrange(0..<4, with: [0xFF, 0xFF, 0xFF, 0xFF])
        #expect { _ = try PendingEvidence(decoding: huge) } throws: { "\($0)".contains("pending evidence") }
    }
}

/// What a hostile node can answer the command line's API client.
@Suite struct NodeAPIClientReplyTests {
    @Test func chunkSizesThatOverflowAreRefused() {
        #expect(throws: NodeAPIClientError.self) { try NodeAPIClient.dechunk(Array("7fffffffffffffff\r\nx\r\n0\r\n\r\n".utf8)) }
        #expect(throws: NodeAPIClientError.self) { try NodeAPIClient.dechunk(Array("-1\r\nx\r\n0\r\n\r\n".utf8)) }
        #expect((try? NodeAPIClient.dechunk(Array("3\r\nabc\r\n0\r\n\r\n".utf8))) == Array("abc".utf8))
    }

    /// A server on loopback that accepts one connection, hands the request it read to
    /// `received`, and answers with `reply` — in pieces of `piece` bytes, `pause` µs apart.
    func oneShotServer(reply: String, piece: Int = .max, pause: UInt32 = 0,
                       received: (@Sendable (String) -> Void)? = nil) -> Int {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, len) } }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &len) } }
        _ = listen(listener, 1)
        let port = Int(UInt16(bigEndian: addr.sin_port))
        let server = Thread {
            defer { close(listener) }
            let c = accept(listener, nil, nil)
            guard c >= 0 else { return }
            var buf = [UInt8](repeating: 0, count: 4096)
            let n = recv(c, &buf, buf.count, 0)
            received?(String(decoding: buf[0..<max(0, n)], as: UTF8.self))
            let bytes = Array(reply.utf8)
            var at = 0
            while at < bytes.count {
                let end = min(bytes.count, at + piece)
                guard send(c, Array(bytes[at..<end]), end - at, Int32(MSG_NOSIGNAL)) > 0 else { break }
                at = end
                if pause > 0 { usleep(pause) }
            }
            usleep(200_000)
            close(c)
        }
        server.start()
        return port
    }

    @Test func aNegativeContentLengthIsRefused() async throws {
        let port = oneShotServer(reply: "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nhello")
        let client = try NodeAPIClient(url: "http://127.0.0.1:\(port)", timeoutSeconds: 3)
        #expect { _ = try client.get("/status") } throws: { "\($0)".contains("Content-Length") }
    }

    /// A server that trickles its answer a byte at a time, each within the per-read timeout,
    /// is cut off at the whole exchange's limit instead of holding the command forever.
    @Test func aTricklingServerMeetsTheTotalDeadline() async throws {
        let port = oneShotServer(reply: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", piece: 1, pause: 300_000)
        var client = try NodeAPIClient(url: "http://127.0.0.1:\(port)", timeoutSeconds: 1)
        client.totalTimeoutSeconds = 2
        #expect { _ = try client.get("/status") } throws: { "\($0)".contains("no complete answer within 2s") }
    }

    /// The bearer token goes with state-changing requests only: reads need none, and a node
    /// reached over plain HTTP should not see it on every query.
    @Test func theTokenIsSentWithPostsOnly() async throws {
        let seen = Locked<[String]>([])
        for method in ["GET", "POST"] {
            let port = oneShotServer(reply: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}") { request in
                seen.withLock { $0.append(request) }
            }
            let client = try NodeAPIClient(url: "http://127.0.0.1:\(port)", bearerToken: "s3cret-token", timeoutSeconds: 3)
            let reply = method == "GET" ? try client.get("/status") : try client.post("/txs", body: Data("{}".utf8))
            #expect(reply.status == 200)
        }
        let requests = seen.withLock { $0 }
        #expect(requests.count == 2)
        #expect(requests.first { $0.hasPrefix("GET ") }.map { !$0.contains("s3cret-token") } == true)
        #expect(requests.first { $0.hasPrefix("POST ") }.map { $0.contains("Authorization: Bearer s3cret-token") } == true)
    }
}
