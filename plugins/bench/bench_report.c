/* bench_report: the result line of a benchmark run and its RPUSH (see
 * bench_report.h). snprintf into a fixed buffer in the instance: no
 * allocation. */
#define _POSIX_C_SOURCE 200809L

#include "bench_report.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Logs "benchmark run N: <the result line>" from the instance's buffer:
 * the prefix is written just before the line (BENCH_LOG_PREFIX_MAX). */
static void bench_log_result(bench* b, size_t len) {
  char prefix[BENCH_LOG_PREFIX_MAX];
  int n;
  char* start;
  if (!b->api->log_enabled(b->host, EVH_LOG_INFO)) {
    return;
  }
  n = snprintf(prefix, sizeof prefix, "benchmark run %llu: ", (unsigned long long)b->runs);
  if (n < 0 || (size_t)n >= sizeof prefix) {
    return; /* cannot happen: 64 bytes hold any run number */
  }
  start = BENCH_LINE(b) - n;
  memcpy(start, prefix, (size_t)n);
  b->api->log(b->host, EVH_LOG_INFO, (evh_str){start, (size_t)n + len});
}

/* Appends to the line at *pos; the line is big enough for everything but a
 * truncated vsnprintf is still handled (the line is then dropped). */
static int bench_put(bench* b, size_t* pos, const char* fmt, ...) BENCH_PRINTF(3, 4);
static int bench_put(bench* b, size_t* pos, const char* fmt, ...) {
  va_list args;
  int n;
  if (*pos >= BENCH_LINE_MAX) {
    return -1;
  }
  va_start(args, fmt);
  n = vsnprintf(BENCH_LINE(b) + *pos, BENCH_LINE_MAX - *pos, fmt, args);
  va_end(args);
  if (n < 0 || (size_t)n >= BENCH_LINE_MAX - *pos) {
    *pos = BENCH_LINE_MAX;
    return -1;
  }
  *pos += (size_t)n;
  return 0;
}

/* A latency in ns, as microseconds with 3 decimals (exact, locale-free). */
static int bench_put_us(bench* b, size_t* pos, const char* sep, const char* name, uint64_t ns) {
  return bench_put(b, pos, "%s\"%s\":%llu.%03u", sep, name, (unsigned long long)(ns / 1000u), (unsigned)(ns % 1000u));
}

/* One window's latencies: {"count":N,"p50":..,"p99":..,"p999":..,"max":..}. */
static int bench_put_window(bench* b, size_t* pos, const char* name, const bench_hist* h) {
  int rc = bench_put(b, pos, "\"%s\":{\"count\":%llu", name, (unsigned long long)bench_hist_count(h));
  rc |= bench_put_us(b, pos, ",", "p50", bench_hist_value_at_percentile(h, 50.0));
  rc |= bench_put_us(b, pos, ",", "p99", bench_hist_value_at_percentile(h, 99.0));
  rc |= bench_put_us(b, pos, ",", "p999", bench_hist_value_at_percentile(h, 99.9));
  rc |= bench_put_us(b, pos, ",", "max", bench_hist_max(h));
  rc |= bench_put(b, pos, "}");
  return rc;
}

/* Each window's figures: ,"per_window":{"late":N,"dropped":N,"windows":
 * [[index,count,p99],...]} (p99 in microseconds), in the order of their
 * indexes (bench_windows.h). Closes the windows still open. */
static int bench_put_per_window(bench* b, size_t* pos, bench_windows* w) {
  size_t i;
  int rc;
  bench_windows_close_all(w);
  rc = bench_put(b, pos, ",\"per_window\":{\"late\":%llu,\"dropped\":%llu,\"windows\":[", (unsigned long long)w->late,
                 (unsigned long long)w->dropped);
  for (i = 0; i < w->n_closed; ++i) {
    const bench_window* c = &w->closed[i];
    rc |= bench_put(b, pos, "%s[%llu,%llu", i == 0 ? "" : ",", (unsigned long long)c->index,
                    (unsigned long long)c->count);
    rc |= bench_put(b, pos, ",%llu.%03u]", (unsigned long long)(c->p99_ns / 1000u), (unsigned)(c->p99_ns % 1000u));
  }
  rc |= bench_put(b, pos, "]}");
  return rc;
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

void bench_finish(bench* b, const evh_event* ev) {
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
  rc |= bench_put(b, &pos, "}");
  if (b->window_ns > 0) {
    rc |= bench_put(b, &pos, ",\"window_ms\":%llu,\"windows_us\":{", (unsigned long long)(b->window_ns / 1000000u));
    rc |= bench_put_window(b, &pos, "even", &b->windows[0]);
    rc |= bench_put(b, &pos, ",");
    rc |= bench_put_window(b, &pos, "odd", &b->windows[1]);
    rc |= bench_put(b, &pos, "}");
    rc |= bench_put_per_window(b, &pos, &b->per_window);
  }
  rc |= bench_put(b, &pos, "}");

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
              (unsigned long long)b->runs, (unsigned)BENCH_LINE_MAX, (unsigned long long)b->received);
  } else {
    bench_log_result(b, pos);
    argv[0] = bench_str("RPUSH");
    argv[1].ptr = b->result_key;
    argv[1].len = b->result_key_len;
    argv[2].ptr = BENCH_LINE(b);
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
  if (b->window_ns > 0) {
    bench_hist_reset(&b->windows[0]);
    bench_hist_reset(&b->windows[1]);
    bench_windows_reset(&b->per_window);
  }
}
