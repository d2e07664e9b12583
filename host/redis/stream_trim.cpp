// Trimming: about trim_maxlen entries kept, none older than trim_max_age_ms
// -- but never an entry some consumer group has not been handed yet, or one
// still pending in a group: trimming those would lose events.
//
// It costs a handful of cheap commands whatever the stream's length: XINFO
// GROUPS (each group's last-delivered id and pending count), XPENDING's
// summary for each group with entries pending (its oldest one), XLEN; then
// XTRIM MINID ~ <floor> LIMIT <excess>, where the floor is the smallest of
// those ids (everything below it has been handled by every group) and LIMIT
// keeps at least trim_maxlen entries. `~` removes whole nodes only, and
// LIMIT bounds one call's work, so Redis is never held for long. (The
// length bound used to come from XREVRANGE ... COUNT trim_maxlen: at a
// million entries that read 800 MB into evhost and held Redis for a second.)
#include "common/clock.h"
#include "common/log.h"
#include "redis/stream_id.h"
#include "redis/stream_source.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <chrono>

namespace evh::redis {
namespace {

// Entries one XTRIM may remove: 1,000 nodes of 100 (stream-node-max-entries),
// a few ms of Redis's time; what is left goes with the next interval.
constexpr long long kTrimPerCall = 100000;

struct FloorSearch {
  std::string floor;  // the smallest id any group still needs
  size_t waiting = 0;
  bool failed = false;
};

void lower(std::string& floor, const std::string& id) {
  if (!id.empty() && (floor.empty() || streamIdLess(id, floor))) {
    floor = id;
  }
}

}  // namespace

void StreamSource::trim() {
  if (stopped_ || draining_ || trimming_ || !acks_.readyFor(ch_.key)) {
    return;
  }
  trimming_ = true;
  std::weak_ptr<bool> alive = alive_;
  const bool sent = acks_.send({"XINFO", "GROUPS", ch_.key}, [this, alive](evh_status st, const redisReply* r) {
    if (alive.expired() || !*alive.lock()) {
      return;
    }
    if (st != EVH_OK || r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
      trimDone();  // no stream or no group yet: nothing is known to be handled
      return;
    }
    auto search = std::make_shared<FloorSearch>();
    std::vector<std::string> with_pending;
    for (size_t g = 0; g < r->elements; ++g) {
      const redisReply* group = r->element[g];
      std::string name;
      std::string last_delivered;
      long long pending = 0;
      for (size_t k = 0; group->type == REDIS_REPLY_ARRAY && k + 1 < group->elements; k += 2) {
        const std::string field = replyString(group->element[k]);
        const redisReply* value = group->element[k + 1];
        if (field == "name") {
          name = replyString(value);
        } else if (field == "last-delivered-id") {
          last_delivered = replyString(value);
        } else if (field == "pending" && value->type == REDIS_REPLY_INTEGER) {
          pending = value->integer;
        }
      }
      if (last_delivered.empty()) {
        trimDone();  // a reply we do not understand: trim nothing
        return;
      }
      lower(search->floor, last_delivered);  // entries after it are not handed yet
      if (pending > 0) {
        with_pending.push_back(name);
      }
    }
    auto withFloor = [this, alive, search] {
      if (alive.expired() || !*alive.lock()) {
        return;
      }
      if (search->failed || stopped_) {
        trimDone();
        return;
      }
      const bool sent_len = acks_.send({"XLEN", ch_.key}, [this, alive, search](evh_status s2, const redisReply* len) {
        if (alive.expired() || !*alive.lock()) {
          return;
        }
        if (s2 != EVH_OK || len->type != REDIS_REPLY_INTEGER) {
          trimDone();
          return;
        }
        trimTo(search->floor, len->integer);
      });
      if (!sent_len) {
        trimDone();
      }
    };
    if (with_pending.empty()) {
      withFloor();
      return;
    }
    search->waiting = with_pending.size();
    for (const auto& name : with_pending) {
      // Summary form: [count, smallest id, greatest id, [[consumer, count], ...]].
      auto counted = [search, withFloor](bool known, const std::string& oldest) {
        if (known) {
          lower(search->floor, oldest);
        } else {
          search->failed = true;  // unknown: trim nothing this time
        }
        if (--search->waiting == 0) {
          withFloor();
        }
      };
      const bool sent_pending = acks_.send({"XPENDING", ch_.key, name}, [counted](evh_status s2, const redisReply* p) {
        const bool known = s2 == EVH_OK && p->type == REDIS_REPLY_ARRAY && p->elements >= 2;
        counted(known, known ? replyString(p->element[1]) : std::string());
      });
      if (!sent_pending) {
        counted(false, {});
      }
    }
  });
  if (!sent) {
    trimming_ = false;
  }
}

// Removes what the age bound and the length bound ask for, below `floor`
// only. Both are XTRIM MINID ~ (whole nodes), so a few entries over the
// bounds stay.
void StreamSource::trimTo(const std::string& floor, long long length) {
  std::string below = floor;
  if (ch_.trim_max_age_ms > 0) {
    const uint64_t now = wallMs();
    if (now > ch_.trim_max_age_ms) {
      const std::string by_age = std::to_string(now - ch_.trim_max_age_ms) + "-0";
      if (streamIdLess(by_age, below)) {
        below = by_age;  // the age bound asks for less than the floor allows
      }
    }
  }
  const long long excess = ch_.trim_maxlen > 0 ? length - static_cast<long long>(ch_.trim_maxlen) : 0;
  std::weak_ptr<bool> alive = alive_;
  auto byLength = [this, alive, floor, excess](long long removed) {
    if (alive.expired() || !*alive.lock()) {
      return;
    }
    const long long left = excess - removed;
    if (left <= 0 || stopped_) {
      trimDone();
      return;
    }
    // The length bound: the oldest `left` entries, but only below the floor.
    const bool sent =
        acks_.send({"XTRIM", ch_.key, "MINID", "~", floor, "LIMIT", std::to_string(std::min(left, kTrimPerCall))},
                   [this, alive](evh_status st, const redisReply* t) {
                     if (alive.expired() || !*alive.lock()) {
                       return;
                     }
                     if (st == EVH_OK && t->type == REDIS_REPLY_ERROR) {
                       log::host().warn("stream {}: XTRIM failed: {}", ch_.key, std::string_view(t->str, t->len));
                     }
                     trimDone();
                   });
    if (!sent) {
      trimDone();
    }
  };
  if (ch_.trim_max_age_ms == 0) {
    byLength(0);
    return;
  }
  const bool sent =
      acks_.send({"XTRIM", ch_.key, "MINID", "~", below, "LIMIT", std::to_string(kTrimPerCall)},
                 [this, alive, byLength](evh_status st, const redisReply* t) {
                   if (alive.expired() || !*alive.lock()) {
                     return;
                   }
                   if (st == EVH_OK && t->type == REDIS_REPLY_ERROR) {
                     log::host().warn("stream {}: XTRIM failed: {}", ch_.key, std::string_view(t->str, t->len));
                   }
                   byLength(st == EVH_OK && t->type == REDIS_REPLY_INTEGER ? t->integer : 0);
                 });
  if (!sent) {
    trimDone();
  }
}

void StreamSource::trimDone() { trimming_ = false; }

}  // namespace evh::redis
