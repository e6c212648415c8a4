#ifndef CPODSTARTBPF_H
#define CPODSTARTBPF_H

#include <linux/types.h>
#include <stddef.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>

/* The one header of event structs, shared with the eBPF programs. */
#include "../../../bpf/podstart_events.h"

/* libbpf's print callback is variadic (va_list), which Swift cannot implement: this shim keeps
 * the last messages libbpf printed (the verifier log among them) so errors can show them. */
void podstart_libbpf_capture_log(void);
/* Copies the captured log into buf (NUL terminated) and returns its full length. */
size_t podstart_libbpf_copy_log(char *buf, size_t size);
void podstart_libbpf_clear_log(void);

/* LIBBPF_OPTS is a macro Swift cannot import: open an object from memory with a name. The
 * memory must stay alive as long as the object (libbpf keeps pointing into it). */
struct bpf_object *podstart_object_open_mem(const void *buf, size_t size, const char *name);

/* Set a `const volatile` global (in .rodata) before load, found by name through the object's
 * BTF. Returns 0, -ENOENT (no such variable) or -EINVAL (size mismatch). */
int podstart_object_set_rodata(struct bpf_object *obj, const char *name, const void *value, size_t size);

/* Does the running kernel know this tracepoint (category/name)? Reads tracefs. */
int podstart_tracepoint_exists(const char *category, const char *name);

/* Does the running kernel's BTF (/sys/kernel/btf/vmlinux) declare this kfunc? 1, 0, or -errno
 * when the BTF cannot be read. */
int podstart_kernel_has_kfunc(const char *name);

/* The kernel's run-time statistics of one loaded program (counted only while some process holds
 * a descriptor from bpf_enable_stats(BPF_STATS_RUN_TIME) or kernel.bpf_stats_enabled is 1).
 * Returns 0 or -errno. */
int podstart_prog_run_stats(int prog_fd, __u64 *run_time_ns, __u64 *run_count);

/* The kernel's id of a loaded program (what `bpftool prog show` and link listings name).
 * Returns 0 or -errno. */
int podstart_prog_id(int prog_fd, __u32 *id);

#endif

/* A ring-buffer consumer that hands out records where they lie. libbpf's consumer stores the
 * consumer position after every record, which bounces that cache line between the producing CPUs
 * and the reader on each event; here the reader only finds the records of a pass (one header
 * read each), the consumer decodes them in place, and the position moves once per batch, when
 * the batch is released. The data pages are mapped twice back to back, so no record wraps. */
struct podstart_ring;

/* One record of a pass: where its data starts, as an offset from the pass's first position, and
 * how many bytes carry data (the record's ps_event_header.size when that is smaller). */
struct podstart_ring_record {
	__u32 offset;
	__u32 length;
};

/* Maps the ring buffer map `map_fd` and an epoll instance for its wake-ups. NULL and errno set on failure. */
struct podstart_ring *podstart_ring_open(int map_fd);
void podstart_ring_close(struct podstart_ring *ring);
/* Waits up to timeout_ms for the kernel's next wake-up (records below the wake-up threshold wait
 * for the timeout: one pass per batch, not per record). */
int podstart_ring_wait(struct podstart_ring *ring, int timeout_ms);
/* Finds the committed records from position `from` on (discarded ones are skipped), stopping at
 * one the producer has not committed yet or after `cap` records. Stores where the pass ended in
 * *out_end (the next pass starts there); returns the number of records found. Moves nothing:
 * the records stay in the ring until podstart_ring_release passes them. */
size_t podstart_ring_scan(struct podstart_ring *ring, unsigned long from,
                          struct podstart_ring_record *records, size_t cap, unsigned long *out_end);
/* The address of the data at ring position `pos` (valid until the consumer position passes it). */
const unsigned char *podstart_ring_address(struct podstart_ring *ring, unsigned long pos);
/* Hands everything before `pos` back to the producers. */
void podstart_ring_release(struct podstart_ring *ring, unsigned long pos);
/* The consumer position now (where a new reader starts). */
unsigned long podstart_ring_consumer(struct podstart_ring *ring);
/* Bytes committed or in flight from position `from` to the producer position. */
unsigned long podstart_ring_pending(struct podstart_ring *ring, unsigned long from);
