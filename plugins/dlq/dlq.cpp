// dlq: the bundled dead-letter plugin: keeps entries in a capped Redis list, spooled to a local file while Redis is
// down.
//
// The host hands every dead-lettered event to this plugin as one JSON entry
// (docs/dlq.md has the format, the config and the guarantees). handle() runs
// inline on the loop thread and does CPU work only: it checks the entry,
// queues a copy and answers EVH_PENDING. The plugin's one thread
// (dlq_writer.cpp) takes everything queued at once -- a batch -- and LPUSHes
// it byte-exact to <prefix><key> with one command (then LTRIMs the list to
// max_length), or, when Redis does not answer, appends all of it to the spool
// file with one write and one fsync (group commit); only then does it answer
// each call, OK for an entry in Redis or durably spooled. The same thread
// pushes the spool to Redis once it answers again, before newer entries, so
// that the list keeps arrival order. Delivery from the spool is
// at-least-once: a crash (or a reply lost in transit) during a flush may push
// some entries twice.
//
// Files: dlq.cpp (this: the entry point, handle(), outage bookkeeping), dlq.h
// (the plugin's class), dlq_writer.cpp (the thread: batches to Redis or the
// spool), dlq_settings.cpp (the config), dlq_spool.cpp (the spool file's lines
// and I/O), dlq_push.cpp (LPUSH/LTRIM and waiting for replies),
// dlq_flusher.cpp (pushing the spool back to Redis, LLEN).
#include "dlq.h"

#include "dlq_spool.h"

#include <evh/plugin.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

namespace dlq {

Dlq::Dlq(evh::Host host, std::string_view config_json)
    : Plugin(host),
      settings_(parseSettings(config_json)),
      redis_key_(std::string(host.envPrefix()) + settings_.key),
      trim_stop_(std::to_string(settings_.max_length - 1)),
      stored_(host.counter("stored", "dead-letter entries stored in Redis directly")),
      spooled_(host.counter("spooled", "dead-letter entries appended to the spool file")),
      flushed_(host.counter("flushed", "spooled entries pushed to Redis")),
      already_stored_(host.counter("already_stored",
                                   "spooled entries found in Redis already (their push got no reply), not pushed "
                                   "again")),
      not_stored_(host.counter("not_stored",
                               "entries neither Redis nor the spool file took, answered RETRY (evhost then writes "
                               "them to its dead-letter fallback file)")),
      corrupt_(host.counter("spool_corrupt", "corrupt spool lines dropped")),
      evicted_(host.counter("evicted", "oldest entries trimmed off the list by max_length")),
      pushes_(host.counter("pushes",
                           "LPUSH commands sent, each with a batch of entries: (stored + flushed) / pushes is the "
                           "entries per Redis round trip")),
      spool_appends_(host.counter("spool_appends",
                                  "appends to the spool file, each one write and one fsync shared by a batch of "
                                  "entries: spooled / spool_appends is the entries per fsync")),
      batch_entries_(host.histogram("batch_entries",
                                    "entries per batch: those queued together, stored with one push or one fsync",
                                    {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000})),
      pending_gauge_(host.gauge("spool_pending", "entries in the spool file, not yet in Redis")),
      length_gauge_(host.gauge("list_length",
                               "entries in the dead-letter list (LLEN), as of the last push or "
                               "flush interval")),
      signal_(std::make_shared<Signal>()) {
  host.info("dead-letter entries go to " + redis_key_ + " (newest first, at most " +
            std::to_string(settings_.max_length) + "); spool file " + settings_.spool_file);
  // Last: nothing may throw once the thread runs.
  writer_ = std::thread([this] { runWriter(); });
}

// Runs on the loop thread at shutdown, once every call is completed or
// given up on (the shutdown deadline): signal the thread and join it. Its
// waits (the interval, a reply) end at once on the signal; it spools what
// is still queued (calls the host gave up on) before it returns.
Dlq::~Dlq() {
  {
    std::lock_guard<std::mutex> lock(signal_->mutex);
    signal_->stop = true;
  }
  signal_->cv.notify_all();
  if (writer_.joinable()) {
    writer_.join();
  }
  const Totals& t = totals_;
  host().info("dead-letter entries this run: stored=" + std::to_string(t.stored) +
              " spooled=" + std::to_string(t.spooled) + " flushed=" + std::to_string(t.flushed) +
              " already_stored=" + std::to_string(t.already_stored) + " not_stored=" + std::to_string(t.not_stored) +
              " batches=" + std::to_string(t.batches) + " pushes=" + std::to_string(t.pushes) +
              " spool_appends=" + std::to_string(t.spool_appends) + "; spool_pending=" + std::to_string(pending_));
}

// THREAD: the loop (inline): CPU only -- the spool and Redis are the
// plugin's thread's.
evh::Result Dlq::handle(const evh::Event& ev, evh::Call& call) {
  std::string_view entry = ev.payload();
  if (!isEntry(entry)) {
    return evh::Result::reject("dlq: the dead-letter entry is not a JSON object (" + std::to_string(entry.size()) +
                               " bytes: " + preview(entry) + ")");
  }
  Item item{std::string(entry), std::string(ev.id()), call.defer()};
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(signal_->mutex);
    wake = queue_.empty();  // the thread waits only on an empty queue
    queue_.push_back(std::move(item));
  }
  if (wake) {
    signal_->cv.notify_all();
  }
  return evh::Result::pending();
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

EVH_PLUGIN(dlq::Dlq, "dlq", "0.2.0")
