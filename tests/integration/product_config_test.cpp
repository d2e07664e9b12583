// The product plugin's config: key templates, the hash tag, the notification channel (or none), bad settings refused
// naming the key, and the default deployment without a config block.
#include "product_fixture.h"
#include "support/tested_binaries.h"

namespace evh::test {
namespace {

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
  const std::string yaml =
      idempotent(config(R"({hash_tag: jj, cache_keys: ["{prefix}cache:{productId}", "shared:{category}"]})"));
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
       ":6: plugin product config /cache_key: unknown key (known: cache_keys, read_model, notifications, hash_tag, "
       "max_batch)"},
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
      {"{max_batch: 0}", ":6: plugin product config /max_batch: must be a whole number from 1 to 1000, got 0"},
      {"{max_batch: 1001}", ":6: plugin product config /max_batch: must be a whole number from 1 to 1000, got 1001"},
      {"{max_batch: 2.5}", ":6: plugin product config /max_batch: must be a whole number from 1 to 1000, got 2.5"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.config);
    std::string path = dir_ + "/bad.yaml";
    {
      std::ofstream out(path);
      out << "environment: test\nredis: {port: " << redis_.port() << "}\nplugins:\n  product:\n    path: product\n"
          << "    config: " << c.config << "\n";
    }
    auto [code, out] = runCommand({evhostBin(), "--config", path, "--ops-listen", ""});
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
