// Two evhost instances on one Pub/Sub channel each handle every event: the
// real evhost against a real redis-server says so at start (app/pubsub_peers.h),
// in its log and in evhost_pubsub_peers; alone it says nothing; an instance
// that stopped cleanly took its presence with it; a refused presence command
// is logged once and nothing else breaks.
#include "support/evhost_process.h"
#include "support/http_client.h"
#include "support/redis_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <sstream>
#include <string>

namespace evh::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kHash = "test:evh:pubsub-consumers:jollyjet:events:product";
constexpr const char* kPatternHash = "test:evh:pubsub-pattern-consumers:jollyjet:orders:*";

class PubsubPeersTest : public ::testing::Test {
 protected:
  // One channel and one pattern, both Pub/Sub.
  std::string config(const std::string& redis_extra = "") const {
    std::ostringstream y;
    y << "environment: test\n"
      << "redis:\n  host: 127.0.0.1\n  port: " << redis_.port() << "\n"
      << "  reconnect: {initial_ms: 50, max_ms: 200}\n"
      << redis_extra << R"(plugins:
  rec: {path: recorder}
channels:
  jollyjet:events:product:
    routes:
      - events: "*"
        plugins: [rec]
  "jollyjet:orders:*":
    pattern: true
    routes:
      - events: "*"
        plugins: [rec]
)";
    return y.str();
  }

  // The name evhost gives itself: "<hostname>-<pid>".
  static std::string nameOf(const EvhostProcess& host) {
    char h[256] = {};
    gethostname(h, sizeof(h) - 1);
    return std::string(h) + "-" + std::to_string(host.pid());
  }

  static std::string warning(const std::string& what, const EvhostProcess& peer) {
    return what + ": another evhost (" + nameOf(peer) +
           ") consumes it too: each instance handles every event published there; give the channel `share:` to "
           "share them (docs/config.md)";
  }

  // Whether `host` has announced itself on the channel's hash.
  bool announced(const EvhostProcess& host, const char* hash = kHash) {
    return redis_.command({"HEXISTS", hash, nameOf(host)})->integer == 1;
  }

  // The value of evhost_pubsub_peers for the channel in `host`'s /metrics;
  // -1 when it is not there.
  static double peersMetric(const EvhostProcess& host, const std::string& channel = "jollyjet:events:product") {
    const std::string body = httpGet(opsUrl(host) + "/metrics").body;
    const std::string series = "\nevhost_pubsub_peers{channel=\"" + channel + "\"} ";
    const size_t at = body.find(series);
    if (at == std::string::npos) {
      return -1;
    }
    return std::stod(body.substr(at + series.size(), body.find('\n', at + 1) - at - series.size()));
  }

  // SIGHUP with the file unchanged, waiting for the outcome: a reload looks
  // again at once (else the next look is one interval, 10 s, away).
  static bool reload(EvhostProcess& host) {
    const size_t before = host.countInLog("configuration reloaded from");
    host.signal(SIGHUP);
    return eventually([&] { return host.countInLog("configuration reloaded from") > before; });
  }

  RedisServer redis_;
};

TEST_F(PubsubPeersTest, TheSecondInstanceWarnsAtStartAndTheFirstOnItsNextLook) {
  EvhostProcess first(config());
  ASSERT_TRUE(eventually([&] { return announced(first) && announced(first, kPatternHash); })) << first.log();
  EvhostProcess second(config());
  ASSERT_TRUE(second.waitForLog(warning("channel test:jollyjet:events:product", first))) << second.log();
  ASSERT_TRUE(second.waitForLog(warning("pattern test:jollyjet:orders:*", first))) << second.log();
  EXPECT_EQ(second.countInLog("another evhost"), 2u) << "once per (channel, peer)\n" << second.log();
  EXPECT_TRUE(eventually([&] { return peersMetric(second) == 1; })) << httpGet(opsUrl(second) + "/metrics").body;
  EXPECT_EQ(peersMetric(second, "jollyjet:orders:*"), 1);

  // The first hears of the second at its next look: here a reload's.
  ASSERT_TRUE(reload(first)) << first.log();
  EXPECT_TRUE(first.waitForLog(warning("channel test:jollyjet:events:product", second))) << first.log();
  EXPECT_TRUE(eventually([&] { return peersMetric(first) == 1; }));

  // Looking again does not warn again.
  ASSERT_TRUE(reload(second)) << second.log();
  ASSERT_TRUE(reload(first)) << first.log();
  EXPECT_EQ(second.countInLog("another evhost"), 2u) << second.log();
  EXPECT_TRUE(eventually([&] { return first.countInLog("another evhost") >= 2; })) << first.log();
  EXPECT_EQ(first.countInLog("another evhost"), 2u) << first.log();
}

TEST_F(PubsubPeersTest, AnInstanceAloneSaysNothing) {
  EvhostProcess host(config());
  ASSERT_TRUE(eventually([&] { return announced(host); })) << host.log();
  ASSERT_TRUE(eventually([&] { return peersMetric(host) == 0; })) << host.log();
  // Its presence holds for three intervals (30 s), renewed every 10 s; the
  // hash goes with the last presence.
  const long long value = std::stoll(redis_.command({"HGET", kHash, nameOf(host)})->str);
  const long long now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  EXPECT_GT(value, now_ms + 20000);
  EXPECT_LE(value, now_ms + 30000);
  const long long ttl = redis_.command({"PTTL", kHash})->integer;
  EXPECT_GT(ttl, 20000);
  EXPECT_LE(ttl, 30000);
  ASSERT_TRUE(reload(host)) << host.log();
  EXPECT_THAT(host.log(), Not(HasSubstr("another evhost")));
  EXPECT_THAT(host.log(), Not(HasSubstr("pub/sub peers")));
}

TEST_F(PubsubPeersTest, AnInstanceThatStoppedCleanlyIsNotCounted) {
  EvhostProcess first(config());
  ASSERT_TRUE(eventually([&] { return announced(first); })) << first.log();
  EvhostProcess second(config());
  ASSERT_TRUE(second.waitForLog(warning("channel test:jollyjet:events:product", first))) << second.log();

  first.signal(SIGTERM);
  ASSERT_EQ(first.waitExit(), 0) << first.log();
  EXPECT_FALSE(announced(first)) << "its field is deleted at a clean stop";
  EXPECT_FALSE(announced(first, kPatternHash));

  // A third sees the second, and not the first.
  EvhostProcess third(config());
  ASSERT_TRUE(third.waitForLog(warning("channel test:jollyjet:events:product", second))) << third.log();
  EXPECT_THAT(third.log(), Not(HasSubstr(nameOf(first)))) << third.log();
  EXPECT_TRUE(eventually([&] { return peersMetric(third) == 1; }));
  // And the second, looking again, sees the first gone and the third.
  ASSERT_TRUE(reload(second)) << second.log();
  EXPECT_TRUE(
      second.waitForLog("channel test:jollyjet:events:product: evhost " + nameOf(first) + " no longer consumes it"))
      << second.log();
  EXPECT_TRUE(second.waitForLog(warning("channel test:jollyjet:events:product", third))) << second.log();
  EXPECT_TRUE(eventually([&] { return peersMetric(second) == 1; }));
}

TEST_F(PubsubPeersTest, AnExpiredPresenceIsDeletedAndNotReported) {
  // An instance killed without its goodbye, its time passed.
  redis_.command({"HSET", kHash, "gone-host-1", "1000"});
  redis_.command({"HSET", kHash, "odd-host-2", "not a time"});
  EvhostProcess host(config());
  ASSERT_TRUE(eventually([&] { return announced(host); })) << host.log();
  ASSERT_TRUE(eventually([&] { return redis_.command({"HLEN", kHash})->integer == 1; })) << host.log();
  EXPECT_EQ(peersMetric(host), 0);
  EXPECT_THAT(host.log(), Not(HasSubstr("another evhost")));
}

TEST_F(PubsubPeersTest, ARefusedPresenceCommandIsLoggedOnceAndEventsStillFlow) {
  // Allowed its channels and the recorder's key, not the presence hashes.
  auto r =
      redis_.command({"ACL",         "SETUSER",   "evh",   "on",    ">s3cret",    "resetchannels", "&test:jollyjet:*",
                      "&test:evh:*", "resetkeys", "~seen", "-@all", "+subscribe", "+psubscribe",   "+ping",
                      "+publish",    "+rpush",    "+auth", "+hset", "+hgetall",   "+hdel",         "+pexpire"});
  ASSERT_EQ(r->type, REDIS_REPLY_STATUS) << (r->str ? r->str : "");
  EvhostProcess host(config("  username: evh\n  password: s3cret\n"));
  ASSERT_TRUE(host.waitForLog("pub/sub peers: HSET " + std::string(kHash) + " failed: NOPERM")) << host.log();
  ASSERT_TRUE(reload(host)) << host.log();
  ASSERT_TRUE(reload(host)) << host.log();
  EXPECT_EQ(host.countInLog("pub/sub peers: HSET"), 1u) << host.log();
  EXPECT_TRUE(host.running());
  redis_.command({"PUBLISH", "test:jollyjet:events:product",
                  R"({"eventId":"a1","eventType":"PRODUCT_CREATED","timestamp":1,"payload":{}})"});
  EXPECT_TRUE(eventually([&] { return redis_.command({"LLEN", "seen"})->integer == 1; })) << host.log();

  // Allowed now: the next look goes through, and says so.
  redis_.command({"ACL", "SETUSER", "evh", "~test:evh:pubsub-*"});
  ASSERT_TRUE(reload(host)) << host.log();
  EXPECT_TRUE(host.waitForLog("pub/sub peers: Redis answers every presence command again")) << host.log();
  EXPECT_TRUE(announced(host));
}

}  // namespace
}  // namespace evh::test
