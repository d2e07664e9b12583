// The Pub/Sub source: one connection in subscribed mode, resubscribed from
// our own list after every reconnect, with outage windows recorded as gaps.
// A subscription Redis refuses (an ACL without the channel) is logged once
// and retried on its own with backoff; the others stay subscribed.
//
// A reload adds and removes subscriptions on the same connection (add(),
// remove()): the others are never interrupted. Each subscription's slot is
// hiredis's privdata for its (P)SUBSCRIBE, so slots live on the heap and a
// removed one is freed only once hiredis can no longer call back with it:
// when Redis has confirmed the (P)UNSUBSCRIBE (hiredis then forgets the
// callback) or the connection is gone (hiredis has run its callbacks with
// NULL). A shard channel's slot is hiredis's for the context's life
// (compat::shardSubscribe): a removed one is kept until the connection goes.
//
// A shard channel (SSUBSCRIBE) whose slot moves to another node is
// unsubscribed by Redis itself; it is subscribed again, and a cluster's
// MOVED answer moves the connection to the slot's new master (the address
// provider follows it).
//
// Stats (ops/stats.h; the loop thread writes them): per subscription
// (channel="<name in the config>", the pattern for a pattern subscription)
// evhost_pubsub_messages_total, evhost_pubsub_subscribed (1 while confirmed on the
// current connection) and evhost_pubsub_refused (1 while Redis refuses it);
// evhost_pubsub_gaps_total (outages whose messages are lost) and
// evhost_pubsub_cut_offs_total (Redis closed us for falling behind).
#pragma once

#include "ops/stats.h"
#include "redis/connection.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace evh::redis {

struct Subscription {
  std::string logical;  // channel name from the config, without prefix
  std::string redis;    // what we (P)SUBSCRIBE: prefix + logical
  bool pattern = false;
  uint32_t channel_id = 0;  // runtime::ChannelId: what the ingest pipeline routes it by
  // evhost's own Pub/Sub check channel (app::PubsubCheck), not an event
  // channel: not part of readiness (GET /health/pubsub reports it).
  bool check = false;
  // A shard channel (SSUBSCRIBE; never a pattern): published with SPUBLISH,
  // delivered only by the master of its slot.
  bool sharded = false;

  SubscribeKind kind() const noexcept {
    return sharded ? SubscribeKind::Shard : pattern ? SubscribeKind::Pattern : SubscribeKind::Channel;
  }
};

class Subscriber {
 public:
  // A message: the subscription it matched, the channel it was published
  // on, and its bytes (borrowed for the call).
  using Sink = std::function<void(const Subscription& sub, std::string_view channel, std::string_view payload)>;

  // `name` names the connection (logs, /status, the connection="" label of
  // its series). The subscriber's own series (gaps, cut-offs) have no
  // labels: a cluster's shard subscribers (redis/subscriber_set.h) add to
  // the same ones (each gap's log line names its channels).
  Subscriber(uv_loop_t* loop, Endpoint endpoint, std::vector<Subscription> subs, Sink sink, ops::Registry& stats,
             std::string name = "subscriber");
  ~Subscriber();
  Subscriber(const Subscriber&) = delete;
  Subscriber& operator=(const Subscriber&) = delete;

  // Subscribes to one more channel or pattern on the current connection (at
  // once when it is up; else with the others once it is), with its own
  // series; it joins notLive() until confirmed. Adding one still being
  // removed keeps it instead (subscribed again once its UNSUBSCRIBE is
  // confirmed). THREAD: loop.
  void add(Subscription sub);
  // (P)UNSUBSCRIBEs the subscription to `redis` (a pattern when `pattern`):
  // from now on it is out of notLive() and subscriptions(); messages Redis
  // sends for it before confirming still reach the sink (which finds its
  // channel gone). False when there is none. THREAD: loop.
  bool remove(bool pattern, const std::string& redis);
  // Removed subscriptions whose slot waits for Redis's confirmation (or the
  // connection's end). For tests and the log. THREAD: loop.
  size_t retiring() const noexcept;

  void start();
  void stop();
  // A reload changed the Redis settings: reconnect as `endpoint` says, at
  // once; every subscription is made again on the new connection (the gap
  // is logged as for any loss). THREAD: loop.
  void reconfigure(Endpoint endpoint) { conn_.reconfigure(std::move(endpoint)); }
  // A message too large for the reader's bound (2 x max_message_bytes + 64
  // KiB) is cut off before it is read whole; the connection is dropped and
  // taken again. `fn` gets the first bytes the reader held (raw RESP) and
  // how many it held, so that the loss gets a dead-letter entry. THREAD: loop.
  void onOversize(std::function<void(std::string_view head, uint64_t held)> fn) { on_oversize_ = std::move(fn); }

  // Backpressure: stop / start reading messages (Redis buffers them, up to
  // its client-output-buffer-limit for pubsub). THREAD: loop.
  void pauseReading() { conn_.pauseReading(); }
  void resumeReading() { conn_.resumeReading(); }
  bool readingPaused() const noexcept { return conn_.readingPaused(); }
  const Connection& connection() const noexcept { return conn_; }
  // The subscriptions in force (not those being removed). THREAD: loop.
  std::vector<Subscription> subscriptions() const;
  // Why the subscriber is not live, one line per reason (its connection
  // down; a subscription not confirmed yet, or refused by Redis); empty when
  // every subscription is confirmed. For readiness: `check` subscriptions
  // only with `with_check`. THREAD: loop.
  std::vector<std::string> notLive(bool with_check = false) const;

 private:
  enum class State { Unanswered, Confirmed, Refused };
  struct Slot {
    Slot(Subscriber* o, Subscription s, ops::Registry& registry);
    Subscriber* owner;
    Subscription sub;
    // Its own series, gone with it or when it is retired (before the
    // handles below, which then point nowhere harmful).
    std::optional<ops::Scope> scope;
    State state = State::Unanswered;
    std::string refusal;  // the last refusal logged; kept across reconnects
    ops::Counter messages;
    ops::Gauge subscribed;
    ops::Gauge refused;
    // remove()d: its (P|S)UNSUBSCRIBE is out (or could not be sent); freed
    // once confirmed (a shard channel's: once the connection is gone) or
    // once the connection is gone.
    bool removing = false;
    bool unsubscribe_sent = false;  // on the current connection
    // A removed shard channel, confirmed: kept for hiredis (retired_), its
    // series gone; onReply ignores it.
    bool retired = false;
  };

  bool subscribeSlot(Slot& slot);
  void subscribeAll();
  void onLost();
  void onConfirmed(Slot& slot);
  void onRefused(Slot& slot, std::string_view why);
  void onUnsubscribed(Slot& slot);
  // A subscription was answered: the first time all are on this connection,
  // onAllAnswered(); one added later is logged on its own.
  void onAnswered(const Slot& slot);
  bool allAnswered() const;
  void onAllAnswered();
  void freeSlot(const Slot& slot);
  static void setState(Slot& slot, State state);
  void logGap();
  void scheduleResubscribe();
  static void onReply(redisAsyncContext* ac, void* reply, void* privdata);

  // Before whatever writes its series, so that it outlives them.
  ops::Scope stats_;
  ops::Counter gaps_;
  ops::Histogram gap_seconds_;
  ops::Counter cut_offs_;
  // One per subscription, on the heap: hiredis holds each as privdata. In
  // the order added; removed ones stay until hiredis is done with them.
  std::vector<std::unique_ptr<Slot>> slots_;
  // Removed shard channels, confirmed: hiredis may still call them (with
  // NULL) until the context goes (onLost frees them).
  std::vector<std::unique_ptr<Slot>> retired_;
  Sink sink_;
  Connection conn_;
  bool announced_ = false;  // every subscription answered on this connection (onAllAnswered ran)
  size_t refused_now_ = 0;  // refused on this connection, not confirmed since
  Backoff resubscribe_backoff_;
  UvHandle<uv_timer_t> resubscribe_timer_;
  uint64_t outage_start_ms_ = 0;  // wall clock; 0 = none
  bool cut_off_ = false;          // Redis closed the connection (see logGap)
  bool paused_when_lost_ = false;
  std::function<void(std::string_view head, uint64_t held)> on_oversize_;
};

}  // namespace evh::redis
