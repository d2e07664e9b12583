// The scraper: refreshes first, within a budget; one round serves every
// request that arrives while it runs.
#include "app/scraper.h"
#include "support/stats_text.h"

#include <gtest/gtest.h>

#include <uv.h>

#include <chrono>
#include <functional>
#include <memory>
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

  double gauge(const Scraper::Snapshot& s) const {
    for (const auto& f : ops::samplesOf(*s)) {
      if (f.name == "refreshed") {
        return f.series.at(0).value;
      }
    }
    return -1;
  }

  uv_loop_t loop_{};
  ops::Registry stats_;
  ops::Scope scope_{stats_};
  ops::Gauge refreshed_ = scope_.gauge("refreshed", "set by the refresh");
  std::unique_ptr<Scraper> scraper_;
};

TEST_F(ScraperTest, RefreshesRunBeforeTheCollection) {
  scraper_ = std::make_unique<Scraper>(&loop_, stats_, 5000);
  std::function<void()> later;
  scraper_->addRefresh([&](std::function<void()> done) {
    refreshed_.set(7);
    done();  // at once
  });
  scraper_->addRefresh([&](std::function<void()> done) { later = std::move(done); });  // on a reply
  Scraper::Snapshot got;
  scraper_->scrape([&](Scraper::Snapshot s) { got = std::move(s); });
  uv_run(&loop_, UV_RUN_NOWAIT);
  EXPECT_EQ(got, nullptr);  // the second refresh has not answered
  later();
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(gauge(got), 7);
}

TEST_F(ScraperTest, ARefreshThatNeverAnswersCostsTheBudgetOnly) {
  scraper_ = std::make_unique<Scraper>(&loop_, stats_, 50);
  std::vector<std::function<void()>> held;  // one per round
  scraper_->addRefresh([&](std::function<void()> done) { held.push_back(std::move(done)); });
  Scraper::Snapshot got;
  scraper_->scrape([&](Scraper::Snapshot s) { got = std::move(s); });
  ASSERT_TRUE(runUntil([&] { return got != nullptr; }));
  // The next round waits for its own answer: the first round's, late, is
  // not it.
  Scraper::Snapshot second;
  scraper_->scrape([&](Scraper::Snapshot s) { second = std::move(s); });
  ASSERT_EQ(held.size(), 2U);
  held[0]();
  EXPECT_EQ(second, nullptr);
  held[1]();
  EXPECT_NE(second, nullptr);
  EXPECT_EQ(scraper_->rounds(), 2U);
}

TEST_F(ScraperTest, RequestsDuringARoundShareItsSnapshot) {
  scraper_ = std::make_unique<Scraper>(&loop_, stats_, 5000);
  std::vector<std::function<void()>> pending;
  int refreshes = 0;
  scraper_->addRefresh([&](std::function<void()> done) {
    ++refreshes;
    pending.push_back(std::move(done));
  });
  std::vector<Scraper::Snapshot> got;
  for (int i = 0; i < 100; ++i) {
    scraper_->scrape([&](Scraper::Snapshot s) { got.push_back(std::move(s)); });
  }
  ASSERT_EQ(pending.size(), 1U);
  pending[0]();
  ASSERT_EQ(got.size(), 100U);
  EXPECT_EQ(refreshes, 1);
  EXPECT_EQ(scraper_->rounds(), 1U);
  for (const auto& s : got) {
    EXPECT_EQ(s, got[0]);  // one snapshot, shared
  }
}

TEST_F(ScraperTest, ClearingTheRefreshesAnswersWhoIsWaiting) {
  scraper_ = std::make_unique<Scraper>(&loop_, stats_, 5000);
  std::function<void()> held;
  scraper_->addRefresh([&](std::function<void()> done) { held = std::move(done); });
  Scraper::Snapshot got;
  scraper_->scrape([&](Scraper::Snapshot s) { got = std::move(s); });
  scraper_->clearRefreshes();  // what it refreshes is going away
  ASSERT_NE(got, nullptr);
  Scraper::Snapshot after;
  scraper_->scrape([&](Scraper::Snapshot s) { after = std::move(s); });
  EXPECT_NE(after, nullptr);  // nothing to wait for now
  // An answer after the scraper is gone is ignored.
  scraper_.reset();
  held();
}

}  // namespace
}  // namespace evh::app
