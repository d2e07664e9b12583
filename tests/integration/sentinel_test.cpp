// redis.sentinel against real redis-sentinel processes (support/sentinel_set.h):
// evhost finds the master through the sentinels, follows a manual failover
// and a killed master on a stream and on Pub/Sub, and names what it cannot
// reach. The time from each failover to the first event handled on the new
// master is printed (a figure, not an assertion).
#include "support/evhost_process.h"
#include "support/http_client.h"
#include "support/redis_server.h"
#include "support/sentinel_set.h"
#include "support/tested_binaries.h"
#include "support/tls_certs.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <set>
#include <sstream>
#include <string>

namespace evh::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using Clock = std::chrono::steady_clock;

constexpr const char* kStream = "test:jollyjet:events:orders";
constexpr const char* kChannel = "test:jollyjet:events:product";

std::string event(const std::string& id) {
  return R"({"eventId":")" + id +
         R"(","eventType":"PRODUCT_CREATED","timestamp":"2024-01-15T10:30:00.000Z","payload":{"productId":"p-1"}})";
}

// The ids the recorder plugin recorded in `key` on `server`.
std::vector<std::string> recorded(RedisServer& server, const std::string& key) {
  std::vector<std::string> out;
  RedisConn c = server.connect();
  ReplyPtr r(static_cast<redisReply*>(redisCommand(c.get(), "LRANGE %s 0 -1", key.c_str())));
  for (size_t i = 0; r && i < r->elements; ++i) {
    std::string rec(r->element[i]->str, r->element[i]->len);
    const size_t a = rec.find('|', rec.find('|') + 1) + 1;
    out.push_back(rec.substr(a, rec.find('|', a) - a));
  }
  return out;
}

bool recordedAll(RedisServer& server, const std::string& key, const std::string& prefix, int n) {
  const std::vector<std::string> got = recorded(server, key);
  const std::set<std::string> unique(got.begin(), got.end());
  for (int i = 0; i < n; ++i) {
    if (unique.count(prefix + std::to_string(i)) == 0) {
      return false;
    }
  }
  return true;
}

bool recordedOne(RedisServer& server, const std::string& key, const std::string& id) {
  const std::vector<std::string> got = recorded(server, key);
  return std::find(got.begin(), got.end(), id) != got.end();
}

long long integerOf(RedisServer& server, const std::vector<std::string>& argv) {
  ReplyPtr r = server.command(argv);
  return r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
}

// XADD then WAIT for the replica: an entry Redis acknowledged to us and
// replicated, which a failover must not lose.
void addReplicated(RedisServer& master, const std::string& id) {
  ReplyPtr r = master.command({"XADD", kStream, "*", "event", event(id)});
  ASSERT_EQ(r->type, REDIS_REPLY_STRING) << (r->str != nullptr ? r->str : "");
  ASSERT_EQ(integerOf(master, {"WAIT", "1", "5000"}), 1) << "the replica did not take " << id;
}

std::string sentinelConfig(SentinelSet& set, const std::string& channel, const std::string& nodes = "",
                           const std::string& redis_extra = "") {
  std::ostringstream y;
  y << "environment: test\n"
    << "redis:\n"
    << "  sentinel: {master: " << SentinelSet::kMaster << ", nodes: " << (nodes.empty() ? set.nodesYaml() : nodes)
    << "}\n"
    << redis_extra
    // A backoff far longer than a failover takes: following one quickly
    // must come from the sentinels, not from retrying.
    << "  reconnect: {initial_ms: 5000, max_ms: 10000}\n"
    << "  ping_interval_ms: 500\n"
    << "  ping_timeout_ms: 1000\n"
    << "retry: {max_attempts: 1}\n"
    << "plugins:\n  rec: {path: recorder, config: {key: seen}}\n"
    << "channels:\n"
    << channel << "    routes:\n      - events: \"*\"\n        plugins: [rec]\n";
  return y.str();
}

const std::string kStreamChannel =
    "  jollyjet:events:orders:\n    transport: stream\n"
    "    stream: {group: workers, consumer: c1, block_ms: 200, claim_idle_ms: 1000, claim_interval_ms: 500}\n";
const std::string kPubSubChannel = "  jollyjet:events:product:\n";

double msSince(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

TEST(SentinelTest, AStreamFollowsAManualFailoverAndLosesNoReplicatedEntry) {
  SentinelSet set;
  const uint16_t first = set.masterPort();
  EvhostProcess host(sentinelConfig(set, kStreamChannel));
  ASSERT_TRUE(host.waitForLog("master evhmaster is at 127.0.0.1:" + std::to_string(first))) << host.log();
  ASSERT_TRUE(host.waitForLog("created consumer group workers")) << host.log();
  for (int i = 0; i < 50; ++i) {
    addReplicated(set.master(), "before-" + std::to_string(i));
  }
  ASSERT_TRUE(eventually([&] { return recordedAll(set.master(), "seen", "before-", 50); })) << host.log();
  ASSERT_TRUE(set.waitReplicated());

  const auto t0 = Clock::now();
  RedisServer& now = set.failover();
  ASSERT_NE(now.port(), first);
  const double promoted_ms = msSince(t0);
  const auto t1 = Clock::now();
  ASSERT_EQ(now.command({"XADD", kStream, "*", "event", event("after-0")})->type, REDIS_REPLY_STRING);
  ASSERT_TRUE(eventually([&] { return recordedAll(now, "seen", "after-", 1); })) << host.log();
  std::printf(
      "[ figure ] SENTINEL FAILOVER: new master named after %.0f ms; an entry added then handled %.0f ms "
      "later\n",
      promoted_ms, msSince(t1));
  // The old master comes back as the new one's replica (the sentinels
  // reconfigure it): from then on each entry is replicated before the next.
  ASSERT_TRUE(set.waitReplicated(std::chrono::seconds(30)));
  for (int i = 1; i < 50; ++i) {
    addReplicated(now, "after-" + std::to_string(i));
  }
  // Every entry Redis took and replicated is handled on the new master
  // (the records made before the failover were replicated with it).
  ASSERT_TRUE(eventually([&] { return recordedAll(now, "seen", "before-", 50); })) << host.log();
  ASSERT_TRUE(eventually([&] { return recordedAll(now, "seen", "after-", 50); })) << host.log();
  ASSERT_TRUE(eventually([&] {
    ReplyPtr r = now.command({"XPENDING", kStream, "workers"});
    return r->type == REDIS_REPLY_ARRAY && r->elements > 0 && r->element[0]->integer == 0;
  })) << "entries left pending on the new master\n"
      << host.log();
  EXPECT_TRUE(host.waitForLog("master evhmaster moved from 127.0.0.1:" + std::to_string(first) +
                              " to 127.0.0.1:" + std::to_string(now.port())))
      << host.log();

  // /status names the topology.
  const HttpResponse status = httpGet(opsUrl(host) + "/status");
  ASSERT_EQ(status.status, 200);
  EXPECT_THAT(status.body, HasSubstr(R"("mode":"sentinel")"));
  EXPECT_THAT(status.body, HasSubstr(R"("master":"127.0.0.1:)" + std::to_string(now.port()) + "\""));
  EXPECT_THAT(status.body, HasSubstr(R"("master_changes":1)"));
  const HttpResponse metrics = httpGet(opsUrl(host) + "/metrics");
  EXPECT_THAT(metrics.body, HasSubstr("evhost_redis_master_changes_total{master=\"evhmaster\"} 1"));

  host.signal(SIGTERM);
  EXPECT_EQ(host.waitExit(), std::optional<int>(0)) << host.log();
}

// TLS throughout: the sentinels are asked, and followed, over TLS; they name
// the data nodes' TLS ports, and every connection to the master is TLS.
TEST(SentinelTest, OverTlsAStreamFollowsAManualFailover) {
  TlsCerts certs;
  SentinelSet::Options options;
  options.tls = &certs;
  SentinelSet set(options);
  const uint16_t first = set.masterPort();
  ASSERT_EQ(first, set.tlsPort(set.node(0))) << "the sentinels name the master's TLS port";
  EvhostProcess host(sentinelConfig(set, kStreamChannel, "", "  tls: {ca_file: " + certs.file("ca.crt") + "}\n"));
  ASSERT_TRUE(host.waitForLog("master evhmaster is at 127.0.0.1:" + std::to_string(first))) << host.log();
  ASSERT_TRUE(host.waitForLog("created consumer group workers")) << host.log();
  for (int i = 0; i < 10; ++i) {
    addReplicated(set.master(), "before-" + std::to_string(i));
  }
  ASSERT_TRUE(eventually([&] { return recordedAll(set.master(), "seen", "before-", 10); })) << host.log();
  ASSERT_TRUE(set.waitReplicated());

  RedisServer& now = set.failover();
  const uint16_t second = set.tlsPort(now);
  ASSERT_NE(second, first);
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(now.command({"XADD", kStream, "*", "event", event("after-" + std::to_string(i))})->type,
              REDIS_REPLY_STRING);
  }
  ASSERT_TRUE(eventually([&] { return recordedAll(now, "seen", "after-", 10); })) << host.log();
  EXPECT_TRUE(host.waitForLog("master evhmaster moved from 127.0.0.1:" + std::to_string(first) +
                              " to 127.0.0.1:" + std::to_string(second)))
      << host.log();
  host.signal(SIGTERM);
  EXPECT_EQ(host.waitExit(), std::optional<int>(0)) << host.log();
}

// The sentinels' own ACL user with exactly the rights docs/config.md lists:
// evhost asks and follows the sentinels as that user; a wrong password is
// named (not shown) and nothing is consumed.
TEST(SentinelTest, AnAclUserWithTheDocumentedRightsFollowsAFailover) {
  SentinelSet::Options options;
  options.sentinel_conf =
      "user evh-sentinel on >sentinel-secret-7 &+switch-master +ping +auth +subscribe "
      "+sentinel|get-master-addr-by-name\n";
  SentinelSet set(options);
  const uint16_t first = set.masterPort();
  const std::string credentials = ", username: evh-sentinel, password: sentinel-secret-7";
  EvhostProcess host(sentinelConfig(set, kPubSubChannel, set.nodesYaml() + credentials));
  ASSERT_TRUE(host.waitForLog("master evhmaster is at 127.0.0.1:" + std::to_string(first))) << host.log();
  ASSERT_TRUE(host.waitForLog("subscribed to")) << host.log();
  // Every sentinel has evhost's +switch-master subscription, as that user.
  for (size_t i = 0; i < set.sentinelCount(); ++i) {
    EXPECT_TRUE(eventually([&] {
      ReplyPtr r = set.sentinel(i).command({"CLIENT", "LIST"});
      std::istringstream clients(std::string(r->str, r->len));
      for (std::string c; std::getline(clients, c);) {
        if (c.find(" sub=1 ") != std::string::npos && c.find(" user=evh-sentinel ") != std::string::npos) {
          return true;
        }
      }
      return false;
    })) << "sentinel "
        << i;
  }
  RedisServer& now = set.failover();
  ASSERT_TRUE(host.waitForLog("master evhmaster moved from 127.0.0.1:" + std::to_string(first) +
                              " to 127.0.0.1:" + std::to_string(now.port())))
      << host.log();
  ASSERT_TRUE(eventually([&] { return integerOf(now, {"PUBLISH", kChannel, event("after-acl")}) >= 1; })) << host.log();
  ASSERT_TRUE(eventually([&] { return recordedOne(now, "seen", "after-acl"); })) << host.log();
  EXPECT_THAT(host.log(), Not(HasSubstr("NOPERM"))) << host.log();
  EXPECT_THAT(host.log(), Not(HasSubstr("sentinel-secret-7"))) << host.log();

  const std::string wrong = ", username: evh-sentinel, password: not-the-secret-9";
  EvhostProcess refused(sentinelConfig(set, kPubSubChannel, set.nodesYaml() + wrong));
  ASSERT_TRUE(refused.waitForLog("WRONGPASS")) << refused.log();
  EXPECT_THAT(refused.log(), Not(HasSubstr("not-the-secret-9"))) << refused.log();
  EXPECT_THAT(refused.log(), Not(HasSubstr("subscribed to"))) << refused.log();
}

TEST(SentinelTest, PubSubFollowsAKilledMasterAndLogsTheGap) {
  SentinelSet set;
  const uint16_t first = set.masterPort();
  EvhostProcess host(sentinelConfig(set, kPubSubChannel));
  ASSERT_TRUE(host.waitForLog("subscribed to")) << host.log();
  for (int i = 0; i < 20; ++i) {
    set.master().command({"PUBLISH", kChannel, event("before-" + std::to_string(i))});
  }
  ASSERT_TRUE(eventually([&] { return recordedAll(set.master(), "seen", "before-", 20); })) << host.log();

  const auto t0 = Clock::now();
  set.master().kill();
  RedisServer& now = set.waitForNewMaster(first);
  // Published until evhost is subscribed on the new master (PUBLISH counts
  // the receivers): what went before had no subscriber (the gap).
  int sent = 0;
  ASSERT_TRUE(eventually([&] {
    return integerOf(now, {"PUBLISH", kChannel, event("after-" + std::to_string(sent++))}) >= 1;
  })) << host.log();
  const int first_received = sent - 1;
  ASSERT_TRUE(eventually([&] { return recorded(now, "seen").size() >= 1; })) << host.log();
  std::printf("[ figure ] master SIGKILLed -> first Pub/Sub event handled on the new master: %.0f ms\n", msSince(t0));
  for (int i = 0; i < 20; ++i) {
    now.command({"PUBLISH", kChannel, event("later-" + std::to_string(i))});
  }
  ASSERT_TRUE(eventually([&] { return recordedAll(now, "seen", "later-", 20); })) << host.log();
  const std::vector<std::string> got = recorded(now, "seen");
  EXPECT_NE(std::find(got.begin(), got.end(), "after-" + std::to_string(first_received)), got.end());
  EXPECT_TRUE(host.waitForLog("pubsub gap: not subscribed for")) << host.log();
  EXPECT_TRUE(host.waitForLog("to 127.0.0.1:" + std::to_string(now.port()))) << host.log();

  host.signal(SIGTERM);
  EXPECT_EQ(host.waitExit(), std::optional<int>(0)) << host.log();
}

TEST(SentinelTest, ADeadSentinelIsSkippedAndAnUnknownMasterIsNamed) {
  SentinelSet set(1);
  // The first sentinel listed is nothing at all; the second answers.
  const std::string nodes =
      "[127.0.0.1:" + std::to_string(freePort()) + ", 127.0.0.1:" + std::to_string(set.sentinel(0).port()) + "]";
  {
    EvhostProcess host(sentinelConfig(set, kPubSubChannel, nodes));
    ASSERT_TRUE(host.waitForLog("master evhmaster is at 127.0.0.1:" + std::to_string(set.masterPort()))) << host.log();
    ASSERT_TRUE(host.waitForLog("subscribed to")) << host.log();
    set.master().command({"PUBLISH", kChannel, event("one")});
    ASSERT_TRUE(eventually([&] { return recordedOne(set.master(), "seen", "one"); })) << host.log();
    host.signal(SIGTERM);
    EXPECT_EQ(host.waitExit(), std::optional<int>(0)) << host.log();
  }
  // A master name no sentinel monitors: named, never a crash, and evhost
  // not ready; it still stops cleanly.
  std::string cfg = sentinelConfig(set, kPubSubChannel);
  cfg.replace(cfg.find(SentinelSet::kMaster), std::string(SentinelSet::kMaster).size(), "nosuchmaster");
  EvhostProcess host(cfg);
  ASSERT_TRUE(host.waitForLog("it monitors no master named nosuchmaster")) << host.log();
  const HttpResponse ready = httpGet(opsUrl(host) + "/readyz");
  EXPECT_EQ(ready.status, 503) << ready.body;
  host.signal(SIGTERM);
  EXPECT_EQ(host.waitExit(), std::optional<int>(0)) << host.log();
}

TEST(SentinelTest, EvhctlAsksTheSentinelsForTheMaster) {
  SentinelSet set(1);
  EvhostProcess host(sentinelConfig(set, kPubSubChannel));
  ASSERT_TRUE(host.waitForLog("subscribed to")) << host.log();
  const auto [code, out] =
      runCommand({evhctlBin(), "publish", "--config", host.configPath(), "--payload", event("from-evhctl")});
  ASSERT_EQ(code, 0) << out;
  EXPECT_THAT(out, HasSubstr("1"));  // received by evhost's subscription on the master
  ASSERT_TRUE(eventually([&] { return recordedOne(set.master(), "seen", "from-evhctl"); })) << out << host.log();
  host.signal(SIGTERM);
  EXPECT_EQ(host.waitExit(), std::optional<int>(0)) << host.log();
}

}  // namespace
}  // namespace evh::test
