// evhost against a real redis-server over Pub/Sub: routing, patterns,
// volume, batches and CloudEvents, limits, refusals and the JSON log.
// Reconnects, slow plugins and shutdown are pubsub_resilience_test.cpp's.
#include "pubsub_fixture.h"

namespace evh::test {
namespace {

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

}  // namespace
}  // namespace evh::test
