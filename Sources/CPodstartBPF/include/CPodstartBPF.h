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

#endif
