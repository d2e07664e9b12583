// Delays between attempts: exponential, capped, with the configured jitter.
#pragma once

#include "config/config.h"
#include "dispatch/delivery.h"

#include <cstdint>
#include <random>

namespace evh::dispatch {

// The delay before attempt `next_attempt` (2 for the first retry).
// `uniform01` returns a number in [0, 1).
template <class Uniform01>
uint64_t retryDelayMs(const config::RetryPolicy& p, uint32_t next_attempt, Uniform01&& uniform01) {
  double d = p.base_delay_ms;
  for (uint32_t i = 2; i < next_attempt && d < p.max_delay_ms; ++i) {
    d *= p.multiplier;
  }
  if (d > p.max_delay_ms) {
    d = p.max_delay_ms;
  }
  switch (p.jitter) {
    case config::Jitter::None:
      break;
    case config::Jitter::Full:
      d = d * uniform01();
      break;
    case config::Jitter::Equal:
      d = d / 2 + (d / 2) * uniform01();
      break;
  }
  return static_cast<uint64_t>(d);
}

// Schedules deliveries' next attempts on libuv timers, with the route's
// backoff and jitter. THREAD: loop.
class Retries {
 public:
  explicit Retries(uv_loop_t* loop) : loop_(loop), rng_(std::random_device{}()) {}
  // The delay before d's next attempt (d->attempt made so far).
  uint64_t delayMs(const Delivery& d) {
    std::uniform_real_distribution<double> u(0.0, 1.0);
    return retryDelayMs(*d.retry, d.attempt + 1, [&] { return u(rng_); });
  }
  // Waits `delay_ms` on d's retry timer, then calls again(d).
  void schedule(Delivery* d, uint64_t delay_ms, void (*again)(Delivery*));

 private:
  uv_loop_t* loop_;
  std::mt19937_64 rng_;
};

}  // namespace evh::dispatch
