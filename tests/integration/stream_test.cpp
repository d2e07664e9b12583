// transport: stream against a real redis-server: consumer groups, acks only
// after completion, redelivery of unfinished entries, backpressure.
#include "support/evhost_process.h"
#include "support/redis_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <signal.h>

#include <set>
#include <sstream>

namespace evh::test {
namespace {

using ::testing::HasSubstr;

std::string event(const std::string& id) {
  return R"({"eventId":")" + id +
         R"(","eventType":"PRODUCT_CREATED","timestamp":"2024-01-15T10:30:00.000Z","payload":{"productId":"p-1"}})";
}

class StreamTest : public ::testing::Test {
 protected:
  std::string config(const std::string& plugin, const std::string& extra = "") const {
    std::ostringstream y;
    y << "environment: test\n"
      << "redis: {host: 127.0.0.1, port: " << redis_.port() << "}\n"
      << "retry: {max_attempts: 1}\n"
      << extra << "plugins:\n  rec: " << plugin << "\n"
      << R"(channels:
  jollyjet:events:orders:
    transport: stream
    stream: {group: workers, consumer: c1, block_ms: 200}
    routes:
      - events: "*"
        plugins: [rec]
)";
    return y.str();
  }
  void xadd(const std::string& message) {
    auto r = redis_.command({"XADD", "test:jollyjet:events:orders", "*", "event", message});
    ASSERT_EQ(r->type, REDIS_REPLY_STRING);
  }
  long long llen(const std::string& key) { return redis_.command({"LLEN", key})->integer; }
  long long pending() {
    auto r = redis_.command({"XPENDING", "test:jollyjet:events:orders", "workers"});
    return r->type == REDIS_REPLY_ARRAY && r->elements > 0 ? r->element[0]->integer : -1;
  }
  std::vector<std::string> ids(const std::string& key) {
    std::vector<std::string> out;
    auto r = redis_.command({"LRANGE", key, "0", "-1"});
    for (size_t i = 0; i < r->elements; ++i) {
      std::string rec(r->element[i]->str, r->element[i]->len);
      size_t a = rec.find('|', rec.find('|') + 1) + 1;
      out.push_back(rec.substr(a, rec.find('|', a) - a));
    }
    return out;
  }

  RedisServer redis_;
};

TEST_F(StreamTest, EntriesAddedBeforeStartAndAfterAreHandledAndAcked) {
  for (int i = 0; i < 50; ++i) {
    xadd(event("early-" + std::to_string(i)));  // before evhost: the stream does not even exist yet
  }
  EvhostProcess host(config("{path: recorder}"));
  ASSERT_TRUE(host.waitForLog("created consumer group workers")) << host.log();
  for (int i = 0; i < 50; ++i) {
    xadd(event("late-" + std::to_string(i)));
  }
  ASSERT_TRUE(eventually([&] { return llen("seen") == 100; })) << host.log();
  ASSERT_TRUE(eventually([&] { return pending() == 0; })) << "entries left unacknowledged\n" << host.log();
  auto got = ids("seen");
  EXPECT_EQ(std::set<std::string>(got.begin(), got.end()).size(), 100U);
  EXPECT_EQ(got.front(), "early-0");
  EXPECT_EQ(got.back(), "late-49");
}

TEST_F(StreamTest, AnEntryIsAckedOnlyAfterItsHandlerFinished) {
  // A killed evhost leaves its unfinished entries pending; started again
  // under the same consumer name it handles them first.
  auto cfg = config("{path: slow_recorder, config: {key: slow, sleep_ms: 300}}");
  {
    EvhostProcess first(cfg, {}, {"DEBUG_EVENTS=true"});
    ASSERT_TRUE(first.waitForLog("created consumer group workers")) << first.log();
    for (int i = 0; i < 6; ++i) {
      xadd(event("e" + std::to_string(i)));
    }
    ASSERT_TRUE(eventually([&] { return llen("slow") >= 1; })) << first.log();
    first.signal(SIGKILL);
    ASSERT_TRUE(first.waitExit().has_value());
  }
  const long long handled_before = llen("slow");
  ASSERT_LT(handled_before, 6);
  // Every entry not yet handled is still pending (none acked early).
  EXPECT_GE(pending(), 6 - handled_before);

  EvhostProcess second(cfg);
  ASSERT_TRUE(eventually([&] { return pending() == 0; })) << second.log();
  auto got = ids("slow");
  std::set<std::string> unique(got.begin(), got.end());
  EXPECT_EQ(unique.size(), 6U) << "every entry handled at least once";
  EXPECT_LE(got.size(), 7U) << "at most the one in the handler at the kill twice";
}

TEST_F(StreamTest, ReadingPausesAtMaxInFlight) {
  EvhostProcess host(config("{path: slow_recorder, config: {key: slow, sleep_ms: 50}}", "limits: {max_in_flight: 2}\n"));
  ASSERT_TRUE(host.waitForLog("stream test:jollyjet:events:orders: group workers")) << host.log();
  for (int i = 0; i < 20; ++i) {
    xadd(event("e" + std::to_string(i)));
  }
  // Never more than max_in_flight entries taken and unacknowledged.
  long long most = 0;
  ASSERT_TRUE(eventually([&] {
    most = std::max(most, pending());
    return llen("slow") == 20;
  })) << host.log();
  EXPECT_LE(most, 2);
  EXPECT_TRUE(eventually([&] { return pending() == 0; }));
  EXPECT_EQ(host.countInLog("overloaded"), 0U);
}

TEST_F(StreamTest, EntriesWithoutAnEventFieldAreDeadLetteredAndAcked) {
  EvhostProcess host(config("{path: recorder}", "dead_letter: {fallback_file: dead.jsonl}\n"));
  ASSERT_TRUE(host.waitForLog("created consumer group")) << host.log();
  redis_.command({"XADD", "test:jollyjet:events:orders", "*", "payload", "{}"});
  xadd("not json");
  xadd(event("good"));
  ASSERT_TRUE(eventually([&] { return llen("seen") == 1; })) << host.log();
  ASSERT_TRUE(eventually([&] { return pending() == 0; })) << host.log();
  EXPECT_THAT(host.log(), HasSubstr("has no \"event\" field"));
  EXPECT_THAT(host.log(), HasSubstr("reason=not_json"));
}

}  // namespace
}  // namespace evh::test
