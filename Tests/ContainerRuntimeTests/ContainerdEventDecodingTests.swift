import Foundation
import SwiftProtobuf
import Testing
@testable import ContainerRuntime

/// Event payloads decode by their Any type URL; what is unknown or broken becomes a value, not a
/// crash or an end of the stream.
@Suite struct ContainerdEventDecodingTests {
    @Test func taskExitDecodesWithUnixNanosecondTimesAndAnEmptyExecIDForTheInitProcess() throws {
        let message = Containerd_Events_TaskExit.with {
            $0.containerID = "web-1"
            $0.id = "web-1"
            $0.pid = 4242
            $0.exitStatus = 3
            $0.exitedAt = .with { $0.seconds = 1_795_000_000; $0.nanos = 123 }
        }
        let payload = ContainerdEvent.Payload(typeURL: "containerd.events.TaskExit", value: try message.serializedData())
        #expect(payload == .taskExit(containerID: "web-1", execID: "", pid: 4242, exitStatus: 3,
                                     exitedAt: 1_795_000_000_000_000_123))
        #expect(payload.containerID == "web-1")
    }

    @Test func imageEventsOfContainerd16And17Decode() throws {
        let bytes = try Containerd_Services_Images_V1_ImageCreate.with { $0.name = "docker.io/library/x:1" }.serializedData()
        for url in ["containerd.services.images.v1.ImageCreate", "containerd.events.ImageCreate",
                    "type.googleapis.com/containerd.events.ImageCreate"] {
            #expect(ContainerdEvent.Payload(typeURL: url, value: bytes) == .imageCreate(name: "docker.io/library/x:1"))
        }
    }

    @Test func unknownTypesAreOtherAndBrokenBytesAreMalformed() {
        #expect(ContainerdEvent.Payload(typeURL: "containerd.events.NamespaceCreate", value: Data([0x0a, 0x01, 0x61]))
                == .other(typeURL: "containerd.events.NamespaceCreate"))
        // Field 1 (string) declared 100 bytes long, 1 byte present.
        let broken = ContainerdEvent.Payload(typeURL: "containerd.events.TaskStart", value: Data([0x0a, 0x64, 0x61]))
        guard case let .malformed(url, reason) = broken else {
            Issue.record("expected malformed, got \(broken)")
            return
        }
        #expect(url == "containerd.events.TaskStart")
        #expect(!reason.isEmpty)
        #expect(broken.containerID == nil)
    }

    @Test func aMalformedEventIsCountedByTheResolver() async {
        let resolver = ContainerResolver(endpoint: CRIEndpoint(socketPath: "/nonexistent.sock"))
        await resolver.apply(ContainerdEvent(timestamp: 1, namespace: "default", topic: "/tasks/start",
                                             payload: .malformed(typeURL: "containerd.events.TaskStart", reason: "x")))
        #expect(await resolver.malformedContainerdEvents == 1)
        await resolver.apply(ContainerdEvent(timestamp: 2, namespace: "default", topic: "/tasks/start",
                                             payload: .taskStart(containerID: "web-1", pid: 0)))
        #expect(await resolver.metadata(containerID: "web-1")?.containerdNamespace == "default")
    }
}
