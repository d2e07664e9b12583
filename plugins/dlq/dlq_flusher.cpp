// dlq_flusher: getting the spool back into Redis. flushPass() pushes the
// spooled entries oldest first, in batches, and then empties or rewrites the
// spool; the plugin's thread (dlq_writer.cpp) runs one before a batch of new
// entries, to keep the list in order, and every flush_interval_ms while the
// spool has data (onInterval). Also the list_length gauge's LLEN and the
// count of what an earlier run left in the spool.
#include "dlq.h"

#include "dlq_spool.h"

#include <optional>
#include <utility>

namespace dlq {

// Pushes the spool to Redis in order, oldest first, until it is empty, a
// push fails, or `deadline` passes; then truncates the spool, or rewrites
// it with what was not pushed. A crash between a push and the rewrite
// pushes those entries again on the next run (at-least-once).
// THREAD: the plugin's.
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
  const size_t spooled = entries.size();
  if (!unsure_.empty() && !dropStored(lines, entries, error)) {
    noteFailure(error);
    return Pass::Failed;
  }
  const size_t dropped = spooled - entries.size();
  std::vector<std::string_view> oldest_first(entries.begin(), entries.end());
  const Pushed p = pushInOrder(oldest_first, deadline, error);
  const size_t pushed = p.count;
  flushed_.add(static_cast<int64_t>(pushed));
  totals_.flushed += pushed;
  Pass result = Pass::Done;
  if (p.store != Store::Ok) {
    result = Pass::Failed;
  } else if (pushed < entries.size()) {
    result = Pass::OutOfTime;
  }
  bool rewritten = true;
  if (pushed == entries.size()) {
    if (!content.empty()) {
      rewritten = truncateFile(settings_.spool_file, error);
    }
  } else if (pushed > 0 || corrupt > 0 || dropped > 0) {
    rewritten = rewriteLines(
        settings_.spool_file,
        std::vector<std::string_view>(lines.begin() + static_cast<std::ptrdiff_t>(pushed), lines.end()), error);
  }
  if (!rewritten) {
    host().error("cannot rewrite spool file " + settings_.spool_file + " (" + error + "): its " +
                 std::to_string(pushed + dropped) + " entries already in Redis will be pushed again");
    setPending(static_cast<int64_t>(spooled));
    noteUnsure(oldest_first, p);  // and those found stored stay unsure: asked about again
    return Pass::Failed;
  }
  // Every uncertain entry still spooled was asked about (dropStored):
  // uncertain now are only those of this pass's failed push.
  unsure_.clear();
  noteUnsure(oldest_first, p);
  if (dropped > 0) {
    already_stored_.add(static_cast<int64_t>(dropped));
    totals_.already_stored += dropped;
  }
  setPending(static_cast<int64_t>(entries.size() - pushed));
  if (dropped > 0) {
    host().info(std::to_string(dropped) + " spooled dead-letter entr" + (dropped == 1 ? "y was" : "ies were") + " in " +
                redis_key_ + " already (stored just before a reply was lost): not pushed again");
  }
  if (pushed > 0) {
    host().info("flushed " + std::to_string(pushed) + " spooled dead-letter entries to " + redis_key_ +
                (pushed < entries.size() ? "; " + std::to_string(entries.size() - pushed) + " still spooled" : ""));
  }
  return entries.empty() ? Pass::Empty : result;
}

// The spooled entries whose push got no reply: asks Redis (one LPOS each,
// pipelined) whether the list holds them, and takes those it does out of
// `lines` and `entries` (kept in step). False, with `error`, when Redis did
// not answer every question. Should Redis refuse LPOS (an ACL without
// +lpos, say), that is said once and they are pushed again (at least
// once): the spool must not wait for a question Redis will never answer.
// unsure_ is left to the caller, which clears it once the spool is
// rewritten. THREAD: the plugin's.
bool Dlq::dropStored(std::vector<std::string_view>& lines, std::vector<std::string>& entries, std::string& error) {
  std::vector<size_t> asked;
  std::vector<std::vector<std::string_view>> commands;
  for (size_t i = 0; i < entries.size(); ++i) {
    if (unsure_.count(entries[i]) != 0) {
      asked.push_back(i);
      commands.push_back({"LPOS", redis_key_, entries[i]});
    }
  }
  if (asked.empty()) {
    return true;  // the spool no longer holds them (emptied by hand, say)
  }
  std::vector<Answer> a = roundTrip(commands);
  std::vector<bool> stored(entries.size(), false);
  for (size_t k = 0; k < asked.size(); ++k) {
    if (a[k].ok) {
      stored[asked[k]] = !a[k].nil;
      continue;
    }
    if (!a[k].refused) {
      error = "LPOS " + redis_key_ + ": " + a[k].error;
      return false;  // no answer: asked again next pass
    }
    if (!lpos_warned_) {
      host().warn("LPOS " + redis_key_ + " failed: " + a[k].error +
                  "; entries whose push got no reply are pushed again without asking (at least once): give the "
                  "ACL user +lpos");
      lpos_warned_ = true;
    }
    return true;  // refused: nothing dropped, every entry pushed
  }
  size_t out = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    if (stored[i]) {
      continue;
    }
    if (out != i) {
      lines[out] = lines[i];
      entries[out] = std::move(entries[i]);
    }
    ++out;
  }
  lines.resize(out);
  entries.resize(out);
  return true;
}

// Remembers the entries a failed push may have stored (see unsure_).
void Dlq::noteUnsure(const std::vector<std::string_view>& oldest_first, const Pushed& p) {
  for (size_t i = p.count; i < p.unsure_end && i < oldest_first.size(); ++i) {
    unsure_.emplace(oldest_first[i]);
  }
}

// The interval's work: a flush pass while the spool has data, then LLEN.
// Returns when it is due next: at once while a pass ran out of time with
// entries left (after the batches queued meanwhile).
Clock::time_point Dlq::onInterval(std::chrono::milliseconds interval) {
  if (fileHasData(settings_.spool_file)) {
    if (flushPass(Clock::now() + kFlushBudget) == Pass::OutOfTime) {
      return Clock::now();
    }
  } else if (pending_ != 0) {
    setPending(0);  // the file was removed or emptied by hand
  }
  if (!outage_) {
    refreshLength();  // not during an outage: a silent Redis would hold the next batch up
  }
  return Clock::now() + interval;
}

// The list's length as Redis has it: replays (evhctl dlq replay) and
// deletions shorten it without a push. One LLEN per flush interval.
// THREAD: the plugin's.
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
