import Foundation
import IshtarTestSupport
import Testing

@testable import IshtarBitcoinRPC

/// The typed results decode what bitcoind sends; a reply it did not mean to send (a field
/// missing, of another type, out of range) must become `.malformedResponse` naming the
/// field — never a trap in a numeric conversion.
@Suite("RPC result fuzzing")
struct ModelFuzzTests {
    static let header = #"{"hash":"0f91","confirmations":101,"height":0,"version":1,"versionHex":"00000001","merkleroot":"4a5e","time":1296688602,"mediantime":1296688602,"nonce":2,"bits":"207fffff","difficulty":4.656542373906925e-10,"chainwork":"02","nTx":1,"nextblockhash":"5f1a"}"#
    static let transaction = #"{"txid":"aa","hash":"bb","version":2,"size":225,"vsize":144,"weight":573,"locktime":0,"vin":[{"txid":"cc","vout":0,"scriptSig":{"asm":"","hex":""},"txinwitness":["30440220","02ab"],"prevout":{"generated":false,"height":5,"value":0.5,"scriptPubKey":{"asm":"","hex":"51","type":"nonstandard"}},"sequence":4294967293}],"vout":[{"value":0.00100000,"n":0,"scriptPubKey":{"asm":"1 ab","hex":"5120ab","address":"bcrt1pxyz","type":"witness_v1_taproot"}}],"hex":"0200","fee":0.00001,"blockhash":"dd","confirmations":3,"blocktime":1700000000,"in_active_chain":true}"#
    static let chainInfo = #"{"chain":"regtest","blocks":101,"headers":101,"bestblockhash":"aa","difficulty":4.6e-10,"time":1700000000,"mediantime":1700000000,"verificationprogress":1,"initialblockdownload":false,"chainwork":"ca","size_on_disk":1000,"pruned":false,"warnings":""}"#
    static let accept = #"{"txid":"aa","wtxid":"bb","allowed":true,"vsize":110,"fees":{"base":0.00000500,"effective-feerate":0.00004545,"effective-includes":["bb"]}}"#

    static func decoders() -> [(seed: String, decode: (JSONReader) throws(BitcoinRPCError) -> Void)] {
        [
            (header, { (r) throws(BitcoinRPCError) in _ = try BlockHeaderInfo(r) }),
            (transaction, { (r) throws(BitcoinRPCError) in _ = try DecodedTransaction(r) }),
            (chainInfo, { (r) throws(BitcoinRPCError) in _ = try BlockchainInfo(r) }),
            (accept, { (r) throws(BitcoinRPCError) in _ = try MempoolAcceptResult(r) }),
        ]
    }

    @Test func mutatedResultsDecodeOrNameTheField() throws {
        var rng = SplitMix64(seed: 0x6d6f_6465_6c)
        var (decoded, refused) = (0, 0)
        for (seed, decode) in Self.decoders() {
            // The seed itself decodes: the mutations start from a valid reply.
            try decode(JSONReader(try JSONValue.parse(seed), path: "result"))
            for _ in 0..<2500 {
                guard let value = try? JSONValue.parse(rng.mutatedJSON(Data(seed.utf8))) else { continue }
                do {
                    try decode(JSONReader(value, path: "result"))
                    decoded += 1
                } catch {
                    refused += 1
                    guard case .malformedResponse(let field, _) = error else {
                        Issue.record("not a malformed-response error: \(error)")
                        continue
                    }
                    #expect(field.hasPrefix("result"), "\(error)")
                }
            }
        }
        #expect(decoded > 300 && refused > 3000, "\(decoded) decoded, \(refused) refused")
    }
}
