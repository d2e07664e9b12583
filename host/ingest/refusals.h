// Input the ingest pipeline refuses before any plugin sees it -- undecodable,
// too large, without an "event" field, poison, overloaded -- each logged
// (throttled per reason, so a flood of one kind of garbage cannot hide
// another), counted and dead-lettered.
#pragma once

#include "common/throttle.h"
#include "dispatch/dispatcher.h"
#include "event/envelope.h"
#include "ingest/check.h"
#include "ops/stats.h"
#include "runtime/runtime.h"

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace evh::ingest {

// Counted by reason in the stats registry: evhost_ingest_refused_total
// {reason} (docs/metrics.md, "Ingest"). THREAD: loop writes.
struct RefusalStats {
  explicit RefusalStats(ops::Registry& stats);
  // A check's reason (a code of the check's own, from a fixed set).
  const ops::Counter& check(const std::string& reason);

  ops::Scope scope;
  std::vector<ops::Counter> invalid;  // by event::Reason
  ops::Counter no_event_field;        // stream entries without an "event" field
  ops::Counter overloaded;            // Pub/Sub events over limits.max_in_flight
  ops::Counter poison;                // stream entries delivered max_deliveries times
  ops::Counter trimmed;               // stream entries trimmed away before handled
  ops::Counter cut_off;               // Pub/Sub messages over the reader's bound
  std::map<std::string, ops::Counter, std::less<>> checks;
};

class Refusals {
 public:
  // `after` runs after each dead letter is handed over (the admission stage
  // checks the dead-letter backlog there).
  Refusals(uv_loop_t* loop, dispatch::Dispatcher& dispatcher, event::Decoder& decoder, ops::Registry& stats,
           std::function<void()> after);

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
  // A whole message a check refused before it was decoded (a signature that
  // does not verify, a replay): dead-lettered raw. `what` names the failed
  // part (error.name in the entry), `detail` says how -- never a key.
  void messageRefused(const char* reason, const char* what, const std::string& detail, std::string_view logical,
                      std::string_view redis_channel, std::string_view payload, std::string_view delivery_id,
                      std::function<void()> done);
  // A Pub/Sub event over limits.max_in_flight (Pub/Sub cannot wait).
  void overloaded(const event::Event& ev, std::string_view logical, size_t in_flight);
  // The same for a whole message not decoded yet (a signed one, refused
  // before its replay check), kept raw.
  void overloaded(std::string_view payload, std::string_view logical, std::string_view redis_channel, size_t in_flight);

 private:
  void logInvalid(event::Reason reason, const std::string& line);

  uv_loop_t* loop_;
  dispatch::Dispatcher& dispatcher_;
  event::Decoder& decoder_;
  std::function<void()> after_;
  std::vector<Throttle> invalid_log_;  // one per event::Reason
  Throttle overload_log_{1000};
  Throttle check_log_{1000};
  RefusalStats stats_;
};

}  // namespace evh::ingest
