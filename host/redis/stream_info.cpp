// The group's backlog, read from Redis when an operator's scraper asks:
// XINFO GROUPS gives the group's pending count and (Redis 7) its lag -- the
// entries not yet delivered to it --, XPENDING's summary form the oldest
// pending id, whose time part dates the oldest unacknowledged entry. Both
// are O(groups) and O(1) in Redis, whatever the stream's length.
#include "common/clock.h"
#include "redis/stream_id.h"
#include "redis/stream_source.h"

#include <hiredis/hiredis.h>

#include <cmath>
#include <utility>

namespace evh::redis {

void StreamSource::refreshBacklog(std::function<void()> done) {
  if (stopped_ || !acks_.readyFor(ch_.key)) {
    done();  // the gauges keep what they last showed
    return;
  }
  std::weak_ptr<bool> alive = alive_;
  auto shared_done = std::make_shared<std::function<void()>>(std::move(done));
  const bool sent =
      acks_.send({"XINFO", "GROUPS", ch_.key}, [this, alive, shared_done](evh_status st, const redisReply* r) {
        if (alive.expired() || !*alive.lock()) {
          return;
        }
        if (st != EVH_OK || r->type != REDIS_REPLY_ARRAY) {
          // No stream yet (ERR no such key), or Redis went away: unknown.
          backlog_pending_ = backlog_lag_ = backlog_oldest_age_s_ = std::nan("");
          (*shared_done)();
          return;
        }
        backlogFromGroups(r, [shared_done] { (*shared_done)(); });
      });
  if (!sent) {
    (*shared_done)();
  }
}

void StreamSource::backlogFromGroups(const redisReply* groups, std::function<void()> done) {
  double pending = std::nan("");
  double lag = std::nan("");
  for (size_t g = 0; g < groups->elements; ++g) {
    const redisReply* group = groups->element[g];
    if (group->type != REDIS_REPLY_ARRAY) {
      continue;
    }
    bool ours = false;
    double p = std::nan("");
    double l = std::nan("");
    for (size_t k = 0; k + 1 < group->elements; k += 2) {
      const std::string field = replyString(group->element[k]);
      const redisReply* value = group->element[k + 1];
      if (field == "name") {
        ours = replyString(value) == ch_.group;
      } else if (field == "pending" && value->type == REDIS_REPLY_INTEGER) {
        p = static_cast<double>(value->integer);
      } else if (field == "lag" && value->type == REDIS_REPLY_INTEGER) {
        l = static_cast<double>(value->integer);  // nil when Redis cannot tell
      }
    }
    if (ours) {
      pending = p;
      lag = l;
      break;
    }
  }
  backlog_pending_ = pending;
  backlog_lag_ = lag;
  if (!(pending > 0)) {
    backlog_oldest_age_s_ = pending == 0 ? 0.0 : std::nan("");
    done();
    return;
  }
  std::weak_ptr<bool> alive = alive_;
  auto shared_done = std::make_shared<std::function<void()>>(std::move(done));
  // Summary form: [count, smallest id, greatest id, [[consumer, count], ...]].
  const bool sent =
      acks_.send({"XPENDING", ch_.key, ch_.group}, [this, alive, shared_done](evh_status st, const redisReply* r) {
        if (alive.expired() || !*alive.lock()) {
          return;
        }
        if (st == EVH_OK && r->type == REDIS_REPLY_ARRAY && r->elements >= 2) {
          const std::string oldest = replyString(r->element[1]);
          const uint64_t id_ms = parseStreamId(oldest).first;
          const uint64_t now = wallMs();
          backlog_oldest_age_s_ = oldest.empty() ? 0.0 : static_cast<double>(now > id_ms ? now - id_ms : 0) / 1000.0;
        } else {
          backlog_oldest_age_s_ = std::nan("");
        }
        (*shared_done)();
      });
  if (!sent) {
    backlog_oldest_age_s_ = std::nan("");
    (*shared_done)();
  }
}

}  // namespace evh::redis
