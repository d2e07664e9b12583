// The bundled product plugin in the real evhost against a real redis-server: the plan's event shapes in, Redis state
// out.
#include "support/evhost_process.h"
#include "support/pubsub_listener.h"
#include "support/redis_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace evh::test {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::UnorderedElementsAre;
using OrderedJson = nlohmann::ordered_json;

constexpr const char* kProductChannel = "test:jollyjet:events:product";
constexpr const char* kNotifications = "test:jollyjet:events:notifications";

// The plan's envelope (Step 1.1): eventId, eventType, an ISO timestamp, an
// optional correlationId, payload. Key order as a publisher writes it.
std::string envelope(const std::string& id, const std::string& type, const OrderedJson& payload,
                     const std::string& correlation = "", const std::string& timestamp = "2024-01-15T10:30:00.000Z") {
  OrderedJson e = {{"eventId", id}, {"eventType", type}, {"timestamp", timestamp}};
  if (!correlation.empty()) {
    e["correlationId"] = correlation;
  }
  e["payload"] = payload;
  return e.dump();
}

// ProductCreatedEvent.
std::string created(const std::string& id, const std::string& product, const std::string& name, double price,
                    const std::string& category, const std::string& correlation = "req-1") {
  return envelope(id, "PRODUCT_CREATED",
                  {{"productId", product}, {"name", name}, {"price", price}, {"category", category}}, correlation);
}

// ProductUpdatedEvent.
std::string updated(const std::string& id, const std::string& product, const OrderedJson& changes,
                    const std::string& correlation = "req-2",
                    const std::string& timestamp = "2024-01-16T08:00:00.000Z") {
  return envelope(id, "PRODUCT_UPDATED", {{"productId", product}, {"changes", changes}}, correlation, timestamp);
}

// ProductDeletedEvent.
std::string deleted(const std::string& id, const std::string& product, const std::string& correlation = "req-3") {
  return envelope(id, "PRODUCT_DELETED", {{"productId", product}}, correlation, "2024-01-17T09:15:30.250Z");
}

constexpr const char* kDeadRecorder = "  dead: {path: recorder, config: {key: dlq, tag: dead}}\n";

class ProductTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/evh-product-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // A deployment with the product plugin (by bare name: the bundled one),
  // `product_config` as its YAML config block if any, and dead letters going
  // to the recorder "dead" (list "dlq").
  std::string config(const std::string& product_config = "",
                     const std::string& retry = "retry: {max_attempts: 3, base_delay_ms: 50, jitter: none}\n",
                     const std::string& events = "[PRODUCT_CREATED, PRODUCT_UPDATED, PRODUCT_DELETED]") const {
    std::ostringstream y;
    y << "environment: test\n"
      << "redis: {host: 127.0.0.1, port: " << redis_.port() << "}\n"
      << retry << "shutdown_timeout_ms: 5000\n"
      << "dead_letter: {plugin: dead, fallback_file: " << dir_ << "/fallback.jsonl}\n"
      << "plugins:\n"
      << "  product:\n    path: product\n"
      << (product_config.empty() ? "" : "    config: " + product_config + "\n") << kDeadRecorder << "channels:\n"
      << "  jollyjet:events:product:\n"
      << "    routes:\n"
      << "      - events: " << events << "\n"
      << "        plugins: [product]\n";
    return y.str();
  }

  void publish(const std::string& message) { redis_.command({"PUBLISH", kProductChannel, message}); }

  // A second connection subscribed to `channel` before anything is
  // published, as the admin dashboard would be.
  RedisConn subscribe(const std::string& channel = kNotifications) { return subscribeTo(redis_, channel); }

  static void waitSubscribed(const EvhostProcess& host) { ASSERT_TRUE(host.waitForLog("subscribed to")) << host.log(); }

  std::map<std::string, std::string> hash(const std::string& key) {
    std::map<std::string, std::string> out;
    ReplyPtr r = redis_.command({"HGETALL", key});
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
      out[std::string(r->element[i]->str, r->element[i]->len)] =
          std::string(r->element[i + 1]->str, r->element[i + 1]->len);
    }
    return out;
  }
  std::set<std::string> members(const std::string& key) {
    std::set<std::string> out;
    ReplyPtr r = redis_.command({"SMEMBERS", key});
    for (size_t i = 0; i < r->elements; ++i) {
      out.emplace(r->element[i]->str, r->element[i]->len);
    }
    return out;
  }
  bool exists(const std::string& key) { return redis_.command({"EXISTS", key})->integer == 1; }
  void setCache(const std::vector<std::string>& keys) {
    for (const auto& k : keys) {
      redis_.command({"SET", k, "cached"});
    }
  }
  long long llen(const std::string& key) { return redis_.command({"LLEN", key})->integer; }
  // How many times Redis ran `command` since the last CONFIG RESETSTAT
  // (INFO commandstats; a script's own calls count too).
  long long commandCalls(const std::string& command) {
    ReplyPtr r = redis_.command({"INFO", "commandstats"});
    const std::string info(r->str, r->len);
    const std::string key = "cmdstat_" + command + ":calls=";
    const size_t at = info.find(key);
    return at == std::string::npos ? 0LL : std::stoll(info.substr(at + key.size()));
  }

  // The dead-letter entries the recorder "dead" stored, by eventId.
  std::map<std::string, json> deadLetters() {
    std::map<std::string, json> out;
    ReplyPtr r = redis_.command({"LRANGE", "dlq", "0", "-1"});
    for (size_t i = 0; i < r->elements; ++i) {
      std::string rec(r->element[i]->str, r->element[i]->len);
      size_t pos = 0;
      for (int f = 0; f < 9; ++f) {
        pos = rec.find('|', pos) + 1;
      }
      json e = json::parse(rec.substr(pos));
      out[e["eventId"].get<std::string>()] = e;
    }
    return out;
  }

  RedisServer redis_;
  std::string dir_;
};

bool isIsoUtc(const json& v) {
  static const std::regex iso(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)");
  return v.is_string() && std::regex_match(v.get<std::string>(), iso);
}

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
  std::string yaml = config();
  const std::string route = "        plugins: [product]\n";
  yaml.replace(yaml.find(route), route.size(), route + "        idempotency: {ttl_ms: 60000}\n");
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
  // The script's own: EXISTS of the mark for each of the three; one SET per
  // mark. None from the host.
  EXPECT_EQ(commandCalls("exists"), 3);
  EXPECT_EQ(commandCalls("set"), 2);
  // A new product costs the script 7 commands: EXISTS, TYPE (no HMGET: there
  // is nothing to read), SADD, HSET, DEL, SET, PUBLISH. The repeat stops at
  // its EXISTS.
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

TEST_F(ProductTest, KeyTemplatesAndTheNotificationChannelComeFromTheConfig) {
  EvhostProcess host(config(R"({cache_keys: ["{prefix}c:{category}:{productId}", "{prefix}c:all", "shared:{category}"],
      read_model: {product_key: "{prefix}rm:p:{productId}", category_key: "{prefix}rm:c:{category}"},
      notifications: {channel: "custom:notes"}})"));
  waitSubscribed(host);
  RedisConn sub = subscribe("test:custom:notes");
  publish(created("evt-1", "p-1", "Mug", 12.5, "kitchen"));
  ASSERT_EQ(nextMessage(sub.get())["payload"]["action"], "created");
  setCache(
      {"test:c:kitchen:p-1", "test:c:garden:p-1", "test:c:all", "shared:kitchen", "shared:garden", "test:c:toys:p-1"});
  publish(updated("evt-2", "p-1", {{"category", "garden"}}));
  ASSERT_EQ(nextMessage(sub.get())["payload"]["action"], "updated");
  EXPECT_EQ(hash("test:rm:p:p-1")["category"], "garden");
  EXPECT_THAT(members("test:rm:c:garden"), UnorderedElementsAre("p-1"));
  EXPECT_FALSE(exists("test:rm:c:kitchen"));
  for (const char* k : {"test:c:kitchen:p-1", "test:c:garden:p-1", "test:c:all", "shared:kitchen", "shared:garden"}) {
    EXPECT_FALSE(exists(k)) << k;
  }
  EXPECT_TRUE(exists("test:c:toys:p-1"));
  EXPECT_FALSE(exists("test:jollyjet:product:p-1"));  // the default key is not used
}

// hash_tag (for a Redis Cluster, cluster_product_test.cpp): every key the
// plugin uses carries "{tag}:" after the environment prefix -- or first,
// for a template without {prefix} -- the idempotency mark too.
TEST_F(ProductTest, AHashTagGoesIntoEveryKeyAfterThePrefix) {
  std::string yaml = config(R"({hash_tag: jj, cache_keys: ["{prefix}cache:{productId}", "shared:{category}"]})");
  const std::string route = "        plugins: [product]\n";
  yaml.replace(yaml.find(route), route.size(), route + "        idempotency: {ttl_ms: 60000}\n");
  EvhostProcess host(yaml);
  waitSubscribed(host);
  EXPECT_THAT(host.log(), HasSubstr("read model test:{jj}:jollyjet:product:{productId} + "
                                    "test:{jj}:jollyjet:category:{category}; invalidates "
                                    "[test:{jj}:cache:{productId}, {jj}:shared:{category}]"));
  RedisConn sub = subscribe();
  setCache({"test:{jj}:cache:p-1", "{jj}:shared:kitchen"});
  publish(created("evt-1", "p-1", "Mug", 12.5, "kitchen"));
  EXPECT_EQ(nextMessage(sub.get())["payload"]["productId"], "p-1");
  EXPECT_EQ(hash("test:{jj}:jollyjet:product:p-1")["name"], "Mug");
  EXPECT_THAT(members("test:{jj}:jollyjet:category:kitchen"), UnorderedElementsAre("p-1"));
  EXPECT_FALSE(exists("test:{jj}:cache:p-1"));
  EXPECT_FALSE(exists("{jj}:shared:kitchen"));
  EXPECT_TRUE(exists("test:{jj}:evh:done:product:evt-1"));
  EXPECT_FALSE(exists("test:evh:done:product:evt-1"));
  EXPECT_FALSE(exists("test:jollyjet:product:p-1"));
}

TEST_F(ProductTest, NotificationsCanBeTurnedOff) {
  EvhostProcess host(config("{notifications: {enabled: false}, cache_keys: []}"));
  waitSubscribed(host);
  RedisConn sub = subscribe();
  setCache({"test:cache:product:p-1"});
  publish(created("evt-1", "p-1", "Mug", 12.5, "kitchen"));
  ASSERT_TRUE(host.waitForLog("product created productId=p-1")) << host.log();
  EXPECT_EQ(hash("test:jollyjet:product:p-1")["name"], "Mug");
  EXPECT_TRUE(exists("test:cache:product:p-1"));  // no cache keys configured
  // Nothing was published: the subscriber's read times out.
  redisSetTimeout(sub.get(), timeval{0, 300000});
  void* raw = nullptr;
  EXPECT_NE(redisGetReply(sub.get(), &raw), REDIS_OK);
  if (raw != nullptr) {
    freeReplyObject(raw);
  }
}

TEST_F(ProductTest, ABadConfigRefusesToStartNamingTheKey) {
  struct Case {
    std::string config;
    std::string message;
  };
  std::vector<Case> cases = {
      {"{cache_key: []}",
       ":6: plugin product config /cache_key: unknown key (known: cache_keys, read_model, notifications, hash_tag)"},
      {"{read_model: {product: x}}", ":6: plugin product config /read_model/product: unknown key"},
      {"{notifications: {enable: false}}", ":6: plugin product config /notifications/enable: unknown key"},
      {R"({cache_keys: ["{prefix}cache:{productID}"]})",
       ":6: plugin product config /cache_keys/0: unknown placeholder {productID}"},
      {R"({read_model: {product_key: "{prefix}product"}})", "config /read_model/product_key: must contain {productId}"},
      {R"({read_model: {category_key: "{prefix}cat"}})", "config /read_model/category_key: must contain {category}"},
      {"{notifications: {enabled: yes please}}", "config /notifications/enabled: must be true or false"},
      {"{cache_keys: \"{prefix}x\"}", "config /cache_keys: must be a list of key templates"},
      {"{hash_tag: \"\"}", ":6: plugin product config /hash_tag: must be a non-empty string"},
      {"{hash_tag: \"a}b\"}", ":6: plugin product config /hash_tag: must be printable ASCII without braces"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.config);
    std::string path = dir_ + "/bad.yaml";
    {
      std::ofstream out(path);
      out << "environment: test\nredis: {port: " << redis_.port() << "}\nplugins:\n  product:\n    path: product\n"
          << "    config: " << c.config << "\n";
    }
    auto [code, out] = runCommand({EVH_EVHOST_BIN, "--config", path, "--ops-listen", ""});
    EXPECT_EQ(code, 1) << out;
    EXPECT_THAT(out, Not(HasSubstr("init failed")));  // refused by validate_config, before init
    EXPECT_THAT(out, HasSubstr(c.message.front() == ':' ? path + c.message : c.message));
    for (const char* marker : {"AddressSanitizer", "LeakSanitizer", "runtime error:"}) {
      EXPECT_EQ(out.find(marker), std::string::npos) << "sanitizer report:\n" << out;
    }
  }
}

// config/jollyjet.yaml as shipped: `product: {path: product}`, no config
// block; the defaults do the work.
TEST_F(ProductTest, TheDefaultDeploymentNeedsNoConfigBlock) {
  std::ifstream in(std::string(EVH_SOURCE_DIR) + "/config/jollyjet.yaml");
  std::string yaml((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_THAT(yaml, HasSubstr("path: product"));
  EvhostProcess host(yaml, {},
                     {"EVH_ENV=test", "REDIS_HOST=127.0.0.1", "REDIS_PORT=" + std::to_string(redis_.port()),
                      "EVH_DLQ_SPOOL=" + dir_ + "/spool.jsonl", "EVH_DEAD_LETTER_FILE=" + dir_ + "/dead.jsonl"});
  waitSubscribed(host);
  RedisConn sub = subscribe();
  setCache({"test:cache:product:p-1", "test:cache:category:kitchen"});
  publish(created("evt-1", "p-1", "Mug", 12.5, "kitchen"));
  json n = nextMessage(sub.get());
  EXPECT_EQ(n["payload"]["sourceEventId"], "evt-1");
  EXPECT_EQ(hash("test:jollyjet:product:p-1")["name"], "Mug");
  EXPECT_THAT(members("test:jollyjet:category:kitchen"), UnorderedElementsAre("p-1"));
  EXPECT_FALSE(exists("test:cache:product:p-1"));
  EXPECT_FALSE(exists("test:cache:category:kitchen"));
  ASSERT_TRUE(host.waitForLog("product created productId=p-1")) << host.log();
}

}  // namespace
}  // namespace evh::test
