// dlq.h: the dead-letter plugin's class, shared by the files that implement
// it: dlq.cpp (the entry point, handle() and the spooling of an entry),
// dlq_push.cpp (commands to Redis and the wait for their replies) and
// dlq_flusher.cpp (the thread that pushes the spool to Redis). Internal to
// the plugin; dlq.cpp describes what the plugin does.
#pragma once

#include "dlq_settings.h"

#include <evh/plugin.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace dlq {

using Clock = std::chrono::steady_clock;

// Wakes whoever waits in the plugin: reply callbacks (loop thread) and the
// destructor signal it. Reply callbacks hold it by shared_ptr, so a reply
// that arrives after its waiter gave up still touches live memory only.
struct Signal {
  std::mutex mutex;
  std::condition_variable cv;
  bool stop = false;  // the plugin is being destroyed
};

// One command's reply as roundTrip() hands it back.
struct Answer {
  bool ok = false;
  bool stopped = false;  // the host or the plugin is shutting down: not an outage
  int64_t integer = 0;   // an integer reply's value (LPUSH: the list's new length)
  std::string error;
};

// What one push achieved (Stopped: the host or the plugin is shutting down).
enum class Store { Ok, Failed, Stopped };
// What one flush pass achieved.
enum class Pass { Empty, Done, OutOfTime, Failed };

class Dlq final : public evh::Plugin {
 public:
  static constexpr uint32_t kFlags = EVH_PLUGIN_BLOCKING;  // file I/O and waits for Redis
  static constexpr uint32_t kMaxConcurrency = 1;
  static constexpr const char* kDescription =
      "dead-letter queue: entries in a capped Redis list, spooled to a file while Redis is down";

  Dlq(evh::Host host, std::string_view config_json);
  ~Dlq() override;

  evh::Result handle(const evh::Event& ev, evh::Call& call) override;

 private:
  // dlq_push.cpp
  std::vector<Answer> roundTrip(const std::vector<std::vector<std::string_view>>& commands);
  Store push(const std::vector<std::string_view>& oldest_first, std::string& error);

  // dlq.cpp
  evh::Result spool(const evh::Event& ev, std::string_view entry, const std::string& why);
  void noteFailure(const std::string& error);
  void noteRedisOk();
  void setPending(int64_t n);

  // dlq_flusher.cpp
  Pass flushPass(Clock::time_point deadline);
  void runFlusher();
  void refreshLength();
  void countSpool();
  bool stopping();

  const Settings settings_;
  const std::string redis_key_;
  const std::string trim_stop_;  // LTRIM's last index: max_length - 1
  evh::Metric stored_;
  evh::Metric spooled_;
  evh::Metric flushed_;
  evh::Metric corrupt_;
  evh::Metric evicted_;
  // Eviction log throttle (push() runs one call at a time: worker or flusher
  // under mutex_).
  int64_t evicted_since_log_ = 0;
  std::chrono::steady_clock::time_point last_evicted_log_{};
  evh::Metric pending_gauge_;
  evh::Metric length_gauge_;
  bool length_warned_ = false;  // the flusher's: LLEN failed and said so
  std::shared_ptr<Signal> signal_;

  // Serializes spool access and the Redis pushes between handle() and the
  // flusher, which keeps the list in order. Lock order: mutex_, then
  // signal_->mutex.
  std::mutex mutex_;
  bool outage_ = false;        // the last push failed; guarded by mutex_
  std::string outage_reason_;  // guarded by mutex_
  int64_t pending_ = 0;        // spooled entries; guarded by mutex_

  std::thread flusher_;  // last: started once everything above exists
};

}  // namespace dlq
