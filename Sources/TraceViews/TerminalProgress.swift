import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One line of progress on standard error, rewritten in place while long work runs (a cold pull,
/// a benchmark's rounds). It shows only when standard error is a terminal and the output is for
/// people: piped, redirected or `--output json`, every call does nothing, so programs reading
/// standard output or standard error never see it.
public final class TerminalProgress: @unchecked Sendable {
    private let lock = NSLock()
    private let sink: (@Sendable (String) -> Void)?
    private var shown = false

    /// `sink` receives the escape sequences and text as written; nil turns progress off.
    public init(sink: (@Sendable (String) -> Void)?) {
        self.sink = sink
    }

    /// Progress on standard error when it is a terminal and `forPeople` (the output is a table
    /// or a page, not JSON); silent otherwise.
    public static func standardError(forPeople: Bool) -> TerminalProgress {
        guard forPeople, isatty(STDERR_FILENO) == 1 else { return TerminalProgress(sink: nil) }
        return TerminalProgress { FileHandle.standardError.write(Data($0.utf8)) }
    }

    public var isEnabled: Bool { sink != nil }

    /// Replaces the line with `text`.
    public func show(_ text: String) {
        guard let sink else { return }
        lock.withLock {
            sink("\r\u{1B}[2K" + text)
            shown = true
        }
    }

    /// Erases the line, so what is printed next starts on a clean one.
    public func clear() {
        guard let sink else { return }
        lock.withLock {
            if shown { sink("\r\u{1B}[2K") }
            shown = false
        }
    }

    /// Bytes as people read them: `512 B`, `3.4 KiB`, `61.0 MiB`, `1.2 GiB`.
    public static func byteText(_ bytes: UInt64) -> String {
        switch bytes {
        case (1 << 30)...: String(format: "%.1f GiB", Double(bytes) / Double(1 << 30))
        case 1 << 20 ..< 1 << 30: String(format: "%.1f MiB", Double(bytes) / Double(1 << 20))
        case 1 << 10 ..< 1 << 20: String(format: "%.1f KiB", Double(bytes) / Double(1 << 10))
        default: "\(bytes) B"
        }
    }
}
