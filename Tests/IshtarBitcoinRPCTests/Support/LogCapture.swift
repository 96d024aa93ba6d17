import Logging
import Synchronization

/// Records every log line (message + metadata) for assertions.
final class LogCapture: Sendable {
    struct Line: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: [String: String]
    }

    private let storage = Mutex<[Line]>([])

    var lines: [Line] { storage.withLock { $0 } }

    func append(_ line: Line) { storage.withLock { $0.append(line) } }

    /// A logger at `.trace` writing into this capture.
    func logger() -> Logger {
        var logger = Logger(label: "test.bitcoin-rpc") { _ in CapturingHandler(capture: self) }
        logger.logLevel = .trace
        return logger
    }

    /// The per-call `debug` summary lines.
    var callLines: [Line] { lines.filter { $0.level == .debug && $0.message == "bitcoind rpc" } }

    /// Everything logged, flattened, for "no secret leaked" checks.
    var allText: String {
        lines.map { line in
            line.message + " " + line.metadata.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        }.joined(separator: "\n")
    }
}

struct CapturingHandler: LogHandler {
    let capture: LogCapture
    var logLevel: Logger.Level = .trace
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        for (k, v) in event.metadata ?? [:] { merged[k] = v }
        capture.append(
            .init(level: event.level, message: "\(event.message)", metadata: merged.mapValues { "\($0)" }))
    }
}
