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
 *   window_ms   integer 0..60000, default 0: also split the latencies by
 *               the window of wall-clock time the event was sent in (sentNs
 *               / window_ms, even or odd), reported apart. A load that acts
 *               in odd windows only (bench/evhbench/ops_load.py: scrapes)
 *               is then measured against the even ones of the same run,
 *               which run-to-run noise does not blur. Each window's count and
 *               p99 are reported too (bench_windows.h), for comparing a
 *               loaded window with its quiet neighbours.
 *
 * Built twice: `bench` (inline) and `bench_blocking` (EVH_PLUGIN_BLOCKING:
 * handle() runs on the worker pool, as many at once as it has threads; the
 * run's state is then guarded by a mutex).
 *
 * The hot path, handle() for an ordinary event, does no allocation, no I/O
 * and no locking: two clock reads (one more on a run's first event), a
 * backwards scan of the payload's tail and a histogram increment (three
 * with window_ms, and at each window's end its p99 and the clearing of its
 * buckets). Metrics are added once per run, at the sentinel.
 *
 * Files: bench.c (this: the descriptor, init, handle, shutdown),
 * bench_plugin.h (the instance), bench_report.c (the result line at the
 * sentinel), bench_config.c (the config), histogram.c (the latency
 * histogram). */
#define _POSIX_C_SOURCE 200809L

#include "bench_plugin.h"

#include "bench_config.h"
#include "bench_report.h"

#include <evh/plugin.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

evh_str bench_str(const char* s) {
  evh_str out;
  out.ptr = s;
  out.len = strlen(s);
  return out;
}

static int bench_str_is(evh_str s, const char* lit, size_t lit_len) {
  return s.len == lit_len && memcmp(s.ptr, lit, lit_len) == 0;
}

void bench_log(bench* b, evh_log_level level, const char* fmt, ...) {
  char msg[BENCH_LOG_MAX];
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

int64_t bench_clock_ns(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + (int64_t)ts.tv_nsec;
}

/* ---- the payload ----------------------------------------------------------- */

/* See bench_plugin.h. Here, beside handle(): it is on the hot path. */
int bench_find_uint(evh_str s, const char* quoted_name, size_t name_len, uint64_t* out) {
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

/* ---- the plugin --------------------------------------------------------------- */

static void bench_destroy(bench* b) {
#ifdef BENCH_BLOCKING
  pthread_mutex_destroy(&b->lock);
#endif
  bench_hist_free(&b->latency);
  bench_hist_free(&b->windows[0]);
  bench_hist_free(&b->windows[1]);
  bench_windows_free(&b->per_window);
  free(b->tag_json);
  free(b->result_key);
  free(b);
}

static evh_status bench_init(const evh_host_api* api, evh_host* host, evh_str config_json, void** out_instance) {
  char tag[BENCH_TAG_MAX + 1] = "bench";
  char key[BENCH_RESULT_KEY_MAX + 1] = "bench:results";
  uint64_t work_us = 0;
  uint64_t window_ms = 0;
  bench* b;

  if (bench_parse_config(api, host, config_json, tag, key, &work_us, &window_ms) != 0) {
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
  b->window_ns = window_ms * 1000000u;
  b->tag_json = bench_json_quote(tag);
  b->result_key = bench_strdup(key);
  if (bench_hist_init(&b->latency) != 0 ||
      (b->window_ns > 0 && (bench_hist_init(&b->windows[0]) != 0 || bench_hist_init(&b->windows[1]) != 0 ||
                            bench_windows_init(&b->per_window) != 0)) ||
      b->tag_json == NULL || b->result_key == NULL) {
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
      const uint64_t latency = now > 0 && (uint64_t)now > sent_ns ? (uint64_t)now - sent_ns : 0;
      bench_hist_record(&b->latency, latency);
      if (b->window_ns > 0) {
        const uint64_t window = sent_ns / b->window_ns;
        bench_hist_record(&b->windows[window & 1u], latency);
        bench_windows_record(&b->per_window, window, latency);
      }
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
