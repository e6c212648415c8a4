/// The eBPF objects compiled from `bpf/*.bpf.c` by the BPFObjectBuilder plugin at build time, as
/// base64 strings (see the generated `EmbeddedBPF+<name>.swift` files in the build directory).
enum EmbeddedBPF {
    /// Decoded object bytes by name, in load order: `process` first, because it creates the maps
    /// the other objects share.
    static func object(named name: String) -> [UInt8]? {
        let encoded: String
        switch name {
        case "process": encoded = process
        case "files": encoded = files
        case "files_cast": encoded = files_cast
        case "filemap": encoded = filemap
        case "blockio": encoded = blockio
        case "writes": encoded = writes
        case "empty": encoded = empty
        default: return nil
        }
        return Base64.decode(encoded)
    }
}

/// A small base64 decoder, so the module needs no Foundation on this path.
enum Base64 {
    static func decode(_ string: String) -> [UInt8]? {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() {
            table[Int(c)] = UInt8(i)
        }
        var out: [UInt8] = []
        out.reserveCapacity(string.utf8.count * 3 / 4)
        var accumulator: UInt32 = 0
        var bits = 0
        for c in string.utf8 {
            if c == UInt8(ascii: "=") { break }
            let v = table[Int(c)]
            if v == 0xFF { return nil }
            accumulator = (accumulator << 6) | UInt32(v)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8((accumulator >> UInt32(bits)) & 0xFF))
            }
        }
        return out
    }
}
