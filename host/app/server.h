// The evhost server: owns the loop and every subsystem, wires them, and
// starts and stops them in order (the stop order is app/teardown.h's list).
#pragma once

#include "app/pubsub_check.h"
#include "app/pubsub_peers.h"
#include "app/pubsub_share.h"
#include "app/reload_plugins.h"
#include "app/scraper.h"
#include "app/service_notify.h"
#include "app/sources.h"
#include "app/teardown.h"
#include "app/watchdog.h"
#include "common/clock.h"
#include "config/config.h"
#include "dispatch/dispatcher.h"
#include "dispatch/worker_pool.h"
#include "ingest/admission.h"
#include "ingest/pipeline.h"
#include "loop/lag.h"
#include "loop/log_drops.h"
#include "loop/poster.h"
#include "loop/uv_handle.h"
#include "ops/http_server.h"
#include "ops/readiness.h"
#include "ops/stats.h"
#include "plugin/host_services.h"
#include "plugin/registry.h"
#include "redis/command_client.h"
#include "redis/idempotency_store.h"
#include "redis/seen_id_store.h"
#include "redis/sentinel.h"
#include "redis/stream_source.h"
#include "redis/subscriber_set.h"
#include "runtime/runtime.h"

#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace evh::app {

struct Options {
  std::vector<std::string> plugin_dirs;  // --plugin-dir, in order
  // What the command line and the environment override in the file
  // (--ops-listen, --log-level, DEBUG_EVENTS): main() applies it before
  // start, and each reload to the configuration it reads.
  std::function<void(config::Config&)> overrides;
};

class Server final {
 public:
  Server(config::Config config, Options options);
  ~Server();
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
  // thread): stop taking events, let in-flight handlers finish up to
  // shutdown_timeout_ms, shut plugins down, close connections. THREAD: loop.
  void stop();

  uv_loop_t* loop() noexcept { return &loop_; }
  // Every subsystem's series. THREAD: loop.
  const ops::Registry& stats() const noexcept { return stats_; }
  // A snapshot of every series, with the figures Redis tells (streams'
  // backlogs) refreshed first: `done` runs on the loop, within about half a
  // second whatever Redis does. What the exporter calls. THREAD: loop.
  void scrape(Scraper::Done done);
  // Ready to take events: started, not stopping, the command connection up,
  // every subscription confirmed and every stream read. THREAD: loop.
  ops::Readiness readiness() const;
  // GET /status's JSON body (app/server_status.cpp). THREAD: loop.
  std::string status() const;
  // Re-reads the configuration file and applies what a reload can change
  // (app/server_reload.cpp, app/reload_plan.h); on any problem the running
  // configuration stays. What SIGHUP (through the watchdog's thread) and
  // POST /reload do; `source` names which for the log. `done`, if given, is
  // called once with the outcome (applied, refused, or not run, and the JSON
  // of reloadJson()) -- also when the reload cannot run. Returns why it was
  // not run ("": it began, or follows the one under way). THREAD: loop.
  using ReloadDone = ops::ReloadOutcome;
  std::string reload(const std::string& source = "SIGHUP", ReloadDone done = {});

 private:
  void startOps();
  // The service manager's notifications (app/server_notify.cpp): READY=1
  // once readiness() first holds, STATUS=, WATCHDOG=1. A reload (issue 16)
  // brackets itself with notify_->reloading() and notify_->reloaded().
  void startNotify();
  StatusFigures statusFigures() const;
  // What the ops listener asked of the loop: `parts` of a snapshot.
  void answerOps(ops::Parts parts, ops::LoopAccess::Reply reply);
  void startSources();
  void exportOwnStats();
  void planTeardown();
  // The source reading `ch` -- a retired one too, its runtime then in
  // `under` (what its last entries are routed by).
  redis::StreamSource* sourceOf(const redis::StreamChannel& ch, runtime::RuntimePtr* under = nullptr);
  // ---- app/reload_channels.cpp: channels added and removed in place
  // Subscribes, unsubscribes, and starts and retires stream readers for the
  // channels `now` (just put in force) has and `was` had not, or the other
  // way round. THREAD: loop.
  void applyChannels(const runtime::RuntimePtr& was, const runtime::Runtime& now);
  void applyChannelsOrThrow(const runtime::RuntimePtr& was, const runtime::Runtime& now);
  // The reader of stream channel `ch`: started at once, or once the reader
  // it replaces has finished (startWaitingStreams).
  void addStream(const runtime::Channel& ch);
  void retireStream(size_t index, runtime::RuntimePtr under);
  void startWaitingStreams();
  void makeSubscriber(std::vector<redis::Subscription> subs);
  // Waits (on the loop, polling) until the command connection has no
  // request outstanding, at most 2 s, then runs `then`.
  void flushCommands(std::function<void()> then);
  void finishStop();
  void onDeadline();
  // `tls`: the contexts of the new file's redis settings, built off the
  // loop when they differ from the running ones (app/sources.h).
  void finishReload(config::LoadResult loaded, RedisTls tls);
  // ---- app/reload_redis.cpp: config_ (just put in force) connects to
  // Redis otherwise than `was` (app/reload_plan.h redisChanges): every
  // connection reconnects with the new settings, at once. THREAD: loop.
  void applyRedis(const std::vector<std::string>& keys, const RedisTls& tls);
  // The last reload's outcome as JSON: {"result", "generation", "changed",
  // "errors"}.
  std::string reloadJson() const;

  config::Config config_;
  Options options_;
  uv_loop_t loop_;
  ops::Registry stats_;  // every subsystem's series; outlives them all
  std::unique_ptr<Poster> poster_;
  // The ops listener's thread posts here, not to poster_: it runs 10 nice
  // levels down, and a post it is preempted in must delay only its own.
  std::unique_ptr<Poster> ops_poster_;
  // Takes SIGINT/SIGTERM and watches the loop for stalls (its own thread).
  std::unique_ptr<Watchdog> watchdog_;
  std::unique_ptr<LoopLag> lag_;  // the loop's work per iteration
  std::unique_ptr<Scraper> scraper_;
  std::unique_ptr<PubsubCheck> pubsub_check_;  // GET /health/pubsub
  std::unique_ptr<LogDrops> log_drops_;        // log lines a full queue dropped
  std::unique_ptr<ServiceNotify> notify_;      // sd_notify(3): does nothing without NOTIFY_SOCKET
  UvHandle<uv_timer_t> deadline_;
  redis::Endpoint endpoint_;  // every connection's, built by start() (TLS: its context and bridge)
  // redis.sentinel: where endpoint_'s connections go (its `addresses`);
  // stopped in the "sources" teardown step, since it holds loop handles
  // while connections still hold it.
  std::shared_ptr<redis::SentinelAddress> sentinel_;
  std::shared_ptr<redis::ClusterMap> cluster_;  // redis.cluster; null otherwise
  std::unique_ptr<redis::CommandClient> commands_;
  std::unique_ptr<plugin::LoopServices> services_;
  plugin::Registry registry_{stats_};
  std::unique_ptr<redis::IdempotencyStore> idempotency_;
  std::unique_ptr<redis::SeenIdStore> seen_ids_;  // signed channels' replay check
  std::unique_ptr<PubsubPeers> pubsub_peers_;     // other evhosts on our Pub/Sub channels (app/pubsub_peers.h)
  std::unique_ptr<dispatch::WorkerPool> pool_;
  std::unique_ptr<dispatch::Dispatcher> dispatcher_;
  std::unique_ptr<PluginReload> plugin_reload_;  // a reload's plugins (app/reload_plugins.h)
  runtime::ChannelIds channel_ids_;
  std::unique_ptr<ingest::Admission> admission_;
  std::unique_ptr<ingest::Pipeline> pipeline_;
  std::unique_ptr<PubsubShare> share_;  // shared Pub/Sub channels' forwards (app/pubsub_share.h)
  std::unique_ptr<redis::SubscriberSet> subscriber_;
  std::vector<std::unique_ptr<redis::StreamSource>> streams_;
  // Readers of streams a reload removed (or changed), finishing their
  // entries under the runtime they belonged to; destroyed once done.
  struct RetiringStream {
    std::unique_ptr<redis::StreamSource> source;
    runtime::RuntimePtr runtime;
  };
  std::vector<RetiringStream> retiring_streams_;
  // The ops listener (/metrics, /healthz, /readyz; its own thread). Its
  // scrapes read stats_ and readiness()'s sources on the loop: declared
  // after them all, so destroyed first -- though the "ops" teardown step
  // has stopped it long before.
  std::unique_ptr<ops::HttpServer> ops_;
  UvHandle<uv_timer_t> flush_timer_;
  std::function<void()> flush_then_;  // flushCommands' continuation
  uint64_t flush_until_ = 0;
  Teardown teardown_;
  std::vector<const plugin::Instance*> busy_;  // plugins with a handler still running at the deadline
  // The server's own series (evhost_ready, the reload counters): computed
  // from the members above, so declared after them and cleared first.
  ops::Scope own_stats_{stats_};
  // Reloads so far and the last one's outcome (GET /status).
  struct Reloads {
    bool reading = false;                  // the file is being read (off the loop)
    bool again = false;                    // asked for again meanwhile
    std::vector<ReloadDone> waiting;       // told the outcome of the reload being read
    std::vector<ReloadDone> waiting_next;  // asked for meanwhile: told the next one's
    uint64_t generation = 1;               // the runtime graph in force
    uint64_t succeeded = 0;
    uint64_t failed = 0;
    uint64_t last_ms = 0;  // epoch ms; 0: none yet
    bool last_ok = true;
    std::vector<std::string> last_errors;
    std::string last_changes;
  };
  Reloads reload_;
  ops::Counter reloads_total_;
  ops::Counter reload_failures_total_;
  bool started_ = false;            // start() went through
  uint64_t started_ms_ = wallMs();  // when this server was made (epoch ms), for /status
  bool stopping_ = false;
  bool stopped_ = false;
  int exit_code_ = 0;
};

}  // namespace evh::app
