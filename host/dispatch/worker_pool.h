// A bounded pool of threads for blocking plugins' handle() calls.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace evh::dispatch {

class WorkerPool {
 public:
  explicit WorkerPool(size_t threads);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues a job. THREAD: any (the loop, in practice).
  void submit(std::function<void()> job);
  // Stops the threads after the job each is running; jobs not started are
  // dropped (returned count). Joins. THREAD: the owner's.
  size_t stop();
  // Jobs running right now.
  size_t busy() const;
  size_t size() const noexcept { return threads_.size(); }

 private:
  void run();

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  std::vector<std::thread> threads_;
  size_t busy_ = 0;
  bool stopping_ = false;
};

}  // namespace evh::dispatch
