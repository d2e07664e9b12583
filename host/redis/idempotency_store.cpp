// Idempotency marks: MGET (or EXISTS) to check, SET PX to mark.
#include "redis/idempotency_store.h"

#include "common/log.h"
#include "loop/io_phase.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <charconv>
#include <memory>
#include <utility>

namespace evh::redis {

IdempotencyStore::IdempotencyStore(uv_loop_t* loop, CommandClient& commands)
    : commands_(commands), check_(makeUvHandle<uv_check_t>(loop, uv_check_init)) {
  if (check_) {
    check_->data = this;
    uv_check_start(check_.get(), [](uv_check_t* h) { static_cast<IdempotencyStore*>(h->data)->flush(); });
    uv_unref(reinterpret_cast<uv_handle_t*>(check_.get()));  // never keeps the loop alive by itself
  }
}

// The server flushes at shutdown, before the connection cancels its
// requests; a question still queued here has no one left to answer.
IdempotencyStore::~IdempotencyStore() = default;

bool IdempotencyStore::check(const std::string& key, std::function<void(std::optional<bool>)> cb) {
  // Queued only where this iteration's check phase is sure to come (see
  // loop/io_phase.h): from a timer the loop could wait for I/O first.
  if (!check_ || !inIoPhase() || commands_.cluster() != nullptr) {
    return exists(key, std::move(cb));
  }
  if (!commands_.ready()) {
    return false;  // as EXISTS would answer: not sent, cb never runs
  }
  queued_.push_back(Question{key, std::move(cb)});
  return true;
}

bool IdempotencyStore::exists(const std::string& key, std::function<void(std::optional<bool>)> cb) {
  return commands_.send({"EXISTS", key}, [cb = std::move(cb)](evh_status status, const redisReply* r) {
    if (status != EVH_OK || r->type != REDIS_REPLY_INTEGER) {
      cb(std::nullopt);
      return;
    }
    cb(r->integer > 0);
  });
}

void IdempotencyStore::flush() {
  while (!queued_.empty()) {
    std::vector<Question> all;
    all.swap(queued_);  // a question asked while these are sent waits for the next round
    for (size_t from = 0; from < all.size(); from += kMaxKeysPerCommand) {
      const size_t to = std::min(all.size(), from + kMaxKeysPerCommand);
      send(std::vector<Question>(std::make_move_iterator(all.begin() + static_cast<std::ptrdiff_t>(from)),
                                 std::make_move_iterator(all.begin() + static_cast<std::ptrdiff_t>(to))));
    }
  }
}

// One MGET for the batch; each question answered from its element (nil: not
// marked). Any failure answers every question "could not say".
void IdempotencyStore::send(std::vector<Question> batch) {
  if (batch.size() == 1) {
    Question q = std::move(batch.front());
    if (!exists(q.key, q.cb)) {
      q.cb(std::nullopt);
    }
    return;
  }
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  argv.reserve(batch.size() + 1);
  lens.reserve(batch.size() + 1);
  argv.push_back("MGET");
  lens.push_back(4);
  for (const Question& q : batch) {
    argv.push_back(q.key.data());
    lens.push_back(q.key.size());
  }
  auto questions = std::make_shared<std::vector<Question>>(std::move(batch));
  const bool sent = commands_.send(static_cast<int>(argv.size()), argv.data(), lens.data(),
                                   [this, questions](evh_status status, const redisReply* r) {
                                     if (status == EVH_OK && r->type == REDIS_REPLY_ERROR) {
                                       onRefused(*questions, std::string(r->str, r->len));
                                       return;
                                     }
                                     const bool ok = status == EVH_OK && r->type == REDIS_REPLY_ARRAY &&
                                                     r->elements == questions->size();
                                     for (size_t i = 0; i < questions->size(); ++i) {
                                       const auto& cb = (*questions)[i].cb;
                                       if (!ok) {
                                         cb(std::nullopt);
                                       } else {
                                         cb(r->element[i]->type != REDIS_REPLY_NIL);
                                       }
                                     }
                                   });
  if (!sent) {
    for (const Question& q : *questions) {
      q.cb(std::nullopt);  // queued as sent: answered, "could not say"
    }
  }
}

// Redis answered the MGET with an error (NOPERM from an ACL written for
// EXISTS, say): said once, and every question asked again with EXISTS --
// from now on too, so that duplicates are still found.
void IdempotencyStore::onRefused(std::vector<Question>& questions, const std::string& error) {
  if (!mget_refused_) {
    mget_refused_ = true;
    log::host().warn(
        "redis refused MGET for idempotency marks ({}): asking with EXISTS, one command per event, from now on "
        "(give the ACL user +mget)",
        error);
  }
  for (Question& q : questions) {
    if (!exists(q.key, q.cb)) {
      q.cb(std::nullopt);
    }
  }
}

bool IdempotencyStore::mark(const std::string& key, uint64_t ttl_ms, std::function<void(bool)> cb) {
  char ttl[24];
  const auto end = std::to_chars(ttl, ttl + sizeof ttl, ttl_ms).ptr;
  return commands_.sendFew({"SET", key, "1", "PX", std::string_view(ttl, static_cast<size_t>(end - ttl))},
                           [cb = std::move(cb)](evh_status status, const redisReply* r) {
                             cb(status == EVH_OK && r->type != REDIS_REPLY_ERROR);
                           });
}

}  // namespace evh::redis
