// The Pub/Sub source: one connection in subscribed mode, resubscribed from
// our own list after every reconnect, with outage windows recorded as gaps.
// A subscription Redis refuses (an ACL without the channel) is logged once
// and retried on its own with backoff; the others stay subscribed.
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
#include <string>
#include <string_view>
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
};

class Subscriber {
 public:
  // A message: the subscription it matched, the channel it was published
  // on, and its bytes (borrowed for the call).
  using Sink = std::function<void(const Subscription& sub, std::string_view channel, std::string_view payload)>;

  Subscriber(uv_loop_t* loop, Endpoint endpoint, std::vector<Subscription> subs, Sink sink, ops::Registry& stats);
  ~Subscriber();

  void start();
  void stop();
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
  const std::vector<Subscription>& subscriptions() const noexcept { return subs_; }
  // Why the subscriber is not live, one line per reason (its connection
  // down; a subscription not confirmed yet, or refused by Redis); empty when
  // every subscription is confirmed. For readiness: `check` subscriptions
  // only with `with_check`. THREAD: loop.
  std::vector<std::string> notLive(bool with_check = false) const;

 private:
  enum class State { Unanswered, Confirmed, Refused };
  struct Slot {
    Subscriber* owner;
    const Subscription* sub;
    State state = State::Unanswered;
    std::string refusal;  // the last refusal logged; kept across reconnects
    ops::Counter messages;
    ops::Gauge subscribed;
    ops::Gauge refused;
  };

  void subscribeAll();
  void onLost();
  void onConfirmed(Slot& slot);
  void onRefused(Slot& slot, std::string_view why);
  void onAllAnswered();
  static void setState(Slot& slot, State state);
  void logGap();
  void scheduleResubscribe();
  static void onReply(redisAsyncContext* ac, void* reply, void* privdata);

  std::vector<Subscription> subs_;
  // Before whatever writes its series, so that it outlives them.
  ops::Scope stats_;
  ops::Counter gaps_;
  ops::Histogram gap_seconds_;
  ops::Counter cut_offs_;
  std::vector<Slot> slots_;  // one per subscription, stable for hiredis' privdata
  Sink sink_;
  Connection conn_;
  size_t answered_ = 0;     // confirmed or refused on this connection
  size_t refused_now_ = 0;  // refused on this connection, not confirmed since
  Backoff resubscribe_backoff_;
  UvHandle<uv_timer_t> resubscribe_timer_;
  uint64_t outage_start_ms_ = 0;  // wall clock; 0 = none
  bool cut_off_ = false;          // Redis closed the connection (see logGap)
  bool paused_when_lost_ = false;
  std::function<void(std::string_view head, uint64_t held)> on_oversize_;
};

}  // namespace evh::redis
