import Foundation
import PodstartCore
import StateStore
import Testing

@Suite("State store under SIGKILL")
struct KillNineTests {
    /// The `podstart` binary built next to this test bundle (`swift build` / `swift test` put
    /// both in the same products directory).
    /// `podstart-bench`, which holds the test tools (state-write-loop).
    static func benchBinary() throws -> String {
        let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var dir = bundle.deletingLastPathComponent()
        // xctest bundles on Linux are files; on Darwin they are directories a few levels down.
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("podstart-bench").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        throw KillNineFailure("""
            no podstart-bench executable next to the test bundle \(bundle.path): build it first \
            (swift build --product podstart-bench with the same --scratch-path)
            """)
    }

    /// A writer commits starts in a loop and prints each key after its commit; we SIGKILL it
    /// mid-stream. Every printed key must be in the database when it is opened again, and the
    /// database must pass its integrity check (it is not moved aside).
    @Test(arguments: [1, 2, 3])
    func everyCommittedStartSurvivesKillNine(round: Int) async throws {
        let binary = try Self.benchBinary()
        let dir = NSTemporaryDirectory() + "podstart-kill9-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }

        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["state-write-loop", "--state-dir", dir]
        let stdout = Pipe()
        process.standardOutput = stdout
        let stderr = Pipe()
        process.standardError = stderr
        try process.run()

        // Read committed keys until enough arrived; vary the moment of the kill per round.
        let wanted = 150 * round + 37
        var printed: [String] = []
        var pending = Data()
        let reader = stdout.fileHandleForReading
        while printed.count < wanted {
            let chunk = reader.availableData
            if chunk.isEmpty { break }  // the writer died on its own
            pending.append(chunk)
            while let newline = pending.firstIndex(of: 0x0A) {
                printed.append(String(decoding: pending[pending.startIndex..<newline], as: UTF8.self))
                pending.removeSubrange(pending.startIndex...newline)
            }
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        let errors = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(process.terminationReason == .uncaughtSignal, "the writer exited by itself: \(errors)")
        #expect(printed.count >= wanted, "the writer printed only \(printed.count) keys: \(errors)")

        let store = try TimelineStore(directory: dir, configuration: .init(maxAgeSeconds: nil, maxBytes: nil))
        #expect(store.movedAsidePath == nil)
        var missing: [String] = []
        for key in printed {
            if try await store.pod(uid: key) == nil { missing.append(key) }
        }
        #expect(missing.isEmpty, "\(missing.count) committed starts lost, first \(missing.prefix(3))")
        // Anything written after the last print may or may not be there, but nothing less.
        #expect(try store.totals().traces >= printed.count)
    }
}

struct KillNineFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
