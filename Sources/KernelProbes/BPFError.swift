#if canImport(Glibc)
import Glibc
#endif

/// Why the kernel side could not start, with what to do about it.
public enum BPFError: Error, CustomStringConvertible, Sendable {
    /// Not root and missing CAP_BPF / CAP_PERFMON (or CAP_SYS_ADMIN on older kernels).
    case notPermitted(missing: [String])
    /// /sys/kernel/btf/vmlinux is missing: CO-RE needs the kernel's BTF.
    case noBTF(path: String)
    /// tracefs is not mounted and could not be mounted.
    case tracefsMissing(errno: Int32)
    /// The kernel is older than the oldest one the programs support.
    case kernelTooOld(release: String, minimum: String)
    /// libbpf could not parse an embedded object.
    case open(object: String, errno: Int32)
    /// The kernel refused a program; `verifierLog` is what the verifier said (its tail).
    case load(object: String, errno: Int32, verifierLog: String)
    /// A program loaded but could not be attached to its hook.
    case attach(program: String, errno: Int32, log: String)
    case ringBuffer(errno: Int32)
    case map(name: String, errno: Int32)

    public var description: String {
        switch self {
        case .notPermitted(let missing):
            return "loading eBPF programs is not permitted: missing \(missing.joined(separator: ", ")). "
                + "Run podstart as root, or grant CAP_BPF, CAP_PERFMON and CAP_SYS_PTRACE "
                + "(CAP_SYS_ADMIN on kernels before 5.8)."
        case .noBTF(let path):
            return "the kernel exposes no BTF at \(path): podstart's CO-RE programs need a kernel built with "
                + "CONFIG_DEBUG_INFO_BTF=y (most distribution kernels since 5.4 are)."
        case .tracefsMissing(let e):
            return "tracefs is not mounted at /sys/kernel/tracing and mounting it failed (\(errnoName(e))): "
                + "run `mount -t tracefs tracefs /sys/kernel/tracing` as root, or mount /sys/kernel/tracing into the container."
        case .kernelTooOld(let release, let minimum):
            return "kernel \(release) is too old: podstart's probes need \(minimum) or newer (bpf_loop, ring buffers, tp_btf)."
        case .open(let object, let e):
            return "libbpf could not open the embedded eBPF object '\(object)' (\(errnoName(e))): the build is broken; rebuild podstart."
        case .load(let object, let e, let log):
            var text = "the kernel refused to load the eBPF object '\(object)' (\(errnoName(e)))"
            if e == EACCES, log.contains("processed "), log.contains(" insns") {
                // the verifier ran and said no: EACCES here is its verdict, not a permission
                text += ": the verifier rejected a program (a bug in podstart's programs, or a kernel whose verifier is stricter than those it was tested on; its log below says where)"
            } else if e == EPERM || e == EACCES {
                text += ": not permitted. Run as root or grant CAP_BPF and CAP_PERFMON; a kernel lockdown or an LSM may also forbid BPF"
            }
            if !log.isEmpty { text += ".\nverifier/libbpf log (tail):\n" + log }
            return text
        case .attach(let program, let e, let log):
            var text = "could not attach eBPF program '\(program)' (\(errnoName(e)))"
            if e == ENOENT { text += ": the kernel lacks this hook" }
            if !log.isEmpty { text += ".\n" + log }
            return text
        case .ringBuffer(let e):
            return "could not set up the eBPF ring buffer reader (\(errnoName(e)))"
        case .map(let name, let e):
            return "eBPF map '\(name)' operation failed (\(errnoName(e)))"
        }
    }
}

func errnoName(_ e: Int32) -> String {
    let message = String(cString: strerror(e))
    return "errno \(e): \(message)"
}
