/* bench_report: the end of a benchmark run. On the BENCH_END sentinel,
 * bench_finish() writes the run's one JSON result line (counts, duration,
 * rate and latency percentiles from the histogram, in microseconds with
 * exact decimals), logs it, RPUSHes it to result_key, adds the run's metrics
 * and resets the run. */
#pragma once

#include "bench_plugin.h"

/* Ends the run on the sentinel: reports it, then starts a clean one. The
 * caller holds the run's lock (bench_blocking). */
void bench_finish(bench* b, const evh_event* ev);
