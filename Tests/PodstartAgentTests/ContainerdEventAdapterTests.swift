import Foundation
@testable import ContainerRuntime
import PodstartAgent
import PodstartCore
import SwiftProtobuf
import Testing

/// containerd's event envelopes, encoded as containerd 1.6 sends them and decoded by
/// ContainerRuntime's decoder, through the containerd event adapter.
@Suite struct ContainerdEventAdapterTests {
    static func event<M: SwiftProtobuf.Message>(_ namespace: String, _ type: String, at t: Int64, _ message: M) throws -> ContainerdEvent {
        let payload = ContainerdEvent.Payload(typeURL: "containerd.events.\(type)", value: try message.serializedData())
        return ContainerdEvent(timestamp: t, namespace: namespace, topic: "/" + type.lowercased(), payload: payload)
    }

    static func exitedAt(_ ns: Int64) -> Google_Protobuf_Timestamp {
        Google_Protobuf_Timestamp(seconds: ns / 1_000_000_000, nanos: Int32(ns % 1_000_000_000))
    }

    /// `ctr run` in namespace `default`: a start of its own, keyed by the container id.
    @Test func aContainerStartedThroughCtrIsAStartWithItsTimes() throws {
        let id = "ctr-reader"
        let t0: Int64 = 1_796_526_300_000_000_000
        var create = Containerd_Events_ContainerCreate()
        create.id = id
        create.image = "127.0.0.1:35000/podstart-test/reader:latest"
        create.runtime.name = "io.containerd.runc.v2"
        var taskCreate = Containerd_Events_TaskCreate()
        taskCreate.containerID = id
        taskCreate.bundle = "/run/containerd/io.containerd.runtime.v2.task/default/\(id)"
        taskCreate.pid = 31_337
        var taskStart = Containerd_Events_TaskStart()
        taskStart.containerID = id
        taskStart.pid = 31_337
        var exit = Containerd_Events_TaskExit()
        exit.containerID = id
        exit.id = id
        exit.pid = 31_337
        exit.exitStatus = 3
        exit.exitedAt = Self.exitedAt(t0 + 900_000_123)
        var delete = Containerd_Events_ContainerDelete()
        delete.id = id

        var adapter = ContainerdEventAdapter()
        var lines: [String] = []
        for event in [try Self.event("default", "ContainerCreate", at: t0, create),
                      try Self.event("default", "TaskCreate", at: t0 + 40_000_000, taskCreate),
                      try Self.event("default", "TaskStart", at: t0 + 55_000_000, taskStart),
                      try Self.event("default", "TaskExit", at: t0 + 900_000_500, exit),
                      try Self.event("default", "ContainerDelete", at: t0 + 950_000_000, delete)] {
            lines += adapter.inputs(event).map(\.line)
        }
        #expect(lines == [
            CorrelatorInput.runtimeContainer(RuntimeContainer(uid: id, containerdNamespace: "default", containerID: id)),
            .pod(PodSighting(uid: id, namespace: "", name: "", createdUnixNs: t0, source: .containerd)),
            .containerCreated(ContainerCreation(uid: id, containerID: id, name: id, image: "127.0.0.1:35000/podstart-test/reader:latest", imageDigest: nil,
                              isInit: false, beginUnixNs: t0, endUnixNs: t0, source: .containerd)),
            .containerCreated(ContainerCreation(uid: id, containerID: id, name: id, image: "", imageDigest: nil, isInit: false,
                              beginUnixNs: t0, endUnixNs: t0 + 40_000_000, source: .containerd)),
            .containerStarted(ContainerStart(containerID: id, beginUnixNs: t0 + 40_000_000, endUnixNs: t0 + 55_000_000, source: .containerd)),
            .containerPid(ContainerInitProcess(containerID: id, pid: 31_337)),
            .containerExited(ContainerExit(containerID: id, atUnixNs: t0 + 900_000_123, exitCode: 3)),
        ].map(\.line))
    }

    /// In the CRI plugin's namespace only the init pid is news (the listing and logs tell the rest);
    /// an exec's exit is not the container's.
    @Test func criContainersGiveTheirInitPidOnly() throws {
        let id = "0a1c20773e5db248bda464a8f761835fe409219b3210ac7289be34a62434289e"  // pod-a's reader, containerd.log
        var start = Containerd_Events_TaskStart()
        start.containerID = id
        start.pid = 18_950
        var create = Containerd_Events_ContainerCreate()
        create.id = id
        create.image = "sha256:8fc9f9b1aee1bed77c85340b8bf87e9b96ab9c6251319c5519663b5f1c8fc040"
        var execExit = Containerd_Events_TaskExit()
        execExit.containerID = "other"
        execExit.id = "exec-1"
        execExit.exitStatus = 1

        var adapter = ContainerdEventAdapter()
        #expect(adapter.inputs(try Self.event("k8s.io", "ContainerCreate", at: 1, create)).isEmpty)
        #expect(adapter.inputs(try Self.event("k8s.io", "TaskStart", at: 2, start)).map(\.line)
                == [CorrelatorInput.containerPid(ContainerInitProcess(containerID: id, pid: 18_950)).line])
        #expect(adapter.inputs(try Self.event("default", "TaskExit", at: 3, execExit)).isEmpty)
        // a task that started before the agent subscribed is not a start
        var lateStart = Containerd_Events_TaskStart()
        lateStart.containerID = "started-before"
        lateStart.pid = 7
        #expect(adapter.inputs(try Self.event("default", "TaskStart", at: 4, lateStart)).isEmpty)
    }

    /// The CRI plugin records a pulled image under its tag, its id and its repo digest (pod-a's
    /// pull in the real node's containerd.log, 03:01:09.104…106): the end of the pull, once, by a
    /// name a container can be matched with; the id record and other namespaces are no pull.
    @Test func anImageTheCRIPluginStoredIsTheEndOfAPull() throws {
        var adapter = ContainerdEventAdapter()
        var got: [String] = []
        let names = [(Recordings.unixNs("2026-12-06T03:01:09.104021125"), "127.0.0.1:35000/podstart-test/reader:latest"),
                     (Recordings.unixNs("2026-12-06T03:01:09.104591170"), "sha256:8fc9f9b1aee1bed77c85340b8bf87e9b96ab9c6251319c5519663b5f1c8fc040"),
                     (Recordings.unixNs("2026-12-06T03:01:09.106212933"),
                      "127.0.0.1:35000/podstart-test/reader@sha256:c19a65d4df3d5c37bbca6b3a8f1612fd01145c0df3753f44f1ee3f110fca6b1a")]
        for (t, name) in names {
            var create = Containerd_Services_Images_V1_ImageCreate()
            create.name = name
            let payload = ContainerdEvent.Payload(typeURL: "containerd.services.images.v1.ImageCreate", value: try create.serializedData())
            got += adapter.inputs(ContainerdEvent(timestamp: t, namespace: "k8s.io", topic: "/images/create", payload: payload)).map(\.line)
            #expect(adapter.inputs(ContainerdEvent(timestamp: t, namespace: "default", topic: "/images/create", payload: payload)).isEmpty)
        }
        #expect(got == [names[0], names[2]].map { t, name in
            CorrelatorInput.pull(ImagePull(uid: nil, image: name, beginUnixNs: t, endUnixNs: t, source: .containerd)).line
        })
    }

    /// The record of a CRI container names its pod through the kubelet's labels.
    @Test func aCRIContainerRecordGivesItsPodNameAndDigest() async {
        let record = ContainerdContainer(id: "e0e08e6407ac71968e7d3fc348e08b7b816306ff3cf0ea1cf9f4775c9cefeef3",
                                         image: "127.0.0.1:35000/podstart-test/reader:latest",
                                         labels: ["io.cri-containerd.kind": "container", "io.kubernetes.pod.uid": "e36c87c9-3d49-40a3-a06a-70616177371e",
                                                  "io.kubernetes.pod.name": "pod-d-init", "io.kubernetes.pod.namespace": "default",
                                                  "io.kubernetes.container.name": "reader"],
                                         runtime: "io.containerd.runc.v2", snapshotter: "overlayfs", snapshotKey: "", createdAt: 0, updatedAt: 0)
        let t = Recordings.unixNs("2026-12-06T03:02:00.953932586")
        let got = await ContainerdEventAdapter.criContainer(record, image: record.image, at: t) {
            "sha256:c19a65d4df3d5c37bbca6b3a8f1612fd01145c0df3753f44f1ee3f110fca6b1a"
        }
        #expect(got.map(\.line) == [CorrelatorInput.containerCreated(ContainerCreation(
            uid: "e36c87c9-3d49-40a3-a06a-70616177371e", containerID: record.id, name: "reader", image: record.image,
            imageDigest: "sha256:c19a65d4df3d5c37bbca6b3a8f1612fd01145c0df3753f44f1ee3f110fca6b1a", isInit: false,
            beginUnixNs: t, endUnixNs: t, source: .containerd)).line])
        var sandbox = record
        sandbox.labels["io.cri-containerd.kind"] = "sandbox"
        #expect(await ContainerdEventAdapter.criContainer(sandbox, image: "", at: t) { nil }.isEmpty)
    }
}
