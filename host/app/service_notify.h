// What evhost tells its service manager through sd_notify(3) (systemd,
// Type=notify): READY=1 the first time it is ready (GET /readyz's
// condition: every subscription confirmed, every stream read), a one-line
// STATUS=, STOPPING=1 when a stop begins, RELOADING=1 / READY=1 around a
// reload, and WATCHDOG=1 from a timer on the event loop -- so a loop that
// stops turning stops the pings, and the manager's WatchdogSec= acts.
// Without NOTIFY_SOCKET in the environment all of it does nothing.
// THREAD: loop (the messages go out on NotifySender's thread).
#pragma once

#include "app/notify_sender.h"
#include "loop/uv_handle.h"
#include "ops/readiness.h"

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace evh::app {

// The figures a status line sums up.
struct StatusFigures {
  size_t channels = 0;
  size_t plugins = 0;
  uint64_t handled = 0;        // handler calls answered OK, every plugin's
  uint64_t dead_lettered = 0;  // dead-letter entries made
  size_t in_flight = 0;        // events not finished
};

enum class ServicePhase { Starting, Running, Reloading, Stopping };

// The longest STATUS= value sent, in bytes.
constexpr size_t kMaxStatusBytes = 256;

// One line for STATUS=: "ready: 2 channels, 1 plugin, 12 handled, 0
// dead-lettered, 0 in flight", or "starting (<why not ready>): ...", "not
// ready (<why>): ...", "reloading: ...", "stopping: ...". The reason is
// /readyz's first (and how many more); never a secret (addresses are
// host:port). Valid UTF-8 (malformed bytes become '?'), control characters
// as spaces; at most kMaxStatusBytes, cut between characters.
std::string statusLine(ServicePhase phase, const ops::Readiness& readiness, const StatusFigures& figures);
// The messages, each with its status line.
std::string readyMessage(const std::string& status);
std::string stoppingMessage(const std::string& status);
// RELOADING=1 with MONOTONIC_USEC= (CLOCK_MONOTONIC, as systemd 253's
// Type=notify-reload requires; older managers ignore it).
std::string reloadingMessage(uint64_t monotonic_usec, const std::string& status);

class ServiceNotify {
 public:
  struct Hooks {
    std::function<ops::Readiness()> readiness;  // Server::readiness
    std::function<StatusFigures()> figures;
  };
  struct Options {
    uint32_t poll_ms = 100;           // how often readiness is looked at until READY=1
    uint32_t status_ms = 500;         // then: a STATUS= when the phase or readiness changed
    uint32_t status_every_ms = 5000;  // and at most this often when only the figures did
  };

  // Reads NOTIFY_SOCKET (without it: disabled, nothing runs) and, through
  // sd_watchdog_enabled(3), WATCHDOG_USEC (and WATCHDOG_PID: another pid's
  // watchdog is not ours).
  ServiceNotify(uv_loop_t* loop, Hooks hooks, Options options);
  ServiceNotify(uv_loop_t* loop, Hooks hooks) : ServiceNotify(loop, std::move(hooks), Options{}) {}
  ~ServiceNotify();
  ServiceNotify(const ServiceNotify&) = delete;
  ServiceNotify& operator=(const ServiceNotify&) = delete;

  bool enabled() const noexcept { return sender_ != nullptr; }
  // WATCHDOG=1's period: half of WATCHDOG_USEC (at least 1 ms); 0 without
  // a watchdog.
  uint64_t watchdogPeriodMs() const noexcept { return watchdog_ms_; }
  ServicePhase phase() const noexcept { return phase_; }

  // Starts the timers (unreferenced: they never keep the loop alive): the
  // readiness poll, then status updates; the watchdog's pings.
  void start();
  // A stop began: STOPPING=1 and the status line. Status updates go on
  // (the events in flight), as do the pings, until close().
  void stopping();
  // A reload began: RELOADING=1, MONOTONIC_USEC= and the status line.
  void reloading();
  // The reload is done: READY=1 and the status line.
  void reloaded();
  // Stops and closes the timers: no more pings or status lines.
  void close();

 private:
  enum class Message { Status, Ready, Stopping, Reloading };
  void tick();
  ops::Readiness readiness() const;
  StatusFigures figures() const;
  uint64_t nowMs() const;
  // Sends `message` with the status line of the phase now.
  void send(Message message, const ops::Readiness& readiness);

  uv_loop_t* loop_;
  Hooks hooks_;
  Options options_;
  std::unique_ptr<NotifySender> sender_;  // null: NOTIFY_SOCKET unset
  uint64_t watchdog_ms_ = 0;
  ServicePhase phase_ = ServicePhase::Starting;
  std::string sent_head_;  // the last status line sent, and its part before the figures
  std::string sent_line_;
  uint64_t sent_ms_ = 0;
  UvHandle<uv_timer_t> tick_;
  UvHandle<uv_timer_t> ping_;
};

}  // namespace evh::app
