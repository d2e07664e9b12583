// A self-healing Redis connection over hiredis' async API and libuv adapter.
// sds.h has no extern "C" of its own in hiredis 0.14, and hiredis.h (via
// connection.h) includes it outside its own: so it comes first, as C.
extern "C" {
#include <hiredis/sds.h>
}

#include "redis/connection.h"

#include "common/log.h"

#include <hiredis/adapters/libuv.h>
#include <hiredis/hiredis.h>
#include <hiredis/read.h>

#include <arpa/inet.h>
#include <netdb.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>

namespace evh::redis {
namespace {

uint64_t nowMs(uv_loop_t* loop) { return uv_now(loop); }

bool isNumericIp(const std::string& host) {
  unsigned char buf[sizeof(struct in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

const redisReplyObjectFunctions* g_default_fns = nullptr;

}  // namespace

// The reader's object hooks: every reply object the reader creates passes
// here (forwarded to hiredis' own functions), with the reader's privdata
// pointing at its Connection (NULL once it let go). They
// - note liveness: every top-level reply bumps a counter. hiredis 0.14 offers
//   no way to see the reply to a PING sent in subscribed mode (it lands in no
//   callback), so "anything arrived since the PING" is the signal;
// - bound the reply being read: its objects count against the connection's
//   reply bound (the bytes still buffered are checked after each read);
// - refuse what hiredis would abort() on (an assert) from a broken server: a
//   reply nobody asked for, or a subscribed-mode array of the wrong shape;
// - turn a refused (P)SUBSCRIBE into an array naming the subscription, which
//   hiredis routes to its callback, instead of dropping the connection.
// A hook returning NULL makes the reader fail ("out of memory"); the drop
// reason set first is what the disconnect reports.
struct ReaderHooks {
  static Connection* owner(const redisReadTask* t) { return static_cast<Connection*>(t->privdata); }

  // Subscribed, with no regular reply queued: what arrives is Pub/Sub.
  static bool subscribedMode(const Connection& c) {
    return c.ac_ != nullptr && (c.ac_->c.flags & REDIS_SUBSCRIBED) != 0 && c.ac_->replies.head == nullptr;
  }

  static bool admit(const redisReadTask* t, uint64_t bytes) {
    Connection* c = owner(t);
    if (c == nullptr || c->ac_ == nullptr) {
      return true;
    }
    if (t->parent == nullptr) {
      ++c->replies_seen_;
      c->reply_bytes_ = 0;
      if (c->ac_->replies.head == nullptr && (c->ac_->c.flags & REDIS_SUBSCRIBED) == 0 &&
          t->type != REDIS_REPLY_ERROR) {
        return reject(*c, "protocol error: a reply to no command from " + c->endpoint_.describe());
      }
    } else if (t->parent->parent == nullptr && t->idx < 2 && t->type != REDIS_REPLY_STRING && subscribedMode(*c)) {
      return reject(*c, "protocol error: a Pub/Sub reply without kind and channel from " + c->endpoint_.describe());
    }
    c->reply_bytes_ += bytes;
    if (c->reply_bytes_ > c->reply_bound_) {
      return reject(*c, c->oversizeReason());
    }
    return true;
  }

  static bool reject(Connection& c, std::string why) {
    if (c.drop_reason_.empty()) {
      c.drop_reason_ = std::move(why);
    }
    return false;
  }

  static void* string(const redisReadTask* t, char* s, size_t n) {
    if (!admit(t, sizeof(redisReply) + n)) {
      return nullptr;
    }
    Connection* c = owner(t);
    if (c != nullptr && c->mode_ == Connection::Mode::Subscriber && subscribedMode(*c)) {
      if (t->parent == nullptr && t->type == REDIS_REPLY_ERROR && !c->unanswered_subscribes_.empty()) {
        return refusal(*c, s, n);
      }
      if (t->parent != nullptr && t->parent->parent == nullptr && t->idx == 0 && !c->unanswered_subscribes_.empty() &&
          (std::string_view(s, n) == "subscribe" || std::string_view(s, n) == "psubscribe")) {
        c->unanswered_subscribes_.pop_front();  // answered in the order sent
      }
    }
    return g_default_fns->createString(t, s, n);
  }
  static void* array(const redisReadTask* t, int n) {
    if (!admit(t, sizeof(redisReply) + static_cast<uint64_t>(std::max(n, 0)) * sizeof(redisReply*))) {
      return nullptr;
    }
    Connection* c = owner(t);
    if (c != nullptr && t->parent == nullptr && n < 2 && subscribedMode(*c)) {
      reject(*c, "protocol error: a Pub/Sub reply without kind and channel from " + c->endpoint_.describe());
      return nullptr;
    }
    return g_default_fns->createArray(t, n);
  }
  static void* integer(const redisReadTask* t, long long v) {
    return admit(t, sizeof(redisReply)) ? g_default_fns->createInteger(t, v) : nullptr;
  }
  static void* nil(const redisReadTask* t) {
    return admit(t, sizeof(redisReply)) ? g_default_fns->createNil(t) : nullptr;
  }
  static void free(void* obj) { g_default_fns->freeObject(obj); }

  // [kRefused or kPatternRefused, name, error] for the oldest unanswered
  // (P)SUBSCRIBE, built with hiredis' own functions so that it frees it.
  static void* refusal(Connection& c, const char* s, size_t n) {
    auto [pattern, name] = std::move(c.unanswered_subscribes_.front());
    c.unanswered_subscribes_.pop_front();
    redisReadTask top{};
    top.type = REDIS_REPLY_ARRAY;
    top.elements = 3;
    top.idx = -1;
    void* array = g_default_fns->createArray(&top, 3);
    if (array == nullptr) {
      return nullptr;
    }
    top.obj = array;
    const std::string parts[3] = {pattern ? Connection::kPatternRefused : Connection::kRefused, name,
                                  std::string(s, n)};
    for (int i = 0; i < 3; ++i) {
      redisReadTask child{};
      child.type = REDIS_REPLY_STRING;
      child.idx = i;
      child.parent = &top;
      if (g_default_fns->createString(&child, const_cast<char*>(parts[i].data()), parts[i].size()) == nullptr) {
        g_default_fns->freeObject(array);
        return nullptr;
      }
    }
    return array;
  }

  // After hiredis has read (and parsed what it could): the bytes still
  // buffered count against the bound too -- an endless bulk string is
  // never parsed, only buffered.
  static void afterRead(redisAsyncContext* ac) {
    if (ac != nullptr && ac->data != nullptr) {
      static_cast<Connection*>(ac->data)->checkReplyBound();
    }
  }
};

namespace {

redisReplyObjectFunctions g_hooked_fns = {ReaderHooks::string, ReaderHooks::array, ReaderHooks::integer,
                                          ReaderHooks::nil, ReaderHooks::free};

// The event hooks hiredis calls to (un)watch its socket. They do what the
// hiredis 0.14 libuv adapter's own hooks do, with two differences:
// - the adapter returns early when a poll reports an error (status < 0) --
//   and libuv reports POLLERR, e.g. a refused connect, exactly that way,
//   after stopping the poll. hiredis would never hear of it and a refused
//   connect would wait for our connect timeout. Our poll callback hands
//   errors to hiredis as readiness, so that it reads the socket error itself;
// - the adapter restarts the poll on every call, and hiredis re-arms reading
//   after every read: a uv_poll_start (stop + start, so an epoll_ctl) per
//   message. Ours touch the poll only when the set of events changes.
void pollPassingErrors(uv_poll_t* handle, int status, int events) {
  auto* p = static_cast<redisLibuvEvents*>(handle->data);
  if (status < 0) {
    // libuv has stopped this poll: whatever hiredis asks next must start it.
    p->events = 0;
  }
  redisLibuvPoll(handle, 0, status < 0 ? (UV_READABLE | UV_WRITABLE) : events);
  ReaderHooks::afterRead(p->context);  // NULL once hiredis let go of it
}
void setEvents(void* privdata, int events) {
  auto* p = static_cast<redisLibuvEvents*>(privdata);
  if (events == p->events) {
    return;
  }
  p->events = events;
  if (events != 0) {
    uv_poll_start(&p->handle, events, &pollPassingErrors);
  } else {
    uv_poll_stop(&p->handle);
  }
}
// The Connection a hook's adapter state belongs to (null once dropped).
Connection* ownerOf(void* privdata) {
  redisAsyncContext* ac = static_cast<redisLibuvEvents*>(privdata)->context;
  return ac != nullptr ? static_cast<Connection*>(ac->data) : nullptr;
}

void addRead(void* privdata) {
  if (Connection* c = ownerOf(privdata); c != nullptr && c->readingPaused()) {
    return;  // hiredis re-arms reading after each write; not while paused
  }
  setEvents(privdata, static_cast<redisLibuvEvents*>(privdata)->events | UV_READABLE);
}
void delRead(void* privdata) { setEvents(privdata, static_cast<redisLibuvEvents*>(privdata)->events & ~UV_READABLE); }
void addWrite(void* privdata) { setEvents(privdata, static_cast<redisLibuvEvents*>(privdata)->events | UV_WRITABLE); }
void delWrite(void* privdata) { setEvents(privdata, static_cast<redisLibuvEvents*>(privdata)->events & ~UV_WRITABLE); }

void hookReader(redisAsyncContext* ac, Connection* owner) {
  redisReader* r = ac->c.reader;
  if (g_default_fns == nullptr) {
    g_default_fns = r->fn;
  }
  r->fn = &g_hooked_fns;
  r->privdata = owner;
}

}  // namespace

Connection::Connection(uv_loop_t* loop, Endpoint endpoint, std::string name, Mode mode, Handlers handlers)
    : loop_(loop),
      endpoint_(std::move(endpoint)),
      name_(std::move(name)),
      mode_(mode),
      handlers_(std::move(handlers)),
      backoff_(endpoint_.backoff_initial_ms, endpoint_.backoff_max_ms, endpoint_.backoff_multiplier) {
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
  uv_check_start(iteration_check_.get(), [](uv_check_t* c) { ++static_cast<Connection*>(c->data)->iterations_; });
  uv_unref(reinterpret_cast<uv_handle_t*>(iteration_check_.get()));
}

Connection::~Connection() { stop(); }

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
    ac_ = nullptr;
    // Pending callbacks run with NULL replies inside redisAsyncFree; the
    // connect/disconnect callbacks see data == nullptr and leave us alone.
    ac->data = nullptr;
    ac->c.reader->privdata = nullptr;
    redisAsyncFree(ac);
  }
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
  if (isNumericIp(endpoint_.host)) {
    connectTo(endpoint_.host);
    return;
  }
  // hiredis would resolve with a blocking getaddrinfo on the loop; resolve
  // on libuv's thread pool instead and connect to the address found.
  auto* req = new uv_getaddrinfo_t();
  req->data = this;
  struct addrinfo hints {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  int rc = uv_getaddrinfo(loop_, req, &Connection::onResolved, endpoint_.host.c_str(), nullptr, &hints);
  if (rc != 0) {
    delete req;
    fail("cannot resolve " + endpoint_.host + ": " + uv_strerror(rc));
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
    self->fail("cannot resolve " + self->endpoint_.host + ": " + (status != 0 ? uv_strerror(status) : "no address"));
    return;
  }
  self->connectTo(ip);
}

void Connection::connectTo(const std::string& ip) {
  state_ = State::Connecting;
  redisAsyncContext* ac = redisAsyncConnect(ip.c_str(), endpoint_.port);
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
  if (redisLibuvAttach(ac, loop_) != REDIS_OK) {
    redisAsyncFree(ac);
    fail("cannot attach the Redis connection to the event loop");
    return;
  }
  ac->data = this;
  ac->ev.addRead = &addRead;
  ac->ev.delRead = &delRead;
  ac->ev.addWrite = &addWrite;
  ac->ev.delWrite = &delWrite;
  hookReader(ac, this);
  redisAsyncSetConnectCallback(ac, &Connection::onConnect);
  redisAsyncSetDisconnectCallback(ac, &Connection::onDisconnect);
  ac_ = ac;
  drop_reason_.clear();
  reply_bytes_ = 0;
  reply_bound_ = redis::replyBound(ReplyKind::Handshake, endpoint_.max_message_bytes);
  unanswered_subscribes_.clear();
  uv_timer_start(
      connect_timer_.get(),
      [](uv_timer_t* t) {
        auto* self = static_cast<Connection*>(t->data);
        if (self->state_ == State::Connecting || self->state_ == State::Handshaking) {
          self->dropContext("no connection within connect_timeout_ms=" +
                            std::to_string(self->endpoint_.connect_timeout_ms));
        }
      },
      endpoint_.connect_timeout_ms, 0);
}

void Connection::onConnect(const redisAsyncContext* cac, int status) {
  auto* self = static_cast<Connection*>(cac->data);
  if (self == nullptr) {
    return;
  }
  if (status != REDIS_OK) {
    // hiredis frees the context right after this callback.
    std::string why = cac->errstr != nullptr && cac->errstr[0] != '\0' ? cac->errstr : "connect failed";
    self->ac_ = nullptr;
    self->fail(why);
    return;
  }
  auto* ac = const_cast<redisAsyncContext*>(cac);
  redisEnableKeepAlive(&ac->c);  // kernel-level half-open detection as well
  self->handshake();
}

// AUTH and SELECT when configured, then always a PING: a connection counts
// as up only after a full round trip, so that a frozen server (its kernel
// still accepting connections) fails the connect timeout instead of
// flapping between "connected" and "lost".
void Connection::handshake() {
  state_ = State::Handshaking;
  handshake_steps_.clear();
  auto send = [this](const char* step, std::vector<std::string> args) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.c_str());
      lens.push_back(a.size());
    }
    handshake_steps_.push_back(step);
    redisAsyncCommandArgv(ac_, &Connection::onHandshakeReply, this, static_cast<int>(argv.size()), argv.data(),
                          lens.data());
  };
  if (!endpoint_.password.empty()) {
    if (endpoint_.username.empty()) {
      send("AUTH", {"AUTH", endpoint_.password});
    } else {
      send("AUTH", {"AUTH", endpoint_.username, endpoint_.password});
    }
  }
  if (endpoint_.db != 0) {
    send("SELECT", {"SELECT", std::to_string(endpoint_.db)});
  }
  send("PING", {"PING"});
}

void Connection::onHandshakeReply(redisAsyncContext* ac, void* r, void* privdata) {
  auto* self = static_cast<Connection*>(privdata);
  if (ac->data == nullptr || r == nullptr || self->state_ != State::Handshaking || self->handshake_steps_.empty()) {
    return;  // the connection is going away; its disconnect path reports why
  }
  const char* step = self->handshake_steps_.front();
  self->handshake_steps_.pop_front();
  auto* reply = static_cast<redisReply*>(r);
  if (reply->type == REDIS_REPLY_ERROR) {
    self->dropContext(std::string(step) + " failed: " + reply->str);
    return;
  }
  // +OK to AUTH and SELECT, +PONG to PING: anything else is not Redis
  // speaking (a wrong port, a proxy gone wrong) and must not count as up.
  const std::string_view expected = std::string_view(step) == "PING" ? "PONG" : "OK";
  if (reply->type != REDIS_REPLY_STATUS || std::string_view(reply->str, reply->len) != expected) {
    self->dropContext("protocol error: unexpected reply to " + std::string(step) + " from " +
                      self->endpoint_.describe() + " (type " + std::to_string(reply->type) + ", not +" +
                      std::string(expected) + ")");
    return;
  }
  if (self->handshake_steps_.empty()) {
    self->becomeReady();
  }
}

void Connection::becomeReady() {
  uv_timer_stop(connect_timer_.get());
  state_ = State::Ready;
  ready_ = true;
  ++connects_;
  reply_bound_ = redis::replyBound(mode_ == Mode::Subscriber ? ReplyKind::Message : ReplyKind::Command,
                                   endpoint_.max_message_bytes);
  attempts_before_ready_ = failed_attempts_;
  if (down_since_ms_ != 0) {
    // A connection lost again the same way before it was stable: the
    // first such round was logged; the repeats are debug only.
    const bool repeat = short_lived_ > 1;
    log::host().log(repeat ? spdlog::level::debug : spdlog::level::info,
                    "redis {} ({}): connected again after {} ms and {} failed attempt(s)", name_, endpoint_.describe(),
                    nowMs(loop_) - down_since_ms_, failed_attempts_);
  } else {
    log::host().info("redis {} ({}): connected", name_, endpoint_.describe());
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
  self->ac_ = nullptr;
  // The end of the stream, or a reset (Redis closing with our last bytes
  // unread): the server's doing, not the network's or ours.
  const bool reset = ac->c.err == REDIS_ERR_IO && std::strcmp(ac->c.errstr, std::strerror(ECONNRESET)) == 0;
  self->closed_by_server_ = self->drop_reason_.empty() && status != REDIS_OK && (ac->c.err == REDIS_ERR_EOF || reset);
  std::string why = !self->drop_reason_.empty()                      ? self->drop_reason_
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
  const bool was_connected = (ac->c.flags & REDIS_CONNECTED) != 0;
  drop_reason_ = why;
  // Inside a hiredis callback the free is deferred until it returns; then
  // (or now) onDisconnect reports drop_reason_ if the socket was connected.
  redisAsyncFree(ac);
  if (!was_connected && ac_ != nullptr) {
    // Never connected: hiredis calls no disconnect callback.
    ac_ = nullptr;
    drop_reason_.clear();
    fail(why);
  }
}

void Connection::fail(const std::string& why) {
  if (stopped_) {
    return;
  }
  uv_timer_stop(connect_timer_.get());
  uv_timer_stop(tick_timer_.get());
  const bool was_ready = ready_;
  ready_ = false;
  unanswered_subscribes_.clear();
  if (was_ready) {
    ++outages_;
    down_since_ms_ = nowMs(loop_);
    short_lived_ = !stable_ && why == last_loss_ ? short_lived_ + 1 : (stable_ ? 0 : 1);
    last_loss_ = why;
    if (short_lived_ > 1) {
      log::host().debug("redis {} ({}): connection lost again: {} ({} times without staying up {} ms)", name_,
                        endpoint_.describe(), why, short_lived_, stableAfterMs());
    } else {
      log::host().warn("redis {} ({}): connection lost: {}; reconnecting", name_, endpoint_.describe(), why);
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
    log::host().error("redis {} ({}): {}; retrying with backoff", name_, endpoint_.describe(), why);
    last_failure_ = why;
  } else {
    log::host().debug("redis {} ({}): still failing: {}", name_, endpoint_.describe(), why);
  }
  read_paused_ = false;
  if (!was_ready) {
    ++failed_attempts_;
  } else {
    closed_by_server_ = false;  // told to on_lost above; the attempts start afresh
  }
  scheduleRetry();
}

void Connection::scheduleRetry() {
  state_ = State::Waiting;
  uint32_t delay = backoff_.next();
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

bool Connection::subscribe(bool pattern, const std::string& name, redisCallbackFn* fn, void* privdata) {
  const char* argv[] = {pattern ? "PSUBSCRIBE" : "SUBSCRIBE", name.c_str()};
  const size_t lens[] = {std::strlen(argv[0]), name.size()};
  if (mode_ != Mode::Subscriber || !command(2, argv, lens, fn, privdata)) {
    return false;
  }
  // Redis answers (P)SUBSCRIBEs in the order sent: the reader hooks match
  // each confirmation or refusal to the oldest one here.
  unanswered_subscribes_.emplace_back(pattern, name);
  return true;
}

uint64_t Connection::stableAfterMs() const noexcept {
  // Long enough for a keep-alive round trip, and for as long as the longest
  // backoff step: flapping can then never retry faster than the backoff.
  return std::max<uint64_t>(endpoint_.backoff_max_ms, endpoint_.ping_interval_ms);
}

std::string Connection::oversizeReason() const {
  const char* which = state_ != State::Ready ? "during the handshake"
                      : mode_ == Mode::Subscriber
                          ? "for a Pub/Sub message: 2 x limits.max_message_bytes + 64 KiB"
                          : "for a command or stream read: max(64 MiB, 100 x (limits.max_message_bytes + 64 KiB))";
  return "protocol error: reply larger than " + std::to_string(reply_bound_) + " bytes (" + which + ") from " +
         endpoint_.describe();
}

// The declared length of the bulk string the reader is waiting for. hiredis
// 0.14 takes the type byte ('$') off first and records it in the current
// task, then leaves its position at the length until the whole string is
// in. 0 when it waits for anything else.
uint64_t Connection::pendingBulkLength(const redisReader* r) {
  size_t from = r->pos;
  if (r->ridx >= 0 && r->rstack[r->ridx].type == REDIS_REPLY_STRING) {
    // the type is read: the digits start here
  } else if (r->pos < r->len && r->buf[r->pos] == '$') {
    from = r->pos + 1;
  } else {
    return 0;
  }
  uint64_t n = 0;
  for (size_t i = from; i < r->len && r->buf[i] >= '0' && r->buf[i] <= '9'; ++i) {
    n = n > (UINT64_MAX - 9) / 10 ? UINT64_MAX : n * 10 + static_cast<uint64_t>(r->buf[i] - '0');
  }
  return n;
}

void Connection::checkReplyBound() {
  if (ac_ == nullptr || !drop_reason_.empty()) {
    return;
  }
  const redisReader* r = ac_->c.reader;
  const uint64_t buffered = r->len - r->pos;
  const uint64_t held = buffered + (r->ridx >= 0 ? reply_bytes_ : 0);
  const uint64_t item = state_ == State::Ready ? pendingBulkLength(r) : 0;
  if (endpoint_.max_item_bytes > 0 && item > endpoint_.max_item_bytes) {
    if (handlers_.on_oversize) {
      handlers_.on_oversize(std::string_view(r->buf + r->pos, std::min<uint64_t>(buffered, 4096)), item);
    }
    dropContext("protocol error: a bulk string of " + std::to_string(item) + " bytes, over the bound of " +
                std::to_string(endpoint_.max_item_bytes) +
                " for one item (2 x limits.max_message_bytes + 64 KiB), from " + endpoint_.describe());
    return;
  }
  if (held > reply_bound_) {
    if (state_ == State::Ready && handlers_.on_oversize) {
      const std::string_view head(r->buf + r->pos, std::min<uint64_t>(buffered, 4096));
      handlers_.on_oversize(head, held);
    }
    dropContext(oversizeReason());
  }
}

void Connection::pauseReading() {
  if (!ready_ || ac_ == nullptr || read_paused_) {
    return;
  }
  read_paused_ = true;
  if (ac_->ev.delRead != nullptr) {
    ac_->ev.delRead(ac_->ev.data);
  }
}

void Connection::resumeReading() {
  if (!read_paused_) {
    return;
  }
  read_paused_ = false;
  if (ac_ != nullptr && ac_->ev.addRead != nullptr) {
    ac_->ev.addRead(ac_->ev.data);
    // A PING answer may have waited unread: give it a fresh window.
    ping_sent_ms_ = nowMs(loop_);
    iterations_at_ping_ = iterations_;
  }
}

void Connection::onTick() {
  if (!ready_ || ac_ == nullptr) {
    return;
  }
  const uint64_t now = nowMs(loop_);
  if (!stable_ && now - ready_since_ms_ >= stableAfterMs()) {
    stable_ = true;
    backoff_.reset();
    if (short_lived_ > 1) {
      log::host().info("redis {} ({}): connection up for {} ms, after {} connection(s) lost the same way: {}", name_,
                       endpoint_.describe(), now - ready_since_ms_, short_lived_, last_loss_);
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
    if (replies_seen_ == seen_at_ping_ && now - ping_sent_ms_ >= endpoint_.ping_timeout_ms) {
      // The answer may be waiting unread if the loop itself was busy: read
      // before judging.
      redisAsyncHandleRead(ac_);
      checkReplyBound();
      if (ac_ == nullptr || !ready_) {
        return;
      }
    }
    if (replies_seen_ != seen_at_ping_) {
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
  seen_at_ping_ = replies_seen_;
  iterations_at_ping_ = iterations_;
  ping_sent_ms_ = nowMs(loop_);
  ping_outstanding_ = true;
  if (mode_ == Mode::Commands) {
    static const char* argv[] = {"PING"};
    static const size_t lens[] = {4};
    redisAsyncCommandArgv(ac_, nullptr, nullptr, 1, argv, lens);
    return;
  }
  // In subscribed mode hiredis 0.14 queues the callback of any command but
  // (P)SUBSCRIBE on a list that only error replies drain, and the PING reply
  // (an array, ["pong", ""]) never drains it: each PING would leak a node
  // for the life of the connection. So the PING is appended to the output
  // buffer directly -- with no callback to match -- and its reply, which
  // hiredis looks up as a pattern "" we never subscribe and drops, is seen
  // by the reply hooks above.
  static constexpr char kPing[] = "*1\r\n$4\r\nPING\r\n";
  ac_->c.obuf = sdscatlen(ac_->c.obuf, kPing, sizeof(kPing) - 1);
  if (ac_->ev.addWrite != nullptr) {
    ac_->ev.addWrite(ac_->ev.data);
  }
}

}  // namespace evh::redis
