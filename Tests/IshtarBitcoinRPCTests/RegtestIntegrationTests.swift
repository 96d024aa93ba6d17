import IshtarTestSupport
import Foundation
import IshtarBitcoinRPC
import Testing

/// End-to-end tests against `Scripts/regtest-node`, started as a real subprocess
/// on a free loopback port for each test and stopped afterwards.
@Suite(
    "Regtest node integration",
    .enabled(if: regtestNodeAvailable, "Scripts/regtest-node not found; integration tests skipped"),
    .timeLimit(.minutes(5)))
struct RegtestIntegrationTests {
    @Test func passwordAuthAndBlockchainInfo() async throws {
        try await withRegtestNode { node in
            let info = try await node.client().getBlockchainInfo()
            #expect(info.chain == "regtest")
            #expect(info.blocks == 0)
            #expect(info.headers == 0)
            #expect(info.pruned == false)
            #expect(info.chainWork.count == 64)
            #expect(info.bestBlockHash == (try await node.client().getBlockHash(height: 0)))
            #expect(try await node.client().getBestBlockHash() == info.bestBlockHash)

            // Wrong password → HTTP 401, not retried.
            let log = LogCapture()
            let bad = node.client(
                credentials: .userPassword(user: node.user!, password: "wrong"),
                retry: .init(maxAttempts: 4, initialBackoff: .milliseconds(10)), logCapture: log)
            do throws(BitcoinRPCError) {
                _ = try await bad.getBlockCount()
                Issue.record("expected 401")
            } catch {
                #expect(error.isUnauthorized, "got \(error)")
            }
            #expect(log.callLines.first?.metadata["attempts"] == "1")
            #expect(!log.allText.contains(node.password!))
        }
    }

    @Test func cookieAuthSurvivesRestart() async throws {
        let first = try await RegtestNode.start(user: nil, password: nil)
        let datadir = first.datadir
        defer { try? FileManager.default.removeItem(at: datadir) }
        var second: RegtestNode?
        do {
            let client = first.client()  // cookie auth
            #expect(try await client.getBlockCount() == 0)
            let hashes = try await client.generateToAddress(1, address: TestAddress.p2wpkh)
            let oldCookie = try String(contentsOfFile: first.cookiePath, encoding: .utf8)
            await first.stop(keepData: true)

            // Same datadir and port: a new cookie is written; the client must re-read it.
            let restarted = try await RegtestNode.start(user: nil, password: nil, datadir: datadir, port: first.port)
            second = restarted
            let newCookie = try String(contentsOfFile: restarted.cookiePath, encoding: .utf8)
            #expect(newCookie != oldCookie)
            #expect(try await client.getBlockCount() == 1)
            #expect(try await client.getBestBlockHash() == hashes[0])

            // A client holding a wrong fixed password still gets 401.
            let bad = restarted.client(credentials: .userPassword(user: "__cookie__", password: "00"))
            await #expect(throws: BitcoinRPCError.http(status: 401, body: "")) { _ = try await bad.getBlockCount() }
            await restarted.stop()
        } catch {
            await first.stop()
            await second?.stop()
            throw error
        }
    }

    @Test func minedBlocksAgreeAcrossCalls() async throws {
        try await withRegtestNode { node in
            let rpc = node.client()
            let hashes = try await rpc.generateToAddress(3, address: TestAddress.p2wpkh)
            #expect(hashes.count == 3)
            #expect(try await rpc.getBlockCount() == 3)
            #expect(try await rpc.getBestBlockHash() == hashes[2])
            let genesis = try await rpc.getBlockHash(height: 0)

            for (i, hash) in hashes.enumerated() {
                let height = i + 1
                #expect(try await rpc.getBlockHash(height: height) == hash)

                let header = try await rpc.getBlockHeader(hash)
                #expect(header.hash == hash)
                #expect(header.height == height)
                #expect(header.confirmations == 3 - height + 1)
                #expect(header.previousBlockHash == (i == 0 ? genesis : hashes[i - 1]))
                #expect(header.nextBlockHash == (i == 2 ? nil : hashes[i + 1]))
                #expect(header.transactionCount == 1)

                // Raw header bytes carry the same fields.
                let raw = try await rpc.getBlockHeaderData(hash)
                #expect(raw.count == 80)
                #expect(le32(raw, 0) == UInt32(bitPattern: header.version))
                #expect(reversedHex(raw[4..<36]) == header.previousBlockHash)
                #expect(reversedHex(raw[36..<68]) == header.merkleRoot)
                #expect(Int64(le32(raw, 68)) == header.time)
                #expect(String(format: "%08x", le32(raw, 72)) == header.bits)
                #expect(le32(raw, 76) == header.nonce)

                // Verbosity 0: starts with the same 80 bytes.
                let blockData = try await rpc.getBlockData(hash)
                #expect(blockData.prefix(80) == raw)

                // Verbosity 1: same header, txids.
                let v1 = try await rpc.getBlock(hash)
                #expect(v1.header == header)
                #expect(v1.size == blockData.count)
                #expect(v1.txids.count == 1)
                #expect(v1.weight >= v1.size)

                // Verbosity 2: decoded coinbase; its hex is in the raw block after the tx count.
                let v2 = try await rpc.getBlockWithTransactions(hash)
                #expect(v2.header == header)
                #expect(v2.transactions.map(\.txid) == v1.txids)
                let coinbase = try #require(v2.transactions.first)
                #expect(coinbase.inputs.first?.coinbase != nil)
                #expect(coinbase.txid == header.merkleRoot)  // single-tx block
                #expect(coinbase.outputs[0].value == 5_000_000_000)
                #expect(coinbase.outputs[0].scriptPubKey.address == TestAddress.p2wpkh)
                #expect(coinbase.outputs[0].scriptPubKey.type == "witness_v0_keyhash")
                let txHex = try #require(coinbase.hex)
                #expect(blockData.dropFirst(81).hexString == txHex)  // 80-byte header + varint(1)

                // getrawtransaction with blockhash, both forms.
                let rawTx = try await rpc.getRawTransactionData(coinbase.txid, blockHash: hash)
                #expect(rawTx.hexString == txHex)
                let decoded = try await rpc.getRawTransaction(coinbase.txid, blockHash: hash)
                #expect(decoded.txid == coinbase.txid)
                #expect(decoded.blockHash == hash)
                #expect(decoded.inActiveChain == true)

                let out = try #require(try await rpc.getTxOut(txid: coinbase.txid, vout: 0))
                #expect(out.value == 5_000_000_000)
                #expect(out.coinbase)
                #expect(out.confirmations == header.confirmations)
                #expect(out.bestBlock == hashes[2])
            }

            // Unknown / spent outputs → nil.
            #expect(try await rpc.getTxOut(txid: String(repeating: "0", count: 64), vout: 0) == nil)

            let scan = try await rpc.scanTxOutSet(["addr(\(TestAddress.p2wpkh))"])
            #expect(scan.success)
            #expect(scan.height == 3)
            #expect(scan.unspents.count == 3)
            #expect(scan.totalAmount == 15_000_000_000)
            #expect(Set(scan.unspents.map(\.height)) == [1, 2, 3])
        }
    }

    @Test func rpcErrorIsMappedAndNotRetried() async throws {
        try await withRegtestNode { node in
            let log = LogCapture()
            let rpc = node.client(retry: .init(maxAttempts: 5, initialBackoff: .milliseconds(10)), logCapture: log)
            do throws(BitcoinRPCError) {
                _ = try await rpc.getBlockHash(height: 1_000)
                Issue.record("expected an RPC error")
            } catch {
                guard case .rpc(let code, let message) = error else {
                    Issue.record("expected .rpc, got \(error)")
                    return
                }
                #expect(code == RPCErrorCode.invalidParameter)
                #expect(message.contains("out of range"))
                #expect(!error.isRetryable)
            }
            #expect(log.callLines.count == 1)
            #expect(log.callLines.first?.metadata["attempts"] == "1")
            #expect(log.lines.allSatisfy { !$0.message.contains("retrying") })

            await #expect(throws: BitcoinRPCError.rpc(code: RPCErrorCode.methodNotFound, message: "Method not found")) {
                _ = try await rpc.call(method: "nosuchmethod")
            }
            await #expect {
                _ = try await rpc.getBlockHeader(String(repeating: "ab", count: 32))
            } throws: { error in
                if case .rpc(RPCErrorCode.notFound, _) = error as? BitcoinRPCError { return true }
                return false
            }
        }
    }

    @Test func batchCall() async throws {
        try await withRegtestNode { node in
            let rpc = node.client()
            _ = try await rpc.generateToAddress(2, address: TestAddress.p2tr)
            let results = try await rpc.batch([
                .init(method: "getblockcount"),
                .init(method: "getblockhash", params: [0]),
                .init(method: "getblockhash", params: [99]),
                .init(method: "nosuchmethod"),
                .init(method: "getbestblockhash"),
            ])
            #expect(results.count == 5)
            #expect(try results[0].get() == 2)
            #expect(try results[1].get() == .string(try await rpc.getBlockHash(height: 0)))
            #expect(results[2] == .failure(.rpc(code: RPCErrorCode.invalidParameter, message: "Block height out of range")))
            if case .failure(.rpc(let code, _)) = results[3] {
                #expect(code == RPCErrorCode.methodNotFound)
            } else {
                Issue.record("expected method-not-found, got \(results[3])")
            }
            #expect(try results[4].get() == .string(try await rpc.getBestBlockHash()))
            #expect(try await rpc.batch([]).isEmpty)
        }
    }

    @Test func reorgViaGenerateToAddressFrom() async throws {
        try await withRegtestNode { node in
            let rpc = node.client()
            let genesis = try await rpc.getBlockHash(height: 0)
            let a = try await rpc.generateToAddress(2, address: TestAddress.p2wpkh)
            #expect(try await rpc.getBestBlockHash() == a[1])

            // A longer competing branch from genesis.
            let b = try await rpc.generateToAddressFrom(parent: genesis, count: 3, address: TestAddress.p2tr)
            #expect(b.count == 3)
            #expect(try await rpc.getBestBlockHash() == b[2])
            #expect(try await rpc.getBlockCount() == 3)
            #expect(try await rpc.getBlockHash(height: 2) == b[1])

            let stale = try await rpc.getBlockHeader(a[1])
            #expect(stale.confirmations == -1)
            #expect(stale.nextBlockHash == nil)
            #expect(try await rpc.getBlockHeader(a[0]).confirmations == -1)
            #expect(try await rpc.getBlockHeader(b[0]).confirmations == 3)
            // The stale block's coinbase output is gone from the UTXO set.
            let staleCoinbase = try await rpc.getBlock(a[0]).txids[0]
            #expect(try await rpc.getTxOut(txid: staleCoinbase, vout: 0) == nil)
        }
    }

    @Test func mempoolAndTransactionRPCs() async throws {
        try await withRegtestNode { node in
            let rpc = node.client()
            // Coinbases to wsh(OP_TRUE), spendable without keys once mature.
            let hashes = try await rpc.generateToAddress(101, address: TestAddress.opTrue)
            let coinbase = try await rpc.getBlock(hashes[0]).txids[0]
            let spend = opTrueSpend(txid: coinbase, vout: 0, value: 5_000_000_000 - 10_000)

            let accept = try await rpc.testMempoolAccept([spend.hexString])
            #expect(accept.count == 1)
            #expect(accept[0].allowed == true, "\(accept[0])")
            #expect(accept[0].baseFee == 10_000)
            #expect(try await rpc.getRawMempool().isEmpty)

            // maxfeerate far below the tx's rate → rejected (-25/-26), nothing in the mempool.
            await #expect {
                _ = try await rpc.sendRawTransaction(spend, maxFeeRate: 1)
            } throws: { error in
                guard case .rpc(let code, _) = error as? BitcoinRPCError else { return false }
                return code == RPCErrorCode.verifyError || code == RPCErrorCode.verifyRejected
            }

            let txid = try await rpc.sendRawTransaction(spend)
            #expect(txid == accept[0].txid)
            #expect(try await rpc.getRawMempool() == [txid])
            let entry = try await rpc.getMempoolEntry(txid)
            #expect(entry.baseFee == 10_000)
            #expect(entry.ancestorCount == 1)
            #expect(entry.vsize > 0)
            let verbose = try await rpc.getRawMempoolVerbose()
            #expect(verbose[txid] == entry)
            let fromMempool = try await rpc.getRawTransaction(txid)
            #expect(fromMempool.blockHash == nil)
            #expect(fromMempool.outputs[0].value == 5_000_000_000 - 10_000)
            #expect(try await rpc.getTxOut(txid: coinbase, vout: 0) == nil)  // spent in mempool
            #expect(try await rpc.getTxOut(txid: txid, vout: 0)?.confirmations == 0)

            // Mine it with generateblock.
            let block = try await rpc.generateBlock(output: TestAddress.p2wpkh, transactions: [txid])
            #expect(try await rpc.getBestBlockHash() == block.hash)
            #expect(try await rpc.getBlock(block.hash).txids.dropFirst() == [txid])
            #expect(try await rpc.getRawMempool().isEmpty)
            let v2 = try await rpc.getBlockWithTransactions(block.hash)
            #expect(v2.transactions[1].fee == 10_000)
            #expect(v2.transactions[1].inputs[0].witness == ["51"])

            // Garbage and double spends.
            await #expect(throws: BitcoinRPCError.self) { _ = try await rpc.sendRawTransaction(hex: "00") }
            await #expect {
                _ = try await rpc.sendRawTransaction(spend)
            } throws: { error in
                guard case .rpc(let code, _) = error as? BitcoinRPCError else { return false }
                return code == RPCErrorCode.verifyAlreadyInChain || code == RPCErrorCode.verifyError
                    || code == RPCErrorCode.verifyRejected
            }
            await #expect {
                _ = try await rpc.getMempoolEntry(txid)
            } throws: { error in
                if case .rpc(RPCErrorCode.notFound, _) = error as? BitcoinRPCError { return true }
                return false
            }
        }
    }

    @Test func feesAndNetworkInfo() async throws {
        try await withRegtestNode { node in
            let rpc = node.client()
            let fee = try await rpc.estimateSmartFee(confTarget: 6, mode: .conservative)
            #expect(fee.blocks >= 1)
            if let rate = fee.feeRate { #expect(rate > 0) } else { #expect(!fee.errors.isEmpty) }
            let net = try await rpc.getNetworkInfo()
            #expect(net.version > 0)
            #expect(net.relayFee > 0)
            await #expect {
                _ = try await rpc.estimateSmartFee(confTarget: 0)
            } throws: { error in
                if case .rpc(RPCErrorCode.invalidParameter, _) = error as? BitcoinRPCError { return true }
                return false
            }
        }
    }

    @Test func concurrentCallsShareTheClient() async throws {
        try await withRegtestNode { node in
            let rpc = node.client()
            _ = try await rpc.generateToAddress(5, address: TestAddress.p2wpkh)
            let hashes = try await withThrowingTaskGroup(of: (Int, String).self) { group in
                for h in 0...5 { group.addTask { (h, try await rpc.getBlockHash(height: h)) } }
                var out: [Int: String] = [:]
                for try await (h, hash) in group { out[h] = hash }
                return out
            }
            #expect(hashes.count == 6)
            for h in 0...5 { #expect(try await rpc.getBlockHeader(hashes[h]!).height == h) }
        }
    }
}

// MARK: - Helpers

private func le32(_ d: Data, _ offset: Int) -> UInt32 {
    let b = Array(d)
    return UInt32(b[offset]) | UInt32(b[offset + 1]) << 8 | UInt32(b[offset + 2]) << 16 | UInt32(b[offset + 3]) << 24
}

private func reversedHex(_ d: Data) -> String { Data(d.reversed()).hexString }

extension Data {
    var hexString: String { map { String(format: "%02x", $0) }.joined() }
    init(hex: String) {
        var bytes: [UInt8] = []
        var it = hex.makeIterator()
        while let a = it.next(), let b = it.next() { bytes.append(UInt8(String([a, b]), radix: 16)!) }
        self.init(bytes)
    }
}

/// A segwit tx spending a wsh(OP_TRUE) output (witness = [OP_TRUE script]) to the same script.
private func opTrueSpend(txid: String, vout: UInt32, value: Int64) -> Data {
    var tx: [UInt8] = []
    func u32(_ v: UInt32) { for i in 0..<4 { tx.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
    func u64(_ v: UInt64) { for i in 0..<8 { tx.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
    u32(2)  // version
    tx += [0x00, 0x01]  // segwit marker, flag
    tx.append(1)  // one input
    tx += Data(hex: txid).reversed()
    u32(vout)
    tx.append(0)  // empty scriptSig
    u32(0xFFFF_FFFD)
    tx.append(1)  // one output
    u64(UInt64(value))
    // P2WSH(OP_TRUE): OP_0 <sha256(0x51)>
    let program = Array(Data(hex: "4ae81572f06e1b88fd5ced7a1a000945432e83e1551e6f721ee9c00b8cc33260"))
    tx.append(34)
    tx += [0x00, 0x20] + program
    tx += [0x01, 0x01, 0x51]  // witness: one item, the script OP_TRUE
    u32(0)  // locktime
    return Data(tx)
}
