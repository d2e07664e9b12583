// A test's own Pub/Sub subscriber (a synchronous hiredis connection, as the
// admin dashboard would hold one): subscribed before anything is published,
// read one message at a time (as text, or parsed as JSON).
#pragma once

#include "support/redis_server.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>

namespace evh::test {

// A new connection to `server` subscribed to `channel`; reads time out after
// 10 s (a hang guard).
inline RedisConn subscribeTo(const RedisServer& server, const std::string& channel) {
  RedisConn c = server.connect();
  ReplyPtr r(static_cast<redisReply*>(redisCommand(c.get(), "SUBSCRIBE %s", channel.c_str())));
  EXPECT_TRUE(r && r->type == REDIS_REPLY_ARRAY) << "SUBSCRIBE " << channel << " failed";
  redisSetTimeout(c.get(), timeval{10, 0});
  return c;
}

// The payload of the next message on a subscribed connection, as sent; a
// failure (and "") when none comes within the timeout or it is not a message.
inline std::string nextMessageText(redisContext* c) {
  void* raw = nullptr;
  if (redisGetReply(c, &raw) != REDIS_OK || raw == nullptr) {
    ADD_FAILURE() << "no message within the read timeout";
    return {};
  }
  ReplyPtr r(static_cast<redisReply*>(raw));
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 3) {
    ADD_FAILURE() << "not a message";
    return {};
  }
  return std::string(r->element[2]->str, r->element[2]->len);
}

// The next message on a subscribed connection, parsed as JSON; a failure
// (and null) when none comes or it is not a message.
inline nlohmann::json nextMessage(redisContext* c) {
  const std::string text = nextMessageText(c);
  return text.empty() ? nlohmann::json() : nlohmann::json::parse(text);
}

}  // namespace evh::test
