import ArgumentParser
import PodstartCore

/// The pods' events: one list of each recorded start's events at the API server (the agent and
/// `trace --pod`). For `@OptionGroup var events: PodEventsOptions`.
struct PodEventsOptions: ParsableArguments {
    // `--no-pod-events` rather than `--pod-events` with an inversion: the --config file turns a
    // switch on with `true` and leaves `false` out, so only a `no-` switch can turn a default off.
    @Flag(name: .customLong("no-pod-events"), help: "Do not list each recorded start's pod events at the API server (one list per start, kept in the trace as events; on by default with an API server).")
    var noPodEvents = false

    @Option(name: .customLong("pod-events-limit"), help: "Events kept per start, Warnings first (1-1000).")
    var podEventsLimit = PodEvents.defaultLimit

    var anyGiven: Bool { noPodEvents || podEventsLimit != PodEvents.defaultLimit }

    func validate() throws {
        guard PodEvents.limitRange.contains(podEventsLimit) else {
            throw ValidationError("--pod-events-limit must be from \(PodEvents.limitRange.lowerBound) to \(PodEvents.limitRange.upperBound)")
        }
    }
}
