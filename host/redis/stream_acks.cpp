// StreamSource's acknowledgements: batched per loop iteration, pipelined in
// front of the next XREADGROUP on the reading connection or sent on the
// command connection, confirmed, and retried when they fail. See
// stream_source.h.
#include "redis/stream_source.h"

#include "common/log.h"

#include <hiredis/hiredis.h>

#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace evh::redis {

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
  self->countAckRetries(batch->ids.size());
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
  acked_.inc(static_cast<int64_t>(ids.size()));
  for (const auto& id : ids) {
    in_flight_.erase(id);
  }
  resume();  // with none of ours left in flight, any room will do
}

void StreamSource::ack(const std::string& id) {
  // A read of `count` entries handled inline acks them all within one
  // callback: one XACK for all of them instead of one each.
  constexpr size_t kAckBatch = 1000;
  ack_batch_.push_back(id);
  if (ack_batch_.size() >= kAckBatch) {
    flushAcks();
  } else if (ack_batch_.size() == 1) {
    uv_prepare_start(ack_flush_.get(), [](uv_prepare_t* h) { static_cast<StreamSource*>(h->data)->flushAcks(); });
  }
  // The recovery pass takes its next batch once this one has finished --
  // from the top of the loop, never nested in a plugin's completion.
  if (batch_.erase(id) > 0 && batch_.empty() && !recover_busy_) {
    recoverSoon(0);
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
    countAckRetries(shared_ids->size());
    ack_retry_.insert(ack_retry_.end(), shared_ids->begin(), shared_ids->end());
  });
  if (!sent) {
    if (ack_retry_.empty()) {
      log::host().warn("stream {}: command connection down: acknowledgements wait for it", ch_.key);
    }
    countAckRetries(shared_ids->size());
    ack_retry_.insert(ack_retry_.end(), shared_ids->begin(), shared_ids->end());
  }
}

void StreamSource::retryAcks() {
  if (ack_retry_.empty() || !acks_.readyFor(ch_.key)) {
    return;
  }
  std::vector<std::string> ids;
  ids.swap(ack_retry_);
  sendAcks(std::move(ids));
}

}  // namespace evh::redis
