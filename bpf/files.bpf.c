// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * File opens (open, openat, openat2) of tasks in starting containers and of the runtime.
 * Only the syscall-exit tracepoints are used: the arguments are read back from the task's saved
 * user registers, so one hook per syscall, not two, sits on the slow path. A file opened again by
 * the same mount namespace only bumps a counter in ps_opens; the first open is a full record with
 * the path resolved in the kernel from the opened file (relative paths, dirfds, "..", symlinks).
 */
#include "common.bpf.h"
#include "path.bpf.h"
#include "open_record.bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct ps_open_key);
	__type(value, struct ps_open_value);
} ps_opens SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PS_OPEN_CACHE_SLOTS);
	__type(key, __u32);
	__type(value, struct ps_open_cache_slot);
} ps_open_cache SEC(".maps");

static __always_inline __u32 ps_open_slot_index(struct ps_open_key *key)
{
	__u64 h = (key->ino ^ ((__u64)key->dev << 32) ^ key->mntns ^ key->inode) * 0x9E3779B97F4A7C15ULL;
	return (__u32)(h >> 52) & (PS_OPEN_CACHE_SLOTS - 1);
}

/* Give the slot to `key` (whose open is already counted in ps_opens), first moving what the
 * slot counted for its previous file into ps_opens. */
static __always_inline void ps_open_slot_take(struct ps_open_cache_slot *slot, struct ps_open_key *key)
{
	if (!slot)
		return;
	if (slot->count) {
		struct ps_open_value *old = bpf_map_lookup_elem(&ps_opens, &slot->key);
		if (old)
			__sync_fetch_and_add(&old->count, slot->count);
	}
	slot->key = *key;
	slot->count = 0;
}

static __always_inline __u64 ps_fnv1a(const char *s, __u32 len)
{
	__u64 h = 0xcbf29ce484222325ULL;
	for (int i = 0; i < PS_RAW_PATH_LEN; i++) {
		if (i >= len)
			break;
		h ^= (__u8)s[i & (PS_RAW_PATH_LEN - 1)];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static __always_inline int ps_handle_open(long ret, int syscall)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u32 mntns = ps_task_mntns(task);
	bool runtime = false;
	if (!ps_traced_mntns(mntns)) {
		if (mntns != ps_host_mntns || !ps_is_runtime_pid(bpf_get_current_pid_tgid() >> 32))
			return 0;
		runtime = true;
	}

	/* A repeat (same file, same mount namespace) costs a slot compare and a per-CPU counter, or
	 * when this CPU's slot holds another file, one ps_opens lookup. */
	struct file *file = 0;
	struct ps_open_key key = { .mntns = mntns };
	struct ps_open_cache_slot *slot = 0;
	if (ret >= 0) {
		file = ps_fd_file(task, ret);
		if (!file)
			return 0;
		ps_file_key(file, &key.dev, &key.ino, &key.inode);
		__u32 index = ps_open_slot_index(&key);
		slot = bpf_map_lookup_elem(&ps_open_cache, &index);
		if (slot && slot->key.ino == key.ino && slot->key.dev == key.dev && slot->key.mntns == key.mntns &&
		    slot->key.inode == key.inode) {
			slot->count++;
			PS_COUNT_AGGREGATED(PS_PROG_OPEN);
			return 0;
		}
		struct ps_open_value *seen = bpf_map_lookup_elem(&ps_opens, &key);
		if (seen) {
			__sync_fetch_and_add(&seen->count, 1);
			PS_COUNT_AGGREGATED(PS_PROG_OPEN);
			ps_open_slot_take(slot, &key);
			return 0;
		}
	}

	/* A first open: now read the arguments back from the saved user registers. */
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	long dirfd = AT_FDCWD;
	const char *raw;
	unsigned long open_flags;
	if (syscall == PS_SYSCALL_OPEN) {
		raw = (const char *)PT_REGS_PARM1_CORE_SYSCALL(regs);
		open_flags = PT_REGS_PARM2_CORE_SYSCALL(regs);
	} else {
		dirfd = PT_REGS_PARM1_CORE_SYSCALL(regs);
		raw = (const char *)PT_REGS_PARM2_CORE_SYSCALL(regs);
		if (syscall == PS_SYSCALL_OPENAT2) {
			/* struct open_how { __u64 flags; … } */
			__u64 how_flags = 0;
			bpf_probe_read_user(&how_flags, sizeof(how_flags), (void *)PT_REGS_PARM3_CORE_SYSCALL(regs));
			open_flags = how_flags;
		} else {
			open_flags = PT_REGS_PARM3_CORE_SYSCALL(regs);
		}
	}

	/* The strings go together in per-CPU scratch first, so the record is reserved at the size
	 * they take (see PS_OPEN_SMALL_STRINGS), and a failed repeat costs no reservation. */
	__u32 zero = 0;
	struct ps_scratch *s = bpf_map_lookup_elem(&ps_scratch_map, &zero);
	if (!s)
		return 0;
	__u16 flags = runtime ? PS_FLAG_RUNTIME_PROCESS : 0;
	long n = bpf_probe_read_user_str(s->strings, PS_RAW_PATH_LEN, raw);
	if (n <= 0)
		s->strings[0] = 0;
	__u32 raw_len = n > 0 ? n - 1 : 0;
	if (n == PS_RAW_PATH_LEN)
		flags |= PS_FLAG_RAW_TRUNCATED;
	__u32 path_at = ps_open_path_at(raw_len);
	__u32 path_len = 0;
	if (file) {
		path_len = ps_resolve_path(__builtin_preserve_access_index(&file->f_path), task, s->strings + path_at, &flags);
	} else {
		s->strings[path_at] = 0;
		flags |= PS_FLAG_PATH_UNRESOLVED;
		/* failed opens are aggregated by the path that was tried */
		key.dev = 0;
		key.ino = ps_fnv1a(s->strings, raw_len);
		struct ps_open_value *seen = bpf_map_lookup_elem(&ps_opens, &key);
		if (seen) {
			__sync_fetch_and_add(&seen->count, 1);
			PS_COUNT_AGGREGATED(PS_PROG_OPEN);
			return 0;
		}
	}
	struct ps_open_event *e = ps_reserve_open(s, raw_len, path_len, flags, task, mntns, file, ret, dirfd,
						  open_flags, syscall, PS_PROG_OPEN);
	if (!e)
		return 0;

	struct ps_open_value first = { .count = 1, .first_ns = e->header.timestamp_ns };
	bpf_map_update_elem(&ps_opens, &key, &first, BPF_NOEXIST);
	if (file)
		ps_open_slot_take(slot, &key);
	ps_submit(e, PS_PROG_OPEN);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_openat")
int tracepoint__syscalls__sys_exit_openat(struct ps_syscall_exit_ctx *ctx)
{
	return ps_handle_open(ctx->ret, PS_SYSCALL_OPENAT);
}

SEC("tracepoint/syscalls/sys_exit_openat2")
int tracepoint__syscalls__sys_exit_openat2(struct ps_syscall_exit_ctx *ctx)
{
	return ps_handle_open(ctx->ret, PS_SYSCALL_OPENAT2);
}

SEC("tracepoint/syscalls/sys_exit_open")
int tracepoint__syscalls__sys_exit_open(struct ps_syscall_exit_ctx *ctx)
{
	return ps_handle_open(ctx->ret, PS_SYSCALL_OPEN);
}
