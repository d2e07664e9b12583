// Idempotency marks in Redis, over the command connection: a (plugin,
// eventId) handled within a route's idempotency ttl is not handled again.
#pragma once

#include "dispatch/dispatcher.h"
#include "redis/command_client.h"

namespace evh::redis {

class IdempotencyStore final : public dispatch::IdempotencyStore {
 public:
  explicit IdempotencyStore(CommandClient& commands) : commands_(commands) {}

  // EXISTS key. THREAD: loop.
  bool check(const std::string& key, std::function<void(std::optional<bool>)> cb) override;
  // SET key 1 PX ttl_ms. THREAD: loop.
  bool mark(const std::string& key, uint64_t ttl_ms, std::function<void(bool)> cb) override;

 private:
  CommandClient& commands_;
};

}  // namespace evh::redis
