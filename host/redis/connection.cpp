// A self-healing Redis connection over hiredis' async API and libuv
// adapter: the connect / handshake / retry state machine. The keep-alive is
// keepalive.cpp, the reply bounds reply_guard.cpp, and whatever reaches into
// hiredis 0.14's internals hiredis_compat.cpp.
#include "redis/connection.h"

#include "common/log.h"
#include "redis/hiredis_compat.h"

#include <hiredis/hiredis.h>

#include <arpa/inet.h>
#include <netdb.h>

#include <algorithm>
#include <vector>

namespace evh::redis {
namespace {

uint64_t nowMs(uv_loop_t* loop) { return uv_now(loop); }

bool isNumericIp(const std::string& host) {
  unsigned char buf[sizeof(struct in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

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

void Connection::resolve() {
  state_ = State::Resolving;
  attempt_settings_ = settings_;
  // Wherever the master is now: the address may differ from the last
  // attempt's (Sentinel), so the logs name each attempt's.
  address_ = addresses_->current();
  if (address_.host.empty()) {
    // Sentinel, before any sentinel answered: try again after the backoff,
    // or at once when the answer comes (onAddressChanged).
    where_ = "address unknown";
    fail(addresses_->waitingFor(), true);
    return;
  }
  where_ = address_.describe();
  if (isNumericIp(address_.host)) {
    connectTo(address_.host);
    return;
  }
  // hiredis would resolve with a blocking getaddrinfo on the loop; resolve
  // on libuv's thread pool instead and connect to the address found.
  auto* req = new uv_getaddrinfo_t();
  req->data = this;
  struct addrinfo hints {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  int rc = uv_getaddrinfo(loop_, req, &Connection::onResolved, address_.host.c_str(), nullptr, &hints);
  if (rc != 0) {
    delete req;
    fail("cannot resolve " + address_.host + ": " + uv_strerror(rc));
    return;
  }
  resolving_ = req;
}

void Connection::onResolved(uv_getaddrinfo_t* req, int status, struct addrinfo* res) {
  auto* self = static_cast<Connection*>(req->data);
  std::string ip;
  if (status == 0 && res != nullptr) {
    char buf[INET6_ADDRSTRLEN] = {0};
    if (res->ai_family == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(res->ai_addr)->sin_addr, buf, sizeof(buf));
    } else {
      inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(res->ai_addr)->sin6_addr, buf, sizeof(buf));
    }
    ip = buf;
  }
  uv_freeaddrinfo(res);
  delete req;
  if (self == nullptr) {
    return;  // stopped meanwhile
  }
  self->resolving_ = nullptr;
  if (ip.empty()) {
    self->fail("cannot resolve " + self->address_.host + ": " + (status != 0 ? uv_strerror(status) : "no address"));
    return;
  }
  self->connectTo(ip);
}

void Connection::connectTo(const std::string& ip) {
  state_ = State::Connecting;
  drop_reason_.clear();
  uv_timer_start(
      connect_timer_.get(),
      [](uv_timer_t* t) {
        auto* self = static_cast<Connection*>(t->data);
        if (self->state_ != State::Connecting && self->state_ != State::Handshaking) {
          return;
        }
        const std::string why =
            "no connection within connect_timeout_ms=" + std::to_string(self->endpoint_.connect_timeout_ms) +
            (self->ac_ == nullptr && self->bridge_ ? " (at " + self->bridge_->stuckAt() + ")" : "");
        if (self->ac_ == nullptr) {
          self->bridge_.reset();  // still connecting or in the TLS handshake
          self->fail(why);
        } else {
          self->dropContext(why);
        }
      },
      endpoint_.connect_timeout_ms, 0);
  if (endpoint_.tls) {
    startTls(ip);
    return;
  }
  attachContext(redisAsyncConnect(ip.c_str(), address_.port));
}

void Connection::attachContext(redisAsyncContext* ac) {
  if (ac == nullptr) {
    fail("out of memory creating a Redis context");
    return;
  }
  if (ac->err != 0) {
    std::string why = ac->errstr;
    redisAsyncFree(ac);
    fail(why);
    return;
  }
  if (!compat::attachToLoop(ac, loop_)) {
    redisAsyncFree(ac);
    fail("cannot attach the Redis connection to the event loop");
    return;
  }
  ac->data = this;
  compat::hookReader(ac, &guard_);
  redisAsyncSetConnectCallback(ac, &Connection::onConnect);
  redisAsyncSetDisconnectCallback(ac, &Connection::onDisconnect);
  setContext(ac);
  guard_.startHandshake();
}

void Connection::onConnect(const redisAsyncContext* cac, int status) {
  auto* self = static_cast<Connection*>(cac->data);
  if (self == nullptr) {
    return;
  }
  if (status != REDIS_OK) {
    // hiredis frees the context right after this callback.
    std::string why = cac->errstr != nullptr && cac->errstr[0] != '\0' ? cac->errstr : "connect failed";
    self->setContext(nullptr);
    self->fail(why);
    return;
  }
  auto* ac = const_cast<redisAsyncContext*>(cac);
  if (!self->bridge_) {
    redisEnableKeepAlive(&ac->c);  // kernel-level half-open detection as well (the bridge sets its own)
  }
  self->handshake();
  if (self->bridge_) {
    // Now, before hiredis writes its output buffer to its socket on
    // return; and Redis's answers may be handed over from now on.
    self->flushToBridge();
    self->bridge_->resumeDelivery();
  }
}

// The steps are sent at once (pipelined); Redis answers them in order.
void Connection::handshake() {
  state_ = State::Handshaking;
  handshake_step_ = 0;
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const Handshake::Step& step : handshake_.steps()) {
    argv.clear();
    lens.clear();
    for (const auto& a : step.argv) {
      argv.push_back(a.c_str());
      lens.push_back(a.size());
    }
    redisAsyncCommandArgv(ac_, &Connection::onHandshakeReply, this, static_cast<int>(argv.size()), argv.data(),
                          lens.data());
  }
}

void Connection::onHandshakeReply(redisAsyncContext* ac, void* r, void* privdata) {
  auto* self = static_cast<Connection*>(privdata);
  if (ac->data == nullptr || r == nullptr || self->state_ != State::Handshaking ||
      self->handshake_step_ >= self->handshake_.steps().size()) {
    return;  // the connection is going away; its disconnect path reports why
  }
  std::string why = self->handshake_.check(self->handshake_step_++, *static_cast<redisReply*>(r), self->where_);
  if (!why.empty()) {
    self->dropContext(why);
    return;
  }
  if (self->handshake_step_ == self->handshake_.steps().size()) {
    self->becomeReady();
  }
}

void Connection::becomeReady() {
  if (attempt_settings_ != settings_) {
    move_now_ = true;  // a reload changed the settings while this attempt was under way
    dropContext("the Redis settings changed (a reload)");
    return;
  }
  if (const Address now = addresses_->current(); !now.host.empty() && now != address_) {
    move_now_ = true;  // the master moved while this attempt was under way
    dropContext("the master is now at " + now.describe());
    return;
  }
  uv_timer_stop(connect_timer_.get());
  state_ = State::Ready;
  ready_ = true;
  guard_.becomeReady(endpoint_.max_message_bytes);
  attempts_before_ready_ = failed_attempts_;
  if (down_since_ms_ != 0) {
    // A connection lost again the same way before it was stable: the
    // first such round was logged; the repeats are debug only.
    const bool repeat = short_lived_ > 1;
    log::host().log(repeat ? spdlog::level::debug : spdlog::level::info,
                    "redis {} ({}): connected again after {} ms and {} failed attempt(s)", name_, where_,
                    nowMs(loop_) - down_since_ms_, failed_attempts_);
  } else {
    log::host().info("redis {} ({}): connected", name_, where_);
  }
  down_since_ms_ = 0;
  failed_attempts_ = 0;
  last_failure_.clear();
  // The backoff restarts only once this connection has proved stable (see
  // onTick): one lost right after each connect must not retry at once.
  ready_since_ms_ = nowMs(loop_);
  stable_ = false;
  ping_outstanding_ = false;
  ping_sent_ms_ = nowMs(loop_);
  uint64_t tick = std::max<uint64_t>(50, std::min(endpoint_.ping_interval_ms, endpoint_.ping_timeout_ms) / 2);
  tick_ms_ = tick;
  last_tick_ms_ = nowMs(loop_);
  uv_timer_start(
      tick_timer_.get(), [](uv_timer_t* t) { static_cast<Connection*>(t->data)->onTick(); }, tick, tick);
  if (handlers_.on_ready) {
    handlers_.on_ready();
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
    down_since_ms_ = nowMs(loop_);
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
      down_since_ms_ = nowMs(loop_);
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
  if (!ready_ || ac_ == nullptr) {
    return false;
  }
  return redisAsyncCommandArgv(ac_, fn, privdata, argc, argv, lens) == REDIS_OK;
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
