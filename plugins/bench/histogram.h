/* histogram.h -- a fixed-size, HdrHistogram-style log-linear histogram of
 * uint64_t values (nanoseconds, for the bench plugin), in plain C99.
 *
 * Layout (the same as HdrHistogram with 3 significant digits and unit 1):
 *   - values 0 .. 2047 each have a bucket of their own (exact);
 *   - above that, every power of two [2^m, 2^(m+1)), m >= 11, is split into
 *     1024 equal buckets, i.e. a bucket is (m, the top 11 bits of the value).
 * A bucket is at most 1/1024 (0.098%) of the values in it wide, so any value
 * reported for a bucket is within 0.1% of every value recorded in it. All of
 * uint64_t is covered (no clamping): 56,320 buckets, 440 KiB, allocated once
 * by bench_hist_init().
 *
 * count, min, max and the sum (for the mean) are tracked exactly, apart from
 * the buckets.
 *
 * THREADS: none; one histogram is used by one thread at a time.
 * bench_hist_record() does no allocation, no I/O and no locking. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BENCH_HIST_SUB_BUCKET_COUNT 2048u /* values below this are exact */
#define BENCH_HIST_HALF_COUNT 1024u       /* buckets per power of two above that */
#define BENCH_HIST_BUCKET_COUNT 56320u    /* 2048 + (63 - 11 + 1) * 1024 */

typedef struct bench_hist {
  uint64_t* counts; /* BENCH_HIST_BUCKET_COUNT entries; NULL before init / after free */
  uint64_t total;   /* values recorded */
  uint64_t min;     /* exact; UINT64_MAX while empty */
  uint64_t max;     /* exact; 0 while empty */
  uint64_t sum_lo;  /* exact sum of the values, 128 bits: sum_hi * 2^64 + sum_lo */
  uint64_t sum_hi;
} bench_hist;

/* Allocates the buckets (zeroed). Returns 0, or -1 when out of memory (the
 * histogram is then left empty and bench_hist_free() is still safe). */
int bench_hist_init(bench_hist* h);

/* Frees the buckets; safe on a histogram whose init failed, and twice. */
void bench_hist_free(bench_hist* h);

/* Records one value. */
void bench_hist_record(bench_hist* h, uint64_t value);

/* Forgets every value (keeps the allocation). */
void bench_hist_reset(bench_hist* h);

uint64_t bench_hist_count(const bench_hist* h);
uint64_t bench_hist_min(const bench_hist* h); /* 0 when empty */
uint64_t bench_hist_max(const bench_hist* h); /* 0 when empty */
double bench_hist_mean(const bench_hist* h);  /* 0 when empty */

/* The value at percentile p (0..100; clamped): the smallest bucket at which
 * at least round(p/100 * count) (but at least one) of the values lie,
 * reported as that bucket's highest equivalent value as HdrHistogram does --
 * except that it never exceeds the exact max. 0 when empty. */
uint64_t bench_hist_value_at_percentile(const bench_hist* h, double p);

/* The bucket of a value, and the lowest / highest values sharing it (for
 * tests). */
size_t bench_hist_index_of(uint64_t value);
uint64_t bench_hist_lowest_equivalent(uint64_t value);
uint64_t bench_hist_highest_equivalent(uint64_t value);

#ifdef __cplusplus
} /* extern "C" */
#endif
