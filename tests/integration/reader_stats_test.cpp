// The Redis readers' series in the stats registry, against a real
// redis-server: the Pub/Sub subscriber's messages, subscriptions, refusals
// and gaps; a stream source's deliveries, acks, entries in flight and
// rejections. The readers run in-process on a loop driven by the test
// thread, which is also the thread that collects (as evhost's loop does).
#include "ops/stats.h"
#include "redis/command_client.h"
#include "redis/stream_source.h"
#include "redis/subscriber.h"
#include "support/redis_server.h"
#include "support/stats_text.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <uv.h>

#include <chrono>
#include <cmath>
#include <functional>
#include <string>

namespace evh::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class ReaderStatsTest : public ::testing::Test {
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

  double value(const std::string& name, const ops::Labels& labels) const { return statValue(stats_, name, labels); }

  RedisServer redis_;
  uv_loop_t loop_;
  ops::Registry stats_;
};

TEST_F(ReaderStatsTest, PubSubCountsMessagesPerChannelAndGaps) {
  std::vector<redis::Subscription> subs = {{"orders", "test:orders", false, 0}, {"audit:*", "test:audit:*", true, 1}};
  size_t received = 0;
  {
    redis::Subscriber sub(
        &loop_, endpoint(), subs, [&](const auto&, auto, auto) { ++received; }, stats_);
    sub.start();
    const ops::Labels orders{{"channel", "orders"}};
    const ops::Labels audit{{"channel", "audit:*"}};
    ASSERT_TRUE(runUntil([&] {
      return value("evhost_pubsub_subscribed", orders) == 1 && value("evhost_pubsub_subscribed", audit) == 1;
    }));
    EXPECT_EQ(value("evhost_pubsub_refused", orders), 0);
    for (int i = 0; i < 3; ++i) {
      redis_.command({"PUBLISH", "test:orders", "{}"});
    }
    redis_.command({"PUBLISH", "test:audit:login", "{}"});
    ASSERT_TRUE(runUntil([&] { return received == 4; }));
    EXPECT_EQ(value("evhost_pubsub_messages_total", orders), 3);
    EXPECT_EQ(value("evhost_pubsub_messages_total", audit), 1);  // labelled by the pattern, not the channel
    EXPECT_EQ(value("evhost_pubsub_gaps_total", {}), 0);

    // Redis closes the subscriber and takes it back at once: a gap, and
    // (as Redis does to a subscriber that falls behind) a cut-off.
    redis_.command({"CLIENT", "KILL", "TYPE", "pubsub"});
    ASSERT_TRUE(runUntil([&] { return value("evhost_pubsub_gaps_total", {}) == 1; }));
    EXPECT_EQ(value("evhost_pubsub_cut_offs_total", {}), 1);
    EXPECT_THAT(renderStats(stats_), HasSubstr("evhost_pubsub_gap_seconds_count 1\n"));
    EXPECT_EQ(value("evhost_pubsub_subscribed", orders), 1);
    // The connection's own series.
    const ops::Labels conn{{"connection", "subscriber"}};
    EXPECT_EQ(value("evhost_redis_up", conn), 1);
    EXPECT_EQ(value("evhost_redis_outages_total", conn), 1);
    for (const char* kind : redis::kFailureKinds) {
      ops::Labels with_kind = conn;
      with_kind.emplace_back("kind", kind);
      EXPECT_EQ(value("evhost_redis_connect_failures_total", with_kind), 0) << kind;
      EXPECT_EQ(value("evhost_redis_last_failure", with_kind), 0) << kind;
    }
  }
  EXPECT_THAT(renderStats(stats_), Not(HasSubstr("evhost_redis")));
  // The subscriber is gone, and so are its series.
  EXPECT_THAT(renderStats(stats_), Not(HasSubstr("evhost_pubsub")));
}

// Why a connection is down, as a kind an alert can use: refused while
// nothing listens, auth while the password is wrong; nothing once it is up.
TEST_F(ReaderStatsTest, ConnectFailuresAreCountedByKind) {
  auto failures = [&](const char* conn, const char* kind) {
    return value("evhost_redis_connect_failures_total", {{"connection", conn}, {"kind", kind}});
  };
  auto last = [&](const char* conn, const char* kind) {
    return value("evhost_redis_last_failure", {{"connection", conn}, {"kind", kind}});
  };
  uint16_t dead_port = 0;
  {
    RedisServer gone;
    dead_port = gone.port();
  }
  {
    redis::Endpoint nowhere = endpoint();
    nowhere.port = dead_port;
    redis::CommandClient refused(&loop_, nowhere);
    refused.exportStats(stats_);
    refused.start();
    ASSERT_TRUE(runUntil([&] { return failures("commands", "refused") >= 2; }));
    EXPECT_EQ(last("commands", "refused"), 1);
    EXPECT_EQ(last("commands", "auth"), 0);
    refused.stop();
  }  // its series go with it

  redis::Endpoint wrong = endpoint();
  wrong.password = "not-the-password";
  redis::CommandClient denied(&loop_, wrong);
  denied.exportStats(stats_);
  denied.start();
  ASSERT_TRUE(runUntil([&] { return failures("commands", "auth") >= 1; }));
  EXPECT_EQ(last("commands", "auth"), 1);
  EXPECT_EQ(value("evhost_redis_up", {{"connection", "commands"}}), 0);
  // The operator sets the password evhost was given: it connects.
  redis_.command({"CONFIG", "SET", "requirepass", "not-the-password"});
  ASSERT_TRUE(runUntil([&] { return denied.ready(); }));
  EXPECT_EQ(value("evhost_redis_up", {{"connection", "commands"}}), 1);
  for (const char* kind : redis::kFailureKinds) {
    EXPECT_EQ(last("commands", kind), 0) << kind;
  }
  denied.stop();
  redis_.command({"AUTH", "not-the-password"});
  redis_.command({"CONFIG", "SET", "requirepass", ""});
}

TEST_F(ReaderStatsTest, PubSubRefusedSubscriptionIsAGauge) {
  auto r = redis_.command(
      {"ACL", "SETUSER", "evh", "on", ">s3cret", "resetchannels", "&test:allowed", "~*", "+@all", "-@dangerous"});
  ASSERT_EQ(r->type, REDIS_REPLY_STATUS) << (r->str ? r->str : "");
  redis::Endpoint e = endpoint();
  e.username = "evh";
  e.password = "s3cret";
  std::vector<redis::Subscription> subs = {{"allowed", "test:allowed", false, 0},
                                           {"forbidden", "test:forbidden", false, 1}};
  redis::Subscriber sub(
      &loop_, e, subs, [](const auto&, auto, auto) {}, stats_);
  sub.start();
  ASSERT_TRUE(runUntil([&] { return value("evhost_pubsub_refused", {{"channel", "forbidden"}}) == 1; }));
  EXPECT_EQ(value("evhost_pubsub_subscribed", {{"channel", "forbidden"}}), 0);
  ASSERT_TRUE(runUntil([&] { return value("evhost_pubsub_subscribed", {{"channel", "allowed"}}) == 1; }));
  EXPECT_EQ(value("evhost_pubsub_refused", {{"channel", "allowed"}}), 0);
}

class StreamStatsTest : public ReaderStatsTest {
 protected:
  std::unique_ptr<redis::StreamSource> source(redis::CommandClient& commands) {
    redis::StreamChannel ch;
    ch.logical = "orders";
    ch.key = "test:orders";
    ch.group = "g";
    ch.consumer = "c1";
    ch.block_ms = 100;
    ch.claim_interval_ms = 100;
    taken_.clear();
    return std::make_unique<redis::StreamSource>(
        &loop_, endpoint(), ch, commands,
        [this](const redis::StreamChannel&, const std::string& id, const std::string_view*, bool) {
          taken_.push_back(id);
        },
        [] { return size_t{100}; },
        [this](const redis::StreamChannel&, const std::string& id, const char* reason, const std::string&,
               const std::string*) {
          rejected_.emplace_back(id, reason);
          current_->ack(id);  // as the server does once the dead-letter entry is stored
        },
        stats_);
  }
  // The source the reject callback acks on.
  redis::StreamSource* current_ = nullptr;

  double stream(const std::string& name, ops::Labels more = {}) const {
    more.emplace_back("channel", "orders");
    more.emplace_back("group", "g");
    return value(name, more);
  }

  std::vector<std::string> taken_;
  std::vector<std::pair<std::string, std::string>> rejected_;
};

TEST_F(StreamStatsTest, DeliveriesAcksAndEntriesInFlight) {
  redis::CommandClient commands(&loop_, endpoint());
  commands.start();
  auto src = source(commands);
  src->start();
  for (int i = 0; i < 3; ++i) {
    redis_.command({"XADD", "test:orders", "*", "event", "{}"});
  }
  ASSERT_TRUE(runUntil([&] { return taken_.size() == 3; }));
  EXPECT_EQ(stream("evhost_stream_delivered_total"), 3);
  EXPECT_EQ(stream("evhost_stream_redelivered_total"), 0);
  EXPECT_EQ(stream("evhost_stream_in_flight"), 3);
  src->ack(taken_[0]);
  src->ack(taken_[1]);
  ASSERT_TRUE(runUntil([&] { return stream("evhost_stream_acked_total") == 2; }));
  EXPECT_EQ(stream("evhost_stream_in_flight"), 1);
  EXPECT_EQ(stream("evhost_stream_rejected_total", {{"reason", "poison"}}), 0);
  src.reset();
  EXPECT_THAT(renderStats(stats_), Not(HasSubstr("evhost_stream")));
  commands.stop();
}

// An entry delivered, never acked, then trimmed away: the next start takes
// back its pending entries, finds this one gone and dead-letters it.
TEST_F(StreamStatsTest, TakenBackAndTrimmedEntriesAreCounted) {
  redis::CommandClient commands(&loop_, endpoint());
  commands.start();
  auto src = source(commands);
  src->start();
  redis_.command({"XADD", "test:orders", "*", "event", "{}"});
  redis_.command({"XADD", "test:orders", "*", "event", "{}"});
  ASSERT_TRUE(runUntil([&] { return taken_.size() == 2; }));
  const std::string gone = taken_[0];
  src.reset();  // a crash: both stay pending
  redis_.command({"XDEL", "test:orders", gone});

  src = source(commands);
  current_ = src.get();
  src->start();
  ASSERT_TRUE(runUntil([&] { return rejected_.size() == 1 && taken_.size() == 1; }));
  EXPECT_EQ(rejected_[0], (std::pair<std::string, std::string>{gone, "trimmed"}));
  EXPECT_EQ(stream("evhost_stream_rejected_total", {{"reason", "trimmed"}}), 1);
  // The first source's series went with it: these are the second's.
  EXPECT_EQ(stream("evhost_stream_delivered_total"), 1);
  EXPECT_EQ(stream("evhost_stream_redelivered_total"), 1);
  EXPECT_EQ(stream("evhost_stream_in_flight"), 1);
  src.reset();
  commands.stop();
}

// The group's backlog as Redis tells it, refreshed when asked (at scrape
// time): pending and lag from XINFO GROUPS, the oldest pending entry's age
// from its id.
TEST_F(StreamStatsTest, TheBacklogIsRedisesPendingLagAndOldestAge) {
  redis::CommandClient commands(&loop_, endpoint());
  commands.start();
  ASSERT_TRUE(runUntil([&] { return commands.ready(); }));
  auto src = source(commands);
  auto refresh = [&](redis::StreamSource& s) {
    bool done = false;
    s.refreshBacklog([&] { done = true; });
    return runUntil([&] { return done; });
  };
  // No stream yet: nothing is known.
  ASSERT_TRUE(refresh(*src));
  EXPECT_TRUE(std::isnan(stream("evhost_stream_pending")));
  EXPECT_TRUE(std::isnan(stream("evhost_stream_lag")));
  EXPECT_TRUE(std::isnan(stream("evhost_stream_oldest_pending_age_seconds")));

  // Three entries written a minute ago (their ids say when), all delivered,
  // two acknowledged.
  const uint64_t minute_ago = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                        std::chrono::system_clock::now().time_since_epoch())
                                                        .count()) -
                              60000;
  for (int i = 0; i < 3; ++i) {
    redis_.command({"XADD", "test:orders", std::to_string(minute_ago) + "-" + std::to_string(i), "event", "{}"});
  }
  src->start();
  ASSERT_TRUE(runUntil([&] { return taken_.size() == 3; }));
  src->ack(taken_[1]);
  src->ack(taken_[2]);
  ASSERT_TRUE(runUntil([&] { return stream("evhost_stream_acked_total") == 2; }));
  ASSERT_TRUE(refresh(*src));
  EXPECT_EQ(stream("evhost_stream_pending"), 1);
  EXPECT_EQ(stream("evhost_stream_lag"), 0);
  const double age = stream("evhost_stream_oldest_pending_age_seconds");
  EXPECT_GE(age, 60.0);
  EXPECT_LT(age, 120.0);

  // evhost stops (the entry stays pending); two more entries come, not
  // delivered to the group yet: the lag.
  src.reset();
  redis_.command({"XADD", "test:orders", "*", "event", "{}"});
  redis_.command({"XADD", "test:orders", "*", "event", "{}"});
  auto next = source(commands);
  ASSERT_TRUE(refresh(*next));
  EXPECT_EQ(stream("evhost_stream_pending"), 1);
  EXPECT_EQ(stream("evhost_stream_lag"), 2);
  next.reset();
  commands.stop();
}

}  // namespace
}  // namespace evh::test
