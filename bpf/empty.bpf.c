// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Empty programs on exactly the hooks podstart uses. Only `podstart bench probes` loads them: the
 * cost of a hook that does nothing is the floor any tracepoint tracer can reach, and podstart's
 * own cost is reported against it.
 */
#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("tp_btf/sched_process_exec") int BPF_PROG(tp_btf__sched_process_exec) { return 0; }
SEC("tp_btf/sched_process_fork") int BPF_PROG(tp_btf__sched_process_fork) { return 0; }
SEC("tp_btf/sched_process_exit") int BPF_PROG(tp_btf__sched_process_exit) { return 0; }
SEC("tracepoint/syscalls/sys_exit_openat") int tracepoint__syscalls__sys_exit_openat(void *ctx) { return 0; }
SEC("tracepoint/syscalls/sys_exit_openat2") int tracepoint__syscalls__sys_exit_openat2(void *ctx) { return 0; }
SEC("tracepoint/syscalls/sys_exit_open") int tracepoint__syscalls__sys_exit_open(void *ctx) { return 0; }
SEC("tracepoint/filemap/mm_filemap_get_pages") int tracepoint__filemap__mm_filemap_get_pages(void *ctx) { return 0; }
SEC("tracepoint/filemap/mm_filemap_map_pages") int tracepoint__filemap__mm_filemap_map_pages(void *ctx) { return 0; }
SEC("tracepoint/filemap/mm_filemap_fault") int tracepoint__filemap__mm_filemap_fault(void *ctx) { return 0; }
SEC("tracepoint/filemap/mm_filemap_add_to_page_cache") int tracepoint__filemap__mm_filemap_add_to_page_cache(void *ctx) { return 0; }
SEC("tp_btf/block_io_start") int BPF_PROG(tp_btf__block_io_start) { return 0; }
SEC("tp_btf/block_io_done") int BPF_PROG(tp_btf__block_io_done) { return 0; }
SEC("tp_btf/block_rq_issue") int BPF_PROG(tp_btf__block_rq_issue) { return 0; }
SEC("tp_btf/block_rq_complete") int BPF_PROG(tp_btf__block_rq_complete) { return 0; }
SEC("tracepoint/syscalls/sys_exit_write") int tracepoint__syscalls__sys_exit_write(void *ctx) { return 0; }
SEC("tracepoint/syscalls/sys_exit_pwrite64") int tracepoint__syscalls__sys_exit_pwrite64(void *ctx) { return 0; }
SEC("tracepoint/syscalls/sys_exit_writev") int tracepoint__syscalls__sys_exit_writev(void *ctx) { return 0; }
SEC("tp_btf/fuse_request_send") int BPF_PROG(tp_btf__fuse_request_send) { return 0; }
SEC("tracepoint/fuse/fuse_request_end") int tracepoint__fuse__fuse_request_end(void *ctx) { return 0; }
