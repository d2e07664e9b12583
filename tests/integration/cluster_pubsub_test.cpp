// Sharded Pub/Sub (channels with `sharded: true`) on a real 3-master,
// 3-replica Redis Cluster (support/redis_cluster.h): each shard channel is
// read from its slot's master, over a subscriber connection of that slot's;
// SPUBLISH on the owning master reaches evhost once; a channel whose slot
// is migrated live is unsubscribed by Redis and subscribed again on the new
// owner, one whose master is killed on its promoted replica; evhctl publish sends SPUBLISH for a sharded channel.
#include "support/cluster_records.h"
#include "support/evhost_process.h"
#include "support/http_client.h"
#include "support/redis_cluster.h"
#include "support/redis_server.h"
#include "support/tested_binaries.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace evh::test {
namespace {

using ::testing::HasSubstr;

// A config with `channels` as shard channels (logical names; Redis channel
// "test:<name>"), every event to the recorder plugin pushing to `seen`.
std::string shardConfig(RedisCluster& cluster, const std::vector<std::string>& channels, const std::string& seen) {
  std::ostringstream y;
  y << "environment: test\n"
    << "redis:\n"
    << "  cluster: {nodes: " << cluster.nodesYaml() << "}\n"
    << "  reconnect: {initial_ms: 50, max_ms: 500}\n"
    << "  ping_interval_ms: 500\n"
    << "  ping_timeout_ms: 1000\n"
    << "retry: {max_attempts: 1}\n"
    << "plugins:\n  rec: {path: recorder, config: {key: \"" << seen << "\"}}\n"
    << "channels:\n";
  for (const auto& c : channels) {
    y << "  \"" << c << "\":\n    sharded: true\n    routes:\n      - events: \"*\"\n        plugins: [rec]\n";
  }
  return y.str();
}

// A logical channel name whose Redis channel ("test:" + name) hashes to a
// slot `master` owns.
std::string shardChannelOn(RedisCluster& cluster, RedisServer& master, const std::string& prefix) {
  return cluster.keyOn(master, "test:" + prefix).substr(5);
}

// SPUBLISH on the master owning the channel's slot; the receivers.
long long spublish(RedisCluster& cluster, const std::string& channel, const std::string& message) {
  ReplyPtr r = cluster.commandForKey(channel, {"SPUBLISH", channel, message});
  return r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
}

// The names of the connections /status lists.
std::set<std::string> connectionNames(const EvhostProcess& host) {
  std::set<std::string> out;
  const HttpResponse r = httpGet(opsUrl(host) + "/status");
  const nlohmann::json j = nlohmann::json::parse(r.body, nullptr, false);
  if (j.is_object() && j.contains("connections") && j["connections"].is_array()) {
    for (const auto& c : j["connections"]) {
      if (c.contains("name") && c["name"].is_string()) {
        out.insert(c["name"].get<std::string>());
      }
    }
  }
  return out;
}

TEST(ClusterPubSubTest, ShardChannelsOnEveryMasterAreEachReadFromTheirSlotsMaster) {
  RedisCluster cluster;
  std::vector<RedisServer*> masters = cluster.masters();
  const std::string seen = cluster.keyOn(*masters[0], "seen");
  std::vector<std::string> channels;
  for (size_t m = 0; m < masters.size(); ++m) {
    channels.push_back(shardChannelOn(cluster, *masters[m], "orders" + std::to_string(m)));
  }
  EvhostProcess host(shardConfig(cluster, channels, seen));
  ASSERT_TRUE(host.waitForLog("cluster slot map from")) << host.log();
  // One subscriber per slot of shard channels, beside the main one.
  std::set<std::string> expected{"subscriber"};
  for (const auto& c : channels) {
    expected.insert("subscriber slot " + std::to_string(cluster.keySlot("test:" + c)));
  }
  std::set<std::string> names;
  ASSERT_TRUE(eventually([&] {
    names = connectionNames(host);
    for (const auto& e : expected) {
      if (names.count(e) == 0) {
        return false;
      }
    }
    return true;
  })) << host.log();
  // Each subscribed on its own master: SPUBLISH there has one receiver.
  for (const auto& c : channels) {
    ASSERT_TRUE(eventually([&] { return spublish(cluster, "test:" + c, "{}") == 1; }))
        << "test:" << c << " has no shard subscriber on its master\n"
        << host.log();
  }
  std::set<std::string> ids;
  for (int n = 0; n < 30; ++n) {
    const std::string id = "s-" + std::to_string(n);
    const std::string& c = channels[static_cast<size_t>(n) % channels.size()];
    ASSERT_EQ(spublish(cluster, "test:" + c, clusterEvent(id)), 1) << host.log();
    ids.insert(id);
  }
  std::string problem;
  ASSERT_TRUE(eventually([&] { return recordedOnce(cluster, seen, ids, &problem); })) << problem << "\n" << host.log();
  // A classic PUBLISH of a shard channel's name reaches no shard subscriber.
  ReplyPtr classic = RedisCluster::command(*masters[0], {"PUBLISH", "test:" + channels[0], clusterEvent("classic")});
  ASSERT_TRUE(classic);
  EXPECT_EQ(classic->integer, 0);
}

TEST(ClusterPubSubTest, AShardChannelWhoseSlotMovesIsSubscribedAgainOnItsNewMaster) {
  RedisCluster cluster;
  std::vector<RedisServer*> masters = cluster.masters();
  const std::string seen = cluster.keyOn(*masters[2], "seen");
  const std::string channel = shardChannelOn(cluster, *masters[0], "moving");
  const std::string redis_channel = "test:" + channel;
  const uint16_t slot = cluster.keySlot(redis_channel);
  EvhostProcess host(shardConfig(cluster, {channel}, seen));
  ASSERT_TRUE(eventually([&] { return spublish(cluster, redis_channel, "{}") == 1; })) << host.log();
  std::set<std::string> ids;
  for (int n = 0; n < 10; ++n) {
    const std::string id = "before-" + std::to_string(n);
    ASSERT_EQ(spublish(cluster, redis_channel, clusterEvent(id)), 1);
    ids.insert(id);
  }
  std::string problem;
  ASSERT_TRUE(eventually([&] { return recordedOnce(cluster, seen, ids, &problem); })) << problem << "\n" << host.log();

  // The slot moves to the second master: Redis unsubscribes the channel on
  // the first, evhost's SSUBSCRIBE there meets MOVED and its connection
  // follows. Published meanwhile is lost (Pub/Sub keeps nothing): probes
  // until one is handled, then every event after it counts.
  cluster.migrateSlot(slot, *masters[0], *masters[1]);
  ASSERT_EQ(&cluster.masterForSlot(slot), masters[1]);
  int probe = 0;
  ASSERT_TRUE(eventually([&] {
    const std::string id = "probe-" + std::to_string(probe++);
    spublish(cluster, redis_channel, clusterEvent(id));
    const std::vector<std::string> got = recorded(cluster, seen);
    return std::find(got.begin(), got.end(), id) != got.end();
  })) << host.log();
  EXPECT_TRUE(host.waitForLog("Redis unsubscribed shard channel " + redis_channel)) << host.log();
  EXPECT_EQ(RedisCluster::command(*masters[1], {"PUBSUB", "SHARDNUMSUB", redis_channel})->element[1]->integer, 1)
      << "the new master has evhost's subscription";
  for (int n = 0; n < 10; ++n) {
    const std::string id = "after-" + std::to_string(n);
    ASSERT_EQ(spublish(cluster, redis_channel, clusterEvent(id)), 1);
    ids.insert(id);
  }
  ASSERT_TRUE(eventually([&] { return recordedOnce(cluster, seen, ids, &problem); })) << problem << "\n" << host.log();
}

TEST(ClusterPubSubTest, AKilledMastersShardChannelIsSubscribedOnItsPromotedReplica) {
  RedisCluster cluster;
  std::vector<RedisServer*> masters = cluster.masters();
  RedisServer& doomed = *masters[1];
  const std::string seen = cluster.keyOn(*masters[0], "seen");
  const std::string channel = shardChannelOn(cluster, doomed, "failover");
  const std::string redis_channel = "test:" + channel;
  EvhostProcess host(shardConfig(cluster, {channel}, seen));
  ASSERT_TRUE(eventually([&] { return spublish(cluster, redis_channel, "{}") == 1; })) << host.log();
  cluster.killMaster(doomed);
  RedisServer& promoted = cluster.waitForFailover(doomed);
  ASSERT_EQ(&cluster.masterForKey(redis_channel), &promoted);
  // The shard subscriber's connection follows the slot to the promoted
  // replica (the map's refresh, or the MOVED its SSUBSCRIBE meets).
  ASSERT_TRUE(eventually(
      [&] {
        return RedisCluster::command(promoted, {"PUBSUB", "SHARDNUMSUB", redis_channel})->element[1]->integer == 1;
      },
      std::chrono::seconds(30)))
      << host.log();
  std::set<std::string> ids;
  for (int n = 0; n < 10; ++n) {
    const std::string id = "after-" + std::to_string(n);
    ASSERT_EQ(spublish(cluster, redis_channel, clusterEvent(id)), 1);
    ids.insert(id);
  }
  std::string problem;
  ASSERT_TRUE(eventually([&] { return recordedOnce(cluster, seen, ids, &problem); })) << problem << "\n" << host.log();
  EXPECT_TRUE(host.waitForLog("pubsub gap")) << host.log();
}

// A reload adds a shard channel (its slot's subscriber is made, on that
// slot's master) and removes another (its subscriber goes with its last
// channel); then a clean stop.
TEST(ClusterPubSubTest, AReloadMakesAndClosesShardSubscribers) {
  RedisCluster cluster;
  std::vector<RedisServer*> masters = cluster.masters();
  const std::string seen = cluster.keyOn(*masters[0], "seen");
  const std::string first = shardChannelOn(cluster, *masters[1], "first");
  const std::string second = shardChannelOn(cluster, *masters[2], "second");
  const std::string first_sub = "subscriber slot " + std::to_string(cluster.keySlot("test:" + first));
  const std::string second_sub = "subscriber slot " + std::to_string(cluster.keySlot("test:" + second));
  EvhostProcess host(shardConfig(cluster, {first}, seen));
  ASSERT_TRUE(eventually([&] { return spublish(cluster, "test:" + first, "{}") == 1; })) << host.log();

  std::ofstream(host.configPath(), std::ios::trunc) << shardConfig(cluster, {second}, seen);
  host.signal(SIGHUP);
  ASSERT_TRUE(host.waitForLog("configuration reloaded from")) << host.log();
  ASSERT_TRUE(eventually([&] { return spublish(cluster, "test:" + second, clusterEvent("second-1")) == 1; }))
      << host.log();
  ASSERT_TRUE(eventually([&] { return recorded(cluster, seen).size() == 1; })) << host.log();
  EXPECT_EQ(spublish(cluster, "test:" + first, clusterEvent("first-1")), 0);
  std::set<std::string> names;
  ASSERT_TRUE(eventually([&] {
    names = connectionNames(host);
    return names.count(second_sub) == 1 && names.count(first_sub) == 0;
  })) << host.log();
  EXPECT_TRUE(host.waitForLog("redis " + first_sub + ": no shard channel left in its slot; closing it")) << host.log();
  host.signal(SIGTERM);
  EXPECT_EQ(host.waitExit(), std::optional<int>(0)) << host.log();
  EXPECT_THAT(host.log(), ::testing::Not(HasSubstr("Sanitizer"))) << host.log();
}

TEST(ClusterPubSubTest, EvhctlPublishSendsSpublishToAShardedChannel) {
  RedisCluster cluster;
  std::vector<RedisServer*> masters = cluster.masters();
  const std::string seen = cluster.keyOn(*masters[0], "seen");
  const std::string channel = shardChannelOn(cluster, *masters[1], "cli");
  EvhostProcess host(shardConfig(cluster, {channel}, seen));
  ASSERT_TRUE(eventually([&] { return spublish(cluster, "test:" + channel, "{}") == 1; })) << host.log();
  const auto [code, out] = runCommand({evhctlBin(), "publish", "--config", host.configPath(), "--channel", channel,
                                       "--type", "PRODUCT_CREATED", "--payload", R"({"productId":"p-9"})"});
  ASSERT_EQ(code, 0) << out;
  EXPECT_THAT(out, HasSubstr("1 receiver")) << out;
  ASSERT_TRUE(eventually([&] { return recorded(cluster, seen).size() == 1; })) << host.log();
}

}  // namespace
}  // namespace evh::test
