import Foundation
import Synchronization
import Testing
import TraceViews

@Suite struct TerminalProgressTests {
    final class Written: Sendable {
        let text = Mutex("")
    }

    @Test func eachReportReplacesTheLineAndClearErasesIt() {
        let written = Written()
        let progress = TerminalProgress { s in written.text.withLock { $0 += s } }
        #expect(progress.isEnabled)
        progress.clear()  // nothing shown yet: nothing to erase
        progress.show("a")
        progress.show("b")
        progress.clear()
        progress.clear()
        #expect(written.text.withLock { $0 } == "\r\u{1B}[2Ka\r\u{1B}[2Kb\r\u{1B}[2K")
    }

    @Test func offWritesNothing() {
        let progress = TerminalProgress(sink: nil)
        #expect(!progress.isEnabled)
        progress.show("x")
        progress.clear()
        // standard error of `swift test` is a pipe, or the output is not for people: off either way
        #expect(!TerminalProgress.standardError(forPeople: false).isEnabled)
        #expect(TerminalProgress.standardError(forPeople: true).isEnabled == (isatty(STDERR_FILENO) == 1))
    }

    @Test(arguments: [
        (UInt64(0), "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1536, "1.5 KiB"), (64 << 20, "64.0 MiB"),
        (3 << 30, "3.0 GiB"), (UInt64.max, "17179869184.0 GiB"),
    ])
    func bytesAsPeopleReadThem(bytes: UInt64, text: String) {
        #expect(TerminalProgress.byteText(bytes) == text)
    }
}
