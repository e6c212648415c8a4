/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What every podstart program shares: the maps (declared in each object; the loader makes the
 * objects share one instance of each by name), the tunables, the "is this task being traced"
 * filter, ring-buffer submission with batched wake-ups and loss counting, and path resolution.
 */
#ifndef PODSTART_COMMON_BPF_H
#define PODSTART_COMMON_BPF_H

#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "podstart_events.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* ---- tunables, set by the loader before load ---- */

/* Mount namespace of the host (PID 1's); tasks in it are never traced unless they are runtime. */
const volatile __u32 ps_host_mntns = 0;
/* 0: every non-host mount namespace not in ps_ignored_mntns (containers that are starting);
 * 1: only the mount namespaces in ps_watched_mntns. */
const volatile __u32 ps_only_watched = 0;
/* Wake the reader only once this many bytes wait in the ring buffer; the reader also polls on a
 * timer, so nothing waits longer than its poll period. */
const volatile __u64 ps_wakeup_bytes = 256 * 1024;
/* Report opens, reads and writes of runtime processes (containerd, runc, shims, CNI plugins). */
const volatile __u32 ps_trace_runtime = 1;

/* ---- shared maps ---- */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024);
} ps_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PS_PROG_COUNT);
	__type(key, __u32);
	__type(value, struct ps_prog_stats);
} ps_stats SEC(".maps");

/* The reader's consumer position (+1) when a submit last forced a wake-up (see ps_submit). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} ps_wake_state SEC(".maps");

/* Mount namespaces of containers that are not starting (already running, or finished starting). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u8);
} ps_ignored_mntns SEC(".maps");

/* With ps_only_watched: the mount namespaces to trace. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} ps_watched_mntns SEC(".maps");

/* Thread-group ids of the container runtime and its descendants (set on exec of a runtime binary,
 * inherited on fork, cleared when a descendant execs inside a container's mount namespace). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u8);
} ps_runtime_pids SEC(".maps");

/* Bumped by user space after every change to the two sets above: tells the per-CPU verdict
 * cache below that its answers may be stale. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} ps_filter_generation SEC(".maps");

/* The last filter verdict on each CPU: a start's tasks hit the same mount namespace again and
 * again, and an inlined per-CPU array read is far cheaper than a hash lookup. */
struct ps_verdict {
	__u64 generation;
	__u32 mntns;
	__u32 traced;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ps_verdict);
} ps_verdict_cache SEC(".maps");

/* Scratch space for path walks and large records, one per CPU (the BPF stack is 512 bytes). */
struct ps_scratch {
	char buf[PS_PATH_LEN * 2];
	/* an open record's strings, put together before the record is reserved at their size */
	char strings[PS_RAW_PATH_LEN + PS_PATH_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ps_scratch);
} ps_scratch_map SEC(".maps");

/* ---- task helpers ---- */

/* `task` must be a BTF pointer (a tp_btf argument or bpf_get_current_task_btf()): the walk is
 * then plain loads the verifier guards, not three bpf_probe_read_kernel calls. It runs first in
 * every hot-path program, so this matters. A task without an nsproxy (exiting) reads as 0. */
static __always_inline __u32 ps_task_mntns(struct task_struct *task)
{
	struct nsproxy *nsproxy = task->nsproxy;
	if (!nsproxy)
		return 0;
	return nsproxy->mnt_ns->ns.inum;
}

static __always_inline void ps_count(__u32 prog, int field)
{
	struct ps_prog_stats *s = bpf_map_lookup_elem(&ps_stats, &prog);
	if (!s)
		return;
	if (field == 0)
		s->events++;
	else if (field == 1)
		s->lost++;
	else
		s->aggregated++;
}

#define PS_COUNT_EVENT(prog) ps_count(prog, 0)
#define PS_COUNT_LOST(prog) ps_count(prog, 1)
#define PS_COUNT_AGGREGATED(prog) ps_count(prog, 2)

static __always_inline bool ps_is_runtime_pid(__u32 tgid)
{
	return ps_trace_runtime && bpf_map_lookup_elem(&ps_runtime_pids, &tgid) != 0;
}

/* The filter every per-syscall and per-read program runs first: is this a task of a container
 * that is starting (or a watched one)? Cheap on purpose: a namespace read and, unless this CPU
 * just answered the same question, one hash lookup. */
static __always_inline bool ps_traced_mntns_uncached(__u32 mntns)
{
	if (ps_only_watched)
		return bpf_map_lookup_elem(&ps_watched_mntns, &mntns) != 0;
	if (mntns == ps_host_mntns)
		return false;
	return bpf_map_lookup_elem(&ps_ignored_mntns, &mntns) == 0;
}

static __always_inline bool ps_traced_mntns(__u32 mntns)
{
	__u32 zero = 0;
	__u64 *generation = bpf_map_lookup_elem(&ps_filter_generation, &zero);
	struct ps_verdict *cached = bpf_map_lookup_elem(&ps_verdict_cache, &zero);
	if (!generation || !cached)
		return ps_traced_mntns_uncached(mntns);
	__u64 g = *generation;
	if (cached->mntns == mntns && cached->generation == g)
		return cached->traced;
	bool traced = ps_traced_mntns_uncached(mntns);
	cached->mntns = mntns;
	cached->generation = g;
	cached->traced = traced;
	return traced;
}

static __always_inline __u32 ps_task_pidns(struct task_struct *task, __u32 *ns_pid)
{
	struct pid *pid = BPF_CORE_READ(task, thread_pid);
	unsigned int level = BPF_CORE_READ(pid, level);
	struct upid *up = (struct upid *)((char *)pid + bpf_core_field_offset(struct pid, numbers) +
					  (level & 31) * bpf_core_type_size(struct upid));
	*ns_pid = BPF_CORE_READ(up, nr);
	return BPF_CORE_READ(up, ns, ns.inum);
}

static __always_inline void ps_fill_task(struct ps_task_context *ctx, struct task_struct *task, __u32 mntns)
{
	__u64 id = bpf_get_current_pid_tgid();
	ctx->pid = id >> 32;
	ctx->tid = (__u32)id;
	ctx->ppid = BPF_CORE_READ(task, real_parent, tgid);
	ctx->mntns = mntns;
	ctx->pidns = ps_task_pidns(task, &ctx->ns_pid);
	ctx->cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(ctx->comm, sizeof(ctx->comm));
}

static __always_inline void ps_fill_header(struct ps_event_header *h, __u16 kind, __u32 size)
{
	h->kind = kind;
	h->version = PS_EVENT_VERSION;
	h->size = size;
	h->timestamp_ns = bpf_ktime_get_ns();
}

/* Reserve a record, counting a loss when the ring buffer is full. */
static __always_inline void *ps_reserve(__u64 size, __u32 prog)
{
	void *rec = bpf_ringbuf_reserve(&ps_events, size, 0);
	if (!rec)
		PS_COUNT_LOST(prog);
	return rec;
}

/* Submit without waking the reader until enough data waits, and then once: every submit while
 * the reader is still on its way would queue another wake-up, which the reader, having drained
 * the lot, would take for new data and answer with a pass over a handful of records (measured:
 * every other pass). So a forced wake-up is sent once per consumer position. */
static __always_inline void ps_submit(void *rec, __u32 prog)
{
	__u64 flags = BPF_RB_NO_WAKEUP;
	if (bpf_ringbuf_query(&ps_events, BPF_RB_AVAIL_DATA) >= ps_wakeup_bytes) {
		__u32 zero = 0;
		__u64 *woken = bpf_map_lookup_elem(&ps_wake_state, &zero);
		/* +1: position 0 is a real position, and 0 is also the map's initial value */
		__u64 mark = bpf_ringbuf_query(&ps_events, BPF_RB_CONS_POS) + 1;
		if (woken && *woken != mark) {
			*woken = mark;
			flags = BPF_RB_FORCE_WAKEUP;
		}
	}
	bpf_ringbuf_submit(rec, flags);
	PS_COUNT_EVENT(prog);
}

/* Submit and wake the reader now: for execs, rare and latency-critical (an exec of runc or of a
 * container's first process is what opens a start window). */
static __always_inline void ps_submit_wake(void *rec, __u32 prog)
{
	bpf_ringbuf_submit(rec, BPF_RB_FORCE_WAKEUP);
	PS_COUNT_EVENT(prog);
}

static __always_inline void ps_fill_file(struct ps_file_identity *id, struct file *file)
{
	struct inode *inode = BPF_CORE_READ(file, f_inode);
	struct inode *host = BPF_CORE_READ(file, f_mapping, host);
	id->ino = BPF_CORE_READ(inode, i_ino);
	id->size_bytes = BPF_CORE_READ(inode, i_size);
	id->dev = BPF_CORE_READ(inode, i_sb, s_dev);
	id->mode = BPF_CORE_READ(inode, i_mode);
	if (host) {
		id->data_ino = BPF_CORE_READ(host, i_ino);
		id->data_dev = BPF_CORE_READ(host, i_sb, s_dev);
	} else {
		id->data_ino = id->ino;
		id->data_dev = id->dev;
	}
}

#ifdef PS_RDONLY_CAST
/* Kernels 6.2+: a kernel pointer read out of memory becomes an untrusted BTF pointer whose fields
 * are plain loads (the JIT guards each against faults, a bad one reads 0) instead of one
 * bpf_probe_read_kernel call each. Only objects built with PS_RDONLY_CAST use it; the loader
 * picks them when the kernel has the kfunc (see files_cast.bpf.c). */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;
#define PS_KERNEL_PTR(type, ptr) ((type *)bpf_rdonly_cast((ptr), bpf_core_type_id_kernel(type)))
#endif

/* The (device, inode) of an open file: the key of every per-file aggregate. */
static __always_inline void ps_file_key(struct file *file, __u32 *dev, __u64 *ino)
{
#ifdef PS_RDONLY_CAST
	struct inode *inode = PS_KERNEL_PTR(struct file, file)->f_inode;
	*dev = inode->i_sb->s_dev;
	*ino = inode->i_ino;
#else
	struct inode *inode = BPF_CORE_READ(file, f_inode);
	*dev = BPF_CORE_READ(inode, i_sb, s_dev);
	*ino = BPF_CORE_READ(inode, i_ino);
#endif
}

/* The struct file behind a descriptor of the current task, or NULL. `task` is a BTF pointer. */
static __always_inline struct file *ps_fd_file(struct task_struct *task, long fd)
{
	struct fdtable *fdt = task->files->fdt;
	if (fd < 0 || fd >= fdt->max_fds)
		return 0;
	struct file **fds = fdt->fd;
	struct file *file = 0;
	bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]);
	return file;
}

/* ---- path resolution ---- */

#define PS_MAX_PATH_DEPTH 64

struct ps_walk {
	struct dentry *dentry;
	struct vfsmount *vfsmnt;
	struct mount *mnt;
	struct dentry *root_dentry;
	struct vfsmount *root_mnt;
	__u32 pos;       /* next free byte of the scratch buffer, writing backwards */
	__u32 done;      /* 1: reached the root; 2: ran out of room */
};

/* One step of the walk, run by bpf_loop: the verifier checks it once instead of once per
 * iteration, which is what keeps a 64-deep walk loadable. */
static long ps_walk_step(__u64 index, void *data)
{
	struct ps_walk *w = data;
	__u32 zero = 0;
	struct ps_scratch *s = bpf_map_lookup_elem(&ps_scratch_map, &zero);
	if (!s)
		return 1;

	/* plain loads into locals: inside BPF_CORE_READ, w->field would become a CO-RE relocation */
	struct dentry *dentry = w->dentry;
	struct vfsmount *vfsmnt = w->vfsmnt;
	struct mount *mnt = w->mnt;
	if (dentry == w->root_dentry && vfsmnt == w->root_mnt) {
		w->done = 1;
		return 1;
	}
	struct dentry *mnt_root = BPF_CORE_READ(vfsmnt, mnt_root);
	struct dentry *parent = BPF_CORE_READ(dentry, d_parent);
	if (dentry == mnt_root || dentry == parent) {
		struct mount *mnt_parent = BPF_CORE_READ(mnt, mnt_parent);
		if (dentry != mnt_root || mnt_parent == mnt) {
			/* the global root, or a detached dentry: nothing above it */
			w->done = 1;
			return 1;
		}
		w->dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
		w->mnt = mnt_parent;
		w->vfsmnt = (struct vfsmount *)((char *)mnt_parent + bpf_core_field_offset(struct mount, mnt));
		return 0;
	}
	struct qstr name = BPF_CORE_READ(dentry, d_name);
	__u32 len = name.len;
	if (len > 255)
		len = 255;
	__u32 pos = w->pos;
	if (len + 1 > pos) {
		w->done = 2;
		return 1;
	}
	pos -= len;
	bpf_probe_read_kernel(&s->buf[pos & (PS_PATH_LEN - 1)], len & 255, name.name);
	pos -= 1;
	s->buf[pos & (PS_PATH_LEN - 1)] = '/';
	w->pos = pos;
	w->dentry = parent;
	return 0;
}

/*
 * Resolve (dentry, vfsmount) to an absolute path as seen from the task's root (chroot and
 * pivot_root respected, mounts crossed), writing it to `out` (PS_PATH_LEN bytes, NUL terminated).
 * Components are laid down from the end of a per-CPU scratch buffer, then copied out. Returns the
 * length without the NUL; sets PS_FLAG_PATH_TRUNCATED when the path did not fit or was deeper
 * than PS_MAX_PATH_DEPTH (the components nearest the file are kept).
 */
static __always_inline __u32 ps_resolve_path(struct path *target, struct task_struct *task, char *out, __u16 *flags)
{
	__u32 zero = 0;
	struct ps_scratch *s = bpf_map_lookup_elem(&ps_scratch_map, &zero);
	if (!s)
		return 0;

	struct ps_walk w = {
		.dentry = BPF_CORE_READ(target, dentry),
		.vfsmnt = BPF_CORE_READ(target, mnt),
		.root_dentry = BPF_CORE_READ(task, fs, root.dentry),
		.root_mnt = BPF_CORE_READ(task, fs, root.mnt),
		.pos = PS_PATH_LEN - 1,
		.done = 0,
	};
	w.mnt = (struct mount *)((char *)w.vfsmnt - bpf_core_field_offset(struct mount, mnt));
	s->buf[PS_PATH_LEN - 1] = 0;
	bpf_loop(PS_MAX_PATH_DEPTH, ps_walk_step, &w, 0);
	if (w.done != 1)
		*flags |= PS_FLAG_PATH_TRUNCATED;

	__u32 pos = w.pos & (PS_PATH_LEN - 1);
	__u32 len = PS_PATH_LEN - 1 - pos;
	if (len == 0) {
		out[0] = '/';
		out[1] = 0;
		return 1;
	}
	bpf_probe_read_kernel(out, (len + 1) & (PS_PATH_LEN - 1), &s->buf[pos]);
	return len;
}

/* An open record for strings put together in scratch (s->strings: the raw path and its NUL, then
 * the resolved path and its NUL at ps_open_path_at(raw_len)), reserved at the size they take: the
 * fixed part plus PS_OPEN_SMALL_STRINGS when they fit (most do), the whole record otherwise.
 * Everything is filled in; the caller submits it. NULL when the ring buffer is full (counted). */
static __always_inline struct ps_open_event *ps_reserve_open(struct ps_scratch *s, __u32 raw_len, __u32 path_len,
							     __u16 flags, struct task_struct *task, __u32 mntns,
							     struct file *file, __s32 result, __s32 dirfd,
							     __u32 open_flags, __u16 syscall, __u32 prog)
{
	__u32 size = ps_open_record_size(ps_open_path_at(raw_len), path_len);
	__u32 strings_len = size - __builtin_offsetof(struct ps_open_event, strings);
	struct ps_open_event *e;
	/* Each copy is bounded by its own reservation right where it is made: the barrier keeps
	 * the compiler from merging the two copies into one whose length the verifier cannot tie to
	 * either size (inlined into the exec program, it did). */
	if (strings_len <= PS_OPEN_SMALL_STRINGS) {
		e = ps_reserve(__builtin_offsetof(struct ps_open_event, strings) + PS_OPEN_SMALL_STRINGS, prog);
		if (!e)
			return 0;
		__u32 n = strings_len;
		asm volatile("" : "+r"(n));
		if (n > PS_OPEN_SMALL_STRINGS)
			n = PS_OPEN_SMALL_STRINGS;
		bpf_probe_read_kernel(e->strings, n, s->strings);
	} else {
		e = ps_reserve(sizeof(*e), prog);
		if (!e)
			return 0;
		__u32 n = strings_len;
		asm volatile("" : "+r"(n));
		if (n > sizeof(e->strings))
			n = sizeof(e->strings);
		bpf_probe_read_kernel(e->strings, n, s->strings);
	}
	ps_fill_header(&e->header, PS_EVENT_OPEN, size);
	ps_fill_task(&e->task, task, mntns);
	if (file)
		ps_fill_file(&e->file, file);
	else
		__builtin_memset(&e->file, 0, sizeof(e->file));
	e->result = result;
	e->dirfd = dirfd;
	e->open_flags = open_flags;
	e->syscall = syscall;
	e->_pad = 0;
	e->raw_len = raw_len;
	e->path_len = path_len;
	e->flags = flags;
	return e;
}

/* Is `comm` one of the container runtime's own programs? Only called on exec, which is rare. */
static __always_inline bool ps_is_runtime_comm(const char *comm)
{
	/* "containerd", "containerd-shim", "containerd-shim-runc-v2" (comm keeps 15 bytes) */
	if (comm[0] == 'c' && comm[1] == 'o' && comm[2] == 'n' && comm[3] == 't' && comm[4] == 'a' &&
	    comm[5] == 'i' && comm[6] == 'n' && comm[7] == 'e' && comm[8] == 'r' && comm[9] == 'd')
		return true;
	if (comm[0] == 'r' && comm[1] == 'u' && comm[2] == 'n' && comm[3] == 'c' && comm[4] == 0)
		return true;
	if (comm[0] == 'c' && comm[1] == 'r' && comm[2] == 'u' && comm[3] == 'n' && comm[4] == 0)
		return true;
	if (comm[0] == 'c' && comm[1] == 'o' && comm[2] == 'n' && comm[3] == 'm' && comm[4] == 'o' &&
	    comm[5] == 'n' && comm[6] == 0)
		return true;
	return false;
}

#endif /* PODSTART_COMMON_BPF_H */
