import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import GRPCProtobuf
import SwiftProtobuf

/// A client of containerd's own API (events, containers, tasks, namespaces) on the socket that also
/// serves CRI. Unlike CRI it sees every containerd namespace: containers started with `ctr run` or
/// nerdctl are starts too.
///
/// The connection lives until ``close()`` (or deinit). Namespaced calls send the gRPC metadata
/// `containerd-namespace`; the event stream is not namespaced and carries every namespace's events.
/// Errors are ``CRIError`` values that name the socket and what to do.
public final class ContainerdClient: Sendable {
    public let endpoint: CRIEndpoint
    /// Deadline of each unary call.
    public let timeout: Duration

    private let connections: RuntimeConnections
    private var eventService: Containerd_Services_Events_V1_Events.Client<HTTP2ClientTransport.Posix> {
        get throws { .init(wrapping: try connections.next()) }
    }
    private var containerService: Containerd_Services_Containers_V1_Containers.Client<HTTP2ClientTransport.Posix> {
        get throws { .init(wrapping: try connections.next()) }
    }
    private var taskService: Containerd_Services_Tasks_V1_Tasks.Client<HTTP2ClientTransport.Posix> {
        get throws { .init(wrapping: try connections.next()) }
    }
    private var namespaceService: Containerd_Services_Namespaces_V1_Namespaces.Client<HTTP2ClientTransport.Posix> {
        get throws { .init(wrapping: try connections.next()) }
    }

    /// Connects lazily to `endpoint`; throws ``CRIError/socketMissing(path:errno:)`` at once when
    /// nothing is there. A new connection is opened every ``CRIConnection/callsPerConnection``
    /// calls (see ``CRIConnection`` for why).
    public init(endpoint: CRIEndpoint, timeout: Duration = .seconds(30)) throws {
        try endpoint.checkSocket()
        self.endpoint = endpoint
        self.timeout = timeout
        connections = try RuntimeConnections(endpoint: endpoint)
    }

    deinit { close() }

    /// Ends every call and the connection. A graceful shutdown alone waits for in-flight calls,
    /// and the event subscription never ends by itself (cancelling its task does not cancel a
    /// server-streaming call: grpc-swift-2 issue #17), so the connections' tasks are cancelled too;
    /// without it every closed client kept its connection and subscription, and after a few dozen
    /// containerd stopped answering new ones.
    public func close() {
        connections.close(cancel: true)
    }

    /// Every event containerd publishes from now on, in every namespace, until the consumer stops
    /// iterating. `filters` use containerd's syntax (`topic=="/tasks/exit"`, `namespace==k8s.io`,
    /// `topic~="/images/"`) and are ORed. The stream finishes with an error naming the socket when
    /// containerd goes away or ends the stream. A payload that does not decode is an event with
    /// ``ContainerdEvent/Payload/malformed(typeURL:reason:)``, never an end of the stream.
    public func events(filters: [String] = []) -> AsyncThrowingStream<ContainerdEvent, Error> {
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: ContainerdEvent.self)
        let service: Containerd_Services_Events_V1_Events.Client<HTTP2ClientTransport.Posix>
        do {
            service = try eventService
        } catch {
            continuation.finish(throwing: error)
            return stream
        }
        let socket = endpoint.socketPath
        let task = Task {
            var options = CallOptions.defaults
            options.maxResponseMessageBytes = CRIClient.maxMessageBytes
            do {
                try await service.subscribe(.with { $0.filters = filters }, options: options) { response in
                    for try await envelope in response.messages {
                        continuation.yield(ContainerdEvent(envelope))
                    }
                }
                continuation.finish(throwing: CRIError.unavailable(
                    socket: socket, method: "containerd Events/Subscribe", detail: "containerd ended the event stream"))
            } catch {
                continuation.finish(throwing: CRIError.mapping(error, socket: socket, method: "containerd Events/Subscribe"))
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    /// The names of containerd's namespaces (`k8s.io` for CRI, `default` for ctr, `moby`, …).
    public func namespaces() async throws -> [String] {
        let response = try await call("containerd Namespaces/List", namespace: nil) { metadata, options in
            try await self.namespaceService.list(Containerd_Services_Namespaces_V1_ListNamespacesRequest(),
                                                 metadata: metadata, options: options)
        }
        return response.namespaces.map(\.name)
    }

    /// Every container record of one namespace (running or not).
    public func containers(namespace: String) async throws -> [ContainerdContainer] {
        let response = try await call("containerd Containers/List", namespace: namespace) { metadata, options in
            try await self.containerService.list(Containerd_Services_Containers_V1_ListContainersRequest(),
                                                 metadata: metadata, options: options)
        }
        return response.containers.map(ContainerdContainer.init)
    }

    /// One container record, nil when the namespace has no such container.
    public func container(namespace: String, id: String) async throws -> ContainerdContainer? {
        do {
            let response = try await call("containerd Containers/Get", namespace: namespace, id: id) { metadata, options in
                try await self.containerService.get(.with { $0.id = id }, metadata: metadata, options: options)
            }
            return response.hasContainer ? ContainerdContainer(response.container) : nil
        } catch let error as CRIError where error.isNotFound {
            return nil
        }
    }

    /// The tasks (a container's running or stopped init process) of one namespace.
    public func tasks(namespace: String) async throws -> [ContainerdTask] {
        let response = try await call("containerd Tasks/List", namespace: namespace) { metadata, options in
            try await self.taskService.list(Containerd_Services_Tasks_V1_ListTasksRequest(),
                                            metadata: metadata, options: options)
        }
        return response.tasks.map(ContainerdTask.init)
    }

    /// The task of one container, nil when it has none (not started, or deleted).
    public func task(namespace: String, containerID: String) async throws -> ContainerdTask? {
        do {
            let response = try await call("containerd Tasks/Get", namespace: namespace, id: containerID) { metadata, options in
                try await self.taskService.get(.with { $0.containerID = containerID }, metadata: metadata, options: options)
            }
            return response.hasProcess ? ContainerdTask(response.process) : nil
        } catch let error as CRIError where error.isNotFound {
            return nil
        }
    }

    private func call<Response: Sendable>(
        _ method: String, namespace: String?, id: String? = nil,
        _ body: @Sendable (Metadata, CallOptions) async throws -> Response
    ) async throws -> Response {
        var options = CallOptions.defaults
        options.timeout = timeout
        options.maxResponseMessageBytes = CRIClient.maxMessageBytes
        var metadata = Metadata()
        if let namespace { metadata.addString(namespace, forKey: "containerd-namespace") }
        let sent = metadata
        return try await CRIConnection.call(endpoint: endpoint, method: method, id: id, options: options,
                                              reconnect: connections.reconnect) { options in
            try await body(sent, options)
        }
    }
}
