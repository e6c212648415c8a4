import ArgumentParser
import PodstartAgent

/// `podstart-bench`: benchmarks that report ratios against a baseline measured in the same run,
/// and the hidden tools the tests and scripts use (not part of the product binary `podstart`).
@main
struct PodstartBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "podstart-bench",
        abstract: "Measure podstart's cost and speed against a baseline taken in the same run.",
        version: PodstartVersion.string,
        subcommands: [
            BenchProbesCommand.self,
            BenchStartsCommand.self,
            BenchAnalyzeCommand.self,
            BenchMetricsCommand.self,
            BenchCorrelatorCommand.self,
            BenchSoakCommand.self,
            BenchAgentCommand.self,
            BenchLoopCommand.self,
            BenchPrefetchCommand.self,
            StateWriteLoopCommand.self,
            TrimInputsCommand.self,
        ]
    )
}

/// The figures' format, as every command of podstart takes it: `--output table|json` (`-o`).
enum FigureFormat: String, ExpressibleByArgument, CaseIterable {
    case table, json
}

struct FigureOutput: ParsableArguments {
    @Option(name: [.short, .long], help: "table (for people) or json (one object with the figures, for programs).")
    var output: FigureFormat = .table

    var json: Bool { output == .json }
}
