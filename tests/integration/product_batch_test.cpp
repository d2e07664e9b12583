// The product plugin's batches: the events the host hands over together share
// one script call (up to max_batch), run in their order, and each keeps an
// outcome of its own -- against a real redis-server and the real evhost.
#include "product_fixture.h"

#include <algorithm>

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
  const std::string yaml = idempotent(config("", "retry: {max_attempts: 2, base_delay_ms: 1000, jitter: none}\n"));
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

// Everything under test in Redis after a run -- each key's type and value
// (an idempotency mark's presence only) -- as text to compare.
std::map<std::string, std::string> snapshot(RedisServer& redis) {
  std::map<std::string, std::string> out;
  ReplyPtr keys = redis.command({"KEYS", "test:*"});
  for (size_t i = 0; i < keys->elements; ++i) {
    const std::string key(keys->element[i]->str, keys->element[i]->len);
    if (key.rfind("test:evh:pubsub-consumers:", 0) == 0) {  // evhost's own, named by host and time
      continue;
    }
    const std::string type = redis.command({"TYPE", key})->str;
    std::vector<std::string> items;
    ReplyPtr r;
    if (type == "hash") {
      r = redis.command({"HGETALL", key});
    } else if (type == "set") {
      r = redis.command({"SMEMBERS", key});
    } else if (type == "string" && key.find(":done:") == std::string::npos) {
      r = redis.command({"GET", key});
    }
    if (r && r->type == REDIS_REPLY_ARRAY) {
      for (size_t j = 0; j < r->elements; ++j) {
        items.emplace_back(r->element[j]->str, r->element[j]->len);
      }
    } else if (r && r->type == REDIS_REPLY_STRING) {
      items.emplace_back(r->str, r->len);
    }
    if (type == "hash") {  // the pairs in field order; updatedAt is the clock's
      std::map<std::string, std::string> fields;
      for (size_t j = 0; j + 1 < items.size(); j += 2) {
        fields[items[j]] = items[j] == "updatedAt" || items[j] == "createdAt" ? "(time)" : items[j + 1];
      }
      items.clear();
      for (const auto& [f, v] : fields) {
        items.push_back(f + "=" + v);
      }
    }
    std::sort(items.begin(), items.end());
    std::string text = type;
    for (const auto& item : items) {
      text += " " + item;
    }
    out[key] = text;
  }
  return out;
}

// One run of `events`, delivered together, against a fresh Redis whose
// product:p-bad and category:broken hold strings and whose caches are all
// set: what Redis holds after it, the notifications' payloads in order, and
// each dead letter's error.
struct Outcome {
  std::map<std::string, std::string> redis;
  std::vector<std::string> notifications;
  std::map<std::string, std::string> dead;
  long long evalsha = 0;
};

// A batch leaves Redis, the notifications and the dead letters exactly as its
// events one script call each would -- through category moves there and
// back, a delete and re-create, a repeat, an unknown product, failing keys,
// and cache key templates that name the read model's own keys (one event's
// invalidation then deletes what another wrote). Whatever a later change
// shares between the events of a batch must keep this.
TEST_F(ProductTest, ABatchLeavesEverythingAsItsEventsOneAtATimeWould) {
  const std::vector<std::string> events = {
      created("e1", "p-1", "Mug", 12.5, "kitchen"),
      created("e2", "p-2", "Cup", 3, "kitchen"),
      created("e3", "p-3", "Rake", 20, "garden"),
      updated("e4", "p-1", {{"category", "garden"}}),
      created("e-bad", "p-bad", "Pan", 20, "kitchen"),
      updated("e5", "p-1", {{"category", "kitchen"}}),
      updated("e6", "p-2", {{"name", "Big cup"}}),
      created("e-broken", "p-4", "Vase", 9, "broken"),
      deleted("e7", "p-3"),
      created("e8", "p-3", "Rake", 22, "toys"),
      created("e1", "p-1", "Mug", 12.5, "kitchen"),  // a repeat of e1: already applied
      updated("e9", "p-9", {{"category", "toys"}}),  // not in the read model
      updated("e10", "p-2", {{"category", "garden"}}),
      created("e11", "p-5", "Bowl", 7, "garden"),
  };
  const std::vector<std::pair<std::string, std::string>> cache_settings = {
      {"the default cache keys", ""},
      {"cache keys naming the read model's keys",
       "\"cache_keys\": [\"{prefix}jollyjet:category:{category}\", \"{prefix}jollyjet:product:{productId}\"]"},
  };
  auto run = [&](const std::string& settings, bool one_at_a_time) {
    redis_.command({"FLUSHALL"});
    redis_.command({"SET", "test:jollyjet:product:p-bad", "not a hash"});
    redis_.command({"SET", "test:jollyjet:category:broken", "not a set"});
    setCache({"test:cache:product:p-1", "test:cache:product:p-2", "test:cache:product:p-3",
              "test:cache:category:kitchen", "test:cache:category:garden", "test:cache:category:toys"});
    std::string product = settings;
    if (one_at_a_time) {
      product += std::string(product.empty() ? "" : ", ") + "\"max_batch\": 1";
    }
    const std::string yaml =
        idempotent(config(product.empty() ? "" : "{" + product + "}", "retry: {max_attempts: 1}\n"));
    EvhostProcess host(yaml);
    waitSubscribed(host);
    RedisConn sub = subscribe();
    redis_.command({"CONFIG", "RESETSTAT"});
    publishTogether(redis_, events);
    Outcome o;
    for (;;) {  // e11's, the last event's, notification is the last one
      json n = nextMessage(sub.get());
      EXPECT_FALSE(n.is_null()) << "no notification after " << o.notifications.size() << "\n" << host.log();
      if (n.is_null()) {
        break;
      }
      o.notifications.push_back(n["payload"].dump());
      if (n["payload"]["sourceEventId"] == "e11") {
        break;
      }
    }
    EXPECT_TRUE(eventually([&] { return llen("dlq") == 2; })) << host.log();
    for (const auto& [id, entry] : deadLetters()) {
      o.dead[id] = entry["error"]["message"].get<std::string>();
    }
    redis_.command({"DEL", "dlq"});
    o.redis = snapshot(redis_);
    o.evalsha = commandCalls("evalsha");
    return o;
  };
  for (const auto& [what, settings] : cache_settings) {
    SCOPED_TRACE(what);
    const Outcome together = run(settings, false);
    const Outcome alone = run(settings, true);
    EXPECT_EQ(together.redis, alone.redis);
    EXPECT_EQ(together.notifications, alone.notifications);
    EXPECT_EQ(together.dead, alone.dead);
    EXPECT_EQ(alone.evalsha, static_cast<long long>(events.size()));
    EXPECT_LT(together.evalsha, alone.evalsha);
    // The facts themselves, once: the failing keys named, nothing of theirs
    // written, the moves there and back.
    EXPECT_EQ(together.notifications.size(), 11U);
    EXPECT_THAT(together.dead.at("e-bad"), HasSubstr("WRONGTYPE test:jollyjet:product:p-bad holds a string value"));
    EXPECT_THAT(together.dead.at("e-broken"),
                HasSubstr("WRONGTYPE test:jollyjet:category:broken holds a string value"));
    EXPECT_EQ(together.redis.count("test:jollyjet:product:p-4"), 0U);
    EXPECT_EQ(together.redis.count("test:evh:done:product:e-broken"), 0U);
    if (settings.empty()) {
      EXPECT_EQ(together.redis.at("test:jollyjet:category:kitchen"), "set p-1");
      EXPECT_EQ(together.redis.at("test:jollyjet:category:garden"), "set p-2 p-5");
      EXPECT_EQ(together.redis.at("test:jollyjet:category:toys"), "set p-3 p-9");
      EXPECT_EQ(together.redis.count("test:cache:category:kitchen"), 0U);
      EXPECT_EQ(together.redis.count("test:cache:product:p-3"), 0U);
    } else {
      EXPECT_EQ(together.redis.count("test:jollyjet:category:kitchen"), 0U);
      EXPECT_EQ(together.redis.count("test:jollyjet:product:p-1"), 0U);
    }
  }
}

}  // namespace
}  // namespace evh::test
