// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Process lifecycle: exec, fork, exit. These are the only hooks that stay attached all the time:
 * they fire once per process, not once per syscall, so a node whose containers are not starting
 * does not feel them. They also tell user space that a start is under way (runc, shims and CNI
 * plugins exec well before a container's first process) and keep the runtime-process set current.
 */
#include "common.bpf.h"
#include "path.bpf.h"
#include "open_record.bpf.h"

/* Copy argv (NUL separated) from the new image's stack; bounded by PS_ARGS_LEN. */
static __always_inline __u16 ps_read_args(struct task_struct *task, char *out, __u16 *flags)
{
	unsigned long start = BPF_CORE_READ(task, mm, arg_start);
	unsigned long end = BPF_CORE_READ(task, mm, arg_end);
	unsigned long len = end - start;
	if (end <= start)
		return 0;
	if (len > PS_ARGS_LEN - 1) {
		len = PS_ARGS_LEN - 1;
		*flags |= PS_FLAG_ARGS_TRUNCATED;
	}
	if (bpf_probe_read_user(out, len & (PS_ARGS_LEN - 1), (void *)start) != 0)
		return 0;
	out[len & (PS_ARGS_LEN - 1)] = 0;
	return len;
}

/* bpf_find_vma's callback: the file mapped where the address lies. */
static long ps_vma_file(struct task_struct *task, struct vm_area_struct *vma, void *data)
{
	*(struct file **)data = BPF_CORE_READ(vma, vm_file);
	return 0;
}

/*
 * A dynamically linked program starts in its ELF interpreter (ld.so), which execve opened and
 * mapped itself (open_exec: no open syscall any open hook could see). At this tracepoint the new
 * image is in place and the task's saved ip is its entry point: inside the main binary's text when
 * it has no interpreter, inside the interpreter's mapping otherwise. Report the file mapped there
 * as an open, so the interpreter is a file the container read and its page reads have a path.
 * On overlayfs the mapping holds the layer's own file (the overlay hands mmap its backing file),
 * whose path, walked up to that layer's private mount, is the path inside the container.
 */
static __always_inline void ps_report_interpreter(struct task_struct *task, __u32 mntns)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	__u64 ip = BPF_CORE_READ(regs, ip);
	struct mm_struct *mm = BPF_CORE_READ(task, mm);
	if (!mm || (ip >= BPF_CORE_READ(mm, start_code) && ip < BPF_CORE_READ(mm, end_code)))
		return; /* static: entered in its own text */
	struct file *interp = 0;
	if (bpf_find_vma(task, ip, ps_vma_file, &interp, 0) != 0 || !interp)
		return;

	__u32 zero = 0;
	struct ps_scratch *s = bpf_map_lookup_elem(&ps_scratch_map, &zero);
	if (!s)
		return;
	__u16 flags = 0;
	s->strings[0] = 0; /* no raw path; the resolved one follows its NUL */
	__u32 path_len = ps_resolve_path(__builtin_preserve_access_index(&interp->f_path), task,
					 s->strings + ps_open_path_at(0), &flags);
	struct ps_open_event *e = ps_reserve_open(s, 0, path_len, flags, task, mntns, interp, 0, AT_FDCWD, 0,
						  PS_SYSCALL_EXEC_INTERPRETER, PS_PROG_EXEC);
	if (!e)
		return;
	ps_submit(e, PS_PROG_EXEC);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(tp_btf__sched_process_exec, struct task_struct *task, int old_pid, struct linux_binprm *bprm)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u32 mntns = ps_task_mntns(task);
	__u16 flags = 0;
	char comm[PS_COMM_LEN];
	bpf_get_current_comm(comm, sizeof(comm));

	bool in_container = ps_traced_mntns(mntns);
	bool runtime = false;
	if (mntns != ps_host_mntns) {
		/* a runtime descendant that execs inside a container is the container's process now */
		bpf_map_delete_elem(&ps_runtime_pids, &tgid);
	} else if (ps_is_runtime_comm(comm)) {
		__u8 one = 1;
		bpf_map_update_elem(&ps_runtime_pids, &tgid, &one, BPF_ANY);
		runtime = true;
	} else {
		runtime = ps_is_runtime_pid(tgid);
	}
	if (!in_container && !runtime)
		return 0;
	if (runtime)
		flags |= PS_FLAG_RUNTIME_PROCESS;

	struct ps_exec_event *e = ps_reserve(sizeof(*e), PS_PROG_EXEC);
	if (!e)
		return 0;
	ps_fill_header(&e->header, PS_EVENT_EXEC, sizeof(*e));
	ps_fill_task(&e->task, task, mntns);
	e->old_pid = old_pid;

	struct file *file = BPF_CORE_READ(bprm, file);
	ps_fill_file(&e->file, file);
	e->path_len = ps_resolve_path(__builtin_preserve_access_index(&file->f_path), task, e->path, &flags);

	const char *filename = BPF_CORE_READ(bprm, filename);
	long n = bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), filename);
	e->filename_len = n > 0 ? n - 1 : 0;
	if (n == sizeof(e->filename))
		flags |= PS_FLAG_RAW_TRUNCATED;
	e->args_len = ps_read_args(task, e->args, &flags);
	e->flags = flags;
	e->_pad = 0;
	/* reserved after the exec record, submitted before it: the exec's wake-up delivers both */
	if (in_container)
		ps_report_interpreter(task, mntns);
	ps_submit_wake(e, PS_PROG_EXEC);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(tp_btf__sched_process_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 child_pid = BPF_CORE_READ(child, tgid);
	__u32 child_tid = BPF_CORE_READ(child, pid);
	if (child_pid != child_tid)
		return 0; /* a new thread, not a new process */

	__u32 ptgid = BPF_CORE_READ(parent, tgid);
	__u32 mntns = ps_task_mntns(parent);
	bool runtime = ps_is_runtime_pid(ptgid);
	if (runtime) {
		__u8 one = 1;
		bpf_map_update_elem(&ps_runtime_pids, &child_pid, &one, BPF_ANY);
	}
	if (!runtime && !ps_traced_mntns(mntns))
		return 0;

	struct ps_fork_event *e = ps_reserve(sizeof(*e), PS_PROG_FORK);
	if (!e)
		return 0;
	ps_fill_header(&e->header, PS_EVENT_FORK, sizeof(*e));
	ps_fill_task(&e->task, parent, mntns);
	e->child_pid = child_pid;
	e->child_tid = child_tid;
	e->flags = runtime ? PS_FLAG_RUNTIME_PROCESS : 0;
	e->_pad = 0;
	ps_submit(e, PS_PROG_FORK);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(tp_btf__sched_process_exit, struct task_struct *task)
{
	__u32 tgid = BPF_CORE_READ(task, tgid);
	if (BPF_CORE_READ(task, pid) != tgid)
		return 0; /* a thread, not the process */
	if (BPF_CORE_READ(task, flags) & PF_KTHREAD)
		return 0;

	__u32 mntns = ps_task_mntns(task);
	bool runtime = ps_is_runtime_pid(tgid);
	if (runtime)
		bpf_map_delete_elem(&ps_runtime_pids, &tgid);
	if (!runtime && !ps_traced_mntns(mntns)) {
		/* A finished container's init (pid 1 of its pid namespace) exits: its mount namespace
		 * goes with it, and the kernel hands the same inode number to the next container. Take
		 * it out of the ignored set now, and report the exit so user space forgets it too. */
		__u32 ns_pid = 0;
		ps_task_pidns(task, &ns_pid);
		if (ns_pid != 1 || mntns == ps_host_mntns || bpf_map_delete_elem(&ps_ignored_mntns, &mntns) != 0)
			return 0;
		__u32 zero = 0;
		__u64 *generation = bpf_map_lookup_elem(&ps_filter_generation, &zero);
		if (generation)
			__sync_fetch_and_add(generation, 1);
	}

	struct ps_exit_event *e = ps_reserve(sizeof(*e), PS_PROG_EXIT);
	if (!e)
		return 0;
	ps_fill_header(&e->header, PS_EVENT_EXIT, sizeof(*e));
	ps_fill_task(&e->task, task, mntns);
	e->exit_code = BPF_CORE_READ(task, exit_code);
	e->flags = runtime ? PS_FLAG_RUNTIME_PROCESS : 0;
	ps_submit(e, PS_PROG_EXIT);
	return 0;
}
