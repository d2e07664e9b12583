// The dispatcher tests' fixture: real test plugins loaded into a registry,
// a dispatcher over a private loop and worker pool, and waits bounded only
// against hangs. dispatcher_test.cpp and dispatcher_workers_test.cpp use it.
#pragma once

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

using ::testing::HasSubstr;

inline constexpr size_t kPoolThreads = 4;
// Only guards against hangs: every wait below normally ends in milliseconds.
inline constexpr auto kHangGuard = std::chrono::seconds(20);

inline int64_t threadHash(std::thread::id id) { return static_cast<int64_t>(std::hash<std::thread::id>{}(id)); }

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

}  // namespace evh::dispatch
