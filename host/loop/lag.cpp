// The loop's work per iteration, from uv_check to uv_check less the wait.
#include "loop/lag.h"

#include "common/log.h"

#include <algorithm>

namespace evh {
namespace {

constexpr uint64_t kWindowNs = 10'000'000'000;  // the max gauge's window
// Microseconds, exported in seconds: an idle loop's few microseconds to a
// stall's seconds.
const ops::Buckets kIterationBuckets{{10, 50, 100, 500, 1000, 5000, 10000, 50000, 100000, 500000, 1000000, 5000000},
                                     1e6};

}  // namespace

LoopLag::LoopLag(uv_loop_t* loop, ops::Registry& stats)
    : loop_(loop),
      stats_(stats),
      iteration_(stats_.histogram("evhost_loop_iteration_seconds",
                                  "the loop's work per iteration, between two waits for I/O: what an event arriving "
                                  "meanwhile waits",
                                  kIterationBuckets)) {
  if (int rc = uv_loop_configure(loop_, UV_METRICS_IDLE_TIME); rc != 0) {
    log::host().warn("loop idle time not measured ({}): evhost_loop_iteration_seconds counts the waits too",
                     uv_strerror(rc));
  }
  check_ = makeUvHandle<uv_check_t>(loop_, uv_check_init);
  check_->data = this;
  uv_check_start(check_.get(), [](uv_check_t* h) { static_cast<LoopLag*>(h->data)->onCheck(); });
  uv_unref(reinterpret_cast<uv_handle_t*>(check_.get()));  // never what keeps the loop running
  last_ns_ = window_ns_ = uv_hrtime();
  last_idle_ = uv_metrics_idle_time(loop_);
  stats_.computedGauge("evhost_loop_iteration_max_seconds",
                       "the longest loop iteration (see evhost_loop_iteration_seconds) in the last 10 to 20 s",
                       [this] { return static_cast<double>(std::max(max_us_, max_prev_us_)) / 1e6; });
}

LoopLag::~LoopLag() { stats_.clear(); }  // the gauge reads this

void LoopLag::onCheck() {
  const uint64_t now = uv_hrtime();
  const uint64_t idle = uv_metrics_idle_time(loop_);
  const uint64_t span = now - last_ns_;
  const uint64_t waited = std::min(idle - last_idle_, span);
  last_ns_ = now;
  last_idle_ = idle;
  const auto busy_us = static_cast<int64_t>((span - waited) / 1000);
  iteration_.observe(busy_us);
  if (now - window_ns_ >= kWindowNs) {
    max_prev_us_ = max_us_;
    max_us_ = 0;
    window_ns_ = now;
  }
  max_us_ = std::max(max_us_, busy_us);
}

}  // namespace evh
