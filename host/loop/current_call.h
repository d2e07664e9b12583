// The plugin call the loop thread is in right now, for a watchdog thread to
// name when the loop stalls.
#pragma once

#include <evh/plugin.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <thread>

namespace evh {

// What the loop is calling: lives on the caller's stack for the call.
struct CallSite {
  std::string_view plugin;         // instance name (outlives the call)
  const char* what = "handle";     // "handle", "reply callback", "posted function"
  const evh_event* event = nullptr;  // the event handled; null for callbacks
};

// One slot, written by the loop thread around each plugin call and read by
// a watchdog thread only while the loop is stalled. The loop's cost is a
// release store to enter and an exchange to leave -- no lock, no
// allocation. A reader may look at the CallSite only after claiming it
// (tagging the slot with a CAS); a loop leaving a claimed call waits until
// the reader is done, so what the reader looks at is never freed under it.
class CurrentCall {
 public:
  // What a reader copied out of a claimed call.
  struct Snapshot {
    std::string plugin;
    std::string what;
    std::string event_id;
    std::string event_type;
  };

  // THREAD: loop.
  void enter(const CallSite* site) noexcept { slot_.store(reinterpret_cast<uintptr_t>(site), std::memory_order_release); }
  void leave(const CallSite* site) noexcept {
    // seq_cst (on x86 the same xchg as acq_rel): ordered with holdClaimed().
    if (slot_.exchange(0, std::memory_order_seq_cst) != reinterpret_cast<uintptr_t>(site)) {
      waitForReader();  // claimed: the reader may still be copying
    }
  }

  // Claims the call the loop is in, if any and not claimed already, and
  // copies it into `out`. Returns false when there is no call or it is the
  // one claimed before (then `out` is untouched). With `hold`, the claim is
  // kept: the loop cannot leave that call (it waits in leave()) until
  // release() -- for a reader about to end the process that must look at
  // loop-owned state meanwhile. THREAD: one reader thread.
  bool claim(Snapshot& out, bool hold = false) {
    uintptr_t p = slot_.load(std::memory_order_acquire);
    if (p == 0 || (p & kClaimed) != 0) {
      return false;
    }
    reading_.store(true, std::memory_order_relaxed);
    if (!slot_.compare_exchange_strong(p, p | kClaimed, std::memory_order_acq_rel)) {
      reading_.store(false, std::memory_order_release);
      return false;  // the loop left (or entered another call) meanwhile
    }
    const auto* site = reinterpret_cast<const CallSite*>(p);
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
  // Takes a hold on the call claimed before, if the loop is still in it.
  // THREAD: the reader.
  bool holdClaimed() noexcept {
    reading_.store(true, std::memory_order_seq_cst);
    if ((slot_.load(std::memory_order_seq_cst) & kClaimed) != 0) {
      return true;  // the loop's leave() will see reading_ and wait
    }
    reading_.store(false, std::memory_order_release);
    return false;
  }
  // Ends a held claim. THREAD: the reader.
  void release() noexcept { reading_.store(false, std::memory_order_release); }
  // True while the loop is inside a call (claimed or not). THREAD: any.
  bool inCall() const noexcept { return slot_.load(std::memory_order_acquire) != 0; }
  // Was the claimed call left (or another one entered) since? THREAD: any.
  bool claimedStillCurrent() const noexcept { return (slot_.load(std::memory_order_acquire) & kClaimed) != 0; }

  // The loop thread's slot of this process (one loop per process).
  static CurrentCall& process() {
    static CurrentCall instance;
    return instance;
  }

 private:
  static constexpr uintptr_t kClaimed = 1;  // CallSites are aligned: bit 0 is free
  static constexpr size_t kMaxText = 200;

  void waitForReader() const noexcept {
    while (reading_.load(std::memory_order_seq_cst)) {
      std::this_thread::yield();
    }
  }

  std::atomic<uintptr_t> slot_{0};
  std::atomic<bool> reading_{false};
};

// Marks a plugin call for its duration. THREAD: loop.
class CallScope {
 public:
  CallScope(CurrentCall& slot, const CallSite& site) noexcept : slot_(slot), site_(site) { slot_.enter(&site_); }
  ~CallScope() { slot_.leave(&site_); }
  CallScope(const CallScope&) = delete;
  CallScope& operator=(const CallScope&) = delete;

 private:
  CurrentCall& slot_;
  const CallSite& site_;
};

}  // namespace evh
