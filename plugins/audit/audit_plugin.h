/* audit_plugin: the audit plugin's instance, shared by the files that work on
 * it: audit.c (init, handle, shutdown), audit_stream.c (the copy in a Redis
 * stream) and audit_flusher.c (the fsync "interval" thread). Internal to the
 * plugin; audit.c describes what it does and which thread touches what. */
#pragma once

#include "audit_buf.h"
#include "audit_config.h"
#include "audit_file.h"
#include "audit_redact.h"
#include "audit_seen.h"

#include <evh/plugin.h>

#include <pthread.h>
#include <stdint.h>

#if defined(__GNUC__)
#define AUDIT_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define AUDIT_PRINTF(fmt, args)
#endif

typedef struct audit {
  const evh_host_api* api;
  evh_host* host;
  audit_config cfg;
  audit_file file;

  /* The stream, when configured: environment prefix + stream.key. */
  char* stream_key;
  char stream_maxlen[24];

  /* handle() state. max_concurrency is 1: the host never runs two handle()
   * calls of one instance at once, so these need no lock. */
  audit_buf line;
  audit_copier copier;
  int rotate_failing; /* a failed rotation was logged; quiet until one succeeds */
  uint64_t redacted;  /* totals for the closing summary */
  uint64_t write_errors;
  uint64_t duplicates;
  audit_seen seen; /* eventIds of the newest lines */
  int seen_loaded; /* the file's tail was read into `seen` */

  /* The "interval" flusher thread. */
  pthread_t flusher;
  int flusher_started;
  pthread_mutex_t flusher_lock;
  pthread_cond_t flusher_wake;
  int stopping;            /* guarded by flusher_lock */
  uint64_t flusher_errors; /* touched by the flusher only; read after joining it */

  /* Stream health: written by handle() (worker) and reply callbacks (loop). */
  pthread_mutex_t stream_lock;
  int stream_failing;
  uint64_t stream_missed;

  evh_metric* m_lines;
  evh_metric* m_redacted;
  evh_metric* m_rotations;
  evh_metric* m_write_errors;
  evh_metric* m_stream_added;
  evh_metric* m_stream_errors;
  evh_metric* m_duplicates;
} audit;

/* A NUL-terminated string as an evh_str (not copied). */
evh_str audit_str(const char* s);

/* printf-style logging through the host (which copies the message). */
void audit_log(audit* a, evh_log_level level, const char* fmt, ...) AUDIT_PRINTF(3, 4);
