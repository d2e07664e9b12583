/* bench_windows: each window's own count and p99 (see bench_windows.h). */
#include "bench_windows.h"

#include <stdlib.h>

int bench_windows_init(bench_windows* w) {
  w->slot_index[0] = w->slot_index[1] = UINT64_MAX;
  w->closed = (bench_window*)calloc(BENCH_WINDOWS_MAX, sizeof *w->closed);
  if (w->closed == NULL || bench_hist_init(&w->slot[0]) != 0 || bench_hist_init(&w->slot[1]) != 0) {
    return -1;
  }
  return 0;
}

void bench_windows_free(bench_windows* w) {
  bench_hist_free(&w->slot[0]);
  bench_hist_free(&w->slot[1]);
  free(w->closed);
  w->closed = NULL;
}

static void bench_windows_close(bench_windows* w, unsigned s) {
  if (w->slot_index[s] == UINT64_MAX) {
    return;
  }
  if (w->n_closed < BENCH_WINDOWS_MAX) {
    bench_window* c = &w->closed[w->n_closed++];
    c->index = w->slot_index[s];
    c->count = bench_hist_count(&w->slot[s]);
    c->p99_ns = bench_hist_value_at_percentile(&w->slot[s], 99.0);
  } else {
    ++w->dropped;
  }
  bench_hist_reset(&w->slot[s]);
  w->slot_index[s] = UINT64_MAX;
}

void bench_windows_record(bench_windows* w, uint64_t index, uint64_t latency_ns) {
  const unsigned s = (unsigned)(index & 1u);
  if (w->slot_index[s] != index) {
    if (w->any && index + 2u <= w->highest) {
      ++w->late; /* its window was closed when the one two after it began */
      return;
    }
    /* A new window: every window two or more before it closes, the lower
     * first (the other slot too, when a window was skipped), so windows
     * close in the order of their indexes. */
    const unsigned o = 1u - s;
    const int other_old = w->slot_index[o] != UINT64_MAX && w->slot_index[o] + 2u <= index;
    if (other_old && w->slot_index[o] < w->slot_index[s]) {
      bench_windows_close(w, o);
    }
    bench_windows_close(w, s);
    if (other_old) {
      bench_windows_close(w, o);
    }
    w->slot_index[s] = index;
    if (!w->any || index > w->highest) {
      w->highest = index;
      w->any = 1;
    }
  }
  bench_hist_record(&w->slot[s], latency_ns);
}

void bench_windows_close_all(bench_windows* w) {
  const unsigned first = w->slot_index[0] <= w->slot_index[1] ? 0u : 1u;
  bench_windows_close(w, first);
  bench_windows_close(w, 1u - first);
}

void bench_windows_reset(bench_windows* w) {
  bench_hist_reset(&w->slot[0]);
  bench_hist_reset(&w->slot[1]);
  w->slot_index[0] = w->slot_index[1] = UINT64_MAX;
  w->highest = 0;
  w->any = 0;
  w->n_closed = 0;
  w->late = 0;
  w->dropped = 0;
}
