// Dead-letter entries (docs/dlq.md) and the host's own fallback file.
#pragma once

#include "common/clock.h"
#include "event/envelope.h"
#include "loop/poster.h"

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

namespace evh::dispatch {

// Why and how an event failed, for its entry. Name what you set:
//   DeadLetterInfo::because("invalid").withError("not_json", detail)
// (every member has a default, so an aggregate DeadLetterInfo{a, b, c} works too).
struct DeadLetterInfo {
  std::string reason;         // exhausted, rejected, invalid, circuit_open, overloaded
  std::string error_name;     // what failed last: retry, reject, exception, timeout, invalid, ...
  std::string error_message;  // the plugin's or the host's message
  std::string plugin;         // instance name; empty when no plugin was involved
  uint32_t attempts = 0;
  uint64_t first_attempt_ms = 0;  // wall clock, ms since the epoch; 0 when never attempted
  uint64_t last_attempt_ms = 0;

  static DeadLetterInfo because(std::string reason) {
    DeadLetterInfo info;
    info.reason = std::move(reason);
    return info;
  }
  DeadLetterInfo& withError(std::string name, std::string message) {
    error_name = std::move(name);
    error_message = std::move(message);
    return *this;
  }
  DeadLetterInfo& withPlugin(std::string name) {
    plugin = std::move(name);
    return *this;
  }
  DeadLetterInfo& withAttempts(uint32_t made, uint64_t first_ms, uint64_t last_ms) {
    attempts = made;
    first_attempt_ms = first_ms;
    last_attempt_ms = last_ms;
    return *this;
  }
};

// One entry, ready to store.
struct DeadLetterEntry {
  std::string id;
  std::string reason;  // DeadLetterInfo::reason, for the metrics
  std::string json;    // one compact JSON object, UTF-8
  std::string event_id;
  std::string correlation_id;
};

// For a decoded event (originalEvent is its envelope as a JSON object).
DeadLetterEntry makeEntry(const DeadLetterInfo& info, const event::Event& ev);
// For bytes that could not be decoded (raw is kept as a JSON string).
DeadLetterEntry makeEntry(const DeadLetterInfo& info, std::string_view raw, std::string_view channel,
                          std::string_view redis_channel);

// For a message over limits.max_message_bytes: only its first
// kTooLargePrefixBytes are kept (as `raw`, with `rawTruncated`), with its size
// (`rawBytes`) and SHA-256 (`rawSha256`, hex) to tell it by -- a flood of
// huge messages must not become a flood of huge entries.
constexpr size_t kTooLargePrefixBytes = 4096;
DeadLetterEntry makeTooLargeEntry(const DeadLetterInfo& info, std::string_view bytes, std::string_view channel,
                                  std::string_view redis_channel);

// isoTime() and wallMs(): common/clock.h.

// Appends lines to the fallback file on a thread of its own (file I/O never
// runs on the loop), fsyncing after each batch; each `done(ok)` runs on the
// loop. A line that cannot be written is logged in full at critical level,
// so that even then the entry is not lost.
class FallbackWriter {
 public:
  FallbackWriter(std::string path, Poster& poster);
  ~FallbackWriter();  // writes what is queued, then joins
  FallbackWriter(const FallbackWriter&) = delete;
  FallbackWriter& operator=(const FallbackWriter&) = delete;

  void append(std::string line, std::function<void(bool ok)> done);
  const std::string& path() const noexcept { return path_; }
  uint64_t written() const noexcept { return written_.load(); }

 private:
  void run();

  std::string path_;
  Poster& poster_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::pair<std::string, std::function<void(bool)>>> queue_;
  bool stopping_ = false;
  std::atomic<uint64_t> written_{0};
  std::thread thread_;
};

}  // namespace evh::dispatch
