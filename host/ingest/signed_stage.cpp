// Signed channels: verify, claim the webhook-id, then hand the body on.
#include "ingest/signed_stage.h"

#include "common/clock.h"
#include "common/log.h"

#include <cstdlib>
#include <map>

namespace evh::ingest {
namespace {

constexpr const char* kChecks = "evhost_signature_checks_total";
constexpr const char* kChecksHelp =
    "signed channels' messages by result: verified, missing, malformed, stale, future, no_match (bad_signature), "
    "replayed, handled_elsewhere (another instance claimed the id first), replay_unchecked (the seen-id check failed)";
const char* const kResults[] = {"verified", "missing",  "malformed",         "stale",           "future",
                                "no_match", "replayed", "handled_elsewhere", "replay_unchecked"};
constexpr size_t kResultCount = sizeof(kResults) / sizeof(kResults[0]);

size_t resultIndex(std::string_view result) {
  for (size_t i = 0; i < kResultCount; ++i) {
    if (result == kResults[i]) {
      return i;
    }
  }
  std::abort();  // a result not in the list above is a bug
}

// The seconds of a stream entry id "<ms>-<seq>": when Redis added it.
int64_t entrySeconds(std::string_view id) {
  int64_t ms = 0;
  for (char c : id) {
    if (c < '0' || c > '9') {
      break;
    }
    ms = ms * 10 + (c - '0');
  }
  return ms / 1000;
}

}  // namespace

struct SignedStage::ChannelStats {
  std::vector<ops::Counter> results;  // by kResults
  std::vector<ops::Counter> keys;     // by the runtime in force's key index: evhost_signature_key_verified_total
  // Every key id this channel has had (a reload rotates keys): a kept key's
  // series carries on, a removed one's stays at its last value.
  std::map<std::string, ops::Counter> by_id;
};

// A verified message waiting for its seen id's answer: everything it needs
// to go on, owned.
struct SignedStage::Held {
  runtime::RuntimePtr runtime;
  runtime::ChannelId channel;
  std::string logical;
  std::string redis_channel;
  std::string payload;
  size_t body_at;
  std::string delivery_id;
  std::string webhook_id;
  std::function<void()> done;
  bool redelivered;
};

SignedStage::SignedStage(Refusals& refusals, Admission& admission, ops::Registry& stats, SeenIds* seen, Options options,
                         std::function<void(Verified&)> next)
    : refusals_(refusals),
      admission_(admission),
      stats_(stats),
      seen_(seen),
      options_(std::move(options)),
      next_(std::move(next)) {}

SignedStage::~SignedStage() { *alive_ = false; }

void SignedStage::addStats(const runtime::Runtime& rt) {
  for (const runtime::Channel& ch : rt.channels()) {
    if (!ch.verifier) {
      continue;
    }
    if (ch.id >= channel_stats_.size()) {
      channel_stats_.resize(ch.id + 1);
    }
    if (!channel_stats_[ch.id]) {
      auto cs = std::make_unique<ChannelStats>();
      for (const char* r : kResults) {
        cs->results.push_back(stats_.counter(kChecks, kChecksHelp, {{"channel", ch.name}, {"result", r}}));
      }
      channel_stats_[ch.id] = std::move(cs);
    }
    // The keys of this runtime, by its key indices (a reload may have
    // added, removed or reordered them).
    ChannelStats& cs = *channel_stats_[ch.id];
    cs.keys.clear();
    for (size_t k = 0; k < ch.verifier->keyCount(); ++k) {
      const std::string id = ch.verifier->keyId(k);
      auto it = cs.by_id.find(id);
      if (it == cs.by_id.end()) {
        it = cs.by_id
                 .emplace(id, stats_.counter("evhost_signature_key_verified_total",
                                             "signed messages verified, by the key that verified them (rotation: "
                                             "remove a key once its count stops growing)",
                                             {{"channel", ch.name}, {"key", id}}))
                 .first;
      }
      cs.keys.push_back(it->second);
    }
  }
}

SignedStage::ChannelStats& SignedStage::statsOf(const runtime::Channel& ch) { return *channel_stats_[ch.id]; }

void SignedStage::message(const runtime::RuntimePtr& rt, const runtime::Channel& ch, std::string_view logical,
                          std::string_view redis_channel, std::string_view payload, std::string_view delivery_id,
                          std::function<void()> done, bool redelivered) {
  ChannelStats& cs = statsOf(ch);
  const int64_t judge_s = delivery_id.empty() ? static_cast<int64_t>(wallMs() / 1000) : entrySeconds(delivery_id);
  signature::Verifier::Result r = ch.verifier->verify(payload, judge_s);
  if (!r.ok()) {
    cs.results[resultIndex(r.failed)].inc();
    refusals_.messageRefused("bad_signature", r.failed, r.detail, logical, redis_channel, payload, delivery_id,
                             std::move(done));
    return;
  }
  cs.keys[r.key].inc();
  if (!ch.replay_check) {
    cs.results[resultIndex("verified")].inc();
    Verified v{rt, &ch, logical, redis_channel, r.frame.body, delivery_id, std::move(done), redelivered};
    next_(v);
    return;
  }
  // Pub/Sub cannot wait: what waits here counts against max_in_flight.
  if (delivery_id.empty() && !admission_.admitPubSub(waiting_)) {
    refusals_.overloaded(payload, logical, redis_channel, admission_.inFlight() + waiting_);
    return;
  }
  if (seen_ == nullptr) {
    cs.results[resultIndex("replay_unchecked")].inc();
    refusals_.messageRefused("replay_unchecked", "replay_unchecked", "no Redis connection for the seen-id check",
                             logical, redis_channel, payload, delivery_id, std::move(done));
    return;
  }
  auto held =
      std::make_shared<Held>(Held{rt, ch.id, std::string(logical), std::string(redis_channel), std::string(payload),
                                  static_cast<size_t>(r.frame.body.data() - payload.data()), std::string(delivery_id),
                                  std::string(r.frame.id), std::move(done), redelivered});
  // Remembered only as long as the timestamp could still pass (by this
  // machine's clock, with 5 s to spare): a copy sent later is refused as
  // stale. Redis holds rate x (tolerance + 5 s) ids at most -- about
  // tolerance seconds' worth of messages.
  const int64_t until_s = r.frame.seconds + static_cast<int64_t>(ch.verifier->toleranceSeconds()) + 5;
  const int64_t left_ms = (until_s - static_cast<int64_t>(wallMs() / 1000)) * 1000;
  const uint64_t ttl_ms = left_ms < 1000 ? 1000 : static_cast<uint64_t>(left_ms);
  const std::string key = options_.key_prefix + ch.name + ":" + held->webhook_id;
  const std::string& value = delivery_id.empty() ? options_.instance : held->delivery_id;
  ++waiting_;
  const bool sent =
      seen_->claim(key, value, ttl_ms, [this, alive = alive_, held](SeenIds::Claim claim, const std::string& detail) {
        if (*alive) {
          answered(*held, claim, detail);
        }
      });
  if (!sent) {
    answered(*held, SeenIds::Claim::Lost, "no Redis connection");
  }
}

void SignedStage::answered(Held& held, SeenIds::Claim claim, const std::string& detail) {
  const runtime::Channel& ch = *held.runtime->channel(held.channel);
  ChannelStats& cs = statsOf(ch);
  const bool from_stream = !held.delivery_id.empty();
  const std::string_view body = std::string_view(held.payload).substr(held.body_at);
  using Claim = SeenIds::Claim;
  // For a stream the value is the entry id: the same entry again is its
  // redelivery. For Pub/Sub it is this instance's name: the same one again
  // is this instance receiving the message twice -- a replay.
  const bool pass = claim == Claim::First || (claim == Claim::Same && from_stream);
  if (pass) {
    cs.results[resultIndex("verified")].inc();
    Verified v{held.runtime,    &ch, held.logical, held.redis_channel, body, held.delivery_id, std::move(held.done),
               held.redelivered};
    next_(v);
  } else if (claim == Claim::Other && !from_stream) {
    // Another instance subscribed to this channel received it too and
    // claimed it first: it is handled there (or, if this is a replay, was
    // refused there too).
    cs.results[resultIndex("handled_elsewhere")].inc();
    log::host().debug("signed message webhook-id={} on {}: claimed by another instance first, not handled here",
                      held.webhook_id, held.redis_channel);
  } else if (claim == Claim::Same || claim == Claim::Other) {
    cs.results[resultIndex("replayed")].inc();
    const std::string why = "webhook-id " + held.webhook_id + " was delivered before" +
                            (from_stream ? " (in another stream entry)" : " (to this instance)");
    refusals_.messageRefused("replayed", "replayed", why, held.logical, held.redis_channel, held.payload,
                             held.delivery_id, std::move(held.done));
  } else if (claim == Claim::Lost && from_stream && detail == "evhost is stopping") {
    // Left pending: read again (and checked again) after the restart.
    log::host().info("stream entry {} on {}: seen-id check cancelled by the stop; left pending", held.delivery_id,
                     held.redis_channel);
  } else {
    cs.results[resultIndex("replay_unchecked")].inc();
    refusals_.messageRefused("replay_unchecked", "replay_unchecked", "the seen-id check in Redis failed: " + detail,
                             held.logical, held.redis_channel, held.payload, held.delivery_id, std::move(held.done));
  }
  release();
}

void SignedStage::release() {
  if (--waiting_ > 0 || when_idle_.empty()) {
    return;
  }
  auto fns = std::move(when_idle_);
  when_idle_.clear();
  for (auto& fn : fns) {
    fn();
  }
}

void SignedStage::whenIdle(std::function<void()> fn) {
  if (waiting_ == 0) {
    fn();
    return;
  }
  when_idle_.push_back(std::move(fn));
}

}  // namespace evh::ingest
