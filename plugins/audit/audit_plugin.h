/* audit_plugin: the audit plugin's instance, shared by the files that work on
 * it: audit.c (init, handle, shutdown), audit_writer.c (the queue and the
 * writer thread), audit_stream.c (the copy in a Redis stream) and
 * audit_flusher.c (the fsync "interval" thread). Internal to the plugin;
 * audit.c describes what it does and which thread touches what. */
#pragma once

#include "audit_buf.h"
#include "audit_config.h"
#include "audit_file.h"
#include "audit_redact.h"
#include "audit_seen.h"

#include <evh/plugin.h>

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define AUDIT_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define AUDIT_PRINTF(fmt, args)
#endif

/* One event's line waiting for the writer. */
typedef struct audit_item {
  evh_call* call;  /* completed by the writer thread */
  size_t line_len; /* its line: the next line_len bytes of the batch's lines, '\n' included */
  size_t id_off;   /* its eventId: ids.data[id_off, id_off + id_len) */
  size_t id_len;
  uint32_t redacted; /* values its line redacted */
  int redelivered;   /* EVH_EVENT_REDELIVERED: looked up in the window of seen eventIds */
  int skip;          /* writer: AUDIT_SKIP_* (audit_writer.c) */
  size_t same_as;    /* writer, AUDIT_SKIP_IN_BATCH: the earlier item of the batch with its eventId */
  evh_status status; /* writer: the outcome it completes the call with */
} audit_item;

/* Lines handed from handle() to the writer, in delivery order. */
typedef struct audit_batch {
  audit_buf lines; /* the lines back to back */
  audit_buf ids;   /* the eventIds back to back */
  audit_item* items;
  size_t count;
  size_t cap;
} audit_batch;

typedef struct audit {
  const evh_host_api* api;
  evh_host* host;
  audit_config cfg;
  audit_file file;

  /* The stream, when configured: environment prefix + stream.key. */
  char* stream_key;
  char stream_maxlen[24];

  /* handle() state: handle() runs on the loop thread only (the plugin is
   * inline), one call at a time, so these need no lock. */
  audit_buf line;
  audit_copier copier;
  uint64_t queue_full_logged_ms; /* when "queue full" was last logged (monotonic ms) */

  /* The queue between handle() and the writer thread (audit_writer.c). */
  pthread_t writer;
  int writer_started;
  pthread_mutex_t queue_lock;
  pthread_cond_t queue_wake;
  audit_batch queued;  /* guarded by queue_lock: lines handed over, not yet taken */
  int writer_stopping; /* guarded by queue_lock: shutdown; drain and end */
  audit_batch batch;   /* the writer's: the lines it is writing */
  size_t* lens;        /* the writer's: the lengths of the lines it writes */
  size_t lens_cap;
  int write_failing; /* the writer's: a failed batch was logged; quiet until one succeeds */

  /* The writer thread's own; read by shutdown after joining it. */
  int rotate_failing; /* a failed rotation was logged; quiet until one succeeds */
  uint64_t redacted;  /* totals for the closing summary */
  uint64_t write_errors;
  uint64_t duplicates;
  uint64_t batches;
  audit_seen seen; /* eventIds of the newest lines */

  /* The "interval" flusher thread. */
  pthread_t flusher;
  int flusher_started;
  pthread_mutex_t flusher_lock;
  pthread_cond_t flusher_wake;
  int stopping;            /* guarded by flusher_lock */
  uint64_t flusher_errors; /* touched by the flusher only; read after joining it */

  /* Stream health: written by the writer thread and reply callbacks (loop). */
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
  evh_metric* m_queue_full;
} audit;

/* A NUL-terminated string as an evh_str (not copied). */
evh_str audit_str(const char* s);

/* printf-style logging through the host (which copies the message). */
void audit_log(audit* a, evh_log_level level, const char* fmt, ...) AUDIT_PRINTF(3, 4);
