import Exporter
import Foundation
import KubeletSources
import Logging

/// The kubelet's /metrics, scraped so an unreachable kubelet shows up as source errors, and its
/// `kubelet_pod_start_sli_duration_seconds` is exported beside podstart's own SLO histogram
/// (`podstart_kubelet_pod_start_sli_duration_seconds`).
public struct KubeletMetricsSource: AgentSource {
    public let name = "kubelet-metrics"
    public var url: String
    public var tokenFile: String?
    public var caFile: String?
    /// Accept the kubelet's serving certificate unverified (a self-signed one, as most kubelets
    /// have): `--kubelet-insecure-skip-tls-verify`.
    public var insecureSkipTLSVerify: Bool
    public var interval: Duration
    public var metrics: MetricsRegistry?

    public init(url: String, tokenFile: String?, caFile: String?, insecureSkipTLSVerify: Bool = false, interval: Duration = .seconds(30),
                metrics: MetricsRegistry? = nil) {
        self.url = url
        self.tokenFile = tokenFile
        self.caFile = caFile
        self.insecureSkipTLSVerify = insecureSkipTLSVerify
        self.interval = interval
        self.metrics = metrics
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

    /// One scrape (the token file is read again when it changes: tokens rotate).
    public func scrape() async throws {
        let endpoint = try KubeEndpoint(url: url, tokenFile: tokenFile, caFile: caFile, insecureSkipTLSVerify: insecureSkipTLSVerify)
        let (podStart, _) = try await KubeletEndpoints(endpoint).scrapeMetrics()
        if let sli = podStart.sli, let metrics {
            metrics.setKubeletSLI(buckets: sli.buckets.map { ($0.upperBound, $0.count) }, sum: sli.sum, count: sli.count)
        }
    }
}
