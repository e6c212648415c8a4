import Foundation
import HTTPTransport

/// Where and how to reach a kubelet or API server: URL, bearer token (or token file, read
/// again when it changes), CA bundle, client certificate, `insecureSkipTLSVerify`, timeout and
/// body cap. The client is `HTTPTransport`, shared with the OCI registry client.
public typealias KubeEndpoint = HTTPEndpoint

extension HTTPEndpoint {
    public static let serviceAccountDirectory = "/var/run/secrets/kubernetes.io/serviceaccount"

    /// The API server as seen from a pod: `KUBERNETES_SERVICE_HOST`/`_PORT`, with the service
    /// account's token and CA.
    public static func inCluster(directory: String = serviceAccountDirectory,
                                 environment env: [String: String] = ProcessInfo.processInfo.environment) throws -> HTTPEndpoint {
        guard let host = env["KUBERNETES_SERVICE_HOST"], let port = env["KUBERNETES_SERVICE_PORT"] else {
            throw KubeHTTPError.notInCluster
        }
        let h = host.contains(":") ? "[\(host)]" : host
        return try serviceAccount(url: "https://\(h):\(port)", directory: directory)
    }

    /// Any HTTPS endpoint (e.g. the node's kubelet, `https://<node-ip>:10250`) with the service
    /// account's token file (read again when Kubernetes rotates it) and CA. Kubelets whose
    /// serving certificate the cluster CA did not sign need `insecureSkipTLSVerify` (as
    /// `--kubelet-insecure-tls` does for metrics-server).
    public static func serviceAccount(url: String, directory: String = serviceAccountDirectory,
                                      insecureSkipTLSVerify: Bool = false, timeout: Duration = .seconds(10)) throws -> HTTPEndpoint {
        let tokenFile = directory + "/token"
        // Read once now so a missing mount is reported at start, not at the first request.
        _ = try BearerToken(.file(tokenFile)).current()
        return try HTTPEndpoint(url: url, tokenFile: tokenFile, caFile: directory + "/ca.crt",
                                insecureSkipTLSVerify: insecureSkipTLSVerify, timeout: timeout)
    }
}

/// What the Kubernetes side adds to `HTTPTransportError`: no cluster to find, an answer that is
/// not what the API promises.
public enum KubeHTTPError: Error, Sendable, CustomStringConvertible {
    case notInCluster
    case decode(path: String, reason: String)

    public var description: String {
        switch self {
        case .notInCluster: "KUBERNETES_SERVICE_HOST/PORT are not set: not running in a pod; pass the API server URL, token and CA explicitly"
        case .decode(let path, let why): "cannot decode the response of \(path): \(why)"
        }
    }
}
