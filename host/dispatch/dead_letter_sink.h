// Where dead-letter entries go: the dead_letter.plugin, or the fallback file
// when there is none, it fails, too many entries are on their way to it, or
// the shutdown deadline has passed. Keeps the accounting of entries not yet
// stored (count and bytes: the dead-letter backpressure reads them).
// THREAD: loop, unless said otherwise.
#pragma once

#include "dispatch/dead_letter.h"
#include "ops/stats.h"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

namespace evh::dispatch {

// How the sink reaches the dead-letter plugin and tells about progress.
class SinkEvents {
 public:
  // Hands `entry` to the dead-letter plugin; `stored` runs once it is
  // stored -- by the plugin or, when that fails, in the fallback file.
  virtual void toPlugin(std::shared_ptr<const DeadLetterEntry> entry, std::function<void()> stored,
                        bool from_stream) = 0;
  // An entry was stored: the dispatcher may be idle now.
  virtual void stored() = 0;

 protected:
  ~SinkEvents() = default;
};

class DeadLetterSink {
 public:
  struct Options {
    bool has_plugin = false;
    std::string fallback_file;
    uint32_t max_pending = 10000;  // beyond: entries go straight to the fallback file
  };
  // Series (docs/metrics.md, "Dead letters"): evhost_dead_letters_total
  // {reason}, evhost_dead_letters_stored_total{sink}, the plugin's failures
  // and the fallback file's.
  DeadLetterSink(Poster& poster, Options options, SinkEvents& events, ops::Registry& stats);
  DeadLetterSink(const DeadLetterSink&) = delete;
  DeadLetterSink& operator=(const DeadLetterSink&) = delete;

  // Stores `entry`; `done` runs once it is stored (not after abandon()).
  // `from_stream`: done acks a stream entry (left pending at the deadline).
  void submit(DeadLetterEntry entry, std::function<void()> done, bool from_stream);
  // The dead-letter plugin's outcome for an entry toPlugin() gave it.
  void pluginOutcome(const DeadLetterEntry& entry, bool ok, const std::string& plugin, const char* error_name,
                     const std::string& error, std::function<void()> stored);
  // At the shutdown deadline: later entries go to the fallback file, and
  // `done` callbacks no longer run (what they refer to may be gone).
  void abandon() { abandoned_ = true; }
  // Appends a line to the fallback file as it is (the deadline's entries).
  // THREAD: loop, or any while the loop is parked (writeUnfinishedForExit).
  void appendNow(std::string json);
  // Writes whatever the fallback writer holds and joins its thread; later
  // entries are logged in full.
  void close() {
    if (fallback_) {
      written_at_close_ = fallback_->written();  // the last batch may still come
      fallback_.reset();
    }
  }
  bool closed() const noexcept { return fallback_ == nullptr; }

  size_t pending() const noexcept { return pending_; }
  uint64_t backlogBytes() const noexcept { return bytes_; }
  uint64_t fallbackWrites() const noexcept { return fallback_ ? fallback_->written() : written_at_close_; }

 private:
  void toFallback(std::string json, std::function<void()> done);
  const ops::Counter& byReason(const std::string& reason);

  Options options_;
  ops::Scope stats_;
  std::map<std::string, ops::Counter, std::less<>> by_reason_;  // reasons are a fixed set (and checks' codes)
  ops::Counter to_plugin_;
  ops::Counter to_file_;
  ops::Counter plugin_failures_;
  ops::Counter file_failures_;
  SinkEvents& events_;
  std::unique_ptr<FallbackWriter> fallback_;
  uint64_t written_at_close_ = 0;
  size_t pending_ = 0;  // entries on their way (plugin or file)
  uint64_t bytes_ = 0;  // of those, their bytes
  bool abandoned_ = false;
};

}  // namespace evh::dispatch
