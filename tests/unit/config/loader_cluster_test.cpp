// redis.cluster in the YAML: its keys and node forms, and each refusal --
// an address, a URL, Sentinel or a database beside it -- with its file:line
// and key.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/config.h"

namespace evh::config {
namespace {

using ::testing::HasSubstr;

LoadResult load(const std::string& yaml) {
  return loadString(yaml, "/etc/evhost/cfg.yaml", [](const std::string&) { return std::nullopt; });
}

std::string clusterErrors(const LoadResult& r) {
  std::string out;
  for (const auto& e : r.errors) {
    out += e + "\n";
  }
  return out.empty() ? "(none)" : out;
}

TEST(LoaderClusterTest, OffUnlessConfigured) {
  const LoadResult r = load("redis:\n  host: h\n");
  ASSERT_TRUE(r.config) << clusterErrors(r);
  EXPECT_FALSE(r.config->redis.cluster.enabled());
}

TEST(LoaderClusterTest, NodesRefreshAndCredentials) {
  const LoadResult r = load(R"(redis:
  username: app
  password: cluster-secret
  cluster:
    nodes: [10.0.0.1:7000, redis-2, "[::1]:7001"]
    refresh_interval_ms: 5000
)");
  ASSERT_TRUE(r.config) << clusterErrors(r);
  const Cluster& c = r.config->redis.cluster;
  EXPECT_TRUE(c.enabled());
  ASSERT_EQ(c.nodes.size(), 3U);
  EXPECT_EQ(c.nodes[0].host, "10.0.0.1");
  EXPECT_EQ(c.nodes[0].port, 7000);
  EXPECT_EQ(c.nodes[1].host, "redis-2");
  EXPECT_EQ(c.nodes[1].port, 6379);  // Redis's own default
  EXPECT_EQ(c.nodes[2].host, "::1");
  EXPECT_EQ(c.nodes[2].port, 7001);
  EXPECT_EQ(c.refresh_interval_ms, 5000U);
  EXPECT_EQ(c.origin.describe(), "/etc/evhost/cfg.yaml:4: redis.cluster");
  // Every node is spoken to with redis.*'s credentials.
  EXPECT_EQ(r.config->redis.username, "app");
  EXPECT_EQ(r.config->redis.password, "cluster-secret");
}

TEST(LoaderClusterTest, TheRefreshDefaultsToThirtySeconds) {
  const LoadResult r = load("redis:\n  cluster: {nodes: [n:1]}\n");
  ASSERT_TRUE(r.config) << clusterErrors(r);
  EXPECT_EQ(r.config->redis.cluster.refresh_interval_ms, 30000U);
}

TEST(LoaderClusterTest, AnAddressAUrlOrSentinelBesideTheClusterIsRefused) {
  LoadResult r = load("redis:\n  host: h\n  port: 6380\n  cluster: {nodes: [n:1]}\n");
  ASSERT_FALSE(r.config);
  EXPECT_THAT(clusterErrors(r), HasSubstr("cfg.yaml:2: redis.host: cannot be combined with redis.cluster"));
  EXPECT_THAT(clusterErrors(r), HasSubstr("cfg.yaml:3: redis.port: cannot be combined with redis.cluster"));
  r = load("redis:\n  url: redis://h:1\n  cluster: {nodes: [n:1]}\n");
  ASSERT_FALSE(r.config);
  EXPECT_THAT(clusterErrors(r), HasSubstr("cfg.yaml:2: redis.url: cannot be combined with redis.cluster"));
  r = load("redis:\n  cluster: {nodes: [n:1]}\n  sentinel: {master: m, nodes: [s:1]}\n");
  ASSERT_FALSE(r.config);
  EXPECT_THAT(clusterErrors(r), HasSubstr("cfg.yaml:3: redis.sentinel: cannot be combined with redis.cluster"));
}

TEST(LoaderClusterTest, AClusterHasDatabaseZeroOnly) {
  LoadResult r = load("redis:\n  db: 3\n  cluster: {nodes: [n:1]}\n");
  ASSERT_FALSE(r.config);
  EXPECT_THAT(clusterErrors(r), HasSubstr("cfg.yaml:2: redis.db: must be 0 with redis.cluster"));
  r = load("redis:\n  db: 0\n  cluster: {nodes: [n:1]}\n");
  EXPECT_TRUE(r.config) << clusterErrors(r);
}

TEST(LoaderClusterTest, MissingOrBadKeysAreNamed) {
  LoadResult r = load("redis:\n  cluster: {refresh_interval_ms: 5000}\n");
  ASSERT_FALSE(r.config);
  EXPECT_THAT(clusterErrors(r), HasSubstr("cfg.yaml:2: redis.cluster.nodes: is required"));
  r = load("redis:\n  cluster: {nodes: []}\n");
  EXPECT_THAT(clusterErrors(r), HasSubstr("redis.cluster.nodes: expected at least one cluster node"));
  r = load("redis:\n  cluster: {nodes: n:1}\n");
  EXPECT_THAT(clusterErrors(r), HasSubstr("redis.cluster.nodes: expected a list of cluster nodes as host:port"));
  r = load("redis:\n  cluster:\n    nodes:\n      - n:1\n      - n:70000\n      - n:1\n");
  EXPECT_THAT(clusterErrors(r),
              HasSubstr("cfg.yaml:5: redis.cluster.nodes[1]: invalid cluster node address \"n:70000\": "
                        "the port must be an integer in 1..65535"));
  EXPECT_THAT(clusterErrors(r), HasSubstr("cfg.yaml:6: redis.cluster.nodes[2]: \"n:1\" is listed twice"));
  r = load("redis:\n  cluster: {nodes: [n:1], refresh_interval_ms: 10}\n");
  EXPECT_THAT(clusterErrors(r), HasSubstr("redis.cluster.refresh_interval_ms"));
  r = load("redis:\n  cluster: {nodes: [n:1], node: x}\n");
  EXPECT_THAT(clusterErrors(r), HasSubstr("redis.cluster.node: unknown key"));
  r = load("redis:\n  cluster: [n:1]\n");
  EXPECT_THAT(clusterErrors(r), HasSubstr("redis.cluster"));
}

}  // namespace
}  // namespace evh::config
