// The plugin call a thread is in right now: for a watchdog thread to name
// when the loop stalls (CurrentCall, the loop's slot), and for the
// fatal-signal handler to name when plugin code crashes (ThreadCall, one
// per thread that runs plugin code: the loop and the workers).
#pragma once

#include <evh/plugin.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

namespace evh {

// What a thread is calling: lives on the caller's stack for the call.
struct CallSite {
  std::string_view plugin;           // instance name (outlives the call)
  const char* what = "handle";       // "handle", "reply callback", "posted function", "init", "shutdown"
  const evh_event* event = nullptr;  // the event handled; null for callbacks
  const char* library = nullptr;     // the plugin's descriptor name (static in the plugin); null if unknown
};

// The plugin call the calling thread is in, for the fatal-signal handler
// (loop/fatal_signals.h), which runs on the crashing thread and reads only
// its own thread's record. Set and cleared around every plugin call with
// plain stores to a thread_local pointer (a constant-initialised one in an
// executable: one %fs-relative mov each way, no lock, no fence -- the
// handler is on the same thread, so only the compiler must keep the order:
// atomic_signal_fence). The CallSite and what it points at outlive the call.
class ThreadCall {
 public:
  // THREAD: the caller's own record. Returns the call it was in (restored by leave).
  static const CallSite* enter(const CallSite* site) noexcept {
    const CallSite* outer = current_;
    current_ = site;
    std::atomic_signal_fence(std::memory_order_seq_cst);
    return outer;
  }
  static void leave(const CallSite* outer) noexcept {
    std::atomic_signal_fence(std::memory_order_seq_cst);
    current_ = outer;
  }
  // Async-signal-safe (read by the handler on the same thread).
  static const CallSite* current() noexcept { return current_; }

 private:
  static inline thread_local const CallSite* current_ = nullptr;
};

// Marks a plugin call on a thread other than the loop (a worker) for its
// duration: only the thread's own record, which the fatal-signal handler
// reads. THREAD: the caller's.
class ThreadCallScope {
 public:
  explicit ThreadCallScope(const CallSite& site) noexcept : outer_(ThreadCall::enter(&site)) {}
  ~ThreadCallScope() { ThreadCall::leave(outer_); }
  ThreadCallScope(const ThreadCallScope&) = delete;
  ThreadCallScope& operator=(const ThreadCallScope&) = delete;

 private:
  const CallSite* outer_;
};

// One slot, written by the loop thread around each plugin call and read by
// a watchdog thread only while the loop is stalled.
//
// The loop's side must cost next to nothing (it runs for every inline
// call): plain stores and one load, no lock, no read-modify-write -- an
// atomic exchange there drains the store buffer, which showed per call in
// evh_micro_bench (docs/benchmarks/hot-path-history.md). The reader pays instead, with an asymmetric fence
// (membarrier(2), as liburcu and folly do): it sets `reading_`, forces a
// full barrier on every thread, then loads the slot. Either it sees the
// call gone, or the loop -- leaving -- sees `reading_` and waits until the
// reader is done; so a CallSite (and the event it points at) is never
// freed under the reader.
class CurrentCall {
 public:
  // What a reader copied out of the call.
  struct Snapshot {
    std::string plugin;
    std::string what;
    std::string event_id;
    std::string event_type;
    uint64_t seq = 0;  // which call: one more for each enter()
  };

  // THREAD: loop. Returns the call it was in (restored by leave).
  const CallSite* enter(const CallSite* site) noexcept {
    const CallSite* outer = slot_.load(std::memory_order_relaxed);
    seq_.store(seq_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    slot_.store(site, std::memory_order_release);
    return outer;
  }
  void leave(const CallSite* outer) noexcept {
    slot_.store(outer, std::memory_order_relaxed);
    std::atomic_signal_fence(std::memory_order_seq_cst);  // the reader's membarrier makes it a full fence
    if (reading_.load(std::memory_order_relaxed)) {
      waitForReader();
    }
  }

  // Makes read() possible (registers for membarrier). False when the kernel
  // refuses: read() then never looks. THREAD: the reader, once.
  bool enableReader();
  // Copies the call the loop is in into `out`; false when it is in none
  // (or reading is not enabled). With `hold`, the loop cannot leave that
  // call (it waits in leave()) until release(): for a reader about to end
  // the process that must look at loop-owned state meanwhile. THREAD: the
  // one reader.
  bool read(Snapshot& out, bool hold = false);
  void release() noexcept { reading_.store(false, std::memory_order_release); }
  // Still in the call `s` was read from? (A hint: no barrier.) THREAD: any.
  bool isCurrent(const Snapshot& s) const noexcept {
    return slot_.load(std::memory_order_acquire) != nullptr && seq_.load(std::memory_order_acquire) == s.seq;
  }
  bool inCall() const noexcept { return slot_.load(std::memory_order_acquire) != nullptr; }

  // The loop thread's slot of this process (one loop per process).
  static CurrentCall& process();

 private:
  void waitForReader() const noexcept;

  std::atomic<const CallSite*> slot_{nullptr};
  std::atomic<uint64_t> seq_{0};
  std::atomic<bool> reading_{false};
  bool reader_enabled_ = false;  // the reader's own
};

// Marks a plugin call on the loop for its duration: the loop's slot (for
// the watchdog) and the thread's own record (for the fatal-signal handler).
// THREAD: loop.
class CallScope {
 public:
  CallScope(CurrentCall& slot, const CallSite& site) noexcept : slot_(slot), outer_(slot.enter(&site)), thread_(site) {}
  ~CallScope() { slot_.leave(outer_); }
  CallScope(const CallScope&) = delete;
  CallScope& operator=(const CallScope&) = delete;

 private:
  CurrentCall& slot_;
  const CallSite* outer_;
  ThreadCallScope thread_;  // restored after the slot (members go after the body): either order is right
};

}  // namespace evh
