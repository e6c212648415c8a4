import Foundation

/// The recorded samples in ../shared/reference (kubelet journals, kubelet /metrics, events and pod
/// status, the real v1.28.7 node), found from this file's location so the tests run from any
/// working directory.
enum Samples {
    static let referenceDirectory: String = {
        if let env = ProcessInfo.processInfo.environment["PODSTART_REFERENCE"] { return env }
        // Tests/KubeletSourcesTests/Samples.swift → repo → ../shared/reference
        var url = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
        for _ in 0..<3 { url.deleteLastPathComponent() }
        let beside = url.deletingLastPathComponent().appendingPathComponent("shared/reference").path
        return beside
    }()

    static func text(_ name: String) throws -> String {
        let path = referenceDirectory + "/" + name
        guard let d = FileManager.default.contents(atPath: path) else {
            throw SampleMissing(path: path)
        }
        return String(decoding: d, as: UTF8.self)
    }

    static func data(_ name: String) throws -> Data {
        let path = referenceDirectory + "/" + name
        guard let d = FileManager.default.contents(atPath: path) else { throw SampleMissing(path: path) }
        return d
    }

    struct SampleMissing: Error, CustomStringConvertible {
        var path: String
        var description: String { "sample \(path) not found: ../shared/reference must sit beside the repository (or set PODSTART_REFERENCE)" }
    }
}
