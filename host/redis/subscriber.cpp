// Pub/Sub subscription, resubscription after reconnects, and gap accounting.
#include "redis/subscriber.h"

#include "common/log.h"

#include <hiredis/hiredis.h>

#include <chrono>
#include <cstring>

namespace evh::redis {
namespace {

uint64_t wallMs() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

std::string_view sv(const redisReply* r) { return std::string_view(r->str, r->len); }

}  // namespace

Subscriber::Subscriber(uv_loop_t* loop, Endpoint endpoint, std::vector<Subscription> subs, Sink sink)
    : subs_(std::move(subs)),
      sink_(std::move(sink)),
      conn_(loop, std::move(endpoint), "subscriber", Connection::Mode::Subscriber,
            Connection::Handlers{[this] { subscribeAll(); },
                                 [this](const std::string&) {
                                   confirmed_ = 0;
                                   if (outage_start_ms_ == 0) {
                                     outage_start_ms_ = wallMs();
                                   }
                                 }}) {
  slots_.reserve(subs_.size());
  for (const auto& s : subs_) {
    slots_.push_back(Slot{this, &s});
  }
}

Subscriber::~Subscriber() { stop(); }

void Subscriber::start() {
  if (outage_start_ms_ == 0) {
    outage_start_ms_ = wallMs();  // nothing is received before the first subscribe
  }
  conn_.start();
}

void Subscriber::stop() { conn_.stop(); }

void Subscriber::subscribeAll() {
  confirmed_ = 0;
  // One command per subscription, so that each carries its own privdata and
  // a message maps to its subscription without a lookup.
  for (auto& slot : slots_) {
    const char* argv[] = {slot.sub->pattern ? "PSUBSCRIBE" : "SUBSCRIBE", slot.sub->redis.c_str()};
    const size_t lens[] = {std::strlen(argv[0]), slot.sub->redis.size()};
    if (!conn_.command(2, argv, lens, &Subscriber::onReply, &slot)) {
      conn_.reconnect("could not queue " + std::string(argv[0]));
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
  auto* reply = static_cast<redisReply*>(r);
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2 || reply->element[0]->type != REDIS_REPLY_STRING) {
    log::host().error("redis subscriber: unexpected reply type {} on {}", reply->type, slot->sub->redis);
    return;
  }
  std::string_view kind = sv(reply->element[0]);
  if (kind == "pong") {
    // hiredis 0.14 hands the reply to our raw keep-alive PING (see
    // Connection::sendPing) to whichever callback ran last: not a message.
    return;
  }
  if (kind == "message" && reply->elements == 3) {
    ++self->messages_;
    self->sink_(*slot->sub, sv(reply->element[1]), sv(reply->element[2]));
  } else if (kind == "pmessage" && reply->elements == 4) {
    ++self->messages_;
    self->sink_(*slot->sub, sv(reply->element[2]), sv(reply->element[3]));
  } else if ((kind == "subscribe" || kind == "psubscribe") && reply->elements == 3) {
    if (++self->confirmed_ == self->subs_.size()) {
      std::string names;
      for (const auto& s : self->subs_) {
        names += (names.empty() ? "" : ", ") + s.redis;
      }
      if (self->outage_start_ms_ != 0) {
        Gap gap{self->outage_start_ms_, wallMs(), {}};
        for (const auto& s : self->subs_) {
          gap.channels.push_back(s.redis);
        }
        self->outage_start_ms_ = 0;
        if (self->conn_.outages() > 0) {
          // A reconnect, not the first start: Pub/Sub dropped whatever was
          // published in between.
          ++self->gaps_;
          log::host().warn("pubsub gap: not subscribed for {} ms (from {} to {} ms since epoch) on {}; "
                           "messages published then are lost",
                           gap.end_ms - gap.start_ms, gap.start_ms, gap.end_ms, names);
          if (self->on_gap) {
            self->on_gap(gap);
          }
        }
      }
      log::host().info("subscribed to {}", names);
    }
  }
}

}  // namespace evh::redis
