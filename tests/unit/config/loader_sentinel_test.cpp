// redis.sentinel in the YAML: its keys and node forms, and each refusal
// with its file:line and key.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/config.h"

namespace evh::config {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

LoadResult loadSentinel(const std::string& yaml) {
  return loadString(yaml, "/etc/evhost/cfg.yaml", [](const std::string&) { return std::nullopt; });
}

std::string sentinelErrors(const LoadResult& r) {
  std::string out;
  for (const auto& e : r.errors) {
    out += e + "\n";
  }
  return out.empty() ? "(none)" : out;
}

TEST(LoaderSentinelTest, OffUnlessConfigured) {
  const LoadResult r = loadSentinel("redis:\n  host: h\n");
  ASSERT_TRUE(r.config) << sentinelErrors(r);
  EXPECT_FALSE(r.config->redis.sentinel.enabled());
}

TEST(LoaderSentinelTest, MasterNodesAndCredentials) {
  const LoadResult r = loadSentinel(R"(redis:
  password: master-secret
  db: 2
  sentinel:
    master: mymaster
    nodes: [10.0.0.1:26380, sentinel-2, "[::1]:26381", "[fe80::1]"]
    username: watcher
    password: sentinel-secret
)");
  ASSERT_TRUE(r.config) << sentinelErrors(r);
  const Sentinel& s = r.config->redis.sentinel;
  EXPECT_TRUE(s.enabled());
  EXPECT_EQ(s.master, "mymaster");
  ASSERT_EQ(s.nodes.size(), 4U);
  EXPECT_EQ(s.nodes[0].host, "10.0.0.1");
  EXPECT_EQ(s.nodes[0].port, 26380);
  EXPECT_EQ(s.nodes[1].host, "sentinel-2");
  EXPECT_EQ(s.nodes[1].port, 26379);  // Sentinel's own default
  EXPECT_EQ(s.nodes[2].host, "::1");
  EXPECT_EQ(s.nodes[2].port, 26381);
  EXPECT_EQ(s.nodes[3].host, "fe80::1");
  EXPECT_EQ(s.username, "watcher");
  EXPECT_EQ(s.password, "sentinel-secret");
  // The master's own settings stay redis.*'s.
  EXPECT_EQ(r.config->redis.password, "master-secret");
  EXPECT_EQ(r.config->redis.db, 2U);
  EXPECT_EQ(s.origin.describe(), "/etc/evhost/cfg.yaml:4: redis.sentinel");
}

TEST(LoaderSentinelTest, TheSentinelsSpeakAsRedisTlsSaysUnlessGivenTheirOwn) {
  LoadResult r = loadSentinel("redis:\n  tls: {verify: false}\n  sentinel: {master: m, nodes: [s:1]}\n");
  ASSERT_TRUE(r.config) << sentinelErrors(r);
  EXPECT_FALSE(r.config->redis.sentinel.own_tls);
  EXPECT_TRUE(r.config->redis.sentinelTls().enabled);
  r = loadSentinel("redis:\n  tls: {verify: false}\n  sentinel: {master: m, nodes: [s:1], tls: {enabled: false}}\n");
  ASSERT_TRUE(r.config) << sentinelErrors(r);
  EXPECT_TRUE(r.config->redis.tls.enabled);
  EXPECT_FALSE(r.config->redis.sentinelTls().enabled);
}

TEST(LoaderSentinelTest, AnAddressBesideTheSentinelsIsRefused) {
  LoadResult r = loadSentinel("redis:\n  host: h\n  port: 6380\n  sentinel: {master: m, nodes: [s:1]}\n");
  ASSERT_FALSE(r.config);
  EXPECT_THAT(sentinelErrors(r), HasSubstr("cfg.yaml:2: redis.host: cannot be combined with redis.sentinel"));
  EXPECT_THAT(sentinelErrors(r), HasSubstr("cfg.yaml:3: redis.port: cannot be combined with redis.sentinel"));
  r = loadSentinel("redis:\n  url: redis://h:1\n  sentinel: {master: m, nodes: [s:1]}\n");
  ASSERT_FALSE(r.config);
  EXPECT_THAT(sentinelErrors(r), HasSubstr("cfg.yaml:2: redis.url: cannot be combined with redis.sentinel"));
}

TEST(LoaderSentinelTest, MissingOrBadKeysAreNamed) {
  LoadResult r = loadSentinel("redis:\n  sentinel: {nodes: [s:1]}\n");
  ASSERT_FALSE(r.config);
  EXPECT_THAT(sentinelErrors(r), HasSubstr("cfg.yaml:2: redis.sentinel.master: is required"));
  r = loadSentinel("redis:\n  sentinel: {master: m}\n");
  EXPECT_THAT(sentinelErrors(r), HasSubstr("redis.sentinel.nodes: is required"));
  r = loadSentinel("redis:\n  sentinel: {master: m, nodes: []}\n");
  EXPECT_THAT(sentinelErrors(r), HasSubstr("redis.sentinel.nodes: expected at least one sentinel"));
  r = loadSentinel("redis:\n  sentinel: {master: m, nodes: s:1}\n");
  EXPECT_THAT(sentinelErrors(r), HasSubstr("redis.sentinel.nodes: expected a list of sentinels as host:port"));
  r = loadSentinel(
      "redis:\n  sentinel:\n    master: m\n    nodes:\n      - s:1\n      - s:0\n      - ::1:5\n      - s:1\n");
  EXPECT_THAT(sentinelErrors(r), HasSubstr("cfg.yaml:6: redis.sentinel.nodes[1]: invalid sentinel address \"s:0\": "
                                           "the port must be an integer in 1..65535"));
  EXPECT_THAT(sentinelErrors(r), HasSubstr("cfg.yaml:7: redis.sentinel.nodes[2]: invalid sentinel address \"::1:5\": "
                                           "an IPv6 address is written in brackets"));
  EXPECT_THAT(sentinelErrors(r), HasSubstr("cfg.yaml:8: redis.sentinel.nodes[3]: \"s:1\" is listed twice"));
  r = loadSentinel("redis:\n  sentinel: {master: m, nodes: [s:1], mastr: x}\n");
  EXPECT_THAT(sentinelErrors(r), HasSubstr("redis.sentinel.mastr: unknown key"));
  r = loadSentinel("redis:\n  sentinel: {master: m, nodes: [s:1], username: u}\n");
  EXPECT_THAT(sentinelErrors(r), HasSubstr("redis.sentinel.username: a user name needs a password"));
}

TEST(LoaderSentinelTest, NoMessageQuotesTheSentinelsPassword) {
  const LoadResult r = loadSentinel("redis:\n  sentinel: {master: m, nodes: [s:1], password: [hunter2secret]}\n");
  ASSERT_FALSE(r.config);
  EXPECT_THAT(sentinelErrors(r), Not(HasSubstr("hunter2secret")));
}

}  // namespace
}  // namespace evh::config
