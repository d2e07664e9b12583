// A reload that changes the Redis settings, with the real evhost against
// real redis-servers: every connection (commands, subscriber, stream reader)
// leaves the old settings and reconnects with the new ones -- another
// server, a new password, TLS -- and events flow there; a reload that
// changes no redis.* key keeps every connection; TLS files that cannot be
// read refuse the reload, naming the key, the running settings kept.
#include "support/evhost_process.h"
#include "support/http_client.h"
#include "support/redis_server.h"
#include "support/tls_certs.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <signal.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>
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

// `redis`: the body of the redis section (indented two spaces).
std::string redisConfig(const std::string& redis) {
  return "environment: test\nredis:\n" + redis +
         "  connect_timeout_ms: 1000\n"
         "  reconnect: {initial_ms: 50, max_ms: 200}\n"
         R"(plugins:
  rec: {path: recorder}
channels:
  jollyjet:events:product:
    routes:
      - events: "*"
        plugins: [rec]
  jollyjet:events:orders:
    transport: stream
    stream: {group: g}
    routes:
      - events: "*"
        plugins: [rec]
)";
}

std::string plainConfig(uint16_t port, const std::string& more = "") {
  return "  host: 127.0.0.1\n  port: " + std::to_string(port) + "\n" + more;
}

void rewriteConfig(const EvhostProcess& host, const std::string& yaml) {
  std::ofstream(host.configPath(), std::ios::trunc) << yaml;
}

// Sends SIGHUP and waits for the reload's outcome line: true when applied.
bool reloadNow(EvhostProcess& host) {
  const size_t ok = host.countInLog("configuration reloaded from");
  const size_t failed = host.countInLog("reload failed");
  host.signal(SIGHUP);
  bool applied = false;
  eventually([&] {
    applied = host.countInLog("configuration reloaded from") > ok;
    return applied || host.countInLog("reload failed") > failed;
  });
  return applied;
}

bool isReady(const EvhostProcess& host) { return httpGet(opsUrl(host) + "/readyz").status == 200; }

// One event on the Pub/Sub channel and one on the stream, through `redis`;
// true once both are recorded there (the recorder writes through evhost's
// command connection: to whichever Redis evhost is connected to).
bool bothHandled(RedisServer& redis, const std::string& id) {
  const long long before = redis.command({"LLEN", "seen"})->integer;
  // Published until a subscriber hears it: the subscription may be just
  // being made again.
  const bool heard = eventually([&] {
    return redis.command({"PUBLISH", "test:jollyjet:events:product", event(id + "-p")})->integer >= 1;
  });
  redis.command({"XADD", "test:jollyjet:events:orders", "*", "event", event(id + "-s")});
  return heard && eventually([&] { return redis.command({"LLEN", "seen"})->integer >= before + 2; });
}

// The ids of the clients connected to `redis`, but for the test's own.
std::set<std::string> clients(RedisServer& redis) {
  const auto list = redis.command({"CLIENT", "LIST"});
  std::istringstream in(std::string(list->str, list->len));
  std::set<std::string> ids;
  for (std::string line; std::getline(in, line);) {
    if (line.find("cmd=client") == std::string::npos) {
      ids.insert(line.substr(0, line.find(' ')));
    }
  }
  return ids;
}

TEST(ReloadRedisTest, EveryConnectionMovesToAnotherServer) {
  RedisServer a;
  RedisServer b;
  EvhostProcess host(redisConfig(plainConfig(a.port())));
  ASSERT_TRUE(eventually([&] { return isReady(host); })) << host.log();
  ASSERT_TRUE(bothHandled(a, "on-a")) << host.log();
  const size_t on_a = clients(a).size();
  EXPECT_GE(on_a, 3u) << "commands, subscriber, stream reader";

  rewriteConfig(host, redisConfig(plainConfig(b.port())));
  ASSERT_TRUE(reloadNow(host)) << host.log();
  EXPECT_THAT(host.log(), HasSubstr("the Redis settings (redis.port: every connection reconnected) changed"));
  EXPECT_THAT(host.log(), HasSubstr("connection(s) reconnect to 127.0.0.1:" + std::to_string(b.port()) + " now"));
  ASSERT_TRUE(eventually([&] { return isReady(host); })) << host.log();
  ASSERT_TRUE(bothHandled(b, "on-b")) << host.log();
  // Nothing of evhost is left on the old server; as many on the new one.
  EXPECT_TRUE(eventually([&] { return clients(a).empty(); })) << host.log();
  EXPECT_EQ(clients(b).size(), on_a);
  const auto status = nlohmann::json::parse(httpGet(opsUrl(host) + "/status").body);
  EXPECT_EQ(status["reload"]["last"]["result"], "ok") << status.dump();
  EXPECT_THAT(status["reload"]["last"]["changed"].dump(), HasSubstr("redis.port")) << status.dump();
}

TEST(ReloadRedisTest, ANewPasswordIsUsedForEveryConnection) {
  RedisServer redis({"--requirepass", "first-pass-1"});
  // The test's own (cached) connection authenticates once: it stays so
  // after the password changes.
  ASSERT_EQ(std::string(redis.command({"AUTH", "first-pass-1"})->str), "OK");
  EvhostProcess host(redisConfig(plainConfig(redis.port(), "  password: first-pass-1\n")));
  ASSERT_TRUE(eventually([&] { return isReady(host); })) << host.log();
  const std::set<std::string> before = clients(redis);
  // The operator rotates the password: connections made with the old one
  // stay (Redis checks a password only at AUTH); new ones need the new.
  ASSERT_EQ(std::string(redis.command({"CONFIG", "SET", "requirepass", "second-pass-2"})->str), "OK");
  rewriteConfig(host, redisConfig(plainConfig(redis.port(), "  password: second-pass-2\n")));
  ASSERT_TRUE(reloadNow(host)) << host.log();
  EXPECT_THAT(host.log(), HasSubstr("the Redis settings (redis.password: every connection reconnected)"));
  ASSERT_TRUE(eventually([&] { return isReady(host); })) << host.log();
  ASSERT_TRUE(bothHandled(redis, "after")) << host.log();
  const std::set<std::string> after = clients(redis);
  for (const std::string& id : after) {
    EXPECT_EQ(before.count(id), 0u) << id << " is a connection made before the reload";
  }
  EXPECT_EQ(after.size(), before.size());
  EXPECT_THAT(host.log(), Not(HasSubstr("first-pass-1")));
  EXPECT_THAT(host.log(), Not(HasSubstr("second-pass-2")));
}

TEST(ReloadRedisTest, AReloadThatLeavesRedisAloneKeepsEveryConnection) {
  RedisServer redis;
  EvhostProcess host(redisConfig(plainConfig(redis.port())));
  ASSERT_TRUE(eventually([&] { return isReady(host); })) << host.log();
  ASSERT_TRUE(bothHandled(redis, "before")) << host.log();
  const std::set<std::string> before = clients(redis);
  std::string next = redisConfig(plainConfig(redis.port()));
  next.replace(next.find("plugins: [rec]"), 14, "plugins: [rec]\n        retry: {max_attempts: 5}");
  rewriteConfig(host, next);
  ASSERT_TRUE(reloadNow(host)) << host.log();
  EXPECT_THAT(host.log(), Not(HasSubstr("the Redis settings")));
  ASSERT_TRUE(bothHandled(redis, "after")) << host.log();
  EXPECT_EQ(clients(redis), before) << "the same connections, the Pub/Sub one included";
}

TEST(ReloadRedisTest, PlaintextToMutualTlsOnAReload) {
  TlsCerts certs;
  const uint16_t tls_port = freePort();
  RedisServer redis(certs.redisArgs(tls_port, true));
  EvhostProcess host(redisConfig(plainConfig(redis.port())));
  ASSERT_TRUE(eventually([&] { return isReady(host); })) << host.log();
  const size_t connections = clients(redis).size();

  const std::string tls = "  tls:\n    ca_file: " + certs.file("ca.crt") +
                          "\n    cert_file: " + certs.file("client.crt") +
                          "\n    key_file: " + certs.file("client.key") + "\n";
  rewriteConfig(host, redisConfig(plainConfig(tls_port, tls)));
  ASSERT_TRUE(reloadNow(host)) << host.log();
  EXPECT_THAT(host.log(), HasSubstr("redis.port, redis.tls: every connection reconnected"));
  ASSERT_TRUE(eventually([&] { return isReady(host); })) << host.log();
  ASSERT_TRUE(bothHandled(redis, "tls")) << host.log();
  // Every evhost connection is on the TLS port now.
  const auto list = redis.command({"CLIENT", "LIST"});
  const std::string text(list->str, list->len);
  size_t on_tls = 0;
  const std::string needle = "laddr=127.0.0.1:" + std::to_string(tls_port) + " ";
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    ++on_tls;
  }
  EXPECT_EQ(on_tls, connections) << text;
}

TEST(ReloadRedisTest, TlsFilesThatCannotBeReadRefuseTheReload) {
  RedisServer redis;
  EvhostProcess host(redisConfig(plainConfig(redis.port())));
  ASSERT_TRUE(eventually([&] { return isReady(host); })) << host.log();
  const std::set<std::string> before = clients(redis);
  rewriteConfig(host,
                redisConfig(plainConfig(redis.port(), "  tls:\n    ca_file: " + host.dir() + "/no-such-ca.crt\n")));
  ASSERT_FALSE(reloadNow(host)) << host.log();
  EXPECT_THAT(host.log(), HasSubstr("no-such-ca.crt"));
  EXPECT_THAT(host.log(), HasSubstr("the running configuration is kept"));
  ASSERT_TRUE(bothHandled(redis, "kept")) << host.log();
  EXPECT_EQ(clients(redis), before);
}

}  // namespace
}  // namespace evh::test
