import CPodstartBPF
#if canImport(Glibc)
import Glibc
#endif

/// One loaded libbpf object and the links of its attached programs. Owns the object's memory
/// (libbpf keeps pointing into the buffer given to open_mem) and releases everything in deinit.
final class BPFObject {
    let name: String
    let handle: OpaquePointer
    private let image: UnsafeMutableRawBufferPointer
    private var links: [String: OpaquePointer] = [:]
    /// Programs switched off before load because the running kernel lacks their hook.
    private(set) var disabledPrograms: [String: String] = [:]

    init(name: String, bytes: [UInt8]) throws {
        self.name = name
        image = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 16)
        image.copyBytes(from: bytes)
        errno = 0
        guard let handle = podstart_object_open_mem(image.baseAddress, image.count, name) else {
            let e = errno
            image.deallocate()
            throw BPFError.open(object: name, errno: e == 0 ? EINVAL : e)
        }
        self.handle = handle
    }

    /// Opens the object a skeleton describes, from its embedded bytes.
    convenience init<S: BPFObjectSkeleton>(_ skeleton: S.Type) throws {
        guard let bytes = EmbeddedBPF.object(S.self) else { throw BPFError.open(object: S.objectName, errno: EINVAL) }
        try self.init(name: S.objectName, bytes: bytes)
    }

    deinit {
        detachAll()
        bpf_object__close(handle)
        image.deallocate()
    }

    var programNames: [String] {
        var names: [String] = []
        var prog = bpf_object__next_program(handle, nil)
        while let p = prog {
            names.append(String(cString: bpf_program__name(p)))
            prog = bpf_object__next_program(handle, p)
        }
        return names
    }

    func program(named name: String) -> OpaquePointer? {
        bpf_object__find_program_by_name(handle, name)
    }

    func map(_ name: some BPFMapName) -> OpaquePointer? {
        bpf_object__find_map_by_name(handle, name.rawValue)
    }

    func mapFD(_ name: some BPFMapName) throws -> Int32 {
        guard let map = map(name) else { throw BPFError.map(name: name.rawValue, errno: ENOENT) }
        let fd = bpf_map__fd(map)
        if fd < 0 { throw BPFError.map(name: name.rawValue, errno: -fd) }
        return fd
    }

    /// Switches a program off before load, remembering why. By name: the empty twins of the
    /// programs (EmptyProbes) are switched off by the real programs' names.
    func disable(program: String, reason: String) {
        guard let p = self.program(named: program) else { return }
        bpf_program__set_autoload(p, false)
        disabledPrograms[program] = reason
    }

    func setReadOnlyGlobal<T>(_ global: BPFGlobal<T>, _ value: T) throws {
        var v = value
        let rc = withUnsafeBytes(of: &v) { buf in
            podstart_object_set_rodata(handle, global.name, buf.baseAddress, buf.count)
        }
        if rc != 0 { throw BPFError.map(name: "\(self.name).rodata:\(global.name)", errno: -rc) }
    }

    /// Makes this object use an existing map instead of creating its own (maps shared by name).
    func reuseMap(_ name: some BPFMapName, fd: Int32) throws {
        guard let map = map(name) else { return }
        let rc = bpf_map__reuse_fd(map, fd)
        if rc != 0 { throw BPFError.map(name: name.rawValue, errno: -rc) }
    }

    func load() throws {
        podstart_libbpf_clear_log()
        let rc = bpf_object__load(handle)
        if rc != 0 {
            throw BPFError.load(object: name, errno: -rc, verifierLog: KernelLog.capturedTail())
        }
    }

    var attachedPrograms: [String] { Array(links.keys).sorted() }

    /// Attaches every loaded program of the object to its hook (the SEC name says which).
    func attachAll(where include: (String) -> Bool = { _ in true }) throws {
        for programName in programNames where links[programName] == nil && disabledPrograms[programName] == nil && include(programName) {
            guard let prog = program(named: programName) else { continue }
            podstart_libbpf_clear_log()
            errno = 0
            guard let link = bpf_program__attach(prog) else {
                let e = errno == 0 ? EINVAL : errno
                detachAll()
                throw BPFError.attach(program: programName, errno: e, log: KernelLog.capturedTail())
            }
            links[programName] = link
        }
    }

    func detachAll() {
        for (_, link) in links { bpf_link__destroy(link) }
        links.removeAll()
    }
}

enum KernelLog {
    static func capturedTail(maxBytes: Int = 4096) -> String {
        var buffer = [CChar](repeating: 0, count: maxBytes + 1)
        _ = podstart_libbpf_copy_log(&buffer, buffer.count)
        return buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            .trimmingTrailingWhitespace()
    }
}

extension String {
    func trimmingTrailingWhitespace() -> String {
        var s = Substring(self)
        while let last = s.last, last.isWhitespace { s.removeLast() }
        return String(s)
    }
}
