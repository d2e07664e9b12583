// A thread beside the event loop that notices when the loop stops turning
// (naming the plugin call it is stuck in) and that takes SIGINT/SIGTERM, so
// that a stop, the shutdown deadline and a second signal work even while
// the loop is stuck -- and SIGHUP, which does not stop evhost.
#pragma once

#include "loop/current_call.h"
#include "loop/uv_handle.h"

#include <uv.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>

namespace evh::app {

// Blocks SIGINT, SIGTERM and SIGHUP in the calling thread. Called first
// thing in main(), before any thread starts: every thread inherits the
// mask, so the signals wait for the watchdog's sigtimedwait -- a plain
// thread, where any work is allowed -- instead of interrupting whichever
// thread they hit (or, for SIGHUP, ending the process).
void blockWatchdogSignals();

class Watchdog {
 public:
  struct Options {
    uint32_t stall_ms = 2000;              // the loop not turning this long is a stall
    uint32_t shutdown_timeout_ms = 10000;  // from the first signal to the deadline
  };
  struct Hooks {
    // The first signal: ask the loop to stop gracefully (THREAD: watchdog).
    std::function<void()> stop;
    // At the deadline with the loop held inside a plugin call: write what is
    // unfinished; returns how many entries (THREAD: watchdog).
    std::function<size_t()> write_unfinished;
    // SIGHUP: ask the loop to reload the configuration (THREAD: watchdog).
    std::function<void()> reload;
  };

  Watchdog(uv_loop_t* loop, CurrentCall& calls, Options options, Hooks hooks);
  ~Watchdog();  // stops and joins the thread
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // Starts the heartbeat timer (unreferenced: it never keeps the loop
  // alive) and the thread. THREAD: loop.
  void start();
  // The loop handles the shutdown deadline itself (its timer fired): from
  // now on only a much longer stall ends the process. THREAD: loop.
  void deadlineTaken() noexcept { deadline_taken_.store(true); }
  // The graceful stop is complete: no more stall or deadline checks (a
  // signal still exits at once). THREAD: loop.
  void loopFinished();

  // Heartbeat period and how often the thread looks, derived from stall_ms.
  uint32_t beatMs() const noexcept { return beat_ms_; }
  // How long the loop has not turned: milliseconds since its last
  // heartbeat, so up to about beatMs() while it turns. What GET /healthz
  // answers from, on the ops thread, without asking the loop. THREAD: any.
  uint64_t silentMs() const noexcept;
  uint32_t tickMs() const noexcept { return tick_ms_; }

 private:
  void run();
  void onSignal(int signum);
  void onHangup();
  void check();
  void reportStall(uint64_t age_ms, bool changed);
  [[noreturn]] void exitStuck(uint64_t age_ms);
  std::string describe(const CurrentCall::Snapshot& s) const;

  uv_loop_t* loop_;
  CurrentCall& calls_;
  Options options_;
  Hooks hooks_;
  uint32_t beat_ms_;
  uint32_t tick_ms_;
  UvHandle<uv_timer_t> beat_;
  std::thread thread_;
  std::atomic<uint64_t> last_beat_ms_{0};  // monotonic ms of the loop's last heartbeat
  std::atomic<bool> quit_{false};
  std::atomic<bool> finished_{false};
  std::atomic<bool> deadline_taken_{false};
  // The thread's own state.
  bool signalled_ = false;
  uint64_t deadline_ms_ = 0;
  bool stalled_ = false;
  uint64_t stall_max_ms_ = 0;
  uint64_t last_report_ms_ = 0;
  bool have_snapshot_ = false;  // the stall's call was claimed into snapshot_
  CurrentCall::Snapshot snapshot_;
};

}  // namespace evh::app
