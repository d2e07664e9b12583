/* audit: the plan's audit handler (Step 2.3), written in plain C99 against the
 * evhost C ABI -- the example to copy for a C plugin that does real work.
 *
 * For every event routed to it (USER_ACTIVITY on jollyjet:events:audit, and
 * whatever else a route sends), it appends one JSON line to a file:
 *
 *   {"timestamp":"2024-01-15T10:30:00.000Z","auditedAt":"...","eventId":"...",
 *    "eventType":"USER_ACTIVITY","userId":"u-1","action":"login",
 *    "correlationId":"req-1","channel":"jollyjet:events:audit",
 *    "metadata":{"email":"[redacted]","plan":"pro"}}
 *
 * with configured payload paths replaced by "[redacted]" (the plan: "never
 * include PII"); other event types carry their whole (redacted) "payload"
 * instead of "metadata". The file is fsync'd per line, on an interval or
 * never; rotated by size; optionally each line is also XADDed to a capped
 * Redis stream. docs/plugins/audit.md is the user's manual.
 *
 * Threads: the plugin is EVH_PLUGIN_BLOCKING with max_concurrency 1, so
 * handle() runs on an evhost worker thread, one call at a time, in delivery
 * order: file I/O never blocks the event loop and lines keep their order.
 * With fsync "interval" a thread of the plugin's own fsyncs in the background.
 * Stream replies arrive on the loop thread.
 *
 * Redeliveries: a stream entry handled before a crash but not yet marked or
 * acknowledged comes again. Its line is already in the file, and the file
 * and Redis cannot be written in one step, so the plugin remembers the
 * eventIds of its newest lines (audit_seen.c: dedup_window lines, loaded from
 * the file's tail before the first write) and answers OK without a second
 * line for a redelivered event it finds there.
 *
 * Files: audit.c (this: the plugin, the line, the stream), audit_config.c
 * (settings), audit_file.c (append, fsync, rotation), audit_seen.c (the
 * eventIds of the newest lines), audit_redact.c
 * (redaction paths and the redacting JSON copier), json_scan.c (a small JSON
 * reader and string writer), audit_buf.c (a growable buffer). */
#define _POSIX_C_SOURCE 200809L

#include "audit_buf.h"
#include "audit_config.h"
#include "audit_file.h"
#include "audit_redact.h"
#include "audit_seen.h"
#include "json_scan.h"

#include <evh/plugin.h>

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

static evh_str audit_str(const char* s) {
  evh_str out;
  out.ptr = s;
  out.len = strlen(s);
  return out;
}

static int audit_str_is(evh_str s, const char* lit) {
  size_t n = strlen(lit);
  return s.len == n && memcmp(s.ptr, lit, n) == 0;
}

/* printf-style logging through the host (which copies the message). */
static void audit_log(audit* a, evh_log_level level, const char* fmt, ...) AUDIT_PRINTF(3, 4);
static void audit_log(audit* a, evh_log_level level, const char* fmt, ...) {
  char msg[1024];
  va_list args;
  int n;
  if (!a->api->log_enabled(a->host, level)) {
    return; /* skip the formatting too */
  }
  va_start(args, fmt);
  n = vsnprintf(msg, sizeof msg, fmt, args);
  va_end(args);
  if (n < 0) {
    return;
  }
  a->api->log(a->host, level, (evh_str){msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1});
}

/* ---- the line ---------------------------------------------------------------- */

/* The current time as a JSON string, ISO-8601 UTC with milliseconds. */
static void audit_put_now(audit_buf* out) {
  struct timespec ts;
  struct tm tm;
  char text[64];
  int n;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  n = snprintf(text, sizeof text, "\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\"", tm.tm_year + 1900, tm.tm_mon + 1,
               tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ts.tv_nsec / 1000000));
  audit_buf_append(out, text, n > 0 && (size_t)n < sizeof text ? (size_t)n : 0);
}

static void audit_put_string_or_null(audit_buf* out, evh_str s) {
  if (s.len == 0) {
    audit_buf_puts(out, "null");
  } else {
    audit_json_write_string(out, s.ptr, s.len);
  }
}

/* Writes the payload member `name` (its value, or null when absent),
 * redacted as configured. */
static int audit_put_member(audit* a, const char* name, evh_str value) {
  int redact = 0;
  uint64_t below;
  if (value.ptr == NULL) {
    audit_buf_puts(&a->line, "null");
    return 0;
  }
  below = audit_redact_step(&a->cfg.redact, audit_redact_all(&a->cfg.redact), 0, name, strlen(name), &redact);
  if (redact) {
    audit_buf_puts(&a->line, AUDIT_REDACTED);
    ++a->copier.redacted;
    return 0;
  }
  return audit_copy_redacted(&a->copier, &a->line, value, below, 1);
}

/* Builds the event's line, '\n' included, in a->line. Returns 0, or -1 with
 * the reason in err. */
static int audit_format_line(audit* a, const evh_event* ev, char* err, size_t errlen) {
  audit_buf* out = &a->line;
  const int is_activity = audit_str_is(ev->event_type, "USER_ACTIVITY");
  evh_str user = {NULL, 0};
  evh_str action = {NULL, 0};
  evh_str metadata = {NULL, 0};
  evh_str key;
  evh_str value;
  audit_json_iter it;
  int rc;

  audit_buf_reset(out);
  a->copier.redacted = 0;
  if (!audit_json_object(&it, ev->payload)) {
    snprintf(err, errlen, "audit: the payload is not a JSON object");
    return -1;
  }
  /* The plan's UserActivityEvent payload: {userId, action, metadata}. A key
   * given twice counts once, the last time, as in JavaScript. */
  while ((rc = audit_json_next(&it, &key, &value)) == 1) {
    if (audit_json_key_is(key, "userId", 6)) {
      user = value;
    } else if (audit_json_key_is(key, "action", 6)) {
      action = value;
    } else if (audit_json_key_is(key, "metadata", 8)) {
      metadata = value;
    }
  }
  if (rc < 0) {
    snprintf(err, errlen, "audit: the payload is not valid JSON");
    return -1;
  }

  audit_buf_puts(out, "{\"timestamp\":");
  audit_put_string_or_null(out, ev->timestamp);
  audit_buf_puts(out, ",\"auditedAt\":");
  audit_put_now(out);
  audit_buf_puts(out, ",\"eventId\":");
  audit_json_write_string(out, ev->event_id.ptr, ev->event_id.len);
  audit_buf_puts(out, ",\"eventType\":");
  audit_json_write_string(out, ev->event_type.ptr, ev->event_type.len);
  audit_buf_puts(out, ",\"userId\":");
  rc = audit_put_member(a, "userId", user);
  audit_buf_puts(out, ",\"action\":");
  rc |= audit_put_member(a, "action", action);
  audit_buf_puts(out, ",\"correlationId\":");
  audit_put_string_or_null(out, ev->correlation_id);
  audit_buf_puts(out, ",\"channel\":");
  audit_json_write_string(out, ev->channel.ptr, ev->channel.len);
  if (is_activity) {
    audit_buf_puts(out, ",\"metadata\":");
    rc |= audit_put_member(a, "metadata", metadata);
  } else {
    /* Any other event type routed here: its whole payload, redacted by the
     * same paths (relative to the payload). */
    audit_buf_puts(out, ",\"payload\":");
    rc |= audit_copy_redacted(&a->copier, out, ev->payload, audit_redact_all(&a->cfg.redact), 0);
  }
  audit_buf_puts(out, "}\n");
  if (out->failed) {
    snprintf(err, errlen, "audit: out of memory formatting the line");
    return -1;
  }
  if (rc != 0) {
    snprintf(err, errlen, "audit: the payload is not valid JSON");
    return -1;
  }
  return 0;
}

/* ---- the stream ------------------------------------------------------------- */

static const char* audit_status_text(evh_status s) {
  switch (s) {
    case EVH_ERR_UNAVAILABLE:
      return "Redis unavailable";
    case EVH_ERR_CANCELLED:
      return "evhost is stopping";
    case EVH_ERR_NOMEM:
      return "out of memory";
    case EVH_ERR_INVALID:
      return "invalid request";
    default:
      return "request failed";
  }
}

/* Failures are logged once per outage, not once per line. */
static void audit_stream_failed(audit* a, const char* why) {
  int first;
  pthread_mutex_lock(&a->stream_lock);
  first = !a->stream_failing;
  a->stream_failing = 1;
  ++a->stream_missed;
  pthread_mutex_unlock(&a->stream_lock);
  a->api->metric_add(a->m_stream_errors, 1);
  if (first) {
    audit_log(a, EVH_LOG_WARN,
              "cannot add audit lines to stream %s (%s); the file %s still gets every line. "
              "Logged once until XADD works again",
              a->stream_key, why, a->cfg.file);
  }
}

static void audit_stream_ok(audit* a) {
  int was_failing;
  uint64_t missed;
  pthread_mutex_lock(&a->stream_lock);
  was_failing = a->stream_failing;
  missed = a->stream_missed;
  a->stream_failing = 0;
  a->stream_missed = 0;
  pthread_mutex_unlock(&a->stream_lock);
  a->api->metric_add(a->m_stream_added, 1);
  if (was_failing) {
    audit_log(a, EVH_LOG_INFO, "XADD to stream %s works again; %llu audit lines did not reach it (they are in %s)",
              a->stream_key, (unsigned long long)missed, a->cfg.file);
  }
}

/* THREAD: the loop thread. The instance outlives it: the host runs every
 * reply callback before shutdown(). */
static void audit_stream_reply(void* user_data, evh_status status, const evh_reply* reply) {
  audit* a = (audit*)user_data;
  if (status == EVH_OK && reply->type != EVH_REPLY_ERROR) {
    audit_stream_ok(a);
  } else if (status == EVH_OK) {
    audit_stream_failed(a, reply->str.ptr);
  } else {
    audit_stream_failed(a, audit_status_text(status));
  }
}

/* Fire and forget: the file is the record; the stream is a queryable copy.
 * Waiting for the reply would tie every audit line's latency to Redis and
 * stall auditing during an outage, and a failed XADD cannot be answered with
 * RETRY anyway (the line is already in the file and would be written twice).
 * Order is kept: one caller at a time, and the host sends commands in order
 * on one connection. */
static void audit_stream_add(audit* a) {
  evh_str argv[8];
  evh_status s;
  argv[0] = audit_str("XADD");
  argv[1] = audit_str(a->stream_key);
  argv[2] = audit_str("MAXLEN");
  argv[3] = audit_str("~");
  argv[4] = audit_str(a->stream_maxlen);
  argv[5] = audit_str("*");
  argv[6] = audit_str("data");
  argv[7].ptr = a->line.data;
  argv[7].len = a->line.len - 1; /* without the '\n' */
  s = a->api->redis_command(a->host, 8, argv, audit_stream_reply, a);
  if (s != EVH_OK) {
    audit_stream_failed(a, audit_status_text(s)); /* the callback will not run */
  }
}

/* ---- the interval flusher ------------------------------------------------------ */

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

static int audit_start_flusher(audit* a) {
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

static void audit_stop_flusher(audit* a) {
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

/* ---- the plugin --------------------------------------------------------------- */

/* Frees what audit_new() and audit_init() made (the file is closed separately). */
static void audit_free(audit* a) {
  pthread_mutex_destroy(&a->stream_lock);
  pthread_mutex_destroy(&a->flusher_lock);
  free(a->stream_key);
  audit_buf_free(&a->line);
  audit_seen_free(&a->seen);
  audit_copier_free(&a->copier);
  audit_config_free(&a->cfg);
  free(a);
}

/* Describes the settings in one line, for the start-up log. */
static void audit_describe(audit* a, audit_buf* out) {
  char num[128];
  size_t i;
  snprintf(num, sizeof num, " (fsync: %s", audit_fsync_mode_name(a->cfg.fsync));
  audit_buf_puts(out, num);
  if (a->cfg.fsync == AUDIT_FSYNC_INTERVAL) {
    snprintf(num, sizeof num, " every %lld ms", (long long)a->cfg.fsync_interval_ms);
    audit_buf_puts(out, num);
  }
  if (a->cfg.rotate_bytes > 0) {
    snprintf(num, sizeof num, "; rotated at %lld bytes, keeping %lld", (long long)a->cfg.rotate_bytes,
             (long long)a->cfg.keep);
  } else {
    snprintf(num, sizeof num, "; never rotated");
  }
  audit_buf_puts(out, num);
  audit_buf_puts(out, a->cfg.redact.count > 0 ? "; redacting " : "; redacting nothing");
  for (i = 0; i < a->cfg.redact.count; ++i) {
    audit_buf_puts(out, i > 0 ? ", " : "");
    audit_buf_puts(out, a->cfg.redact.paths[i].text);
  }
  if (a->cfg.dedup_window > 0) {
    snprintf(num, sizeof num, "; skipping redelivered eventIds among the last %lld lines",
             (long long)a->cfg.dedup_window);
  } else {
    snprintf(num, sizeof num, "; no check for redelivered eventIds");
  }
  audit_buf_puts(out, num);
  if (a->stream_key != NULL) {
    audit_buf_puts(out, "; also XADD to stream ");
    audit_buf_puts(out, a->stream_key);
    audit_buf_puts(out, " MAXLEN ~ ");
    audit_buf_puts(out, a->stream_maxlen);
  }
  audit_buf_puts(out, ")");
}

/* A zeroed instance with its locks made, or NULL. */
static audit* audit_new(void) {
  audit* a = (audit*)calloc(1, sizeof(*a));
  if (a == NULL) {
    return NULL;
  }
  if (pthread_mutex_init(&a->stream_lock, NULL) != 0) {
    free(a);
    return NULL;
  }
  if (pthread_mutex_init(&a->flusher_lock, NULL) != 0) {
    pthread_mutex_destroy(&a->stream_lock);
    free(a);
    return NULL;
  }
  audit_buf_init(&a->line);
  audit_copier_init(&a->copier, &a->cfg.redact); /* cfg is filled in later, in place */
  return a;
}

static evh_status audit_init(const evh_host_api* api, evh_host* host, evh_str config_json, void** out) {
  char err[512];
  audit* a = audit_new();
  audit_buf text;
  if (a == NULL) {
    api->set_error(host, audit_str("out of memory"));
    return EVH_ERR_NOMEM;
  }
  a->api = api;
  a->host = host;
  if (audit_config_parse(&a->cfg, config_json, err, sizeof err) != 0) {
    api->set_error(host, audit_str(err));
    audit_free(a);
    return EVH_ERR_INVALID;
  }
  if (audit_seen_init(&a->seen, (size_t)a->cfg.dedup_window) != 0) {
    api->set_error(host, audit_str("out of memory"));
    audit_free(a);
    return EVH_ERR_NOMEM;
  }
  if (a->cfg.stream_key != NULL) {
    evh_str prefix = api->env_prefix(host);
    size_t n = strlen(a->cfg.stream_key);
    a->stream_key = (char*)malloc(prefix.len + n + 1);
    if (a->stream_key == NULL) {
      api->set_error(host, audit_str("out of memory"));
      audit_free(a);
      return EVH_ERR_NOMEM;
    }
    memcpy(a->stream_key, prefix.ptr, prefix.len);
    memcpy(a->stream_key + prefix.len, a->cfg.stream_key, n + 1);
    snprintf(a->stream_maxlen, sizeof a->stream_maxlen, "%lld", (long long)a->cfg.stream_maxlen);
  }
  /* Opened now, not at the first event: a file that cannot be written is a
   * deployment mistake, better refused at start-up than found in production. */
  if (audit_file_open(&a->file, &a->cfg, err, sizeof err) != 0) {
    api->set_error(host, audit_str(err));
    audit_free(a);
    return EVH_ERR_INVALID;
  }
  if (a->cfg.fsync == AUDIT_FSYNC_INTERVAL && audit_start_flusher(a) != 0) {
    api->set_error(host, audit_str("cannot start the fsync thread"));
    (void)audit_file_close(&a->file, err, sizeof err);
    audit_free(a);
    return EVH_ERR_INTERNAL;
  }
  a->m_lines = api->metric_register(host, audit_str("lines_written"), EVH_METRIC_COUNTER,
                                    audit_str("audit lines appended to the file"));
  a->m_redacted = api->metric_register(host, audit_str("redacted_fields"), EVH_METRIC_COUNTER,
                                       audit_str("values replaced by \"[redacted]\""));
  a->m_rotations = api->metric_register(host, audit_str("rotations"), EVH_METRIC_COUNTER,
                                        audit_str("size-based rotations of the audit file"));
  a->m_write_errors = api->metric_register(host, audit_str("write_errors"), EVH_METRIC_COUNTER,
                                           audit_str("failed writes or fsyncs of the audit file"));
  a->m_stream_added = api->metric_register(host, audit_str("stream_added"), EVH_METRIC_COUNTER,
                                           audit_str("audit lines added to the Redis stream"));
  a->m_stream_errors = api->metric_register(host, audit_str("stream_errors"), EVH_METRIC_COUNTER,
                                            audit_str("audit lines that did not reach the Redis stream"));
  a->m_duplicates = api->metric_register(
      host, audit_str("redeliveries_skipped"), EVH_METRIC_COUNTER,
      audit_str("redelivered events whose line was already in the file (answered OK, not written again)"));
  audit_buf_init(&text);
  audit_describe(a, &text);
  audit_log(a, EVH_LOG_INFO, "auditing to %s%s", a->cfg.file, text.data != NULL ? text.data : "");
  audit_buf_free(&text);
  *out = a;
  return EVH_OK;
}

/* Reads the eventIds of the file's newest lines into the window, once,
 * before the first line is written. In handle(), not init(): init runs on
 * evhost's loop thread, which must not wait for a disk; handle() runs on a
 * worker. A failure costs only the protection, never an event. */
static void audit_load_seen(audit* a) {
  char err[512];
  size_t loaded = 0;
  int truncated = 0;
  a->seen_loaded = 1;
  if (a->cfg.dedup_window == 0) {
    return;
  }
  if (audit_seen_load(&a->seen, a->cfg.file, &loaded, &truncated, err, sizeof err) != 0) {
    audit_log(a, EVH_LOG_WARN,
              "%s: %zu eventIds remembered; a redelivered event older than them may get a second "
              "line",
              err, loaded);
    return;
  }
  if (truncated) {
    audit_log(a, EVH_LOG_WARN,
              "read %zu MiB of %s without finding %lld lines: %zu eventIds remembered against "
              "redeliveries",
              AUDIT_SEEN_MAX_LOAD_BYTES >> 20, a->cfg.file, (long long)a->cfg.dedup_window, loaded);
  } else {
    audit_log(a, EVH_LOG_INFO, "remembered the eventIds of the last %zu lines of %s against redeliveries", loaded,
              a->cfg.file);
  }
}

/* A redelivered event (a stream entry handled before a crash, say) whose line
 * is already written. Only redelivered events are looked up: nothing else can
 * be a repeat the host did not already skip by its idempotency mark. */
static int audit_already_written(audit* a, const evh_event* ev) {
  if ((ev->flags & EVH_EVENT_REDELIVERED) == 0 || !audit_seen_has(&a->seen, ev->event_id.ptr, ev->event_id.len)) {
    return 0;
  }
  ++a->duplicates;
  a->api->metric_add(a->m_duplicates, 1);
  audit_log(a, EVH_LOG_DEBUG, "eventId=%.*s was redelivered and is already in %s: not written again",
            (int)(ev->event_id.len > 200 ? 200 : ev->event_id.len), ev->event_id.ptr, a->cfg.file);
  return 1;
}

static evh_status audit_handle(void* instance, const evh_event* ev, evh_call* call) {
  audit* a = (audit*)instance;
  char err[512];
  audit_append_note note;
  if (!a->seen_loaded) {
    audit_load_seen(a);
  }
  if (audit_already_written(a, ev)) {
    return EVH_OK;
  }
  if (audit_format_line(a, ev, err, sizeof err) != 0) {
    a->api->call_set_error(call, audit_str(err));
    /* Out of memory may pass; a payload that is not JSON will not. */
    return a->line.failed ? EVH_RETRY : EVH_REJECT;
  }
  if (audit_file_append(&a->file, a->line.data, a->line.len, &note, err, sizeof err) != 0) {
    /* Not in the file (a partial write was cut away): a retry writes it whole. */
    ++a->write_errors;
    a->api->metric_add(a->m_write_errors, 1);
    a->api->call_set_error(call, audit_str(err));
    return EVH_RETRY;
  }
  if (note.reopened) {
    audit_log(a, EVH_LOG_WARN, "audit file %s was moved, removed or replaced by someone else; writing to a new %s",
              a->cfg.file, a->cfg.file);
  }
  if (note.rotated) {
    a->rotate_failing = 0;
    a->api->metric_add(a->m_rotations, 1);
    audit_log(a, EVH_LOG_INFO, "rotated audit file %s (keeping %lld older files)", a->cfg.file, (long long)a->cfg.keep);
  }
  if (note.warning[0] != '\0' && !(note.rotate_failed && a->rotate_failing)) {
    audit_log(a, EVH_LOG_ERROR, "%s%s", note.warning,
              note.rotate_failed ? " (logged once until a rotation succeeds)" : "");
  }
  if (note.rotate_failed) {
    a->rotate_failing = 1;
  }
  audit_seen_add(&a->seen, ev->event_id.ptr, ev->event_id.len);
  a->redacted += a->copier.redacted;
  a->api->metric_add(a->m_lines, 1);
  a->api->metric_add(a->m_redacted, (int64_t)a->copier.redacted);
  if (a->stream_key != NULL) {
    audit_stream_add(a); /* after the line is in the file (and fsync'd, per the mode) */
  }
  return EVH_OK;
}

static void audit_shutdown(void* instance) {
  audit* a = (audit*)instance;
  char err[512];
  audit_stop_flusher(a);
  if (audit_file_close(&a->file, err, sizeof err) != 0) {
    ++a->write_errors;
    audit_log(a, EVH_LOG_ERROR, "%s", err);
  }
  audit_log(a, EVH_LOG_INFO,
            "closed audit file %s: lines=%llu fsyncs=%llu rotations=%llu redacted=%llu write_errors=%llu "
            "redeliveries_skipped=%llu",
            a->cfg.file, (unsigned long long)a->file.lines, (unsigned long long)a->file.fsyncs,
            (unsigned long long)a->file.rotations, (unsigned long long)a->redacted,
            (unsigned long long)(a->write_errors + a->flusher_errors), (unsigned long long)a->duplicates);
  audit_free(a);
}

static const evh_plugin_desc audit_desc = {
    .struct_size = sizeof(evh_plugin_desc),
    .abi_version = EVH_ABI_VERSION,
    .name = "audit",
    .version = "1.0.0",
    .description =
        "JollyJet audit log: one redacted JSON line per event in a file (fsync, rotation), optionally a Redis stream",
    .flags = EVH_PLUGIN_BLOCKING, /* file I/O: handle() runs on the worker pool */
    .max_concurrency = 1,         /* one call at a time: one writer, lines in order */
    .init = audit_init,
    .handle = audit_handle,
    .shutdown = audit_shutdown,
};

EVH_PLUGIN_EXPORT const evh_plugin_desc* evh_plugin_entry(uint32_t host_abi_version) {
  (void)host_abi_version;
  return &audit_desc;
}
