/* bench_plugin: the bench plugin's instance and the helpers its files share:
 * bench.c (init, handle, shutdown), bench_report.c (the result line at the
 * end of a run) and bench_config.c (the config). Internal to the plugin;
 * bench.c describes what it does. Built twice (bench, bench_blocking): every
 * file sees the same BENCH_BLOCKING. */
#pragma once

#include "bench_windows.h"
#include "histogram.h"

#include <evh/plugin.h>

#include <stddef.h>
#include <stdint.h>
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
/* The result line: the longest tag escaped, and with window_ms up to
 * BENCH_WINDOWS_MAX windows of at most 64 bytes each ([index,count,p99]:
 * at most 13 + 20 + 20 digits, a point and the punctuation). */
#define BENCH_LINE_MAX (2048 + 64 * BENCH_WINDOWS_MAX)
/* Room before the result line for the log's "benchmark run N: ", so the
 * line is logged from where it is, with no copy and no stack buffer. */
#define BENCH_LOG_PREFIX_MAX 64

typedef struct bench {
  const evh_host_api* api;
  evh_host* host;

  char* tag_json;   /* the tag as a JSON string, quotes included */
  char* result_key; /* NUL-terminated */
  size_t result_key_len;
  int64_t work_ns;    /* config work_us, in ns: spun per event */
  uint64_t window_ns; /* config window_ms, in ns; 0: no windows */

  /* The current run. `bench`: only the loop thread touches these, no lock;
   * `bench_blocking`: under `lock`. */
#ifdef BENCH_BLOCKING
  pthread_mutex_t lock;
#endif
  uint64_t received;     /* events other than the sentinel */
  uint64_t no_timestamp; /* of those, without a parsable sentNs */
  int64_t first_mono_ns; /* CLOCK_MONOTONIC at the run's first event */
  bench_hist latency;    /* ns */
  /* With window_ns: the same latencies split by the parity of sentNs /
   * window_ns (windows[0]: even windows, windows[1]: odd ones). */
  bench_hist windows[2];
  /* With window_ns: each window apart (bench_windows.h). */
  bench_windows per_window;

  uint64_t runs;
  /* The result line is BENCH_LINE(b), BENCH_LINE_MAX bytes; the
   * BENCH_LOG_PREFIX_MAX before it hold the log line's prefix. */
  char log_line[BENCH_LOG_PREFIX_MAX + BENCH_LINE_MAX];

  evh_metric* m_received;
  evh_metric* m_no_timestamp;
  evh_metric* m_runs;
} bench;

#define BENCH_LINE(b) ((b)->log_line + BENCH_LOG_PREFIX_MAX)

/* A NUL-terminated string as an evh_str (not copied). */
evh_str bench_str(const char* s);

/* printf-style logging through the host (which copies the message), up to
 * BENCH_LOG_MAX bytes (the rest is cut): room for the longest tag escaped
 * (770 bytes) and result key (512) with their text. */
#define BENCH_LOG_MAX 2048
void bench_log(bench* b, evh_log_level level, const char* fmt, ...) BENCH_PRINTF(3, 4);

/* The clock's time in ns. */
int64_t bench_clock_ns(clockid_t clock);

/* Finds the last `"<name>"` (a JSON key: the quote is not escaped) in s and
 * parses the unsigned integer after its colon. Scans backwards, since the
 * load generator puts sentNs last. Returns 1 with *out set, or 0 when the key
 * is missing or its value is not a plain non-negative integer fitting 63 bits
 * (the last occurrence decides). quoted_name is the name with its quotes. */
int bench_find_uint(evh_str s, const char* quoted_name, size_t name_len, uint64_t* out);
