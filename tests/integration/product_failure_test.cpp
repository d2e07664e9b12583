// The product plugin against bad input and a failing Redis: invalid payloads rejected naming the field, Redis errors
// retried and then dead-lettered with nothing half written, a repaired fault applying the event once.
#include "product_fixture.h"

namespace evh::test {
namespace {

TEST_F(ProductTest, InvalidPayloadsAreRejectedNamingTheField) {
  EvhostProcess host(config("", "retry: {max_attempts: 3, base_delay_ms: 50, jitter: none}\n", "\"*\""));
  waitSubscribed(host);
  struct Case {
    std::string id;
    std::string message;
    std::string field;  // what the dead letter's error message must name
  };
  const OrderedJson good_created = {{"productId", "p-1"}, {"name", "Mug"}, {"price", 12.5}, {"category", "kitchen"}};
  auto without = [&](const std::string& key) {
    OrderedJson p = good_created;
    p.erase(key);
    return p;
  };
  auto with = [&](const std::string& key, const OrderedJson& v) {
    OrderedJson p = good_created;
    p[key] = v;
    return p;
  };
  std::vector<Case> cases = {
      {"c1", envelope("c1", "PRODUCT_CREATED", without("productId"), "r"), "payload.productId"},
      {"c2", envelope("c2", "PRODUCT_CREATED", with("productId", ""), "r"), "payload.productId"},
      {"c3", envelope("c3", "PRODUCT_CREATED", with("productId", 42), "r"), "payload.productId"},
      {"c4", envelope("c4", "PRODUCT_CREATED", without("name"), "r"), "payload.name"},
      {"c5", envelope("c5", "PRODUCT_CREATED", with("price", -1), "r"), "payload.price"},
      {"c6", envelope("c6", "PRODUCT_CREATED", with("price", "12.5"), "r"), "payload.price"},
      {"c7", envelope("c7", "PRODUCT_CREATED", without("price"), "r"), "payload.price"},
      {"c8", envelope("c8", "PRODUCT_CREATED", without("category"), "r"), "payload.category"},
      {"c9", envelope("c9", "PRODUCT_CREATED", with("category", OrderedJson::array()), "r"), "payload.category"},
      {"u1", envelope("u1", "PRODUCT_UPDATED", {{"productId", "p-1"}}, "r"), "payload.changes"},
      {"u2", updated("u2", "p-1", OrderedJson::array({"price"})), "payload.changes"},
      {"u3", envelope("u3", "PRODUCT_UPDATED", {{"productId", "p-1"}, {"changes", "price=3"}}, "r"), "payload.changes"},
      {"u4", updated("u4", "p-1", {{"price", -0.5}}), "payload.changes.price"},
      {"u5", updated("u5", "p-1", {{"category", 7}}), "payload.changes.category"},
      {"u6", updated("u6", "p-1", {{"productId", "p-2"}}), "payload.changes.productId"},
      {"u7", envelope("u7", "PRODUCT_UPDATED", {{"changes", {{"price", 1}}}}, "r"), "payload.productId"},
      {"d1", envelope("d1", "PRODUCT_DELETED", OrderedJson::object(), "r"), "payload.productId"},
      {"d2", envelope("d2", "PRODUCT_DELETED", {{"productId", nullptr}}, "r"), "payload.productId"},
      {"x1", envelope("x1", "PRODUCT_RENAMED", {{"productId", "p-1"}}, "r"), "unsupported eventType"},
  };
  for (const auto& c : cases) {
    publish(c.message);
  }
  ASSERT_TRUE(eventually([&] { return llen("dlq") == static_cast<long long>(cases.size()); })) << host.log();
  auto dead = deadLetters();
  for (const auto& c : cases) {
    SCOPED_TRACE(c.id + ": " + c.message);
    ASSERT_EQ(dead.count(c.id), 1U);
    const json& e = dead[c.id];
    EXPECT_EQ(e["reason"], "rejected");
    EXPECT_EQ(e["plugin"], "product");
    EXPECT_EQ(e["attempts"], 1);
    EXPECT_THAT(e["error"]["message"].get<std::string>(), HasSubstr(c.field));
  }
  EXPECT_THAT(dead["c5"]["error"]["message"].get<std::string>(),
              HasSubstr("PRODUCT_CREATED payload.price: must be a number >= 0, got -1"));
  EXPECT_THAT(dead["c4"]["error"]["message"].get<std::string>(),
              HasSubstr("PRODUCT_CREATED payload.name: must be a non-empty string, missing"));
  EXPECT_THAT(dead["u2"]["error"]["message"].get<std::string>(),
              HasSubstr("PRODUCT_UPDATED payload.changes: must be an object, got [\"price\"]"));
  // Nothing was written.
  EXPECT_TRUE(redis_.command({"KEYS", "test:jollyjet:*"})->elements == 0);
  EXPECT_EQ(host.countInLog("retrying in"), 0U) << host.log();
}

TEST_F(ProductTest, RedisErrorsAreRetriedThenDeadLetteredWithoutHalfWrites) {
  // Two events failing three times each would open the breaker (5 failures)
  // and hold the second event's last attempt: not what this test is about.
  EvhostProcess host(config("",
                            "retry: {max_attempts: 3, base_delay_ms: 50, jitter: none}\n"
                            "circuit_breaker: {threshold: 100}\n"));
  waitSubscribed(host);
  // The product's hash key holds a string: the apply step fails with
  // WRONGTYPE on every attempt.
  redis_.command({"SET", "test:jollyjet:product:p-1", "not a hash"});
  // The category's set key holds a string: WRONGTYPE too, and the product's
  // hash must then not be written either.
  redis_.command({"SET", "test:jollyjet:category:broken", "not a set"});
  setCache({"test:cache:product:p-2", "test:cache:category:broken"});
  publish(created("evt-1", "p-1", "Mug", 12.5, "kitchen"));
  publish(created("evt-2", "p-2", "Pan", 30, "broken"));
  ASSERT_TRUE(eventually([&] { return llen("dlq") == 2; })) << host.log();
  auto dead = deadLetters();
  for (const char* id : {"evt-1", "evt-2"}) {
    SCOPED_TRACE(id);
    const json& e = dead[id];
    EXPECT_EQ(e["reason"], "exhausted");
    EXPECT_EQ(e["plugin"], "product");
    EXPECT_EQ(e["attempts"], 3);
    EXPECT_THAT(e["error"]["message"].get<std::string>(), HasSubstr("WRONGTYPE"));
  }
  EXPECT_THAT(dead["evt-1"]["error"]["message"].get<std::string>(),
              HasSubstr("WRONGTYPE test:jollyjet:product:p-1 holds a string value, not a hash"));
  EXPECT_THAT(dead["evt-2"]["error"]["message"].get<std::string>(),
              HasSubstr("WRONGTYPE test:jollyjet:category:broken holds a string value, not a set"));
  // No half-applied event: nothing of either was written or invalidated.
  EXPECT_FALSE(exists("test:jollyjet:category:kitchen"));
  EXPECT_FALSE(exists("test:jollyjet:product:p-2"));
  EXPECT_TRUE(exists("test:cache:product:p-2"));
  EXPECT_TRUE(exists("test:cache:category:broken"));
  EXPECT_EQ(host.countInLog("product created"), 0U) << host.log();
}

TEST_F(ProductTest, ARetryAfterTheFaultIsRepairedAppliesTheEventOnce) {
  EvhostProcess host(config("", "retry: {max_attempts: 5, base_delay_ms: 400, multiplier: 1, jitter: none}\n"));
  waitSubscribed(host);
  RedisConn sub = subscribe();
  publish(created("evt-1", "p-1", "Mug", 12.5, "kitchen"));
  ASSERT_EQ(nextMessage(sub.get())["payload"]["action"], "created");

  // The move to "garden" fails while its set key is of the wrong type.
  redis_.command({"SET", "test:jollyjet:category:garden", "oops"});
  publish(updated("evt-2", "p-1", {{"category", "garden"}}));
  ASSERT_TRUE(host.waitForLog("retrying in 400 ms")) << host.log();
  EXPECT_THAT(host.log(), HasSubstr("WRONGTYPE test:jollyjet:category:garden"));
  EXPECT_EQ(hash("test:jollyjet:product:p-1")["category"], "kitchen");
  EXPECT_THAT(members("test:jollyjet:category:kitchen"), UnorderedElementsAre("p-1"));
  redis_.command({"DEL", "test:jollyjet:category:garden"});

  json n = nextMessage(sub.get());
  EXPECT_EQ(n["payload"]["sourceEventId"], "evt-2");
  EXPECT_EQ(n["payload"]["previousCategory"], "kitchen");
  EXPECT_EQ(hash("test:jollyjet:product:p-1")["category"], "garden");
  EXPECT_FALSE(exists("test:jollyjet:category:kitchen"));
  EXPECT_THAT(members("test:jollyjet:category:garden"), UnorderedElementsAre("p-1"));
  EXPECT_EQ(llen("dlq"), 0);
  ASSERT_TRUE(host.waitForLog("product updated productId=p-1")) << host.log();
  EXPECT_EQ(host.countInLog("product updated productId=p-1"), 1U) << host.log();
}

}  // namespace
}  // namespace evh::test
