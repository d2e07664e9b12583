// Server wiring and lifecycle: what is built in which order at start, and
// the graceful stop.
#include "app/server.h"

#include "app/sources.h"
#include "common/log.h"
#include "plugin/search_path.h"

#include <algorithm>
#include <cstdlib>
#include <stdexcept>

namespace evh::app {

Server::Server(config::Config config, Options options) : config_(std::move(config)), options_(std::move(options)) {
  if (int rc = uv_loop_init(&loop_); rc != 0) {
    throw std::runtime_error(std::string("uv_loop_init: ") + uv_strerror(rc));
  }
  loop_.data = this;
  poster_ = std::make_unique<Poster>(&loop_);
  ops_poster_ = std::make_unique<Poster>(&loop_);
  planTeardown();
}

Server::~Server() {
  own_stats_.clear();  // its gauges read what the steps below take apart
  // Normally finishStop has walked the teardown; this also covers a start()
  // that threw half way. The watchdog goes first: its thread uses the poster
  // and the dispatcher.
  watchdog_.reset();
  teardown_.runAll(Teardown::Mode::Graceful);
  share_.reset();
  pipeline_.reset();
  admission_.reset();
  plugin_reload_.reset();
  dispatcher_.reset();
  idempotency_.reset();  // its check handle closes before the loop does
  commands_.reset();
  endpoint_ = redis::Endpoint{};
  sentinel_.reset();
  cluster_.reset();
  ops_poster_.reset();
  poster_.reset();
  registry_.unloadAll();           // after the last callback that could enter a plugin
  uv_run(&loop_, UV_RUN_DEFAULT);  // let every close callback run
  if (uv_loop_close(&loop_) != 0) {
    log::host().error("event loop closed with handles still open (a bug)");
  }
}

// The stop order, written once. stop() runs it through "intake", then waits
// for what is in flight; finishStop() (or the destructor) runs the rest. At
// the shutdown deadline with handlers still running on workers, the steps
// run in Exit mode: nothing that would wait for those handlers.
void Server::planTeardown() {
  using Mode = Teardown::Mode;
  teardown_.add("intake", [this](Mode) {
    // Stop taking events; what is in flight may still use Redis (and stream
    // entries still need their acks).
    if (admission_) {
      admission_->stop();
    }
    subscriber_.reset();
    if (pubsub_peers_) {
      pubsub_peers_->leave();  // its HDELs are flushed with the other commands
    }
    for (auto& src : streams_) {
      src->stop();
    }
    for (auto& r : retiring_streams_) {
      r.source->stop();  // its entries in flight are still acked (retire() below)
    }
  });
  teardown_.add("ops", [this](Mode) {
    // Served through the drain (/readyz says "draining"); stopped before
    // anything its scrapes read goes, and before the poster refuses them.
    if (ops_) {
      ops_->stop();
    }
  });
  teardown_.add("workers", [this](Mode mode) {
    if (deadline_) {
      uv_timer_stop(deadline_.get());
    }
    // The workers are idle (or their calls were given up on and are
    // skipped); at an exit they may be stuck in a handler: not joined.
    if (pool_ && mode == Mode::Graceful) {
      pool_->stop();
    }
  });
  teardown_.add("callbacks", [this](Mode) {
    // Every reply callback and post runs before plugins shut down (the ABI
    // promises it), and none after: refuse new posts and cross-thread
    // commands, cancel outstanding commands (their callbacks run now), run
    // what was posted before.
    poster_->refuse();
    ops_poster_->refuse();
    if (services_) {
      services_->close();
    }
    if (idempotency_) {
      idempotency_->flush();  // questions queued for the check phase: sent, so that the stop answers them
    }
    if (commands_) {
      commands_->stop();
    }
    poster_->drain();
    ops_poster_->drain();
  });
  teardown_.add("outcomes", [this](Mode mode) {
    if (!dispatcher_) {
      return;
    }
    if (mode == Mode::Exit) {
      // The process ends without destructors: the fallback file gets
      // everything now.
      dispatcher_->closeFallback();
      return;
    }
    // Calls given up on (a timeout) may still be completed by their plugin,
    // as late as its shutdown(): from here on such outcomes are dropped.
    dispatcher_->seal();
  });
  teardown_.add("plugins", [this](Mode mode) {
    if (mode == Mode::Graceful) {
      registry_.shutdownAll();
      return;
    }
    // A plugin with a handler still running cannot be shut down under it.
    for (auto it = registry_.instances().rbegin(); it != registry_.instances().rend(); ++it) {
      if (std::find(busy_.begin(), busy_.end(), it->get()) == busy_.end()) {
        (*it)->shutdown();
      }
    }
  });
  teardown_.add("sources", [this](Mode) {
    // The scraper's refreshes point at the streams; nothing scrapes any more
    // (the ops listener has stopped). It goes, its timer with it, as does
    // LoopLag's uv_check: else both are still open when the loop closes.
    // The service manager's pings and status lines stop (their timers read
    // what goes here).
    if (notify_) {
      notify_->close();
    }
    scraper_.reset();
    pubsub_check_.reset();
    pubsub_peers_.reset();
    streams_.clear();
    retiring_streams_.clear();
    lag_.reset();
    ops_poster_->close();
    poster_->close();
    plugin_reload_.reset();  // retiring instances wait for the registry's unloadAll
    deadline_.close();
    flush_timer_.close();
    log_drops_.reset();
    if (sentinel_) {
      sentinel_->stop();  // its connections and timer; the connections left only hold it
    }
    if (cluster_) {
      cluster_->stop();  // its connection and timers; the stream readers' SlotAddresses only hold it
    }
  });
  teardown_.add("watchdog", [this](Mode) {
    // The watchdog stays until the end, so that a second signal still exits
    // at once; its heartbeat stops (the loop is about to end).
    if (watchdog_) {
      watchdog_->loopFinished();
    }
  });
}

void Server::start() {
  // Signals go to the watchdog's thread (main() blocked them everywhere
  // else): a loop stuck in a plugin cannot keep them from acting.
  Watchdog::Hooks hooks;
  hooks.stop = [this] { poster_->post([this] { stop(); }); };
  hooks.reload = [this] { poster_->post([this] { reload(); }); };
  hooks.write_unfinished = [this] { return dispatcher_ ? dispatcher_->writeUnfinishedForExit() : size_t{0}; };
  watchdog_ = std::make_unique<Watchdog>(&loop_, CurrentCall::process(),
                                         Watchdog::Options{config_.loop_stall_ms, config_.shutdown_timeout_ms},
                                         std::move(hooks));
  watchdog_->start();
  // Before Redis and the plugins: an address in use fails start-up at once,
  // and /readyz says "starting" meanwhile.
  startOps();
  startNotify();
  deadline_ = makeUvHandle<uv_timer_t>(&loop_, uv_timer_init);
  deadline_->data = this;

  // The command connection first: plugins may send commands from init().
  const RedisTls tls = redisTlsOf(config_);  // its files read now, before the loop runs
  endpoint_ = endpointOf(config_, tls);
  if (endpoint_.tls && !config_.redis.tls.verify) {
    log::host().warn(
        "{}.verify is false: Redis's certificate is not checked -- anyone on the network path can "
        "read and change events",
        config_.redis.tls.origin.describe());
  }
  if (config_.redis.sentinel.enabled()) {
    sentinel_ = sentinelOf(&loop_, config_, endpoint_, tls);
    sentinel_->exportStats(stats_);
    endpoint_.addresses = sentinel_;
    sentinel_->start();
  }
  if (config_.redis.cluster.enabled()) {
    cluster_ = clusterOf(&loop_, config_, endpoint_);
    cluster_->exportStats(stats_);
    cluster_->start();
    commands_ = std::make_unique<redis::CommandClient>(&loop_, endpoint_, cluster_);
  } else {
    commands_ = std::make_unique<redis::CommandClient>(&loop_, endpoint_);
  }
  commands_->exportStats(stats_);
  commands_->start();
  services_ = std::make_unique<plugin::LoopServices>(*poster_, commands_.get());
  registry_.load(config_.plugins, plugin::searchPath(options_.plugin_dirs), *services_, config_.prefix());

  std::vector<dispatch::PluginSetup> setups;
  for (const auto& p : config_.plugins) {
    setups.push_back(dispatch::PluginSetup{registry_.find(p.name), p.breaker, p.timeout_ms});
  }
  pool_ = std::make_unique<dispatch::WorkerPool>(config_.workers);
  pool_->exportStats(stats_);
  lag_ = std::make_unique<LoopLag>(&loop_, stats_);
  scraper_ = std::make_unique<Scraper>(&loop_, stats_);
  log_drops_ = std::make_unique<LogDrops>(&loop_, log::asyncOutput(), stats_);
  idempotency_ = std::make_unique<redis::IdempotencyStore>(&loop_, *commands_);
  const bool trace_events = config_.logging.debug_events || log::host().should_log(spdlog::level::trace);
  dispatch::Dispatcher::Options dopt;
  dopt.max_in_flight = config_.limits.max_in_flight;
  dopt.trace_events = trace_events;
  dopt.dead_letter_plugin = config_.dead_letter.plugin.empty() ? nullptr : registry_.find(config_.dead_letter.plugin);
  dopt.dead_letter_timeout_ms = config_.dead_letter.timeout_ms;
  dopt.fallback_file = config_.dead_letter.fallback_file;
  dopt.dead_letter_channel = config_.dead_letter.channel;
  dopt.idempotency = idempotency_.get();
  dopt.stats = &stats_;
  // A stream whose every plugin has an open breaker stops reading until one
  // half-opens (its entries wait safely in Redis meanwhile).
  dopt.on_breaker_change = [this] {
    for (auto& src : streams_) {
      src->resume();
    }
  };
  dopt.idempotency_prefix = config_.prefix() + "evh:done:";
  dispatcher_ = std::make_unique<dispatch::Dispatcher>(&loop_, *poster_, *pool_, setups, dopt);
  if (dopt.dead_letter_plugin == nullptr) {
    log::host().warn("no dead_letter.plugin configured: dead-letter entries go to {}", dopt.fallback_file);
  }
  plugin_reload_ = std::make_unique<PluginReload>(&loop_, registry_, *dispatcher_, *services_,
                                                  plugin::searchPath(options_.plugin_dirs));

  // Runtimes hold the instances they route to (a reload retires one only
  // when no runtime does).
  auto runtime = runtime::Runtime::build(
      config_, [this](const std::string& name) { return registry_.findShared(name); }, channel_ids_, 1, &stats_);
  ingest::Admission::Sources sources;
  sources.hold_pubsub = [this] {
    if (subscriber_ != nullptr && !subscriber_->readingPaused()) {
      subscriber_->pauseReading();
    }
  };
  sources.release = [this] {
    if (subscriber_ != nullptr) {
      subscriber_->resumeReading();
    }
    for (auto& src : streams_) {
      src->resume();
    }
  };
  admission_ = std::make_unique<ingest::Admission>(
      &loop_, *dispatcher_,
      ingest::Admission::Limits{config_.limits.max_in_flight, config_.limits.max_dead_letter_bytes}, std::move(sources),
      stats_);
  seen_ids_ = std::make_unique<redis::SeenIdStore>(*commands_);
  ingest::Pipeline::Options popt;
  popt.trace_events = trace_events;
  popt.seen = seen_ids_.get();
  popt.signed_stage = ingest::SignedStage::Options{config_.prefix() + "evh:seen:", processConsumerName()};
  pipeline_ = std::make_unique<ingest::Pipeline>(&loop_, *dispatcher_, std::move(runtime), *admission_, stats_,
                                                 std::move(popt));
  share_ = std::make_unique<PubsubShare>(*commands_, *pipeline_, stats_, config_.limits.max_in_flight);
  startSources();
  exportOwnStats();
  started_ = true;
  const std::string redis_at =
      config_.redis.sentinel.enabled() ? "master " + config_.redis.sentinel.master + " (sentinel)"
      : cluster_ ? "cluster (" + std::to_string(config_.redis.cluster.nodes.size()) + " seed node(s))"
                 : config_.redis.host + ":" + std::to_string(config_.redis.port);
  log::host().info("evhost started: {} plugin(s), {} channel(s), prefix \"{}\", redis {}", registry_.instances().size(),
                   config_.channels.size(), config_.prefix(), redis_at);
}

void Server::startSources() {
  const runtime::Runtime& rt = pipeline_->runtime();
  // One refresh for whichever streams are read at scrape time (a reload
  // adds and removes them).
  scraper_->addRefresh([this](std::function<void()> done) {
    if (streams_.empty()) {
      done();
      return;
    }
    auto left = std::make_shared<size_t>(streams_.size());
    auto all = std::make_shared<std::function<void()>>(std::move(done));
    for (auto& src : streams_) {
      src->refreshBacklog([left, all] {
        if (--*left == 0) {
          (*all)();
        }
      });
    }
  });
  for (const auto& ch : rt.channels()) {
    if (ch.transport == config::Transport::Stream) {
      addStream(ch);
    }
  }
  std::vector<redis::Subscription> subs = subscriptionsOf(rt);
  services_->setShardedChannels(shardedChannelsOf(rt));
  pubsub_peers_ = std::make_unique<PubsubPeers>(&loop_, *commands_, stats_,
                                                PubsubPeers::Options{config_.prefix(), processConsumerName()});
  pubsub_peers_->use(unsharedSubscriptionsOf(rt));  // a shared channel is meant to have several
  // GET /health/pubsub publishes on a channel of this instance's own and,
  // when evhost subscribes at all, waits for it to come back.
  const bool round_trip = !subs.empty();
  pubsub_check_ = std::make_unique<PubsubCheck>(
      &loop_, *commands_, config_.prefix() + PubsubCheck::kChannel + processConsumerName(), round_trip,
      [this]() -> std::string {
        if (!subscriber_) {
          return "evhost is stopping";
        }
        if (std::vector<std::string> why = subscriber_->notLive(true); !why.empty()) {
          return why.front();
        }
        return subscriber_->readingPaused() ? "the subscriber's reading is paused (evhost is behind: backpressure)"
                                            : std::string();
      },
      PubsubCheck::Options{config_.ops.pubsub_check_cache_ms, config_.ops.pubsub_check_timeout_ms});
  if (round_trip) {
    makeSubscriber(std::move(subs));
  }
}

int Server::run() {
  uv_run(&loop_, UV_RUN_DEFAULT);
  return exit_code_;
}

redis::StreamSource* Server::sourceOf(const redis::StreamChannel& ch, runtime::RuntimePtr* under) {
  for (auto& src : streams_) {
    if (&src->channel() == &ch) {
      return src.get();
    }
  }
  for (auto& r : retiring_streams_) {
    if (&r.source->channel() == &ch) {
      if (under != nullptr) {
        *under = r.runtime;
      }
      return r.source.get();
    }
  }
  return nullptr;
}

void Server::stop() {
  if (stopping_) {
    return;
  }
  stopping_ = true;
  if (notify_) {
    notify_->stopping();
  }
  teardown_.runThrough("intake", Teardown::Mode::Graceful);
  if (dispatcher_ == nullptr) {
    finishStop();
    return;
  }
  if (dispatcher_->inFlight() > 0) {
    log::host().info("waiting up to {} ms for {} event(s) in flight", config_.shutdown_timeout_ms,
                     dispatcher_->inFlight());
  }
  uv_timer_start(
      deadline_.get(), [](uv_timer_t* t) { static_cast<Server*>(t->data)->onDeadline(); }, config_.shutdown_timeout_ms,
      0);
  // Signed messages waiting for their replay check go on to dispatch (or
  // a dead letter) first. on_idle may fire deep inside a callback (a posted
  // completion, a hiredis reply): finish from the top of the loop instead,
  // once the last replies (stream acks, plugins' writes) are in.
  auto drain = [this] {
    if (stopped_) {
      return;  // the deadline passed while replay checks waited
    }
    dispatcher_->drain([this] {
      // Every ack is sent by now: consumers with nothing pending leave their
      // groups (the flush below waits for those replies too).
      for (auto& src : streams_) {
        if (src->started()) {  // (one waiting for its predecessor never read)
          src->retire();
        }
      }
      for (auto& r : retiring_streams_) {
        r.source->retire();
      }
      flushCommands([this] { finishStop(); });
    });
  };
  if (pipeline_) {
    pipeline_->whenChecked(std::move(drain));
  } else {
    drain();
  }
}

void Server::onDeadline() {
  watchdog_->deadlineTaken();
  exit_code_ = 1;
  if (flush_timer_) {
    uv_timer_stop(flush_timer_.get());  // a flush in progress no longer matters
  }
  for (const auto& line : dispatcher_->abandon()) {
    log::host().error("shutdown deadline ({} ms) passed: {}", config_.shutdown_timeout_ms, line);
  }
  busy_ = dispatcher_->busyPlugins();
  if (busy_.empty()) {
    finishStop();
    return;
  }
  // A handler still running on a worker cannot be interrupted, and its
  // plugin cannot be shut down or unloaded under it: shut the others down
  // and leave -- after the fallback file has everything.
  for (const auto* p : busy_) {
    log::host().error("plugin {} still has a handler running; exiting without shutting it down", p->name());
  }
  teardown_.runThrough("plugins", Teardown::Mode::Exit);
  log::drain();
  std::_Exit(1);
}

void Server::flushCommands(std::function<void()> then) {
  if (!flush_timer_) {
    flush_timer_ = makeUvHandle<uv_timer_t>(&loop_, uv_timer_init);
    flush_timer_->data = this;
  }
  flush_then_ = std::move(then);
  flush_until_ = uv_now(&loop_) + 2000;
  // Always through the timer, even when nothing is pending: `then` runs at
  // the top of the loop, never nested in the callback that asked for it.
  uv_timer_start(
      flush_timer_.get(),
      [](uv_timer_t* t) {
        auto* self = static_cast<Server*>(t->data);
        const bool done = self->commands_ == nullptr || self->commands_->pending() == 0 || !self->commands_->up() ||
                          uv_now(t->loop) >= self->flush_until_;
        if (done) {
          uv_timer_stop(t);
          auto next = std::move(self->flush_then_);
          self->flush_then_ = nullptr;
          if (next) {
            next();
          }
        }
      },
      0, 10);
}

void Server::finishStop() {
  if (stopped_) {
    return;
  }
  stopped_ = true;
  teardown_.runAll(Teardown::Mode::Graceful);
  log::host().info("evhost stopped");
}

}  // namespace evh::app
