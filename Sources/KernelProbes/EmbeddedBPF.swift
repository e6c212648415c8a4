/// The eBPF objects compiled from `bpf/*.bpf.c` by the BPFObjectBuilder plugin at build time, as
/// base64 strings (see the generated `EmbeddedBPF+<name>.swift` files in the build directory),
/// reached through their skeletons (`BPFSkeleton.<Name>.embeddedObject`).
enum EmbeddedBPF {
    /// An object's decoded bytes.
    static func object<S: BPFObjectSkeleton>(_ skeleton: S.Type) -> [UInt8]? {
        Base64.decode(S.embeddedObject)
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
