// The circuit breaker state machine and retry delays, with a fake clock.
#include "dispatch/breaker.h"
#include "dispatch/retry.h"

#include <gtest/gtest.h>

namespace evh::dispatch {
namespace {

config::BreakerPolicy policy(uint32_t threshold, uint32_t open_ms, uint32_t half_open) {
  config::BreakerPolicy p;
  p.threshold = threshold;
  p.open_ms = open_ms;
  p.half_open_max_calls = half_open;
  return p;
}

class BreakerTest : public ::testing::Test {
 protected:
  CircuitBreaker b_{policy(3, 1000, 2)};
};

TEST_F(BreakerTest, OpensAfterThresholdConsecutiveFailures) {
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(b_.tryAcquire(0));
    b_.onFailure(false, 0);
  }
  EXPECT_EQ(b_.state(), CircuitBreaker::State::Closed);
  ASSERT_TRUE(b_.tryAcquire(0));
  b_.onFailure(false, 10);
  EXPECT_EQ(b_.state(), CircuitBreaker::State::Open);
  EXPECT_TRUE(b_.changed);
  EXPECT_FALSE(b_.tryAcquire(500));
  EXPECT_EQ(b_.reopenAtMs(), 1010U);
}

TEST_F(BreakerTest, ASuccessResetsTheFailureCount) {
  b_.onFailure(false, 0);
  b_.onFailure(false, 0);
  b_.onSuccess(false);
  b_.onFailure(false, 0);
  b_.onFailure(false, 0);
  EXPECT_EQ(b_.state(), CircuitBreaker::State::Closed);
}

TEST_F(BreakerTest, HalfOpensAfterOpenMsAndGrantsOnlyTheTrialCalls) {
  for (int i = 0; i < 3; ++i) {
    b_.onFailure(false, 0);
  }
  EXPECT_FALSE(b_.tryAcquire(999));
  EXPECT_TRUE(b_.tryAcquire(1000));
  EXPECT_EQ(b_.state(), CircuitBreaker::State::HalfOpen);
  EXPECT_TRUE(b_.tryAcquire(1000));
  EXPECT_FALSE(b_.tryAcquire(1000));  // only half_open_max_calls = 2 trials
}

TEST_F(BreakerTest, AllTrialsSucceedingCloseIt) {
  for (int i = 0; i < 3; ++i) {
    b_.onFailure(false, 0);
  }
  ASSERT_TRUE(b_.tryAcquire(1000));
  ASSERT_TRUE(b_.tryAcquire(1000));
  b_.onSuccess(true);
  EXPECT_EQ(b_.state(), CircuitBreaker::State::HalfOpen);
  b_.onSuccess(true);
  EXPECT_EQ(b_.state(), CircuitBreaker::State::Closed);
  EXPECT_TRUE(b_.tryAcquire(1000));
  EXPECT_EQ(b_.transitions(), 3U);  // open, half-open, closed
}

TEST_F(BreakerTest, ATrialFailureReopensIt) {
  for (int i = 0; i < 3; ++i) {
    b_.onFailure(false, 0);
  }
  ASSERT_TRUE(b_.tryAcquire(1000));
  b_.onFailure(true, 1200);
  EXPECT_EQ(b_.state(), CircuitBreaker::State::Open);
  EXPECT_EQ(b_.reopenAtMs(), 2200U);
  EXPECT_FALSE(b_.tryAcquire(2199));
}

TEST_F(BreakerTest, LateOutcomesOfCallsStartedBeforeOpeningAreIgnored) {
  for (int i = 0; i < 3; ++i) {
    b_.onFailure(false, 0);
  }
  b_.onFailure(false, 5);  // a call granted while closed, failing late
  b_.onSuccess(false);
  EXPECT_EQ(b_.state(), CircuitBreaker::State::Open);
  EXPECT_EQ(b_.reopenAtMs(), 1000U);
}

class RetryDelayTest : public ::testing::Test {
 protected:
  config::RetryPolicy p_;
};

TEST_F(RetryDelayTest, ThePlansDefaultsDoubleFromOneSecond) {
  p_.jitter = config::Jitter::None;
  auto never = [] { return 0.0; };
  EXPECT_EQ(retryDelayMs(p_, 2, never), 1000U);
  EXPECT_EQ(retryDelayMs(p_, 3, never), 2000U);
  EXPECT_EQ(retryDelayMs(p_, 4, never), 4000U);
}

TEST_F(RetryDelayTest, DelaysAreCappedAtMaxDelay) {
  p_.jitter = config::Jitter::None;
  p_.max_delay_ms = 3000;
  EXPECT_EQ(retryDelayMs(p_, 10, [] { return 0.0; }), 3000U);
  EXPECT_EQ(retryDelayMs(p_, 200, [] { return 0.0; }), 3000U);
}

TEST_F(RetryDelayTest, FullJitterSpansZeroToTheDelay) {
  p_.jitter = config::Jitter::Full;
  EXPECT_EQ(retryDelayMs(p_, 3, [] { return 0.0; }), 0U);
  EXPECT_EQ(retryDelayMs(p_, 3, [] { return 0.5; }), 1000U);
}

TEST_F(RetryDelayTest, EqualJitterKeepsAtLeastHalf) {
  p_.jitter = config::Jitter::Equal;
  EXPECT_EQ(retryDelayMs(p_, 3, [] { return 0.0; }), 1000U);
  EXPECT_EQ(retryDelayMs(p_, 3, [] { return 0.999; }), 1999U);
}

}  // namespace
}  // namespace evh::dispatch
