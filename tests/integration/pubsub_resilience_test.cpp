// evhost over Pub/Sub when things go wrong: Redis restarted or frozen, a
// slow plugin against Redis's output-buffer limit, a blocking plugin beside
// an inline one, and graceful and forced shutdown.
#include "pubsub_fixture.h"

namespace evh::test {
namespace {

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
