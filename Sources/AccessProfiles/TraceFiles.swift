import Foundation
import PodstartCore

/// Trace JSON files as `podstart trace --output json` writes them: one trace object per line
/// (`--runs N`), or one object over several lines, or a JSON array of them (`/v1/pods` items).
public enum TraceFiles {
    /// A line that is not a podstart trace.
    public struct Malformed: Sendable, Hashable, CustomStringConvertible {
        public var line: Int
        public var reason: String
        public var description: String { "line \(line): \(reason)" }
    }

    public struct Contents: Sendable {
        public var path: String
        public var traces: [PodStartTrace]
        public var malformed: [Malformed]
    }

    public enum ReadError: Error, CustomStringConvertible, Sendable {
        case unreadable(path: String, reason: String)
        case malformed(path: String, lines: [Malformed], good: Int)
        case empty(path: String)

        public var description: String {
            switch self {
            case .unreadable(let path, let reason):
                "cannot read trace file \(path): \(reason)"
            case .malformed(let path, let lines, let good):
                "trace file \(path): \(lines.count) of \(lines.count + good) traces are malformed — "
                    + lines.prefix(5).map(\.description).joined(separator: "; ")
                    + (lines.count > 5 ? "; …" : "")
                    + " (fix them, or pass --skip-malformed to use the \(good) good ones)"
            case .empty(let path):
                "trace file \(path) holds no trace (write one with: podstart trace --output json --out \(path))"
            }
        }
    }

    /// Reads one file; malformed lines are returned, not thrown (see `load`).
    public static func read(path: String) throws -> Contents {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            let reason = (error as NSError).userInfo[NSUnderlyingErrorKey].map { "\($0)" } ?? error.localizedDescription
            throw ReadError.unreadable(path: path, reason: reason)
        }
        let (traces, malformed) = parse(Array(data))
        return Contents(path: path, traces: traces, malformed: malformed)
    }

    /// Parses the text of a trace file.
    public static func parse(_ bytes: [UInt8]) -> (traces: [PodStartTrace], malformed: [Malformed]) {
        // A whole-file value: one (possibly pretty-printed) object, or an array of them.
        if let first = bytes.first(where: { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }), let whole = try? JSON.parse(bytes) {
            if first == UInt8(ascii: "["), let items = whole.arrayValue {
                var traces: [PodStartTrace] = []
                var malformed: [Malformed] = []
                for (i, item) in items.enumerated() {
                    do { traces.append(try PodStartTrace(json: item)) } catch {
                        malformed.append(Malformed(line: i + 1, reason: "array item \(i + 1): \(error)"))
                    }
                }
                return (traces, malformed)
            }
            if case .object = whole {
                do { return ([try PodStartTrace(json: whole)], []) } catch {
                    return ([], [Malformed(line: 1, reason: "\(error)")])
                }
            }
        }
        var traces: [PodStartTrace] = []
        var malformed: [Malformed] = []
        for (n, line) in bytes.split(separator: 0x0A, omittingEmptySubsequences: false).enumerated() {
            guard line.contains(where: { ![0x20, 0x09, 0x0D].contains($0) }) else { continue }
            do {
                traces.append(try PodStartTrace(json: JSON.parse(Array(line))))
            } catch {
                malformed.append(Malformed(line: n + 1, reason: "\(error)"))
            }
        }
        return (traces, malformed)
    }

    /// Reads every file. Any malformed trace is an error naming its file and lines, unless
    /// `skipMalformed`, when `warn` is told of each file's and the good traces are used. A file
    /// without any trace is an error either way.
    public static func load(paths: [String], skipMalformed: Bool, warn: (String) -> Void = { _ in }) throws -> [PodStartTrace] {
        var all: [PodStartTrace] = []
        for path in paths {
            let contents = try read(path: path)
            if !contents.malformed.isEmpty {
                let error = ReadError.malformed(path: path, lines: contents.malformed, good: contents.traces.count)
                guard skipMalformed else { throw error }
                warn("skipping malformed traces: \(error)")
            }
            guard !contents.traces.isEmpty else { throw ReadError.empty(path: path) }
            all += contents.traces
        }
        return all
    }

    /// Image digests the traces' containers ran, with the references each was started as.
    public static func images(in traces: [PodStartTrace]) -> [String: Set<String>] {
        var images: [String: Set<String>] = [:]
        for trace in traces {
            for c in trace.containers {
                if let digest = c.imageDigest { images[digest, default: []].insert(c.image) }
            }
        }
        return images
    }
}

/// Writes a file so that readers see the old content or the new, never a part: a temporary
/// file in the same directory, flushed, then renamed over the target. On any failure the
/// temporary file is removed and the target is untouched.
public enum AtomicFile {
    public struct WriteError: Error, CustomStringConvertible, Sendable {
        public var path: String
        public var step: String
        public var errno: Int32
        public var description: String {
            "cannot write \(path): \(step) failed: \(String(cString: strerror(errno))) (errno \(errno)); check the directory exists and is writable"
        }
    }

    public static func write(_ text: String, to path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        let name = (path as NSString).lastPathComponent
        let temporary = (directory.isEmpty ? "." : directory) + "/.\(name).tmp-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw WriteError(path: path, step: "creating \(temporary)", errno: errno) }
        var failure: WriteError?
        let bytes = Array(text.utf8)
        var offset = 0
        bytes.withUnsafeBytes { buffer in
            while offset < buffer.count {
                let n = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = WriteError(path: path, step: "write", errno: errno)
                    return
                }
                offset += n
            }
        }
        if failure == nil, fsync(fd) != 0 { failure = WriteError(path: path, step: "fsync", errno: errno) }
        if close(fd) != 0, failure == nil { failure = WriteError(path: path, step: "close", errno: errno) }
        if failure == nil, rename(temporary, path) != 0 { failure = WriteError(path: path, step: "rename", errno: errno) }
        if let failure {
            unlink(temporary)
            throw failure
        }
    }
}
