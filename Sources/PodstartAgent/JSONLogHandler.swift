import Foundation
import Logging
import PodstartCore

/// swift-log handler writing one JSON object per line to standard error:
/// `{"time":…,"level":…,"logger":…,"message":…, metadata…}`.
public struct JSONLogHandler: LogHandler {
    public let label: String
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]

    public init(label: String) { self.label = label }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields: [(String, JSON)] = [
            ("time", .string(Timestamp.rfc3339(unixNanoseconds: WallClock.unixNow()))),
            ("level", .string(event.level.rawValue)),
            ("logger", .string(label)),
            ("message", .string(event.message.description)),
        ]
        if let error = event.error { fields.append(("error", .string("\(error)"))) }
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        for key in merged.keys.sorted() { fields.append((key, .string("\(merged[key]!)"))) }
        FileHandle.standardError.write(Data((JSON.object(fields).rendered() + "\n").utf8))
    }
}
