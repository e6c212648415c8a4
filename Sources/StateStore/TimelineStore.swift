import Foundation
import GRDB
import Logging
import PodstartCore

/// Recorded pod starts in SQLite (`<state-dir>/podstart.sqlite`), so timelines and access
/// traces survive agent restarts.
///
/// Durability: WAL journal with `synchronous=NORMAL`. A commit appends its pages to the WAL with
/// `write(2)` before `save` returns; they are then in the kernel's page cache, which outlives the
/// process, so a `kill -9` (or an OOM kill, or a crash) loses nothing committed. Only an
/// operating-system crash or power loss can lose the last commits before the next checkpoint's
/// fsync, and never corrupts the file. `synchronous=FULL` (an fsync per commit) closes that gap
/// at the cost of a disk flush per pod start; set `Configuration.fsyncEveryCommit` for it.
///
/// Each start is stored as its contract JSON (accesses included) plus indexed columns; the
/// `container_images` table maps image digests to starts, which is what access profiles query.
public final class TimelineStore: TimelineProvider, Sendable {
    public static let fileName = "podstart.sqlite"

    public struct Configuration: Sendable {
        /// Starts whose `created` is older than this are deleted (nil: no age limit).
        public var maxAgeSeconds: Int64?
        /// When the stored trace JSON passes this many bytes, the oldest starts are deleted
        /// (nil: no size limit). The file stays near this size plus SQLite's overhead: freed
        /// pages are reused, and returned to the file system by incremental vacuum.
        public var maxBytes: Int64?
        /// `synchronous=FULL`: survive power loss too, for an fsync per save.
        public var fsyncEveryCommit: Bool
        public init(maxAgeSeconds: Int64? = 7 * 86_400, maxBytes: Int64? = 512 << 20, fsyncEveryCommit: Bool = false) {
            self.maxAgeSeconds = maxAgeSeconds
            self.maxBytes = maxBytes
            self.fsyncEveryCommit = fsyncEveryCommit
        }
    }

    /// The clocks the store reads: the wall clock (for `saved_at`) and CLOCK_MONOTONIC, which
    /// drives retention's "now" (tests step the wall clock).
    public struct Clock: Sendable {
        public var wall: @Sendable () -> Int64
        public var monotonic: @Sendable () -> UInt64
        public init(wall: @escaping @Sendable () -> Int64, monotonic: @escaping @Sendable () -> UInt64) {
            self.wall = wall
            self.monotonic = monotonic
        }
        public static let system = Clock(wall: { WallClock.unixNow() }, monotonic: { WallClock.monotonicNow() })
    }

    public let path: String
    public let configuration: Configuration
    let clock: Clock
    /// The wall clock and CLOCK_MONOTONIC read together at open: retention's "now" is the first
    /// plus the monotonic time since, so a step of the wall clock moves it not.
    let wallAtOpen: Int64
    let monotonicAtOpen: UInt64
    /// Where a corrupt database found at open was moved, if one was.
    public let movedAsidePath: String?
    let pool: DatabasePool
    let logger: Logger

    /// Opens (creating if needed) the store in `directory`. A file that is not a database or
    /// fails `PRAGMA quick_check` is renamed to `podstart.sqlite.corrupt-<UTC time>` (its WAL
    /// with it), logged, and a fresh database is started. Other errors (permissions, I/O)
    /// are thrown: the file is left alone.
    public init(directory: String, configuration: Configuration = Configuration(),
                logger: Logger = Logger(label: "podstart.state"), now explicitNow: Int64? = nil, clock: Clock = .system) throws {
        self.configuration = configuration
        self.clock = clock
        wallAtOpen = clock.wall()
        monotonicAtOpen = clock.monotonic()
        let now = explicitNow ?? wallAtOpen
        self.logger = logger
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        } catch {
            throw StateStoreError.directory(path: directory, reason: "\(error)")
        }
        let path = (directory as NSString).appendingPathComponent(Self.fileName)
        self.path = path
        var movedAside: String?
        var pool: DatabasePool
        do {
            pool = try Self.openChecked(path: path, configuration: configuration)
        } catch let reason as Corruption {
            let aside = try Self.moveAside(path: path, now: now)
            logger.error("state database is corrupt; moved it aside and started a fresh one",
                         metadata: ["path": "\(path)", "movedTo": "\(aside)", "reason": "\(reason.message)"])
            movedAside = aside
            pool = try Self.openChecked(path: path, configuration: configuration)
        }
        self.pool = pool
        movedAsidePath = movedAside
        openedFile = Self.identity(of: path)
        try prune(now: explicitNow)
    }

    /// "Now" for retention: the wall clock at open plus the monotonic time since, or the wall
    /// clock if that is earlier. A wall clock stepped forward (by days: a bad NTP source, a VM
    /// resumed) deletes nothing early; stepped back, starts are kept longer (never fewer kept).
    public func retentionNow() -> Int64 {
        let elapsed = Int64(clamping: clock.monotonic() &- min(monotonicAtOpen, clock.monotonic()))
        return min(clock.wall(), wallAtOpen.saturatingAdd(elapsed))
    }

    // MARK: health at run time

    /// The file opened (device, inode): a file removed or put in its place later is not it.
    let openedFile: FileIdentity?
    struct FileIdentity: Sendable, Equatable { var device: UInt64; var inode: UInt64 }

    static func identity(of path: String) -> FileIdentity? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return FileIdentity(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
    }

    /// What is wrong with the database file under the open store, or nil: removed or replaced
    /// while open (saves then go to a file no restart will find), or its header overwritten (no
    /// longer an SQLite database). Cheap: a `stat` and a 16-byte read.
    public func fileProblem() -> String? {
        guard let now = Self.identity(of: path) else {
            return "the database file \(path) was removed while open (starts saved since are lost at restart); restart the agent to start a fresh one"
        }
        if let openedFile, now != openedFile {
            return "the database file \(path) was replaced while open; restart the agent to open it"
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return "cannot open the database file \(path): \(String(cString: strerror(errno))) (errno \(errno))" }
        defer { _ = Glibc.close(fd) }
        var header = [UInt8](repeating: 0, count: 16)
        let n = header.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 16, 0) }
        // an empty file is a database whose first page is still in the WAL
        if n == 0 { return nil }
        guard n == 16, header == Array("SQLite format 3\0".utf8) else {
            return "the database file \(path) is corrupt (its header is not SQLite's); restart the agent: it moves the file aside and starts a fresh one"
        }
        return nil
    }

    /// Whether a save could go through now: the file system has `minimumFreeBytes` free and a
    /// write transaction commits. Throws what stops it.
    public func checkWritable(minimumFreeBytes: UInt64 = 1 << 20) async throws {
        var fs = statvfs()
        let directory = (path as NSString).deletingLastPathComponent
        if statvfs(directory, &fs) == 0 {
            let free = UInt64(fs.f_bavail) &* UInt64(fs.f_frsize)
            if free < minimumFreeBytes { throw StateStoreError.diskFull(path: directory, freeBytes: free) }
        }
        try await pool.write { db in try db.execute(sql: "UPDATE totals SET bytes = bytes WHERE id = 1") }
    }

    struct Corruption: Error {
        var message: String
    }

    private static func openChecked(path: String, configuration: Configuration) throws -> DatabasePool {
        var config = GRDB.Configuration()
        config.label = "podstart.state"
        config.busyMode = .timeout(5)
        let full = configuration.fsyncEveryCommit
        config.prepareDatabase { db in
            guard !db.configuration.readonly else { return }  // reader connections of the pool
            // Takes effect only on a new file (before the first table); later opens keep it.
            try db.execute(sql: "PRAGMA auto_vacuum = INCREMENTAL")
            if full { try db.execute(sql: "PRAGMA synchronous = FULL") }
        }
        let pool: DatabasePool
        do {
            pool = try DatabasePool(path: path, configuration: config)
        } catch let error as DatabaseError where isCorruption(error) {
            throw Corruption(message: error.message ?? "\(error)")
        }
        do {
            let check = try pool.read { db in try String.fetchAll(db, sql: "PRAGMA quick_check") }
            guard check == ["ok"] else {
                try? pool.close()
                throw Corruption(message: "quick_check: " + check.prefix(5).joined(separator: "; "))
            }
            try migrator.migrate(pool)
        } catch let error as DatabaseError where isCorruption(error) {
            try? pool.close()
            throw Corruption(message: error.message ?? "\(error)")
        }
        return pool
    }

    private static func isCorruption(_ error: DatabaseError) -> Bool {
        error.resultCode == .SQLITE_NOTADB || error.resultCode == .SQLITE_CORRUPT
    }

    private static func moveAside(path: String, now: Int64) throws -> String {
        let stamp = Timestamp.rfc3339(unixNanoseconds: now).prefix(19).filter { $0 != "-" && $0 != ":" } + "Z"
        var aside = "\(path).corrupt-\(stamp)"
        var n = 1
        while FileManager.default.fileExists(atPath: aside) {
            n += 1
            aside = "\(path).corrupt-\(stamp)-\(n)"
        }
        guard rename(path, aside) == 0 else {
            throw StateStoreError.moveAside(path: path, to: aside, errno: errno)
        }
        // The WAL belongs to the moved file; the shared-memory index is rebuilt from it.
        if FileManager.default.fileExists(atPath: path + "-wal") { _ = rename(path + "-wal", aside + "-wal") }
        unlink(path + "-shm")
        return aside
    }

    static let migrator: DatabaseMigrator = {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE traces (
                    id INTEGER PRIMARY KEY,
                    key TEXT NOT NULL UNIQUE,          -- pod UID, or container ID without a pod
                    uid TEXT NOT NULL,
                    namespace TEXT NOT NULL,
                    name TEXT NOT NULL,
                    created INTEGER NOT NULL,          -- Unix ns
                    ready INTEGER,                     -- Unix ns, NULL when failed
                    outcome TEXT NOT NULL,
                    e2e_ns INTEGER NOT NULL,
                    size_bytes INTEGER NOT NULL,       -- bytes of json (before it, so scans skip it)
                    saved_at INTEGER NOT NULL,         -- Unix ns
                    json TEXT NOT NULL                 -- the trace JSON contract, accesses included
                );
                CREATE INDEX traces_created ON traces(created, id);
                CREATE TABLE container_images (
                    trace_id INTEGER NOT NULL REFERENCES traces(id) ON DELETE CASCADE,
                    container TEXT NOT NULL,
                    image TEXT NOT NULL,
                    digest TEXT,
                    access_count INTEGER NOT NULL,
                    read_bytes INTEGER NOT NULL
                );
                CREATE INDEX container_images_digest ON container_images(digest, trace_id);
                CREATE INDEX container_images_trace ON container_images(trace_id);
                -- The stored size, kept by triggers inside each transaction: retention reads one row.
                CREATE TABLE totals (id INTEGER PRIMARY KEY CHECK (id = 1), bytes INTEGER NOT NULL, traces INTEGER NOT NULL);
                INSERT INTO totals VALUES (1, 0, 0);
                CREATE TRIGGER traces_insert AFTER INSERT ON traces BEGIN
                    UPDATE totals SET bytes = bytes + NEW.size_bytes, traces = traces + 1 WHERE id = 1;
                END;
                CREATE TRIGGER traces_delete AFTER DELETE ON traces BEGIN
                    UPDATE totals SET bytes = bytes - OLD.size_bytes, traces = traces - 1 WHERE id = 1;
                END;
                """)
        }
        return m
    }()

    // MARK: writing

    /// Saves a start (replacing an earlier one under the same key), then applies retention.
    /// When this returns, the start is committed.
    /// `now`, when given, is both the save time and retention's now (tests); else the wall clock
    /// and ``retentionNow()``.
    public func save(_ trace: PodStartTrace, now: Int64? = nil) async throws {
        let (savedAt, cutoffNow) = (now ?? clock.wall(), now ?? retentionNow())
        let pruned = try await pool.write { db in try self.save(trace, savedAt: savedAt, now: cutoffNow, db: db) }
        if pruned { try await pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA incremental_vacuum") } }
    }

    /// The blocking variant, for callers outside async code.
    public func saveSync(_ trace: PodStartTrace, now: Int64? = nil) throws {
        let (savedAt, cutoffNow) = (now ?? clock.wall(), now ?? retentionNow())
        let pruned = try pool.write { db in try self.save(trace, savedAt: savedAt, now: cutoffNow, db: db) }
        if pruned { try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA incremental_vacuum") } }
    }

    /// Returns whether retention deleted anything (then free pages go back to the file system).
    private func save(_ trace: PodStartTrace, savedAt: Int64, now: Int64, db: Database) throws -> Bool {
        let json = trace.json().rendered()
        let key = trace.storageKey
        try db.execute(sql: "DELETE FROM traces WHERE key = ?", arguments: [key])
        try db.execute(sql: """
            INSERT INTO traces (key, uid, namespace, name, created, ready, outcome, e2e_ns, size_bytes, saved_at, json)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, arguments: [key, trace.pod.uid, trace.pod.namespace, trace.pod.name, trace.created, trace.ready,
                             trace.outcome.rawValue, trace.e2eNanoseconds, json.utf8.count, savedAt, json])
        let id = db.lastInsertedRowID
        for c in trace.containers {
            try db.execute(sql: """
                INSERT INTO container_images (trace_id, container, image, digest, access_count, read_bytes)
                VALUES (?, ?, ?, ?, ?, ?)
                """, arguments: [id, c.name, c.image, c.imageDigest, c.accesses.count,
                                 Int64(clamping: c.accesses.reduce(UInt64(0)) { $0 &+ $1.bytes })])
        }
        return try prune(now: now, db: db)
    }

    /// Deletes starts past the age limit, then the oldest until the size limit holds.
    public func prune(now: Int64? = nil) throws {
        let now = now ?? retentionNow()
        _ = try pool.write { db in try self.prune(now: now, db: db) }
        try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA incremental_vacuum") }
    }

    private func prune(now: Int64, db: Database) throws -> Bool {
        var deleted = false
        if let maxAge = configuration.maxAgeSeconds {
            let cutoff = now - maxAge * 1_000_000_000
            try db.execute(sql: "DELETE FROM traces WHERE created < ?", arguments: [cutoff])
            deleted = db.changesCount > 0
        }
        if let maxBytes = configuration.maxBytes {
            var excess = (try Int64.fetchOne(db, sql: "SELECT bytes FROM totals WHERE id = 1") ?? 0) - maxBytes
            guard excess > 0 else { return deleted }
            var ids: [Int64] = []
            let rows = try Row.fetchCursor(db, sql: "SELECT id, size_bytes FROM traces ORDER BY created, id")
            while excess > 0, let row = try rows.next() {
                ids.append(row[0])
                excess -= row[1] as Int64
            }
            for chunk in stride(from: 0, to: ids.count, by: 500) {
                let part = ids[chunk..<min(ids.count, chunk + 500)]
                try db.execute(sql: "DELETE FROM traces WHERE id IN (\(part.map { _ in "?" }.joined(separator: ",")))",
                               arguments: StatementArguments(Array(part)))
            }
            deleted = deleted || !ids.isEmpty
        }
        return deleted
    }

    // MARK: reading

    public func recent(limit: Int, offset: Int) async throws -> [PodStartTrace] {
        let texts = try await pool.read { db in
            try String.fetchAll(db, sql: "SELECT json FROM traces ORDER BY created DESC, id DESC LIMIT ? OFFSET ?",
                                arguments: [max(0, limit), max(0, offset)])
        }
        return try texts.map(Self.decode)
    }

    public func pod(uid: String) async throws -> PodStartTrace? {
        let text = try await pool.read { db in
            try String.fetchOne(db, sql: "SELECT json FROM traces WHERE key = ?", arguments: [uid])
        }
        return try text.map(Self.decode)
    }

    public func images(limit: Int, offset: Int) async throws -> [ImageSummary] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT ci.digest, group_concat(DISTINCT ci.image), count(*), sum(ci.access_count > 0), max(t.created) AS last
                FROM container_images ci JOIN traces t ON t.id = ci.trace_id
                WHERE ci.digest IS NOT NULL
                GROUP BY ci.digest
                ORDER BY last DESC, ci.digest DESC
                LIMIT ? OFFSET ?
                """, arguments: [max(0, limit), max(0, offset)]).map { row in
                let refs: String = row[1] ?? ""
                return ImageSummary(digest: row[0], references: refs.split(separator: ",").map(String.init).sorted(),
                                    starts: row[2], startsWithAccesses: row[3], lastStarted: row[4])
            }
        }
    }

    /// The newest starts that ran `digest`, for access profiles (each trace carries the
    /// containers' access lists).
    public func traces(imageDigest digest: String, limit: Int) async throws -> [PodStartTrace] {
        let texts = try await pool.read { db in
            try String.fetchAll(db, sql: """
                SELECT t.json FROM traces t
                WHERE t.id IN (SELECT trace_id FROM container_images WHERE digest = ?)
                ORDER BY t.created DESC, t.id DESC LIMIT ?
                """, arguments: [digest, max(0, limit)])
        }
        return try texts.map(Self.decode)
    }

    /// How many starts and how many bytes of trace JSON the store holds.
    public func totals() throws -> (traces: Int, bytes: Int64) {
        try pool.read { db in
            let row = try Row.fetchOne(db, sql: "SELECT traces, bytes FROM totals WHERE id = 1")
            return (row?[0] ?? 0, row?[1] ?? 0)
        }
    }

    /// Pages in the database file, and how many of them are free (retention returns free pages
    /// to the file system, so `free` stays near 0).
    public func pageCounts() throws -> (total: Int, free: Int) {
        try pool.read { db in
            (try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0, try Int.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0)
        }
    }

    /// Checkpoints the WAL and closes the database; the store is unusable afterwards.
    public func close() throws {
        try pool.close()
    }

    private static func decode(_ text: String) throws -> PodStartTrace {
        try PodStartTrace(json: JSON.parse(text))
    }

    public static func unixNanosecondsNow() -> Int64 { WallClock.unixNow() }
}

public enum StateStoreError: Error, CustomStringConvertible, Sendable {
    case directory(path: String, reason: String)
    case moveAside(path: String, to: String, errno: Int32)
    case diskFull(path: String, freeBytes: UInt64)

    public var description: String {
        switch self {
        case .directory(let path, let reason):
            "cannot create the state directory \(path): \(reason) (check --state-dir and its permissions)"
        case .moveAside(let path, let to, let errno):
            "the state database \(path) is corrupt and could not be moved to \(to): \(String(cString: strerror(errno))) (errno \(errno)); move or delete it by hand"
        case .diskFull(let path, let free):
            "the file system of \(path) has \(free) bytes free; free some space (or lower --state-max-mib)"
        }
    }
}
