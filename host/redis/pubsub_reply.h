// What one reply on the subscriber's connection is: a message, a (P)SUBSCRIBE
// confirmation or refusal, a keep-alive answer, or something unexpected.
// Pure (no connection, no state), so that it is tested and fuzzed on replies
// parsed from bytes (tests/fuzz/redis_reply_fuzz.cpp).
#pragma once

#include <string_view>

struct redisReply;

namespace evh::redis {

struct PubSubReply {
  enum class Kind {
    KeepAlive,     // the answer to our keep-alive PING: not a message
    Message,       // channel and payload set
    Confirmed,     // a (P|S)SUBSCRIBE confirmed
    Refused,       // a (P|S)SUBSCRIBE refused (ReplyGuard's array): error set
    Unsubscribed,  // a (P|S)UNSUBSCRIBE confirmed, or Redis's own (a shard
                   // channel's slot moved away)
    Unexpected,    // not a Pub/Sub array: logged
    Other,         // a Pub/Sub array of another kind (unsubscribe...): ignored
  };
  Kind kind = Kind::Other;
  std::string_view channel;  // Message: the channel it was published on
  std::string_view payload;  // Message: the bytes published
  std::string_view error;    // Refused: Redis's error text
};

// Borrows `reply`'s strings. reply must not be null.
PubSubReply classifyPubSub(const redisReply* reply);

}  // namespace evh::redis
