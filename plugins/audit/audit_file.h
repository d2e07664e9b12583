/* audit_file: the audit file itself -- appends, fsync per mode, size-based
 * rotation, and reopening when someone else moved the file away.
 *
 * Every function takes the file's lock, so handle() (on a worker thread) and
 * the interval flusher (its own thread) can share one audit_file. */
#pragma once

#include "audit_config.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct audit_file {
  pthread_mutex_t lock;
  char* path;
  char* dir; /* the folder of path, fsync'd when names in it change */
  int fd;    /* -1 while not open */
  dev_t dev; /* identity of the open file, to notice a move or removal */
  ino_t ino;
  audit_fsync_mode mode;
  uint64_t rotate_bytes; /* 0: never */
  unsigned keep;
  uint64_t unsynced; /* lines written since the last fsync */
  /* totals since open, for the closing summary */
  uint64_t lines;
  uint64_t fsyncs;
  uint64_t rotations;
} audit_file;

/* What happened around one append besides the line itself. */
typedef struct audit_append_note {
  int rotated;       /* the file was rotated before this line */
  int rotate_failed; /* it was due for rotation, which failed (see warning): the line went to it anyway */
  int reopened;      /* the path had been moved, removed or replaced by someone else: opened again */
  char warning[320]; /* non-empty: something failed that did not stop the line (e.g. a rotation) */
} audit_append_note;

/* Opens (creating if needed) cfg->file for appending. Returns 0, or -1 with
 * the reason in err. */
int audit_file_open(audit_file* f, const audit_config* cfg, char* err, size_t errlen);

/* Appends `line` (which ends in '\n'), rotating first if it would make the
 * file exceed rotate_bytes, and fsyncs it when the mode is "always". On
 * return 0 the line is in the file (and on disk, for "always"). On -1 (reason
 * in err) the file holds no part of it: a partial write is truncated away. */
int audit_file_append(audit_file* f, const char* line, size_t len, audit_append_note* note, char* err, size_t errlen);

/* For the interval flusher: fsyncs if lines were written since the last
 * fsync. *lines is how many that covered (0: nothing to do). Returns 0, or
 * -1 with the reason in err (those lines may then not be durable). */
int audit_file_sync(audit_file* f, uint64_t* lines, char* err, size_t errlen);

/* Totals since open. */
void audit_file_totals(audit_file* f, uint64_t* lines, uint64_t* fsyncs, uint64_t* rotations);

/* A last fsync (unless the mode is "never"), then closes and frees. Returns
 * 0, or -1 with the reason in err if that fsync failed. */
int audit_file_close(audit_file* f, char* err, size_t errlen);
