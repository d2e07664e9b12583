/* bench_windows: each window's own latency figures (window_ms), for
 * comparing a loaded window with its quiet neighbours.
 *
 * The even/odd split (bench_plugin.h's `windows`) pools a run's loaded and
 * quiet windows, so a half's p99 rests on the few stalls of a run and two
 * runs of the same build differ by tens of percent. Per window, a 30 s run
 * at 50,000/s gives 75 loaded windows of 10,000 events, each with a quiet
 * window on either side: two comparisons per loaded window instead of one
 * per run (bench/evhbench/report.py, neighbour_changes).
 *
 * Two windows are filled at a time (slot[index & 1]): a window is closed --
 * its count and p99 kept -- when an event of a window two or more after it
 * comes, or at the end of the run, so windows close in the order of their
 * indexes (even when one had no events). An event of a window already
 * closed (two or more before the latest window seen) is counted as late
 * and left out of the per-window figures (it is in the others). At most
 * BENCH_WINDOWS_MAX windows are kept per run; later ones are counted as
 * dropped.
 *
 * THREADS: as the run's state (bench_plugin.h). bench_windows_record() does
 * no allocation and no I/O; closing a window clears its histogram's buckets
 * between its min and max (tens of KiB for latencies from microseconds to
 * milliseconds), once per window. */
#pragma once

#include "histogram.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BENCH_WINDOWS_MAX 1024u

typedef struct bench_window {
  uint64_t index;  /* sentNs / window_ns */
  uint64_t count;  /* events */
  uint64_t p99_ns; /* their p99 */
} bench_window;

typedef struct bench_windows {
  bench_hist slot[2];
  uint64_t slot_index[2]; /* the window slot[i] holds; UINT64_MAX: none */
  bench_window* closed;   /* BENCH_WINDOWS_MAX entries, in the order closed */
  size_t n_closed;
  uint64_t highest; /* the latest window opened (when any) */
  int any;          /* whether a window was opened this run */
  uint64_t late;    /* events of a window already closed */
  uint64_t dropped; /* windows closed beyond BENCH_WINDOWS_MAX */
} bench_windows;

/* Allocates (0) or fails (-1, out of memory; bench_windows_free() is still
 * safe). */
int bench_windows_init(bench_windows* w);
void bench_windows_free(bench_windows* w);

/* One event's latency, sent in window `index`. */
void bench_windows_record(bench_windows* w, uint64_t index, uint64_t latency_ns);

/* Closes the windows still open (the lower index first): the run ended. */
void bench_windows_close_all(bench_windows* w);

/* Forgets the run (keeps the allocations). */
void bench_windows_reset(bench_windows* w);

#ifdef __cplusplus
} /* extern "C" */
#endif
