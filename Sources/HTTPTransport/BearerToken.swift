import Foundation
import Synchronization

/// A bearer token given as a value, or kept in a file that may be replaced while the process
/// runs (a projected service-account token is rotated about every hour): the file is read
/// again whenever its modification time or size changes.
public final class BearerToken: Sendable {
    public enum Source: Sendable, Equatable {
        case value(String)
        case file(String)
    }

    public let source: Source
    private let cache = Mutex(Cached(stamp: nil, token: ""))

    private struct Cached: Sendable {
        var stamp: FileStamp?
        var token: String
    }

    private struct FileStamp: Equatable, Sendable {
        var modified: Date
        var sizeBytes: Int
    }

    public init(_ source: Source) { self.source = source }

    /// The token now (surrounding whitespace and the final newline removed).
    public func current() throws -> String {
        switch source {
        case .value(let token):
            return token
        case .file(let path):
            let stamp: FileStamp
            do {
                // Follows the `..data` symlink Kubernetes swaps on rotation.
                let attributes = try FileManager.default.attributesOfItem(atPath: path)
                stamp = FileStamp(modified: attributes[.modificationDate] as? Date ?? .distantPast,
                                  sizeBytes: (attributes[.size] as? NSNumber)?.intValue ?? -1)
            } catch {
                throw HTTPTransportError.credentialFile(path: path, reason: "\(error.localizedDescription)")
            }
            if let token = cache.withLock({ $0.stamp == stamp ? $0.token : nil }) { return token }
            let token: String
            do {
                token = try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            } catch {
                throw HTTPTransportError.credentialFile(path: path, reason: "\(error.localizedDescription)")
            }
            guard !token.isEmpty else { throw HTTPTransportError.credentialFile(path: path, reason: "the file is empty") }
            cache.withLock { $0 = Cached(stamp: stamp, token: token) }
            return token
        }
    }
}
