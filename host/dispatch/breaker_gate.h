// One plugin's circuit breaker in front of its calls: deliveries it refuses
// wait in FIFO order -- up to max_waiting, for max_wait_ms, or for as long
// as it takes for a patient (stream) event -- and a timer half-opens the
// breaker on time and expires the impatient. Every state change is logged
// once. THREAD: loop.
#pragma once

#include "dispatch/breaker.h"
#include "dispatch/counters.h"
#include "loop/uv_handle.h"

#include <cstdint>
#include <deque>
#include <functional>
#include <string>

namespace spdlog {
class logger;
}

namespace evh::dispatch {

struct Delivery;

// What the gate hands back to the dispatcher.
class GateEvents {
 public:
  // The breaker let a waiting delivery through: run its attempt.
  virtual void admitted(Delivery* d) = 0;
  // A delivery waited longer than max_wait_ms (reason circuit_open).
  virtual void expired(Delivery* d, std::string why) = 0;

 protected:
  ~GateEvents() = default;
};

class BreakerGate {
 public:
  // `on_change` (may be empty) runs after any state change.
  BreakerGate(uv_loop_t* loop, const config::BreakerPolicy& policy, spdlog::logger& log, PluginCounters& counters,
              GateEvents& events, const std::function<void()>& on_change);
  BreakerGate(const BreakerGate&) = delete;
  BreakerGate& operator=(const BreakerGate&) = delete;

  // May d's attempt start now? Not while others wait. Sets d->trial.
  bool pass(Delivery* d);
  enum class Queued { Yes, Full };
  // Queues d behind the others; Full (not queued) at max_waiting, unless patient.
  Queued wait(Delivery* d, bool patient, std::string& why);
  // The outcome of a call the gate let through.
  void success(bool trial);
  void failure(bool trial);
  // Lets waiting deliveries through while the breaker allows.
  void release();
  // Takes d off the queue (drain). Returns whether it was there.
  bool remove(Delivery* d);
  // At drain: no more timers (nothing waits any more). At the deadline
  // (close): nothing is let through either, and the queue is forgotten.
  void stopTimer();
  void close();

  bool open() const noexcept { return breaker_.state() == CircuitBreaker::State::Open; }
  // Deliveries queued behind the breaker.
  size_t waiting() const noexcept { return waiting_.size(); }

 private:
  struct Waiter {
    Delivery* d;
    uint64_t since;  // loop ms
    bool patient;
  };
  void note();
  void arm();
  void onTimer();

  uv_loop_t* loop_;
  CircuitBreaker breaker_;
  spdlog::logger& log_;
  PluginCounters& counters_;
  GateEvents& events_;
  const std::function<void()>& on_change_;
  std::deque<Waiter> waiting_;
  UvHandle<uv_timer_t> timer_;
  bool releasing_ = false;  // release() is on the stack
  bool timer_off_ = false;
  bool closed_ = false;
};

}  // namespace evh::dispatch
