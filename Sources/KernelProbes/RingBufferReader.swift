import CPodstartBPF
import Foundation
import PodstartCore
import Synchronization

/// The records of one pass over the ring buffer. They are read where the kernel wrote them: the
/// batch holds its stretch of the ring until the last copy of it is gone, and only then may the
/// producers reuse that space. So decode a batch and let it go; to keep records for later, keep
/// `detached()` copies (the ring is the only buffer between the kernel and a slow consumer, and
/// records that find it full are lost, counted per program).
public struct RawEventBatch: Sendable {
    let span: RecordSpan

    public var count: Int { span.records.count }

    /// Calls `body` with each record's bytes (valid only during the call).
    public func forEachRecord(_ body: (UnsafeRawBufferPointer) -> Void) {
        let base = span.base
        for record in span.records {
            body(UnsafeRawBufferPointer(start: base + Int(record.offset), count: Int(record.length)))
        }
    }

    /// A batch of records held in memory of its own (recorded records replayed, damaged ones
    /// made on purpose): decoded exactly as the ring's.
    public init(copying records: [[UInt8]]) {
        let total = records.reduce(0) { $0 + $1.count }
        let bytes = UnsafeMutableRawPointer.allocate(byteCount: max(total, 1), alignment: 16)
        var spans: [podstart_ring_record] = []
        var offset = 0
        for record in records {
            record.withUnsafeBytes { bytes.advanced(by: offset).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            spans.append(podstart_ring_record(offset: UInt32(offset), length: UInt32(record.count)))
            offset += record.count
        }
        span = RecordSpan(base: UnsafeRawPointer(bytes), records: spans, owner: .memory(bytes))
    }

    init(span: RecordSpan) { self.span = span }

    /// A copy in memory of its own, which releases nothing in the ring when it goes (the ring's
    /// stretch is released when this batch goes).
    public func detached() -> RawEventBatch {
        let total = span.records.reduce(0) { $0 + Int($1.length) }
        let bytes = UnsafeMutableRawPointer.allocate(byteCount: max(total, 1), alignment: 16)
        var records: [podstart_ring_record] = []
        records.reserveCapacity(span.records.count)
        var offset = 0
        for record in span.records {
            bytes.advanced(by: offset).copyMemory(from: span.base + Int(record.offset), byteCount: Int(record.length))
            records.append(podstart_ring_record(offset: UInt32(offset), length: record.length))
            offset += Int(record.length)
        }
        return RawEventBatch(span: RecordSpan(base: UnsafeRawPointer(bytes), records: records, owner: .memory(bytes)))
    }

    /// Decodes every record, handing rejects to `rejected`.
    public func decode(with decoder: EventDecoder = EventDecoder(),
                       rejected: (DecodeFailure) -> Void = { _ in }) -> [KernelEvent] {
        var events: [KernelEvent] = []
        events.reserveCapacity(count)
        forEachRecord { record in
            switch decoder.decode(record) {
            case .success(let event): events.append(event)
            case .failure(let failure): rejected(failure)
            }
        }
        return events
    }
}

/// Where a batch's records lie, and what to do when no batch refers to them any more.
final class RecordSpan: @unchecked Sendable {
    enum Owner {
        /// A stretch of the ring, ending at this ring position.
        case ring(RingMapping, end: UInt)
        /// Memory of its own (a detached copy).
        case memory(UnsafeMutableRawPointer)
    }

    let base: UnsafeRawPointer
    let records: [podstart_ring_record]
    let owner: Owner

    init(base: UnsafeRawPointer, records: [podstart_ring_record], owner: Owner) {
        self.base = base
        self.records = records
        self.owner = owner
    }

    deinit {
        switch owner {
        case let .ring(mapping, end): mapping.release(upTo: end)
        case let .memory(bytes): bytes.deallocate()
        }
    }
}

/// The mapped ring buffer, alive while the reader or any batch still refers to it. Batches may
/// be released in any order; the consumer position moves over a stretch once it and every
/// stretch before it are released.
final class RingMapping: @unchecked Sendable {
    let ring: OpaquePointer

    private struct Releases {
        /// Ends of the stretches handed out and not yet passed by the consumer position, in order.
        var outstanding: [UInt] = []
        var head = 0
        /// Ends released before an earlier stretch was.
        var early: Set<UInt> = []
    }
    private let releases = Mutex(Releases())

    init(ringFD: Int32) throws {
        errno = 0
        guard let ring = podstart_ring_open(ringFD) else {
            throw BPFError.ringBuffer(errno: errno == 0 ? EINVAL : errno)
        }
        self.ring = ring
    }

    deinit { podstart_ring_close(ring) }

    /// Records that the stretch ending at `end` is being handed out (in ring order).
    func handOut(upTo end: UInt) {
        releases.withLock { $0.outstanding.append(end) }
    }

    func release(upTo end: UInt) {
        releases.withLock { state in
            guard state.head < state.outstanding.count, state.outstanding[state.head] == end else {
                state.early.insert(end)
                return
            }
            var passed = end
            state.head += 1
            while state.head < state.outstanding.count, state.early.remove(state.outstanding[state.head]) != nil {
                passed = state.outstanding[state.head]
                state.head += 1
            }
            if state.head >= 256, state.head * 2 >= state.outstanding.count {
                state.outstanding.removeFirst(state.head)
                state.head = 0
            }
            podstart_ring_release(ring, passed)
        }
    }
}

/// Reads the ring buffer on a dedicated thread (waiting on epoll blocks, so it cannot run on the
/// cooperative pool). Wakes on the kernel's batched wake-up or every `pollIntervalMs` (the kernel
/// does not wake the reader for every record), finds the records waiting (one header read each,
/// no copy) and yields them as one batch into a bounded AsyncStream, counting what the stream had
/// to drop.
final class RingBufferReader: @unchecked Sendable {
    private let mapping: RingMapping
    private let pollIntervalMs: Int32
    private let stopRequested = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)
    private var started = false
    /// Where the next pass starts, and where a pass lists its records before they are copied
    /// into an array of their own size (touched only by the reader thread).
    private var position: UInt
    private let scratch = UnsafeMutableBufferPointer<podstart_ring_record>.allocate(capacity: RingBufferReader.maxBatchRecords)
    let stream: AsyncStream<RawEventBatch>
    private let continuation: AsyncStream<RawEventBatch>.Continuation

    /// Records handed to the stream, records the stream dropped, and the reader thread's CPU time.
    let recordsRead = Atomic<UInt64>(0)
    let recordsDropped = Atomic<UInt64>(0)
    let readerCPUNanoseconds = Atomic<UInt64>(0)
    let batches = Atomic<UInt64>(0)

    /// The most records one pass hands over; what is left waits for the next pass.
    static let maxBatchRecords = 1 << 16

    init(ringFD: Int32, pollIntervalMs: Int32, bufferedBatches: Int) throws {
        mapping = try RingMapping(ringFD: ringFD)
        position = podstart_ring_consumer(mapping.ring)
        self.pollIntervalMs = pollIntervalMs
        (stream, continuation) = AsyncStream.makeStream(
            of: RawEventBatch.self, bufferingPolicy: .bufferingOldest(bufferedBatches))
    }

    deinit {
        stop()
        scratch.deallocate()
    }

    func start() {
        guard !started else { return }
        started = true
        let thread = Thread { [self] in run() }
        thread.name = "podstart-ringbuf"
        thread.start()
    }

    /// Stops the thread after a final pass; returns once it has exited.
    func stop() {
        guard started, !stopRequested.exchange(true, ordering: .acquiringAndReleasing) else { return }
        finished.wait()
    }

    private func run() {
        while !stopRequested.load(ordering: .acquiring) {
            _ = podstart_ring_wait(mapping.ring, pollIntervalMs)
            readAll()
        }
        readAll()
        continuation.finish()
        finished.signal()
    }

    /// Hands over what waits now; passes go on only while one is cut short by the record limit,
    /// not after records that arrived during the pass: chasing the producer record by record is
    /// what the wake-up threshold is there to avoid.
    private func readAll() {
        while let (batch, full) = readOnce() {
            let count = UInt64(batch.count)
            batches.add(1, ordering: .relaxed)
            switch continuation.yield(batch) {
            case .dropped: recordsDropped.add(count, ordering: .relaxed)
            default: recordsRead.add(count, ordering: .relaxed)
            }
            if !full { break }
        }
        readerCPUNanoseconds.store(Self.threadCPUNanoseconds(), ordering: .releasing)
    }

    /// One pass from where the last one ended; nil when nothing waits.
    private func readOnce() -> (RawEventBatch, full: Bool)? {
        let ring = mapping.ring
        guard podstart_ring_pending(ring, position) > 0 else { return nil }
        var end: UInt = position
        let start = position
        let found = podstart_ring_scan(ring, start, scratch.baseAddress, scratch.count, &end)
        guard end != start else { return nil }
        let records = Array(scratch[..<found])
        position = end
        mapping.handOut(upTo: end)
        let span = RecordSpan(base: UnsafeRawPointer(podstart_ring_address(ring, start)), records: records,
                              owner: .ring(mapping, end: end))
        // a pass over discarded records only: `span` goes at once and releases its stretch
        guard !records.isEmpty else { return nil }
        return (RawEventBatch(span: span), found == scratch.count)
    }

    static func threadCPUNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}

/// The session's records as typed `KernelEvent`s, one at a time. Records that fail to decode
/// (truncated, unknown kind or version) are skipped and counted in `rejected`.
public struct KernelEventSequence: AsyncSequence, Sendable {
    public typealias Element = KernelEvent
    let batches: AsyncStream<RawEventBatch>
    public let rejected: RejectedRecords

    public final class RejectedRecords: Sendable {
        private let counts = Mutex<[EventDecoder.Rejection: UInt64]>([:])
        public var byReason: [EventDecoder.Rejection: UInt64] { counts.withLock { $0 } }
        public var total: UInt64 { counts.withLock { $0.values.reduce(0, +) } }
        func add(_ failure: DecodeFailure) { counts.withLock { $0[failure.reason, default: 0] += 1 } }
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: AsyncStream<RawEventBatch>.AsyncIterator
        let rejected: RejectedRecords
        var pending: [KernelEvent] = []
        var index = 0

        public mutating func next() async -> KernelEvent? {
            while index >= pending.count {
                guard let batch = await base.next() else { return nil }
                let rejected = self.rejected
                pending = batch.decode(rejected: { rejected.add($0) })
                index = 0
            }
            defer { index += 1 }
            return pending[index]
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: batches.makeAsyncIterator(), rejected: rejected)
    }
}
