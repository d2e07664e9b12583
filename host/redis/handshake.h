// The handshake every connection to Redis makes before it is used -- AUTH
// (password, or ACL user + password), SELECT, then PING -- written once for
// evhost's async connections (redis/connection.cpp) and evhctl's blocking
// one (cli/sync_redis.cpp). This builds the commands and judges the replies;
// each driver sends them its own way (both pipeline them) and reports a
// failure with the text check() gives, prefixed with where it happened.
#pragma once

#include "redis/endpoint.h"

#include <string>
#include <vector>

struct redisReply;

namespace evh::redis {

class Handshake {
 public:
  struct Step {
    std::string name;               // what a failure names: "AUTH", "SELECT 3", "PING" -- never an argument
    std::vector<std::string> argv;  // the command (AUTH's holds the password: never log it)
    const char* expected;           // the status reply that means success: "OK" or "PONG"
  };

  // AUTH when a password is set (with the username when one is), SELECT
  // when db is not 0, always PING, and ROLE when the endpoint requires the
  // master (Sentinel: a replica -- a demoted master -- fails the handshake): a connection counts as up only after
  // a full round trip, so that a frozen server (its kernel still accepting
  // connections) or something that is not Redis fails the handshake.
  explicit Handshake(const Endpoint& endpoint);

  const std::vector<Step>& steps() const noexcept { return steps_; }

  // Empty when `reply` is the success answer to steps()[i] (ROLE: an array
  // whose first element is "master"); else what
  // failed, e.g. "AUTH failed: WRONGPASS ... (as user evh)", "SELECT 3
  // failed: ERR DB index is out of range", "protocol error: unexpected reply
  // to PING from <where> (type 5, not +PONG)". Never the password, even
  // when the server's own error text holds it (Redis echoes the arguments
  // of a command it does not know: AUTH renamed away).
  std::string check(size_t i, const redisReply& reply, const std::string& where) const;

 private:
  std::vector<Step> steps_;
  std::string auth_note_;  // " (as user NAME)" after an AUTH failure, when there is a user
  std::string password_;   // to mask it in a server's error text
};

}  // namespace evh::redis
