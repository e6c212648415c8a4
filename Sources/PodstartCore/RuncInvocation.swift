/// A `runc create` or `runc start` that a containerd shim ran for one container or sandbox, read
/// from the kernel's exec record: with the exit of the same process, it times the runtime's part
/// of StartContainer (RunPodSandbox for a sandbox's pause container) on the node alone.
///
/// The shim runs `runc --root R --log STATE/io.containerd.runtime.v2.task/NS/ID/log.json
/// --log-format json create --bundle … --pid-file … ID` and `runc … start ID`. The kernel keeps
/// the first 256 bytes of argv, which cuts most `create` command lines short of their last
/// argument: the id is then taken from the `--log` path (the task's state directory is named
/// after it). A command line cut before its subcommand is not a runc invocation podstart can
/// time, and is skipped.
public struct RuncInvocation: Hashable, Sendable {
    public enum Step: String, Hashable, Sendable { case create, start }
    public var step: Step
    /// The container's (or sandbox's) id, as CRI names it.
    public var containerID: String

    public init(step: Step, containerID: String) {
        self.step = step
        self.containerID = containerID
    }

    /// runc's global flags that take a value as the next argument.
    static let flagsWithValue: Set<String> = ["--root", "--log", "--log-format", "--criu", "--rootless"]

    /// The invocation an exec record shows, or nil (another program, another runc subcommand, or
    /// a command line the kernel cut too short to tell).
    public init?(_ exec: ExecEvent) {
        guard exec.isRuntimeProcess, Self.isRunc(exec.path.path) || Self.isRunc(exec.filename) || Self.isRunc(exec.arguments.first ?? "")
        else { return nil }
        self.init(arguments: exec.arguments, truncated: exec.argumentsTruncated)
    }

    /// From argv (argv[0] included).
    public init?(arguments: [String], truncated: Bool) {
        var i = 1
        var logPath: String?
        var subcommand: String?
        while i < arguments.count {
            let a = arguments[i]
            if a.hasPrefix("-") {
                if let eq = a.firstIndex(of: "=") {
                    if a[..<eq] == "--log" { logPath = String(a[a.index(after: eq)...]) }
                } else if Self.flagsWithValue.contains(a) {
                    if a == "--log", i + 1 < arguments.count { logPath = arguments[i + 1] }
                    i += 1
                }
                i += 1
                continue
            }
            subcommand = a
            break
        }
        guard let subcommand, let step = Step(rawValue: subcommand) else { return nil }
        // the last argument is the id, unless the kernel cut the command line (then it may be a
        // piece of a path): the log path names it either way
        let fromLog = logPath.flatMap(Self.containerID(inTaskPath:))
        let last = i + 1 < arguments.count && !truncated ? arguments.last : nil
        guard let id = fromLog ?? last.flatMap({ Self.isID($0) ? $0 : nil }) else { return nil }
        self.init(step: step, containerID: id)
    }

    static func isRunc(_ path: String) -> Bool {
        path == "runc" || path.hasSuffix("/runc")
    }

    /// `…/io.containerd.runtime.v2.task/NAMESPACE/ID/log.json` → ID.
    static func containerID(inTaskPath path: String) -> String? {
        let parts = path.split(separator: "/")
        guard let task = parts.firstIndex(where: { $0.hasPrefix("io.containerd.runtime.") && $0.hasSuffix(".task") }),
              task + 2 < parts.count else { return nil }
        let id = String(parts[task + 2])
        return isID(id) ? id : nil
    }

    /// CRI's ids are 64 hex digits; other clients' (ctr) any name without a slash.
    static func isID(_ text: String) -> Bool {
        !text.isEmpty && !text.hasPrefix("-") && !text.contains("/") && text.utf8.count <= 128
    }
}
