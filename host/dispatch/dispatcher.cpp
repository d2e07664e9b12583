// Delivery of routed events to plugins: attempts, retries, breakers, timeouts
// and dead letters, all owned by the loop thread.
#include "dispatch/dispatcher.h"

#include "common/log.h"
#include "common/recycled.h"
#include "dispatch/retry.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <mutex>
#include <unordered_set>

namespace evh::dispatch {
namespace {

config::RetryPolicy singleAttempt() {
  config::RetryPolicy p;
  p.max_attempts = 1;
  return p;
}

}  // namespace

// Every event between decode and the end of its last delivery.
struct Dispatcher::InFlight : Recycled<Dispatcher::InFlight> {
  event::Event event;
  uint32_t remaining = 0;         // deliveries not finished
  std::function<void()> on_done;  // when the last one finishes
  // Attempts that still hold a view of the event: a handler a timeout gave
  // up on may still be reading it on a worker. Freed when both are zero.
  uint32_t attempts = 0;
  bool patient = false;  // from a source that can wait (a stream): never circuit_open
  // What the event was routed by (the runtime owning what its targets point
  // at): kept until the event is finished, whatever replaced it.
  std::shared_ptr<const void> routed_by;
};

// One event for one plugin, over all its attempts -- or one dead-letter
// entry for the dead-letter plugin (then `entry` is set).
struct Dispatcher::Delivery : Recycled<Dispatcher::Delivery> {
  enum class Wait { None, Retry, Breaker, DeadLetter, Idempotency };

  PluginState* ps = nullptr;
  InFlight* inflight = nullptr;
  // The route's policy, a copy: the event's routes may be replaced meanwhile
  // (a dead-letter delivery: a single attempt).
  config::RetryPolicy retry = singleAttempt();
  uint64_t idempotency_ttl_ms = 0;  // 0: off
  bool idempotency_checked = false;
  uint32_t attempt = 0;
  bool trial = false;  // granted as a half-open trial call
  uint64_t first_ms = 0;
  uint64_t last_ms = 0;
  std::string last_error;
  const char* last_error_name = "";
  Wait wait = Wait::None;
  uint64_t waiting_since = 0;  // loop ms, while waiting for the breaker
  UvHandle<uv_timer_t> retry_timer;
  std::shared_ptr<const DeadLetterEntry> entry;  // dead-letter deliveries only
  uint32_t timeout_ms = 0;                       // per attempt; 0: none
  std::function<void()> done;                    // dead-letter deliveries only
  bool from_stream = false;                      // dead-letter deliveries: done acks a stream entry
  Dispatcher* owner = nullptr;
  Delivery* prev = nullptr;
  Delivery* next = nullptr;
};

// The host side of one handle() call. Its state moves
//   Running -> Returned (handle answered PENDING) -> Done (complete)
//   Running -> CompletedEarly (complete ran before handle returned) -> Done
// so that complete() may come from any thread at any time, exactly once.
class Dispatcher::Attempt final : public evh_call, public Recycled<Dispatcher::Attempt> {
 public:
  enum State : int { Running, Returned, CompletedEarly, Done };

  Attempt(Dispatcher* d, Delivery* del)
      : dispatcher(d), delivery(del), ps(del->ps), inflight(del->inflight), entry(del->entry), alive(d->alive_) {
    if (inflight != nullptr) {
      ++inflight->attempts;
    }
    if (del->entry) {
      static constexpr char kType[] = "DEAD_LETTER";
      static constexpr char kChannel[] = "jollyjet:events:dlq";
      auto s = [](std::string_view v) { return evh_str{v.data(), v.size()}; };
      view.struct_size = sizeof(evh_event);
      view.attempt = 1;
      view.max_attempts = 1;
      view.channel = s(kChannel);
      view.redis_channel = s("");
      view.event_type = s(kType);
      view.event_id = s(del->entry->id);
      view.correlation_id = s(del->entry->correlation_id);
      view.timestamp = s("");
      view.timestamp_ms = static_cast<int64_t>(wallMs());
      view.payload = view.envelope = view.raw = s(del->entry->json);
      view.delivery_id = s("");
      view.idempotency_key = s("");
    } else {
      del->inflight->event.fillView(view, del->attempt, del->retry.max_attempts);
      if (del->idempotency_ttl_ms > 0) {
        idempotency_key = d->idempotencyKey(del);
        view.idempotency_key = evh_str{idempotency_key.data(), idempotency_key.size()};
        view.idempotency_ttl_ms = static_cast<int64_t>(del->idempotency_ttl_ms);
      }
    }
  }

  void setError(std::string_view msg) override {
    std::lock_guard<std::mutex> lock(mutex);
    error.assign(msg);
  }

  evh_status complete(evh_status status, std::string_view msg) override {
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (state == Done || state == CompletedEarly) {
        return EVH_ERR_STATE;
      }
      completed_status = status;
      if (!msg.empty()) {
        error.assign(msg);
      }
      if (state == Running) {
        state = CompletedEarly;  // afterHandle finishes it
        return EVH_OK;
      }
      state = Done;
    }
    // Returned: finish on the loop. The alive flag drops completions that
    // arrive after abandon() or the dispatcher's end.
    auto token = alive;
    Dispatcher* d = dispatcher;
    if (!d->poster_.post([token, d, this, status] {
          if (token->load()) {
            d->finishAttempt(this, status);
          }
        })) {
      return EVH_ERR_CANCELLED;
    }
    return EVH_OK;
  }

  std::string takeError() {
    std::lock_guard<std::mutex> lock(mutex);
    return std::move(error);
  }

  Dispatcher* dispatcher;
  Delivery* delivery;  // nullptr once a timeout gave up on this attempt
  PluginState* ps;
  // What `view` borrows from, held for as long as the attempt lives.
  InFlight* inflight;
  std::shared_ptr<const DeadLetterEntry> entry;
  std::string idempotency_key;        // what view.idempotency_key points at
  std::atomic<bool> given_up{false};  // a worker must not start it any more
  // Monotonic ms when a worker took it off its lane, 0 while it waits
  // there: a timeout measures the plugin's running time, not the wait for a
  // worker. Guarded by the lane's mutex.
  uint64_t started_ms = 0;
  evh_event view{};
  std::shared_ptr<std::atomic<bool>> alive;
  UvHandle<uv_timer_t> timeout;
  std::mutex mutex;
  State state = Running;
  bool returned = false;  // handle() has returned on its worker (guarded by mutex)
  bool stuck = false;     // timed out with handle() still running on its worker (guarded by mutex)
  evh_status completed_status = EVH_OK;
  std::string error;
  Attempt* prev = nullptr;  // Dispatcher's list of unfinished attempts
  Attempt* next = nullptr;
};

namespace {

uint64_t monoMs() { return uv_hrtime() / 1000000; }

const char* statusName(evh_status s) {
  switch (s) {
    case EVH_OK:
      return "ok";
    case EVH_RETRY:
      return "retry";
    case EVH_REJECT:
      return "rejected";
    case EVH_PENDING:
      return "pending";
    default:
      return "invalid-status";
  }
}

// The one place a plugin's handle() is called. A C++ plugin written without
// the SDK wrapper may still throw through the C boundary; catch it here so
// that it costs a retry, not the host.
evh_status callPlugin(plugin::Instance& p, const evh_event& view, evh_call* call) {
  try {
    return p.handle(view, call);
  } catch (const std::exception& e) {
    call->setError(std::string("exception thrown through the C ABI: ") + e.what());
  } catch (...) {
    call->setError("unknown exception thrown through the C ABI");
  }
  return EVH_RETRY;
}

template <class T>
void linkInto(T*& head, T* x) {
  x->prev = nullptr;
  x->next = head;
  if (head != nullptr) {
    head->prev = x;
  }
  head = x;
}

template <class T>
void unlinkFrom(T*& head, T* x) {
  if (x->prev != nullptr) {
    x->prev->next = x->next;
  } else {
    head = x->next;
  }
  if (x->next != nullptr) {
    x->next->prev = x->prev;
  }
  x->prev = x->next = nullptr;
}

uint32_t concurrencyLimit(const plugin::Instance& p, size_t pool) {
  uint32_t limit = p.library().desc().max_concurrency;
  if (limit == 0 || limit > pool) {
    limit = static_cast<uint32_t>(pool);
  }
  return limit == 0 ? 1 : limit;
}

}  // namespace

Dispatcher::Dispatcher(uv_loop_t* loop, Poster& poster, WorkerPool& pool, const std::vector<PluginSetup>& plugins,
                       Options options)
    : loop_(loop),
      poster_(poster),
      pool_(pool),
      options_(std::move(options)),
      fallback_(std::make_unique<FallbackWriter>(options_.fallback_file, poster)),
      rng_(std::random_device{}()),
      alive_(std::make_shared<std::atomic<bool>>(true)) {
  for (const auto& setup : plugins) {
    PluginState ps;
    ps.plugin = setup.plugin;
    ps.limit = concurrencyLimit(*setup.plugin, pool_.size());
    ps.timeout_ms = setup.timeout_ms;
    ps.breaker = std::make_unique<CircuitBreaker>(setup.breaker);
    auto it = plugins_.emplace(setup.plugin, std::move(ps)).first;
    it->second.breaker_timer = makeUvHandle<uv_timer_t>(loop_, uv_timer_init);
    it->second.breaker_timer->data = &it->second;
  }
  if (options_.dead_letter_plugin != nullptr) {
    auto routed = plugins_.find(options_.dead_letter_plugin);
    if (routed != plugins_.end()) {
      // One queue and one concurrency limit per instance, whichever path
      // calls it: the dlq plugin may hold state that is not thread-safe.
      dl_state_ = &routed->second;
    } else {
      dead_letter_state_.plugin = options_.dead_letter_plugin;
      dead_letter_state_.limit = concurrencyLimit(*options_.dead_letter_plugin, pool_.size());
      dead_letter_state_.timeout_ms = options_.dead_letter_timeout_ms;
      dl_state_ = &dead_letter_state_;
    }
  }
}

Dispatcher::~Dispatcher() {
  alive_->store(false);
  // What is left was abandoned at the shutdown deadline (and written to the
  // fallback file then); the plugins are shut down by now.
  while (attempts_head_ != nullptr) {
    Attempt* a = attempts_head_;
    unlinkFrom(attempts_head_, a);
    InFlight* f = a->inflight;
    delete a;
    if (f != nullptr) {
      --f->attempts;
      releaseEvent(f);  // finished events kept only for a given-up attempt
    }
  }
  while (live_head_ != nullptr) {
    Delivery* d = live_head_;
    unlinkFrom(live_head_, d);
    if (d->inflight != nullptr && --d->inflight->remaining == 0) {
      delete d->inflight;
    }
    delete d;
  }
  fallback_.reset();  // writes what is queued, joins its thread
}

void Dispatcher::releaseEvent(InFlight* f) {
  if (f->remaining == 0 && f->attempts == 0) {
    delete f;
  }
}

uint64_t Dispatcher::loopWallMs() {
  const uint64_t mono = uv_now(loop_);
  if (mono != wall_at_mono_) {
    wall_at_mono_ = mono;
    wall_ms_ = wallMs();
  }
  return wall_ms_;
}

void Dispatcher::link(Delivery* d) { linkInto(live_head_, d); }
void Dispatcher::unlink(Delivery* d) { unlinkFrom(live_head_, d); }

bool Dispatcher::dispatch(event::Event&& event, const route::Targets& targets, std::function<void()> on_done,
                          bool force, std::shared_ptr<const void> routed_by) {
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
    d->idempotency_ttl_ms = options_.idempotency != nullptr ? t.idempotency_ttl_ms : 0;
    d->timeout_ms = d->ps->timeout_ms;
    link(d);
    deliveries[n++] = d;
  }
  for (size_t i = 0; i < n; ++i) {
    startDelivery(deliveries[i]);
  }
  return true;
}

void Dispatcher::deadLetter(DeadLetterEntry entry, std::function<void()> done, bool from_stream) {
  ++dead_lettered_;
  submitDeadLetter(std::move(entry), std::move(done), from_stream);
}

// ---------------------------------------------------------------- attempts

std::string Dispatcher::idempotencyKey(const Delivery* d) const {
  return options_.idempotency_prefix + d->ps->plugin->name() + ":" + std::string(d->inflight->event.eventId());
}

void Dispatcher::startDelivery(Delivery* d) {
  PluginState& ps = *d->ps;
  if (d->idempotency_ttl_ms > 0 && !d->idempotency_checked) {
    // Handled already (by any instance, within the TTL)? Then not again.
    d->idempotency_checked = true;
    d->wait = Delivery::Wait::Idempotency;
    const bool sent = options_.idempotency->check(idempotencyKey(d), [this, d](std::optional<bool> seen) {
      if (abandoned_) {
        return;  // the deadline wrote it to the fallback file
      }
      d->wait = Delivery::Wait::None;
      if (seen.value_or(false)) {
        ++d->ps->counters.duplicates;
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
  if (ps.breaker) {
    // Behind others already waiting, or refused by the breaker: wait.
    if (!ps.breaker_waiting.empty() || !ps.breaker->tryAcquire(uv_now(loop_))) {
      noteBreaker(ps);
      enqueueForBreaker(d);
      return;
    }
    d->trial = ps.breaker->halfOpen();
    noteBreaker(ps);
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
  if (ps.plugin->blocking() && refusing(ps)) {
    // Queued behind calls that may never return, it would wait for ever:
    // a failure of this plugin now (retried later, counted by its breaker).
    ++ps.counters.refused;
    onOutcome(d, EVH_RETRY, refusal(ps), "stuck");
    return;
  }
  auto* a = new Attempt(this, d);
  linkInto(attempts_head_, a);
  ++live_attempts_;
  ++ps.counters.calls;
  if (options_.trace_events && d->inflight != nullptr) {
    log::host().info("event stage=dispatched eventId={} correlationId={} plugin={} attempt={}",
                     d->inflight->event.eventId(), d->inflight->event.correlationId(), ps.plugin->name(), d->attempt);
  }
  // For a blocking plugin the timer may fire while the call still waits for
  // a worker: onTimeout then looks again a timeout later (the wait is not
  // the plugin's running time, and a plugin stuck on its own workers has
  // its calls refused instead).
  if (d->timeout_ms > 0) {
    a->timeout = makeUvHandle<uv_timer_t>(loop_, uv_timer_init);
    a->timeout->data = a;
    uv_timer_start(
        a->timeout.get(),
        [](uv_timer_t* t) {
          auto* at = static_cast<Attempt*>(t->data);
          at->dispatcher->onTimeout(at);
        },
        d->timeout_ms, 0);
  }
  if (ps.plugin->blocking()) {
    enqueueBlocking(a);
  } else {
    runInline(a);
  }
}

void Dispatcher::runInline(Attempt* a) {
  evh_status s;
  {
    // Named for the watchdog, should this call never return.
    const CallSite site{a->ps->plugin->name(), "handle", &a->view};
    CallScope scope(*options_.current_call, site);
    s = callPlugin(*a->ps->plugin, a->view, a);
  }
  afterHandle(a, s);
}

void Dispatcher::enqueueBlocking(Attempt* a) {
  PluginState& ps = *a->ps;
  ++ps.running;
  bool start_runner = false;
  {
    std::lock_guard<std::mutex> lock(ps.lane->mutex);
    ps.lane->queue.push_back(a);
    if (ps.lane->runners < ps.limit) {
      ++ps.lane->runners;
      start_runner = true;
    }
  }
  if (start_runner) {
    submitRunner(ps);
  }
}

// One runner job: takes the lane's calls one after the other, posting each
// outcome to the loop, until the lane is empty -- or after kTurn calls, when
// it queues itself again behind other plugins' jobs (fairness).
void Dispatcher::submitRunner(PluginState& ps) {
  pool_.submit([this, state = &ps, lane = ps.lane, token = alive_, on_worker = ps.on_worker] {
    constexpr int kTurn = 64;
    for (int turn = 0;; ++turn) {
      Attempt* a = nullptr;
      {
        std::lock_guard<std::mutex> lock(lane->mutex);
        if (lane->queue.empty() || !token->load()) {
          --lane->runners;
          return;
        }
        if (turn == kTurn) {
          break;  // the lane keeps this runner: submitted again below
        }
        a = lane->queue.front();
        lane->queue.pop_front();
        a->started_ms = monoMs();
      }
      // Count first, then look at the token: abandon() clears the token and
      // then reads the count, so either it sees this call as running or this
      // call sees the token cleared and never enters the plugin. An attempt a
      // timeout gave up on before it started is not started either.
      on_worker->fetch_add(1);
      evh_status s = EVH_RETRY;
      const bool skip = !token->load() || a->given_up.load();
      if (!skip) {
        s = callPlugin(*a->ps->plugin, a->view, a);
      }
      bool was_stuck = false;
      {
        std::lock_guard<std::mutex> lock(a->mutex);
        a->returned = true;
        was_stuck = a->stuck;
      }
      if (was_stuck) {
        pool_.unmarkStuck();  // this thread is back: the replacement may go
      }
      on_worker->fetch_sub(1);
      if (!token->load()) {
        continue;  // the loop dropped it: leave at the top
      }
      poster_.post([this, a, s, token] {
        if (!token->load()) {
          return;
        }
        --a->ps->running;
        if (a->stuck) {
          noteUnstuck(a);
        }
        afterHandle(a, s);
        checkIdle();
      });
    }
    submitRunner(*state);
  });
}

void Dispatcher::afterHandle(Attempt* a, evh_status status) {
  if (status == EVH_PENDING) {
    std::unique_lock<std::mutex> lock(a->mutex);
    ++a->ps->counters.pending;
    if (a->state == Attempt::CompletedEarly) {
      a->state = Attempt::Done;
      evh_status s = a->completed_status;
      lock.unlock();
      finishAttempt(a, s);
    } else {
      a->state = Attempt::Returned;  // complete() finishes it
    }
    return;
  }
  {
    std::lock_guard<std::mutex> lock(a->mutex);
    if (a->state == Attempt::CompletedEarly) {
      a->ps->plugin->logger().error(
          "plugin bug: complete() was called for a call whose handle() then answered {} (not PENDING); "
          "using the answer",
          statusName(status));
    }
    a->state = Attempt::Done;
  }
  finishAttempt(a, status);
}

void Dispatcher::releaseAttempt(Attempt* a) {
  unlinkFrom(attempts_head_, a);
  --live_attempts_;
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
      ps.plugin->logger().info("a call that had timed out answered {} at last; ignored", statusName(status));
    }
    return;
  }
  const char* name = status == EVH_OK       ? ""
                     : status == EVH_REJECT ? "reject"
                     : status == EVH_RETRY  ? "retry"
                                            : "invalid-status";
  if (status != EVH_OK && status != EVH_RETRY && status != EVH_REJECT) {
    error = "handle() answered an unknown status " + std::to_string(status) + (error.empty() ? "" : ": " + error);
  }
  onOutcome(d, status, std::move(error), name);
}

void Dispatcher::onTimeout(Attempt* a) {
  Delivery* d = a->delivery;
  if (d == nullptr || abandoned_) {
    return;
  }
  {
    // An outcome already on its way to the loop wins over the timeout.
    std::lock_guard<std::mutex> lock(a->mutex);
    if (a->state == Attempt::Done || a->state == Attempt::CompletedEarly) {
      return;
    }
  }
  PluginState& ps = *a->ps;
  uint64_t ran_ms = 0;
  if (ps.plugin->blocking()) {
    uint64_t started = 0;
    {
      std::lock_guard<std::mutex> lock(ps.lane->mutex);
      started = a->started_ms;
    }
    // Still waiting for a worker (other plugins' calls hold them): not
    // this plugin's time. Look again once it could have run for timeout_ms.
    const uint64_t now = monoMs();
    ran_ms = started == 0 ? 0 : now - started;
    if (ran_ms < d->timeout_ms) {
      uv_timer_start(
          a->timeout.get(),
          [](uv_timer_t* t) {
            auto* at = static_cast<Attempt*>(t->data);
            at->dispatcher->onTimeout(at);
          },
          d->timeout_ms - ran_ms, 0);
      return;
    }
  }
  a->timeout.close();
  a->delivery = nullptr;
  a->given_up.store(true);
  ++ps.counters.timeouts;
  if (ps.plugin->blocking()) {
    noteStuck(a, ran_ms, d->timeout_ms);
  }
  // The attempt stays allocated (with the event it reads) until its outcome
  // arrives -- a worker returns, or the plugin completes it -- and that
  // outcome is then ignored.
  onOutcome(d, EVH_RETRY, "timed out after " + std::to_string(d->timeout_ms) + " ms", "timeout");
}

bool Dispatcher::refusing(const PluginState& ps) const {
  return ps.stuck > 0 && (ps.stuck >= ps.limit || !pool_.canReplace());
}

std::string Dispatcher::refusal(const PluginState& ps) const {
  return "refused: " + std::to_string(ps.stuck) +
         " call(s) of this plugin are stuck in handle() past timeout_ms=" + std::to_string(ps.timeout_ms) +
         " (it may run " + std::to_string(ps.limit) + " at once)";
}

// A timed-out blocking call whose handle() has not returned holds its worker
// thread, maybe for ever: the pool starts another in its place (bounded),
// and the plugin's calls are refused once its stuck calls hold all it may
// run at once -- so one hung plugin cannot starve the others.
void Dispatcher::noteStuck(Attempt* a, uint64_t ran_ms, uint32_t timeout_ms) {
  PluginState& ps = *a->ps;
  bool replaced = false;
  {
    // Under the attempt's mutex, so that the worker's unmarkStuck() (after
    // handle() returns) can never come before this markStuck().
    std::lock_guard<std::mutex> lock(a->mutex);
    if (a->returned || a->state != Attempt::Running) {
      return;  // handle() returned (PENDING, or its outcome is on its way): no thread held
    }
    a->stuck = true;
    replaced = pool_.markStuck();
  }
  ++ps.stuck;
  ++ps.counters.stuck;
  const std::string_view id = a->inflight != nullptr ? a->inflight->event.eventId() : std::string_view(a->entry->id);
  if (replaced) {
    ps.plugin->logger().error(
        "worker thread stuck: handle() for eventId={} still running after {} ms (timeout_ms={}); started a "
        "replacement thread ({} stuck, at most {} replaced)",
        id, ran_ms, timeout_ms, pool_.stuck(), pool_.maxReplacements());
  } else {
    ps.plugin->logger().error(
        "worker thread stuck: handle() for eventId={} still running after {} ms (timeout_ms={}); no replacement: "
        "{} threads are stuck and at most {} are replaced, so the pool is short of threads until one returns",
        id, ran_ms, timeout_ms, pool_.stuck(), pool_.maxReplacements());
  }
  if (refusing(ps)) {
    if (!ps.refusing_logged) {
      ps.refusing_logged = true;
      ps.plugin->logger().error(
          "{} call(s) stuck (it may run {} at once{}): its further calls are refused (error "
          "stuck) until one returns",
          ps.stuck, ps.limit, pool_.canReplace() ? "" : ", and the pool replaces no more");
    }
    if (ps.stuck >= ps.limit) {
      refuseQueued(ps);
    }
  }
}

void Dispatcher::noteUnstuck(Attempt* a) {
  PluginState& ps = *a->ps;
  --ps.stuck;
  uint64_t started = 0;
  {
    std::lock_guard<std::mutex> lock(ps.lane->mutex);
    started = a->started_ms;
  }
  ps.plugin->logger().warn("a stuck handle() returned after {} ms; its worker thread is back ({} call(s) still stuck)",
                           monoMs() - started, ps.stuck);
  if (ps.refusing_logged && !refusing(ps)) {
    ps.refusing_logged = false;
    ps.plugin->logger().info("calls are accepted again");
  }
}

// Calls queued behind stuck ones could only start when those return: fail
// them now, as the next calls would be.
void Dispatcher::refuseQueued(PluginState& ps) {
  std::deque<Attempt*> queued;
  {
    std::lock_guard<std::mutex> lock(ps.lane->mutex);
    queued.swap(ps.lane->queue);
  }
  const std::string why = refusal(ps);
  for (Attempt* a : queued) {
    Delivery* d = a->delivery;
    a->timeout.close();
    --ps.running;
    --ps.counters.calls;  // never made
    ++ps.counters.refused;
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

  if (d->entry) {  // a dead-letter entry given to the dead-letter plugin
    unlink(d);
    std::unique_ptr<Delivery> owned(d);
    if (status == EVH_OK) {
      d->done();
      return;
    }
    log::host().error("dead-letter plugin {} failed ({}: {}); writing entry {} to the fallback file {}",
                      ps.plugin->name(), error_name, d->last_error.empty() ? "no message" : d->last_error, d->entry->id,
                      fallback_->path());
    toFallback(d->entry->json, std::move(d->done));
    return;
  }

  const event::Event& ev = d->inflight->event;
  if (options_.trace_events) {
    log::host().info("event stage=done eventId={} correlationId={} plugin={} attempt={} status={}", ev.eventId(),
                     ev.correlationId(), ps.plugin->name(), d->attempt, statusName(status));
  }
  switch (status) {
    case EVH_OK:
      ++ps.counters.ok;
      ps.breaker->onSuccess(d->trial);
      noteBreaker(ps);
      if (d->idempotency_ttl_ms > 0) {
        // The mark only now that the handler succeeded: marking first would
        // turn a failure into a loss.
        d->wait = Delivery::Wait::Idempotency;
        const bool sent = options_.idempotency->mark(idempotencyKey(d), d->idempotency_ttl_ms, [this, d](bool ok) {
          if (abandoned_) {
            return;
          }
          if (!ok) {
            d->ps->plugin->logger().warn("could not mark eventId={} as handled: a redelivery may apply it again",
                                         d->inflight->event.eventId());
          }
          completeDelivery(d);
        });
        if (!sent) {
          ps.plugin->logger().warn(
              "could not mark eventId={} as handled (Redis unavailable): a redelivery may "
              "apply it again",
              d->inflight->event.eventId());
          completeDelivery(d);
        }
      } else {
        completeDelivery(d);
      }
      break;
    case EVH_REJECT:
      ++ps.counters.rejected;
      // The plugin worked; the event was wrong: not a breaker failure.
      ps.breaker->onSuccess(d->trial);
      noteBreaker(ps);
      deadLetterDelivery(d, "rejected");
      break;
    default: {
      ++ps.counters.retry;
      ps.breaker->onFailure(d->trial, uv_now(loop_));
      noteBreaker(ps);
      const uint32_t max_attempts = d->retry.max_attempts;
      if (d->attempt < max_attempts && !draining_ && !abandoned_) {
        scheduleRetry(d);
      } else {
        deadLetterDelivery(d, draining_ && d->attempt < max_attempts ? "shutdown" : "exhausted");
      }
      break;
    }
  }
  releaseWaiting(ps);
}

void Dispatcher::scheduleRetry(Delivery* d) {
  PluginState& ps = *d->ps;
  std::uniform_real_distribution<double> u(0.0, 1.0);
  uint64_t delay = retryDelayMs(d->retry, d->attempt + 1, [&] { return u(rng_); });
  ++ps.counters.retried;
  const event::Event& ev = d->inflight->event;
  ps.plugin->logger().warn("attempt {}/{} failed for eventType={} eventId={} correlationId={}: {}; retrying in {} ms",
                           d->attempt, d->retry.max_attempts, ev.eventType(), ev.eventId(), ev.correlationId(),
                           d->last_error.empty() ? d->last_error_name : d->last_error, delay);
  d->wait = Delivery::Wait::Retry;
  d->retry_timer = makeUvHandle<uv_timer_t>(loop_, uv_timer_init);
  d->retry_timer->data = d;
  uv_timer_start(
      d->retry_timer.get(),
      [](uv_timer_t* t) {
        auto* del = static_cast<Delivery*>(t->data);
        del->wait = Delivery::Wait::None;
        del->retry_timer.close();
        del->owner->startDelivery(del);
      },
      delay, 0);
}

void Dispatcher::deadLetterDelivery(Delivery* d, const char* reason) {
  PluginState& ps = *d->ps;
  const event::Event& ev = d->inflight->event;
  DeadLetterInfo info{reason,     d->last_error_name, d->last_error, ps.plugin->name(),
                      d->attempt, d->first_ms,        d->last_ms};
  if (info.error_name.empty()) {
    info.error_name = reason;
  }
  ++ps.counters.dead_lettered;
  ++dead_lettered_;
  ps.plugin->logger().warn("dead-lettered eventType={} eventId={} correlationId={} reason={} attempts={}: {}",
                           ev.eventType(), ev.eventId(), ev.correlationId(), reason, d->attempt,
                           d->last_error.empty() ? "(no message)" : d->last_error);
  d->wait = Delivery::Wait::DeadLetter;
  submitDeadLetter(
      makeEntry(info, ev), [this, d] { completeDelivery(d); }, d->inflight->patient);
}

void Dispatcher::completeDelivery(Delivery* d) {
  unlink(d);
  InFlight* f = d->inflight;
  delete d;
  if (--f->remaining == 0) {
    std::function<void()> done = std::move(f->on_done);
    --in_flight_;
    releaseEvent(f);
    if (done) {
      done();
    }
  }
  checkIdle();
}

// ---------------------------------------------------------------- breaker

void Dispatcher::noteBreaker(PluginState& ps) {
  CircuitBreaker& b = *ps.breaker;
  if (!b.changed) {
    return;
  }
  b.changed = false;
  ++ps.counters.breaker_transitions;
  const char* from = CircuitBreaker::name(ps.counters.breaker_state);
  ps.counters.breaker_state = b.state();
  switch (b.state()) {
    case CircuitBreaker::State::Open:
      ps.plugin->logger().warn("circuit breaker {} -> OPEN: {} consecutive failure(s); calls wait {} ms", from,
                               b.policy().threshold, b.policy().open_ms);
      break;
    case CircuitBreaker::State::HalfOpen:
      ps.plugin->logger().info("circuit breaker {} -> HALF_OPEN: up to {} trial call(s)", from,
                               b.policy().half_open_max_calls);
      break;
    case CircuitBreaker::State::Closed:
      ps.plugin->logger().info("circuit breaker {} -> CLOSED", from);
      break;
  }
  armBreakerTimer(ps);
  if (options_.on_breaker_change) {
    options_.on_breaker_change();
  }
}

bool Dispatcher::breakerOpen(const plugin::Instance* p) const {
  auto it = plugins_.find(p);
  return it != plugins_.end() && it->second.breaker && it->second.breaker->state() == CircuitBreaker::State::Open;
}

void Dispatcher::enqueueForBreaker(Delivery* d) {
  PluginState& ps = *d->ps;
  const config::BreakerPolicy& p = ps.breaker->policy();
  if (draining_) {
    d->last_error = "circuit breaker open at shutdown";
    d->last_error_name = "circuit_open";
    deadLetterDelivery(d, "shutdown");
    return;
  }
  if (ps.breaker_waiting.size() >= p.max_waiting && !d->inflight->patient) {
    d->last_error = "circuit breaker open and max_waiting=" + std::to_string(p.max_waiting) + " events already wait";
    d->last_error_name = "circuit_open";
    deadLetterDelivery(d, "circuit_open");
    return;
  }
  d->wait = Delivery::Wait::Breaker;
  d->waiting_since = uv_now(loop_);
  ps.breaker_waiting.push_back(d);
  armBreakerTimer(ps);
}

void Dispatcher::armBreakerTimer(PluginState& ps) {
  if (!ps.breaker_timer) {
    return;
  }
  if (draining_ || abandoned_) {
    uv_timer_stop(ps.breaker_timer.get());
    return;
  }
  const uint64_t now = uv_now(loop_);
  uint64_t due = UINT64_MAX;
  if (ps.breaker->state() == CircuitBreaker::State::Open) {
    due = ps.breaker->reopenAtMs();
  }
  for (const Delivery* w : ps.breaker_waiting) {
    if (!w->inflight->patient) {
      due = std::min(due, w->waiting_since + ps.breaker->policy().max_wait_ms);
      break;  // FIFO: the first impatient one expires first
    }
  }
  if (due == UINT64_MAX) {
    uv_timer_stop(ps.breaker_timer.get());
    return;
  }
  ps.breaker_timer->data = this;
  uv_timer_start(
      ps.breaker_timer.get(),
      [](uv_timer_t* t) {
        auto* self = static_cast<Dispatcher*>(t->data);
        for (auto& [p, state] : self->plugins_) {
          if (state.breaker_timer.get() == t) {
            self->onBreakerTimer(state);
            return;
          }
        }
      },
      due > now ? due - now : 0, 0);
}

void Dispatcher::onBreakerTimer(PluginState& ps) {
  const uint64_t now = uv_now(loop_);
  const config::BreakerPolicy& p = ps.breaker->policy();
  ps.breaker->refresh(now);  // half-open on time even if no event comes to ask
  noteBreaker(ps);
  std::vector<Delivery*> expired;
  for (auto it = ps.breaker_waiting.begin(); it != ps.breaker_waiting.end();) {
    Delivery* d = *it;
    if (!d->inflight->patient && now - d->waiting_since >= p.max_wait_ms) {
      expired.push_back(d);
      it = ps.breaker_waiting.erase(it);
    } else {
      ++it;
    }
  }
  for (Delivery* d : expired) {
    d->wait = Delivery::Wait::None;
    d->last_error = "circuit breaker open for longer than max_wait_ms=" + std::to_string(p.max_wait_ms);
    d->last_error_name = "circuit_open";
    deadLetterDelivery(d, "circuit_open");
  }
  releaseWaiting(ps);
  armBreakerTimer(ps);
}

void Dispatcher::releaseWaiting(PluginState& ps) {
  // An inline call finishing at once comes back here through onOutcome:
  // the outer call keeps releasing, so the stack never grows with the queue.
  if (ps.releasing || abandoned_) {
    return;
  }
  ps.releasing = true;
  while (!ps.breaker_waiting.empty() && ps.breaker->tryAcquire(uv_now(loop_))) {
    Delivery* d = ps.breaker_waiting.front();
    ps.breaker_waiting.pop_front();
    d->wait = Delivery::Wait::None;
    d->trial = ps.breaker->halfOpen();
    noteBreaker(ps);
    runAttempt(d);
  }
  ps.releasing = false;
  noteBreaker(ps);
  armBreakerTimer(ps);
}

// ---------------------------------------------------------------- dead letters

void Dispatcher::submitDeadLetter(DeadLetterEntry entry, std::function<void()> done, bool from_stream) {
  ++dl_pending_;
  const size_t bytes = entry.json.size();
  dl_bytes_ += bytes;
  auto finished = [this, bytes, done = std::move(done)] {
    --dl_pending_;
    dl_bytes_ -= bytes;
    // After the deadline the things `done` refers to (a stream source to
    // ack on, say) may be gone; the entry is stored all the same.
    if (done && !abandoned_) {
      done();
    }
    checkIdle();
  };
  if (dl_state_ != nullptr && !abandoned_ && dl_pending_ <= options_.max_dead_letter_pending) {
    auto* dd = new Delivery();
    dd->owner = this;
    dd->ps = dl_state_;
    dd->entry = std::make_shared<const DeadLetterEntry>(std::move(entry));
    dd->timeout_ms = options_.dead_letter_timeout_ms;
    dd->done = std::move(finished);
    dd->from_stream = from_stream;
    link(dd);
    runAttempt(dd);
    return;
  }
  toFallback(std::move(entry.json), std::move(finished));
}

void Dispatcher::toFallback(std::string json, std::function<void()> done) {
  if (!fallback_) {
    log::host().critical("dead-letter fallback file closed; the entry follows: {}", json);
    if (done) {
      done();
    }
    return;
  }
  fallback_->append(std::move(json), [done = std::move(done)](bool) {
    // Written, or logged in full when the file failed: either way it is out.
    if (done) {
      done();
    }
  });
}

void Dispatcher::drain(std::function<void()> on_idle) {
  draining_ = true;
  on_idle_ = std::move(on_idle);
  // Waiting for a retry delay or a breaker would outlast any deadline: hand
  // those events to the dead-letter queue now, with what they failed with.
  std::vector<Delivery*> waiting;
  for (Delivery* d = live_head_; d != nullptr; d = d->next) {
    if (d->wait == Delivery::Wait::Retry || d->wait == Delivery::Wait::Breaker) {
      waiting.push_back(d);
    }
  }
  for (Delivery* d : waiting) {
    if (d->wait == Delivery::Wait::Breaker) {
      auto& q = d->ps->breaker_waiting;
      q.erase(std::find(q.begin(), q.end(), d));
    }
    d->retry_timer.close();
    d->wait = Delivery::Wait::None;
    deadLetterDelivery(d, "shutdown");
  }
  // Nothing waits for a breaker any more: its timer must not keep the loop
  // (and so the process) alive until the breaker would have half-opened.
  for (auto& [p, ps] : plugins_) {
    if (ps.breaker_timer) {
      uv_timer_stop(ps.breaker_timer.get());
    }
  }
  checkIdle();
}

void Dispatcher::checkIdle() {
  if (!draining_ || !on_idle_ || in_flight_ != 0 || dl_pending_ != 0) {
    return;
  }
  // A handler a timeout gave up on may still run on a worker: idle means
  // none does (the shutdown deadline bounds the wait).
  for (const auto& [p, ps] : plugins_) {
    if (ps.running > 0) {
      return;
    }
  }
  if (dead_letter_state_.running > 0) {
    return;
  }
  {
    auto fn = std::move(on_idle_);
    on_idle_ = nullptr;
    fn();
  }
}

std::vector<std::string> Dispatcher::abandon() {
  auto clearLane = [](PluginState& st) {
    std::lock_guard<std::mutex> lock(st.lane->mutex);
    st.lane->queue.clear();
  };
  abandoned_ = true;
  on_idle_ = nullptr;
  for (Attempt* a = attempts_head_; a != nullptr; a = a->next) {
    a->timeout.close();
    a->delivery = nullptr;
    a->given_up.store(true);
  }
  // Completions and worker results arriving from now on are dropped.
  alive_->store(false);
  std::unordered_map<PluginState*, size_t> per_plugin;
  for (Attempt* a = attempts_head_; a != nullptr; a = a->next) {
    ++per_plugin[a->ps];
  }
  std::vector<std::string> out;
  for (auto& [ps, n] : per_plugin) {
    ps->counters.abandoned += n;
    size_t queued = 0;
    {
      std::lock_guard<std::mutex> lock(ps->lane->mutex);
      queued = ps->lane->queue.size();
    }
    out.push_back(ps->plugin->name() + ": " + std::to_string(n) + " call(s) unfinished (" +
                  std::to_string(ps->running - queued) + " running on workers, " + std::to_string(queued) +
                  " never started)");
  }
  // Nothing unfinished leaves without an entry: whatever is still live goes
  // to the fallback file (the writer is joined by the destructor) -- but for
  // a stream entry, which stays pending in Redis without its ack and comes
  // back at the next start: dead-lettering it too would make it both.
  std::unordered_set<const InFlight*> events_left;
  size_t letters_left = 0;
  for (Delivery* d = live_head_; d != nullptr; d = d->next) {
    d->retry_timer.close();
    if (d->entry && d->from_stream) {
      ++letters_left;
      continue;
    }
    if (!d->entry && d->inflight->patient) {
      events_left.insert(d->inflight);
      continue;
    }
    if (d->entry) {
      fallback_->append(d->entry->json, {});
    } else if (d->wait != Delivery::Wait::DeadLetter) {
      DeadLetterInfo info{"abandoned",
                          "abandoned",
                          "evhost stopped at its shutdown deadline before this finished",
                          d->ps->plugin->name(),
                          d->attempt,
                          d->first_ms,
                          d->last_ms};
      fallback_->append(makeEntry(info, d->inflight->event).json, {});
    }
  }
  for (auto& [p, ps] : plugins_) {
    clearLane(ps);  // the attempts stay on the list, freed by the destructor
    ps.breaker_waiting.clear();
    if (ps.breaker_timer) {
      uv_timer_stop(ps.breaker_timer.get());
    }
  }
  clearLane(dead_letter_state_);
  if (!events_left.empty() || letters_left > 0) {
    out.push_back("streams: " + std::to_string(events_left.size()) + " unfinished event(s) and " +
                  std::to_string(letters_left) +
                  " dead letter(s) not yet stored are left pending, not dead-lettered: delivered again at the next "
                  "start");
  }
  return out;
}

size_t Dispatcher::writeUnfinishedForExit() {
  if (!fallback_) {
    return 0;
  }
  // What abandon() writes, read-only: the loop thread is held where it is.
  // Stream entries stay pending (delivered again at the next start), as at
  // abandon(): never both dead-lettered and redelivered.
  size_t n = 0;
  for (Delivery* d = live_head_; d != nullptr; d = d->next) {
    if (d->entry ? d->from_stream : d->inflight->patient) {
      continue;
    }
    if (d->entry) {
      fallback_->append(d->entry->json, {});
      ++n;
    } else if (d->wait != Delivery::Wait::DeadLetter) {
      DeadLetterInfo info{"abandoned",
                          "abandoned",
                          "evhost stopped at its shutdown deadline with its event loop stuck before this finished",
                          d->ps->plugin->name(),
                          d->attempt,
                          d->first_ms,
                          d->last_ms};
      fallback_->append(makeEntry(info, d->inflight->event).json, {});
      ++n;
    }
  }
  fallback_.reset();  // writes what is queued (entries made earlier too), joins its thread
  return n;
}

std::vector<const plugin::Instance*> Dispatcher::busyPlugins() const {
  std::vector<const plugin::Instance*> out;
  for (const auto& [p, ps] : plugins_) {
    if (ps.on_worker->load() > 0) {
      out.push_back(p);
    }
  }
  if (dead_letter_state_.plugin != nullptr && dead_letter_state_.on_worker->load() > 0) {
    out.push_back(dead_letter_state_.plugin);
  }
  return out;
}

const PluginCounters& Dispatcher::counters(const plugin::Instance* p) const {
  if (plugins_.count(p) == 0 && p == dead_letter_state_.plugin) {
    return dead_letter_state_.counters;
  }
  return plugins_.at(p).counters;
}

}  // namespace evh::dispatch
