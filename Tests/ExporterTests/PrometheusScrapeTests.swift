import Exporter
import Foundation
import PodstartTestSupport
import Hummingbird
import HummingbirdTesting
import PodstartCore
import Synchronization
import Testing

/// Passes requests to the API and remembers the content types `/metrics` answered with.
struct RecordingResponder: HTTPResponder {
    typealias Context = APIResponder.Context
    let inner: APIResponder
    let served: Served

    func respond(to request: Request, context: Context) async throws -> Response {
        let response = try await inner.respond(to: request, context: context)
        if request.uri.path == "/metrics" { served.types.withLock { $0.append(response.headers[.contentType] ?? "") } }
        return response
    }
}

final class Served: Sendable {
    let types = Mutex<[String]>([])
}

@Suite("A real Prometheus scrapes /metrics")
struct PrometheusScrapeTests {
    /// Prometheus asks for OpenMetrics first; it must parse what we serve (`up` is 1 and our
    /// samples are queryable), and it must have been served OpenMetrics.
    @Test func prometheusIngestsTheOpenMetricsExposition() async throws {
        guard let prometheus = Command.which("prometheus") else {
            Issue.record("prometheus is not installed: run scripts/install-deps.sh (Debian package prometheus)")
            return
        }
        let dir = try Command.temporaryDirectory("podstart-exporter")
        defer { try? FileManager.default.removeItem(atPath: dir) }

        let metrics = Fixtures.registry()
        metrics.observe(trace: Fixtures.readyStart())
        metrics.observe(trace: Fixtures.failedStart())
        metrics.recordImagePull(image: "registry.local/app:1", bytes: 5_000_000)
        let served = Served()
        let responder = RecordingResponder(
            inner: APIResponder(metrics: metrics, timelines: InMemoryTimelines(), readiness: Readiness()), served: served)
        let (ports, portContinuation) = AsyncStream<Int>.makeStream()
        let app = Application(responder: responder, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                              onServerRunning: { portContinuation.yield($0.localAddress?.port ?? 0) })

        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.run() }
            var it = ports.makeAsyncIterator()
            guard let port = await it.next() else { throw TestFailure("the server never reported its port") }

            let webPort = try Command.freePort()
            let config = """
                global: {scrape_interval: 1s, scrape_timeout: 1s}
                scrape_configs:
                  - job_name: podstart
                    static_configs: [{targets: ["127.0.0.1:\(port)"]}]
                """
            try config.write(toFile: "\(dir)/prometheus.yml", atomically: true, encoding: .utf8)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: prometheus)
            process.arguments = ["--config.file=\(dir)/prometheus.yml", "--storage.tsdb.path=\(dir)/data",
                                 "--web.listen-address=127.0.0.1:\(webPort)", "--log.level=warn"]
            let log = Pipe()
            process.standardOutput = log
            process.standardError = log
            try process.run()
            defer {
                process.terminate()
                process.waitUntilExit()
            }

            // Prometheus' own query API, through curl (Go's server wants a Host header).
            func query(_ q: String) async throws -> JSON? {
                guard let curl = Command.which("curl") else { throw TestFailure("curl is not installed (scripts/install-deps.sh)") }
                let (status, body) = try Command.run(curl, ["-sf", "--max-time", "2", "-G",
                                                             "--data-urlencode", "query=\(q)", "http://127.0.0.1:\(webPort)/api/v1/query"])
                return status == 0 ? try? JSON.parse(body) : nil
            }
            func value(_ q: String) async throws -> String? {
                let result = try await query(q)?["data"]?["result"]?.arrayValue
                return result?.first?["value"]?.arrayValue?.last?.stringValue
            }

            var up: String?
            for _ in 0..<60 where up == nil {
                try await Task.sleep(for: .milliseconds(500))
                guard process.isRunning else { break }
                up = try await value("up{job=\"podstart\"}")
            }
            if !process.isRunning {
                Issue.record("prometheus exited: \(String(decoding: log.fileHandleForReading.availableData, as: UTF8.self))")
            }
            #expect(up == "1", "Prometheus could not scrape or parse /metrics")
            #expect(try await value("podstart_build_info") == "1")
            #expect(try await value("podstart_pod_start_duration_seconds_bucket{le=\"3.0\"}") == "1")
            #expect(try await value("podstart_pod_starts_total{outcome=\"failed\"}") == "1")
            #expect(try await value("podstart_image_pull_bytes_total{image=\"registry.local/app:1\"}") == "5000000")
            let types = served.types.withLock { $0 }
            #expect(types.contains(ExpositionFormat.openMetrics.contentType), "served: \(types)")
            group.cancelAll()
        }
    }
}
