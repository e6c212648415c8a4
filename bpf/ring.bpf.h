/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Ring-buffer records: headers, reservation with loss counting, submission with batched
 * wake-ups, and the per-program counters in ps_stats.
 */
#ifndef PODSTART_RING_BPF_H
#define PODSTART_RING_BPF_H

#include "maps.bpf.h"

static __always_inline void ps_count(__u32 prog, int field)
{
	struct ps_prog_stats *s = bpf_map_lookup_elem(&ps_stats, &prog);
	if (!s)
		return;
	if (field == 0)
		s->events++;
	else if (field == 1)
		s->lost++;
	else
		s->aggregated++;
}

#define PS_COUNT_EVENT(prog) ps_count(prog, 0)
#define PS_COUNT_LOST(prog) ps_count(prog, 1)
#define PS_COUNT_AGGREGATED(prog) ps_count(prog, 2)

static __always_inline void ps_fill_header(struct ps_event_header *h, __u16 kind, __u32 size)
{
	h->kind = kind;
	h->version = PS_EVENT_VERSION;
	h->size = size;
	h->timestamp_ns = bpf_ktime_get_ns();
}

/* Reserve a record, counting a loss when the ring buffer is full. */
static __always_inline void *ps_reserve(__u64 size, __u32 prog)
{
	void *rec = bpf_ringbuf_reserve(&ps_events, size, 0);
	if (!rec)
		PS_COUNT_LOST(prog);
	return rec;
}

/* Submit without waking the reader until enough data waits, and then once: every submit while
 * the reader is still on its way would queue another wake-up, which the reader, having drained
 * the lot, would take for new data and answer with a pass over a handful of records (measured:
 * every other pass). So a forced wake-up is sent once per consumer position. */
static __always_inline void ps_submit(void *rec, __u32 prog)
{
	__u64 flags = BPF_RB_NO_WAKEUP;
	if (bpf_ringbuf_query(&ps_events, BPF_RB_AVAIL_DATA) >= ps_wakeup_bytes) {
		__u32 zero = 0;
		__u64 *woken = bpf_map_lookup_elem(&ps_wake_state, &zero);
		/* +1: position 0 is a real position, and 0 is also the map's initial value */
		__u64 mark = bpf_ringbuf_query(&ps_events, BPF_RB_CONS_POS) + 1;
		if (woken && *woken != mark) {
			*woken = mark;
			flags = BPF_RB_FORCE_WAKEUP;
		}
	}
	bpf_ringbuf_submit(rec, flags);
	PS_COUNT_EVENT(prog);
}

/* Submit and wake the reader now: for execs, rare and latency-critical (an exec of runc or of a
 * container's first process is what opens a start window). */
static __always_inline void ps_submit_wake(void *rec, __u32 prog)
{
	bpf_ringbuf_submit(rec, BPF_RB_FORCE_WAKEUP);
	PS_COUNT_EVENT(prog);
}

#endif /* PODSTART_RING_BPF_H */
