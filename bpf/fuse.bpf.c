// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * FUSE requests the tasks of starting containers waited on: on a lazy-pull snapshotter (stargz,
 * one FUSE file system per layer) each is a lookup, open or read the daemon may have to answer
 * with a fetch from the registry. fuse:fuse_request_send (fs/fuse/dev.c, fuse_send_one) runs in
 * the context of the task that queues the request to the daemon; fuse:fuse_request_end runs in
 * the daemon's context (its write of the reply to /dev/fuse) or in whoever aborts the request.
 * The send is kept under (connection, unique) and the pair is one record at the end.
 *
 * What is attributed (docs/phases.md#lazy_fetch): synchronous requests (lookup, getattr, open,
 * readlink, readdir, and reads without async_read) are sent by the task that then sleeps until
 * the reply, so send → end is exactly its wait. Page-cache reads with async_read (readahead,
 * faults) are background requests: the reader queues them and, below the connection's
 * max_background, flushes them itself (a send in its context), then sleeps on the folio lock
 * until the reply. Background requests queued above max_background are flushed later by
 * fuse_request_end of an earlier request, in the daemon's context: they are not attributed.
 *
 * Both tracepoints fire only on FUSE traffic: without a FUSE mount in use they cost nothing.
 */
#include "common.bpf.h"

struct ps_fuse_inflight {
	struct ps_task_context task;
	__u64 send_ns;
	__u64 file_ino;
	__u32 file_dev;
	__u32 opcode;
	__u32 in_len;
	__u32 flags;
};

struct ps_fuse_key {
	__u64 unique;
	__u32 connection;
	__u32 _pad;
};

/* Bounded: a request whose reply never comes (an aborted connection's) is evicted, not kept. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct ps_fuse_key);
	__type(value, struct ps_fuse_inflight);
} ps_fuse_inflight_map SEC(".maps");

/* A fill older than this does not name a read (the task did something else since). */
#define PS_FILL_NAMES_READ_NS 100000000ULL

SEC("tracepoint/fuse/fuse_request_send")
int tracepoint__fuse__fuse_request_send(struct trace_event_raw_fuse_request_send *ctx)
{
	__u32 opcode = ctx->opcode;
	/* forgets have no reply: nothing waits on them */
	if (opcode == PS_FUSE_FORGET || opcode == PS_FUSE_BATCH_FORGET)
		return 0;
	struct task_struct *task = bpf_get_current_task_btf();
	__u32 mntns = ps_task_mntns(task);
	if (!ps_traced_mntns(mntns))
		return 0;
	struct ps_fuse_key key = { .unique = ctx->unique, .connection = ctx->connection };
	struct ps_fuse_inflight value = {
		.send_ns = bpf_ktime_get_ns(),
		.opcode = opcode,
		.in_len = ctx->len,
	};
	ps_fill_task(&value.task, task, mntns);
	if (opcode == PS_FUSE_READ) {
		__u32 tid = value.task.tid;
		struct ps_last_fill *fill = bpf_map_lookup_elem(&ps_last_fill_map, &tid);
		if (fill && fill->tid == tid && fill->dev == key.connection &&
		    value.send_ns - fill->at_ns < PS_FILL_NAMES_READ_NS) {
			value.file_ino = fill->ino;
			value.file_dev = fill->dev;
			value.flags |= PS_FUSE_FILE_FROM_FILL;
		}
	}
	bpf_map_update_elem(&ps_fuse_inflight_map, &key, &value, BPF_ANY);
	return 0;
}

SEC("tracepoint/fuse/fuse_request_end")
int tracepoint__fuse__fuse_request_end(struct trace_event_raw_fuse_request_end *ctx)
{
	struct ps_fuse_key key = { .unique = ctx->unique, .connection = ctx->connection };
	struct ps_fuse_inflight *sent = bpf_map_lookup_elem(&ps_fuse_inflight_map, &key);
	if (!sent)
		return 0;
	struct ps_fuse_event *e = ps_reserve(sizeof(*e), PS_PROG_FUSE);
	if (!e) {
		bpf_map_delete_elem(&ps_fuse_inflight_map, &key);
		return 0;
	}
	ps_fill_header(&e->header, PS_EVENT_FUSE_REQUEST, sizeof(*e));
	e->task = sent->task;
	e->send_ns = sent->send_ns;
	e->unique = key.unique;
	e->connection = key.connection;
	e->opcode = sent->opcode;
	e->in_len = sent->in_len;
	e->out_len = ctx->len;
	e->error = ctx->error;
	e->flags = sent->flags;
	e->file_ino = sent->file_ino;
	e->file_dev = sent->file_dev;
	e->_pad = 0;
	bpf_map_delete_elem(&ps_fuse_inflight_map, &key);
	ps_submit(e, PS_PROG_FUSE);
	return 0;
}
