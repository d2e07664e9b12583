// Posting onto the loop from other threads.
#include "loop/poster.h"

#include <gtest/gtest.h>

#include <atomic>
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

// The loop runs while the producers post, so that wake-ups race the loop
// taking the queue: none may be lost (the loop would then wait for ever --
// the test's time bound names the hang).
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
  uv_run(&loop_, UV_RUN_DEFAULT);  // returns once close() stopped the polling
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(ran.load(), kThreads * kEach);
}

TEST_F(PosterTest, APostMadeByAPostedFunctionRunsOnALaterWakeUp) {
  Poster poster(&loop_);
  std::vector<int> order;
  poster.post([&] {
    order.push_back(1);
    poster.post([&] {
      order.push_back(2);
      poster.close();
    });
  });
  uv_run(&loop_, UV_RUN_DEFAULT);
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
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
