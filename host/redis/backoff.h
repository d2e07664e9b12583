// Exponential reconnect backoff with jitter, bounded, never giving up.
#pragma once

#include <algorithm>
#include <cstdint>
#include <random>

namespace evh::redis {

class Backoff {
 public:
  Backoff(uint32_t initial_ms, uint32_t max_ms, double multiplier)
      : initial_(std::max<uint32_t>(1, initial_ms)),
        max_(std::max(initial_, max_ms)),
        multiplier_(std::max(1.0, multiplier)),
        rng_(std::random_device{}()) {}

  // The next delay: "equal jitter" -- half the exponential step plus a
  // random half -- so that many evhost instances losing one Redis do not
  // reconnect in lockstep, yet none waits much less than the step.
  uint32_t next() {
    double step = std::min<double>(max_, initial_ * pow(attempt_));
    ++attempt_;
    auto half = static_cast<uint32_t>(step / 2);
    std::uniform_int_distribution<uint32_t> jitter(0, half);
    return std::max<uint32_t>(1, half + jitter(rng_));
  }
  void reset() { attempt_ = 0; }
  uint32_t attempts() const { return attempt_; }

 private:
  double pow(uint32_t n) const {
    double r = 1;
    for (uint32_t i = 0; i < n && r < max_; ++i) {
      r *= multiplier_;
    }
    return r;
  }

  uint32_t initial_;
  uint32_t max_;
  double multiplier_;
  uint32_t attempt_ = 0;
  std::mt19937 rng_;
};

}  // namespace evh::redis
