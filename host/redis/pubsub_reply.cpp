// Pub/Sub replies, classified (see pubsub_reply.h).
#include "redis/pubsub_reply.h"

#include "redis/reply_guard.h"

#include <hiredis/hiredis.h>

namespace evh::redis {

namespace {

// The text of a string-like reply; empty for any other type (an element of a
// broken server's array may be an integer, nil or array).
std::string_view text(const redisReply* r) {
  const bool has_text = r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_ERROR;
  return has_text && r->str != nullptr ? std::string_view(r->str, r->len) : std::string_view();
}

}  // namespace

PubSubReply classifyPubSub(const redisReply* reply) {
  PubSubReply out;
  if (reply->type == REDIS_REPLY_STATUS && text(reply) == "PONG") {
    // Our keep-alive PING while Redis refused every subscription (so it
    // answers as outside subscribed mode); hiredis hands it to whichever
    // callback ran last.
    out.kind = PubSubReply::Kind::KeepAlive;
    return out;
  }
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2 || reply->element[0]->type != REDIS_REPLY_STRING) {
    out.kind = PubSubReply::Kind::Unexpected;
    return out;
  }
  const std::string_view kind = text(reply->element[0]);
  if (kind == "pong") {
    // hiredis 0.14 hands the reply to our raw keep-alive PING (see
    // Connection::sendPing) to whichever callback ran last: not a message.
    out.kind = PubSubReply::Kind::KeepAlive;
  } else if ((kind == "message" || kind == "smessage") && reply->elements == 3) {
    out = PubSubReply{PubSubReply::Kind::Message, text(reply->element[1]), text(reply->element[2]), {}};
  } else if (kind == "pmessage" && reply->elements == 4) {
    out = PubSubReply{PubSubReply::Kind::Message, text(reply->element[2]), text(reply->element[3]), {}};
  } else if ((kind == "subscribe" || kind == "psubscribe" || kind == "ssubscribe") && reply->elements == 3) {
    out.kind = PubSubReply::Kind::Confirmed;
  } else if ((kind == "unsubscribe" || kind == "punsubscribe" || kind == "sunsubscribe") && reply->elements == 3) {
    out.kind = PubSubReply::Kind::Unsubscribed;
  } else if ((kind == kSubscribeRefused || kind == kPsubscribeRefused || kind == kSsubscribeRefused) &&
             reply->elements == 3) {
    out = PubSubReply{PubSubReply::Kind::Refused, {}, {}, text(reply->element[2])};
  }
  return out;
}

}  // namespace evh::redis
