// dlq: the bundled dead-letter plugin: keeps entries in a capped Redis list, spooled to a local file while Redis is
// down.
//
// The host hands every dead-lettered event to this plugin as one JSON entry
// (docs/dlq.md has the format, the config and the guarantees). handle() runs
// on a worker thread (EVH_PLUGIN_BLOCKING, one call at a time): it LPUSHes the
// entry byte-exact to <prefix><key> and LTRIMs the list to max_length. When
// Redis does not answer, the entry is appended to the spool file and fsync'd
// instead, and a thread owned by the plugin pushes the spool to Redis once it
// answers again. Delivery from the spool is at-least-once: a crash (or a reply
// lost in transit) during a flush may push some entries twice.
//
// Files: dlq.cpp (this: the entry point, handle(), spooling an entry), dlq.h
// (the plugin's class), dlq_settings.cpp (the config), dlq_spool.cpp (the
// spool file's lines and I/O), dlq_push.cpp (LPUSH/LTRIM and waiting for
// replies), dlq_flusher.cpp (pushing the spool back to Redis).
#include "dlq.h"

#include "dlq_spool.h"

#include <evh/plugin.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <thread>

namespace dlq {
namespace {

// handle() pushes older spooled entries before its own (to keep the list in
// order), starting no new batch after this long, so that one call stays
// inside the host's dead-letter timeout (5 s by default) even with a slow
// reply on top; the rest is left to the flusher.
constexpr std::chrono::milliseconds kHandleFlushBudget{500};

}  // namespace

Dlq::Dlq(evh::Host host, std::string_view config_json)
    : Plugin(host),
      settings_(parseSettings(config_json)),
      redis_key_(std::string(host.envPrefix()) + settings_.key),
      trim_stop_(std::to_string(settings_.max_length - 1)),
      stored_(host.counter("stored", "dead-letter entries stored in Redis directly")),
      spooled_(host.counter("spooled", "dead-letter entries appended to the spool file")),
      flushed_(host.counter("flushed", "spooled entries pushed to Redis")),
      corrupt_(host.counter("spool_corrupt", "corrupt spool lines dropped")),
      evicted_(host.counter("evicted", "oldest entries trimmed off the list by max_length")),
      pending_gauge_(host.gauge("spool_pending", "entries in the spool file, not yet in Redis")),
      length_gauge_(host.gauge("list_length",
                               "entries in the dead-letter list (LLEN), as of the last push or "
                               "flush interval")),
      signal_(std::make_shared<Signal>()) {
  host.info("dead-letter entries go to " + redis_key_ + " (newest first, at most " +
            std::to_string(settings_.max_length) + "); spool file " + settings_.spool_file);
  // Last: nothing may throw once the thread runs.
  flusher_ = std::thread([this] { runFlusher(); });
}

// Runs on the loop thread at shutdown: signal the flusher and join it. Its
// waits (the interval, a reply) end at once on the signal.
Dlq::~Dlq() {
  {
    std::lock_guard<std::mutex> lock(signal_->mutex);
    signal_->stop = true;
  }
  signal_->cv.notify_all();
  if (flusher_.joinable()) {
    flusher_.join();
  }
}

evh::Result Dlq::handle(const evh::Event& ev, evh::Call& /*call*/) {
  std::string_view entry = ev.payload();
  if (!isEntry(entry)) {
    return evh::Result::reject("dlq: the dead-letter entry is not a JSON object (" + std::to_string(entry.size()) +
                               " bytes: " + preview(entry) + ")");
  }
  std::lock_guard<std::mutex> lock(mutex_);
  if (fileHasData(settings_.spool_file)) {
    // Older entries first, so that the list stays newest-first. During an
    // outage the flusher finds out when Redis is back; no need to try here.
    if (!outage_) {
      flushPass(Clock::now() + kHandleFlushBudget);
    }
    if (fileHasData(settings_.spool_file)) {
      return spool(ev, entry, outage_ ? outage_reason_ : "older entries are still being flushed");
    }
  }
  std::string error;
  Store s = push({entry}, error);
  if (s == Store::Ok) {
    stored_.add();
    noteRedisOk();
    return evh::Result::ok();
  }
  if (s == Store::Failed) {
    noteFailure(error);
  }
  return spool(ev, entry, error);
}

// Appends the entry to the spool. THREAD: worker, with mutex_ held.
evh::Result Dlq::spool(const evh::Event& ev, std::string_view entry, const std::string& why) {
  std::string error;
  if (!appendLine(settings_.spool_file, spoolLine(entry), error)) {
    host().error("cannot spool dead-letter entry " + std::string(ev.id()) + " to " + settings_.spool_file + ": " +
                 error);
    return evh::Result::retry("dlq: not stored: Redis: " + why + "; spool file " + settings_.spool_file + ": " + error);
  }
  spooled_.add();
  setPending(pending_ + 1);
  if (host().logEnabled(evh::LogLevel::Debug)) {
    host().debug("spooled dead-letter entry " + std::string(ev.id()) + " (" + why + ")");
  }
  return evh::Result::ok();
}

// Logged once per outage, not once per entry.
void Dlq::noteFailure(const std::string& error) {
  outage_reason_ = error;
  if (!outage_) {
    outage_ = true;
    host().warn("cannot store dead-letter entries in Redis (" + error + "): spooling them to " + settings_.spool_file +
                " and retrying every " + std::to_string(settings_.flush_interval_ms) + " ms");
  }
}

void Dlq::noteRedisOk() {
  if (outage_) {
    outage_ = false;
    host().info("Redis answers again: dead-letter entries go to " + redis_key_);
  }
}

void Dlq::setPending(int64_t n) {
  pending_ = n;
  pending_gauge_.set(n);
}

}  // namespace dlq

EVH_PLUGIN(dlq::Dlq, "dlq", "0.1.0")
