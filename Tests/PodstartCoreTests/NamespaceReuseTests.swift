import PodstartCore
import Testing

/// Two starts back to back: the first pod's container exits while its start still waits out its
/// grace, and the kernel hands its mount namespace's number to the second pod's container
/// (issue #19: the first pod's accesses were filed under the second, `layerDigest` null). Each
/// start keeps its own accesses whatever order the sources deliver the reuse in.
@Suite("Namespace reuse")
struct NamespaceReuseTests {
    typealias T = CorrelatorTests
    static let ns: UInt32 = 4026533100

    static func task(pid: UInt32) -> TaskContext {
        TaskContext(pid: pid, tid: pid, parentPid: 40, namespacePid: 1, mountNamespace: ns, pidNamespace: 3, cgroupID: 1, comm: "app")
    }

    static func exec(_ at: Int64, pid: UInt32, _ path: String) -> CorrelatorInput {
        .kernel(.exec(ExecEvent(timestampNs: T.mono(at), task: task(pid: pid), file: T.file(UInt64(pid)), path: ResolvedPath(path: path, truncated: false),
                                filename: path, arguments: [path], argumentsTruncated: false, isRuntimeProcess: false, oldPid: pid)))
    }

    static func open(_ at: Int64, pid: UInt32, _ path: String, inode: UInt64) -> CorrelatorInput {
        .kernel(.open(OpenEvent(timestampNs: T.mono(at), task: task(pid: pid), syscall: .openat, result: 3, directoryFD: -100, openFlags: 0,
                                rawPath: path, rawPathTruncated: false, path: ResolvedPath(path: path, truncated: false),
                                file: T.file(inode), isRuntimeProcess: false)))
    }

    static func exit(_ at: Int64, pid: UInt32) -> CorrelatorInput {
        .kernel(.exit(ExitEvent(timestampNs: T.mono(at), task: task(pid: pid), waitStatus: 0, isRuntimeProcess: false)))
    }

    static func pod(_ uid: String, container: String, at t: Int64) -> [CorrelatorInput] {
        [.pod(PodSighting(uid: uid, namespace: "default", name: uid, createdUnixNs: T.ms(t), source: .cri)),
         .containerCreated(ContainerCreation(uid: uid, containerID: container, name: "main", image: "reader:latest", imageDigest: "sha256:d",
                                             isInit: false, beginUnixNs: T.ms(t + 100), endUnixNs: T.ms(t + 110), source: .cri)),
         .containerStarted(ContainerStart(containerID: container, beginUnixNs: T.ms(t + 110), endUnixNs: T.ms(t + 150), source: .cri))]
    }

    static func link(_ container: String) -> CorrelatorInput {
        .containerMountNamespace(ContainerMountNamespace(containerID: container, mountNamespace: ns))
    }

    /// Pod A (pid 100) reads /a, becomes ready at 0.3 s and is removed at 0.5 s; pod B (pid 200)
    /// starts at 0.6 s in the same namespace number and reads /b; the inputs of B's link come
    /// where `linkAt` says (after its exec, as the hub sends it; or before A's exit, as a CRI
    /// listing that looked at /proc ahead of the kernel's records delivers it).
    static func run(linkBFirst: Bool) throws -> [String: PodStartTrace] {
        var c = Correlator(clock: T.clock)
        var inputs = pod("a", container: "ca", at: 0)
        inputs += [exec(160, pid: 100, "/reader"), link("ca"), open(170, pid: 100, "/a", inode: 11),
                   .ready(PodReadiness(uid: "a", atUnixNs: T.ms(300), source: .prober))]
        inputs += pod("b", container: "cb", at: 550)
        if linkBFirst { inputs.append(link("cb")) }
        inputs += [exit(500, pid: 100), exec(710, pid: 200, "/reader")]
        if !linkBFirst { inputs.append(link("cb")) }
        inputs += [open(720, pid: 200, "/b", inode: 12), .ready(PodReadiness(uid: "b", atUnixNs: T.ms(900), source: .prober)),
                   .tick(nowUnixNs: T.ms(10_000))]
        var out: [PodStartTrace] = []
        for input in inputs { out += c.ingest(input) }
        return Dictionary(uniqueKeysWithValues: out.map { ($0.pod.uid, $0) })
    }

    @Test(arguments: [false, true])
    func backToBackStartsInOneNamespaceNumberKeepTheirOwnAccesses(linkBFirst: Bool) throws {
        let traces = try Self.run(linkBFirst: linkBFirst)
        let a = try #require(traces["a"]?.containers.first)
        let b = try #require(traces["b"]?.containers.first)
        #expect(a.accesses.map(\.path) == ["/reader", "/a"], "pod a: \(a.accesses.map(\.path))")
        #expect(b.accesses.map(\.path) == ["/reader", "/b"], "pod b: \(b.accesses.map(\.path))")
        #expect(a.firstExec == T.ms(160) && b.firstExec == T.ms(710))
    }

    /// What the resolver is told decides which overlay names each file's layer: the first start
    /// is asked about as a container whose init exited (its overlay is the one kept at the exit),
    /// the second as the namespace's live holder.
    @Test(arguments: [false, true])
    func theResolverIsAskedAboutTheRightHolderOfTheNumber(linkBFirst: Bool) throws {
        var asked: [String: Bool] = [:]
        var c = Correlator(clock: T.clock)
        var inputs = Self.pod("a", container: "ca", at: 0)
        inputs += [Self.exec(160, pid: 100, "/reader"), Self.link("ca"), .ready(PodReadiness(uid: "a", atUnixNs: T.ms(300), source: .prober))]
        inputs += Self.pod("b", container: "cb", at: 550)
        if linkBFirst { inputs.append(Self.link("cb")) }
        inputs += [Self.exit(500, pid: 100), Self.exec(710, pid: 200, "/reader")]
        if !linkBFirst { inputs.append(Self.link("cb")) }
        inputs += [.ready(PodReadiness(uid: "b", atUnixNs: T.ms(900), source: .prober)), .tick(nowUnixNs: T.ms(10_000))]
        for input in inputs {
            _ = c.ingest(input) { container, _, _ in
                asked[container.id] = container.initExited
                return nil
            }
        }
        #expect(asked == ["ca": true, "cb": false])
    }
}
