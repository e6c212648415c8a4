/// Typed names of what the eBPF objects hold. The BPFObjectBuilder plugin runs
/// `bpftool gen skeleton` on every object it compiles and writes `BPFSkeleton.<Name>` (see the
/// generated `BPFSkeleton+<name>.swift` files in the build directory): its maps and programs as
/// enum cases, its read-only globals as `BPFGlobal`s of their C type. Code that reaches a map,
/// program or global through them names only what the object has: a typo, a renamed map or a
/// global whose C type changed fails the build, not the load.
enum BPFSkeleton {}

/// A map of one object, by the name the object gives it.
protocol BPFMapName: RawRepresentable, Hashable, Sendable where RawValue == String {}

/// A program of one object, by its function name.
protocol BPFProgramName: RawRepresentable, Hashable, Sendable where RawValue == String {}

/// A `const volatile` global of an object (its .rodata), set before load, with the Swift type of
/// its C type.
struct BPFGlobal<Value: BitwiseCopyable>: Sendable {
    let name: String
}

/// The maps of an object that has none.
enum BPFNoMap: BPFMapName {
    init?(rawValue: String) { nil }
    var rawValue: String { switch self {} }
}

/// One compiled object: its name, its embedded bytes (base64) and its names.
protocol BPFObjectSkeleton {
    associatedtype Map: BPFMapName
    associatedtype Program: BPFProgramName
    static var objectName: String { get }
    static var embeddedObject: String { get }
}

/// The maps every object built on common.bpf.h declares (maps.bpf.h). The process object, loaded
/// first, creates them; the others are made to use its instances by name.
protocol CommonMaps: BPFMapName {
    static var ps_events: Self { get }
    static var ps_stats: Self { get }
    static var ps_wake_state: Self { get }
    static var ps_ignored_mntns: Self { get }
    static var ps_watched_mntns: Self { get }
    static var ps_runtime_pids: Self { get }
    static var ps_filter_generation: Self { get }
    static var ps_verdict_cache: Self { get }
    static var ps_scratch_map: Self { get }
}

extension CommonMaps {
    /// Every map the objects share (one instance, created by the first object loaded).
    static var shared: [Self] {
        [.ps_events, .ps_stats, .ps_ignored_mntns, .ps_watched_mntns, .ps_runtime_pids, .ps_scratch_map,
         .ps_filter_generation, .ps_verdict_cache, .ps_wake_state]
    }
}

/// The tunables every object built on common.bpf.h has (maps.bpf.h), with their C types.
protocol CommonGlobals {
    static var ps_host_mntns: BPFGlobal<UInt32> { get }
    static var ps_only_watched: BPFGlobal<UInt32> { get }
    static var ps_wakeup_bytes: BPFGlobal<UInt64> { get }
    static var ps_trace_runtime: BPFGlobal<UInt32> { get }
}

/// An object a `KernelProbeSession` loads: built on common.bpf.h. The generated skeleton of every
/// object with the ring buffer declares it (and its Map and Global), so an object that lacks a
/// shared map or tunable, or has one of another type, fails the build.
protocol PodstartObjectSkeleton: BPFObjectSkeleton where Map: CommonMaps {
    associatedtype Global: CommonGlobals
}
