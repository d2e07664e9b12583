// The watchdog thread: loop heartbeats, stall reports, signals, the
// shutdown deadline on its own clock.
#include "app/watchdog.h"

#include "common/log.h"

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace evh::app {
namespace {

uint64_t monoMs() { return uv_hrtime() / 1000000; }

sigset_t watchdogSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  return set;
}

// After the loop took the deadline itself it may still be writing the
// fallback file (synchronously, before its own exit): give it this long.
constexpr uint64_t kAfterDeadlineStallMs = 10000;

}  // namespace

void blockWatchdogSignals() {
  const sigset_t set = watchdogSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

Watchdog::Watchdog(uv_loop_t* loop, CurrentCall& calls, Options options, Hooks hooks)
    : loop_(loop),
      calls_(calls),
      options_(options),
      hooks_(std::move(hooks)),
      // A beat a quarter of the bound: a turning loop is never mistaken for
      // a stalled one, even when idle (the timer wakes it).
      beat_ms_(std::clamp<uint32_t>(options.stall_ms / 4, 10, 500)),
      tick_ms_(std::clamp<uint32_t>(options.stall_ms / 10, 10, 100)) {}

Watchdog::~Watchdog() {
  quit_.store(true);
  if (thread_.joinable()) {
    // Wakes its sigtimedwait at once (the signal is blocked, so it only
    // ends the wait).
    pthread_kill(thread_.native_handle(), SIGTERM);
    thread_.join();
  }
  beat_.close();
}

void Watchdog::start() {
  last_beat_ms_.store(monoMs());
  beat_ = makeUvHandle<uv_timer_t>(loop_, uv_timer_init);
  beat_->data = this;
  uv_timer_start(
      beat_.get(),
      [](uv_timer_t* t) { static_cast<Watchdog*>(t->data)->last_beat_ms_.store(monoMs(), std::memory_order_relaxed); },
      beat_ms_, beat_ms_);
  uv_unref(reinterpret_cast<uv_handle_t*>(beat_.get()));
  thread_ = std::thread([this] { run(); });
}

uint64_t Watchdog::silentMs() const noexcept {
  const uint64_t now = monoMs();
  const uint64_t beat = last_beat_ms_.load(std::memory_order_relaxed);
  return now > beat ? now - beat : 0;
}

void Watchdog::loopFinished() {
  finished_.store(true);
  if (beat_) {
    uv_timer_stop(beat_.get());
  }
}

void Watchdog::run() {
  pthread_setname_np(pthread_self(), "evh-watchdog");  // what top -H shows
  if (!calls_.enableReader()) {
    log::host().warn("membarrier(2) refused: a stalled event loop is reported without the plugin call it is in");
  }
  const sigset_t set = watchdogSignals();
  const timespec tick{static_cast<time_t>(tick_ms_ / 1000), static_cast<long>(tick_ms_ % 1000) * 1000000L};
  while (!quit_.load()) {
    const int sig = sigtimedwait(&set, nullptr, &tick);
    if (quit_.load()) {
      break;
    }
    if (sig == SIGINT || sig == SIGTERM) {
      onSignal(sig);
    } else if (sig == SIGHUP) {
      onHangup();
    }
    check();
  }
}

void Watchdog::onSignal(int signum) {
  if (signalled_) {
    log::host().warn("second signal ({}): exiting at once", signum);
    log::drain();
    std::_Exit(1);
  }
  signalled_ = true;
  deadline_ms_ = monoMs() + options_.shutdown_timeout_ms;
  log::host().info("signal {} received: stopping", signum);
  if (hooks_.stop) {
    hooks_.stop();
  }
}

// The conventional "reopen your logs, reread your config". evhost logs to
// stderr only (whoever holds the other end rotates): SIGHUP reloads the
// configuration (app/server_reload.cpp), on the loop.
void Watchdog::onHangup() {
  if (signalled_) {
    log::host().info("SIGHUP received while stopping: no reload");
    return;
  }
  log::host().info("SIGHUP received: reloading the configuration");
  if (hooks_.reload) {
    hooks_.reload();
  }
}

void Watchdog::check() {
  if (finished_.load()) {
    return;
  }
  const uint64_t now = monoMs();
  const uint64_t beat = last_beat_ms_.load(std::memory_order_relaxed);
  const uint64_t age = now > beat ? now - beat : 0;
  if (age >= options_.stall_ms) {
    stall_max_ms_ = age;
    if (!stalled_) {
      stalled_ = true;
      have_snapshot_ = calls_.read(snapshot_);
      reportStall(age, false);
    } else if (now - last_report_ms_ >= options_.stall_ms &&
               (have_snapshot_ ? !calls_.isCurrent(snapshot_) : calls_.inCall())) {
      // Still not turning, but in another call now (a second event stuck
      // in the same callback): say so -- at most once per stall_ms, however
      // fast the calls change.
      have_snapshot_ = calls_.read(snapshot_);
      reportStall(age, true);
    }
  } else if (stalled_) {
    stalled_ = false;
    have_snapshot_ = false;
    log::host().warn("event loop running again after a stall of at least {} ms", stall_max_ms_);
  }
  if (signalled_ && now >= deadline_ms_) {
    // A loop that turns takes the deadline itself (its own timer): only a
    // loop that does not is ended from here.
    const uint64_t not_turning = deadline_taken_.load() ? std::max<uint64_t>(options_.stall_ms, kAfterDeadlineStallMs)
                                                        : 2 * static_cast<uint64_t>(beat_ms_) + tick_ms_;
    if (age > not_turning) {
      exitStuck(age);
    }
  }
}

std::string Watchdog::describe(const CurrentCall::Snapshot& s) const {
  if (s.event_id.empty() && s.event_type.empty()) {
    return "in plugin " + s.plugin + " (" + s.what + ")";
  }
  return "in plugin " + s.plugin + " handling eventId=" + s.event_id + " eventType=" + s.event_type;
}

void Watchdog::reportStall(uint64_t age_ms, bool changed) {
  last_report_ms_ = monoMs();
  const std::string where = have_snapshot_ ? describe(snapshot_) : "outside any plugin handle() or callback";
  if (changed) {
    log::host().error("event loop still stalled ({} ms without turning), now {}", age_ms, where);
  } else {
    log::host().error("event loop stalled for {} ms {} (loop_stall_ms={})", age_ms, where, options_.stall_ms);
  }
}

void Watchdog::exitStuck(uint64_t age_ms) {
  CurrentCall::Snapshot now;
  const bool held = calls_.read(now, /*hold=*/true);  // never released: we exit
  if (held) {
    snapshot_ = now;
  }
  log::host().error("shutdown deadline ({} ms) passed with the event loop stuck for {} ms {}: exiting with 1",
                    options_.shutdown_timeout_ms, age_ms,
                    held ? describe(snapshot_) : std::string("outside any plugin call"));
  if (held && hooks_.write_unfinished) {
    // The loop thread cannot leave the plugin call while we hold it, so
    // what it owns stays still while the unfinished events are written.
    try {
      const size_t n = hooks_.write_unfinished();
      log::host().error("{} unfinished event(s) written to the fallback file (reason abandoned); plugins not shut down",
                        n);
    } catch (const std::exception& e) {
      log::host().critical("could not write the unfinished events: {}", e.what());
    }
  } else {
    log::host().error(
        "the loop is not inside a plugin call, so its unfinished events cannot be read safely: stream "
        "entries stay pending in Redis (delivered again), Pub/Sub events in flight are lost");
  }
  log::drain();
  std::_Exit(1);
}

}  // namespace evh::app
