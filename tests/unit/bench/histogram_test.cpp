// Unit tests of plugins/bench/histogram.{h,c}: the bench plugin's
// HdrHistogram-style latency histogram.
#include "histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace {

class Hist : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(bench_hist_init(&h_), 0); }
  void TearDown() override { bench_hist_free(&h_); }

  // Relative error of `got` against `want`.
  static double rel(uint64_t got, uint64_t want) {
    return std::fabs(static_cast<double>(got) - static_cast<double>(want)) / static_cast<double>(want);
  }

  bench_hist h_{};
};

constexpr double kMaxRelError = 0.001;  // 0.1%

TEST_F(Hist, EmptyReportsZeros) {
  EXPECT_EQ(bench_hist_count(&h_), 0u);
  EXPECT_EQ(bench_hist_min(&h_), 0u);
  EXPECT_EQ(bench_hist_max(&h_), 0u);
  EXPECT_EQ(bench_hist_mean(&h_), 0.0);
  EXPECT_EQ(bench_hist_value_at_percentile(&h_, 0.0), 0u);
  EXPECT_EQ(bench_hist_value_at_percentile(&h_, 50.0), 0u);
  EXPECT_EQ(bench_hist_value_at_percentile(&h_, 100.0), 0u);
}

TEST_F(Hist, ValuesBelow2048AreExact) {
  for (uint64_t v = 0; v < 2048; ++v) {
    EXPECT_EQ(bench_hist_index_of(v), v);
    EXPECT_EQ(bench_hist_lowest_equivalent(v), v);
    EXPECT_EQ(bench_hist_highest_equivalent(v), v);
  }
  // Each of 0..2047 once: every percentile is an exact recorded value.
  for (uint64_t v = 0; v < 2048; ++v) {
    bench_hist_record(&h_, v);
  }
  EXPECT_EQ(bench_hist_count(&h_), 2048u);
  EXPECT_EQ(bench_hist_value_at_percentile(&h_, 50.0), 1023u);  // rank 1024
  EXPECT_EQ(bench_hist_value_at_percentile(&h_, 100.0), 2047u);
  EXPECT_EQ(bench_hist_value_at_percentile(&h_, 0.0), 0u);
}

TEST_F(Hist, SingleValue) {
  bench_hist_record(&h_, 1234);
  EXPECT_EQ(bench_hist_value_at_percentile(&h_, 0.0), 1234u);
  EXPECT_EQ(bench_hist_value_at_percentile(&h_, 50.0), 1234u);
  EXPECT_EQ(bench_hist_value_at_percentile(&h_, 99.9), 1234u);
  EXPECT_EQ(bench_hist_value_at_percentile(&h_, 100.0), 1234u);
  EXPECT_EQ(bench_hist_min(&h_), 1234u);
  EXPECT_EQ(bench_hist_max(&h_), 1234u);
  EXPECT_EQ(bench_hist_mean(&h_), 1234.0);
}

TEST_F(Hist, BucketsAreContiguousAndNarrow) {
  // Walk bucket boundaries over many octaves: buckets tile the range with no
  // gap or overlap and each is at most 1/1024 of its values wide.
  uint64_t v = 0;
  size_t prev_index = 0;
  while (v < (uint64_t{1} << 40)) {
    const uint64_t lo = bench_hist_lowest_equivalent(v);
    const uint64_t hi = bench_hist_highest_equivalent(v);
    ASSERT_EQ(lo, v);
    ASSERT_GE(hi, lo);
    ASSERT_LE(static_cast<double>(hi - lo), static_cast<double>(lo) * kMaxRelError) << "at " << v;
    const size_t index = bench_hist_index_of(v);
    if (v != 0) {
      ASSERT_EQ(index, prev_index + 1) << "at " << v;
    }
    ASSERT_EQ(bench_hist_index_of(hi), index);
    prev_index = index;
    v = hi + 1;
  }
  // The top of the range: the last bucket ends at UINT64_MAX.
  EXPECT_EQ(bench_hist_index_of(UINT64_MAX), size_t{BENCH_HIST_BUCKET_COUNT} - 1);
  EXPECT_EQ(bench_hist_highest_equivalent(UINT64_MAX), UINT64_MAX);
  EXPECT_EQ(bench_hist_index_of(uint64_t{1} << 63), size_t{BENCH_HIST_BUCKET_COUNT} - 1024);
}

TEST_F(Hist, UniformPercentilesWithin0_1Percent) {
  for (uint64_t v = 1; v <= 100000; ++v) {
    bench_hist_record(&h_, v);
  }
  EXPECT_EQ(bench_hist_count(&h_), 100000u);
  EXPECT_EQ(bench_hist_min(&h_), 1u);
  EXPECT_EQ(bench_hist_max(&h_), 100000u);
  EXPECT_EQ(bench_hist_mean(&h_), 50000.5);
  const struct {
    double p;
    uint64_t want;
  } cases[] = {{50.0, 50000}, {90.0, 90000}, {99.0, 99000}, {99.9, 99900},  {99.99, 99990},
               {10.0, 10000}, {1.0, 1000},   {0.1, 100},    {100.0, 100000}};
  for (const auto& c : cases) {
    const uint64_t got = bench_hist_value_at_percentile(&h_, c.p);
    EXPECT_LE(rel(got, c.want), kMaxRelError) << "p" << c.p << ": got " << got << ", want ~" << c.want;
    EXPECT_GE(got, c.want) << "p" << c.p << ": the highest equivalent value is reported";
  }
  EXPECT_EQ(bench_hist_value_at_percentile(&h_, 100.0), 100000u);  // clamped to the exact max
  EXPECT_EQ(bench_hist_value_at_percentile(&h_, 250.0), 100000u);  // p clamped to 100
}

TEST_F(Hist, RandomLogNormalAgainstSortedTruth) {
  // Latency-like values from 1 us to seconds, compared with exact order
  // statistics at the same rank convention.
  std::mt19937_64 rng(42);
  std::lognormal_distribution<double> dist(std::log(200000.0), 1.5);
  std::vector<uint64_t> values;
  values.reserve(200000);
  long double sum = 0;
  for (int i = 0; i < 200000; ++i) {
    const auto v = static_cast<uint64_t>(dist(rng));
    values.push_back(v);
    sum += static_cast<long double>(v);
    bench_hist_record(&h_, v);
  }
  std::sort(values.begin(), values.end());
  EXPECT_EQ(bench_hist_min(&h_), values.front());
  EXPECT_EQ(bench_hist_max(&h_), values.back());
  EXPECT_NEAR(bench_hist_mean(&h_), static_cast<double>(sum / values.size()), 1e-6);
  for (double p : {1.0, 25.0, 50.0, 90.0, 99.0, 99.9, 99.99}) {
    auto rank = static_cast<size_t>(p / 100.0 * static_cast<double>(values.size()) + 0.5);
    rank = std::max<size_t>(rank, 1);
    const uint64_t truth = values[rank - 1];
    const uint64_t got = bench_hist_value_at_percentile(&h_, p);
    EXPECT_GE(got, truth) << "p" << p;
    EXPECT_LE(rel(got, truth), kMaxRelError) << "p" << p << ": got " << got << ", want ~" << truth;
  }
}

TEST_F(Hist, MinMaxMeanAreExact) {
  bench_hist_record(&h_, 123457);
  bench_hist_record(&h_, 3);
  bench_hist_record(&h_, 99999999);
  bench_hist_record(&h_, 5000);
  EXPECT_EQ(bench_hist_count(&h_), 4u);
  EXPECT_EQ(bench_hist_min(&h_), 3u);
  EXPECT_EQ(bench_hist_max(&h_), 99999999u);
  EXPECT_DOUBLE_EQ(bench_hist_mean(&h_), (123457.0 + 3.0 + 99999999.0 + 5000.0) / 4.0);
  // The percentiles never exceed the exact max, even though 99999999's
  // bucket reaches higher.
  EXPECT_GT(bench_hist_highest_equivalent(99999999), 99999999u);
  EXPECT_EQ(bench_hist_value_at_percentile(&h_, 100.0), 99999999u);
}

TEST_F(Hist, ResetStartsClean) {
  for (uint64_t v = 1000; v < 50000; v += 7) {
    bench_hist_record(&h_, v);
  }
  bench_hist_record(&h_, 0);           // the first bucket
  bench_hist_record(&h_, UINT64_MAX);  // and the last: reset clears min..max
  bench_hist_reset(&h_);
  EXPECT_EQ(bench_hist_count(&h_), 0u);
  EXPECT_EQ(bench_hist_min(&h_), 0u);
  EXPECT_EQ(bench_hist_max(&h_), 0u);
  EXPECT_EQ(bench_hist_mean(&h_), 0.0);
  EXPECT_EQ(bench_hist_value_at_percentile(&h_, 50.0), 0u);
  for (size_t i = 0; i < BENCH_HIST_BUCKET_COUNT; ++i) {
    ASSERT_EQ(h_.counts[i], 0u) << "bucket " << i;
  }
  // And records as new afterwards.
  bench_hist_record(&h_, 10);
  bench_hist_record(&h_, 20);
  EXPECT_EQ(bench_hist_count(&h_), 2u);
  EXPECT_EQ(bench_hist_min(&h_), 10u);
  EXPECT_EQ(bench_hist_max(&h_), 20u);
  EXPECT_EQ(bench_hist_mean(&h_), 15.0);
  EXPECT_EQ(bench_hist_value_at_percentile(&h_, 50.0), 10u);
  EXPECT_EQ(bench_hist_value_at_percentile(&h_, 100.0), 20u);
}

TEST_F(Hist, SixtySecondsAndBeyondWithoutOverflow) {
  const uint64_t sixty_s = 60ull * 1000 * 1000 * 1000;
  for (int i = 0; i < 1000; ++i) {
    bench_hist_record(&h_, sixty_s);
  }
  bench_hist_record(&h_, 1);
  EXPECT_EQ(bench_hist_count(&h_), 1001u);
  EXPECT_EQ(bench_hist_max(&h_), sixty_s);
  EXPECT_EQ(bench_hist_min(&h_), 1u);
  EXPECT_EQ(bench_hist_value_at_percentile(&h_, 50.0), sixty_s);  // highest equivalent, clamped to max
  EXPECT_LE(rel(bench_hist_highest_equivalent(sixty_s), sixty_s), kMaxRelError);
  EXPECT_NEAR(bench_hist_mean(&h_), (1000.0 * static_cast<double>(sixty_s) + 1.0) / 1001.0, 1e-3);

  // The sum outgrows 64 bits: the mean stays right.
  bench_hist_reset(&h_);
  const uint64_t huge = UINT64_MAX - 10;
  bench_hist_record(&h_, huge);
  bench_hist_record(&h_, huge);
  bench_hist_record(&h_, UINT64_MAX);
  EXPECT_EQ(bench_hist_max(&h_), UINT64_MAX);
  EXPECT_EQ(bench_hist_min(&h_), huge);
  EXPECT_DOUBLE_EQ(bench_hist_mean(&h_), static_cast<double>(UINT64_MAX));
  EXPECT_EQ(bench_hist_value_at_percentile(&h_, 100.0), UINT64_MAX);
}

// Reset clears the buckets between the min and the max: values in a narrow
// range leave every bucket zero too.
TEST_F(Hist, ResetOfANarrowRangeLeavesEveryBucketZero) {
  bench_hist_record(&h_, 5000);
  bench_hist_record(&h_, 6000);
  bench_hist_record(&h_, 5500);
  bench_hist_reset(&h_);
  for (size_t i = 0; i < BENCH_HIST_BUCKET_COUNT; ++i) {
    ASSERT_EQ(h_.counts[i], 0u) << "bucket " << i;
  }
}

TEST(HistLifecycle, FreeIsIdempotentAndResetAfterFreeIsSafe) {
  bench_hist h{};
  ASSERT_EQ(bench_hist_init(&h), 0);
  bench_hist_record(&h, 5);
  bench_hist_free(&h);
  EXPECT_EQ(h.counts, nullptr);
  bench_hist_free(&h);
  bench_hist_reset(&h);
  EXPECT_EQ(bench_hist_count(&h), 0u);
  EXPECT_EQ(bench_hist_value_at_percentile(&h, 50.0), 0u);
}

}  // namespace
