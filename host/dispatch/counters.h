// What happened to each plugin's share of the events: series in the stats
// registry, labelled {plugin="<instance name>"} (docs/metrics.md,
// "Handlers"). THREAD: loop (the only writer; any thread may read).
#pragma once

#include "dispatch/breaker.h"
#include "ops/stats.h"

#include <cstdint>
#include <string>

namespace evh::dispatch {

// A copy of the values, for tests and logs.
struct PluginCounts {
  uint64_t calls = 0;
  uint64_t ok = 0;
  uint64_t retry = 0;
  uint64_t rejected = 0;
  uint64_t timeouts = 0;
  uint64_t errors = 0;
  uint64_t stuck = 0;
  uint64_t refused = 0;
  uint64_t pending = 0;
  uint64_t retried = 0;
  uint64_t dead_lettered = 0;
  uint64_t abandoned = 0;
  uint64_t duplicates = 0;
  uint64_t breaker_transitions = 0;
  int64_t breaker_waiting = 0;
  int64_t retry_waiting = 0;
  CircuitBreaker::State breaker_state = CircuitBreaker::State::Closed;
};

struct PluginCounters {
  PluginCounters(ops::Registry& stats, const std::string& plugin);
  PluginCounters(const PluginCounters&) = delete;
  PluginCounters& operator=(const PluginCounters&) = delete;

  // The breaker's state now (a transition).
  void breakerIs(CircuitBreaker::State state) noexcept;
  PluginCounts snapshot() const noexcept;

  ops::Scope scope;    // first: it outlives the handles below
  ops::Counter calls;  // handle() calls made (every attempt)
  // Outcomes of handle() calls, one per call made (dispatcher.cpp's
  // countOutcome). A failure is one of retry, timeout or error; each counts
  // towards the breaker and may be retried.
  ops::Counter ok;
  ops::Counter retry;  // handle() answered RETRY (the C++ SDK: also an exception)
  ops::Counter rejected;
  ops::Counter timeouts;
  ops::Counter errors;               // an unknown status; a call refused (stuck plugin)
  ops::Counter stuck;                // timed-out calls whose handle() was still running on a worker
  ops::Counter refused;              // of the errors, calls refused while the plugin's calls were stuck
  ops::Counter pending;              // calls answered PENDING (completed later)
  ops::Counter retried;              // retries scheduled
  ops::Counter dead_lettered;        // events of this plugin dead-lettered
  ops::Counter abandoned;            // calls unfinished at the shutdown deadline
  ops::Counter duplicates;           // events skipped: already handled (idempotency)
  ops::Counter breaker_transitions;  // the breaker changed state
  ops::Gauge breaker;                // 0 closed, 1 half-open, 2 open
  ops::Gauge breaker_waiting;        // deliveries queued behind the open (or half-open) breaker
  ops::Gauge retry_waiting;          // deliveries waiting for their retry delay
  ops::Histogram duration;           // microseconds from a call's start to its outcome
  CircuitBreaker::State breaker_state = CircuitBreaker::State::Closed;
};

}  // namespace evh::dispatch
