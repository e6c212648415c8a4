import ServiceLifecycle

/// The supervised sources, run side by side: a graceful shutdown reaches them all at once, so
/// their bounded stops overlap instead of adding up.
public struct SourceGroup: Service {
    public let supervisors: [SourceSupervisor]
    public init(_ supervisors: [SourceSupervisor]) { self.supervisors = supervisors }

    public func run() async {
        await withTaskGroup(of: Void.self) { group in
            for supervisor in supervisors { group.addTask { await supervisor.run() } }
        }
    }
}
