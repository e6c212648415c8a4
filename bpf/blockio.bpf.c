// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Block I/O while a start is in progress: device, sector, bytes, direction and latency, tagged
 * with the mount namespace of the task that submitted it. block_io_start fires in the submitter's
 * context (blk_mq_submit_bio), which is what makes the attribution possible; requests submitted by
 * kernel threads (writeback, loop workers) are reported unattributed (mntns 0), and those of other
 * host processes are not reported at all.
 */
#include "common.bpf.h"

/* Sector and length are taken at the start: by completion the request has been consumed. */
struct ps_block_start {
	__u64 issue_ns;
	__u64 sector;
	__u32 bytes;
	__u32 mntns;
	__u32 pid;
	__u32 _pad;
	char comm[PS_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);  /* struct request * */
	__type(value, struct ps_block_start);
} ps_block_inflight SEC(".maps");

static __always_inline __u32 ps_request_dev(struct request *rq)
{
	struct block_device *part = BPF_CORE_READ(rq, part);
	if (part)
		return BPF_CORE_READ(part, bd_dev);
	struct gendisk *disk = BPF_CORE_READ(rq, q, disk);
	return ((__u32)BPF_CORE_READ(disk, major) << 20) | (__u32)BPF_CORE_READ(disk, first_minor);
}

static __always_inline int ps_block_begin(struct request *rq)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u32 mntns = ps_task_mntns(task);
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct ps_block_start start = {
		.issue_ns = bpf_ktime_get_ns(),
		.sector = BPF_CORE_READ(rq, __sector),
		.bytes = BPF_CORE_READ(rq, __data_len),
		.pid = tgid,
	};
	if (ps_traced_mntns(mntns) || (mntns == ps_host_mntns && ps_is_runtime_pid(tgid)))
		start.mntns = mntns;
	else if (!(BPF_CORE_READ(task, flags) & PF_KTHREAD))
		return 0;
	bpf_get_current_comm(start.comm, sizeof(start.comm));
	__u64 key = (__u64)rq;
	bpf_map_update_elem(&ps_block_inflight, &key, &start, BPF_ANY);
	return 0;
}

static __always_inline int ps_block_end(struct request *rq, int error)
{
	__u64 key = (__u64)rq;
	struct ps_block_start *start = bpf_map_lookup_elem(&ps_block_inflight, &key);
	if (!start)
		return 0;
	struct ps_block_event *e = ps_reserve(sizeof(*e), PS_PROG_BLOCK);
	if (!e) {
		bpf_map_delete_elem(&ps_block_inflight, &key);
		return 0;
	}
	ps_fill_header(&e->header, PS_EVENT_BLOCK_IO, sizeof(*e));
	e->dev = ps_request_dev(rq);
	e->mntns = start->mntns;
	e->pid = start->pid;
	__u32 op = BPF_CORE_READ(rq, cmd_flags) & REQ_OP_MASK;
	e->op = op == REQ_OP_READ ? PS_BLOCK_READ : (op == REQ_OP_WRITE ? PS_BLOCK_WRITE : PS_BLOCK_OTHER);
	e->sector = start->sector;
	e->bytes = start->bytes;
	e->error = error;
	e->issue_ns = start->issue_ns;
	e->latency_ns = e->header.timestamp_ns - start->issue_ns;
	__builtin_memcpy(e->comm, start->comm, sizeof(e->comm));
	bpf_map_delete_elem(&ps_block_inflight, &key);
	ps_submit(e, PS_PROG_BLOCK);
	return 0;
}

SEC("tp_btf/block_io_start")
int BPF_PROG(tp_btf__block_io_start, struct request *rq)
{
	return ps_block_begin(rq);
}

SEC("tp_btf/block_io_done")
int BPF_PROG(tp_btf__block_io_done, struct request *rq)
{
	return ps_block_end(rq, 0);
}

/* Fallbacks for kernels before 6.5 (no block_io_*): issue is not always in the submitter's context. */
SEC("tp_btf/block_rq_issue")
int BPF_PROG(tp_btf__block_rq_issue, struct request *rq)
{
	return ps_block_begin(rq);
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(tp_btf__block_rq_complete, struct request *rq, int error, unsigned int nr_bytes)
{
	return ps_block_end(rq, error);
}
