// Delivery of routed events to plugins: inline on the loop, blocking on the
// worker pool, PENDING completed later from any thread; retries on timers,
// a circuit breaker per plugin, timeouts, dead-lettering, in-flight limit.
// The Dispatcher keeps the delivery state (events in flight, each plugin's
// share of them, their attempts) and decides what follows an outcome; the
// mechanisms are units of their own: Attempt (the evh_call state machine),
// Lane (blocking calls on the workers, stuck calls), BreakerGate, the
// DeadLetterSink and Idempotency -- see docs/architecture.md.
#pragma once

#include "config/config.h"
#include "dispatch/attempt.h"
#include "dispatch/breaker_gate.h"
#include "dispatch/counters.h"
#include "dispatch/dead_letter.h"
#include "dispatch/dead_letter_sink.h"
#include "dispatch/deliveries.h"
#include "dispatch/delivery.h"
#include "dispatch/idempotency.h"
#include "dispatch/lane.h"
#include "dispatch/plugin_state.h"
#include "dispatch/retry.h"
#include "dispatch/worker_pool.h"
#include "event/envelope.h"
#include "loop/current_call.h"
#include "loop/poster.h"
#include "plugin/instance.h"
#include "route/table.h"

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace evh::dispatch {

// How one plugin instance is called.
struct PluginSetup {
  plugin::Instance* plugin;
  config::BreakerPolicy breaker;
  uint32_t timeout_ms = 0;  // 0: none
};

class Dispatcher final : private AttemptEvents, private LaneEvents, private GateEvents, private SinkEvents {
 public:
  struct Options {
    uint32_t max_in_flight = 10000;                  // events between decode and their last outcome
    bool trace_events = false;                       // log every stage of every event (DEBUG_EVENTS)
    plugin::Instance* dead_letter_plugin = nullptr;  // receives DEAD_LETTER entries; null: fallback file only
    uint32_t dead_letter_timeout_ms = 5000;
    // The channel of the DEAD_LETTER events the plugin sees (dead_letter.channel).
    std::string dead_letter_channel = config::DeadLetter().channel;
    std::string fallback_file = "evhost-dead-letter.jsonl";
    uint32_t max_dead_letter_pending = 10000;      // beyond: entries go straight to the fallback file
    IdempotencyStore* idempotency = nullptr;       // for routes with idempotency; null: never skip
    std::function<void()> on_breaker_change;       // after any breaker changes state (on the loop)
    std::string idempotency_prefix = "evh:done:";  // key: <prefix><plugin>:<eventId>
    // Where each plugin's series go (dispatch/counters.h); null: a registry
    // of the dispatcher's own (tests, benchmarks).
    ops::Registry* stats = nullptr;
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
  // `latency`: where the time from the envelope's timestamp to the event's
  // end goes (null: nowhere).
  bool dispatch(event::Event&& event, const route::Targets& targets, std::function<void()> on_done = {},
                bool force = false, std::shared_ptr<const void> routed_by = {},
                const ops::Histogram* latency = nullptr);

  // Dead-letters something that never reached a plugin (an undecodable
  // message, an event refused for overload); `done` runs once the entry is
  // stored. `from_stream`: its stream entry is acked by `done`, so at the
  // shutdown deadline it is left pending rather than written to the
  // fallback file (see abandon()). THREAD: loop.
  void deadLetter(DeadLetterEntry entry, std::function<void()> done = {}, bool from_stream = false);

  size_t inFlight() const noexcept { return in_flight_; }
  // Calls running on a worker or pending completion.
  size_t unfinishedCalls() const noexcept { return live_.attempts(); }
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
  void closeFallback() { sink_.close(); }
  // Plugins with a handle() running on a worker right now.
  std::vector<const plugin::Instance*> busyPlugins() const;
  // For a process about to end while its loop thread is held inside a
  // plugin call (the watchdog at the shutdown deadline): appends an entry
  // (reason "abandoned") for every unfinished Pub/Sub event to the fallback
  // file -- stream entries stay pending -- as abandon() would, without touching a libuv handle, then writes and
  // joins the fallback writer. Returns the number of entries. THREAD: any,
  // but only while the loop thread is parked (it must not run meanwhile).
  size_t writeUnfinishedForExit();

  // A plugin instance a reload made: called from now on as `setup` says.
  // Before any runtime routes to it. THREAD: loop.
  void join(const PluginSetup& setup);
  // Drops a retired instance's state (its breaker, lane, counters' handles
  // -- the series stay while another instance of the name holds them).
  // Only once nothing of it is unfinished: no runtime routes to it any
  // more, so no delivery of it is left; a call still running on a worker
  // is refused (returns false, nothing dropped). THREAD: loop.
  bool forget(const plugin::Instance* p);

  PluginCounts counters(const plugin::Instance* p) const;
  // Whether p is one of the plugins this dispatcher calls.
  bool knows(const plugin::Instance* p) const { return plugins_.count(p) != 0; }
  // True while p's breaker is OPEN (not half-open).
  bool breakerOpen(const plugin::Instance* p) const;
  uint64_t deadLettered() const noexcept { return dead_lettered_; }
  // Bytes of dead-letter entries made and not yet stored (by the plugin or
  // in the fallback file): what a flood of dead letters costs in memory.
  uint64_t deadLetterBacklogBytes() const noexcept { return sink_.backlogBytes(); }
  uint64_t fallbackWrites() const noexcept { return sink_.fallbackWrites(); }

 private:
  // Attempts
  void startDelivery(Delivery* d);
  // d's idempotency mark key (a delivery with idempotency), built on first use.
  const std::string& idempotencyKey(Delivery* d) const;
  void runAttempt(Delivery* d);
  void runInline(Attempt* a);
  void afterHandle(Attempt* a, evh_status status);
  void finishAttempt(Attempt* a, evh_status status);
  void refuseQueued(PluginState& ps);
  void releaseAttempt(Attempt* a);
  // Outcomes
  void onOutcome(Delivery* d, evh_status status, std::string error, const char* error_name);
  void onDeadLetterOutcome(Delivery* d, evh_status status);
  void scheduleRetry(Delivery* d);
  void deadLetterDelivery(Delivery* d, const char* reason);
  void completeDelivery(Delivery* d);
  void checkIdle();
  // Wall-clock ms, read once per loop iteration (uv_now changes): attempt
  // times in dead-letter entries need no more, and a clock read per
  // attempt showed in profiles.
  uint64_t loopWallMs();
  PluginState& addPlugin(plugin::Instance& p, uint32_t timeout_ms);
  template <class Fn>
  void forEachPlugin(Fn fn);

  // What the units report back (on the loop).
  void completed(Attempt* a, evh_status status) override { finishAttempt(a, status); }
  void timedOut(Attempt* a) override;
  void returned(Attempt* a, evh_status status) override;
  void admitted(Delivery* d) override { runAttempt(d); }
  void expired(Delivery* d, std::string why) override;
  void toPlugin(std::shared_ptr<const DeadLetterEntry> entry, std::function<void()> stored, bool from_stream) override;
  void stored() override { checkIdle(); }

  uv_loop_t* loop_;
  std::unique_ptr<ops::Registry> own_stats_;  // when Options::stats is null
  ops::Registry& stats_;
  uint64_t wall_at_mono_ = UINT64_MAX;  // uv_now when wall_ms_ was read
  uint64_t wall_ms_ = 0;
  Poster& poster_;
  WorkerPool& pool_;
  Options options_;
  std::shared_ptr<std::atomic<bool>> alive_;  // guards posts that outlive us or abandon()
  // Every plugin's state, routed or the dead-letter one (node-based: stable addresses).
  std::unordered_map<const plugin::Instance*, PluginState> plugins_;
  PluginState* dl_state_ = nullptr;  // where dead-letter calls queue: the plugin's one state (one concurrency limit)
  DeadLetterSink sink_;
  Idempotency idempotency_;
  Retries retries_;
  size_t in_flight_ = 0;  // events
  uint64_t dead_lettered_ = 0;
  bool draining_ = false;
  bool abandoned_ = false;
  std::function<void()> on_idle_;
  Deliveries live_;  // every unfinished delivery and attempt
};

}  // namespace evh::dispatch
