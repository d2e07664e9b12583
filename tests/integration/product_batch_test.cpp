// The product plugin's batches: the events the host hands over together share
// one script call (up to max_batch), run in their order, and each keeps an
// outcome of its own -- against a real redis-server and the real evhost.
#include "product_fixture.h"

namespace evh::test {
namespace {

// Publishes `messages` in one MULTI/EXEC: Redis delivers them to evhost's
// subscriber together, so evhost reads them in one go (or a few).
void publishTogether(RedisServer& redis, const std::vector<std::string>& messages) {
  redis.command({"MULTI"});
  for (const auto& m : messages) {
    redis.command({"PUBLISH", kProductChannel, m});
  }
  redis.command({"EXEC"});
}

// 100 category moves of one product, delivered at once: a few script calls
// (max_batch 64 makes it at least two), applied in order -- each
// notification names the category before it as previousCategory, and the
// product ends in the last category only. With max_batch 1, one call each.
TEST_F(ProductTest, EventsDeliveredTogetherShareScriptCallsInTheirOrder) {
  constexpr int kMoves = 100;
  for (const auto& [setting, min_calls, max_calls] :
       std::vector<std::tuple<std::string, long long, long long>>{{"", 2, 20}, {"{max_batch: 1}", kMoves, kMoves}}) {
    SCOPED_TRACE(setting.empty() ? "default max_batch" : setting);
    redis_.command({"FLUSHALL"});
    EvhostProcess host(config(setting));
    waitSubscribed(host);
    RedisConn sub = subscribe();
    publish(created("evt-0", "p-1", "Mug", 12.5, "c0"));
    ASSERT_EQ(nextMessage(sub.get())["payload"]["action"], "created");
    redis_.command({"CONFIG", "RESETSTAT"});
    std::vector<std::string> moves;
    for (int i = 1; i <= kMoves; ++i) {
      moves.push_back(updated("evt-" + std::to_string(i), "p-1", {{"category", "c" + std::to_string(i)}}));
    }
    publishTogether(redis_, moves);
    for (int i = 1; i <= kMoves; ++i) {
      json n = nextMessage(sub.get());
      ASSERT_EQ(n["payload"]["sourceEventId"], "evt-" + std::to_string(i)) << n.dump();
      EXPECT_EQ(n["payload"]["category"], "c" + std::to_string(i));
      EXPECT_EQ(n["payload"]["previousCategory"], "c" + std::to_string(i - 1));
    }
    const long long calls = commandCalls("evalsha");
    EXPECT_GE(calls, min_calls);
    EXPECT_LE(calls, max_calls);
    EXPECT_EQ(hash("test:jollyjet:product:p-1")["category"], "c" + std::to_string(kMoves));
    for (int i = 0; i < kMoves; ++i) {
      EXPECT_FALSE(exists("test:jollyjet:category:c" + std::to_string(i))) << i;
    }
    EXPECT_THAT(members("test:jollyjet:category:c" + std::to_string(kMoves)), UnorderedElementsAre("p-1"));
    EXPECT_EQ(llen("dlq"), 0);
  }
}

// One event of a batch fails (its product key holds a string): it alone is
// retried and dead-lettered with its own error, and its idempotency mark,
// taken at the script's start, is removed again -- so nothing of it stays.
// The events around it in the same calls are applied, marked and announced
// once.
TEST_F(ProductTest, AFailingEventOfABatchFailsAloneAndKeepsNoMark) {
  // A retry a second later: the first call is counted alone before it comes,
  // however slow the machine.
  std::string yaml = config("", "retry: {max_attempts: 2, base_delay_ms: 1000, jitter: none}\n");
  const std::string route = "        plugins: [product]\n";
  yaml.replace(yaml.find(route), route.size(), route + "        idempotency: {ttl_ms: 60000}\n");
  redis_.command({"SET", "test:jollyjet:product:p-bad", "not a hash"});
  EvhostProcess host(yaml);
  waitSubscribed(host);
  RedisConn sub = subscribe();
  redis_.command({"CONFIG", "RESETSTAT"});
  publishTogether(redis_,
                  {created("evt-1", "p-1", "Mug", 12.5, "kitchen"), created("evt-bad", "p-bad", "Pan", 20, "kitchen"),
                   created("evt-2", "p-2", "Cup", 3, "kitchen")});
  EXPECT_EQ(nextMessage(sub.get())["payload"]["sourceEventId"], "evt-1");
  EXPECT_EQ(nextMessage(sub.get())["payload"]["sourceEventId"], "evt-2");
  // The first delivery's three events went in one call.
  EXPECT_EQ(commandCalls("evalsha"), 1);

  // evt-bad: two attempts, then dead-lettered.
  ASSERT_TRUE(eventually([&] { return llen("dlq") == 1; })) << host.log();
  std::map<std::string, json> dead = deadLetters();
  ASSERT_EQ(dead.count("evt-bad"), 1U);
  EXPECT_EQ(dead["evt-bad"]["reason"], "exhausted");
  EXPECT_EQ(dead["evt-bad"]["attempts"], 2);
  EXPECT_THAT(dead["evt-bad"]["error"]["message"].get<std::string>(),
              HasSubstr("product: applying PRODUCT_CREATED for productId=p-bad failed: WRONGTYPE "
                        "test:jollyjet:product:p-bad holds a string value, not a hash"));
  EXPECT_EQ(commandCalls("evalsha"), 2);  // the batch, then evt-bad's retry alone

  EXPECT_FALSE(exists("test:evh:done:product:evt-bad"));
  EXPECT_TRUE(exists("test:evh:done:product:evt-1"));
  EXPECT_TRUE(exists("test:evh:done:product:evt-2"));
  EXPECT_EQ(redis_.command({"GET", "test:jollyjet:product:p-bad"})->str, std::string("not a hash"));
  EXPECT_THAT(members("test:jollyjet:category:kitchen"), UnorderedElementsAre("p-1", "p-2"));
  EXPECT_EQ(hash("test:jollyjet:product:p-2")["name"], "Cup");
}

}  // namespace
}  // namespace evh::test
