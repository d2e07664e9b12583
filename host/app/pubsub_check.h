// GET /health/pubsub: the plan's Pub/Sub health check, made a real round
// trip. A PING on the command connection; a PUBLISH of a fresh token on
// this instance's own check channel (`<prefix>evh:health:<host>-<pid>`);
// and, when evhost subscribes to Pub/Sub at all, that token coming back
// through the subscriber -- so "healthy" means what the plan's check only
// assumed: a message published now reaches evhost's subscriber.
//
// Cached so that probes cannot hammer Redis: one check runs at a time, every
// request arriving meanwhile waits for it, and its answer serves every
// request for `cache_ms` after it ended. A check takes at most `timeout_ms`
// whatever Redis does.
#pragma once

#include "loop/uv_handle.h"
#include "ops/endpoints.h"
#include "redis/command_client.h"

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace evh::app {

class PubsubCheck {
 public:
  // The check's channel, before the instance's name (host-pid); its
  // subscription's logical name (a bounded label).
  static constexpr const char* kChannel = "evh:health:";
  // Its subscription's channel id: routed to the check, never to the pipeline.
  static constexpr uint32_t kChannelId = UINT32_MAX;

  struct Options {
    uint32_t cache_ms = 5000;
    uint32_t timeout_ms = 2000;
  };
  using Done = std::function<void(const ops::PubsubHealth& health)>;
  // Why the subscriber cannot bring the token back right now ("its
  // connection is down", "reading is paused"), or "": said alongside a
  // token that did not come back. THREAD: loop.
  using SubscriberState = std::function<std::string()>;

  // `channel`: the Redis channel to publish on (subscribed by the
  // subscriber when `round_trip`). THREAD: loop, like every member.
  PubsubCheck(uv_loop_t* loop, redis::CommandClient& commands, std::string channel, bool round_trip,
              SubscriberState subscriber_state, Options options);
  ~PubsubCheck();
  PubsubCheck(const PubsubCheck&) = delete;
  PubsubCheck& operator=(const PubsubCheck&) = delete;

  const std::string& channel() const noexcept { return channel_; }
  // The subscriber now subscribes to channel() (a reload added the first
  // Pub/Sub channel): checks from now on wait for the token to come back.
  void roundTrip(bool on) noexcept { round_trip_ = on; }

  // Calls `done` with the cached answer when it is younger than cache_ms,
  // else once a new check has ended (within timeout_ms).
  void check(Done done);
  // A message the subscriber received on channel().
  void onMessage(std::string_view payload);

 private:
  struct Step {
    bool done = false;
    bool ok = false;
    double ms = 0;
    std::string error;
  };
  void start();
  void onPing(evh_status status, const redisReply* reply);
  void onPublish(evh_status status, const redisReply* reply);
  void settleIfDone();
  void finish();
  std::string json() const;
  double sinceStartMs() const;

  uv_loop_t* loop_;
  redis::CommandClient& commands_;
  std::string channel_;
  bool round_trip_;
  SubscriberState subscriber_state_;
  Options options_;
  UvHandle<uv_timer_t> timer_;
  std::vector<Done> waiting_;
  bool running_ = false;
  uint64_t seq_ = 0;
  std::string token_;  // what the running check published
  uint64_t started_ns_ = 0;
  uint64_t ended_at_ = 0;  // uv_now when the last check ended
  bool have_answer_ = false;
  // The running (or last) check's steps.
  Step ping_;
  Step publish_;
  Step back_;
  int64_t receivers_ = -1;
  uint64_t checked_ms_ = 0;  // wall clock of the last check's start
  ops::PubsubHealth answer_;
  // Replies may come after this object is gone (its owner goes before the
  // command connection): their callbacks check it.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace evh::app
