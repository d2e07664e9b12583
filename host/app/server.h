// The evhost server: owns the loop and every subsystem; start/stop order.
#pragma once

#include "app/watchdog.h"
#include "common/throttle.h"
#include "config/config.h"
#include "dispatch/dispatcher.h"
#include "dispatch/worker_pool.h"
#include "event/envelope.h"
#include "loop/poster.h"
#include "loop/uv_handle.h"
#include "ops/stats.h"
#include "plugin/registry.h"
#include "redis/command_client.h"
#include "redis/stream_source.h"
#include "redis/subscriber.h"
#include "route/router.h"

#include <uv.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace evh::app {

struct Options {
  std::vector<std::string> plugin_dirs;  // --plugin-dir, in order
};

// Per configured channel, for the metrics.
struct ChannelCounters {
  uint64_t received = 0;    // messages off Redis
  uint64_t invalid = 0;     // events (or whole messages) refused by the decoder
  uint64_t unrouted = 0;    // events no route matched
  uint64_t overloaded = 0;  // events refused because max_in_flight was reached
};

class Server final : public plugin::HostServices, public dispatch::IdempotencyStore {
 public:
  Server(config::Config config, Options options);
  ~Server() override;
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Loads plugins, connects to Redis and subscribes. Throws
  // plugin::LoadError (and std::runtime_error for environment failures)
  // with a message for the operator. THREAD: the thread that will run().
  void start();

  // Runs the loop until the server has stopped. Returns the exit code: 0
  // after a graceful stop, 1 when the shutdown deadline cut work short.
  int run();

  // Begins a graceful stop (what SIGINT/SIGTERM do, through the watchdog's
  // thread): stop taking events,
  // let in-flight handlers finish up to shutdown_timeout_ms, shut plugins
  // down, close connections. THREAD: loop.
  void stop();

  uv_loop_t* loop() noexcept { return &loop_; }
  const plugin::Registry& plugins() const noexcept { return registry_; }
  const ops::Registry& stats() const noexcept { return stats_; }
  const std::vector<ChannelCounters>& channelCounters() const noexcept { return channel_counters_; }

  // plugin::HostServices
  evh_status redisCommand(plugin::Instance& from, std::vector<std::string> argv, evh_reply_cb cb,
                          void* user_data) override;
  evh_status post(plugin::Instance& from, void (*fn)(void*), void* user_data) override;

  // dispatch::IdempotencyStore, over the command connection
  bool check(const std::string& key, std::function<void(std::optional<bool>)> cb) override;
  bool mark(const std::string& key, uint64_t ttl_ms, std::function<void(bool)> cb) override;

 private:
  void onMessage(const redis::Subscription& sub, std::string_view channel, std::string_view payload);
  void onStreamEntry(redis::StreamSource& source, const std::string& id, const std::string_view* event_field,
                     bool redelivered);
  void onStreamReject(redis::StreamSource& source, const std::string& id, const char* reason, const std::string& why,
                      const std::string* event_field);
  redis::StreamSource* sourceOf(const redis::StreamChannel& ch);
  // Every plugin routed on this channel has its breaker OPEN.
  bool allBreakersOpen(size_t channel_index) const;
  // Decodes one message and hands its events on; `done` runs once for the
  // message when every event (or its dead-letter entry) is finished.
  void handleMessage(size_t channel_index, std::string_view logical, std::string_view redis_channel,
                     std::string_view payload, std::string_view delivery_id, std::function<void()> done,
                     bool redelivered = false);
  // Waits (on the loop, polling) until the command connection has no
  // request outstanding, at most 2 s, then runs `then`.
  void flushCommands(std::function<void()> then);
  // Sends on the command connection; false (cb not called) when not connected.
  bool sendCommand(plugin::Instance& from, std::vector<std::string> argv, evh_reply_cb cb, void* user_data);
  void finishStop();
  void onDeadline();
  // After a dead letter of a Pub/Sub message: too much waiting to be stored?
  void refuseTooLarge(ChannelCounters& cc, std::string_view logical, std::string_view redis_channel,
                      std::string_view payload, std::string_view delivery_id, std::function<void()> done);
  void checkDeadLetterBacklog();

  config::Config config_;
  Options options_;
  std::string prefix_;  // the environment prefix, e.g. "dev:"
  uv_loop_t loop_;
  std::thread::id loop_thread_;
  std::unique_ptr<Poster> poster_;
  // Takes SIGINT/SIGTERM and watches the loop for stalls (its own thread).
  std::unique_ptr<Watchdog> watchdog_;
  UvHandle<uv_timer_t> deadline_;
  ops::Registry stats_;  // every subsystem's series; outlives them all
  plugin::Registry registry_{stats_};
  std::unique_ptr<dispatch::WorkerPool> pool_;
  std::unique_ptr<route::Router> router_;
  std::unique_ptr<dispatch::Dispatcher> dispatcher_;
  std::unique_ptr<redis::CommandClient> commands_;
  std::unique_ptr<redis::Subscriber> subscriber_;
  std::vector<std::unique_ptr<redis::StreamSource>> streams_;
  UvHandle<uv_timer_t> flush_timer_;
  // Pub/Sub reading paused while dead letters wait to be stored beyond
  // limits.max_dead_letter_bytes; this timer looks for the way back.
  UvHandle<uv_timer_t> backlog_timer_;
  uint64_t backlog_paused_at_ = 0;  // loop ms
  bool dl_backpressure_ = false;    // reading held back for the dead-letter backlog
  event::Decoder decoder_;
  std::vector<event::Item> items_;  // reused by every decode
  std::vector<ChannelCounters> channel_counters_;
  // One throttle per refusal reason, so a flood of one kind of garbage
  // cannot hide a different fault.
  std::vector<Throttle> invalid_log_;
  Throttle overload_log_{1000};
  bool trace_events_ = false;
  bool stopping_ = false;
  std::atomic<bool> stopped_{false};  // read by marshalled commands' closures
  std::function<void()> flush_then_;  // flushCommands' continuation
  uint64_t flush_until_ = 0;
  int exit_code_ = 0;
};

}  // namespace evh::app
