import ArgumentParser
import PodstartAgent

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
        ]
    )
}
