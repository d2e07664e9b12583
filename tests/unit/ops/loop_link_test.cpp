// The ops thread's link to the loop: coalescing, reuse, a stalled loop, a
// stopping one. One uv loop stands for both threads' here; the test plays
// the evhost loop by running (or not running) what was posted to it.
#include "ops/loop_link.h"

#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>
#include <thread>

namespace evh::ops {
namespace {

class LoopLinkTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(uv_loop_init(&loop_), 0); }
  void TearDown() override {
    link_.reset();
    uv_run(&loop_, UV_RUN_DEFAULT);
    EXPECT_EQ(uv_loop_close(&loop_), 0);
  }

  void make(uint32_t reuse_ms, uint32_t timeout_ms) {
    LoopAccess access;
    access.post = [this](std::function<void()> fn) {
      if (refuse_) {
        return false;
      }
      queued_.push_back(std::move(fn));
      return true;
    };
    access.scrape = [this](Parts parts, LoopAccess::Reply reply) {
      if (throw_) {
        throw std::runtime_error("boom");
      }
      ++collects_;
      asked_parts_.push_back(parts);
      LoopSnapshot s;
      s.has = parts;
      s.readiness.not_ready = {"collect " + std::to_string(collects_)};
      if (later_) {
        replies_.push_back([reply, s] { reply(s); });  // answered later, as when Redis is asked first
      } else {
        reply(s);
      }
    };
    if (ops_collect_) {
      access.collect = [this] {
        ++ops_collects_;
        if (collect_throws_) {
          throw std::runtime_error("out of memory, say");
        }
        return registry_.collect();
      };
    }
    link_ = std::make_unique<LoopLink>(&loop_, std::move(access), LoopLink::Options{reuse_ms, timeout_ms},
                                       scope_.histogram("evhost_ops_scrape_seconds", "h", Buckets{{10, 1000}, 1e6}));
  }

  // The evhost loop runs what was posted to it; the ops loop then takes
  // the answer (its async).
  void loopRuns() {
    auto queued = std::move(queued_);
    queued_.clear();
    for (auto& fn : queued) {
      fn();
    }
    uv_run(&loop_, UV_RUN_NOWAIT);
  }

  // Runs the ops loop until `pred` (a timer, say), at most a few seconds.
  template <class Pred>
  bool runUntil(Pred pred) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!pred() && std::chrono::steady_clock::now() < until) {
      uv_run(&loop_, UV_RUN_ONCE);
    }
    return pred();
  }

  // A Done that records what it got.
  struct Got {
    int calls = 0;
    bool snapshot = false;
    std::string first_reason;  // the snapshot's readiness reason
    std::string why_not;
  };
  LoopLink::Done record(Got& got) {
    return [&got](const LoopAnswer& a) {
      ++got.calls;
      got.snapshot = a.snapshot != nullptr;
      got.first_reason = a.snapshot != nullptr ? a.snapshot->readiness.not_ready.at(0) : "";
      got.why_not = a.why_not;
    };
  }

  double scrapeHistogramCount() {
    for (const auto& f : registry_.samples()) {
      if (f.name == "evhost_ops_scrape_seconds") {
        return static_cast<double>(f.series.at(0).count);
      }
    }
    return -1;
  }

  uv_loop_t loop_;
  Registry registry_;
  Scope scope_{registry_};
  std::unique_ptr<LoopLink> link_;
  std::vector<std::function<void()>> queued_;
  std::vector<std::function<void()>> replies_;  // scrapes answered later
  std::vector<Parts> asked_parts_;              // what each scrape asked for
  int collects_ = 0;
  bool refuse_ = false;
  bool throw_ = false;
  bool later_ = false;
  bool ops_collect_ = false;  // make() sets LoopAccess::collect
  bool collect_throws_ = false;
  int ops_collects_ = 0;
};

TEST_F(LoopLinkTest, OneCollectServesEveryRequestWaitingForIt) {
  make(100, 3000);
  std::vector<Got> got(50);
  for (auto& g : got) {
    link_->get(kFamilies, record(g));
  }
  EXPECT_EQ(queued_.size(), 1U);
  EXPECT_EQ(got[0].calls, 0);
  loopRuns();
  EXPECT_EQ(collects_, 1);
  for (const auto& g : got) {
    EXPECT_EQ(g.calls, 1);
    EXPECT_TRUE(g.snapshot);
    EXPECT_EQ(g.first_reason, "collect 1");
  }
  EXPECT_EQ(link_->scrapesAsked(), 1U);
  EXPECT_EQ(scrapeHistogramCount(), 1);
}

TEST_F(LoopLinkTest, AFreshSnapshotAnswersAtOnceAndAStaleOneIsCollectedAgain) {
  make(50, 3000);
  Got first;
  link_->get(kFamilies, record(first));
  loopRuns();
  Got again;
  link_->get(kFamilies, record(again));
  EXPECT_EQ(again.calls, 1);  // at once, from the snapshot just taken
  EXPECT_EQ(again.first_reason, "collect 1");
  EXPECT_TRUE(queued_.empty());

  std::this_thread::sleep_for(std::chrono::milliseconds(80));
  uv_update_time(&loop_);
  Got later;
  link_->get(kFamilies, record(later));
  EXPECT_EQ(later.calls, 0);
  EXPECT_EQ(queued_.size(), 1U);
  loopRuns();
  EXPECT_EQ(later.first_reason, "collect 2");
}

TEST_F(LoopLinkTest, AStalledLoopIsNotAnsweringAfterTheTimeoutAndUntilItAnswers) {
  make(100, 30);
  Got waiting;
  link_->get(kFamilies, record(waiting));
  ASSERT_TRUE(runUntil([&] { return waiting.calls == 1; }));
  EXPECT_FALSE(waiting.snapshot);
  EXPECT_EQ(waiting.why_not, "evhost's event loop is not answering (no answer within 30 ms)");

  Got meanwhile;
  link_->get(kFamilies, record(meanwhile));
  EXPECT_EQ(meanwhile.calls, 1);  // at once: the loop is known to be stuck
  EXPECT_FALSE(meanwhile.snapshot);
  EXPECT_EQ(queued_.size(), 1U);  // and no second collect piles up behind the first

  loopRuns();  // the loop comes back and runs the collect queued long ago
  Got after;
  link_->get(kFamilies, record(after));
  EXPECT_EQ(after.calls, 1);
  EXPECT_TRUE(after.snapshot);
  EXPECT_EQ(collects_, 1);
}

TEST_F(LoopLinkTest, ALoopThatTakesNoMorePostsIsStopping) {
  make(100, 3000);
  refuse_ = true;
  Got got;
  link_->get(kFamilies, record(got));
  EXPECT_EQ(got.calls, 1);
  EXPECT_EQ(got.why_not, "evhost is stopping");
}

TEST_F(LoopLinkTest, CloseAnswersTheWaitingAndALateCollectDoesNothing) {
  make(100, 3000);
  Got got;
  link_->get(kFamilies, record(got));
  link_->close();
  EXPECT_EQ(got.calls, 1);
  EXPECT_EQ(got.why_not, "evhost is stopping");
  loopRuns();  // the collect posted before the close
  EXPECT_EQ(collects_, 0);
  EXPECT_EQ(scrapeHistogramCount(), 0);  // nothing was scraped, nothing observed
  Got after;
  link_->get(kFamilies, record(after));
  EXPECT_EQ(after.why_not, "evhost is stopping");
}

TEST_F(LoopLinkTest, AScrapeAnsweredLaterIsWaitedForAndAnsweredAfterTheListenerWentIsDropped) {
  make(100, 3000);
  later_ = true;
  Got got;
  link_->get(kFamilies, record(got));
  loopRuns();  // the scrape started; its answer comes later
  EXPECT_EQ(got.calls, 0);
  Got meanwhile;
  link_->get(kFamilies, record(meanwhile));
  EXPECT_TRUE(queued_.empty());  // waits with the scrape outstanding
  auto replies = std::move(replies_);
  replies_.clear();
  replies.at(0)();
  uv_run(&loop_, UV_RUN_NOWAIT);
  EXPECT_EQ(got.first_reason, "collect 1");
  EXPECT_EQ(meanwhile.first_reason, "collect 1");
  EXPECT_EQ(scrapeHistogramCount(), 1);

  // A scrape answered after close(): dropped.
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  uv_update_time(&loop_);
  Got last;
  link_->get(kFamilies, record(last));
  loopRuns();
  link_->close();
  EXPECT_EQ(last.why_not, "evhost is stopping");
  replies = std::move(replies_);
  replies_.clear();
  replies.at(0)();
  uv_run(&loop_, UV_RUN_NOWAIT);
  EXPECT_EQ(last.calls, 1);
}

TEST_F(LoopLinkTest, ACollectThatThrowsFailsTheWaitingWithItsMessage) {
  make(100, 3000);
  throw_ = true;
  Got got;
  link_->get(kFamilies, record(got));
  loopRuns();
  EXPECT_EQ(got.calls, 1);
  EXPECT_EQ(got.why_not, "collecting on the event loop failed: boom");
  throw_ = false;
  Got again;
  link_->get(kFamilies, record(again));
  loopRuns();
  EXPECT_TRUE(again.snapshot);
}

// Each request asks for the parts it needs, and a snapshot is reused only
// when it has them: a lone /readyz probe never costs a collect.
TEST_F(LoopLinkTest, TheLoopComputesOnlyThePartsAskedFor) {
  make(100, 3000);
  Got readyz;
  link_->get(kReadiness, record(readyz));
  loopRuns();
  ASSERT_EQ(asked_parts_, std::vector<Parts>{kReadiness});
  EXPECT_TRUE(readyz.snapshot);
  // The snapshot lacks the series: asked for, with the readiness asked for
  // a moment ago (a flood of mixed requests costs one scrape per reuse_ms).
  Got metrics;
  link_->get(kFamilies, record(metrics));
  loopRuns();
  ASSERT_EQ(asked_parts_.size(), 2U);
  EXPECT_EQ(asked_parts_[1], kFamilies | kReadiness);
  EXPECT_TRUE(metrics.snapshot);
  // Fresh and with both: reused.
  Got again;
  link_->get(kReadiness, record(again));
  Got again_metrics;
  link_->get(kFamilies, record(again_metrics));
  EXPECT_TRUE(again.snapshot);
  EXPECT_TRUE(again_metrics.snapshot);
  EXPECT_EQ(asked_parts_.size(), 2U);
}

// Requests arriving before the loop starts the scrape add their parts to it.
TEST_F(LoopLinkTest, ARequestJoinsAScrapeTheLoopHasNotStartedYet) {
  make(100, 3000);
  Got readyz;
  link_->get(kReadiness, record(readyz));
  Got status;
  link_->get(kStatus, record(status));
  loopRuns();
  ASSERT_EQ(asked_parts_, std::vector<Parts>{kReadiness | kStatus});
  EXPECT_TRUE(readyz.snapshot);
  EXPECT_TRUE(status.snapshot);
}

// A request for a part the running scrape lacks is not answered with that
// scrape's snapshot: it asks again once that one is answered.
TEST_F(LoopLinkTest, ARequestForAPartTheRunningScrapeLacksAsksAgain) {
  make(100, 3000);
  later_ = true;
  Got pubsub;
  link_->get(kPubsub, record(pubsub));
  loopRuns();  // started, for the Pub/Sub check only; answered later
  Got families;
  link_->get(kFamilies, record(families));
  ASSERT_EQ(asked_parts_, std::vector<Parts>{kPubsub});
  auto answer = std::move(replies_);
  replies_.clear();
  answer.at(0)();
  uv_run(&loop_, UV_RUN_NOWAIT);
  EXPECT_TRUE(pubsub.snapshot);
  EXPECT_EQ(families.calls, 0);
  loopRuns();
  ASSERT_EQ(asked_parts_.size(), 2U);
  EXPECT_EQ(asked_parts_[1], kFamilies | kPubsub);
  answer = std::move(replies_);
  replies_.clear();
  answer.at(0)();
  uv_run(&loop_, UV_RUN_NOWAIT);
  EXPECT_EQ(families.calls, 1);
  EXPECT_TRUE(families.snapshot);
}

// The loop answers a metrics scrape without the series; the ops thread
// copies them (LoopAccess::collect), once per answered scrape -- and only
// for one that asked for them.
TEST_F(LoopLinkTest, TheOpsThreadCollectsTheSeriesTheLoopLeftOut) {
  ops_collect_ = true;
  make(100, 3000);
  scope_.gauge("some_gauge", "h").set(42);
  const LoopSnapshot* seen = nullptr;
  double value = -1;
  link_->get(kFamilies, [&](const LoopAnswer& a) {
    seen = a.snapshot;
    if (a.snapshot != nullptr && a.snapshot->families) {
      for (const auto& f : samplesOf(*a.snapshot->families)) {
        if (f.name == "some_gauge") {
          value = f.series.at(0).value;
        }
      }
    }
  });
  loopRuns();
  ASSERT_NE(seen, nullptr);
  EXPECT_EQ(value, 42);
  EXPECT_EQ(ops_collects_, 1);
  Got readyz;
  link_->get(kReadiness, record(readyz));  // a fresh part: asks the loop again
  loopRuns();
  EXPECT_TRUE(readyz.snapshot);
  EXPECT_EQ(ops_collects_, 2);  // the recent /metrics request's part came along
}

TEST_F(LoopLinkTest, ACollectThatThrowsFailsTheRequestsWithTheReason) {
  ops_collect_ = true;
  collect_throws_ = true;
  make(100, 3000);
  Got got;
  link_->get(kFamilies, record(got));
  loopRuns();
  EXPECT_EQ(got.calls, 1);
  EXPECT_FALSE(got.snapshot);
  EXPECT_EQ(got.why_not, "collecting the metrics failed: out of memory, say");
  collect_throws_ = false;
  Got again;
  link_->get(kFamilies, record(again));  // nothing kept from the failure: asks again
  loopRuns();
  EXPECT_EQ(again.calls, 1);
  EXPECT_EQ(again.why_not, "");
}

}  // namespace
}  // namespace evh::ops
