// A bounded pool of threads for blocking plugins' handle() calls, which
// replaces threads stuck in calls that ran past their timeout.
#pragma once

#include "ops/stats.h"

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace evh::dispatch {

class WorkerPool {
 public:
  // `threads` take jobs; up to `max_replacements` more may be started to
  // stand in for threads stuck in a job (default: as many as `threads`, so
  // the pool never holds more than twice its size).
  explicit WorkerPool(size_t threads);
  WorkerPool(size_t threads, size_t max_replacements);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues a job. THREAD: any (the loop, in practice).
  void submit(std::function<void()> job);
  // Stops the threads after the job each is running (a stuck job included:
  // it waits for it); jobs not started are dropped (returned count). Joins.
  // THREAD: the owner's.
  size_t stop();
  // Jobs running right now.
  size_t busy() const;
  // Threads taking jobs when none is stuck (0 after stop()).
  size_t size() const;

  // One of the running jobs is stuck (a call in it ran past its timeout and
  // may never return): start a thread in its place, so that size() threads
  // keep taking jobs -- unless max_replacements threads are already stuck.
  // Returns whether a replacement was started. THREAD: any.
  bool markStuck();
  // A job marked stuck went on (its call returned): its thread takes jobs
  // again, and a thread now too many leaves the pool once idle. Call it
  // once per markStuck(), never before it. THREAD: any.
  void unmarkStuck();
  // Jobs marked stuck and not unmarked.
  size_t stuck() const;
  // Live threads, replacements included.
  size_t threads() const;
  // Is there room for another replacement?
  bool canReplace() const;
  size_t maxReplacements() const noexcept { return max_replacements_; }
  // Jobs waiting for a thread.
  size_t queued() const;
  // Computed gauges (docs/metrics.md, "The loop and the workers"):
  // evhost_workers_busy, _queued, _stuck, _threads. THREAD: the loop, which
  // collects.
  void exportStats(ops::Registry& stats);

 private:
  void run();
  void spawnLocked();
  // Threads that took jobs while `stuck_` of them are stuck: beyond
  // size_, one leaves. Caller holds mutex_.
  bool surplusLocked() const { return alive_ - stuck_ > size_; }

  std::unique_ptr<ops::Scope> stats_;  // before the state its gauges read: cleared first
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  std::vector<std::thread> threads_;      // every thread started and not joined
  std::vector<std::thread::id> retired_;  // left run(): to join
  const size_t size_;
  const size_t max_replacements_;
  size_t alive_ = 0;  // threads inside run()
  size_t stuck_ = 0;
  size_t busy_ = 0;
  bool stopping_ = false;
  bool stopped_ = false;
};

}  // namespace evh::dispatch
