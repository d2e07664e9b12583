// transport: stream against a real redis-server: consumer groups, acks only
// after completion, redelivery of unfinished entries, backpressure.
#include "support/evhost_process.h"
#include "support/redis_server.h"
#include "support/temp_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>

namespace evh::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string streamEvent(const std::string& id) {
  return R"({"eventId":")" + id +
         R"(","eventType":"PRODUCT_CREATED","timestamp":"2024-01-15T10:30:00.000Z","payload":{"productId":"p-1"}})";
}

class StreamTest : public ::testing::Test {
 protected:
  std::string config(const std::string& plugin, const std::string& extra = "",
                     const std::string& stream = "{group: workers, consumer: c1, block_ms: 200}") const {
    std::ostringstream y;
    y << "environment: test\n"
      << "redis: {host: 127.0.0.1, port: " << redis_.port() << "}\n"
      << "retry: {max_attempts: 1}\n"
      << extra << "plugins:\n  rec: " << plugin << "\n"
      << "channels:\n  jollyjet:events:orders:\n    transport: stream\n    stream: " << stream << "\n"
      << R"(    routes:
      - events: "*"
        plugins: [rec]
)";
    return y.str();
  }
  void xadd(const std::string& message) {
    auto r = redis_.command({"XADD", "test:jollyjet:events:orders", "*", "event", message});
    ASSERT_EQ(r->type, REDIS_REPLY_STRING);
  }
  long long llen(const std::string& key) { return redis_.command({"LLEN", key})->integer; }
  long long pending() {
    auto r = redis_.command({"XPENDING", "test:jollyjet:events:orders", "workers"});
    return r->type == REDIS_REPLY_ARRAY && r->elements > 0 ? r->element[0]->integer : -1;
  }
  std::vector<std::string> ids(const std::string& key) {
    std::vector<std::string> out;
    auto r = redis_.command({"LRANGE", key, "0", "-1"});
    for (size_t i = 0; i < r->elements; ++i) {
      std::string rec(r->element[i]->str, r->element[i]->len);
      size_t a = rec.find('|', rec.find('|') + 1) + 1;
      out.push_back(rec.substr(a, rec.find('|', a) - a));
    }
    return out;
  }

  RedisServer redis_;
};

TEST_F(StreamTest, EntriesAddedBeforeStartAndAfterAreHandledAndAcked) {
  for (int i = 0; i < 50; ++i) {
    xadd(streamEvent("early-" + std::to_string(i)));  // before evhost: the stream does not even exist yet
  }
  EvhostProcess host(config("{path: recorder}"));
  ASSERT_TRUE(host.waitForLog("created consumer group workers")) << host.log();
  for (int i = 0; i < 50; ++i) {
    xadd(streamEvent("late-" + std::to_string(i)));
  }
  ASSERT_TRUE(eventually([&] { return llen("seen") == 100; })) << host.log();
  ASSERT_TRUE(eventually([&] { return pending() == 0; })) << "entries left unacknowledged\n" << host.log();
  auto got = ids("seen");
  EXPECT_EQ(std::set<std::string>(got.begin(), got.end()).size(), 100U);
  EXPECT_EQ(got.front(), "early-0");
  EXPECT_EQ(got.back(), "late-49");
  // A graceful stop with nothing pending removes the consumer from its group.
  host.signal(SIGTERM);
  ASSERT_EQ(host.waitExit(), std::optional<int>(0)) << host.log();
  auto consumers = redis_.command({"XINFO", "CONSUMERS", "test:jollyjet:events:orders", "workers"});
  EXPECT_EQ(consumers->elements, 0U) << host.log();
  EXPECT_THAT(host.log(), HasSubstr("consumer c1 removed from its group (nothing pending)"));
}

TEST_F(StreamTest, AnEntryIsAckedOnlyAfterItsHandlerFinished) {
  // A killed evhost leaves its unfinished entries pending; started again
  // under the same consumer name it handles them first.
  auto cfg = config("{path: slow_recorder, config: {key: slow, sleep_ms: 300, mark_redelivered: true}}");
  {
    EvhostProcess first(cfg, {}, {"DEBUG_EVENTS=true"});
    ASSERT_TRUE(first.waitForLog("created consumer group workers")) << first.log();
    for (int i = 0; i < 6; ++i) {
      xadd(streamEvent("e" + std::to_string(i)));
    }
    ASSERT_TRUE(eventually([&] { return llen("slow") >= 1; })) << first.log();
    first.signal(SIGKILL);
    ASSERT_TRUE(first.waitExit().has_value());
  }
  const long long handled_before = llen("slow");
  ASSERT_LT(handled_before, 6);
  // Every entry not yet handled is still pending (none acked early).
  EXPECT_GE(pending(), 6 - handled_before);

  // The killed consumer is still in the group, holding its entries.
  EXPECT_EQ(redis_.command({"XINFO", "CONSUMERS", "test:jollyjet:events:orders", "workers"})->elements, 1U);
  EvhostProcess second(cfg);
  ASSERT_TRUE(eventually([&] { return pending() == 0; })) << second.log();
  auto got = ids("slow");
  std::set<std::string> unique(got.begin(), got.end());
  EXPECT_EQ(unique.size(), 6U) << "every entry handled at least once";
  EXPECT_LE(got.size(), 7U) << "at most the one in the handler at the kill twice";
  // What the second run took back from its pending list reaches the plugin
  // flagged EVH_EVENT_REDELIVERED; what the first run handled does not.
  auto records = redis_.command({"LRANGE", "slow", "0", "-1"});
  size_t redelivered = 0;
  for (size_t i = 0; i < records->elements; ++i) {
    std::string rec(records->element[i]->str, records->element[i]->len);
    if (static_cast<long long>(i) < handled_before) {
      EXPECT_EQ(rec.rfind("recorder|", 0), 0U) << rec;
    } else if (rec.rfind("redelivered|", 0) == 0) {
      ++redelivered;
    }
  }
  EXPECT_GE(redelivered, static_cast<size_t>(6 - handled_before));
}

TEST_F(StreamTest, ReadingPausesAtMaxInFlight) {
  EvhostProcess host(
      config("{path: slow_recorder, config: {key: slow, sleep_ms: 50}}", "limits: {max_in_flight: 2}\n"));
  ASSERT_TRUE(host.waitForLog("stream test:jollyjet:events:orders: group workers")) << host.log();
  for (int i = 0; i < 20; ++i) {
    xadd(streamEvent("e" + std::to_string(i)));
  }
  // Never more than max_in_flight entries taken and unacknowledged.
  long long most = 0;
  ASSERT_TRUE(eventually([&] {
    most = std::max(most, pending());
    return llen("slow") == 20;
  })) << host.log();
  EXPECT_LE(most, 2);
  EXPECT_TRUE(eventually([&] { return pending() == 0; }));
  EXPECT_EQ(host.countInLog("overloaded"), 0U);
}

TEST_F(StreamTest, EntriesWithoutAnEventFieldAreDeadLetteredAndAcked) {
  EvhostProcess host(config("{path: recorder}", "dead_letter: {fallback_file: dead.jsonl}\n"));
  ASSERT_TRUE(host.waitForLog("created consumer group")) << host.log();
  redis_.command({"XADD", "test:jollyjet:events:orders", "*", "payload", "{}"});
  xadd("not json");
  xadd(streamEvent("good"));
  ASSERT_TRUE(eventually([&] { return llen("seen") == 1; })) << host.log();
  ASSERT_TRUE(eventually([&] { return pending() == 0; })) << host.log();
  EXPECT_TRUE(host.waitForLog("has no \"event\" field")) << host.log();
  EXPECT_TRUE(host.waitForLog("reason=not_json")) << host.log();
}

TEST_F(StreamTest, EntriesOfADeadConsumerAreClaimedByAnother) {
  const std::string slow = "{path: slow_recorder, config: {key: slow, sleep_ms: 200}}";
  for (int i = 0; i < 5; ++i) {
    xadd(streamEvent("e" + std::to_string(i)));  // before the group exists: it starts at the beginning
  }
  {
    EvhostProcess dead(config(slow, "", "{group: workers, consumer: dead, block_ms: 200, claim_interval_ms: 0}"), {},
                       {"DEBUG_EVENTS=true"});
    // All five handed to "dead" (one in its handler, four waiting), then it dies.
    ASSERT_TRUE(eventually([&] { return pending() == 5; })) << dead.log();
    dead.signal(SIGKILL);
    ASSERT_TRUE(dead.waitExit().has_value());
  }
  ASSERT_GE(pending(), 4) << "the dead consumer took the entries and acked (almost) none";
  EvhostProcess alive(
      config(slow, "", "{group: workers, consumer: alive, block_ms: 200, claim_idle_ms: 300, claim_interval_ms: 200}"));
  ASSERT_TRUE(alive.waitForLog("claimed")) << alive.log();
  ASSERT_TRUE(eventually([&] { return pending() == 0; })) << alive.log();
  auto got = ids("slow");
  EXPECT_EQ(std::set<std::string>(got.begin(), got.end()).size(), 5U);
}

TEST_F(StreamTest, APoisonEntryIsDeadLetteredAfterMaxDeliveries) {
  // A handler that never finishes in time: each run is killed while on it.
  const std::string fallback = freshTempFile("evh-poison", ".jsonl");
  const std::string cfg = config("{path: slow_recorder, config: {key: slow, sleep_ms: 60000}}",
                                 "dead_letter: {fallback_file: " + fallback + "}\n",
                                 "{group: workers, consumer: c1, block_ms: 200, max_deliveries: 2}");
  xadd(streamEvent("poison"));
  for (int run = 1; run <= 2; ++run) {
    EvhostProcess host(cfg, {}, {"DEBUG_EVENTS=true"});
    ASSERT_TRUE(host.waitForLog("event stage=dispatched eventId=poison")) << "run " << run << "\n" << host.log();
    host.signal(SIGKILL);
    ASSERT_TRUE(host.waitExit().has_value());
  }
  EvhostProcess third(cfg, {}, {"DEBUG_EVENTS=true"});
  ASSERT_TRUE(third.waitForLog(
      "dead-lettered (reason=poison): delivered 2 times without being acknowledged (stream.max_deliveries=2)"))
      << third.log();
  ASSERT_TRUE(eventually([&] { return pending() == 0; })) << third.log();
  EXPECT_EQ(third.countInLog("event stage=dispatched eventId=poison"), 0U) << "not delivered again";
  std::ifstream in(fallback);
  std::string line;
  ASSERT_TRUE(static_cast<bool>(std::getline(in, line))) << third.log();
  EXPECT_THAT(line, HasSubstr("\"reason\":\"poison\""));
  // Decoded: eventId and eventType are fields of the entry (evhctl dlq show
  // finds it), and the event is kept whole.
  EXPECT_THAT(line, HasSubstr("\"eventId\":\"poison\",\"eventType\":\"PRODUCT_CREATED\""));
  EXPECT_THAT(line, HasSubstr("\"originalEvent\":{\"eventId\":\"poison\""));
  std::remove(fallback.c_str());
}

TEST_F(StreamTest, EvhostTrimsTheStreamToTheConfiguredLengthButNeverUnhandledEntries) {
  // A plugin slower than the publisher: a backlog builds up while the
  // trimming runs, and not one entry of it may be trimmed away unread.
  EvhostProcess host(config("{path: slow_recorder, config: {key: seen, sleep_ms: 1}}", "",
                            "{group: workers, consumer: c1, block_ms: 200, trim_maxlen: 100, trim_interval_ms: 100}"));
  ASSERT_TRUE(host.waitForLog("created consumer group")) << host.log();
  for (int i = 0; i < 2000; ++i) {
    xadd(streamEvent("e" + std::to_string(i)));
  }
  ASSERT_TRUE(eventually([&] { return llen("seen") == 2000; }, std::chrono::seconds(60))) << host.log();
  auto got = ids("seen");
  EXPECT_EQ(std::set<std::string>(got.begin(), got.end()).size(), 2000U);
  // Trimming is approximate (whole nodes): about 100 left, never everything.
  ASSERT_TRUE(eventually([&] {
    long long len = redis_.command({"XLEN", "test:jollyjet:events:orders"})->integer;
    return len < 500 && len >= 100;
  })) << host.log();
}

TEST_F(StreamTest, IdempotentRoutesHandleAnEventIdOncePerPlugin) {
  std::ostringstream y;
  y << "environment: test\n"
    << "redis: {host: 127.0.0.1, port: " << redis_.port() << "}\n"
    << "retry: {max_attempts: 3, base_delay_ms: 10}\n"
    << R"(plugins:
  once: {path: recorder, config: {key: once, fail_until_attempt: 1}}
  every: {path: recorder, config: {key: every}}
channels:
  jollyjet:events:orders:
    transport: stream
    stream: {group: workers, consumer: c1, block_ms: 200}
    routes:
      - events: "*"
        plugins: [once]
        idempotency: {ttl_ms: 60000}
      - events: "*"
        plugins: [every]
)";
  EvhostProcess host(y.str());
  ASSERT_TRUE(host.waitForLog("created consumer group")) << host.log();
  xadd(streamEvent("dup"));
  // The first delivery fails once, then succeeds on its retry: marked only then.
  ASSERT_TRUE(eventually([&] { return llen("once") == 1 && llen("every") == 1; })) << host.log();
  ASSERT_TRUE(eventually([&] { return pending() == 0; }));
  xadd(streamEvent("dup"));  // the same eventId again, as a redelivery would bring it
  xadd(streamEvent("other"));
  ASSERT_TRUE(eventually([&] { return llen("every") == 3; })) << host.log();
  ASSERT_TRUE(eventually([&] { return llen("once") == 2; })) << host.log();
  ASSERT_TRUE(eventually([&] { return pending() == 0; }));
  EXPECT_EQ(ids("once"), (std::vector<std::string>{"dup", "other"}));
  EXPECT_EQ(redis_.command({"EXISTS", "test:evh:done:once:dup"})->integer, 1);
  EXPECT_EQ(redis_.command({"EXISTS", "test:evh:done:every:dup"})->integer, 0);
}

// The idempotency questions of one stream read share one MGET, and each
// entry gets its own answer: the ones marked before are skipped, the rest
// handled -- no EXISTS per entry.
TEST_F(StreamTest, TheIdempotencyQuestionsOfOneReadShareOneMget) {
  constexpr int kEntries = 40;
  for (int i = 0; i < kEntries; ++i) {
    xadd(streamEvent("e" + std::to_string(i)));
  }
  for (int i : {3, 17, 38}) {
    redis_.command({"SET", "test:evh:done:rec:e" + std::to_string(i), "1"});  // handled before, as far as marks say
  }
  std::string yaml = config("{path: recorder}", "", "{group: workers, consumer: c1, block_ms: 200, count: 100}");
  const std::string route = "        plugins: [rec]\n";
  yaml.replace(yaml.find(route), route.size(), route + "        idempotency: {ttl_ms: 60000}\n");
  redis_.command({"CONFIG", "RESETSTAT"});
  EvhostProcess host(yaml);
  ASSERT_TRUE(eventually([&] { return llen("seen") == kEntries - 3; })) << host.log();
  ASSERT_TRUE(eventually([&] { return pending() == 0; })) << host.log();
  auto got = ids("seen");
  EXPECT_EQ(std::set<std::string>(got.begin(), got.end()).size(), static_cast<size_t>(kEntries - 3));
  for (const char* skipped : {"e3", "e17", "e38"}) {
    EXPECT_EQ(std::count(got.begin(), got.end(), skipped), 0) << skipped;
  }
  auto calls = [&](const std::string& command) {
    auto r = redis_.command({"INFO", "commandstats"});
    const std::string info(r->str, r->len);
    const std::string key = "cmdstat_" + command + ":calls=";
    const size_t at = info.find(key);
    return at == std::string::npos ? 0LL : std::stoll(info.substr(at + key.size()));
  };
  EXPECT_EQ(calls("exists"), 0);
  EXPECT_EQ(calls("mget"), 1);                                                // the one read of all 40
  EXPECT_EQ(redis_.command({"EXISTS", "test:evh:done:rec:e0"})->integer, 1);  // marked once handled
}

// A Redis that refuses MGET (here renamed away; an ACL without +mget does
// the same): evhost says so once and asks each question with EXISTS --
// the marked entries are still skipped.
TEST_F(StreamTest, WhenRedisRefusesMgetTheQuestionsGoOneByOneAndDuplicatesAreStillSkipped) {
  RedisServer strict({"--rename-command", "MGET", ""});
  auto add = [&](const std::string& id) {
    strict.command({"XADD", "test:jollyjet:events:orders", "*", "event", streamEvent(id)});
  };
  for (int i = 0; i < 10; ++i) {
    add("e" + std::to_string(i));
  }
  strict.command({"SET", "test:evh:done:rec:e4", "1"});
  std::string yaml = config("{path: recorder}", "", "{group: workers, consumer: c1, block_ms: 200, count: 100}");
  const std::string port = "port: " + std::to_string(redis_.port());
  yaml.replace(yaml.find(port), port.size(), "port: " + std::to_string(strict.port()));
  const std::string route = "        plugins: [rec]\n";
  yaml.replace(yaml.find(route), route.size(), route + "        idempotency: {ttl_ms: 60000}\n");
  EvhostProcess host(yaml);
  ASSERT_TRUE(eventually([&] { return strict.command({"LLEN", "seen"})->integer == 9; })) << host.log();
  EXPECT_TRUE(host.waitForLog("redis refused MGET for idempotency marks")) << host.log();
  EXPECT_EQ(host.countInLog("redis refused MGET for idempotency marks"), 1U) << host.log();
  add("e4");  // again, as a redelivery would bring it
  add("e10");
  ASSERT_TRUE(eventually([&] { return strict.command({"LLEN", "seen"})->integer == 10; })) << host.log();
  ASSERT_TRUE(eventually([&] {
    auto r = strict.command({"XPENDING", "test:jollyjet:events:orders", "workers"});
    return r->type == REDIS_REPLY_ARRAY && r->elements > 0 && r->element[0]->integer == 0;
  })) << host.log();
  auto r = strict.command({"LRANGE", "seen", "0", "-1"});
  std::string all;
  for (size_t i = 0; i < r->elements; ++i) {
    all += std::string(r->element[i]->str, r->element[i]->len) + "\n";
  }
  EXPECT_THAT(all, Not(HasSubstr("|e4|"))) << all;
  EXPECT_EQ(host.countInLog("redis refused MGET"), 1U);
}

TEST_F(StreamTest, AnOpenBreakerPausesTheStreamInsteadOfDeadLettering) {
  std::ostringstream y;
  y << "environment: test\n"
    << "redis: {host: 127.0.0.1, port: " << redis_.port() << "}\n"
    << "retry: {max_attempts: 1}\n"
    << "circuit_breaker: {threshold: 1, open_ms: 1000, max_wait_ms: 100, max_waiting: 1}\n"
    << "dead_letter: {fallback_file: dead.jsonl}\n"
    << R"(plugins:
  fragile: {path: recorder, config: {key: fragile, answer: {FAIL: retry}}}
channels:
  jollyjet:events:orders:
    transport: stream
    stream: {group: workers, consumer: c1, block_ms: 100}
    routes:
      - events: "*"
        plugins: [fragile]
)";
  EvhostProcess host(y.str());
  ASSERT_TRUE(host.waitForLog("created consumer group")) << host.log();
  redis_.command({"XADD", "test:jollyjet:events:orders", "*", "event",
                  R"({"eventId":"f","eventType":"FAIL","timestamp":1,"payload":{}})"});
  ASSERT_TRUE(host.waitForLog("CLOSED -> OPEN")) << host.log();
  for (int i = 0; i < 5; ++i) {
    xadd(streamEvent("ok" + std::to_string(i)));
  }
  // Pub/Sub events would be dead-lettered after max_wait_ms (100 ms) or
  // beyond max_waiting (1); stream entries wait, then are handled.
  ASSERT_TRUE(eventually([&] { return llen("fragile") == 5; })) << host.log();
  ASSERT_TRUE(eventually([&] { return pending() == 0; })) << host.log();
  EXPECT_EQ(host.countInLog("reason=circuit_open"), 0U) << host.log();
  EXPECT_TRUE(host.waitForLog("OPEN -> HALF_OPEN")) << host.log();
  EXPECT_EQ(host.countInLog("OPEN -> HALF_OPEN"), 1U) << host.log();
  EXPECT_TRUE(host.waitForLog("HALF_OPEN -> CLOSED")) << host.log();
  EXPECT_EQ(host.countInLog("HALF_OPEN -> CLOSED"), 1U) << host.log();
  EXPECT_EQ(ids("fragile"), (std::vector<std::string>{"ok0", "ok1", "ok2", "ok3", "ok4"}));
}

TEST_F(StreamTest, EvhostTrimsEntriesOlderThanTheConfiguredAgeOnceHandled) {
  EvhostProcess host(config("{path: recorder}", "",
                            "{group: workers, consumer: c1, block_ms: 200, trim_max_age_ms: 300, "
                            "trim_interval_ms: 100}"));
  ASSERT_TRUE(host.waitForLog("created consumer group")) << host.log();
  for (int i = 0; i < 500; ++i) {
    xadd(streamEvent("e" + std::to_string(i)));
  }
  ASSERT_TRUE(eventually([&] { return llen("seen") == 500; })) << host.log();
  // All handled and older than 300 ms: trimmed (whole nodes at a time).
  ASSERT_TRUE(eventually([&] {
    return redis_.command({"XLEN", "test:jollyjet:events:orders"})->integer < 500;
  })) << host.log();
}

TEST_F(StreamTest, ADeletedStreamAndGroupAreCreatedAgain) {
  EvhostProcess host(config("{path: recorder}"));
  ASSERT_TRUE(host.waitForLog("created consumer group")) << host.log();
  xadd(streamEvent("before"));
  ASSERT_TRUE(eventually([&] { return llen("seen") == 1; })) << host.log();
  redis_.command({"DEL", "test:jollyjet:events:orders"});  // the stream, and its group with it
  ASSERT_TRUE(host.waitForLog("is gone")) << host.log();
  ASSERT_TRUE(eventually([&] { return host.countInLog("created consumer group workers") == 2; })) << host.log();
  xadd(streamEvent("after"));
  ASSERT_TRUE(eventually([&] { return llen("seen") == 2; })) << host.log();
  EXPECT_EQ(ids("seen").back(), "after");
  EXPECT_EQ(host.countInLog("is gone"), 1U) << "logged once, not looped on\n" << host.log();
}

// The issue's durability run: 20,000 events are XADDed while
// evhost is killed (SIGKILL) and restarted twice. A plain plugin handles
// every event at least once; an idempotent route whose plugin writes its
// mark atomically with its effect handles each exactly once; nothing stays
// pending.
TEST_F(StreamTest, KilledTwiceEveryEventAtLeastOnceAndExactlyOnceWithIdempotency) {
  std::ostringstream y;
  y << "environment: test\n"
    << "redis: {host: 127.0.0.1, port: " << redis_.port() << "}\n"
    << R"(plugins:
  exact: {path: recorder, config: {key: exact, atomic: true}}
  atleast: {path: slow_recorder, config: {key: atleast}}
channels:
  jollyjet:events:orders:
    transport: stream
    stream: {group: workers, consumer: c1, block_ms: 100}
    routes:
      - events: "*"
        plugins: [exact]
        idempotency: {ttl_ms: 600000}
      - events: "*"
        plugins: [atleast]
)";
  int next = 0;
  auto add = [&](int n) {
    RedisConn pub = redis_.connect();
    for (int i = 0; i < n; ++i, ++next) {
      std::string msg = streamEvent("e" + std::to_string(next));
      redisAppendCommand(pub.get(), "XADD test:jollyjet:events:orders * event %b", msg.data(), msg.size());
    }
    for (int i = 0; i < n; ++i) {
      void* reply = nullptr;
      ASSERT_EQ(redisGetReply(pub.get(), &reply), REDIS_OK);
      freeReplyObject(reply);
    }
  };
  constexpr int kTotal = 20000;
  add(8000);
  for (long long kill_at : {4000LL, 12000LL}) {
    EvhostProcess host(y.str());
    ASSERT_TRUE(eventually([&] { return llen("atleast") >= kill_at; }, std::chrono::seconds(60))) << host.log();
    host.signal(SIGKILL);
    ASSERT_TRUE(host.waitExit().has_value());
    EXPECT_GT(pending(), 0) << "the kill landed while entries were in hand";
    add(6000);
  }
  EvhostProcess last(y.str());
  ASSERT_TRUE(eventually([&] { return llen("exact") == kTotal && pending() == 0; }, std::chrono::seconds(90)))
      << "exact=" << llen("exact") << " pending=" << pending() << "\n"
      << last.log();
  auto exact = ids("exact");
  auto atleast = ids("atleast");
  EXPECT_EQ(exact.size(), static_cast<size_t>(kTotal)) << "exactly once per event";
  EXPECT_EQ(std::set<std::string>(exact.begin(), exact.end()).size(), static_cast<size_t>(kTotal));
  EXPECT_EQ(std::set<std::string>(atleast.begin(), atleast.end()).size(), static_cast<size_t>(kTotal))
      << "every event at least once";
  EXPECT_GE(atleast.size(), static_cast<size_t>(kTotal));
}

}  // namespace
}  // namespace evh::test
