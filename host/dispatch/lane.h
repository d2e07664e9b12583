// A blocking plugin's calls on their way to the workers, and its stuck calls.
//
// Up to `limit` runner jobs on the pool take calls from the lane's queue one
// after the other, so a plugin's next call starts as soon as its worker is
// free -- not after a round trip through the loop (a serial plugin ran at a
// fraction of its speed that way). A timed-out call whose handle() has not
// returned holds its worker thread, maybe for ever: the pool starts another
// in its place (bounded), and the plugin's calls are refused once its stuck
// calls hold all it may run at once -- so one hung plugin cannot starve the
// others.
#pragma once

#include "dispatch/counters.h"
#include "loop/poster.h"

#include <evh/plugin.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>

namespace evh::plugin {
class Instance;
}

namespace evh::dispatch {

class Attempt;
class WorkerPool;

// Where a runner sends a call's outcome: on the loop.
class LaneEvents {
 public:
  virtual void returned(Attempt* a, evh_status status) = 0;

 protected:
  ~LaneEvents() = default;
};

class Lane {
 public:
  // `alive` drops outcomes after abandon() or the dispatcher's end.
  Lane(plugin::Instance& plugin, PluginCounters& counters, uint32_t limit, uint32_t timeout_ms, WorkerPool& pool,
       Poster& poster, LaneEvents& events, std::shared_ptr<std::atomic<bool>> alive);
  Lane(const Lane&) = delete;
  Lane& operator=(const Lane&) = delete;

  // Queues a call; starts a runner if fewer than `limit` run. THREAD: loop.
  void enqueue(Attempt* a);
  // Its outcome is back on the loop (see LaneEvents). THREAD: loop.
  void onReturned(Attempt* a);
  uint64_t startedMs(const Attempt* a) const;

  // A plugin whose stuck calls hold all it may run at once (or any of the
  // pool's threads once no more can be replaced) has its calls refused.
  bool refusing() const;
  std::string refusal() const;
  // A timeout gave up on `a`, which ran ran_ms. Returns true when the
  // queued calls must be refused now (see takeQueued()).
  bool noteStuck(Attempt* a, uint64_t ran_ms);
  // Calls not started yet, taken off the queue (to refuse them). THREAD: loop.
  std::deque<Attempt*> takeQueued();
  // Forgets the calls not started (the shutdown deadline). THREAD: loop.
  void clear();

  uint32_t limit() const noexcept { return limit_; }
  uint32_t running() const noexcept { return running_; }  // given to the lane, outcome not back
  size_t queued() const;
  // A handle() executing on a worker right now (stays true after abandon()
  // drops the outcomes). THREAD: any.
  bool busy() const noexcept { return on_worker_->load() > 0; }

 private:
  struct Queue {
    std::mutex mutex;
    std::deque<Attempt*> queue;  // not started yet, FIFO
    uint32_t runners = 0;        // runner jobs submitted and not finished
  };
  void submitRunner();
  void noteUnstuck(Attempt* a);

  plugin::Instance& plugin_;
  PluginCounters& counters_;
  uint32_t limit_;
  uint32_t timeout_ms_;
  WorkerPool& pool_;
  Poster& poster_;
  LaneEvents& events_;
  std::shared_ptr<std::atomic<bool>> alive_;
  std::shared_ptr<Queue> queue_ = std::make_shared<Queue>();  // shared with the runner jobs
  // handle() calls executing on a worker; decremented by the worker itself.
  std::shared_ptr<std::atomic<uint32_t>> on_worker_ = std::make_shared<std::atomic<uint32_t>>(0);
  uint32_t running_ = 0;  // loop only
  uint32_t stuck_ = 0;    // of those, calls a timeout gave up on still in handle() (loop only)
  bool refusing_logged_ = false;
};

}  // namespace evh::dispatch
