#include "CPodstartBPF.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <bpf/btf.h>

/* A bounded ring of the most recent libbpf output; the verifier log can be long, and its tail is
 * what explains a rejection. */
#define PODSTART_LOG_CAP (64 * 1024)
static char podstart_log[PODSTART_LOG_CAP];
static size_t podstart_log_len;
static pthread_mutex_t podstart_log_lock = PTHREAD_MUTEX_INITIALIZER;

static int podstart_print(enum libbpf_print_level level, const char *fmt, va_list args)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	char line[4096];
	int n = vsnprintf(line, sizeof(line), fmt, args);
	if (n <= 0)
		return 0;
	size_t len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
	pthread_mutex_lock(&podstart_log_lock);
	if (podstart_log_len + len >= PODSTART_LOG_CAP) {
		/* keep the newest half */
		size_t keep = PODSTART_LOG_CAP / 2;
		if (keep > podstart_log_len)
			keep = podstart_log_len;
		memmove(podstart_log, podstart_log + podstart_log_len - keep, keep);
		podstart_log_len = keep;
	}
	if (len < PODSTART_LOG_CAP - podstart_log_len) {
		memcpy(podstart_log + podstart_log_len, line, len);
		podstart_log_len += len;
	}
	pthread_mutex_unlock(&podstart_log_lock);
	return n;
}

void podstart_libbpf_capture_log(void)
{
	libbpf_set_print(podstart_print);
}

size_t podstart_libbpf_copy_log(char *buf, size_t size)
{
	pthread_mutex_lock(&podstart_log_lock);
	size_t len = podstart_log_len;
	if (size > 0) {
		size_t n = len < size - 1 ? len : size - 1;
		memcpy(buf, podstart_log + (len - n), n);
		buf[n] = 0;
	}
	pthread_mutex_unlock(&podstart_log_lock);
	return len;
}

void podstart_libbpf_clear_log(void)
{
	pthread_mutex_lock(&podstart_log_lock);
	podstart_log_len = 0;
	pthread_mutex_unlock(&podstart_log_lock);
}

struct bpf_object *podstart_object_open_mem(const void *buf, size_t size, const char *name)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = name);
	return bpf_object__open_mem(buf, size, &opts);
}

int podstart_object_set_rodata(struct bpf_object *obj, const char *name, const void *value, size_t size)
{
	struct bpf_map *map = NULL, *candidate;
	bpf_object__for_each_map(candidate, obj) {
		if (bpf_map__is_internal(candidate) && strstr(bpf_map__name(candidate), ".rodata")) {
			map = candidate;
			break;
		}
	}
	struct btf *btf = bpf_object__btf(obj);
	if (!map || !btf)
		return -ENOENT;
	int sec_id = btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC);
	if (sec_id < 0)
		return -ENOENT;
	const struct btf_type *sec = btf__type_by_id(btf, sec_id);
	const struct btf_var_secinfo *info = btf_var_secinfos(sec);
	for (int i = 0; i < btf_vlen(sec); i++) {
		const struct btf_type *var = btf__type_by_id(btf, info[i].type);
		if (strcmp(btf__name_by_offset(btf, var->name_off), name) != 0)
			continue;
		if (info[i].size != size)
			return -EINVAL;
		size_t data_size = 0;
		char *data = (char *)bpf_map__initial_value(map, &data_size);
		if (!data || info[i].offset + size > data_size)
			return -EINVAL;
		memcpy(data + info[i].offset, value, size);
		return 0;
	}
	return -ENOENT;
}

int podstart_tracepoint_exists(const char *category, const char *name)
{
	char path[512];
	snprintf(path, sizeof(path), "/sys/kernel/tracing/events/%s/%s/id", category, name);
	if (access(path, F_OK) == 0)
		return 1;
	snprintf(path, sizeof(path), "/sys/kernel/debug/tracing/events/%s/%s/id", category, name);
	return access(path, F_OK) == 0;
}

int podstart_kernel_has_kfunc(const char *name)
{
	struct btf *vmlinux = btf__load_vmlinux_btf();
	int err = libbpf_get_error(vmlinux);
	if (err)
		return err < 0 ? err : -err;
	int found = btf__find_by_name_kind(vmlinux, name, BTF_KIND_FUNC) >= 0;
	btf__free(vmlinux);
	return found;
}

int podstart_prog_run_stats(int prog_fd, __u64 *run_time_ns, __u64 *run_count)
{
	struct bpf_prog_info info;
	__u32 len = sizeof(info);
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) != 0)
		return -errno;
	*run_time_ns = info.run_time_ns;
	*run_count = info.run_cnt;
	return 0;
}

int podstart_prog_id(int prog_fd, __u32 *id)
{
	struct bpf_prog_info info;
	__u32 len = sizeof(info);
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) != 0)
		return -errno;
	*id = info.id;
	return 0;
}

#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <linux/bpf.h>

struct podstart_ring {
	int map_fd;
	int epoll_fd;
	size_t mask;          /* data size - 1 (a power of two) */
	size_t page_size;
	unsigned long *consumer_pos;
	unsigned long *producer_pos;
	unsigned char *data;  /* mapped twice back to back, so records never wrap for the reader */
};

struct podstart_ring *podstart_ring_open(int map_fd)
{
	struct bpf_map_info info;
	__u32 len = sizeof(info);
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(map_fd, &info, &len) != 0)
		return NULL;
	struct podstart_ring *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->map_fd = map_fd;
	r->page_size = (size_t)sysconf(_SC_PAGESIZE);
	r->mask = info.max_entries - 1;
	void *cons = mmap(NULL, r->page_size, PROT_READ | PROT_WRITE, MAP_SHARED, map_fd, 0);
	if (cons == MAP_FAILED)
		goto fail;
	r->consumer_pos = cons;
	void *prod = mmap(NULL, r->page_size + 2 * (size_t)info.max_entries, PROT_READ, MAP_SHARED, map_fd, (off_t)r->page_size);
	if (prod == MAP_FAILED)
		goto fail;
	r->producer_pos = prod;
	r->data = (unsigned char *)prod + r->page_size;
	r->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (r->epoll_fd < 0)
		goto fail;
	/* Edge-triggered: epoll_wait returns on the kernel's wake-ups only (a forced one from a
	 * submit once enough data waits, or an exec's), not whenever any record waits; otherwise a
	 * steady stream would wake the reader for every few records. */
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET };
	if (epoll_ctl(r->epoll_fd, EPOLL_CTL_ADD, map_fd, &ev) != 0)
		goto fail;
	return r;
fail:;
	int saved = errno;
	podstart_ring_close(r);
	errno = saved;
	return NULL;
}

void podstart_ring_close(struct podstart_ring *r)
{
	if (!r)
		return;
	if (r->consumer_pos)
		munmap(r->consumer_pos, r->page_size);
	if (r->producer_pos)
		munmap(r->producer_pos, r->page_size + 2 * (r->mask + 1));
	if (r->epoll_fd > 0)
		close(r->epoll_fd);
	free(r);
}

int podstart_ring_wait(struct podstart_ring *r, int timeout_ms)
{
	struct epoll_event ev;
	return epoll_wait(r->epoll_fd, &ev, 1, timeout_ms);
}

size_t podstart_ring_scan(struct podstart_ring *r, unsigned long from,
                          struct podstart_ring_record *records, size_t cap, unsigned long *out_end)
{
	unsigned long pos = from;
	unsigned long prod = __atomic_load_n(r->producer_pos, __ATOMIC_ACQUIRE);
	size_t n = 0;
	while (pos < prod && n < cap) {
		__u32 *hdr = (__u32 *)(r->data + (pos & r->mask));
		__u32 len = __atomic_load_n(hdr, __ATOMIC_ACQUIRE);
		if (len & BPF_RINGBUF_BUSY_BIT)
			break; /* the producer has not committed this one yet */
		__u32 sample = len & ~(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT);
		unsigned long next = pos + ((sample + BPF_RINGBUF_HDR_SZ + 7) & ~7UL);
		if (!(len & BPF_RINGBUF_DISCARD_BIT)) {
			const unsigned char *record = (const unsigned char *)hdr + BPF_RINGBUF_HDR_SZ;
			/* only the part the record says carries data (ps_event_header.size) */
			__u32 length = sample;
			if (sample >= sizeof(struct ps_event_header)) {
				__u32 declared = ((const struct ps_event_header *)record)->size;
				if (declared >= sizeof(struct ps_event_header) && declared < sample)
					length = declared;
			}
			records[n].offset = (__u32)(pos + BPF_RINGBUF_HDR_SZ - from);
			records[n].length = length;
			n++;
		}
		pos = next;
	}
	*out_end = pos;
	return n;
}

const unsigned char *podstart_ring_address(struct podstart_ring *r, unsigned long pos)
{
	return r->data + (pos & r->mask);
}

void podstart_ring_release(struct podstart_ring *r, unsigned long pos)
{
	__atomic_store_n(r->consumer_pos, pos, __ATOMIC_RELEASE);
}

unsigned long podstart_ring_consumer(struct podstart_ring *r)
{
	return __atomic_load_n(r->consumer_pos, __ATOMIC_ACQUIRE);
}

unsigned long podstart_ring_pending(struct podstart_ring *r, unsigned long from)
{
	return __atomic_load_n(r->producer_pos, __ATOMIC_ACQUIRE) - from;
}
