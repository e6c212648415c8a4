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
