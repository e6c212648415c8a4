/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The open record emitter shared by the open programs and the exec program (the ELF
 * interpreter's open).
 */
#ifndef PODSTART_OPEN_RECORD_BPF_H
#define PODSTART_OPEN_RECORD_BPF_H

#include "ring.bpf.h"
#include "task_file.bpf.h"

/* An open record for strings put together in scratch (s->strings: the raw path and its NUL, then
 * the resolved path and its NUL at ps_open_path_at(raw_len)), reserved at the size they take: the
 * fixed part plus PS_OPEN_SMALL_STRINGS when they fit (most do), the whole record otherwise.
 * Everything is filled in; the caller submits it. NULL when the ring buffer is full (counted). */
static __always_inline struct ps_open_event *ps_reserve_open(struct ps_scratch *s, __u32 raw_len, __u32 path_len,
							     __u16 flags, struct task_struct *task, __u32 mntns,
							     struct file *file, __s32 result, __s32 dirfd,
							     __u32 open_flags, __u16 syscall, __u32 prog)
{
	__u32 size = ps_open_record_size(ps_open_path_at(raw_len), path_len);
	__u32 strings_len = size - __builtin_offsetof(struct ps_open_event, strings);
	struct ps_open_event *e;
	/* Each copy is bounded by its own reservation right where it is made: the barrier keeps
	 * the compiler from merging the two copies into one whose length the verifier cannot tie to
	 * either size (inlined into the exec program, it did). */
	if (strings_len <= PS_OPEN_SMALL_STRINGS) {
		e = ps_reserve(__builtin_offsetof(struct ps_open_event, strings) + PS_OPEN_SMALL_STRINGS, prog);
		if (!e)
			return 0;
		__u32 n = strings_len;
		asm volatile("" : "+r"(n));
		if (n > PS_OPEN_SMALL_STRINGS)
			n = PS_OPEN_SMALL_STRINGS;
		bpf_probe_read_kernel(e->strings, n, s->strings);
	} else {
		e = ps_reserve(sizeof(*e), prog);
		if (!e)
			return 0;
		__u32 n = strings_len;
		asm volatile("" : "+r"(n));
		if (n > sizeof(e->strings))
			n = sizeof(e->strings);
		bpf_probe_read_kernel(e->strings, n, s->strings);
	}
	ps_fill_header(&e->header, PS_EVENT_OPEN, size);
	ps_fill_task(&e->task, task, mntns);
	if (file)
		ps_fill_file(&e->file, file);
	else
		__builtin_memset(&e->file, 0, sizeof(e->file));
	e->result = result;
	e->dirfd = dirfd;
	e->open_flags = open_flags;
	e->syscall = syscall;
	e->_pad = 0;
	e->raw_len = raw_len;
	e->path_len = path_len;
	e->flags = flags;
	return e;
}

#endif /* PODSTART_OPEN_RECORD_BPF_H */
