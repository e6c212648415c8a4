// Entrypoint of the podstart-test/reader image: reads a known set of files with known byte counts,
// so tests can check the access trace exactly, then signals readiness and waits.
//
// Usage: reader [PATH[:BYTES] ...]   (BYTES omitted = read the whole file)
// Without arguments it reads the image's built-in list (see scripts/localenv.sh). After reading it
// creates /tmp/ready and sleeps until SIGTERM. Static (gcc -static): no loader, no libraries, so the
// files it opens are exactly the ones listed.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *default_list[] = {
    "/data/one.txt",
    "/data/two.bin:8192",
    "/data/three.txt",
};

static void on_term(int sig) { _exit(128 + sig); }

static int read_file(const char *spec) {
    char path[4096];
    long long limit = -1;
    const char *colon = strrchr(spec, ':');
    size_t len = colon ? (size_t)(colon - spec) : strlen(spec);
    if (len >= sizeof path) return -1;
    memcpy(path, spec, len);
    path[len] = 0;
    if (colon) limit = atoll(colon + 1);

    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "reader: open %s: %s\n", path, strerror(errno));
        return -1;
    }
    static char buf[4096];
    long long total = 0;
    for (;;) {
        size_t want = sizeof buf;
        if (limit >= 0 && (long long)want > limit - total) want = (size_t)(limit - total);
        if (want == 0) break;
        ssize_t n = read(fd, buf, want);
        if (n < 0) {
            if (errno == EINTR) continue;
            fprintf(stderr, "reader: read %s: %s\n", path, strerror(errno));
            close(fd);
            return -1;
        }
        if (n == 0) break;
        total += n;
    }
    close(fd);
    printf("%s %lld\n", path, total);
    return 0;
}

int main(int argc, char **argv) {
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    int failed = 0;
    if (argc > 1) {
        for (int i = 1; i < argc; i++) failed |= read_file(argv[i]) != 0;
    } else {
        for (size_t i = 0; i < sizeof default_list / sizeof *default_list; i++)
            failed |= read_file(default_list[i]) != 0;
    }
    fflush(stdout);
    if (failed) return 2;
    int fd = open("/tmp/ready", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0) close(fd);
    for (;;) pause();
}
