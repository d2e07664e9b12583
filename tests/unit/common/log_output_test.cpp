// The Async log output: logging never waits for a stuck sink, a full queue
// drops its oldest lines and counts them (evhost_log_dropped_total, read
// through the stats registry), one line says so once there is room, and
// drain() waits for every line logged before it.
#include "common/log.h"
#include "loop/log_drops.h"

#include "support/stats_text.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/sink.h>

#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace evh {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr auto kHangGuard = std::chrono::seconds(10);

// Holds the writer in its first line until opened; keeps every line's text.
class GateSink final : public spdlog::sinks::sink {
 public:
  void log(const spdlog::details::log_msg& msg) override {
    std::unique_lock<std::mutex> lock(mutex_);
    entered_ = true;
    cv_.notify_all();
    cv_.wait(lock, [this] { return open_; });
    lines_.emplace_back(msg.payload.data(), msg.payload.size());
    if (delay_.count() > 0) {
      std::this_thread::sleep_for(delay_);
    }
  }
  void flush() override {}
  void set_pattern(const std::string&) override {}
  void set_formatter(std::unique_ptr<spdlog::formatter>) override {}

  void open() {
    std::lock_guard<std::mutex> lock(mutex_);
    open_ = true;
    cv_.notify_all();
  }
  bool waitEntered() {
    std::unique_lock<std::mutex> lock(mutex_);
    return cv_.wait_for(lock, kHangGuard, [this] { return entered_; });
  }
  std::vector<std::string> lines() {
    std::lock_guard<std::mutex> lock(mutex_);
    return lines_;
  }
  void slow(std::chrono::milliseconds delay) { delay_ = delay; }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool open_ = false;
  bool entered_ = false;
  std::chrono::milliseconds delay_{0};
  std::vector<std::string> lines_;
};

int64_t droppedTotal(const ops::Registry& stats) {
  for (const auto& f : stats.samples()) {
    if (f.name == "evhost_log_dropped_total" && f.series.size() == 1) {
      EXPECT_EQ(f.kind, ops::Kind::Counter);
      return f.series[0].exact;
    }
  }
  ADD_FAILURE() << "no evhost_log_dropped_total in\n" << test::renderStats(stats);
  return -1;
}

class LogOutputTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(uv_loop_init(&loop_), 0); }
  void TearDown() override {
    uv_run(&loop_, UV_RUN_DEFAULT);
    EXPECT_EQ(uv_loop_close(&loop_), 0);
  }

  uv_loop_t loop_{};
  ops::Registry stats_;
  std::shared_ptr<GateSink> sink_ = std::make_shared<GateSink>();
};

TEST_F(LogOutputTest, AStuckSinkNeverHoldsTheLoggerAndTheDropsAreCountedThenSaid) {
  constexpr size_t kQueue = 16;
  log::AsyncOutput out(sink_, kQueue);
  LogDrops drops(&loop_, &out, stats_);
  auto logger = out.makeLogger("t");
  logger->info("line 0");
  ASSERT_TRUE(sink_->waitEntered());  // the writer holds line 0 in the stuck sink
  // 200 more lines into a queue of 16, the sink stuck: none may wait.
  auto logged = std::async(std::launch::async, [&] {
    for (int i = 1; i <= 200; ++i) {
      logger->info("line {}", i);
    }
  });
  ASSERT_EQ(logged.wait_for(kHangGuard), std::future_status::ready) << "logging waited for the stuck sink";
  EXPECT_EQ(out.dropped(), 200 - kQueue);
  EXPECT_EQ(out.queued(), kQueue);

  drops.check();
  EXPECT_EQ(droppedTotal(stats_), static_cast<int64_t>(200 - kQueue));
  // No room yet: the line saying so would only push out another.
  sink_->open();
  ASSERT_TRUE(out.drain(kHangGuard));
  drops.check();
  EXPECT_EQ(droppedTotal(stats_), static_cast<int64_t>(200 - kQueue)) << "counted once";
  ASSERT_TRUE(out.drain(kHangGuard));
  const std::vector<std::string> lines = sink_->lines();
  // The oldest went; the newest 16 stayed, in order, after line 0.
  ASSERT_EQ(lines.size(), 1 + kQueue + 1) << ::testing::PrintToString(lines);
  EXPECT_EQ(lines[0], "line 0");
  EXPECT_EQ(lines[1], "line 185");
  EXPECT_EQ(lines[kQueue], "line 200");
  EXPECT_THAT(lines.back(), HasSubstr("184 log line(s) dropped: the log output (stderr) did not keep up"));
  drops.check();
  ASSERT_TRUE(out.drain(kHangGuard));
  EXPECT_EQ(sink_->lines().size(), 1 + kQueue + 1) << "said once";
}

TEST_F(LogOutputTest, DrainWaitsForEveryLineLoggedBefore) {
  sink_->open();
  sink_->slow(std::chrono::milliseconds(1));
  log::AsyncOutput out(sink_, 1000);
  auto a = out.makeLogger("a");
  auto b = out.makeLogger("b");
  for (int i = 0; i < 100; ++i) {
    (i % 2 == 0 ? a : b)->info("line {}", i);
  }
  ASSERT_TRUE(out.drain(kHangGuard));
  const std::vector<std::string> lines = sink_->lines();
  ASSERT_EQ(lines.size(), 100U);
  EXPECT_EQ(lines.back(), "line 99");
  EXPECT_EQ(out.written(), 100U);
  EXPECT_EQ(out.dropped(), 0U);
}

TEST_F(LogOutputTest, DrainGivesUpOnAStuckSink) {
  log::AsyncOutput out(sink_, 16);
  out.makeLogger("t")->info("stuck");
  ASSERT_TRUE(sink_->waitEntered());
  EXPECT_FALSE(out.drain(std::chrono::milliseconds(100)));
  sink_->open();  // the destructor writes what is left
  EXPECT_TRUE(out.drain(kHangGuard));
  EXPECT_THAT(sink_->lines(), Contains("stuck"));
}

TEST_F(LogOutputTest, WithoutAnAsyncOutputTheSeriesIsThereAndStaysZero) {
  LogDrops drops(&loop_, nullptr, stats_);
  drops.check();
  EXPECT_EQ(droppedTotal(stats_), 0);
}

TEST_F(LogOutputTest, ALoggersLevelFiltersBeforeTheQueue) {
  sink_->open();
  log::AsyncOutput out(sink_, 16);
  auto logger = out.makeLogger("t");
  logger->set_level(spdlog::level::warn);
  logger->info("filtered");
  logger->warn("kept");
  ASSERT_TRUE(out.drain(kHangGuard));
  EXPECT_THAT(sink_->lines(), Not(Contains("filtered")));
  EXPECT_THAT(sink_->lines(), Contains("kept"));
}

}  // namespace
}  // namespace evh
