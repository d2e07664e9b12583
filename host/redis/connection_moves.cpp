// Connection's moves: a reload's new settings (reconfigure) and a new
// master announced by the address provider (onAddressChanged, Sentinel). Each
// leaves the current connection, or the attempt under way, and connects
// again at once, without backoff (move_now_); an attempt begun before the
// change is refused once it would be ready (becomeReady).
#include "redis/connection.h"

#include <memory>
#include <utility>

namespace evh::redis {

void Connection::reconfigure(Endpoint endpoint) {
  ++settings_;
  if (!stopped_ && state_ != State::Idle && state_ != State::Waiting) {
    // Dropped before the settings change: a handshake under way ends with
    // the steps it was sent. An attempt with no context yet (resolving, or
    // TLS being set up) is refused once it would be ready (becomeReady:
    // attempt_settings_), and the next goes at once.
    move_now_ = true;
    reconnect("the Redis settings changed (a reload)");
  }
  addresses_->unwatch(watch_id_);
  endpoint_ = std::move(endpoint);
  addresses_ = endpoint_.addresses != nullptr ? endpoint_.addresses : std::make_shared<StaticAddress>(endpoint_);
  watch_id_ = addresses_->watch([this] { onAddressChanged(); });
  handshake_ = Handshake(endpoint_);
  backoff_ = Backoff(endpoint_.backoff_initial_ms, endpoint_.backoff_max_ms, endpoint_.backoff_multiplier);
  if (!stopped_ && state_ == State::Waiting) {
    // Lost just now, or waiting out a backoff: the next attempt, now.
    uv_timer_stop(retry_timer_.get());
    move_now_ = false;
    resolve();
  }
}

void Connection::onAddressChanged() {
  if (stopped_ || state_ == State::Idle) {
    return;
  }
  const Address now = addresses_->current();
  if (state_ == State::Waiting) {
    uv_timer_stop(retry_timer_.get());
    resolve();
    return;
  }
  if (now == address_ || now.host.empty()) {
    return;
  }
  move_now_ = true;
  // A connection still resolving has no context: it checks again once
  // ready (becomeReady), and the ROLE step refuses a demoted node anyway.
  reconnect("the master is now at " + now.describe());
}

}  // namespace evh::redis
