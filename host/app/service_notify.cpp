// The service manager's notifications: their text, when each is sent, and
// the loop's timers that send the status lines and the watchdog's pings.
#include "app/service_notify.h"

#include "common/log.h"

#include <systemd/sd-daemon.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace evh::app {
namespace {

// The reason a status line quotes, in bytes (the line has room for the rest).
constexpr size_t kMaxReasonBytes = 160;

// The length of the well-formed UTF-8 character at p (RFC 3629's table: no
// overlong forms, surrogates or code points past U+10FFFF), or 0.
size_t utf8Length(const unsigned char* p, size_t n) {
  const auto in = [](unsigned char c, unsigned char lo, unsigned char hi) { return c >= lo && c <= hi; };
  if (p[0] < 0x80) {
    return 1;
  }
  size_t len = 0;
  unsigned char lo = 0x80;
  unsigned char hi = 0xBF;
  if (in(p[0], 0xC2, 0xDF)) {
    len = 2;
  } else if (in(p[0], 0xE0, 0xEF)) {
    len = 3;
    lo = p[0] == 0xE0 ? 0xA0 : 0x80;
    hi = p[0] == 0xED ? 0x9F : 0xBF;
  } else if (in(p[0], 0xF0, 0xF4)) {
    len = 4;
    lo = p[0] == 0xF0 ? 0x90 : 0x80;
    hi = p[0] == 0xF4 ? 0x8F : 0xBF;
  }
  if (len == 0 || n < len || !in(p[1], lo, hi)) {
    return 0;
  }
  for (size_t i = 2; i < len; ++i) {
    if (!in(p[i], 0x80, 0xBF)) {
      return 0;
    }
  }
  return len;
}

// `text` as one line of valid UTF-8, whatever a plugin's health detail or
// Redis's error said (systemd ignores a STATUS= that is not UTF-8): control
// characters as spaces, malformed bytes as '?', cut to `max` bytes between
// characters.
std::string oneLine(const std::string& text, size_t max) {
  std::string out;
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  size_t at = 0;
  while (at < text.size()) {
    const size_t len = utf8Length(p + at, text.size() - at);
    if (out.size() + std::max<size_t>(len, 1) > max) {
      break;
    }
    if (len == 0) {
      out += '?';
      ++at;
    } else if (len == 1 && (p[at] < 0x20 || p[at] == 0x7f)) {
      out += ' ';
      ++at;
    } else {
      out.append(text, at, len);
      at += len;
    }
  }
  return out;
}

std::string count(uint64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

// What the line says first: the phase, and why evhost is not ready.
std::string head(ServicePhase phase, const ops::Readiness& readiness) {
  switch (phase) {
    case ServicePhase::Reloading:
      return "reloading";
    case ServicePhase::Stopping:
      return "stopping";
    case ServicePhase::Starting:
    case ServicePhase::Running:
      break;
  }
  if (readiness.ready()) {
    return phase == ServicePhase::Starting ? "starting" : "ready";
  }
  std::string why = oneLine(readiness.not_ready.front(), kMaxReasonBytes);
  if (readiness.not_ready.size() > 1) {
    why += " (and " + std::to_string(readiness.not_ready.size() - 1) + " more)";
  }
  return std::string(phase == ServicePhase::Starting ? "starting" : "not ready") + " (" + why + ")";
}

std::string figuresText(const StatusFigures& f) {
  return count(f.channels, "channel", "channels") + ", " + count(f.plugins, "plugin", "plugins") + ", " +
         std::to_string(f.handled) + " handled, " + std::to_string(f.dead_lettered) + " dead-lettered, " +
         std::to_string(f.in_flight) + " in flight";
}

uint64_t monotonicUsec() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
}

}  // namespace

std::string statusLine(ServicePhase phase, const ops::Readiness& readiness, const StatusFigures& figures) {
  return oneLine(head(phase, readiness) + ": " + figuresText(figures), kMaxStatusBytes);
}

std::string readyMessage(const std::string& status) { return "READY=1\nSTATUS=" + status; }

std::string stoppingMessage(const std::string& status) { return "STOPPING=1\nSTATUS=" + status; }

std::string reloadingMessage(uint64_t monotonic_usec, const std::string& status) {
  return "RELOADING=1\nMONOTONIC_USEC=" + std::to_string(monotonic_usec) + "\nSTATUS=" + status;
}

ServiceNotify::ServiceNotify(uv_loop_t* loop, Hooks hooks, Options options)
    : loop_(loop), hooks_(std::move(hooks)), options_(options) {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  if (socket == nullptr || *socket == '\0') {
    return;
  }
  sender_ = std::make_unique<NotifySender>();
  uint64_t usec = 0;
  const int watchdog = sd_watchdog_enabled(0, &usec);
  if (watchdog > 0) {
    watchdog_ms_ = std::max<uint64_t>(usec / 2000, 1);
  } else if (watchdog < 0) {
    log::host().warn("WATCHDOG_USEC or WATCHDOG_PID is not valid ({}): no WATCHDOG=1 pings will be sent",
                     std::strerror(-watchdog));
  }
  tick_ = makeUvHandle<uv_timer_t>(loop, uv_timer_init);
  tick_->data = this;
  if (watchdog_ms_ > 0) {
    ping_ = makeUvHandle<uv_timer_t>(loop, uv_timer_init);
    ping_->data = this;
  }
  log::host().info("NOTIFY_SOCKET set: telling the service manager evhost's state{}",
                   watchdog_ms_ > 0 ? fmt::format(", WATCHDOG=1 every {} ms", watchdog_ms_) : std::string());
}

ServiceNotify::~ServiceNotify() { close(); }

void ServiceNotify::start() {
  if (!enabled()) {
    return;
  }
  uv_timer_start(
      tick_.get(), [](uv_timer_t* t) { static_cast<ServiceNotify*>(t->data)->tick(); }, 0, options_.poll_ms);
  uv_unref(reinterpret_cast<uv_handle_t*>(tick_.get()));
  if (ping_) {
    // From the loop, so that a loop stuck in a plugin call stops pinging:
    // what the manager's watchdog is for.
    uv_timer_start(
        ping_.get(), [](uv_timer_t* t) { static_cast<ServiceNotify*>(t->data)->sender_->ping(); }, watchdog_ms_,
        watchdog_ms_);
    uv_unref(reinterpret_cast<uv_handle_t*>(ping_.get()));
  }
}

ops::Readiness ServiceNotify::readiness() const { return hooks_.readiness ? hooks_.readiness() : ops::Readiness{}; }

StatusFigures ServiceNotify::figures() const { return hooks_.figures ? hooks_.figures() : StatusFigures{}; }

uint64_t ServiceNotify::nowMs() const { return uv_now(loop_); }

void ServiceNotify::send(Message message, const ops::Readiness& readiness) {
  sent_head_ = head(phase_, readiness);
  sent_line_ = statusLine(phase_, readiness, figures());
  sent_ms_ = nowMs();
  switch (message) {
    case Message::Status:
      sender_->status(sent_line_);
      return;
    case Message::Ready:
      sender_->state(readyMessage(sent_line_));
      return;
    case Message::Stopping:
      sender_->state(stoppingMessage(sent_line_));
      return;
    case Message::Reloading:
      sender_->state(reloadingMessage(monotonicUsec(), sent_line_));
      return;
  }
}

void ServiceNotify::tick() {
  const ops::Readiness r = readiness();
  if (phase_ == ServicePhase::Starting && r.ready()) {
    // The first time only: READY=1 again means a reload finished.
    phase_ = ServicePhase::Running;
    send(Message::Ready, r);
    uv_timer_set_repeat(tick_.get(), options_.status_ms);
    return;
  }
  // A new phase or reason at once; new figures alone at most every
  // status_every_ms.
  if (head(phase_, r) != sent_head_ ||
      (nowMs() - sent_ms_ >= options_.status_every_ms && statusLine(phase_, r, figures()) != sent_line_)) {
    send(Message::Status, r);
  }
}

void ServiceNotify::stopping() {
  if (!enabled() || phase_ == ServicePhase::Stopping) {
    return;
  }
  phase_ = ServicePhase::Stopping;
  send(Message::Stopping, readiness());
}

void ServiceNotify::reloading() {
  if (!enabled()) {
    return;
  }
  phase_ = ServicePhase::Reloading;
  send(Message::Reloading, readiness());
}

void ServiceNotify::reloaded() {
  if (!enabled()) {
    return;
  }
  phase_ = ServicePhase::Running;
  send(Message::Ready, readiness());
}

void ServiceNotify::close() {
  tick_.close();
  ping_.close();
}

}  // namespace evh::app
