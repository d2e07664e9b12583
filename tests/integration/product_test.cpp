// The bundled product plugin in the real evhost against a real redis-server: the plan's event shapes in, Redis state
// out.
#include "product_fixture.h"

namespace evh::test {
namespace {

TEST_F(ProductTest, CreatedWritesTheReadModelInvalidatesCachesAndNotifies) {
  EvhostProcess host(config());
  waitSubscribed(host);
  setCache({"test:cache:product:p-1", "test:cache:category:kitchen", "test:cache:category:garden",
            "test:cache:product:p-2"});
  RedisConn sub = subscribe();

  publish(created("evt-1", "p-1", "Mug", 12.5, "kitchen"));
  json n = nextMessage(sub.get());

  // The notification: the plan's envelope around a compact payload.
  EXPECT_EQ(n["eventType"], "PRODUCT_NOTIFICATION");
  EXPECT_EQ(n["correlationId"], "req-1");
  ASSERT_TRUE(n["eventId"].is_string());
  EXPECT_FALSE(n["eventId"].get<std::string>().empty());
  EXPECT_NE(n["eventId"], "evt-1");
  EXPECT_TRUE(isIsoUtc(n["timestamp"])) << n.dump();
  EXPECT_EQ(n["payload"], json::parse(R"({"productId":"p-1","action":"created","name":"Mug","category":"kitchen",
                                          "sourceEventId":"evt-1"})"));

  // The read model: a hash per product, a set per category.
  EXPECT_EQ(hash("test:jollyjet:product:p-1"),
            (std::map<std::string, std::string>{{"productId", "p-1"},
                                                {"name", "Mug"},
                                                {"price", "12.5"},
                                                {"category", "kitchen"},
                                                {"createdAt", "2024-01-15T10:30:00.000Z"},
                                                {"updatedAt", "2024-01-15T10:30:00.000Z"}}));
  EXPECT_THAT(members("test:jollyjet:category:kitchen"), UnorderedElementsAre("p-1"));

  // The product's and its category's caches are gone; others stay.
  EXPECT_FALSE(exists("test:cache:product:p-1"));
  EXPECT_FALSE(exists("test:cache:category:kitchen"));
  EXPECT_TRUE(exists("test:cache:category:garden"));
  EXPECT_TRUE(exists("test:cache:product:p-2"));

  ASSERT_TRUE(host.waitForLog("product created productId=p-1")) << host.log();
  EXPECT_THAT(host.log(), HasSubstr("product created productId=p-1 name=\"Mug\" category=kitchen price=12.5 "
                                    "eventId=evt-1 correlationId=req-1"));
  EXPECT_EQ(llen("dlq"), 0);
}

// The script goes by its SHA-1; a Redis that has lost its script cache
// (restarted, SCRIPT FLUSH) answers NOSCRIPT and gets the script whole once.

TEST_F(ProductTest, TheScriptGoesByItsShaAndWholeOnceWhenRedisLostIt) {
  EvhostProcess host(config());
  waitSubscribed(host);
  RedisConn sub = subscribe();
  std::set<std::string> ids;
  redis_.command({"SCRIPT", "FLUSH"});
  redis_.command({"CONFIG", "RESETSTAT"});
  publish(created("evt-1", "p-1", "Mug", 12.5, "kitchen"));
  EXPECT_EQ(nextMessage(sub.get())["payload"]["productId"], "p-1");
  EXPECT_EQ(commandCalls("evalsha"), 1);  // answered NOSCRIPT
  EXPECT_EQ(commandCalls("eval"), 1);     // the script whole, cached from now on
  for (int i = 2; i <= 4; ++i) {
    publish(created("evt-" + std::to_string(i), "p-" + std::to_string(i), "Cup", 3, "kitchen"));
    json n = nextMessage(sub.get());
    EXPECT_EQ(n["payload"]["productId"], "p-" + std::to_string(i));
    // Each notification has an id of its own, a version 4 UUID.
    const std::string id = n["eventId"];
    EXPECT_TRUE(std::regex_match(id, std::regex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")))
        << id;
    EXPECT_TRUE(ids.insert(id).second) << id;
  }
  EXPECT_EQ(commandCalls("evalsha"), 4);
  EXPECT_EQ(commandCalls("eval"), 1);
  EXPECT_THAT(members("test:jollyjet:category:kitchen"), UnorderedElementsAre("p-1", "p-2", "p-3", "p-4"));
  EXPECT_EQ(llen("dlq"), 0);
}

// The plugin declares EVH_PLUGIN_OWN_IDEMPOTENCY: on an idempotent route its
// script checks and writes the mark, and the host sends neither EXISTS nor
// SET of its own.

TEST_F(ProductTest, OnAnIdempotentRouteTheScriptAloneKeepsTheMark) {
  const std::string yaml = idempotent(config());
  EvhostProcess host(yaml);
  waitSubscribed(host);
  RedisConn sub = subscribe();
  redis_.command({"CONFIG", "RESETSTAT"});
  publish(created("evt-1", "p-1", "Mug", 12.5, "kitchen"));
  EXPECT_EQ(nextMessage(sub.get())["payload"]["productId"], "p-1");
  publish(created("evt-1", "p-1", "Mug", 12.5, "kitchen"));  // again, as a redelivery would
  publish(created("evt-2", "p-2", "Cup", 3, "kitchen"));
  // evt-1 was announced once; its repeat's script ran before evt-2's (one
  // connection, in order).
  EXPECT_EQ(nextMessage(sub.get())["payload"]["productId"], "p-2");
  // The script's own: one SET NX of the mark for each of the three (it
  // checks and writes at once). None from the host.
  EXPECT_EQ(commandCalls("exists"), 0);
  EXPECT_EQ(commandCalls("set"), 3);
  // A new product costs the script 6 commands: SET NX, TYPE (no HMGET: there
  // is nothing to read), SADD, HSET, DEL, PUBLISH. The repeat stops at its
  // SET NX.
  EXPECT_EQ(commandCalls("type"), 2);
  EXPECT_EQ(commandCalls("hmget"), 0);
  EXPECT_EQ(commandCalls("sadd"), 2);
  EXPECT_EQ(commandCalls("hset"), 2);
  EXPECT_EQ(commandCalls("del"), 2);
  EXPECT_EQ(commandCalls("publish"), 3 + 2);  // the test's three and the script's
  EXPECT_EQ(redis_.command({"EXISTS", "test:evh:done:product:evt-1"})->integer, 1);
  EXPECT_GT(redis_.command({"PTTL", "test:evh:done:product:evt-1"})->integer, 50000);
  EXPECT_EQ(llen("dlq"), 0);
}

TEST_F(ProductTest, UpdatedAppliesChangesMovesTheCategoryAndInvalidatesBothCaches) {
  EvhostProcess host(config());
  waitSubscribed(host);
  RedisConn sub = subscribe();
  publish(created("evt-1", "p-1", "Mug", 12.5, "kitchen"));
  ASSERT_EQ(nextMessage(sub.get())["payload"]["action"], "created");

  setCache({"test:cache:product:p-1", "test:cache:category:kitchen", "test:cache:category:garden",
            "test:cache:category:toys"});
  OrderedJson changes = {{"price", 15}, {"category", "garden"}, {"tags", {"blue", "large"}}, {"description", "A mug"}};
  publish(updated("evt-2", "p-1", changes));
  json n = nextMessage(sub.get());
  EXPECT_EQ(n["eventType"], "PRODUCT_NOTIFICATION");
  EXPECT_EQ(n["correlationId"], "req-2");
  EXPECT_EQ(n["payload"], json::parse(R"({"productId":"p-1","action":"updated","name":"Mug","category":"garden",
                                          "previousCategory":"kitchen",
                                          "changedKeys":["price","category","tags","description"],
                                          "sourceEventId":"evt-2"})"));

  EXPECT_EQ(hash("test:jollyjet:product:p-1"),
            (std::map<std::string, std::string>{{"productId", "p-1"},
                                                {"name", "Mug"},
                                                {"price", "15"},
                                                {"category", "garden"},
                                                {"tags", R"(["blue","large"])"},
                                                {"description", "A mug"},
                                                {"createdAt", "2024-01-15T10:30:00.000Z"},
                                                {"updatedAt", "2024-01-16T08:00:00.000Z"}}));
  // Moved between the category sets.
  EXPECT_FALSE(exists("test:jollyjet:category:kitchen"));
  EXPECT_THAT(members("test:jollyjet:category:garden"), UnorderedElementsAre("p-1"));
  // The old and the new category's caches, and the product's.
  EXPECT_FALSE(exists("test:cache:product:p-1"));
  EXPECT_FALSE(exists("test:cache:category:kitchen"));
  EXPECT_FALSE(exists("test:cache:category:garden"));
  EXPECT_TRUE(exists("test:cache:category:toys"));
  ASSERT_TRUE(host.waitForLog("product updated productId=p-1")) << host.log();
  EXPECT_THAT(host.log(), HasSubstr("product updated productId=p-1 changed=[price,category,tags,description] "
                                    "name=\"Mug\" category=garden previousCategory=kitchen price=15 eventId=evt-2 "
                                    "correlationId=req-2"));

  // An update that keeps the category still invalidates that category's
  // cache (the product in it changed); a null change removes the field.
  setCache({"test:cache:product:p-1", "test:cache:category:garden", "test:cache:category:kitchen"});
  publish(
      updated("evt-3", "p-1", {{"name", "Big Mug"}, {"description", nullptr}}, "req-4", "2024-01-16T09:00:00.000Z"));
  n = nextMessage(sub.get());
  EXPECT_EQ(n["payload"], json::parse(R"({"productId":"p-1","action":"updated","name":"Big Mug","category":"garden",
                                          "changedKeys":["name","description"],"sourceEventId":"evt-3"})"));
  auto h = hash("test:jollyjet:product:p-1");
  EXPECT_EQ(h["name"], "Big Mug");
  EXPECT_EQ(h.count("description"), 0U);
  EXPECT_EQ(h["category"], "garden");
  EXPECT_EQ(h["price"], "15");
  EXPECT_EQ(h["updatedAt"], "2024-01-16T09:00:00.000Z");
  EXPECT_THAT(members("test:jollyjet:category:garden"), UnorderedElementsAre("p-1"));
  EXPECT_FALSE(exists("test:cache:product:p-1"));
  EXPECT_FALSE(exists("test:cache:category:garden"));
  EXPECT_TRUE(exists("test:cache:category:kitchen"));
  ASSERT_TRUE(host.waitForLog("product updated productId=p-1 changed=[name,description]")) << host.log();
  EXPECT_EQ(llen("dlq"), 0);
}

TEST_F(ProductTest, UpdateOfAProductNotInTheReadModelCreatesItFromTheChanges) {
  EvhostProcess host(config());
  waitSubscribed(host);
  RedisConn sub = subscribe();
  setCache({"test:cache:product:p-9", "test:cache:category:toys"});
  publish(updated("evt-9", "p-9", {{"price", 3.25}, {"category", "toys"}}));
  json n = nextMessage(sub.get());
  EXPECT_EQ(n["payload"], json::parse(R"({"productId":"p-9","action":"updated","category":"toys",
                                          "changedKeys":["price","category"],"sourceEventId":"evt-9"})"));
  EXPECT_EQ(
      hash("test:jollyjet:product:p-9"),
      (std::map<std::string, std::string>{
          {"productId", "p-9"}, {"price", "3.25"}, {"category", "toys"}, {"updatedAt", "2024-01-16T08:00:00.000Z"}}));
  EXPECT_THAT(members("test:jollyjet:category:toys"), UnorderedElementsAre("p-9"));
  EXPECT_FALSE(exists("test:cache:product:p-9"));
  EXPECT_FALSE(exists("test:cache:category:toys"));
  ASSERT_TRUE(host.waitForLog("product updated productId=p-9")) << host.log();
  EXPECT_THAT(host.log(), HasSubstr("inReadModel=false"));
}

TEST_F(ProductTest, DeletedRemovesTheReadModelAndItsMemberships) {
  EvhostProcess host(config());
  waitSubscribed(host);
  RedisConn sub = subscribe();
  publish(created("evt-1", "p-1", "Mug", 12.5, "kitchen"));
  publish(created("evt-2", "p-2", "Pan", 30, "kitchen"));
  nextMessage(sub.get());
  nextMessage(sub.get());
  ASSERT_THAT(members("test:jollyjet:category:kitchen"), UnorderedElementsAre("p-1", "p-2"));

  setCache({"test:cache:product:p-1", "test:cache:product:p-2", "test:cache:category:kitchen"});
  publish(deleted("evt-3", "p-1"));
  json n = nextMessage(sub.get());
  EXPECT_EQ(n["eventType"], "PRODUCT_NOTIFICATION");
  EXPECT_EQ(n["correlationId"], "req-3");
  // Name and category as the read model knew them.
  EXPECT_EQ(n["payload"], json::parse(R"({"productId":"p-1","action":"deleted","name":"Mug","category":"kitchen",
                                          "sourceEventId":"evt-3"})"));
  EXPECT_FALSE(exists("test:jollyjet:product:p-1"));
  EXPECT_THAT(members("test:jollyjet:category:kitchen"), UnorderedElementsAre("p-2"));
  EXPECT_TRUE(exists("test:jollyjet:product:p-2"));
  EXPECT_FALSE(exists("test:cache:product:p-1"));
  EXPECT_FALSE(exists("test:cache:category:kitchen"));
  EXPECT_TRUE(exists("test:cache:product:p-2"));
  ASSERT_TRUE(host.waitForLog("product deleted productId=p-1")) << host.log();
  EXPECT_THAT(host.log(), HasSubstr("product deleted productId=p-1 name=\"Mug\" category=kitchen eventId=evt-3 "
                                    "correlationId=req-3"));

  // The last product of a category: the set goes too. Deleting again (a
  // duplicate) is no error.
  publish(deleted("evt-4", "p-2"));
  publish(deleted("evt-5", "p-2"));
  EXPECT_EQ(nextMessage(sub.get())["payload"]["sourceEventId"], "evt-4");
  n = nextMessage(sub.get());
  EXPECT_EQ(n["payload"], json::parse(R"({"productId":"p-2","action":"deleted","sourceEventId":"evt-5"})"));
  EXPECT_FALSE(exists("test:jollyjet:category:kitchen"));
  EXPECT_FALSE(exists("test:jollyjet:product:p-2"));
  ASSERT_TRUE(host.waitForLog("product deleted productId=p-2 inReadModel=false eventId=evt-5")) << host.log();
  EXPECT_EQ(llen("dlq"), 0);
}

TEST_F(ProductTest, BackToBackMovesLeaveTheProductInExactlyOneCategory) {
  EvhostProcess host(config());
  waitSubscribed(host);
  RedisConn sub = subscribe();
  publish(created("evt-0", "p-1", "Mug", 12.5, "c0"));
  ASSERT_EQ(nextMessage(sub.get())["payload"]["action"], "created");
  // Published without waiting: many updates of one product in flight at once.
  constexpr int kMoves = 30;
  for (int i = 1; i <= kMoves; ++i) {
    publish(updated("evt-" + std::to_string(i), "p-1", {{"category", "c" + std::to_string(i)}}));
  }
  for (int i = 1; i <= kMoves; ++i) {
    json n = nextMessage(sub.get());
    ASSERT_EQ(n["payload"]["action"], "updated");
  }
  EXPECT_EQ(hash("test:jollyjet:product:p-1")["category"], "c" + std::to_string(kMoves));
  for (int i = 0; i < kMoves; ++i) {
    EXPECT_FALSE(exists("test:jollyjet:category:c" + std::to_string(i))) << i;
  }
  EXPECT_THAT(members("test:jollyjet:category:c" + std::to_string(kMoves)), UnorderedElementsAre("p-1"));
}

TEST_F(ProductTest, AnEventWithoutCorrelationIdGivesANotificationWithout) {
  EvhostProcess host(config());
  waitSubscribed(host);
  RedisConn sub = subscribe();
  publish(envelope("evt-1", "PRODUCT_DELETED", {{"productId", "p-1"}}));
  json n = nextMessage(sub.get());
  EXPECT_FALSE(n.contains("correlationId")) << n.dump();
  EXPECT_EQ(n["payload"]["sourceEventId"], "evt-1");
}

}  // namespace
}  // namespace evh::test
