/// The `podstart probe --json` shape of each kernel event: one flat object per line, with the
/// kind first, then the task, then what the kind adds. Paths are absolute inside the task's root.
extension KernelEvent {
    public func json(clock: WallClock) -> JSON {
        var fields: [(String, JSON)] = [
            ("kind", .string(kindName)),
            ("timeUnixNano", .int(clock.unixNanoseconds(monotonic: timestampNs))),
        ]
        func task(_ t: TaskContext) {
            fields += [("pid", .uint(UInt64(t.pid))), ("tid", .uint(UInt64(t.tid))),
                       ("ppid", .uint(UInt64(t.parentPid))), ("nsPid", .uint(UInt64(t.namespacePid))),
                       ("comm", .string(t.comm)), ("mntns", .uint(UInt64(t.mountNamespace))),
                       ("pidns", .uint(UInt64(t.pidNamespace))), ("cgroupId", .uint(t.cgroupID))]
        }
        func file(_ f: FileIdentity) {
            fields += [("dev", .string(f.key.device.description)), ("ino", .uint(f.key.inode)),
                       ("sizeBytes", .uint(f.sizeBytes)), ("mode", .string(String(f.mode, radix: 8)))]
            if f.dataKey != f.key {
                fields += [("dataDev", .string(f.dataKey.device.description)), ("dataIno", .uint(f.dataKey.inode))]
            }
        }
        switch self {
        case .exec(let e):
            task(e.task)
            fields += [("filename", .string(e.filename)), ("path", .string(e.path.path)),
                       ("pathTruncated", .bool(e.path.truncated)),
                       ("args", .array(e.arguments.map { .string($0) })), ("runtime", .bool(e.isRuntimeProcess))]
            file(e.file)
        case .fork(let e):
            task(e.parent)
            fields += [("childPid", .uint(UInt64(e.childPid))), ("runtime", .bool(e.isRuntimeProcess))]
        case .exit(let e):
            task(e.task)
            fields += [("exitStatus", .int(Int64(e.exitStatus))), ("signal", .int(Int64(e.signal))),
                       ("runtime", .bool(e.isRuntimeProcess))]
        case .open(let e):
            task(e.task)
            fields += [("syscall", .string(e.syscall.rawValue)), ("result", .int(Int64(e.result))),
                       ("dirfd", .int(Int64(e.directoryFD))), ("flags", .uint(UInt64(e.openFlags))),
                       ("rawPath", .string(e.rawPath)), ("runtime", .bool(e.isRuntimeProcess))]
            if let path = e.path {
                fields += [("path", .string(path.path)), ("pathTruncated", .bool(path.truncated))]
            }
            if let f = e.file { file(f) }
        case .readRange(let e):
            fields += [("pid", .uint(UInt64(e.pid))), ("mntns", .uint(UInt64(e.mountNamespace))),
                       ("dev", .string(e.file.device.description)), ("ino", .uint(e.file.inode)),
                       ("offsetBytes", .uint(e.offsetBytes)), ("lengthBytes", .uint(e.lengthBytes)),
                       ("source", .string(e.source.rawValue)),
                       ("firstAccessUnixNano", .int(clock.unixNanoseconds(monotonic: e.firstAccessNs)))]
        case .blockIO(let e):
            fields += [("pid", .uint(UInt64(e.pid))), ("comm", .string(e.comm)),
                       ("mntns", e.mountNamespace.map { .uint(UInt64($0)) } ?? .null),
                       ("dev", .string(e.device.description)), ("op", .string(e.operation.rawValue)),
                       ("sector", .uint(e.sector)), ("bytes", .uint(UInt64(e.bytes))),
                       ("error", .int(Int64(e.error))), ("latencyNs", .uint(e.latencyNs))]
        case .writeBegin(let e):
            task(e.task)
            fields += [("path", .string(e.path.path)), ("pathTruncated", .bool(e.path.truncated)),
                       ("runtime", .bool(e.isRuntimeProcess))]
            file(e.file)
        case .fuseRequest(let e):
            task(e.task)
            fields += [("connection", .string(e.connection.description)), ("unique", .uint(e.unique)),
                       ("opcode", .string(e.opcodeName)), ("requestBytes", .uint(UInt64(e.requestBytes))),
                       ("replyBytes", .uint(UInt64(e.replyBytes))), ("error", .int(Int64(e.error))),
                       ("sendUnixNano", .int(clock.unixNanoseconds(monotonic: e.sendNs))), ("durationNs", .uint(e.durationNs))]
            if let f = e.file { fields += [("dev", .string(f.device.description)), ("ino", .uint(f.inode))] }
        }
        return .object(fields)
    }
}
