/* audit_flusher: the fsync "interval" thread (see audit_flusher.h): a
 * timed wait on a monotonic clock, then audit_file_sync() without the
 * thread's own lock held, so that shutdown can always signal it. */
#define _POSIX_C_SOURCE 200809L

#include "audit_flusher.h"

#include <errno.h>
#include <pthread.h>
#include <time.h>

static void audit_flush_once(audit* a) {
  char err[512];
  uint64_t lines = 0;
  if (audit_file_sync(&a->file, &lines, err, sizeof err) != 0) {
    ++a->flusher_errors;
    a->api->metric_add(a->m_write_errors, 1);
    audit_log(a, EVH_LOG_ERROR, "%s: %llu audit lines written since the last fsync may not be on disk", err,
              (unsigned long long)lines);
  } else if (lines > 0) {
    audit_log(a, EVH_LOG_DEBUG, "fsync'd %llu audit lines of %s (fsync: interval)", (unsigned long long)lines,
              a->cfg.file);
  }
}

/* Wakes every fsync_interval_ms and fsyncs what was written meanwhile, so at
 * most that much is at risk in an OS crash -- also when events stop coming,
 * which an fsync done by handle() itself would not cover. */
static void* audit_flusher_main(void* arg) {
  audit* a = (audit*)arg;
  struct timespec deadline;
  pthread_mutex_lock(&a->flusher_lock);
  while (!a->stopping) {
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += (time_t)(a->cfg.fsync_interval_ms / 1000);
    deadline.tv_nsec += (long)(a->cfg.fsync_interval_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
      deadline.tv_sec += 1;
      deadline.tv_nsec -= 1000000000L;
    }
    while (!a->stopping) {
      if (pthread_cond_timedwait(&a->flusher_wake, &a->flusher_lock, &deadline) == ETIMEDOUT) {
        break;
      }
    }
    if (a->stopping) {
      break;
    }
    pthread_mutex_unlock(&a->flusher_lock); /* shutdown may signal while the fsync runs */
    audit_flush_once(a);
    pthread_mutex_lock(&a->flusher_lock);
  }
  pthread_mutex_unlock(&a->flusher_lock);
  return NULL;
}

int audit_start_flusher(audit* a) {
  pthread_condattr_t attr;
  int rc;
  if (pthread_condattr_init(&attr) != 0) {
    return -1;
  }
  /* A monotonic clock: a wall-clock step must not stall or rush the fsyncs. */
  rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0 && pthread_cond_init(&a->flusher_wake, &attr) == 0 ? 0
                                                                                                                 : -1;
  pthread_condattr_destroy(&attr);
  if (rc != 0) {
    return -1;
  }
  if (pthread_create(&a->flusher, NULL, audit_flusher_main, a) != 0) {
    pthread_cond_destroy(&a->flusher_wake);
    return -1;
  }
  a->flusher_started = 1;
  return 0;
}

void audit_stop_flusher(audit* a) {
  if (!a->flusher_started) {
    return;
  }
  pthread_mutex_lock(&a->flusher_lock);
  a->stopping = 1;
  pthread_cond_signal(&a->flusher_wake);
  pthread_mutex_unlock(&a->flusher_lock);
  pthread_join(a->flusher, NULL); /* prompt: its wait ends on the signal */
  pthread_cond_destroy(&a->flusher_wake);
  a->flusher_started = 0;
}
