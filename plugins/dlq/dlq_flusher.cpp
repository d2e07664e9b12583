// dlq_flusher: getting the spool back into Redis. flushPass() pushes the
// spooled entries oldest first, in batches, and then empties or rewrites the
// spool; handle() runs one before its own entry to keep the list in order,
// and the flusher thread (runFlusher) runs them every flush_interval_ms while
// the spool has data, also refreshing the list_length gauge.
#include "dlq.h"

#include "dlq_spool.h"

#include <optional>
#include <utility>

namespace dlq {
namespace {

// One flusher pass starts no new batch after this long, so that it does not
// hold the spool lock (which handle() needs) for long; the next pass follows
// at once while progress is made.
constexpr std::chrono::milliseconds kFlusherPassBudget{500};
// Spooled entries are pushed with one LPUSH per batch (atomic in Redis).
constexpr size_t kBatchEntries = 100;
constexpr size_t kBatchBytes = 1024 * 1024;

}  // namespace

// Pushes the spool to Redis in order, oldest first, until it is empty, a
// push fails, or `deadline` passes; then truncates the spool, or rewrites
// it with what was not pushed. A crash between a push and the rewrite
// pushes those entries again on the next run (at-least-once).
// THREAD: worker or flusher, with mutex_ held.
Pass Dlq::flushPass(Clock::time_point deadline) {
  std::string content;
  std::string error;
  if (!readAll(settings_.spool_file, content, error)) {
    host().error("cannot read spool file " + settings_.spool_file + ": " + error);
    return Pass::Failed;
  }
  std::vector<std::string_view> lines;
  std::vector<std::string> entries;
  size_t corrupt = 0;
  for (auto line : splitLines(content)) {
    std::optional<std::string> e = entryOfLine(line);
    if (!e) {
      ++corrupt;
      host().error("dropping a corrupt line of spool file " + settings_.spool_file +
                   " (an append cut short by a crash?): " + preview(line));
      continue;
    }
    lines.push_back(line);
    entries.push_back(std::move(*e));
  }
  if (corrupt > 0) {
    corrupt_.add(static_cast<int64_t>(corrupt));
  }
  Pass result = Pass::Done;
  size_t pushed = 0;
  while (pushed < entries.size()) {
    if (Clock::now() >= deadline) {
      result = Pass::OutOfTime;
      break;
    }
    if (stopping()) {
      result = Pass::Failed;
      break;
    }
    size_t end = pushed;
    size_t bytes = 0;
    std::vector<std::string_view> batch;
    while (end < entries.size() && batch.size() < kBatchEntries &&
           (batch.empty() || bytes + entries[end].size() <= kBatchBytes)) {
      bytes += entries[end].size();
      batch.push_back(entries[end]);
      ++end;
    }
    Store s = push(batch, error);
    if (s != Store::Ok) {
      if (s == Store::Failed) {
        noteFailure(error);
      }
      result = Pass::Failed;
      break;
    }
    flushed_.add(static_cast<int64_t>(batch.size()));
    pushed = end;
    noteRedisOk();
  }
  bool rewritten = true;
  if (pushed == entries.size()) {
    if (!content.empty()) {
      rewritten = truncateFile(settings_.spool_file, error);
    }
  } else if (pushed > 0 || corrupt > 0) {
    rewritten = rewriteLines(
        settings_.spool_file,
        std::vector<std::string_view>(lines.begin() + static_cast<std::ptrdiff_t>(pushed), lines.end()), error);
  }
  if (!rewritten) {
    host().error("cannot rewrite spool file " + settings_.spool_file + " (" + error + "): its " +
                 std::to_string(pushed) + " entries already in Redis will be pushed again");
    setPending(static_cast<int64_t>(entries.size()));
    return Pass::Failed;
  }
  setPending(static_cast<int64_t>(entries.size() - pushed));
  if (pushed > 0) {
    host().info("flushed " + std::to_string(pushed) + " spooled dead-letter entries to " + redis_key_ +
                (pushed < entries.size() ? "; " + std::to_string(entries.size() - pushed) + " still spooled" : ""));
  }
  return entries.empty() ? Pass::Empty : result;
}

// The flusher thread: counts what an earlier run left in the spool, then
// every flush_interval_ms pushes the spool while Redis answers.
void Dlq::runFlusher() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    countSpool();
  }
  auto interval = std::chrono::milliseconds(settings_.flush_interval_ms);
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(signal_->mutex);
      if (signal_->cv.wait_for(lock, interval, [&] { return signal_->stop; })) {
        return;
      }
    }
    for (;;) {
      std::lock_guard<std::mutex> lock(mutex_);  // released between passes: handle() may run
      if (stopping()) {
        break;
      }
      if (!fileHasData(settings_.spool_file)) {
        if (pending_ != 0) {
          setPending(0);  // the file was removed or emptied by hand
        }
        break;
      }
      if (flushPass(Clock::now() + kFlusherPassBudget) != Pass::OutOfTime) {
        break;
      }
    }
    if (!stopping()) {
      refreshLength();
    }
  }
}

// The list's length as Redis has it: replays (evhctl dlq replay) and
// deletions shorten it without a push. One LLEN per flush interval.
// THREAD: the flusher.
void Dlq::refreshLength() {
  std::vector<Answer> a = roundTrip({{"LLEN", redis_key_}});
  if (a[0].ok) {
    length_gauge_.set(a[0].integer);
    length_warned_ = false;
  } else if (!a[0].stopped && !length_warned_) {
    // Once until it works again (an ACL without +llen, say): the gauge
    // then only follows pushes.
    host().warn("LLEN " + redis_key_ + " failed: " + a[0].error + "; list_length follows pushes only");
    length_warned_ = true;
  }
}

void Dlq::countSpool() {
  std::string content;
  std::string error;
  if (!readAll(settings_.spool_file, content, error)) {
    host().error("cannot read spool file " + settings_.spool_file + ": " + error);
    return;
  }
  int64_t n = 0;
  for (auto line : splitLines(content)) {
    n += entryOfLine(line) ? 1 : 0;
  }
  setPending(n);
  if (n > 0) {
    host().info(std::to_string(n) + " dead-letter entries are in spool file " + settings_.spool_file +
                " from an earlier run; they go to " + redis_key_ + " once Redis answers");
  }
}

bool Dlq::stopping() {
  std::lock_guard<std::mutex> lock(signal_->mutex);
  return signal_->stop;
}

}  // namespace dlq
