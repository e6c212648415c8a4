/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Every record the kernel side hands to user space, and every aggregate map entry user space
 * reads back. This header is included by the eBPF programs (after vmlinux_min.h) and by the Swift
 * side through the CPodstartBPF C target, so the two cannot drift; KernelProbesTests checks the
 * sizes and offsets below from Swift as well.
 *
 * Rules: include-free (the includer provides __u8…__u64/__s32), fixed-width fields, explicit
 * padding, the common header first, a _Static_assert on each size; where a record's layout is
 * not fixed (packed strings), the rule is an inline function here that both sides call. A change to a struct's layout
 * bumps PS_EVENT_VERSION; the reader skips (and counts) records of a version it does not know.
 */
#ifndef PODSTART_EVENTS_H
#define PODSTART_EVENTS_H

#define PS_EVENT_VERSION 2  /* 2: an open record packs its two strings together */

#define PS_COMM_LEN 16
#define PS_PATH_LEN 512      /* resolved absolute path, power of two (the verifier masks with it) */
#define PS_RAW_PATH_LEN 256  /* path argument exactly as the process passed it */
#define PS_ARGS_LEN 256      /* argv, NUL-separated, of an exec */

enum ps_event_kind {
	PS_EVENT_EXEC = 1,
	PS_EVENT_FORK = 2,
	PS_EVENT_EXIT = 3,
	PS_EVENT_OPEN = 4,
	PS_EVENT_READ_RANGE = 5,
	PS_EVENT_BLOCK_IO = 6,
	PS_EVENT_WRITE_BEGIN = 7,
	PS_EVENT_FUSE_REQUEST = 8,
};

/* Index of each program family in the ps_stats per-CPU array. */
enum ps_program {
	PS_PROG_EXEC = 0,
	PS_PROG_FORK = 1,
	PS_PROG_EXIT = 2,
	PS_PROG_OPEN = 3,
	PS_PROG_READ = 4,
	PS_PROG_BLOCK = 5,
	PS_PROG_WRITE = 6,
	PS_PROG_FUSE = 7,
	PS_PROG_COUNT = 8,
};

/* Bits of the `flags` fields. */
#define PS_FLAG_PATH_TRUNCATED 0x1     /* resolved path longer than PS_PATH_LEN or deeper than the walk */
#define PS_FLAG_RAW_TRUNCATED 0x2      /* raw path argument longer than PS_RAW_PATH_LEN */
#define PS_FLAG_ARGS_TRUNCATED 0x4
#define PS_FLAG_RUNTIME_PROCESS 0x8    /* the task is the container runtime or one of its children */
#define PS_FLAG_PATH_UNRESOLVED 0x10   /* no file to resolve (failed open) or walk not possible */

/* Values of ps_open_event.syscall. */
#define PS_SYSCALL_OPENAT 1
#define PS_SYSCALL_OPENAT2 2
#define PS_SYSCALL_OPEN 3
#define PS_SYSCALL_EXEC_INTERPRETER 4  /* no syscall: the ELF interpreter execve opened and mapped
                                        * itself (open_exec); result 0, no raw path */

/* Values of ps_read_range_event.source and ps_range_key.source. */
#define PS_RANGE_ACCESS 0  /* pages a task asked for: buffered read, mmap fault or fault-around */
#define PS_RANGE_FILL 1    /* pages that had to be read from storage into the page cache */

/* Bits of ps_fuse_event.flags. */
#define PS_FUSE_FILE_FROM_FILL 0x1  /* file_dev/file_ino: the file whose page cache this read fills */

/* FUSE opcodes podstart names (include/uapi/linux/fuse.h). */
#define PS_FUSE_FORGET 2
#define PS_FUSE_READ 15
#define PS_FUSE_BATCH_FORGET 42

/* Values of ps_block_event.op. */
#define PS_BLOCK_READ 0
#define PS_BLOCK_WRITE 1
#define PS_BLOCK_OTHER 2

struct ps_event_header {
	__u16 kind;          /* enum ps_event_kind */
	__u16 version;       /* PS_EVENT_VERSION */
	__u32 size;          /* bytes of the record that carry data: for open and write-begin records
	                      * the unused string space after the path's NUL is not counted, and the
	                      * reader does not copy it (the ring slot itself is sizeof the struct) */
	__u64 timestamp_ns;  /* CLOCK_MONOTONIC nanoseconds (bpf_ktime_get_ns) */
};
_Static_assert(sizeof(struct ps_event_header) == 16, "ps_event_header size");

struct ps_task_context {
	__u32 pid;        /* thread-group id as the host sees it */
	__u32 tid;
	__u32 ppid;       /* real parent's thread-group id */
	__u32 ns_pid;     /* pid inside the task's own pid namespace */
	__u32 mntns;      /* mount-namespace inode number */
	__u32 pidns;      /* pid-namespace inode number */
	__u64 cgroup_id;  /* cgroup v2 id (bpf_get_current_cgroup_id); 1 on pure v1 hierarchies */
	char comm[PS_COMM_LEN];
};
_Static_assert(sizeof(struct ps_task_context) == 48, "ps_task_context size");

struct ps_file_identity {
	__u64 ino;         /* inode number of the file as opened */
	__u64 size_bytes;  /* i_size when the event was taken */
	__u32 dev;         /* superblock device, kernel encoding (major << 20 | minor) */
	__u32 mode;        /* i_mode */
	__u64 data_ino;    /* inode that holds the data (f_mapping->host); differs on stacked fs */
	__u32 data_dev;
	__u32 _pad;
};
_Static_assert(sizeof(struct ps_file_identity) == 40, "ps_file_identity size");

struct ps_exec_event {
	struct ps_event_header header;
	struct ps_task_context task;
	struct ps_file_identity file;
	__u32 old_pid;     /* pid before exec (differs when a non-leader thread execs) */
	__u16 flags;       /* PS_FLAG_* */
	__u16 args_len;    /* bytes of args used */
	__u16 path_len;    /* bytes of path used, without the NUL */
	__u16 filename_len;
	__u32 _pad;
	char filename[PS_RAW_PATH_LEN];  /* as passed to execve */
	char path[PS_PATH_LEN];          /* the executed file, resolved from the task's root */
	char args[PS_ARGS_LEN];          /* argv, NUL separated */
};
_Static_assert(sizeof(struct ps_exec_event) == 16 + 48 + 40 + 16 + 256 + 512 + 256, "ps_exec_event size");

struct ps_fork_event {
	struct ps_event_header header;
	struct ps_task_context task;     /* the parent */
	__u32 child_pid;
	__u32 child_tid;
	__u32 flags;
	__u32 _pad;
};
_Static_assert(sizeof(struct ps_fork_event) == 80, "ps_fork_event size");

struct ps_exit_event {
	struct ps_event_header header;
	struct ps_task_context task;
	__s32 exit_code;   /* raw wait status: exit status << 8 | signal */
	__u32 flags;
};
_Static_assert(sizeof(struct ps_exit_event) == 72, "ps_exit_event size");

struct ps_open_event {
	struct ps_event_header header;
	struct ps_task_context task;
	struct ps_file_identity file;    /* zero when the open failed */
	__s32 result;      /* fd, or -errno */
	__s32 dirfd;       /* dirfd argument (AT_FDCWD = -100) */
	__u32 open_flags;  /* O_* flags argument */
	__u16 flags;       /* PS_FLAG_* */
	__u16 syscall;     /* PS_SYSCALL_* */
	__u16 path_len;
	__u16 raw_len;
	__u32 _pad;
	/* The raw path argument (raw_len bytes and a NUL), then at once the resolved path (path_len
	 * bytes and a NUL): packed, so a record carries (and the consumer reads) only the bytes used,
	 * and most records are reserved small (PS_OPEN_SMALL_STRINGS). */
	char strings[PS_RAW_PATH_LEN + PS_PATH_LEN];
};
_Static_assert(sizeof(struct ps_open_event) == 16 + 48 + 40 + 24 + 256 + 512, "ps_open_event size");

/* The packing rule of ps_open_event.strings, for both sides: the programs write by it and the
 * Swift decoder reads by it. Where the resolved path starts: right after the raw path's NUL (the
 * bound also tells the verifier the path stays inside the record). */
static inline __attribute__((always_inline)) __u32 ps_open_path_at(__u32 raw_len)
{
	__u32 at = raw_len + 1;
	return at > PS_RAW_PATH_LEN ? PS_RAW_PATH_LEN : at;
}

/* Open records whose strings fit this many bytes are reserved at the fixed part plus this (384
 * bytes instead of 896): most paths are short, and a ring of small records holds, and wakes the
 * reader for, more than twice as many opens. The reader goes by header.size either way. */
#define PS_OPEN_SMALL_STRINGS 256

/* The bytes of an open record that carry data (its header.size): up to the resolved path's NUL. */
static inline __attribute__((always_inline)) __u32 ps_open_record_size(__u32 path_at, __u32 path_len)
{
	return __builtin_offsetof(struct ps_open_event, strings) + path_at + (path_len & (PS_PATH_LEN - 1)) + 1;
}

/* A run of contiguous pages of one file, emitted when the next access is not contiguous with it
 * (the kernel merges adjacent and overlapping accesses) or when user space drains the map. */
struct ps_read_range_event {
	struct ps_event_header header;
	__u32 mntns;
	__u32 dev;         /* device of the inode that holds the pages (the lower layer on overlayfs) */
	__u64 ino;
	__u64 first_page;  /* page index (4096-byte pages) */
	__u64 page_count;
	__u64 first_ns;    /* CLOCK_MONOTONIC of the first access of the run */
	__u32 pid;         /* task that started the run */
	__u32 source;      /* PS_RANGE_* */
};
_Static_assert(sizeof(struct ps_read_range_event) == 64, "ps_read_range_event size");

struct ps_block_event {
	struct ps_event_header header;
	__u32 dev;         /* disk device, kernel encoding */
	__u32 mntns;       /* mount namespace of the submitting task; 0 = unattributed */
	__u32 pid;
	__u32 op;          /* PS_BLOCK_* */
	__u64 sector;
	__u32 bytes;
	__s32 error;
	__u64 issue_ns;
	__u64 latency_ns;
	char comm[PS_COMM_LEN];
};
_Static_assert(sizeof(struct ps_block_event) == 80, "ps_block_event size");

/* First write by a process to a regular file; the totals come from the ps_writes map under
 * (pid, file.dev, file.ino, generation). */
struct ps_write_begin_event {
	struct ps_event_header header;
	struct ps_task_context task;
	struct ps_file_identity file;
	__u16 flags;
	__u16 path_len;
	__u32 generation;  /* the inode's i_generation: tells a reused inode number from its last owner */
	char path[PS_PATH_LEN];
};
_Static_assert(sizeof(struct ps_write_begin_event) == 16 + 48 + 40 + 8 + 512, "ps_write_begin_event size");

/* One FUSE request a task of a starting container sent and waited on (fuse:fuse_request_send in
 * the requesting task's context, fuse:fuse_request_end in the daemon's): on a lazy-pull
 * snapshotter, a remote fetch the container waited for. The header's timestamp is the reply. */
struct ps_fuse_event {
	struct ps_event_header header;
	struct ps_task_context task;  /* the task that sent the request, as it sent it */
	__u64 send_ns;     /* CLOCK_MONOTONIC of fuse_request_send */
	__u64 unique;      /* the connection's request id */
	__u32 connection;  /* the FUSE connection: the mount's superblock device, kernel encoding */
	__u32 opcode;      /* enum fuse_opcode */
	__u32 in_len;      /* bytes of the request, its header included */
	__u32 out_len;     /* bytes of the reply, its 16-byte header included */
	__s32 error;       /* the reply's error, 0 or -errno */
	__u32 flags;       /* PS_FUSE_* */
	__u64 file_ino;    /* FUSE_READ: the inode whose page cache the read fills; 0 unknown */
	__u32 file_dev;
	__u32 _pad;
};
_Static_assert(sizeof(struct ps_fuse_event) == 120, "ps_fuse_event size");

/* ---- aggregate maps user space reads back ---- */

struct ps_open_key {
	__u32 mntns;
	__u32 dev;    /* 0 for failed opens */
	__u64 ino;    /* for failed opens: FNV-1a hash of the raw path */
	/* The kernel's struct inode of the file (its address; 0 for failed opens). (dev, ino) alone is
	 * not one file on an overlayfs whose layers are on different file systems, as a lazy-pull
	 * snapshotter's FUSE layers are: overlayfs then gives a lower file the inode number it has in
	 * its layer, and two layers' files share it (/etc/passwd and /data/random.bin were both 7),
	 * so the second file's first open was taken for a repeat of the first and never recorded. */
	__u64 inode;
};
_Static_assert(sizeof(struct ps_open_key) == 24, "ps_open_key size");

struct ps_open_value {
	__u64 count;     /* opens of this file in this mount namespace, the first included */
	__u64 first_ns;
};
_Static_assert(sizeof(struct ps_open_value) == 16, "ps_open_value size");

/* ps_open_cache: a per-CPU direct-mapped cache in front of ps_opens. A repeat open that hits it
 * only bumps the slot's count (no hash lookup, no atomic); the count moves into ps_opens when the
 * slot is taken by another file, and user space adds what still waits in slots when it reads. */
#define PS_OPEN_CACHE_SLOTS 4096
struct ps_open_cache_slot {
	struct ps_open_key key;  /* all zero: empty */
	__u64 count;             /* opens of key on this CPU not yet added to ps_opens */
};
_Static_assert(sizeof(struct ps_open_cache_slot) == 32, "ps_open_cache_slot size");

struct ps_range_key {
	__u32 mntns;
	__u32 dev;
	__u64 ino;
	__u32 source;  /* PS_RANGE_* */
	__u32 _pad;
};
_Static_assert(sizeof(struct ps_range_key) == 24, "ps_range_key size");

struct ps_range_value {
	__u64 first_page;
	__u64 end_page;   /* exclusive */
	__u64 first_ns;
	__u32 pid;
	__u32 _pad;
};
_Static_assert(sizeof(struct ps_range_value) == 32, "ps_range_value size");

/* ps_range_cache: per CPU, pages an access of key found inside the open run of ps_ranges, valid
 * while ps_range_generation still holds `generation` (bumped before any run is replaced or
 * drained; runs only grow otherwise, so those pages are still inside the run). An access inside
 * the slot's pages changes nothing in the map, so it is counted and skipped without the lookup. */
#define PS_RANGE_CACHE_SLOTS 4096
struct ps_range_cache_slot {
	struct ps_range_key key;
	__u64 first_page;
	__u64 end_page;    /* exclusive */
	__u64 generation;
};
_Static_assert(sizeof(struct ps_range_cache_slot) == 48, "ps_range_cache_slot size");

/* A file system hands a freed inode number to the next file it creates (ext4 does so at once:
 * containerd deletes small ingest files during a pull and the layer files unpacked next get
 * their numbers). The generation changes with every new inode (random on ext4, xfs, tmpfs), so
 * an unpacked file's writes never fold into a deleted download's entry. */
struct ps_write_key {
	__u32 pid;
	__u32 dev;
	__u64 ino;
	__u32 generation;  /* i_generation */
	__u32 _pad;
};
_Static_assert(sizeof(struct ps_write_key) == 24, "ps_write_key size");

struct ps_write_value {
	__u64 first_ns;
	__u64 last_ns;
	__u64 bytes;
	__u64 writes;
	__u32 mntns;
	__u32 flags;
};
_Static_assert(sizeof(struct ps_write_value) == 40, "ps_write_value size");

struct ps_prog_stats {
	__u64 events;      /* records submitted to the ring buffer */
	__u64 lost;        /* records dropped because the ring buffer was full */
	__u64 aggregated;  /* occurrences folded into an aggregate instead of a record */
};
_Static_assert(sizeof(struct ps_prog_stats) == 24, "ps_prog_stats size");

#endif /* PODSTART_EVENTS_H */
