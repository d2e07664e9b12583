// The Redis Streams source: one consumer-group reader per stream channel, on
// a connection of its own (XREADGROUP BLOCK ties it up), acknowledging each
// entry only when evhost is finished with it.
#pragma once

#include "redis/command_client.h"
#include "redis/connection.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

struct redisReply;

namespace evh::redis {

struct StreamChannel {
  std::string logical;    // channel name from the config
  std::string key;        // stream key: prefix + logical
  size_t index = 0;       // position in the config, for the router
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
  uint32_t max_deliveries = 10;
  uint64_t trim_maxlen = 0;           // 0: no length bound
  uint64_t trim_max_age_ms = 0;       // 0: no age bound
  uint32_t trim_interval_ms = 10000;
};

class StreamSource {
 public:
  // One entry: its id and the value of its "event" field -- or nullopt when
  // the entry has none, or its payload was trimmed away. Call ack(id) once
  // evhost is finished with it (handled or dead-lettered).
  using Sink = std::function<void(const StreamChannel& ch, const std::string& id, const std::string_view* event_field,
                                  bool redelivered)>;
  // How many more entries may be taken now (max_in_flight minus unfinished).
  using Capacity = std::function<size_t()>;
  // An entry that must not be handled: delivered more than max_deliveries
  // times ("poison"; event_field is its payload) or trimmed away before it
  // was handled ("trimmed"; no payload). Call ack(id) once it is stored.
  using Reject = std::function<void(const StreamChannel& ch, const std::string& id, const char* reason,
                                    const std::string& why, const std::string* event_field)>;

  StreamSource(uv_loop_t* loop, Endpoint endpoint, StreamChannel channel, CommandClient& acks, Sink sink,
               Capacity capacity, Reject reject);
  ~StreamSource();
  StreamSource(const StreamSource&) = delete;
  StreamSource& operator=(const StreamSource&) = delete;

  void start();
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
  void retire();

  const StreamChannel& channel() const noexcept { return ch_; }
  size_t unacked() const noexcept { return in_flight_.size(); }
  uint64_t delivered() const noexcept { return delivered_; }
  uint64_t acked() const noexcept { return acked_; }
  uint64_t claimed() const noexcept { return claimed_; }
  uint64_t poisoned() const noexcept { return poisoned_; }
  // From the last XPENDING summary (refreshed with each claim round).
  uint64_t pendingCount() const noexcept { return pending_count_; }
  uint64_t oldestPendingAgeMs() const noexcept { return oldest_pending_age_ms_; }

 private:
  enum class Phase { Idle, Group, Pending, New };

  void ensureGroup();
  void read();
  void onRead(const redisReply* reply);
  static void onGroupReply(redisAsyncContext* ac, void* reply, void* privdata);
  static void onReadReply(redisAsyncContext* ac, void* reply, void* privdata);
  // The acks batched so far, in front of the next XREADGROUP on the reading
  // connection (one round trip for both). Returns false if not sent.
  bool pipelineAcks();
  static void onPipelinedAckReply(redisAsyncContext* ac, void* reply, void* privdata);
  void ackConfirmed(const std::vector<std::string>& ids);
  void retryLater(uint64_t ms);
  // Hands an entry over -- after checking how often it was delivered, when
  // it may have been before (our own pending entries, claimed ones).
  void take(const std::string& id, const redisReply* fields, bool check_deliveries);
  void hand(const std::string& id, const std::string_view* event_field, bool redelivered);
  void handCopy(const std::string& id, const std::string* event_field, bool redelivered);
  void claim();
  void onClaimed(const redisReply* reply);
  void refreshPending();
  void trim();
  void trimBelow(const std::string& safe);
  void sendAcks(std::vector<std::string> ids);
  void retryAcks();

  uv_loop_t* loop_;
  StreamChannel ch_;
  CommandClient& acks_;
  Sink sink_;
  Capacity capacity_;
  Reject reject_;
  Connection conn_;
  UvHandle<uv_timer_t> retry_timer_;
  UvHandle<uv_timer_t> claim_timer_;
  UvHandle<uv_timer_t> trim_timer_;
  std::string claim_cursor_ = "0-0";
  bool claiming_ = false;
  bool trimming_ = false;
  std::vector<std::string> ack_retry_;  // acks that could not be sent yet
  std::vector<std::string> ack_batch_;  // acked this loop iteration, not sent yet
  UvHandle<uv_prepare_t> ack_flush_;    // sends ack_batch_ before the loop next waits for I/O
  Phase phase_ = Phase::Idle;
  bool reading_ = false;  // an XREADGROUP is outstanding
  bool paused_ = false;   // stopped for want of capacity
  bool stopped_ = false;
  std::string pending_from_ = "0";  // next id when re-reading our own pending entries
  std::unordered_set<std::string> in_flight_;  // handed over, not acked: never handed over twice
  uint64_t delivered_ = 0;
  uint64_t acked_ = 0;
  uint64_t claimed_ = 0;
  uint64_t poisoned_ = 0;
  uint64_t pending_count_ = 0;
  uint64_t oldest_pending_age_ms_ = 0;
  // Guards callbacks of the command connection that outlive us.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace evh::redis
