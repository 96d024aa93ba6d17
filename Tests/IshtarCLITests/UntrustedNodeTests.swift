import Foundation
@testable import IshtarCLI
import IshtarCrypto
import IshtarNode
import IshtarTestSupport
import Testing

/// The signing commands take what a node says only as far as they can check it: a node that
/// lies must not make them sign, record, or work without bound.
@Suite struct UntrustedNodeTests {
    /// `finality vote` re-derives the whole committed batch to check its root: a commitment
    /// count from the node beyond what `commit-randomness` makes is refused before any of
    /// that work (2^31 point multiplications) and before anything is recorded.
    @Test func aVoteRefusesACommitmentCountNoKeyOfOursMade() async throws {
        let huge = #"{"start_height":"1","count":"2147483647","root":"\#(String(repeating: "00", count: 32))"}"#
        let server = try ScriptedServer(replies: [.http(200, huge)])
        defer { server.stop() }
        let dir = NSTemporaryDirectory() + "ishtar-untrusted-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let record = VoteRecord(directory: dir)
        let key = try Schnorr.PrivateKey(rawRepresentation: Data(repeating: 7, count: 32))
        let client = try NodeAPIClient(url: "http://127.0.0.1:\(server.port)", timeoutSeconds: 5)
        let hash = Data(repeating: 0xab, count: 32)
        let outcome = try await offPool { () -> Error? in
            do {
                _ = try FinalityActions.voteMessage(client: client, btcKey: key, chainID: "ishtar-devnet", height: 10,
                                                    blockHash: hash, record: record)
                return nil
            } catch { return error }
        }
        guard case .verificationFailed(let why)? = outcome as? CLIError else {
            Issue.record("expected a verification failure, got \(String(describing: outcome))")
            return
        }
        #expect(why.contains("2147483647") && why.contains("at most 1000000"), "\(why)")
        #expect(!FileManager.default.fileExists(atPath: record.path(chainID: "ishtar-devnet", height: 10)),
                "nothing recorded for a height the vote was refused at")
        #expect(server.requests.count == 1)
    }
}
