// Worker threads: a mutex-guarded FIFO and a condition variable; stuck
// threads are replaced by counting, not by identity: whichever thread finds
// the pool over its size when it is between jobs leaves.
#include "dispatch/worker_pool.h"

#include "loop/fatal_signals.h"

#include <algorithm>

namespace evh::dispatch {

WorkerPool::WorkerPool(size_t threads) : WorkerPool(threads, threads) {}

WorkerPool::WorkerPool(size_t threads, size_t max_replacements) : size_(threads), max_replacements_(max_replacements) {
  std::lock_guard<std::mutex> lock(mutex_);
  threads_.reserve(threads);
  for (size_t i = 0; i < threads; ++i) {
    spawnLocked();
  }
}

WorkerPool::~WorkerPool() {
  stats_.reset();  // its gauges read this
  stop();
}

void WorkerPool::exportStats(ops::Registry& stats) {
  stats_ = std::make_unique<ops::Scope>(stats);
  stats_->computedGauge("evhost_workers_busy", "worker threads running a blocking plugin's call",
                        [this] { return static_cast<double>(busy()); });
  stats_->computedGauge("evhost_workers_queued", "blocking plugins' jobs waiting for a worker thread",
                        [this] { return static_cast<double>(queued()); });
  stats_->computedGauge("evhost_workers_stuck", "worker threads stuck in a call past its timeout",
                        [this] { return static_cast<double>(stuck()); });
  stats_->computedGauge("evhost_workers_threads", "live worker threads, replacements for stuck ones included",
                        [this] { return static_cast<double>(threads()); });
}

size_t WorkerPool::queued() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return queue_.size();
}

void WorkerPool::spawnLocked() {
  ++alive_;
  threads_.emplace_back([this] { run(); });
}

void WorkerPool::submit(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(std::move(job));
  }
  cv_.notify_one();
}

size_t WorkerPool::stop() {
  size_t dropped = 0;
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopped_) {
      return 0;
    }
    stopping_ = true;
    stopped_ = true;
    dropped = queue_.size();
    queue_.clear();
    threads.swap(threads_);
    retired_.clear();
  }
  cv_.notify_all();
  for (auto& t : threads) {
    t.join();
  }
  return dropped;
}

size_t WorkerPool::busy() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return busy_;
}

size_t WorkerPool::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stopped_ ? 0 : size_;
}

size_t WorkerPool::stuck() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stuck_;
}

size_t WorkerPool::threads() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return alive_;
}

bool WorkerPool::canReplace() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stuck_ < max_replacements_;
}

bool WorkerPool::markStuck() {
  std::vector<std::thread> finished;
  bool replaced = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++stuck_;
    if (stopping_) {
      return false;
    }
    // Threads that left earlier are joined here (they have returned from
    // run(), so at once): a pool whose calls keep getting stuck and coming
    // back does not pile up thread handles.
    for (const auto& id : retired_) {
      auto it = std::find_if(threads_.begin(), threads_.end(), [&](const std::thread& t) { return t.get_id() == id; });
      if (it != threads_.end()) {
        finished.push_back(std::move(*it));
        threads_.erase(it);
      }
    }
    retired_.clear();
    if (alive_ - stuck_ < size_ && alive_ < size_ + max_replacements_) {
      spawnLocked();
      replaced = true;
    }
  }
  for (auto& t : finished) {
    t.join();
  }
  return replaced;
}

void WorkerPool::unmarkStuck() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stuck_ > 0) {
      --stuck_;
    }
  }
  cv_.notify_one();  // an idle thread may now be one too many
}

void WorkerPool::run() {
  // Blocking plugins' handle() runs here: a crash by stack overflow is still
  // named (loop/fatal_signals.h).
  AltSignalStack signal_stack;
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [this] { return stopping_ || surplusLocked() || !queue_.empty(); });
      if (stopping_) {
        --alive_;
        return;
      }
      if (surplusLocked()) {
        --alive_;
        retired_.push_back(std::this_thread::get_id());
        return;
      }
      job = std::move(queue_.front());
      queue_.pop_front();
      ++busy_;
    }
    job();
    std::lock_guard<std::mutex> lock(mutex_);
    --busy_;
  }
}

}  // namespace evh::dispatch
