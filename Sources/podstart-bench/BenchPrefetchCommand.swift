import ArgumentParser
import ContainerRuntime
import Foundation
import PodstartBenchKit
import PodstartCore

/// `podstart-bench prefetch`: what a prefetch list buys a lazily pulled start. Cold starts of the
/// python app (scripts/build-python-image.sh) through a throttled registry, in a mode none of the
/// profiled starts used, for five variants of the same image:
///
/// - `gzip`: the image as built, on overlayfs (the whole image is downloaded before the start);
/// - `estargz`: converted to eStargz without a prefetch list, on the stargz snapshotter;
/// - `optimize`: eStargz from `ctr-remote image optimize` (the peer: one sandboxed run of the
///   default command, recorded with fanotify);
/// - `podstart`: eStargz converted with podstart's record learned from N real starts
///   (`podstart profile export --format estargz`);
/// - `ideal`: eStargz converted with the record of the held-out start itself, the list no list
///   learned beforehand can beat: what is left between it and `local` is the lazy snapshotter's
///   own cost, which no prefetch list removes;
/// - `local`: the gzip image already present (the floor).
///
/// Each variant's time to ready is also broken into the start's steps (the CRI calls and the
/// wait from the last call to ready), medians, to show where a lazy start spends what `local` does not.
struct BenchPrefetchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prefetch",
        abstract: "Cold starts of the python app through a throttled registry: gzip, eStargz, ctr-remote optimize, podstart's list, the held-out start's own list, already local.",
        discussion: """
            Needs the local environment with its lazy-pull side and the python app image: \
            scripts/localenv.sh stargz-up; scripts/build-python-image.sh; eval "$(scripts/localenv.sh env)". \
            Time to ready (RunPodSandbox to the app's /tmp/ready) and bytes the registry sent through \
            the throttling proxy, medians of --runs cold starts of each variant, interleaved. \
            Each variant's median time of each step of the start (its CRI calls, then the wait to \
            ready) says where a lazy start spends what the local one does not; `ideal` (the list of \
            the held-out start itself) is what no learned list can beat. \
            Targets: podstart's ready time <= optimize's and <= 1.3 x local; podstart's prefetched \
            bytes (its fetched bytes) <= 1.25 x what the held-out start read.
            """
    )

    @Option(help: "The python app image (default: $PODSTART_TEST_IMAGES/python-app:latest).")
    var image: String?

    @Option(help: "Cold starts per variant.")
    var runs = 3

    @Option(help: "App modes of the starts podstart's profile learns from, comma-separated.")
    var profileModes = "json,csv,sqlite,email,xml"

    @Option(help: "App mode of the measured starts; none of the profiled starts may use it.")
    var heldOutMode = "report"

    @Option(help: "App mode of ctr-remote image optimize's one sandboxed run (the image's default command).")
    var optimizeMode = "json"

    @Option(help: "Registry-to-node bandwidth of the throttling proxy, bytes per second.")
    var bytesPerSecond = 8 * 1024 * 1024

    @Option(name: .customLong("cri-endpoint"), help: "The overlayfs CRI socket (default: $PODSTART_CRI_ENDPOINT).")
    var criEndpoint: String?

    @Option(name: .customLong("stargz-endpoint"), help: "The stargz CRI socket (default: $PODSTART_STARGZ_CRI_ENDPOINT).")
    var stargzEndpoint: String?

    @OptionGroup var format: FigureOutput

    var environment: [String: String] { ProcessInfo.processInfo.environment }
    var modes: [String] { profileModes.split(separator: ",").map { String($0) } }

    func validate() throws {
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
        guard bytesPerSecond > 0 else { throw ValidationError("--bytes-per-second must be positive") }
        guard !modes.isEmpty else { throw ValidationError("--profile-modes names no mode") }
        guard !modes.contains(heldOutMode) else {
            throw ValidationError("--held-out-mode \(heldOutMode) is among --profile-modes: the measured start must be one the profile never saw")
        }
        if image == nil, environment["PODSTART_TEST_IMAGES"] == nil {
            throw ValidationError("pass --image, or set PODSTART_TEST_IMAGES (eval \"$(scripts/localenv.sh env)\")")
        }
        if stargzEndpoint == nil, environment["PODSTART_STARGZ_CRI_ENDPOINT"] == nil {
            throw ValidationError("pass --stargz-endpoint, or run scripts/localenv.sh stargz-up and eval \"$(scripts/localenv.sh env)\"")
        }
    }

    enum Variant: String, CaseIterable {
        case gzip, estargz, optimize, podstart, ideal, local
        var lazy: Bool { self == .estargz || self == .optimize || self == .podstart || self == .ideal }
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Runs a tool to completion; its output, or a Failure naming the command and its output.
    @discardableResult
    func tool(_ arguments: [String], environment extra: [String: String] = [:]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.environment = environment.merging(extra) { $1 }
        let outputFile = FileManager.default.temporaryDirectory.appendingPathComponent("podstart-bench-\(UUID().uuidString).out")
        _ = FileManager.default.createFile(atPath: outputFile.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: outputFile) }
        let handle = try FileHandle(forWritingTo: outputFile)
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        try handle.close()
        let text = (try? String(contentsOf: outputFile, encoding: .utf8)) ?? ""
        guard process.terminationStatus == 0 else {
            throw Failure(description: "\(arguments.prefix(5).joined(separator: " ")) … exited \(process.terminationStatus):\n\(text.suffix(2000))")
        }
        return text
    }

    /// The steps of a start, in order: its CRI calls (a method called twice counts once, summed)
    /// and `ready`, from the last call's end to the first successful readiness check.
    static let stepNames = ["RunPodSandbox", "ImageStatus", "PullImage", "CreateContainer", "StartContainer", "ready"]

    static func steps(of record: PodStartRecord) -> [String: Double] {
        var steps: [String: Double] = [:]
        for call in record.calls { steps[call.method, default: 0] += call.seconds }
        if let last = record.calls.last { steps["ready"] = last.end.seconds(to: record.ready) }
        return steps
    }

    func run() async throws {
        let source = image ?? environment["PODSTART_TEST_IMAGES"]! + "/python-app:latest"
        let overlay = try criEndpoint.map { try CRIEndpoint(parsing: $0) } ?? CRIEndpoint.fromEnvironment()
        let stargz = try CRIEndpoint(parsing: stargzEndpoint ?? environment["PODSTART_STARGZ_CRI_ENDPOINT"]!)
        let podstart = try ProductBinary.path()
        let ctr = ["ctr", "--address", overlay.socketPath, "--namespace", "k8s.io"]
        guard let slash = source.firstIndex(of: "/"), let colon = source.lastIndex(of: ":"), colon > slash,
              let registryPort = UInt16(source[..<slash].split(separator: ":").last ?? "") else {
            throw ValidationError("--image \(source) is not HOST:PORT/REPOSITORY:TAG of a loopback registry")
        }
        let registry = String(source[..<slash])
        let repository = String(source[source.index(after: slash)..<colon])
        let sourceTag = String(source[source.index(after: colon)...])
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("podstart-bench-prefetch-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        func note(_ text: String) { FileHandle.standardError.write(Data("prefetch: \(text)\n".utf8)) }

        // 1. podstart's profile: N real starts of the app in the profiled modes, and the held-out start.
        func trace(_ mode: String, cold: Bool) throws -> String {
            let file = "\(scratch)/\(mode).json"
            try tool([podstart, "trace", "--cri-endpoint", overlay.description, "--image", source, "--ready-file", "/tmp/ready",
                      "--output", "json", "--out", file] + (cold ? ["--cold"] : []) + ["--cmd", "python3", "/app/app.py", mode])
            return file
        }
        note("tracing \(modes.count) starts (\(profileModes)) and the held-out \(heldOutMode)")
        var profiled: [String] = []
        for (i, mode) in modes.enumerated() { profiled.append(try trace(mode, cold: i == 0)) }
        let held = try trace(heldOutMode, cold: false)
        let record = "\(scratch)/record.jsonl", idealRecord = "\(scratch)/record-ideal.jsonl"
        try tool([podstart, "profile", "export", "--from"] + profiled + ["--format", "estargz", "--out", record])
        try tool([podstart, "profile", "export", "--from", held, "--format", "estargz", "--out", idealRecord])
        let evaluation = try JSON.parse(String(try tool([podstart, "profile", "evaluate", "--from"] + profiled + ["--trace", held, "--output", "json"])
            .split(separator: "\n").last { $0.hasPrefix("{") } ?? ""))
        guard let heldOutReadBytes = evaluation["heldOutBytes"]?.int64Value else {
            throw Failure(description: "podstart profile evaluate printed no heldOutBytes")
        }

        // 2. The eStargz variants, converted in the overlayfs containerd and pushed to the registry.
        let tags: [Variant: String] = [.gzip: sourceTag, .local: sourceTag, .estargz: "bench-estargz", .optimize: "bench-optimize",
                                       .podstart: "bench-podstart", .ideal: "bench-ideal"]
        try tool(ctr + ["images", "pull", "--plain-http", source])
        for variant in [Variant.estargz, .podstart, .ideal, .optimize] {
            let target = "\(registry)/\(repository):\(tags[variant]!)"
            note("building the \(variant.rawValue) variant \(target)")
            switch variant {
            case .estargz:
                try tool(["ctr-remote", "--address", overlay.socketPath, "--namespace", "k8s.io", "image", "convert", "--oci", "--estargz", source, target])
            case .podstart, .ideal:
                try tool(["ctr-remote", "--address", overlay.socketPath, "--namespace", "k8s.io", "image", "convert", "--oci", "--estargz",
                          "--estargz-record-in", variant == .podstart ? record : idealRecord, source, target])
            default:
                // ctr-remote 0.12 takes the containerd address from the environment for its
                // sandboxed run, and sometimes fails to start that run's shim once: retry the peer's
                // tool, never podstart's.
                var attempt = 0
                while true {
                    attempt += 1
                    do {
                        try tool(["ctr-remote", "image", "optimize", "--oci", "--period", "8", "--entrypoint", #"["python3","/app/app.py"]"#,
                                  "--args", #"["\#(optimizeMode)"]"#, source, target],
                                 environment: ["CONTAINERD_ADDRESS": overlay.socketPath, "CONTAINERD_NAMESPACE": "k8s.io"])
                        break
                    } catch let failure as Failure where attempt < 3 && failure.description.contains("failed to start shim") {
                        try await Task.sleep(for: .seconds(2))
                    }
                }
            }
            try tool(ctr + ["images", "push", "--plain-http", target])
            try tool(ctr + ["images", "rm", target])
        }

        // 3. Cold starts of the held-out mode, interleaved, each through a new proxy (a new image
        // reference, so nothing the snapshotter resolved before is reused).
        var ready: [Variant: [Double]] = [:], fetched: [Variant: [Double]] = [:], steps: [Variant: [String: [Double]]] = [:]
        let order = Variant.allCases
        for run in 0..<runs {
            for variant in order[(run % order.count)...] + order[..<(run % order.count)] {
                let endpoint = variant.lazy ? stargz : overlay
                let proxy = try ThrottlingProxy(upstreamPort: registryPort, bytesPerSecond: Double(bytesPerSecond))
                defer { proxy.stop() }
                let ref = variant == .local ? source : "127.0.0.1:\(proxy.port)/\(repository):\(tags[variant]!)"
                try await CRIClient.withClient(endpoint: endpoint) { client in
                    if variant == .local {
                        if try await client.imageStatus(source) == nil { _ = try await client.pullImage(source, sandboxConfig: nil) }
                        return
                    }
                    // Cold: no image of this content under any name, so no blob or snapshot is reused.
                    for present in try await client.listImages()
                    where present.repoTags.contains(where: { $0.hasSuffix("/\(repository):\(tags[variant]!)") }) {
                        try await client.removeImage(present.id)
                    }
                }
                var options = PodStartOptions(image: ref, pod: PodStartOptions.newPod(name: "prefetch"))
                options.command = ["python3", "/app/app.py", heldOutMode]
                options.readiness = .file(path: "/tmp/ready")
                options.probePeriod = .milliseconds(10)
                options.timeout = .seconds(600)
                let started = try await PodStarter(endpoint: endpoint).run(options)
                ready[variant, default: []].append(started.e2eSeconds)
                for (step, seconds) in Self.steps(of: started) { steps[variant, default: [:]][step, default: []].append(seconds) }
                fetched[variant, default: []].append(Double(proxy.fetchedBytes))
                note(String(format: "run %d %@: ready %.3f s, %d bytes from the registry", run + 1, variant.rawValue, started.e2eSeconds, proxy.fetchedBytes))
                if variant.lazy {
                    try await CRIClient.withClient(endpoint: endpoint) { client in
                        if let present = try await client.imageStatus(ref) { try await client.removeImage(present.id) }
                    }
                }
            }
        }

        let readyMedian = ready.mapValues(median), fetchedMedian = fetched.mapValues(median)
        let floor = readyMedian[.local]!, gzipBytes = max(fetchedMedian[.gzip]!, 1)
        if format.json {
            print(JSON.object([
                ("variants", .object(order.map { variant in
                    (variant.rawValue, .object([
                        ("readySeconds", .double(readyMedian[variant]!.rounded(toPlaces: 4))),
                        ("fetchedBytes", .int(Int64(fetchedMedian[variant]!))),
                        ("runs", .int(Int64(runs))),
                        ("stepSeconds", .object(Self.stepNames.compactMap { step in
                            steps[variant]?[step].map { (step, .double(median($0).rounded(toPlaces: 4))) }
                        })),
                    ]))
                })),
                ("heldOutReadBytes", .int(heldOutReadBytes)),
            ]).rendered())
        } else {
            print("python app, held-out mode \(heldOutMode), profile of \(modes.count) starts, \(runs) cold starts per variant through \(bytesPerSecond) B/s, medians:")
            print("  variant    ready s   x local   fetched bytes   x gzip")
            for variant in order {
                print(String(format: "  %-9@ %8.3f  %8.2f  %14.0f  %7.3f", variant.rawValue, readyMedian[variant]!, readyMedian[variant]! / floor,
                             fetchedMedian[variant]!, fetchedMedian[variant]! / gzipBytes))
            }
            print("  steps, medians (s):  " + Self.stepNames.map { $0.padding(toLength: 15, withPad: " ", startingAt: 0) }.joined(separator: " "))
            for variant in order {
                print("  \(variant.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0))           " + Self.stepNames.map { step in
                    String(format: "%-15.3f", steps[variant]?[step].map(median) ?? 0)
                }.joined(separator: " "))
            }
            let podstartReady = readyMedian[.podstart]!, optimizeReady = readyMedian[.optimize]!
            print(String(format: "  podstart vs optimize %.3f (target <= 1), vs local %.3f (target <= 1.3); fetched / held-out read %.3f (target <= 1.25; held-out read %lld bytes)",
                         podstartReady / optimizeReady, podstartReady / floor, fetchedMedian[.podstart]! / Double(max(heldOutReadBytes, 1)), heldOutReadBytes))
            print(String(format: "  podstart vs ideal (the held-out start's own list) %.3f; ideal vs local %.3f (what no list removes)",
                         podstartReady / readyMedian[.ideal]!, readyMedian[.ideal]! / floor))
        }
    }
}
