import Foundation
import HTTPTransport

/// A `podstart agent` the test started: the built binary as a child process, its log in a file,
/// its HTTP API on 127.0.0.1. `start` returns once /readyz answers 200.
public final class AgentProcess: @unchecked Sendable {
    public let port: Int
    public let stateDirectory: String
    public let logPath: String
    public let process: Process

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public static func start(binary: String, stateDirectory: String, arguments: [String], port: Int? = nil,
                             prefix: [String] = []) async throws -> AgentProcess {
        let port = try port ?? Command.freePort()
        let logPath = stateDirectory + ".agent-\(port).log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        let process = Process()
        let command = prefix + [binary, "agent", "--listen", "127.0.0.1:\(port)", "--state-dir", stateDirectory,
                                "--log-format", "json", "--log-level", "debug"] + arguments
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = command
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let agent = AgentProcess(port: port, stateDirectory: stateDirectory, logPath: logPath, process: process)
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if !process.isRunning {
                throw Failure(description: "podstart agent exited \(process.terminationStatus) before it was ready:\n\(agent.log)")
            }
            if let (status, _) = try? await agent.get("/readyz"), status == 200 { return agent }
            try await Task.sleep(for: .milliseconds(100))
        }
        agent.kill(SIGKILL)
        throw Failure(description: "podstart agent not ready within 60 s:\n\(agent.log)")
    }

    init(port: Int, stateDirectory: String, logPath: String, process: Process) {
        self.port = port
        self.stateDirectory = stateDirectory
        self.logPath = logPath
        self.process = process
    }

    deinit { if process.isRunning { kill(SIGKILL); process.waitUntilExit() } }

    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// The log's JSON lines whose message is `message`.
    public func logLines(message: String) -> [[String: Any]] {
        log.split(separator: "\n").compactMap { line in
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  object["message"] as? String == message else { return nil }
            return object
        }
    }

    public func kill(_ signal: Int32) { Glibc.kill(process.processIdentifier, signal) }

    /// Sends SIGTERM and waits for the exit; returns the exit status.
    public func stop(timeout: TimeInterval = 30) async throws -> Int32 {
        kill(SIGTERM)
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning {
            if Date() > deadline {
                kill(SIGKILL)
                throw Failure(description: "podstart agent did not stop within \(timeout) s of SIGTERM:\n\(log)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        return process.terminationStatus
    }

    public func get(_ path: String, accept: String? = nil) async throws -> (Int, String) {
        let client = try HTTPTransport(HTTPEndpoint(url: "http://127.0.0.1:\(port)", timeout: .seconds(10)))
        let response = try await client.send(.GET, path, headers: accept.map { ["Accept": $0] } ?? [:])
        return (response.status, String(decoding: response.body, as: UTF8.self))
    }

    /// The value of one series in /metrics (`name{labels}` exactly as rendered), or nil.
    public func metric(_ series: String) async throws -> Double? {
        let (_, body) = try await get("/metrics")
        for line in body.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1))
        }
        return nil
    }

    /// Polls until `body` returns a value or `timeout` passes.
    public func waitFor<T>(_ what: String, timeout: TimeInterval = 30, _ body: () async throws -> T?) async throws -> T {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let value = try await body() { return value }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw Failure(description: "timed out after \(timeout) s waiting for \(what); agent log:\n\(log.suffix(4000))")
    }

    /// The recorded start with this key from /v1/pods/{uid}, as JSON, once it is there.
    public func pod(_ uid: String, timeout: TimeInterval = 30) async throws -> [String: Any] {
        try await waitFor("the start of pod \(uid) in /v1/pods", timeout: timeout) {
            let (status, body) = try await get("/v1/pods/\(uid)")
            guard status == 200 else { return nil }
            return try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
        }
    }
}
