// Delivery of routed events to plugins: the delivery state and what follows
// each outcome (retry, dead letter, done), all owned by the loop thread.
#include "dispatch/dispatcher.h"

#include "common/log.h"
#include "dispatch/retry.h"
#include "plugin/status.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>

namespace evh::dispatch {
namespace {

uint64_t monoMs() { return uv_hrtime() / 1000000; }

// One outcome per call counted (see runAttempt): chosen once, counted for
// the plugin and, when its route counts by event type, for the type.
void countOutcome(const PluginCounters& c, const route::TypeSeries* t, evh_status status, const char* error_name) {
  using Plugin = ops::Counter PluginCounters::*;
  using Type = ops::Counter route::TypeSeries::*;
  std::pair<Plugin, Type> which{&PluginCounters::errors, &route::TypeSeries::error};
  if (status == EVH_OK) {
    which = {&PluginCounters::ok, &route::TypeSeries::ok};
  } else if (status == EVH_REJECT) {
    which = {&PluginCounters::rejected, &route::TypeSeries::reject};
  } else if (std::strcmp(error_name, "timeout") == 0) {
    which = {&PluginCounters::timeouts, &route::TypeSeries::timeout};
  } else if (status == EVH_RETRY && std::strcmp(error_name, "stuck") != 0) {
    which = {&PluginCounters::retry, &route::TypeSeries::retry};
  }
  (c.*which.first).inc();
  if (t != nullptr) {
    (t->*which.second).inc();
  }
}

}  // namespace

Dispatcher::Dispatcher(uv_loop_t* loop, Poster& poster, WorkerPool& pool, const std::vector<PluginSetup>& plugins,
                       Options options)
    : loop_(loop),
      own_stats_(options.stats == nullptr ? std::make_unique<ops::Registry>() : nullptr),
      stats_(options.stats != nullptr ? *options.stats : *own_stats_),
      poster_(poster),
      pool_(pool),
      options_(std::move(options)),
      alive_(std::make_shared<std::atomic<bool>>(true)),
      sink_(poster, {options_.dead_letter_plugin != nullptr, options_.fallback_file, options_.max_dead_letter_pending},
            *this, stats_),
      idempotency_(options_.idempotency, options_.idempotency_prefix),
      retries_(loop) {
  for (const auto& setup : plugins) {
    join(setup);
  }
  if (options_.dead_letter_plugin != nullptr) {
    // One queue and one concurrency limit per instance, whichever path
    // calls it: the dlq plugin may hold state that is not thread-safe. Not
    // routed to: no breaker, dead_letter.timeout_ms.
    auto routed = plugins_.find(options_.dead_letter_plugin);
    dl_state_ = routed != plugins_.end() ? &routed->second
                                         : &addPlugin(*options_.dead_letter_plugin, options_.dead_letter_timeout_ms);
  }
}

PluginState& Dispatcher::addPlugin(plugin::Instance& p, uint32_t timeout_ms) {
  return plugins_
      .emplace(std::piecewise_construct, std::forward_as_tuple(&p),
               std::forward_as_tuple(p, timeout_ms, stats_, pool_, poster_, static_cast<LaneEvents&>(*this), alive_))
      .first->second;
}

void Dispatcher::join(const PluginSetup& setup) {
  PluginState& ps = addPlugin(*setup.plugin, setup.timeout_ms);
  ps.gate = std::make_unique<BreakerGate>(loop_, setup.breaker, setup.plugin->logger(), ps.counters,
                                          static_cast<GateEvents&>(*this), options_.on_breaker_change);
}

bool Dispatcher::forget(const plugin::Instance* p) {
  auto it = plugins_.find(p);
  if (it == plugins_.end()) {
    return true;
  }
  PluginState& ps = it->second;
  if (&ps == dl_state_ || ps.lane.running() > 0 || ps.lane.queued() > 0 || (ps.gate && ps.gate->waiting() > 0)) {
    return false;
  }
  plugins_.erase(it);
  return true;
}

Dispatcher::~Dispatcher() {
  alive_->store(false);
  // What is left was abandoned at the shutdown deadline (and written to the
  // fallback file then); the plugins are shut down by now.
  live_.freeAll();
  sink_.close();  // writes what is queued, joins its thread
}

uint64_t Dispatcher::loopWallMs() {
  const uint64_t mono = uv_now(loop_);
  if (mono != wall_at_mono_) {
    wall_at_mono_ = mono;
    wall_ms_ = wallMs();
  }
  return wall_ms_;
}

bool Dispatcher::dispatch(event::Event&& event, const route::Targets& targets, std::function<void()> on_done,
                          bool force, std::shared_ptr<const void> routed_by, const ops::Histogram* latency) {
  if (targets.empty()) {
    if (on_done) {
      on_done();
    }
    return true;
  }
  if (in_flight_ >= options_.max_in_flight && !force) {
    return false;
  }
  auto* f = new InFlight{{}, std::move(event), static_cast<uint32_t>(targets.size()), std::move(on_done), 0, false, {}};
  f->patient = force;
  f->routed_by = std::move(routed_by);
  f->latency = latency;
  ++in_flight_;
  if (options_.trace_events) {
    log::host().info("event stage=routed eventId={} correlationId={} eventType={} plugins={}", f->event.eventId(),
                     f->event.correlationId(), f->event.eventType(), targets.size());
  }
  // Create every delivery before starting any: an inline plugin finishing
  // at once must not free the event while later targets still need it.
  // (Nearly every route has a few plugins: no heap for their list.)
  constexpr size_t kInline = 8;
  Delivery* inline_list[kInline];
  std::vector<Delivery*> heap_list;
  Delivery** deliveries = inline_list;
  if (targets.size() > kInline) {
    heap_list.resize(targets.size());
    deliveries = heap_list.data();
  }
  size_t n = 0;
  for (const auto& t : targets) {
    auto* d = new Delivery();
    d->owner = this;
    d->ps = &plugins_.at(t.plugin);
    d->inflight = f;
    d->retry = t.retry;
    d->idempotency_ttl_ms = idempotency_.enabled() ? t.idempotency_ttl_ms : 0;
    d->timeout_ms = d->ps->timeout_ms;
    d->type_series = t.series;
    live_.add(d);
    deliveries[n++] = d;
  }
  for (size_t i = 0; i < n; ++i) {
    startDelivery(deliveries[i]);
  }
  return true;
}

void Dispatcher::deadLetter(DeadLetterEntry entry, std::function<void()> done, bool from_stream) {
  ++dead_lettered_;
  sink_.submit(std::move(entry), std::move(done), from_stream);
}

// ---------------------------------------------------------------- attempts

const std::string& Dispatcher::idempotencyKey(Delivery* d) const {
  if (d->idempotency_key.empty()) {
    d->idempotency_key = idempotency_.key(d->ps->plugin->name(), d->inflight->event.eventId());
  }
  return d->idempotency_key;
}

void Dispatcher::startDelivery(Delivery* d) {
  PluginState& ps = *d->ps;
  if (d->idempotency_ttl_ms > 0 && !d->idempotency_checked && !ps.plugin->ownIdempotency()) {
    // Handled already (by any instance, within the TTL)? Then not again.
    // (A plugin that keeps its marks itself checks in its own call.)
    d->idempotency_checked = true;
    d->wait = Delivery::Wait::Idempotency;
    const bool sent = idempotency_.check(idempotencyKey(d), [this, d](bool seen) {
      if (abandoned_) {
        return;  // the deadline wrote it to the fallback file
      }
      d->wait = Delivery::Wait::None;
      if (seen) {
        d->ps->counters.duplicates.inc();
        d->ps->plugin->logger().debug("eventId={} already handled: skipped (idempotency)",
                                      d->inflight->event.eventId());
        completeDelivery(d);
        return;
      }
      startDelivery(d);  // unseen, or Redis could not say: handle (at least once)
    });
    if (sent) {
      return;
    }
    d->wait = Delivery::Wait::None;
  }
  if (ps.gate && !ps.gate->pass(d)) {
    if (draining_) {
      d->last_error = "circuit breaker open at shutdown";
      d->last_error_name = "circuit_open";
      deadLetterDelivery(d, "shutdown");
      return;
    }
    if (ps.gate->wait(d, d->inflight->patient, d->last_error) == BreakerGate::Queued::Full) {
      d->last_error_name = "circuit_open";
      deadLetterDelivery(d, "circuit_open");
    }
    return;
  }
  runAttempt(d);
}

void Dispatcher::runAttempt(Delivery* d) {
  ++d->attempt;
  d->last_ms = loopWallMs();
  if (d->first_ms == 0) {
    d->first_ms = d->last_ms;
  }
  PluginState& ps = *d->ps;
  ps.counters.calls.inc();  // each call counted ends in one outcome (onOutcome)
  if (d->type_series != nullptr) {
    d->type_series->calls.inc();
  }
  d->attempt_ns = uv_hrtime();
  if (ps.plugin->blocking() && ps.lane.refusing()) {
    // Queued behind calls that may never return, it would wait for ever:
    // a failure of this plugin now (retried later, counted by its breaker).
    ps.counters.refused.inc();
    onOutcome(d, EVH_RETRY, ps.lane.refusal(), "stuck");
    return;
  }
  auto* a = new Attempt(*this, poster_, alive_, d, options_.dead_letter_channel,
                        d->idempotency_ttl_ms > 0 ? std::string(idempotencyKey(d)) : std::string());
  live_.add(a);
  if (options_.trace_events && d->inflight != nullptr) {
    log::host().info("event stage=dispatched eventId={} correlationId={} plugin={} attempt={}",
                     d->inflight->event.eventId(), d->inflight->event.correlationId(), ps.plugin->name(), d->attempt);
  }
  // For a blocking plugin the timer may fire while the call still waits for
  // a worker: timedOut() then looks again a timeout later (the wait is not
  // the plugin's running time, and a plugin stuck on its own workers has
  // its calls refused instead).
  if (d->timeout_ms > 0) {
    a->armTimeout(loop_, d->timeout_ms);
  }
  if (ps.plugin->blocking()) {
    ps.lane.enqueue(a);
  } else {
    runInline(a);
  }
}

void Dispatcher::runInline(Attempt* a) {
  evh_status s;
  {
    // Named for the watchdog, should this call never return.
    const CallSite site{a->ps->plugin->name(), "handle", &a->view, a->ps->plugin->library().desc().name};
    CallScope scope(*options_.current_call, site);
    s = a->callPlugin();
  }
  afterHandle(a, s);
}

void Dispatcher::returned(Attempt* a, evh_status status) {
  a->ps->lane.onReturned(a);
  afterHandle(a, status);
  checkIdle();
}

void Dispatcher::afterHandle(Attempt* a, evh_status status) {
  if (status == EVH_PENDING) {
    a->ps->counters.pending.inc();
  }
  if (a->afterReturn(status)) {
    finishAttempt(a, status);
  }
}

void Dispatcher::releaseAttempt(Attempt* a) {
  live_.remove(a);
  InFlight* f = a->inflight;
  delete a;
  if (f != nullptr) {
    --f->attempts;
    releaseEvent(f);
  }
}

void Dispatcher::finishAttempt(Attempt* a, evh_status status) {
  Delivery* d = a->delivery;
  const bool given_up = a->given_up.load();
  std::string error = a->takeError();
  PluginState& ps = *a->ps;
  releaseAttempt(a);
  if (d == nullptr) {
    if (!given_up || status != EVH_RETRY || !error.empty()) {
      ps.plugin->logger().info("a call that had timed out answered {} at last; ignored", plugin::statusText(status));
    }
    return;
  }
  const char* name = status == EVH_OK ? "" : plugin::statusText(status);
  if (status != EVH_OK && status != EVH_RETRY && status != EVH_REJECT) {
    error = "handle() answered an unknown status " + std::to_string(status) + (error.empty() ? "" : ": " + error);
  }
  onOutcome(d, status, std::move(error), name);
}

void Dispatcher::timedOut(Attempt* a) {
  Delivery* d = a->delivery;
  if (d == nullptr || abandoned_) {
    return;
  }
  PluginState& ps = *a->ps;
  uint64_t ran_ms = 0;
  if (ps.plugin->blocking()) {
    // Still waiting for a worker (other plugins' calls hold them): not
    // this plugin's time. Look again once it could have run for timeout_ms.
    const uint64_t started = ps.lane.startedMs(a);
    ran_ms = started == 0 ? 0 : monoMs() - started;
    if (ran_ms < d->timeout_ms) {
      a->armTimeout(loop_, d->timeout_ms - ran_ms);
      return;
    }
  }
  const Attempt::GiveUp gave = a->giveUp();
  if (gave == Attempt::GiveUp::Lost) {
    return;  // its outcome is on its way to the loop
  }
  a->timeout.close();
  if (gave == Attempt::GiveUp::Idle) {
    // handle() answered PENDING: nothing reads the event any more, and a
    // late complete() finds the call over.
    releaseAttempt(a);
  } else if (ps.plugin->blocking() && ps.lane.noteStuck(a, ran_ms)) {
    refuseQueued(ps);
  }
  // Otherwise the attempt stays allocated (with the event it reads) until
  // handle() returns on its worker, and that outcome is then ignored.
  onOutcome(d, EVH_RETRY, "timed out after " + std::to_string(d->timeout_ms) + " ms", "timeout");
}

// Calls queued behind stuck ones could only start when those return: fail
// them now, as the next calls would be.
void Dispatcher::refuseQueued(PluginState& ps) {
  const std::string why = ps.lane.refusal();
  for (Attempt* a : ps.lane.takeQueued()) {
    Delivery* d = a->delivery;
    a->abandon(plugin::CallEnd::Refused);
    ps.counters.refused.inc();
    releaseAttempt(a);
    onOutcome(d, EVH_RETRY, why, "stuck");
  }
}

// ---------------------------------------------------------------- outcomes

void Dispatcher::onOutcome(Delivery* d, evh_status status, std::string error, const char* error_name) {
  if (abandoned_) {
    return;  // the deadline passed: everything unfinished went to the fallback file
  }
  PluginState& ps = *d->ps;
  d->last_ms = loopWallMs();
  d->last_error = std::move(error);
  d->last_error_name = error_name;
  countOutcome(ps.counters, d->type_series, status, error_name);
  ps.counters.duration.observe(static_cast<int64_t>((uv_hrtime() - d->attempt_ns) / 1000));
  if (d->entry) {
    onDeadLetterOutcome(d, status);
    return;
  }
  const event::Event& ev = d->inflight->event;
  if (options_.trace_events) {
    log::host().info("event stage=done eventId={} correlationId={} plugin={} attempt={} status={}", ev.eventId(),
                     ev.correlationId(), ps.plugin->name(), d->attempt, plugin::statusText(status));
  }
  switch (status) {
    case EVH_OK:
      ps.gate->success(d->trial);
      if (d->idempotency_ttl_ms > 0 && !ps.plugin->ownIdempotency()) {  // else written with its effects
        d->wait = Delivery::Wait::Idempotency;
        idempotency_.mark(idempotencyKey(d), d->idempotency_ttl_ms, ps.plugin->logger(), ev.eventId(), [this, d] {
          if (!abandoned_) {
            completeDelivery(d);
          }
        });
      } else {
        completeDelivery(d);
      }
      break;
    case EVH_REJECT:
      // The plugin worked; the event was wrong: not a breaker failure.
      ps.gate->success(d->trial);
      deadLetterDelivery(d, "rejected");
      break;
    default: {
      ps.gate->failure(d->trial);
      const uint32_t max_attempts = d->maxAttempts();
      if (d->attempt < max_attempts && !draining_ && !abandoned_) {
        scheduleRetry(d);
      } else {
        deadLetterDelivery(d, draining_ && d->attempt < max_attempts ? "shutdown" : "exhausted");
      }
      break;
    }
  }
  ps.gate->release();
}

// A dead-letter entry given to the dead-letter plugin.
void Dispatcher::onDeadLetterOutcome(Delivery* d, evh_status status) {
  live_.remove(d);
  std::unique_ptr<Delivery> owned(d);
  sink_.pluginOutcome(*d->entry, status == EVH_OK, d->ps->plugin->name(), d->last_error_name, d->last_error,
                      std::move(d->done));
}

void Dispatcher::scheduleRetry(Delivery* d) {
  PluginState& ps = *d->ps;
  const uint64_t delay = retries_.delayMs(*d);
  ps.counters.retried.inc();
  const event::Event& ev = d->inflight->event;
  ps.plugin->logger().warn("attempt {}/{} failed for eventType={} eventId={} correlationId={}: {}; retrying in {} ms",
                           d->attempt, d->maxAttempts(), ev.eventType(), ev.eventId(), ev.correlationId(),
                           d->last_error.empty() ? d->last_error_name : d->last_error, delay);
  retries_.schedule(d, delay, [](Delivery* del) { del->owner->startDelivery(del); });
}

void Dispatcher::expired(Delivery* d, std::string why) {
  d->last_error = std::move(why);
  d->last_error_name = "circuit_open";
  deadLetterDelivery(d, "circuit_open");
}

void Dispatcher::deadLetterDelivery(Delivery* d, const char* reason) {
  PluginState& ps = *d->ps;
  const event::Event& ev = d->inflight->event;
  const DeadLetterInfo info = DeadLetterInfo::because(reason)
                                  .withError(*d->last_error_name != '\0' ? d->last_error_name : reason, d->last_error)
                                  .withPlugin(ps.plugin->name())
                                  .withAttempts(d->attempt, d->first_ms, d->last_ms);
  ps.counters.dead_lettered.inc();
  ++dead_lettered_;
  ps.plugin->logger().warn("dead-lettered eventType={} eventId={} correlationId={} reason={} attempts={}: {}",
                           ev.eventType(), ev.eventId(), ev.correlationId(), reason, d->attempt,
                           d->last_error.empty() ? "(no message)" : d->last_error);
  d->wait = Delivery::Wait::DeadLetter;
  sink_.submit(
      makeEntry(info, ev), [this, d] { completeDelivery(d); }, d->inflight->patient);
}

void Dispatcher::toPlugin(std::shared_ptr<const DeadLetterEntry> entry, std::function<void()> stored,
                          bool from_stream) {
  auto* dd = new Delivery();
  dd->owner = this;
  dd->ps = dl_state_;
  dd->entry = std::move(entry);
  dd->timeout_ms = options_.dead_letter_timeout_ms;
  dd->done = std::move(stored);
  dd->from_stream = from_stream;
  live_.add(dd);
  runAttempt(dd);
}

void Dispatcher::completeDelivery(Delivery* d) {
  live_.remove(d);
  InFlight* f = d->inflight;
  delete d;
  if (--f->remaining == 0) {
    const int64_t sent_ms = f->event.timestampMs();
    if (f->latency != nullptr && sent_ms > 0) {
      // Wall clock against the publisher's: a clock behind ours counts as 0.
      f->latency->observe(std::max<int64_t>(0, static_cast<int64_t>(loopWallMs()) - sent_ms));
    }
    std::function<void()> done = std::move(f->on_done);
    --in_flight_;
    releaseEvent(f);
    if (done) {
      done();
    }
  }
  checkIdle();
}

PluginCounts Dispatcher::counters(const plugin::Instance* p) const { return plugins_.at(p).counters.snapshot(); }

bool Dispatcher::breakerOpen(const plugin::Instance* p) const {
  auto it = plugins_.find(p);
  return it != plugins_.end() && it->second.gate && it->second.gate->open();
}

}  // namespace evh::dispatch
