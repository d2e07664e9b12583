// The dispatcher's blocking plugins on the worker pool: FIFO order and
// max_concurrency, sharing workers, timeouts (a stuck call's thread
// replaced), and abandoning calls at shutdown.
#include "dispatcher_fixture.h"

namespace evh::dispatch {
namespace {

// ---------------------------------------------------------------- blocking

TEST_F(DispatcherTest, BlockingPluginRunsOnAWorkerAndAnswersOnTheLoop) {
  start({{"w", "scripted_serial", ""}});
  ASSERT_TRUE(dispatch("OK", {"w"}));
  // handle() returns on the worker; its outcome waits for the loop.
  ASSERT_TRUE(waitFor([&] { return metric("w", "returns") == 1; }));
  EXPECT_EQ(counters("w").ok, 0U);
  EXPECT_EQ(dispatcher_->inFlight(), 1U);

  ASSERT_TRUE(runLoopUntilIdle());
  EXPECT_EQ(counters("w").ok, 1U);
  EXPECT_NE(metric("w", "thread"), threadHash(std::this_thread::get_id()));
  EXPECT_TRUE(dispatcher_->busyPlugins().empty());
}

TEST_F(DispatcherTest, BlockingPluginWithMaxConcurrencyOneKeepsFifoOrder) {
  start({{"w", "scripted_serial", ""}});
  constexpr int kEvents = 50;
  for (int i = 1; i <= kEvents; ++i) {
    ASSERT_TRUE(dispatch("SEQ", {"w"}, std::to_string(i)));
  }
  ASSERT_TRUE(runLoopUntilIdle());
  EXPECT_EQ(counters("w").ok, static_cast<uint64_t>(kEvents));
  EXPECT_EQ(metric("w", "last_seq"), kEvents);
  EXPECT_EQ(metric("w", "out_of_order"), 0);
  EXPECT_EQ(metric("w", "max_running"), 1);
}

TEST_F(DispatcherTest, BlockingPluginRunsUpToMaxConcurrencyCallsAndNeverMore) {
  start({{"w", "scripted_pair", ""}});  // max_concurrency 2, pool of 4
  // Two calls that each wait for the other: only possible with 2 at once.
  ASSERT_TRUE(dispatch("HOLD_2", {"w"}));
  ASSERT_TRUE(dispatch("HOLD_2", {"w"}));
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(dispatch("SLEEP_5", {"w"}));
  }
  ASSERT_TRUE(runLoopUntilIdle());
  EXPECT_EQ(metric("w", "hold_timeouts"), 0);
  EXPECT_EQ(metric("w", "max_running"), 2);
  EXPECT_EQ(counters("w").ok, 10U);
}

TEST_F(DispatcherTest, ABusySerialPluginGivesWayToOthersOnASharedWorker) {
  // One worker for two serial plugins: a's calls run back to back on it
  // (no trip through the loop between them), but after a turn of them a's
  // runner queues again behind b's, so b is not kept waiting for all of a.
  pool_->stop();
  pool_ = std::make_unique<WorkerPool>(1);
  start({{"a", "scripted_serial", ""}, {"b", "scripted_serial", ""}});
  ASSERT_TRUE(dispatch("SLEEP_50", {"a"}, "a0"));  // holds the worker while the rest queue up
  constexpr int kMore = 199;
  for (int i = 1; i <= kMore; ++i) {
    ASSERT_TRUE(dispatch("SEQ", {"a"}, std::to_string(i)));
  }
  ASSERT_TRUE(dispatch("SEQ", {"b"}, "1"));
  ASSERT_TRUE(runLoopUntilIdle());
  EXPECT_EQ(counters("a").ok, static_cast<uint64_t>(kMore + 1));
  EXPECT_EQ(counters("b").ok, 1U);
  EXPECT_EQ(metric("a", "out_of_order"), 0);
  // The order of calls across both (a counter shared by the library, so
  // relative): b's call came after at most a turn of a's, long before a's
  // last -- not after all 200.
  EXPECT_GE(metric("a", "order") - metric("b", "order"), 130);
}

// ---------------------------------------------------------------- shutdown

TEST_F(DispatcherTest, AbandonNamesPluginsWithUnfinishedCalls) {
  start({{"stuck", "scripted", "PENDING_NEVER"}, {"fine", "scripted", "OK"}});
  ASSERT_TRUE(dispatch("X", {"stuck", "fine"}, "1"));
  ASSERT_TRUE(dispatch("X", {"stuck"}, "2"));
  EXPECT_EQ(dispatcher_->unfinishedCalls(), 2U);

  std::vector<std::string> lines = dispatcher_->abandon();
  ASSERT_EQ(lines.size(), 1U);
  EXPECT_THAT(lines[0], HasSubstr("stuck: 2 call(s) unfinished"));
  EXPECT_EQ(counters("stuck").abandoned, 2U);
  EXPECT_EQ(counters("fine").abandoned, 0U);
  // TearDown shuts the plugins down, then the destructor frees the calls and
  // their events (AddressSanitizer reports any leak).
}

TEST_F(DispatcherTest, AbandonCountsBlockingCallsRunningAndNeverStarted) {
  start({{"slow", "scripted_serial", "SLEEP_50"}});
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(dispatch("X", {"slow"}, std::to_string(i)));
  }
  ASSERT_TRUE(waitFor([&] { return metric("slow", "running") == 1; }));  // the first has begun
  std::vector<std::string> lines = dispatcher_->abandon();
  ASSERT_EQ(lines.size(), 1U);
  EXPECT_THAT(lines[0], HasSubstr("slow: 3 call(s) unfinished (1 running on workers, 2 never started)"));
  EXPECT_EQ(counters("slow").abandoned, 3U);
  // The running call's outcome arrives after abandon() and is dropped.
  ASSERT_TRUE(waitFor([&] { return metric("slow", "returns") == 1; }));
  uv_run(&loop_, UV_RUN_NOWAIT);
  EXPECT_EQ(counters("slow").ok, 0U);
  EXPECT_EQ(metric("slow", "calls"), 1);  // the waiting calls never start
}

TEST_F(DispatcherTest, BusyPluginsForgetsAnAbandonedCallOnceItsHandleReturns) {
  start({{"slow", "scripted_serial", "SLEEP_20"}});
  ASSERT_TRUE(dispatch("X", {"slow"}));
  ASSERT_TRUE(waitFor([&] { return metric("slow", "running") == 1; }));  // handle() has begun
  dispatcher_->abandon();
  EXPECT_EQ(dispatcher_->busyPlugins().size(), 1U);  // handle() is still running
  ASSERT_TRUE(waitFor([&] { return metric("slow", "returns") == 1; }));
  ASSERT_TRUE(waitFor([&] { return pool_->busy() == 0; }));
  poster_->drain();
  uv_run(&loop_, UV_RUN_NOWAIT);
  // No handle() runs on a worker any more: the plugin may be shut down.
  EXPECT_TRUE(dispatcher_->busyPlugins().empty());
}

// ---------------------------------------------------------------- timeouts

TEST_F(DispatcherTest, ATimedOutHandlerOnAWorkerCanStillReadItsEvent) {
  // The timeout finishes the event (dead-lettered) while the handler goes on
  // reading it: the event must outlive the handler (AddressSanitizer).
  timeout_ms_ = 50;
  start({{"slow", "scripted_serial", "SLEEPREAD_300"}});
  ASSERT_TRUE(dispatch("X", {"slow"}));
  ASSERT_TRUE(runLoopUntilIdle());
  EXPECT_EQ(counters("slow").timeouts, 1U);
  EXPECT_EQ(counters("slow").dead_lettered, 1U);
  EXPECT_EQ(dispatcher_->unfinishedCalls(), 1U);  // still on its worker
  ASSERT_TRUE(runLoopUntil([&] { return dispatcher_->unfinishedCalls() == 0; }));
  EXPECT_EQ(counters("slow").ok, 0U);  // the late OK was ignored
}

TEST_F(DispatcherTest, ACallQueuedBehindAStuckOneIsRefusedWithoutStarting) {
  // "a" runs past its timeout and holds the plugin's only allowed call
  // (max_concurrency 1): "b", queued behind it, could only start when "a"
  // returns -- it fails at once as refused, never entering the plugin.
  timeout_ms_ = 100;
  start({{"slow", "scripted_serial", "SLEEP_300"}});
  std::ostringstream& log = captureLog("slow");
  ASSERT_TRUE(dispatch("X", {"slow"}, "a"));
  ASSERT_TRUE(dispatch("X", {"slow"}, "b"));
  ASSERT_TRUE(runLoopUntil([&] { return counters("slow").dead_lettered == 2U; }));
  EXPECT_EQ(counters("slow").timeouts, 1U);
  EXPECT_EQ(counters("slow").stuck, 1U);
  EXPECT_EQ(counters("slow").refused, 1U);
  ASSERT_TRUE(runLoopUntil([&] { return dispatcher_->unfinishedCalls() == 0; }));
  EXPECT_EQ(metric("slow", "calls"), 1);  // "b" never entered the plugin
  EXPECT_THAT(log.str(), HasSubstr("further calls are refused"));
  EXPECT_THAT(log.str(), HasSubstr("a stuck handle() returned after"));
  // Back: the next call runs.
  ASSERT_TRUE(dispatch("X", {"slow"}, "c"));
  ASSERT_TRUE(runLoopUntil([&] { return metric("slow", "calls") == 2; }));
}

TEST_F(DispatcherTest, TheTimeoutMeasuresRunningTimeNotTheWaitForAWorker) {
  // One worker: b's call waits 600 ms behind a's two 300 ms calls, longer
  // than the 450 ms timeout -- yet no call ran for longer than 300 ms.
  // (150 ms of margin each way: a loaded machine may run a call late.)
  pool_->stop();
  pool_ = std::make_unique<WorkerPool>(1);
  timeout_ms_ = 450;
  start({{"a", "scripted_serial", "SLEEP_300"}, {"b", "scripted_serial", "OK"}});
  ASSERT_TRUE(dispatch("X", {"a"}, "a1"));
  ASSERT_TRUE(dispatch("X", {"a"}, "a2"));
  ASSERT_TRUE(dispatch("X", {"b"}, "b1"));
  ASSERT_TRUE(runLoopUntilIdle());
  EXPECT_EQ(counters("a").ok, 2U);
  EXPECT_EQ(counters("b").ok, 1U);
  EXPECT_EQ(counters("a").timeouts + counters("b").timeouts, 0U);
}

TEST_F(DispatcherTest, AStuckCallsThreadIsReplacedAndOtherPluginsKeepRunning) {
  // Two workers, both taken by "hung" calls that run far past their
  // timeout: the pool starts two threads in their place, so "fine" still
  // runs -- on time -- and only "hung" is charged.
  pool_->stop();
  pool_ = std::make_unique<WorkerPool>(2);
  timeout_ms_ = 100;
  start({{"hung", "scripted_pair", "SLEEP_1500"}, {"fine", "scripted_serial", "OK"}});
  std::ostringstream& log = captureLog("hung");
  ASSERT_TRUE(dispatch("X", {"hung"}, "h1"));
  ASSERT_TRUE(dispatch("X", {"hung"}, "h2"));
  ASSERT_TRUE(runLoopUntil([&] { return counters("hung").timeouts == 2U; }));
  EXPECT_EQ(counters("hung").stuck, 2U);
  EXPECT_EQ(pool_->stuck(), 2U);
  EXPECT_EQ(pool_->threads(), 4U);
  EXPECT_EQ(pool_->size(), 2U);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(dispatch("X", {"fine"}, "f" + std::to_string(i)));
  }
  ASSERT_TRUE(runLoopUntil([&] { return counters("fine").ok == 5U; }));
  EXPECT_EQ(counters("fine").timeouts + counters("fine").retry + counters("fine").dead_lettered, 0U);
  // Both calls "hung" may run at once are stuck: its next one is refused.
  ASSERT_TRUE(dispatch("X", {"hung"}, "h3"));
  EXPECT_EQ(counters("hung").refused, 1U);
  EXPECT_EQ(metric("hung", "calls"), 2);
  EXPECT_THAT(log.str(), HasSubstr("worker thread stuck: handle() for eventId=h1"));
  EXPECT_THAT(log.str(), HasSubstr("started a replacement thread"));
  // The stuck calls return: the pool is back to its size.
  ASSERT_TRUE(runLoopUntil([&] { return dispatcher_->unfinishedCalls() == 0 && dispatcher_->inFlight() == 0; }));
  ASSERT_TRUE(runLoopUntil([&] { return pool_->stuck() == 0 && pool_->threads() == 2U; }));
  EXPECT_EQ(counters("hung").ok, 0U);  // the late answers were ignored
}

TEST_F(DispatcherTest, AbandonDisarmsTimeoutsBeforePluginsShutDown) {
  timeout_ms_ = 100;
  start({{"stuck", "scripted", "PENDING_NEVER"}});
  ASSERT_TRUE(dispatch("X", {"stuck"}));
  EXPECT_EQ(dispatcher_->abandon().size(), 1U);
  pool_->stop();
  poster_->drain();
  dispatcher_->seal();
  registry_.shutdownAll();
  // Past the timeout: nothing may fire into the shut-down plugin.
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
  runLoopUntil([&] { return std::chrono::steady_clock::now() > until; });
  EXPECT_EQ(counters("stuck").timeouts, 0U);
  EXPECT_EQ(counters("stuck").dead_lettered, 0U);
}

}  // namespace
}  // namespace evh::dispatch
