// How long the loop works per iteration -- everything it does between two
// waits for I/O: reading replies, decoding, inline handlers, timers -- as a
// histogram and the longest in the last 10 s. An event that arrives while
// the loop works waits that long: this is the loop's share of every event's
// latency, and a long one names a stall before the watchdog's threshold.
//
// Measured at each uv_check (right after the wait and the I/O callbacks): the
// time since the last check, minus the time libuv spent waiting in between
// (uv_metrics_idle_time, enabled here with UV_METRICS_IDLE_TIME).
// THREAD: loop.
#pragma once

#include "loop/uv_handle.h"
#include "ops/stats.h"

#include <uv.h>

#include <cstdint>

namespace evh {

class LoopLag {
 public:
  // Series: evhost_loop_iteration_seconds (histogram) and
  // evhost_loop_iteration_max_seconds (gauge, the longest in the last
  // 10-20 s). Call before the loop first runs (idle time is counted from
  // then).
  LoopLag(uv_loop_t* loop, ops::Registry& stats);
  ~LoopLag();
  LoopLag(const LoopLag&) = delete;
  LoopLag& operator=(const LoopLag&) = delete;

 private:
  void onCheck();

  uv_loop_t* loop_;
  UvHandle<uv_check_t> check_;
  uint64_t last_ns_ = 0;     // uv_hrtime at the last check
  uint64_t last_idle_ = 0;   // uv_metrics_idle_time then
  uint64_t window_ns_ = 0;   // when the current 10 s window began
  int64_t max_us_ = 0;       // the longest iteration in the current window
  int64_t max_prev_us_ = 0;  // ... in the one before
  ops::Scope stats_;
  ops::Histogram iteration_;
};

}  // namespace evh
