// The dispatcher's delivery state: an event in flight, and one plugin's share
// of it over all its attempts. THREAD: loop (all of it).
#pragma once

#include "common/recycled.h"
#include "config/config.h"
#include "dispatch/dead_letter.h"
#include "event/envelope.h"
#include "loop/uv_handle.h"
#include "ops/stats.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace evh::route {
struct TypeSeries;
}  // namespace evh::route

namespace evh::dispatch {

class Dispatcher;
struct PluginState;

// Every event between decode and the end of its last delivery.
struct InFlight : Recycled<InFlight> {
  event::Event event;
  uint32_t remaining = 0;         // deliveries not finished
  std::function<void()> on_done;  // when the last one finishes
  // Attempts that still hold a view of the event: a handler a timeout gave
  // up on may still be reading it on a worker. Freed when both are zero.
  uint32_t attempts = 0;
  bool patient = false;  // from a source that can wait (a stream): never circuit_open
  // What the event was routed by (the runtime owning what its targets point
  // at): kept until the event is finished, whatever replaced it.
  std::shared_ptr<const void> routed_by;
  // Where the time from the envelope's timestamp to the event's end goes
  // (its channel's evhost_event_latency_seconds); null: nowhere.
  const ops::Histogram* latency = nullptr;
};

// One event for one plugin, over all its attempts -- or one dead-letter
// entry for the dead-letter plugin (then `entry` is set).
struct Delivery : Recycled<Delivery> {
  enum class Wait { None, Retry, Breaker, DeadLetter, Idempotency };

  PluginState* ps = nullptr;
  InFlight* inflight = nullptr;
  // The route's policy, a copy: the event's routes may be replaced meanwhile.
  // Unset for a dead-letter delivery: a single attempt.
  std::optional<config::RetryPolicy> retry;
  uint64_t idempotency_ttl_ms = 0;  // 0: off
  bool idempotency_checked = false;
  // The (plugin, eventId) mark's key, built once for the check, the
  // attempts' views and the mark (Dispatcher::idempotencyKey); empty until
  // then.
  std::string idempotency_key;
  uint32_t attempt = 0;
  bool trial = false;  // granted as a half-open trial call
  uint64_t first_ms = 0;
  uint64_t last_ms = 0;
  uint64_t attempt_ns = 0;                         // uv_hrtime() at the current attempt's start
  const route::TypeSeries* type_series = nullptr;  // its target's (the runtime's, kept by routed_by); may be null
  std::string last_error;
  const char* last_error_name = "";
  Wait wait = Wait::None;
  UvHandle<uv_timer_t> retry_timer;
  void (*retry_again)(Delivery*) = nullptr;      // what the retry timer calls
  std::shared_ptr<const DeadLetterEntry> entry;  // dead-letter deliveries only
  uint32_t timeout_ms = 0;                       // per attempt; 0: none
  std::function<void()> done;                    // dead-letter deliveries only
  bool from_stream = false;                      // dead-letter deliveries: done acks a stream entry
  Dispatcher* owner = nullptr;
  Delivery* prev = nullptr;
  Delivery* next = nullptr;

  uint32_t maxAttempts() const noexcept { return retry ? retry->max_attempts : 1; }
  // A stream's event (or dead letter), left pending at the shutdown deadline.
  bool fromStream() const noexcept { return entry ? from_stream : inflight->patient; }
};

// An intrusive doubly linked list through prev/next (Delivery, Attempt).
template <class T>
void linkInto(T*& head, T* x) {
  x->prev = nullptr;
  x->next = head;
  if (head != nullptr) {
    head->prev = x;
  }
  head = x;
}

template <class T>
void unlinkFrom(T*& head, T* x) {
  if (x->prev != nullptr) {
    x->prev->next = x->next;
  } else {
    head = x->next;
  }
  if (x->next != nullptr) {
    x->next->prev = x->prev;
  }
  x->prev = x->next = nullptr;
}

}  // namespace evh::dispatch
