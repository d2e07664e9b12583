// How the dispatcher calls one plugin instance: its call handles, its lane
// to the workers (blocking plugins), its breaker gate, its counters.
// THREAD: loop.
#pragma once

#include "dispatch/breaker_gate.h"
#include "dispatch/counters.h"
#include "dispatch/lane.h"
#include "dispatch/worker_pool.h"
#include "plugin/call_table.h"
#include "plugin/instance.h"

#include <cstdint>
#include <memory>

namespace evh::dispatch {

struct PluginState {
  PluginState(plugin::Instance& p, uint32_t timeout, ops::Registry& stats, WorkerPool& pool, Poster& poster,
              LaneEvents& events, std::shared_ptr<std::atomic<bool>> alive)
      : plugin(&p),
        calls(&plugin::CallTable::process().join(p.name())),
        timeout_ms(timeout),
        counters(stats, p.name()),
        lane(p, counters, concurrencyLimit(p, pool.size()), timeout, pool, poster, events, std::move(alive)) {}
  ~PluginState() { plugin::CallTable::process().leave(*calls); }
  PluginState(const PluginState&) = delete;
  PluginState& operator=(const PluginState&) = delete;

  plugin::Instance* plugin;
  plugin::CallOwner* calls;           // this plugin's call handles (never freed)
  uint32_t timeout_ms;                // per call; 0: none
  PluginCounters counters;            // before lane and gate, which keep a reference
  Lane lane;                          // used by blocking plugins only
  std::unique_ptr<BreakerGate> gate;  // null for the dead-letter plugin when it is not routed to

  // Concurrent handle() calls a blocking plugin may make: its
  // max_concurrency, at most (and by default) the pool's threads.
  static uint32_t concurrencyLimit(const plugin::Instance& p, size_t pool) {
    uint32_t limit = p.library().desc().max_concurrency;
    if (limit == 0 || limit > pool) {
      limit = static_cast<uint32_t>(pool);
    }
    return limit == 0 ? 1 : limit;
  }
};

}  // namespace evh::dispatch
