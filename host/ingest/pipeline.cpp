// The ingest pipeline's stages, in the order a message meets them.
#include "ingest/pipeline.h"

#include "common/log.h"

namespace evh::ingest {
namespace {

event::Decoder::Limits decoderLimits(const runtime::Runtime& rt) {
  return event::Decoder::Limits{rt.limits().max_message_bytes, rt.limits().max_json_depth};
}

// Message sizes: from a small event to the largest max_message_bytes
// commonly set.
const ops::Buckets kSizeBuckets{{128, 512, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304}, 1.0};
// Milliseconds, exported in seconds: from a few ms to minutes (a stream's
// backlog, retries with backoff).
const ops::Buckets kLatencyBuckets{{1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000},
                                   1e3};

}  // namespace

ChannelStats::ChannelStats(ops::Scope& scope, const std::string& channel)
    : received(scope.counter("evhost_messages_received_total",
                             "messages received from Redis: Pub/Sub messages and stream entries",
                             {{"channel", channel}})),
      bytes(scope.histogram("evhost_message_size_bytes", "sizes of the messages received", kSizeBuckets,
                            {{"channel", channel}})),
      events(scope.counter("evhost_events_decoded_total", "events decoded from the messages (a BATCH holds several)",
                           {{"channel", channel}})),
      unrouted(scope.counter("evhost_events_unrouted_total", "events decoded that no route matched",
                             {{"channel", channel}})),
      latency(scope.histogram("evhost_event_latency_seconds",
                              "from the envelope's timestamp to the event's end, handled or dead-lettered, by every "
                              "plugin it was routed to (the publisher's clock against evhost's)",
                              kLatencyBuckets, {{"channel", channel}})) {}

Pipeline::Pipeline(uv_loop_t* loop, dispatch::Dispatcher& dispatcher, runtime::RuntimePtr runtime, Admission& admission,
                   ops::Registry& stats, Options options)
    : loop_(loop),
      dispatcher_(dispatcher),
      runtime_(std::move(runtime)),
      admission_(admission),
      options_(options),
      stats_(stats),
      unconfigured_(stats_.counter("evhost_messages_unconfigured_total",
                                   "Pub/Sub messages for a channel no longer configured, not routed")),
      decoder_(decoderLimits(*runtime_)),
      refusals_(loop, dispatcher, decoder_, stats, [this] { admission_.checkDeadLetterBacklog(); }),
      signed_(refusals_, admission_, stats, options_.seen, options_.signed_stage, [this](Verified& v) {
        decoded(v.runtime, *v.channel, v.logical, v.redis_channel, v.body, v.delivery_id, std::move(v.done),
                v.redelivered);
      }) {
  addStats(*runtime_);
}

void Pipeline::use(runtime::RuntimePtr runtime) {
  const auto& now = runtime_->limits();
  const auto& next = runtime->limits();
  if (now.max_message_bytes != next.max_message_bytes || now.max_json_depth != next.max_json_depth) {
    decoder_ = event::Decoder(decoderLimits(*runtime));
  }
  addStats(*runtime);
  runtime_ = std::move(runtime);
}

void Pipeline::addStats(const runtime::Runtime& rt) {
  signed_.addStats(rt);
  for (const runtime::Channel& ch : rt.channels()) {
    if (ch.id >= channel_stats_.size()) {
      channel_stats_.resize(ch.id + 1);
    }
    if (!channel_stats_[ch.id]) {
      channel_stats_[ch.id] = std::make_unique<ChannelStats>(stats_, ch.name);
    }
  }
}

void Pipeline::addCheck(std::unique_ptr<Check> check) { checks_.push_back(std::move(check)); }

void Pipeline::pubsub(runtime::ChannelId id, std::string_view redis_channel, std::string_view payload) {
  const runtime::Channel* ch = runtime_->channel(id);
  if (ch == nullptr) {
    // A subscription the runtime in force no longer has (a reload removed
    // its channel; the unsubscribe is on its way): nothing routes it.
    unconfigured_.inc();
    log::host().debug("message on {} for a channel no longer configured: not routed", redis_channel);
    return;
  }
  // The logical channel is the one published on, without the prefix -- for
  // a pattern subscription the matching channel, not the pattern.
  std::string_view logical = ch->name;
  if (ch->pattern) {
    logical = redis_channel;
    const std::string& prefix = runtime_->prefix();
    if (logical.substr(0, prefix.size()) == prefix) {
      logical.remove_prefix(prefix.size());
    }
  }
  message(runtime_, *ch, logical, redis_channel, payload, {}, {}, false);
}

void Pipeline::shareFailed(runtime::ChannelId id, std::string_view redis_channel, std::string_view payload,
                           const std::string& why) {
  const runtime::Channel* ch = runtime_->channel(id);
  refusals_.messageRefused("share_failed", "share", why, ch != nullptr ? std::string_view(ch->name) : redis_channel,
                           redis_channel, payload, {}, {});
}

void Pipeline::streamEntry(runtime::ChannelId id, const std::string& entry_id, const std::string_view* event_field,
                           bool redelivered, std::function<void()> ack, const runtime::RuntimePtr& under) {
  const runtime::RuntimePtr& rt = under ? under : runtime_;
  const runtime::Channel* ch = rt->channel(id);
  if (ch == nullptr) {
    // Left pending: a source outliving its channel stops reading, and the
    // entry is delivered again to whoever reads the stream next.
    log::host().warn("stream entry {} for a channel no longer configured: left pending", entry_id);
    return;
  }
  if (event_field == nullptr) {
    channel_stats_[id]->received.inc();
    refusals_.noEventField(*ch, entry_id, std::move(ack));
    return;
  }
  message(rt, *ch, ch->name, ch->key, *event_field, entry_id, std::move(ack), redelivered);
}

void Pipeline::streamRefused(runtime::ChannelId id, const std::string& entry_id, const char* reason,
                             const std::string& why, const std::string* event_field, std::function<void()> ack,
                             const runtime::RuntimePtr& under) {
  const runtime::Channel* ch = (under ? under : runtime_)->channel(id);
  if (ch == nullptr) {
    log::host().warn("stream entry {} ({}) for a channel no longer configured: left pending", entry_id, reason);
    return;
  }
  refusals_.streamEntry(*ch, entry_id, reason, why, event_field, std::move(ack));
}

void Pipeline::message(const runtime::RuntimePtr& rt, const runtime::Channel& ch, std::string_view logical,
                       std::string_view redis_channel, std::string_view payload, std::string_view delivery_id,
                       std::function<void()> done, bool redelivered) {
  const ChannelStats& cc = *channel_stats_[ch.id];
  cc.received.inc();
  cc.bytes.observe(static_cast<int64_t>(payload.size()));
  if (options_.trace_events) {
    log::host().info("event stage=received channel={} bytes={}{}{}", redis_channel, payload.size(),
                     delivery_id.empty() ? "" : " id=", delivery_id);
  }
  // Size: refused before it is copied or parsed.
  const uint64_t limit = rt->limits().max_message_bytes;
  if (payload.size() > limit) {
    refusals_.tooLarge(limit, logical, redis_channel, payload, delivery_id, std::move(done));
    return;
  }
  if (ch.verifier) {
    signed_.message(rt, ch, logical, redis_channel, payload, delivery_id, std::move(done), redelivered);
    return;
  }
  decoded(rt, ch, logical, redis_channel, payload, delivery_id, std::move(done), redelivered);
}

void Pipeline::decoded(const runtime::RuntimePtr& rt, const runtime::Channel& ch, std::string_view logical,
                       std::string_view redis_channel, std::string_view payload, std::string_view delivery_id,
                       std::function<void()> done, bool redelivered) {
  const ChannelStats& cc = *channel_stats_[ch.id];
  // Decode.
  decoder_.decode(event::makeMessage(payload, logical, redis_channel, delivery_id, redelivered), items_);
  // A stream entry is acknowledged once every event of it is finished
  // (a single event -- not a BATCH -- needs no counting).
  const bool from_stream = static_cast<bool>(done);
  std::function<void()> one_done;
  if (done && items_.size() == 1) {
    one_done = std::move(done);
  } else if (done) {
    auto remaining = std::make_shared<size_t>(items_.size());
    one_done = [remaining, done] {
      if (--*remaining == 0) {
        done();
      }
    };
  }
  // A single event's callback moves on; a batch member's is shared.
  auto done_for_item = [&]() -> std::function<void()> {
    if (items_.size() == 1) {
      return std::move(one_done);
    }
    return one_done;
  };
  for (auto& item : items_) {
    if (auto* rejected = std::get_if<event::Rejected>(&item)) {
      refusals_.invalid(*rejected, logical, redis_channel, done_for_item());
      continue;
    }
    auto& ev = std::get<event::Event>(item);
    cc.events.inc();
    if (options_.trace_events) {
      log::host().info("event stage=decoded eventId={} correlationId={} eventType={} channel={}", ev.eventId(),
                       ev.correlationId(), ev.eventType(), redis_channel);
    }
    // Checks (verify, validate).
    bool refused = false;
    for (const auto& check : checks_) {
      if (auto refusal = check->check(ev, ch)) {
        refusals_.checkFailed(check->name(), *refusal, ev, done_for_item(), from_stream);
        refused = true;
        break;
      }
    }
    if (refused) {
      continue;
    }
    // Route.
    const route::Targets& targets = ch.routes.route(ev.eventType());
    if (targets.empty()) {
      cc.unrouted.inc();
      log::host().debug("no route for eventType={} eventId={} on {}", ev.eventType(), ev.eventId(), logical);
      if (one_done) {
        one_done();
      }
      continue;
    }
    // Admit: a stream source reads only as much as there is room for (a
    // BATCH may overshoot); Pub/Sub cannot wait, so its excess is refused.
    if (!from_stream && !admission_.admitPubSub()) {
      refusals_.overloaded(ev, logical, dispatcher_.inFlight());
      continue;
    }
    // Dispatch, holding the runtime the targets belong to.
    dispatcher_.dispatch(std::move(ev), targets, done_for_item(), from_stream, rt, &cc.latency);
  }
}

}  // namespace evh::ingest
