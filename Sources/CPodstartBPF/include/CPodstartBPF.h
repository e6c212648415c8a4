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

/* A ring-buffer consumer that copies every available record into one caller buffer and
 * publishes the consumer position once per batch. libbpf's consumer stores the position after
 * every record, which bounces that cache line between the producing CPUs and the reader on each
 * event; batching it is what keeps the reader's cost per event low. */
struct podstart_ring;

/* Maps the ring buffer map `map_fd` and an epoll instance for its wake-ups. NULL and errno set on failure. */
struct podstart_ring *podstart_ring_open(int map_fd);
void podstart_ring_close(struct podstart_ring *ring);
/* Waits up to timeout_ms for the kernel's next wake-up (records below the wake-up threshold wait
 * for the timeout: one pass per batch, not per record). */
int podstart_ring_wait(struct podstart_ring *ring, int timeout_ms);
/* Copies whole records (without the 8-byte ring header) into out, back to back, and their end
 * offsets into ends; stops when either is full. Returns the number of records copied; the ones
 * left stay for the next call. Discarded records are skipped. */
size_t podstart_ring_drain(struct podstart_ring *ring, unsigned char *out, size_t out_cap,
                           size_t *ends, size_t ends_cap, size_t *out_used);
/* Bytes committed or in flight between the consumer and producer positions. */
size_t podstart_ring_available(struct podstart_ring *ring);
