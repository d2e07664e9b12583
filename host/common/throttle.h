// Lets a repeated log line through at most once per interval, counting the rest.
#pragma once

#include <cstdint>

namespace evh {

class Throttle {
 public:
  explicit Throttle(uint64_t interval_ms) : interval_ms_(interval_ms) {}

  // True when a line may be logged now; `suppressed()` then tells how many
  // were held back since the last one.
  bool allow(uint64_t now_ms) {
    if (last_ms_ != 0 && now_ms - last_ms_ < interval_ms_) {
      ++held_;
      return false;
    }
    last_ms_ = now_ms == 0 ? 1 : now_ms;
    suppressed_ = held_;
    held_ = 0;
    return true;
  }
  uint64_t suppressed() const noexcept { return suppressed_; }

 private:
  uint64_t interval_ms_;
  uint64_t last_ms_ = 0;
  uint64_t held_ = 0;
  uint64_t suppressed_ = 0;
};

}  // namespace evh
