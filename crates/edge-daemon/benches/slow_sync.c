/* LD_PRELOAD shim for benchmarks: every fsync/fdatasync takes SLOW_SYNC_MS longer (a slow SD card). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static void slow(void) {
    const char *ms = getenv("SLOW_SYNC_MS");
    long d = ms ? atol(ms) : 5;
    struct timespec ts = { d / 1000, (d % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

int fsync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    slow();
    return real(fd);
}

int fdatasync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    slow();
    return real(fd);
}
