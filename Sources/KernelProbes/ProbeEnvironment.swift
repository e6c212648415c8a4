import Foundation

/// Checks, before any load, what the kernel side needs, so a refusal names its cause and its fix.
public enum ProbeEnvironment {
    public static let btfPath = "/sys/kernel/btf/vmlinux"
    public static let tracefsPath = "/sys/kernel/tracing"
    /// bpf_loop and bpf_find_vma (5.17) are the newest kernel features the programs rely on.
    public static let minimumKernel = (major: 5, minor: 17)

    public static func check() throws {
        let missing = missingCapabilities()
        if !missing.isEmpty { throw BPFError.notPermitted(missing: missing) }
        guard FileManager.default.fileExists(atPath: btfPath) else { throw BPFError.noBTF(path: btfPath) }
        try ensureTracefs()
        let release = kernelRelease()
        if let version = parseKernelVersion(release),
           version.major < minimumKernel.major || (version.major == minimumKernel.major && version.minor < minimumKernel.minor) {
            throw BPFError.kernelTooOld(release: release, minimum: "\(minimumKernel.major).\(minimumKernel.minor)")
        }
    }

    /// Capabilities podstart needs that the process lacks (empty for root with a full set).
    public static func missingCapabilities(statusPath: String = "/proc/self/status") -> [String] {
        guard let status = try? String(contentsOfFile: statusPath, encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("CapEff:") }),
              let mask = UInt64(line.dropFirst("CapEff:".count).trimmingCharacters(in: .whitespaces), radix: 16)
        else { return [] }
        let sysAdmin: UInt64 = 1 << 21, perfmon: UInt64 = 1 << 38, bpf: UInt64 = 1 << 39
        if mask & sysAdmin != 0 { return [] }
        var missing: [String] = []
        if mask & bpf == 0 { missing.append("CAP_BPF") }
        if mask & perfmon == 0 { missing.append("CAP_PERFMON") }
        return missing
    }

    static func ensureTracefs() throws {
        if FileManager.default.fileExists(atPath: "\(tracefsPath)/events") { return }
        if FileManager.default.fileExists(atPath: "/sys/kernel/debug/tracing/events") { return }
        if mount("tracefs", tracefsPath, "tracefs", 0, nil) != 0 {
            throw BPFError.tracefsMissing(errno: errno)
        }
    }

    public static func kernelRelease() -> String {
        var name = utsname()
        uname(&name)
        return withUnsafeBytes(of: &name.release) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
    }

    public static func parseKernelVersion(_ release: String) -> (major: Int, minor: Int)? {
        let parts = release.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        guard parts.count == 2 else { return nil }
        return (parts[0], parts[1])
    }
}
