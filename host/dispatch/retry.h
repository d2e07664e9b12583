// Delays between attempts: exponential, capped, with the configured jitter.
#pragma once

#include "config/config.h"

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

}  // namespace evh::dispatch
