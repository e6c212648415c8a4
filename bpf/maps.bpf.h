/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The tunables the loader sets before load and the maps every podstart object declares (the
 * loader makes the objects share one instance of each by name), with the per-CPU scratch and
 * verdict-cache value types.
 */
#ifndef PODSTART_MAPS_BPF_H
#define PODSTART_MAPS_BPF_H

#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include "podstart_events.h"

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

#endif /* PODSTART_MAPS_BPF_H */
