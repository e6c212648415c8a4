import AccessProfiles
import Foundation
import PodstartCore

/// Builds traces for the pure tests: one container of `digest` reading `accesses`.
enum Make {
    static let digest = "sha256:" + String(repeating: "ab", count: 32)
    static let otherDigest = "sha256:" + String(repeating: "cd", count: 32)
    static let layer0 = "sha256:" + String(repeating: "01", count: 32)
    static let layer1 = "sha256:" + String(repeating: "02", count: 32)

    struct A {
        var path: String
        var ms: Double
        var ranges: [[UInt64]] = []
        var layer: String? = Make.layer0
        var size: UInt64? = nil
        var opens: UInt64 = 1
    }

    static func trace(_ uid: String, digest: String = Make.digest, image: String = "registry.test/app:1",
                      imageBytes: UInt64? = nil, _ accesses: [A]) -> PodStartTrace {
        let created: Int64 = 1_700_000_000_000_000_000
        return PodStartTrace(
            pod: .init(namespace: "default", name: "app-\(uid)", uid: uid), created: created, ready: created + 1_000_000_000,
            outcome: .ready, phases: [],
            containers: [.init(name: "main", image: image, imageDigest: digest, imageBytes: imageBytes, accesses: accesses.map { a in
                PodStartTrace.Access(path: a.path, layerDigest: a.layer, firstAccessMs: a.ms, opens: a.opens,
                                     bytes: a.ranges.reduce(0) { $0 + $1[1] }, ranges: a.ranges, sizeBytes: a.size)
            })])
    }

    /// The JSON lines `podstart trace --runs N --output json` would write for these traces.
    static func lines(_ traces: [PodStartTrace]) -> String {
        traces.map { $0.json().rendered() + "\n" }.joined()
    }
}

/// Fixture files: real `podstart trace --output json` runs, recorded against scripts/localenv.sh.
enum Fixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").path

    static func path(_ name: String) -> String { "\(directory)/\(name)" }

    static func traces(_ name: String) throws -> [PodStartTrace] {
        try TraceFiles.load(paths: [path(name)], skipMalformed: false)
    }
}

/// A fresh temporary directory, removed by `remove()`.
struct TemporaryDirectory {
    let path: String
    init() throws {
        var template = Array("/tmp/podstart-profiles-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw CocoaError(.fileWriteUnknown)
        }
        path = String(cString: made)
    }
    func file(_ name: String) -> String { "\(path)/\(name)" }
    func write(_ name: String, _ text: String) throws -> String {
        let p = file(name)
        try text.write(toFile: p, atomically: false, encoding: .utf8)
        return p
    }
    func entries() -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted() }
    func remove() { try? FileManager.default.removeItem(atPath: path) }
}
