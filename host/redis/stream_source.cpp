// Consumer-group reading: our own pending entries first, then new ones;
// the group recreated when it disappears; reading paused at capacity.
#include "redis/stream_source.h"

#include "common/log.h"

#include <hiredis/hiredis.h>

#include <chrono>
#include <cstdlib>
#include <cstring>

namespace evh::redis {
namespace {

bool isError(const redisReply* r, const char* prefix) {
  return r != nullptr && r->type == REDIS_REPLY_ERROR && std::strncmp(r->str, prefix, std::strlen(prefix)) == 0;
}

}  // namespace

StreamSource::StreamSource(uv_loop_t* loop, Endpoint endpoint, StreamChannel channel, CommandClient& acks,
                           Sink sink, Capacity capacity, Reject reject)
    : loop_(loop),
      ch_(std::move(channel)),
      acks_(acks),
      sink_(std::move(sink)),
      capacity_(std::move(capacity)),
      reject_(std::move(reject)),
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
  claim_timer_ = makeUvHandle<uv_timer_t>(loop_, uv_timer_init);
  trim_timer_ = makeUvHandle<uv_timer_t>(loop_, uv_timer_init);
  for (auto* t : {retry_timer_.get(), claim_timer_.get(), trim_timer_.get()}) {
    t->data = this;
  }
  ack_flush_ = makeUvHandle<uv_prepare_t>(loop_, uv_prepare_init);
  ack_flush_->data = this;
}

StreamSource::~StreamSource() {
  stop();
  *alive_ = false;
}

void StreamSource::start() {
  conn_.start();
  // The claim tick also retries acknowledgements that could not be sent,
  // so it runs even when claiming is off.
  const uint64_t tick = ch_.claim_interval_ms > 0 ? ch_.claim_interval_ms : 1000;
  uv_timer_start(
      claim_timer_.get(), [](uv_timer_t* t) { static_cast<StreamSource*>(t->data)->claim(); }, tick, tick);
  if (ch_.trim_maxlen > 0 || ch_.trim_max_age_ms > 0) {
    uv_timer_start(
        trim_timer_.get(), [](uv_timer_t* t) { static_cast<StreamSource*>(t->data)->trim(); },
        ch_.trim_interval_ms, ch_.trim_interval_ms);
  }
}

void StreamSource::stop() {
  stopped_ = true;
  uv_timer_stop(retry_timer_.get());
  uv_timer_stop(claim_timer_.get());
  uv_timer_stop(trim_timer_.get());
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
  // Wait for min_room only while entries of ours are in flight: their acks
  // will look again. With none, any room will do (or this stream could
  // starve behind busier ones).
  if (room == 0 || (room < ch_.min_room && !in_flight_.empty())) {
    paused_ = true;  // resume() reads again as entries finish (or the claim tick)
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
  // Entries handled inline while the last read's reply was processed are
  // acknowledged right here, ahead of the read, on the same connection.
  pipelineAcks();
  reading_ = true;
  if (!conn_.command(kArgs, argv, lens, &StreamSource::onReadReply, this)) {
    reading_ = false;
  }
}

namespace {
struct PipelinedAcks {
  StreamSource* source;
  std::weak_ptr<bool> alive;
  std::vector<std::string> ids;
};
}  // namespace

bool StreamSource::pipelineAcks() {
  if (ack_batch_.empty()) {
    return false;
  }
  auto batch = std::make_unique<PipelinedAcks>(PipelinedAcks{this, alive_, {}});
  batch->ids.swap(ack_batch_);
  std::vector<const char*> argv = {"XACK", ch_.key.c_str(), ch_.group.c_str()};
  std::vector<size_t> lens = {4, ch_.key.size(), ch_.group.size()};
  for (const auto& id : batch->ids) {
    argv.push_back(id.c_str());
    lens.push_back(id.size());
  }
  if (!conn_.command(static_cast<int>(argv.size()), argv.data(), lens.data(), &StreamSource::onPipelinedAckReply,
                     batch.get())) {
    ack_batch_.swap(batch->ids);  // the command connection's turn (uv_prepare)
    return false;
  }
  batch.release();  // owned by the callback now
  uv_prepare_stop(ack_flush_.get());
  return true;
}

void StreamSource::onPipelinedAckReply(redisAsyncContext* /*ac*/, void* r, void* privdata) {
  std::unique_ptr<PipelinedAcks> batch(static_cast<PipelinedAcks*>(privdata));
  if (batch->alive.expired() || !*batch->alive.lock()) {
    return;
  }
  StreamSource* self = batch->source;
  const auto* reply = static_cast<const redisReply*>(r);
  if (reply != nullptr && reply->type != REDIS_REPLY_ERROR) {
    self->ackConfirmed(batch->ids);
    return;
  }
  // The reading connection went down (or Redis refused): the command
  // connection retries them -- with the next claim tick, or at retire() when
  // this is evhost stopping (which closes the reading connection first).
  if (!self->stopped_) {
    log::host().warn("stream {}: XACK of {} entr{} failed ({}); retrying", self->ch_.key, batch->ids.size(),
                     batch->ids.size() == 1 ? "y" : "ies", reply == nullptr ? "connection lost" : reply->str);
  }
  self->ack_retry_.insert(self->ack_retry_.end(), batch->ids.begin(), batch->ids.end());
}

void StreamSource::ackConfirmed(const std::vector<std::string>& ids) {
  for (const auto& id : ids) {
    in_flight_.erase(id);
  }
  resume();  // with none of ours left in flight, any room will do
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
        // Our own pending entries were delivered before: count them.
        take(id, entry->elements >= 2 ? entry->element[1] : nullptr, phase_ == Phase::Pending);
      }
    }
  }
  if (phase_ == Phase::Pending && taken == 0) {
    phase_ = Phase::New;  // our backlog is done: new entries from now on
  }
  read();
}

void StreamSource::take(const std::string& id, const redisReply* fields, bool check_deliveries) {
  if (!in_flight_.insert(id).second) {
    return;  // still ours (from before a reconnect, or claimed back): not twice
  }
  // The "event" field, read in place from the reply (valid during this
  // callback); copied only when the hand-over waits for XPENDING below.
  std::string_view field;
  bool has_field = false;
  if (fields != nullptr && fields->type == REDIS_REPLY_ARRAY) {
    for (size_t f = 0; f + 1 < fields->elements; f += 2) {
      const redisReply* name = fields->element[f];
      const redisReply* value = fields->element[f + 1];
      if (name->type == REDIS_REPLY_STRING && name->len == 5 && std::memcmp(name->str, "event", 5) == 0 &&
          value->type == REDIS_REPLY_STRING) {
        field = std::string_view(value->str, value->len);
        has_field = true;
        break;
      }
    }
  }
  if (!check_deliveries) {
    hand(id, has_field ? &field : nullptr, false);
    return;
  }
  std::shared_ptr<std::string> event_field;
  if (has_field) {
    event_field = std::make_shared<std::string>(field);
  }
  // How often was it delivered? An entry that keeps failing (or crashing
  // evhost) is poison: dead-letter it instead of delivering it for ever.
  std::weak_ptr<bool> alive = alive_;
  const bool sent = acks_.send(
      {"XPENDING", ch_.key, ch_.group, id, id, "1"},
      [this, alive, id, event_field](evh_status status, const redisReply* r) {
        if (alive.expired() || !*alive.lock() || stopped_) {
          return;  // stopping: the entry stays pending, delivered again later
        }
        long long deliveries = 0;
        if (status == EVH_OK && r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
            r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements >= 4) {
          deliveries = r->element[0]->element[3]->integer;
        }
        if (deliveries > static_cast<long long>(ch_.max_deliveries)) {
          ++poisoned_;
          reject_(ch_, id, "poison",
                  "delivered " + std::to_string(deliveries) + " times (stream.max_deliveries=" +
                      std::to_string(ch_.max_deliveries) + ")",
                  event_field.get());
          return;
        }
        handCopy(id, event_field.get(), true);
      });
  if (!sent) {
    handCopy(id, event_field.get(), true);  // cannot count now: deliver (at least once)
  }
}

void StreamSource::handCopy(const std::string& id, const std::string* event_field, bool redelivered) {
  if (event_field == nullptr) {
    hand(id, nullptr, redelivered);
    return;
  }
  const std::string_view view(*event_field);
  hand(id, &view, redelivered);
}

void StreamSource::hand(const std::string& id, const std::string_view* event_field, bool redelivered) {
  ++delivered_;
  sink_(ch_, id, event_field, redelivered);
}

void StreamSource::claim() {
  retryAcks();
  // Room may have come from other channels' events finishing, which do not
  // call resume(): look again on every tick.
  resume();
  if (ch_.claim_interval_ms == 0 || stopped_ || claiming_ || !acks_.ready() || phase_ != Phase::New) {
    return;
  }
  const size_t room = std::min<size_t>(capacity_(), ch_.count);
  if (room == 0) {
    return;
  }
  claiming_ = true;
  std::weak_ptr<bool> alive = alive_;
  const bool sent = acks_.send({"XAUTOCLAIM", ch_.key, ch_.group, ch_.consumer, std::to_string(ch_.claim_idle_ms),
                                claim_cursor_, "COUNT", std::to_string(room)},
                               [this, alive](evh_status status, const redisReply* r) {
                                 if (alive.expired() || !*alive.lock()) {
                                   return;
                                 }
                                 claiming_ = false;
                                 if (status == EVH_OK) {
                                   onClaimed(r);
                                 }
                               });
  if (!sent) {
    claiming_ = false;
  }
}

void StreamSource::onClaimed(const redisReply* reply) {
  if (reply->type == REDIS_REPLY_ERROR) {
    if (!isError(reply, "NOGROUP")) {  // NOGROUP: the reader recreates it
      log::host().warn("stream {}: XAUTOCLAIM failed: {}", ch_.key, reply->str);
    }
    return;
  }
  // [next-cursor, [[id, fields], ...], [deleted ids]] (Redis 7)
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2) {
    return;
  }
  if (reply->element[0]->type == REDIS_REPLY_STRING) {
    claim_cursor_.assign(reply->element[0]->str, reply->element[0]->len);
  }
  const redisReply* entries = reply->element[1];
  size_t claimed_now = 0;
  for (size_t e = 0; entries->type == REDIS_REPLY_ARRAY && e < entries->elements; ++e) {
    const redisReply* entry = entries->element[e];
    if (entry->type != REDIS_REPLY_ARRAY || entry->elements < 1 || entry->element[0]->type != REDIS_REPLY_STRING) {
      continue;
    }
    std::string id(entry->element[0]->str, entry->element[0]->len);
    if (in_flight_.count(id) != 0) {
      continue;  // ours and still being handled: never taken twice
    }
    ++claimed_;
    ++claimed_now;
    take(id, entry->elements >= 2 ? entry->element[1] : nullptr, true);
  }
  // Entries whose payload was trimmed away before anyone handled them: Redis
  // already dropped them from the pending list; they still get an entry.
  if (reply->elements >= 3 && reply->element[2]->type == REDIS_REPLY_ARRAY) {
    const redisReply* deleted = reply->element[2];
    for (size_t i = 0; i < deleted->elements; ++i) {
      std::string id(deleted->element[i]->str, deleted->element[i]->len);
      if (in_flight_.insert(id).second) {
        reject_(ch_, id, "trimmed", "the entry was trimmed from the stream before it was handled", nullptr);
      }
    }
  }
  if (claimed_now > 0) {
    log::host().info("stream {}: claimed {} entr{} pending for over {} ms", ch_.key, claimed_now,
                     claimed_now == 1 ? "y" : "ies", ch_.claim_idle_ms);
  }
  refreshPending();
}

void StreamSource::refreshPending() {
  std::weak_ptr<bool> alive = alive_;
  acks_.send({"XPENDING", ch_.key, ch_.group}, [this, alive](evh_status status, const redisReply* r) {
    if (alive.expired() || !*alive.lock() || status != EVH_OK || r->type != REDIS_REPLY_ARRAY || r->elements < 2) {
      return;
    }
    pending_count_ = r->element[0]->type == REDIS_REPLY_INTEGER ? static_cast<uint64_t>(r->element[0]->integer) : 0;
    oldest_pending_age_ms_ = 0;
    if (pending_count_ > 0 && r->element[1]->type == REDIS_REPLY_STRING) {
      // An entry id starts with its creation time in ms.
      uint64_t created = std::strtoull(r->element[1]->str, nullptr, 10);
      uint64_t now = static_cast<uint64_t>(
          std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
              .count());
      oldest_pending_age_ms_ = now > created ? now - created : 0;
    }
  });
}

// Stream ids compare as (ms, seq) pairs.
namespace {
std::pair<uint64_t, uint64_t> parseId(const std::string& id) {
  char* end = nullptr;
  uint64_t ms = std::strtoull(id.c_str(), &end, 10);
  uint64_t seq = (end != nullptr && *end == '-') ? std::strtoull(end + 1, nullptr, 10) : 0;
  return {ms, seq};
}
}  // namespace

// Keeps about trim_maxlen entries -- but never trims an entry a consumer
// group has not been handed yet, or one still pending in ours: trimming
// those would lose events. So: XINFO GROUPS gives each group's
// last-delivered id, XPENDING our oldest pending one, XREVRANGE the id that
// keeps trim_maxlen entries; XTRIM MINID ~ trims below the smallest.
void StreamSource::trim() {
  if (stopped_ || trimming_ || !acks_.ready()) {
    return;
  }
  trimming_ = true;
  std::weak_ptr<bool> alive = alive_;
  auto fail = [this, alive] {
    if (!alive.expired() && *alive.lock()) {
      trimming_ = false;
    }
  };
  const bool sent = acks_.send({"XINFO", "GROUPS", ch_.key}, [this, alive, fail](evh_status st, const redisReply* r) {
    if (alive.expired() || !*alive.lock()) {
      return;
    }
    if (st != EVH_OK || r->type != REDIS_REPLY_ARRAY) {
      fail();
      return;
    }
    std::string safe;  // the smallest last-delivered id of every group
    for (size_t g = 0; g < r->elements; ++g) {
      const redisReply* group = r->element[g];
      for (size_t k = 0; group->type == REDIS_REPLY_ARRAY && k + 1 < group->elements; k += 2) {
        if (group->element[k]->type == REDIS_REPLY_STRING && std::strcmp(group->element[k]->str, "last-delivered-id") == 0 &&
            group->element[k + 1]->type == REDIS_REPLY_STRING) {
          std::string id(group->element[k + 1]->str, group->element[k + 1]->len);
          if (safe.empty() || parseId(id) < parseId(safe)) {
            safe = id;
          }
        }
      }
    }
    if (safe.empty()) {
      fail();
      return;
    }
    acks_.send({"XPENDING", ch_.key, ch_.group}, [this, alive, safe](evh_status st2, const redisReply* p) {
      if (alive.expired() || !*alive.lock()) {
        return;
      }
      std::string limit = safe;
      if (st2 == EVH_OK && p->type == REDIS_REPLY_ARRAY && p->elements >= 2 && p->element[1]->type == REDIS_REPLY_STRING) {
        std::string oldest(p->element[1]->str, p->element[1]->len);
        if (parseId(oldest) < parseId(limit)) {
          limit = oldest;
        }
      }
      trimBelow(limit);
    });
  });
  if (!sent) {
    trimming_ = false;
  }
}

// Trims below the id that the length and age bounds ask for (the stricter
// of the two), but never above `safe`.
void StreamSource::trimBelow(const std::string& safe) {
  auto finish = [this, safe](std::string want) {
    trimming_ = false;
    if (want.empty()) {
      return;
    }
    const std::string minid = parseId(want) < parseId(safe) ? want : safe;
    acks_.send({"XTRIM", ch_.key, "MINID", "~", minid}, [key = ch_.key](evh_status s4, const redisReply* t) {
      if (s4 == EVH_OK && t->type == REDIS_REPLY_ERROR) {
        log::host().warn("stream {}: XTRIM failed: {}", key, t->str);
      }
    });
  };
  std::string by_age;
  if (ch_.trim_max_age_ms > 0) {
    const uint64_t now = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
    if (now > ch_.trim_max_age_ms) {
      by_age = std::to_string(now - ch_.trim_max_age_ms) + "-0";
    }
  }
  if (ch_.trim_maxlen == 0) {
    finish(by_age);
    return;
  }
  std::weak_ptr<bool> alive = alive_;
  const bool sent = acks_.send(
      {"XREVRANGE", ch_.key, "+", "-", "COUNT", std::to_string(ch_.trim_maxlen)},
      [this, alive, by_age, finish](evh_status st, const redisReply* rr) {
        if (alive.expired() || !*alive.lock()) {
          return;
        }
        std::string want = by_age;
        if (st == EVH_OK && rr->type == REDIS_REPLY_ARRAY && rr->elements >= static_cast<size_t>(ch_.trim_maxlen) &&
            rr->elements > 0) {
          const redisReply* last = rr->element[rr->elements - 1];
          if (last->type == REDIS_REPLY_ARRAY && last->elements >= 1) {
            std::string keep_from(last->element[0]->str, last->element[0]->len);
            if (want.empty() || parseId(want) < parseId(keep_from)) {
              want = keep_from;  // the length bound trims more
            }
          }
        }
        finish(want);
      });
  if (!sent) {
    trimming_ = false;
  }
}

void StreamSource::retire() {
  flushAcks();
  retryAcks();
  std::weak_ptr<bool> alive = alive_;
  acks_.send({"XPENDING", ch_.key, ch_.group, "-", "+", "1", ch_.consumer},
             [this, alive](evh_status status, const redisReply* r) {
               if (alive.expired() || !*alive.lock() || status != EVH_OK || r->type != REDIS_REPLY_ARRAY) {
                 return;
               }
               if (r->elements != 0) {
                 log::host().info("stream {}: consumer {} keeps its pending entries for its next start", ch_.key,
                                  ch_.consumer);
                 return;
               }
               acks_.send({"XGROUP", "DELCONSUMER", ch_.key, ch_.group, ch_.consumer},
                          [key = ch_.key, consumer = ch_.consumer](evh_status s2, const redisReply* r2) {
                            if (s2 == EVH_OK && r2->type == REDIS_REPLY_INTEGER) {
                              log::host().info("stream {}: consumer {} removed from its group (nothing pending)", key,
                                               consumer);
                            }
                          });
             });
}

void StreamSource::ack(const std::string& id) {
  ++acked_;
  // A read of `count` entries handled inline acks them all within one
  // callback: one XACK for all of them instead of one each.
  constexpr size_t kAckBatch = 1000;
  ack_batch_.push_back(id);
  if (ack_batch_.size() >= kAckBatch) {
    flushAcks();
  } else if (ack_batch_.size() == 1) {
    uv_prepare_start(ack_flush_.get(), [](uv_prepare_t* h) { static_cast<StreamSource*>(h->data)->flushAcks(); });
  }
  resume();
}

void StreamSource::flushAcks() {
  uv_prepare_stop(ack_flush_.get());
  if (ack_batch_.empty()) {
    return;
  }
  std::vector<std::string> ids;
  ids.swap(ack_batch_);
  sendAcks(std::move(ids));
}

// XACKs `ids` in one command. The ids stay in the in-flight set until
// Redis confirms, so a re-read of our pending entries (after a reconnect)
// never hands them over again; an ack that could not be sent is retried
// with the next claim tick instead of leaving the entry pending for a claim.
void StreamSource::sendAcks(std::vector<std::string> ids) {
  std::vector<std::string> argv = {"XACK", ch_.key, ch_.group};
  argv.insert(argv.end(), ids.begin(), ids.end());
  std::weak_ptr<bool> alive = alive_;
  auto shared_ids = std::make_shared<std::vector<std::string>>(std::move(ids));
  const bool sent = acks_.send(argv, [this, alive, shared_ids](evh_status status, const redisReply* r) {
    if (alive.expired() || !*alive.lock()) {
      return;
    }
    if (status == EVH_OK && r->type != REDIS_REPLY_ERROR) {
      ackConfirmed(*shared_ids);
      return;
    }
    log::host().warn("stream {}: XACK of {} entr{} failed ({}); retrying", ch_.key, shared_ids->size(),
                     shared_ids->size() == 1 ? "y" : "ies", status != EVH_OK ? "no reply" : r->str);
    ack_retry_.insert(ack_retry_.end(), shared_ids->begin(), shared_ids->end());
  });
  if (!sent) {
    if (ack_retry_.empty()) {
      log::host().warn("stream {}: command connection down: acknowledgements wait for it", ch_.key);
    }
    ack_retry_.insert(ack_retry_.end(), shared_ids->begin(), shared_ids->end());
  }
}

void StreamSource::retryAcks() {
  if (ack_retry_.empty() || !acks_.ready()) {
    return;
  }
  std::vector<std::string> ids;
  ids.swap(ack_retry_);
  sendAcks(std::move(ids));
}

}  // namespace evh::redis
