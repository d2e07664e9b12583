// Server wiring: loop, signals, plugins, Redis, decode -> route -> dispatch,
// and the graceful stop.
#include "app/server.h"

#include "common/log.h"
#include "plugin/search_path.h"
#include "redis/reply.h"

#include <hiredis/hiredis.h>

#include <unistd.h>
#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace evh::app {
namespace {

redis::Endpoint endpointOf(const config::Redis& r) {
  redis::Endpoint e;
  e.host = r.host;
  e.port = r.port;
  e.db = r.db;
  e.username = r.username;
  e.password = r.password;
  e.connect_timeout_ms = r.connect_timeout_ms;
  e.backoff_initial_ms = r.reconnect.initial_ms;
  e.backoff_max_ms = r.reconnect.max_ms;
  e.backoff_multiplier = r.reconnect.multiplier;
  e.ping_interval_ms = r.ping_interval_ms;
  e.ping_timeout_ms = r.ping_timeout_ms;
  return e;
}

}  // namespace

Server::Server(config::Config config, Options options)
    : config_(std::move(config)),
      options_(std::move(options)),
      prefix_(config_.prefix()),
      decoder_(event::Decoder::Limits{config_.limits.max_message_bytes, config_.limits.max_json_depth}) {
  if (int rc = uv_loop_init(&loop_); rc != 0) {
    throw std::runtime_error(std::string("uv_loop_init: ") + uv_strerror(rc));
  }
  loop_.data = this;
  loop_thread_ = std::this_thread::get_id();
  poster_ = std::make_unique<Poster>(&loop_);
  channel_counters_.resize(config_.channels.size());
  invalid_log_.assign(static_cast<size_t>(event::Reason::EmptyBatch) + 1, Throttle(1000));
  trace_events_ = config_.logging.debug_events || log::host().should_log(spdlog::level::trace);
}

Server::~Server() {
  // Normally everything is stopped by finishStop; this also covers a start()
  // that threw half way. The watchdog goes first: its thread uses the poster.
  watchdog_.reset();
  subscriber_.reset();
  streams_.clear();
  if (commands_) {
    commands_->stop();
  }
  poster_->drain();
  if (pool_) {
    pool_->stop();
  }
  if (dispatcher_) {
    dispatcher_->seal();
  }
  registry_.shutdownAll();
  dispatcher_.reset();
  flush_timer_.close();
  commands_.reset();
  poster_.reset();
  registry_.unloadAll();  // after the last callback that could enter a plugin
  deadline_.close();
  backlog_timer_.close();
  uv_run(&loop_, UV_RUN_DEFAULT);  // let every close callback run
  if (uv_loop_close(&loop_) != 0) {
    log::host().error("event loop closed with handles still open (a bug)");
  }
}

void Server::start() {
  // Signals go to the watchdog's thread (main() blocked them everywhere
  // else): a loop stuck in a plugin cannot keep them from acting.
  Watchdog::Hooks hooks;
  hooks.stop = [this] { poster_->post([this] { stop(); }); };
  hooks.write_unfinished = [this] { return dispatcher_ ? dispatcher_->writeUnfinishedForExit() : size_t{0}; };
  watchdog_ = std::make_unique<Watchdog>(&loop_, CurrentCall::process(),
                                         Watchdog::Options{config_.loop_stall_ms, config_.shutdown_timeout_ms},
                                         std::move(hooks));
  watchdog_->start();
  deadline_ = makeUvHandle<uv_timer_t>(&loop_, uv_timer_init);
  deadline_->data = this;
  backlog_timer_ = makeUvHandle<uv_timer_t>(&loop_, uv_timer_init);
  backlog_timer_->data = this;

  redis::Endpoint endpoint = endpointOf(config_.redis);
  // Replies are bounded while read, in proportion to the largest message.
  endpoint.max_message_bytes = config_.limits.max_message_bytes;
  // The command connection first: plugins may send commands from init().
  commands_ = std::make_unique<redis::CommandClient>(&loop_, endpoint);
  commands_->start();

  registry_.load(config_.plugins, plugin::searchPath(options_.plugin_dirs), *this, config_.prefix());

  std::vector<dispatch::PluginSetup> setups;
  for (const auto& p : config_.plugins) {
    setups.push_back(dispatch::PluginSetup{registry_.find(p.name), p.breaker, p.timeout_ms});
  }
  pool_ = std::make_unique<dispatch::WorkerPool>(config_.workers);
  router_ = std::make_unique<route::Router>(config_.channels,
                                            [this](const std::string& name) { return registry_.find(name); });
  dispatch::Dispatcher::Options dopt;
  dopt.max_in_flight = config_.limits.max_in_flight;
  dopt.trace_events = trace_events_;
  dopt.dead_letter_plugin = config_.dead_letter.plugin.empty() ? nullptr : registry_.find(config_.dead_letter.plugin);
  dopt.dead_letter_timeout_ms = config_.dead_letter.timeout_ms;
  dopt.fallback_file = config_.dead_letter.fallback_file;
  dopt.dead_letter_channel = config_.dead_letter.channel;
  dopt.idempotency = this;
  // A stream whose every plugin has an open breaker stops reading until one
  // half-opens (its entries wait safely in Redis meanwhile).
  dopt.on_breaker_change = [this] {
    for (auto& src : streams_) {
      src->resume();
    }
  };
  dopt.idempotency_prefix = prefix_ + "evh:done:";
  dispatcher_ = std::make_unique<dispatch::Dispatcher>(&loop_, *poster_, *pool_, setups, dopt);
  if (dopt.dead_letter_plugin == nullptr) {
    log::host().warn("no dead_letter.plugin configured: dead-letter entries go to {}", dopt.fallback_file);
  }

  std::vector<redis::Subscription> subs;
  char host_name[256] = "evhost";
  gethostname(host_name, sizeof(host_name) - 1);
  for (size_t i = 0; i < config_.channels.size(); ++i) {
    const auto& ch = config_.channels[i];
    if (ch.transport == config::Transport::PubSub) {
      subs.push_back(redis::Subscription{ch.name, prefix_ + ch.name, ch.pattern, i});
      continue;
    }
    redis::StreamChannel sc;
    sc.logical = ch.name;
    sc.key = prefix_ + ch.name;
    sc.index = i;
    sc.group = ch.stream.group;
    sc.consumer =
        ch.stream.consumer.empty() ? std::string(host_name) + "-" + std::to_string(getpid()) : ch.stream.consumer;
    sc.count = ch.stream.count;
    sc.min_room = static_cast<uint32_t>(
        std::min<uint64_t>(sc.count, std::max<uint64_t>(1, static_cast<uint64_t>(config_.limits.max_in_flight) / 2)));
    sc.block_ms = ch.stream.block_ms;
    sc.from_beginning = ch.stream.from_beginning;
    sc.claim_idle_ms = ch.stream.claim_idle_ms;
    sc.claim_interval_ms = ch.stream.claim_interval_ms;
    sc.max_deliveries = ch.stream.max_deliveries;
    sc.trim_maxlen = ch.stream.trim_maxlen;
    sc.trim_max_age_ms = ch.stream.trim_max_age_ms;
    sc.trim_interval_ms = ch.stream.trim_interval_ms;
    streams_.push_back(std::make_unique<redis::StreamSource>(
        &loop_, endpoint, std::move(sc), *commands_,
        [this](const redis::StreamChannel& c, const std::string& id, const std::string_view* field, bool redelivered) {
          if (redis::StreamSource* src = sourceOf(c)) {
            onStreamEntry(*src, id, field, redelivered);
          }
        },
        [this, i] {
          if (dl_backpressure_ || allBreakersOpen(i)) {
            return size_t{0};
          }
          size_t in = dispatcher_->inFlight();
          return in >= config_.limits.max_in_flight ? size_t{0} : config_.limits.max_in_flight - in;
        },
        [this](const redis::StreamChannel& c, const std::string& id, const char* reason, const std::string& why,
               const std::string* field) {
          if (redis::StreamSource* src = sourceOf(c)) {
            onStreamReject(*src, id, reason, why, field);
          }
        }));
    log::host().info("stream {}: group {}, consumer {}", streams_.back()->channel().key,
                     streams_.back()->channel().group, streams_.back()->channel().consumer);
    streams_.back()->start();
  }
  if (!subs.empty()) {
    subscriber_ =
        std::make_unique<redis::Subscriber>(&loop_, endpoint, std::move(subs),
                                            [this](const redis::Subscription& sub, std::string_view channel,
                                                   std::string_view payload) { onMessage(sub, channel, payload); });
    subscriber_->onOversize([this](std::string_view head, uint64_t held) {
      // Cut off at the reader: its channel and most of its bytes were never
      // read. The entry keeps what the reader held first (raw RESP).
      const std::string detail =
          "a Pub/Sub message over the reader's bound (2 x limits.max_message_bytes + 64 KiB) "
          "was cut off after " +
          std::to_string(held) + " bytes; the subscriber connection was dropped and taken again";
      log::host().error("invalid event: {} (reason=too_large)", detail);
      dispatch::DeadLetterInfo info{"invalid", event::reasonCode(event::Reason::TooLarge), detail, "", 0, 0, 0};
      dispatcher_->deadLetter(dispatch::makeEntry(info, head, "", ""));
      checkDeadLetterBacklog();
    });
    subscriber_->start();
  }
  log::host().info("evhost started: {} plugin(s), {} channel(s), prefix \"{}\", redis {}:{}",
                   registry_.instances().size(), config_.channels.size(), config_.prefix(), config_.redis.host,
                   config_.redis.port);
}

int Server::run() {
  uv_run(&loop_, UV_RUN_DEFAULT);
  return exit_code_;
}

void Server::onMessage(const redis::Subscription& sub, std::string_view channel, std::string_view payload) {
  // The logical channel is the one published on, without the prefix -- for
  // a pattern subscription the matching channel, not the pattern.
  std::string_view logical = sub.logical;
  if (sub.pattern) {
    logical = channel;
    if (logical.substr(0, prefix_.size()) == prefix_) {
      logical.remove_prefix(prefix_.size());
    }
  }
  handleMessage(sub.index, logical, channel, payload, {}, {});
}

bool Server::allBreakersOpen(size_t channel_index) const {
  bool any = false;
  for (const auto& route : config_.channels[channel_index].routes) {
    for (const auto& name : route.plugins) {
      any = true;
      if (!dispatcher_->breakerOpen(registry_.find(name))) {
        return false;
      }
    }
  }
  return any;
}

redis::StreamSource* Server::sourceOf(const redis::StreamChannel& ch) {
  for (auto& src : streams_) {
    if (&src->channel() == &ch) {
      return src.get();
    }
  }
  return nullptr;
}

void Server::onStreamEntry(redis::StreamSource& source, const std::string& id, const std::string_view* event_field,
                           bool redelivered) {
  const redis::StreamChannel& ch = source.channel();
  redis::StreamSource* src = &source;
  auto ack = [src, id] { src->ack(id); };
  if (event_field == nullptr) {
    ++channel_counters_[ch.index].received;
    ++channel_counters_[ch.index].invalid;
    const char* why = "stream entry has no \"event\" field (or it is not a string)";
    log::host().warn("invalid entry {} on stream {}: {}", id, ch.key, why);
    dispatch::DeadLetterInfo info{"invalid", "no_event_field", why, "", 0, 0, 0};
    dispatcher_->deadLetter(dispatch::makeEntry(info, "", ch.logical, ch.key), ack, true);
    checkDeadLetterBacklog();
    return;
  }
  handleMessage(ch.index, ch.logical, ch.key, *event_field, id, ack, redelivered);
}

void Server::onStreamReject(redis::StreamSource& source, const std::string& id, const char* reason,
                            const std::string& why, const std::string* event_field) {
  const redis::StreamChannel& ch = source.channel();
  redis::StreamSource* src = &source;
  // too_large: refused from its length while read; event_field holds the
  // first bytes the reader had (raw).
  const bool too_large = std::strcmp(reason, "too_large") == 0;
  dispatch::DeadLetterInfo info{
      too_large ? "invalid" : reason, reason, why + " [stream entry " + id + "]", "", 0, 0, 0};
  // A payload that decodes to one event keeps its eventId and eventType in
  // the entry (evhctl dlq show <eventId> finds it); anything else is kept raw.
  dispatch::DeadLetterEntry entry;
  std::vector<event::Item> items;
  if (event_field != nullptr && !too_large) {
    decoder_.decode(event::makeMessage(*event_field, ch.logical, ch.key, id, true), items);
  }
  if (items.size() == 1 && std::holds_alternative<event::Event>(items[0])) {
    const auto& ev = std::get<event::Event>(items[0]);
    log::host().warn("stream {}: entry {} (eventId={} eventType={}) dead-lettered (reason={}): {}", ch.key, id,
                     ev.eventId(), ev.eventType(), reason, why);
    entry = dispatch::makeEntry(info, ev);
  } else {
    log::host().warn("stream {}: entry {} dead-lettered (reason={}): {}", ch.key, id, reason, why);
    entry = dispatch::makeEntry(info, event_field != nullptr ? std::string_view(*event_field) : std::string_view(),
                                ch.logical, ch.key);
  }
  dispatcher_->deadLetter(
      std::move(entry), [src, id] { src->ack(id); }, true);
  checkDeadLetterBacklog();
}

void Server::handleMessage(size_t channel_index, std::string_view logical, std::string_view redis_channel,
                           std::string_view payload, std::string_view delivery_id, std::function<void()> done,
                           bool redelivered) {
  ChannelCounters& cc = channel_counters_[channel_index];
  ++cc.received;
  if (trace_events_) {
    log::host().info("event stage=received channel={} bytes={}{}{}", redis_channel, payload.size(),
                     delivery_id.empty() ? "" : " id=", delivery_id);
  }
  if (payload.size() > config_.limits.max_message_bytes) {
    refuseTooLarge(cc, logical, redis_channel, payload, delivery_id, std::move(done));
    return;
  }
  decoder_.decode(event::makeMessage(payload, logical, redis_channel, delivery_id, redelivered), items_);
  // A stream entry is acknowledged once every event of it is finished
  // (a single event -- not a BATCH -- needs no counting).
  const bool from_stream = static_cast<bool>(done);
  std::function<void()> one_done;
  if (done && items_.size() == 1) {
    one_done = std::move(done);
  } else if (done) {
    auto remaining = std::make_shared<size_t>(items_.size());
    one_done = [remaining, done] {
      if (--*remaining == 0) {
        done();
      }
    };
  }
  // A single event's callback moves on; a batch member's is shared.
  auto done_for_item = [&]() -> std::function<void()> {
    if (items_.size() == 1) {
      return std::move(one_done);
    }
    return one_done;
  };
  for (auto& item : items_) {
    if (auto* rejected = std::get_if<event::Rejected>(&item)) {
      ++cc.invalid;
      dispatch::DeadLetterInfo info{"invalid", event::reasonCode(rejected->reason), rejected->detail, "", 0, 0, 0};
      dispatcher_->deadLetter(dispatch::makeEntry(info, rejected->rawPart(), logical, redis_channel), done_for_item(),
                              from_stream);
      checkDeadLetterBacklog();
      Throttle& throttle = invalid_log_[static_cast<size_t>(rejected->reason)];
      if (throttle.allow(uv_now(&loop_))) {
        log::host().warn("invalid event on {}: {} (reason={}, {} bytes){}", redis_channel, rejected->detail,
                         event::reasonCode(rejected->reason), rejected->raw_length,
                         throttle.suppressed() > 0
                             ? " [" + std::to_string(throttle.suppressed()) + " more since the last such line]"
                             : std::string());
      }
      continue;
    }
    auto& ev = std::get<event::Event>(item);
    if (trace_events_) {
      log::host().info("event stage=decoded eventId={} correlationId={} eventType={} channel={}", ev.eventId(),
                       ev.correlationId(), ev.eventType(), redis_channel);
    }
    const route::Targets& targets = router_->route(channel_index, ev.eventType());
    if (targets.empty()) {
      ++cc.unrouted;
      log::host().debug("no route for eventType={} eventId={} on {}", ev.eventType(), ev.eventId(), logical);
      if (one_done) {
        one_done();
      }
      continue;
    }
    // A stream source reads only as much as there is room for (a BATCH may
    // overshoot); Pub/Sub cannot wait, so its excess is dead-lettered.
    if (!from_stream && dispatcher_->inFlight() >= config_.limits.max_in_flight) {
      ++cc.overloaded;
      std::string id(ev.eventId());
      dispatch::DeadLetterInfo info{
          "overloaded",
          "overloaded",
          std::to_string(dispatcher_->inFlight()) + " events in flight (limits.max_in_flight)",
          "",
          0,
          0,
          0};
      dispatcher_->deadLetter(dispatch::makeEntry(info, ev));
      checkDeadLetterBacklog();
      if (overload_log_.allow(uv_now(&loop_))) {
        log::host().warn(
            "overloaded: {} events in flight (limits.max_in_flight); event {} on {} dead-lettered "
            "(reason=overloaded){}",
            dispatcher_->inFlight(), id, logical,
            overload_log_.suppressed() > 0
                ? " [" + std::to_string(overload_log_.suppressed()) + " more since the last such line]"
                : std::string());
      }
      continue;
    }
    dispatcher_->dispatch(std::move(ev), targets, done_for_item(), from_stream);
  }
}

// Refused before it is copied or parsed: the entry keeps a prefix, the size
// and a hash, so that neither evhost's memory nor the dead-letter store grows
// with what a publisher sends.
void Server::refuseTooLarge(ChannelCounters& cc, std::string_view logical, std::string_view redis_channel,
                            std::string_view payload, std::string_view delivery_id, std::function<void()> done) {
  ++cc.invalid;
  const std::string detail = "message of " + std::to_string(payload.size()) + " bytes exceeds max_message_bytes " +
                             std::to_string(config_.limits.max_message_bytes);
  dispatch::DeadLetterInfo info{
      "invalid",
      event::reasonCode(event::Reason::TooLarge),
      delivery_id.empty() ? detail : detail + " [stream entry " + std::string(delivery_id) + "]",
      "",
      0,
      0,
      0};
  const bool from_stream = static_cast<bool>(done);
  dispatcher_->deadLetter(dispatch::makeTooLargeEntry(info, payload, logical, redis_channel), std::move(done),
                          from_stream);
  checkDeadLetterBacklog();
  Throttle& throttle = invalid_log_[static_cast<size_t>(event::Reason::TooLarge)];
  if (throttle.allow(uv_now(&loop_))) {
    log::host().warn(
        "invalid event on {}: {} (reason=too_large; dead-lettered with its first {} bytes, size and "
        "SHA-256){}",
        redis_channel, detail, dispatch::kTooLargePrefixBytes,
        throttle.suppressed() > 0 ? " [" + std::to_string(throttle.suppressed()) + " more since the last such line]"
                                  : std::string());
  }
}

void Server::checkDeadLetterBacklog() {
  if (dl_backpressure_) {
    // A subscriber that reconnected meanwhile reads again: hold it back too.
    if (subscriber_ != nullptr && !subscriber_->readingPaused()) {
      subscriber_->pauseReading();
    }
    return;
  }
  const uint64_t limit = config_.limits.max_dead_letter_bytes;
  if (dispatcher_->deadLetterBacklogBytes() <= limit || stopping_) {
    return;
  }
  // Shedding a flood costs memory too: each dead letter is kept until it is
  // stored. Past the limit, stop reading -- Pub/Sub (Redis holds the rest; its
  // pubsub output-buffer limit may then cut us off: that is logged as a gap)
  // and streams (their capacity is 0 meanwhile) -- and read again once half
  // of it is stored.
  dl_backpressure_ = true;
  if (subscriber_ != nullptr) {
    subscriber_->pauseReading();
  }
  backlog_paused_at_ = uv_now(&loop_);
  log::host().warn(
      "{} bytes of dead-letter entries wait to be stored (limits.max_dead_letter_bytes={}): reading paused until "
      "half of them are",
      dispatcher_->deadLetterBacklogBytes(), limit);
  uv_timer_start(
      backlog_timer_.get(),
      [](uv_timer_t* t) {
        auto* self = static_cast<Server*>(t->data);
        if (self->stopping_) {
          uv_timer_stop(t);
          return;
        }
        if (self->dispatcher_->deadLetterBacklogBytes() > self->config_.limits.max_dead_letter_bytes / 2) {
          return;
        }
        uv_timer_stop(t);
        self->dl_backpressure_ = false;
        if (self->subscriber_ != nullptr) {
          self->subscriber_->resumeReading();
        }
        for (auto& src : self->streams_) {
          src->resume();
        }
        log::host().info("reading resumed after {} ms (dead-letter backlog {} bytes)",
                         uv_now(&self->loop_) - self->backlog_paused_at_, self->dispatcher_->deadLetterBacklogBytes());
      },
      5, 5);
}

void Server::stop() {
  if (stopping_) {
    return;
  }
  stopping_ = true;
  // Stop taking events first; what is in flight may still use Redis (and
  // stream entries still need their acks).
  uv_timer_stop(backlog_timer_.get());
  subscriber_.reset();
  for (auto& src : streams_) {
    src->stop();
  }
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
  // on_idle may fire deep inside a callback (a posted completion, a hiredis
  // reply): finish from the top of the loop instead, once the last replies
  // (stream acks, plugins' writes) are in.
  dispatcher_->drain([this] {
    // Every ack is sent by now: consumers with nothing pending leave their
    // groups (the flush below waits for those replies too).
    for (auto& src : streams_) {
      src->retire();
    }
    flushCommands([this] { finishStop(); });
  });
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
  auto busy = dispatcher_->busyPlugins();
  if (!busy.empty()) {
    // A handler still running on a worker cannot be interrupted, and its
    // plugin cannot be shut down or unloaded under it: shut the others
    // down and leave -- after the fallback file has everything.
    for (const auto* p : busy) {
      log::host().error("plugin {} still has a handler running; exiting without shutting it down", p->name());
    }
    poster_->refuse();
    commands_->stop();
    poster_->drain();
    dispatcher_->closeFallback();
    for (auto it = registry_.instances().rbegin(); it != registry_.instances().rend(); ++it) {
      if (std::find(busy.begin(), busy.end(), it->get()) == busy.end()) {
        (*it)->shutdown();
      }
    }
    log::host().flush();
    std::_Exit(1);
  }
  finishStop();
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
        const bool done = self->commands_ == nullptr || self->commands_->pending() == 0 || !self->commands_->ready() ||
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
  uv_timer_stop(deadline_.get());
  // The workers are idle (or their calls were given up on and are skipped).
  if (pool_) {
    pool_->stop();
  }
  // Every reply callback and post runs before plugins shut down (the ABI
  // promises it), and none after: refuse new posts and cross-thread
  // commands, cancel outstanding commands (their callbacks run now), run
  // what was posted before.
  poster_->refuse();
  if (commands_) {
    commands_->stop();
  }
  poster_->drain();
  // Calls given up on (a timeout) may still be completed by their plugin,
  // as late as its shutdown(): from here on such outcomes are dropped.
  if (dispatcher_) {
    dispatcher_->seal();
  }
  registry_.shutdownAll();
  streams_.clear();
  poster_->close();
  deadline_.close();
  flush_timer_.close();
  // The watchdog stays until the end, so that a second signal still exits
  // at once; its heartbeat stops (the loop is about to end).
  watchdog_->loopFinished();
  log::host().info("evhost stopped");
}

namespace {

// Plugin callbacks are C entry points into code we do not control: a C++
// plugin written without the SDK may still throw through them.
template <class Fn>
void guarded(plugin::Instance* in, const char* what, Fn&& fn) {
  const CallSite site{in->name(), what, nullptr};  // named by the watchdog if it never returns
  CallScope scope(CurrentCall::process(), site);
  try {
    fn();
  } catch (const std::exception& e) {
    in->logger().error("exception thrown through the C ABI from a {}: {}", what, e.what());
  } catch (...) {
    in->logger().error("unknown exception thrown through the C ABI from a {}", what);
  }
}

}  // namespace

evh_status Server::redisCommand(plugin::Instance& from, std::vector<std::string> argv, evh_reply_cb cb,
                                void* user_data) {
  plugin::Instance* in = &from;
  if (std::this_thread::get_id() == loop_thread_) {
    if (stopped_ || commands_ == nullptr) {
      return EVH_ERR_CANCELLED;
    }
    return sendCommand(from, std::move(argv), cb, user_data) ? EVH_OK : EVH_ERR_UNAVAILABLE;
  }
  // From another thread: marshal to the loop (the poster refuses once
  // stopping has reached the plugins). From here on the callback owes an
  // answer, so a failure to send is reported through it.
  bool posted = poster_->post([this, in, argv = std::move(argv), cb, user_data]() mutable {
    const bool stopped = stopped_ || commands_ == nullptr;
    if ((stopped || !sendCommand(*in, std::move(argv), cb, user_data)) && cb != nullptr) {
      guarded(in, "reply callback", [&] { cb(user_data, stopped ? EVH_ERR_CANCELLED : EVH_ERR_UNAVAILABLE, nullptr); });
    }
  });
  return posted ? EVH_OK : EVH_ERR_CANCELLED;
}

bool Server::sendCommand(plugin::Instance& from, std::vector<std::string> argv, evh_reply_cb cb, void* user_data) {
  plugin::Instance* in = &from;
  std::string name = argv[0];
  return commands_->send(argv, [in, name, cb, user_data](evh_status status, const redisReply* reply) {
    if (cb == nullptr) {
      if (status != EVH_OK) {
        in->logger().warn("redis {}: no reply ({})", name,
                          status == EVH_ERR_CANCELLED ? "cancelled at shutdown" : "connection lost");
      } else if (reply->type == REDIS_REPLY_ERROR) {
        in->logger().warn("redis {}: {}", name, std::string_view(reply->str, reply->len));
      }
      return;
    }
    redis::ReplyView view(reply);
    guarded(in, "reply callback", [&] { cb(user_data, status, view.root()); });
  });
}

evh_status Server::post(plugin::Instance& from, void (*fn)(void*), void* user_data) {
  plugin::Instance* in = &from;
  return poster_->post([in, fn, user_data] { guarded(in, "posted function", [&] { fn(user_data); }); })
             ? EVH_OK
             : EVH_ERR_CANCELLED;
}

bool Server::check(const std::string& key, std::function<void(std::optional<bool>)> cb) {
  if (commands_ == nullptr) {
    return false;
  }
  return commands_->send({"EXISTS", key}, [cb = std::move(cb)](evh_status status, const redisReply* r) {
    if (status != EVH_OK || r->type != REDIS_REPLY_INTEGER) {
      cb(std::nullopt);
      return;
    }
    cb(r->integer > 0);
  });
}

bool Server::mark(const std::string& key, uint64_t ttl_ms, std::function<void(bool)> cb) {
  if (commands_ == nullptr) {
    return false;
  }
  return commands_->send({"SET", key, "1", "PX", std::to_string(ttl_ms)},
                         [cb = std::move(cb)](evh_status status, const redisReply* r) {
                           cb(status == EVH_OK && r->type != REDIS_REPLY_ERROR);
                         });
}

}  // namespace evh::app
