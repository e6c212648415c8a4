import ArgumentParser

/// The `podstart` command line: one subcommand per job (see README.md).
@main
struct Podstart: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "podstart",
        abstract: "Where did each pod's startup time go, and which bytes of its image did it need?",
        version: PodstartVersion.string,
        subcommands: [
            AgentCommand.self,
            ProbeCommand.self,
            TraceCommand.self,
            AnalyzeCommand.self,
            ProfileCommand.self,
            BenchCommand.self,
            BenchLoopCommand.self,
            StateWriteLoopCommand.self,
            TrimInputsCommand.self,
        ]
    )
}

enum PodstartVersion {
    static let string = "0.1.0"
}
