// What happened to each plugin's share of the events, for the metrics.
#pragma once

#include "dispatch/breaker.h"

#include <cstdint>

namespace evh::dispatch {

struct PluginCounters {
  uint64_t calls = 0;          // handle() calls made (every attempt)
  uint64_t ok = 0;             // outcomes: OK
  uint64_t retry = 0;          //           failed: RETRY, an exception, an unknown status, a timeout, refused
  uint64_t rejected = 0;       //           REJECT
  uint64_t timeouts = 0;       // of the failures, timeouts
  uint64_t stuck = 0;          // timed-out calls whose handle() was still running on a worker
  uint64_t refused = 0;        // of the failures, calls refused while the plugin's calls were stuck
  uint64_t pending = 0;        // calls answered PENDING (completed later)
  uint64_t retried = 0;        // retries scheduled
  uint64_t dead_lettered = 0;  // events of this plugin dead-lettered
  uint64_t abandoned = 0;      // calls unfinished at the shutdown deadline
  uint64_t duplicates = 0;     // events skipped: already handled (idempotency)
  uint64_t breaker_transitions = 0;
  CircuitBreaker::State breaker_state = CircuitBreaker::State::Closed;
};

}  // namespace evh::dispatch
