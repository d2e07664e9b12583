/* bench: the benchmark sink plugin, in plain C99.
 *
 * An inline plugin (it runs on evhost's event-loop thread) that counts the
 * events routed to it and records their end-to-end latency, for benchmark
 * runs. It is a tool for bench runs and is never part of the default
 * configuration.
 *
 * Events:
 *   - any event but BENCH_END: counted; its payload's `"sentNs":<digits>`
 *     (the load generator's CLOCK_REALTIME send time in ns) gives the latency
 *     now - sentNs (negative clamped to 0), recorded in a histogram. Without
 *     a parsable sentNs the event is counted under "no_timestamp" only.
 *   - the sentinel, eventType BENCH_END, payload with `"sent":<N>` (events
 *     sent): ends the run. One JSON line (see bench_report) is RPUSHed to
 *     result_key and logged at INFO; then the counters and the histogram are
 *     reset for the next run.
 *
 * Config (all keys optional; any other key refuses init):
 *   tag         string, default "bench": copied into the result line
 *   result_key  string, default "bench:results": the Redis list the result
 *               lines are RPUSHed to (used as is: no environment prefix)
 *   work_us     integer 0..1000000, default 0: a stand-in for a handler's own
 *               work per event (burst and overload runs). `bench` spins on
 *               the CPU that long; `bench_blocking` sleeps, like a handler
 *               waiting on a database.
 *
 * Built twice: `bench` (inline) and `bench_blocking` (EVH_PLUGIN_BLOCKING:
 * handle() runs on the worker pool, as many at once as it has threads; the
 * run's state is then guarded by a mutex).
 *
 * The hot path, handle() for an ordinary event, does no allocation, no I/O
 * and no locking: two clock reads (one more on a run's first event), a
 * backwards scan of the payload's tail and a histogram increment. Metrics
 * are added once per run, at the sentinel.
 *
 * Files: bench.c (this), histogram.c (the latency histogram). */
#define _POSIX_C_SOURCE 200809L

#include "histogram.h"

#include <evh/plugin.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef BENCH_BLOCKING
#include <pthread.h>
#endif

#if defined(__GNUC__)
#define BENCH_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define BENCH_PRINTF(fmt, args)
#endif

#define BENCH_TAG_MAX 128        /* bytes, before JSON escaping */
#define BENCH_RESULT_KEY_MAX 512 /* bytes */
#define BENCH_LINE_MAX 2048      /* the result line; fits the longest tag escaped */

typedef struct bench {
  const evh_host_api* api;
  evh_host* host;

  char* tag_json;   /* the tag as a JSON string, quotes included */
  char* result_key; /* NUL-terminated */
  size_t result_key_len;
  int64_t work_ns; /* config work_us, in ns: spun per event */

  /* The current run. `bench`: only the loop thread touches these, no lock;
   * `bench_blocking`: under `lock`. */
#ifdef BENCH_BLOCKING
  pthread_mutex_t lock;
#endif
  uint64_t received;     /* events other than the sentinel */
  uint64_t no_timestamp; /* of those, without a parsable sentNs */
  int64_t first_mono_ns; /* CLOCK_MONOTONIC at the run's first event */
  bench_hist latency;    /* ns */

  uint64_t runs;
  char line[BENCH_LINE_MAX];

  evh_metric* m_received;
  evh_metric* m_no_timestamp;
  evh_metric* m_runs;
} bench;

static evh_str bench_str(const char* s) {
  evh_str out;
  out.ptr = s;
  out.len = strlen(s);
  return out;
}

static int bench_str_is(evh_str s, const char* lit, size_t lit_len) {
  return s.len == lit_len && memcmp(s.ptr, lit, lit_len) == 0;
}

static void bench_log(bench* b, evh_log_level level, const char* fmt, ...) BENCH_PRINTF(3, 4);
static void bench_log(bench* b, evh_log_level level, const char* fmt, ...) {
  char msg[BENCH_LINE_MAX + 256];
  va_list args;
  int n;
  if (!b->api->log_enabled(b->host, level)) {
    return;
  }
  va_start(args, fmt);
  n = vsnprintf(msg, sizeof msg, fmt, args);
  va_end(args);
  if (n < 0) {
    return;
  }
  b->api->log(b->host, level, (evh_str){msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1});
}

/* Formats an init() refusal into buf and hands it to api->set_error. */
static void bench_set_error(const evh_host_api* api, evh_host* host, const char* fmt, ...) BENCH_PRINTF(3, 4);
static void bench_set_error(const evh_host_api* api, evh_host* host, const char* fmt, ...) {
  char msg[512];
  va_list args;
  int n;
  va_start(args, fmt);
  n = vsnprintf(msg, sizeof msg, fmt, args);
  va_end(args);
  if (n < 0) {
    return;
  }
  api->set_error(host, (evh_str){msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1});
}

static int64_t bench_clock_ns(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + (int64_t)ts.tv_nsec;
}

/* ---- the payload ----------------------------------------------------------- */

/* Finds the last `"<name>"` (a JSON key: the quote is not escaped) in s and
 * parses the unsigned integer after its colon. Scans backwards, since the
 * load generator puts sentNs last. Returns 1 with *out set, or 0 when the key
 * is missing or its value is not a plain non-negative integer fitting 63 bits
 * (the last occurrence decides). quoted_name is the name with its quotes. */
static int bench_find_uint(evh_str s, const char* quoted_name, size_t name_len, uint64_t* out) {
  const char* begin = s.ptr;
  const char* end = s.ptr + s.len;
  const char* p;
  uint64_t v = 0;
  int digits = 0;
  if (s.ptr == NULL || s.len < name_len + 2) {
    return 0;
  }
  /* The value needs at least ":" and a digit after the name. */
  for (p = end - name_len - 2;; --p) {
    if (*p == '"' && memcmp(p, quoted_name, name_len) == 0 && (p == begin || p[-1] != '\\')) {
      break;
    }
    if (p == begin) {
      return 0;
    }
  }
  p += name_len;
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) {
    ++p;
  }
  if (p == end || *p != ':') {
    return 0;
  }
  ++p;
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) {
    ++p;
  }
  for (; p < end && *p >= '0' && *p <= '9'; ++p) {
    unsigned d = (unsigned)(*p - '0');
    if (v > (UINT64_C(0x7FFFFFFFFFFFFFFF) - d) / 10u) {
      return 0; /* too large */
    }
    v = v * 10u + d;
    ++digits;
  }
  /* A fraction or an exponent is not a count of nanoseconds we can trust. */
  if (digits == 0 || (p < end && (*p == '.' || *p == 'e' || *p == 'E'))) {
    return 0;
  }
  *out = v;
  return 1;
}

/* ---- the report --------------------------------------------------------------- */

/* Appends to the line at *pos; the line is big enough for everything but a
 * truncated vsnprintf is still handled (the line is then dropped). */
static int bench_put(bench* b, size_t* pos, const char* fmt, ...) BENCH_PRINTF(3, 4);
static int bench_put(bench* b, size_t* pos, const char* fmt, ...) {
  va_list args;
  int n;
  if (*pos >= sizeof b->line) {
    return -1;
  }
  va_start(args, fmt);
  n = vsnprintf(b->line + *pos, sizeof b->line - *pos, fmt, args);
  va_end(args);
  if (n < 0 || (size_t)n >= sizeof b->line - *pos) {
    *pos = sizeof b->line;
    return -1;
  }
  *pos += (size_t)n;
  return 0;
}

/* A latency in ns, as microseconds with 3 decimals (exact, locale-free). */
static int bench_put_us(bench* b, size_t* pos, const char* sep, const char* name, uint64_t ns) {
  return bench_put(b, pos, "%s\"%s\":%llu.%03u", sep, name, (unsigned long long)(ns / 1000u), (unsigned)(ns % 1000u));
}

static void bench_reply(void* user_data, evh_status status, const evh_reply* reply) {
  bench* b = (bench*)user_data; /* outlives the callback: the host runs them all before shutdown() */
  if (status != EVH_OK) {
    bench_log(b, EVH_LOG_WARN, "RPUSH of the benchmark result to %s failed (status %d); the result is in the log",
              b->result_key, (int)status);
  } else if (reply != NULL && reply->type == EVH_REPLY_ERROR) {
    bench_log(b, EVH_LOG_WARN, "RPUSH of the benchmark result to %s failed: %s; the result is in the log",
              b->result_key, reply->str.ptr != NULL ? reply->str.ptr : "(no message)");
  }
}

/* Ends the run on the sentinel: reports it, then starts a clean one. */
static void bench_finish(bench* b, const evh_event* ev) {
  const int64_t now_mono = bench_clock_ns(CLOCK_MONOTONIC);
  const bench_hist* h = &b->latency;
  uint64_t sent = 0;
  const int has_sent = bench_find_uint(ev->payload, "\"sent\"", 6, &sent);
  uint64_t elapsed_ns = 0;
  uint64_t rate_tenths = 0;
  double mean_ns;
  size_t pos = 0;
  int rc = 0;
  evh_str argv[3];
  evh_status s;

  if (b->received > 0 && now_mono > b->first_mono_ns) {
    elapsed_ns = (uint64_t)(now_mono - b->first_mono_ns);
    rate_tenths = (uint64_t)((double)b->received * 1e10 / (double)elapsed_ns + 0.5);
  }
  mean_ns = bench_hist_mean(h) + 0.5;

  rc |= bench_put(b, &pos, "{\"subscriber\":\"evhost\",\"tag\":%s,\"received\":%llu,", b->tag_json,
                  (unsigned long long)b->received);
  if (has_sent) {
    rc |= bench_put(b, &pos, "\"sent\":%llu,", (unsigned long long)sent);
  } else {
    rc |= bench_put(b, &pos, "\"sent\":-1,");
  }
  rc |= bench_put(b, &pos, "\"no_timestamp\":%llu,\"seconds\":%llu.%06u,\"events_per_s\":%llu.%u,\"latency_us\":{",
                  (unsigned long long)b->no_timestamp, (unsigned long long)(elapsed_ns / 1000000000u),
                  (unsigned)(elapsed_ns % 1000000000u / 1000u), (unsigned long long)(rate_tenths / 10u),
                  (unsigned)(rate_tenths % 10u));
  rc |= bench_put_us(b, &pos, "", "min", bench_hist_min(h));
  rc |= bench_put_us(b, &pos, ",", "p50", bench_hist_value_at_percentile(h, 50.0));
  rc |= bench_put_us(b, &pos, ",", "p90", bench_hist_value_at_percentile(h, 90.0));
  rc |= bench_put_us(b, &pos, ",", "p99", bench_hist_value_at_percentile(h, 99.0));
  rc |= bench_put_us(b, &pos, ",", "p999", bench_hist_value_at_percentile(h, 99.9));
  rc |= bench_put_us(b, &pos, ",", "max", bench_hist_max(h));
  rc |= bench_put_us(b, &pos, ",", "mean", mean_ns >= 18446744073709551615.0 ? UINT64_MAX : (uint64_t)mean_ns);
  rc |= bench_put(b, &pos, "}}");

  ++b->runs;
  if (b->m_received != NULL && b->received > 0) {
    b->api->metric_add(b->m_received, (int64_t)(b->received & INT64_MAX));
  }
  if (b->m_no_timestamp != NULL && b->no_timestamp > 0) {
    b->api->metric_add(b->m_no_timestamp, (int64_t)(b->no_timestamp & INT64_MAX));
  }
  if (b->m_runs != NULL) {
    b->api->metric_add(b->m_runs, 1);
  }

  if (rc != 0) {
    bench_log(b, EVH_LOG_ERROR, "benchmark run %llu: the result line did not fit %u bytes; received %llu",
              (unsigned long long)b->runs, (unsigned)sizeof b->line, (unsigned long long)b->received);
  } else {
    bench_log(b, EVH_LOG_INFO, "benchmark run %llu: %s", (unsigned long long)b->runs, b->line);
    argv[0] = bench_str("RPUSH");
    argv[1].ptr = b->result_key;
    argv[1].len = b->result_key_len;
    argv[2].ptr = b->line;
    argv[2].len = pos;
    s = b->api->redis_command(b->host, 3, argv, bench_reply, b);
    if (s != EVH_OK) { /* the callback will not run */
      bench_log(b, EVH_LOG_WARN, "cannot RPUSH the benchmark result to %s (status %d); the result is in the log",
                b->result_key, (int)s);
    }
  }

  /* A clean next run. */
  b->received = 0;
  b->no_timestamp = 0;
  b->first_mono_ns = 0;
  bench_hist_reset(&b->latency);
}

/* ---- the config ---------------------------------------------------------------- */

typedef struct bench_json {
  const char* p;
  const char* end;
} bench_json;

static void bench_json_ws(bench_json* j) {
  while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) {
    ++j->p;
  }
}

static int bench_hex4(const char* p, unsigned* out) {
  unsigned v = 0;
  int i;
  for (i = 0; i < 4; ++i) {
    char c = p[i];
    v <<= 4;
    if (c >= '0' && c <= '9') {
      v |= (unsigned)(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      v |= (unsigned)(c - 'a' + 10);
    } else if (c >= 'A' && c <= 'F') {
      v |= (unsigned)(c - 'A' + 10);
    } else {
      return 0;
    }
  }
  *out = v;
  return 1;
}

/* Reads a JSON string at j->p (on its opening quote) and decodes it into
 * out[0 .. cap-1], NUL-terminated. Returns its length, -1 when malformed,
 * -2 when longer than cap - 1 bytes. */
static long bench_json_string(bench_json* j, char* out, size_t cap) {
  size_t n = 0;
  if (j->p >= j->end || *j->p != '"') {
    return -1;
  }
  ++j->p;
  while (j->p < j->end && *j->p != '"') {
    unsigned char c = (unsigned char)*j->p++;
    unsigned cp;
    char enc[4];
    size_t k;
    size_t enc_len = 1;
    if (c < 0x20) {
      return -1;
    }
    enc[0] = (char)c;
    if (c == '\\') {
      if (j->p >= j->end) {
        return -1;
      }
      c = (unsigned char)*j->p++;
      switch (c) {
        case '"':
        case '\\':
        case '/':
          enc[0] = (char)c;
          break;
        case 'b':
          enc[0] = '\b';
          break;
        case 'f':
          enc[0] = '\f';
          break;
        case 'n':
          enc[0] = '\n';
          break;
        case 'r':
          enc[0] = '\r';
          break;
        case 't':
          enc[0] = '\t';
          break;
        case 'u':
          if (j->end - j->p < 4 || !bench_hex4(j->p, &cp)) {
            return -1;
          }
          j->p += 4;
          if (cp >= 0xD800 && cp <= 0xDBFF) { /* a surrogate pair */
            unsigned lo;
            if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u' || !bench_hex4(j->p + 2, &lo) || lo < 0xDC00 ||
                lo > 0xDFFF) {
              return -1;
            }
            j->p += 6;
            cp = 0x10000u + ((cp - 0xD800u) << 10) + (lo - 0xDC00u);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return -1;
          }
          if (cp == 0) {
            return -1; /* would cut the C string short */
          }
          if (cp < 0x80) {
            enc[0] = (char)cp;
          } else if (cp < 0x800) {
            enc[0] = (char)(0xC0u | (cp >> 6));
            enc[1] = (char)(0x80u | (cp & 0x3Fu));
            enc_len = 2;
          } else if (cp < 0x10000) {
            enc[0] = (char)(0xE0u | (cp >> 12));
            enc[1] = (char)(0x80u | ((cp >> 6) & 0x3Fu));
            enc[2] = (char)(0x80u | (cp & 0x3Fu));
            enc_len = 3;
          } else {
            enc[0] = (char)(0xF0u | (cp >> 18));
            enc[1] = (char)(0x80u | ((cp >> 12) & 0x3Fu));
            enc[2] = (char)(0x80u | ((cp >> 6) & 0x3Fu));
            enc[3] = (char)(0x80u | (cp & 0x3Fu));
            enc_len = 4;
          }
          break;
        default:
          return -1;
      }
    }
    if (n + enc_len >= cap) {
      out[n] = '\0'; /* what fits, for a message */
      return -2;
    }
    for (k = 0; k < enc_len; ++k) {
      out[n++] = enc[k];
    }
  }
  if (j->p >= j->end) {
    return -1;
  }
  ++j->p; /* the closing quote */
  out[n] = '\0';
  return (long)n;
}

/* Writes s as a JSON string, quotes included, into a new allocation. */
static char* bench_json_quote(const char* s) {
  static const char hex[] = "0123456789abcdef";
  size_t len = strlen(s);
  char* out = (char*)malloc(len * 6 + 3);
  char* o = out;
  size_t i;
  if (out == NULL) {
    return NULL;
  }
  *o++ = '"';
  for (i = 0; i < len; ++i) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      *o++ = '\\';
      *o++ = (char)c;
    } else if (c < 0x20) {
      *o++ = '\\';
      *o++ = 'u';
      *o++ = '0';
      *o++ = '0';
      *o++ = hex[c >> 4];
      *o++ = hex[c & 0xFu];
    } else {
      *o++ = (char)c;
    }
  }
  *o++ = '"';
  *o = '\0';
  return out;
}

static char* bench_strdup(const char* s) {
  size_t n = strlen(s) + 1;
  char* out = (char*)malloc(n);
  if (out != NULL) {
    memcpy(out, s, n);
  }
  return out;
}

/* Parses {"tag": "...", "result_key": "...", "work_us": N} into tag, key and
 * work_us (which hold the defaults on entry). Returns 0, or -1 after
 * api->set_error. */
static int bench_parse_config(const evh_host_api* api, evh_host* host, evh_str config, char* tag, char* key,
                              uint64_t* work_us) {
  bench_json j;
  char name[64];
  long n;
  j.p = config.ptr;
  j.end = config.ptr + config.len;
  if (config.ptr == NULL) {
    return 0; /* no config: the defaults */
  }
  bench_json_ws(&j);
  if (j.p == j.end) {
    return 0;
  }
  if (*j.p != '{') {
    bench_set_error(api, host, "bench: the config must be a JSON object (keys: tag, result_key, work_us)");
    return -1;
  }
  ++j.p;
  bench_json_ws(&j);
  if (j.p < j.end && *j.p == '}') {
    ++j.p;
  } else {
    for (;;) {
      int is_tag;
      char* dest;
      size_t cap;
      bench_json_ws(&j);
      n = bench_json_string(&j, name, sizeof name);
      if (n == -2) {
        bench_set_error(api, host, "bench: unknown config key \"%.40s...\" (known keys: tag, result_key, work_us)",
                        name);
        return -1;
      }
      if (n < 0) {
        bench_set_error(api, host, "bench: the config is not valid JSON");
        return -1;
      }
      is_tag = strcmp(name, "tag") == 0;
      if (!is_tag && strcmp(name, "result_key") != 0 && strcmp(name, "work_us") != 0) {
        bench_set_error(api, host, "bench: unknown config key \"%s\" (known keys: tag, result_key, work_us)", name);
        return -1;
      }
      bench_json_ws(&j);
      if (j.p >= j.end || *j.p != ':') {
        bench_set_error(api, host, "bench: the config is not valid JSON");
        return -1;
      }
      ++j.p;
      bench_json_ws(&j);
      if (strcmp(name, "work_us") == 0) {
        uint64_t v = 0;
        int digits = 0;
        while (j.p < j.end && *j.p >= '0' && *j.p <= '9' && v <= 1000000) {
          v = v * 10 + (uint64_t)(*j.p - '0');
          ++j.p;
          ++digits;
        }
        if (digits == 0 || v > 1000000 || (j.p < j.end && (*j.p == '.' || *j.p == 'e' || *j.p == 'E'))) {
          bench_set_error(api, host, "bench: config key \"work_us\" must be an integer from 0 to 1000000");
          return -1;
        }
        *work_us = v;
      } else {
        dest = is_tag ? tag : key;
        cap = is_tag ? BENCH_TAG_MAX + 1 : BENCH_RESULT_KEY_MAX + 1;
        if (j.p >= j.end || *j.p != '"') {
          bench_set_error(api, host, "bench: config key \"%s\" must be a string", name);
          return -1;
        }
        n = bench_json_string(&j, dest, cap);
        if (n == -2) {
          bench_set_error(api, host, "bench: config key \"%s\" is longer than %u bytes", name, (unsigned)(cap - 1));
          return -1;
        }
        if (n < 0) {
          bench_set_error(api, host, "bench: the config is not valid JSON (in the value of \"%s\")", name);
          return -1;
        }
        if (!is_tag && n == 0) {
          bench_set_error(api, host, "bench: config key \"result_key\" must not be empty");
          return -1;
        }
      }
      bench_json_ws(&j);
      if (j.p < j.end && *j.p == ',') {
        ++j.p;
        continue;
      }
      if (j.p < j.end && *j.p == '}') {
        ++j.p;
        break;
      }
      bench_set_error(api, host, "bench: the config is not valid JSON");
      return -1;
    }
  }
  bench_json_ws(&j);
  if (j.p != j.end) {
    bench_set_error(api, host, "bench: the config is not valid JSON (text after the object)");
    return -1;
  }
  return 0;
}

/* ---- the plugin --------------------------------------------------------------- */

static void bench_destroy(bench* b) {
#ifdef BENCH_BLOCKING
  pthread_mutex_destroy(&b->lock);
#endif
  bench_hist_free(&b->latency);
  free(b->tag_json);
  free(b->result_key);
  free(b);
}

static evh_status bench_init(const evh_host_api* api, evh_host* host, evh_str config_json, void** out_instance) {
  char tag[BENCH_TAG_MAX + 1] = "bench";
  char key[BENCH_RESULT_KEY_MAX + 1] = "bench:results";
  uint64_t work_us = 0;
  bench* b;

  if (bench_parse_config(api, host, config_json, tag, key, &work_us) != 0) {
    return EVH_ERR_INVALID;
  }
  b = (bench*)calloc(1, sizeof *b);
  if (b == NULL) {
    bench_set_error(api, host, "bench: out of memory");
    return EVH_ERR_NOMEM;
  }
#ifdef BENCH_BLOCKING
  pthread_mutex_init(&b->lock, NULL);
#endif
  b->api = api;
  b->host = host;
  b->work_ns = (int64_t)work_us * 1000;
  b->tag_json = bench_json_quote(tag);
  b->result_key = bench_strdup(key);
  if (bench_hist_init(&b->latency) != 0 || b->tag_json == NULL || b->result_key == NULL) {
    bench_destroy(b);
    bench_set_error(api, host, "bench: out of memory");
    return EVH_ERR_NOMEM;
  }
  b->result_key_len = strlen(b->result_key);
  b->m_received = api->metric_register(host, bench_str("received"), EVH_METRIC_COUNTER,
                                       bench_str("benchmark events received (added at the end of each run)"));
  b->m_no_timestamp = api->metric_register(host, bench_str("no_timestamp"), EVH_METRIC_COUNTER,
                                           bench_str("benchmark events without a parsable sentNs (added per run)"));
  b->m_runs = api->metric_register(host, bench_str("runs"), EVH_METRIC_COUNTER,
                                   bench_str("benchmark runs ended by a BENCH_END sentinel"));
  bench_log(b, EVH_LOG_INFO, "benchmark sink ready: tag %s, results to Redis list %s", b->tag_json, b->result_key);
  *out_instance = b;
  return EVH_OK;
}

static evh_status bench_handle(void* instance, const evh_event* ev, evh_call* call) {
  bench* b = (bench*)instance;
  const int64_t now = bench_clock_ns(CLOCK_REALTIME);
  uint64_t sent_ns = 0;
  const int is_end = bench_str_is(ev->event_type, "BENCH_END", 9);
  const int has_sent = !is_end && bench_find_uint(ev->payload, "\"sentNs\"", 8, &sent_ns);
  (void)call;
#ifdef BENCH_BLOCKING
  pthread_mutex_lock(&b->lock);
#endif
  if (is_end) {
    bench_finish(b, ev);
  } else {
    if (b->received++ == 0) {
      b->first_mono_ns = bench_clock_ns(CLOCK_MONOTONIC);
    }
    if (!has_sent) {
      ++b->no_timestamp;
    } else {
      bench_hist_record(&b->latency, now > 0 && (uint64_t)now > sent_ns ? (uint64_t)now - sent_ns : 0);
    }
  }
#ifdef BENCH_BLOCKING
  pthread_mutex_unlock(&b->lock);
  if (!is_end && b->work_ns > 0) {
    /* bench_blocking is EVH_PLUGIN_BLOCKING: this runs on a worker thread,
     * never on the loop; the sleep stands for a handler waiting on I/O. */
    struct timespec d;
    d.tv_sec = (time_t)(b->work_ns / 1000000000);
    d.tv_nsec = (long)(b->work_ns % 1000000000);
    while (nanosleep(&d, &d) != 0 && errno == EINTR) {
      /* interrupted: sleep the rest */
    }
  }
#else
  /* bench (inline) runs on the loop thread: work_us there is CPU work an
   * inline handler does, spun, not slept -- never a wait on the loop. */
  if (!is_end && b->work_ns > 0) {
    const int64_t until = bench_clock_ns(CLOCK_MONOTONIC) + b->work_ns;
    while (bench_clock_ns(CLOCK_MONOTONIC) < until) {
      /* the handler's "work" */
    }
  }
#endif
  return EVH_OK;
}

static void bench_shutdown(void* instance) {
  if (instance != NULL) {
    bench_destroy((bench*)instance);
  }
}

#ifdef BENCH_BLOCKING
#define BENCH_NAME "bench_blocking"
#define BENCH_FLAGS EVH_PLUGIN_BLOCKING
#else
#define BENCH_NAME "bench"
#define BENCH_FLAGS 0
#endif

static const evh_plugin_desc bench_desc = {
    .struct_size = sizeof(evh_plugin_desc),
    .abi_version = EVH_ABI_VERSION,
    .name = BENCH_NAME,
    .version = "1.0.0",
    .description = "benchmark sink: counts events, records end-to-end latency, reports on a BENCH_END sentinel",
    .flags = BENCH_FLAGS,
    .max_concurrency = 0, /* bench_blocking: as many calls at once as the pool has threads */
    .init = bench_init,
    .handle = bench_handle,
    .shutdown = bench_shutdown,
};

EVH_PLUGIN_EXPORT const evh_plugin_desc* evh_plugin_entry(uint32_t host_abi_version) {
  (void)host_abi_version;
  return &bench_desc;
}
