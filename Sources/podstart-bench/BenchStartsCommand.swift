import ArgumentParser
import ContainerRuntime
import Foundation
import PodstartAgent
import PodstartCore
import TraceViews

/// `podstart-bench starts`: what the kernel probes cost a container start. Pods are started
/// through CRI exactly as `podstart trace` starts them, alternately with the probes attached
/// (everything a start window attaches) and without, and the medians are compared.
struct BenchStartsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "starts",
        abstract: "Container start time with the kernel probes attached vs not, interleaved.",
        discussion: """
            Needs a CRI runtime with the image available (scripts/localenv.sh up, then \
            eval "$(scripts/localenv.sh env)"). The measured time is the start up to running: \
            the end-to-end time minus the readiness wait, so the prober's period does not blur it. \
            Target: at most 2% slower with the probes.
            """
    )

    @Option(help: "Image to start (default: $PODSTART_TEST_IMAGES/reader:latest).")
    var image: String?

    @Option(help: "Starts per mode.")
    var runs = 20

    @Option(name: .customLong("cri-endpoint"), help: "CRI socket (default: $PODSTART_CRI_ENDPOINT or the containerd default).")
    var criEndpoint: String?

    @OptionGroup var format: FigureOutput

    func validate() throws {
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
        if image == nil, ProcessInfo.processInfo.environment["PODSTART_TEST_IMAGES"] == nil {
            throw ValidationError("pass --image, or set PODSTART_TEST_IMAGES (eval \"$(scripts/localenv.sh env)\")")
        }
    }

    func run() async throws {
        let ref = image ?? ProcessInfo.processInfo.environment["PODSTART_TEST_IMAGES"]! + "/reader:latest"
        let endpoint = try criEndpoint.map { try CRIEndpoint(parsing: $0) } ?? CRIEndpoint.fromEnvironment()
        // as `podstart trace --image REF --probe-period 5ms` starts it
        var options = PodStartOptions(image: ref)
        options.probePeriod = .milliseconds(5)
        options.timeout = .seconds(300)

        func startSeconds(kernel: Bool) async throws -> Double {
            let t = try await TraceRun(options: options, endpoint: endpoint, kernel: kernel).trace()
            return t.e2eSeconds - t.seconds(of: .probe)
        }
        // one of each first, unmeasured: the image is pulled and caches are warm for both
        _ = try await startSeconds(kernel: false)
        _ = try await startSeconds(kernel: true)

        var with: [Double] = [], without: [Double] = []
        let progress = TerminalProgress.standardError(forPeople: !format.json)
        for run in 0..<runs {
            progress.show("start pair \(run + 1) of \(runs)")
            for kernel in run % 2 == 0 ? [false, true] : [true, false] {
                let s = try await startSeconds(kernel: kernel)
                if kernel { with.append(s) } else { without.append(s) }
            }
        }
        progress.clear()
        let ratio = median(with) / median(without)
        if format.json {
            print(JSON.object([
                ("ratio", .double(ratio.rounded(toPlaces: 4))),
                ("withProbesMedianSeconds", .double(median(with).rounded(toPlaces: 6))),
                ("withoutProbesMedianSeconds", .double(median(without).rounded(toPlaces: 6))),
                ("runs", .int(Int64(runs))),
                ("targetMet", .bool(ratio <= 1.02)),
            ]).rendered())
        } else {
            print("container start (created -> running), \(runs) starts per mode, interleaved, medians:")
            print(String(format: "  without probes %.4f s, with probes %.4f s: ratio %.4f (target <= 1.02)",
                         median(without), median(with), ratio))
        }
    }
}
