// Idempotency per route: skip an eventId the plugin already handled (marks
// in Redis, shared by every instance), and mark it once handled.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace spdlog {
class logger;
}

namespace evh::dispatch {

// Where idempotency marks live (Redis, shared by every instance).
class IdempotencyStore {
 public:
  virtual ~IdempotencyStore() = default;
  // Is `key` marked? cb(true/false), or cb(nullopt) when Redis could not
  // say. Returns false (cb never runs) when the request cannot be sent.
  virtual bool check(const std::string& key, std::function<void(std::optional<bool>)> cb) = 0;
  // Marks `key` for ttl_ms; cb(ok). Returns false when it cannot be sent.
  virtual bool mark(const std::string& key, uint64_t ttl_ms, std::function<void(bool)> cb) = 0;
};

// The dispatcher's use of the store. THREAD: loop.
class Idempotency {
 public:
  // store null: never skip. Keys are <prefix><plugin>:<eventId>.
  Idempotency(IdempotencyStore* store, std::string prefix) : store_(store), prefix_(std::move(prefix)) {}

  bool enabled() const noexcept { return store_ != nullptr; }
  std::string key(const std::string& plugin, std::string_view event_id) const;
  // seen(true) when the key is marked; seen(false) when it is not or Redis
  // could not say (handle it: at least once). False when the question could
  // not be sent (seen never runs).
  bool check(const std::string& key, std::function<void(bool seen)> seen);
  // Marks the key only now that the handler succeeded (marking first would
  // turn a failure into a loss); `then` runs once it is set, or failed
  // (logged to `log`: a redelivery may apply the event again).
  void mark(const std::string& key, uint64_t ttl_ms, spdlog::logger& log, std::string_view event_id,
            std::function<void()> then);

 private:
  IdempotencyStore* store_;
  std::string prefix_;
};

}  // namespace evh::dispatch
