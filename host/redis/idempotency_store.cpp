// Idempotency marks: EXISTS to check, SET PX to mark.
#include "redis/idempotency_store.h"

#include <hiredis/hiredis.h>

namespace evh::redis {

bool IdempotencyStore::check(const std::string& key, std::function<void(std::optional<bool>)> cb) {
  return commands_.send({"EXISTS", key}, [cb = std::move(cb)](evh_status status, const redisReply* r) {
    if (status != EVH_OK || r->type != REDIS_REPLY_INTEGER) {
      cb(std::nullopt);
      return;
    }
    cb(r->integer > 0);
  });
}

bool IdempotencyStore::mark(const std::string& key, uint64_t ttl_ms, std::function<void(bool)> cb) {
  return commands_.send({"SET", key, "1", "PX", std::to_string(ttl_ms)},
                        [cb = std::move(cb)](evh_status status, const redisReply* r) {
                          cb(status == EVH_OK && r->type != REDIS_REPLY_ERROR);
                        });
}

}  // namespace evh::redis
