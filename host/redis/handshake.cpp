// AUTH / SELECT / PING: the commands and what their replies mean.
#include "redis/handshake.h"

#include <hiredis/hiredis.h>

#include <string_view>

namespace evh::redis {

Handshake::Handshake(const Endpoint& e) {
  if (!e.password.empty()) {
    if (e.username.empty()) {
      steps_.push_back(Step{"AUTH", {"AUTH", e.password}, "OK"});
    } else {
      steps_.push_back(Step{"AUTH", {"AUTH", e.username, e.password}, "OK"});
      auth_note_ = " (as user " + e.username + ")";
    }
  }
  if (e.db != 0) {
    const std::string db = std::to_string(e.db);
    steps_.push_back(Step{"SELECT " + db, {"SELECT", db}, "OK"});
  }
  steps_.push_back(Step{"PING", {"PING"}, "PONG"});
}

std::string Handshake::check(size_t i, const redisReply& reply, const std::string& where) const {
  const Step& step = steps_.at(i);
  if (reply.type == REDIS_REPLY_ERROR) {
    const std::string note = step.argv.front() == "AUTH" ? auth_note_ : std::string();
    return step.name + " failed: " + std::string(reply.str, reply.len) + note;
  }
  // +OK to AUTH and SELECT, +PONG to PING: anything else is not Redis
  // speaking (a wrong port, a proxy gone wrong) and must not count as up.
  if (reply.type != REDIS_REPLY_STATUS || std::string_view(reply.str, reply.len) != step.expected) {
    return "protocol error: unexpected reply to " + step.name + " from " + where + " (type " +
           std::to_string(reply.type) + ", not +" + step.expected + ")";
  }
  return {};
}

}  // namespace evh::redis
