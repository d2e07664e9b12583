// Tests of the Redis Cluster fixture (tests/support/redis_cluster.h) that
// evhost's cluster tests will stand on -- it comes up whole, moves a slot
// live (with -ASK mid-way), fails over when a master dies -- and of the
// host's cluster_slots.h against it: real CLUSTER SHARDS and SLOTS replies,
// real redirects, CLUSTER KEYSLOT's own answers.
#include "redis/cluster_slots.h"
#include "support/redis_cluster.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace evh::test {
namespace {

class ClusterFixtureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto start = std::chrono::steady_clock::now();
    cluster_ = std::make_unique<RedisCluster>();
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
    std::printf("cluster up in %lld ms\n", static_cast<long long>(took.count()));  // information, not a bound
  }

  std::string moved(uint16_t slot, const RedisServer& to) {
    return "MOVED " + std::to_string(slot) + " 127.0.0.1:" + std::to_string(to.port());
  }

  std::unique_ptr<RedisCluster> cluster_;
};

TEST_F(ClusterFixtureTest, ComesUpWithThreeMastersEachWithAReplica) {
  RedisCluster& c = *cluster_;
  const std::vector<RedisServer*> masters = c.masters();
  ASSERT_EQ(masters.size(), 3U);
  std::set<const RedisServer*> replicas;
  for (RedisServer* m : masters) {
    RedisServer& r = c.replicaOf(*m);
    EXPECT_EQ(masters.end(), std::find(masters.begin(), masters.end(), &r));
    replicas.insert(&r);
    ReplyPtr role = RedisCluster::command(r, {"ROLE"});
    ASSERT_TRUE(role && role->type == REDIS_REPLY_ARRAY && role->elements >= 3);
    EXPECT_EQ(std::string(role->element[0]->str, role->element[0]->len), "slave");
    EXPECT_EQ(role->element[2]->integer, m->port());
  }
  EXPECT_EQ(replicas.size(), 3U);
  for (size_t i = 0; i < RedisCluster::kNodes; ++i) {
    const std::string info = replyText(RedisCluster::command(c.node(i), {"CLUSTER", "INFO"}));
    EXPECT_NE(info.find("cluster_state:ok"), std::string::npos) << info;
    EXPECT_NE(info.find("cluster_slots_ok:16384"), std::string::npos) << info;
    EXPECT_NE(info.find("cluster_known_nodes:6"), std::string::npos) << info;
  }
  EXPECT_EQ(c.nodesYaml(), "[127.0.0.1:" + std::to_string(masters[0]->port()) +
                               ", 127.0.0.1:" + std::to_string(masters[1]->port()) +
                               ", 127.0.0.1:" + std::to_string(masters[2]->port()) + "]");
  const std::string all = c.nodesYaml(RedisCluster::Which::All);
  EXPECT_EQ(std::count(all.begin(), all.end(), ':'), 6) << all;

  // A key on each master: written there, refused with MOVED elsewhere, and
  // readable from that master's replica.
  for (RedisServer* m : masters) {
    const std::string key = c.keyOn(*m);
    EXPECT_EQ(&c.masterForKey(key), m);
    EXPECT_EQ(replyText(c.commandForKey(key, {"SET", key, "v"})), "OK");
    for (RedisServer* other : masters) {
      if (other != m) {
        EXPECT_EQ(replyText(RedisCluster::command(*other, {"GET", key})), moved(c.keySlot(key), *m));
      }
    }
    RedisConn replica = c.replicaOf(*m).connect();
    EXPECT_EQ(replyText(ReplyPtr(static_cast<redisReply*>(redisCommand(replica.get(), "READONLY")))), "OK");
    EXPECT_TRUE(eventually([&] {
      ReplyPtr r(static_cast<redisReply*>(redisCommand(replica.get(), "GET %s", key.c_str())));
      return replyText(r) == "v";
    }));
  }
}

TEST_F(ClusterFixtureTest, LiveMigrationMovesTheKeysAndAsksMidWay) {
  RedisCluster& c = *cluster_;
  const std::vector<std::string> keys = {"{mig}:1", "{mig}:2", "{mig}:3", "{mig}:4", "{mig}:5"};
  const uint16_t slot = c.keySlot(keys[0]);
  RedisServer& from = c.masterForSlot(slot);
  RedisServer& to = *c.masters()[c.masters()[0] == &from ? 1 : 0];
  for (const auto& k : keys) {
    ASSERT_EQ(c.keySlot(k), slot);
    ASSERT_EQ(replyText(RedisCluster::command(from, {"SET", k, "v" + k})), "OK");
  }

  c.beginMigration(slot, from, to);
  EXPECT_EQ(c.moveKeys(slot, from, to, {keys[0]}), 1U);
  // Mid-way: the source serves what it still has, and sends ASK for what it
  // has not (moved, or never there); the target serves a moved key only
  // after ASKING, and sends everyone else back to the owner.
  const std::string ask = "ASK " + std::to_string(slot) + " 127.0.0.1:" + std::to_string(to.port());
  EXPECT_EQ(replyText(RedisCluster::command(from, {"GET", keys[0]})), ask);
  EXPECT_EQ(replyText(RedisCluster::command(from, {"GET", "{mig}:never"})), ask);
  EXPECT_EQ(replyText(RedisCluster::command(from, {"GET", keys[1]})), "v" + keys[1]);
  EXPECT_EQ(replyText(RedisCluster::command(to, {"GET", keys[0]})), moved(slot, from));
  RedisConn asking = to.connect();
  EXPECT_EQ(replyText(ReplyPtr(static_cast<redisReply*>(redisCommand(asking.get(), "ASKING")))), "OK");
  EXPECT_EQ(replyText(ReplyPtr(static_cast<redisReply*>(redisCommand(asking.get(), "GET %s", keys[0].c_str())))),
            "v" + keys[0]);
  // The redirect parses as the host will read it.
  const auto redirect = evh::redis::parseRedirect(replyText(RedisCluster::command(from, {"GET", keys[0]})));
  ASSERT_TRUE(redirect);
  EXPECT_EQ(redirect->kind, evh::redis::Redirect::Ask);
  EXPECT_EQ(redirect->slot, slot);
  EXPECT_EQ(redirect->to, (evh::redis::Address{"127.0.0.1", to.port()}));

  EXPECT_EQ(c.moveKeys(slot, from, to), 4U);
  c.finishMigration(slot, from, to);
  EXPECT_EQ(&c.masterForSlot(slot), &to);
  for (const auto& k : keys) {
    EXPECT_EQ(replyText(RedisCluster::command(to, {"GET", k})), "v" + k);
    EXPECT_EQ(replyText(RedisCluster::command(from, {"GET", k})), moved(slot, to));
  }
  ReplyPtr left = RedisCluster::command(from, {"CLUSTER", "COUNTKEYSINSLOT", std::to_string(slot)});
  ASSERT_TRUE(left && left->type == REDIS_REPLY_INTEGER);
  EXPECT_EQ(left->integer, 0);

  // And the one-call form moves it back.
  c.migrateSlot(slot, to, from);
  EXPECT_EQ(&c.masterForSlot(slot), &from);
  EXPECT_EQ(replyText(RedisCluster::command(from, {"GET", keys[4]})), "v" + keys[4]);
}

TEST_F(ClusterFixtureTest, KillingAMasterPromotesItsReplica) {
  RedisCluster& c = *cluster_;
  RedisServer& old = *c.masters()[1];
  RedisServer& replica = c.replicaOf(old);
  const std::string key = c.keyOn(old);
  ASSERT_EQ(replyText(RedisCluster::command(old, {"SET", key, "kept"})), "OK");
  ASSERT_EQ(replyText(RedisCluster::command(old, {"WAIT", "1", "5000"})), "(integer) 1");  // the replica has it

  c.killMaster(old);
  RedisServer& promoted = c.waitForFailover(old);
  EXPECT_EQ(&promoted, &replica);
  EXPECT_EQ(&c.masterForKey(key), &promoted);
  EXPECT_EQ(replyText(RedisCluster::command(promoted, {"GET", key})), "kept");
  EXPECT_EQ(c.masters().size(), 3U);
  RedisServer& other = *c.masters()[c.masters()[0] == &promoted ? 1 : 0];
  EXPECT_EQ(replyText(RedisCluster::command(other, {"GET", key})), moved(c.keySlot(key), promoted));

  // CLUSTER SHARDS now lists the dead master as a shard of its own, without
  // slots: the map loads it, and routes to the promoted replica.
  redis::SlotMap map;
  std::string error;
  ASSERT_TRUE(map.loadShards(RedisCluster::command(promoted, {"CLUSTER", "SHARDS"}).get(), error)) << error;
  EXPECT_TRUE(map.complete());
  EXPECT_EQ(map.masterFor(c.keySlot(key))->id, c.id(promoted));
  EXPECT_EQ(map.masters().size(), 3U);
  EXPECT_EQ(map.nodes().size(), 4U);

  // Back from the dead (its nodes.conf kept), the old master rejoins as the
  // replica of the one that replaced it.
  old.restart();
  ASSERT_TRUE(c.waitStable()) << c.why();
  EXPECT_EQ(&c.replicaOf(promoted), &old);
}

TEST_F(ClusterFixtureTest, SlotMapAgreesWithTheRealCluster) {
  RedisCluster& c = *cluster_;
  std::vector<std::string> keys = {"foo", "bar", "{user1000}.following", "", "a{b}c", "{}x"};
  for (RedisServer* m : c.masters()) {
    keys.push_back(c.keyOn(*m, "evh"));
  }
  for (const auto& k : keys) {
    EXPECT_EQ(redis::keySlot(k), c.keySlot(k)) << k;
  }

  redis::SlotMap shards;
  redis::SlotMap slots;
  std::string error;
  ASSERT_TRUE(shards.loadShards(RedisCluster::command(c.node(0), {"CLUSTER", "SHARDS"}).get(), error)) << error;
  ASSERT_TRUE(slots.loadSlots(RedisCluster::command(c.node(1), {"CLUSTER", "SLOTS"}).get(), error)) << error;
  for (const redis::SlotMap* map : {&shards, &slots}) {
    EXPECT_TRUE(map->complete());
    EXPECT_EQ(map->masters().size(), 3U);
    for (const auto& k : keys) {
      const redis::SlotMap::Node* node = map->masterFor(redis::keySlot(k));
      ASSERT_NE(node, nullptr) << k;
      RedisServer& owner = c.masterForKey(k);
      EXPECT_EQ(node->address, (redis::Address{"127.0.0.1", owner.port()})) << k;
      EXPECT_EQ(node->id, c.id(owner)) << k;
      ASSERT_EQ(node->replicas.size(), 1U) << k;
      EXPECT_EQ(node->replicas[0].address, (redis::Address{"127.0.0.1", c.replicaOf(owner).port()})) << k;
      EXPECT_EQ(node->replicas[0].id, c.id(c.replicaOf(owner))) << k;
    }
  }
  EXPECT_EQ(shards.masterFor(0)->replicas[0].health, "online");

  // Once a slot has moved, its old owner answers MOVED: the map follows
  // that one slot, and a fresh CLUSTER SHARDS agrees.
  const uint16_t slot = redis::keySlot("foo");
  RedisServer& from = c.masterForSlot(slot);
  RedisServer& to = *c.masters()[c.masters()[0] == &from ? 1 : 0];
  c.migrateSlot(slot, from, to);
  const auto redirect = redis::parseRedirect(replyText(RedisCluster::command(from, {"GET", "foo"})));
  ASSERT_TRUE(redirect);
  EXPECT_EQ(redirect->kind, redis::Redirect::Moved);
  shards.moved(redirect->slot, redirect->to);
  EXPECT_EQ(shards.masterFor(slot)->id, c.id(to));
  EXPECT_EQ(shards.masterFor(slot - 1)->id, c.id(c.masterForSlot(static_cast<uint16_t>(slot - 1))));
  ASSERT_TRUE(shards.loadShards(RedisCluster::command(c.node(2), {"CLUSTER", "SHARDS"}).get(), error)) << error;
  EXPECT_EQ(shards.version(), 2U);
  EXPECT_EQ(shards.masterFor(slot)->id, c.id(to));
  EXPECT_EQ(shards.masters().size(), 3U);
  EXPECT_TRUE(shards.complete());
}

}  // namespace
}  // namespace evh::test
