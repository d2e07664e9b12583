// Circuit breaker state machine (no clock of its own: times are passed in).
#include "dispatch/breaker.h"

namespace evh::dispatch {

const char* CircuitBreaker::name(State s) {
  switch (s) {
    case State::Closed:
      return "CLOSED";
    case State::Open:
      return "OPEN";
    case State::HalfOpen:
      return "HALF_OPEN";
  }
  return "?";
}

void CircuitBreaker::moveTo(State s) {
  if (s == state_) {
    return;
  }
  state_ = s;
  changed = true;
  ++transitions_;
  trials_granted_ = 0;
  trial_successes_ = 0;
  if (s == State::Closed) {
    consecutive_failures_ = 0;
  }
}

bool CircuitBreaker::tryAcquire(uint64_t now_ms) {
  if (state_ == State::Open && now_ms >= reopenAtMs()) {
    moveTo(State::HalfOpen);
  }
  switch (state_) {
    case State::Closed:
      return true;
    case State::Open:
      return false;
    case State::HalfOpen:
      if (trials_granted_ < policy_.half_open_max_calls) {
        ++trials_granted_;
        return true;
      }
      return false;
  }
  return false;
}

void CircuitBreaker::onSuccess(bool trial) {
  if (state_ == State::Closed) {
    consecutive_failures_ = 0;
  } else if (state_ == State::HalfOpen && trial) {
    if (++trial_successes_ >= policy_.half_open_max_calls) {
      moveTo(State::Closed);
    }
  }
}

void CircuitBreaker::onFailure(bool trial, uint64_t now_ms) {
  if (state_ == State::Closed) {
    if (++consecutive_failures_ >= policy_.threshold) {
      opened_at_ms_ = now_ms;
      moveTo(State::Open);
    }
  } else if (state_ == State::HalfOpen && trial) {
    opened_at_ms_ = now_ms;
    moveTo(State::Open);
  }
}

}  // namespace evh::dispatch
