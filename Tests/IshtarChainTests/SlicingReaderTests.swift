import Foundation
@testable import IshtarChain
import IshtarCrypto
import IshtarTestSupport
import Testing

/// The application decodes transactions with a reader whose byte fields are slices of the
/// received bytes: it must accept and reject exactly what the copying reader does.
@Suite("Slicing reader")
struct SlicingReaderTests {
    @Test func slicedTransactionDecodingAgreesWithCopying() throws {
        var rng = SplitMix64(seed: 0x7378)
        let seeds = [
            try labelTx(testKey("slice-a"), nonce: 3, label: "a label long enough to need its own storage"),
            try Transaction.signed(chainID: testChainID, key: testKey("slice-b"), nonce: 0,
                                   messages: [Message(type: "x/One", payload: Data(repeating: 1, count: 40)),
                                              Message(type: "x/Two", payload: Data())]).encoded,
        ]
        var accepted = 0
        for i in 0..<3000 {
            let bytes = mutation(i, of: seeds[i % seeds.count], &rng)
            // As the application gets it: possibly a slice with a non-zero start.
            let framed = Data([0xee] + bytes + [0xee, 0xee])
            let raw = framed[1..<(1 + bytes.count)]
            let sliced: Result<Transaction, CodecError>
            do throws(CodecError) {
                var r = BinaryReader(slicing: raw)
                let tx = try Transaction(from: &r)
                try r.finish()
                sliced = .success(tx)
            } catch {
                sliced = .failure(error)
            }
            let copied: Result<Transaction, CodecError>
            do throws(CodecError) { copied = .success(try Transaction(decoding: raw)) } catch { copied = .failure(error) }
            #expect(sliced == copied, "case \(i)")
            if case .success(let tx) = sliced {
                accepted += 1
                #expect(tx.encoded == Data(bytes), "case \(i): re-encodes to the bytes it was sliced from")
                #expect(tx.hash == Transaction(copying: tx).hash)
            }
        }
        #expect(accepted >= 750 && accepted < 3000)
    }
}

/// Case `i` of a differential fuzz over `seed`: every fourth the seed itself, then a flipped
/// byte, a truncation, and 1–40 appended bytes in turn.
func mutation(_ i: Int, of seed: Data, _ rng: inout SplitMix64) -> [UInt8] {
    var bytes = [UInt8](seed)
    switch i % 4 {
    case 0: break
    case 1: bytes[Int(rng.next() % UInt64(bytes.count))] ^= UInt8(truncatingIfNeeded: rng.next() | 1)
    case 2: bytes.removeLast(Int(rng.next() % UInt64(bytes.count)))
    default: for _ in 0..<(rng.next() % 40 + 1) { bytes.append(UInt8(truncatingIfNeeded: rng.next())) }
    }
    return bytes
}

extension Transaction {
    /// The same transaction with every field copied out of any shared storage.
    init(copying tx: Transaction) {
        self.init(chainID: tx.chainID, sender: Data(Array(tx.sender)), nonce: tx.nonce,
                  messages: tx.messages.map { Message(type: $0.type, payload: Data(Array($0.payload))) },
                  signature: Data(Array(tx.signature)))
    }
}

/// Keys assembled in one buffer are the bytes of the module key joined to the module prefix.
@Suite("Keys built in one buffer")
struct OneBufferKeyTests {
    @Test func anAccountKeyIsTheJoinedKey() {
        for fill in [UInt8(0), 0x5a, 0xff] {
            let sender = Data(repeating: fill, count: 32)
            #expect(AccountsModule.accountStateKey(sender) == StateKey(module: AccountsModule.moduleName, AccountsModule.accountKey(sender)))
            // Also for a sender that is a slice of larger bytes, as decoded transactions hold it.
            let framed = Data([1, 2]) + sender + Data([3])
            #expect(AccountsModule.accountStateKey(framed[2..<34]) == AccountsModule.accountStateKey(sender))
        }
    }
}
