// Pub/Sub subscription, resubscription after reconnects, and gap accounting.
#include "redis/subscriber.h"

#include "common/clock.h"
#include "common/log.h"
#include "redis/pubsub_reply.h"

#include <hiredis/hiredis.h>

#include <chrono>
#include <cstring>

namespace evh::redis {
namespace {

// Milliseconds, exported in seconds: a reconnect on loopback takes
// milliseconds; a Redis restart or failover, seconds to minutes.
const ops::Buckets kGapBuckets{{10, 100, 500, 1000, 5000, 10000, 30000, 60000, 300000}, 1e3};

}  // namespace

Subscriber::Subscriber(uv_loop_t* loop, Endpoint endpoint, std::vector<Subscription> subs, Sink sink,
                       ops::Registry& stats)
    : subs_(std::move(subs)),
      stats_(stats),
      gaps_(stats_.counter("evhost_pubsub_gaps_total",
                           "Times the Pub/Sub subscriber was resubscribed after an outage: messages published "
                           "meanwhile are lost")),
      gap_seconds_(stats_.histogram("evhost_pubsub_gap_seconds",
                                    "How long each Pub/Sub gap lasted: from losing the subscription to having it back",
                                    kGapBuckets)),
      cut_offs_(stats_.counter("evhost_pubsub_cut_offs_total",
                               "Outages that began with Redis closing the subscriber for falling behind "
                               "(client-output-buffer-limit pubsub): the messages it held are lost too")),
      sink_(std::move(sink)),
      conn_(loop, std::move(endpoint), "subscriber", Connection::Mode::Subscriber,
            Connection::Handlers{[this] { subscribeAll(); }, [this](const std::string&) { onLost(); },
                                 [this](std::string_view head, uint64_t held) {
                                   if (on_oversize_) {
                                     on_oversize_(head, held);
                                   }
                                 }}),
      resubscribe_backoff_(conn_.endpoint().backoff_initial_ms, conn_.endpoint().backoff_max_ms,
                           conn_.endpoint().backoff_multiplier) {
  conn_.exportStats(stats);
  slots_.reserve(subs_.size());
  for (const auto& s : subs_) {
    const ops::Labels channel{{"channel", s.logical}};
    slots_.push_back(Slot{this,
                          &s,
                          State::Unanswered,
                          {},
                          stats_.counter("evhost_pubsub_messages_total", "Pub/Sub messages received", channel),
                          stats_.gauge("evhost_pubsub_subscribed",
                                       "1 while the subscription is confirmed on the current connection", channel),
                          stats_.gauge("evhost_pubsub_refused", "1 while Redis refuses the subscription", channel)});
  }
  resubscribe_timer_ = makeUvHandle<uv_timer_t>(loop, uv_timer_init);
  resubscribe_timer_->data = this;
}

Subscriber::~Subscriber() { stop(); }

void Subscriber::start() {
  if (outage_start_ms_ == 0) {
    outage_start_ms_ = wallMs();  // nothing is received before the first subscribe
  }
  conn_.start();
}

void Subscriber::stop() {
  uv_timer_stop(resubscribe_timer_.get());
  conn_.stop();
}

std::vector<std::string> Subscriber::notLive(bool with_check) const {
  if (!conn_.ready()) {
    return {"redis subscriber connection (" + conn_.where() + ") is down"};
  }
  std::vector<std::string> out;
  for (const auto& slot : slots_) {
    if (slot.sub->check && !with_check) {
      continue;
    }
    const char* what = slot.sub->pattern ? "pattern subscription " : "subscription ";
    if (slot.state == State::Unanswered) {
      out.push_back(what + slot.sub->redis + " not confirmed yet");
    } else if (slot.state == State::Refused) {
      out.push_back(what + slot.sub->redis + " refused by Redis: " + slot.refusal);
    }
  }
  return out;
}

void Subscriber::setState(Slot& slot, State state) {
  slot.state = state;
  slot.subscribed.set(state == State::Confirmed ? 1 : 0);
  slot.refused.set(state == State::Refused ? 1 : 0);
}

void Subscriber::onLost() {
  answered_ = refused_now_ = 0;
  for (auto& slot : slots_) {
    setState(slot, State::Unanswered);
  }
  uv_timer_stop(resubscribe_timer_.get());
  cut_off_ = conn_.closedByServer();
  paused_when_lost_ = conn_.readingPaused();
  if (outage_start_ms_ == 0) {
    outage_start_ms_ = wallMs();
  }
}

void Subscriber::subscribeAll() {
  answered_ = refused_now_ = 0;
  // One command per subscription, so that each carries its own privdata and
  // a message maps to its subscription without a lookup.
  for (auto& slot : slots_) {
    setState(slot, State::Unanswered);
    if (!conn_.subscribe(slot.sub->pattern, slot.sub->redis, &Subscriber::onReply, &slot)) {
      conn_.reconnect(std::string("could not queue ") + (slot.sub->pattern ? "PSUBSCRIBE" : "SUBSCRIBE"));
      return;
    }
  }
}

void Subscriber::onReply(redisAsyncContext* ac, void* r, void* privdata) {
  auto* slot = static_cast<Slot*>(privdata);
  if (r == nullptr || ac->data == nullptr) {
    return;  // connection going away (reconnect or stop)
  }
  Subscriber* self = slot->owner;
  const PubSubReply reply = classifyPubSub(static_cast<const redisReply*>(r));
  switch (reply.kind) {
    case PubSubReply::Kind::Message:
      slot->messages.inc();
      self->sink_(*slot->sub, reply.channel, reply.payload);
      break;
    case PubSubReply::Kind::Confirmed:
      self->onConfirmed(*slot);
      break;
    case PubSubReply::Kind::Refused:
      self->onRefused(*slot, reply.error);
      break;
    case PubSubReply::Kind::Unexpected:
      log::host().error("redis subscriber: unexpected reply type {} on {}", static_cast<const redisReply*>(r)->type,
                        slot->sub->redis);
      break;
    case PubSubReply::Kind::KeepAlive:
    case PubSubReply::Kind::Other:
      break;
  }
}

void Subscriber::onConfirmed(Slot& slot) {
  const State was = slot.state;
  if (was == State::Confirmed) {
    return;
  }
  setState(slot, State::Confirmed);
  if (!slot.refusal.empty()) {
    log::host().info("subscribed to {} (Redis refused it before: {})", slot.sub->redis, slot.refusal);
    slot.refusal.clear();
  }
  if (was == State::Refused) {
    if (--refused_now_ == 0) {
      uv_timer_stop(resubscribe_timer_.get());
      resubscribe_backoff_.reset();
    }
  } else if (++answered_ == subs_.size()) {
    onAllAnswered();
  }
}

// A refusal is the subscription's own failure, not the connection's: the
// others stay subscribed, and this one is retried alone with backoff -- an
// ACL may be widened later -- and logged again only when the answer changes.
void Subscriber::onRefused(Slot& slot, std::string_view why) {
  const State was = slot.state;
  setState(slot, State::Refused);
  const char* command = slot.sub->pattern ? "PSUBSCRIBE" : "SUBSCRIBE";
  if (slot.refusal != why) {
    slot.refusal = std::string(why);
    log::host().error(
        "redis subscriber ({}): {} {} refused: {}; the other subscriptions stay, and this one is "
        "retried with backoff (logged again only if the answer changes)",
        conn_.where(), command, slot.sub->redis, slot.refusal);
  } else {
    log::host().debug("redis subscriber ({}): {} {} still refused: {}", conn_.where(), command, slot.sub->redis,
                      slot.refusal);
  }
  if (was != State::Refused) {
    ++refused_now_;
  }
  scheduleResubscribe();
  if (was == State::Unanswered && ++answered_ == subs_.size()) {
    onAllAnswered();
  }
}

void Subscriber::scheduleResubscribe() {
  if (uv_is_active(reinterpret_cast<uv_handle_t*>(resubscribe_timer_.get())) != 0) {
    return;
  }
  uv_timer_start(
      resubscribe_timer_.get(),
      [](uv_timer_t* t) {
        auto* self = static_cast<Subscriber*>(t->data);
        for (auto& slot : self->slots_) {
          if (slot.state == State::Refused &&
              !self->conn_.subscribe(slot.sub->pattern, slot.sub->redis, &Subscriber::onReply, &slot)) {
            return;  // not connected: the next connection subscribes everything anew
          }
        }
      },
      resubscribe_backoff_.next(), 0);
}

void Subscriber::onAllAnswered() {
  std::string names;
  std::string refused;
  for (const auto& slot : slots_) {
    if (slot.sub->check) {
      continue;  // evhost's own health channel: not news (its refusal was logged)
    }
    std::string& list = slot.state == State::Confirmed ? names : refused;
    list += (list.empty() ? "" : ", ") + slot.sub->redis;
  }
  if (outage_start_ms_ != 0) {
    logGap();
  }
  // Resubscribed after a connection lost again the same way (see
  // Connection::repeatingLoss): said once already.
  const bool repeat = conn_.repeatingLoss();
  if (refused.empty()) {
    log::host().log(repeat ? spdlog::level::debug : spdlog::level::info, "subscribed to {}", names);
  } else {
    log::host().log(repeat ? spdlog::level::debug : spdlog::level::warn, "subscribed to {}; refused by Redis: {}",
                    names.empty() ? "nothing" : names, refused);
  }
}

void Subscriber::logGap() {
  const uint64_t start_ms = outage_start_ms_;
  const uint64_t end_ms = wallMs();
  std::string names;
  for (const auto& s : subs_) {
    if (!s.check) {
      names += (names.empty() ? "" : ", ") + s.redis;
    }
  }
  outage_start_ms_ = 0;
  if (conn_.outages() == 0) {
    return;  // the first start, not a reconnect
  }
  // A reconnect: Pub/Sub dropped whatever was published in between.
  gaps_.inc();
  gap_seconds_.observe(static_cast<int64_t>(end_ms > start_ms ? end_ms - start_ms : 0));
  std::string cause;
  if (cut_off_ && conn_.attemptsBeforeReady() == 0) {
    // Redis closed the connection yet took the next one at once, so it
    // was not going away. Short of a CLIENT KILL, that is Redis closing a
    // subscriber that falls behind: the output buffer it held for us --
    // messages published before the gap began -- is gone too.
    cut_offs_.inc();
    cause = std::string(
                "; Redis closed the connection and accepted the next at once: it likely cut this subscriber "
                "off for falling behind (client-output-buffer-limit pubsub, default 32mb 8mb 60") +
            (paused_when_lost_ ? "; reading was paused" : "") +
            ") and dropped the messages it held for us, published before this gap began, so events were likely "
            "lost beyond it (if so, Redis logged \"scheduled to be closed ASAP for overcoming of output buffer "
            "limits\"" +
            (conn_.endpoint().tls ? "; over TLS, Redis 7.0 also closes a subscriber whose socket stays full, "
                                    "logging \"Error writing to client: ... bad length\" at loglevel verbose"
                                  : "") +
            "; else a CLIENT KILL closed it)";
  } else if (cut_off_) {
    cause = "; Redis closed the connection and was unreachable for a while (restarted?)";
  }
  cut_off_ = false;
  log::host().log(conn_.repeatingLoss() ? spdlog::level::debug : spdlog::level::warn,
                  "pubsub gap: not subscribed for {} ms (from {} to {} ms since epoch) on {}; "
                  "messages published then are lost{}",
                  end_ms - start_ms, start_ms, end_ms, names, cause);
}

}  // namespace evh::redis
