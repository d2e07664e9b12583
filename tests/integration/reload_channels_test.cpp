// Reloads that add and remove channels, with the real evhost: Pub/Sub
// channels and patterns are subscribed and unsubscribed on the running
// subscriber connection (never reconnected: the other channels miss
// nothing), and stream readers start, or finish their entries (handled once,
// acked) and go.
#include "support/evhost_process.h"
#include "support/http_client.h"
#include "support/redis_server.h"
#include "support/tested_binaries.h"

#include <hiredis/hiredis.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <signal.h>

#include <atomic>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace evh::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string event(const std::string& id) {
  return R"({"eventId":")" + id +
         R"(","eventType":"PRODUCT_CREATED","timestamp":"2024-01-15T10:30:00.000Z","correlationId":"c-)" + id +
         R"(","payload":{}})";
}

class ReloadChannelsTest : public ::testing::Test {
 protected:
  // Every plugin the tests route to (plugins are not what a reload changes
  // here); then the channels.
  std::string config(const std::string& channels, const std::string& extra = "") const {
    std::ostringstream y;
    y << "environment: test\n"
      << "redis: {host: 127.0.0.1, port: " << redis_.port() << "}\n"
      << "retry: {max_attempts: 1}\n"
      << extra << "plugins:\n"
      << "  a: {path: recorder, config: {key: seen_a, tag: a}}\n"
      << "  b: {path: recorder, config: {key: seen_b, tag: b}}\n"
      << "  p: {path: recorder, config: {key: seen_p, tag: p}}\n"
      << "  orders: {path: recorder, config: {key: seen_orders, tag: orders}}\n"
      << "  slow: {path: slow_recorder, config: {key: seen_refunds, tag: refunds, sleep_ms: 40}}\n"
      << "  slower: {path: slow_recorder, config: {key: seen_refunds, tag: refunds, sleep_ms: 100}}\n"
      << "channels:\n"
      << channels;
    return y.str();
  }
  static std::string pubsub(const std::string& name, const std::string& plugin, bool pattern = false) {
    return "  " + name + ":\n" + (pattern ? "    pattern: true\n" : "") +
           "    routes:\n"
           "      - events: \"*\"\n"
           "        plugins: [" +
           plugin + "]\n";
  }
  static std::string stream(const std::string& name, const std::string& plugin, const std::string& options) {
    return "  " + name +
           ":\n"
           "    transport: stream\n"
           "    stream: " +
           options +
           "\n"
           "    routes:\n"
           "      - events: \"*\"\n"
           "        plugins: [" +
           plugin + "]\n";
  }
  // Rewrites the file, sends SIGHUP, waits for reload number `n` to be done.
  static void reload(EvhostProcess& host, const std::string& yaml, size_t n) {
    std::ofstream(host.configPath(), std::ios::trunc) << yaml;
    host.signal(SIGHUP);
    ASSERT_TRUE(eventually([&] { return host.countInLog("configuration reloaded from") == n; })) << host.log();
  }
  long long llen(const std::string& key) { return redis_.command({"LLEN", key})->integer; }
  // The eventIds recorded in `key`, each once (a second record fails).
  std::set<std::string> recorded(const std::string& key) {
    std::set<std::string> ids;
    const auto list = redis_.command({"LRANGE", key, "0", "-1"});
    for (size_t i = 0; i < list->elements; ++i) {
      const std::string record(list->element[i]->str, list->element[i]->len);
      // tag|eventType|eventId|...
      const size_t first = record.find('|');
      const size_t second = record.find('|', first + 1);
      const size_t third = record.find('|', second + 1);
      EXPECT_TRUE(ids.insert(record.substr(second + 1, third - second - 1)).second) << "twice: " << record;
    }
    return ids;
  }
  long long numsub(const std::string& channel) {
    const auto r = redis_.command({"PUBSUB", "NUMSUB", channel});
    return r->element[1]->integer;
  }
  static std::string metrics(const EvhostProcess& host) { return httpGet(opsUrl(host) + "/metrics").body; }
  static nlohmann::json status(const EvhostProcess& host) {
    return nlohmann::json::parse(httpGet(opsUrl(host) + "/status").body);
  }
  static bool ready(const EvhostProcess& host) { return httpGet(opsUrl(host) + "/readyz").status == 200; }
  // A graceful stop after it all: exit 0, and (in the sanitizer build)
  // nothing reported.
  static void stopCleanly(EvhostProcess& host) {
    host.signal(SIGTERM);
    EXPECT_EQ(host.waitExit(), std::optional<int>(0)) << host.log();
    EXPECT_THAT(host.log(), Not(HasSubstr("Sanitizer")));
  }

  RedisServer redis_;
};

// While a publisher sends steadily to A, one reload adds B and another
// removes it: B's events are handled in between and not after (B is
// UNSUBSCRIBEd), every event on A is handled once, and the subscriber's
// connection is never dropped.
TEST_F(ReloadChannelsTest, PubSubChannelsAddedAndRemovedOnTheRunningConnection) {
  const std::string a = pubsub("jollyjet:events:a", "a");
  EvhostProcess host(config(a));
  ASSERT_TRUE(host.waitForLog("subscribed to")) << host.log();
  ASSERT_TRUE(eventually([&] { return ready(host); })) << host.log();
  std::atomic<bool> done{false};
  std::atomic<int> sent{0};
  std::thread publisher([&, port = redis_.port()] {
    redisContext* c = redisConnect("127.0.0.1", port);
    // About 5,000 a second: a batch of 10 every 2 ms.
    while (c != nullptr && c->err == 0 && !done.load()) {
      const int from = sent.load();
      for (int i = 0; i < 10; ++i) {
        const std::string body = event("a" + std::to_string(from + i));
        redisAppendCommand(c, "PUBLISH %s %b", "test:jollyjet:events:a", body.data(), body.size());
      }
      bool ok = true;
      for (int i = 0; i < 10; ++i) {
        void* r = nullptr;
        if (redisGetReply(c, &r) != REDIS_OK) {
          ok = false;
          break;
        }
        freeReplyObject(r);
      }
      if (!ok) {
        break;
      }
      sent.fetch_add(10);
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    redisFree(c);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));

  // Added: subscribed on the same connection, its events handled.
  reload(host, config(a + pubsub("jollyjet:events:b", "b")), 1);
  EXPECT_THAT(host.log(), HasSubstr("the channels (1 added) changed"));
  ASSERT_TRUE(host.waitForLog("subscribed to test:jollyjet:events:b")) << host.log();
  ASSERT_TRUE(eventually([&] { return numsub("test:jollyjet:events:b") == 1; }));
  redis_.command({"PUBLISH", "test:jollyjet:events:b", event("b1")});
  ASSERT_TRUE(eventually([&] { return llen("seen_b") == 1; })) << host.log();
  EXPECT_TRUE(eventually([&] { return ready(host); })) << host.log();
  EXPECT_THAT(metrics(host), HasSubstr("evhost_pubsub_subscribed{channel=\"jollyjet:events:b\"} 1"));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));

  // Removed: UNSUBSCRIBEd, its events no longer handled, its series gone.
  reload(host, config(a), 2);
  EXPECT_THAT(host.log(), HasSubstr("the channels (1 removed) changed"));
  ASSERT_TRUE(host.waitForLog("unsubscribed from test:jollyjet:events:b")) << host.log();
  EXPECT_EQ(numsub("test:jollyjet:events:b"), 0);
  EXPECT_EQ(redis_.command({"PUBLISH", "test:jollyjet:events:b", event("b2")})->integer, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));

  done = true;
  publisher.join();
  const long long total = sent.load();
  ASSERT_GT(total, 1000);
  ASSERT_TRUE(eventually([&] { return llen("seen_a") >= total; })) << host.log();
  EXPECT_EQ(static_cast<long long>(recorded("seen_a").size()), total);
  EXPECT_EQ(llen("seen_b"), 1);
  const std::string m = metrics(host);
  EXPECT_THAT(m, HasSubstr("evhost_redis_outages_total{connection=\"subscriber\"} 0"));
  EXPECT_THAT(m, HasSubstr("evhost_pubsub_gaps_total 0"));
  EXPECT_THAT(m, Not(HasSubstr("evhost_pubsub_subscribed{channel=\"jollyjet:events:b\"}")));
  EXPECT_THAT(m, HasSubstr("evhost_pubsub_subscribed{channel=\"jollyjet:events:a\"} 1"));
  EXPECT_TRUE(ready(host)) << httpGet(opsUrl(host) + "/readyz").body;
  EXPECT_THAT(host.log(), Not(HasSubstr("connected again")));
  EXPECT_THAT(host.log(), Not(HasSubstr("reload failed")));
  EXPECT_THAT(host.log(), Not(HasSubstr("connection lost")));
  stopCleanly(host);
}

// Sharded Pub/Sub on one Redis 7 node: a shard channel beside a classic
// one on the same subscriber connection (SSUBSCRIBE; SPUBLISH reaches it,
// evhctl publish sends SPUBLISH), a reload that makes the classic one
// sharded (UNSUBSCRIBE, then SSUBSCRIBE), one that removes a shard channel
// (SUNSUBSCRIBE), and a clean stop.
TEST_F(ReloadChannelsTest, ShardChannelsBesideClassicOnesAndTurnedSoByAReload) {
  const auto sharded = [](const std::string& name, const std::string& plugin) {
    return "  " + name + ":\n    sharded: true\n    routes:\n      - events: \"*\"\n        plugins: [" + plugin +
           "]\n";
  };
  const auto shardnumsub = [&](const std::string& channel) {
    return redis_.command({"PUBSUB", "SHARDNUMSUB", channel})->element[1]->integer;
  };
  const std::string s = sharded("jollyjet:events:s", "orders");
  EvhostProcess host(config(pubsub("jollyjet:events:a", "a") + s));
  ASSERT_TRUE(host.waitForLog("subscribed to")) << host.log();
  ASSERT_TRUE(eventually([&] { return ready(host); })) << host.log();
  EXPECT_EQ(shardnumsub("test:jollyjet:events:s"), 1);
  EXPECT_EQ(numsub("test:jollyjet:events:s"), 0);
  EXPECT_EQ(redis_.command({"SPUBLISH", "test:jollyjet:events:s", event("s1")})->integer, 1);
  EXPECT_EQ(redis_.command({"PUBLISH", "test:jollyjet:events:a", event("a1")})->integer, 1);
  const auto [code, out] = runCommand({evhctlBin(), "publish", "--config", host.configPath(), "--channel",
                                       "jollyjet:events:s", "--type", "PRODUCT_CREATED", "--payload", "{}"});
  ASSERT_EQ(code, 0) << out;
  EXPECT_THAT(out, HasSubstr("published to test:jollyjet:events:s: 1 receiver")) << out;
  ASSERT_TRUE(eventually([&] { return llen("seen_orders") == 2 && llen("seen_a") == 1; })) << host.log();
  EXPECT_TRUE(eventually([&] {
    return metrics(host).find("evhost_pubsub_subscribed{channel=\"jollyjet:events:s\"} 1") != std::string::npos;
  }));

  // a turns sharded: unsubscribed the classic way, subscribed the sharded.
  reload(host, config(sharded("jollyjet:events:a", "a") + s), 1);
  ASSERT_TRUE(eventually([&] { return shardnumsub("test:jollyjet:events:a") == 1; })) << host.log();
  EXPECT_EQ(numsub("test:jollyjet:events:a"), 0);
  EXPECT_THAT(host.log(), HasSubstr("reload: channel test:jollyjet:events:a is now sharded (SSUBSCRIBE)"));
  EXPECT_EQ(redis_.command({"SPUBLISH", "test:jollyjet:events:a", event("a2")})->integer, 1);
  ASSERT_TRUE(eventually([&] { return llen("seen_a") == 2; })) << host.log();

  // s removed: SUNSUBSCRIBEd, its events no longer handled.
  reload(host, config(sharded("jollyjet:events:a", "a")), 2);
  ASSERT_TRUE(host.waitForLog("unsubscribed from test:jollyjet:events:s")) << host.log();
  EXPECT_EQ(shardnumsub("test:jollyjet:events:s"), 0);
  EXPECT_EQ(redis_.command({"SPUBLISH", "test:jollyjet:events:s", event("s3")})->integer, 0);
  EXPECT_EQ(redis_.command({"SPUBLISH", "test:jollyjet:events:a", event("a3")})->integer, 1);
  ASSERT_TRUE(eventually([&] { return llen("seen_a") == 3; })) << host.log();
  EXPECT_EQ(recorded("seen_a"), (std::set<std::string>{"a1", "a2", "a3"}));
  EXPECT_EQ(llen("seen_orders"), 2);
  // /metrics answers from a snapshot up to 100 ms old.
  std::string m;
  EXPECT_TRUE(eventually([&] {
    m = metrics(host);
    return m.find("evhost_reloads_total 2") != std::string::npos;
  })) << m;
  EXPECT_THAT(m, HasSubstr("evhost_redis_outages_total{connection=\"subscriber\"} 0"));
  EXPECT_THAT(m, Not(HasSubstr("evhost_pubsub_subscribed{channel=\"jollyjet:events:s\"}")));
  EXPECT_TRUE(ready(host)) << httpGet(opsUrl(host) + "/readyz").body;
  stopCleanly(host);
}

// A pattern added where no Pub/Sub channel was configured (the subscriber
// is made then), then removed again: PUNSUBSCRIBEd.
TEST_F(ReloadChannelsTest, APatternAddedThenRemoved) {
  const std::string orders = stream("jollyjet:events:orders", "orders", "{block_ms: 100}");
  EvhostProcess host(config(orders));
  ASSERT_TRUE(host.waitForLog("created consumer group")) << host.log();
  reload(host, config(orders + pubsub("jollyjet:events:p:*", "p", true)), 1);
  ASSERT_TRUE(host.waitForLog("subscribed to test:jollyjet:events:p:*")) << host.log();
  redis_.command({"PUBLISH", "test:jollyjet:events:p:x", event("p1")});
  ASSERT_TRUE(eventually([&] { return llen("seen_p") == 1; })) << host.log();
  EXPECT_TRUE(eventually([&] { return ready(host); })) << host.log();

  reload(host, config(orders), 2);
  ASSERT_TRUE(host.waitForLog("unsubscribed from pattern test:jollyjet:events:p:*")) << host.log();
  EXPECT_EQ(redis_.command({"PUBSUB", "NUMPAT"})->integer, 0);
  redis_.command({"PUBLISH", "test:jollyjet:events:p:y", event("p2")});
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(llen("seen_p"), 1);
  // The stream kept flowing.
  redis_.command({"XADD", "test:jollyjet:events:orders", "*", "event", event("o1")});
  ASSERT_TRUE(eventually([&] { return llen("seen_orders") == 1; })) << host.log();
  EXPECT_TRUE(ready(host));
  stopCleanly(host);
}

// A stream channel added gets its group and its entries handled; removed
// while entries are in a slow plugin, every entry it read is handled once
// and acked, its consumer leaves the group, and it is gone from /status --
// while the other stream keeps flowing.
TEST_F(ReloadChannelsTest, AStreamAddedThenRemovedWithEntriesInFlight) {
  const std::string orders = stream("jollyjet:events:orders", "orders", "{block_ms: 100}");
  const std::string refunds =
      stream("jollyjet:events:refunds", "slow", "{group: refunders, consumer: r1, count: 5, block_ms: 100}");
  // A few entries in flight at a time: the reader has read only some of
  // them when it is removed.
  const std::string limits = "limits: {max_in_flight: 6}\n";
  EvhostProcess host(config(orders, limits));
  ASSERT_TRUE(host.waitForLog("created consumer group")) << host.log();

  reload(host, config(orders + refunds, limits), 1);
  ASSERT_TRUE(host.waitForLog("stream test:jollyjet:events:refunds: created consumer group refunders")) << host.log();
  for (int i = 0; i < 200; ++i) {
    redis_.command({"XADD", "test:jollyjet:events:refunds", "*", "event", event("r" + std::to_string(i))});
  }
  ASSERT_TRUE(eventually([&] { return llen("seen_refunds") >= 3; })) << host.log();
  EXPECT_TRUE(eventually([&] { return ready(host); })) << host.log();

  // Removed with entries in flight (one handled every 40 ms).
  reload(host, config(orders, limits), 2);
  EXPECT_THAT(host.log(), HasSubstr("the channels (1 removed) changed"));
  ASSERT_TRUE(host.waitForLog("stream test:jollyjet:events:refunds: reader retired")) << host.log();
  // Nothing pending; what the group delivered is what was handled, once.
  const auto pending = redis_.command({"XPENDING", "test:jollyjet:events:refunds", "refunders"});
  EXPECT_EQ(pending->element[0]->integer, 0);
  const auto groups = redis_.command({"XINFO", "GROUPS", "test:jollyjet:events:refunds"});
  ASSERT_EQ(groups->elements, 1u);
  std::string last_delivered;
  long long consumers = -1;
  for (size_t i = 0; i + 1 < groups->element[0]->elements; i += 2) {
    const std::string field = groups->element[0]->element[i]->str;
    if (field == "last-delivered-id") {
      last_delivered = groups->element[0]->element[i + 1]->str;
    } else if (field == "consumers") {
      consumers = groups->element[0]->element[i + 1]->integer;
    }
  }
  const auto read = redis_.command({"XRANGE", "test:jollyjet:events:refunds", "-", last_delivered});
  const std::set<std::string> handled = recorded("seen_refunds");
  EXPECT_EQ(handled.size(), read->elements);
  EXPECT_LT(handled.size(), 200u);  // it stopped reading
  EXPECT_EQ(consumers, 0);          // nothing pending: the consumer left the group
  // It reads no more.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(static_cast<size_t>(llen("seen_refunds")), handled.size());

  const nlohmann::json s = status(host);
  ASSERT_EQ(s["streams"].size(), 1u);
  EXPECT_EQ(s["streams"][0]["channel"], "jollyjet:events:orders");
  EXPECT_TRUE(ready(host));
  redis_.command({"XADD", "test:jollyjet:events:orders", "*", "event", event("o1")});
  ASSERT_TRUE(eventually([&] { return llen("seen_orders") == 1; })) << host.log();
  EXPECT_THAT(host.log(), Not(HasSubstr("left pending")));
  stopCleanly(host);
}

// A stream read differently (its count and consumer changed) gets a new
// reader once the old one has finished: nothing is lost or handled twice
// while entries keep coming.
TEST_F(ReloadChannelsTest, AStreamReadDifferentlyIsHandedToANewReader) {
  const std::string before =
      stream("jollyjet:events:refunds", "slow", "{group: refunders, consumer: r1, count: 5, block_ms: 100}");
  const std::string after =
      stream("jollyjet:events:refunds", "slow", "{group: refunders, consumer: r2, count: 2, block_ms: 100}");
  EvhostProcess host(config(before));
  ASSERT_TRUE(host.waitForLog("created consumer group")) << host.log();
  for (int i = 0; i < 30; ++i) {
    redis_.command({"XADD", "test:jollyjet:events:refunds", "*", "event", event("r" + std::to_string(i))});
  }
  ASSERT_TRUE(eventually([&] { return llen("seen_refunds") >= 3; })) << host.log();
  reload(host, config(after), 1);
  EXPECT_THAT(host.log(), HasSubstr("the reading of 1 stream channel(s) changed"));
  ASSERT_TRUE(host.waitForLog("consumer r2 (its previous reader has finished)")) << host.log();
  for (int i = 30; i < 40; ++i) {
    redis_.command({"XADD", "test:jollyjet:events:refunds", "*", "event", event("r" + std::to_string(i))});
  }
  ASSERT_TRUE(eventually([&] { return llen("seen_refunds") >= 40; })) << host.log();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(recorded("seen_refunds").size(), 40u);
  EXPECT_EQ(redis_.command({"XPENDING", "test:jollyjet:events:refunds", "refunders"})->element[0]->integer, 0);
  const nlohmann::json s = status(host);
  ASSERT_EQ(s["streams"].size(), 1u);
  EXPECT_EQ(s["streams"][0]["consumer"], "r2");
  EXPECT_TRUE(eventually([&] { return ready(host); }));
  stopCleanly(host);
}

// A stop while a removed stream's reader still finishes its entries: they
// are handled and acked as at any stop, and evhost exits cleanly.
TEST_F(ReloadChannelsTest, AStopWhileAStreamReaderFinishes) {
  const std::string orders = stream("jollyjet:events:orders", "orders", "{block_ms: 100}");
  const std::string refunds =
      stream("jollyjet:events:refunds", "slower", "{group: refunders, consumer: r1, count: 5, block_ms: 100}");
  const std::string limits = "limits: {max_in_flight: 6}\n";
  EvhostProcess host(config(orders + refunds, limits));
  ASSERT_TRUE(host.waitForLog("created consumer group refunders")) << host.log();
  for (int i = 0; i < 50; ++i) {
    redis_.command({"XADD", "test:jollyjet:events:refunds", "*", "event", event("r" + std::to_string(i))});
  }
  ASSERT_TRUE(eventually([&] { return llen("seen_refunds") >= 2; })) << host.log();
  reload(host, config(orders, limits), 1);
  // Past the read that was out (block_ms): what is left is entries in a
  // plugin, which take 100 ms each (at least 3 are: min_room). (A read cut short by a stop leaves its
  // entries pending for the next start, as for any stream.)
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  ASSERT_EQ(host.countInLog("reader retired"), 0u) << "drained before the stop: nothing tested";
  stopCleanly(host);
  EXPECT_EQ(redis_.command({"XPENDING", "test:jollyjet:events:refunds", "refunders"})->element[0]->integer, 0)
      << host.log();
  EXPECT_LT(llen("seen_refunds"), 50);
  EXPECT_EQ(static_cast<long long>(recorded("seen_refunds").size()), llen("seen_refunds"));
}

}  // namespace
}  // namespace evh::test
