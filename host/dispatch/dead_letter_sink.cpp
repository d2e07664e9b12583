// The dead-letter sink: the plugin, the fallback file, the backlog.
#include "dispatch/dead_letter_sink.h"

#include "common/log.h"

#include <spdlog/spdlog.h>

namespace evh::dispatch {

DeadLetterSink::DeadLetterSink(Poster& poster, Options options, SinkEvents& events)
    : options_(std::move(options)),
      events_(events),
      fallback_(std::make_unique<FallbackWriter>(options_.fallback_file, poster)) {}

void DeadLetterSink::submit(DeadLetterEntry entry, std::function<void()> done, bool from_stream) {
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
    stored();
    return;
  }
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
  fallback_->append(std::move(json), [done = std::move(done)](bool) {
    // Written, or logged in full when the file failed: either way it is out.
    if (done) {
      done();
    }
  });
}

}  // namespace evh::dispatch
