import Foundation
import PodstartCore
import Synchronization

/// `podstart agent --record-inputs FILE`: writes every correlator input, in the correlator's
/// order, as `CorrelatorInputCodec` JSON lines (header first). Called from inside the hub, so
/// `record` only renders into a buffer under a lock; the buffer is written when it grows past
/// 64 KiB, every 200 ms by a timer, and at process exit (the agent calls nothing at stop).
public final class InputRecorder: Sendable {
    private struct State {
        var buffer: [UInt8] = []
        var lines = 0
        var failed: String?
    }

    public let path: String
    private let fd: Int32
    private let state = Mutex(State())
    nonisolated(unsafe) private let timer: DispatchSourceTimer  // set up once in init, then only the queue touches it
    private static let flushAt = 64 * 1024

    /// Recorders to flush at exit (atexit takes no context).
    private static let open = Mutex<[InputRecorder]>([])

    /// Creates (truncates) `path` and writes the header with the clock kernel times convert with.
    public init(path: String, clock: WallClock) throws {
        self.path = path
        fd = Glibc.open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw InputRecorderError(message: "--record-inputs \(path): cannot create the file: \(String(cString: strerror(errno)))")
        }
        timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "podstart.input-recorder"))
        state.withLock { $0.buffer += Array((CorrelatorInputCodec.header(clock: clock).rendered() + "\n").utf8) }
        flush()
        timer.schedule(deadline: .now() + .milliseconds(200), repeating: .milliseconds(200))
        timer.setEventHandler { [weak self] in self?.flush() }
        timer.resume()
        let first = Self.open.withLock { list in
            list.append(self)
            return list.count == 1
        }
        if first { atexit { InputRecorder.flushAll() } }
    }

    /// The hub's recording hook.
    public func record(_ input: CorrelatorInput) {
        var line = CorrelatorInputCodec.line(input)
        line += "\n"
        let full = state.withLock { s in
            s.buffer += line.utf8
            s.lines += 1
            return s.buffer.count >= Self.flushAt
        }
        if full { flush() }
    }

    public var linesRecorded: Int { state.withLock { $0.lines } }

    /// Writes what is buffered. A write error is reported once on standard error and recording
    /// stops (the agent itself goes on).
    public func flush() {
        state.withLock { s in
            guard !s.buffer.isEmpty, s.failed == nil else { return }
            var written = 0
            let total = s.buffer.count
            s.buffer.withUnsafeBytes { raw in
                while written < total {
                    let n = write(fd, raw.baseAddress! + written, total - written)
                    if n < 0 {
                        if errno == EINTR { continue }
                        s.failed = String(cString: strerror(errno))
                        return
                    }
                    written += n
                }
            }
            s.buffer.removeAll(keepingCapacity: true)
            if let failed = s.failed {
                FileHandle.standardError.write(Data("podstart: --record-inputs \(path): write failed (\(failed)); recording stopped\n".utf8))
            }
        }
    }

    public static func flushAll() {
        for recorder in open.withLock({ $0 }) { recorder.flush() }
    }
}

public struct InputRecorderError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

