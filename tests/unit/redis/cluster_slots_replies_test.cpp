// Tests of loading Redis Cluster's slot map (redis/cluster_slots.h) from
// CLUSTER SHARDS and CLUSTER SLOTS replies that hiredis's own reader parses
// from RESP bytes: the shapes a redis-server 7.0.15 cluster sent (hostnames,
// "?", unknown endpoints, TLS ports, older servers), then broken in every
// way we could think of -- each refused with a text saying what and where.
#include "redis/cluster_slots.h"

#include "support/resp.h"

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

namespace evh::redis {
namespace {

using namespace evh::test::resp;

std::string id(char c) { return std::string(40, c); }

// A CLUSTER SHARDS node in 7.0.15's order (without a hostname).
std::string shardNode(char id_char, long long port, const std::string& role, const std::string& endpoint = "127.0.0.1",
                      const std::string& health = "online") {
  return arr({bulk("id"), bulk(id(id_char)), bulk("port"), num(port), bulk("ip"), bulk("127.0.0.1"), bulk("endpoint"),
              bulk(endpoint), bulk("role"), bulk(role), bulk("replication-offset"), num(56), bulk("health"),
              bulk(health)});
}
std::string shard(const std::string& slots, const std::string& nodes) {
  return arr({bulk("slots"), slots, bulk("nodes"), nodes});
}

// Three shards as `redis-cli --cluster create` deals the slots, listed in
// the order the node answering gave them.
const std::string kShards = arr({
    shard(arr({num(10923), num(16383)}), arr({shardNode('c', 7003, "master"), shardNode('f', 7005, "replica")})),
    shard(arr({num(5461), num(10922)}), arr({shardNode('b', 7002, "master"), shardNode('e', 7004, "replica")})),
    shard(arr({num(0), num(5460)}),
          arr({shardNode('a', 7001, "master"), shardNode('d', 7006, "replica", "127.0.0.1", "loading")})),
});

class ClusterRepliesTest : public ::testing::Test {
 protected:
  // The reply `text` holds, kept alive until the next call.
  const redisReply* load(const std::string& text) {
    reply_ = parse(text);
    EXPECT_NE(reply_, nullptr) << text;
    return reply_.get();
  }
  // The error a load of `text` gives ("" if it loads), checking that a
  // failed load leaves the map alone.
  std::string shardsError(const std::string& text, SlotMap::Transport t = SlotMap::Transport::Plain) {
    SlotMap map;
    std::string error;
    if (map.loadShards(load(text), error, t)) {
      return "";
    }
    EXPECT_EQ(map.version(), 0U);
    EXPECT_EQ(map.masterFor(0), nullptr);
    return error;
  }
  std::string slotsError(const std::string& text) {
    SlotMap map;
    std::string error;
    if (map.loadSlots(load(text), error)) {
      return "";
    }
    EXPECT_EQ(map.version(), 0U);
    return error;
  }

  ReplyPtr reply_{nullptr, freeReplyObject};
};

TEST_F(ClusterRepliesTest, ShardsOfAHealthyCluster) {
  SlotMap map;
  std::string error;
  ASSERT_TRUE(map.loadShards(load(kShards), error)) << error;
  EXPECT_EQ(map.version(), 1U);
  EXPECT_TRUE(map.complete());
  const SlotMap::Node* a = map.masterFor(0);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->id, id('a'));
  EXPECT_EQ(a->address, (Address{"127.0.0.1", 7001}));
  ASSERT_EQ(a->replicas.size(), 1U);
  EXPECT_EQ(a->replicas[0].id, id('d'));
  EXPECT_EQ(a->replicas[0].address, (Address{"127.0.0.1", 7006}));
  EXPECT_EQ(a->replicas[0].health, "loading");
  EXPECT_EQ(map.masterFor(5460), a);
  EXPECT_EQ(map.masterFor(5461)->id, id('b'));
  EXPECT_EQ(map.masterFor(keySlot("foo"))->id, id('c'));
  EXPECT_EQ(map.masterFor(16383)->id, id('c'));
  EXPECT_EQ(map.masterFor(16384), nullptr);
  EXPECT_EQ(map.masters(), (std::vector<Address>{{"127.0.0.1", 7001}, {"127.0.0.1", 7002}, {"127.0.0.1", 7003}}));
  EXPECT_EQ(map.nodes().size(), 3U);
  ASSERT_TRUE(map.loadShards(load(kShards), error));
  EXPECT_EQ(map.version(), 2U);
}

TEST_F(ClusterRepliesTest, ShardsEndpointsAndPorts) {
  SlotMap map;
  std::string error;
  const std::string with = arr({shard(
      arr({num(0), num(16383)}), arr({shardNode('a', 7001, "master", "node1.local"),
                                      shardNode('b', 7002, "replica", "?"), shardNode('c', 7003, "replica", "")}))});
  ASSERT_TRUE(map.loadShards(load(with), error)) << error;
  const SlotMap::Node* a = map.masterFor(100);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->address.host, "node1.local");            // the preferred endpoint
  EXPECT_EQ(a->replicas[0].address.host, "127.0.0.1");  // "?": no hostname, so its ip
  EXPECT_EQ(a->replicas[1].address.host, "");           // unknown-endpoint: the caller's host

  // tls-cluster yes: "tls-port" beside "port", or alone.
  const std::string both = arr({shard(arr({num(0), num(16383)}),
                                      arr({arr({bulk("id"), bulk(id('a')), bulk("port"), num(7001), bulk("tls-port"),
                                                num(8001), bulk("ip"), bulk("::1"), bulk("role"), bulk("master")})}))});
  ASSERT_TRUE(map.loadShards(load(both), error)) << error;
  EXPECT_EQ(map.masterFor(1)->address, (Address{"::1", 7001}));  // no endpoint field: the ip
  ASSERT_TRUE(map.loadShards(load(both), error, SlotMap::Transport::Tls)) << error;
  EXPECT_EQ(map.masterFor(1)->address, (Address{"::1", 8001}));
  const std::string tls_only =
      arr({shard(arr({num(0), num(16383)}), arr({arr({bulk("id"), bulk(id('a')), bulk("tls-port"), num(8001),
                                                      bulk("ip"), bulk("h"), bulk("role"), bulk("master")})}))});
  ASSERT_TRUE(map.loadShards(load(tls_only), error, SlotMap::Transport::Tls)) << error;
  EXPECT_EQ(map.masterFor(1)->address, (Address{"h", 8001}));
  EXPECT_EQ(shardsError(tls_only), "CLUSTER SHARDS: shard 0: node 0: no port, only a tls-port (the cluster wants TLS)");
}

TEST_F(ClusterRepliesTest, ShardsWithGapsEmptyShardsAndOrphans) {
  SlotMap map;
  std::string error;
  const std::string partial = arr({
      shard(arr({num(0), num(99), num(200), num(200)}), arr({shardNode('a', 7001, "master")})),
      shard(arr({}), arr({shardNode('b', 7002, "master")})),   // a master with no slots (all moved away)
      shard(arr({}), arr({shardNode('c', 7003, "replica")})),  // replicas of nobody: skipped
  });
  ASSERT_TRUE(map.loadShards(load(partial), error)) << error;
  EXPECT_FALSE(map.complete());
  EXPECT_EQ(map.masterFor(99)->id, id('a'));
  EXPECT_EQ(map.masterFor(100), nullptr);
  EXPECT_EQ(map.masterFor(200)->id, id('a'));
  EXPECT_EQ(map.masters(), (std::vector<Address>{{"127.0.0.1", 7001}}));
  EXPECT_EQ(map.nodes().size(), 2U);
  ASSERT_TRUE(map.loadShards(load(arr({})), error));
  EXPECT_EQ(map.masterFor(0), nullptr);
  EXPECT_TRUE(map.masters().empty());
}

TEST_F(ClusterRepliesTest, MalformedShardsAreRefusedSayingWhere) {
  const std::string ok_node = shardNode('a', 7001, "master");
  const std::string slots = arr({num(0), num(16383)});
  auto node_with = [](std::initializer_list<std::string> fields) {
    return arr({shard(arr({num(0), num(1)}), arr({arr(fields)}))});
  };
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"-ERR unknown subcommand 'SHARDS'\r\n", "CLUSTER SHARDS: error reply: ERR unknown subcommand 'SHARDS'"},
      {":1\r\n", "CLUSTER SHARDS: not an array"},
      {kNil, "CLUSTER SHARDS: not an array"},
      {arr({num(1)}), "CLUSTER SHARDS: shard 0: not an array"},
      {arr({arr({bulk("slots")})}), "CLUSTER SHARDS: shard 0: an odd number of elements (1), not key/value pairs"},
      {arr({arr({num(1), slots})}), "CLUSTER SHARDS: shard 0: element 0 is not a key"},
      {arr({arr({bulk("nodes"), arr({ok_node})})}), "CLUSTER SHARDS: shard 0: no slots"},
      {arr({shard(num(0), arr({ok_node}))}), "CLUSTER SHARDS: shard 0: slots is not an array"},
      {arr({arr({bulk("slots"), slots})}), "CLUSTER SHARDS: shard 0: no nodes"},
      {arr({shard(slots, bulk("x"))}), "CLUSTER SHARDS: shard 0: nodes is not an array"},
      {arr({shard(arr({num(0)}), arr({ok_node}))}),
       "CLUSTER SHARDS: shard 0: slots has an odd number of elements (1), not start/end pairs"},
      {arr({shard(arr({num(0), bulk("9")}), arr({ok_node}))}),
       "CLUSTER SHARDS: shard 0: slots: slot range end is not an integer"},
      {arr({shard(arr({num(-1), num(5)}), arr({ok_node}))}),
       "CLUSTER SHARDS: shard 0: slots: slot range start -1 is out of range (0 to 16383)"},
      {arr({shard(arr({num(0), num(16384)}), arr({ok_node}))}),
       "CLUSTER SHARDS: shard 0: slots: slot range end 16384 is out of range (0 to 16383)"},
      {arr({shard(arr({num(9), num(3)}), arr({ok_node}))}),
       "CLUSTER SHARDS: shard 0: slots: range 9-3 ends before it starts"},
      {arr({shard(slots, arr({ok_node})), shard(arr({num(5), num(5)}), arr({shardNode('b', 7002, "master")}))}),
       "CLUSTER SHARDS: shard 1: slot 5 is claimed twice"},
      {arr({shard(slots, arr({shardNode('b', 7002, "replica")}))}), "CLUSTER SHARDS: shard 0: slots but no master"},
      {arr({shard(slots, arr({ok_node, shardNode('b', 7002, "master")}))}),
       "CLUSTER SHARDS: shard 0: node 1: a second master"},
      {arr({shard(slots, arr({num(1)}))}), "CLUSTER SHARDS: shard 0: node 0: not an array"},
      {node_with({bulk("port"), num(1), bulk("role"), bulk("master")}), "CLUSTER SHARDS: shard 0: node 0: no id"},
      {node_with({bulk("id"), num(1)}), "CLUSTER SHARDS: shard 0: node 0: id is not a string"},
      {node_with({bulk("id"), bulk("")}), "CLUSTER SHARDS: shard 0: node 0: id is empty"},
      {node_with({bulk("id"), bulk("x"), bulk("port"), num(1)}), "CLUSTER SHARDS: shard 0: node 0: no role"},
      {node_with({bulk("id"), bulk("x"), bulk("role"), bulk("leader")}),
       "CLUSTER SHARDS: shard 0: node 0: role is not \"master\" or \"replica\""},
      {node_with({bulk("id"), bulk("x"), bulk("role"), bulk("master"), bulk("ip"), bulk("h")}),
       "CLUSTER SHARDS: shard 0: node 0: no port"},
      {node_with({bulk("id"), bulk("x"), bulk("role"), bulk("master"), bulk("port"), bulk("7001")}),
       "CLUSTER SHARDS: shard 0: node 0: port is not an integer"},
      {node_with({bulk("id"), bulk("x"), bulk("role"), bulk("master"), bulk("port"), num(0)}),
       "CLUSTER SHARDS: shard 0: node 0: port 0 is out of range (1 to 65535)"},
      {node_with({bulk("id"), bulk("x"), bulk("role"), bulk("master"), bulk("port"), num(65536)}),
       "CLUSTER SHARDS: shard 0: node 0: port 65536 is out of range (1 to 65535)"},
      {node_with({bulk("id"), bulk("x"), bulk("role"), bulk("master"), bulk("port"), num(1)}),
       "CLUSTER SHARDS: shard 0: node 0: no endpoint or ip"},
      {node_with(
           {bulk("id"), bulk("x"), bulk("role"), bulk("master"), bulk("port"), num(1), bulk("endpoint"), bulk("?")}),
       "CLUSTER SHARDS: shard 0: node 0: endpoint is \"?\" (no hostname announced) and no ip is given"},
      {node_with(
           {bulk("id"), bulk("x"), bulk("role"), bulk("master"), bulk("port"), num(1), bulk("endpoint"), arr({})}),
       "CLUSTER SHARDS: shard 0: node 0: endpoint is not a string"},
      {node_with({bulk("id"), bulk("x"), bulk("role"), bulk("master"), bulk("port"), num(1), bulk("ip"), num(1)}),
       "CLUSTER SHARDS: shard 0: node 0: ip is not a string"},
      {node_with({bulk("id"), bulk("x"), bulk("role"), bulk("master"), bulk("port"), num(1), bulk("ip"), bulk("h"),
                  bulk("health"), num(1)}),
       "CLUSTER SHARDS: shard 0: node 0: health is not a string"},
  };
  for (const auto& [resp, expected] : cases) {
    EXPECT_EQ(shardsError(resp), expected) << resp;
  }
  // And the map a failed load leaves is the one before it.
  SlotMap map;
  std::string error;
  ASSERT_TRUE(map.loadShards(load(kShards), error));
  EXPECT_FALSE(map.loadShards(load(cases.back().first), error));
  EXPECT_EQ(map.version(), 1U);
  EXPECT_TRUE(map.complete());
  EXPECT_FALSE(map.loadShards(nullptr, error));
  EXPECT_EQ(error, "CLUSTER SHARDS: no reply");
}

TEST_F(ClusterRepliesTest, SlotsEndpointsRangesAndOlderShapes) {
  SlotMap map;
  std::string error;
  // A master owning two ranges is one node (by id); its replicas, listed in
  // each range, are kept once. Endpoints: a hostname, "?" with the ip in the
  // metadata, a null (unknown-endpoint); before 7.0 no metadata, before 4.0
  // no id either (then the address says which node it is).
  const std::string resp = arr({
      arr({num(0), num(9), arr({bulk("node1.local"), num(7001), bulk("a"), arr({bulk("ip"), bulk("10.0.0.1")})}),
           arr({bulk("?"), num(7004), bulk("d"), arr({bulk("ip"), bulk("10.0.0.4")})})}),
      arr({num(10), num(19), arr({kNil, num(7002), bulk("b"), arr({})})}),
      arr({num(20), num(29), arr({bulk("node1.local"), num(7001), bulk("a"), arr({})}),
           arr({bulk("?"), num(7004), bulk("d"), arr({bulk("ip"), bulk("10.0.0.4")})})}),
      arr({num(30), num(39), arr({bulk("10.0.0.3"), num(7003), bulk("c")})}),
      arr({num(40), num(49), arr({bulk("10.0.0.5"), num(7005)}), arr({bulk("10.0.0.6"), num(7006)})}),
      arr({num(50), num(59), arr({bulk("10.0.0.5"), num(7005)}), arr({bulk("10.0.0.6"), num(7006)})}),
  });
  ASSERT_TRUE(map.loadSlots(load(resp), error)) << error;
  EXPECT_EQ(map.nodes().size(), 4U);
  const SlotMap::Node* a = map.masterFor(25);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(map.masterFor(0), a);
  EXPECT_EQ(a->address, (Address{"node1.local", 7001}));
  ASSERT_EQ(a->replicas.size(), 1U);
  EXPECT_EQ(a->replicas[0].address, (Address{"10.0.0.4", 7004}));
  EXPECT_EQ(map.masterFor(15)->address, (Address{"", 7002}));
  EXPECT_EQ(map.masterFor(35)->id, "c");
  EXPECT_EQ(map.masterFor(55), map.masterFor(45));
  EXPECT_EQ(map.masterFor(55)->id, "");
  EXPECT_EQ(map.masterFor(55)->replicas.size(), 1U);
  EXPECT_EQ(map.masterFor(60), nullptr);
  EXPECT_FALSE(map.complete());
}

TEST_F(ClusterRepliesTest, MalformedSlotsAreRefusedSayingWhere) {
  const std::string master = arr({bulk("h"), num(7001), bulk("a"), arr({})});
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"-ERR This instance has cluster support disabled\r\n",
       "CLUSTER SLOTS: error reply: ERR This instance has cluster support disabled"},
      {bulk("x"), "CLUSTER SLOTS: not an array"},
      {arr({bulk("x")}), "CLUSTER SLOTS: range 0: not an array of at least a start, an end and a master"},
      {arr({arr({num(0), num(1)})}), "CLUSTER SLOTS: range 0: not an array of at least a start, an end and a master"},
      {arr({arr({bulk("0"), num(1), master})}), "CLUSTER SLOTS: range 0: start is not an integer"},
      {arr({arr({num(0), num(16384), master})}), "CLUSTER SLOTS: range 0: end 16384 is out of range (0 to 16383)"},
      {arr({arr({num(-5), num(1), master})}), "CLUSTER SLOTS: range 0: start -5 is out of range (0 to 16383)"},
      {arr({arr({num(2), num(1), master})}), "CLUSTER SLOTS: range 0: range 2-1 ends before it starts"},
      {arr({arr({num(0), num(5), master}), arr({num(5), num(9), arr({bulk("h"), num(7002)})})}),
       "CLUSTER SLOTS: range 1: slot 5 is claimed twice"},
      {arr({arr({num(0), num(1), num(7)})}),
       "CLUSTER SLOTS: range 0: master: not an array of at least an endpoint and a port"},
      {arr({arr({num(0), num(1), arr({bulk("h")})})}),
       "CLUSTER SLOTS: range 0: master: not an array of at least an endpoint and a port"},
      {arr({arr({num(0), num(1), arr({bulk("h"), bulk("7001")})})}),
       "CLUSTER SLOTS: range 0: master: port is not an integer"},
      {arr({arr({num(0), num(1), arr({bulk("h"), num(0)})})}),
       "CLUSTER SLOTS: range 0: master: port 0 is out of range (1 to 65535)"},
      {arr({arr({num(0), num(1), arr({bulk("h"), num(70000)})})}),
       "CLUSTER SLOTS: range 0: master: port 70000 is out of range (1 to 65535)"},
      {arr({arr({num(0), num(1), arr({num(1), num(7001)})})}),
       "CLUSTER SLOTS: range 0: master: endpoint is not a string"},
      {arr({arr({num(0), num(1), arr({bulk("h"), num(7001), num(3)})})}),
       "CLUSTER SLOTS: range 0: master: id is not a string"},
      {arr({arr({num(0), num(1), arr({bulk("h"), num(7001), bulk("a"), bulk("m")})})}),
       "CLUSTER SLOTS: range 0: master: metadata: not an array"},
      {arr({arr({num(0), num(1), arr({bulk("h"), num(7001), bulk("a"), arr({bulk("ip")})})})}),
       "CLUSTER SLOTS: range 0: master: metadata: an odd number of elements (1), not key/value pairs"},
      {arr({arr({num(0), num(1), arr({bulk("?"), num(7001), bulk("a"), arr({})})})}),
       "CLUSTER SLOTS: range 0: master: endpoint is \"?\" (no hostname announced) and no ip is given"},
      {arr({arr({num(0), num(1), master, arr({bulk("h"), num(-1)})})}),
       "CLUSTER SLOTS: range 0: replica 0: port -1 is out of range (1 to 65535)"},
      {arr({arr({num(0), num(1), master, arr({bulk("h"), num(7002)}), kNil})}),
       "CLUSTER SLOTS: range 0: replica 1: not an array of at least an endpoint and a port"},
  };
  for (const auto& [resp, expected] : cases) {
    EXPECT_EQ(slotsError(resp), expected) << resp;
  }
}

}  // namespace
}  // namespace evh::redis
