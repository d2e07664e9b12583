/* audit_line: building an event's audit line (see audit_line.h) with the
 * JSON scanner (json_scan.c) and the redacting copier (audit_redact.c). */
#define _POSIX_C_SOURCE 200809L

#include "audit_line.h"

#include "json_scan.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static int audit_str_is(evh_str s, const char* lit) {
  size_t n = strlen(lit);
  return s.len == n && memcmp(s.ptr, lit, n) == 0;
}

/* The current time as a JSON string, ISO-8601 UTC with milliseconds. The
 * text up to the seconds is kept for the last second, per thread: lines come
 * many per second, and gmtime_r and snprintf were 3.4k of the ~20k
 * instructions a line took (callgrind, the JollyJet durable drain,
 * 2026-12-07). */
static void audit_put_now(audit_buf* out) {
  static __thread time_t kept_sec;
  static __thread char kept[48];
  static __thread size_t kept_len; /* 0: nothing kept yet */
  struct timespec ts;
  char ms[8];
  int n;
  clock_gettime(CLOCK_REALTIME, &ts);
  if (kept_len == 0 || ts.tv_sec != kept_sec) {
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    n = snprintf(kept, sizeof kept, "\"%04d-%02d-%02dT%02d:%02d:%02d.", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                 tm.tm_hour, tm.tm_min, tm.tm_sec);
    kept_len = n > 0 && (size_t)n < sizeof kept ? (size_t)n : 0;
    kept_sec = ts.tv_sec;
  }
  if (kept_len == 0) {
    AUDIT_BUF_ADD_LITERAL(out, "null");
    return;
  }
  audit_buf_add(out, kept, kept_len);
  n = (int)(ts.tv_nsec / 1000000);
  ms[0] = (char)('0' + n / 100);
  ms[1] = (char)('0' + n / 10 % 10);
  ms[2] = (char)('0' + n % 10);
  ms[3] = 'Z';
  ms[4] = '"';
  audit_buf_add(out, ms, 5);
}

static void audit_put_string_or_null(audit_buf* out, evh_str s) {
  if (s.len == 0) {
    AUDIT_BUF_ADD_LITERAL(out, "null");
  } else {
    audit_json_write_string(out, s.ptr, s.len);
  }
}

/* Writes the payload member `name` (its value, or null when absent),
 * redacted as configured. */
static int audit_put_member(audit_copier* c, audit_buf* out, const char* name, evh_str value) {
  int redact = 0;
  uint64_t below;
  if (value.ptr == NULL) {
    AUDIT_BUF_ADD_LITERAL(out, "null");
    return 0;
  }
  below = audit_redact_step(c->r, audit_redact_all(c->r), 0, name, strlen(name), &redact);
  if (redact) {
    AUDIT_BUF_ADD_LITERAL(out, AUDIT_REDACTED);
    ++c->redacted;
    return 0;
  }
  return audit_copy_redacted(c, out, value, below, 1);
}

int audit_line_format(audit_buf* out, audit_copier* c, const evh_event* ev, char* err, size_t errlen) {
  const int is_activity = audit_str_is(ev->event_type, "USER_ACTIVITY");
  evh_str user = {NULL, 0};
  evh_str action = {NULL, 0};
  evh_str metadata = {NULL, 0};
  evh_str key;
  evh_str value;
  audit_json_iter it;
  int rc;

  audit_buf_reset(out);
  c->redacted = 0;
  if (!audit_json_object(&it, ev->payload)) {
    snprintf(err, errlen, "audit: the payload is not a JSON object");
    return -1;
  }
  if (is_activity) {
    /* The plan's UserActivityEvent payload: {userId, action, metadata}. A
     * key given twice counts once, the last time, as in JavaScript. */
    while ((rc = audit_json_next(&it, &key, &value)) == 1) {
      if (audit_json_key_is(key, "userId", 6)) {
        user = value;
      } else if (audit_json_key_is(key, "action", 6)) {
        action = value;
      } else if (audit_json_key_is(key, "metadata", 8)) {
        metadata = value;
      }
    }
  } else {
    /* Any other event type routed here: its whole payload, redacted by the
     * same paths (relative to the payload), copied first -- the pass that
     * copies it also finds userId and action (the last of each, too). */
    audit_buf_reset(&c->payload);
    c->capture = 1;
    c->user.ptr = c->action.ptr = NULL;
    c->user.len = c->action.len = 0;
    rc = audit_copy_redacted(c, &c->payload, ev->payload, audit_redact_all(c->r), 0) == 0 ? 0 : -1;
    c->capture = 0;
    if (c->payload.failed) {
      snprintf(err, errlen, "audit: out of memory formatting the line");
      return -1;
    }
    user = c->user;
    action = c->action;
  }
  if (rc < 0) {
    snprintf(err, errlen, "audit: the payload is not valid JSON");
    return -1;
  }

  AUDIT_BUF_ADD_LITERAL(out, "{\"timestamp\":");
  audit_put_string_or_null(out, ev->timestamp);
  AUDIT_BUF_ADD_LITERAL(out, ",\"auditedAt\":");
  audit_put_now(out);
  AUDIT_BUF_ADD_LITERAL(out, ",\"eventId\":");
  audit_json_write_string(out, ev->event_id.ptr, ev->event_id.len);
  AUDIT_BUF_ADD_LITERAL(out, ",\"eventType\":");
  audit_json_write_string(out, ev->event_type.ptr, ev->event_type.len);
  AUDIT_BUF_ADD_LITERAL(out, ",\"userId\":");
  rc = audit_put_member(c, out, "userId", user);
  AUDIT_BUF_ADD_LITERAL(out, ",\"action\":");
  rc |= audit_put_member(c, out, "action", action);
  AUDIT_BUF_ADD_LITERAL(out, ",\"correlationId\":");
  audit_put_string_or_null(out, ev->correlation_id);
  AUDIT_BUF_ADD_LITERAL(out, ",\"channel\":");
  audit_json_write_string(out, ev->channel.ptr, ev->channel.len);
  if (is_activity) {
    AUDIT_BUF_ADD_LITERAL(out, ",\"metadata\":");
    rc |= audit_put_member(c, out, "metadata", metadata);
  } else {
    AUDIT_BUF_ADD_LITERAL(out, ",\"payload\":");
    audit_buf_add(out, c->payload.data, c->payload.len);
  }
  AUDIT_BUF_ADD_LITERAL(out, "}\n");
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
