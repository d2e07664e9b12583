/* histogram.c -- see histogram.h. */
#include "histogram.h"

#include <stdlib.h>
#include <string.h>

/* The index of the highest set bit of v (v != 0). */
static unsigned bench_hist_msb(uint64_t v) {
#if defined(__GNUC__) || defined(__clang__)
  return 63u - (unsigned)__builtin_clzll((unsigned long long)v);
#else
  unsigned m = 0;
  while (v >>= 1) {
    ++m;
  }
  return m;
#endif
}

size_t bench_hist_index_of(uint64_t value) {
  unsigned msb;
  unsigned shift;
  if (value < BENCH_HIST_SUB_BUCKET_COUNT) {
    return (size_t)value;
  }
  msb = bench_hist_msb(value); /* 11 .. 63 */
  shift = msb - 10u;           /* value >> shift is in [1024, 2047] */
  /* msb 11 starts at index 2048: 1024 * (msb - 10) + (value >> shift). */
  return (size_t)BENCH_HIST_HALF_COUNT * shift + (size_t)(value >> shift);
}

/* The first value of bucket i, and the bucket's width as a shift. */
static uint64_t bench_hist_bucket_low(size_t i, unsigned* shift_out) {
  size_t shift;
  if (i < BENCH_HIST_SUB_BUCKET_COUNT) {
    *shift_out = 0;
    return (uint64_t)i;
  }
  shift = i / BENCH_HIST_HALF_COUNT - 1u; /* i in [1024 * (shift + 1), 1024 * (shift + 2)) */
  *shift_out = (unsigned)shift;
  return (uint64_t)(i - BENCH_HIST_HALF_COUNT * shift) << shift;
}

static uint64_t bench_hist_bucket_high(size_t i) {
  unsigned shift;
  uint64_t low = bench_hist_bucket_low(i, &shift);
  return low + ((((uint64_t)1) << shift) - 1u); /* the last bucket ends at UINT64_MAX exactly */
}

uint64_t bench_hist_lowest_equivalent(uint64_t value) {
  unsigned shift;
  return bench_hist_bucket_low(bench_hist_index_of(value), &shift);
}

uint64_t bench_hist_highest_equivalent(uint64_t value) { return bench_hist_bucket_high(bench_hist_index_of(value)); }

static void bench_hist_clear_stats(bench_hist* h) {
  h->total = 0;
  h->min = UINT64_MAX;
  h->max = 0;
  h->sum_lo = 0;
  h->sum_hi = 0;
}

int bench_hist_init(bench_hist* h) {
  bench_hist_clear_stats(h);
  h->counts = (uint64_t*)calloc(BENCH_HIST_BUCKET_COUNT, sizeof(uint64_t));
  return h->counts != NULL ? 0 : -1;
}

void bench_hist_free(bench_hist* h) {
  free(h->counts);
  h->counts = NULL;
  bench_hist_clear_stats(h);
}

void bench_hist_record(bench_hist* h, uint64_t value) {
  ++h->counts[bench_hist_index_of(value)];
  ++h->total;
  if (value < h->min) {
    h->min = value;
  }
  if (value > h->max) {
    h->max = value;
  }
  h->sum_lo += value;
  if (h->sum_lo < value) {
    ++h->sum_hi; /* carry */
  }
}

void bench_hist_reset(bench_hist* h) {
  /* Only the buckets between min and max can hold counts: a window's
   * histogram is cleared five times a second on the loop (bench_windows.h),
   * and the buckets of microseconds to milliseconds are tens of KiB, not 440. */
  if (h->counts != NULL && h->total != 0) {
    const size_t lo = bench_hist_index_of(h->min);
    const size_t hi = bench_hist_index_of(h->max);
    memset(h->counts + lo, 0, (hi - lo + 1) * sizeof(uint64_t));
  }
  bench_hist_clear_stats(h);
}

uint64_t bench_hist_count(const bench_hist* h) { return h->total; }

uint64_t bench_hist_min(const bench_hist* h) { return h->total != 0 ? h->min : 0; }

uint64_t bench_hist_max(const bench_hist* h) { return h->max; }

double bench_hist_mean(const bench_hist* h) {
  if (h->total == 0) {
    return 0.0;
  }
  if (h->sum_hi == 0) {
    /* The common case: exact when the mean's integer part fits a double. */
    return (double)(h->sum_lo / h->total) + (double)(h->sum_lo % h->total) / (double)h->total;
  }
  return ((double)h->sum_hi * 18446744073709551616.0 + (double)h->sum_lo) / (double)h->total;
}

uint64_t bench_hist_value_at_percentile(const bench_hist* h, double p) {
  double wanted;
  uint64_t rank;
  uint64_t seen = 0;
  size_t i;
  if (h->total == 0 || h->counts == NULL) {
    return 0;
  }
  if (!(p > 0.0)) { /* also NaN */
    p = 0.0;
  } else if (p > 100.0) {
    p = 100.0;
  }
  wanted = p / 100.0 * (double)h->total + 0.5; /* rounded as HdrHistogram does */
  rank = wanted >= (double)h->total ? h->total : (uint64_t)wanted;
  if (rank < 1) {
    rank = 1;
  }
  for (i = bench_hist_index_of(h->min); i < BENCH_HIST_BUCKET_COUNT; ++i) {
    seen += h->counts[i];
    if (seen >= rank) {
      uint64_t v = bench_hist_bucket_high(i);
      return v < h->max ? v : h->max;
    }
  }
  return h->max; /* not reached: the counts add up to total */
}
