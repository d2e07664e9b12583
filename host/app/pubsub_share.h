// Sharing a Pub/Sub channel among evhost instances (config `share:`;
// docs/config.md, "Sharing a Pub/Sub channel"). Every instance subscribes
// to the channel and forwards each message it hears into the channel's
// shared stream with one script call that adds it only when no instance
// added the same bytes within the window:
//
//   SET <stream>:seen:<sha256 of the message> 1 NX EX window_s  -> XADD <stream> MAXLEN ~ maxlen * event <message>
//
// (Under redis.cluster the mark is {<stream>}:seen:<sha256>, in the stream's
// slot, as a script's keys must be.)
//
// The instances then read that stream as one consumer group (the channel is
// a stream channel from there on: acks, claims, poison, dead letters), so
// each event is handled once, by one of them -- and as long as one instance
// hears a message, it reaches the stream: a killed instance loses nothing
// the others heard. The script is atomic, so two instances never both add
// one message.
//
// A message whose forward fails (Redis refused or dropped the call, the
// command connection is down, or too many forwards wait for Redis already)
// is dead-lettered raw here, reason `share_failed`, logged (throttled) and
// counted (evhost_ingest_refused_total{reason="share_failed"} too): another instance may have forwarded it, so a replay
// of it may handle it twice (the route's idempotency prevents that).
#pragma once

#include "ingest/pipeline.h"
#include "ops/stats.h"
#include "redis/command_client.h"
#include "runtime/runtime.h"

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

namespace evh::app {

class PubsubShare {
 public:
  // At most `max_waiting` forwards wait for Redis's answer at a time
  // (limits.max_in_flight): beyond it a message is refused at once rather
  // than held in memory while Redis is slow.
  PubsubShare(redis::CommandClient& commands, ingest::Pipeline& pipeline, ops::Registry& stats, size_t max_waiting);
  ~PubsubShare();
  PubsubShare(const PubsubShare&) = delete;
  PubsubShare& operator=(const PubsubShare&) = delete;

  // A message heard on shared channel `ch` (published on `redis_channel`).
  // `payload` is borrowed for the call. THREAD: loop.
  void forward(const runtime::Channel& ch, std::string_view redis_channel, std::string_view payload);

  // Forwards sent whose answer has not come.
  size_t waiting() const noexcept { return waiting_; }

 private:
  struct Series {
    ops::Counter added;      // added to the stream by this instance
    ops::Counter duplicate;  // another instance (or an earlier identical message) was first
    ops::Counter failed;     // dead-lettered here (share_failed)
  };
  Series& seriesOf(const runtime::Channel& ch);
  void failed(runtime::ChannelId id, const std::string& redis_channel, const std::string& payload,
              const std::string& why);

  redis::CommandClient& commands_;
  ingest::Pipeline& pipeline_;
  ops::Scope stats_;
  size_t max_waiting_;
  size_t waiting_ = 0;
  std::map<std::string, std::unique_ptr<Series>> series_;  // by channel name (bounded by the config)
  std::shared_ptr<PubsubShare*> alive_;  // replies check it: the share may be gone before Redis answers
};

}  // namespace evh::app
