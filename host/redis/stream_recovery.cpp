// Taking back stream entries delivered before -- ours from before a restart
// or a lost connection, and those claimed from consumers that died --
// without letting one entry that crashes evhost take innocent ones with it.
//
// A crash leaves every entry of the reads in flight pending, each counted as
// delivered once more. Taking them all back in one read would charge the
// next crash to all of them again, and after max_deliveries crashes a whole
// read would be dead-lettered as poison. So the pending list is taken back
// in batches that grow from one entry (1, 2, 4, ... up to `count`), each
// read only once the batch before has finished: a crash charges only the
// batch that was in a plugin. An entry delivered twice or more already was
// in such a batch, and is taken back alone. XPENDING gives the counts first
// without raising them; an entry delivered max_deliveries times is not
// delivered again but dead-lettered as poison, with its payload (read with
// XRANGE, which is no delivery).
//
// The pass reads over the stream's own reading connection, whose bound on one
// item keeps an oversized entry from being read whole (onOversize); it waits
// for a blocked read of new entries to come back, and new entries are not
// read while it runs. Claiming (XAUTOCLAIM JUSTID, which moves ids only) and
// a poison entry's XRANGE go over the command connection.
#include "common/log.h"
#include "redis/stream_id.h"
#include "redis/stream_source.h"

#include <hiredis/hiredis.h>

#include <algorithm>

namespace evh::redis {
namespace {

constexpr size_t kPlanWindow = 1000;   // pending entries listed per XPENDING
constexpr size_t kClaimMax = 1000;     // ids moved to us per XAUTOCLAIM
constexpr uint64_t kNotReadyMs = 250;  // the command connection was down: look again

}  // namespace

void StreamSource::startRecovery() {
  if (recovering_) {
    recover_again_ = true;  // once this pass is through, another from the start
    return;
  }
  recovering_ = true;
  recover_again_ = false;
  plan_complete_ = false;
  recover_after_.clear();
  plan_.clear();
  batch_size_ = 1;
  pass_taken_ = 0;
  pass_poison_ = 0;
  recoverStep();
}

void StreamSource::recoverSoon(uint64_t ms) {
  uv_timer_start(
      recover_timer_.get(), [](uv_timer_t* t) { static_cast<StreamSource*>(t->data)->recoverStep(); }, ms, 0);
}

void StreamSource::recoverStep() {
  if (stopped_ || draining_ || !recovering_ || recover_busy_ || !batch_.empty()) {
    return;  // a batch still in plugins: its last ack calls again
  }
  if (reading_) {
    return;  // a read of new entries is out: its reply calls again
  }
  if (!conn_.ready()) {
    recoverSoon(kNotReadyMs);
    return;
  }
  recover_reading_ = 0;
  // Ours and still being handled (a reconnect, not a restart): not again.
  // Delivered max_deliveries times without an ack: poison.
  while (!plan_.empty()) {
    const Planned& next = plan_.front();
    if (in_flight_.count(next.id) == 0 && next.deliveries >= static_cast<long long>(ch_.max_deliveries)) {
      poison(next.id, next.deliveries);
    } else if (in_flight_.count(next.id) == 0) {
      break;
    }
    recover_after_ = next.id;
    plan_.pop_front();
  }
  if (plan_.empty()) {
    if (plan_complete_) {
      finishRecovery();
    } else {
      fetchPlan();
    }
    return;
  }
  const size_t room = capacity_();
  if (room == 0) {
    paused_ = true;  // resume() (an ack, the claim tick) calls again
    return;
  }
  size_t n = 1;
  if (plan_.front().deliveries < 2) {
    const size_t limit = std::min<size_t>({batch_size_, room, ch_.count});
    while (n < limit && n < plan_.size() && plan_[n].deliveries < 2 && in_flight_.count(plan_[n].id) == 0) {
      ++n;
    }
  }
  readBatch(n);
}

// One command of the pass, on the reading connection (whose bound on one
// entry keeps an oversized one from being read whole): while it is out the
// pass waits (recover_busy_); a lost connection tries the same step again
// once it is back (the plan stands).
namespace {
struct RecoveryCall {
  StreamSource* self;
  std::weak_ptr<bool> alive;
  void (StreamSource::*then)(const redisReply*);
};
}  // namespace

void StreamSource::sendRecovery(const std::vector<std::string>& argv, void (StreamSource::*then)(const redisReply*)) {
  std::vector<const char*> args;
  std::vector<size_t> lens;
  for (const auto& a : argv) {
    args.push_back(a.c_str());
    lens.push_back(a.size());
  }
  auto call = std::make_unique<RecoveryCall>(RecoveryCall{this, alive_, then});
  recover_busy_ = true;
  if (!conn_.command(static_cast<int>(args.size()), args.data(), lens.data(), &StreamSource::onRecoveryReply,
                     call.get())) {
    recover_busy_ = false;
    recoverSoon(kNotReadyMs);
    return;
  }
  call.release();  // owned by the callback now
}

void StreamSource::onRecoveryReply(redisAsyncContext* /*ac*/, void* r, void* privdata) {
  std::unique_ptr<RecoveryCall> call(static_cast<RecoveryCall*>(privdata));
  if (call->alive.expired() || !*call->alive.lock()) {
    return;
  }
  StreamSource* self = call->self;
  self->recover_busy_ = false;
  if (self->stopped_) {
    return;
  }
  if (r == nullptr) {
    self->recoverSoon(kNotReadyMs);  // the connection went: again once it is back
    return;
  }
  (self->*(call->then))(static_cast<const redisReply*>(r));
}

// Called just before the reading connection drops for an entry longer than
// its bound on one item. In a batch of one, that entry is known: it is
// dead-lettered (too_large) from its length and first bytes, never read.
// Otherwise the pass starts over one entry at a time, to find it.
void StreamSource::onOversize(std::string_view head, uint64_t bytes) {
  if (recover_busy_ && recover_reading_ == 1 && !recover_reading_id_.empty() &&
      in_flight_.insert(recover_reading_id_).second) {
    const std::string id = recover_reading_id_;
    recover_after_ = id;
    while (!plan_.empty() && !streamIdLess(recover_after_, plan_.front().id)) {
      plan_.pop_front();
    }
    const std::string first(head);
    rejectEntry(id, "too_large",
                "an entry of " + std::to_string(bytes) +
                    " bytes, over 2 x limits.max_message_bytes + 64 KiB: refused from its length, never read whole",
                &first);
    return;
  }
  batch_size_ = 1;
}

void StreamSource::fetchPlan() {
  const std::string start = recover_after_.empty() ? "-" : "(" + recover_after_;
  sendRecovery({"XPENDING", ch_.key, ch_.group, start, "+", std::to_string(kPlanWindow), ch_.consumer},
               &StreamSource::onPlan);
}

// A pass ends at an error it cannot get past: the reading connection
// recreates a vanished group (and starts a new pass); anything else is tried
// again in a second.
bool StreamSource::recoveryFailed(const redisReply* r, const char* what) {
  if (r->type != REDIS_REPLY_ERROR) {
    return false;
  }
  if (followRedirect(r)) {
    recovering_ = false;
    batch_.clear();
    plan_.clear();
    if (phase_ == Phase::Recover) {
      phase_ = Phase::Group;  // started over where the stream is now
    }
    return true;
  }
  if (isErrorReply(r, "NOGROUP")) {
    recovering_ = false;
    batch_.clear();
    plan_.clear();
    if (phase_ == Phase::Recover) {
      phase_ = Phase::Group;
      retryLater(0);
    }
    return true;
  }
  log::host().error("stream {}: {} failed while taking back pending entries: {}; retrying in 1 s", ch_.key, what,
                    std::string_view(r->str, r->len));
  recoverSoon(1000);
  return true;
}

void StreamSource::onPlan(const redisReply* r) {
  if (recoveryFailed(r, "XPENDING")) {
    return;
  }
  // [[id, consumer, idle ms, deliveries], ...]
  const size_t listed = r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
  plan_complete_ = listed < kPlanWindow;
  for (size_t i = 0; i < listed; ++i) {
    const redisReply* e = r->element[i];
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 4 || e->element[0]->type != REDIS_REPLY_STRING ||
        e->element[3]->type != REDIS_REPLY_INTEGER) {
      continue;
    }
    plan_.push_back(Planned{replyString(e->element[0]), e->element[3]->integer});
  }
  if (recover_after_.empty() && !plan_.empty()) {
    log::host().info("stream {}: taking back {}{} entr{} pending for consumer {}, a batch at a time", ch_.key,
                     plan_.size(), plan_complete_ ? "" : "+", plan_.size() == 1 ? "y" : "ies", ch_.consumer);
  }
  recoverStep();
}

void StreamSource::readBatch(size_t n) {
  // Acks of the batch before go first, on the same connection: Redis has
  // them before it counts this batch as delivered. (Not sent there, they go
  // over the command connection before the loop next waits.)
  pipelineAcks();
  const std::string from = recover_after_.empty() ? "0" : recover_after_;
  recover_reading_ = n;
  recover_reading_id_ = plan_.front().id;
  sendRecovery({"XREADGROUP", "GROUP", ch_.group, ch_.consumer, "COUNT", std::to_string(n), "STREAMS", ch_.key, from},
               &StreamSource::onBatch);
}

void StreamSource::onBatch(const redisReply* r) {
  if (recoveryFailed(r, "XREADGROUP")) {
    return;
  }
  // [[key, [[id, [field, value, ...] | nil], ...]]]; nil: nothing pending
  // after `from` any more.
  recover_busy_ = true;  // acks of entries handled inline wait for the whole batch
  size_t got = 0;
  if (r->type == REDIS_REPLY_ARRAY && r->elements > 0 && r->element[0]->type == REDIS_REPLY_ARRAY &&
      r->element[0]->elements >= 2 && r->element[0]->element[1]->type == REDIS_REPLY_ARRAY) {
    const redisReply* entries = r->element[0]->element[1];
    for (size_t e = 0; e < entries->elements; ++e) {
      const redisReply* entry = entries->element[e];
      if (entry->type != REDIS_REPLY_ARRAY || entry->elements < 1 || entry->element[0]->type != REDIS_REPLY_STRING) {
        continue;
      }
      std::string id = replyString(entry->element[0]);
      recover_after_ = id;
      ++got;
      if (in_flight_.count(id) != 0) {
        continue;
      }
      ++pass_taken_;
      batch_.insert(id);
      take(id, entry->elements >= 2 ? entry->element[1] : nullptr, true);
    }
  }
  while (!plan_.empty() && !streamIdLess(recover_after_, plan_.front().id)) {
    plan_.pop_front();
  }
  if (got == 0) {
    plan_.clear();  // the list changed under us: list it again from here
    plan_complete_ = false;
  } else {
    batch_size_ = std::min<size_t>(batch_size_ * 2, std::max<uint32_t>(ch_.count, 1));
  }
  recover_busy_ = false;
  if (batch_.empty()) {
    recoverSoon(0);  // all handled inline (or nothing read): the next batch
  }
}

void StreamSource::finishRecovery() {
  recovering_ = false;
  plan_.clear();
  if (pass_taken_ > 0 || pass_poison_ > 0) {
    log::host().info("stream {}: pending entries taken back: {} handed over again, {} dead-lettered as poison", ch_.key,
                     pass_taken_, pass_poison_);
  }
  if (recover_again_) {
    startRecovery();
    return;
  }
  const bool started = phase_ == Phase::Recover;
  if (started) {
    phase_ = Phase::New;  // our backlog is done: new entries from now on
  }
  if (claim_more_ || started) {
    claim_more_ = false;
    claim();  // at start, and when the last claim stopped at its COUNT: at once
  }
  readNew();
}

void StreamSource::poison(const std::string& id, long long deliveries) {
  in_flight_.insert(id);
  ++pass_poison_;
  const std::string why =
      "delivered " + std::to_string(deliveries) +
      " times without being acknowledged (stream.max_deliveries=" + std::to_string(ch_.max_deliveries) + ")";
  std::weak_ptr<bool> alive = alive_;
  const bool sent =
      acks_.send({"XRANGE", ch_.key, id, id}, [this, alive, id, why](evh_status status, const redisReply* r) {
        if (alive.expired() || !*alive.lock()) {
          return;
        }
        if (status != EVH_OK && !stopped_ && ++poison_fetch_failures_[id] < 2) {
          // No payload to keep: leave it pending; the next pass finds it again.
          in_flight_.erase(id);
          startRecovery();
          return;
        }
        poison_fetch_failures_.erase(id);
        if (status != EVH_OK) {
          // Twice: the entry itself may be what breaks the connection (a reply
          // over its bound). Dead-lettered without its payload, not for ever.
          if (!stopped_) {
            rejectEntry(id, "poison", why + "; its payload could not be read (the connection dropped twice)", nullptr);
          }
          return;
        }
        // [[id, [field, value, ...]]] -- or [] when the entry is gone.
        std::string payload;
        bool found = false;
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 && r->element[0]->type == REDIS_REPLY_ARRAY &&
            r->element[0]->elements >= 2 && r->element[0]->element[1]->type == REDIS_REPLY_ARRAY) {
          const redisReply* fields = r->element[0]->element[1];
          for (size_t f = 0; f + 1 < fields->elements && !found; f += 2) {
            if (replyString(fields->element[f]) == "event" && fields->element[f + 1]->type == REDIS_REPLY_STRING) {
              payload = replyString(fields->element[f + 1]);
              found = true;
            }
          }
        }
        rejectEntry(id, "poison", why, found ? &payload : nullptr);
      });
  if (!sent) {
    in_flight_.erase(id);
    --pass_poison_;
  }
}

void StreamSource::claim() {
  retryAcks();
  // Room may have come from other channels' events finishing, which do not
  // call resume(): look again on every tick.
  resume();
  if (ch_.claim_interval_ms == 0 || stopped_ || draining_ || claiming_ || !acks_.readyFor(ch_.key) ||
      phase_ != Phase::New) {
    return;
  }
  const size_t room = std::min(capacity_(), kClaimMax);
  if (room == 0) {
    return;
  }
  claiming_ = true;
  std::weak_ptr<bool> alive = alive_;
  // JUSTID: the entries become ours without counting a delivery; the
  // recovery pass then takes them back a batch at a time, as our own.
  const bool sent = acks_.send({"XAUTOCLAIM", ch_.key, ch_.group, ch_.consumer, std::to_string(ch_.claim_idle_ms),
                                claim_cursor_, "COUNT", std::to_string(room), "JUSTID"},
                               [this, alive](evh_status status, const redisReply* r) {
                                 if (alive.expired() || !*alive.lock()) {
                                   return;
                                 }
                                 claiming_ = false;
                                 if (status == EVH_OK && !stopped_) {
                                   onClaimed(r);
                                 }
                               });
  if (!sent) {
    claiming_ = false;
  }
}

void StreamSource::onClaimed(const redisReply* reply) {
  if (reply->type == REDIS_REPLY_ERROR) {
    if (!isErrorReply(reply, "NOGROUP")) {  // NOGROUP: the reader recreates it
      log::host().warn("stream {}: XAUTOCLAIM failed: {}", ch_.key, std::string_view(reply->str, reply->len));
    }
    return;
  }
  // [next-cursor, [id, ...], [deleted id, ...]] (Redis 7)
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2 || reply->element[1]->type != REDIS_REPLY_ARRAY) {
    return;
  }
  claim_cursor_ = replyString(reply->element[0]);
  if (claim_cursor_.empty()) {
    claim_cursor_ = "0-0";
  }
  const redisReply* ids = reply->element[1];
  size_t claimed_now = 0;
  for (size_t i = 0; i < ids->elements; ++i) {
    if (in_flight_.count(replyString(ids->element[i])) == 0) {
      ++claimed_now;  // not one of ours still being handled (those just had their idle time reset)
    }
  }
  // Entries whose payload was trimmed away before anyone handled them: Redis
  // already dropped them from the pending list; they still get an entry.
  if (reply->elements >= 3 && reply->element[2]->type == REDIS_REPLY_ARRAY) {
    const redisReply* deleted = reply->element[2];
    for (size_t i = 0; i < deleted->elements; ++i) {
      std::string id = replyString(deleted->element[i]);
      if (in_flight_.insert(id).second) {
        rejectEntry(id, "trimmed", "the entry was trimmed from the stream before it was handled", nullptr);
      }
    }
  }
  if (claimed_now == 0) {
    return;  // the cursor goes on with the next tick
  }
  claimed_.inc(static_cast<int64_t>(claimed_now));
  log::host().info("stream {}: claimed {} entr{} pending for over {} ms from other consumers", ch_.key, claimed_now,
                   claimed_now == 1 ? "y" : "ies", ch_.claim_idle_ms);
  claim_more_ = claim_cursor_ != "0-0";
  startRecovery();
}

}  // namespace evh::redis
