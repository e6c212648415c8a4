#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Pieces of klog's structured text rendering: `key=value` pairs where a value is a Go `%q`
/// string or a run of non-space bytes (docs/inputs.md#kubelet-log-lines).
enum KlogValues {
    /// One `key=value` pair; `value` is unescaped when it was quoted.
    struct Pair {
        /// The key's bytes in the scanned line.
        var keyRange: Range<Int>
        var value: [UInt8]
        var quoted: Bool
    }

    enum ScanError: Error, Equatable {
        case missingEquals
        case emptyKey
        case unterminatedQuote
        case badEscape
    }

    /// Splits `s` (the part of a line after the message) into pairs. Trailing spaces and a
    /// trailing `\r` are ignored; anything else that is not a pair is an error.
    static func pairs(_ s: UnsafeBufferPointer<UInt8>, from start: Int) throws(ScanError) -> [Pair] {
        var out: [Pair] = []
        out.reserveCapacity(12)
        var i = start
        let n = s.count
        while true {
            while i < n, s[i] == UInt8(ascii: " ") || s[i] == UInt8(ascii: "\t") || s[i] == UInt8(ascii: "\r") { i += 1 }
            if i >= n { break }
            let keyStart = i
            while i < n, s[i] != UInt8(ascii: "="), s[i] != UInt8(ascii: " "), s[i] != UInt8(ascii: "\"") { i += 1 }
            guard i < n, s[i] == UInt8(ascii: "=") else { throw .missingEquals }
            guard i > keyStart else { throw .emptyKey }
            let key = keyStart..<i
            i += 1
            if i < n, s[i] == UInt8(ascii: "\"") {
                let (value, end) = try unquote(s, at: i)
                out.append(Pair(keyRange: key, value: value, quoted: true))
                i = end
                // A quoted value must be followed by a separator or the end.
                if i < n, s[i] != UInt8(ascii: " "), s[i] != UInt8(ascii: "\r") { throw .missingEquals }
            } else if i < n, s[i] == UInt8(ascii: "{") || s[i] == UInt8(ascii: "[") {
                // klog writes maps, slices and structs as JSON (`pods=[{"name":"a",…}]`), with
                // spaces possible inside strings: the value ends where its brackets balance.
                let vStart = i
                i = try jsonValueEnd(s, at: i)
                if i < n, s[i] != UInt8(ascii: " "), s[i] != UInt8(ascii: "\r") { throw .missingEquals }
                out.append(Pair(keyRange: key, value: Array(s[vStart..<i]), quoted: false))
            } else {
                let vStart = i
                while i < n, s[i] != UInt8(ascii: " "), s[i] != UInt8(ascii: "\r") {
                    if s[i] == UInt8(ascii: "\"") { throw .unterminatedQuote }
                    i += 1
                }
                out.append(Pair(keyRange: key, value: Array(s[vStart..<i]), quoted: false))
            }
        }
        return out
    }

    /// The index just past the JSON object or array that starts at `at`: brackets are counted
    /// outside strings, strings end at an unescaped quote. Nesting is limited (klog's values are
    /// shallow) so that a hostile line cannot cost more than one pass.
    static func jsonValueEnd(_ s: UnsafeBufferPointer<UInt8>, at: Int) throws(ScanError) -> Int {
        var depth = 0
        var i = at
        let n = s.count
        while i < n {
            switch s[i] {
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                depth += 1
                guard depth <= 64 else { throw .unterminatedQuote }
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                depth -= 1
                if depth == 0 { return i + 1 }
            case UInt8(ascii: "\""):
                i += 1
                while i < n, s[i] != UInt8(ascii: "\"") {
                    if s[i] == UInt8(ascii: "\\") { i += 1 }
                    i += 1
                }
                guard i < n else { throw .unterminatedQuote }
            default:
                break
            }
            i += 1
        }
        throw .unterminatedQuote
    }

    /// Decodes the Go `%q` string starting at the quote at `at`; returns the bytes and the index
    /// just past the closing quote.
    static func unquote(_ s: UnsafeBufferPointer<UInt8>, at: Int) throws(ScanError) -> ([UInt8], Int) {
        var i = at + 1
        let n = s.count
        guard at < n, let base = s.baseAddress else { throw .unterminatedQuote }
        var out: [UInt8] = []
        out.reserveCapacity(n - i)
        while i < n {
            // Copy the run up to the next quote or backslash in one go.
            var j = i
            while j < n {
                let c = base[j]
                if c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") { break }
                j += 1
            }
            if j > i { out.append(contentsOf: UnsafeBufferPointer(start: base + i, count: j - i)) }
            i = j
            guard i < n else { break }
            let b = base[i]
            if b == UInt8(ascii: "\"") { return (out, i + 1) }
            i += 1
            guard i < n else { throw .unterminatedQuote }
            let e = s[i]
            i += 1
            switch e {
            case UInt8(ascii: "n"): out.append(10)
            case UInt8(ascii: "t"): out.append(9)
            case UInt8(ascii: "r"): out.append(13)
            case UInt8(ascii: "a"): out.append(7)
            case UInt8(ascii: "b"): out.append(8)
            case UInt8(ascii: "f"): out.append(12)
            case UInt8(ascii: "v"): out.append(11)
            case UInt8(ascii: "\\"), UInt8(ascii: "\""), UInt8(ascii: "'"): out.append(e)
            case UInt8(ascii: "x"):
                guard let v = hex(s, i, 2) else { throw .badEscape }
                out.append(UInt8(v)); i += 2
            case UInt8(ascii: "u"), UInt8(ascii: "U"):
                let len = e == UInt8(ascii: "u") ? 4 : 8
                guard let v = hex(s, i, len), let scalar = Unicode.Scalar(v) else { throw .badEscape }
                out.append(contentsOf: Array(String(Character(scalar)).utf8)); i += len
            case UInt8(ascii: "0")...UInt8(ascii: "7"):
                guard i + 1 < n, (48...55).contains(s[i]), (48...55).contains(s[i + 1]) else { throw .badEscape }
                let v = Int(e - 48) * 64 + Int(s[i] - 48) * 8 + Int(s[i + 1] - 48)
                guard v < 256 else { throw .badEscape }
                out.append(UInt8(v)); i += 2
            default:
                throw .badEscape
            }
        }
        throw .unterminatedQuote
    }

    private static func hex(_ s: UnsafeBufferPointer<UInt8>, _ at: Int, _ len: Int) -> UInt32? {
        guard at + len <= s.count else { return nil }
        var v: UInt32 = 0
        for k in 0..<len {
            let b = s[at + k]
            let d: UInt32
            switch b {
            case 48...57: d = UInt32(b - 48)
            case 97...102: d = UInt32(b - 87)
            case 65...70: d = UInt32(b - 55)
            default: return nil
            }
            v = v << 4 | d
        }
        return v
    }
}

/// glibc's `memmem` (vectorised) is a GNU extension that Swift's Glibc module does not export,
/// so it is looked up once through the dynamic linker; the C ABI is called as declared.
private typealias MemmemFunction = @convention(c) (UnsafeRawPointer?, Int, UnsafeRawPointer?, Int) -> UnsafeMutableRawPointer?
private let cMemmem: MemmemFunction? = {
    guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "memmem") else { return nil }
    return unsafeBitCast(sym, to: MemmemFunction.self)
}()

/// First occurrence of `needle` in `haystack` at or after `from`.
@inline(__always)
func findBytes(_ haystack: UnsafeBufferPointer<UInt8>, _ needle: UnsafeBufferPointer<UInt8>, from: Int = 0) -> Int? {
    guard let hb = haystack.baseAddress, let nb = needle.baseAddress, from <= haystack.count, needle.count > 0 else { return nil }
    if let cMemmem {
        guard let p = cMemmem(hb + from, haystack.count - from, nb, needle.count) else { return nil }
        return hb.distance(to: p.assumingMemoryBound(to: UInt8.self))
    }
    // Portable fallback: memchr for the first byte, then compare.
    var i = from
    let last = haystack.count - needle.count
    while i <= last {
        guard let p = memchr(hb + i, Int32(nb[0]), last - i + 1) else { return nil }
        let at = hb.distance(to: p.assumingMemoryBound(to: UInt8.self))
        if memcmp(hb + at, nb, needle.count) == 0 { return at }
        i = at + 1
    }
    return nil
}

@inline(__always)
func findByte(_ haystack: UnsafeBufferPointer<UInt8>, _ byte: UInt8, from: Int) -> Int? {
    guard let hb = haystack.baseAddress, from < haystack.count else { return nil }
    guard let p = memchr(hb + from, Int32(byte), haystack.count - from) else { return nil }
    return hb.distance(to: p.assumingMemoryBound(to: UInt8.self))
}

/// Index of the last `byte` before `before`, or nil.
@inline(__always)
func findByteBackward(_ haystack: UnsafeBufferPointer<UInt8>, _ byte: UInt8, before: Int) -> Int? {
    var i = before - 1
    while i >= 0 {
        if haystack[i] == byte { return i }
        i -= 1
    }
    return nil
}

/// A needle kept in stable memory for `findBytes`.
final class Needle: @unchecked Sendable {
    let bytes: UnsafeMutableBufferPointer<UInt8>
    init(_ s: String) {
        let u = Array(s.utf8)
        bytes = .allocate(capacity: u.count)
        _ = bytes.initialize(from: u)
    }
    deinit { bytes.deallocate() }
    var buffer: UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(bytes) }
    var count: Int { bytes.count }
}
