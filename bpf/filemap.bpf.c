// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Byte ranges read by tasks of starting containers, from the page-cache tracepoints: buffered
 * reads (mm_filemap_get_pages, hits and misses alike), mmap faults and fault-around
 * (mm_filemap_fault, mm_filemap_map_pages), and what had to come from storage
 * (mm_filemap_add_to_page_cache). On overlayfs these name the lower layer's inode.
 *
 * Each (mount namespace, file, source) keeps one open run of pages in ps_ranges; an access that
 * touches or extends the run grows it in place, any other access emits the run as a record and
 * starts a new one. Sequential reads therefore cost a map lookup, not a record per page.
 */
#include "common.bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct ps_range_key);
	__type(value, struct ps_range_value);
} ps_ranges SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PS_RANGE_CACHE_SLOTS);
	__type(key, __u32);
	__type(value, struct ps_range_cache_slot);
} ps_range_cache SEC(".maps");

/* Bumped before any run in ps_ranges is replaced (here) or drained (by user space). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} ps_range_generation SEC(".maps");

static __always_inline void ps_emit_range(struct ps_range_key *key, struct ps_range_value *run)
{
	struct ps_read_range_event *e = ps_reserve(sizeof(*e), PS_PROG_READ);
	if (!e)
		return;
	ps_fill_header(&e->header, PS_EVENT_READ_RANGE, sizeof(*e));
	e->mntns = key->mntns;
	e->dev = key->dev;
	e->ino = key->ino;
	e->first_page = run->first_page;
	e->page_count = run->end_page - run->first_page;
	e->first_ns = run->first_ns;
	e->pid = run->pid;
	e->source = key->source;
	ps_submit(e, PS_PROG_READ);
}

static __always_inline int ps_record_range(__u32 dev, __u64 ino, __u64 first, __u64 end, __u32 source)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u32 mntns = ps_task_mntns(task);
	if (!ps_traced_mntns(mntns))
		return 0;
	if (end <= first)
		end = first + 1;

	/* Pages this CPU already found inside the run, with no run replaced since: nothing to change. */
	__u32 zero = 0;
	__u64 *generation = bpf_map_lookup_elem(&ps_range_generation, &zero);
	if (!generation)
		return 0;
	__u64 seen_generation = *generation;
	__u64 h = (ino ^ ((__u64)dev << 32) ^ mntns ^ ((__u64)source << 31)) * 0x9E3779B97F4A7C15ULL;
	__u32 index = (__u32)(h >> 52) & (PS_RANGE_CACHE_SLOTS - 1);
	struct ps_range_cache_slot *slot = bpf_map_lookup_elem(&ps_range_cache, &index);
	if (slot && slot->generation == seen_generation && slot->key.ino == ino && slot->key.dev == dev &&
	    slot->key.mntns == mntns && slot->key.source == source && first >= slot->first_page &&
	    end <= slot->end_page) {
		PS_COUNT_AGGREGATED(PS_PROG_READ);
		return 0;
	}

	struct ps_range_key key = { .mntns = mntns, .dev = dev, .ino = ino, .source = source };
	struct ps_range_value *run = bpf_map_lookup_elem(&ps_ranges, &key);
	if (run) {
		if (first <= run->end_page && end >= run->first_page) {
			/* touches or overlaps the open run: grow it */
			if (first < run->first_page)
				run->first_page = first;
			if (end > run->end_page)
				run->end_page = end;
			PS_COUNT_AGGREGATED(PS_PROG_READ);
			/* [first, end) is inside the run now and stays so until a replacement bumps the
			 * generation read above (before this lookup, so a replacement racing with it
			 * leaves the slot stale, never wrong) */
			if (slot) {
				slot->key = key;
				slot->first_page = first;
				slot->end_page = end;
				slot->generation = seen_generation;
			}
			return 0;
		}
		__sync_fetch_and_add(generation, 1);
		ps_emit_range(&key, run);
		run->first_page = first;
		run->end_page = end;
		run->first_ns = bpf_ktime_get_ns();
		run->pid = bpf_get_current_pid_tgid() >> 32;
		return 0;
	}
	struct ps_range_value fresh = {
		.first_page = first,
		.end_page = end,
		.first_ns = bpf_ktime_get_ns(),
		.pid = bpf_get_current_pid_tgid() >> 32,
	};
	bpf_map_update_elem(&ps_ranges, &key, &fresh, BPF_ANY);
	return 0;
}

SEC("tracepoint/filemap/mm_filemap_get_pages")
int tracepoint__filemap__mm_filemap_get_pages(struct trace_event_raw_mm_filemap_op_page_cache_range *ctx)
{
	return ps_record_range(ctx->s_dev, ctx->i_ino, ctx->index, ctx->last_index + 1, PS_RANGE_ACCESS);
}

SEC("tracepoint/filemap/mm_filemap_map_pages")
int tracepoint__filemap__mm_filemap_map_pages(struct trace_event_raw_mm_filemap_op_page_cache_range *ctx)
{
	return ps_record_range(ctx->s_dev, ctx->i_ino, ctx->index, ctx->last_index + 1, PS_RANGE_ACCESS);
}

SEC("tracepoint/filemap/mm_filemap_fault")
int tracepoint__filemap__mm_filemap_fault(struct trace_event_raw_mm_filemap_fault *ctx)
{
	return ps_record_range(ctx->s_dev, ctx->i_ino, ctx->index, ctx->index + 1, PS_RANGE_ACCESS);
}

SEC("tracepoint/filemap/mm_filemap_add_to_page_cache")
int tracepoint__filemap__mm_filemap_add_to_page_cache(struct trace_event_raw_mm_filemap_op_page_cache *ctx)
{
	/* kernels before large folios in the page cache have no order field: one page */
	__u32 order = bpf_core_field_exists(ctx->order) ? ctx->order : 0;
	__u64 pages = 1ULL << (order & 15);
	return ps_record_range(ctx->s_dev, ctx->i_ino, ctx->index, ctx->index + pages, PS_RANGE_FILL);
}
