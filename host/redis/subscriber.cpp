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

const char* commandOf(const Subscription& sub) {
  return sub.sharded ? "SSUBSCRIBE" : sub.pattern ? "PSUBSCRIBE" : "SUBSCRIBE";
}

}  // namespace

Subscriber::Slot::Slot(Subscriber* o, Subscription s, ops::Registry& registry)
    : owner(o),
      sub(std::move(s)),
      scope(std::in_place, registry, ops::Labels{{"channel", sub.logical}}),
      messages(scope->counter("evhost_pubsub_messages_total", "Pub/Sub messages received")),
      subscribed(
          scope->gauge("evhost_pubsub_subscribed", "1 while the subscription is confirmed on the current connection")),
      refused(scope->gauge("evhost_pubsub_refused", "1 while Redis refuses the subscription")) {}

Subscriber::Subscriber(uv_loop_t* loop, Endpoint endpoint, std::vector<Subscription> subs, Sink sink,
                       ops::Registry& stats, std::string name)
    : stats_(stats),
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
      conn_(loop, std::move(endpoint), std::move(name), Connection::Mode::Subscriber,
            Connection::Handlers{[this] { subscribeAll(); }, [this](const std::string&) { onLost(); },
                                 [this](std::string_view head, uint64_t held) {
                                   if (on_oversize_) {
                                     on_oversize_(head, held);
                                   }
                                 }}),
      resubscribe_backoff_(conn_.endpoint().backoff_initial_ms, conn_.endpoint().backoff_max_ms,
                           conn_.endpoint().backoff_multiplier) {
  conn_.exportStats(stats);
  slots_.reserve(subs.size());
  for (auto& s : subs) {
    slots_.push_back(std::make_unique<Slot>(this, std::move(s), stats));
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
  for (const auto& p : slots_) {
    const Slot& slot = *p;
    if (slot.removing || (slot.sub.check && !with_check)) {
      continue;
    }
    const char* what = slot.sub.pattern ? "pattern subscription " : "subscription ";
    if (slot.state == State::Unanswered) {
      out.push_back(what + slot.sub.redis + " not confirmed yet");
    } else if (slot.state == State::Refused) {
      out.push_back(what + slot.sub.redis + " refused by Redis: " + slot.refusal);
    }
  }
  return out;
}

std::vector<Subscription> Subscriber::subscriptions() const {
  std::vector<Subscription> out;
  for (const auto& slot : slots_) {
    if (!slot->removing) {
      out.push_back(slot->sub);
    }
  }
  return out;
}

size_t Subscriber::retiring() const noexcept {
  size_t n = 0;
  for (const auto& slot : slots_) {
    n += slot->removing ? 1 : 0;
  }
  return n;
}

void Subscriber::add(Subscription sub) {
  for (auto& p : slots_) {
    Slot& slot = *p;
    if (slot.sub.pattern == sub.pattern && slot.sub.redis == sub.redis) {
      if (!slot.removing) {
        return;  // already subscribed
      }
      // Removed, its UNSUBSCRIBE maybe still on its way: kept. Its
      // confirmation (onUnsubscribed) subscribes it again; hiredis holds one
      // callback per channel, so this slot stays the one it calls.
      slot.removing = false;
      slot.sub = std::move(sub);
      setState(slot, State::Unanswered);
      if (!slot.unsubscribe_sent && conn_.ready()) {
        subscribeSlot(slot);
      }
      return;
    }
  }
  slots_.push_back(std::make_unique<Slot>(this, std::move(sub), stats_.registry()));
  if (conn_.ready()) {
    subscribeSlot(*slots_.back());  // else the next connection subscribes everything
  }
}

bool Subscriber::remove(bool pattern, const std::string& redis) {
  for (auto& p : slots_) {
    Slot& slot = *p;
    if (slot.removing || slot.sub.pattern != pattern || slot.sub.redis != redis) {
      continue;
    }
    slot.removing = true;
    if (slot.state == State::Refused && refused_now_ > 0) {
      --refused_now_;
    }
    setState(slot, State::Unanswered);
    slot.subscribed.set(0);
    if (!conn_.ready()) {
      freeSlot(slot);  // no connection holds it: the next one never subscribes it
      return true;
    }
    // Sent even when Redis refused the SUBSCRIBE: hiredis keeps the callback
    // of a refused one too, and forgets it only with an unsubscribe reply
    // (Redis answers one for a channel it never subscribed).
    const char* argv[] = {slot.sub.sharded ? "SUNSUBSCRIBE"
                          : pattern        ? "PUNSUBSCRIBE"
                                           : "UNSUBSCRIBE",
                          slot.sub.redis.c_str()};
    const size_t lens[] = {std::strlen(argv[0]), slot.sub.redis.size()};
    // hiredis queues no callback for (P)UNSUBSCRIBE, and SUNSUBSCRIBE goes
    // raw: its reply goes to the subscription's own (onReply with this slot).
    slot.unsubscribe_sent = slot.sub.sharded ? conn_.unsubscribeShard(slot.sub.redis)
                                             : conn_.command(2, argv, lens, &Subscriber::onReply, &slot);
    if (!slot.unsubscribe_sent) {
      log::host().warn("redis subscriber: could not send {} {}; dropping the connection to be rid of it", argv[0],
                       slot.sub.redis);
      conn_.reconnect(std::string("could not queue ") + argv[0]);
    }
    return true;
  }
  return false;
}

void Subscriber::freeSlot(const Slot& slot) {
  for (auto it = slots_.begin(); it != slots_.end(); ++it) {
    if (it->get() == &slot) {
      slots_.erase(it);
      return;
    }
  }
}

void Subscriber::setState(Slot& slot, State state) {
  slot.state = state;
  slot.subscribed.set(state == State::Confirmed ? 1 : 0);
  slot.refused.set(state == State::Refused ? 1 : 0);
}

void Subscriber::onLost() {
  announced_ = false;
  refused_now_ = 0;
  // hiredis has run every callback with NULL by now (the disconnect
  // callback comes last): removed slots go, the others wait for the next
  // connection.
  std::vector<std::unique_ptr<Slot>> kept;
  for (auto& slot : slots_) {
    if (!slot->removing) {
      setState(*slot, State::Unanswered);
      slot->unsubscribe_sent = false;
      kept.push_back(std::move(slot));
    }
  }
  slots_.swap(kept);
  retired_.clear();
  uv_timer_stop(resubscribe_timer_.get());
  cut_off_ = conn_.closedByServer();
  paused_when_lost_ = conn_.readingPaused();
  if (outage_start_ms_ == 0) {
    outage_start_ms_ = wallMs();
  }
}

void Subscriber::subscribeAll() {
  announced_ = false;
  refused_now_ = 0;
  // Removed while no connection was up: never subscribed on this one.
  std::vector<std::unique_ptr<Slot>> kept;
  for (auto& slot : slots_) {
    if (!slot->removing) {
      kept.push_back(std::move(slot));
    }
  }
  slots_.swap(kept);
  // One command per subscription, so that each carries its own privdata and
  // a message maps to its subscription without a lookup.
  for (auto& slot : slots_) {
    setState(*slot, State::Unanswered);
    slot->unsubscribe_sent = false;
    if (!subscribeSlot(*slot)) {
      return;
    }
  }
}

bool Subscriber::subscribeSlot(Slot& slot) {
  if (!conn_.subscribe(slot.sub.kind(), slot.sub.redis, &Subscriber::onReply, &slot)) {
    conn_.reconnect(std::string("could not queue ") + commandOf(slot.sub));
    return false;
  }
  return true;
}

void Subscriber::onReply(redisAsyncContext* ac, void* r, void* privdata) {
  auto* slot = static_cast<Slot*>(privdata);
  if (r == nullptr || ac->data == nullptr || slot->retired) {
    return;  // connection going away (reconnect or stop); a shard channel removed
  }
  Subscriber* self = slot->owner;
  const PubSubReply reply = classifyPubSub(static_cast<const redisReply*>(r));
  switch (reply.kind) {
    case PubSubReply::Kind::Message:
      slot->messages.inc();
      // A removed subscription's too, until Redis confirms the UNSUBSCRIBE:
      // the sink finds its channel gone and counts it.
      self->sink_(slot->sub, reply.channel, reply.payload);
      break;
    case PubSubReply::Kind::Confirmed:
      if (!slot->removing) {
        self->onConfirmed(*slot);
      }
      break;
    case PubSubReply::Kind::Refused:
      if (!slot->removing) {
        self->onRefused(*slot, reply.error);
      }
      break;
    case PubSubReply::Kind::Unsubscribed:
      self->onUnsubscribed(*slot);  // may free the slot: the last use of it
      break;
    case PubSubReply::Kind::Unexpected:
      log::host().error("redis subscriber: unexpected reply type {} on {}", static_cast<const redisReply*>(r)->type,
                        slot->sub.redis);
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
    log::host().info("subscribed to {} (Redis refused it before: {})", slot.sub.redis, slot.refusal);
    slot.refusal.clear();
  }
  if (was == State::Refused) {
    if (refused_now_ > 0 && --refused_now_ == 0) {
      uv_timer_stop(resubscribe_timer_.get());
      resubscribe_backoff_.reset();
    }
  } else {
    onAnswered(slot);
  }
}

// Redis confirmed a (P|S)UNSUBSCRIBE, and hiredis has forgotten the slot's
// callback: a removed slot goes (a shard channel's is retired: hiredis
// keeps its callback). One added back meanwhile is subscribed anew (its
// confirmation comes to this same slot). A shard channel that was not
// removed lost its slot to another node: Redis unsubscribed it itself.
void Subscriber::onUnsubscribed(Slot& slot) {
  const bool asked = slot.unsubscribe_sent;
  slot.unsubscribe_sent = false;
  if (slot.removing) {
    log::host().info("unsubscribed from {}{}", slot.sub.pattern ? "pattern " : "", slot.sub.redis);
    if (slot.sub.sharded) {
      for (auto it = slots_.begin(); it != slots_.end(); ++it) {
        if (it->get() == &slot) {
          slot.retired = true;
          slot.messages = {};
          slot.subscribed = {};
          slot.refused = {};
          slot.scope.reset();  // its series go now, as a classic channel's do
          retired_.push_back(std::move(*it));
          slots_.erase(it);
          break;
        }
      }
      return;
    }
    freeSlot(slot);
    return;
  }
  if (slot.sub.sharded && !asked) {
    log::host().warn(
        "redis subscriber ({}): Redis unsubscribed shard channel {} (its slot moved to another node); "
        "subscribing again, to be sent to the slot's new master -- messages published there meanwhile are lost",
        conn_.where(), slot.sub.redis);
  }
  setState(slot, State::Unanswered);
  subscribeSlot(slot);
}

void Subscriber::onAnswered(const Slot& slot) {
  if (!announced_) {
    if (allAnswered()) {
      announced_ = true;
      onAllAnswered();
    }
    return;
  }
  // Added (by a reload) once the others were answered: said on its own.
  if (!slot.sub.check && slot.state == State::Confirmed) {
    log::host().info("subscribed to {}", slot.sub.redis);
  }
}

bool Subscriber::allAnswered() const {
  for (const auto& slot : slots_) {
    if (!slot->removing && slot->state == State::Unanswered) {
      return false;
    }
  }
  return true;
}

// A refusal is the subscription's own failure, not the connection's: the
// others stay subscribed, and this one is retried alone with backoff -- an
// ACL may be widened later -- and logged again only when the answer changes.
void Subscriber::onRefused(Slot& slot, std::string_view why) {
  const State was = slot.state;
  setState(slot, State::Refused);
  const char* command = commandOf(slot.sub);
  if (slot.sub.sharded && conn_.redirected(why)) {
    // A cluster's MOVED: the connection moves to the slot's master and
    // subscribes everything there. ASK (the slot migrating): asked again
    // with backoff until the migration ends.
    log::host().info("redis subscriber ({}): {} {}: the cluster says {}; following", conn_.where(), command,
                     slot.sub.redis, why);
    slot.refusal = std::string(why);
  } else if (slot.refusal != why) {
    slot.refusal = std::string(why);
    log::host().error(
        "redis subscriber ({}): {} {} refused: {}; the other subscriptions stay, and this one is "
        "retried with backoff (logged again only if the answer changes)",
        conn_.where(), command, slot.sub.redis, slot.refusal);
  } else {
    log::host().debug("redis subscriber ({}): {} {} still refused: {}", conn_.where(), command, slot.sub.redis,
                      slot.refusal);
  }
  if (was != State::Refused) {
    ++refused_now_;
  }
  scheduleResubscribe();
  if (was == State::Unanswered) {
    onAnswered(slot);
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
          if (slot->state == State::Refused && !slot->removing &&
              !self->conn_.subscribe(slot->sub.kind(), slot->sub.redis, &Subscriber::onReply, slot.get())) {
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
    if (slot->sub.check || slot->removing) {
      continue;  // evhost's own health channel: not news (its refusal was logged)
    }
    std::string& list = slot->state == State::Confirmed ? names : refused;
    list += (list.empty() ? "" : ", ") + slot->sub.redis;
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
  for (const auto& slot : slots_) {
    if (!slot->sub.check && !slot->removing) {
      names += (names.empty() ? "" : ", ") + slot->sub.redis;
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
