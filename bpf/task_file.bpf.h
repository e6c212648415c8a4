/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What a record says about the task (pids, namespaces, cgroup, comm) and the file (device,
 * inode, size, mode, data inode), and the file behind a descriptor.
 */
#ifndef PODSTART_TASK_FILE_BPF_H
#define PODSTART_TASK_FILE_BPF_H

#include "maps.bpf.h"
#include <bpf/bpf_core_read.h>

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

/* The (device, inode number) of an open file, and its struct inode's address (which tells apart
 * two files an overlayfs gives the same number, see ps_open_key). */
static __always_inline void ps_file_key(struct file *file, __u32 *dev, __u64 *ino, __u64 *inode_address)
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
	/* read as a number: a pointer put in a map key is refused by the verifier */
	*inode_address = 0;
	bpf_core_read(inode_address, sizeof(*inode_address), &file->f_inode);
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

#endif /* PODSTART_TASK_FILE_BPF_H */
