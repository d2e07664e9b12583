// Delivery of routed events to plugins: inline on the loop, blocking on the
// worker pool, PENDING completed later from any thread; retries on timers,
// a circuit breaker per plugin, timeouts, dead-lettering, in-flight limit.
#pragma once

#include "config/config.h"
#include "dispatch/breaker.h"
#include "dispatch/dead_letter.h"
#include "dispatch/worker_pool.h"
#include "event/envelope.h"
#include "loop/current_call.h"
#include "loop/poster.h"
#include "loop/uv_handle.h"
#include "plugin/instance.h"
#include "route/table.h"

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

namespace evh::dispatch {

// What happened to each plugin's share of the events, for the metrics.
struct PluginCounters {
  uint64_t calls = 0;          // handle() calls made (every attempt)
  uint64_t ok = 0;             // outcomes: OK
  uint64_t retry = 0;          //           failed: RETRY, an exception, an unknown status, a timeout, refused
  uint64_t rejected = 0;       //           REJECT
  uint64_t timeouts = 0;       // of the failures, timeouts
  uint64_t stuck = 0;          // timed-out calls whose handle() was still running on a worker
  uint64_t refused = 0;        // of the failures, calls refused while the plugin's calls were stuck
  uint64_t pending = 0;        // calls answered PENDING (completed later)
  uint64_t retried = 0;        // retries scheduled
  uint64_t dead_lettered = 0;  // events of this plugin dead-lettered
  uint64_t abandoned = 0;      // calls unfinished at the shutdown deadline
  uint64_t duplicates = 0;     // events skipped: already handled (idempotency)
  uint64_t breaker_transitions = 0;
  CircuitBreaker::State breaker_state = CircuitBreaker::State::Closed;
};

// Where idempotency marks live (Redis, shared by every instance).
class IdempotencyStore {
 public:
  virtual ~IdempotencyStore() = default;
  // Is `key` marked? cb(true/false), or cb(nullopt) when Redis could not
  // say. Returns false (cb never runs) when the request cannot be sent.
  virtual bool check(const std::string& key, std::function<void(std::optional<bool>)> cb) = 0;
  // Marks `key` for ttl_ms; cb(ok). Returns false when it cannot be sent.
  virtual bool mark(const std::string& key, uint64_t ttl_ms, std::function<void(bool)> cb) = 0;
};

// How one plugin instance is called.
struct PluginSetup {
  plugin::Instance* plugin;
  config::BreakerPolicy breaker;
  uint32_t timeout_ms = 0;  // 0: none
};

class Dispatcher {
 public:
  struct Options {
    uint32_t max_in_flight = 10000;                  // events between decode and their last outcome
    bool trace_events = false;                       // log every stage of every event (DEBUG_EVENTS)
    plugin::Instance* dead_letter_plugin = nullptr;  // receives DEAD_LETTER entries; null: fallback file only
    uint32_t dead_letter_timeout_ms = 5000;
    std::string fallback_file = "evhost-dead-letter.jsonl";
    uint32_t max_dead_letter_pending = 10000;      // beyond: entries go straight to the fallback file
    IdempotencyStore* idempotency = nullptr;       // for routes with idempotency; null: never skip
    std::function<void()> on_breaker_change;       // after any breaker changes state (on the loop)
    std::string idempotency_prefix = "evh:done:";  // key: <prefix><plugin>:<eventId>
    // Where inline calls are marked for the watchdog (never null).
    CurrentCall* current_call = &CurrentCall::process();
  };

  Dispatcher(uv_loop_t* loop, Poster& poster, WorkerPool& pool, const std::vector<PluginSetup>& plugins,
             Options options);
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  // Hands an event to each target, in order (no targets: nothing to do).
  // Returns false -- and calls nothing -- when max_in_flight events are
  // already in flight, unless `force` (a source that limits its own reading,
  // like a stream, may overshoot with the members of a BATCH). Such events
  // are also patient: they wait for an open breaker as long as it takes
  // (their source stops reading meanwhile) instead of being dead-lettered
  // as circuit_open. `on_done`
  // runs once every target has finished with the event -- handled or
  // dead-lettered -- (at once when there are no targets). THREAD: loop.
  // `targets` is read during the call only (each delivery copies its
  // route's policies); `routed_by` -- the runtime::Runtime the targets come
  // from, which owns what they point at -- is kept until the event is
  // finished, even when a reload replaced it meanwhile.
  bool dispatch(event::Event&& event, const route::Targets& targets, std::function<void()> on_done = {},
                bool force = false, std::shared_ptr<const void> routed_by = {});

  // Dead-letters something that never reached a plugin (an undecodable
  // message, an event refused for overload); `done` runs once the entry is
  // stored. `from_stream`: its stream entry is acked by `done`, so at the
  // shutdown deadline it is left pending rather than written to the
  // fallback file (see abandon()). THREAD: loop.
  void deadLetter(DeadLetterEntry entry, std::function<void()> done = {}, bool from_stream = false);

  size_t inFlight() const noexcept { return in_flight_; }
  // Calls running on a worker or pending completion.
  size_t unfinishedCalls() const noexcept { return live_attempts_; }
  // Stops waiting: events waiting for a retry delay or an open breaker are
  // dead-lettered now (reason "shutdown"), and new retries are not
  // scheduled. Then runs on_idle once nothing is in flight, no dead-letter
  // entry is on its way and the fallback file is written. THREAD: loop.
  void drain(std::function<void()> on_idle);
  // At the shutdown deadline: counts unfinished calls as abandoned, writes a
  // dead-letter entry (reason "abandoned") to the fallback file for each
  // Pub/Sub event not finished, and drops every outcome from now on. An
  // unfinished stream entry is left pending instead -- never acked, so it is
  // delivered again at the next start, and never also dead-lettered. Returns
  // one line per plugin with unfinished calls (and one for stream entries
  // left pending), for the log.
  std::vector<std::string> abandon();
  // Drops every outcome arriving from now on (completions, worker results):
  // called before plugins shut down, after which their calls are gone.
  void seal() { alive_->store(false); }
  // Writes whatever the fallback writer holds, and joins its thread: before
  // an exit that runs no destructors. Later entries are logged in full.
  void closeFallback() { fallback_.reset(); }
  // Plugins with a handle() running on a worker right now.
  std::vector<const plugin::Instance*> busyPlugins() const;
  // For a process about to end while its loop thread is held inside a
  // plugin call (the watchdog at the shutdown deadline): appends an entry
  // (reason "abandoned") for every unfinished Pub/Sub event to the fallback
  // file -- stream entries stay pending -- as abandon() would, without touching a libuv handle, then writes and
  // joins the fallback writer. Returns the number of entries. THREAD: any,
  // but only while the loop thread is parked (it must not run meanwhile).
  size_t writeUnfinishedForExit();

  const PluginCounters& counters(const plugin::Instance* p) const;
  // True while p's breaker is OPEN (not half-open).
  bool breakerOpen(const plugin::Instance* p) const;
  uint64_t deadLettered() const noexcept { return dead_lettered_; }
  // Bytes of dead-letter entries made and not yet stored (by the plugin or
  // in the fallback file): what a flood of dead letters costs in memory.
  uint64_t deadLetterBacklogBytes() const noexcept { return dl_bytes_; }
  uint64_t fallbackWrites() const noexcept { return fallback_->written(); }

  class Attempt;  // one handle() invocation: the host's evh_call

 private:
  struct InFlight;
  struct Delivery;
  // A blocking plugin's calls on their way to the workers. Up to `limit`
  // runner jobs on the pool take calls from `queue` one after the other, so
  // a plugin's next call starts as soon as its worker is free -- not after a
  // round trip through the loop (a serial plugin ran at a fraction of its
  // speed that way). Shared with the runner jobs; guarded by its mutex.
  struct Lane {
    std::mutex mutex;
    std::deque<Attempt*> queue;  // not started yet, FIFO
    uint32_t runners = 0;        // runner jobs submitted and not finished
  };
  struct PluginState {
    plugin::Instance* plugin = nullptr;
    uint32_t limit = 1;  // concurrent handle() calls (blocking plugins)
    uint32_t timeout_ms = 0;
    uint32_t running = 0;  // given to the lane, outcome not yet back on the loop (loop only)
    // Of those, calls a timeout gave up on whose handle() was still running
    // on a worker (loop only). At `limit` -- or at any while the pool may
    // replace no more threads -- the plugin's calls are refused.
    uint32_t stuck = 0;
    bool refusing_logged = false;
    // handle() calls executing on a worker right now; decremented by the
    // worker itself, so it stays true after abandon() drops the outcomes.
    std::shared_ptr<std::atomic<uint32_t>> on_worker = std::make_shared<std::atomic<uint32_t>>(0);
    std::shared_ptr<Lane> lane = std::make_shared<Lane>();
    std::unique_ptr<CircuitBreaker> breaker;
    std::deque<Delivery*> breaker_waiting;  // deliveries waiting for the breaker, FIFO
    UvHandle<uv_timer_t> breaker_timer;
    bool releasing = false;  // releaseWaiting() is on the stack
    PluginCounters counters;
  };

  // Attempts
  void startDelivery(Delivery* d);
  void runAttempt(Delivery* d);
  void runInline(Attempt* a);
  void enqueueBlocking(Attempt* a);
  void submitRunner(PluginState& ps);
  void afterHandle(Attempt* a, evh_status status);
  void finishAttempt(Attempt* a, evh_status status);
  void onTimeout(Attempt* a);
  // A blocking plugin whose stuck calls hold all it may run at once (or any
  // of the pool's threads once no more can be replaced).
  bool refusing(const PluginState& ps) const;
  std::string refusal(const PluginState& ps) const;
  void noteStuck(Attempt* a, uint64_t ran_ms, uint32_t timeout_ms);
  void noteUnstuck(Attempt* a);
  void refuseQueued(PluginState& ps);
  void releaseAttempt(Attempt* a);
  void releaseEvent(InFlight* f);
  // Outcomes
  void onOutcome(Delivery* d, evh_status status, std::string error, const char* error_name);
  void scheduleRetry(Delivery* d);
  void deadLetterDelivery(Delivery* d, const char* reason);
  void completeDelivery(Delivery* d);
  std::string idempotencyKey(const Delivery* d) const;
  // Circuit breaker
  void enqueueForBreaker(Delivery* d);
  void onBreakerTimer(PluginState& ps);
  void releaseWaiting(PluginState& ps);
  void armBreakerTimer(PluginState& ps);
  void noteBreaker(PluginState& ps);
  // Dead letters
  void submitDeadLetter(DeadLetterEntry entry, std::function<void()> done, bool from_stream);
  void toFallback(std::string json, std::function<void()> done);
  void checkIdle();
  void link(Delivery* d);
  // Wall-clock ms, read once per loop iteration (uv_now changes): attempt
  // times in dead-letter entries need no more, and a clock read per
  // attempt showed in profiles.
  uint64_t loopWallMs();
  void unlink(Delivery* d);

  uv_loop_t* loop_;
  uint64_t wall_at_mono_ = UINT64_MAX;  // uv_now when wall_ms_ was read
  uint64_t wall_ms_ = 0;
  Poster& poster_;
  WorkerPool& pool_;
  Options options_;
  std::unordered_map<const plugin::Instance*, PluginState> plugins_;
  PluginState dead_letter_state_;    // the dead-letter plugin's calls when it is not among `plugins`
  PluginState* dl_state_ = nullptr;  // where dead-letter calls queue: the plugin's one state (one concurrency limit)
  std::unique_ptr<FallbackWriter> fallback_;
  std::mt19937_64 rng_;
  size_t in_flight_ = 0;      // events
  size_t live_attempts_ = 0;  // handle() calls not finished
  size_t dl_pending_ = 0;     // dead-letter entries on their way (plugin or file)
  uint64_t dl_bytes_ = 0;     // of those, their entries' bytes
  uint64_t dead_lettered_ = 0;
  bool draining_ = false;
  bool abandoned_ = false;
  std::function<void()> on_idle_;
  std::shared_ptr<std::atomic<bool>> alive_;  // guards posts that outlive us or abandon()
  Delivery* live_head_ = nullptr;             // every unfinished delivery
  Attempt* attempts_head_ = nullptr;          // every unfinished attempt
};

}  // namespace evh::dispatch
