import ArgumentParser
import Foundation
import IshtarNode

extension NodeStatus: CommandOutput {
    var text: String {
        """
        chain id:          \(chainID)
        node id:           \(nodeID)
        validator:         \(validatorAddress ?? "-")
        height:            \(height) (round \(round))
        latest block:      \(latestBlockHash)
        app hash:          \(appHash)
        peers:             \(peers)
        mempool:           \(mempoolSize) transaction\(mempoolSize == 1 ? "" : "s")
        catching up:       \(catchingUp ? "yes" : "no")
        BTC light client:  \(btcLightClientHeight.map { "tip at height \($0)" } ?? "-")
        BTC finalized:     \(btcFinalizedHeight.map { "up to height \($0) (\(height > $0 ? height - $0 : 0) behind)" } ?? "nothing yet")
        checkpoints:       \(lastFinalizedEpoch.map { $0 == 0 ? "no epoch finalized on Bitcoin yet" : "finalized on Bitcoin up to epoch \($0)" } ?? "-")
        """
    }
}

extension NodeCommand {
    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a running node's status (GET /status on its API).",
            discussion: "Exit 0 when the node answered, 2 when it could not be reached.")

        @OptionGroup var api: NodeAPIOptions
        @OptionGroup var format: OutputOptions

        func run() throws {
            format.emit(try NodeStatusActions.status(client: api.client()))
        }
    }
}

/// The work behind `ishtar node status`, callable from tests.
public enum NodeStatusActions {
    /// `GET /status`.
    public static func status(client: NodeAPIClient) throws -> NodeStatus {
        let reply = try TxActions.call { () throws(NodeAPIClientError) in try client.get("/status") }
        return try TxActions.decodeOK(NodeStatus.self, reply, what: "status")
    }
}
