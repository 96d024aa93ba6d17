import Foundation
import IshtarBitcoin
import IshtarChain
import IshtarCrypto
import IshtarStore
import Testing

/// Regtest's (and its genesis header's) compact target: ~1 in 2 hashes meet it.
let lcRegtestBits: UInt32 = 0x207f_ffff

/// Grinds the nonce of a header on `prev` until it meets (or, with `meeting: false`, misses)
/// the target of `bits`. `salt` (the Merkle root's bytes) separates sibling branches.
func lcMine(_ prev: BTCBlockHeader, time: UInt32, bits: UInt32 = lcRegtestBits, salt: UInt8 = 0,
            meeting: Bool = true, version: Int32 = 0x2000_0000) throws -> BTCBlockHeader {
    var header = BTCBlockHeader(version: version, previousBlockHash: prev.hash,
                                merkleRoot: try Hash256(rawValue: Data(repeating: salt, count: 32)),
                                time: time, bits: bits, nonce: 0)
    let target = UInt256.decodeCompact(bits).value
    while (header.hash.asUInt256 <= target) != meeting { header.nonce += 1 }
    return header
}

/// `count` headers on `parent`, 10 minutes apart from `parent.time + 600`.
func lcChain(on parent: BTCBlockHeader, count: Int, salt: UInt8 = 0) throws -> [BTCBlockHeader] {
    var out: [BTCBlockHeader] = []
    var prev = parent
    for _ in 0..<count {
        prev = try lcMine(prev, time: prev.time + 600, salt: salt)
        out.append(prev)
    }
    return out
}

/// Internal-order hash bytes of a header.
func lcHash(_ h: BTCBlockHeader) -> Data { h.hash.rawValue }

/// Reads the light client through its public API from another module, as the staking
/// module does: `/modules/lcprobe/api/<internal hex a>[/<internal hex b>]` and
/// `/modules/lcprobe/height/<h>`.
struct LCProbeModule: Module {
    var name: String { "lcprobe" }

    func query(_ request: QueryRequest, _ context: QueryContext) throws(ExecutionError) -> Data {
        let lc = context.store(of: BTCLightClientModule.moduleName)
        func hash(_ s: String) -> Data { (try? Data(hex: s)) ?? Data() }
        var out: [String: Any] = [:]
        let tip = try BTCLightClientModule.tip(in: lc)
        out["tip"] = tip?.hash.hexString ?? ""
        out["tip_height"] = Int(tip?.height ?? 0)
        if request.path.count >= 2, request.path[0] == "api" {
            let a = hash(request.path[1])
            let info = try BTCLightClientModule.header(hash: a, in: lc)
            out["known"] = info != nil
            out["height"] = info.map { Int($0.height) } ?? -1
            out["main"] = try BTCLightClientModule.isOnMainChain(hash: a, in: lc)
            out["depth"] = try BTCLightClientModule.depth(of: a, in: lc).map { Int($0) } ?? -1
            if request.path.count == 3 {
                out["ancestor"] = try BTCLightClientModule.isAncestor(a, of: hash(request.path[2]), in: lc)
            }
        } else if request.path.count == 2, request.path[0] == "height", let h = UInt64(request.path[1]) {
            out["hash"] = try BTCLightClientModule.mainChainHeader(height: h, in: lc)?.hash.hexString ?? ""
        }
        return canonicalJSON(out)
    }
}

/// An application with the light client (and the probe), and one funded-free sender.
final class LCHarness {
    let net: TestNet
    let store: InMemoryStore
    let app: Application
    let key = testKey("relayer")
    var nonce: UInt64 = 0

    init(params: BTCLightClientParams = BTCLightClientParams()) throws {
        net = try TestNet(moduleParams: [BTCLightClientModule.moduleName: params.jsonData])
        store = InMemoryStore(columnFamilies: Application.columnFamilies)
        app = try makeApp(net, modules: [BTCLightClientModule(), LCProbeModule()], store: store)
    }

    /// A signed transaction inserting `headers` (does not advance the nonce).
    func tx(_ headers: [BTCBlockHeader]) throws -> Data {
        try Transaction.signed(chainID: testChainID, key: key, nonce: nonce,
                               messages: [InsertHeaders(headers: headers).message]).encoded
    }

    /// Inserts `headers` in one committed block; the nonce advances only on success.
    @discardableResult
    func insert(_ headers: [BTCBlockHeader]) throws -> TxResult {
        try submit(try tx(headers))
    }

    @discardableResult
    func submit(_ raw: Data) throws -> TxResult {
        let result = try net.produce(app, [raw], requireValidProposal: false)
        let r = try #require(result.txResults.first)
        if r.isOK { nonce += 1 }
        return r
    }

    func query(_ path: String) throws -> [String: Any] {
        let r = try app.query(path: path)
        guard r.isOK else { throw TestFailure("query \(path): \(r.log)") }
        return try #require(try JSONSerialization.jsonObject(with: r.value) as? [String: Any])
    }

    /// The probe's view of `a` (and whether it is an ancestor of `b`).
    func api(_ a: BTCBlockHeader, _ b: BTCBlockHeader? = nil) throws -> [String: Any] {
        try query("/modules/lcprobe/api/" + lcHash(a).hexString + (b.map { "/" + lcHash($0).hexString } ?? ""))
    }

    func depth(_ h: BTCBlockHeader) throws -> Int { try api(h)["depth"] as? Int ?? -2 }
    func isMain(_ h: BTCBlockHeader) throws -> Bool { try api(h)["main"] as? Bool ?? false }
    func isAncestor(_ a: BTCBlockHeader, _ b: BTCBlockHeader) throws -> Bool { try api(a, b)["ancestor"] as? Bool ?? false }
    func tipHash() throws -> String { try query("/modules/lcprobe/x")["tip"] as? String ?? "" }
    func tipHeight() throws -> Int { try query("/modules/lcprobe/x")["tip_height"] as? Int ?? -1 }
    func mainHash(_ height: Int) throws -> String { try query("/modules/lcprobe/height/\(height)")["hash"] as? String ?? "" }
}
