import ArgumentParser
import Foundation
import IshtarChain
import IshtarCrypto
import IshtarNode

/// `ishtar query …`: read blocks, transactions, accounts and module state from a node's HTTP API.
struct QueryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "query",
        abstract: "Read blocks, transactions, accounts and module state from a node's HTTP API.",
        discussion: """
            Exit codes: 0 found, 1 not found (the node answered 404), 2 bad input or \
            unreachable node.
            """,
        subcommands: [BlockQuery.self, TxQuery.self, AccountQuery.self, ModuleQuery.self])

    struct BlockQuery: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "block", abstract: "A committed block: `latest` (the default) or a height.")

        @Argument(help: ArgumentHelp("A height, or \"latest\".", valueName: "height|latest"))
        var which: String?

        @Option(name: .long, help: ArgumentHelp("The block height.", valueName: "n"))
        var height: UInt64?

        @OptionGroup var api: NodeAPIOptions
        @OptionGroup var format: OutputOptions

        func validate() throws {
            if let which, which != "latest", UInt64(which) == nil {
                throw ValidationError("height: expected a non-negative integer or \"latest\", got \"\(which)\"")
            }
            if which != nil, height != nil { throw ValidationError("give either a positional height or --height, not both") }
        }

        func run() throws {
            let target = height.map(String.init) ?? which ?? "latest"
            format.emit(try QueryActions.block(client: api.client(), which: target))
        }
    }

    struct TxQuery: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "tx", abstract: "A committed transaction by hash.")

        @Argument(help: ArgumentHelp("The transaction hash, hex (32 bytes).", valueName: "hash"))
        var hash: String

        @OptionGroup var api: NodeAPIOptions
        @OptionGroup var format: OutputOptions

        func run() throws {
            let bytes = try Parse.hex(hash, option: "hash", length: 32)
            format.emit(try QueryActions.transaction(client: api.client(), hash: bytes))
        }
    }

    struct AccountQuery: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "account", abstract: "An account (nonce, label) by its x-only public key.")

        @Argument(help: ArgumentHelp("The account's x-only public key, hex (32 bytes).", valueName: "pubkey"))
        var publicKey: String

        @OptionGroup var api: NodeAPIOptions
        @OptionGroup var format: OutputOptions

        func run() throws {
            let key = try Parse.hex(publicKey, option: "pubkey", length: 32)
            format.emit(try QueryActions.account(client: api.client(), publicKey: key))
        }
    }

    struct ModuleQuery: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "module",
            abstract: "Any module query: GET /modules/<module>/<path…>, printed as the node's JSON.",
            discussion: """
                Examples (see the README's lifecycle sections for more):
                  ishtar query module staking delegation <staking txid>
                  ishtar query module staking voting-power 120
                  ishtar query module finality last-finalized <chain id>
                  ishtar query module checkpoints epoch 3
                  ishtar query module btclightclient tip

                Listings that grow with the chain (finality providers, a provider's or a
                staker's delegations, commitments, evidence, checkpoint submissions) come a
                page at a time: the answer's next_cursor (null on the last page) goes to
                --cursor for the next one, or --all follows every page and prints one list.
                  ishtar query module staking finality-providers --limit 20
                  ishtar query module staking finality-provider <key> delegations --all
                """)

        @Argument(help: ArgumentHelp("The module: btclightclient, staking, checkpoints, finality, accounts, consensus.",
                                     valueName: "module"))
        var module: String

        @Argument(help: ArgumentHelp("Path segments after the module name.", valueName: "path"))
        var path: [String] = []

        @Option(help: ArgumentHelp("Items per page of a listing (1…\(PageRequest.maxLimit); the node's default is \(PageRequest.defaultLimit)).",
                                   valueName: "n"))
        var limit: Int?

        @Option(help: ArgumentHelp("Start after this item: the next_cursor of the previous page (hex).", valueName: "hex"))
        var cursor: String?

        @Flag(help: "Follow next_cursor through every page of a listing and print its items as one list.")
        var all = false

        @OptionGroup var api: NodeAPIOptions

        func validate() throws {
            if let limit, !(1...PageRequest.maxLimit).contains(limit) {
                throw ValidationError("--limit: expected 1…\(PageRequest.maxLimit), got \(limit)")
            }
            if let cursor {
                guard cursor.count <= 2 * PageRequest.maxCursorBytes, (try? Data(hex: cursor)).map({ !$0.isEmpty }) == true else {
                    throw ValidationError("--cursor: expected the hex next_cursor of a previous page")
                }
                if all { throw ValidationError("--cursor and --all: --all starts at the first page; give one or the other") }
            }
            let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789_")
            guard !module.isEmpty, module.allSatisfy({ allowed.contains($0) }) else {
                throw ValidationError("module: expected a module name like \"staking\", got \"\(module)\"")
            }
            for segment in path where segment.isEmpty || segment.contains("/") || segment.contains("?") {
                throw ValidationError("path: segment \"\(segment)\" must be non-empty and contain no '/' or '?'")
            }
        }

        func run() throws {
            if all {
                print(try QueryActions.moduleAllPages(client: api.client(), module: module, path: path, limit: limit))
            } else {
                print(try QueryActions.module(client: api.client(), module: module, path: path, limit: limit, cursor: cursor))
            }
        }
    }
}

/// `/modules/accounts/account/<hex>` as the accounts module answers it.
public struct AccountOutput: CommandOutput, Codable, Equatable {
    public var pubKey: String
    public var nonce: String
    public var label: String
    public var createdHeight: String

    enum CodingKeys: String, CodingKey {
        case pubKey = "pub_key", nonce, label, createdHeight = "created_height"
    }

    var text: String {
        ["account: \(pubKey)", "nonce: \(nonce)", "label: \(label)", "created at height: \(createdHeight)"]
            .joined(separator: "\n")
    }
}

extension APIBlock: CommandOutput {
    var text: String {
        let h = header
        var lines = [
            "height: \(h.height)", "hash: \(hash)", "chain id: \(h.chainID)",
            "time: \(QueryActions.iso8601(ms: h.timeMs)) (\(h.timeMs) ms)", "proposer: \(h.proposer)",
            "previous block hash: \(h.previousBlockHash)", "transactions root: \(h.transactionsRoot)",
            "app hash: \(h.appHash)", "validators hash: \(h.validatorsHash)",
        ]
        if let c = h.lastCommit {
            lines.append("last commit: height \(c.height), round \(c.round), \(c.signatureCount) signatures")
        } else {
            lines.append("last commit: none (first block)")
        }
        lines.append("transactions: \(txCount)")
        for t in transactions {
            if let d = t.decoded {
                lines.append("  \(t.hash) sender \(d.sender) nonce \(d.nonce) \(d.messageTypes.joined(separator: ","))")
            } else {
                lines.append("  \(t.hash) (undecodable, \(t.bytes.count / 2) bytes)")
            }
        }
        return lines.joined(separator: "\n")
    }
}

extension APICommittedTransaction: CommandOutput {
    var text: String {
        var lines = ["hash: \(hash)", "height: \(height)", "index: \(index)"]
        if let d = decoded {
            lines += ["sender: \(d.sender)", "nonce: \(d.nonce)", "messages: \(d.messageTypes.joined(separator: ", "))"]
        }
        if result.code == 0 {
            lines.append("result: ok")
        } else {
            lines.append("result: failed \(result.codespace)/\(result.rule) (code \(result.code)): \(result.log)")
        }
        for e in result.events {
            lines.append("event \(e.type): " + e.attributes.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
        }
        return lines.joined(separator: "\n")
    }
}

/// What `ishtar query` does, callable from tests.
public enum QueryActions {
    /// `GET /blocks/{which}` (`which` is a height or `latest`).
    public static func block(client: NodeAPIClient, which: String) throws -> APIBlock {
        let reply = try TxActions.call { () throws(NodeAPIClientError) in try client.get("/blocks/\(which)") }
        return try TxActions.decodeOK(APIBlock.self, reply, what: "block")
    }

    /// `GET /txs/{hash}`.
    public static func transaction(client: NodeAPIClient, hash: Data) throws -> APICommittedTransaction {
        let reply = try TxActions.call { () throws(NodeAPIClientError) in try client.get("/txs/\(hash.hexString)") }
        return try TxActions.decodeOK(APICommittedTransaction.self, reply, what: "transaction")
    }

    /// `GET /modules/accounts/account/{hex}`.
    public static func account(client: NodeAPIClient, publicKey: Data) throws -> AccountOutput {
        let reply = try TxActions.call { () throws(NodeAPIClientError) in
            try client.get("/modules/accounts/account/\(publicKey.hexString)")
        }
        return try TxActions.decodeOK(AccountOutput.self, reply, what: "account")
    }

    /// `GET /modules/{module}/{path…}[?limit=…&cursor=…]`: the module's JSON answer,
    /// pretty-printed with sorted keys.
    public static func module(client: NodeAPIClient, module: String, path: [String], limit: Int? = nil,
                              cursor: String? = nil) throws -> String {
        let route = pagedRoute("/modules/" + ([module] + path).joined(separator: "/"), limit: limit, cursor: cursor)
        return try pretty(try moduleObject(client: client, route: route), route: route)
    }

    /// Every page of a listing as one answer: the pages' single list field concatenated,
    /// the other fields of the first page, and no `next_cursor`.
    public static func moduleAllPages(client: NodeAPIClient, module: String, path: [String], limit: Int? = nil) throws -> String {
        let route = "/modules/" + ([module] + path).joined(separator: "/")
        var first: [String: Any]?
        var field: String?
        var items: [Any] = []
        try forEachPage(client: client, route: route, limit: limit) { page in
            if first == nil {
                let lists = page.keys.filter { page[$0] is [Any] }
                guard lists.count == 1, let only = lists.first else {
                    throw CLIError.badInput("\(route) is not a listing (--all needs an answer with one list and next_cursor)")
                }
                first = page
                field = only
            }
            guard let field, let list = page[field] as? [Any] else {
                throw CLIError.badInput("node returned a page of \(route) without its list")
            }
            items.append(contentsOf: list)
        }
        guard var object = first, let field else { throw CLIError.badInput("node returned no page for \(route)") }
        object[field] = items
        object.removeValue(forKey: "next_cursor")
        return try pretty(object, route: route)
    }

    /// Calls `body` with each page of the listing at `route`, following `next_cursor` until
    /// it is null. A node that answers a cursor that does not move forward is refused (it
    /// would keep the command looping).
    public static func forEachPage(client: NodeAPIClient, route: String, limit: Int? = nil,
                                   _ body: ([String: Any]) throws -> Void) throws {
        var cursor: String?
        while true {
            let paged = pagedRoute(route, limit: limit, cursor: cursor)
            guard let page = try moduleObject(client: client, route: paged) as? [String: Any] else {
                throw CLIError.badInput("node returned a non-object answer for \(paged)")
            }
            guard page.keys.contains("next_cursor") else {
                throw CLIError.badInput("\(route) is not a paged listing (its answer has no next_cursor)")
            }
            try body(page)
            guard let next = page["next_cursor"] as? String else {
                guard page["next_cursor"] is NSNull else { throw CLIError.badInput("node returned a malformed next_cursor for \(paged)") }
                return
            }
            // Cursors are keys, and lowercase hex sorts as the bytes do.
            let lowered = next.lowercased()
            guard (try? Data(hex: lowered)) != nil, cursor.map({ $0 < lowered }) ?? true else {
                throw CLIError.badInput("node returned next_cursor \(next.prefix(80)) for \(paged), which does not move forward")
            }
            cursor = lowered
        }
    }

    /// Every item of the list `field` of a paged listing, decoded as `Item`.
    static func allItems<Item: Decodable>(_ type: Item.Type, client: NodeAPIClient, route: String, field: String,
                                          what: String) throws -> [Item] {
        var out: [Item] = []
        try forEachPage(client: client, route: route, limit: PageRequest.maxLimit) { page in
            guard let list = page[field] as? [Any], let data = try? JSONSerialization.data(withJSONObject: list) else {
                throw CLIError.badInput("node returned a \(what) page without its \(field) list")
            }
            do {
                out.append(contentsOf: try JSONDecoder().decode([Item].self, from: data))
            } catch {
                throw CLIError.badInput("node returned an unexpected \(what) body: \(error)")
            }
        }
        return out
    }

    static func pagedRoute(_ route: String, limit: Int?, cursor: String?) -> String {
        var query: [String] = []
        if let limit { query.append("limit=\(limit)") }
        if let cursor { query.append("cursor=\(cursor)") }
        return query.isEmpty ? route : route + "?" + query.joined(separator: "&")
    }

    static func moduleObject(client: NodeAPIClient, route: String) throws -> Any {
        let reply = try TxActions.call { () throws(NodeAPIClientError) in try client.get(route) }
        guard reply.status == 200 else { throw TxActions.nodeError(reply) }
        guard let object = try? JSONSerialization.jsonObject(with: reply.body) else {
            throw CLIError.badInput("node returned a non-JSON answer for \(route)")
        }
        return object
    }

    static func pretty(_ object: Any, route: String) throws -> String {
        // `data(withJSONObject:)` traps rather than throws on a value it cannot write.
        guard JSONSerialization.isValidJSONObject(object),
              let pretty = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]),
              let text = String(data: pretty, encoding: .utf8) else {
            throw CLIError.badInput("node returned a non-JSON answer for \(route)")
        }
        return text
    }

    static func iso8601(ms: UInt64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
    }
}
