// libFuzzer harness: `journalctl -o json` records, split into lines with the capped splitter.
import KubeletSources
import PodstartCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJournalRecord(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    var splitter = LineSplitter(maxLineBytes: 4096)
    splitter.feed(bytes[...]) { line in _ = JournalRecord.parse(Array(line)) }
    splitter.finish { line in _ = JournalRecord.parse(Array(line)) }
    if splitter.pendingBytes > 4096 { fatalError("pending bytes past the cap") }
    return 0
}
