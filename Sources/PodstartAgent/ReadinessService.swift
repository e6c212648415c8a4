import Exporter
import Logging
import ServiceLifecycle

/// Ready once every source has had its first look (or 10 s passed: a source whose input is down
/// is named, and the agent serves what the others give); not ready again when shutdown begins.
public struct ReadinessService: Service {
    let gate: StartupGate
    let readiness: Readiness
    let logger: Logger
    var timeout: Duration = .seconds(10)
    let started: @Sendable () -> Void

    public init(gate: StartupGate, readiness: Readiness, logger: Logger, started: @escaping @Sendable () -> Void) {
        self.gate = gate
        self.readiness = readiness
        self.logger = logger
        self.started = started
    }

    public func run() async {
        let unprimed = await cancelWhenGracefulShutdown { [gate, timeout] in await gate.wait(timeout: timeout) }
        if Task.isShuttingDownGracefully || Task.isCancelled {
            readiness.markNotReady(reason: "shutting down")
            return
        }
        if !unprimed.isEmpty {
            logger.warning("sources not yet reading; serving without them until they are", metadata: ["sources": "\(unprimed.joined(separator: ","))"])
        }
        readiness.markReady()
        started()
        try? await gracefulShutdown()
        readiness.markNotReady(reason: "shutting down")
    }
}
