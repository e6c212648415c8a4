import ArgumentParser
import PodstartCore
import StateStore

#if canImport(Glibc)
import Glibc
#endif

/// Hidden: commits synthetic starts to a state store in a loop and prints each key once its
/// transaction has committed. The state-store tests kill it with SIGKILL mid-write and check
/// that every printed key is still there after reopening.
struct StateWriteLoopCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "state-write-loop",
        abstract: "Test helper: commit synthetic pod starts to --state-dir until killed.",
        shouldDisplay: false
    )

    @Option(name: .customLong("state-dir"), help: "Directory of the state database.")
    var stateDirectory: String

    @Option(help: "Stop after this many starts (0: until killed).")
    var count: Int = 0

    func validate() throws {
        guard count >= 0 else { throw ValidationError("--count must be 0 or more") }
    }

    func run() throws {
        let store = try TimelineStore(directory: stateDirectory,
                                      configuration: .init(maxAgeSeconds: nil, maxBytes: nil))
        var i = 0
        while count == 0 || i < count {
            let uid = "write-loop-\(getpid())-\(i)"
            let created = TimelineStore.unixNanosecondsNow()
            let accesses = (0..<64).map { n in
                PodStartTrace.Access(path: "/usr/lib/file-\(n)", layerDigest: nil, firstAccessMs: Double(n),
                                     opens: 1, bytes: 4096, ranges: [[0, 4096]])
            }
            let trace = PodStartTrace(
                pod: .init(namespace: "default", name: "loop-\(i)", uid: uid), created: created, ready: created + 1_000_000_000,
                outcome: .ready,
                phases: [PhaseSpan(name: .start, start: created, end: created + 1_000_000_000, parent: nil, source: .cri)],
                containers: [.init(name: "main", image: "busybox:latest", imageDigest: "sha256:" + String(repeating: "a", count: 64),
                                   accesses: accesses)])
            try store.saveSync(trace)
            // One unbuffered write per key: it leaves the process only after the commit.
            let line = Array((uid + "\n").utf8)
            _ = line.withUnsafeBytes { write(STDOUT_FILENO, $0.baseAddress, $0.count) }
            i += 1
        }
    }
}
