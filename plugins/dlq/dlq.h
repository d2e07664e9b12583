// dlq.h: the dead-letter plugin's class, shared by the files that implement
// it: dlq.cpp (the entry point, handle(), outage bookkeeping), dlq_writer.cpp
// (the plugin's thread: group commit of the queued entries to Redis or the
// spool), dlq_push.cpp (commands to Redis and the wait for their replies) and
// dlq_flusher.cpp (pushing the spool back to Redis). Internal to the plugin;
// dlq.cpp describes what the plugin does.
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
#include <unordered_set>
#include <vector>

namespace dlq {

using Clock = std::chrono::steady_clock;

// A flush pass (before a batch, or on the interval) starts no new LPUSH
// after this long, so that a call stays inside the host's dead-letter
// timeout (5 s by default) even with a slow reply on top; on the interval,
// the next pass follows at once while progress is made.
constexpr std::chrono::milliseconds kFlushBudget{500};

// One LPUSH carries at most this many entries or bytes (a batch larger
// than that takes several, one after the other, in order).
constexpr size_t kPushMaxEntries = 1000;
constexpr size_t kPushMaxBytes = 1024 * 1024;

// Wakes the plugin's thread: handle() (loop thread) when it queues an entry
// into an empty queue, reply callbacks (loop thread) and the destructor.
// Reply callbacks hold it by shared_ptr, so a reply that arrives after its
// waiter gave up still touches live memory only.
struct Signal {
  std::mutex mutex;
  std::condition_variable cv;
  bool stop = false;  // the plugin is being destroyed
};

// One command's reply as roundTrip() hands it back.
struct Answer {
  bool ok = false;
  bool stopped = false;  // the host or the plugin is shutting down: not an outage
  bool nil = false;      // a nil reply
  // Sent, but no reply came (the connection was lost, a timeout, a stop):
  // Redis may have run it or not.
  bool unsure = false;
  bool refused = false;  // Redis answered with an error reply
  int64_t integer = 0;   // an integer reply's value (LPUSH: the list's new length)
  std::string error;
};

// What one push achieved (Stopped: the host or the plugin is shutting down).
enum class Store { Ok, Failed, Stopped };
// What one flush pass achieved.
enum class Pass { Empty, Done, OutOfTime, Failed };

// What pushInOrder() achieved: the first `count` entries are in Redis; the
// rest are not because of `store` (Ok: the deadline passed first).
struct Pushed {
  size_t count = 0;
  Store store = Store::Ok;
  // The push that failed may have been stored all the same (no reply came):
  // entries [count, unsure_end) are in Redis or not.
  size_t unsure_end = 0;
};

// A dead-letter entry handle() queued, and its call (answered EVH_PENDING).
struct Item {
  std::string entry;
  std::string id;  // the event's id, for log lines
  evh::Completion done;
};

// What the plugin's thread did, for the summary line at shutdown.
struct Totals {
  uint64_t batches = 0;
  uint64_t stored = 0;
  uint64_t spooled = 0;
  uint64_t flushed = 0;
  uint64_t already_stored = 0;
  uint64_t not_stored = 0;
  uint64_t pushes = 0;
  uint64_t spool_appends = 0;
};

class Dlq final : public evh::Plugin {
 public:
  // Inline: handle() only checks and queues the entry (on the loop thread,
  // in arrival order); the plugin's thread does the I/O and completes it.
  static constexpr uint32_t kFlags = 0;
  static constexpr const char* kDescription =
      "dead-letter queue: entries in a capped Redis list, spooled to a file while Redis is down";

  // validate_config (ABI 1.3): the constructor's parser, every problem reported.
  static void validateConfig(std::string_view config_json, evh::ConfigErrors& errors) {
    parseSettings(config_json, errors);
  }

  Dlq(evh::Host host, std::string_view config_json);
  ~Dlq() override;

  evh::Result handle(const evh::Event& ev, evh::Call& call) override;

 private:
  // dlq_writer.cpp: the plugin's thread
  void runWriter();
  void commit(std::vector<Item>& batch);
  void spoolBatch(std::vector<Item>& batch, size_t from, const std::string& why);

  // dlq_push.cpp
  std::vector<Answer> roundTrip(const std::vector<std::vector<std::string_view>>& commands);
  Store push(const std::vector<std::string_view>& oldest_first, std::string& error, bool& unsure);
  Pushed pushInOrder(const std::vector<std::string_view>& oldest_first, Clock::time_point deadline, std::string& error);

  // dlq.cpp
  void noteFailure(const std::string& error);
  void noteRedisOk();
  void setPending(int64_t n);

  // dlq_flusher.cpp
  Pass flushPass(Clock::time_point deadline);
  bool dropStored(std::vector<std::string_view>& lines, std::vector<std::string>& entries, std::string& error);
  void noteUnsure(const std::vector<std::string_view>& oldest_first, const Pushed& p);
  Clock::time_point onInterval(std::chrono::milliseconds interval);
  void refreshLength();
  void countSpool();
  bool stopping();

  const Settings settings_;
  const std::string redis_key_;
  const std::string trim_stop_;  // LTRIM's last index: max_length - 1
  evh::Metric stored_;
  evh::Metric spooled_;
  evh::Metric flushed_;
  evh::Metric already_stored_;
  evh::Metric not_stored_;
  evh::Metric corrupt_;
  evh::Metric evicted_;
  evh::Metric pushes_;
  evh::Metric spool_appends_;
  evh::Metric batch_entries_;
  evh::Metric pending_gauge_;
  evh::Metric length_gauge_;
  std::shared_ptr<Signal> signal_;

  // What handle() queued, oldest first; guarded by signal_->mutex. Bounded
  // by the host, which hands its dead-letter plugin at most 10,000 entries
  // at a time (more go straight to its fallback file), and no more than
  // limits.max_dead_letter_bytes of them.
  std::vector<Item> queue_;

  // The plugin's thread's alone (no lock): it is the only one to touch the
  // spool and push to Redis, which keeps the list in order.
  bool outage_ = false;  // the last push failed
  std::string outage_reason_;
  int64_t pending_ = 0;         // spooled entries
  bool length_warned_ = false;  // LLEN failed and said so
  bool lpos_warned_ = false;    // LPOS was refused and said so
  int64_t evicted_since_log_ = 0;
  Clock::time_point last_evicted_log_{};
  // Entries whose push got no reply and were spooled: Redis may hold them
  // already. The next flush asks (LPOS) before pushing them again, so that
  // a connection lost between Redis's LPUSH and its reply stores no entry
  // twice. Not kept across a restart (then at least once, as for a crash).
  std::unordered_set<std::string> unsure_;
  Totals totals_;  // read by the destructor once the thread is joined

  std::thread writer_;  // last: started once everything above exists
};

}  // namespace dlq
