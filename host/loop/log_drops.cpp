// Dropped log lines: the counter and the line saying so.
#include "loop/log_drops.h"

namespace evh {

LogDrops::LogDrops(uv_loop_t* loop, log::AsyncOutput* output, ops::Registry& stats) : output_(output), stats_(stats) {
  dropped_ = stats_.counter("evhost_log_dropped_total",
                            "log lines dropped because the log output (stderr) did not keep up: the queue was full");
  if (output_ == nullptr) {
    return;
  }
  logger_ = output_->makeLogger("evhost");
  timer_ = makeUvHandle<uv_timer_t>(loop, uv_timer_init);
  timer_->data = this;
  uv_timer_start(
      timer_.get(), [](uv_timer_t* t) { static_cast<LogDrops*>(t->data)->check(); }, 1000, 1000);
  uv_unref(reinterpret_cast<uv_handle_t*>(timer_.get()));
}

LogDrops::~LogDrops() {
  check();  // drops since the last look are said before evhost stops
  timer_.close();
  stats_.clear();
}

void LogDrops::check() {
  if (output_ == nullptr) {
    return;
  }
  const uint64_t total = output_->dropped();
  if (total > counted_) {
    dropped_.inc(static_cast<int64_t>(total - counted_));
    counted_ = total;
  }
  // Said only once there is room again: a line logged into a full queue
  // would push out another (and be the next to go).
  if (counted_ > reported_ && output_->queued() <= output_->capacity() / 2) {
    logger_->warn(
        "{} log line(s) dropped: the log output (stderr) did not keep up, and evhost drops lines rather than "
        "wait for it (evhost_log_dropped_total)",
        counted_ - reported_);
    reported_ = counted_;
  }
}

}  // namespace evh
