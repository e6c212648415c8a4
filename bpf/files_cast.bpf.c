// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * files.bpf.c for kernels with the bpf_rdonly_cast kfunc (6.2+): the open path reads the file's
 * inode, device and inode number with plain guarded loads instead of bpf_probe_read_kernel calls.
 * The loader uses this object when the kernel's BTF has the kfunc and files.bpf.o otherwise, so
 * kernels from 5.17 on still load (an object that calls a missing kfunc does not).
 */
#define PS_RDONLY_CAST 1
#include "files.bpf.c"
