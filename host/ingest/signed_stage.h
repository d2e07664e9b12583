// The verify stage of signed channels, before anything is decoded:
//
//   signature (form, timestamp window, HMAC) -> seen id (Redis) -> decode ...
//
// A message failing either is dead-lettered whole (`bad_signature`,
// `replayed`, `replay_unchecked`) and no plugin sees it. The timestamp is
// judged by the receipt time for Pub/Sub and by the time Redis added a
// stream entry (its id) for streams, so a backlog read late is not stale.
// The seen id's value says who saw it first: for a stream the entry id (its
// redelivery is the same delivery, not a replay), for Pub/Sub this
// instance's name (another instance subscribed to the channel receives the
// same message: it counts it as handled elsewhere and moves on).
#pragma once

#include "ingest/admission.h"
#include "ingest/refusals.h"
#include "ingest/seen_ids.h"
#include "ops/stats.h"
#include "runtime/runtime.h"

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace evh::ingest {

// What the stage hands on: the body of a verified message.
struct Verified {
  runtime::RuntimePtr runtime;  // the runtime the message arrived under
  const runtime::Channel* channel;
  std::string_view logical;
  std::string_view redis_channel;
  std::string_view body;
  std::string_view delivery_id;
  std::function<void()> done;
  bool redelivered;
};

class SignedStage {
 public:
  struct Options {
    std::string key_prefix;  // seen ids are <key_prefix><channel>:<webhook-id>
    std::string instance;    // this instance's name: the value of Pub/Sub's seen ids
  };
  // `seen` null: no replay check can be made (a channel asking for one
  // dead-letters its messages as replay_unchecked). `next` runs for each
  // verified message, maybe later than message() returns.
  SignedStage(Refusals& refusals, Admission& admission, ops::Registry& stats, SeenIds* seen, Options options,
              std::function<void(Verified&)> next);
  ~SignedStage();
  SignedStage(const SignedStage&) = delete;
  SignedStage& operator=(const SignedStage&) = delete;

  // Registers the series of the runtime's signed channels not seen before.
  void addStats(const runtime::Runtime& rt);
  // A message of a signed channel (ch.verifier set). THREAD: loop.
  void message(const runtime::RuntimePtr& rt, const runtime::Channel& ch, std::string_view logical,
               std::string_view redis_channel, std::string_view payload, std::string_view delivery_id,
               std::function<void()> done, bool redelivered);
  // Messages waiting for their seen id's answer.
  size_t waiting() const noexcept { return waiting_; }
  // Runs `fn` once nothing waits (now, when nothing does).
  void whenIdle(std::function<void()> fn);

 private:
  struct Held;
  struct ChannelStats;
  ChannelStats& statsOf(const runtime::Channel& ch);
  void answered(Held& held, SeenIds::Claim claim, const std::string& detail);
  void release();

  Refusals& refusals_;
  Admission& admission_;
  ops::Scope stats_;
  SeenIds* seen_;
  Options options_;
  std::function<void(Verified&)> next_;
  std::vector<std::unique_ptr<ChannelStats>> channel_stats_;  // by channel id
  size_t waiting_ = 0;
  std::vector<std::function<void()>> when_idle_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace evh::ingest
