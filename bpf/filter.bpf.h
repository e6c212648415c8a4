/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Is this task being traced: its mount namespace (a starting container's, or a watched one) or
 * its membership of the container runtime. Runs first in every hot-path program.
 */
#ifndef PODSTART_FILTER_BPF_H
#define PODSTART_FILTER_BPF_H

#include "maps.bpf.h"

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

#endif /* PODSTART_FILTER_BPF_H */
