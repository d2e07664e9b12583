// The Redis Streams source: one consumer-group reader per stream channel, on
// a connection of its own (XREADGROUP BLOCK ties it up), acknowledging each
// entry only when evhost is finished with it.
#pragma once

#include "redis/command_client.h"
#include "redis/connection.h"

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_set>

struct redisReply;

namespace evh::redis {

struct StreamChannel {
  std::string logical;    // channel name from the config
  std::string key;        // stream key: prefix + logical
  size_t index = 0;       // position in the config, for the router
  std::string group;
  std::string consumer;
  uint32_t count = 100;
  uint32_t block_ms = 2000;
  bool from_beginning = true;
};

class StreamSource {
 public:
  // One entry: its id and the value of its "event" field -- or nullopt when
  // the entry has none, or its payload was trimmed away. Call ack(id) once
  // evhost is finished with it (handled or dead-lettered).
  using Sink = std::function<void(const StreamChannel& ch, const std::string& id, const redisReply* event_field)>;
  // How many more entries may be taken now (max_in_flight minus unfinished).
  using Capacity = std::function<size_t()>;

  StreamSource(uv_loop_t* loop, Endpoint endpoint, StreamChannel channel, CommandClient& acks, Sink sink,
               Capacity capacity);
  ~StreamSource();
  StreamSource(const StreamSource&) = delete;
  StreamSource& operator=(const StreamSource&) = delete;

  void start();
  // Stops reading; entries already handed over may still be acked.
  void stop();
  // XACKs an entry (through the command connection, which no XREADGROUP
  // blocks) and forgets it. An ack that fails leaves the entry pending: it
  // is delivered again (at least once). THREAD: loop.
  void ack(const std::string& id);
  // Reads again if reading paused for want of capacity. THREAD: loop.
  void resume();

  const StreamChannel& channel() const noexcept { return ch_; }
  size_t unacked() const noexcept { return in_flight_.size(); }
  uint64_t delivered() const noexcept { return delivered_; }
  uint64_t acked() const noexcept { return acked_; }

 private:
  enum class Phase { Idle, Group, Pending, New };

  void ensureGroup();
  void read();
  void onRead(const redisReply* reply);
  static void onGroupReply(redisAsyncContext* ac, void* reply, void* privdata);
  static void onReadReply(redisAsyncContext* ac, void* reply, void* privdata);
  void retryLater(uint64_t ms);

  uv_loop_t* loop_;
  StreamChannel ch_;
  CommandClient& acks_;
  Sink sink_;
  Capacity capacity_;
  Connection conn_;
  UvHandle<uv_timer_t> retry_timer_;
  Phase phase_ = Phase::Idle;
  bool reading_ = false;  // an XREADGROUP is outstanding
  bool paused_ = false;   // stopped for want of capacity
  bool stopped_ = false;
  std::string pending_from_ = "0";  // next id when re-reading our own pending entries
  std::unordered_set<std::string> in_flight_;  // handed over, not acked: never handed over twice
  uint64_t delivered_ = 0;
  uint64_t acked_ = 0;
};

}  // namespace evh::redis
