// The replay check's seen ids in Redis, over the command connection: one
// SET key value NX GET PX ttl per signed message (Redis 7: NX with GET).
#pragma once

#include "ingest/seen_ids.h"
#include "redis/command_client.h"

namespace evh::redis {

class SeenIdStore final : public ingest::SeenIds {
 public:
  explicit SeenIdStore(CommandClient& commands) : commands_(commands) {}
  bool claim(const std::string& key, const std::string& value, uint64_t ttl_ms,
             std::function<void(Claim, const std::string&)> cb) override;

 private:
  CommandClient& commands_;
};

}  // namespace evh::redis
