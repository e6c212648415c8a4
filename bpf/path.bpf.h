/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Path resolution: a (dentry, vfsmount) walked up to the task's root with bpf_loop, into the
 * per-CPU scratch buffer.
 */
#ifndef PODSTART_PATH_BPF_H
#define PODSTART_PATH_BPF_H

#include "maps.bpf.h"
#include <bpf/bpf_core_read.h>

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

#endif /* PODSTART_PATH_BPF_H */
