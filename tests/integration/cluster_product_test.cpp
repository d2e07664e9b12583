// The bundled product plugin on a real 3-master Redis Cluster
// (support/redis_cluster.h): with `hash_tag:` its read model, caches and
// idempotency marks share one slot, so its apply script runs there -- a
// product created, moved between categories and deleted leaves the read
// model and the caches as on one Redis, every notification published once
// (a redelivered event too). Without `hash_tag:` Redis refuses the script
// (CROSSSLOT) and the event is dead-lettered, nothing written, with a message
// naming the setting.
#include "support/evhost_process.h"
#include "support/pubsub_listener.h"
#include "support/redis_cluster.h"
#include "support/redis_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace evh::test {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

constexpr const char* kStream = "test:jollyjet:events:product";
constexpr const char* kNotifications = "test:jollyjet:events:notifications";

std::string envelope(const std::string& id, const std::string& type, const json& payload) {
  return json{{"eventId", id}, {"eventType", type}, {"timestamp", "2024-01-15T10:30:00.000Z"}, {"payload", payload}}
      .dump();
}

// The product plugin on an idempotent stream route; dead letters to the
// recorder "dead", which pushes them to the list `dlq`.
std::string productConfig(RedisCluster& cluster, const std::string& product_config, const std::string& dlq) {
  std::ostringstream y;
  y << "environment: test\n"
    << "redis:\n"
    << "  cluster: {nodes: " << cluster.nodesYaml() << "}\n"
    << "  reconnect: {initial_ms: 100, max_ms: 1000}\n"
    << "retry: {max_attempts: 2, base_delay_ms: 50, jitter: none}\n"
    << "dead_letter: {plugin: dead}\n"
    << "plugins:\n"
    << "  product: {path: product, config: " << product_config << "}\n"
    << "  dead: {path: recorder, config: {key: \"" << dlq << "\", tag: dead}}\n"
    << "channels:\n"
    << "  jollyjet:events:product:\n"
    << "    transport: stream\n"
    << "    stream: {group: workers, consumer: c1, block_ms: 200}\n"
    << "    routes:\n"
    << "      - events: [PRODUCT_CREATED, PRODUCT_UPDATED, PRODUCT_DELETED]\n"
    << "        plugins: [product]\n"
    << "        idempotency: {}\n";
  return y.str();
}

class ClusterProductTest : public ::testing::Test {
 protected:
  void add(const std::string& message) {
    ReplyPtr r = cluster_.commandForKey(kStream, {"XADD", kStream, "*", "event", message});
    ASSERT_TRUE(r);
    ASSERT_EQ(r->type, REDIS_REPLY_STRING) << replyText(r);
  }
  ReplyPtr on(const std::string& key, const std::vector<std::string>& argv) {
    return cluster_.commandForKey(key, argv);
  }
  bool exists(const std::string& key) { return on(key, {"EXISTS", key})->integer == 1; }
  void set(const std::string& key) { ASSERT_EQ(replyText(on(key, {"SET", key, "cached"})), "OK"); }
  std::set<std::string> members(const std::string& key) {
    std::set<std::string> out;
    ReplyPtr r = on(key, {"SMEMBERS", key});
    for (size_t i = 0; r && i < r->elements; ++i) {
      out.emplace(r->element[i]->str, r->element[i]->len);
    }
    return out;
  }
  std::map<std::string, std::string> hash(const std::string& key) {
    std::map<std::string, std::string> out;
    ReplyPtr r = on(key, {"HGETALL", key});
    for (size_t i = 0; r && i + 1 < r->elements; i += 2) {
      out[std::string(r->element[i]->str, r->element[i]->len)] =
          std::string(r->element[i + 1]->str, r->element[i + 1]->len);
    }
    return out;
  }
  long long pending() {
    ReplyPtr r = on(kStream, {"XPENDING", kStream, "workers"});
    return r && r->type == REDIS_REPLY_ARRAY && r->elements > 0 && r->element[0]->type == REDIS_REPLY_INTEGER
               ? r->element[0]->integer
               : -1;
  }
  std::vector<std::string> list(const std::string& key) {
    std::vector<std::string> out;
    ReplyPtr r = on(key, {"LRANGE", key, "0", "-1"});
    for (size_t i = 0; r && i < r->elements; ++i) {
      out.emplace_back(r->element[i]->str, r->element[i]->len);
    }
    return out;
  }

  // A connection subscribed to the notifications channel on a master that
  // holds none of the plugin's keys: a cluster forwards a classic PUBLISH to
  // every node.
  static RedisConn subscribe(RedisServer& node) { return subscribeTo(node, kNotifications); }

  RedisCluster cluster_;
};

TEST_F(ClusterProductTest, WithAHashTagTheReadModelCachesAndMarksShareOneSlotAndWork) {
  const std::string product = "test:{jollyjet}:jollyjet:product:p-1";
  const std::string electronics = "test:{jollyjet}:jollyjet:category:electronics";
  const std::string books = "test:{jollyjet}:jollyjet:category:books";
  const std::string product_cache = "test:{jollyjet}:cache:product:p-1";
  const std::string electronics_cache = "test:{jollyjet}:cache:category:electronics";
  const std::string books_cache = "test:{jollyjet}:cache:category:books";
  const std::string mark = "test:{jollyjet}:evh:done:product:";
  const uint16_t slot = cluster_.keySlot(product);
  RedisServer& owner = cluster_.masterForSlot(slot);
  RedisServer* elsewhere = nullptr;
  for (RedisServer* m : cluster_.masters()) {
    if (m != &owner && &cluster_.masterForKey(kStream) != m) {
      elsewhere = m;
    }
  }
  ASSERT_NE(elsewhere, nullptr);
  const std::string dlq = cluster_.keyOn(*elsewhere, "dlq");
  EvhostProcess host(productConfig(cluster_, "{hash_tag: jollyjet}", dlq));
  ASSERT_TRUE(host.waitForLog("read model test:{jollyjet}:jollyjet:product:{productId}")) << host.log();
  ASSERT_TRUE(host.waitForLog("stream " + std::string(kStream) + ": created consumer group workers")) << host.log();
  RedisConn listener = subscribe(*elsewhere);

  set(product_cache);
  set(electronics_cache);
  add(envelope("e-1", "PRODUCT_CREATED",
               {{"productId", "p-1"}, {"name", "Laptop"}, {"price", 999}, {"category", "electronics"}}));
  json n = nextMessage(listener.get());
  EXPECT_EQ(n["eventType"], "PRODUCT_NOTIFICATION");
  EXPECT_EQ(n["payload"]["action"], "created");
  EXPECT_EQ(n["payload"]["category"], "electronics");
  EXPECT_EQ(hash(product)["name"], "Laptop");
  EXPECT_EQ(members(electronics), std::set<std::string>{"p-1"});
  EXPECT_FALSE(exists(product_cache));
  EXPECT_FALSE(exists(electronics_cache));

  // A category move: out of one set, into the other, both categories'
  // caches invalidated -- one atomic step on the slot's master.
  set(product_cache);
  set(electronics_cache);
  set(books_cache);
  add(envelope("e-2", "PRODUCT_UPDATED", {{"productId", "p-1"}, {"changes", {{"category", "books"}}}}));
  n = nextMessage(listener.get());
  EXPECT_EQ(n["payload"]["action"], "updated");
  EXPECT_EQ(n["payload"]["category"], "books");
  EXPECT_EQ(n["payload"]["previousCategory"], "electronics");
  EXPECT_EQ(hash(product)["category"], "books");
  EXPECT_TRUE(members(electronics).empty());
  EXPECT_EQ(members(books), std::set<std::string>{"p-1"});
  EXPECT_FALSE(exists(product_cache));
  EXPECT_FALSE(exists(electronics_cache));
  EXPECT_FALSE(exists(books_cache));
  EXPECT_TRUE(exists(mark + "e-2")) << "the mark is in the read model's slot";

  // e-2 again (a publisher's retry): its mark says it was applied, so
  // nothing happens and nothing is announced -- the next notification is
  // the deletion's.
  add(envelope("e-2", "PRODUCT_UPDATED", {{"productId", "p-1"}, {"changes", {{"category", "books"}}}}));
  add(envelope("e-3", "PRODUCT_DELETED", {{"productId", "p-1"}}));
  n = nextMessage(listener.get());
  EXPECT_EQ(n["payload"]["action"], "deleted");
  EXPECT_EQ(n["payload"]["category"], "books");
  EXPECT_FALSE(exists(product));
  EXPECT_TRUE(members(books).empty());
  EXPECT_TRUE(eventually([&] { return pending() == 0; })) << host.log();
  EXPECT_TRUE(list(dlq).empty()) << host.log();
  EXPECT_TRUE(host.waitForLog("product created")) << host.log();
  EXPECT_EQ(host.countInLog("product created"), 1U) << host.log();
  EXPECT_TRUE(host.waitForLog("product updated")) << host.log();
  EXPECT_EQ(host.countInLog("product updated"), 1U) << host.log();

  // Every key the plugin touched is in the tag's slot, on its master.
  for (const std::string& key : {product, electronics, books, product_cache, books_cache, mark + "e-1"}) {
    EXPECT_EQ(cluster_.keySlot(key), slot) << key;
  }
  EXPECT_EQ(cluster_.keySlot("{jollyjet}"), slot);
}

TEST_F(ClusterProductTest, WithoutAHashTagTheEventIsDeadLetteredNamingTheSettingNothingWritten) {
  const std::string product = "test:jollyjet:product:p-1";
  const std::string mark = "test:evh:done:product:e-1";
  ASSERT_NE(cluster_.keySlot(product), cluster_.keySlot(mark)) << "the test needs the two keys in different slots";
  const std::string dlq = cluster_.keyOn(*cluster_.masters()[0], "dlq");
  const std::string product_cache = "test:cache:product:p-1";
  EvhostProcess host(productConfig(cluster_, "{}", dlq));
  ASSERT_TRUE(host.waitForLog("stream " + std::string(kStream) + ": created consumer group workers")) << host.log();
  set(product_cache);
  add(envelope("e-1", "PRODUCT_CREATED",
               {{"productId", "p-1"}, {"name", "Laptop"}, {"price", 999}, {"category", "electronics"}}));
  ASSERT_TRUE(eventually([&] { return list(dlq).size() == 1; })) << host.log();
  const std::string record = list(dlq).front();
  EXPECT_THAT(record, HasSubstr("CROSSSLOT")) << record;
  EXPECT_THAT(record, HasSubstr("give the plugin a hash_tag")) << record;
  EXPECT_THAT(record, HasSubstr(R"("reason":"rejected")")) << record;
  EXPECT_TRUE(host.waitForLog("hash_tag")) << host.log();
  // Refused before it ran: nothing written, nothing invalidated.
  EXPECT_FALSE(exists(product));
  EXPECT_FALSE(exists(mark));
  EXPECT_FALSE(exists("test:jollyjet:category:electronics"));
  EXPECT_TRUE(exists(product_cache));
  EXPECT_TRUE(eventually([&] { return pending() == 0; })) << host.log();
}

}  // namespace
}  // namespace evh::test
