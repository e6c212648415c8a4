import CPodstartBPF
import Foundation
import PodstartCore
import Synchronization

/// Raw records copied out of the ring buffer in one poll cycle. Copying is all the reader thread
/// does per record (the kernel already batched the wake-up), so it keeps up with bursts; decoding
/// happens on the consumer's side.
public struct RawEventBatch: Sendable {
    var storage: [UInt8]
    var ends: [Int]

    public var count: Int { ends.count }

    /// Calls `body` with each record's bytes (valid only during the call).
    public func forEachRecord(_ body: (UnsafeRawBufferPointer) -> Void) {
        storage.withUnsafeBytes { all in
            var start = 0
            for end in ends {
                body(UnsafeRawBufferPointer(rebasing: all[start..<end]))
                start = end
            }
        }
    }

    /// Decodes every record, handing rejects to `rejected`.
    public func decode(with decoder: EventDecoder = EventDecoder(),
                       rejected: (DecodeFailure) -> Void = { _ in }) -> [KernelEvent] {
        var events: [KernelEvent] = []
        events.reserveCapacity(ends.count)
        forEachRecord { record in
            switch decoder.decode(record) {
            case .success(let event): events.append(event)
            case .failure(let failure): rejected(failure)
            }
        }
        return events
    }
}

/// Reads the ring buffer on a dedicated thread (waiting on epoll blocks, so it cannot run on the
/// cooperative pool). Wakes on the kernel's batched wake-up or every `pollIntervalMs` (the kernel
/// does not wake the reader for every record), copies every waiting record out in one pass with
/// the consumer position published once per pass (CPodstartBPF's podstart_ring_drain), and yields
/// one batch per pass into a bounded AsyncStream, counting what the stream had to drop.
final class RingBufferReader: @unchecked Sendable {
    private let ring: OpaquePointer
    private let pollIntervalMs: Int32
    private let stopRequested = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)
    private var started = false
    let stream: AsyncStream<RawEventBatch>
    private let continuation: AsyncStream<RawEventBatch>.Continuation

    /// Records handed to the stream, records the stream dropped, and the reader thread's CPU time.
    let recordsRead = Atomic<UInt64>(0)
    let recordsDropped = Atomic<UInt64>(0)
    let readerCPUNanoseconds = Atomic<UInt64>(0)

    /// The most one pass copies; what is left waits for the next pass.
    static let maxBatchBytes = 1 << 20

    init(ringFD: Int32, pollIntervalMs: Int32, bufferedBatches: Int) throws {
        errno = 0
        guard let ring = podstart_ring_open(ringFD) else {
            throw BPFError.ringBuffer(errno: errno == 0 ? EINVAL : errno)
        }
        self.ring = ring
        self.pollIntervalMs = pollIntervalMs
        (stream, continuation) = AsyncStream.makeStream(
            of: RawEventBatch.self, bufferingPolicy: .bufferingOldest(bufferedBatches))
    }

    deinit {
        stop()
        podstart_ring_close(ring)
    }

    func start() {
        guard !started else { return }
        started = true
        let thread = Thread { [self] in run() }
        thread.name = "podstart-ringbuf"
        thread.start()
    }

    /// Stops the thread after a final drain; returns once it has exited.
    func stop() {
        guard started, !stopRequested.exchange(true, ordering: .acquiringAndReleasing) else { return }
        finished.wait()
    }

    private func run() {
        while !stopRequested.load(ordering: .acquiring) {
            _ = podstart_ring_wait(ring, pollIntervalMs)
            drainAll()
        }
        drainAll()
        continuation.finish()
        finished.signal()
    }

    private func drainAll() {
        while let batch = drainOnce() {
            let count = UInt64(batch.count)
            switch continuation.yield(batch) {
            case .dropped: recordsDropped.add(count, ordering: .relaxed)
            default: recordsRead.add(count, ordering: .relaxed)
            }
        }
        readerCPUNanoseconds.store(Self.threadCPUNanoseconds(), ordering: .releasing)
    }

    /// One pass over what waits in the ring, into right-sized arrays; nil when nothing waits.
    private func drainOnce() -> RawEventBatch? {
        let available = podstart_ring_available(ring)
        guard available > 0 else { return nil }
        let capacity = min(available, Self.maxBatchBytes)
        // every record takes at least a header and 8 bytes of data in the ring
        let endsCapacity = max(1, capacity / 16)
        var records = 0
        var used = 0
        var ends: [Int] = []
        let storage = [UInt8](unsafeUninitializedCapacity: capacity) { bytes, initialized in
            ends = [Int](unsafeUninitializedCapacity: endsCapacity) { endBuffer, endCount in
                records = podstart_ring_drain(ring, bytes.baseAddress, capacity, endBuffer.baseAddress,
                                              endsCapacity, &used)
                endCount = records
            }
            initialized = used
        }
        return records == 0 ? nil : RawEventBatch(storage: storage, ends: ends)
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
