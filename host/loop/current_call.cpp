// The reader's side of CurrentCall: membarrier(2) and the copy.
#include "loop/current_call.h"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

namespace evh {
namespace {

constexpr size_t kMaxText = 200;  // of an eventId or eventType in a log line

long membarrier(int cmd) { return syscall(__NR_membarrier, cmd, 0, 0); }

}  // namespace

CurrentCall& CurrentCall::process() {
  static CurrentCall instance;
  return instance;
}

bool CurrentCall::enableReader() {
  reader_enabled_ = membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0;
  return reader_enabled_;
}

bool CurrentCall::read(Snapshot& out, bool hold) {
  if (!reader_enabled_) {
    return false;
  }
  reading_.store(true, std::memory_order_relaxed);
  // A full barrier on every thread of the process, the loop's included:
  // from here on, either the loop has left (we see its store) or its
  // leave() will see reading_.
  if (membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0) {
    release();
    return false;
  }
  const CallSite* site = slot_.load(std::memory_order_acquire);
  if (site == nullptr) {
    release();
    return false;
  }
  out.seq = seq_.load(std::memory_order_acquire);
  out.plugin.assign(site->plugin);
  out.what = site->what;
  out.event_id.clear();
  out.event_type.clear();
  if (site->event != nullptr) {
    out.event_id.assign(site->event->event_id.ptr, std::min<size_t>(site->event->event_id.len, kMaxText));
    out.event_type.assign(site->event->event_type.ptr, std::min<size_t>(site->event->event_type.len, kMaxText));
  }
  if (!hold) {
    release();
  }
  return true;
}

void CurrentCall::waitForReader() const noexcept {
  while (reading_.load(std::memory_order_acquire)) {
    std::this_thread::yield();
  }
}

}  // namespace evh
