// A Redis connection's way up: the address resolved (on libuv's thread
// pool for a name), the TCP connect (and TLS), the pipelined handshake
// (AUTH, SELECT, PING, and ROLE when the master is required: redis/handshake.h)
// and becoming ready. The state machine around it is connection.cpp's.
#include "redis/connection.h"

#include "common/log.h"
#include "redis/hiredis_compat.h"

#include <hiredis/hiredis.h>

#include <arpa/inet.h>
#include <netdb.h>

#include <vector>

namespace evh::redis {
namespace {

bool isNumericIp(const std::string& host) {
  unsigned char buf[sizeof(struct in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

}  // namespace

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
                    uv_now(loop_) - down_since_ms_, failed_attempts_);
  } else {
    log::host().info("redis {} ({}): connected", name_, where_);
  }
  down_since_ms_ = 0;
  failed_attempts_ = 0;
  last_failure_.clear();
  // The backoff restarts only once this connection has proved stable (see
  // onTick): one lost right after each connect must not retry at once.
  ready_since_ms_ = uv_now(loop_);
  stable_ = false;
  ping_outstanding_ = false;
  ping_sent_ms_ = uv_now(loop_);
  uint64_t tick = std::max<uint64_t>(50, std::min(endpoint_.ping_interval_ms, endpoint_.ping_timeout_ms) / 2);
  tick_ms_ = tick;
  last_tick_ms_ = uv_now(loop_);
  uv_timer_start(
      tick_timer_.get(), [](uv_timer_t* t) { static_cast<Connection*>(t->data)->onTick(); }, tick, tick);
  if (handlers_.on_ready) {
    handlers_.on_ready();
  }
}

}  // namespace evh::redis
