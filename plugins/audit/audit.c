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
 * instead of "metadata". The file is fsync'd per batch of lines, on an
 * interval or never; rotated by size; optionally each line is also XADDed to
 * a capped Redis stream. docs/plugins/audit.md is the user's manual.
 *
 * Threads: the plugin is inline (no EVH_PLUGIN_BLOCKING): handle() runs on
 * evhost's loop thread, in delivery order, and does CPU work only -- it
 * builds the redacted line, queues it and answers EVH_PENDING. The plugin's
 * writer thread (audit_writer.c) writes what is queued in one go, fsyncs
 * once for all of it (group commit) and then completes each call, OK only
 * for lines on disk: no file I/O on the loop, lines in delivery order, and
 * one fsync shared by every event that arrived while the previous one ran.
 * With fsync "interval" a second thread of the plugin's fsyncs in the
 * background. Stream replies arrive on the loop thread.
 *
 * Redeliveries: a stream entry handled before a crash but not yet marked or
 * acknowledged comes again. Its line is already in the file, and the file
 * and Redis cannot be written in one step, so the plugin remembers the
 * eventIds of its newest lines (audit_seen.c: dedup_window lines, loaded from
 * the file's tail by the writer before its first batch) and answers OK
 * without a second line for a redelivered event it finds there.
 *
 * Files: audit.c (this: the descriptor, init, handle, shutdown),
 * audit_plugin.h (the instance), audit_writer.c (the queue, the writer
 * thread, group commit), audit_line.c (the line), audit_stream.c (the copy
 * in a Redis stream), audit_flusher.c (the fsync "interval" thread),
 * audit_config.c (settings), audit_file.c (append, fsync, rotation),
 * audit_seen.c (the eventIds of the newest lines), audit_redact.c
 * (redaction paths and the redacting JSON copier), json_scan.c (a small JSON
 * reader), json_write.c (its string writer), audit_buf.c (a growable
 * buffer). */
#define _POSIX_C_SOURCE 200809L

#include "audit_plugin.h"

#include "audit_flusher.h"
#include "audit_line.h"
#include "audit_writer.h"

#include <evh/plugin.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

evh_str audit_str(const char* s) {
  evh_str out;
  out.ptr = s;
  out.len = strlen(s);
  return out;
}

void audit_log(audit* a, evh_log_level level, const char* fmt, ...) {
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

/* ---- the plugin --------------------------------------------------------------- */

/* Frees what audit_new() and audit_init() made (the file is closed separately). */
static void audit_free(audit* a) {
  pthread_mutex_destroy(&a->stream_lock);
  pthread_mutex_destroy(&a->flusher_lock);
  pthread_mutex_destroy(&a->queue_lock);
  free(a->stream_key);
  free(a->lens);
  audit_batch_free(&a->queued);
  audit_batch_free(&a->batch);
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
  if (pthread_mutex_init(&a->queue_lock, NULL) != 0) {
    pthread_mutex_destroy(&a->flusher_lock);
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
  a->m_queue_full =
      api->metric_register(host, audit_str("queue_full"), EVH_METRIC_COUNTER,
                           audit_str("events answered RETRY because too many lines were waiting for the disk"));
  audit_buf_init(&text);
  audit_describe(a, &text);
  audit_log(a, EVH_LOG_INFO, "auditing to %s%s", a->cfg.file, text.data != NULL ? text.data : "");
  audit_buf_free(&text);
  /* The threads last: they use the metrics (and the writer's first line of
   * log, about the eventIds it read back, follows the settings). */
  if (a->cfg.fsync == AUDIT_FSYNC_INTERVAL && audit_start_flusher(a) != 0) {
    api->set_error(host, audit_str("cannot start the fsync thread"));
    (void)audit_file_close(&a->file, err, sizeof err);
    audit_free(a);
    return EVH_ERR_INTERNAL;
  }
  if (audit_start_writer(a) != 0) {
    api->set_error(host, audit_str("cannot start the writer thread"));
    audit_stop_flusher(a);
    (void)audit_file_close(&a->file, err, sizeof err);
    audit_free(a);
    return EVH_ERR_INTERNAL;
  }
  *out = a;
  return EVH_OK;
}

/* THREAD: the loop thread (the plugin is inline), so a->line and a->copier
 * need no lock. CPU only: the file is the writer thread's. */
static evh_status audit_handle(void* instance, const evh_event* ev, evh_call* call) {
  audit* a = (audit*)instance;
  char err[512];
  if (audit_line_format(&a->line, &a->copier, ev, err, sizeof err) != 0) {
    a->api->call_set_error(call, audit_str(err));
    /* Out of memory may pass; a payload that is not JSON will not. */
    return a->line.failed ? EVH_RETRY : EVH_REJECT;
  }
  return audit_enqueue(a, ev, call);
}

static void audit_shutdown(void* instance) {
  audit* a = (audit*)instance;
  char err[512];
  /* evhost calls shutdown() once every call is completed or given up on, so
   * the queue holds at most lines of calls it gave up on (the shutdown
   * deadline): written all the same, then the file is closed. */
  audit_stop_writer(a);
  audit_stop_flusher(a);
  if (audit_file_close(&a->file, err, sizeof err) != 0) {
    ++a->write_errors;
    audit_log(a, EVH_LOG_ERROR, "%s", err);
  }
  audit_log(a, EVH_LOG_INFO,
            "closed audit file %s: lines=%llu fsyncs=%llu rotations=%llu redacted=%llu write_errors=%llu "
            "redeliveries_skipped=%llu batches=%llu",
            a->cfg.file, (unsigned long long)a->file.lines, (unsigned long long)a->file.fsyncs,
            (unsigned long long)a->file.rotations, (unsigned long long)a->redacted,
            (unsigned long long)(a->write_errors + a->flusher_errors), (unsigned long long)a->duplicates,
            (unsigned long long)a->batches);
  audit_free(a);
}

/* Hands audit_config_read's problems to evhost. */
typedef struct audit_report_to {
  evh_config_error_fn report;
  void* ctx;
} audit_report_to;

static void audit_report(void* ctx, const char* pointer, const char* message) {
  const audit_report_to* to = (const audit_report_to*)ctx;
  to->report(to->ctx, audit_str(pointer), audit_str(message));
}

/* ABI 1.3: init's parser, every problem reported; and whether the file
 * could be opened, looking only. */
static evh_status audit_validate_config(evh_str config_json, evh_config_error_fn report, void* ctx) {
  audit_report_to to;
  audit_config cfg;
  char err[512];
  to.report = report;
  to.ctx = ctx;
  if (audit_config_read(&cfg, config_json, audit_report, &to) != 0) {
    return EVH_ERR_INVALID;
  }
  if (audit_file_check(cfg.file, err, sizeof err) != 0) {
    audit_report(&to, "/file", err);
    audit_config_free(&cfg);
    return EVH_ERR_INVALID;
  }
  audit_config_free(&cfg);
  return EVH_OK;
}

static const evh_plugin_desc audit_desc = {
    .struct_size = sizeof(evh_plugin_desc),
    .abi_version = EVH_ABI_VERSION,
    .name = "audit",
    .version = "1.1.0",
    .description =
        "JollyJet audit log: one redacted JSON line per event in a file (fsync, rotation), optionally a Redis stream",
    .flags = 0, /* inline: handle() only queues the line (in delivery order); the writer thread does the I/O */
    .init = audit_init,
    .handle = audit_handle,
    .shutdown = audit_shutdown,
    .validate_config = audit_validate_config,
};

EVH_PLUGIN_EXPORT const evh_plugin_desc* evh_plugin_entry(uint32_t host_abi_version) {
  (void)host_abi_version;
  return &audit_desc;
}
