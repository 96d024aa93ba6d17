import Foundation

/// The repository root, derived from this file's path (Tests/IshtarTestSupport/…), so tests
/// find `Fixtures/` and `Scripts/` from any working directory.
public let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// The copies of public test vectors and recorded data under `Fixtures/`.
public enum Fixtures {
    /// `Fixtures/<name>`, or nil when it does not exist (vector tests count rows, so a missing
    /// file fails them visibly).
    public static func url(_ name: String) -> URL? {
        let candidate = repositoryRoot.appendingPathComponent("Fixtures").appendingPathComponent(name)
        return FileManager.default.fileExists(atPath: candidate.path) ? candidate : nil
    }

    /// The bytes of a fixture, or nil.
    public static func data(_ name: String) -> Data? {
        url(name).flatMap { try? Data(contentsOf: $0) }
    }

    /// A JSON fixture decoded as `T`, or nil when missing or malformed.
    public static func json<T: Decodable>(_ name: String, as type: T.Type) -> T? {
        data(name).flatMap { try? JSONDecoder().decode(T.self, from: $0) }
    }

    /// Data rows of a vectors CSV as dictionaries keyed by header, skipping comment rows (those
    /// with an empty index). The files have no quoted fields; the comment column is last and may
    /// itself contain commas, so extra fields are folded into it.
    public static func csvRows(_ name: String) -> [[String: String]] {
        guard let data = data(name), let text = String(data: data, encoding: .utf8) else { return [] }
        var lines = text.split(whereSeparator: \.isNewline).map(String.init)
        guard !lines.isEmpty else { return [] }
        let header = lines.removeFirst().split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        var rows = [[String: String]]()
        for line in lines {
            var fields = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            if fields.count > header.count {
                let tail = fields[(header.count - 1)...].joined(separator: ",")
                fields = Array(fields[..<(header.count - 1)]) + [tail]
            }
            guard fields.count == header.count, !fields[0].isEmpty else { continue }
            rows.append(Dictionary(uniqueKeysWithValues: zip(header, fields)))
        }
        return rows
    }
}

/// A fresh temporary directory, removed when the value goes away.
public final class TempDir: Sendable {
    public let url: URL

    public init(prefix: String = "ishtar-test") {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("\(prefix)-\(UUID().uuidString)", isDirectory: true)
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    /// A path inside the directory (not created).
    public func path(_ name: String = "db") -> String { url.appendingPathComponent(name).path }
}
