// The runtime graph and the ingest pipeline: an event in flight keeps the
// routes and policies it was routed by after another runtime replaced them
// (the property hot reload relies on), and the old runtime goes when its
// last event does.
#include "runtime/runtime.h"

#include "dispatch/dispatcher.h"
#include "ingest/admission.h"
#include "ingest/pipeline.h"
#include "plugin/registry.h"
#include "support/fake_host.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "support/stats_text.h"
#include "support/temp_file.h"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>

namespace evh::runtime {
namespace {

using ::testing::HasSubstr;

constexpr auto kHangGuard = std::chrono::seconds(20);

config::Channel ordersChannel(const std::string& plugin, uint32_t max_attempts) {
  config::Route r;
  r.events = {"RETRY", "OK"};
  r.plugins = {plugin};
  r.retry.max_attempts = max_attempts;
  r.retry.base_delay_ms = 20;
  r.retry.jitter = config::Jitter::None;
  config::Channel ch;
  ch.name = "jollyjet:events:orders";
  ch.routes = {r};
  return ch;
}

std::string event(const std::string& type, const std::string& id) {
  return R"({"eventId":")" + id + R"(","eventType":")" + type +
         R"(","timestamp":"2026-12-02T10:30:00.000Z","correlationId":"c-1","payload":{}})";
}

class RuntimeSwapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    poster_ = std::make_unique<Poster>(&loop_);
    pool_ = std::make_unique<dispatch::WorkerPool>(1);
    std::vector<config::Plugin> entries;
    for (const char* n : {"p", "q"}) {
      config::Plugin p;
      p.name = n;
      p.path = std::string(EVH_TEST_PLUGIN_DIR) + "/scripted.so";
      p.config_json = "{}";
      p.config_dir = ".";
      entries.push_back(std::move(p));
    }
    registry_.load(entries, {}, services_, "dev:");
    std::vector<dispatch::PluginSetup> setups;
    for (const auto& in : registry_.instances()) {
      setups.push_back(dispatch::PluginSetup{in.get(), config::BreakerPolicy{1000}, 0});
    }
    dispatch::Dispatcher::Options options;
    options.fallback_file = fallback_;
    options.stats = &stats_;
    std::remove(fallback_.c_str());
    dispatcher_ = std::make_unique<dispatch::Dispatcher>(&loop_, *poster_, *pool_, setups, options);
    admission_ = std::make_unique<ingest::Admission>(&loop_, *dispatcher_, ingest::Admission::Limits{},
                                                     ingest::Admission::Sources{[] {}, [] {}}, stats_);
  }

  void TearDown() override {
    pipeline_.reset();
    admission_.reset();
    pool_->stop();
    poster_->drain();
    registry_.shutdownAll();
    dispatcher_.reset();
    poster_->close();
    uv_run(&loop_, UV_RUN_DEFAULT);
    poster_.reset();
    EXPECT_EQ(uv_loop_close(&loop_), 0);
  }

  RuntimePtr build(const config::Channel& ch, uint64_t generation) {
    config::Config cfg;
    cfg.environment = "dev";
    cfg.channels = {ch};
    return Runtime::build(
        cfg, [this](const std::string& n) { return registry_.find(n); }, ids_, generation);
  }

  int64_t calls(const char* plugin) { return test::metricValue(*registry_.find(plugin), "calls"); }

  bool runLoopUntil(const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + kHangGuard;
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) {
        return false;
      }
      uv_run(&loop_, UV_RUN_NOWAIT);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
  }

  std::string fallbackText() {
    std::ifstream in(fallback_);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  uv_loop_t loop_{};
  ops::Registry stats_;  // outlives everything registering series in it
  test::FakeServices services_;
  std::unique_ptr<Poster> poster_;
  std::unique_ptr<dispatch::WorkerPool> pool_;
  plugin::Registry registry_;
  std::unique_ptr<dispatch::Dispatcher> dispatcher_;
  std::unique_ptr<ingest::Admission> admission_;
  std::unique_ptr<ingest::Pipeline> pipeline_;
  ChannelIds ids_;
  // A folder of this test's own: ctest runs the cases side by side, and one
  // case's SetUp must not remove the file another one is about to read.
  test::TempDir dir_;
  std::string fallback_ = dir_.path() + "/dead-letters.jsonl";
};

TEST_F(RuntimeSwapTest, AnEventInFlightKeepsItsRoutesAndPoliciesAfterAnotherRuntimeReplacedThem) {
  // Runtime 1: RETRY events go to p, three attempts. Runtime 2: to q, one.
  RuntimePtr first = build(ordersChannel("p", 3), 1);
  RuntimePtr second = build(ordersChannel("q", 1), 2);
  const ChannelId id = first->channels().at(0).id;
  ASSERT_EQ(second->channels().at(0).id, id);  // the same channel, the same identity
  std::weak_ptr<const Runtime> first_alive = first;
  pipeline_ = std::make_unique<ingest::Pipeline>(&loop_, *dispatcher_, std::move(first), *admission_, stats_,
                                                 ingest::Pipeline::Options{});

  pipeline_->pubsub(id, "dev:jollyjet:events:orders", event("RETRY", "e-1"));
  ASSERT_EQ(dispatcher_->inFlight(), 1U);
  EXPECT_EQ(calls("p"), 1);  // its first attempt, inline; the retry waits 20 ms

  // The swap: new messages take runtime 2; nothing but the event holds runtime 1 now.
  pipeline_->use(std::move(second));
  EXPECT_FALSE(first_alive.expired());

  ASSERT_TRUE(runLoopUntil([&] { return dispatcher_->inFlight() == 0; }));
  // Runtime 1's route and policy to the end: p, three attempts -- not q, not one.
  EXPECT_EQ(calls("p"), 3);
  EXPECT_EQ(calls("q"), 0);
  EXPECT_NE(fallbackText().find("\"attempts\":3"), std::string::npos) << fallbackText();
  // Its last event finished: runtime 1 is gone.
  EXPECT_TRUE(first_alive.expired());

  // A new event takes runtime 2: q, one attempt.
  pipeline_->pubsub(id, "dev:jollyjet:events:orders", event("RETRY", "e-2"));
  ASSERT_TRUE(runLoopUntil([&] { return dispatcher_->inFlight() == 0; }));
  EXPECT_EQ(calls("p"), 3);
  EXPECT_EQ(calls("q"), 1);
}

TEST_F(RuntimeSwapTest, AMessageForAChannelTheRuntimeNoLongerHasIsNotRouted) {
  RuntimePtr first = build(ordersChannel("p", 1), 1);
  const ChannelId id = first->channels().at(0).id;
  config::Channel other = ordersChannel("q", 1);
  other.name = "jollyjet:events:users";
  pipeline_ = std::make_unique<ingest::Pipeline>(&loop_, *dispatcher_, std::move(first), *admission_, stats_,
                                                 ingest::Pipeline::Options{});
  pipeline_->use(build(other, 2));
  pipeline_->pubsub(id, "dev:jollyjet:events:orders", event("OK", "e-1"));
  EXPECT_EQ(dispatcher_->inFlight(), 0U);
  EXPECT_EQ(calls("p"), 0);
  EXPECT_EQ(calls("q"), 0);
}

TEST_F(RuntimeSwapTest, ThePipelinesSeriesAreInTheStatsRegistry) {
  RuntimePtr first = build(ordersChannel("p", 1), 1);
  const ChannelId id = first->channels().at(0).id;
  pipeline_ = std::make_unique<ingest::Pipeline>(&loop_, *dispatcher_, std::move(first), *admission_, stats_,
                                                 ingest::Pipeline::Options{});
  // Registered before the first message: every channel's series reads 0.
  EXPECT_THAT(test::renderStats(stats_),
              HasSubstr("evhost_messages_received_total{channel=\"jollyjet:events:orders\"} 0\n"));
  const std::string ok = event("OK", "e-1");
  pipeline_->pubsub(id, "dev:jollyjet:events:orders", ok);
  pipeline_->pubsub(id, "dev:jollyjet:events:orders", event("NOT_ROUTED", std::string(300, 'x')));  // 400 bytes
  pipeline_->pubsub(id, "dev:jollyjet:events:orders", "{not json");
  pipeline_->pubsub(id, "dev:jollyjet:events:orders", R"({"eventType":"OK"})");
  // Idle: nothing in flight and both dead letters stored.
  bool idle = false;
  dispatcher_->drain([&] { idle = true; });
  ASSERT_TRUE(runLoopUntil([&] { return idle; }));
  const std::string text = test::renderStats(stats_);
  EXPECT_THAT(text, HasSubstr("evhost_messages_received_total{channel=\"jollyjet:events:orders\"} 4\n"));
  EXPECT_THAT(text, HasSubstr("evhost_events_decoded_total{channel=\"jollyjet:events:orders\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("evhost_events_unrouted_total{channel=\"jollyjet:events:orders\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("evhost_ingest_refused_total{reason=\"not_json\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("evhost_ingest_refused_total{reason=\"missing_field\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("evhost_ingest_refused_total{reason=\"overloaded\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("evhost_message_size_bytes_count{channel=\"jollyjet:events:orders\"} 4\n"));
  EXPECT_THAT(text, HasSubstr("evhost_message_size_bytes_bucket{channel=\"jollyjet:events:orders\",le=\"512\"} 4\n"));
  EXPECT_THAT(text, HasSubstr("evhost_message_size_bytes_bucket{channel=\"jollyjet:events:orders\",le=\"128\"} 3\n"));
  // Only the routed event has an end to time (its timestamp is long past).
  EXPECT_THAT(text, HasSubstr("evhost_event_latency_seconds_count{channel=\"jollyjet:events:orders\"} 1\n"));
  EXPECT_THAT(text,
              HasSubstr("evhost_event_latency_seconds_bucket{channel=\"jollyjet:events:orders\",le=\"300\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("evhost_dead_letters_total{reason=\"invalid\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("evhost_events_in_flight 0\n"));
  EXPECT_THAT(text, HasSubstr("evhost_ingest_paused 0\n"));
}

}  // namespace
}  // namespace evh::runtime
