import Foundation
import IshtarBitcoin
import IshtarBitcoinRPC
import IshtarChain
import IshtarCLI
import IshtarCrypto
import IshtarNode
import IshtarTestSupport
import Testing

/// An account on the control plane sending transactions with locally tracked nonces.
final class ScenarioAccount: @unchecked Sendable {
    // @unchecked: used by one test driver thread at a time.
    let key: Schnorr.PrivateKey
    var nonce: UInt64 = 0

    init(_ key: Schnorr.PrivateKey = Schnorr.PrivateKey()) { self.key = key }
    var address: Data { key.publicKey.rawRepresentation }
}

/// A key whose point has even y, so EOTS extraction (which returns the even-y form) gives
/// back exactly these bytes.
func evenYKey() -> Schnorr.PrivateKey {
    while true {
        let k = Schnorr.PrivateKey()
        if k.point.hasEvenY { return k }
    }
}

/// The test driver's view of a devnet: HTTP API of one node (JSON), transaction submission
/// and waiting for inclusion. Every call is a real request to a real `ishtar node` process.
struct ScenarioChain {
    let net: Devnet
    let chainID: String
    /// The node the driver talks to.
    var node = 0

    /// `node init` with the scenario's control-plane flags (loopback, plaintext keys, fast timeouts).
    static func initialize(_ net: Devnet, chainID: String, extra: [String]) throws -> [String: Any] {
        let p = Process()
        p.executableURL = Devnet.binary
        p.arguments = ["node", "init", "--home", net.dir, "--chain-id", chainID, "--validators", "\(net.count)",
                       "--insecure-plaintext", "--fast-timeouts", "--base-port", "\(net.basePort)", "--json"] + extra
        let out = Pipe()
        let err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw TestError("node init failed (\(p.terminationStatus)): \(String(decoding: stderr, as: UTF8.self))")
        }
        return (try JSONSerialization.jsonObject(with: stdout) as? [String: Any]) ?? [:]
    }

    /// GET `path` as a JSON object; nil on any non-200 answer.
    func json(_ path: String, node i: Int? = nil) -> [String: Any]? { net.json(i ?? node, path) }

    /// GET `path`, failing the scenario with the API's answer when it is not 200.
    func require(_ path: String) throws -> [String: Any] {
        let r = try net.client(node).get(path)
        guard r.status == 200, let obj = try JSONSerialization.jsonObject(with: r.body) as? [String: Any] else {
            throw TestError("GET \(path): \(r.status) \(String(decoding: r.body, as: UTF8.self))")
        }
        return obj
    }

    var height: UInt64 { net.height(node) ?? 0 }

    /// The committed block hash at `h` (32 bytes).
    func blockHash(_ h: UInt64) throws -> Data {
        guard let hex = net.blockHash(node, h), let hash = try? Data(hex: hex), hash.count == 32 else {
            throw TestError("no block \(h) on node\(node)")
        }
        return hash
    }

    /// The account's nonce on chain (0 for an account never seen).
    func chainNonce(_ account: ScenarioAccount) -> UInt64 {
        guard let obj = json("/modules/accounts/account/" + account.address.hexString),
              let text = obj["nonce"] as? String, let n = UInt64(text) else { return 0 }
        return n
    }

    /// Signs `messages` with the account's next nonce and POSTs them; returns the tx hash.
    /// Throws with the check-tx verdict when the node refuses.
    @discardableResult
    func submit(_ account: ScenarioAccount, _ messages: [Message]) throws -> Data {
        let tx = try IshtarChain.Transaction.signed(chainID: chainID, key: account.key, nonce: account.nonce,
                                                    messages: messages).encoded
        let body = try JSONSerialization.data(withJSONObject: ["tx": tx.hexString])
        let r = try net.client(node).post("/txs", body: body)
        guard r.status == 200 else {
            throw TestError("POST /txs (\(messages.map(\.type))): \(r.status) \(String(decoding: r.body, as: UTF8.self))")
        }
        account.nonce += 1
        return IshtarChain.Transaction.hash(of: tx)
    }

    /// Waits until the transaction is committed; returns its `result` object.
    func committed(_ hash: Data, seconds: Double = 30) async throws -> [String: Any] {
        var found: [String: Any]?
        _ = await waitUntil(seconds) {
            found = json("/txs/" + hash.hexString)
            return found != nil
        }
        guard let found, let result = found["result"] as? [String: Any] else {
            throw TestError("transaction \(hash.hexString) not committed within \(seconds) s")
        }
        return result
    }

    /// Submits, waits for the block, and requires success.
    func run(_ account: ScenarioAccount, _ messages: [Message], sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let hash = try submit(account, messages)
        let result = try await committed(hash)
        let code = (result["code"] as? NSNumber)?.intValue ?? -1
        guard code == 0 else {
            // A failed transaction does not use its nonce.
            account.nonce = chainNonce(account)
            throw TestError("\(messages.map(\.type)) failed: \(result["codespace"] ?? "")/\(result["rule"] ?? ""): \(result["log"] ?? "")")
        }
    }

    /// `/modules/staking/delegation/<txid>`'s status.
    func delegationStatus(_ txid: Hash256) -> String? {
        json("/modules/staking/delegation/" + txid.displayHex)?["status"] as? String
    }

    /// Relays every BTC header the light client does not have yet with the code of `ishtar
    /// relay headers` (``RelayActions/relayHeaders(node:bitcoind:key:chainID:maxHeaders:)``),
    /// waits for its transactions, then requires the light client's tip to be the regtest
    /// node's tip.
    func relayHeaders(_ rpc: BitcoinRPCClient, from account: ScenarioAccount) async throws {
        let out = try await RelayActions.relayHeaders(node: try net.client(node), bitcoind: rpc, key: account.key,
                                                      chainID: chainID, maxHeaders: 10_000)
        if let refused = out.refused { throw TestError("relay refused: \(refused)") }
        for hash in out.transactions {
            let result = try await committed(try Data(hex: hash))
            guard (result["code"] as? NSNumber)?.intValue == 0 else { throw TestError("relay transaction failed: \(result)") }
        }
        // The relay numbered its transactions from the committed nonce.
        account.nonce = chainNonce(account)
        let tipHash = try await rpc.getBestBlockHash()
        let lc = try require("/modules/btclightclient/tip")
        guard lc["hash"] as? String == tipHash else { throw TestError("light client tip \(lc) is not \(tipHash)") }
    }
}

/// Bitcoin-side helpers: funding from coinbases and real staking transactions, signed and
/// checked by Bitcoin Core's code on the regtest node.
struct ScenarioBitcoin {
    let rpc: BitcoinRPCClient
    let funder: Schnorr.PrivateKey

    var funding: TaprootOutput { get throws { try TaprootOutput(internalKey: funder.publicKey, tree: nil) } }

    /// Mines `count` coinbases to the funding key, then 100 blocks so they mature.
    func matureCoins(_ count: Int) async throws -> [(OutPoint, TxOut)] {
        let address = try funding.address(network: .regtest).encoded
        let hashes = try await rpc.generateToAddress(count, address: address)
        var coins: [(OutPoint, TxOut)] = []
        for hash in hashes {
            let block = try await rpc.getBlock(hash)
            let coinbase = try IshtarBitcoin.Transaction(serialized: try await rpc.getRawTransactionData(block.txids[0], blockHash: hash))
            let script = try funding.scriptPubKey
            guard let index = coinbase.outputs.firstIndex(where: { $0.scriptPubKey == script }) else {
                throw TestError("coinbase \(hash) does not pay the funding key")
            }
            coins.append((OutPoint(txid: coinbase.txid, index: UInt32(index)), coinbase.outputs[index]))
        }
        _ = try await rpc.generateToAddress(100, address: TestAddress.opTrue)
        return coins
    }

    /// A staking transaction spending `coin` by key path: staking output 0, change 1.
    func stakingTransaction(spending coin: (OutPoint, TxOut), builder: StakingBuilder, value: Amount) throws
        -> IshtarBitcoin.Transaction
    {
        let change = try coin.1.value - value - (try Amount(sats: 2_000))
        var tx = IshtarBitcoin.Transaction(
            inputs: [TxIn(previousOutput: coin.0)],
            outputs: [builder.stakingOutput(value: value), TxOut(value: change, scriptPubKey: try funding.scriptPubKey)])
        let sighasher = try TaprootSighasher(transaction: tx, prevouts: [coin.1])
        tx.inputs[0].witness = try sighasher.keyPathWitness(inputIndex: 0, internalKey: funder, merkleRoot: nil)
        return tx
    }
}

/// One stake: a provider and the staking transaction paying its staking script.
struct ScenarioStake {
    var provider: Schnorr.PrivateKey
    var staking: IshtarBitcoin.Transaction
    var txid: Hash256 { staking.txid }

    /// The staking transaction for `provider`, funded from `coin` (its delegation is built by
    /// `StakingActions.delegationMessage`, as `ishtar staking delegate` does).
    static func make(staker: Schnorr.PrivateKey, provider: Schnorr.PrivateKey, stakingTime: UInt16, value: Amount,
                     parameters: StakingParameters, coin: (OutPoint, TxOut), bitcoin: ScenarioBitcoin) throws -> ScenarioStake {
        let builder = try StakingBuilder(stakerKey: staker.publicKey, finalityProviderKeys: [provider.publicKey],
                                         stakingTime: stakingTime, parameters: parameters)
        return ScenarioStake(provider: provider, staking: try bitcoin.stakingTransaction(spending: coin, builder: builder, value: value))
    }
}
