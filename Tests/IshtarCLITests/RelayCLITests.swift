import Foundation
import IshtarBitcoinRPC
import IshtarChain
import IshtarCrypto
import IshtarCLI
import IshtarNode
import IshtarTestSupport
import Testing

/// `ishtar relay headers` between the regtest node (Bitcoin Core's code) and a live
/// control-plane chain: a first relay in several transactions, then a Bitcoin reorg.
@Suite(.serialized, .enabled(if: regtestNodeAvailable, "Scripts/regtest-node not found; relay tests skipped"))
struct RelayCLITests {
    @Test func relaysMissingHeadersAndFollowsAReorg() async throws {
        try await withRegtestNode { btc in
            let rpc = btc.client()
            let node = try await RoleCLITests.controlPlaneNode()
            try await node.stopping {
                let dir = TempDir(prefix: "relay-cli")
                let passwordFile = dir.path("rpc-password")
                try Data((try #require(btc.password) + "\n").utf8).write(to: URL(fileURLWithPath: passwordFile))
                try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: passwordFile)
                let keyFile = dir.path("relayer.key")
                let made = try await ishtar(["keys", "generate", "--output", keyFile], environment: RoleCLITests.passphrase)
                #expect(made.status == 0, "\(made.stderr)")
                let args = ["relay", "headers", "--node", node.url, "--key-file", keyFile, "--chain-id", CLIChainBackend.chainID,
                            "--bitcoind-url", "http://127.0.0.1:\(btc.port)/", "--rpc-user", try #require(btc.user),
                            "--rpc-password-file", passwordFile, "--json"]
                func lightClientTip() async throws -> (hash: String, height: String) {
                    let tip = try parseJSON(try await ishtar(["query", "module", "btclightclient", "tip", "--node", node.url]))
                    return (try #require(tip["hash"] as? String), try #require(tip["height"] as? String))
                }

                // 250 blocks: more than one message holds (200), so two transactions with
                // consecutive nonces, both admitted before either is in a block.
                let mined = try await rpc.generateToAddress(250, address: TestAddress.opTrue)
                let first = try await ishtar(args, environment: RoleCLITests.passphrase)
                #expect(first.status == 0, "\(first.stdout) \(first.stderr)")
                let out = try parseJSON(first)
                #expect(out["headers_sent"] as? Int == 250)
                #expect((out["transactions"] as? [String])?.count == 2)
                #expect(out["fork_height"] as? Int == 0)
                try await node.backend.produceBlock()
                var tip = try await lightClientTip()
                #expect(tip.hash == mined.last && tip.height == "250")

                // Nothing new: nothing sent.
                let idle = try parseJSON(try await ishtar(args, environment: RoleCLITests.passphrase))
                #expect(idle["headers_sent"] as? Int == 0)

                // A competing branch from block 240 with more work: Bitcoin Core switches to it,
                // and the relay finds the common block and sends the branch.
                let branch = try await rpc.generateToAddressFrom(parent: mined[239], count: 12, address: TestAddress.opTrue)
                #expect(try await rpc.getBestBlockHash() == branch.last)
                let reorg = try await ishtar(args, environment: RoleCLITests.passphrase)
                #expect(reorg.status == 0, "\(reorg.stdout) \(reorg.stderr)")
                let reorgOut = try parseJSON(reorg)
                #expect(reorgOut["fork_height"] as? Int == 240)
                #expect(reorgOut["fork_hash"] as? String == mined[239])
                #expect(reorgOut["headers_sent"] as? Int == 12)
                try await node.backend.produceBlock()
                tip = try await lightClientTip()
                #expect(tip.hash == branch.last && tip.height == "252")
                let orphan = try parseJSON(try await ishtar(["query", "module", "btclightclient", "depth", mined[249], "--node", node.url]))
                #expect(orphan["on_main_chain"] as? Bool == false)

                // No epoch is sealed on this one-validator chain without checkpoint signatures:
                // nothing is built, funded or broadcast.
                let fundingKey = dir.path("funding.key")
                _ = try await ishtar(["keys", "generate", "--output", fundingKey], environment: RoleCLITests.passphrase)
                let unsealed = try await ishtar(["relay", "checkpoint-submit", "--node", node.url, "--key-file", keyFile,
                                                 "--funding-key-file", fundingKey, "--epoch", "1",
                                                 "--bitcoind-url", "http://127.0.0.1:\(btc.port)/", "--rpc-user", try #require(btc.user),
                                                 "--rpc-password-file", passwordFile], environment: RoleCLITests.passphrase)
                #expect(unsealed.status != 0)
                #expect(unsealed.stderr.contains("epoch 1") || unsealed.stderr.contains("sealed"), "\(unsealed.stderr)")

                // Bad credentials are exit code 2, with bitcoind's answer named.
                try Data("wrong\n".utf8).write(to: URL(fileURLWithPath: passwordFile))
                try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: passwordFile)
                let denied = try await ishtar(args, environment: RoleCLITests.passphrase)
                #expect(denied.status == 2)
                #expect(denied.stderr.contains("bitcoind"), "\(denied.stderr)")
            }
        }
    }

    /// `ishtar watch slash`, `ishtar staking unbond` and `ishtar staking withdraw` are wired to
    /// the node and bitcoind and refuse what they cannot do with exit 1 and one line (the
    /// slashing, on both outputs, the unbonding and the withdrawals are accepted by Bitcoin
    /// Core in the staking scenario through the same library calls).
    @Test func watchSlashAndUnbondRefuseAnUnknownDelegationAndBadInput() async throws {
        try await withRegtestNode { btc in
            let node = try await RoleCLITests.controlPlaneNode()
            try await node.stopping {
                let dir = TempDir(prefix: "watch-cli")
                let passwordFile = dir.path("rpc-password")
                try Data((try #require(btc.password) + "\n").utf8).write(to: URL(fileURLWithPath: passwordFile))
                try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: passwordFile)
                let rpcArgs = ["--bitcoind-url", "http://127.0.0.1:\(btc.port)/", "--rpc-user", try #require(btc.user),
                               "--rpc-password-file", passwordFile]
                let unknown = String(repeating: "ab", count: 32)
                let missing = try await ishtar(["watch", "slash", "--node", node.url, "--staking-txid", unknown] + rpcArgs)
                #expect(missing.status == 1, "\(missing.stdout) \(missing.stderr)")
                #expect(missing.stderr.contains("delegation") && missing.stderr.split(separator: "\n").count == 1, "\(missing.stderr)")
                let badTxid = try await ishtar(["watch", "slash", "--node", node.url, "--staking-txid", "xyz"] + rpcArgs)
                #expect(badTxid.status == 2 && badTxid.stderr.contains("--staking-txid"), "\(badTxid.stderr)")
                let noBitcoind = try await ishtar(["watch", "slash", "--node", node.url, "--staking-txid", unknown])
                #expect(noBitcoind.status == 2 && noBitcoind.stderr.contains("--rpc-cookie-file"), "\(noBitcoind.stderr)")

                let innocent = Schnorr.PrivateKey().publicKey.rawRepresentation.hexString
                let noEvidence = try await ishtar(["watch", "slash-provider", "--node", node.url, "--fp-pk", innocent] + rpcArgs)
                #expect(noEvidence.status == 1 && noEvidence.stderr.contains("no equivocation evidence"), "\(noEvidence.stderr)")
                let badKey = try await ishtar(["watch", "slash-provider", "--node", node.url, "--fp-pk", "00"] + rpcArgs)
                #expect(badKey.status == 2 && badKey.stderr.contains("--fp-pk"), "\(badKey.stderr)")

                // `ishtar staking unbond` works from the same stored delegation.
                let keyFile = dir.path("staker.key")
                #expect(try await ishtar(["keys", "generate", "--output", keyFile], environment: RoleCLITests.passphrase).status == 0)
                let unbond = try await ishtar(["staking", "unbond", "--node", node.url, "--key-file", keyFile, "--staking-txid", unknown]
                                              + rpcArgs, environment: RoleCLITests.passphrase)
                #expect(unbond.status == 1 && unbond.stderr.contains("delegation"), "\(unbond.stdout) \(unbond.stderr)")
                let noKey = try await ishtar(["staking", "unbond", "--node", node.url, "--key-file", dir.path("absent.key"),
                                              "--staking-txid", unknown] + rpcArgs, environment: RoleCLITests.passphrase)
                #expect(noKey.status == 2, "\(noKey.stderr)")

                // `ishtar staking withdraw` too; its address and fee rate are checked before anything is asked.
                let withdrawArgs = ["staking", "withdraw", "--node", node.url, "--key-file", keyFile, "--staking-txid", unknown]
                let withdraw = try await ishtar(withdrawArgs + ["--to", TestAddress.p2tr] + rpcArgs, environment: RoleCLITests.passphrase)
                #expect(withdraw.status == 1 && withdraw.stderr.contains("delegation"), "\(withdraw.stdout) \(withdraw.stderr)")
                let badAddress = try await ishtar(withdrawArgs + ["--to", "bcrt1qnotanaddress"] + rpcArgs, environment: RoleCLITests.passphrase)
                #expect(badAddress.status == 2 && badAddress.stderr.contains("--to"), "\(badAddress.stderr)")
                let noAddress = try await ishtar(withdrawArgs + rpcArgs, environment: RoleCLITests.passphrase)
                #expect(noAddress.status == 2 && noAddress.stderr.contains("--to"), "\(noAddress.stderr)")
                let badRate = try await ishtar(withdrawArgs + ["--to", TestAddress.p2tr, "--fee-rate", "0"] + rpcArgs,
                                               environment: RoleCLITests.passphrase)
                #expect(badRate.status == 2 && badRate.stderr.contains("--fee-rate"), "\(badRate.stderr)")
                let status = try await ishtar(["staking", "status", "--node", node.url, "--staking-txid", unknown] + rpcArgs)
                #expect(status.status == 1 && status.stderr.contains("delegation"), "\(status.stdout) \(status.stderr)")
                let statusBadTxid = try await ishtar(["staking", "status", "--node", node.url, "--staking-txid", "00"] + rpcArgs)
                #expect(statusBadTxid.status == 2 && statusBadTxid.stderr.contains("--staking-txid"), "\(statusBadTxid.stderr)")
            }
        }
    }
}
