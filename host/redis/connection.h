// One Redis connection that keeps itself connected: async connect to
// wherever its AddressProvider says, the handshake (handshake.h), reconnect
// with backoff, half-open detection by PING (keepalive.cpp), and replies
// bounded while they are read (reply_guard.h). hiredis 0.14's internals are
// reached only through hiredis_compat.h.
#pragma once

#include "loop/uv_handle.h"
#include "ops/stats.h"
#include "redis/address.h"
#include "redis/backoff.h"
#include "redis/endpoint.h"
#include "redis/failure_kind.h"
#include "redis/handshake.h"
#include "redis/reply_guard.h"
#include "redis/tls_bridge.h"

#include <hiredis/async.h>
#include <uv.h>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

namespace evh::redis {

namespace compat {
struct Hooks;
}

// Holds a redisAsyncContext non-owningly: hiredis frees it itself after a
// failed connect or a disconnect, and the callbacks null our pointer then.
// Every transition is logged once (a lost connection, the first failure, a
// changed failure reason, the recovery), never once per attempt. The backoff
// restarts only once a connection has stayed up a while (stableAfterMs()):
// one that is lost right after each connect keeps backing off.
class Connection {
 public:
  enum class Mode {
    Commands,   // request/reply; PING is an ordinary command
    Subscriber  // subscribed mode; PING is written raw (see sendPing)
  };
  struct Handlers {
    // Called each time the connection is up and authenticated: subscribe here.
    std::function<void()> on_ready;
    // Called when a ready connection goes away (not while retrying);
    // closedByServer() tells whether Redis closed it.
    std::function<void(const std::string& why)> on_lost;
    // Called when a reply over the bound is cut off while ready (before the
    // connection drops): the bytes the reader held so far, at most the first
    // 4 KiB of them (raw RESP), and how many it held. Optional.
    std::function<void(std::string_view head, uint64_t held)> on_oversize;
  };

  // addresses: where to connect, asked before every attempt and told of
  // every failure, watched for a change (a failover: the connection moves
  // at once); null: endpoint.addresses, else always endpoint's host:port
  // (StaticAddress).
  Connection(uv_loop_t* loop, Endpoint endpoint, std::string name, Mode mode, Handlers handlers,
             std::shared_ptr<AddressProvider> addresses = nullptr);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Starts connecting; retries until stop(). THREAD: loop.
  void start();
  // Closes the connection and stops retrying. Pending command callbacks run
  // with a NULL reply before this returns (or, inside a hiredis callback,
  // right after it returns). Must not be called while this object is being
  // used by a hiredis callback further up the stack if it is then destroyed.
  void stop();
  // Drops the current connection (if any) and reconnects after a backoff.
  void reconnect(const std::string& why);
  // Connects from now on as `endpoint` says (a reload changed the Redis
  // settings: address, credentials, TLS, timeouts, backoff, Sentinel): the
  // current connection, or the attempt under way, is dropped and a new one
  // made at once, without backoff -- for the connection's handlers, as any
  // loss. Its address provider is `endpoint.addresses`, else its host:port.
  // Not inside one of this connection's hiredis callbacks. THREAD: loop.
  void reconfigure(Endpoint endpoint);

  // Stops reading the socket (Redis then buffers for us) until
  // resumeReading(); PING checks wait meanwhile. Only while ready: a lost
  // connection forgets it (the next one must read its handshake). THREAD: loop.
  void pauseReading();
  void resumeReading();
  bool readingPaused() const noexcept { return read_paused_; }
  // TLS: bytes go through a bridge in process (connection_tls.cpp).
  bool bridged() const noexcept { return bridge_ != nullptr; }
  bool ready() const noexcept { return ready_; }
  const std::string& name() const noexcept { return name_; }
  // How to connect (credentials, timeouts, bounds). Its host:port is only
  // the static answer: address() is where the connection goes.
  const Endpoint& endpoint() const noexcept { return endpoint_; }
  // The address of the last connect attempt (or the current connection),
  // and as logs write it.
  const Address& address() const noexcept { return address_; }
  const std::string& where() const noexcept { return where_; }

  // Sends a command when ready. fn(ac, reply, privdata) runs exactly once:
  // with the reply, or with a NULL reply when the connection drops or
  // stop() runs first. Returns false (and fn never runs) when not ready.
  bool command(int argc, const char** argv, const size_t* lens, redisCallbackFn* fn, void* privdata);
  // Subscriber mode: (P|S)SUBSCRIBEs one channel, pattern or shard channel.
  // fn gets its confirmation and messages as hiredis passes them -- and a
  // refusal (say NOPERM from an ACL, or a cluster's MOVED for a shard
  // channel), which hiredis 0.14 would answer by dropping the whole
  // connection, as the array [kRefused, kPatternRefused or
  // kSsubscribeRefused, name, error text]. A shard channel's fn and
  // privdata stay with hiredis for the context's life (see
  // compat::shardSubscribe). Returns false when not ready. THREAD: loop.
  bool subscribe(SubscribeKind kind, const std::string& name, redisCallbackFn* fn, void* privdata);
  static constexpr const char* kRefused = kSubscribeRefused;
  static constexpr const char* kPatternRefused = kPsubscribeRefused;
  // Subscriber mode: SUNSUBSCRIBEs a shard channel, with no callback queued
  // (hiredis 0.14 would keep one forever): the confirmation goes to the
  // channel's own callback. False when not ready. THREAD: loop.
  bool unsubscribeShard(const std::string& name);

  // An error reply to one of this connection's commands: true when it was
  // a cluster's redirect, which the address provider follows (MOVED: the
  // connection moves to the slot's new master at once). THREAD: loop.
  bool redirected(std::string_view error) { return addresses_->redirected(error, address_); }

  // Whether Redis closed the last lost connection itself (end of stream),
  // as opposed to a network error or our own drop. Valid in on_lost.
  bool closedByServer() const noexcept { return closed_by_server_; }
  // Whether the last connection was lost the same way as the one before,
  // both before they were stable: a flapping connection, whose repeats are
  // logged at debug level only.
  bool repeatingLoss() const noexcept { return short_lived_ > 1; }
  // Failed attempts before the current connection came up (0: at once).
  uint32_t attemptsBeforeReady() const noexcept { return attempts_before_ready_; }
  // The bound on one reply now (see replyBound()).
  uint64_t replyBound() const noexcept { return guard_.bound(); }

  // Ready connections lost so far.
  uint64_t outages() const noexcept { return outages_; }
  // The kind (failure_kind.h) of the last failure; "" before any.
  const char* lastFailureKind() const noexcept {
    return last_kind_ < 0 ? "" : kFailureKinds[static_cast<size_t>(last_kind_)];
  }

  // Exports the connection's series, labelled {connection="<name>"}
  // (docs/metrics.md, "Redis connections"): evhost_redis_up (computed),
  // evhost_redis_outages_total, evhost_redis_connect_failures_total. Once,
  // before start(). THREAD: loop.
  void exportStats(ops::Registry& stats);

 private:
  friend struct compat::Hooks;  // hiredis_compat.cpp: the event hooks
  enum class State { Idle, Resolving, Connecting, Handshaking, Ready, Waiting, Stopped };

  void resolve();
  // The provider's answer changed (a failover): leave the old address at
  // once and connect to the new one without waiting for the backoff.
  void onAddressChanged();
  void connectTo(const std::string& ip);
  void attachContext(redisAsyncContext* ac);
  void startTls(const std::string& ip);
  void onTlsUp(const std::string& why);
  void setContext(redisAsyncContext* ac) noexcept;
  void handshake();
  void becomeReady();
  // `waiting`: no address to try yet (Sentinel or the cluster's map not
  // answered): said at info level, since their own connections report why.
  void fail(const std::string& why, bool waiting = false);
  void scheduleRetry();
  void dropContext(const std::string& why);
  // keepalive.cpp: every tick while ready; the PING.
  void onTick();
  void sendPing();
  // Past the reply bound (buffered bytes plus objects of the reply being
  // read): drop as a protocol error. Runs after every read. THREAD: loop.
  void checkReplyBound();
  // The write hook, inside a poll callback: true when the write can wait for
  // the check phase (write_due_), false when it must be watched for now
  // (not connected yet, or this is the check phase's own flush).
  bool deferWrite() noexcept;
  void onCheck();
  // TLS (connection_tls.cpp): true when what hiredis formatted goes to the
  // bridge rather than to hiredis's socket (once connected): at once, or in
  // the check phase when asked inside an I/O callback. flushToBridge()
  // hands it over; onTlsPlaintext() feeds what Redis sent to the reader.
  bool writeInProcess();
  void flushToBridge();
  void onTlsPlaintext(const char* data, size_t n);
  uint64_t stableAfterMs() const noexcept;

  static void onConnect(const redisAsyncContext* ac, int status);
  static void onDisconnect(const redisAsyncContext* ac, int status);
  static void onHandshakeReply(redisAsyncContext* ac, void* reply, void* privdata);
  static void onResolved(uv_getaddrinfo_t* req, int status, struct addrinfo* res);

  uv_loop_t* loop_;
  Endpoint endpoint_;
  std::string name_;
  Mode mode_;
  Handlers handlers_;
  Backoff backoff_;
  std::shared_ptr<AddressProvider> addresses_;
  Handshake handshake_;
  Address address_;           // asked of addresses_ at each attempt
  std::string where_;         // address_.describe(), for logs and errors
  std::string command_text_;  // command()'s formatted request, kept for its capacity (resp_command.h)

  redisAsyncContext* ac_ = nullptr;
  std::unique_ptr<TlsBridge> bridge_;      // TLS: the current attempt's (endpoint_.tls set)
  uv_getaddrinfo_t* resolving_ = nullptr;  // freed by its callback
  UvHandle<uv_timer_t> retry_timer_;
  UvHandle<uv_timer_t> connect_timer_;
  UvHandle<uv_timer_t> tick_timer_;
  UvHandle<uv_check_t> iteration_check_;  // counts loop iterations (I/O rounds); writes what waits

  State state_ = State::Idle;
  bool ready_ = false;
  bool read_paused_ = false;  // pauseReading(): the read hooks hold off
  bool stopped_ = false;
  size_t handshake_step_ = 0;     // the step whose reply the handshake awaits
  std::string drop_reason_;       // why we are dropping the context ourselves
  std::string last_failure_;      // logged once until it changes
  uint64_t down_since_ms_ = 0;    // when the outage began (0: none)
  uint32_t failed_attempts_ = 0;  // in the current outage
  uint32_t attempts_before_ready_ = 0;
  uint64_t ready_since_ms_ = 0;
  uint64_t watch_id_ = 0;          // addresses_->watch()
  bool move_now_ = false;          // the address changed: the next attempt goes without backoff
  uint64_t settings_ = 0;          // reconfigure()s so far
  uint64_t attempt_settings_ = 0;  // settings_ when the current attempt began
  bool stable_ = false;            // up for stableAfterMs(): the backoff restarts
  std::string last_loss_;          // why the last connection was lost
  uint64_t short_lived_ = 0;       // connections lost the same way before they were stable
  bool closed_by_server_ = false;

  ReplyGuard guard_;  // the reader hooks' state for the current context

  uint64_t seen_at_ping_ = 0;
  uint64_t ping_sent_ms_ = 0;
  uint64_t tick_ms_ = 0;             // period of the keep-alive check
  uint64_t last_tick_ms_ = 0;        // when it last ran, to tell a busy loop from a silent server
  uint64_t iterations_ = 0;          // loop iterations so far
  uint64_t iterations_at_ping_ = 0;  // ... when the PING went out
  bool ping_outstanding_ = false;
  bool write_due_ = false;  // deferWrite(): hiredis holds commands for the check phase
  bool flushing_ = false;   // onCheck() is writing them
  uint64_t outages_ = 0;
  std::unique_ptr<ops::Scope> stats_;                              // null until exportStats
  ops::Counter outages_total_;                                     // sinks until then
  std::array<ops::Counter, kFailureKinds.size()> failures_total_;  // by kind
  int last_kind_ = -1;  // kFailureKinds index of the last failure; -1: none yet
};

}  // namespace evh::redis
