/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What every podstart program includes: the license, the tunables and shared maps (maps.bpf.h),
 * the "is this task being traced" filter (filter.bpf.h), ring-buffer submission with batched
 * wake-ups and loss counting (ring.bpf.h) and the task and file fields of records
 * (task_file.bpf.h). Programs that resolve paths or emit open records also include path.bpf.h
 * and open_record.bpf.h.
 */
#ifndef PODSTART_COMMON_BPF_H
#define PODSTART_COMMON_BPF_H

#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "podstart_events.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#include "maps.bpf.h"
#include "filter.bpf.h"
#include "ring.bpf.h"
#include "task_file.bpf.h"

#endif /* PODSTART_COMMON_BPF_H */
