/* audit_stream: XADDing audit lines to the Redis stream (see
 * audit_stream.h). The stream's health (failing, lines missed) is written by
 * the writer thread and by reply callbacks on the loop thread, hence its
 * lock. */
#define _POSIX_C_SOURCE 200809L

#include "audit_stream.h"

#include <pthread.h>

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
 * Order is kept: one caller (the writer thread), whose requests evhost
 * marshals to its loop in order and sends in order on one connection. */
void audit_stream_add(audit* a, const char* line, size_t len) {
  evh_str argv[8];
  evh_status s;
  argv[0] = audit_str("XADD");
  argv[1] = audit_str(a->stream_key);
  argv[2] = audit_str("MAXLEN");
  argv[3] = audit_str("~");
  argv[4] = audit_str(a->stream_maxlen);
  argv[5] = audit_str("*");
  argv[6] = audit_str("data");
  argv[7].ptr = line;
  argv[7].len = len - 1; /* without the '\n' */
  s = a->api->redis_command(a->host, 8, argv, audit_stream_reply, a);
  if (s != EVH_OK) {
    audit_stream_failed(a, audit_status_text(s)); /* the callback will not run */
  }
}
