/* audit_file: the audit file itself -- appends, fsync per mode, size-based
 * rotation, and reopening when someone else moved the file away.
 *
 * Every function takes the file's lock, so the writer thread (audit_writer.c)
 * and the interval flusher (its own thread) can share one audit_file. */
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
  uint64_t unsynced; /* lines written since the last fsync ("interval" and "never") */
  /* totals since open, for the closing summary */
  uint64_t lines;
  uint64_t fsyncs;
  uint64_t rotations;
} audit_file;

/* What happened around one batch besides its lines. */
typedef struct audit_append_note {
  unsigned rotated;  /* rotations done for this batch */
  int rotate_failed; /* a rotation was due and failed (see warning): the lines went to the old file anyway */
  int reopened;      /* the path had been moved, removed or replaced by someone else: opened again */
  char warning[320]; /* non-empty: something failed that did not stop the lines (e.g. a rotation) */
} audit_append_note;

/* Whether `path` could be opened for appending, looking only (nothing is
 * created or opened): its folder exists and takes new files, and a file
 * already there is a regular file this process may write. Returns 0, or -1
 * with the reason in err. For validate_config. */
int audit_file_check(const char* path, char* err, size_t errlen);

/* Opens (creating if needed) cfg->file for appending. Returns 0, or -1 with
 * the reason in err. */
int audit_file_open(audit_file* f, const audit_config* cfg, char* err, size_t errlen);

/* Appends a batch of n lines: data holds them back to back, lens[i] is the
 * length of line i (each ends in '\n'). Lines go out in as few write(2)s as
 * rotation allows -- a rotation comes before a line that would take the file
 * past rotate_bytes, as if the lines were appended one by one -- and with
 * fsync "always" each run of lines is fsync'd once, before the rotation that
 * ends it or at the end of the batch: one fsync for the whole batch when
 * nothing rotates.
 *
 * *committed is how many lines, from the first, are in the file (and on
 * disk, for "always"). On 0 all n are. On -1 (reason in err) lines from
 * *committed on are not: the run that failed was cut back out of the file,
 * so a retry writes them whole, once. Lines before *committed went to a
 * file rotated before the failure and stay. */
int audit_file_append_batch(audit_file* f, const char* data, const size_t* lens, size_t n, audit_append_note* note,
                            size_t* committed, char* err, size_t errlen);

/* For the interval flusher: fsyncs if lines were written since the last
 * fsync. *lines is how many that covered (0: nothing to do). Returns 0, or
 * -1 with the reason in err (those lines may then not be durable). */
int audit_file_sync(audit_file* f, uint64_t* lines, char* err, size_t errlen);

/* Totals since open. */
void audit_file_totals(audit_file* f, uint64_t* lines, uint64_t* fsyncs, uint64_t* rotations);

/* A last fsync (unless the mode is "never"), then closes and frees. Returns
 * 0, or -1 with the reason in err if that fsync failed. */
int audit_file_close(audit_file* f, char* err, size_t errlen);
