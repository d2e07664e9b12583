// Consumer-group reading: the group (recreated when it disappears), new
// entries, acknowledgements; reading paused at capacity. Taking back entries
// delivered before is stream_recovery.cpp, trimming stream_trim.cpp.
#include "redis/stream_source.h"

#include "common/log.h"
#include "redis/stream_id.h"

#include <hiredis/hiredis.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace evh::redis {

namespace {

// One entry may cost at most about twice max_message_bytes while read: a
// larger one is refused from its length (onOversize), never read whole.
Endpoint withItemBound(Endpoint e) {
  e.max_item_bytes = 2 * e.max_message_bytes + kReplyFramingBytes;
  return e;
}

ops::Counter rejectedCounter(ops::Scope& stats, const char* reason) {
  return stats.counter("evhost_stream_rejected_total",
                       "Stream entries dead-lettered instead of handed over: delivered stream.max_deliveries times "
                       "(poison), trimmed before being handled, or too large to read",
                       {{"reason", reason}});
}

}  // namespace

StreamSource::StreamSource(uv_loop_t* loop, Endpoint endpoint, StreamChannel channel, CommandClient& acks, Sink sink,
                           Capacity capacity, Reject reject, ops::Registry& stats)
    : loop_(loop),
      ch_(std::move(channel)),
      stats_(stats, {{"channel", ch_.logical}, {"group", ch_.group}}),
      delivered_(stats_.counter("evhost_stream_delivered_total",
                                "Stream entries handed over to be handled (new, or delivered before)")),
      redelivered_(stats_.counter("evhost_stream_redelivered_total",
                                  "Stream entries handed over that were delivered before (taken back after a "
                                  "restart or reconnect, or claimed)")),
      acked_(stats_.counter("evhost_stream_acked_total", "Stream entries whose XACK Redis confirmed")),
      ack_retries_(stats_.counter("evhost_stream_ack_retries_total",
                                  "Stream entry acknowledgements that failed or could not be sent yet, sent again")),
      claimed_(stats_.counter("evhost_stream_claimed_total",
                              "Stream entries claimed from consumers idle for over stream.claim_idle_ms")),
      poisoned_(rejectedCounter(stats_, "poison")),
      trimmed_(rejectedCounter(stats_, "trimmed")),
      too_large_(rejectedCounter(stats_, "too_large")),
      acks_(acks),
      sink_(std::move(sink)),
      capacity_(std::move(capacity)),
      reject_(std::move(reject)),
      conn_(loop, withItemBound(std::move(endpoint)), "stream " + ch_.key, Connection::Mode::Commands,
            Connection::Handlers{[this] { ensureGroup(); },
                                 [this](const std::string&) {
                                   // Whatever we were reading is gone with the
                                   // connection; re-read our pending entries on
                                   // the next one (the in-flight set keeps us
                                   // from taking any twice).
                                   reading_ = false;
                                   phase_ = Phase::Idle;
                                 },
                                 [this](std::string_view head, uint64_t bytes) { onOversize(head, bytes); }}) {
  retry_timer_ = makeUvHandle<uv_timer_t>(loop_, uv_timer_init);
  claim_timer_ = makeUvHandle<uv_timer_t>(loop_, uv_timer_init);
  trim_timer_ = makeUvHandle<uv_timer_t>(loop_, uv_timer_init);
  recover_timer_ = makeUvHandle<uv_timer_t>(loop_, uv_timer_init);
  drain_timer_ = makeUvHandle<uv_timer_t>(loop_, uv_timer_init);
  for (auto* t :
       {retry_timer_.get(), claim_timer_.get(), trim_timer_.get(), recover_timer_.get(), drain_timer_.get()}) {
    t->data = this;
  }
  ack_flush_ = makeUvHandle<uv_prepare_t>(loop_, uv_prepare_init);
  ack_flush_->data = this;
  conn_.exportStats(stats);
  stats_.computedGauge("evhost_stream_in_flight", "Stream entries handed over and not acknowledged yet",
                       [this] { return static_cast<double>(in_flight_.size()); });
  backlog_pending_ = backlog_lag_ = backlog_oldest_age_s_ = std::nan("");
  stats_.computedGauge("evhost_stream_pending",
                       "entries delivered to the group's consumers and not acknowledged (XINFO GROUPS pending)",
                       [this] { return backlog_pending_; });
  stats_.computedGauge("evhost_stream_lag", "entries in the stream not yet delivered to the group (XINFO GROUPS lag)",
                       [this] { return backlog_lag_; });
  stats_.computedGauge("evhost_stream_oldest_pending_age_seconds",
                       "age of the oldest pending entry of the group, from its id's time; 0 when none is pending",
                       [this] { return backlog_oldest_age_s_; });
}

StreamSource::~StreamSource() {
  stats_.clear();  // before in_flight_ goes
  stop();
  *alive_ = false;
}

void StreamSource::reconfigure(Endpoint endpoint) { conn_.reconfigure(withItemBound(std::move(endpoint))); }

void StreamSource::start() {
  started_ = true;
  conn_.start();
  // The claim tick also retries acknowledgements that could not be sent,
  // so it runs even when claiming is off.
  const uint64_t tick = ch_.claim_interval_ms > 0 ? ch_.claim_interval_ms : 1000;
  uv_timer_start(
      claim_timer_.get(), [](uv_timer_t* t) { static_cast<StreamSource*>(t->data)->claim(); }, tick, tick);
  if (ch_.trim_maxlen > 0 || ch_.trim_max_age_ms > 0) {
    uv_timer_start(
        trim_timer_.get(), [](uv_timer_t* t) { static_cast<StreamSource*>(t->data)->trim(); }, ch_.trim_interval_ms,
        ch_.trim_interval_ms);
  }
}

void StreamSource::stop() {
  stopped_ = true;
  uv_timer_stop(retry_timer_.get());
  uv_timer_stop(claim_timer_.get());
  uv_timer_stop(trim_timer_.get());
  uv_timer_stop(recover_timer_.get());
  uv_timer_stop(drain_timer_.get());
  conn_.stop();  // the outstanding XREADGROUP's callback runs with NULL now
}

void StreamSource::ensureGroup() {
  phase_ = Phase::Group;
  reading_ = true;
  const char* argv[] = {"XGROUP",  "CREATE", ch_.key.c_str(), ch_.group.c_str(), ch_.from_beginning ? "0" : "$",
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
  if (reply->type == REDIS_REPLY_ERROR && self->followRedirect(reply)) {
    return;
  }
  if (reply->type == REDIS_REPLY_ERROR && !isErrorReply(reply, "BUSYGROUP")) {
    log::host().error("stream {}: cannot create consumer group {}: {}; retrying", self->ch_.key, self->ch_.group,
                      reply->str);
    self->group_error_.assign(reply->str, reply->len);
    self->retryLater(1000);
    return;
  }
  self->group_error_.clear();
  if (reply->type != REDIS_REPLY_ERROR) {
    log::host().info("stream {}: created consumer group {} (from {})", self->ch_.key, self->ch_.group,
                     self->ch_.from_beginning ? "the beginning" : "new entries");
  }
  // Registered at once (XINFO CONSUMERS shows who reads), not only once the
  // first entry comes: a blocked XREADGROUP ">" does not create it.
  const char* create[] = {"XGROUP", "CREATECONSUMER", self->ch_.key.c_str(), self->ch_.group.c_str(),
                          self->ch_.consumer.c_str()};
  size_t create_lens[5];
  for (int i = 0; i < 5; ++i) {
    create_lens[i] = std::strlen(create[i]);
  }
  self->conn_.command(5, create, create_lens, &StreamSource::onIgnoredReply, nullptr);
  // Our own pending entries first: delivered to us before, never acked
  // (a crash, a lost connection, or the last read of a graceful stop).
  self->phase_ = Phase::Recover;
  self->startRecovery();
}

bool StreamSource::followRedirect(const redisReply* reply) {
  const std::string_view text(reply->str, reply->len);
  if (!conn_.redirected(text)) {
    return false;
  }
  // MOVED: the connection is moving to the slot's new master already (its
  // on_ready starts over there; the map's refresh settles a MOVED that names
  // where it is). ASK: the slot is being migrated and the stream has gone
  // ahead of it: asked again shortly, until the migration ends and the old
  // master says MOVED.
  log::host().log(text == last_redirect_ ? spdlog::level::debug : spdlog::level::info,
                  "stream {}: the cluster says {}: following", ch_.key, text);
  last_redirect_.assign(text);
  if (text.rfind("ASK ", 0) == 0) {
    retryLater(kRedirectRetryMs);
  }
  return true;
}

void StreamSource::onIgnoredReply(redisAsyncContext* /*ac*/, void* /*reply*/, void* /*privdata*/) {}

void StreamSource::retryLater(uint64_t ms) {
  uv_timer_start(
      retry_timer_.get(),
      [](uv_timer_t* t) {
        auto* self = static_cast<StreamSource*>(t->data);
        if (self->stopped_ || self->draining_ || !self->conn_.ready()) {
          return;
        }
        if (self->phase_ == Phase::Group || self->phase_ == Phase::Idle) {
          self->ensureGroup();
        } else {
          self->readNew();
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

// Whatever waits for capacity: the recovery pass, else new entries.
void StreamSource::read() {
  if (recovering_) {
    recoverStep();
    return;
  }
  readNew();
}

void StreamSource::readNew() {
  if (stopped_ || draining_ || reading_ || recovering_ || !conn_.ready() || phase_ != Phase::New) {
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
  const char* argv[] = {"XREADGROUP", "GROUP",       ch_.group.c_str(), ch_.consumer.c_str(), "COUNT", count.c_str(),
                        "BLOCK",      block.c_str(), "STREAMS",         ch_.key.c_str(),      ">"};
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

void StreamSource::onReadReply(redisAsyncContext* /*ac*/, void* r, void* privdata) {
  auto* self = static_cast<StreamSource*>(privdata);
  self->reading_ = false;
  if (r == nullptr || self->stopped_) {
    return;
  }
  self->onRead(static_cast<const redisReply*>(r));
}

void StreamSource::onRead(const redisReply* reply) {
  if (reply->type == REDIS_REPLY_ERROR && followRedirect(reply)) {
    return;
  }
  if (reply->type == REDIS_REPLY_ERROR) {
    if (isErrorReply(reply, "NOGROUP")) {
      log::host().warn("stream {}: consumer group {} is gone ({}); creating it again", ch_.key, ch_.group, reply->str);
      ensureGroup();
      return;
    }
    if (isErrorReply(reply, "UNBLOCKED")) {
      // The key went away under the blocked read: deleted, or -- in a
      // cluster -- migrated to another master, which the next read's
      // redirect tells.
      log::host().info("stream {}: {}; reading again", ch_.key, std::string_view(reply->str, reply->len));
      retryLater(kRedirectRetryMs);
      return;
    }
    log::host().error("stream {}: XREADGROUP failed: {}; retrying in 1 s", ch_.key, reply->str);
    retryLater(1000);
    return;
  }
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
        take(id, entry->elements >= 2 ? entry->element[1] : nullptr, false);
      }
    }
  }
  read();  // a recovery pass may have waited for this read to come back
}

void StreamSource::take(const std::string& id, const redisReply* fields, bool redelivered) {
  if (!in_flight_.insert(id).second) {
    return;  // still ours (from before a reconnect): not twice
  }
  if (fields == nullptr || fields->type != REDIS_REPLY_ARRAY) {
    // Listed as pending, but its entry is gone: trimmed (or XDELed) before
    // anyone handled it. Redis keeps such ids in the pending list.
    rejectEntry(id, "trimmed", "the entry was trimmed from the stream before it was handled", nullptr);
    return;
  }
  delivered_.inc();
  if (redelivered) {
    redelivered_.inc();
  }
  // The "event" field, read in place from the reply (valid during this
  // callback).
  for (size_t f = 0; f + 1 < fields->elements; f += 2) {
    const redisReply* name = fields->element[f];
    const redisReply* value = fields->element[f + 1];
    if (name->type == REDIS_REPLY_STRING && name->len == 5 && std::memcmp(name->str, "event", 5) == 0 &&
        value->type == REDIS_REPLY_STRING) {
      const std::string_view field(value->str, value->len);
      sink_(ch_, id, &field, redelivered);
      return;
    }
  }
  sink_(ch_, id, nullptr, redelivered);
}

std::string StreamSource::notLive() const {
  const std::string what = "stream " + ch_.key + " (group " + ch_.group + ")";
  if (!started_) {
    return what + ": waiting for its previous reader (before a reload) to finish its entries";
  }
  if (!conn_.ready()) {
    return what + ": its redis connection (" + conn_.where() + ") is down";
  }
  if (phase_ == Phase::Idle || phase_ == Phase::Group) {
    return what + (group_error_.empty() ? ": consumer group not confirmed yet"
                                        : ": consumer group cannot be created: " + group_error_);
  }
  return "";
}

void StreamSource::rejectEntry(const std::string& id, const char* reason, const std::string& why,
                               const std::string* event_field) {
  const std::string_view r(reason);
  (r == "poison" ? poisoned_ : r == "trimmed" ? trimmed_ : too_large_).inc();
  reject_(ch_, id, reason, why, event_field);
}

void StreamSource::retire(std::function<void()> done) {
  flushAcks();
  retryAcks();
  std::weak_ptr<bool> alive = alive_;
  auto finished = std::make_shared<std::function<void()>>(std::move(done));
  const bool sent = acks_.send({"XPENDING", ch_.key, ch_.group, "-", "+", "1", ch_.consumer}, [this, alive, finished](
                                                                                                  evh_status status,
                                                                                                  const redisReply* r) {
    if (alive.expired() || !*alive.lock()) {
      return;
    }
    auto finish = [finished] {
      if (*finished) {
        std::exchange(*finished, nullptr)();
      }
    };
    if (status != EVH_OK || r->type != REDIS_REPLY_ARRAY) {
      finish();
      return;
    }
    if (r->elements != 0) {
      log::host().info("stream {}: consumer {} keeps its pending entries for its next start", ch_.key, ch_.consumer);
      finish();
      return;
    }
    const bool sent_del =
        acks_.send({"XGROUP", "DELCONSUMER", ch_.key, ch_.group, ch_.consumer},
                   [alive, finish, key = ch_.key, consumer = ch_.consumer](evh_status s2, const redisReply* r2) {
                     if (s2 == EVH_OK && r2->type == REDIS_REPLY_INTEGER) {
                       log::host().info(
                           "stream {}: consumer {} removed from its group "
                           "(nothing pending)",
                           key, consumer);
                     }
                     if (!alive.expired()) {
                       finish();
                     }
                   });
    if (!sent_del) {
      finish();
    }
  });
  if (!sent && *finished) {
    std::exchange(*finished, nullptr)();
  }
}

void StreamSource::drain(std::function<void()> done) {
  if (draining_) {
    return;
  }
  draining_ = true;
  drained_ = std::move(done);
  uv_timer_stop(retry_timer_.get());
  uv_timer_stop(trim_timer_.get());
  uv_timer_stop(recover_timer_.get());
  // The claim tick stays: it also sends again acks that could not be sent.
  if (!started_) {
    stopped_ = true;
  }
  log::host().info("stream {}: no longer read (a reload); {} entr{} in flight finish first", ch_.key, in_flight_.size(),
                   in_flight_.size() == 1 ? "y" : "ies");
  uv_timer_start(
      drain_timer_.get(),
      [](uv_timer_t* t) {
        auto* self = static_cast<StreamSource*>(t->data);
        if (!self->drainDone()) {
          return;
        }
        uv_timer_stop(t);
        self->stop();
        log::host().info("stream {}: reader finished (its entries acknowledged)", self->ch_.key);
        if (self->drained_) {
          std::exchange(self->drained_, nullptr)();  // may destroy this source: the last use of it
        }
      },
      0, 20);
}

// Nothing read is out, nothing handed over unacknowledged, no ack unsent.
bool StreamSource::drainDone() const {
  if (!started_) {
    return true;
  }
  if (reading_ && conn_.ready()) {
    return false;  // a read (or the group's creation) is out: its entries are ours
  }
  return !recover_busy_ && !claiming_ && in_flight_.empty() && ack_batch_.empty() && ack_retry_.empty();
}

}  // namespace evh::redis
