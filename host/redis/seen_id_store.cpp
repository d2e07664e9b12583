// SET NX GET: marks and reads in one round trip, atomically.
#include "redis/seen_id_store.h"

#include <hiredis/hiredis.h>

#include <string_view>

namespace evh::redis {

bool SeenIdStore::claim(const std::string& key, const std::string& value, uint64_t ttl_ms,
                        std::function<void(Claim, const std::string&)> cb) {
  return commands_.send({"SET", key, value, "NX", "GET", "PX", std::to_string(ttl_ms)},
                        [cb = std::move(cb), value](evh_status status, const redisReply* r) {
                          if (status != EVH_OK) {
                            cb(Claim::Lost,
                               status == EVH_ERR_CANCELLED ? "evhost is stopping" : "the Redis connection dropped");
                            return;
                          }
                          switch (r->type) {
                            case REDIS_REPLY_NIL:
                              cb(Claim::First, {});
                              return;
                            case REDIS_REPLY_STRING:
                              cb(std::string_view(r->str, r->len) == value ? Claim::Same : Claim::Other, {});
                              return;
                            case REDIS_REPLY_ERROR:
                              cb(Claim::Failed, std::string(r->str, r->len));
                              return;
                            default:
                              cb(Claim::Failed, "unexpected reply type " + std::to_string(r->type) + " to SET NX GET");
                          }
                        });
}

}  // namespace evh::redis
