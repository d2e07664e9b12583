// Consumer-group reading: our own pending entries first, then new ones;
// the group recreated when it disappears; reading paused at capacity.
#include "redis/stream_source.h"

#include "common/log.h"

#include <hiredis/hiredis.h>

#include <cstring>

namespace evh::redis {
namespace {

bool isError(const redisReply* r, const char* prefix) {
  return r != nullptr && r->type == REDIS_REPLY_ERROR && std::strncmp(r->str, prefix, std::strlen(prefix)) == 0;
}

}  // namespace

StreamSource::StreamSource(uv_loop_t* loop, Endpoint endpoint, StreamChannel channel, CommandClient& acks,
                           Sink sink, Capacity capacity)
    : loop_(loop),
      ch_(std::move(channel)),
      acks_(acks),
      sink_(std::move(sink)),
      capacity_(std::move(capacity)),
      conn_(loop, std::move(endpoint), "stream " + ch_.key, Connection::Mode::Commands,
            Connection::Handlers{[this] { ensureGroup(); },
                                 [this](const std::string&) {
                                   // Whatever we were reading is gone with the
                                   // connection; re-read our pending entries on
                                   // the next one (the in-flight set keeps us
                                   // from taking any twice).
                                   reading_ = false;
                                   phase_ = Phase::Idle;
                                 }}) {
  retry_timer_ = makeUvHandle<uv_timer_t>(loop_, uv_timer_init);
  retry_timer_->data = this;
}

StreamSource::~StreamSource() { stop(); }

void StreamSource::start() { conn_.start(); }

void StreamSource::stop() {
  stopped_ = true;
  uv_timer_stop(retry_timer_.get());
  conn_.stop();  // the outstanding XREADGROUP's callback runs with NULL now
}

void StreamSource::ensureGroup() {
  phase_ = Phase::Group;
  reading_ = true;
  const char* argv[] = {"XGROUP", "CREATE", ch_.key.c_str(), ch_.group.c_str(), ch_.from_beginning ? "0" : "$",
                        "MKSTREAM"};
  size_t lens[6];
  for (int i = 0; i < 6; ++i) {
    lens[i] = std::strlen(argv[i]);
  }
  if (!conn_.command(6, argv, lens, &StreamSource::onGroupReply, this)) {
    reading_ = false;
    retryLater(1000);
  }
}

void StreamSource::onGroupReply(redisAsyncContext* /*ac*/, void* r, void* privdata) {
  auto* self = static_cast<StreamSource*>(privdata);
  self->reading_ = false;
  if (r == nullptr || self->stopped_) {
    return;  // connection lost: on_ready starts over
  }
  auto* reply = static_cast<redisReply*>(r);
  if (reply->type == REDIS_REPLY_ERROR && !isError(reply, "BUSYGROUP")) {
    log::host().error("stream {}: cannot create consumer group {}: {}; retrying", self->ch_.key, self->ch_.group,
                      reply->str);
    self->retryLater(1000);
    return;
  }
  if (reply->type != REDIS_REPLY_ERROR) {
    log::host().info("stream {}: created consumer group {} (from {})", self->ch_.key, self->ch_.group,
                     self->ch_.from_beginning ? "the beginning" : "new entries");
  }
  // Our own pending entries first: delivered to us before, never acked.
  self->phase_ = Phase::Pending;
  self->pending_from_ = "0";
  self->read();
}

void StreamSource::retryLater(uint64_t ms) {
  uv_timer_start(
      retry_timer_.get(),
      [](uv_timer_t* t) {
        auto* self = static_cast<StreamSource*>(t->data);
        if (self->stopped_ || !self->conn_.ready()) {
          return;
        }
        if (self->phase_ == Phase::Group || self->phase_ == Phase::Idle) {
          self->ensureGroup();
        } else {
          self->read();
        }
      },
      ms, 0);
}

void StreamSource::resume() {
  if (paused_) {
    paused_ = false;
    read();
  }
}

void StreamSource::read() {
  if (stopped_ || reading_ || !conn_.ready() || (phase_ != Phase::Pending && phase_ != Phase::New)) {
    return;
  }
  size_t room = capacity_();
  if (room == 0) {
    paused_ = true;  // resume() reads again as entries finish
    return;
  }
  const std::string count = std::to_string(std::min<size_t>(room, ch_.count));
  const std::string block = std::to_string(ch_.block_ms);
  const std::string& id = phase_ == Phase::Pending ? pending_from_ : std::string(">");
  const char* argv[] = {"XREADGROUP", "GROUP", ch_.group.c_str(), ch_.consumer.c_str(), "COUNT", count.c_str(),
                        "BLOCK",      block.c_str(), "STREAMS", ch_.key.c_str(), id.c_str()};
  constexpr int kArgs = 11;
  size_t lens[kArgs];
  for (int i = 0; i < kArgs; ++i) {
    lens[i] = std::strlen(argv[i]);
  }
  reading_ = true;
  if (!conn_.command(kArgs, argv, lens, &StreamSource::onReadReply, this)) {
    reading_ = false;
  }
}

void StreamSource::onReadReply(redisAsyncContext* /*ac*/, void* r, void* privdata) {
  auto* self = static_cast<StreamSource*>(privdata);
  self->reading_ = false;
  if (r == nullptr || self->stopped_) {
    return;
  }
  self->onRead(static_cast<const redisReply*>(r));
}

void StreamSource::onRead(const redisReply* reply) {
  if (reply->type == REDIS_REPLY_ERROR) {
    if (isError(reply, "NOGROUP")) {
      log::host().warn("stream {}: consumer group {} is gone ({}); creating it again", ch_.key, ch_.group, reply->str);
      ensureGroup();
      return;
    }
    log::host().error("stream {}: XREADGROUP failed: {}; retrying in 1 s", ch_.key, reply->str);
    retryLater(1000);
    return;
  }
  size_t taken = 0;
  if (reply->type == REDIS_REPLY_ARRAY) {
    // [[key, [[id, [field, value, ...] | nil], ...]]]
    for (size_t s = 0; s < reply->elements; ++s) {
      const redisReply* stream = reply->element[s];
      if (stream->type != REDIS_REPLY_ARRAY || stream->elements < 2 || stream->element[1]->type != REDIS_REPLY_ARRAY) {
        continue;
      }
      const redisReply* entries = stream->element[1];
      for (size_t e = 0; e < entries->elements; ++e) {
        const redisReply* entry = entries->element[e];
        if (entry->type != REDIS_REPLY_ARRAY || entry->elements < 1 || entry->element[0]->type != REDIS_REPLY_STRING) {
          continue;
        }
        std::string id(entry->element[0]->str, entry->element[0]->len);
        ++taken;
        if (phase_ == Phase::Pending) {
          pending_from_ = id;
        }
        if (!in_flight_.insert(id).second) {
          continue;  // still ours from before a reconnect: not twice
        }
        const redisReply* event_field = nullptr;
        if (entry->elements >= 2 && entry->element[1]->type == REDIS_REPLY_ARRAY) {
          const redisReply* fields = entry->element[1];
          for (size_t f = 0; f + 1 < fields->elements; f += 2) {
            const redisReply* name = fields->element[f];
            if (name->type == REDIS_REPLY_STRING && name->len == 5 && std::memcmp(name->str, "event", 5) == 0) {
              event_field = fields->element[f + 1];
              break;
            }
          }
        }
        ++delivered_;
        sink_(ch_, id, event_field);
      }
    }
  }
  if (phase_ == Phase::Pending && taken == 0) {
    phase_ = Phase::New;  // our backlog is done: new entries from now on
  }
  read();
}

void StreamSource::ack(const std::string& id) {
  in_flight_.erase(id);
  ++acked_;
  if (!acks_.send({"XACK", ch_.key, ch_.group, id}, [key = ch_.key, id](evh_status status, const redisReply* r) {
        if (status != EVH_OK || r->type == REDIS_REPLY_ERROR) {
          log::host().warn("stream {}: XACK {} failed ({}); the entry stays pending and will be delivered again",
                           key, id, status != EVH_OK ? "no reply" : r->str);
        }
      })) {
    log::host().warn("stream {}: XACK {} not sent (command connection down); the entry stays pending and will be "
                     "delivered again",
                     ch_.key, id);
  }
  resume();
}

}  // namespace evh::redis
