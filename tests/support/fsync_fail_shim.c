/* fsync_fail_shim: an LD_PRELOAD library for tests only, never shipped.
 * While the file named by EVH_TEST_FSYNC_FAIL_MARKER exists, fsync(2) and
 * fdatasync(2) fail with EIO, as on a disk that lost writes; otherwise they
 * are the C library's. A test creates and removes the marker to stage a
 * failing disk under a running evhost (tests/integration/audit_group_commit_test.cpp). */
#define _GNU_SOURCE

#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int fsync(int fd);
int fdatasync(int fd);

typedef int (*sync_fn)(int);

static int failing(void) {
  const char* marker = getenv("EVH_TEST_FSYNC_FAIL_MARKER");
  return marker != NULL && access(marker, F_OK) == 0;
}

static sync_fn next(const char* name) {
  void* p = dlsym(RTLD_NEXT, name);
  sync_fn fn = NULL;
  memcpy(&fn, &p, sizeof fn); /* a data pointer to a function pointer, as POSIX allows */
  return fn;
}

int fsync(int fd) {
  sync_fn real;
  if (failing()) {
    errno = EIO;
    return -1;
  }
  real = next("fsync");
  return real != NULL ? real(fd) : -1;
}

int fdatasync(int fd) {
  sync_fn real;
  if (failing()) {
    errno = EIO;
    return -1;
  }
  real = next("fdatasync");
  return real != NULL ? real(fd) : -1;
}
