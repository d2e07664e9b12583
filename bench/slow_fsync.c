/*
 * libevh_slow_fsync.so: a slow disk for benchmarks, by LD_PRELOAD.
 *
 * Every fsync(2) and fdatasync(2) of the process it is preloaded into waits
 * EVH_SLOW_FSYNC_US microseconds (default 2000: a slow network or cloud
 * disk) before doing the real call, so the audit plugin's `fsync: always`
 * can be measured against a disk slower than the benchmark machine's.
 * 0 adds nothing. A value that is not a whole number of microseconds up to
 * 10 s is refused with a message on stderr, once, and the default is used.
 *
 * bench/run.py --jollyjet preloads it into evhost for the "slow disk"
 * variant. It is a benchmark tool only: never installed, never loaded by
 * evhost or its plugins on their own.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_US 2000L
#define MAX_US 10000000L

typedef int (*sync_fn)(int);

static sync_fn real_fsync;
static sync_fn real_fdatasync;
static long delay_us = DEFAULT_US;
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* The next definition of name (libc's), as a function pointer: copied out
 * of dlsym's void *, since ISO C has no cast between the two. */
static sync_fn next_fn(const char* name) {
  void* p = dlsym(RTLD_NEXT, name);
  sync_fn fn;
  memcpy(&fn, &p, sizeof fn);
  return fn;
}

static void setup(void) {
  real_fsync = next_fn("fsync");
  real_fdatasync = next_fn("fdatasync");
  const char* text = getenv("EVH_SLOW_FSYNC_US");
  if (text != NULL && text[0] != '\0') {
    char* end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno != 0 || *end != '\0' || v < 0 || v > MAX_US) {
      fprintf(stderr, "libevh_slow_fsync: EVH_SLOW_FSYNC_US=\"%s\" is not 0..%ld microseconds; using %ld\n", text,
              MAX_US, DEFAULT_US);
    } else {
      delay_us = v;
    }
  }
}

/* Sleeps the delay out, whatever signals interrupt it; keeps errno. */
static void wait_delay(void) {
  int saved = errno;
  struct timespec d = {delay_us / 1000000L, (delay_us % 1000000L) * 1000L};
  while (nanosleep(&d, &d) != 0 && errno == EINTR) {
  }
  errno = saved;
}

static int slow(sync_fn* real, int fd) {
  pthread_once(&once, setup);
  if (*real == NULL) {
    errno = ENOSYS;
    return -1;
  }
  if (delay_us > 0) {
    wait_delay();
  }
  return (*real)(fd);
}

int fsync(int fd) { return slow(&real_fsync, fd); }

int fdatasync(int fd) { return slow(&real_fdatasync, fd); }
