// swift-tools-version: 6.0
// podstart: where did each pod's startup time go, and which bytes of its image did it need?
// The target list mirrors the data flow: sources (KernelProbes, ContainerRuntime, KubeletSources)
// produce PodstartCore events; the correlator in PodstartCore builds timelines; sinks (Exporter,
// StateStore, AccessProfiles) read them. PodstartAgent runs them as services (one per source,
// supervised, plus the hub that feeds the correlator and the sinks); `podstart` is the product
// CLI (commands and their options only); `podstart-bench` holds the benchmarks and test tools.
import PackageDescription

let package = Package(
    name: "podstart",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "podstart", targets: ["podstart"]),
        .executable(name: "podstart-bench", targets: ["podstart-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/grpc/grpc-swift-2", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport", from: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
    ],
    targets: [
        // Pure Swift: event types, phase model, correlator, attribution. No I/O but the clocks and
        // ProcessNamespace (/proc/PID/ns/mnt), the one reader KernelProbes and ContainerRuntime share.
        .target(name: "PodstartCore"),

        // C shim over libbpf: the event-struct header shared with bpf/, and small wrappers for
        // what libbpf offers only as macros or variadic callbacks.
        .target(
            name: "CPodstartBPF",
            linkerSettings: [.linkedLibrary("bpf"), .linkedLibrary("elf"), .linkedLibrary("z")]
        ),
        // Compiles bpf/*.bpf.c with the toolchain's clang and embeds the objects in KernelProbes.
        .plugin(name: "BPFObjectBuilder", capability: .buildTool()),
        .target(
            name: "KernelProbes",
            dependencies: ["PodstartCore", "CPodstartBPF"],
            plugins: ["BPFObjectBuilder"]
        ),

        // The one HTTP(S) client of the sources and sinks that talk to servers (kubelet, API
        // server, OCI registries), on async-http-client: CA bundle, client certificate, bearer
        // token file, size caps, timeouts, and no credentials to another host on a redirect.
        .target(
            name: "HTTPTransport",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),

        .target(name: "KubeletSources", dependencies: ["PodstartCore", "HTTPTransport", .product(name: "Yams", package: "Yams")]),

        // CRI client (gRPC over the runtime's unix socket; generated code under Generated/, see
        // scripts/gen-proto.sh), kubelet-like pod starts, and ContainerResolver: the one pid /
        // mount namespace / cgroup → container → pod path of the agent, `trace` and `probe`.
        .target(
            name: "ContainerRuntime",
            dependencies: [
                "PodstartCore",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]
        ),

        // Sink: one pod start rendered for people: the waterfall table, Chrome Trace Event JSON and
        // a self-contained HTML page (`trace --output`, the agent's /v1/pods/{uid}?format=html).
        .target(name: "TraceViews", dependencies: ["PodstartCore"]),

        // Sinks. Exporter: the Prometheus registry and the agent's HTTP API; StateStore: timelines
        // and access traces in SQLite, surviving restarts.
        .target(
            name: "Exporter",
            dependencies: [
                "PodstartCore",
                "TraceViews",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Per-image access profiles merged over many starts, prefetch plans, the lazy-pull
        // formats' lists (eStargz, Nydus, overlaybd) and their checkers. Pure, apart from
        // reading trace files and writing lists atomically, and sharing profiles through OCI
        // registries (OCIRegistryClient over HTTPTransport, ProfileArtifact; SHA-256 digests from
        // swift-crypto).
        .target(name: "AccessProfiles", dependencies: ["PodstartCore", "HTTPTransport", .product(name: "Crypto", package: "swift-crypto")]),
        .target(
            name: "StateStore",
            dependencies: [
                "PodstartCore",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // The node agent as a library of services: each source (CRI listing, containerd events,
        // log files, kubelet metrics, kernel probes) a ServiceLifecycle `Service` under one
        // supervisor (retry, backoff, error counting, log once per outage), the hub that feeds the
        // correlator and the sinks, and the `ServiceGroup` that stops them gracefully; also one
        // traced pod start (`podstart trace`).
        .target(
            name: "PodstartAgent",
            dependencies: [
                "PodstartCore",
                "KernelProbes",
                "KubeletSources",
                "HTTPTransport",
                "ContainerRuntime",
                "Exporter",
                "StateStore",
                "AccessProfiles",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),

        .executableTarget(
            name: "podstart",
            dependencies: [
                "PodstartAgent",
                "PodstartCore",
                "KernelProbes",
                "KubeletSources",
                "ContainerRuntime",
                "Exporter",
                "StateStore",
                "AccessProfiles",
                "TraceViews",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),

        // Benchmarks (`podstart-bench probes|starts|analyze|metrics|correlator|agent`) and the
        // hidden tools tests and scripts run (bench-loop, state-write-loop, trim-inputs): not in
        // the product binary. Bench-only helpers live in PodstartBenchKit.
        .target(
            name: "PodstartBenchKit",
            dependencies: [  // the churn bench's API server (HTTPS list + watch of one node's pods)
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        .executableTarget(
            name: "podstart-bench",
            dependencies: [
                "PodstartAgent",
                "PodstartBenchKit",
                "PodstartCore",
                "KernelProbes",
                "KubeletSources",
                "HTTPTransport",  // the churn bench reads the agent's /metrics
                "ContainerRuntime",
                "Exporter",
                "StateStore",
                "TraceViews",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),  // the soak's hub logs nowhere
            ]
        ),

        .testTarget(
            name: "PodstartCoreTests",
            dependencies: ["PodstartCore", "PodstartTestSupport"],
            exclude: ["Fixtures"]  // recorded agent input streams and the timelines they gave, read by path
        ),
        .testTarget(
            name: "ExporterTests",
            dependencies: [
                "Exporter",
                "PodstartCore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                "PodstartTestSupport",
            ]
        ),
        .testTarget(
            name: "StateStoreTests",
            dependencies: [
                "StateStore",
                "PodstartCore",
                "Exporter",  // the API served from the store, as the agent wires them
                .product(name: "Logging", package: "swift-log"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ]
        ),
        // What integration tests of several modules share: the local containerd + registry
        // (scripts/localenv.sh) and the built `podstart` binary.
        // …and the TLS test server that plays a kubelet or an API server on loopback (NIO, a test CA).
        .target(name: "PodstartTestSupport", dependencies: [
            "ContainerRuntime", "HTTPTransport", "PodstartCore",
            "PodstartBenchKit",  // free loopback ports, as the benches take them
            .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "NIOSSL", package: "swift-nio-ssl"),
        ], path: "Tests/Support"),
        .testTarget(
            name: "AccessProfilesTests",
            dependencies: ["AccessProfiles", "HTTPTransport", "PodstartCore", "PodstartTestSupport", "StateStore"],
            exclude: ["Fixtures"]  // recorded `podstart trace --output json` runs, read through #filePath
        ),
        .testTarget(
            name: "ContainerRuntimeTests",
            dependencies: ["ContainerRuntime", "PodstartCore", "PodstartTestSupport",
                           "KernelProbes",  // real exec records for membership after a process is gone
                           "PodstartBenchKit"],  // the throttling registry relay the benches use too
            exclude: ["Fixtures"]  // recorded /proc and mountinfo samples, read by the tests from the source tree
        ),
        // The agent's services without root: each source adapter fed recorded inputs (the real
        // cluster's containerd and kubelet logs, CRI listings, decoded containerd events), the
        // supervisor's retry and counting, the kernel source's shutdown order.
        .testTarget(
            name: "PodstartAgentTests",
            dependencies: [
                "PodstartAgent", "PodstartCore", "ContainerRuntime", "KubeletSources", "Exporter", "StateStore", "KernelProbes",
                "HTTPTransport", "PodstartTestSupport",  // the test API server and kubelet replaying the real node's recordings
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),  // containerd event envelopes
            ],
            exclude: ["Fixtures"]  // the real node's containerd.log and kubelet.log (reference/real-cluster-1.28)
        ),
        // `podstart agent` as a process: real containerd, CRI pod starts, restarts, kill -9, lost sockets.
        // APILoadTests seeds the state store directly before the agent opens it.
        .testTarget(name: "AgentTests", dependencies: ["ContainerRuntime", "PodstartCore", "PodstartTestSupport", "StateStore"]),
        // deploy/, dashboards/, alerts/ and the agent's OCI image, checked with the real tools
        // (kubernetes-validate, promtool, umoci/skopeo, containerd, Prometheus).
        .testTarget(name: "DeployTests", dependencies: ["ContainerRuntime", "PodstartCore", "PodstartTestSupport"]),
        // The HTML page in a real browser (Debian's chromium, headless): DOM and screenshot.
        .testTarget(
            name: "TraceViewsTests",
            dependencies: ["TraceViews", "PodstartCore"],
            exclude: ["Fixtures"]  // recorded traces, read through #filePath
        ),
        .testTarget(
            name: "KernelProbesTests",
            dependencies: ["KernelProbes", "PodstartCore"],
            exclude: ["Fixtures"]  // C sources of test workloads, compiled by the tests themselves
        ),
        .testTarget(
            name: "KubeletSourcesTests",
            dependencies: [
                "KubeletSources",
                "PodstartBenchKit",  // the large journal `podstart-bench analyze` reads
                "HTTPTransport",
                "PodstartCore",
                "PodstartTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
    ]
)
