import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import GRPCProtobuf
import SwiftProtobuf

/// A CRI (`runtime.v1`) client over the runtime's unix socket.
///
/// Use it inside ``withClient(endpoint:timeout:_:)``, which connects, runs the body and closes the
/// connection. Every call has a deadline (`timeout`); errors are ``CRIError`` values that name
/// the socket and, for a missing runtime, what to do.
public final class CRIClient: Sendable {
    public let endpoint: CRIEndpoint
    /// Deadline of each unary call unless a call says otherwise.
    public let timeout: Duration

    private let connections: RuntimeConnections
    /// The services on the connection for the next call (a new connection every
    /// ``CRIConnection/callsPerConnection`` calls).
    private var runtime: Runtime_V1_RuntimeService.Client<HTTP2ClientTransport.Posix> {
        get throws { Runtime_V1_RuntimeService.Client(wrapping: try connections.next()) }
    }
    private var images: Runtime_V1_ImageService.Client<HTTP2ClientTransport.Posix> {
        get throws { Runtime_V1_ImageService.Client(wrapping: try connections.next()) }
    }

    private init(endpoint: CRIEndpoint, timeout: Duration, connections: RuntimeConnections) {
        self.endpoint = endpoint
        self.timeout = timeout
        self.connections = connections
    }

    /// Connections opened so far by this client (tests).
    var connectionsOpened: Int { connections.opened }

    /// Connects to `endpoint`, runs `body` with the client, then closes the connection.
    /// Throws ``CRIError/socketMissing(path:errno:)`` before any gRPC work when no socket is there.
    public static func withClient<Result: Sendable>(
        endpoint: CRIEndpoint,
        timeout: Duration = .seconds(30),
        isolation: isolated (any Actor)? = #isolation,
        _ body: (CRIClient) async throws -> Result
    ) async throws -> Result {
        try endpoint.checkSocket()
        let connections = try RuntimeConnections(endpoint: endpoint)
        let result: Swift.Result<Result, any Error>
        do {
            result = .success(try await body(CRIClient(endpoint: endpoint, timeout: timeout, connections: connections)))
        } catch {
            result = .failure(error)
        }
        await connections.shutdown()
        return try result.get()
    }

    // MARK: - RuntimeService

    public func version() async throws -> RuntimeVersion {
        let response = try await call("Version") { options in
            try await self.runtime.version(.with { $0.version = "v1" }, options: options)
        }
        return RuntimeVersion(runtimeName: response.runtimeName, runtimeVersion: response.runtimeVersion,
                              runtimeAPIVersion: response.runtimeApiVersion)
    }

    /// Creates and starts the pod sandbox (pause container, network namespace, CNI); returns its id.
    public func runPodSandbox(_ config: PodSandboxConfig, runtimeHandler: String = "",
                              timeout: Duration? = nil) async throws -> String {
        let request = Runtime_V1_RunPodSandboxRequest.with {
            $0.config = config.proto
            $0.runtimeHandler = runtimeHandler
        }
        let response = try await call("RunPodSandbox", timeout: timeout) { options in
            try await self.runtime.runPodSandbox(request, options: options)
        }
        guard !response.podSandboxID.isEmpty else {
            throw CRIError.badResponse(method: "RunPodSandbox", detail: "empty sandbox id")
        }
        return response.podSandboxID
    }

    public func stopPodSandbox(id: String) async throws {
        _ = try await call("StopPodSandbox") { options in
            try await self.runtime.stopPodSandbox(.with { $0.podSandboxID = id }, options: options)
        }
    }

    public func removePodSandbox(id: String) async throws {
        _ = try await call("RemovePodSandbox") { options in
            try await self.runtime.removePodSandbox(.with { $0.podSandboxID = id }, options: options)
        }
    }

    /// The sandbox's status, and with `verbose` containerd's extra facts (pause pid, netns path).
    public func podSandboxStatus(id: String, verbose: Bool = false) async throws
        -> (PodSandboxInfo, SandboxVerboseInfo?)
    {
        let response = try await call("PodSandboxStatus", id: id) { options in
            try await self.runtime.podSandboxStatus(.with {
                $0.podSandboxID = id
                $0.verbose = verbose
            }, options: options)
        }
        guard response.hasStatus else {
            throw CRIError.badResponse(method: "PodSandboxStatus", detail: "no status for \(id)")
        }
        let extra = verbose ? SandboxVerboseInfo(infoJSON: response.info["info"]) : nil
        return (PodSandboxInfo(response.status), extra)
    }

    /// Sandboxes, optionally only those whose labels include every pair of `labelSelector`.
    public func listPodSandboxes(id: String? = nil, state: SandboxState? = nil,
                                 labelSelector: [String: String] = [:]) async throws -> [PodSandboxInfo] {
        let request = Runtime_V1_ListPodSandboxRequest.with {
            if id != nil || state != nil || !labelSelector.isEmpty {
                $0.filter = .with { filter in
                    if let id { filter.id = id }
                    if let state { filter.state = .with { $0.state = state == .ready ? .sandboxReady : .sandboxNotready } }
                    filter.labelSelector = labelSelector
                }
            }
        }
        let response = try await call("ListPodSandbox") { options in
            try await self.runtime.listPodSandbox(request, options: options)
        }
        return response.items.map(PodSandboxInfo.init)
    }

    /// Creates a container in a sandbox; `sandboxConfig` must be the one the sandbox ran with.
    public func createContainer(sandboxID: String, config: ContainerConfig,
                                sandboxConfig: PodSandboxConfig) async throws -> String {
        let request = Runtime_V1_CreateContainerRequest.with {
            $0.podSandboxID = sandboxID
            $0.config = config.proto
            $0.sandboxConfig = sandboxConfig.proto
        }
        let response = try await call("CreateContainer") { options in
            try await self.runtime.createContainer(request, options: options)
        }
        guard !response.containerID.isEmpty else {
            throw CRIError.badResponse(method: "CreateContainer", detail: "empty container id")
        }
        return response.containerID
    }

    public func startContainer(id: String) async throws {
        _ = try await call("StartContainer", id: id) { options in
            try await self.runtime.startContainer(.with { $0.containerID = id }, options: options)
        }
    }

    /// Stops a container, killing it after `gracePeriodSeconds`.
    public func stopContainer(id: String, gracePeriodSeconds: Int64 = 0) async throws {
        _ = try await call("StopContainer", id: id,
                           timeout: timeout + .seconds(gracePeriodSeconds)) { options in
            try await self.runtime.stopContainer(.with {
                $0.containerID = id
                $0.timeout = gracePeriodSeconds
            }, options: options)
        }
    }

    public func removeContainer(id: String) async throws {
        _ = try await call("RemoveContainer") { options in
            try await self.runtime.removeContainer(.with { $0.containerID = id }, options: options)
        }
    }

    public func listContainers(sandboxID: String? = nil, state: ContainerState? = nil,
                               labelSelector: [String: String] = [:]) async throws -> [ContainerInfo] {
        let request = Runtime_V1_ListContainersRequest.with {
            if sandboxID != nil || state != nil || !labelSelector.isEmpty {
                $0.filter = .with { filter in
                    if let sandboxID { filter.podSandboxID = sandboxID }
                    if let state { filter.state = .with { $0.state = state.proto } }
                    filter.labelSelector = labelSelector
                }
            }
        }
        let response = try await call("ListContainers") { options in
            try await self.runtime.listContainers(request, options: options)
        }
        return response.containers.map(ContainerInfo.init)
    }

    /// The container's status; with `verbose`, containerd's pid and snapshot key too.
    public func containerStatus(id: String, verbose: Bool = false) async throws -> ContainerStatusInfo {
        let response = try await call("ContainerStatus", id: id) { options in
            try await self.runtime.containerStatus(.with {
                $0.containerID = id
                $0.verbose = verbose
            }, options: options)
        }
        guard response.hasStatus else {
            throw CRIError.badResponse(method: "ContainerStatus", detail: "no status for \(id)")
        }
        var status = ContainerStatusInfo(response.status)
        if verbose { status.verbose = ContainerVerboseInfo(infoJSON: response.info["info"]) }
        return status
    }

    /// Runs `command` in the container and waits for it (`timeoutSeconds` 0 = no limit).
    public func execSync(containerID: String, command: [String], timeoutSeconds: Int64) async throws -> ExecResult {
        let callTimeout = timeoutSeconds > 0 ? Duration.seconds(timeoutSeconds) + .seconds(5) : .seconds(3600)
        let response = try await call("ExecSync", id: containerID, timeout: callTimeout) { options in
            try await self.runtime.execSync(.with {
                $0.containerID = containerID
                $0.cmd = command
                $0.timeout = timeoutSeconds
            }, options: options)
        }
        return ExecResult(exitCode: response.exitCode, stdout: Array(response.stdout), stderr: Array(response.stderr))
    }

    /// Runtime conditions (`RuntimeReady`, `NetworkReady`) as name → (status, reason: message).
    public func status() async throws -> [String: (ready: Bool, detail: String)] {
        let response = try await call("Status") { options in
            try await self.runtime.status(.with { $0.verbose = false }, options: options)
        }
        var result: [String: (ready: Bool, detail: String)] = [:]
        for condition in response.status.conditions {
            result[condition.type] = (condition.status, [condition.reason, condition.message]
                .filter { !$0.isEmpty }.joined(separator: ": "))
        }
        return result
    }

    /// Where the runtime keeps its files (containerd's root, state and snapshotter), from the
    /// configuration a verbose `Status` reports; nil when the runtime does not report it.
    public func runtimeLayout() async throws -> RuntimeLayout? {
        let response = try await call("Status") { options in
            try await self.runtime.status(.with { $0.verbose = true }, options: options)
        }
        return RuntimeLayout(configJSON: response.info["config"])
    }

    /// Streams container events until the runtime ends the stream or the task is cancelled.
    /// containerd 1.6 does not implement it: that throws a ``CRIError/call(method:socket:code:message:)``
    /// whose ``CRIError/isUnimplemented`` is true — poll ``listContainers(sandboxID:state:labelSelector:)`` then.
    public func watchContainerEvents(_ handle: @escaping @Sendable (ContainerEvent) async throws -> Void) async throws {
        var options = CallOptions.defaults
        options.maxResponseMessageBytes = Self.maxMessageBytes
        do {
            try await runtime.getContainerEvents(Runtime_V1_GetEventsRequest(), options: options) { response in
                for try await message in response.messages {
                    try await handle(ContainerEvent(message))
                }
            }
        } catch {
            throw mapError(error, method: "GetContainerEvents", id: nil)
        }
    }

    // MARK: - ImageService

    public func listImages() async throws -> [ImageInfo] {
        let response = try await call("ListImages") { options in
            try await self.images.listImages(Runtime_V1_ListImagesRequest(), options: options)
        }
        return response.images.map(ImageInfo.init)
    }

    /// The image if the runtime has it, nil if not.
    public func imageStatus(_ image: String) async throws -> ImageInfo? {
        let response = try await call("ImageStatus") { options in
            try await self.images.imageStatus(.with { $0.image = .with { $0.image = image } }, options: options)
        }
        return response.hasImage ? ImageInfo(response.image) : nil
    }

    /// Pulls the image (with the pod's sandbox config, as the kubelet sends it); returns the image
    /// reference the runtime answers (containerd: `sha256:<config digest>`).
    public func pullImage(_ image: String, sandboxConfig: PodSandboxConfig?,
                          timeout: Duration = .seconds(600)) async throws -> String {
        let request = Runtime_V1_PullImageRequest.with {
            $0.image = .with { $0.image = image }
            if let sandboxConfig { $0.sandboxConfig = sandboxConfig.proto }
        }
        let response = try await call("PullImage", id: image, timeout: timeout) { options in
            try await self.images.pullImage(request, options: options)
        }
        return response.imageRef
    }

    public func removeImage(_ image: String) async throws {
        _ = try await call("RemoveImage", id: image) { options in
            try await self.images.removeImage(.with { $0.image = .with { $0.image = image } }, options: options)
        }
    }

    // MARK: - plumbing

    /// The kubelet allows 16 MiB CRI messages (big nodes list many containers).
    static let maxMessageBytes = 16 * 1024 * 1024

    private func call<Response: Sendable>(
        _ method: String, id: String? = nil, timeout: Duration? = nil,
        _ body: @Sendable (CallOptions) async throws -> Response
    ) async throws -> Response {
        var options = CallOptions.defaults
        options.timeout = timeout ?? self.timeout
        options.maxResponseMessageBytes = Self.maxMessageBytes
        options.maxRequestMessageBytes = Self.maxMessageBytes
        return try await CRIConnection.call(endpoint: endpoint, method: method, id: id, options: options, reconnect: connections.reconnect, body)
    }

    private func mapError(_ error: any Error, method: String, id: String?, timeout: Duration? = nil) -> any Error {
        CRIError.mapping(error, socket: endpoint.socketPath, method: method, id: id, timeout: timeout)
    }
}

extension CRIError {
    /// The runtime does not implement the method (e.g. GetContainerEvents on containerd 1.6).
    public var isUnimplemented: Bool {
        if case let .call(_, _, code, _) = self { return code == "unimplemented" }
        return false
    }

    /// The runtime says the object does not exist.
    public var isNotFound: Bool {
        if case .notFound = self { return true }
        if case let .call(_, _, _, message) = self { return message.contains("not found") }
        return false
    }

    /// A connection closed under the call while the runtime ran (already reported to the
    /// ``CRIConnection`` observers).
    public var isConnectionClosed: Bool {
        if case .connectionClosed = self { return true }
        return false
    }
}
