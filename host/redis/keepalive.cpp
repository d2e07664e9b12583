// Connection's keep-alive: a PING when the connection has been quiet,
// half-open detection (no reply within ping_timeout_ms, judged in loop
// iterations as well as time so that a busy loop does not blame Redis),
// the backoff restarting once a connection proves stable, and pausing the
// reads.
#include "common/log.h"
#include "redis/connection.h"
#include "redis/hiredis_compat.h"

#include <algorithm>
#include <string_view>

namespace evh::redis {
uint64_t Connection::stableAfterMs() const noexcept {
  // Long enough for a keep-alive round trip, and for as long as the longest
  // backoff step: flapping can then never retry faster than the backoff.
  return std::max<uint64_t>(endpoint_.backoff_max_ms, endpoint_.ping_interval_ms);
}

void Connection::pauseReading() {
  if (!ready_ || ac_ == nullptr || read_paused_) {
    return;
  }
  read_paused_ = true;
  if (bridge_) {
    // TLS: the bridge stops reading Redis. hiredis's own socket carries only
    // the connection's end, which must still be seen while paused (a bridge
    // that fails closes it): it stays watched.
    bridge_->pauseDelivery();
    return;
  }
  compat::stopReading(ac_);
}

void Connection::resumeReading() {
  if (!read_paused_) {
    return;
  }
  read_paused_ = false;
  if (ac_ != nullptr) {
    compat::startReading(ac_);
    if (bridge_) {
      bridge_->resumeDelivery();
    }
    // A PING answer may have waited unread: give it a fresh window.
    ping_sent_ms_ = uv_now(loop_);
    iterations_at_ping_ = iterations_;
  }
}

void Connection::onTick() {
  if (!ready_ || ac_ == nullptr) {
    return;
  }
  const uint64_t now = uv_now(loop_);
  if (!stable_ && now - ready_since_ms_ >= stableAfterMs()) {
    stable_ = true;
    backoff_.reset();
    if (short_lived_ > 1) {
      log::host().info("redis {} ({}): connection up for {} ms, after {} connection(s) lost the same way: {}", name_,
                       where_, now - ready_since_ms_, short_lived_, last_loss_);
    }
    short_lived_ = 0;
  }
  if (read_paused_) {
    last_tick_ms_ = now;
    return;  // nothing can be read: no judging the connection meanwhile
  }
  const bool loop_stalled = now - last_tick_ms_ > 3 * tick_ms_;
  last_tick_ms_ = now;
  if (ping_outstanding_ && loop_stalled) {
    // The loop itself was busy for several ticks: the silence says nothing
    // about the connection. Give the PING a fresh window.
    ping_sent_ms_ = now;
    return;
  }
  if (ping_outstanding_) {
    if (guard_.repliesSeen() == seen_at_ping_ && now - ping_sent_ms_ >= endpoint_.ping_timeout_ms) {
      // The answer may be waiting unread if the loop itself was busy: read
      // before judging.
      redisAsyncHandleRead(ac_);
      checkReplyBound();
      if (ac_ == nullptr || !ready_) {
        return;
      }
    }
    if (guard_.repliesSeen() != seen_at_ping_) {
      ping_outstanding_ = false;
    } else if (now - ping_sent_ms_ >= endpoint_.ping_timeout_ms && iterations_ - iterations_at_ping_ >= 4) {
      dropContext("no reply to PING within ping_timeout_ms=" + std::to_string(endpoint_.ping_timeout_ms) +
                  " (half-open connection?)");
      return;
    }
  }
  if (!ping_outstanding_ && now - ping_sent_ms_ >= endpoint_.ping_interval_ms) {
    sendPing();
  }
}

void Connection::sendPing() {
  seen_at_ping_ = guard_.repliesSeen();
  iterations_at_ping_ = iterations_;
  ping_sent_ms_ = uv_now(loop_);
  ping_outstanding_ = true;
  if (mode_ == Mode::Commands) {
    static const char* argv[] = {"PING"};
    static const size_t lens[] = {4};
    redisAsyncCommandArgv(ac_, nullptr, nullptr, 1, argv, lens);
    return;
  }
  // In subscribed mode a PING sent as a command would leak a callback node
  // in hiredis 0.14 (see compat::writeRaw): it is written raw, with no
  // callback to match, and its reply -- which hiredis looks up as a pattern
  // "" we never subscribe, and drops -- is seen by the reply guard.
  static constexpr std::string_view kPing = "*1\r\n$4\r\nPING\r\n";
  compat::writeRaw(ac_, kPing);
}

}  // namespace evh::redis
