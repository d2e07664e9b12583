// Idempotency marks in Redis, over the command connection: a (plugin,
// eventId) handled within a route's idempotency ttl is not handled again.
//
// The questions asked during one I/O callback (a stream read's entries, a
// burst of Pub/Sub messages) share one MGET, sent at the check phase of the
// same loop iteration: one command and one reply for a batch instead of an
// EXISTS each. Elsewhere (a retry's timer), under a Redis Cluster (the keys
// of a batch live in many slots) and once Redis refused an MGET (logged;
// those questions are asked again with EXISTS) each question is its own
// EXISTS.
#pragma once

#include "dispatch/dispatcher.h"
#include "loop/uv_handle.h"
#include "redis/command_client.h"

#include <uv.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace evh::redis {

class IdempotencyStore final : public dispatch::IdempotencyStore {
 public:
  IdempotencyStore(uv_loop_t* loop, CommandClient& commands);
  ~IdempotencyStore() override;
  IdempotencyStore(const IdempotencyStore&) = delete;
  IdempotencyStore& operator=(const IdempotencyStore&) = delete;

  // Is the key marked: queued for this iteration's MGET, or EXISTS (see
  // above). A key holding something other than a string counts as marked
  // for EXISTS, not for MGET (nil): evhost writes marks as strings. THREAD: loop.
  bool check(const std::string& key, std::function<void(std::optional<bool>)> cb) override;
  // SET key 1 PX ttl_ms. THREAD: loop.
  bool mark(const std::string& key, uint64_t ttl_ms, std::function<void(bool)> cb) override;

  // Sends what is queued now (at shutdown, before the command connection
  // cancels what waits for a reply). THREAD: loop.
  void flush();

  // At most this many keys per MGET.
  static constexpr size_t kMaxKeysPerCommand = 1000;

 private:
  struct Question {
    std::string key;
    std::function<void(std::optional<bool>)> cb;
  };
  bool exists(const std::string& key, std::function<void(std::optional<bool>)> cb);
  void send(std::vector<Question> batch);
  void onRefused(std::vector<Question>& questions, const std::string& error);

  CommandClient& commands_;
  // Redis refused MGET (an ACL without +mget, say): EXISTS from then on.
  bool mget_refused_ = false;
  UvHandle<uv_check_t> check_;    // flushes at the check phase
  std::vector<Question> queued_;  // asked during this iteration's I/O callbacks
};

}  // namespace evh::redis
