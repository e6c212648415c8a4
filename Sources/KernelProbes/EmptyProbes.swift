/// Programs that do nothing, on the same hooks as podstart's: the cost floor a benchmark compares
/// podstart against. Attach a subset with `families` to mirror what podstart attaches.
public final class EmptyProbes: @unchecked Sendable {
    private let object: BPFObject

    public init() throws {
        try ProbeEnvironment.check()
        object = try BPFObject(BPFSkeleton.Empty.self)
        KernelProbeSession.switchOffMissingHooks(object)
        try object.load()
    }

    /// Attaches the empty twin of every program in `families`.
    public func attach(_ families: Set<ProbeFamily>) throws {
        try object.attachAll { program in families.contains { ProbeFamily.family(ofProgram: program) == $0 } }
    }

    public func detach() { object.detachAll() }

    /// The kernel's run-time readings of the empty programs, by program name.
    public func programRunTimes() -> [String: ProgramRunTime] { object.programRunTimes() }
}
