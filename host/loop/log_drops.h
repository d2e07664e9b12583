// Log lines the Async output dropped (its queue was full: stderr did not
// keep up): counted in evhost_log_dropped_total, and said in one log line
// once the queue has room again.
// THREAD: loop.
#pragma once

#include "common/log.h"
#include "loop/uv_handle.h"
#include "ops/stats.h"

#include <uv.h>

#include <cstdint>
#include <memory>

namespace evh {

class LogDrops {
 public:
  // Looks every second (an unreferenced timer: it never keeps the loop
  // alive). Without an output (Output::Sync: nothing is ever dropped) the
  // series stays 0 and nothing runs.
  LogDrops(uv_loop_t* loop, log::AsyncOutput* output, ops::Registry& stats);
  ~LogDrops();
  LogDrops(const LogDrops&) = delete;
  LogDrops& operator=(const LogDrops&) = delete;

  // Counts new drops; once the queue is at most half full, logs how many
  // were dropped since the last such line. What the timer runs; exposed for
  // tests.
  void check();

 private:
  log::AsyncOutput* output_;
  std::shared_ptr<spdlog::logger> logger_;  // "evhost", through the output
  ops::Scope stats_;
  ops::Counter dropped_;
  uint64_t counted_ = 0;   // drops in dropped_
  uint64_t reported_ = 0;  // drops said in a log line
  UvHandle<uv_timer_t> timer_;
};

}  // namespace evh
