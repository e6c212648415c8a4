import Foundation
import Logging
import PodstartCore
import StateStore
import Synchronization
import Testing

/// Keeps what a logger was asked to log, to check the lines operators will read.
final class CapturedLog: Sendable {
    let lines = Mutex<[String]>([])
    var logger: Logger { Logger(label: "test") { _ in CapturingHandler(sink: self) } }

    struct CapturingHandler: LogHandler {
        let sink: CapturedLog
        var logLevel: Logger.Level = .trace
        var metadata: Logger.Metadata = [:]
        var metadataProvider: Logger.MetadataProvider?
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            let fields = (event.metadata ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            sink.lines.withLock { $0.append("\(event.level) \(event.message) \(fields)") }
        }
    }
}

enum StoreFixtures {
    static let t0: Int64 = 1_700_000_000_000_000_000
    static let s: Int64 = 1_000_000_000
    static let digestA = "sha256:" + String(repeating: "a", count: 64)
    static let digestB = "sha256:" + String(repeating: "b", count: 64)

    static func trace(_ i: Int, created: Int64? = nil, digest: String = digestA, image: String = "registry.local/a:1",
                      accesses: Int = 3, outcome: PodStartTrace.Outcome = .ready) -> PodStartTrace {
        let c = created ?? t0 + Int64(i) * s
        return PodStartTrace(
            pod: .init(namespace: "default", name: "pod-\(i)", uid: "uid-\(i)"), created: c,
            ready: outcome == .ready ? c + 2 * s : nil, outcome: outcome, failureReason: outcome == .failed ? "ErrImagePull" : nil,
            phases: [PhaseSpan(name: .pull, start: c, end: c + s, parent: nil, source: .containerd),
                     PhaseSpan(name: .start, start: c + s, end: c + 2 * s, parent: nil, source: .cri)],
            containers: [.init(name: "main", image: image, imageDigest: digest, accesses: (0..<accesses).map { n in
                .init(path: "/lib/f\(n)", layerDigest: digest, firstAccessMs: Double(n), opens: 1, bytes: 4096, ranges: [[0, 4096]])
            })])
    }

    static func directory() throws -> String {
        let path = NSTemporaryDirectory() + "podstart-state-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static let noRetention = TimelineStore.Configuration(maxAgeSeconds: nil, maxBytes: nil)
}

@Suite("State store")
struct TimelineStoreTests {
    @Test func savedStartsSurviveReopenNewestFirst() async throws {
        let dir = try StoreFixtures.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var saved: [PodStartTrace] = []
        do {
            let store = try TimelineStore(directory: dir, configuration: StoreFixtures.noRetention)
            for i in 0..<5 {
                let t = StoreFixtures.trace(i, digest: i < 3 ? StoreFixtures.digestA : StoreFixtures.digestB,
                                            image: i < 3 ? "registry.local/a:1" : "registry.local/b:1",
                                            accesses: i == 4 ? 0 : 3, outcome: i == 2 ? .failed : .ready)
                try await store.save(t)
                saved.append(t)
            }
            try store.close()
        }
        let store = try TimelineStore(directory: dir, configuration: StoreFixtures.noRetention)
        #expect(store.movedAsidePath == nil)
        let recent = try await store.recent(limit: 10, offset: 0)
        #expect(recent == saved.reversed())
        #expect(try await store.recent(limit: 2, offset: 1).map(\.pod.uid) == ["uid-3", "uid-2"])
        #expect(try await store.pod(uid: "uid-2") == saved[2])
        #expect(try await store.pod(uid: "uid-9") == nil)

        let images = try await store.images(limit: 10, offset: 0)
        #expect(images == [
            ImageSummary(digest: StoreFixtures.digestB, references: ["registry.local/b:1"], starts: 2, startsWithAccesses: 1,
                         lastStarted: StoreFixtures.t0 + 4 * StoreFixtures.s),
            ImageSummary(digest: StoreFixtures.digestA, references: ["registry.local/a:1"], starts: 3, startsWithAccesses: 3,
                         lastStarted: StoreFixtures.t0 + 2 * StoreFixtures.s),
        ])
        #expect(try await store.traces(imageDigest: StoreFixtures.digestA, limit: 10).map(\.pod.uid) == ["uid-2", "uid-1", "uid-0"])
        #expect(try store.totals().traces == 5)
        // The accesses come back whole (profiles read them from here).
        #expect(try await store.pod(uid: "uid-0")?.containers.first?.accesses.count == 3)
    }

    @Test func savingTheSameKeyAgainReplacesTheStart() async throws {
        let dir = try StoreFixtures.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try TimelineStore(directory: dir, configuration: StoreFixtures.noRetention)
        try await store.save(StoreFixtures.trace(1, outcome: .failed))
        try await store.save(StoreFixtures.trace(1, outcome: .ready))
        #expect(try await store.recent(limit: 10, offset: 0).map(\.outcome) == [.ready])
        #expect(try await store.images(limit: 10, offset: 0).first?.starts == 1)
        #expect(try store.totals().traces == 1)
    }

    @Test func startsWithoutAPodAreKeyedByContainerID() async throws {
        let dir = try StoreFixtures.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try TimelineStore(directory: dir, configuration: StoreFixtures.noRetention)
        var t = StoreFixtures.trace(1)
        t.pod = .init(namespace: "", name: "", uid: "")
        t.runtime = .init(containerdNamespace: "default", containerID: "c0ffee")
        try await store.save(t)
        #expect(try await store.pod(uid: "c0ffee") == t)
    }

    @Test func retentionDeletesByAgeThenOldestPastTheSizeLimit() async throws {
        let dir = try StoreFixtures.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let now = StoreFixtures.t0 + 100 * StoreFixtures.s
        // Age: a 50 s limit keeps starts created in the last 50 s before `now`.
        let byAge = try TimelineStore(directory: dir, configuration: .init(maxAgeSeconds: 50, maxBytes: nil), now: now)
        for i in 0..<100 { try await byAge.save(StoreFixtures.trace(i), now: now) }
        #expect(try await byAge.recent(limit: 1000, offset: 0).map(\.pod.uid).last == "uid-50")
        #expect(try byAge.totals().traces == 50)
        try byAge.close()

        // Size: room for about ten starts; the newest ones stay.
        let one = Int64(StoreFixtures.trace(0).json().rendered().utf8.count)
        let bySize = try TimelineStore(directory: dir, configuration: .init(maxAgeSeconds: nil, maxBytes: one * 10 + one / 2), now: now)
        #expect(try bySize.totals().traces == 10)  // applied at open
        for i in 100..<130 { try await bySize.save(StoreFixtures.trace(i), now: now) }
        let kept = try await bySize.recent(limit: 1000, offset: 0).map(\.pod.uid)
        #expect(kept.count == 10)
        #expect(kept.first == "uid-129" && kept.last == "uid-120")
        #expect(try bySize.totals().bytes <= one * 10 + one / 2)
        // Deleted starts give their pages back (incremental vacuum), so the file does not keep
        // the high-water mark.
        #expect(try bySize.pageCounts().free == 0)
        // The image index follows the deletions (cascade).
        #expect(try await bySize.images(limit: 10, offset: 0).first?.starts == 10)
    }

    @Test func aFileThatIsNotADatabaseIsMovedAsideAndAFreshOneStarted() async throws {
        let dir = try StoreFixtures.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/" + TimelineStore.fileName
        let garbage = Data((0..<65_536).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) })
        try garbage.write(to: URL(fileURLWithPath: path))

        let log = CapturedLog()
        let store = try TimelineStore(directory: dir, configuration: StoreFixtures.noRetention, logger: log.logger, now: StoreFixtures.t0)
        let aside = try #require(store.movedAsidePath)
        #expect(aside == path + ".corrupt-20231114T221320Z")
        // One error line naming both files and SQLite's reason.
        let lines = log.lines.withLock { $0 }
        #expect(lines == ["error state database is corrupt; moved it aside and started a fresh one "
                          + "movedTo=\(aside) path=\(path) reason=file is not a database"])
        #expect(FileManager.default.contents(atPath: aside) == garbage)
        #expect(try await store.recent(limit: 10, offset: 0).isEmpty)
        try await store.save(StoreFixtures.trace(1))
        #expect(try await store.pod(uid: "uid-1") != nil)
    }

    @Test func aDatabaseWithDamagedPagesIsMovedAside() async throws {
        let dir = try StoreFixtures.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/" + TimelineStore.fileName
        do {
            let store = try TimelineStore(directory: dir, configuration: StoreFixtures.noRetention)
            for i in 0..<200 { try await store.save(StoreFixtures.trace(i, accesses: 20)) }
            try store.close()  // checkpoints the WAL into the file
        }
        // Keep the 100-byte header (still "a database"), overwrite every page after the first.
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let pageSize = Int(bytes[16]) << 8 | Int(bytes[17])
        #expect(bytes.count > 4 * pageSize)
        for i in pageSize..<bytes.count { bytes[i] = UInt8(truncatingIfNeeded: i &* 31) }
        try bytes.write(to: URL(fileURLWithPath: path))

        let store = try TimelineStore(directory: dir, configuration: StoreFixtures.noRetention)
        #expect(store.movedAsidePath != nil)
        #expect(try await store.recent(limit: 10, offset: 0).isEmpty)
    }

    @Test func anUnwritableDirectoryIsAnErrorNotAMoveAside() throws {
        #expect(throws: StateStoreError.self) {
            _ = try TimelineStore(directory: "/proc/podstart-cannot-exist")
        }
    }
}
