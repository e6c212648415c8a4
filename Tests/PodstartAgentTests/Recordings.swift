import Exporter
import Foundation
import Logging
import PodstartAgent
import PodstartCore
import Synchronization

/// The real node's recordings (/work/shared/reference/real-cluster-1.28, kubelet v1.28.7 on
/// containerd 1.6.20), copied under Fixtures/.
enum Recordings {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").path

    /// The file's lines as a LogFileTailer hands them over (bytes, no newline).
    static func lines(_ name: String) throws -> [[UInt8]] {
        let text = try String(contentsOfFile: "\(directory)/\(name)", encoding: .utf8)
        return text.split(separator: "\n", omittingEmptySubsequences: true).map { Array($0.utf8) }
    }

    /// RFC 3339 with nanoseconds → Unix nanoseconds, computed independently of the parsers.
    static func unixNs(_ text: String) -> Int64 {
        let (date, fraction) = (String(text.prefix(19)), text.dropFirst(20).prefix(9))
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        let seconds = Int64(formatter.date(from: date + "Z")!.timeIntervalSince1970)
        return seconds * 1_000_000_000 + Int64(String(fraction).padding(toLength: 9, withPad: "0", startingAt: 0))!
    }
}

extension CorrelatorInput {
    /// The recording format's line: what the tests compare (stable across the enum's shape).
    var line: String { CorrelatorInputCodec.line(self) }
}

/// Log messages a test's logger received.
final class CapturedLogs: Sendable {
    struct Entry: Sendable { var level: Logger.Level; var message: String; var metadata: [String: String] }
    private let entries = Mutex<[Entry]>([])

    var all: [Entry] { entries.withLock { $0 } }
    func messages(_ message: String) -> [Entry] { all.filter { $0.message == message } }
    func append(_ entry: Entry) { entries.withLock { $0.append(entry) } }

    func logger(_ label: String = "test") -> Logger {
        Logger(label: label) { _ in Handler(logs: self) }
    }

    struct Handler: LogHandler {
        let logs: CapturedLogs
        var logLevel: Logger.Level = .trace
        var metadata: Logger.Metadata = [:]
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            let merged = metadata.merging(event.metadata ?? [:]) { $1 }
            logs.append(Entry(level: event.level, message: event.message.description, metadata: merged.mapValues { "\($0)" }))
        }
    }
}

extension MetricsRegistry {
    static func forTests() -> MetricsRegistry {
        MetricsRegistry(configuration: .init(buildInfo: BuildInfo(version: "test")))
    }

    /// The value of the sample line starting with `series` (name and labels), as rendered.
    func sample(_ series: String) -> Double? {
        for line in render(format: .text).split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1))
        }
        return nil
    }

    /// `podstart_source_errors_total{source="…"}` as rendered (nil when absent).
    func sourceErrors(_ source: String) -> Double? {
        let prefix = "podstart_source_errors_total{source=\"\(source)\"} "
        for line in render(format: .text).split(separator: "\n") where line.hasPrefix(prefix) {
            return Double(line.dropFirst(prefix.count))
        }
        return nil
    }
}
