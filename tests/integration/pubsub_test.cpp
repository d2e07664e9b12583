// evhost against a real redis-server: routing, volume, refusals, reconnects,
// blocking plugins and graceful shutdown.
#include "support/evhost_process.h"
#include "support/redis_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <signal.h>

#include <fstream>
#include <iterator>
#include <set>
#include <sstream>

namespace evh::test {
namespace {

using ::testing::HasSubstr;

std::vector<std::string> split(const std::string& s, char sep, size_t max_parts) {
  std::vector<std::string> out;
  size_t start = 0;
  while (out.size() + 1 < max_parts) {
    size_t pos = s.find(sep, start);
    if (pos == std::string::npos) {
      break;
    }
    out.push_back(s.substr(start, pos - start));
    start = pos + 1;
  }
  out.push_back(s.substr(start));
  return out;
}

// One record of the recorder test plugin.
struct Record {
  std::string tag, type, id, correlation, attempt, channel, redis_channel, timestamp, timestamp_ms, payload;
};

std::string productCreated(const std::string& id, const std::string& corr = "req-1") {
  return R"({"eventId":")" + id + R"(","eventType":"PRODUCT_CREATED","timestamp":"2024-01-15T10:30:00.000Z",)" +
         R"("correlationId":")" + corr +
         R"(","payload":{"productId":"p-1","name":"Mug","price":12.5,"category":"kitchen"}})";
}

class PubSubTest : public ::testing::Test {
 protected:
  // A deployment on the test redis with prefix "test:".
  std::string config(const std::string& body, const std::string& redis_extra = "",
                     const std::string& logging = "  level: info\n") const {
    std::ostringstream y;
    y << "environment: test\n"
      << "redis:\n  host: 127.0.0.1\n  port: " << redis_.port() << "\n"
      << "  reconnect: {initial_ms: 50, max_ms: 400}\n  ping_interval_ms: 500\n  ping_timeout_ms: 500\n"
      << redis_extra << "logging:\n"
      << logging << body;
    return y.str();
  }

  void publish(const std::string& channel, const std::string& message) {
    redis_.command({"PUBLISH", "test:" + channel, message});
  }

  std::vector<Record> records(const std::string& key = "seen") {
    std::vector<Record> out;
    auto r = redis_.command({"LRANGE", key, "0", "-1"});
    for (size_t i = 0; i < r->elements; ++i) {
      auto f = split(std::string(r->element[i]->str, r->element[i]->len), '|', 10);
      if (f.size() == 10) {
        out.push_back(Record{f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9]});
      }
    }
    return out;
  }

  long long llen(const std::string& key = "seen") { return redis_.command({"LLEN", key})->integer; }

  static void waitSubscribed(const EvhostProcess& host, size_t times = 1) {
    ASSERT_TRUE(eventually([&] { return host.countInLog("subscribed to") >= times; })) << host.log();
  }

  RedisServer redis_;
};

TEST_F(PubSubTest, RoutesEventsToEveryPluginInOrderWithFieldsIntact) {
  EvhostProcess host(config(R"(
plugins:
  a: {path: recorder, config: {tag: a}}
  b: {path: recorder, config: {tag: b}}
channels:
  jollyjet:events:product:
    routes:
      - events: [PRODUCT_CREATED, PRODUCT_UPDATED]
        plugins: [a, b]
      - events: [PRODUCT_DELETED]
        plugins: [b]
  jollyjet:events:audit:
    routes:
      - events: "*"
        plugins: [a]
)"));
  waitSubscribed(host);
  publish("jollyjet:events:product", productCreated("e1", "corr-1"));
  publish(
      "jollyjet:events:product",
      R"({"eventId":"e2","eventType":"PRODUCT_UPDATED","timestamp":1705314600000,"payload":{"productId":"p-1","changes":{"price":13}}})");
  publish(
      "jollyjet:events:product",
      R"({"eventId":"e3","eventType":"PRODUCT_DELETED","timestamp":"2024-01-15T10:31:00Z","payload":{"productId":"p-1"}})");
  publish("jollyjet:events:product",
          R"({"eventId":"e4","eventType":"PRICE_SET","timestamp":"2024-01-15T10:31:00Z","payload":{}})");
  publish(
      "jollyjet:events:audit",
      R"({"eventId":"e5","eventType":"USER_ACTIVITY","timestamp":"2024-01-15T10:32:00.000Z","payload":{"userId":"u-1","action":"login","metadata":{"ip":"10.0.0.1"}}})");
  ASSERT_TRUE(eventually([&] { return llen() == 6; })) << host.log();

  std::vector<std::string> a_ids, b_ids;
  for (const auto& r : records()) {
    (r.tag == "a" ? a_ids : b_ids).push_back(r.id);
  }
  EXPECT_EQ(a_ids, (std::vector<std::string>{"e1", "e2", "e5"}));
  EXPECT_EQ(b_ids, (std::vector<std::string>{"e1", "e2", "e3"}));

  auto all = records();
  const Record& first = all[0];
  EXPECT_EQ(first.type, "PRODUCT_CREATED");
  EXPECT_EQ(first.correlation, "corr-1");
  EXPECT_EQ(first.attempt, "1");
  EXPECT_EQ(first.channel, "jollyjet:events:product");
  EXPECT_EQ(first.redis_channel, "test:jollyjet:events:product");
  EXPECT_EQ(first.timestamp, "2024-01-15T10:30:00.000Z");
  EXPECT_EQ(first.timestamp_ms, "1705314600000");
  EXPECT_EQ(first.payload, R"({"productId":"p-1","name":"Mug","price":12.5,"category":"kitchen"})");
  for (const auto& r : all) {
    if (r.id == "e2") {
      EXPECT_EQ(r.timestamp_ms, "1705314600000");
      EXPECT_EQ(r.correlation, "");
    }
  }
  // PRICE_SET matched no route: counted, not an error.
  EXPECT_EQ(host.countInLog("error"), 0U) << host.log();
}

TEST_F(PubSubTest, PatternChannelsReceiveEveryMatchingChannel) {
  EvhostProcess host(config(R"(
plugins:
  rec: {path: recorder}
channels:
  "jollyjet:events:*":
    pattern: true
    routes:
      - events: "*"
        plugins: [rec]
)"));
  waitSubscribed(host);
  publish("jollyjet:events:product", productCreated("p1"));
  publish("jollyjet:events:audit", productCreated("p2"));
  redis_.command({"PUBLISH", "other:jollyjet:events:product", productCreated("not-ours")});
  ASSERT_TRUE(eventually([&] { return llen() == 2; })) << host.log();
  auto all = records();
  EXPECT_EQ(all[0].id, "p1");
  EXPECT_EQ(all[0].channel, "jollyjet:events:product");
  EXPECT_EQ(all[0].redis_channel, "test:jollyjet:events:product");
  EXPECT_EQ(all[1].redis_channel, "test:jollyjet:events:audit");
}

TEST_F(PubSubTest, TenThousandEventsArriveExactlyOnce) {
  EvhostProcess host(config(R"(
limits: {max_in_flight: 20000}
plugins:
  counter: {path: recorder}
channels:
  jollyjet:events:product:
    routes:
      - events: "*"
        plugins: [counter]
)"));
  waitSubscribed(host);
  constexpr int kEvents = 10000;
  RedisConn pub = redis_.connect();
  for (int i = 0; i < kEvents; ++i) {
    std::string msg = productCreated("evt-" + std::to_string(i));
    redisAppendCommand(pub.get(), "PUBLISH %s %b", "test:jollyjet:events:product", msg.data(), msg.size());
  }
  for (int i = 0; i < kEvents; ++i) {
    void* reply = nullptr;
    ASSERT_EQ(redisGetReply(pub.get(), &reply), REDIS_OK);
    freeReplyObject(reply);
  }
  ASSERT_TRUE(eventually([&] { return llen() >= kEvents; }, std::chrono::seconds(60))) << llen();
  // Anything late would be a duplicate: give it a moment to show up.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto all = records();
  ASSERT_EQ(all.size(), static_cast<size_t>(kEvents));
  std::set<std::string> ids;
  for (size_t i = 0; i < all.size(); ++i) {
    ids.insert(all[i].id);
    EXPECT_EQ(all[i].id, "evt-" + std::to_string(i)) << "out of order at " << i;
    if (all[i].id != "evt-" + std::to_string(i)) {
      break;
    }
  }
  EXPECT_EQ(ids.size(), static_cast<size_t>(kEvents));
}

TEST_F(PubSubTest, SurvivesRedisRestartAndResubscribes) {
  EvhostProcess host(config(R"(
plugins:
  rec: {path: recorder}
channels:
  jollyjet:events:product:
    routes:
      - events: "*"
        plugins: [rec]
)"));
  waitSubscribed(host);
  publish("jollyjet:events:product", productCreated("before"));
  ASSERT_TRUE(eventually([&] { return llen() == 1; }));

  redis_.kill();
  ASSERT_TRUE(host.waitForLog("redis subscriber (127.0.0.1:" + std::to_string(redis_.port()) + "): connection lost"))
      << host.log();
  // Stay down long enough for many reconnect attempts.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  redis_.restart();
  waitSubscribed(host, 2);
  ASSERT_TRUE(host.waitForLog("pubsub gap")) << host.log();
  // The recorder needs the command connection too; until retries land, an
  // event it cannot record is only logged.
  ASSERT_TRUE(eventually([&] { return host.countInLog("connected again after") == 2; })) << host.log();

  publish("jollyjet:events:product", productCreated("after"));
  ASSERT_TRUE(eventually([&] { return llen() == 1; })) << host.log();  // the restarted redis starts empty
  EXPECT_EQ(records()[0].id, "after");
  EXPECT_TRUE(host.running());
  // Each transition once per connection (subscriber, commands), not once
  // per attempt.
  EXPECT_EQ(host.countInLog("connection lost"), 2U) << host.log();
  EXPECT_EQ(host.countInLog("retrying with backoff"), 2U) << host.log();
  // A refused connect is seen at once, not after connect_timeout_ms.
  EXPECT_EQ(host.countInLog("no connection within connect_timeout_ms"), 0U) << host.log();
  EXPECT_EQ(host.countInLog("connected again after"), 2U) << host.log();
  EXPECT_EQ(host.countInLog("pubsub gap"), 1U) << host.log();
}

TEST_F(PubSubTest, DetectsAFrozenServerByPingAndRecovers) {
  EvhostProcess host(config(R"(
plugins:
  rec: {path: recorder}
channels:
  jollyjet:events:product:
    routes:
      - events: "*"
        plugins: [rec]
)",
                            "  connect_timeout_ms: 300\n"));
  waitSubscribed(host);
  redis_.freeze();
  ASSERT_TRUE(host.waitForLog("no reply to PING within ping_timeout_ms=500 (half-open connection?)")) << host.log();
  // While frozen, reconnects fail the handshake's timeout: logged once per
  // connection, not once per attempt.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_LE(host.countInLog("no connection within connect_timeout_ms=300"), 2U) << host.log();
  redis_.thaw();
  waitSubscribed(host, 2);
  ASSERT_TRUE(eventually([&] { return host.countInLog("connected again after") == 2; })) << host.log();
  publish("jollyjet:events:product", productCreated("thawed"));
  ASSERT_TRUE(eventually([&] {
    auto all = records();
    return !all.empty() && all.back().id == "thawed";
  })) << host.log();
  EXPECT_TRUE(host.running());
}

TEST_F(PubSubTest, UnpacksBatchesAndAcceptsCloudEvents) {
  EvhostProcess host(config(R"(
plugins:
  rec: {path: recorder}
channels:
  jollyjet:events:product:
    routes:
      - events: "*"
        plugins: [rec]
)"));
  waitSubscribed(host);
  publish("jollyjet:events:product", R"({"type":"BATCH","timestamp":"2024-01-15T10:30:00.000Z","messages":[)" +
                                         productCreated("b1") + "," + R"({"eventId":"b2"},)" + productCreated("b3") +
                                         "]}");
  publish("jollyjet:events:product",
          R"({"specversion":"1.0","id":"ce-1","type":"PRODUCT_CREATED","source":"/jollyjet/products",)"
          R"("time":"2024-01-15T10:30:00Z","correlationid":"c-9","data":{"productId":"p-9"}})");
  ASSERT_TRUE(eventually([&] { return llen() == 3; })) << host.log();
  auto all = records();
  EXPECT_EQ(all[0].id, "b1");
  EXPECT_EQ(all[1].id, "b3");
  EXPECT_EQ(all[2].id, "ce-1");
  EXPECT_EQ(all[2].correlation, "c-9");
  EXPECT_EQ(all[2].payload, R"({"productId":"p-9"})");
  EXPECT_EQ(all[2].timestamp_ms, "1705314600000");
  EXPECT_TRUE(host.waitForLog("reason=missing_field")) << host.log();
}

TEST_F(PubSubTest, EventsBeyondMaxInFlightAreCountedAndLogged) {
  EvhostProcess host(config(R"(
limits: {max_in_flight: 1}
plugins:
  slow: {path: slow_recorder, config: {key: slow, sleep_ms: 300}}
channels:
  jollyjet:events:product:
    routes:
      - events: "*"
        plugins: [slow]
)"),
                     {}, {"DEBUG_EVENTS=true"});
  waitSubscribed(host);
  for (int i = 0; i < 4; ++i) {
    publish("jollyjet:events:product", productCreated("e" + std::to_string(i)));
  }
  ASSERT_TRUE(host.waitForLog("overloaded: 1 events in flight (limits.max_in_flight); event e1")) << host.log();
  ASSERT_TRUE(eventually([&] { return llen("slow") == 1; })) << host.log();
  // The record is written before evhost hears back: wait until e0 is done.
  ASSERT_TRUE(host.waitForLog("event stage=done eventId=e0")) << host.log();
  publish("jollyjet:events:product", productCreated("later"));
  ASSERT_TRUE(eventually([&] { return llen("slow") == 2; })) << host.log();
  EXPECT_EQ(records("slow")[1].id, "later");
}

TEST_F(PubSubTest, JsonLogFormatWritesOneObjectPerLine) {
  {
    EvhostProcess host(config(R"(
plugins:
  rec: {path: recorder}
channels:
  jollyjet:events:product:
    routes:
      - events: "*"
        plugins: [rec]
)",
                              "", "  level: info\n  format: json\n"));
    waitSubscribed(host);
    publish("jollyjet:events:product", "not \"json\"\n\ttab");
    ASSERT_TRUE(host.waitForLog("not_json")) << host.log();
    host.signal(SIGTERM);
    ASSERT_EQ(host.waitExit(), std::optional<int>(0));
    std::istringstream lines(host.log());
    std::string line;
    size_t n = 0;
    while (std::getline(lines, line)) {
      auto j = nlohmann::json::parse(line, nullptr, false);
      ASSERT_FALSE(j.is_discarded()) << "not JSON: " << line;
      EXPECT_TRUE(j.contains("time") && j.contains("level") && j.contains("logger") && j.contains("msg")) << line;
      ++n;
    }
    EXPECT_GE(n, 5U);
  }
}

// A slow plugin must never make Redis cut the subscriber off for a full
// output buffer: evhost reads as fast as Redis sends and sheds the excess.
class OutputBufferTest : public PubSubTest {};

TEST_F(OutputBufferTest, SlowPluginNeverGetsTheSubscriberDisconnected) {
  redis_.command({"CONFIG", "SET", "client-output-buffer-limit", "pubsub 256kb 128kb 1"});
  EvhostProcess host(config(R"(
limits: {max_in_flight: 100}
plugins:
  slow: {path: slow_recorder, config: {key: slow, sleep_ms: 20}}
channels:
  jollyjet:events:product:
    routes:
      - events: "*"
        plugins: [slow]
)"));
  waitSubscribed(host);
  // About 6 MB at some 10,000 events/s: far more than the plugin's 50/s
  // and than the 256 kB the buffer holds, yet not so fast that the decoding
  // itself (in a sanitizer build, say) is what is measured.
  constexpr int kEvents = 20000;
  constexpr int kBurst = 200;
  RedisConn pub = redis_.connect();
  for (int sent = 0; sent < kEvents; sent += kBurst) {
    for (int i = sent; i < sent + kBurst; ++i) {
      std::string msg = productCreated("evt-" + std::to_string(i));
      redisAppendCommand(pub.get(), "PUBLISH %s %b", "test:jollyjet:events:product", msg.data(), msg.size());
    }
    for (int i = 0; i < kBurst; ++i) {
      void* reply = nullptr;
      ASSERT_EQ(redisGetReply(pub.get(), &reply), REDIS_OK);
      freeReplyObject(reply);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(host.waitForLog("overloaded:")) << host.log();
  // Redis 7.0 has no INFO counter for it, but logs every such disconnect.
  std::ifstream redis_log(redis_.dir() + "/redis.log");
  std::string redis_text((std::istreambuf_iterator<char>(redis_log)), std::istreambuf_iterator<char>());
  EXPECT_EQ(redis_text.find("output buffer limits"), std::string::npos) << redis_text;
  const std::string subscriber_lost =
      "redis subscriber (127.0.0.1:" + std::to_string(redis_.port()) + "): connection lost";
  EXPECT_EQ(host.countInLog(subscriber_lost), 0U) << host.log();
  // Still subscribed: once the admitted backlog is through, a later event
  // is handled. (A probe arriving while max_in_flight is still full is shed
  // like the rest, so probe until one gets in.)
  int probes = 0;
  ASSERT_TRUE(eventually(
      [&] {
        publish("jollyjet:events:product", productCreated("after-" + std::to_string(probes++)));
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        for (const auto& r : records("slow")) {
          if (r.id.rfind("after-", 0) == 0) {
            return true;
          }
        }
        return false;
      },
      std::chrono::seconds(60)))
      << host.log();
  EXPECT_EQ(host.countInLog(subscriber_lost), 0U) << host.log();
}

// When Redis does cut the subscriber off (here an inline plugin that keeps
// the loop busy, and a tiny limit), the gap line says that Redis likely
// dropped what it held for us, and why -- not just "Server closed the
// connection" with a gap of a few milliseconds.
TEST_F(OutputBufferTest, CutOffByRedisIsLoggedAsLikelyDroppedMessages) {
  redis_.command({"CONFIG", "SET", "client-output-buffer-limit", "pubsub 1mb 512kb 1"});
  EvhostProcess host(config(R"(
plugins:
  slow: {path: recorder, config: {key: slow, sleep_ms: 1}}
channels:
  jollyjet:events:product:
    routes:
      - events: "*"
        plugins: [slow]
)"));
  waitSubscribed(host);
  // 20 MB as fast as Redis takes it, read at some 4 MB/s at most: Redis's
  // buffer for us passes 1 MB within moments.
  constexpr int kEvents = 5000;
  const std::string padding(4000, 'p');
  RedisConn pub = redis_.connect();
  for (int i = 0; i < kEvents; ++i) {
    std::string msg = R"({"eventId":"e)" + std::to_string(i) +
                      R"(","eventType":"PRODUCT_CREATED","timestamp":1,"payload":{"pad":")" + padding + R"("}})";
    redisAppendCommand(pub.get(), "PUBLISH %s %b", "test:jollyjet:events:product", msg.data(), msg.size());
  }
  for (int i = 0; i < kEvents; ++i) {
    void* reply = nullptr;
    ASSERT_EQ(redisGetReply(pub.get(), &reply), REDIS_OK);
    freeReplyObject(reply);
  }
  ASSERT_TRUE(host.waitForLog("pubsub gap", std::chrono::seconds(60))) << host.log();
  // Redis did cut us off for it (Redis 7.0 has no INFO counter; its log says).
  std::ifstream redis_log(redis_.dir() + "/redis.log");
  std::string redis_text((std::istreambuf_iterator<char>(redis_log)), std::istreambuf_iterator<char>());
  ASSERT_NE(redis_text.find("output buffer limits"), std::string::npos) << redis_text;
  EXPECT_THAT(host.log(), HasSubstr("Redis closed the connection and accepted the next at once: it likely cut this "
                                    "subscriber off for falling behind (client-output-buffer-limit pubsub"))
      << host.log();
  EXPECT_THAT(host.log(), HasSubstr("events were likely lost beyond it")) << host.log();
  EXPECT_LT(llen("slow"), kEvents);  // what Redis dropped never arrived
}

TEST_F(PubSubTest, RefusedMessagesAreLoggedAndTheNextGoodEventIsHandled) {
  EvhostProcess host(config(R"(
limits: {max_message_bytes: 300000, max_json_depth: 64}
plugins:
  rec: {path: recorder}
channels:
  jollyjet:events:product:
    routes:
      - events: "*"
        plugins: [rec]
)"));
  waitSubscribed(host);
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"not_json", "this is not json"},
      {"not_object", R"([1,2,3])"},
      {"missing_field", R"({"eventId":"x","timestamp":1,"payload":{}})"},
      {"wrong_type", R"({"eventId":"x","eventType":"T","timestamp":1,"payload":"text"})"},
      {"too_large", std::string(300001, ' ')},
      {"too_deep", std::string(100000, '[') + std::string(100000, ']')},
      {"bad_timestamp", R"({"eventId":"x","eventType":"T","timestamp":"yesterday","payload":{}})"},
  };
  int good = 0;
  for (const auto& [reason, msg] : bad) {
    publish("jollyjet:events:product", msg);
    publish("jollyjet:events:product", productCreated("good-" + std::to_string(good)));
    ++good;
    ASSERT_TRUE(eventually([&] { return llen() == good; })) << "after " << reason << "\n" << host.log();
    ASSERT_TRUE(host.waitForLog("reason=" + reason)) << host.log();
  }
  EXPECT_TRUE(host.running());
}

TEST_F(PubSubTest, BlockingPluginDoesNotDelayInlinePlugin) {
  EvhostProcess host(config(R"(
plugins:
  slow: {path: slow_recorder, config: {key: slow, sleep_ms: 200}}
  fast: {path: recorder, config: {key: fast}}
channels:
  jollyjet:events:product:
    routes:
      - events: [PRODUCT_CREATED]
        plugins: [slow, fast]
)"));
  waitSubscribed(host);
  for (int i = 0; i < 10; ++i) {
    publish("jollyjet:events:product", productCreated("e" + std::to_string(i)));
  }
  ASSERT_TRUE(eventually([&] { return llen("fast") == 10; })) << host.log();
  // The slow plugin needs 2 s for its 10; the inline one did not wait for it.
  EXPECT_LE(llen("slow"), 3);
  ASSERT_TRUE(eventually([&] { return llen("slow") == 10; })) << host.log();
  std::vector<std::string> ids;
  for (const auto& r : records("slow")) {
    ids.push_back(r.id);
  }
  EXPECT_EQ(ids, (std::vector<std::string>{"e0", "e1", "e2", "e3", "e4", "e5", "e6", "e7", "e8", "e9"}));
}

TEST_F(PubSubTest, SigtermLetsInFlightHandlersFinish) {
  EvhostProcess host(config(R"(
shutdown_timeout_ms: 20000
plugins:
  slow: {path: slow_recorder, config: {key: slow, sleep_ms: 300}}
channels:
  jollyjet:events:product:
    routes:
      - events: "*"
        plugins: [slow]
)"),
                     {}, {"DEBUG_EVENTS=true"});
  waitSubscribed(host);
  for (int i = 0; i < 3; ++i) {
    publish("jollyjet:events:product", productCreated("e" + std::to_string(i)));
  }
  ASSERT_TRUE(eventually([&] { return host.countInLog("event stage=dispatched") == 3; })) << host.log();
  ASSERT_LT(llen("slow"), 3);  // still in flight
  host.signal(SIGTERM);
  auto code = host.waitExit();
  ASSERT_TRUE(code.has_value()) << host.log();
  EXPECT_EQ(*code, 0) << host.log();
  EXPECT_EQ(llen("slow"), 3) << host.log();
  EXPECT_THAT(host.log(), HasSubstr("evhost stopped"));
}

TEST_F(PubSubTest, SecondSignalExitsAtOnce) {
  EvhostProcess host(config(R"(
shutdown_timeout_ms: 60000
plugins:
  slow: {path: slow_recorder, config: {key: slow, sleep_ms: 5000}}
channels:
  jollyjet:events:product:
    routes:
      - events: "*"
        plugins: [slow]
)"),
                     {}, {"DEBUG_EVENTS=true"});
  waitSubscribed(host);
  publish("jollyjet:events:product", productCreated("e0"));
  ASSERT_TRUE(host.waitForLog("event stage=dispatched")) << host.log();
  host.signal(SIGTERM);
  ASSERT_TRUE(host.waitForLog("waiting up to 60000 ms")) << host.log();
  host.signal(SIGINT);
  auto code = host.waitExit(std::chrono::seconds(3));
  ASSERT_TRUE(code.has_value()) << host.log();
  EXPECT_EQ(*code, 1);
  EXPECT_THAT(host.log(), HasSubstr("second signal"));
}

TEST_F(PubSubTest, ShutdownDeadlineAbandonsWorkAndExitsNonZero) {
  EvhostProcess host(config(R"(
shutdown_timeout_ms: 200
plugins:
  slow: {path: slow_recorder, config: {key: slow, sleep_ms: 1500}}
channels:
  jollyjet:events:product:
    routes:
      - events: "*"
        plugins: [slow]
)"),
                     {}, {"DEBUG_EVENTS=true"});
  waitSubscribed(host);
  publish("jollyjet:events:product", productCreated("e0"));
  publish("jollyjet:events:product", productCreated("e1"));
  ASSERT_TRUE(host.waitForLog("event stage=dispatched")) << host.log();
  host.signal(SIGTERM);
  auto code = host.waitExit();
  ASSERT_TRUE(code.has_value()) << host.log();
  EXPECT_EQ(*code, 1);
  EXPECT_THAT(host.log(), HasSubstr("shutdown deadline (200 ms) passed: slow: 2 call(s) unfinished"));
  EXPECT_THAT(host.log(), HasSubstr("plugin slow still has a handler running"));
  // Even this exit leaves nothing without a dead-letter entry.
  std::ifstream fallback(host.dir() + "/evhost-dead-letter.jsonl");
  std::vector<nlohmann::json> entries;
  for (std::string line; std::getline(fallback, line);) {
    entries.push_back(nlohmann::json::parse(line));
  }
  ASSERT_EQ(entries.size(), 2U);
  EXPECT_EQ(entries[0]["reason"], "abandoned");
  EXPECT_EQ(entries[1]["reason"], "abandoned");
}

}  // namespace
}  // namespace evh::test
