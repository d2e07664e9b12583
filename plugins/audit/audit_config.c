/* audit_config: see audit_config.h. Error messages follow the bundled dlq
 * plugin's: `config key "fsync": must be one of ..., got "sometimes"`. */
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

/* Writes `config key "<key>": <rule>, got <value>` into err. */
static void audit_bad_value(char* err, size_t errlen, const char* key, const char* rule, evh_str got) {
  audit_buf shown;
  audit_buf_init(&shown);
  audit_json_preview(&shown, got, 80);
  snprintf(err, errlen, "config key \"%s\": %s, got %s", key, rule,
           shown.failed || shown.data == NULL ? "?" : shown.data);
  audit_buf_free(&shown);
}

/* A copy of the decoded string `value`, or NULL (with err set) if it is not
 * a non-empty string without NUL bytes. */
static char* audit_string_value(evh_str value, const char* key, char* err, size_t errlen) {
  audit_buf s;
  char* copy;
  audit_buf_init(&s);
  if (value.len == 0 || value.ptr[0] != '"' || audit_json_string(value.ptr, value.ptr + value.len, &s) == NULL ||
      s.failed || s.len == 0 || memchr(s.data, '\0', s.len) != NULL) {
    audit_buf_free(&s);
    audit_bad_value(err, errlen, key, "must be a non-empty string", value);
    return NULL;
  }
  copy = s.data; /* hand over the buffer's memory: NUL-terminated */
  return copy;
}

static int audit_integer_value(evh_str value, const char* key, int64_t lo, int64_t hi, int64_t* out, char* err,
                               size_t errlen) {
  int64_t v;
  if (!audit_json_int64(value, &v) || v < lo || v > hi) {
    char rule[96];
    snprintf(rule, sizeof rule, "must be an integer from %lld to %lld", (long long)lo, (long long)hi);
    audit_bad_value(err, errlen, key, rule, value);
    return -1;
  }
  *out = v;
  return 0;
}

static int audit_parse_redact(audit_config* cfg, evh_str value, char* err, size_t errlen) {
  audit_json_iter it;
  evh_str item;
  int rc;
  if (!audit_json_array(&it, value)) {
    audit_bad_value(err, errlen, "redact", "must be a list of paths like metadata.email", value);
    return -1;
  }
  while ((rc = audit_json_next(&it, NULL, &item)) == 1) {
    char why[160];
    char* path = audit_string_value(item, "redact", err, errlen);
    if (path == NULL) {
      return -1;
    }
    if (audit_redactor_add(&cfg->redact, path, strlen(path), why, sizeof why) != 0) {
      snprintf(err, errlen, "config key \"redact\": %s", why);
      free(path);
      return -1;
    }
    free(path);
  }
  if (rc < 0) {
    audit_bad_value(err, errlen, "redact", "is not valid JSON", value);
    return -1;
  }
  return 0;
}

static int audit_parse_stream(audit_config* cfg, evh_str value, char* err, size_t errlen) {
  audit_json_iter it;
  evh_str key;
  evh_str v;
  int rc;
  if (value.len == 4 && memcmp(value.ptr, "null", 4) == 0) {
    return 0; /* `stream:` with nothing after it: no stream */
  }
  if (!audit_json_object(&it, value)) {
    audit_bad_value(err, errlen, "stream", "must be a map with key and maxlen", value);
    return -1;
  }
  while ((rc = audit_json_next(&it, &key, &v)) == 1) {
    if (audit_json_key_is(key, "key", 3)) {
      free(cfg->stream_key);
      cfg->stream_key = audit_string_value(v, "stream.key", err, errlen);
      if (cfg->stream_key == NULL) {
        return -1;
      }
    } else if (audit_json_key_is(key, "maxlen", 6)) {
      if (audit_integer_value(v, "stream.maxlen", 1, AUDIT_MAX_STREAM_MAXLEN, &cfg->stream_maxlen, err, errlen) != 0) {
        return -1;
      }
    } else {
      snprintf(err, errlen, "unknown config key \"stream.%.*s\" (known: %s)", (int)(key.len - 2), key.ptr + 1,
               audit_known_stream_keys);
      return -1;
    }
  }
  if (rc < 0) {
    audit_bad_value(err, errlen, "stream", "is not valid JSON", value);
    return -1;
  }
  if (cfg->stream_key == NULL) {
    snprintf(err, errlen, "config key \"stream\": needs a key, e.g. {key: jollyjet:audit, maxlen: 100000}");
    return -1;
  }
  return 0;
}

static int audit_parse_fsync(audit_config* cfg, evh_str value, char* err, size_t errlen) {
  static const audit_fsync_mode modes[] = {AUDIT_FSYNC_ALWAYS, AUDIT_FSYNC_INTERVAL, AUDIT_FSYNC_NEVER};
  size_t i;
  for (i = 0; i < sizeof modes / sizeof modes[0]; ++i) {
    const char* name = audit_fsync_mode_name(modes[i]);
    if (value.len > 0 && value.ptr[0] == '"' && audit_json_key_is(value, name, strlen(name))) {
      cfg->fsync = modes[i];
      return 0;
    }
  }
  audit_bad_value(err, errlen, "fsync", "must be one of \"always\", \"interval\", \"never\"", value);
  return -1;
}

static int audit_parse_members(audit_config* cfg, evh_str json, int* redact_given, char* err, size_t errlen) {
  audit_json_iter it;
  evh_str key;
  evh_str value;
  int rc;
  if (!audit_json_object(&it, json)) {
    audit_buf shown;
    audit_buf_init(&shown);
    audit_json_preview(&shown, json, 80);
    snprintf(err, errlen, "config must be a map, got %s", shown.data != NULL ? shown.data : "nothing");
    audit_buf_free(&shown);
    return -1;
  }
  while ((rc = audit_json_next(&it, &key, &value)) == 1) {
    int bad;
    if (audit_json_key_is(key, "file", 4)) {
      free(cfg->file);
      cfg->file = audit_string_value(value, "file", err, errlen);
      bad = cfg->file == NULL;
    } else if (audit_json_key_is(key, "redact", 6)) {
      audit_redactor_free(&cfg->redact); /* a repeated key: the last one counts */
      *redact_given = 1;
      bad = audit_parse_redact(cfg, value, err, errlen) != 0;
    } else if (audit_json_key_is(key, "fsync", 5)) {
      bad = audit_parse_fsync(cfg, value, err, errlen) != 0;
    } else if (audit_json_key_is(key, "fsync_interval_ms", 17)) {
      bad = audit_integer_value(value, "fsync_interval_ms", AUDIT_MIN_INTERVAL_MS, AUDIT_MAX_INTERVAL_MS,
                                &cfg->fsync_interval_ms, err, errlen) != 0;
    } else if (audit_json_key_is(key, "rotate_bytes", 12)) {
      bad = audit_integer_value(value, "rotate_bytes", 0, AUDIT_MAX_ROTATE_BYTES, &cfg->rotate_bytes, err, errlen) != 0;
    } else if (audit_json_key_is(key, "keep", 4)) {
      bad = audit_integer_value(value, "keep", 0, AUDIT_MAX_KEEP, &cfg->keep, err, errlen) != 0;
    } else if (audit_json_key_is(key, "stream", 6)) {
      bad = audit_parse_stream(cfg, value, err, errlen) != 0;
    } else if (audit_json_key_is(key, "dedup_window", 12)) {
      bad = audit_integer_value(value, "dedup_window", 0, AUDIT_MAX_DEDUP_WINDOW, &cfg->dedup_window, err, errlen) != 0;
    } else if (audit_json_key_is(key, "commit_delay_us", 15)) {
      bad = audit_integer_value(value, "commit_delay_us", 0, AUDIT_MAX_COMMIT_DELAY_US, &cfg->commit_delay_us, err,
                                errlen) != 0;
    } else {
      snprintf(err, errlen, "unknown config key \"%.*s\" (known: %s)", (int)(key.len - 2), key.ptr + 1,
               audit_known_keys);
      bad = 1;
    }
    if (bad) {
      return -1;
    }
  }
  if (rc < 0) {
    snprintf(err, errlen, "config is not valid JSON");
    return -1;
  }
  return 0;
}

int audit_config_parse(audit_config* cfg, evh_str json, char* err, size_t errlen) {
  int redact_given = 0;
  size_t i;
  memset(cfg, 0, sizeof(*cfg));
  audit_redactor_init(&cfg->redact);
  cfg->fsync = AUDIT_FSYNC_ALWAYS;
  cfg->fsync_interval_ms = 1000;
  cfg->rotate_bytes = 104857600; /* 100 MiB */
  cfg->keep = 5;
  cfg->stream_maxlen = 100000;
  cfg->dedup_window = 10000; /* evhost's default limits.max_in_flight: see audit_seen.h */
  cfg->commit_delay_us = 200;
  if (audit_parse_members(cfg, json, &redact_given, err, errlen) != 0) {
    audit_config_free(cfg);
    return -1;
  }
  if (cfg->file == NULL) {
    size_t n = sizeof(AUDIT_DEFAULT_FILE);
    cfg->file = (char*)malloc(n);
    if (cfg->file == NULL) {
      snprintf(err, errlen, "out of memory");
      audit_config_free(cfg);
      return -1;
    }
    memcpy(cfg->file, AUDIT_DEFAULT_FILE, n);
  }
  if (!redact_given) {
    for (i = 0; i < sizeof audit_default_redact / sizeof audit_default_redact[0]; ++i) {
      const char* p = audit_default_redact[i];
      if (audit_redactor_add(&cfg->redact, p, strlen(p), err, errlen) != 0) {
        audit_config_free(cfg);
        return -1;
      }
    }
  }
  return 0;
}

void audit_config_free(audit_config* cfg) {
  free(cfg->file);
  free(cfg->stream_key);
  audit_redactor_free(&cfg->redact);
  cfg->file = NULL;
  cfg->stream_key = NULL;
}
