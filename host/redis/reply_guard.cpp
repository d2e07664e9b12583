// Reply bounds and sanity checks, object by object and after each read.
#include "redis/reply_guard.h"

#include "redis/hiredis_compat.h"

#include <hiredis/read.h>

#include <algorithm>

namespace evh::redis {

void ReplyGuard::startHandshake() {
  ready_ = false;
  reply_bytes_ = 0;
  bound_ = replyBound(ReplyKind::Handshake, 0);
  unanswered_subscribes_.clear();
}

void ReplyGuard::becomeReady(uint64_t max_message_bytes) {
  ready_ = true;
  bound_ = replyBound(subscriber_ ? ReplyKind::Message : ReplyKind::Command, max_message_bytes);
}

bool ReplyGuard::subscribedMode() const {
  return ac_ != nullptr && compat::subscribed(ac_) && !compat::awaitingReply(ac_);
}

ReplyGuard::Verdict ReplyGuard::refuse(std::string why) {
  if (drop_reason_.empty()) {
    drop_reason_ = std::move(why);
  }
  return Verdict::Refuse;
}

ReplyGuard::Verdict ReplyGuard::onObject(const Object& o) {
  if (ac_ == nullptr) {
    return Verdict::Build;
  }
  if (o.depth == 0) {
    ++replies_seen_;
    reply_bytes_ = 0;
    if (!compat::awaitingReply(ac_) && !compat::subscribed(ac_) && o.type != REDIS_REPLY_ERROR) {
      return refuse("protocol error: a reply to no command from " + where_);
    }
  } else if (o.depth == 1 && o.idx < 2 && o.type != REDIS_REPLY_STRING && subscribedMode()) {
    return refuse("protocol error: a Pub/Sub reply without kind and channel from " + where_);
  }
  reply_bytes_ += o.bytes;
  if (reply_bytes_ > bound_) {
    return refuse(oversizeReason());
  }
  if (o.type == REDIS_REPLY_ARRAY) {
    if (o.depth == 0 && o.elements < 2 && subscribedMode()) {
      return refuse("protocol error: a Pub/Sub reply without kind and channel from " + where_);
    }
    return Verdict::Build;
  }
  const bool text = o.type == REDIS_REPLY_STRING || o.type == REDIS_REPLY_STATUS || o.type == REDIS_REPLY_ERROR;
  if (!text || !subscriber_ || unanswered_subscribes_.empty() || !subscribedMode()) {
    return Verdict::Build;
  }
  if (o.depth == 0 && o.type == REDIS_REPLY_ERROR) {
    return Verdict::Refusal;
  }
  if (o.depth == 1 && o.idx == 0 && (o.text == "subscribe" || o.text == "psubscribe" || o.text == "ssubscribe")) {
    unanswered_subscribes_.pop_front();  // answered in the order sent
  }
  return Verdict::Build;
}

std::array<std::string, 3> ReplyGuard::takeRefusal(std::string_view error) {
  auto [kind, name] = std::move(unanswered_subscribes_.front());
  unanswered_subscribes_.pop_front();
  const char* refused = kind == SubscribeKind::Pattern ? kPsubscribeRefused
                        : kind == SubscribeKind::Shard ? kSsubscribeRefused
                                                       : kSubscribeRefused;
  return {refused, std::move(name), std::string(error)};
}

std::string ReplyGuard::oversizeReason() const {
  const char* which = !ready_ ? "during the handshake"
                      : subscriber_
                          ? "for a Pub/Sub message: 2 x limits.max_message_bytes + 64 KiB"
                          : "for a command or stream read: max(64 MiB, 100 x (limits.max_message_bytes + 64 KiB))";
  return "protocol error: reply larger than " + std::to_string(bound_) + " bytes (" + which + ") from " + where_;
}

bool ReplyGuard::overflows(const redisAsyncContext* ac, uint64_t max_item_bytes, Overflow& out) const {
  // An endless bulk string is never parsed, only buffered: what the reader
  // holds counts as well as the objects built.
  const compat::ReaderBuffer buf = compat::readerBuffer(ac);
  const uint64_t held = buf.buffered + (buf.mid_reply ? reply_bytes_ : 0);
  const uint64_t item = compat::pendingBulkLength(ac);
  const std::string_view head(buf.data, std::min<uint64_t>(buf.buffered, 4096));
  if (ready_ && max_item_bytes > 0 && item > max_item_bytes) {
    out = Overflow{"protocol error: a bulk string of " + std::to_string(item) + " bytes, over the bound of " +
                       std::to_string(max_item_bytes) + " for one item (2 x limits.max_message_bytes + 64 KiB), from " +
                       where_,
                   head, item};
    return true;
  }
  // A bulk string declared longer than the bound can never fit: refused
  // from its length, at once. Waiting for its bytes would hold the
  // connection for as long as the server likes (a multi-GB length, then
  // silence) and end as a keep-alive timeout rather than the protocol error
  // it is.
  if (held > bound_ || item > bound_) {
    out = Overflow{oversizeReason(), head, held};
    return true;
  }
  return false;
}

}  // namespace evh::redis
