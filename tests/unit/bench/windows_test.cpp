// Unit tests of plugins/bench/bench_windows.{h,c}: each window's count and
// p99, closed in order, late events and the bound on windows kept.
#include "bench_windows.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace {

class Windows : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(bench_windows_init(&w_), 0); }
  void TearDown() override { bench_windows_free(&w_); }

  bench_windows w_{};
};

TEST_F(Windows, EachWindowIsClosedWhenTheOneTwoAfterItBeginsAndAtTheEnd) {
  // Windows 10 and 11 fill at once (events arrive a little out of order
  // across the boundary); 10 closes when 12 begins.
  for (uint64_t i = 1; i <= 100; ++i) {
    bench_windows_record(&w_, 10, i * 1000);
  }
  bench_windows_record(&w_, 11, 5000);
  bench_windows_record(&w_, 10, 7000);  // still open: counted in 10
  EXPECT_EQ(w_.n_closed, 0u);
  bench_windows_record(&w_, 12, 3000);
  ASSERT_EQ(w_.n_closed, 1u);
  EXPECT_EQ(w_.closed[0].index, 10u);
  EXPECT_EQ(w_.closed[0].count, 101u);
  // The 100th of 101 values, as its bucket's highest value (within 0.1 %).
  EXPECT_NEAR(static_cast<double>(w_.closed[0].p99_ns), 99000.0, 99.0);
  bench_windows_close_all(&w_);
  ASSERT_EQ(w_.n_closed, 3u);
  EXPECT_EQ(w_.closed[1].index, 11u);  // the lower one first
  EXPECT_EQ(w_.closed[1].count, 1u);
  EXPECT_EQ(w_.closed[2].index, 12u);
  EXPECT_EQ(w_.late, 0u);
}

TEST_F(Windows, AnEventOfAClosedWindowIsCountedLate) {
  bench_windows_record(&w_, 4, 1000);
  bench_windows_record(&w_, 6, 1000);  // closes 4
  bench_windows_record(&w_, 4, 2000);  // too late for 4
  bench_windows_record(&w_, 3, 2000);  // two or more before 6: its window is over, though it never opened
  bench_windows_record(&w_, 5, 2000);  // the one just before the latest: still counted
  bench_windows_record(&w_, 3, 2000);  // late
  EXPECT_EQ(w_.late, 3u);
  bench_windows_close_all(&w_);
  ASSERT_EQ(w_.n_closed, 3u);
  EXPECT_EQ(w_.closed[0].index, 4u);
  EXPECT_EQ(w_.closed[1].index, 5u);
  EXPECT_EQ(w_.closed[2].index, 6u);
}

// A window without events (the sender paused): the windows before it still
// close in the order of their indexes.
TEST_F(Windows, WindowsCloseInOrderWhenOneIsSkipped) {
  bench_windows_record(&w_, 10, 1000);
  bench_windows_record(&w_, 11, 1000);
  bench_windows_record(&w_, 14, 1000);  // 12 and 13 had none: 10, then 11, close
  ASSERT_EQ(w_.n_closed, 2u);
  EXPECT_EQ(w_.closed[0].index, 10u);
  EXPECT_EQ(w_.closed[1].index, 11u);
  bench_windows_record(&w_, 13, 1000);  // late to be sent, not to be counted
  bench_windows_record(&w_, 17, 1000);  // closes 13 and 14
  bench_windows_close_all(&w_);
  ASSERT_EQ(w_.n_closed, 5u);
  EXPECT_EQ(w_.closed[2].index, 13u);
  EXPECT_EQ(w_.closed[3].index, 14u);
  EXPECT_EQ(w_.closed[4].index, 17u);
  EXPECT_EQ(w_.late, 0u);
}

TEST_F(Windows, WindowsBeyondTheBoundAreCountedDroppedAndResetForgetsTheRun) {
  for (uint64_t k = 0; k < BENCH_WINDOWS_MAX + 10; ++k) {
    bench_windows_record(&w_, k, 1000);
  }
  bench_windows_close_all(&w_);
  EXPECT_EQ(w_.n_closed, BENCH_WINDOWS_MAX);
  EXPECT_EQ(w_.dropped, 10u);
  for (size_t i = 0; i < w_.n_closed; ++i) {
    EXPECT_EQ(w_.closed[i].index, i);
  }
  bench_windows_reset(&w_);
  EXPECT_EQ(w_.n_closed, 0u);
  EXPECT_EQ(w_.dropped, 0u);
  bench_windows_record(&w_, 7, 1000);
  bench_windows_close_all(&w_);
  ASSERT_EQ(w_.n_closed, 1u);
  EXPECT_EQ(w_.closed[0].index, 7u);
  EXPECT_EQ(w_.closed[0].count, 1u);
}

}  // namespace
