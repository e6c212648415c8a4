import Exporter
import Foundation
import PodstartTestSupport
import Hummingbird
import HummingbirdTesting
import NIOSSL
import PodstartCore
import Testing

@Suite("HTTPS")
struct TLSTests {
    /// A test CA and a server certificate for localhost/127.0.0.1 it signed, made by openssl now.
    static func makeCertificates(in dir: String) throws -> (ca: String, cert: String, key: String) {
        guard let openssl = Command.which("openssl") else {
            throw TestFailure("openssl is not installed: apt-get install openssl (scripts/install-deps.sh)")
        }
        let ext = "\(dir)/ext.cnf"
        try "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
            .write(toFile: ext, atomically: true, encoding: .utf8)
        let steps: [[String]] = [
            ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "\(dir)/ca.key",
             "-out", "\(dir)/ca.crt", "-days", "1", "-subj", "/CN=podstart test CA"],
            ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "\(dir)/server.key",
             "-out", "\(dir)/server.csr", "-subj", "/CN=localhost"],
            ["x509", "-req", "-in", "\(dir)/server.csr", "-CA", "\(dir)/ca.crt", "-CAkey", "\(dir)/ca.key", "-CAcreateserial",
             "-out", "\(dir)/server.crt", "-days", "1", "-extfile", ext],
        ]
        for args in steps {
            let (status, output) = try Command.run(openssl, args)
            guard status == 0 else { throw TestFailure("openssl \(args.joined(separator: " ")) failed: \(output)") }
        }
        return ("\(dir)/ca.crt", "\(dir)/server.crt", "\(dir)/server.key")
    }

    @Test func servesHTTPSWithCertificateFilesAndAClientThatVerifiesThem() async throws {
        try await Self.withServer { port, ca in
            var trusting = TLSConfiguration.makeClientConfiguration()
            trusting.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(ca))
            let client = TestClient(host: "127.0.0.1", port: port, configuration: .init(tlsConfiguration: trusting, serverName: "localhost"))
            client.connect()
            let response = try await client.get("/healthz")
            #expect(response.status == .ok)
            try await client.shutdown()

            // A client that does not know the test CA must refuse the server.
            let stranger = TestClient(host: "127.0.0.1", port: port,
                                      configuration: .init(tlsConfiguration: .makeClientConfiguration(), timeout: .seconds(5), serverName: "localhost"))
            stranger.connect()
            await #expect(throws: (any Error).self) { _ = try await stranger.get("/healthz") }
            try? await stranger.shutdown()
        }
    }

    /// Runs the real listener with the test certificates and hands `body` its port and CA file.
    static func withServer(_ body: @Sendable (Int, String) async throws -> Void) async throws {
        let dir = try Command.temporaryDirectory("podstart-exporter")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let files = try makeCertificates(in: dir)
        let responder = APIResponder(metrics: Fixtures.registry(), timelines: InMemoryTimelines(), readiness: Readiness())
        let (ports, portContinuation) = AsyncStream<Int>.makeStream()
        let app = try APIServer.application(
            responder: responder, listen: ListenAddress(host: "127.0.0.1", port: 0),
            tls: TLSFiles(certificateChainPath: files.cert, privateKeyPath: files.key),
            onServerRunning: { port in portContinuation.yield(port) })
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.run() }
            var it = ports.makeAsyncIterator()
            guard let port = await it.next() else { throw TestFailure("the server never reported its port") }
            try await body(port, files.ca)
            group.cancelAll()
        }
    }

    @Test func unreadableCertificateFilesAreNamedInTheError() throws {
        let missing = TLSFiles(certificateChainPath: "/nonexistent/cert.pem", privateKeyPath: "/nonexistent/key.pem")
        do {
            _ = try APIServer.tlsConfiguration(missing)
            Issue.record("expected an error")
        } catch let error as APIServerError {
            #expect("\(error)".contains("/nonexistent/cert.pem"))
        }
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

@Suite("HTTPS minimum version")
struct TLSMinimumVersionTests {
    static func get(port: Int, ca: String, versions: (TLSVersion, TLSVersion)) async throws -> HTTPResponse.Status {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(ca))
        tls.minimumTLSVersion = versions.0
        tls.maximumTLSVersion = versions.1
        let client = TestClient(host: "127.0.0.1", port: port,
                                configuration: .init(tlsConfiguration: tls, timeout: .seconds(10), serverName: "localhost"))
        client.connect()
        defer { Task { try? await client.shutdown() } }
        return try await client.get("/healthz").status
    }

    @Test func aTLS11OrOlderClientIsRefusedWhileTLS12And13AreServed() async throws {
        try await TLSTests.withServer { port, ca in
            // a client that offers nothing newer than 1.1 (what BoringSSL's server default took)
            await #expect(throws: (any Error).self) { _ = try await Self.get(port: port, ca: ca, versions: (.tlsv1, .tlsv11)) }
            await #expect(throws: (any Error).self) { _ = try await Self.get(port: port, ca: ca, versions: (.tlsv1, .tlsv1)) }
            let tls12 = try await Self.get(port: port, ca: ca, versions: (.tlsv12, .tlsv12))
            let tls13 = try await Self.get(port: port, ca: ca, versions: (.tlsv13, .tlsv13))
            #expect(tls12 == .ok && tls13 == .ok)
        }
    }

    @Test func theOpenSSLCommandLineCannotHandshakeWithTLS11ButCanWithTLS12() async throws {
        guard let openssl = Command.which("openssl") else {
            throw TestFailure("openssl is not installed: apt-get install openssl (scripts/install-deps.sh)")
        }
        try await TLSTests.withServer { port, ca in
            // SECLEVEL=0: Debian's openssl would otherwise refuse TLS 1.1 on its own side, and the
            // test would prove nothing about the server.
            let old = try Command.run(openssl, ["s_client", "-connect", "127.0.0.1:\(port)", "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0",
                                                "-CAfile", ca, "-servername", "localhost"], stdin: "")
            #expect(old.0 != 0, "a TLS 1.1 handshake succeeded: \(old.1)")
            let current = try Command.run(openssl, ["s_client", "-connect", "127.0.0.1:\(port)", "-tls1_2",
                                                    "-CAfile", ca, "-servername", "localhost"], stdin: "")
            #expect(current.0 == 0, "a TLS 1.2 handshake failed: \(current.1)")
            #expect(current.1.contains("Protocol  : TLSv1.2") || current.1.contains("TLSv1.2"))
        }
    }
}
