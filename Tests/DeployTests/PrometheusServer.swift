import Foundation
import PodstartCore
import PodstartTestSupport
import Testing

/// Debian's `prometheus`, run by the test on 127.0.0.1 with a temporary config and TSDB: scrapes
/// one target every second, evaluates the given rule files every second, answers PromQL.
final class PrometheusServer: @unchecked Sendable {
    let process: Process
    let port: Int
    let directory: String

    struct Result {
        var error: String?
        /// The sample values of an instant vector or scalar (NaN kept, so tests can reject it).
        var values: [Double]
    }

    static func start(binary: String, target: String, labels: [String: String], ruleFiles: [String]) throws -> PrometheusServer {
        let directory = try Command.temporaryDirectory("podstart-prometheus")
        let port = try Command.freePort()
        let labelText = labels.sorted { $0.key < $1.key }.map { "\($0.key): \"\($0.value)\"" }.joined(separator: ", ")
        try """
            global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}
            rule_files: [\(ruleFiles.map { "\"\($0)\"" }.joined(separator: ", "))]
            scrape_configs:
              - job_name: podstart
                static_configs: [{targets: ["\(target)"], labels: {\(labelText)}}]
            """.write(toFile: "\(directory)/prometheus.yml", atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["--config.file=\(directory)/prometheus.yml", "--storage.tsdb.path=\(directory)/data",
                             "--web.listen-address=127.0.0.1:\(port)", "--log.level=warn"]
        let log = FileHandle(forWritingAtPath: "/dev/null")
        _ = FileManager.default.createFile(atPath: "\(directory)/prometheus.log", contents: nil)
        let logHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: "\(directory)/prometheus.log"))
        process.standardOutput = logHandle
        process.standardError = logHandle
        process.standardInput = log
        try process.run()
        return PrometheusServer(process: process, port: port, directory: directory)
    }

    init(process: Process, port: Int, directory: String) {
        self.process = process
        self.port = port
        self.directory = directory
    }

    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    var log: String { (try? String(contentsOfFile: "\(directory)/prometheus.log", encoding: .utf8)) ?? "" }

    private func api(_ path: String, _ arguments: [String] = []) throws -> JSON {
        guard process.isRunning else { throw LocalEnvironment.StartFailure(description: "prometheus exited:\n\(log)") }
        let curl = try #require(Command.which("curl"), "curl is not installed: run scripts/install-deps.sh")
        // No -f: Prometheus answers a bad query with 400 and a JSON error, which is what we report.
        let (status, body) = try Command.run(curl, ["-s", "--max-time", "10", "-G"] + arguments + ["http://127.0.0.1:\(port)\(path)"])
        guard status == 0 else { throw LocalEnvironment.StartFailure(description: "curl \(path) failed (\(status)): \(body)") }
        return try JSON.parse(body)
    }

    func query(_ promql: String) throws -> Result {
        let answer = try api("/api/v1/query", ["--data-urlencode", "query=\(promql)"])
        if answer["status"]?.stringValue != "success" {
            return Result(error: answer["error"]?.stringValue ?? answer.rendered(), values: [])
        }
        let data = answer["data"]
        var samples: [JSON] = []
        switch data?["resultType"]?.stringValue {
        case "vector": samples = (data?["result"]?.arrayValue ?? []).compactMap { $0["value"] }
        case "scalar": samples = data?["result"].map { [$0] } ?? []
        default: break
        }
        let values = samples.compactMap { $0.arrayValue?.last?.stringValue }.map { Double($0) ?? .nan }
        return Result(error: nil, values: values)
    }

    /// The values of an instant query; [] when it fails or has no data.
    func values(_ promql: String) throws -> [Double] {
        try query(promql).values
    }

    /// Rule name → health (`ok`, `err`, `unknown` before the first evaluation).
    func ruleHealth() throws -> [String: String] {
        let answer = try api("/api/v1/rules")
        var health: [String: String] = [:]
        for group in answer["data"]?["groups"]?.arrayValue ?? [] {
            for rule in group["rules"]?.arrayValue ?? [] {
                health[rule["name"]?.stringValue ?? "?"] = rule["health"]?.stringValue ?? "?"
                if let error = rule["lastError"]?.stringValue, !error.isEmpty { health[rule["name"]?.stringValue ?? "?"] = "err: \(error)" }
            }
        }
        return health
    }

    /// A Grafana panel query as Grafana sends it with every variable on "All" and a short range.
    static func grafanaVariables(_ expr: String) -> String {
        expr.replacingOccurrences(of: "$namespace", with: ".*")
            .replacingOccurrences(of: "$node", with: ".*")
            .replacingOccurrences(of: "$__rate_interval", with: "2m")
            .replacingOccurrences(of: "$__range", with: "10m")
            .replacingOccurrences(of: "$__interval", with: "15s")
    }
}
