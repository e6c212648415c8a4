import ArgumentParser
import Exporter
import Foundation
import PodstartAgent
import StateStore

/// The agent's flags for what it serves and keeps: the HTTP listener, TLS, the API token, the
/// state directory and its retention, and the image label bounds of the metrics. For
/// `@OptionGroup var serve: ServeOptions` in `AgentCommand`; `validate()` rejects bad values
/// (unreadable files included) before any work starts.
struct ServeOptions: ParsableArguments {
    @Option(help: "Address for /metrics, /healthz, /readyz and /v1 (HOST:PORT, [IPv6]:PORT or :PORT).")
    var listen = "0.0.0.0:\(ListenAddress.defaultPort)"

    @Option(name: .customLong("tls-cert"), help: "PEM certificate chain (leaf first): serve HTTPS. Needs --tls-key.")
    var tlsCertificate: String?

    @Option(name: .customLong("tls-key"), help: "PEM private key for --tls-cert.")
    var tlsKey: String?

    @Option(name: .customLong("api-token-file"),
            help: "File holding a bearer token that /v1/... requests must send (Authorization: Bearer ...), read again when it changes. A file, not a flag, so the token stays out of ps. Implies --api-auth token.")
    var apiTokenFile: String?

    @Option(name: .customLong("api-auth"),
            help: "Who may read /v1: delegated (the API server reviews each request's Kubernetes token: TokenReview + SubjectAccessReview for get on the path), token (--api-token-file), none (anyone). Default: token with --api-token-file, else /v1 answers loopback clients only.")
    var apiAuth: String?

    @Option(name: .customLong("api-max-concurrent-requests"), help: "/v1 requests served at once; more are refused with 429 and Retry-After.")
    var apiMaxConcurrentRequests = 4

    @Option(name: .customLong("api-max-response-mib"), help: "Largest /v1 list response in MiB; a longer list stops early and gives nextOffset.")
    var apiMaxResponseMiB = 8

    @Option(name: .customLong("state-dir"), help: "Directory for the state database (timelines and access traces).")
    var stateDirectory = "/var/lib/podstart"

    @Option(name: .customLong("retention-hours"), help: "Delete recorded starts older than this (0: keep regardless of age).")
    var retentionHours = 168

    @Option(name: .customLong("state-max-mib"), help: "Delete the oldest starts when stored traces pass this size (0: no limit).")
    var stateMaxMiB = 512

    @Option(name: .customLong("metrics-image-limit"), help: "Images that get their own image label, in order of first sighting; the rest are summed as other.")
    var metricsImageLimit = 20

    @Option(name: .customLong("metrics-image"), help: "An image reference that always gets its own image label (repeatable).")
    var metricsImages: [String] = []

    func validate() throws {
        do { _ = try ListenAddress(parsing: listen) } catch { throw ValidationError("\(error)") }
        switch (tlsCertificate, tlsKey) {
        case (nil, nil): break
        case (let cert?, let key?):
            for path in [cert, key] where !FileManager.default.isReadableFile(atPath: path) {
                throw ValidationError("cannot read \(path) (--tls-cert/--tls-key)")
            }
        default: throw ValidationError("--tls-cert and --tls-key go together")
        }
        let mode = try apiAuthMode()
        if mode == .token {
            guard let apiTokenFile else { throw ValidationError("--api-auth token needs --api-token-file FILE") }
            do { _ = try StaticTokenAuthorizer.readToken(path: apiTokenFile) } catch { throw ValidationError("--api-token-file: \(error)") }
        } else if apiTokenFile != nil {
            throw ValidationError("--api-token-file goes with --api-auth token (not \(mode.rawValue))")
        }
        guard (1...1024).contains(apiMaxConcurrentRequests) else { throw ValidationError("--api-max-concurrent-requests must be from 1 to 1024") }
        guard (1...1024).contains(apiMaxResponseMiB) else { throw ValidationError("--api-max-response-mib must be from 1 to 1024") }
        guard (0...Self.maxRetentionHours).contains(retentionHours) else {
            throw ValidationError("--retention-hours must be from 0 to \(Self.maxRetentionHours) (10 years; 0 keeps starts regardless of age)")
        }
        guard (0...Self.maxStateMiB).contains(stateMaxMiB) else {
            throw ValidationError("--state-max-mib must be from 0 to \(Self.maxStateMiB) (1 TiB; 0 sets no limit)")
        }
        guard (0...1000).contains(metricsImageLimit) else { throw ValidationError("--metrics-image-limit must be from 0 to 1000") }
    }

    /// 10 years: the store turns hours into nanoseconds, which must stay far from Int64's end.
    static let maxRetentionHours = 87_600
    /// 1 TiB.
    static let maxStateMiB = 1 << 20

    var listenAddress: ListenAddress { (try? ListenAddress(parsing: listen)) ?? ListenAddress(host: "0.0.0.0", port: ListenAddress.defaultPort) }

    var tlsFiles: TLSFiles? {
        guard let tlsCertificate, let tlsKey else { return nil }
        return TLSFiles(certificateChainPath: tlsCertificate, privateKeyPath: tlsKey)
    }

    /// `--api-auth`, or its default: token with a token file, else loopback clients only.
    func apiAuthMode() throws -> APIAuthMode {
        guard let apiAuth else { return apiTokenFile != nil ? .token : .loopbackOnly }
        guard let mode = APIAuthMode(rawValue: apiAuth), mode != .loopbackOnly else {
            throw ValidationError("--api-auth must be delegated, token or none (not \(apiAuth))")
        }
        return mode
    }

    var storeConfiguration: TimelineStore.Configuration {
        TimelineStore.Configuration(maxAgeSeconds: retentionHours == 0 ? nil : Int64(retentionHours) * 3600,
                                    maxBytes: stateMaxMiB == 0 ? nil : Int64(stateMaxMiB) << 20)
    }

    func metricsConfiguration(buildInfo: BuildInfo) -> MetricsRegistry.Configuration {
        MetricsRegistry.Configuration(imageAllowList: Set(metricsImages), imageLabelLimit: metricsImageLimit, buildInfo: buildInfo)
    }
}
