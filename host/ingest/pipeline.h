// The ingest pipeline, the same for Pub/Sub and streams:
//
//   size check -> [signed channels: signature, seen id] -> decode -> checks (validate) -> route -> admit -> dispatch
//
// Refused input leaves at the stage that refused it, dead-lettered
// (ingest/refusals.h). Routing uses the runtime in force when the message
// arrived; each dispatched event keeps that runtime until it is finished.
#pragma once

#include "dispatch/dispatcher.h"
#include "event/envelope.h"
#include "ingest/admission.h"
#include "ingest/check.h"
#include "ingest/refusals.h"
#include "ingest/seen_ids.h"
#include "ingest/signed_stage.h"
#include "ops/stats.h"
#include "runtime/runtime.h"

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace evh::ingest {

// Per channel, in the stats registry: {channel="<name in the config>"}
// (docs/metrics.md, "Ingest"). THREAD: loop writes.
struct ChannelStats {
  ChannelStats(ops::Scope& scope, const std::string& channel);
  ops::Counter received;   // messages off Redis (Pub/Sub messages, stream entries)
  ops::Histogram bytes;    // their sizes
  ops::Counter events;     // events decoded (a BATCH holds several)
  ops::Counter unrouted;   // events no route matched
  ops::Histogram latency;  // ms from an event's timestamp to its end (handled or dead-lettered)
};

class Pipeline {
 public:
  struct Options {
    bool trace_events = false;  // log every stage of every event (DEBUG_EVENTS)
    SeenIds* seen = nullptr;    // signed channels' replay check; null: none can be made
    SignedStage::Options signed_stage;
  };

  Pipeline(uv_loop_t* loop, dispatch::Dispatcher& dispatcher, runtime::RuntimePtr runtime, Admission& admission,
           ops::Registry& stats, Options options);

  // The runtime new messages are routed by from now on. THREAD: loop (as
  // everything here).
  void use(runtime::RuntimePtr runtime);
  const runtime::Runtime& runtime() const noexcept { return *runtime_; }
  const runtime::RuntimePtr& current() const noexcept { return runtime_; }
  // Appends a check run on every decoded event, in order, before routing.
  void addCheck(std::unique_ptr<Check> check);

  // A Pub/Sub message on `redis_channel` for the subscription of channel `id`.
  void pubsub(runtime::ChannelId id, std::string_view redis_channel, std::string_view payload);
  // A stream entry: `event_field` is its "event" field, nullptr when it has
  // none; `ack` runs once every event of it is finished (handled or
  // dead-lettered). `redelivered`: delivered before. `under`: the runtime
  // to route it by instead of the one in force -- a source a reload retired
  // hands over what its last read brought under the runtime it belonged to.
  void streamEntry(runtime::ChannelId id, const std::string& entry_id, const std::string_view* event_field,
                   bool redelivered, std::function<void()> ack, const runtime::RuntimePtr& under = nullptr);
  // A stream entry its source refused (poison, trimmed, too_large).
  void streamRefused(runtime::ChannelId id, const std::string& entry_id, const char* reason, const std::string& why,
                     const std::string* event_field, std::function<void()> ack,
                     const runtime::RuntimePtr& under = nullptr);
  // A message of shared Pub/Sub channel `id` that could not be forwarded
  // into its stream (app/pubsub_share.h): dead-lettered raw, reason
  // share_failed, `why` in the entry and the log.
  void shareFailed(runtime::ChannelId id, std::string_view redis_channel, std::string_view payload,
                   const std::string& why);
  // A Pub/Sub message over the reader's bound, cut off while read.
  void cutOff(std::string_view head, uint64_t held) { refusals_.cutOff(head, held); }

  const Refusals& refusals() const noexcept { return refusals_; }
  // Runs `fn` once no signed message waits for its replay check (a stop
  // waits for them before it drains what is in flight).
  void whenChecked(std::function<void()> fn) { signed_.whenIdle(std::move(fn)); }

 private:
  void message(const runtime::RuntimePtr& rt, const runtime::Channel& ch, std::string_view logical,
               std::string_view redis_channel, std::string_view payload, std::string_view delivery_id,
               std::function<void()> done, bool redelivered);
  // Decode onwards, under the runtime `rt` the message arrived with.
  void decoded(const runtime::RuntimePtr& rt, const runtime::Channel& ch, std::string_view logical,
               std::string_view redis_channel, std::string_view payload, std::string_view delivery_id,
               std::function<void()> done, bool redelivered);
  // Registers the series of the runtime's channels not seen before.
  void addStats(const runtime::Runtime& rt);

  uv_loop_t* loop_;
  dispatch::Dispatcher& dispatcher_;
  runtime::RuntimePtr runtime_;
  Admission& admission_;
  Options options_;
  ops::Scope stats_;  // before everything writing its series
  ops::Counter unconfigured_;
  std::vector<std::unique_ptr<ChannelStats>> channel_stats_;  // by channel id; registered as runtimes name them
  event::Decoder decoder_;
  std::vector<event::Item> items_;  // reused by every decode
  Refusals refusals_;
  SignedStage signed_;
  std::vector<std::unique_ptr<Check>> checks_;
};

}  // namespace evh::ingest
