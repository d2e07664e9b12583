// A self-healing Redis connection over hiredis' async API and libuv
// adapter: the connect / handshake / retry state machine. Its way up
// (resolve, connect, handshake, ready) is connection_dial.cpp, the keep-alive
// keepalive.cpp, the reply bounds reply_guard.cpp, and whatever reaches into
// hiredis 0.14's internals hiredis_compat.cpp.
#include "redis/connection.h"

#include "common/log.h"
#include "redis/hiredis_compat.h"
#include "redis/resp_command.h"

#include <hiredis/hiredis.h>

namespace evh::redis {
namespace {

// command()'s buffer is kept between commands up to this size (a stream
// read's batch of script calls stays well under it).
constexpr size_t kKeptCommandBytes = 1 << 20;

}  // namespace

Connection::Connection(uv_loop_t* loop, Endpoint endpoint, std::string name, Mode mode, Handlers handlers,
                       std::shared_ptr<AddressProvider> addresses)
    : loop_(loop),
      endpoint_(std::move(endpoint)),
      name_(std::move(name)),
      mode_(mode),
      handlers_(std::move(handlers)),
      backoff_(endpoint_.backoff_initial_ms, endpoint_.backoff_max_ms, endpoint_.backoff_multiplier),
      addresses_(addresses != nullptr             ? std::move(addresses)
                 : endpoint_.addresses != nullptr ? endpoint_.addresses
                                                  : std::make_shared<StaticAddress>(endpoint_)),
      handshake_(endpoint_),
      address_{endpoint_.host, endpoint_.port},
      where_(address_.describe()),
      guard_(mode_ == Mode::Subscriber, where_, drop_reason_) {
  retry_timer_ = makeUvHandle<uv_timer_t>(loop_, uv_timer_init);
  connect_timer_ = makeUvHandle<uv_timer_t>(loop_, uv_timer_init);
  tick_timer_ = makeUvHandle<uv_timer_t>(loop_, uv_timer_init);
  for (auto* t : {retry_timer_.get(), connect_timer_.get(), tick_timer_.get()}) {
    t->data = this;
  }
  // A PING answered within a few loop iterations is fine however long they
  // took: a loop busy with a flood must not mistake its own slowness for a
  // half-open connection.
  iteration_check_ = makeUvHandle<uv_check_t>(loop_, uv_check_init);
  iteration_check_->data = this;
  uv_check_start(iteration_check_.get(), [](uv_check_t* c) { static_cast<Connection*>(c->data)->onCheck(); });
  uv_unref(reinterpret_cast<uv_handle_t*>(iteration_check_.get()));
  watch_id_ = addresses_->watch([this] { onAddressChanged(); });
}

Connection::~Connection() {
  addresses_->unwatch(watch_id_);
  stop();
  stats_.reset();  // its gauge reads this
}

void Connection::start() {
  if (state_ != State::Idle) {
    return;
  }
  resolve();
}

void Connection::stop() {
  if (stopped_) {
    return;
  }
  stopped_ = true;
  state_ = State::Stopped;
  ready_ = false;
  read_paused_ = false;
  uv_timer_stop(retry_timer_.get());
  uv_timer_stop(connect_timer_.get());
  uv_timer_stop(tick_timer_.get());
  uv_check_stop(iteration_check_.get());
  if (resolving_ != nullptr) {
    resolving_->data = nullptr;  // its callback only frees it now
    uv_cancel(reinterpret_cast<uv_req_t*>(resolving_));
    resolving_ = nullptr;
  }
  if (ac_ != nullptr) {
    redisAsyncContext* ac = ac_;
    setContext(nullptr);
    // Pending callbacks run with NULL replies inside redisAsyncFree; the
    // connect/disconnect callbacks see data == nullptr and leave us alone.
    ac->data = nullptr;
    compat::unhookReader(ac);
    redisAsyncFree(ac);
  }
  bridge_.reset();
}

void Connection::setContext(redisAsyncContext* ac) noexcept {
  ac_ = ac;
  write_due_ = false;
  guard_.setContext(ac);
}

bool Connection::deferWrite() noexcept {
  if (flushing_ || ac_ == nullptr || !compat::connected(ac_)) {
    return false;
  }
  write_due_ = true;
  return true;
}

void Connection::onCheck() {
  ++iterations_;
  if (!write_due_) {
    return;
  }
  write_due_ = false;
  if (bridge_) {
    flushToBridge();
    return;
  }
  flushing_ = true;
  compat::handleWrite(ac_);  // a write error disconnects: ac_ may be null after
  flushing_ = false;
}

void Connection::reconnect(const std::string& why) {
  if (stopped_) {
    return;
  }
  if (ac_ != nullptr) {
    dropContext(why);
  }
}

void Connection::onDisconnect(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<Connection*>(ac->data);
  if (self == nullptr) {
    return;
  }
  // hiredis frees the context after this callback.
  self->setContext(nullptr);
  // The end of the stream, or a reset: the server's doing, not the
  // network's or ours.
  self->closed_by_server_ = self->drop_reason_.empty() && status != REDIS_OK && compat::closedByPeer(ac);
  const std::string tls_why = self->bridge_ ? self->bridge_->failure() : std::string();
  const std::string protocol_why = compat::protocolError(ac->err, ac->errstr, self->where_);
  std::string why = !self->drop_reason_.empty()                      ? self->drop_reason_
                    : !tls_why.empty()                               ? tls_why
                    : !protocol_why.empty()                          ? protocol_why
                    : status == REDIS_OK                             ? std::string("closed")
                    : ac->errstr != nullptr && ac->errstr[0] != '\0' ? std::string(ac->errstr)
                                                                     : std::string("connection lost");
  self->drop_reason_.clear();
  self->fail(why);
}

void Connection::dropContext(const std::string& why) {
  if (ac_ == nullptr) {
    return;
  }
  redisAsyncContext* ac = ac_;
  const bool was_connected = compat::connected(ac);
  drop_reason_ = why;
  // Inside a hiredis callback the free is deferred until it returns; then
  // (or now) onDisconnect reports drop_reason_ if the socket was connected.
  redisAsyncFree(ac);
  if (!was_connected && ac_ != nullptr) {
    // Never connected: hiredis calls no disconnect callback.
    setContext(nullptr);
    drop_reason_.clear();
    fail(why);
  }
}

void Connection::exportStats(ops::Registry& stats) {
  stats_ = std::make_unique<ops::Scope>(stats, ops::Labels{{"connection", name_}});
  stats_->computedGauge("evhost_redis_up", "1 while the connection is up and authenticated",
                        [this] { return ready_ ? 1.0 : 0.0; });
  outages_total_ = stats_->counter("evhost_redis_outages_total", "connections that were up and were lost");
  for (size_t k = 0; k < kFailureKinds.size(); ++k) {
    const ops::Labels kind{{"kind", kFailureKinds[k]}};
    failures_total_[k] = stats_->counter("evhost_redis_connect_failures_total",
                                         "connect attempts that failed, by kind (the log says why)", kind);
    stats_->computedGauge(
        "evhost_redis_last_failure",
        "1 for the kind of the failure that keeps the connection down, until it is up again; 0 otherwise",
        [this, k] { return !ready_ && last_kind_ == static_cast<int>(k) ? 1.0 : 0.0; }, kind);
  }
}

void Connection::fail(const std::string& why, bool waiting) {
  if (stopped_) {
    return;
  }
  uv_timer_stop(connect_timer_.get());
  uv_timer_stop(tick_timer_.get());
  const bool was_ready = ready_;
  ready_ = false;
  guard_.forgetSubscribes();
  // The provider hears of every failure (Sentinel: look for the master
  // again); the next attempt asks it where to go.
  addresses_->failed(address_, why);
  if (was_ready) {
    ++outages_;
    outages_total_.inc();
    down_since_ms_ = uv_now(loop_);
    short_lived_ = !stable_ && why == last_loss_ ? short_lived_ + 1 : (stable_ ? 0 : 1);
    last_loss_ = why;
    if (short_lived_ > 1) {
      log::host().debug("redis {} ({}): connection lost again: {} ({} times without staying up {} ms)", name_, where_,
                        why, short_lived_, stableAfterMs());
    } else {
      log::host().warn("redis {} ({}): connection lost: {}; reconnecting", name_, where_, why);
    }
    last_failure_ = why;
    if (handlers_.on_lost) {
      handlers_.on_lost(why);  // readingPaused() still tells whether we were
    }
  } else if (why != last_failure_) {
    if (down_since_ms_ == 0) {
      down_since_ms_ = uv_now(loop_);
    }
    // The first failure, or a different one (say, from "connection refused"
    // to "WRONGPASS"): worth one line. Repeats of it are debug only.
    log::host().log(waiting ? spdlog::level::info : spdlog::level::err, "redis {} ({}): {}; retrying with backoff",
                    name_, where_, why);
    last_failure_ = why;
  } else {
    log::host().debug("redis {} ({}): still failing: {}", name_, where_, why);
  }
  read_paused_ = false;
  for (size_t k = 0; k < kFailureKinds.size(); ++k) {
    if (std::string_view(kFailureKinds[k]) == failureKind(why)) {
      last_kind_ = static_cast<int>(k);
    }
  }
  if (!was_ready) {
    ++failed_attempts_;
    if (last_kind_ >= 0) {
      failures_total_[static_cast<size_t>(last_kind_)].inc();
    }
  } else {
    closed_by_server_ = false;  // told to on_lost above; the attempts start afresh
  }
  scheduleRetry();
}

void Connection::scheduleRetry() {
  state_ = State::Waiting;
  const uint32_t delay = move_now_ ? 0 : backoff_.next();
  move_now_ = false;
  uv_timer_start(
      retry_timer_.get(),
      [](uv_timer_t* t) {
        auto* self = static_cast<Connection*>(t->data);
        if (!self->stopped_ && self->state_ == State::Waiting) {
          self->resolve();
        }
      },
      delay, 0);
}

bool Connection::command(int argc, const char** argv, const size_t* lens, redisCallbackFn* fn, void* privdata) {
  if (!ready_ || ac_ == nullptr || argc <= 0) {
    return false;
  }
  // Formatted here rather than by redisAsyncCommandArgv (resp_command.h
  // says why); hiredis copies it into its output buffer before returning.
  // The text must end in a NUL, as a std::string's does: hiredis reads the
  // command's name with strchr to spot (UN)SUBSCRIBE and MONITOR.
  const size_t len = formatCommand(command_text_, argc, argv, lens);
  const bool queued = redisAsyncFormattedCommand(ac_, fn, privdata, command_text_.data(), len) == REDIS_OK;
  if (command_text_.size() > kKeptCommandBytes) {
    std::string().swap(command_text_);  // a rare large command does not stay allocated
  }
  return queued;
}

void Connection::checkReplyBound() {
  if (ac_ == nullptr || !drop_reason_.empty()) {
    return;
  }
  ReplyGuard::Overflow over;
  if (!guard_.overflows(ac_, endpoint_.max_item_bytes, over)) {
    return;
  }
  if (state_ == State::Ready && handlers_.on_oversize) {
    handlers_.on_oversize(over.head, over.held);
  }
  dropContext(over.why);
}

}  // namespace evh::redis
