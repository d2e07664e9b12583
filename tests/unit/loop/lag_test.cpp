// The loop's work per iteration: a callback that works 30 ms is one long
// iteration; a 60 ms wait for a timer is not work.
#include "loop/lag.h"

#include "support/stats_text.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>

namespace evh {
namespace {

using ::testing::HasSubstr;

void spin(std::chrono::milliseconds ms) {
  const auto until = std::chrono::steady_clock::now() + ms;
  while (std::chrono::steady_clock::now() < until) {
  }
}

class LoopLagTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(uv_loop_init(&loop_), 0); }
  void TearDown() override {
    lag_.reset();
    uv_run(&loop_, UV_RUN_DEFAULT);
    EXPECT_EQ(uv_loop_close(&loop_), 0);
  }
  // Runs one timer callback after `delay_ms` that works `work_ms`.
  void runTimer(uint64_t delay_ms, int work_ms) {
    uv_timer_t t;
    uv_timer_init(&loop_, &t);
    t.data = &work_ms;
    uv_timer_start(
        &t, [](uv_timer_t* h) { spin(std::chrono::milliseconds(*static_cast<int*>(h->data))); }, delay_ms, 0);
    uv_run(&loop_, UV_RUN_DEFAULT);  // the timer, then the iteration's check
    uv_close(reinterpret_cast<uv_handle_t*>(&t), nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
  }

  uv_loop_t loop_{};
  ops::Registry stats_;
  std::unique_ptr<LoopLag> lag_;
};

TEST_F(LoopLagTest, ALongCallbackIsALongIterationAndAWaitIsNot) {
  lag_ = std::make_unique<LoopLag>(&loop_, stats_);
  runTimer(60, 0);  // waits 60 ms, works nothing
  EXPECT_LT(test::statValue(stats_, "evhost_loop_iteration_max_seconds", {}), 0.03)
      << "the 60 ms wait counted as work\n"
      << test::renderStats(stats_);
  runTimer(1, 40);  // works 40 ms
  const double max_busy = test::statValue(stats_, "evhost_loop_iteration_max_seconds", {});
  EXPECT_GE(max_busy, 0.04) << test::renderStats(stats_);
  EXPECT_LT(max_busy, 5.0);
  // The 40 ms iteration is over the 10 ms bucket; every other is under it.
  for (const auto& f : stats_.samples()) {
    if (f.name == "evhost_loop_iteration_seconds") {
      ASSERT_EQ(f.series.size(), 1U);
      const auto& h = f.series[0];
      ASSERT_EQ(f.bounds[6], 0.01);
      EXPECT_GE(h.count, 2U);
      EXPECT_EQ(h.buckets[6], h.count - 1) << test::renderStats(stats_);
    }
  }
}

}  // namespace
}  // namespace evh
