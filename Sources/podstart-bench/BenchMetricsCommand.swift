import ArgumentParser
import Exporter
import Foundation
import PodstartAgent
import PodstartCore

/// `podstart-bench metrics`: how long `/metrics` takes to render after many pod starts, against
/// the same render after a single start, in the same run. Rendering should cost per series
/// (bounded), not per pod observed, so the ratio should stay near 1; the target is ≤ 5 ms for
/// 10,000 pods. It asserts nothing about time.
struct BenchMetricsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metrics",
        abstract: "Time the /metrics render after N pod starts against the render after one."
    )

    @Option(help: "Pod starts to observe.")
    var pods = 10_000

    @Option(help: "Distinct images among them (at most 20 get their own label).")
    var images = 1_000

    @Option(help: "Renders to time per case (the median is reported).")
    var repeats = 200

    @OptionGroup var format: FigureOutput

    func validate() throws {
        guard pods > 0, images > 0, repeats > 0 else { throw ValidationError("--pods, --images and --repeats must be positive") }
    }

    func run() throws {
        let baseline = registry(observing: 1)
        let loaded = registry(observing: pods)
        var figures: [(String, Double, Int)] = []
        for format in [ExpositionFormat.text, .openMetrics] {
            let base = medianSeconds { _ = baseline.render(format: format) }
            let full = medianSeconds { _ = loaded.render(format: format) }
            let bytes = loaded.render(format: format).utf8.count
            let name = format == .text ? "text" : "openMetrics"
            figures.append((name + "Baseline", base, baseline.render(format: format).utf8.count))
            figures.append((name, full, bytes))
        }
        // More pods make more series (images up to the label limit, phases), so the fair
        // comparison is the time per rendered byte: it stays flat when no cost grows per pod.
        let ratio = figures[1].1 / figures[0].1
        let perByteRatio = (figures[1].1 / Double(figures[1].2)) / (figures[0].1 / Double(figures[0].2))
        if format.json {
            let fields = figures.map { "\"\($0.0)Milliseconds\":\($0.1 * 1000),\"\($0.0)Bytes\":\($0.2)" }
            print("{\"pods\":\(pods),\"images\":\(images),\"repeats\":\(repeats)," + fields.joined(separator: ",")
                + ",\"textRatio\":\(ratio),\"textPerByteRatio\":\(perByteRatio)}")
        } else {
            for (name, seconds, bytes) in figures {
                print("\(name.padding(toLength: 20, withPad: " ", startingAt: 0)) \(String(format: "%8.3f", seconds * 1000)) ms  \(bytes) bytes")
            }
            print("ratio:               \(String(format: "%.2f", ratio))× the one-pod render, \(String(format: "%.2f", perByteRatio))× per byte (text); target ≤ 5 ms for \(pods) pods")
        }
    }

    func registry(observing count: Int) -> MetricsRegistry {
        let r = MetricsRegistry(configuration: .init(buildInfo: BuildInfo(version: PodstartVersion.string)))
        r.register(probePrograms: ["exec", "open", "read"], sources: ["containerd-log", "cri", "kubelet-log", "pod-status"])
        r.setProbesEnabled(true)
        let s: Int64 = 1_000_000_000
        for i in 0..<count {
            let t0 = 1_700_000_000 * s + Int64(i) * s
            let image = "registry.local/bench-\(i % images):v1"
            let trace = PodStartTrace(
                pod: .init(namespace: "bench", name: "pod-\(i)", uid: "uid-\(i)"), created: t0,
                ready: t0 + Int64(1 + i % 40) * s / 2, outcome: i % 50 == 0 ? .failed : .ready,
                phases: [
                    PhaseSpan(name: .sandbox, start: t0, end: t0 + s / 10, parent: nil, source: .cri),
                    PhaseSpan(name: .pull, start: t0 + s / 10, end: t0 + s / 10 + Int64(i % 30) * s / 4, parent: nil, source: .kernel),
                    PhaseSpan(name: .download, start: t0 + s / 10, end: t0 + s / 10 + Int64(i % 30) * s / 8, parent: .pull, source: .kernel),
                    PhaseSpan(name: .start, start: t0 + s / 10 + Int64(i % 30) * s / 4, end: t0 + Int64(1 + i % 40) * s / 2, parent: nil, source: .cri),
                ],
                containers: [.init(name: "main", image: image, imageDigest: nil, accesses: [
                    .init(path: "/bin/app", layerDigest: nil, firstAccessMs: 0, opens: 1, bytes: UInt64(4096 * (1 + i % 5000)), ranges: []),
                ])])
            r.observe(trace: trace)
            r.recordImagePull(image: image, bytes: UInt64(1_000_000 + i))
            r.setImageSize(image: image, unpackedBytes: 50_000_000)
            r.addProbeEvents(program: "open", count: 100)
        }
        return r
    }

    func medianSeconds(_ body: () -> Void) -> Double {
        for _ in 0..<10 { body() }  // warm up
        var samples: [Double] = []
        samples.reserveCapacity(repeats)
        for _ in 0..<repeats {
            let t0 = ContinuousClock.now
            body()
            let d = ContinuousClock.now - t0
            samples.append(Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18)
        }
        samples.sort()
        return samples[samples.count / 2]
    }
}
