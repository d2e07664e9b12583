// The dispatcher with real plugins: inline and blocking calls, PENDING from any thread, limits, shutdown.
#include "dispatch/dispatcher.h"

#include "plugin/registry.h"
#include "support/fake_host.h"

#include "support/stats_text.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <functional>
#include <initializer_list>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace evh::dispatch {
namespace {

using ::testing::HasSubstr;

constexpr size_t kPoolThreads = 4;
// Only guards against hangs: every wait below normally ends in milliseconds.
constexpr auto kHangGuard = std::chrono::seconds(20);

int64_t threadHash(std::thread::id id) { return static_cast<int64_t>(std::hash<std::thread::id>{}(id)); }

// One plugin instance to load: instance name, library (test plugin file name)
// and the scripted answer ("" = the event type decides).
struct PluginSpec {
  std::string name;
  std::string library;
  std::string answer;
};

class DispatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    poster_ = std::make_unique<Poster>(&loop_);
    pool_ = std::make_unique<WorkerPool>(kPoolThreads);
  }

  // The server's shutdown order: workers, posts, plugins, then the dispatcher.
  void TearDown() override {
    pool_->stop();
    services_.runPosted();
    poster_->drain();
    registry_.shutdownAll();
    dispatcher_.reset();
    poster_->close();
    uv_run(&loop_, UV_RUN_DEFAULT);
    poster_.reset();
    EXPECT_EQ(uv_loop_close(&loop_), 0);
  }

  void start(std::initializer_list<PluginSpec> specs, Dispatcher::Options options = {}) {
    std::vector<config::Plugin> entries;
    for (const auto& s : specs) {
      config::Plugin p;
      p.name = s.name;
      p.path = std::string(EVH_TEST_PLUGIN_DIR) + "/" + s.library + ".so";
      p.config_json = s.answer.empty() ? "{}" : R"({"answer":")" + s.answer + R"("})";
      p.config_dir = ".";
      entries.push_back(std::move(p));
    }
    registry_.load(entries, {}, services_, "dev:");
    std::vector<PluginSetup> setups;
    for (const auto& in : registry_.instances()) {
      setups.push_back(PluginSetup{in.get(), breaker_, timeout_ms_});
    }
    if (options.fallback_file == Dispatcher::Options{}.fallback_file) {
      options.fallback_file = fallbackPath();
      std::remove(options.fallback_file.c_str());
    }
    dispatcher_ = std::make_unique<Dispatcher>(&loop_, *poster_, *pool_, setups, options);
  }

  // Dead letters of these tests go to a file of their own.
  std::string fallbackPath() const {
    return ::testing::TempDir() + "/dispatcher_test_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".jsonl";
  }

  plugin::Instance* plugin(const std::string& name) {
    plugin::Instance* in = registry_.find(name);
    EXPECT_NE(in, nullptr) << name;
    return in;
  }

  route::Targets targets(std::initializer_list<const char*> names) {
    route::Targets out;
    for (const char* n : names) {
      out.push_back(route::Target{plugin(n), 0, retry_});
    }
    return out;
  }

  event::Event makeEvent(const std::string& type, const std::string& id = "evt-1") {
    std::string json = R"({"eventId":")" + id + R"(","eventType":")" + type +
                       R"(","timestamp":"2024-01-15T10:30:00.000Z","correlationId":"corr-1","payload":{"n":1}})";
    std::vector<event::Item> items;
    decoder_.decode(event::makeMessage(json, "jollyjet:events:test", "dev:jollyjet:events:test"), items);
    EXPECT_EQ(items.size(), 1U);
    EXPECT_TRUE(std::holds_alternative<event::Event>(items.at(0)));
    return std::get<event::Event>(std::move(items.at(0)));
  }

  bool dispatch(const std::string& type, std::initializer_list<const char*> names, const std::string& id = "evt-1") {
    return dispatcher_->dispatch(makeEvent(type, id), targets(names));
  }

  // Runs the loop until done() holds; false on the hang guard.
  bool runLoopUntil(const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + kHangGuard;
    for (;;) {
      uv_run(&loop_, UV_RUN_NOWAIT);
      if (done()) {
        return true;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  // Waits WITHOUT running the loop (for work done by other threads).
  static bool waitFor(const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + kHangGuard;
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) {
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
  }

  bool runLoopUntilIdle() {
    return runLoopUntil([this] { return dispatcher_->inFlight() == 0; });
  }

  // Copies the log lines of one plugin instance into a string stream.
  std::ostringstream& captureLog(const std::string& name) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log_);
    plugin(name)->logger().sinks().push_back(sink);
    return log_;
  }

  int64_t metric(const std::string& name, const std::string& metric_name) {
    return test::metricValue(*plugin(name), metric_name);
  }

  PluginCounts counters(const std::string& name) { return dispatcher_->counters(plugin(name)); }

  uv_loop_t loop_{};
  ops::Registry stats_;  // outlives the dispatcher (EachPluginsSeriesAreInTheStatsRegistry)
  event::Decoder decoder_;
  test::FakeServices services_;
  std::ostringstream log_;  // before registry_: the plugins' loggers may write to it
  std::unique_ptr<Poster> poster_;
  std::unique_ptr<WorkerPool> pool_;
  plugin::Registry registry_;
  std::unique_ptr<Dispatcher> dispatcher_;
  uint32_t timeout_ms_ = 0;  // every plugin's, when a test sets it before start()
  // One attempt per event unless a test says otherwise; a breaker that
  // stays closed through these tests' failures.
  config::RetryPolicy retry_ = [] {
    config::RetryPolicy r;
    r.max_attempts = 1;
    return r;
  }();
  config::BreakerPolicy breaker_ = [] {
    config::BreakerPolicy b;
    b.threshold = 1000;
    return b;
  }();
};

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
