// Subscriber::add and remove (what a reload does to the Pub/Sub channels),
// in process against a real redis-server: on the running connection, never
// a reconnect; a removed subscription's slot goes once Redis confirms the
// UNSUBSCRIBE (or the connection is gone), and one added back meanwhile
// keeps it.
#include "ops/stats.h"
#include "redis/subscriber.h"
#include "support/redis_server.h"
#include "support/stats_text.h"

#include <hiredis/hiredis.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <uv.h>

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <thread>

namespace evh::test {
namespace {

class SubscriberChangesTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(uv_loop_init(&loop_), 0); }
  void TearDown() override {
    uv_run(&loop_, UV_RUN_NOWAIT);  // close callbacks of what the test destroyed
    EXPECT_EQ(uv_loop_close(&loop_), 0);
  }

  redis::Endpoint endpoint() const {
    redis::Endpoint e;
    e.port = redis_.port();
    e.backoff_initial_ms = 20;
    e.backoff_max_ms = 200;
    return e;
  }

  // Runs the loop until `pred` holds (20 s: a hang guard).
  bool runUntil(const std::function<bool()>& pred) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!pred()) {
      if (std::chrono::steady_clock::now() > until) {
        return false;
      }
      uv_run(&loop_, UV_RUN_NOWAIT);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
  }

  redis::Subscriber::Sink counting() {
    return [this](const redis::Subscription& s, std::string_view, std::string_view) { ++received_[s.channel_id]; };
  }
  double subscribed(const std::string& channel) const {
    return statValue(stats_, "evhost_pubsub_subscribed", {{"channel", channel}});
  }
  long long numsub(const std::string& channel) {
    return redis_.command({"PUBSUB", "NUMSUB", channel})->element[1]->integer;
  }

  RedisServer redis_;
  uv_loop_t loop_;
  ops::Registry stats_;
  std::map<uint32_t, int> received_;
};

TEST_F(SubscriberChangesTest, AddedAndRemovedOnTheRunningConnection) {
  redis::Subscriber sub(&loop_, endpoint(), {{"orders", "test:orders", false, 0}}, counting(), stats_);
  sub.start();
  ASSERT_TRUE(runUntil([&] { return sub.notLive().empty(); }));

  sub.add({"refunds", "test:refunds", false, 1});
  sub.add({"audit:*", "test:audit:*", true, 2});
  EXPECT_EQ(sub.notLive().size(), 2u);  // not ready until confirmed
  ASSERT_TRUE(runUntil([&] { return sub.notLive().empty(); }));
  EXPECT_EQ(subscribed("refunds"), 1);
  redis_.command({"PUBLISH", "test:refunds", "{}"});
  redis_.command({"PUBLISH", "test:audit:x", "{}"});
  ASSERT_TRUE(runUntil([&] { return received_[1] == 1 && received_[2] == 1; }));

  EXPECT_TRUE(sub.remove(false, "test:refunds"));
  EXPECT_TRUE(sub.remove(true, "test:audit:*"));
  EXPECT_FALSE(sub.remove(false, "test:nosuch"));
  EXPECT_EQ(sub.subscriptions().size(), 1u);
  EXPECT_EQ(sub.retiring(), 2u);
  ASSERT_TRUE(runUntil([&] { return sub.retiring() == 0; }));
  EXPECT_EQ(numsub("test:refunds"), 0);
  EXPECT_EQ(redis_.command({"PUBSUB", "NUMPAT"})->integer, 0);
  EXPECT_THAT(renderStats(stats_), ::testing::Not(::testing::HasSubstr("channel=\"refunds\"")));
  redis_.command({"PUBLISH", "test:orders", "{}"});
  ASSERT_TRUE(runUntil([&] { return received_[0] == 1; }));
  EXPECT_EQ(sub.connection().outages(), 0u);
  sub.stop();
}

// Removed and added back in the same turn of the loop: the UNSUBSCRIBE is on
// its way, its confirmation comes to the same slot, which subscribes again.
TEST_F(SubscriberChangesTest, RemovedAndAddedBackBeforeTheConfirmation) {
  redis::Subscriber sub(&loop_, endpoint(),
                        {{"orders", "test:orders", false, 0}, {"refunds", "test:refunds", false, 1}}, counting(),
                        stats_);
  sub.start();
  ASSERT_TRUE(runUntil([&] { return sub.notLive().empty(); }));
  ASSERT_TRUE(sub.remove(false, "test:refunds"));
  sub.add({"refunds", "test:refunds", false, 1});
  EXPECT_EQ(sub.retiring(), 0u);
  EXPECT_EQ(sub.notLive().size(), 1u);
  ASSERT_TRUE(runUntil([&] { return sub.notLive().empty() && numsub("test:refunds") == 1; }));
  redis_.command({"PUBLISH", "test:refunds", "{}"});
  ASSERT_TRUE(runUntil([&] { return received_[1] == 1; }));
  EXPECT_EQ(subscribed("refunds"), 1);
  EXPECT_EQ(sub.connection().outages(), 0u);
  sub.stop();
}

// Removed while the connection is down: gone at once, and the next
// connection subscribes only the others.
TEST_F(SubscriberChangesTest, RemovedWhileDisconnected) {
  redis::Subscriber sub(&loop_, endpoint(),
                        {{"orders", "test:orders", false, 0}, {"refunds", "test:refunds", false, 1}}, counting(),
                        stats_);
  sub.start();
  ASSERT_TRUE(runUntil([&] { return sub.notLive().empty(); }));
  redis_.stop();
  ASSERT_TRUE(runUntil([&] { return !sub.connection().ready(); }));
  ASSERT_TRUE(sub.remove(false, "test:refunds"));
  EXPECT_EQ(sub.retiring(), 0u);
  sub.add({"audit", "test:audit", false, 2});
  redis_.restart();
  ASSERT_TRUE(runUntil([&] { return sub.notLive().empty(); }));
  EXPECT_EQ(numsub("test:refunds"), 0);
  EXPECT_EQ(numsub("test:audit"), 1);
  EXPECT_EQ(numsub("test:orders"), 1);
  sub.stop();
}

// A subscription Redis refuses (an ACL) can be removed too: Redis answers
// the UNSUBSCRIBE of a channel it never subscribed, and the slot goes.
TEST_F(SubscriberChangesTest, ARefusedSubscriptionRemoved) {
  auto r = redis_.command(
      {"ACL", "SETUSER", "evh", "on", ">s3cret", "resetchannels", "&test:allowed", "~*", "+@all", "-@dangerous"});
  ASSERT_EQ(r->type, REDIS_REPLY_STATUS) << (r->str ? r->str : "");
  redis::Endpoint e = endpoint();
  e.username = "evh";
  e.password = "s3cret";
  redis::Subscriber sub(&loop_, e, {{"allowed", "test:allowed", false, 0}, {"forbidden", "test:forbidden", false, 1}},
                        counting(), stats_);
  sub.start();
  ASSERT_TRUE(runUntil([&] { return statValue(stats_, "evhost_pubsub_refused", {{"channel", "forbidden"}}) == 1; }));
  ASSERT_TRUE(runUntil([&] { return subscribed("allowed") == 1; }));
  ASSERT_TRUE(sub.remove(false, "test:forbidden"));
  EXPECT_TRUE(sub.notLive().empty());
  ASSERT_TRUE(runUntil([&] { return sub.retiring() == 0; }));
  redis_.command({"PUBLISH", "test:allowed", "{}"});
  ASSERT_TRUE(runUntil([&] { return received_[0] == 1; }));
  EXPECT_EQ(sub.connection().outages(), 0u);
  sub.stop();
}

}  // namespace
}  // namespace evh::test
