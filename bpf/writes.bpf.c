// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Writes to regular files by the container runtime and its children (containerd's content-store
 * ingest = download; snapshot unpack = decompress) and by tasks of starting containers. Per
 * (process, file) the kernel keeps first write, last write, bytes and count in ps_writes; only the
 * first write of a pair becomes a record (with the resolved path), the rest are folded. A file is
 * its device, inode number and inode generation: inode numbers are reused (see ps_write_key).
 */
#include "common.bpf.h"
#include "path.bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct ps_write_key);
	__type(value, struct ps_write_value);
} ps_writes SEC(".maps");

static __always_inline int ps_handle_write(long ret)
{
	if (ret <= 0)
		return 0;
	struct task_struct *task = bpf_get_current_task_btf();
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u32 mntns = ps_task_mntns(task);
	__u16 flags = 0;
	if (!ps_traced_mntns(mntns)) {
		if (mntns != ps_host_mntns || !ps_is_runtime_pid(tgid))
			return 0;
		flags = PS_FLAG_RUNTIME_PROCESS;
	}

	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	struct file *file = ps_fd_file(task, PT_REGS_PARM1_CORE_SYSCALL(regs));
	if (!file)
		return 0;
	struct inode *inode = BPF_CORE_READ(file, f_inode);
	if ((BPF_CORE_READ(inode, i_mode) & S_IFMT) != S_IFREG)
		return 0; /* pipes, sockets, terminals */

	__u64 now = bpf_ktime_get_ns();
	/* keyed on the inode's generation too: an inode number freed by an unlink comes back for
	 * the next file created, and that file's writes are not the deleted one's (see ps_write_key) */
	struct ps_write_key key = { .pid = tgid, .dev = BPF_CORE_READ(inode, i_sb, s_dev), .ino = BPF_CORE_READ(inode, i_ino),
				    .generation = BPF_CORE_READ(inode, i_generation) };
	struct ps_write_value *agg = bpf_map_lookup_elem(&ps_writes, &key);
	if (agg) {
		agg->last_ns = now;
		__sync_fetch_and_add(&agg->bytes, ret);
		__sync_fetch_and_add(&agg->writes, 1);
		PS_COUNT_AGGREGATED(PS_PROG_WRITE);
		return 0;
	}
	struct ps_write_value fresh = { .first_ns = now, .last_ns = now, .bytes = ret, .writes = 1, .mntns = mntns, .flags = flags };
	bpf_map_update_elem(&ps_writes, &key, &fresh, BPF_ANY);

	struct ps_write_begin_event *e = ps_reserve(sizeof(*e), PS_PROG_WRITE);
	if (!e)
		return 0;
	ps_fill_header(&e->header, PS_EVENT_WRITE_BEGIN, sizeof(*e));
	e->header.timestamp_ns = now;
	ps_fill_task(&e->task, task, mntns);
	ps_fill_file(&e->file, file);
	e->path_len = ps_resolve_path(__builtin_preserve_access_index(&file->f_path), task, e->path, &flags);
	e->flags = flags;
	e->generation = key.generation;
	e->header.size = __builtin_offsetof(struct ps_write_begin_event, path) + (e->path_len & (PS_PATH_LEN - 1)) + 1;
	ps_submit(e, PS_PROG_WRITE);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_write")
int tracepoint__syscalls__sys_exit_write(struct ps_syscall_exit_ctx *ctx)
{
	return ps_handle_write(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_pwrite64")
int tracepoint__syscalls__sys_exit_pwrite64(struct ps_syscall_exit_ctx *ctx)
{
	return ps_handle_write(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_writev")
int tracepoint__syscalls__sys_exit_writev(struct ps_syscall_exit_ctx *ctx)
{
	return ps_handle_write(ctx->ret);
}
