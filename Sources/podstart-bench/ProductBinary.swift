import ArgumentParser
import Foundation

/// The `podstart` executable the benchmarks measure (`agent`, `analyze`): $PODSTART_BINARY, else
/// the one built next to `podstart-bench`.
enum ProductBinary {
    static func path() throws -> String {
        if let path = ProcessInfo.processInfo.environment["PODSTART_BINARY"] { return path }
        let exe = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        let path = URL(filePath: exe).deletingLastPathComponent().appending(path: "podstart").path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw ValidationError("no podstart executable next to \(exe): build it (swift build) or set PODSTART_BINARY")
        }
        return path
    }
}
