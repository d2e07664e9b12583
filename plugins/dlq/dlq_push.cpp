// dlq_push: the dead-letter plugin's Redis side. roundTrip() sends a round
// of pipelined commands through the host and blocks the plugin's thread
// until every reply came, a timeout or the stop signal; push() LPUSHes
// entries and LTRIMs the list to max_length, logging evictions;
// pushInOrder() pushes any number of entries, oldest first, a push per
// kPushMaxEntries / kPushMaxBytes.
#include "dlq.h"

#include <algorithm>

namespace dlq {
namespace {

// How long one round of commands may take before the entries are spooled
// instead. It blocks the plugin's own thread, never the loop.
constexpr std::chrono::milliseconds kReplyTimeout{2000};

// The replies of one round of pipelined commands; guarded by Signal::mutex.
struct Round {
  struct Slot {
    bool done = false;
    bool ok = false;
    bool replied = false;  // Redis answered (an error reply included)
    bool nil = false;
    bool cancelled = false;
    int64_t integer = 0;  // an integer reply's value
    std::string error;
  };
  explicit Round(size_t n) : slots(n) {}
  std::vector<Slot> slots;
};

std::string describeSendStatus(evh_status s) {
  switch (s) {
    case EVH_ERR_UNAVAILABLE:
      return "redis unavailable";
    case EVH_ERR_CANCELLED:
      return "host shutting down";
    case EVH_ERR_NOMEM:
      return "out of memory";
    default:
      return "redis_command refused (status " + std::to_string(s) + ")";
  }
}

}  // namespace

// Sends the commands pipelined and waits for every reply, kReplyTimeout or
// the stop signal, whichever comes first. THREAD: the plugin's.
std::vector<Answer> Dlq::roundTrip(const std::vector<std::vector<std::string_view>>& commands) {
  auto round = std::make_shared<Round>(commands.size());
  size_t sent = 0;
  evh_status send_status = EVH_OK;
  for (size_t i = 0; i < commands.size(); ++i) {
    // The callback may run before command() returns (on the loop thread,
    // or inline in a test double): no lock of ours is held here.
    send_status = host().command(commands[i], [signal = signal_, round, i](const evh::Reply& r) {
      std::lock_guard<std::mutex> lock(signal->mutex);
      Round::Slot& slot = round->slots[i];
      slot.done = true;
      slot.ok = r.ok();
      slot.replied = r.ok() || r.isError();
      slot.nil = r.isNil();
      slot.integer = r.type() == EVH_REPLY_INTEGER ? r.integer() : 0;
      slot.cancelled = r.status() == EVH_ERR_CANCELLED;
      if (!slot.ok) {
        slot.error = r.describe();
      }
      signal->cv.notify_all();
    });
    if (send_status != EVH_OK) {
      break;
    }
    ++sent;
  }
  std::vector<Answer> answers(commands.size());
  std::unique_lock<std::mutex> lock(signal_->mutex);
  signal_->cv.wait_for(lock, kReplyTimeout, [&] {
    if (signal_->stop) {
      return true;
    }
    for (size_t i = 0; i < sent; ++i) {
      if (!round->slots[i].done) {
        return false;
      }
    }
    return true;
  });
  for (size_t i = 0; i < commands.size(); ++i) {
    const Round::Slot& slot = round->slots[i];
    Answer& a = answers[i];
    if (i < sent && slot.done) {
      a.ok = slot.ok;
      a.nil = slot.nil;
      a.unsure = !slot.replied;
      a.refused = slot.replied && !slot.ok;
      a.integer = slot.integer;
      a.stopped = slot.cancelled;
      a.error = slot.error;
    } else if (i < sent) {
      a.unsure = true;
      a.stopped = signal_->stop;
      a.error = signal_->stop ? "plugin stopping" : "no reply within " + std::to_string(kReplyTimeout.count()) + " ms";
    } else if (i == sent) {
      a.stopped = send_status == EVH_ERR_CANCELLED;
      a.error = describeSendStatus(send_status);
    } else {
      a.error = "not sent";
    }
  }
  return answers;
}

// LPUSHes entries (oldest first: the last ends up at the head) and trims
// the list to max_length. `unsure`: the LPUSH failed without a reply, so
// Redis may have stored them.
Store Dlq::push(const std::vector<std::string_view>& oldest_first, std::string& error, bool& unsure) {
  std::vector<std::string_view> lpush{"LPUSH", redis_key_};
  lpush.insert(lpush.end(), oldest_first.begin(), oldest_first.end());
  std::vector<std::string_view> ltrim{"LTRIM", redis_key_, "0", trim_stop_};
  std::vector<Answer> a = roundTrip({lpush, ltrim});
  pushes_.add();
  ++totals_.pushes;
  if (!a[0].ok) {
    unsure = a[0].unsure;
    error = "LPUSH " + redis_key_ + ": " + a[0].error;
    return a[0].stopped ? Store::Stopped : Store::Failed;
  }
  length_gauge_.set(a[1].ok ? std::min(a[0].integer, settings_.max_length) : a[0].integer);
  if (!a[1].ok && !a[1].stopped) {
    // The entries are stored; the list is merely longer than max_length
    // until a later LTRIM succeeds.
    host().warn("LTRIM " + redis_key_ + " failed: " + a[1].error);
  } else if (a[1].ok && a[0].integer > settings_.max_length) {
    // The list keeps the newest max_length: older entries just left it.
    // A retention policy, but never a silent one.
    const int64_t evicted = a[0].integer - settings_.max_length;
    evicted_.add(evicted);
    evicted_since_log_ += evicted;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_evicted_log_ >= std::chrono::seconds(10)) {
      host().warn(std::to_string(evicted_since_log_) + " oldest entr" + (evicted_since_log_ == 1 ? "y" : "ies") +
                  " left " + redis_key_ + " (max_length " + std::to_string(settings_.max_length) +
                  ") since the last such line; evhctl dlq list/replay before they go, or raise max_length");
      evicted_since_log_ = 0;
      last_evicted_log_ = now;
    }
  }
  return Store::Ok;
}

// Pushes the entries in order, oldest first, one LPUSH per batch of at most
// kPushMaxEntries or kPushMaxBytes (each atomic in Redis), until all are in,
// a push fails (`error` says why), the plugin stops, or `deadline` passes.
// Notes an outage, or its end.
Pushed Dlq::pushInOrder(const std::vector<std::string_view>& oldest_first, Clock::time_point deadline,
                        std::string& error) {
  Pushed result;
  std::vector<std::string_view> batch;
  while (result.count < oldest_first.size() && Clock::now() < deadline) {
    if (stopping()) {
      error = "plugin stopping";
      result.store = Store::Stopped;
      break;
    }
    size_t end = result.count;
    size_t bytes = 0;
    batch.clear();
    while (end < oldest_first.size() && batch.size() < kPushMaxEntries &&
           (batch.empty() || bytes + oldest_first[end].size() <= kPushMaxBytes)) {
      bytes += oldest_first[end].size();
      batch.push_back(oldest_first[end]);
      ++end;
    }
    bool unsure = false;
    result.store = push(batch, error, unsure);
    if (result.store != Store::Ok) {
      result.unsure_end = unsure ? end : result.count;
      if (result.store == Store::Failed) {
        noteFailure(error);
      }
      break;
    }
    noteRedisOk();
    result.count = end;
  }
  return result;
}

}  // namespace dlq
