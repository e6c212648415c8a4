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
 * The send is a BTF tracepoint (tp_btf): its record has no inode, the request itself does. A
 * read is named by the file whose page cache it fills (ps_fuse_read_file), exact however late
 * or from wherever it is sent. The end stays a classic tracepoint: its record has what it needs.
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

/* The inode whose page cache a FUSE_READ fills, from the request itself: a page-cache read
 * (readahead, read_folio, a fault) carries the folios it fills in its fuse_args_pages, and their
 * mapping's host is the file on the FUSE file system. A direct read (user_pages) fills the
 * reader's own buffer, whose mapping names no file of this mount: it stays unnamed. */
static __always_inline bool ps_fuse_read_file(struct fuse_req *req, __u32 connection, __u64 *ino, __u32 *dev)
{
	struct fuse_args *args = BPF_CORE_READ(req, args);
	if (!args || !BPF_CORE_READ_BITFIELD_PROBED(args, out_pages) || BPF_CORE_READ_BITFIELD_PROBED(args, user_pages))
		return false;
	/* fuse_args is the first member of fuse_args_pages (fs/fuse/fuse_i.h) */
	struct fuse_args_pages *ap = (void *)args;
	struct address_space *mapping = NULL;
	if (bpf_core_field_exists(ap->folios)) {
		struct folio **folios = BPF_CORE_READ(ap, folios);
		struct folio *folio = NULL;
		if (!folios || bpf_probe_read_kernel(&folio, sizeof(folio), folios) || !folio)
			return false;
		mapping = BPF_CORE_READ(folio, mapping);
	} else {
		/* before 6.15 the pages were struct page */
		struct fuse_args_pages___pages *old = (void *)args;
		struct page **pages = BPF_CORE_READ(old, pages);
		struct page *page = NULL;
		if (!pages || bpf_probe_read_kernel(&page, sizeof(page), pages) || !page)
			return false;
		mapping = BPF_CORE_READ(page, mapping);
	}
	/* the low bits flag anonymous and movable pages: no file behind them */
	if (!mapping || ((unsigned long)mapping & 3))
		return false;
	struct inode *host = BPF_CORE_READ(mapping, host);
	if (!host)
		return false;
	*dev = BPF_CORE_READ(host, i_sb, s_dev);
	*ino = BPF_CORE_READ(host, i_ino);
	/* a page of another file system (never for a page-cache read of this mount) names nothing */
	return *dev == connection && *ino != 0;
}

SEC("tp_btf/fuse_request_send")
int BPF_PROG(tp_btf__fuse_request_send, struct fuse_req *req)
{
	__u32 opcode = BPF_CORE_READ(req, in.h.opcode);
	/* forgets have no reply: nothing waits on them */
	if (opcode == PS_FUSE_FORGET || opcode == PS_FUSE_BATCH_FORGET)
		return 0;
	struct task_struct *task = bpf_get_current_task_btf();
	__u32 mntns = ps_task_mntns(task);
	if (!ps_traced_mntns(mntns))
		return 0;
	/* the fields fuse:fuse_request_send records (fs/fuse/fuse_trace.h), so that its end matches */
	struct ps_fuse_key key = {
		.unique = BPF_CORE_READ(req, in.h.unique),
		.connection = BPF_CORE_READ(req, fm, fc, dev),
	};
	struct ps_fuse_inflight value = {
		.send_ns = bpf_ktime_get_ns(),
		.opcode = opcode,
		.in_len = BPF_CORE_READ(req, in.h.len),
	};
	ps_fill_task(&value.task, task, mntns);
	if (opcode == PS_FUSE_READ && ps_fuse_read_file(req, key.connection, &value.file_ino, &value.file_dev))
		value.flags |= PS_FUSE_FILE_FROM_FILL;
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
