// The scraper: refreshes first, within a budget; one round serves every
// request that arrives while it runs.
#include "app/scraper.h"
#include "support/stats_text.h"

#include <gtest/gtest.h>

#include <uv.h>

#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace evh::app {
namespace {

class ScraperTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(uv_loop_init(&loop_), 0); }
  void TearDown() override {
    scraper_.reset();
    uv_run(&loop_, UV_RUN_NOWAIT);
    EXPECT_EQ(uv_loop_close(&loop_), 0);
  }

  // Runs the loop until `pred` holds (10 s: a hang guard).
  bool runUntil(const std::function<bool()>& pred) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!pred()) {
      if (std::chrono::steady_clock::now() > until) {
        return false;
      }
      uv_run(&loop_, UV_RUN_NOWAIT);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
  }

  // A series' value as the ops thread collects it (no computation); -1
  // when it is not in the collection.
  double collected(const std::string& name) const {
    for (const auto& f : ops::samplesOf(stats_.collect())) {
      if (f.name == name && !f.series.empty()) {  // a computed gauge not present has no series
        return f.series.at(0).value;
      }
    }
    return -1;
  }

  uv_loop_t loop_{};
  ops::Registry stats_;
  ops::Scope scope_{stats_};
  ops::Gauge refreshed_ = scope_.gauge("refreshed", "set by the refresh");
  double loop_state_ = 0;  // what the computed gauge reads ("loop-owned")
  int computed_calls_ = 0;
  bool registered_ = [this] {
    scope_.computedGauge("computed", "read at a scrape", [this] {
      ++computed_calls_;
      return loop_state_;
    });
    return true;
  }();
  std::unique_ptr<Scraper> scraper_;
};

TEST_F(ScraperTest, RefreshesRunBeforeTheComputedGaugesAreComputed) {
  scraper_ = std::make_unique<Scraper>(&loop_, stats_, 5000);
  std::function<void()> later;
  scraper_->addRefresh([&](std::function<void()> done) {
    refreshed_.set(7);
    done();  // at once
  });
  scraper_->addRefresh([&](std::function<void()> done) {
    loop_state_ = 3;  // what Redis said
    later = std::move(done);
  });                                    // on a reply
  EXPECT_EQ(collected("computed"), -1);  // never computed: left out
  bool got = false;
  scraper_->scrape([&] { got = true; });
  uv_run(&loop_, UV_RUN_NOWAIT);
  EXPECT_FALSE(got);  // the second refresh has not answered
  EXPECT_EQ(computed_calls_, 0);
  later();
  ASSERT_TRUE(got);
  EXPECT_EQ(computed_calls_, 1);
  EXPECT_EQ(collected("refreshed"), 7);
  EXPECT_EQ(collected("computed"), 3);
  // A collection reads the value computed, without computing again: the
  // ops thread's collect never runs a callback.
  loop_state_ = 4;
  EXPECT_EQ(collected("computed"), 3);
  EXPECT_EQ(computed_calls_, 1);
}

TEST_F(ScraperTest, AComputedGaugeThatThrowsIsLeftOutUntilItAnswersAgain) {
  scraper_ = std::make_unique<Scraper>(&loop_, stats_, 5000);
  bool fail = false;
  scope_.computedGauge("flaky", "throws on demand", [&] {
    if (fail) {
      throw std::runtime_error("no answer");
    }
    return 5.0;
  });
  int scrapes = 0;
  scraper_->scrape([&] { ++scrapes; });
  EXPECT_EQ(collected("flaky"), 5);
  fail = true;
  scraper_->scrape([&] { ++scrapes; });
  EXPECT_EQ(collected("flaky"), -1);
  EXPECT_EQ(collected("computed"), 0);  // the others are still there
  fail = false;
  scraper_->scrape([&] { ++scrapes; });
  EXPECT_EQ(collected("flaky"), 5);
  EXPECT_EQ(scrapes, 3);
}

TEST_F(ScraperTest, ARefreshThatNeverAnswersCostsTheBudgetOnly) {
  scraper_ = std::make_unique<Scraper>(&loop_, stats_, 50);
  std::vector<std::function<void()>> held;  // one per round
  scraper_->addRefresh([&](std::function<void()> done) { held.push_back(std::move(done)); });
  bool got = false;
  scraper_->scrape([&] { got = true; });
  ASSERT_TRUE(runUntil([&] { return got; }));
  // The next round waits for its own answer: the first round's, late, is
  // not it.
  bool second = false;
  scraper_->scrape([&] { second = true; });
  ASSERT_EQ(held.size(), 2U);
  held[0]();
  EXPECT_FALSE(second);
  held[1]();
  EXPECT_TRUE(second);
  EXPECT_EQ(scraper_->rounds(), 2U);
}

TEST_F(ScraperTest, RequestsDuringARoundShareIt) {
  scraper_ = std::make_unique<Scraper>(&loop_, stats_, 5000);
  std::vector<std::function<void()>> pending;
  int refreshes = 0;
  scraper_->addRefresh([&](std::function<void()> done) {
    ++refreshes;
    pending.push_back(std::move(done));
  });
  int got = 0;
  for (int i = 0; i < 100; ++i) {
    scraper_->scrape([&] { ++got; });
  }
  ASSERT_EQ(pending.size(), 1U);
  pending[0]();
  EXPECT_EQ(got, 100);
  EXPECT_EQ(refreshes, 1);
  EXPECT_EQ(scraper_->rounds(), 1U);
  EXPECT_EQ(computed_calls_, 1);  // the gauges computed once for all of them
}

TEST_F(ScraperTest, ClearingTheRefreshesAnswersWhoIsWaiting) {
  scraper_ = std::make_unique<Scraper>(&loop_, stats_, 5000);
  std::function<void()> held;
  scraper_->addRefresh([&](std::function<void()> done) { held = std::move(done); });
  bool got = false;
  scraper_->scrape([&] { got = true; });
  scraper_->clearRefreshes();  // what it refreshes is going away
  ASSERT_TRUE(got);
  bool after = false;
  scraper_->scrape([&] { after = true; });
  EXPECT_TRUE(after);  // nothing to wait for now
  // An answer after the scraper is gone is ignored.
  scraper_.reset();
  held();
}

}  // namespace
}  // namespace evh::app
