import ArgumentParser

/// `podstart bench …`: benchmarks that report ratios against a baseline measured in the same run.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure podstart's cost and speed against a baseline taken in the same run.",
        subcommands: [
            BenchProbesCommand.self,
            BenchStartsCommand.self,
            BenchAnalyzeCommand.self,
            BenchMetricsCommand.self,
            BenchCorrelatorCommand.self,
            BenchAgentCommand.self,
        ]
    )
}

