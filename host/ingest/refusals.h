// Input the ingest pipeline refuses before any plugin sees it -- undecodable,
// too large, without an "event" field, poison, overloaded -- each logged
// (throttled per reason, so a flood of one kind of garbage cannot hide
// another), counted and dead-lettered.
#pragma once

#include "common/throttle.h"
#include "dispatch/dispatcher.h"
#include "event/envelope.h"
#include "ingest/check.h"
#include "runtime/runtime.h"

#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace evh::ingest {

// Counted by reason for the metrics (event::Reason codes, then the stream
// and admission reasons below).
struct RefusalCounters {
  uint64_t invalid = 0;     // decoder refusals, too large, no event field
  uint64_t overloaded = 0;  // Pub/Sub events over limits.max_in_flight
  uint64_t poison = 0;      // stream entries delivered max_deliveries times
  uint64_t trimmed = 0;     // stream entries trimmed away before handled
  uint64_t cut_off = 0;     // Pub/Sub messages over the reader's bound
  uint64_t checks = 0;      // events a verify/validate check refused
};

class Refusals {
 public:
  // `after` runs after each dead letter is handed over (the admission stage
  // checks the dead-letter backlog there).
  Refusals(uv_loop_t* loop, dispatch::Dispatcher& dispatcher, event::Decoder& decoder, std::function<void()> after);

  // One item the decoder refused. `done` (may be empty) runs once it is
  // stored; from a stream it acks the entry.
  void invalid(const event::Rejected& rejected, std::string_view logical, std::string_view redis_channel,
               std::function<void()> done);
  // A message over limits.max_message_bytes, refused before it is copied or
  // parsed: the entry keeps a prefix, the size and a hash, so that neither
  // evhost's memory nor the dead-letter store grows with what a publisher sends.
  void tooLarge(uint64_t limit, std::string_view logical, std::string_view redis_channel, std::string_view payload,
                std::string_view delivery_id, std::function<void()> done);
  // A stream entry without an "event" field.
  void noEventField(const runtime::Channel& ch, const std::string& id, std::function<void()> ack);
  // A stream entry the source will not hand over (poison, trimmed, too_large
  // from its length): kept decoded when it decodes to one event, so that
  // `evhctl dlq show <eventId>` finds it.
  void streamEntry(const runtime::Channel& ch, const std::string& id, const char* reason, const std::string& why,
                   const std::string* event_field, std::function<void()> ack);
  // A Pub/Sub message over the reader's bound, cut off while read: what the
  // reader held first (raw RESP) and how much it held.
  void cutOff(std::string_view head, uint64_t held);
  // An event a check of the verify/validate stage refused (its reason is
  // the dead-letter reason).
  void checkFailed(const char* check, const Refusal& refusal, const event::Event& ev, std::function<void()> done,
                   bool from_stream);
  // A Pub/Sub event over limits.max_in_flight (Pub/Sub cannot wait).
  void overloaded(const event::Event& ev, std::string_view logical, size_t in_flight);

  const RefusalCounters& counters() const noexcept { return counters_; }

 private:
  void logInvalid(event::Reason reason, const std::string& line);

  uv_loop_t* loop_;
  dispatch::Dispatcher& dispatcher_;
  event::Decoder& decoder_;
  std::function<void()> after_;
  std::vector<Throttle> invalid_log_;  // one per event::Reason
  Throttle overload_log_{1000};
  Throttle check_log_{1000};
  RefusalCounters counters_;
};

}  // namespace evh::ingest
