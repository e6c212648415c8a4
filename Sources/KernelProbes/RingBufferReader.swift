import CPodstartBPF
import Foundation
import PodstartCore
import Synchronization

/// Raw records copied out of the ring buffer in one poll cycle. Copying is all the reader thread
/// does per record (the kernel already batched the wake-up), so it keeps up with bursts; decoding
/// happens on the consumer's side.
public struct RawEventBatch: Sendable {
    let storage: BatchStorage
    let used: Int

    public let count: Int

    /// Calls `body` with each record's bytes (valid only during the call).
    public func forEachRecord(_ body: (UnsafeRawBufferPointer) -> Void) {
        var start = 0
        for i in 0..<count {
            let end = storage.ends[i]
            body(UnsafeRawBufferPointer(start: storage.bytes + start, count: end - start))
            start = end
        }
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

/// The memory one batch is copied into. The reader keeps a few and reuses one as soon as no
/// batch refers to it any more (its consumer dropped it), so a steady stream costs no allocation
/// and no page faults per batch; while every pooled one is still held it allocates another.
final class BatchStorage: @unchecked Sendable {
    let bytes: UnsafeMutableRawPointer
    let capacity: Int
    let ends: UnsafeMutablePointer<Int>
    let endsCapacity: Int

    init(capacity: Int) {
        self.capacity = capacity
        bytes = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        // every record takes at least a header (16 bytes) in the copy
        endsCapacity = max(1, capacity / 16)
        ends = UnsafeMutablePointer<Int>.allocate(capacity: endsCapacity)
    }

    deinit {
        bytes.deallocate()
        ends.deallocate()
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
    let batches = Atomic<UInt64>(0)

    /// The most one pass copies; what is left waits for the next pass.
    static let maxBatchBytes = 1 << 20
    /// More than any record takes (a path of PATH_MAX plus the fixed part).
    static let largestRecordBytes = 8192
    /// Storage the reader reuses (touched only by the reader thread).
    private var pool: [BatchStorage] = []
    static let pooledBatches = 4

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

    /// Copies what waits now; passes go on only while one fills its storage (a burst larger than
    /// a batch), not after records that arrived during the pass: chasing the producer record by
    /// record is what the wake-up threshold is there to avoid.
    private func drainAll() {
        while let batch = drainOnce() {
            let count = UInt64(batch.count)
            let full = batch.used > batch.storage.capacity - Self.largestRecordBytes
            batches.add(1, ordering: .relaxed)
            switch continuation.yield(batch) {
            case .dropped: recordsDropped.add(count, ordering: .relaxed)
            default: recordsRead.add(count, ordering: .relaxed)
            }
            if !full { break }
        }
        readerCPUNanoseconds.store(Self.threadCPUNanoseconds(), ordering: .releasing)
    }

    /// One pass over what waits in the ring, into pooled storage; nil when nothing waits.
    private func drainOnce() -> RawEventBatch? {
        guard podstart_ring_available(ring) > 0 else { return nil }
        let storage = freeStorage()
        var used = 0
        let records = podstart_ring_drain(ring, storage.bytes, storage.capacity, storage.ends,
                                          storage.endsCapacity, &used)
        return records == 0 ? nil : RawEventBatch(storage: storage, used: used, count: records)
    }

    /// A pooled storage no batch refers to any more, or a new one (pooled while there is room).
    private func freeStorage() -> BatchStorage {
        for i in pool.indices where isKnownUniquelyReferenced(&pool[i]) {
            return pool[i]
        }
        let storage = BatchStorage(capacity: Self.maxBatchBytes)
        if pool.count < Self.pooledBatches { pool.append(storage) }
        return storage
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
