// Every unfinished delivery and attempt of a dispatcher: what drain() and
// the shutdown deadline look through, and what its end frees. THREAD: loop
// (writeUnfinished also while the loop is parked, for the watchdog).
#pragma once

#include "dispatch/delivery.h"
#include "plugin/call_table.h"

#include <cstddef>
#include <unordered_map>
#include <vector>

namespace evh::dispatch {

class Attempt;
class DeadLetterSink;

class Deliveries {
 public:
  Deliveries() = default;
  Deliveries(const Deliveries&) = delete;
  Deliveries& operator=(const Deliveries&) = delete;

  void add(Delivery* d) { linkInto(deliveries_, d); }
  void remove(Delivery* d) { unlinkFrom(deliveries_, d); }
  void add(Attempt* a);
  void remove(Attempt* a);
  size_t attempts() const noexcept { return attempts_; }

  // Deliveries waiting for a retry delay or an open breaker (drain).
  std::vector<Delivery*> waitingOnTimers() const;
  // Ends every unfinished call (the shutdown deadline): a later complete()
  // answers EVH_ERR_STATE. Returns the calls per plugin.
  std::unordered_map<PluginState*, size_t> abandonCalls();
  // What is left at the deadline goes to the fallback file (reason
  // abandoned, `why` its message) -- but a stream's event or dead letter,
  // which stays pending in Redis and comes back at the next start:
  // dead-lettering it too would make it both.
  struct Left {
    size_t written = 0;
    size_t stream_events = 0;
    size_t stream_letters = 0;
  };
  Left writeUnfinished(DeadLetterSink& sink, const char* why, bool stop_timers);
  // Frees everything (the dispatcher's end, after abandon()).
  void freeAll();

 private:
  Delivery* deliveries_ = nullptr;
  Attempt* attempts_head_ = nullptr;
  size_t attempts_ = 0;
};

// Frees an event no delivery and no attempt holds any more.
inline void releaseEvent(InFlight* f) {
  if (f->remaining == 0 && f->attempts == 0) {
    delete f;
  }
}

}  // namespace evh::dispatch
