import Foundation

/// `IshtarBench <suite>`: each suite prints progress on stderr and one JSON object as the
/// last line of stdout. Every figure is paired with a baseline measured in the same run.
let suites: [String: () -> [String: Any]] = [
    "crypto": CryptoBench.run,
    "bitcoin": BitcoinBench.run,
    "node": NodeBench.run,
    "chain": ChainBench.run,
]

let args = CommandLine.arguments.dropFirst()
guard let name = args.first, let suite = suites[name] else {
    let known = suites.keys.sorted().joined(separator: ", ")
    FileHandle.standardError.write(Data("usage: IshtarBench <suite>   (suites: \(known))\n".utf8))
    exit(2)
}
printJSONLine(suite())
