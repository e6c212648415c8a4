import ArgumentParser
import ContainerRuntime
import Foundation
import KernelProbes
import PodstartCore
import UnixSignals

/// `podstart probe`: the raw view of what the kernel probes see, like opensnoop or biosnoop.
/// Attaches every requested family for the whole run.
struct ProbeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe",
        abstract: "Print live kernel events (exec, open, read, block, write) of containers.",
        discussion: """
            By default only containers that start after the probe began are shown (new mount \
            namespaces); --all-containers shows running ones too; --mntns limits to one. The host's \
            own processes are never shown, the container runtime's (containerd, runc, shims, CNI \
            plugins) are. Each event names its container's namespace, pod and container (from CRI; \
            "-" for the host and for containers the runtime does not know); --namespace, --pod and \
            --container keep only the events of containers so named (exact names, repeatable).
            """
    )

    enum Output: String, ExpressibleByArgument, CaseIterable {
        case table, json
    }

    @Option(name: [.short, .long], help: "table (one row per event) or json (one object per event per line).")
    var output: Output = .table

    @Option(help: "Stop after this many seconds (default: until Ctrl-C).")
    var duration: Double?
    static let maxDurationSeconds: Double = 30 * 86_400

    @Option(help: "Only this mount namespace (inode number, as in /proc/PID/ns/mnt).")
    var mntns: [UInt32] = []

    @Flag(help: "Every container, including those already running.")
    var allContainers = false

    @Option(help: "Comma-separated kinds: exec,open,read,block,write,fuse (default: all).")
    var kinds: String = "exec,open,read,block,write,fuse"

    @Option(help: "Only events of pods in this namespace (exact name, repeatable).")
    var namespace: [String] = []

    @Option(help: "Only events of pods of this name (exact name, repeatable).")
    var pod: [String] = []

    @Option(help: "Only events of containers of this name (exact name, repeatable).")
    var container: [String] = []

    @Option(name: .customLong("cri-endpoint"), help: "CRI socket that names containers (default: $PODSTART_CRI_ENDPOINT or unix:///run/containerd/containerd.sock).")
    var criEndpoint: String?

    func validate() throws {
        if !mntns.isEmpty && allContainers {
            throw ValidationError("--mntns and --all-containers exclude each other")
        }
        if let duration, !(duration > 0 && duration <= Self.maxDurationSeconds) {
            throw ValidationError("--duration must be more than 0 and at most \(Int(Self.maxDurationSeconds)) seconds (30 days)")
        }
        _ = try parsedFamilies()
        for (flag, names) in [("--namespace", namespace), ("--pod", pod), ("--container", container)] where names.contains(where: \.isEmpty) {
            throw ValidationError("\(flag) wants a name")
        }
        if let criEndpoint { _ = try CRIEndpoint(parsing: criEndpoint) }
    }

    /// The events kept: all without a name filter, else those of containers whose namespace, pod
    /// and container name each match a given name (a host process matches no filter).
    var ownerFilter: OwnerFilter { OwnerFilter(namespaces: Set(namespace), pods: Set(pod), containers: Set(container)) }

    func parsedFamilies() throws -> Set<ProbeFamily> {
        var families: Set<ProbeFamily> = [.process]  // always: it announces and follows processes
        for kind in kinds.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !kind.isEmpty {
            guard let family = ProbeFamily.parse(kind: kind) else {
                throw ValidationError("unknown kind '\(kind)'; use exec, open, read, block, write")
            }
            families.insert(family)
        }
        return families
    }

    func run() async throws {
        var config = KernelProbeSession.Configuration()
        config.filter = allContainers ? .allContainers : (mntns.isEmpty ? .startingContainers : .only(Set(mntns)))
        let session = try KernelProbeSession(configuration: config)
        defer { session.close() }
        let wanted = try parsedFamilies()
        let showExec = kinds.split(separator: ",").contains { ProbeFamily.parse(kind: String($0)) == .process }
        try session.attach(wanted)
        for (program, reason) in session.disabledPrograms.sorted(by: { $0.key < $1.key }) {
            FileHandle.standardError.write(Data("podstart: \(program) off: \(reason)\n".utf8))
        }
        let clock = WallClock.measure()
        let printer = EventPrinter(json: output == .json, clock: clock, showProcessEvents: showExec)
        let endpoint = try criEndpoint.map { try CRIEndpoint(parsing: $0) } ?? CRIEndpoint.fromEnvironment()
        let resolver = ContainerResolver(endpoint: endpoint, pollInterval: .milliseconds(100))
        let owners = EventOwners(resolver: resolver, hostMountNamespace: session.hostMountNamespace)
        let filter = ownerFilter
        let resolving = Task {
            do { try await resolver.run() } catch where !Task.isCancelled {
                FileHandle.standardError.write(Data("podstart: cannot name containers through CRI at \(endpoint) (\(error)); events show no pod\(filter.isEmpty ? "" : ", and the name filters keep none")\n".utf8))
            } catch {}
        }
        defer { resolving.cancel() }
        try? await resolver.refresh()  // what already runs is named from the first event
        let stream = try session.events()
        let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm)

        let consumer = Task {
            for await batch in stream {
                for event in batch.decode() {
                    let owner = await owners.owner(of: event)
                    if filter.keeps(owner) { printer.print(event, owner: owner) }
                }
            }
        }
        FileHandle.standardError.write(Data("podstart: probing (\(wanted.map(\.rawValue).sorted().joined(separator: ",")))\n".utf8))
        // until SIGINT/SIGTERM or the end of --duration, whichever comes first
        await withTaskGroup(of: Void.self) { group in
            group.addTask { for await _ in signals { return } }
            if let duration { group.addTask { try? await Task.sleep(for: .nanoseconds(Int64(duration * 1e9))) } }
            await group.next()
            group.cancelAll()
        }
        session.detach(wanted)
        for range in try session.drainReadRanges() where wanted.contains(.reads) {
            let owner = await owners.owner(of: .readRange(range))
            if filter.keeps(owner) { printer.print(.readRange(range), owner: owner) }
        }
        if wanted.contains(.writes), filter.isEmpty {
            for total in try session.writeTotals() { printer.printWriteTotal(total) }
        }
        let stats = try? session.statistics()
        session.close()
        await consumer.value
        if let stats {
            let summary = ProbeProgram.allCases.map { "\($0.rawValue)=\(stats[$0]!.events)/\(stats[$0]!.lost) lost" }
            FileHandle.standardError.write(Data("podstart: events per program: \(summary.joined(separator: " "))\n".utf8))
        }
    }
}

/// Prints events as a table row or a JSON line.
struct EventPrinter: Sendable {
    var json: Bool
    var clock: WallClock
    var showProcessEvents: Bool

    func print(_ event: KernelEvent, owner: ContainerMetadata? = nil) {
        switch event {
        case .exec, .fork, .exit: if !showProcessEvents { return }
        default: break
        }
        if json {
            var object = event.json(clock: clock)
            if case .object(var fields) = object {
                fields += [("namespace", owner?.pod.map { .string($0.namespace) } ?? .null),
                           ("pod", owner?.pod.map { .string($0.name) } ?? .null),
                           ("container", owner.map { .string($0.containerName) } ?? .null)]
                object = .object(fields)
            }
            Swift.print(object.rendered())
            return
        }
        let time = Self.timeOfDay(clock.unixNanoseconds(monotonic: event.timestampNs))
        let row: String
        switch event {
        case .exec(let e): row = "EXEC  \(Self.who(e.task)) \(e.path.path) \(e.arguments.dropFirst().joined(separator: " "))"
        case .fork(let e): row = "FORK  \(Self.who(e.parent)) child=\(e.childPid)"
        case .exit(let e): row = "EXIT  \(Self.who(e.task)) status=\(e.exitStatus) signal=\(e.signal)"
        case .open(let e):
            let result = e.result >= 0 ? "fd=\(e.result)" : "err=\(-e.result)"
            row = "OPEN  \(Self.who(e.task)) \(result) \(e.path?.path ?? e.rawPath)"
        case .readRange(let e):
            row = "READ  pid=\(e.pid) mntns=\(e.mountNamespace) \(e.file.device):\(e.file.inode) off=\(e.offsetBytes) len=\(e.lengthBytes) \(e.source.rawValue)"
        case .blockIO(let e):
            row = "BLOCK pid=\(e.pid) \(e.comm) \(e.device) \(e.operation.rawValue) sector=\(e.sector) bytes=\(e.bytes) lat=\(e.latencyNs / 1000)us"
        case .writeBegin(let e): row = "WRITE \(Self.who(e.task)) \(e.path.path)"
        case .fuseRequest(let e):
            let file = e.file.map { " file=\($0.device):\($0.inode)" } ?? ""
            row = "FUSE  \(Self.who(e.task)) conn=\(e.connection) \(e.opcodeName) reply=\(e.replyBytes) err=\(e.error) wait=\(e.durationNs / 1000)us\(file)"
        }
        Swift.print("\(time) \(Self.owner(owner)) \(row)")
    }

    /// `namespace/pod/container`, `-` for the host and unknown containers.
    static func owner(_ owner: ContainerMetadata?) -> String {
        guard let owner else { return "-" }
        guard let pod = owner.pod else { return "-/-/\(owner.containerName)" }
        return "\(pod.namespace)/\(pod.name)/\(owner.containerName)"
    }

    func printWriteTotal(_ total: WriteTotal) {
        if json {
            Swift.print(JSON.object([
                ("kind", .string("write-total")), ("pid", .uint(UInt64(total.pid))),
                ("mntns", .uint(UInt64(total.mountNamespace))), ("dev", .string(total.file.device.description)),
                ("ino", .uint(total.file.inode)), ("bytes", .uint(total.bytes)), ("writes", .uint(total.writes)),
                ("firstUnixNano", .int(clock.unixNanoseconds(monotonic: total.firstNs))),
                ("lastUnixNano", .int(clock.unixNanoseconds(monotonic: total.lastNs))),
                ("runtime", .bool(total.isRuntimeProcess)),
            ]).rendered())
        } else {
            Swift.print("WRITE-TOTAL pid=\(total.pid) \(total.file.device):\(total.file.inode) bytes=\(total.bytes) writes=\(total.writes)")
        }
    }

    static func who(_ t: TaskContext) -> String { "pid=\(t.pid) \(t.comm) mntns=\(t.mountNamespace)" }

    static func timeOfDay(_ unixNano: Int64) -> String {
        let seconds = unixNano / 1_000_000_000
        let micros = (unixNano % 1_000_000_000) / 1000
        let s = seconds % 86_400
        return String(format: "%02d:%02d:%02d.%06d", s / 3600, (s / 60) % 60, s % 60, micros)
    }
}

/// `podstart probe --namespace/--pod/--container`: exact names, each a set (empty: any).
struct OwnerFilter: Sendable {
    var namespaces: Set<String>
    var pods: Set<String>
    var containers: Set<String>

    var isEmpty: Bool { namespaces.isEmpty && pods.isEmpty && containers.isEmpty }

    func keeps(_ owner: ContainerMetadata?) -> Bool {
        if isEmpty { return true }
        guard let owner, let pod = owner.pod else { return false }
        return (namespaces.isEmpty || namespaces.contains(pod.namespace)) && (pods.isEmpty || pods.contains(pod.name))
            && (containers.isEmpty || containers.contains(owner.containerName))
    }
}
