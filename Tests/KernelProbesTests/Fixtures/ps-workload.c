/*
 * The test workload run inside fresh namespaces by KernelProbesTests: a sequence of file
 * operations given on the command line, each one exactly what the test then expects the kernel
 * probes to report. Built with `cc -static` so it runs in a root with nothing else in it.
 *
 *   open PATH            openat(AT_FDCWD, PATH) and close (missing files included)
 *   open2 PATH           openat2(AT_FDCWD, PATH)
 *   chdir DIR
 *   dirfd DIR NAME       open DIR, then openat(dirfd, NAME)
 *   read PATH OFF LEN    pread LEN bytes at OFF
 *   dontneed PATH        posix_fadvise(POSIX_FADV_DONTNEED) on the whole file
 *   mmap PATH PAGE...    map the file, touch the given page indices
 *   odirect PATH OFF LEN O_DIRECT pread (aligned buffer)
 *   write PATH BYTES     create/truncate PATH and write BYTES bytes
 *   unlink PATH          unlink PATH (frees its inode number for the next file created)
 *   exec PATH ARG...     execv (must be last)
 *   loop N PATH LEN      N times: open PATH, read LEN bytes, close (benchmark body)
 *   loopdir N DIR COUNT LEN  N times over DIR/f0..f<COUNT-1>: open, read LEN, close
 *   wait FILE            block until FILE exists (lets a test attach first)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what, const char *arg)
{
	fprintf(stderr, "ps-workload: %s %s: %s\n", what, arg, strerror(errno));
	exit(2);
}

int main(int argc, char **argv)
{
	static char buf[1 << 20];
	for (int i = 1; i < argc; i++) {
		const char *op = argv[i];
		if (!strcmp(op, "open")) {
			int fd = open(argv[++i], O_RDONLY);
			if (fd >= 0)
				close(fd);
		} else if (!strcmp(op, "open2")) {
			struct open_how how = { .flags = O_RDONLY };
			long fd = syscall(SYS_openat2, AT_FDCWD, argv[++i], &how, sizeof(how));
			if (fd >= 0)
				close(fd);
		} else if (!strcmp(op, "chdir")) {
			if (chdir(argv[++i]) != 0)
				die("chdir", argv[i]);
		} else if (!strcmp(op, "dirfd")) {
			int dfd = open(argv[++i], O_RDONLY | O_DIRECTORY);
			if (dfd < 0)
				die("open dir", argv[i]);
			int fd = openat(dfd, argv[++i], O_RDONLY);
			if (fd < 0)
				die("openat", argv[i]);
			close(fd);
			close(dfd);
		} else if (!strcmp(op, "read")) {
			const char *path = argv[++i];
			off_t off = atoll(argv[++i]);
			size_t len = atoll(argv[++i]);
			int fd = open(path, O_RDONLY);
			if (fd < 0 || pread(fd, buf, len, off) != (ssize_t)len)
				die("read", path);
			close(fd);
		} else if (!strcmp(op, "dontneed")) {
			int fd = open(argv[++i], O_RDONLY);
			if (fd < 0)
				die("dontneed", argv[i]);
			fdatasync(fd);
			posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
			close(fd);
		} else if (!strcmp(op, "mmap")) {
			const char *path = argv[++i];
			int fd = open(path, O_RDONLY);
			struct stat st;
			if (fd < 0 || fstat(fd, &st) != 0)
				die("mmap", path);
			volatile char *p = mmap(0, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
			if (p == MAP_FAILED)
				die("mmap", path);
			/* no fault-around: touch exactly the pages named */
			madvise((void *)p, st.st_size, MADV_RANDOM);
			char sum = 0;
			while (i + 1 < argc && argv[i + 1][0] >= '0' && argv[i + 1][0] <= '9')
				sum += p[atol(argv[++i]) * 4096];
			(void)sum;
			munmap((void *)p, st.st_size);
			close(fd);
		} else if (!strcmp(op, "odirect")) {
			const char *path = argv[++i];
			off_t off = atoll(argv[++i]);
			size_t len = atoll(argv[++i]);
			void *aligned;
			if (posix_memalign(&aligned, 4096, len) != 0)
				die("memalign", path);
			int fd = open(path, O_RDONLY | O_DIRECT);
			if (fd < 0 || pread(fd, aligned, len, off) != (ssize_t)len)
				die("odirect", path);
			close(fd);
			free(aligned);
		} else if (!strcmp(op, "write")) {
			const char *path = argv[++i];
			size_t n = atoll(argv[++i]);
			memset(buf, 'w', sizeof(buf));
			int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
			if (fd < 0 || write(fd, buf, n) != (ssize_t)n)
				die("write", path);
			close(fd);
		} else if (!strcmp(op, "unlink")) {
			const char *path = argv[++i];
			if (unlink(path) != 0)
				die("unlink", path);
		} else if (!strcmp(op, "exec")) {
			execv(argv[i + 1], &argv[i + 1]);
			die("exec", argv[i + 1]);
		} else if (!strcmp(op, "loop")) {
			long n = atol(argv[++i]);
			const char *path = argv[++i];
			size_t len = atoll(argv[++i]);
			for (long k = 0; k < n; k++) {
				int fd = open(path, O_RDONLY);
				if (fd < 0 || read(fd, buf, len) < 0)
					die("loop", path);
				close(fd);
			}
		} else if (!strcmp(op, "loopdir")) {
			long n = atol(argv[++i]);
			const char *dir = argv[++i];
			long count = atol(argv[++i]);
			size_t len = atoll(argv[++i]);
			char path[4096];
			for (long k = 0; k < n; k++) {
				snprintf(path, sizeof(path), "%s/f%ld", dir, k % count);
				int fd = open(path, O_RDONLY);
				if (fd < 0 || read(fd, buf, len) < 0)
					die("loopdir", path);
				close(fd);
			}
		} else if (!strcmp(op, "wait")) {
			const char *path = argv[++i];
			struct timespec ts = { 0, 2 * 1000 * 1000 };
			while (access(path, F_OK) != 0)
				nanosleep(&ts, 0);
		} else {
			fprintf(stderr, "ps-workload: unknown op %s\n", op);
			return 2;
		}
	}
	return 0;
}
