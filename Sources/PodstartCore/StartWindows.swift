/// Decides when the hot-path probes (opens, reads, block, writes) must be attached: only while
/// some container is starting. Pure logic, driven by events and a clock; KernelProbes applies
/// its decisions.
///
/// A window opens at the runtime's first sign of a start (an exec or fork of containerd's
/// children: runc, shims, CNI plugins — they come well before the container's first exec, and
/// before the pull when the kubelet creates the sandbox first) or at an exec inside a mount
/// namespace nobody has seen. Each container's window closes when it is known ready, or
/// `startupWindowNs` after its first exec; runtime activity that leads to no container closes
/// after `runtimeIdleNs`. When no window is open the hooks are detached, and each finished
/// container's mount namespace joins the ignored set so that it is never traced again.
public struct StartWindowTracker: Sendable {
    public struct Configuration: Sendable {
        /// How long after a container's first exec its window stays open when no readiness is known.
        public var startupWindowNs: UInt64 = 10_000_000_000
        /// How long runtime activity keeps the hooks attached without any container exec.
        public var runtimeIdleNs: UInt64 = 15_000_000_000
        public init() {}
    }

    public enum Decision: Hashable, Sendable {
        /// Attach the start hooks (first window opened).
        case attach
        /// Detach the start hooks (last window closed).
        case detach
        /// This container's start is over: ignore its mount namespace from now on (unless it
        /// `exited`: then the namespace is gone).
        case finished(mountNamespace: UInt32, reason: FinishReason)
    }

    public enum FinishReason: String, Hashable, Sendable {
        /// `exited`: the container's init exited, and its mount namespace with it; it is not
        /// ignored, because the kernel reuses the number for the next container.
        case ready, startupWindowElapsed, exited
    }

    public let configuration: Configuration
    public private(set) var runtimeActiveUntilNs: UInt64 = 0
    /// Open container windows: mount namespace → when the window closes.
    public private(set) var containers: [UInt32: UInt64] = [:]
    public private(set) var attached = false
    private var finishedNamespaces: Set<UInt32> = []

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    public var isOpen: Bool { attached }

    /// Feeds one kernel event; returns what to do.
    public mutating func observe(_ event: KernelEvent, hostMountNamespace: UInt32) -> [Decision] {
        let now = event.timestampNs
        switch event {
        case .exec(let e) where e.task.mountNamespace != hostMountNamespace:
            let ns = e.task.mountNamespace
            if !finishedNamespaces.contains(ns), containers[ns] == nil {
                containers[ns] = now + configuration.startupWindowNs
            }
        case .exec(let e) where e.isRuntimeProcess:
            runtimeActiveUntilNs = max(runtimeActiveUntilNs, now + configuration.runtimeIdleNs)
        case .fork(let e) where e.isRuntimeProcess:
            runtimeActiveUntilNs = max(runtimeActiveUntilNs, now + configuration.runtimeIdleNs)
        case .exit(let e) where e.task.namespacePid == 1 && e.task.mountNamespace != hostMountNamespace:
            // The container's init is gone, and its mount namespace with it: the kernel reuses the
            // inode number for the next container, which must start with a clean slate (the
            // kernel side has already taken it out of its ignored set).
            let ns = e.task.mountNamespace
            finishedNamespaces.remove(ns)
            if containers.removeValue(forKey: ns) != nil {
                return [.finished(mountNamespace: ns, reason: .exited)] + settle(now: now)
            }
        default:
            break
        }
        return settle(now: now)
    }

    /// The container in `mountNamespace` became ready: its window closes now.
    public mutating func markReady(mountNamespace ns: UInt32, nowNs: UInt64) -> [Decision] {
        var decisions: [Decision] = []
        if containers.removeValue(forKey: ns) != nil {
            finishedNamespaces.insert(ns)
            decisions.append(.finished(mountNamespace: ns, reason: .ready))
        }
        return decisions + settle(now: nowNs)
    }

    /// Runtime activity seen by a source other than the kernel (a CRI call, a pull starting).
    public mutating func noteRuntimeActivity(nowNs: UInt64) -> [Decision] {
        runtimeActiveUntilNs = max(runtimeActiveUntilNs, nowNs + configuration.runtimeIdleNs)
        return settle(now: nowNs)
    }

    /// Advances time without an event (call it periodically).
    public mutating func tick(nowNs: UInt64) -> [Decision] { settle(now: nowNs) }

    private mutating func settle(now: UInt64) -> [Decision] {
        var decisions: [Decision] = []
        for (ns, closesAt) in containers.sorted(by: { $0.key < $1.key }) where closesAt <= now {
            containers.removeValue(forKey: ns)
            finishedNamespaces.insert(ns)
            decisions.append(.finished(mountNamespace: ns, reason: .startupWindowElapsed))
        }
        let wantAttached = !containers.isEmpty || runtimeActiveUntilNs > now
        if wantAttached != attached {
            attached = wantAttached
            decisions.append(wantAttached ? .attach : .detach)
        }
        return decisions
    }
}
