// The dispatcher with real plugins: inline calls, PENDING from any thread,
// limits, and faults thrown through the C ABI. Blocking plugins on the worker
// pool, their timeouts and shutdown are dispatcher_workers_test.cpp's.
#include "dispatcher_fixture.h"

namespace evh::dispatch {
namespace {

// ---------------------------------------------------------------- inline

TEST_F(DispatcherTest, InlinePluginsRunInOrderInsideDispatch) {
  start({{"a", "scripted", ""}, {"b", "scripted", ""}, {"c", "scripted", ""}});
  ASSERT_TRUE(dispatch("OK", {"b", "c", "a"}));
  // No loop iteration has run: everything happened inside dispatch().
  for (const char* n : {"a", "b", "c"}) {
    EXPECT_EQ(metric(n, "calls"), 1) << n;
    EXPECT_EQ(metric(n, "thread"), threadHash(std::this_thread::get_id())) << n;
    EXPECT_EQ(counters(n).calls, 1U) << n;
    EXPECT_EQ(counters(n).ok, 1U) << n;
  }
  EXPECT_LT(metric("b", "order"), metric("c", "order"));
  EXPECT_LT(metric("c", "order"), metric("a", "order"));
  EXPECT_EQ(dispatcher_->inFlight(), 0U);
  EXPECT_EQ(dispatcher_->unfinishedCalls(), 0U);
}

// Each call and its outcome counted for its target's event type as well.
TEST_F(DispatcherTest, OutcomesAreCountedPerEventTypeToo) {
  Dispatcher::Options options;
  options.stats = &stats_;
  start({{"p", "scripted", ""}}, options);
  ops::Scope scope(stats_);
  auto c = [&](const char* outcome) { return scope.counter("t_outcomes_total", "", {{"outcome", outcome}}); };
  const route::TypeSeries series{
      scope.counter("t_calls_total", ""), c("ok"), c("retry"), c("reject"), c("timeout"), c("error")};
  for (const char* type : {"OK", "OK", "RETRY", "REJECT", "STATUS_42"}) {
    route::Targets t = targets({"p"});
    t[0].series = &series;
    ASSERT_TRUE(dispatcher_->dispatch(makeEvent(type), t));
  }
  ASSERT_TRUE(runLoopUntilIdle());
  EXPECT_EQ(series.calls.value(), 5);
  EXPECT_EQ(series.ok.value(), 2);
  EXPECT_EQ(series.retry.value(), 1);
  EXPECT_EQ(series.reject.value(), 1);
  EXPECT_EQ(series.error.value(), 1);
  EXPECT_EQ(series.timeout.value(), 0);
}

TEST_F(DispatcherTest, EachPluginsSeriesAreInTheStatsRegistry) {
  Dispatcher::Options options;
  options.stats = &stats_;
  timeout_ms_ = 50;
  start({{"p", "scripted", ""}, {"slow", "scripted_serial", "SLEEP_300"}}, options);
  ASSERT_TRUE(dispatch("OK", {"p"}));
  ASSERT_TRUE(dispatch("RETRY", {"p"}));
  ASSERT_TRUE(dispatch("REJECT", {"p"}));
  ASSERT_TRUE(dispatch("STATUS_42", {"p"}));
  ASSERT_TRUE(dispatch("X", {"slow"}));
  ASSERT_TRUE(runLoopUntilIdle());
  ASSERT_TRUE(runLoopUntil([&] { return dispatcher_->unfinishedCalls() == 0; }));
  const std::string text = test::renderStats(stats_);
  // Every call counted ends in exactly one outcome.
  EXPECT_THAT(text, HasSubstr("evhost_handler_calls_total{plugin=\"p\"} 4\n"));
  for (const char* outcome : {"ok", "retry", "reject", "error"}) {
    EXPECT_THAT(text,
                HasSubstr("evhost_handler_outcomes_total{outcome=\"" + std::string(outcome) + "\",plugin=\"p\"} 1\n"));
  }
  EXPECT_THAT(text, HasSubstr("evhost_handler_outcomes_total{outcome=\"timeout\",plugin=\"p\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("evhost_handler_calls_total{plugin=\"slow\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("evhost_handler_outcomes_total{outcome=\"timeout\",plugin=\"slow\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("evhost_handler_outcomes_total{outcome=\"ok\",plugin=\"slow\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("evhost_handler_dead_lettered_total{plugin=\"p\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("evhost_breaker_state{plugin=\"p\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("evhost_handler_duration_seconds_count{plugin=\"p\"} 4\n"));
  // The timeout's outcome comes at 50 ms, not when the handler returns.
  EXPECT_THAT(text, HasSubstr("evhost_handler_duration_seconds_bucket{plugin=\"slow\",le=\"0.025\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("evhost_handler_duration_seconds_bucket{plugin=\"slow\",le=\"0.1\"} 1\n"));
  // Dead letters by reason and by where they were stored.
  EXPECT_THAT(text, HasSubstr("evhost_dead_letters_total{reason=\"exhausted\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("evhost_dead_letters_total{reason=\"rejected\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("evhost_dead_letters_total{reason=\"poison\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("evhost_dead_letters_stored_total{sink=\"fallback_file\"} 4\n"));
  EXPECT_THAT(text, HasSubstr("evhost_dead_letters_stored_total{sink=\"plugin\"} 0\n"));
}

TEST_F(DispatcherTest, InlineOutcomesAreCounted) {
  start({{"p", "scripted", ""}});
  std::ostringstream& log = captureLog("p");
  ASSERT_TRUE(dispatch("OK", {"p"}));
  ASSERT_TRUE(dispatch("RETRY", {"p"}));
  ASSERT_TRUE(dispatch("REJECT", {"p"}));
  ASSERT_TRUE(dispatch("REJECT", {"p"}));
  const PluginCounts c = counters("p");
  EXPECT_EQ(c.calls, 4U);
  EXPECT_EQ(c.ok, 1U);
  EXPECT_EQ(c.retry, 1U);
  EXPECT_EQ(c.rejected, 2U);
  EXPECT_EQ(c.pending, 0U);
  EXPECT_EQ(c.abandoned, 0U);
  // The failures are finished once their dead-letter entries are written
  // (here: to the fallback file, by its own thread).
  ASSERT_TRUE(runLoopUntilIdle());
  EXPECT_EQ(c.dead_lettered, 3U);
  std::ifstream fallback(fallbackPath());
  size_t lines = 0;
  for (std::string line; std::getline(fallback, line);) {
    ++lines;
  }
  EXPECT_EQ(lines, 3U);
  // The messages given with call_set_error reach the log.
  EXPECT_THAT(log.str(), HasSubstr("scripted retry"));
  EXPECT_THAT(log.str(), HasSubstr("scripted reject"));
}

// What waits, and for what: a retry delay, a breaker that is open.
TEST_F(DispatcherTest, DeliveriesWaitingForARetryOrABreakerAreGauged) {
  retry_.max_attempts = 3;
  retry_.base_delay_ms = 60000;  // the retry waits through the test
  breaker_.threshold = 1;        // the first failure opens it
  breaker_.open_ms = 60000;
  start({{"flaky", "scripted", ""}, {"shut", "scripted", ""}});
  ASSERT_TRUE(dispatch("RETRY", {"flaky"}, "e1"));
  EXPECT_EQ(counters("flaky").retry_waiting, 1);
  EXPECT_EQ(counters("flaky").breaker_waiting, 0);
  ASSERT_TRUE(dispatch("RETRY", {"shut"}, "e2"));  // opens shut's breaker; its retry waits too
  ASSERT_TRUE(dispatch("OK", {"shut"}, "e3"));
  ASSERT_TRUE(dispatch("OK", {"shut"}, "e4"));
  EXPECT_EQ(counters("shut").breaker_state, CircuitBreaker::State::Open);
  EXPECT_EQ(counters("shut").breaker_waiting, 2);
  EXPECT_EQ(counters("shut").retry_waiting, 1);
  // A stop hands them all to the dead-letter queue: nothing waits any more.
  int idle = 0;
  dispatcher_->drain([&] { ++idle; });
  ASSERT_TRUE(runLoopUntil([&] { return idle == 1; }));
  for (const char* n : {"flaky", "shut"}) {
    EXPECT_EQ(counters(n).retry_waiting, 0) << n;
    EXPECT_EQ(counters(n).breaker_waiting, 0) << n;
  }
}

TEST_F(DispatcherTest, EveryTargetIsCalledOnceAndTheEventLivesUntilTheLastFinishes) {
  // An inline plugin that finishes at once, a blocking one that reads the
  // event later on a worker, and an inline PENDING one completed later.
  start({{"now", "scripted", "OK"}, {"later", "scripted", "PENDING_POST"}, {"worker", "scripted_serial", ""}});
  int idle = 0;
  ASSERT_TRUE(dispatch("SLEEP_10", {"now", "worker", "later"}));
  dispatcher_->drain([&] { ++idle; });
  EXPECT_EQ(counters("now").ok, 1U);
  EXPECT_EQ(dispatcher_->inFlight(), 1U);
  EXPECT_EQ(dispatcher_->unfinishedCalls(), 2U);

  ASSERT_TRUE(runLoopUntil([&] { return counters("worker").ok == 1; }));
  EXPECT_EQ(dispatcher_->inFlight(), 1U);  // "later" has not completed
  EXPECT_EQ(idle, 0);

  services_.runPosted();  // "later" completes
  ASSERT_TRUE(runLoopUntilIdle());
  EXPECT_EQ(counters("later").ok, 1U);
  EXPECT_EQ(idle, 1);
  for (const char* n : {"now", "later", "worker"}) {
    EXPECT_EQ(metric(n, "calls"), 1) << n;
    EXPECT_EQ(counters(n).calls, 1U) << n;
  }
  EXPECT_EQ(dispatcher_->unfinishedCalls(), 0U);
}

TEST_F(DispatcherTest, EventWithNoTargetsIsNotLeftInFlight) {
  // The server skips unrouted events itself, but nothing in dispatch()'s
  // contract requires a target: an event that calls nothing must not stay
  // in flight forever (whenIdle would never fire) nor leak.
  start({{"p", "scripted", ""}});
  dispatcher_->dispatch(makeEvent("OK"), route::Targets{});
  EXPECT_EQ(dispatcher_->inFlight(), 0U);
  int idle = 0;
  dispatcher_->drain([&] { ++idle; });
  EXPECT_EQ(idle, 1);
}

// ---------------------------------------------------------------- PENDING

TEST_F(DispatcherTest, PendingCompletedLaterFromTheLoopFinishesThroughThePoster) {
  start({{"p", "scripted", ""}});
  ASSERT_TRUE(dispatch("PENDING_POST", {"p"}));
  EXPECT_EQ(counters("p").pending, 1U);
  EXPECT_EQ(counters("p").ok, 0U);
  EXPECT_EQ(dispatcher_->inFlight(), 1U);
  EXPECT_EQ(dispatcher_->unfinishedCalls(), 1U);

  services_.runPosted();            // the plugin calls complete(OK) from the loop thread
  EXPECT_EQ(counters("p").ok, 0U);  // the outcome is posted, not applied inside complete()
  ASSERT_TRUE(runLoopUntilIdle());
  EXPECT_EQ(counters("p").ok, 1U);
  EXPECT_EQ(counters("p").retry, 0U);
  EXPECT_EQ(dispatcher_->unfinishedCalls(), 0U);
}

TEST_F(DispatcherTest, PendingCompletedFromAnotherThreadFinishesOnTheLoop) {
  start({{"p", "scripted", ""}});
  ASSERT_TRUE(dispatch("PENDING_THREAD", {"p"}));
  EXPECT_EQ(counters("p").pending, 1U);
  // The plugin starts a thread which completes the call while the loop is
  // not running.
  services_.runPosted();
  ASSERT_TRUE(waitFor([&] { return metric("p", "thread_completes") == 1; }));
  EXPECT_EQ(metric("p", "thread_complete"), EVH_OK);
  EXPECT_EQ(counters("p").ok, 0U);
  EXPECT_EQ(dispatcher_->inFlight(), 1U);

  ASSERT_TRUE(runLoopUntilIdle());
  EXPECT_EQ(counters("p").pending, 1U);
  EXPECT_EQ(counters("p").ok, 1U);
  EXPECT_EQ(dispatcher_->unfinishedCalls(), 0U);
}

TEST_F(DispatcherTest, CompleteBeforeHandleReturnsPendingUsesTheCompletedOutcome) {
  start({{"p", "scripted", ""}});
  ASSERT_TRUE(dispatch("COMPLETE_EARLY_THEN_PENDING", {"p"}));
  EXPECT_EQ(metric("p", "early_complete"), EVH_OK);
  // Finished inside dispatch(), with the outcome given to complete().
  EXPECT_EQ(counters("p").pending, 1U);
  EXPECT_EQ(counters("p").rejected, 1U);
  EXPECT_EQ(counters("p").ok, 0U);
  EXPECT_EQ(counters("p").retry, 0U);
  EXPECT_EQ(dispatcher_->unfinishedCalls(), 0U);
  ASSERT_TRUE(runLoopUntilIdle());  // the rejected event is dead-lettered
}

TEST_F(DispatcherTest, CompleteTwiceIsRefusedTheSecondTime) {
  start({{"late", "scripted", "PENDING_POST_TWICE"}, {"early", "scripted", "COMPLETE_EARLY_TWICE"}});
  ASSERT_TRUE(dispatch("X", {"early"}));
  EXPECT_EQ(metric("early", "second_complete"), EVH_ERR_STATE);
  EXPECT_EQ(counters("early").ok, 1U);

  ASSERT_TRUE(dispatch("X", {"late"}));
  services_.runPosted();
  EXPECT_EQ(metric("late", "second_complete"), EVH_ERR_STATE);
  ASSERT_TRUE(runLoopUntilIdle());
  for (const char* n : {"late", "early"}) {
    const PluginCounts c = counters(n);
    EXPECT_EQ(c.ok, 1U) << n;
    EXPECT_EQ(c.retry + c.rejected, 0U) << n;
  }
}

TEST_F(DispatcherTest, CompleteThenNonPendingAnswerUsesTheAnswerOnce) {
  start({{"p", "scripted", ""}});
  std::ostringstream& log = captureLog("p");
  // The plugin completes with REJECT, then answers OK.
  ASSERT_TRUE(dispatch("COMPLETE_THEN_OK", {"p"}));
  EXPECT_EQ(dispatcher_->inFlight(), 0U);
  // Whatever might have been posted runs: still exactly one outcome.
  services_.runPosted();
  poster_->drain();
  uv_run(&loop_, UV_RUN_NOWAIT);
  const PluginCounts c = counters("p");
  EXPECT_EQ(c.calls, 1U);
  EXPECT_EQ(c.ok, 1U);
  EXPECT_EQ(c.rejected, 0U);
  EXPECT_EQ(c.retry, 0U);
  EXPECT_EQ(c.pending, 0U);
  EXPECT_EQ(dispatcher_->unfinishedCalls(), 0U);
  EXPECT_THAT(log.str(), HasSubstr("plugin bug: complete() was called"));
}

// ---------------------------------------------------------------- limits

TEST_F(DispatcherTest, DispatchRefusesEventsOverMaxInFlightUntilOneFinishes) {
  Dispatcher::Options options;
  options.max_in_flight = 2;
  start({{"later", "scripted", "PENDING_POST"}, {"never", "scripted", "PENDING_NEVER"}}, options);
  ASSERT_TRUE(dispatch("X", {"later"}));
  ASSERT_TRUE(dispatch("X", {"never"}));
  EXPECT_FALSE(dispatch("X", {"later"}));
  EXPECT_FALSE(dispatch("X", {"later", "never"}));
  EXPECT_EQ(dispatcher_->inFlight(), 2U);
  // A refused event calls nothing.
  EXPECT_EQ(metric("later", "calls"), 1);
  EXPECT_EQ(metric("never", "calls"), 1);
  EXPECT_EQ(counters("later").calls, 1U);

  services_.runPosted();
  ASSERT_TRUE(runLoopUntil([&] { return dispatcher_->inFlight() == 1; }));
  EXPECT_TRUE(dispatch("X", {"later"}));
  EXPECT_FALSE(dispatch("X", {"later"}));
  EXPECT_EQ(metric("later", "calls"), 2);
}

TEST_F(DispatcherTest, WhenIdleRunsAtOnceWhenNothingIsInFlight) {
  start({{"p", "scripted", ""}});
  int idle = 0;
  dispatcher_->drain([&] { ++idle; });
  EXPECT_EQ(idle, 1);
  ASSERT_TRUE(dispatch("OK", {"p"}));
  EXPECT_EQ(idle, 1);
}

TEST_F(DispatcherTest, WhenIdleRunsOnceWhenTheLastEventFinishes) {
  start({{"p", "scripted", ""}});
  int idle = 0;
  ASSERT_TRUE(dispatch("PENDING_POST", {"p"}, "1"));
  ASSERT_TRUE(dispatch("PENDING_POST", {"p"}, "2"));
  dispatcher_->drain([&] { ++idle; });
  EXPECT_EQ(idle, 0);
  services_.runPosted();
  ASSERT_TRUE(runLoopUntilIdle());
  EXPECT_EQ(idle, 1);
  ASSERT_TRUE(dispatch("OK", {"p"}, "3"));
  EXPECT_EQ(idle, 1);
}

// ---------------------------------------------------------------- faults

TEST_F(DispatcherTest, ExceptionThrownThroughTheCAbiCountsAsRetry) {
  start({{"p", "scripted", ""}});
  std::ostringstream& log = captureLog("p");
  ASSERT_TRUE(dispatch("THROW", {"p"}));
  EXPECT_EQ(counters("p").retry, 1U);
  EXPECT_EQ(counters("p").ok, 0U);
  ASSERT_TRUE(runLoopUntilIdle());  // dead-lettered
  EXPECT_THAT(log.str(), HasSubstr("exception thrown through the C ABI: scripted threw"));
}

TEST_F(DispatcherTest, ExceptionThrownOnAWorkerCountsAsRetry) {
  start({{"w", "scripted_serial", ""}});
  std::ostringstream& log = captureLog("w");
  ASSERT_TRUE(dispatch("THROW", {"w"}));
  ASSERT_TRUE(runLoopUntilIdle());
  EXPECT_EQ(counters("w").retry, 1U);
  EXPECT_THAT(log.str(), HasSubstr("exception thrown through the C ABI: scripted threw"));
}

TEST_F(DispatcherTest, UnknownStatusIsAFailureCountedAsAnError) {
  start({{"p", "scripted", ""}});
  std::ostringstream& log = captureLog("p");
  ASSERT_TRUE(dispatch("STATUS_42", {"p"}));
  EXPECT_EQ(counters("p").errors, 1U);
  EXPECT_EQ(counters("p").ok + counters("p").retry + counters("p").rejected + counters("p").pending, 0U);
  ASSERT_TRUE(runLoopUntilIdle());  // dead-lettered
  EXPECT_THAT(log.str(), HasSubstr("unknown status 42"));
}

}  // namespace
}  // namespace evh::dispatch
