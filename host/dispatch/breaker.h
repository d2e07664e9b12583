// The plan's circuit breaker for one plugin instance: CLOSED -> OPEN after
// `threshold` consecutive failures, OPEN for `open_ms`, then HALF_OPEN with
// `half_open_max_calls` trial calls that must all succeed to close it.
#pragma once

#include "config/config.h"

#include <cstdint>

namespace evh::dispatch {

class CircuitBreaker {
 public:
  enum class State { Closed, Open, HalfOpen };

  explicit CircuitBreaker(const config::BreakerPolicy& policy) : policy_(policy) {}

  // May a call start at `now_ms`? Moves OPEN to HALF_OPEN once open_ms has
  // passed. When half-open, a granted call is a trial (reserved here).
  bool tryAcquire(uint64_t now_ms);
  // The outcome of a call that tryAcquire granted (trial: granted while
  // half-open). Failures count only while closed or for trials.
  void onSuccess(bool trial);
  // Moves OPEN to HALF_OPEN once open_ms has passed, without granting a
  // call (for a timer, when no call comes to ask).
  void refresh(uint64_t now_ms) {
    if (state_ == State::Open && now_ms >= reopenAtMs()) {
      moveTo(State::HalfOpen);
    }
  }
  void onFailure(bool trial, uint64_t now_ms);

  State state() const noexcept { return state_; }
  bool halfOpen() const noexcept { return state_ == State::HalfOpen; }
  uint64_t reopenAtMs() const noexcept { return opened_at_ms_ + policy_.open_ms; }
  uint64_t transitions() const noexcept { return transitions_; }
  // Set by every state change; cleared by whoever logs it.
  bool changed = false;
  const config::BreakerPolicy& policy() const noexcept { return policy_; }

  static const char* name(State s);

 private:
  void moveTo(State s);

  config::BreakerPolicy policy_;
  State state_ = State::Closed;
  uint32_t consecutive_failures_ = 0;
  uint32_t trials_granted_ = 0;
  uint32_t trial_successes_ = 0;
  uint64_t opened_at_ms_ = 0;
  uint64_t transitions_ = 0;
};

}  // namespace evh::dispatch
