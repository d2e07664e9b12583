// The Redis Streams source: one consumer-group reader per stream channel, on
// a connection of its own (XREADGROUP BLOCK ties it up), acknowledging each
// entry only when evhost is finished with it.
//
// Stats (ops/stats.h; the loop thread writes them), labelled
// channel="<name in the config>", group="<consumer group>":
// evhost_stream_delivered_total (handed over, new or taken back),
// evhost_stream_redelivered_total (of those, delivered before: recovery and
// claims), evhost_stream_acked_total (acks Redis confirmed),
// evhost_stream_ack_retries_total, evhost_stream_claimed_total,
// evhost_stream_rejected_total{reason=poison|trimmed|too_large} (dead-lettered
// instead of handed over) and the gauge evhost_stream_in_flight (handed over,
// not yet acked). Pending counts and lag are Redis's to tell (XINFO, read at
// scrape time by the exporter), not polled here.
#pragma once

#include "ops/stats.h"
#include "redis/command_client.h"
#include "redis/connection.h"

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

struct redisReply;

namespace evh::redis {

struct StreamChannel {
  std::string logical;      // channel name from the config
  std::string key;          // stream key: prefix + logical
  uint32_t channel_id = 0;  // runtime::ChannelId: what the ingest pipeline routes it by
  std::string group;
  std::string consumer;
  uint32_t count = 100;
  // Reads only when at least this many entries fit under max_in_flight:
  // under backpressure a few large reads, not one XREADGROUP per finished
  // entry. At most count and at most half of max_in_flight (the server's
  // choice), so reading always resumes.
  uint32_t min_room = 1;
  uint32_t block_ms = 2000;
  bool from_beginning = true;
  uint32_t claim_idle_ms = 30000;
  uint32_t claim_interval_ms = 5000;  // 0: never claim
  uint32_t max_deliveries = 10;       // delivered this often without an ack: poison
  uint64_t trim_maxlen = 0;           // 0: no length bound
  uint64_t trim_max_age_ms = 0;       // 0: no age bound
  uint32_t trim_interval_ms = 10000;
};

class StreamSource {
 public:
  // One entry: its id and the value of its "event" field -- or nullopt when
  // the entry has none. Call ack(id) once evhost is finished with it (handled
  // or dead-lettered). `redelivered`: it was delivered before (to us before a
  // restart, or to a consumer that died).
  using Sink = std::function<void(const StreamChannel& ch, const std::string& id, const std::string_view* event_field,
                                  bool redelivered)>;
  // How many more entries may be taken now (max_in_flight minus unfinished).
  using Capacity = std::function<size_t()>;
  // An entry that must not be handled: delivered max_deliveries times
  // without being acknowledged ("poison"; event_field is its payload when the
  // entry still exists) or trimmed away before it was handled ("trimmed"; no
  // payload). Call ack(id) once it is stored.
  using Reject = std::function<void(const StreamChannel& ch, const std::string& id, const char* reason,
                                    const std::string& why, const std::string* event_field)>;

  StreamSource(uv_loop_t* loop, Endpoint endpoint, StreamChannel channel, CommandClient& acks, Sink sink,
               Capacity capacity, Reject reject, ops::Registry& stats);
  ~StreamSource();
  StreamSource(const StreamSource&) = delete;
  StreamSource& operator=(const StreamSource&) = delete;

  void start();
  // A reload changed the Redis settings: the reading connection reconnects
  // as `endpoint` says, at once, and reads the consumer's pending entries
  // again, as after any loss. THREAD: loop.
  void reconfigure(Endpoint endpoint);
  // Stops reading; entries already handed over may still be acked.
  void stop();
  // XACKs an entry (through the command connection, which no XREADGROUP
  // blocks) and forgets it. Acks are batched: every ack of one loop
  // iteration goes out as one XACK before the loop next waits for I/O
  // (uv_prepare), or at once when kAckBatch are waiting. An ack that fails leaves the entry pending: it is
  // delivered again (at least once). THREAD: loop.
  void ack(const std::string& id);
  // Sends the acks batched so far now. THREAD: loop.
  void flushAcks();
  // Reads again if reading paused for want of capacity. THREAD: loop.
  void resume();
  // At a graceful stop, after the last ack: deletes this consumer from the
  // group if -- and only if -- it has nothing pending (deleting a consumer
  // drops its pending entries), so that names like hostname-pid do not pile
  // up. Sends batched acks first. THREAD: loop.
  // `done`, if given, runs once the check is answered (or could not be
  // asked). THREAD: loop.
  void retire(std::function<void()> done = {});
  // A reload removed this stream's channel (or changed how it is read):
  // reads nothing new -- no XREADGROUP, claim or recovery step from now on
  // -- lets the read already out come back (its entries are handed over like
  // any), waits until every entry handed over is acked and Redis confirmed
  // it, then stops and calls `done` from a timer (never nested in a
  // callback). Pending entries of ours it never took (claimed, or left from
  // before a restart) stay pending: retire() then keeps the consumer, and
  // another reader claims them. THREAD: loop.
  void drain(std::function<void()> done);
  bool draining() const noexcept { return draining_; }
  // Expires when this source is destroyed: what a callback holding a raw
  // pointer to it checks first.
  std::weak_ptr<bool> liveness() const noexcept { return alive_; }
  bool started() const noexcept { return started_; }

  // Asks Redis for the group's backlog (XINFO GROUPS, then XPENDING's
  // summary when entries are pending) and updates the gauges
  // evhost_stream_pending, evhost_stream_lag and
  // evhost_stream_oldest_pending_age_seconds; `done` runs when the answers
  // are in (or at once when they cannot be asked for) -- never if this
  // source is destroyed first. For the exporter, at scrape time: two cheap
  // commands per stream, none when nobody scrapes. THREAD: loop.
  void refreshBacklog(std::function<void()> done);

  const StreamChannel& channel() const noexcept { return ch_; }
  const Connection& connection() const noexcept { return conn_; }
  // The backlog as last refreshed (NaN: unknown), and what is handed over
  // and not acked. For /status. THREAD: loop.
  double pending() const noexcept { return backlog_pending_; }
  double lag() const noexcept { return backlog_lag_; }
  double oldestPendingAgeSeconds() const noexcept { return backlog_oldest_age_s_; }
  size_t inFlight() const noexcept { return in_flight_.size(); }
  // Why the stream is not being read (its connection down, its group being
  // created); empty while it is (taking back pending entries counts).
  // For readiness. THREAD: loop.
  std::string notLive() const;

 private:
  // Group: creating the consumer group. Recover: the first recovery pass
  // after (re)connecting runs; new entries wait for it. New: reading ">".
  enum class Phase { Idle, Group, Recover, New };

  // ---- stream_source.cpp: the group, new entries (acknowledgements: stream_acks.cpp)
  void ensureGroup();
  void read();
  void readNew();
  void onRead(const redisReply* reply);
  static void onGroupReply(redisAsyncContext* ac, void* reply, void* privdata);
  static void onReadReply(redisAsyncContext* ac, void* reply, void* privdata);
  static void onIgnoredReply(redisAsyncContext* ac, void* reply, void* privdata);
  // The acks batched so far, in front of the next XREADGROUP on the reading
  // connection (one round trip for both). Returns false if not sent.
  bool pipelineAcks();
  static void onPipelinedAckReply(redisAsyncContext* ac, void* reply, void* privdata);
  void ackConfirmed(const std::vector<std::string>& ids);
  void retryLater(uint64_t ms);
  // An error reply that is a cluster's redirect (MOVED, ASK): followed
  // (redis::Connection::redirected), logged once per text, read again in
  // kRedirectRetryMs. False for any other error.
  bool followRedirect(const redisReply* reply);
  static constexpr uint64_t kRedirectRetryMs = 100;
  // Hands an entry over (its fields read in place from the reply).
  void take(const std::string& id, const redisReply* fields, bool redelivered);
  // Dead-letters an entry instead of handing it over (reject_), counted.
  void rejectEntry(const std::string& id, const char* reason, const std::string& why, const std::string* event_field);
  // Acks of `n` entries failed or could not be sent: they wait for the next try.
  void countAckRetries(size_t n) { ack_retries_.inc(static_cast<int64_t>(n)); }
  void sendAcks(std::vector<std::string> ids);
  void retryAcks();

  // ---- stream_recovery.cpp: entries delivered before (ours from before a
  // restart or reconnect, claimed ones), poison, claiming
  void startRecovery();
  void recoverStep();
  void recoverSoon(uint64_t ms);
  void sendRecovery(const std::vector<std::string>& argv, void (StreamSource::*then)(const redisReply*));
  static void onRecoveryReply(redisAsyncContext* ac, void* reply, void* privdata);
  void onOversize(std::string_view head, uint64_t bytes);
  void fetchPlan();
  void onPlan(const redisReply* reply);
  void readBatch(size_t n);
  void onBatch(const redisReply* reply);
  void finishRecovery();
  bool recoveryFailed(const redisReply* reply, const char* what);
  void poison(const std::string& id, long long deliveries);
  void claim();
  void onClaimed(const redisReply* reply);

  // ---- stream_info.cpp: the group's backlog, read at scrape time
  void backlogFromGroups(const redisReply* groups, std::function<void()> done);

  // ---- stream_trim.cpp
  void trim();
  void trimTo(const std::string& floor, long long length);
  void trimDone();

  uv_loop_t* loop_;
  StreamChannel ch_;
  // Before whatever writes its series, so that it outlives them; cleared
  // first by the destructor (in_flight's callback reads in_flight_).
  ops::Scope stats_;
  ops::Counter delivered_;
  ops::Counter redelivered_;
  ops::Counter acked_;
  ops::Counter ack_retries_;
  ops::Counter claimed_;
  ops::Counter poisoned_;
  ops::Counter trimmed_;
  ops::Counter too_large_;
  CommandClient& acks_;
  Sink sink_;
  Capacity capacity_;
  Reject reject_;
  Connection conn_;
  UvHandle<uv_timer_t> retry_timer_;
  UvHandle<uv_timer_t> claim_timer_;
  UvHandle<uv_timer_t> trim_timer_;
  UvHandle<uv_timer_t> recover_timer_;
  std::string claim_cursor_ = "0-0";
  bool claiming_ = false;
  bool claim_more_ = false;  // the last XAUTOCLAIM stopped at its COUNT: go on after recovering
  bool trimming_ = false;
  std::vector<std::string> ack_retry_;  // acks that could not be sent yet
  std::vector<std::string> ack_batch_;  // acked this loop iteration, not sent yet
  UvHandle<uv_prepare_t> ack_flush_;    // sends ack_batch_ before the loop next waits for I/O
  Phase phase_ = Phase::Idle;
  std::string group_error_;    // why the last XGROUP CREATE failed; empty once it succeeds
  std::string last_redirect_;  // the last MOVED / ASK followed, logged once
  bool reading_ = false;       // an XREADGROUP is outstanding on the reading connection
  bool paused_ = false;        // stopped for want of capacity
  bool stopped_ = false;
  bool started_ = false;
  bool draining_ = false;  // drain(): nothing new is read
  std::function<void()> drained_;
  UvHandle<uv_timer_t> drain_timer_;  // looks whether the drain is done
  bool drainDone() const;
  std::unordered_set<std::string> in_flight_;  // handed over, not acked: never handed over twice
  // The group's backlog as Redis last told it (refreshBacklog); NaN until
  // known, and the lag NaN whenever Redis cannot tell it (Redis < 7, or
  // after entries were deleted).
  double backlog_pending_;
  double backlog_lag_;
  double backlog_oldest_age_s_;

  // Recovery: our pending entries are taken back in small batches, each one
  // only once the one before has finished, so that a crash charges a
  // delivery to the few entries that were in a plugin -- never to a whole
  // read. An entry delivered twice already goes alone.
  struct Planned {
    std::string id;
    long long deliveries = 0;
  };
  bool recovering_ = false;                // a pass runs (new entries are not read meanwhile)
  bool recover_again_ = false;             // entries were claimed (or we reconnected) during the pass
  bool recover_busy_ = false;              // an XPENDING or XREADGROUP of the pass is outstanding
  bool plan_complete_ = false;             // the last XPENDING reached the end of our pending list
  std::string recover_after_;              // position in our pending list ("" = its start)
  std::deque<Planned> plan_;               // pending entries listed, not yet taken back
  std::unordered_set<std::string> batch_;  // the batch being handled
  size_t batch_size_ = 1;                  // grows x2 per finished batch, up to count
  size_t recover_reading_ = 0;             // entries the outstanding XREADGROUP of the pass asks for
  std::string recover_reading_id_;         // the first of them
  uint64_t pass_taken_ = 0;                // this pass: entries handed over again
  uint64_t pass_poison_ = 0;               // this pass: entries dead-lettered as poison
  std::unordered_map<std::string, int> poison_fetch_failures_;  // XRANGE of a poison entry that failed

  // Guards callbacks of the command connection that outlive us.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace evh::redis
