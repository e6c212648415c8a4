@testable import Exporter
import Foundation
import NIOSSL
import PodstartTestSupport
import Synchronization
import Testing

/// #16.4: a reloaded key must be the reloaded certificate's. A certificate rotated before its key
/// (or a key alone) would fail every handshake: such a pair keeps the previous one in service and
/// is counted in `podstart_api_reload_errors_total{file="tls"}`.
extension CredentialReloadTests {
    /// Puts `from` at `to` the way a rotation does (a new file renamed over the old one).
    static func replace(_ to: String, with from: String) throws {
        try? FileManager.default.removeItem(atPath: to + ".new")
        try FileManager.default.copyItem(atPath: from, toPath: to + ".new")
        guard rename(to + ".new", to) == 0 else { throw TestFailure("rename \(to): \(String(cString: strerror(errno)))") }
    }

    static func pairs(_ dir: String) throws -> (a: (ca: String, cert: String, key: String), b: (ca: String, cert: String, key: String), rsaKey: String) {
        for sub in ["live", "a", "b"] { try FileManager.default.createDirectory(atPath: "\(dir)/\(sub)", withIntermediateDirectories: true) }
        let a = try TLSTests.makeCertificates(in: dir + "/a")
        let b = try TLSTests.makeCertificates(in: dir + "/b")
        let rsaKey = dir + "/rsa.key"
        let (status, output) = try Command.run("/usr/bin/openssl", ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", rsaKey])
        guard status == 0 else { throw TestFailure("openssl genpkey: \(output)") }
        return (a, b, rsaKey)
    }

    @Test func aNewKeyThatIsNotTheNewCertificatesKeepsTheOldPairAndIsCountedOncePerChange() throws {
        let dir = try Command.temporaryDirectory("podstart-tls-match")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (a, b, rsaKey) = try Self.pairs(dir)
        let cert = dir + "/live/tls.crt", key = dir + "/live/tls.key"
        try Self.replace(cert, with: a.cert)
        try Self.replace(key, with: a.key)
        let leafA = try NIOSSLCertificate.fromPEMFile(a.cert)[0]
        let leafB = try NIOSSLCertificate.fromPEMFile(b.cert)[0]
        #expect(leafA != leafB)
        let errors = Mutex<[String]>([])
        let credentials = try TLSCredentials(files: TLSFiles(certificateChainPath: cert, privateKeyPath: key),
                                             onReloadError: { error in errors.withLock { $0.append("\(error)") } })
        #expect(credentials.currentLeaf == leafA)

        // the certificate rotated, its key not yet: B's certificate with A's key
        try Self.replace(cert, with: b.cert)
        #expect(credentials.currentLeaf == leafA, "a certificate without its key was put in service")
        #expect(credentials.currentLeaf == leafA)
        let first = errors.withLock { $0 }
        #expect(first.count == 1, "\(first)")
        #expect(first.first?.contains("does not match the certificate") == true, "\(first)")
        // the key follows: B's pair goes into service, no error
        try Self.replace(key, with: b.key)
        #expect(credentials.currentLeaf == leafB)
        #expect(errors.withLock { $0.count } == 1)
        // a key of another type (RSA for an ECDSA certificate)
        try Self.replace(key, with: rsaKey)
        #expect(credentials.currentLeaf == leafB)
        #expect(errors.withLock { $0.count } == 2)
        // a key of the same type but another value (A's with B's certificate)
        try Self.replace(key, with: a.key)
        #expect(credentials.currentLeaf == leafB)
        #expect(errors.withLock { $0.count } == 3)
        // and a matching pair again is taken
        try Self.replace(cert, with: a.cert)
        #expect(credentials.currentLeaf == leafA)
        #expect(errors.withLock { $0.count } == 3)

        // at start, a mismatched pair is refused with the reason
        try Self.replace(key, with: b.key)
        #expect {
            _ = try TLSCredentials(files: TLSFiles(certificateChainPath: cert, privateKeyPath: key))
        } throws: { error in
            guard case APIServerError.keyMismatch = error else { return false }
            return "\(error)".contains(key)
        }
    }
}
