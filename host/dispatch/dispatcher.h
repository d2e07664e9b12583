// Calls plugins for routed events: inline on the loop, blocking on the
// worker pool, PENDING completed later from any thread; in-flight limit.
#pragma once

#include "dispatch/worker_pool.h"
#include "event/envelope.h"
#include "loop/poster.h"
#include "plugin/instance.h"
#include "route/router.h"

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace evh::dispatch {

// What happened to each plugin's share of the events, for the metrics.
struct PluginCounters {
  uint64_t calls = 0;     // handle() calls made
  uint64_t ok = 0;        // outcomes: OK
  uint64_t retry = 0;     //           RETRY (also a thrown exception, an unknown status)
  uint64_t rejected = 0;  //           REJECT
  uint64_t pending = 0;   // calls answered PENDING (completed later)
  uint64_t abandoned = 0; // calls still unfinished at the shutdown deadline
};

class Dispatcher {
 public:
  struct Options {
    uint32_t max_in_flight = 10000;  // events (not calls) between decode and their last outcome
    uint32_t max_attempts = 1;       // shown to plugins; retries arrive with the delivery issue
    bool trace_events = false;       // log every stage of every event (DEBUG_EVENTS)
  };

  Dispatcher(Poster& poster, WorkerPool& pool, const std::vector<plugin::Instance*>& plugins, Options options);
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  // Hands an event to each target, in order (no targets: nothing to do).
  // Returns false -- and calls nothing -- when max_in_flight events are
  // already in flight. THREAD: loop.
  bool dispatch(event::Event&& event, const route::Targets& targets);

  size_t inFlight() const noexcept { return in_flight_; }
  // Calls still running on a worker or pending completion (not yet finished).
  size_t unfinishedCalls() const noexcept { return live_calls_; }
  // Runs on_idle (once, on the loop) as soon as nothing is in flight.
  void whenIdle(std::function<void()> on_idle);
  // At the shutdown deadline: counts every unfinished call as abandoned and
  // drops their outcomes from now on. Returns one line per plugin that had
  // some, for the log. Their memory is freed by the destructor, which runs
  // after the plugins have shut down (so a late complete() never meets a
  // freed call).
  std::vector<std::string> abandon();
  // Plugins with a handle() running on a worker right now.
  std::vector<const plugin::Instance*> busyPlugins() const;

  const PluginCounters& counters(const plugin::Instance* p) const;

  class Call;  // one handle() invocation: the host's evh_call

 private:
  struct InFlight;
  struct PluginState {
    plugin::Instance* plugin;
    uint32_t limit;                 // concurrent handle() calls (blocking plugins)
    uint32_t running = 0;           // submitted to workers, outcome not yet back on the loop
    // handle() calls executing on a worker right now; decremented by the
    // worker itself, so it stays true after abandon() drops the outcomes.
    std::shared_ptr<std::atomic<uint32_t>> on_worker = std::make_shared<std::atomic<uint32_t>>(0);
    std::deque<Call*> waiting;      // blocking calls not yet submitted, FIFO
    PluginCounters counters;
  };

  void start(Call* call);
  void runInline(Call* call);
  void submitBlocking(Call* call);
  void pump(PluginState& ps);
  void afterHandle(Call* call, evh_status status);
  void finish(Call* call, evh_status status);
  void checkIdle();
  void link(Call* call);
  void unlink(Call* call);
  void release(Call* call);

  Poster& poster_;
  WorkerPool& pool_;
  Options options_;
  std::unordered_map<const plugin::Instance*, PluginState> plugins_;
  size_t in_flight_ = 0;
  size_t live_calls_ = 0;
  std::function<void()> on_idle_;
  std::shared_ptr<std::atomic<bool>> alive_;  // guards posts that outlive us
  Call* live_head_ = nullptr;  // intrusive list of unfinished calls
};

}  // namespace evh::dispatch
