import Logging
import Synchronization

/// Records every log line (message + metadata) for assertions.
public final class LogCapture: Sendable {
    public struct Line: Sendable {
        public var level: Logger.Level
        public var message: String
        public var metadata: [String: String]
    }

    public init() {}

    private let storage = Mutex<[Line]>([])

    public var lines: [Line] { storage.withLock { $0 } }

    public func append(_ line: Line) { storage.withLock { $0.append(line) } }

    /// A logger at `.trace` writing into this capture.
    public func logger() -> Logger {
        var logger = Logger(label: "test.bitcoin-rpc") { _ in CapturingHandler(capture: self) }
        logger.logLevel = .trace
        return logger
    }

    /// The per-call `debug` summary lines.
    public var callLines: [Line] { lines.filter { $0.level == .debug && $0.message == "bitcoind rpc" } }

    /// Everything logged, flattened, for "no secret leaked" checks.
    public var allText: String {
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
