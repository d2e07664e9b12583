// The worker pool: jobs on pool threads, busy count, stop() joining and dropping queued jobs, stuck
// threads replaced (bounded) and the surplus leaving once they come back.
#include "dispatch/worker_pool.h"

#include <gtest/gtest.h>

#include "support/stats_text.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace evh::dispatch {
namespace {

// Only guards against hangs.
constexpr auto kHangGuard = std::chrono::seconds(20);

// A one-shot gate jobs can wait on, and counters they report to.
class Gate {
 public:
  void open() {
    std::lock_guard<std::mutex> lock(mutex_);
    open_ = true;
    cv_.notify_all();
  }
  // Returns false on the hang guard.
  bool wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    return cv_.wait_for(lock, kHangGuard, [this] { return open_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool open_ = false;
};

class WorkerPoolTest : public ::testing::Test {
 protected:
  // Records that a job ran, on which thread, in which order.
  void record(int job) {
    std::lock_guard<std::mutex> lock(mutex_);
    ran_.push_back(job);
    threads_.insert(std::this_thread::get_id());
    cv_.notify_all();
  }
  bool waitForRuns(size_t n) {
    std::unique_lock<std::mutex> lock(mutex_);
    return cv_.wait_for(lock, kHangGuard, [&] { return ran_.size() >= n; });
  }
  static bool waitUntil(const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + kHangGuard;
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) {
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
  }

  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<int> ran_;
  std::set<std::thread::id> threads_;
};

TEST_F(WorkerPoolTest, RunsJobsOnPoolThreads) {
  WorkerPool pool(3);
  EXPECT_EQ(pool.size(), 3U);
  constexpr int kJobs = 100;
  for (int i = 0; i < kJobs; ++i) {
    pool.submit([this, i] { record(i); });
  }
  ASSERT_TRUE(waitForRuns(kJobs));
  EXPECT_EQ(pool.stop(), 0U);
  std::lock_guard<std::mutex> lock(mutex_);
  EXPECT_EQ(ran_.size(), static_cast<size_t>(kJobs));
  EXPECT_EQ(threads_.count(std::this_thread::get_id()), 0U);
  EXPECT_LE(threads_.size(), 3U);
}

TEST_F(WorkerPoolTest, OneThreadRunsJobsInSubmitOrder) {
  WorkerPool pool(1);
  constexpr int kJobs = 50;
  for (int i = 0; i < kJobs; ++i) {
    pool.submit([this, i] { record(i); });
  }
  ASSERT_TRUE(waitForRuns(kJobs));
  pool.stop();
  std::lock_guard<std::mutex> lock(mutex_);
  for (int i = 0; i < kJobs; ++i) {
    EXPECT_EQ(ran_.at(static_cast<size_t>(i)), i);
  }
}

TEST_F(WorkerPoolTest, BusyCountsRunningJobs) {
  WorkerPool pool(3);
  EXPECT_EQ(pool.busy(), 0U);
  Gate release;
  for (int i = 0; i < 2; ++i) {
    pool.submit([this, &release, i] {
      record(i);
      release.wait();
    });
  }
  ASSERT_TRUE(waitForRuns(2));
  EXPECT_EQ(pool.busy(), 2U);
  release.open();
  ASSERT_TRUE(waitUntil([&] { return pool.busy() == 0; }));
  EXPECT_EQ(pool.stop(), 0U);
}

TEST_F(WorkerPoolTest, ItsGaugesShowBusyQueuedAndThreads) {
  ops::Registry stats;
  {
    WorkerPool pool(1);
    pool.exportStats(stats);
    Gate release;
    for (int i = 0; i < 3; ++i) {
      pool.submit([this, &release, i] {
        record(i);
        release.wait();
      });
    }
    ASSERT_TRUE(waitForRuns(1));
    EXPECT_EQ(test::statValue(stats, "evhost_workers_busy", {}), 1);
    EXPECT_EQ(test::statValue(stats, "evhost_workers_queued", {}), 2);
    EXPECT_EQ(test::statValue(stats, "evhost_workers_threads", {}), 1);
    EXPECT_EQ(test::statValue(stats, "evhost_workers_stuck", {}), 0);
    release.open();
    ASSERT_TRUE(waitForRuns(3));
    ASSERT_TRUE(waitUntil([&] { return pool.busy() == 0; }));
    EXPECT_EQ(test::statValue(stats, "evhost_workers_queued", {}), 0);
    pool.stop();
  }
  EXPECT_EQ(test::statValue(stats, "evhost_workers_busy", {}), -1) << "gone with the pool";
}

TEST_F(WorkerPoolTest, StopFinishesRunningJobsAndDropsQueuedOnes) {
  WorkerPool pool(1);
  Gate release;
  bool running_job_finished = false;
  pool.submit([this, &release, &running_job_finished] {
    record(0);
    EXPECT_TRUE(release.wait());
    running_job_finished = true;
  });
  ASSERT_TRUE(waitForRuns(1));
  // The only thread is busy, so these stay queued. The running job is let go
  // only when stop() discards them (their captured guard is destroyed then),
  // so stop() surely sees all three still queued.
  struct OpenOnDestroy {
    Gate* gate;
    ~OpenOnDestroy() { gate->open(); }
  };
  std::shared_ptr<OpenOnDestroy> guard(new OpenOnDestroy{&release});
  for (int i = 1; i <= 3; ++i) {
    pool.submit([this, guard, i] { record(i); });
  }
  guard.reset();
  EXPECT_EQ(pool.stop(), 3U);  // joins: the running job has finished
  EXPECT_TRUE(running_job_finished);
  std::lock_guard<std::mutex> lock(mutex_);
  EXPECT_EQ(ran_, std::vector<int>{0});
  EXPECT_EQ(pool.size(), 0U);
}

TEST_F(WorkerPoolTest, StopTwiceDropsNothingTheSecondTime) {
  WorkerPool pool(2);
  pool.submit([this] { record(0); });
  ASSERT_TRUE(waitForRuns(1));
  EXPECT_EQ(pool.stop(), 0U);
  EXPECT_EQ(pool.stop(), 0U);
  EXPECT_EQ(pool.busy(), 0U);
}

TEST_F(WorkerPoolTest, DestructorStopsAndJoins) {
  Gate release;
  bool finished = false;
  {
    WorkerPool pool(1);
    pool.submit([this, &release, &finished] {
      record(0);
      EXPECT_TRUE(release.wait());
      finished = true;
    });
    ASSERT_TRUE(waitForRuns(1));
    release.open();
  }
  EXPECT_TRUE(finished);
}

TEST_F(WorkerPoolTest, AStuckThreadIsReplacedSoQueuedJobsStillRun) {
  WorkerPool pool(1);
  Gate release;
  pool.submit([this, &release, &pool] {
    record(0);
    EXPECT_TRUE(release.wait());
    pool.unmarkStuck();  // the call that was stuck came back
  });
  ASSERT_TRUE(waitForRuns(1));
  EXPECT_TRUE(pool.markStuck());
  EXPECT_EQ(pool.stuck(), 1U);
  EXPECT_EQ(pool.threads(), 2U);
  // The only original thread is stuck: the replacement takes these.
  for (int i = 1; i <= 5; ++i) {
    pool.submit([this, i] { record(i); });
  }
  ASSERT_TRUE(waitForRuns(6));
  release.open();
  // Back to one thread: the one too many leaves once idle.
  ASSERT_TRUE(waitUntil([&] { return pool.threads() == 1 && pool.stuck() == 0; }));
  pool.submit([this] { record(6); });
  ASSERT_TRUE(waitForRuns(7));
  EXPECT_EQ(pool.stop(), 0U);
}

TEST_F(WorkerPoolTest, ReplacementsAreBoundedByThePoolSize) {
  WorkerPool pool(1);  // at most 1 replacement
  Gate release;
  for (int i = 0; i < 2; ++i) {
    pool.submit([this, &release, &pool, i] {
      record(i);
      EXPECT_TRUE(release.wait());
      pool.unmarkStuck();
    });
    ASSERT_TRUE(waitForRuns(static_cast<size_t>(i) + 1));
    EXPECT_EQ(pool.canReplace(), i == 0) << i;
    EXPECT_EQ(pool.markStuck(), i == 0) << i;  // the second is not replaced
  }
  EXPECT_EQ(pool.threads(), 2U);
  EXPECT_EQ(pool.stuck(), 2U);
  EXPECT_FALSE(pool.canReplace());
  pool.submit([this] { record(2); });  // waits: no thread is free
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  {
    std::lock_guard<std::mutex> lock(mutex_);
    EXPECT_EQ(ran_.size(), 2U);
  }
  release.open();
  ASSERT_TRUE(waitForRuns(3));
  ASSERT_TRUE(waitUntil([&] { return pool.threads() == 1 && pool.stuck() == 0; }));
  EXPECT_EQ(pool.stop(), 0U);
}

TEST_F(WorkerPoolTest, ThreadsStuckAndBackAgainAndAgainDoNotPileUp) {
  WorkerPool pool(2);
  for (int round = 0; round < 20; ++round) {
    Gate release;
    std::atomic<bool> started{false};
    pool.submit([&] {
      started = true;
      EXPECT_TRUE(release.wait());
      pool.unmarkStuck();
    });
    ASSERT_TRUE(waitUntil([&] { return started.load(); }));
    EXPECT_TRUE(pool.markStuck());
    release.open();
    ASSERT_TRUE(waitUntil([&] { return pool.threads() == 2 && pool.stuck() == 0 && pool.busy() == 0; })) << round;
  }
  EXPECT_EQ(pool.stop(), 0U);
}

}  // namespace
}  // namespace evh::dispatch
