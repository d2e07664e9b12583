/* audit_file: see audit_file.h. POSIX only: open/write/fsync/rename/stat.
 *
 * strerror() is called only with the lock held (or in audit_file_open, before
 * any other thread uses the file), so its buffer is never shared. */
#define _POSIX_C_SOURCE 200809L

#include "audit_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Audit lines are about users: readable by the owner and the owner's group
 * (e.g. a log shipper), not by everyone. The umask still applies. */
#define AUDIT_FILE_MODE 0640

static char* audit_strdup(const char* s) {
  size_t n = strlen(s) + 1;
  char* copy = (char*)malloc(n);
  if (copy != NULL) {
    memcpy(copy, s, n);
  }
  return copy;
}

static char* audit_dir_of(const char* path) {
  const char* slash = strrchr(path, '/');
  char* dir;
  size_t n;
  if (slash == NULL) {
    return audit_strdup(".");
  }
  n = slash == path ? 1 : (size_t)(slash - path); /* "/x" lives in "/" */
  dir = (char*)malloc(n + 1);
  if (dir != NULL) {
    memcpy(dir, path, n);
    dir[n] = '\0';
  }
  return dir;
}

/* "<path>.<i>", malloc'ed. */
static char* audit_numbered(const char* path, unsigned i) {
  size_t n = strlen(path) + 16;
  char* name = (char*)malloc(n);
  if (name != NULL) {
    snprintf(name, n, "%s.%u", path, i);
  }
  return name;
}

/* Makes changes to the names in a folder (a new file, a rename) durable. */
static int audit_sync_dir(const char* dir) {
  int rc;
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return -1;
  }
  rc = fsync(fd);
  close(fd);
  return rc;
}

static int audit_write_all(int fd, const char* data, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, data, len);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return -1;
    }
    data += n;
    len -= (size_t)n;
  }
  return 0;
}

/* Opens the path for appending, creating it if needed. Lock held. */
static int audit_file_reopen(audit_file* f, char* err, size_t errlen) {
  struct stat st;
  int created = 1;
  char last = '\n';
  /* O_RDWR, not O_WRONLY: the torn-line check below reads the last byte. */
  int fd = open(f->path, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, AUDIT_FILE_MODE);
  if (fd < 0 && errno == EEXIST) {
    created = 0;
    fd = open(f->path, O_RDWR | O_APPEND | O_CLOEXEC);
  }
  if (fd < 0) {
    snprintf(err, errlen, "cannot open audit file \"%s\": %s", f->path, strerror(errno));
    return -1;
  }
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    snprintf(err, errlen, "audit file \"%s\" is not a regular file", f->path);
    close(fd);
    return -1;
  }
  /* A crash in the middle of an earlier write (power loss, say) may have left
   * a last line without its newline: end it, so that the next line starts on
   * a line of its own instead of being glued to the fragment. */
  if (st.st_size > 0 && pread(fd, &last, 1, st.st_size - 1) == 1 && last != '\n' && audit_write_all(fd, "\n", 1) != 0) {
    snprintf(err, errlen, "cannot write to audit file \"%s\": %s", f->path, strerror(errno));
    close(fd);
    return -1;
  }
  if (created && f->mode != AUDIT_FSYNC_NEVER) {
    (void)audit_sync_dir(f->dir); /* best effort: the lines themselves are fsync'd as the mode says */
  }
  f->fd = fd;
  f->dev = st.st_dev;
  f->ino = st.st_ino;
  return 0;
}

/* Closes the open file, fsyncing what is unsynced first (unless the mode
 * says never). Returns -1 with errno set if that fsync failed. Lock held. */
static int audit_file_retire(audit_file* f) {
  int rc = 0;
  if (f->fd < 0) {
    return 0;
  }
  if (f->mode != AUDIT_FSYNC_NEVER && f->unsynced > 0) {
    rc = fsync(f->fd);
    if (rc == 0) {
      ++f->fsyncs;
    }
  }
  {
    int saved = errno;
    close(f->fd);
    errno = saved;
  }
  f->fd = -1;
  f->unsynced = 0;
  return rc;
}

/* Opens the path again if the open file is no longer the one at the path
 * (moved away by an external log rotation, removed, replaced). Lock held. */
static int audit_file_ensure_open(audit_file* f, audit_append_note* note, char* err, size_t errlen) {
  struct stat st;
  if (f->fd >= 0) {
    if (stat(f->path, &st) == 0 && st.st_dev == f->dev && st.st_ino == f->ino) {
      return 0;
    }
    if (audit_file_retire(f) != 0) {
      snprintf(note->warning, sizeof note->warning, "fsync of the moved-away audit file failed: %s", strerror(errno));
    }
    note->reopened = 1;
  }
  return audit_file_reopen(f, err, errlen);
}

/* Shifts <path>.1 .. <path>.<keep-1> up by one (dropping <path>.<keep>) and
 * renames <path> to <path>.1; with keep 0, removes <path>. The open file
 * stays open under its new name until the renames are done, so a failure
 * part-way leaves it usable. Returns 0 (new file open), 1 (rotation failed,
 * note->warning says why; the old file is still open) or -1 (rotated, but
 * the new file could not be opened: err). Lock held. */
static int audit_file_rotate(audit_file* f, audit_append_note* note, char* err, size_t errlen) {
  unsigned i;
  char* from = NULL;
  char* to = NULL;
  const char* failed_op = NULL;
  int failed_errno = 0;
  if (f->keep == 0) {
    if (unlink(f->path) != 0 && errno != ENOENT) {
      failed_op = "remove";
      failed_errno = errno;
    }
  } else {
    to = audit_numbered(f->path, f->keep);
    if (to == NULL) {
      failed_op = "allocate";
      failed_errno = ENOMEM;
    } else if (unlink(to) != 0 && errno != ENOENT) {
      failed_op = "remove the oldest";
      failed_errno = errno;
    }
    for (i = f->keep; failed_op == NULL && i >= 1; --i) {
      free(from);
      from = i == 1 ? audit_strdup(f->path) : audit_numbered(f->path, i - 1);
      if (from == NULL) {
        failed_op = "allocate";
        failed_errno = ENOMEM;
        break;
      }
      if (rename(from, to) != 0 && (errno != ENOENT || i == 1)) {
        failed_op = "rename";
        failed_errno = errno;
        break;
      }
      free(to);
      to = from;
      from = NULL;
    }
  }
  free(from);
  free(to);
  if (failed_op != NULL) {
    snprintf(note->warning, sizeof note->warning, "cannot rotate audit file \"%s\" (%s: %s); writing on to it", f->path,
             failed_op, strerror(failed_errno));
    note->rotate_failed = 1;
    return 1;
  }
  if (audit_file_retire(f) != 0) {
    snprintf(note->warning, sizeof note->warning, "fsync of the rotated audit file failed: %s", strerror(errno));
  }
  ++f->rotations;
  ++note->rotated;
  if (f->mode != AUDIT_FSYNC_NEVER) {
    (void)audit_sync_dir(f->dir); /* the renames; reopen() syncs it again for the new name */
  }
  return audit_file_reopen(f, err, errlen);
}

int audit_file_check(const char* path, char* err, size_t errlen) {
  struct stat st;
  char why[128] = "";
  char* dir = audit_dir_of(path);
  int rc = -1;
  if (dir == NULL) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  /* strerror_r: a reload checks a config while another instance's writer
   * may be using strerror under its lock. */
  if (stat(dir, &st) != 0) {
    (void)strerror_r(errno, why, sizeof why);
    snprintf(err, errlen, "folder \"%s\" of \"%s\": %s", dir, path, why);
  } else if (!S_ISDIR(st.st_mode)) {
    snprintf(err, errlen, "\"%s\" is not a folder", dir);
  } else if (stat(path, &st) == 0) {
    if (!S_ISREG(st.st_mode)) {
      snprintf(err, errlen, "\"%s\" exists and is not a regular file", path);
    } else if (access(path, W_OK) != 0) {
      (void)strerror_r(errno, why, sizeof why);
      snprintf(err, errlen, "\"%s\" is not writable: %s", path, why);
    } else {
      rc = 0;
    }
  } else if (access(dir, W_OK | X_OK) != 0) {
    (void)strerror_r(errno, why, sizeof why);
    snprintf(err, errlen, "folder \"%s\" is not writable: %s", dir, why);
  } else {
    rc = 0;
  }
  free(dir);
  return rc;
}

int audit_file_open(audit_file* f, const audit_config* cfg, char* err, size_t errlen) {
  memset(f, 0, sizeof(*f));
  f->fd = -1;
  f->mode = cfg->fsync;
  f->rotate_bytes = (uint64_t)cfg->rotate_bytes;
  f->keep = (unsigned)cfg->keep;
  f->path = audit_strdup(cfg->file);
  f->dir = audit_dir_of(cfg->file);
  if (f->path == NULL || f->dir == NULL) {
    snprintf(err, errlen, "out of memory");
    free(f->path);
    free(f->dir);
    return -1;
  }
  if (pthread_mutex_init(&f->lock, NULL) != 0) {
    snprintf(err, errlen, "cannot create a mutex");
    free(f->path);
    free(f->dir);
    return -1;
  }
  if (audit_file_reopen(f, err, errlen) != 0) {
    pthread_mutex_destroy(&f->lock);
    free(f->path);
    free(f->dir);
    return -1;
  }
  return 0;
}

/* Writes one run of lines (bytes [0, len) of data) to the open file and, for
 * "always", fsyncs it. *size is the file's size before, updated after. On
 * failure the run is cut back out: truncated to where the file ended, so
 * that no part of a line the caller will answer RETRY stays. Best effort --
 * if the truncation fails too, the fragment is ended with a newline at the
 * next open. Lock held. */
static int audit_file_write_run(audit_file* f, const char* data, size_t len, size_t lines, off_t* size, char* err,
                                size_t errlen) {
  const char* what = NULL;
  if (audit_write_all(f->fd, data, len) != 0) {
    what = "write to";
  } else if (f->mode == AUDIT_FSYNC_ALWAYS && fsync(f->fd) != 0) {
    /* After a failed fsync Linux may already count the pages as written
     * back: trying again proves nothing. The lines go, and their retry
     * writes and fsyncs them afresh. */
    what = "fsync";
  }
  if (what != NULL) {
    snprintf(err, errlen, "cannot %s audit file \"%s\": %s", what, f->path, strerror(errno));
    if (ftruncate(f->fd, *size) == 0 && f->mode != AUDIT_FSYNC_NEVER) {
      (void)fsync(f->fd);
    }
    return -1;
  }
  if (f->mode == AUDIT_FSYNC_ALWAYS) {
    ++f->fsyncs;
  } else {
    f->unsynced += lines;
  }
  f->lines += lines;
  *size += (off_t)len;
  return 0;
}

int audit_file_append_batch(audit_file* f, const char* data, const size_t* lens, size_t n, audit_append_note* note,
                            size_t* committed, char* err, size_t errlen) {
  struct stat st;
  off_t size;
  size_t i = 0;
  int rotate_failed = 0; /* tried once for this batch: not again per line */
  int rc = -1;
  memset(note, 0, sizeof(*note));
  *committed = 0;
  pthread_mutex_lock(&f->lock);
  if (audit_file_ensure_open(f, note, err, errlen) != 0) {
    goto out;
  }
  if (fstat(f->fd, &st) != 0) {
    snprintf(err, errlen, "cannot stat audit file \"%s\": %s", f->path, strerror(errno));
    goto out;
  }
  size = st.st_size;
  while (i < n) {
    size_t j = i;
    size_t bytes = 0;
    /* Rotate before a line that would take the file past rotate_bytes --
     * but never an empty file: a line longer than rotate_bytes gets a file
     * of its own. The run before it was written (and fsync'd) already. */
    if (f->rotate_bytes > 0 && !rotate_failed && size > 0 && (uint64_t)size + lens[i] > f->rotate_bytes) {
      int r = audit_file_rotate(f, note, err, errlen);
      if (r < 0) {
        goto out;
      }
      rotate_failed = r == 1;
      if (r == 0) {
        if (fstat(f->fd, &st) != 0) {
          snprintf(err, errlen, "cannot stat audit file \"%s\": %s", f->path, strerror(errno));
          goto out;
        }
        size = st.st_size;
      }
    }
    /* The run: this line, and those after it that fit before the next rotation. */
    do {
      bytes += lens[j++];
    } while (j < n && (f->rotate_bytes == 0 || rotate_failed || (uint64_t)size + bytes + lens[j] <= f->rotate_bytes));
    if (audit_file_write_run(f, data, bytes, j - i, &size, err, errlen) != 0) {
      goto out;
    }
    data += bytes;
    i = j;
    *committed = i;
  }
  rc = 0;
out:
  pthread_mutex_unlock(&f->lock);
  return rc;
}

int audit_file_sync(audit_file* f, uint64_t* lines, char* err, size_t errlen) {
  int rc = 0;
  pthread_mutex_lock(&f->lock);
  *lines = 0;
  if (f->fd >= 0 && f->unsynced > 0) {
    *lines = f->unsynced;
    /* Either way these lines are done with: after a failed fsync Linux may
     * already have dropped the dirty pages, so trying again proves nothing. */
    f->unsynced = 0;
    if (fsync(f->fd) != 0) {
      snprintf(err, errlen, "cannot fsync audit file \"%s\": %s", f->path, strerror(errno));
      rc = -1;
    } else {
      ++f->fsyncs;
    }
  }
  pthread_mutex_unlock(&f->lock);
  return rc;
}

void audit_file_totals(audit_file* f, uint64_t* lines, uint64_t* fsyncs, uint64_t* rotations) {
  pthread_mutex_lock(&f->lock);
  *lines = f->lines;
  *fsyncs = f->fsyncs;
  *rotations = f->rotations;
  pthread_mutex_unlock(&f->lock);
}

int audit_file_close(audit_file* f, char* err, size_t errlen) {
  int rc = 0;
  pthread_mutex_lock(&f->lock);
  if (audit_file_retire(f) != 0) {
    snprintf(err, errlen, "cannot fsync audit file \"%s\" at shutdown: %s", f->path, strerror(errno));
    rc = -1;
  }
  pthread_mutex_unlock(&f->lock);
  pthread_mutex_destroy(&f->lock);
  free(f->path);
  free(f->dir);
  f->path = NULL;
  f->dir = NULL;
  return rc;
}
