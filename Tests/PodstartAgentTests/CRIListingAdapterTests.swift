@testable import ContainerRuntime
import PodstartAgent
import PodstartCore
import Synchronization
import Testing

/// CRI answers as the runtime gave them, replayed listing by listing.
final class RecordedListing: CRIListing {
    struct Listing: Sendable {
        var sandboxes: [PodSandboxInfo]
        var containers: [ContainerInfo]
        var statuses: [String: ContainerStatusInfo]
    }
    private let current: Mutex<Listing>
    let images: [String: ImageInfo]
    private let calls = Mutex<[String]>([])

    init(_ first: Listing, images: [String: ImageInfo]) {
        current = Mutex(first)
        self.images = images
    }

    func next(_ listing: Listing) { current.withLock { $0 = listing } }
    private let statusFailures = Mutex(0)
    /// The next `count` ContainerStatus calls fail as a connection closed under the call twice
    /// (the call and its repeat) fails them.
    func closeUnderNextStatusCalls(_ count: Int) { statusFailures.withLock { $0 = count } }
    var imageStatusCalls: [String] { calls.withLock { $0 } }

    func listPodSandboxes() async throws -> [PodSandboxInfo] { current.withLock { $0.sandboxes } }
    func listContainers() async throws -> [ContainerInfo] { current.withLock { $0.containers } }
    func containerStatus(id: String) async throws -> ContainerStatusInfo {
        if statusFailures.withLock({ n in defer { n = max(0, n - 1) }; return n > 0 }) {
            throw CRIError.connectionClosed(socket: "/run/containerd/containerd.sock", method: "ContainerStatus",
                                            detail: "Stream unexpectedly closed.", retried: true)
        }
        guard let status = current.withLock({ $0.statuses[id] }) else { throw CRIError.notFound(method: "ContainerStatus", id: id, message: "gone") }
        return status
    }
    func imageStatus(_ image: String) async throws -> ImageInfo? {
        calls.withLock { $0.append(image) }
        return images[image]
    }
}

/// The CRI listing adapter fed listings with the real node's ids and times (pod-a running before
/// the agent; pod-d with its init container started after; api-pods-final.json, containerd.log).
@Suite struct CRIListingAdapterTests {
    static let podA = PodIdentity(namespace: "default", name: "pod-a-reader", uid: "5efcd879-ac24-40ee-8026-d96bfc2064f1")
    static let podD = PodIdentity(namespace: "default", name: "pod-d-init", uid: "e36c87c9-3d49-40a3-a06a-70616177371e")
    static let sandboxA = "fb69da6826bb40e41dabf2e1f5aad408a7afc52d5e5bcfb786ae95a68753ca68"
    static let sandboxD = "8912917f6fba65b1fe1e99581e39dcb4fc9ac98798aeec5effda9e80754367f6"
    static let readerA = "0a1c20773e5db248bda464a8f761835fe409219b3210ac7289be34a62434289e"
    static let initD = "27e561e9a9e899ff9f32d66c0c8a8f695115c26fe9136caad36e30ba9e3b02fc"
    static let readerD = "e0e08e6407ac71968e7d3fc348e08b7b816306ff3cf0ea1cf9f4775c9cefeef3"
    static let readerImageID = "sha256:8fc9f9b1aee1bed77c85340b8bf87e9b96ab9c6251319c5519663b5f1c8fc040"
    static let smallFilesImageID = "sha256:883965595a01eeb06fcc1e2d65eda299168175aaee0b635eb8fbd778633b1153"
    static let images: [String: ImageInfo] = [
        readerImageID: ImageInfo(id: readerImageID, repoTags: ["127.0.0.1:35000/podstart-test/reader:latest"],
                                 repoDigests: ["127.0.0.1:35000/podstart-test/reader@sha256:c19a65d4df3d5c37bbca6b3a8f1612fd01145c0df3753f44f1ee3f110fca6b1a"],
                                 sizeBytes: 0, pinned: false),
        // no ImageStatus answer for the init container's image: the listing's name and no digest
    ]

    static func sandbox(_ id: String, _ pod: PodIdentity, created: String) -> PodSandboxInfo {
        PodSandboxInfo(id: id, pod: pod, attempt: 0, state: .ready, createdAtUnixNs: Recordings.unixNs(created),
                       labels: [:], annotations: [:], runtimeHandler: "", ip: "")
    }

    static func container(_ id: String, sandbox: String, name: String, pod: PodIdentity, image: String, imageRef: String,
                          state: ContainerState) -> ContainerInfo {
        ContainerInfo(id: id, sandboxID: sandbox, name: name, attempt: 0, image: image, imageRef: imageRef, state: state,
                      createdAtUnixNs: 0, labels: ["io.kubernetes.pod.uid": pod.uid, "io.kubernetes.pod.name": pod.name,
                                                   "io.kubernetes.pod.namespace": pod.namespace, "io.kubernetes.container.name": name],
                      annotations: [:])
    }

    static func status(_ id: String, name: String, state: ContainerState, created: String, started: String?, finished: String?,
                       exitCode: Int32 = 0, pid: Int32?) -> ContainerStatusInfo {
        ContainerStatusInfo(id: id, name: name, attempt: 0, state: state, createdAtUnixNs: Recordings.unixNs(created),
                            startedAtUnixNs: started.map(Recordings.unixNs) ?? 0, finishedAtUnixNs: finished.map(Recordings.unixNs) ?? 0,
                            exitCode: exitCode, image: "", imageRef: "", reason: "", message: "", labels: [:], annotations: [:],
                            logPath: "", verbose: ContainerVerboseInfo(sandboxID: nil, pid: pid, snapshotKey: nil, snapshotter: nil))
    }

    @Test func whatRanBeforeIsPreexistingAndANewPodIsReportedOnce() async throws {
        let running = Self.container(Self.readerA, sandbox: Self.sandboxA, name: "reader", pod: Self.podA,
                                     image: Self.readerImageID, imageRef: Self.readerImageID, state: .running)
        let listing = RecordedListing(.init(sandboxes: [Self.sandbox(Self.sandboxA, Self.podA, created: "2026-12-06T03:01:08.836629805")],
                                            containers: [running], statuses: [:]), images: Self.images)
        // the init container's first process: pid 19996, mount namespace 4026532701 (looked up in /proc on a node)
        var adapter = CRIListingAdapter(processes: .init(mountNamespace: { $0 == 19996 ? 4_026_532_701 : nil }, cgroups: { _ in nil }))

        // 1. the agent starts: pod-a runs already
        let first = try await adapter.poll(listing, sightedAt: Recordings.unixNs("2026-12-06T03:01:40.000000000"))
        #expect(first.map(\.line) == [CorrelatorInput.preexisting(uid: Self.podA.uid).line])
        #expect(listing.imageStatusCalls.isEmpty)

        // 2. pod-d's sandbox is up and its init container runs
        let sighted = Recordings.unixNs("2026-12-06T03:01:59.400000000")
        let initRunning = Self.container(Self.initD, sandbox: Self.sandboxD, name: "init", pod: Self.podD,
                                         image: "127.0.0.1:35000/podstart-test/small-files:latest", imageRef: Self.smallFilesImageID, state: .running)
        listing.next(.init(sandboxes: [Self.sandbox(Self.sandboxA, Self.podA, created: "2026-12-06T03:01:08.836629805"),
                                       Self.sandbox(Self.sandboxD, Self.podD, created: "2026-12-06T03:01:58.861765600")],
                           containers: [running, initRunning],
                           statuses: [Self.initD: Self.status(Self.initD, name: "init", state: .running, created: "2026-12-06T03:01:59.257363087",
                                                              started: "2026-12-06T03:01:59.331630685", finished: nil, pid: 19996)]))
        let second = try await adapter.poll(listing, sightedAt: sighted)
        let created = Recordings.unixNs("2026-12-06T03:01:59.257363087")
        #expect(second.map(\.line) == [
            CorrelatorInput.pod(PodSighting(uid: Self.podD.uid, namespace: "default", name: "pod-d-init", createdUnixNs: Recordings.unixNs("2026-12-06T03:01:58.861765600"), source: .cri)),
            .sandbox(SandboxCreation(uid: Self.podD.uid, sandboxID: Self.sandboxD, beginUnixNs: Recordings.unixNs("2026-12-06T03:01:58.861765600"), endUnixNs: sighted, source: .derived)),
            .containerCreated(ContainerCreation(uid: Self.podD.uid, containerID: Self.initD, name: "init", image: "127.0.0.1:35000/podstart-test/small-files:latest",
                              imageDigest: nil, isInit: false, beginUnixNs: created, endUnixNs: created, source: .cri)),
            .containerStarted(ContainerStart(containerID: Self.initD, beginUnixNs: created, endUnixNs: Recordings.unixNs("2026-12-06T03:01:59.331630685"), source: .derived)),
            .containerPid(ContainerInitProcess(containerID: Self.initD, pid: 19996)),
            .containerMountNamespace(ContainerMountNamespace(containerID: Self.initD, mountNamespace: 4_026_532_701)),
        ].map(\.line))
        #expect(adapter.startedContainers == [Self.initD])

        // 3. init exited; the main container is created and started; pod-a is gone
        listing.next(.init(sandboxes: [Self.sandbox(Self.sandboxD, Self.podD, created: "2026-12-06T03:01:58.861765600")],
                           containers: [
                               Self.container(Self.initD, sandbox: Self.sandboxD, name: "init", pod: Self.podD,
                                              image: "127.0.0.1:35000/podstart-test/small-files:latest", imageRef: Self.smallFilesImageID, state: .exited),
                               Self.container(Self.readerD, sandbox: Self.sandboxD, name: "reader", pod: Self.podD,
                                              image: Self.readerImageID, imageRef: Self.readerImageID, state: .running),
                           ],
                           statuses: [
                               Self.initD: Self.status(Self.initD, name: "init", state: .exited, created: "2026-12-06T03:01:59.257363087",
                                                       started: "2026-12-06T03:01:59.331630685", finished: "2026-12-06T03:02:00.753827198", pid: 0),
                               Self.readerD: Self.status(Self.readerD, name: "reader", state: .running, created: "2026-12-06T03:02:00.953932586",
                                                         started: "2026-12-06T03:02:01.012035466", finished: nil, pid: 20112),
                           ]))
        let third = try await adapter.poll(listing, sightedAt: Recordings.unixNs("2026-12-06T03:02:01.100000000"))
        let readerCreated = Recordings.unixNs("2026-12-06T03:02:00.953932586")
        #expect(third.map(\.line) == [
            CorrelatorInput.containerStarted(ContainerStart(containerID: Self.initD, beginUnixNs: created, endUnixNs: Recordings.unixNs("2026-12-06T03:01:59.331630685"), source: .derived)),
            .containerExited(ContainerExit(containerID: Self.initD, atUnixNs: Recordings.unixNs("2026-12-06T03:02:00.753827198"), exitCode: 0)),
            // the image by its tag and manifest digest (ImageStatus), not the image id the kubelet passed
            .containerCreated(ContainerCreation(uid: Self.podD.uid, containerID: Self.readerD, name: "reader", image: "127.0.0.1:35000/podstart-test/reader:latest",
                              imageDigest: "sha256:c19a65d4df3d5c37bbca6b3a8f1612fd01145c0df3753f44f1ee3f110fca6b1a",
                              isInit: false, beginUnixNs: readerCreated, endUnixNs: readerCreated, source: .cri)),
            .containerStarted(ContainerStart(containerID: Self.readerD, beginUnixNs: readerCreated, endUnixNs: Recordings.unixNs("2026-12-06T03:02:01.012035466"), source: .derived)),
            .containerPid(ContainerInitProcess(containerID: Self.readerD, pid: 20112)),
        ].map(\.line))
        #expect(listing.imageStatusCalls == [Self.smallFilesImageID, Self.readerImageID])

        // 4. nothing changed: nothing to say, and ImageStatus is not asked again
        #expect(try await adapter.poll(listing, sightedAt: Recordings.unixNs("2026-12-06T03:02:01.300000000")).isEmpty)
        #expect(listing.imageStatusCalls.count == 2)
    }

    /// A listing cut short by a closed connection (issue #15: a burst's pods lost, no name): the
    /// next listing reports every sandbox and container the cut one had got through, once.
    @Test func aListingCutShortByAClosedConnectionLosesNothing() async throws {
        let listing = RecordedListing(.init(sandboxes: [], containers: [], statuses: [:]), images: Self.images)
        var adapter = CRIListingAdapter(processes: .init(mountNamespace: { _ in nil }, cgroups: { _ in nil }))
        #expect(try await adapter.poll(listing, sightedAt: Recordings.unixNs("2026-12-06T03:01:00.000000000")).isEmpty)

        let reader = Self.container(Self.readerA, sandbox: Self.sandboxA, name: "reader", pod: Self.podA,
                                    image: Self.readerImageID, imageRef: Self.readerImageID, state: .running)
        listing.next(.init(sandboxes: [Self.sandbox(Self.sandboxA, Self.podA, created: "2026-12-06T03:01:08.836629805")], containers: [reader],
                           statuses: [Self.readerA: Self.status(Self.readerA, name: "reader", state: .running, created: "2026-12-06T03:01:09.122874571",
                                                                started: "2026-12-06T03:01:09.180850872", finished: nil, pid: 18950)]))
        listing.closeUnderNextStatusCalls(1)
        await #expect(throws: CRIError.self) {
            try await adapter.poll(listing, sightedAt: Recordings.unixNs("2026-12-06T03:01:09.200000000"))
        }
        let sighted = Recordings.unixNs("2026-12-06T03:01:09.400000000")
        let again = try await adapter.poll(listing, sightedAt: sighted)
        #expect(again.compactMap(\.podUID).filter { $0 == Self.podA.uid }.count == 3, "pod, sandbox, container: \(again.map(\.line))")
        #expect(again.first.map(\.line) == CorrelatorInput.pod(PodSighting(uid: Self.podA.uid, namespace: "default", name: "pod-a-reader",
                                                                          createdUnixNs: Recordings.unixNs("2026-12-06T03:01:08.836629805"), source: .cri)).line)
        #expect(again.contains { if case .containerStarted(let s) = $0 { return s.containerID == Self.readerA } else { return false } })
        #expect(try await adapter.poll(listing, sightedAt: sighted + 200_000_000).isEmpty, "reported once")
    }
}
