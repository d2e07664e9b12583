/* audit_config: see audit_config.h. Problems are reported as the bundled
 * dlq plugin's are: a JSON Pointer and `must be one of ..., got "sometimes"`. */
#include "audit_config.h"

#include "json_scan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AUDIT_DEFAULT_FILE "audit.jsonl"
#define AUDIT_MAX_INTERVAL_MS 3600000
#define AUDIT_MIN_INTERVAL_MS 10
#define AUDIT_MAX_ROTATE_BYTES ((int64_t)1 << 50) /* 1 PiB: "effectively never", but no overflow */
#define AUDIT_MAX_KEEP 1000
#define AUDIT_MAX_STREAM_MAXLEN 100000000
#define AUDIT_MAX_DEDUP_WINDOW 1000000
#define AUDIT_MAX_COMMIT_DELAY_US 100000

/* The default redaction: the PII the plan's UserActivityEvent metadata is
 * most likely to carry ("never include PII", the plan's security notes). */
static const char* const audit_default_redact[] = {"metadata.email", "metadata.ip"};

static const char audit_known_keys[] =
    "file, redact, fsync, fsync_interval_ms, rotate_bytes, keep, stream, dedup_window, commit_delay_us";
static const char audit_known_stream_keys[] = "key, maxlen";

const char* audit_fsync_mode_name(audit_fsync_mode mode) {
  switch (mode) {
    case AUDIT_FSYNC_ALWAYS:
      return "always";
    case AUDIT_FSYNC_INTERVAL:
      return "interval";
    case AUDIT_FSYNC_NEVER:
      return "never";
  }
  return "?";
}

/* The problems found so far, and where they go. */
typedef struct audit_problems {
  audit_config_report_fn report;
  void* ctx;
  int count;
} audit_problems;

static void audit_problem(audit_problems* pr, const char* pointer, const char* message) {
  pr->report(pr->ctx, pointer, message);
  ++pr->count;
}

/* Reports `<rule>, got <value>` at pointer. */
static void audit_bad_value(audit_problems* pr, const char* pointer, const char* rule, evh_str got) {
  audit_buf msg;
  audit_buf_init(&msg);
  audit_buf_puts(&msg, rule);
  audit_buf_puts(&msg, ", got ");
  audit_json_preview(&msg, got, 80);
  audit_problem(pr, pointer, msg.failed || msg.data == NULL ? rule : msg.data);
  audit_buf_free(&msg);
}

/* parent + "/" + the decoded key token, escaped as RFC 6901 says, into out. */
static void audit_pointer_key(audit_buf* out, const char* parent, evh_str token) {
  audit_buf key;
  size_t i;
  audit_buf_init(&key);
  audit_buf_puts(out, parent);
  audit_buf_putc(out, '/');
  if (token.len >= 2 && audit_json_string(token.ptr, token.ptr + token.len, &key) != NULL && !key.failed) {
    for (i = 0; i < key.len; ++i) {
      if (key.data[i] == '~') {
        audit_buf_puts(out, "~0");
      } else if (key.data[i] == '/') {
        audit_buf_puts(out, "~1");
      } else {
        audit_buf_putc(out, key.data[i]);
      }
    }
  }
  audit_buf_free(&key);
}

static void audit_unknown_key(audit_problems* pr, const char* parent, evh_str token, const char* known) {
  audit_buf where;
  char msg[256];
  audit_buf_init(&where);
  audit_pointer_key(&where, parent, token);
  snprintf(msg, sizeof msg, "unknown key (known: %s)", known);
  audit_problem(pr, where.failed || where.data == NULL ? parent : where.data, msg);
  audit_buf_free(&where);
}

/* A copy of the decoded string `value`, or NULL (reported) if it is not a
 * non-empty string without NUL bytes. */
static char* audit_string_value(audit_problems* pr, evh_str value, const char* pointer) {
  audit_buf s;
  audit_buf_init(&s);
  if (value.len == 0 || value.ptr[0] != '"' || audit_json_string(value.ptr, value.ptr + value.len, &s) == NULL ||
      s.failed || s.len == 0 || memchr(s.data, '\0', s.len) != NULL) {
    audit_buf_free(&s);
    audit_bad_value(pr, pointer, "must be a non-empty string", value);
    return NULL;
  }
  return s.data; /* hand over the buffer's memory: NUL-terminated */
}

static void audit_integer_value(audit_problems* pr, evh_str value, const char* pointer, int64_t lo, int64_t hi,
                                int64_t* out) {
  int64_t v;
  if (!audit_json_int64(value, &v) || v < lo || v > hi) {
    char rule[96];
    snprintf(rule, sizeof rule, "must be an integer from %lld to %lld", (long long)lo, (long long)hi);
    audit_bad_value(pr, pointer, rule, value);
    return;
  }
  *out = v;
}

static void audit_parse_redact(audit_problems* pr, audit_config* cfg, evh_str value) {
  audit_json_iter it;
  evh_str item;
  int rc;
  unsigned index = 0;
  if (!audit_json_array(&it, value)) {
    audit_bad_value(pr, "/redact", "must be a list of paths like metadata.email", value);
    return;
  }
  while ((rc = audit_json_next(&it, NULL, &item)) == 1) {
    char where[32];
    char why[160];
    char* path;
    snprintf(where, sizeof where, "/redact/%u", index++);
    path = audit_string_value(pr, item, where);
    if (path == NULL) {
      continue;
    }
    if (audit_redactor_add(&cfg->redact, path, strlen(path), why, sizeof why) != 0) {
      audit_problem(pr, where, why);
    }
    free(path);
  }
  if (rc < 0) {
    audit_bad_value(pr, "/redact", "is not valid JSON", value);
  }
}

static void audit_parse_stream(audit_problems* pr, audit_config* cfg, evh_str value) {
  audit_json_iter it;
  evh_str key;
  evh_str v;
  int rc;
  int key_given = 0;
  if (value.len == 4 && memcmp(value.ptr, "null", 4) == 0) {
    return; /* `stream:` with nothing after it: no stream */
  }
  if (!audit_json_object(&it, value)) {
    audit_bad_value(pr, "/stream", "must be a map with key and maxlen", value);
    return;
  }
  while ((rc = audit_json_next(&it, &key, &v)) == 1) {
    if (audit_json_key_is(key, "key", 3)) {
      key_given = 1;
      free(cfg->stream_key);
      cfg->stream_key = audit_string_value(pr, v, "/stream/key");
    } else if (audit_json_key_is(key, "maxlen", 6)) {
      audit_integer_value(pr, v, "/stream/maxlen", 1, AUDIT_MAX_STREAM_MAXLEN, &cfg->stream_maxlen);
    } else {
      audit_unknown_key(pr, "/stream", key, audit_known_stream_keys);
    }
  }
  if (rc < 0) {
    audit_bad_value(pr, "/stream", "is not valid JSON", value);
  } else if (!key_given) {
    audit_problem(pr, "/stream", "needs a key, e.g. {key: jollyjet:audit, maxlen: 100000}");
  }
}

static void audit_parse_fsync(audit_problems* pr, audit_config* cfg, evh_str value) {
  static const audit_fsync_mode modes[] = {AUDIT_FSYNC_ALWAYS, AUDIT_FSYNC_INTERVAL, AUDIT_FSYNC_NEVER};
  size_t i;
  for (i = 0; i < sizeof modes / sizeof modes[0]; ++i) {
    const char* name = audit_fsync_mode_name(modes[i]);
    if (value.len > 0 && value.ptr[0] == '"' && audit_json_key_is(value, name, strlen(name))) {
      cfg->fsync = modes[i];
      return;
    }
  }
  audit_bad_value(pr, "/fsync", "must be one of \"always\", \"interval\", \"never\"", value);
}

/* One member of the block. Returns 1 when `key` is `redact` (given). */
static int audit_parse_member(audit_problems* pr, audit_config* cfg, evh_str key, evh_str value) {
  if (audit_json_key_is(key, "file", 4)) {
    free(cfg->file);
    cfg->file = audit_string_value(pr, value, "/file");
  } else if (audit_json_key_is(key, "redact", 6)) {
    audit_redactor_free(&cfg->redact); /* a repeated key: the last one counts */
    audit_redactor_init(&cfg->redact);
    audit_parse_redact(pr, cfg, value);
    return 1;
  } else if (audit_json_key_is(key, "fsync", 5)) {
    audit_parse_fsync(pr, cfg, value);
  } else if (audit_json_key_is(key, "fsync_interval_ms", 17)) {
    audit_integer_value(pr, value, "/fsync_interval_ms", AUDIT_MIN_INTERVAL_MS, AUDIT_MAX_INTERVAL_MS,
                        &cfg->fsync_interval_ms);
  } else if (audit_json_key_is(key, "rotate_bytes", 12)) {
    audit_integer_value(pr, value, "/rotate_bytes", 0, AUDIT_MAX_ROTATE_BYTES, &cfg->rotate_bytes);
  } else if (audit_json_key_is(key, "keep", 4)) {
    audit_integer_value(pr, value, "/keep", 0, AUDIT_MAX_KEEP, &cfg->keep);
  } else if (audit_json_key_is(key, "stream", 6)) {
    audit_parse_stream(pr, cfg, value);
  } else if (audit_json_key_is(key, "dedup_window", 12)) {
    audit_integer_value(pr, value, "/dedup_window", 0, AUDIT_MAX_DEDUP_WINDOW, &cfg->dedup_window);
  } else if (audit_json_key_is(key, "commit_delay_us", 15)) {
    audit_integer_value(pr, value, "/commit_delay_us", 0, AUDIT_MAX_COMMIT_DELAY_US, &cfg->commit_delay_us);
  } else {
    audit_unknown_key(pr, "", key, audit_known_keys);
  }
  return 0;
}

static void audit_parse_members(audit_problems* pr, audit_config* cfg, evh_str json, int* redact_given) {
  audit_json_iter it;
  evh_str key;
  evh_str value;
  int rc;
  if (!audit_json_object(&it, json)) {
    audit_bad_value(pr, "", "must be a map", json);
    return;
  }
  while ((rc = audit_json_next(&it, &key, &value)) == 1) {
    if (audit_parse_member(pr, cfg, key, value)) {
      *redact_given = 1;
    }
  }
  if (rc < 0) {
    audit_problem(pr, "", "is not valid JSON");
  }
}

static int audit_set_defaults(audit_problems* pr, audit_config* cfg, int redact_given) {
  size_t i;
  if (cfg->file == NULL) {
    size_t n = sizeof(AUDIT_DEFAULT_FILE);
    cfg->file = (char*)malloc(n);
    if (cfg->file == NULL) {
      audit_problem(pr, "", "out of memory");
      return -1;
    }
    memcpy(cfg->file, AUDIT_DEFAULT_FILE, n);
  }
  for (i = 0; !redact_given && i < sizeof audit_default_redact / sizeof audit_default_redact[0]; ++i) {
    char why[160];
    const char* p = audit_default_redact[i];
    if (audit_redactor_add(&cfg->redact, p, strlen(p), why, sizeof why) != 0) {
      audit_problem(pr, "/redact", why);
      return -1;
    }
  }
  return 0;
}

int audit_config_read(audit_config* cfg, evh_str json, audit_config_report_fn report, void* ctx) {
  audit_problems pr;
  int redact_given = 0;
  pr.report = report;
  pr.ctx = ctx;
  pr.count = 0;
  memset(cfg, 0, sizeof(*cfg));
  audit_redactor_init(&cfg->redact);
  cfg->fsync = AUDIT_FSYNC_ALWAYS;
  cfg->fsync_interval_ms = 1000;
  cfg->rotate_bytes = 104857600; /* 100 MiB */
  cfg->keep = 5;
  cfg->stream_maxlen = 100000;
  cfg->dedup_window = 10000; /* evhost's default limits.max_in_flight: see audit_seen.h */
  cfg->commit_delay_us = 200;
  audit_parse_members(&pr, cfg, json, &redact_given);
  if (pr.count == 0) {
    audit_set_defaults(&pr, cfg, redact_given);
  }
  if (pr.count != 0) {
    audit_config_free(cfg);
  }
  return pr.count;
}

/* Collects problems into one line: "config /a: ...; config /b: ...". */
typedef struct audit_err_text {
  char* err;
  size_t errlen;
  size_t used;
} audit_err_text;

static void audit_err_append(void* ctx, const char* pointer, const char* message) {
  audit_err_text* t = (audit_err_text*)ctx;
  int n;
  if (t->errlen == 0 || t->used + 1 >= t->errlen) {
    return;
  }
  n = snprintf(t->err + t->used, t->errlen - t->used, "%sconfig %s%s%s", t->used > 0 ? "; " : "", pointer,
               pointer[0] != '\0' ? ": " : "", message);
  if (n > 0) {
    t->used += (size_t)n < t->errlen - t->used ? (size_t)n : t->errlen - t->used - 1;
  }
}

int audit_config_parse(audit_config* cfg, evh_str json, char* err, size_t errlen) {
  audit_err_text t;
  t.err = err;
  t.errlen = errlen;
  t.used = 0;
  if (errlen > 0) {
    err[0] = '\0';
  }
  return audit_config_read(cfg, json, audit_err_append, &t) == 0 ? 0 : -1;
}

void audit_config_free(audit_config* cfg) {
  free(cfg->file);
  free(cfg->stream_key);
  audit_redactor_free(&cfg->redact);
  cfg->file = NULL;
  cfg->stream_key = NULL;
}
