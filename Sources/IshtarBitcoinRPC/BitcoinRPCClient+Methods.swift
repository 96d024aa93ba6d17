import Foundation

extension BitcoinRPCClient {
    /// Calls `method` and decodes the result with `decode`, reporting bad fields
    /// relative to `result`.
    fileprivate func typed<T>(
        _ method: String, _ params: [JSONValue] = [], _ decode: (JSONReader) throws(BitcoinRPCError) -> T
    ) async throws(BitcoinRPCError) -> T {
        let result = try await call(method: method, params: params)
        return try decode(JSONReader(result, path: "\(method).result"))
    }

    // MARK: - Blockchain

    /// `getblockchaininfo`.
    public func getBlockchainInfo() async throws(BitcoinRPCError) -> BlockchainInfo {
        try await typed("getblockchaininfo") { (r) throws(BitcoinRPCError) in try BlockchainInfo(r) }
    }

    /// `getblockcount`: height of the active tip.
    public func getBlockCount() async throws(BitcoinRPCError) -> Int {
        try await typed("getblockcount") { (r) throws(BitcoinRPCError) in try r.height() }
    }

    /// `getbestblockhash`: hash of the active tip.
    public func getBestBlockHash() async throws(BitcoinRPCError) -> String {
        try await typed("getbestblockhash") { (r) throws(BitcoinRPCError) in try r.string() }
    }

    /// `getblockhash height`. A height above the tip fails with
    /// `.rpc(code: RPCErrorCode.invalidParameter, …)`.
    public func getBlockHash(height: Int) async throws(BitcoinRPCError) -> String {
        try await typed("getblockhash", [.int(height)]) { (r) throws(BitcoinRPCError) in try r.string() }
    }

    /// `getblockheader hash true`. Unknown hash: `.rpc(code: RPCErrorCode.notFound, …)`.
    public func getBlockHeader(_ blockHash: String) async throws(BitcoinRPCError) -> BlockHeaderInfo {
        try await typed("getblockheader", [.string(blockHash), true]) { (r) throws(BitcoinRPCError) in
            try BlockHeaderInfo(r)
        }
    }

    /// `getblockheader hash false`: the 80 serialized header bytes.
    public func getBlockHeaderData(_ blockHash: String) async throws(BitcoinRPCError) -> Data {
        try await typed("getblockheader", [.string(blockHash), false]) { (r) throws(BitcoinRPCError) in
            try r.hexData()
        }
    }

    /// `getblock hash 0`: the serialized block.
    public func getBlockData(_ blockHash: String) async throws(BitcoinRPCError) -> Data {
        try await typed("getblock", [.string(blockHash), 0]) { (r) throws(BitcoinRPCError) in try r.hexData() }
    }

    /// `getblock hash 1`: header fields, sizes and txids.
    public func getBlock(_ blockHash: String) async throws(BitcoinRPCError) -> BlockInfo {
        try await typed("getblock", [.string(blockHash), 1]) { (r) throws(BitcoinRPCError) in try BlockInfo(r) }
    }

    /// `getblock hash 2`: header fields, sizes and decoded transactions with hex and fees.
    public func getBlockWithTransactions(_ blockHash: String) async throws(BitcoinRPCError) -> BlockWithTransactions {
        try await typed("getblock", [.string(blockHash), 2]) { (r) throws(BitcoinRPCError) in
            try BlockWithTransactions(r)
        }
    }

    // MARK: - Transactions

    /// `getrawtransaction txid false [blockhash]`: the serialized transaction.
    /// Without `blockHash` this needs the tx in the mempool or `-txindex`.
    public func getRawTransactionData(_ txid: String, blockHash: String? = nil) async throws(BitcoinRPCError) -> Data {
        try await typed("getrawtransaction", [.string(txid), false, blockHash.map(JSONValue.string) ?? .null]) {
            (r) throws(BitcoinRPCError) in try r.hexData()
        }
    }

    /// `getrawtransaction txid true [blockhash]`: the decoded transaction with
    /// block context (`blockHash`, `confirmations`, `blockTime`) when confirmed.
    public func getRawTransaction(_ txid: String, blockHash: String? = nil) async throws(BitcoinRPCError)
        -> DecodedTransaction
    {
        try await typed("getrawtransaction", [.string(txid), true, blockHash.map(JSONValue.string) ?? .null]) {
            (r) throws(BitcoinRPCError) in try DecodedTransaction(r)
        }
    }

    /// `gettxout txid n include_mempool`: the unspent output, or `nil` if it is
    /// spent or never existed.
    public func getTxOut(txid: String, vout: UInt32, includeMempool: Bool = true) async throws(BitcoinRPCError)
        -> TxOutInfo?
    {
        try await typed("gettxout", [.string(txid), .int(vout), .bool(includeMempool)]) {
            (r) throws(BitcoinRPCError) in try r.optional { (r) throws(BitcoinRPCError) in try TxOutInfo(r) }
        }
    }

    /// `sendrawtransaction hex [maxfeerate] [maxburnamount]`; returns the txid.
    /// - Parameters:
    ///   - maxFeeRate: reject if the fee rate exceeds this many sat/kvB (`0` = no
    ///     limit; `nil` = server default, 0.10 BTC/kvB).
    ///   - maxBurnAmount: allow provably unspendable outputs up to this many sats
    ///     (`nil` = server default 0).
    /// Rejections map to `.rpc` with ``RPCErrorCode/verifyRejected`` (-26),
    /// ``RPCErrorCode/verifyError`` (-25, e.g. missing inputs) or
    /// ``RPCErrorCode/verifyAlreadyInChain`` (-27).
    public func sendRawTransaction(_ data: Data, maxFeeRate: Int64? = nil, maxBurnAmount: Int64? = nil)
        async throws(BitcoinRPCError) -> String
    {
        try await sendRawTransaction(hex: data.hexString, maxFeeRate: maxFeeRate, maxBurnAmount: maxBurnAmount)
    }

    /// `sendrawtransaction` with a hex-encoded transaction; see ``sendRawTransaction(_:maxFeeRate:maxBurnAmount:)``.
    public func sendRawTransaction(hex: String, maxFeeRate: Int64? = nil, maxBurnAmount: Int64? = nil)
        async throws(BitcoinRPCError) -> String
    {
        let params: [JSONValue] = [
            .string(hex), maxFeeRate.map { JSONValue.amount(sats: $0) } ?? .null,
            maxBurnAmount.map { JSONValue.amount(sats: $0) } ?? .null,
        ]
        return try await typed("sendrawtransaction", params) { (r) throws(BitcoinRPCError) in try r.string() }
    }

    /// `testmempoolaccept [hex…] [maxfeerate]` (fee rate in sat/kvB).
    public func testMempoolAccept(_ rawTransactions: [String], maxFeeRate: Int64? = nil) async throws(BitcoinRPCError)
        -> [MempoolAcceptResult]
    {
        let params: [JSONValue] = [
            .array(rawTransactions.map(JSONValue.string)), maxFeeRate.map { JSONValue.amount(sats: $0) } ?? .null,
        ]
        return try await typed("testmempoolaccept", params) { (r) throws(BitcoinRPCError) in
            try r.map { (r) throws(BitcoinRPCError) in try MempoolAcceptResult(r) }
        }
    }

    // MARK: - Mempool

    /// `getrawmempool false`: txids in the mempool.
    public func getRawMempool() async throws(BitcoinRPCError) -> [String] {
        try await typed("getrawmempool", [false]) { (r) throws(BitcoinRPCError) in try r.strings() }
    }

    /// `getrawmempool true`: txid → entry.
    public func getRawMempoolVerbose() async throws(BitcoinRPCError) -> [String: MempoolEntry] {
        try await typed("getrawmempool", [true]) { (r) throws(BitcoinRPCError) in
            guard case .object(let o)? = r.value else { throw r.fail("expected object") }
            var out: [String: MempoolEntry] = [:]
            for key in o.keys { out[key] = try MempoolEntry(r[key]) }
            return out
        }
    }

    /// `getmempoolentry txid`. Not in mempool: `.rpc(code: RPCErrorCode.notFound, …)`.
    public func getMempoolEntry(_ txid: String) async throws(BitcoinRPCError) -> MempoolEntry {
        try await typed("getmempoolentry", [.string(txid)]) { (r) throws(BitcoinRPCError) in try MempoolEntry(r) }
    }

    // MARK: - Fees, network, UTXO scan

    /// `estimatesmartfee conf_target [mode]`.
    public func estimateSmartFee(confTarget: Int, mode: FeeEstimateMode? = nil) async throws(BitcoinRPCError)
        -> SmartFeeEstimate
    {
        try await typed("estimatesmartfee", [.int(confTarget), mode.map { JSONValue.string($0.rawValue) } ?? .null]) {
            (r) throws(BitcoinRPCError) in try SmartFeeEstimate(r)
        }
    }

    /// `getnetworkinfo`.
    public func getNetworkInfo() async throws(BitcoinRPCError) -> NetworkInfo {
        try await typed("getnetworkinfo") { (r) throws(BitcoinRPCError) in try NetworkInfo(r) }
    }

    /// `scantxoutset start [scanobjects]`: scans the UTXO set for outputs matching
    /// the descriptors. Can take long on mainnet; size
    /// ``BitcoinRPCConfiguration/requestTimeout`` accordingly.
    public func scanTxOutSet(_ objects: [ScanObject]) async throws(BitcoinRPCError) -> ScanTxOutSetResult {
        try await typed("scantxoutset", ["start", .array(objects.map(\.json))]) { (r) throws(BitcoinRPCError) in
            try ScanTxOutSetResult(r)
        }
    }

    // MARK: - Regtest mining

    /// `generatetoaddress n address`: mines `count` blocks paying to `address`;
    /// returns their hashes. Regtest only.
    public func generateToAddress(_ count: Int, address: String) async throws(BitcoinRPCError) -> [String] {
        try await typed("generatetoaddress", [.int(count), .string(address)]) { (r) throws(BitcoinRPCError) in
            try r.strings()
        }
    }

    /// `generateblock output [txs] submit`: mines one block paying to `output`
    /// (address or descriptor) containing exactly `transactions` (raw hex or txids
    /// of mempool transactions), in order. Regtest only.
    public func generateBlock(output: String, transactions: [String] = [], submit: Bool = true)
        async throws(BitcoinRPCError) -> GeneratedBlock
    {
        try await typed("generateblock", [.string(output), .array(transactions.map(JSONValue.string)), .bool(submit)]) {
            (r) throws(BitcoinRPCError) in try GeneratedBlock(r)
        }
    }

    /// `generatetoaddressfrom parent n address` — not a bitcoind RPC: offered by
    /// our regtest node (`Scripts/regtest-node`). Mines `count` blocks on top of
    /// `parent` (any known block), creating a competing branch; the node reorgs
    /// to it once it has the most work. Returns the new block hashes.
    public func generateToAddressFrom(parent: String, count: Int, address: String) async throws(BitcoinRPCError)
        -> [String]
    {
        try await typed("generatetoaddressfrom", [.string(parent), .int(count), .string(address)]) {
            (r) throws(BitcoinRPCError) in try r.strings()
        }
    }
}
