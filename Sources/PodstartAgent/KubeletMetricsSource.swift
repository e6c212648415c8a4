import Foundation
import KubeletSources
import Logging

/// The kubelet's /metrics, scraped so an unreachable kubelet shows up as source errors (and the
/// scrape's pod-start histogram stays comparable with podstart's own).
public struct KubeletMetricsSource: AgentSource {
    public let name = "kubelet-metrics"
    public var url: String
    public var tokenFile: String?
    public var caFile: String?
    public var interval: Duration

    public init(url: String, tokenFile: String?, caFile: String?, interval: Duration = .seconds(30)) {
        self.url = url
        self.tokenFile = tokenFile
        self.caFile = caFile
        self.interval = interval
    }

    public var logMetadata: Logger.Metadata { ["url": "\(url)"] }
    public var outageMessage: String { "cannot scrape the kubelet's metrics; retrying" }
    public var recoveryMessage: String { "kubelet metrics reachable again" }
    public var backoff: Backoff { .fixed(interval) }

    public func run(_ context: SourceContext) async throws {
        while !Task.isCancelled {
            try await scrape()
            context.up()
            try await Task.sleep(for: interval)
        }
    }

    /// One scrape (the token file is read each time: the kubelet's tokens rotate).
    func scrape() async throws {
        let token = try tokenFile.map { try String(contentsOfFile: $0, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) }
        _ = try await KubeletEndpoints(KubeEndpoint(url: url, bearerToken: token, caFile: caFile)).scrapeMetrics()
    }
}
