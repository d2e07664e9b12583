// dlq_writer: the plugin's thread and its group commit. handle() queues the
// entries (dlq.cpp); this thread takes everything queued at once -- a
// batch -- and stores it in arrival order: with one LPUSH (one per
// kPushMaxEntries / kPushMaxBytes of a larger batch, one after the other),
// or, when Redis does not answer or older entries are still spooled, with
// one append to the spool file: one write and one fsync. Only then does it
// answer the batch's calls: OK for the entries in Redis or durably spooled,
// RETRY for those neither took (the host writes them to its fallback file).
// Entries arriving meanwhile queue up and share the next batch's round trip
// or fsync, so a flood of dead letters during an outage costs a few fsyncs,
// not one each. Every flush_interval_ms the thread also pushes the spool
// back to Redis (dlq_flusher.cpp) and reads the list's length.
#include "dlq.h"

#include "dlq_spool.h"

#include <exception>

namespace dlq {
namespace {

std::string entries(size_t n) { return std::to_string(n) + (n == 1 ? " dead-letter entry" : " dead-letter entries"); }

}  // namespace

// THREAD: the plugin's, from the constructor until the destructor joins it.
void Dlq::runWriter() {
  countSpool();
  const auto interval = std::chrono::milliseconds(settings_.flush_interval_ms);
  Clock::time_point next_flush = Clock::now() + interval;
  std::vector<Item> batch;
  for (;;) {
    bool stop = false;
    {
      std::unique_lock<std::mutex> lock(signal_->mutex);
      signal_->cv.wait_until(lock, next_flush, [&] { return signal_->stop || !queue_.empty(); });
      batch.swap(queue_);
      stop = signal_->stop;
    }
    if (batch.empty() && stop) {
      return;  // everything queued is answered
    }
    try {
      if (!batch.empty()) {
        commit(batch);
      }
      // The interval's work comes between batches even when they never
      // stop coming: it is what finds out that Redis is back.
      if (!stop && Clock::now() >= next_flush) {
        next_flush = onInterval(interval);
      }
    } catch (const std::exception& e) {
      // Out of memory, say. The calls of the batch not answered yet are
      // answered RETRY as their Completions go (exactly once).
      host().error(std::string("dead-letter plugin thread: ") + e.what());
      next_flush = Clock::now() + interval;
    }
    batch.clear();
  }
}

// Stores one batch, oldest first, and answers each of its calls.
void Dlq::commit(std::vector<Item>& batch) {
  ++totals_.batches;
  batch_entries_.observe(static_cast<double>(batch.size()));
  if (stopping()) {
    // Calls the host gave up on at its shutdown deadline: kept all the same.
    spoolBatch(batch, 0, "evhost is stopping");
    return;
  }
  if (fileHasData(settings_.spool_file)) {
    // Older entries first, so that the list stays newest-first. During an
    // outage the interval finds out when Redis is back; no need to try here.
    if (!outage_) {
      flushPass(Clock::now() + kFlushBudget);
    }
    if (fileHasData(settings_.spool_file)) {
      spoolBatch(batch, 0, outage_ ? outage_reason_ : "older entries are still being flushed");
      return;
    }
  }
  std::vector<std::string_view> oldest_first;
  oldest_first.reserve(batch.size());
  for (const Item& item : batch) {
    oldest_first.push_back(item.entry);
  }
  std::string error;
  const Pushed p = pushInOrder(oldest_first, Clock::time_point::max(), error);
  const size_t pushed = p.count;
  noteUnsure(oldest_first, p);
  stored_.add(static_cast<int64_t>(pushed));
  totals_.stored += pushed;
  for (size_t i = 0; i < pushed; ++i) {
    batch[i].done.complete(evh::Result::ok());
  }
  if (pushed < batch.size()) {
    spoolBatch(batch, pushed, error);
  }
}

// Appends batch[from..] to the spool with one write and one fsync, then
// answers those calls: OK once the fsync covering them is done, RETRY (with
// both reasons) when the spool failed too. `why`: why not Redis.
void Dlq::spoolBatch(std::vector<Item>& batch, size_t from, const std::string& why) {
  const size_t n = batch.size() - from;
  std::vector<std::string> lines;
  lines.reserve(n);
  for (size_t i = from; i < batch.size(); ++i) {
    lines.push_back(spoolLine(batch[i].entry));
  }
  std::string error;
  if (!appendLines(settings_.spool_file, lines, error)) {
    not_stored_.add(static_cast<int64_t>(n));
    totals_.not_stored += n;
    host().error("cannot spool " + entries(n) + " to " + settings_.spool_file + " (" + error +
                 ") while Redis does not take them (" + why +
                 "): answered RETRY, evhost writes them to its fallback file");
    const std::string message =
        "dlq: not stored: Redis: " + why + "; spool file " + settings_.spool_file + ": " + error;
    for (size_t i = from; i < batch.size(); ++i) {
      batch[i].done.complete(evh::Result::retry(message));
    }
    return;
  }
  spool_appends_.add();
  ++totals_.spool_appends;
  spooled_.add(static_cast<int64_t>(n));
  totals_.spooled += n;
  setPending(pending_ + static_cast<int64_t>(n));
  if (host().logEnabled(evh::LogLevel::Debug)) {
    for (size_t i = from; i < batch.size(); ++i) {
      host().debug("spooled dead-letter entry " + batch[i].id + " (" + why + ")");
    }
  }
  for (size_t i = from; i < batch.size(); ++i) {
    batch[i].done.complete(evh::Result::ok());
  }
}

}  // namespace dlq
