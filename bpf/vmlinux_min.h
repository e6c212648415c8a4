/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The few kernel types podstart's programs touch, declared by hand with preserve_access_index so
 * that every field access is a CO-RE relocation: libbpf rewrites the offsets against the running
 * kernel's BTF at load time. Only field names matter here, not layout or completeness; members
 * that live inside anonymous unions in the kernel are declared flat (libbpf looks through them).
 * This replaces a multi-megabyte vmlinux.h generated on one build machine's kernel.
 */
#ifndef PODSTART_VMLINUX_MIN_H
#define PODSTART_VMLINUX_MIN_H
/* Tells bpf_tracing.h to use the kernel's pt_regs field names (di, si, …), as with vmlinux.h. */
#define __VMLINUX_H__

typedef unsigned char __u8;
typedef short int __s16;
typedef unsigned short __u16;
typedef int __s32;
typedef unsigned int __u32;
typedef long long __s64;
typedef unsigned long long __u64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef _Bool bool;
#define true 1
#define false 0

enum {
	BPF_ANY = 0,
	BPF_NOEXIST = 1,
	BPF_EXIST = 2,
};

enum bpf_map_type {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_LRU_HASH = 9,
	BPF_MAP_TYPE_RINGBUF = 27,
};

enum {
	BPF_RB_NO_WAKEUP = 1,
	BPF_RB_FORCE_WAKEUP = 2,
	BPF_RB_AVAIL_DATA = 0,
	BPF_RB_CONS_POS = 2,
};

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

struct pt_regs {
	unsigned long r15, r14, r13, r12, bp, bx, r11, r10, r9, r8, ax, cx, dx, si, di, orig_ax, ip, cs, flags, sp, ss;
};

struct qstr {
	__u32 hash;
	__u32 len;
	const unsigned char *name;
};

struct super_block {
	__u32 s_dev;
};

struct address_space;

struct inode {
	unsigned short i_mode;
	unsigned long i_ino;
	struct super_block *i_sb;
	long long i_size;
	__u32 i_generation;
};

struct address_space {
	struct inode *host;
};

struct dentry {
	struct dentry *d_parent;
	struct qstr d_name;
	struct inode *d_inode;
};

struct vfsmount {
	struct dentry *mnt_root;
	struct super_block *mnt_sb;
};

struct mount {
	struct mount *mnt_parent;
	struct dentry *mnt_mountpoint;
	struct vfsmount mnt;
};

struct path {
	struct vfsmount *mnt;
	struct dentry *dentry;
};

struct file {
	struct path f_path;
	struct inode *f_inode;
	unsigned int f_flags;
	struct address_space *f_mapping;
};

struct fdtable {
	unsigned int max_fds;
	struct file **fd;
};

struct files_struct {
	struct fdtable *fdt;
};

struct fs_struct {
	struct path root;
};

struct ns_common {
	unsigned int inum;
};

struct mnt_namespace {
	struct ns_common ns;
};

struct pid_namespace {
	struct ns_common ns;
};

struct nsproxy {
	struct mnt_namespace *mnt_ns;
};

struct upid {
	int nr;
	struct pid_namespace *ns;
};

struct pid {
	unsigned int level;
	struct upid numbers[1];
};

struct mm_struct {
	unsigned long start_code;
	unsigned long end_code;
	unsigned long arg_start;
	unsigned long arg_end;
};

struct vm_area_struct {
	struct file *vm_file;
};

struct task_struct {
	unsigned int flags;
	int pid;
	int tgid;
	int exit_code;
	struct task_struct *real_parent;
	struct task_struct *group_leader;
	struct pid *thread_pid;
	struct mm_struct *mm;
	struct fs_struct *fs;
	struct files_struct *files;
	struct nsproxy *nsproxy;
	char comm[16];
};

struct linux_binprm {
	struct file *file;
	const char *filename;
};

struct gendisk {
	int major;
	int first_minor;
};

struct block_device {
	__u32 bd_dev;
};

struct request_queue {
	struct gendisk *disk;
};

struct request {
	struct request_queue *q;
	unsigned int cmd_flags;
	unsigned int __data_len;
	unsigned long long __sector;
	struct block_device *part;
};

#pragma clang attribute pop

/* Context of a classic syscall-exit tracepoint (tracefs events/syscalls/sys_exit_<name>/format). */
struct ps_syscall_exit_ctx {
	__u64 common;
	int syscall_nr;
	int _pad;
	long ret;
};

/* Contexts of the filemap tracepoints; CO-RE relocated against the kernel's trace_event_raw_ types. */
struct trace_event_raw_mm_filemap_op_page_cache_range {
	unsigned long i_ino;
	__u32 s_dev;
	unsigned long index;
	unsigned long last_index;
} __attribute__((preserve_access_index));

struct trace_event_raw_mm_filemap_fault {
	unsigned long i_ino;
	__u32 s_dev;
	unsigned long index;
} __attribute__((preserve_access_index));

struct trace_event_raw_mm_filemap_op_page_cache {
	unsigned long i_ino;
	unsigned long index;
	__u32 s_dev;
	unsigned char order;
} __attribute__((preserve_access_index));

/* Contexts of the fuse tracepoints (6.14+); CO-RE relocated against the kernel's types (an
 * enum field must be read as an enum: CO-RE does not take an integer for it). */
enum fuse_opcode { FUSE_LOOKUP = 1 };

struct trace_event_raw_fuse_request_send {
	__u32 connection;
	__u64 unique;
	enum fuse_opcode opcode;
	__u32 len;
} __attribute__((preserve_access_index));

struct trace_event_raw_fuse_request_end {
	__u32 connection;
	__u64 unique;
	__u32 len;
	__s32 error;
} __attribute__((preserve_access_index));

/* What tp_btf/fuse_request_send reads of the request (fs/fuse/fuse_i.h; 6.14+). */
struct fuse_conn {
	__u32 dev;
} __attribute__((preserve_access_index));

struct fuse_mount {
	struct fuse_conn *fc;
} __attribute__((preserve_access_index));

struct fuse_in_header {
	__u32 len;
	__u32 opcode;
	__u64 unique;
} __attribute__((preserve_access_index));

struct fuse_args {
	bool out_pages : 1;
	bool user_pages : 1;
} __attribute__((preserve_access_index));

struct fuse_req {
	struct fuse_args *args;
	struct {
		struct fuse_in_header h;
	} in;
	struct fuse_mount *fm;
} __attribute__((preserve_access_index));

struct folio {
	struct address_space *mapping;
} __attribute__((preserve_access_index));

struct page {
	struct address_space *mapping;
} __attribute__((preserve_access_index));

/* The request's pages: folios since 6.15, struct page before (the ___pages flavour). */
struct fuse_args_pages {
	struct fuse_args args;
	struct folio **folios;
} __attribute__((preserve_access_index));

struct fuse_args_pages___pages {
	struct fuse_args args;
	struct page **pages;
} __attribute__((preserve_access_index));

#define PF_KTHREAD 0x00200000
#define S_IFMT 00170000
#define S_IFREG 0100000
#define AT_FDCWD -100
#define REQ_OP_MASK 0xff
#define REQ_OP_READ 0
#define REQ_OP_WRITE 1

#endif /* PODSTART_VMLINUX_MIN_H */
