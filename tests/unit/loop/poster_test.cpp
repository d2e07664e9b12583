// Posting onto the loop from other threads.
#include "loop/poster.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

namespace evh {
namespace {

class PosterTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(uv_loop_init(&loop_), 0); }
  void TearDown() override {
    uv_run(&loop_, UV_RUN_DEFAULT);
    EXPECT_EQ(uv_loop_close(&loop_), 0);
  }
  uv_loop_t loop_;
};

TEST_F(PosterTest, RunsEveryPostFromManyThreadsOnTheLoopThread) {
  Poster poster(&loop_);
  const auto loop_thread = std::this_thread::get_id();
  std::atomic<int> ran{0};
  std::atomic<int> wrong_thread{0};
  constexpr int kThreads = 4;
  constexpr int kEach = 1000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        poster.post([&] {
          if (std::this_thread::get_id() != loop_thread) {
            ++wrong_thread;
          }
          if (++ran == kThreads * kEach) {
            poster.close();
          }
        });
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  uv_run(&loop_, UV_RUN_DEFAULT);
  EXPECT_EQ(ran.load(), kThreads * kEach);
  EXPECT_EQ(wrong_thread.load(), 0);
}

// Stops the loop after `ms`: a hang guard for tests whose loop runs until a
// Poster is closed (a lost wake-up would keep it waiting for ever).
class HangGuard {
 public:
  HangGuard(uv_loop_t* loop, uint64_t ms) {
    uv_timer_init(loop, &timer_);
    uv_timer_start(
        &timer_, [](uv_timer_t* t) { uv_stop(t->loop); }, ms, 0);
    uv_unref(reinterpret_cast<uv_handle_t*>(&timer_));  // it alone does not keep the loop running
  }
  ~HangGuard() {
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
    uv_run(timer_.loop, UV_RUN_NOWAIT);  // lets the close finish before the timer's memory goes
  }
  HangGuard(const HangGuard&) = delete;
  HangGuard& operator=(const HangGuard&) = delete;

 private:
  uv_timer_t timer_{};
};

// The loop runs while the producers post, so that wake-ups race the loop
// taking the queue: none may be lost (the loop would wait for ever; the
// guard stops it after 30 s and the count then names the loss).
TEST_F(PosterTest, NoPostIsLeftBehindWhileTheLoopRunsConcurrently) {
  Poster poster(&loop_);
  std::atomic<int> ran{0};
  constexpr int kThreads = 4;
  constexpr int kEach = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        poster.post([&] {
          if (++ran == kThreads * kEach) {
            poster.close();
          }
        });
        if (i % 64 == 0) {
          std::this_thread::yield();  // let the loop take partial queues
        }
      }
    });
  }
  {
    HangGuard guard(&loop_, 30000);
    uv_run(&loop_, UV_RUN_DEFAULT);  // returns once close() stopped the polling
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(ran.load(), kThreads * kEach);
}

// A function posted by a posted function is not run by the batch that is
// running: it waits for a later loop iteration (a busy poster must not keep
// the loop from its other handles).
TEST_F(PosterTest, APostMadeByAPostedFunctionRunsOnALaterIteration) {
  Poster poster(&loop_);
  uv_check_t check{};
  uv_check_init(&loop_, &check);
  int iteration = 0;
  check.data = &iteration;
  uv_check_start(&check, [](uv_check_t* c) { ++*static_cast<int*>(c->data); });
  int outer_at = -1;
  int inner_at = -1;
  poster.post([&] {
    outer_at = iteration;
    poster.post([&] {
      inner_at = iteration;
      poster.close();
      uv_close(reinterpret_cast<uv_handle_t*>(&check), nullptr);
    });
  });
  {
    HangGuard guard(&loop_, 30000);
    uv_run(&loop_, UV_RUN_DEFAULT);
  }
  ASSERT_GE(outer_at, 0);
  EXPECT_GT(inner_at, outer_at);
}

// close() run by a function that close() itself is draining.
TEST_F(PosterTest, CloseFromAFunctionThatCloseRunsIsHarmless) {
  Poster poster(&loop_);
  int ran = 0;
  poster.post([&] {
    ++ran;
    poster.close();
  });
  poster.close();
  EXPECT_EQ(ran, 1);
  EXPECT_FALSE(poster.post([&] { ++ran; }));
}

TEST_F(PosterTest, CloseRunsWhatIsQueuedAndRefusesLaterPosts) {
  Poster poster(&loop_);
  int ran = 0;
  poster.post([&] { ++ran; });
  poster.close();
  EXPECT_EQ(ran, 1);
  EXPECT_FALSE(poster.post([&] { ++ran; }));
  EXPECT_EQ(ran, 1);
}

}  // namespace
}  // namespace evh
