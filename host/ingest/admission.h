// The admit stage: how many events may enter now. Pub/Sub events over
// limits.max_in_flight are refused (Pub/Sub cannot wait); streams read only
// as much as there is room for; and while dead letters wait to be stored
// beyond limits.max_dead_letter_bytes every source stops reading until half
// of them are.
#pragma once

#include "dispatch/dispatcher.h"
#include "loop/uv_handle.h"
#include "ops/stats.h"
#include "route/table.h"

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <functional>

namespace evh::ingest {

class Admission {
 public:
  struct Limits {
    uint32_t max_in_flight = 10000;
    uint64_t max_dead_letter_bytes = 16u << 20;
  };
  // What the stage does to the sources. hold_pubsub: stop reading Pub/Sub
  // (idempotent: also called for a subscriber that reconnected meanwhile);
  // release: read Pub/Sub again and wake every stream source.
  struct Sources {
    std::function<void()> hold_pubsub;
    std::function<void()> release;
  };
  // Series (docs/metrics.md, "Ingest"): evhost_ingest_pauses_total and the
  // computed gauges evhost_ingest_paused, evhost_events_in_flight and
  // evhost_dead_letter_backlog_bytes.
  Admission(uv_loop_t* loop, dispatch::Dispatcher& dispatcher, Limits limits, Sources sources, ops::Registry& stats);
  ~Admission();
  Admission(const Admission&) = delete;
  Admission& operator=(const Admission&) = delete;

  // May a Pub/Sub event enter now? THREAD: loop (as everything here).
  // `waiting`: events admitted earlier that are not in flight yet (signed
  // messages waiting for their replay check).
  bool admitPubSub(size_t waiting = 0) const noexcept {
    return dispatcher_.inFlight() + waiting < limits_.max_in_flight;
  }
  // Events in the dispatcher now.
  size_t inFlight() const noexcept { return dispatcher_.inFlight(); }
  // How many more entries a stream routed to `routes` may take now: 0 while
  // reading is paused, or while every plugin of the channel has its breaker
  // open (its entries wait safely in Redis until one half-opens).
  size_t streamCapacity(const route::Table& routes) const;
  // After a dead letter is handed over: pauses reading when the backlog
  // passed the limit.
  void checkDeadLetterBacklog();
  bool paused() const noexcept { return paused_; }
  // No more pausing (a stop is under way); a pause in force ends its timer.
  void stop();

 private:
  void onTimer();

  uv_loop_t* loop_;
  dispatch::Dispatcher& dispatcher_;
  Limits limits_;
  Sources sources_;
  UvHandle<uv_timer_t> timer_;  // looks for the way back while paused
  uint64_t paused_at_ = 0;      // loop ms
  bool paused_ = false;
  bool stopped_ = false;
  ops::Scope stats_;
  ops::Counter pauses_;  // times reading paused for the dead-letter backlog
};

}  // namespace evh::ingest
