// The dead-letter sink: the plugin, the fallback file, the backlog.
#include "dispatch/dead_letter_sink.h"

#include "common/log.h"

#include <spdlog/spdlog.h>

namespace evh::dispatch {

namespace {

constexpr const char* kStored = "evhost_dead_letters_stored_total";
constexpr const char* kStoredHelp =
    "dead-letter entries stored, by where: the dead_letter.plugin, or the fallback file (no plugin, the plugin "
    "failed, too many on their way to it, or the shutdown deadline passed)";

}  // namespace

DeadLetterSink::DeadLetterSink(Poster& poster, Options options, SinkEvents& events, ops::Registry& stats)
    : options_(std::move(options)),
      stats_(stats),
      to_plugin_(stats_.counter(kStored, kStoredHelp, {{"sink", "plugin"}})),
      to_file_(stats_.counter(kStored, kStoredHelp, {{"sink", "fallback_file"}})),
      plugin_failures_(stats_.counter("evhost_dead_letter_plugin_failures_total",
                                      "entries the dead_letter.plugin failed to store, written to the fallback file")),
      file_failures_(stats_.counter("evhost_dead_letter_file_failures_total",
                                    "entries the fallback file could not take, logged in full at critical level")),
      events_(events),
      fallback_(std::make_unique<FallbackWriter>(options_.fallback_file, poster)) {
  for (const char* reason : {"exhausted", "rejected", "invalid", "circuit_open", "overloaded", "shutdown", "abandoned",
                             "poison", "trimmed"}) {
    byReason(reason);  // at 0 from the start
  }
}

const ops::Counter& DeadLetterSink::byReason(const std::string& reason) {
  auto it = by_reason_.find(reason);
  if (it == by_reason_.end()) {
    it = by_reason_
             .emplace(reason,
                      stats_.counter("evhost_dead_letters_total",
                                     "dead-letter entries made, by reason (see docs/dlq.md)", {{"reason", reason}}))
             .first;
  }
  return it->second;
}

void DeadLetterSink::submit(DeadLetterEntry entry, std::function<void()> done, bool from_stream) {
  byReason(entry.reason).inc();
  ++pending_;
  const size_t bytes = entry.json.size();
  bytes_ += bytes;
  auto finished = [this, bytes, done = std::move(done)] {
    --pending_;
    bytes_ -= bytes;
    // After the deadline the things `done` refers to (a stream source to
    // ack on, say) may be gone; the entry is stored all the same.
    if (done && !abandoned_) {
      done();
    }
    events_.stored();
  };
  if (options_.has_plugin && !abandoned_ && pending_ <= options_.max_pending) {
    events_.toPlugin(std::make_shared<const DeadLetterEntry>(std::move(entry)), std::move(finished), from_stream);
    return;
  }
  toFallback(std::move(entry.json), std::move(finished));
}

void DeadLetterSink::pluginOutcome(const DeadLetterEntry& entry, bool ok, const std::string& plugin,
                                   const char* error_name, const std::string& error, std::function<void()> stored) {
  if (ok) {
    to_plugin_.inc();
    stored();
    return;
  }
  plugin_failures_.inc();
  log::host().error("dead-letter plugin {} failed ({}: {}); writing entry {} to the fallback file {}", plugin,
                    error_name, error.empty() ? "no message" : error, entry.id, options_.fallback_file);
  toFallback(entry.json, std::move(stored));
}

void DeadLetterSink::appendNow(std::string json) {
  if (fallback_) {
    fallback_->append(std::move(json), {});
  }
}

void DeadLetterSink::toFallback(std::string json, std::function<void()> done) {
  if (!fallback_) {
    log::host().critical("dead-letter fallback file closed; the entry follows: {}", json);
    if (done) {
      done();
    }
    return;
  }
  fallback_->append(std::move(json), [this, done = std::move(done)](bool written) {
    // Written, or logged in full when the file failed: either way it is out.
    (written ? to_file_ : file_failures_).inc();
    if (done) {
      done();
    }
  });
}

}  // namespace evh::dispatch
