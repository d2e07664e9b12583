// Tests of Redis Cluster's routing facts (redis/cluster_slots.h): key
// slots as CLUSTER KEYSLOT gives them, redirects of every shape, and a slot
// map patched by MOVED. Loading CLUSTER SHARDS and SLOTS replies, good and
// malformed: cluster_slots_replies_test.cpp.
#include "redis/cluster_slots.h"

#include "support/resp.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace evh::redis {
namespace {

using namespace evh::test;

// CLUSTER SLOTS as captured from a 7.0.15 cluster (ids shortened).
const std::string kSlots =
    "*3\r\n"
    "*4\r\n:0\r\n:5460\r\n*4\r\n$9\r\n127.0.0.1\r\n:7001\r\n$2\r\nid\r\n*0\r\n"
    "*4\r\n$9\r\n127.0.0.1\r\n:7006\r\n$2\r\nir\r\n*0\r\n"
    "*4\r\n:5461\r\n:10922\r\n*4\r\n$9\r\n127.0.0.1\r\n:7002\r\n$2\r\nie\r\n*0\r\n"
    "*4\r\n$9\r\n127.0.0.1\r\n:7004\r\n$2\r\nis\r\n*0\r\n"
    "*4\r\n:10923\r\n:16383\r\n*4\r\n$9\r\n127.0.0.1\r\n:7003\r\n$2\r\nif\r\n*0\r\n"
    "*4\r\n$9\r\n127.0.0.1\r\n:7005\r\n$2\r\nit\r\n*0\r\n";

class ClusterSlotsTest : public ::testing::Test {
 protected:
  // The reply `text` holds, kept alive until the next call.
  const redisReply* load(const std::string& text) {
    reply_ = resp::parse(text);
    EXPECT_NE(reply_, nullptr) << text;
    return reply_.get();
  }

  resp::ReplyPtr reply_{nullptr, freeReplyObject};
};

TEST_F(ClusterSlotsTest, KeySlotsAreRedisOwn) {
  // Each value as CLUSTER KEYSLOT answered on redis-server 7.0.15.
  EXPECT_EQ(keySlot("foo"), 12182);
  EXPECT_EQ(keySlot("bar"), 5061);
  EXPECT_EQ(keySlot(""), 0);
  EXPECT_EQ(keySlot("123456789"), 12739);  // the specification's check value 0x31C3
  EXPECT_EQ(keySlot("{user1000}.following"), 3443);
  EXPECT_EQ(keySlot("{user1000}.followers"), 3443);
  EXPECT_EQ(keySlot("user1000"), 3443);
  EXPECT_EQ(keySlot("foo{}{bar}"), 8363);     // an empty tag: the whole key
  EXPECT_EQ(keySlot("foo{{bar}}zap"), 4015);  // the tag is "{bar"
  EXPECT_EQ(keySlot("{bar"), 4015);
  EXPECT_EQ(keySlot("foo{bar}{zap}"), 5061);  // the first tag only
  EXPECT_EQ(keySlot("{}"), 15257);
  EXPECT_EQ(keySlot("}{"), 12793);
  EXPECT_EQ(keySlot("a{b"), 13340);
  EXPECT_EQ(keySlot("{a}"), 15495);
  EXPECT_EQ(keySlot("a}b{c}"), 7365);
  EXPECT_EQ(keySlot(std::string_view("\xff\x00\x01", 3)), 8002);
}

TEST_F(ClusterSlotsTest, RedirectsOfEveryShape) {
  auto r = parseRedirect("MOVED 3999 127.0.0.1:6381");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, Redirect::Moved);
  EXPECT_EQ(r->slot, 3999);
  EXPECT_EQ(r->to, (Address{"127.0.0.1", 6381}));
  r = parseRedirect("ASK 16383 redis-2.example:7000");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, Redirect::Ask);
  EXPECT_EQ(r->slot, 16383);
  EXPECT_EQ(r->to, (Address{"redis-2.example", 7000}));
  r = parseRedirect("MOVED 1 ::1:6380");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->to, (Address{"::1", 6380}));
  r = parseRedirect("MOVED 0 [fe80::1]:65535");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->to, (Address{"fe80::1", 65535}));
  r = parseRedirect("ASK 12182 :17003");  // the node does not know its address: the caller fills it
  ASSERT_TRUE(r);
  EXPECT_EQ(r->to, (Address{"", 17003}));

  const char* const not_redirects[] = {"",
                                       "MOVED",
                                       "MOVED ",
                                       "MOVED 3999",
                                       "MOVED 3999 ",
                                       "MOVED 16384 h:1",
                                       "MOVED 99999999999 h:1",
                                       "MOVED -1 h:1",
                                       "MOVED +1 h:1",
                                       "MOVED x h:1",
                                       "MOVED  1 h:1",
                                       "MOVED 1  h:1",
                                       "MOVED 1 h",
                                       "MOVED 1 h:",
                                       "MOVED 1 h:0",
                                       "MOVED 1 h:65536",
                                       "MOVED 1 h:123456",
                                       "MOVED 1 h:-1",
                                       "MOVED 1 h:1 extra",
                                       "MOVED 1 h\t:1",
                                       "MOVED 1 [::1:1",
                                       "MOVED 1 ]:1",
                                       "MOVED 1 a[b]:1",
                                       "moved 1 h:1",
                                       "ASKING 1 h:1",
                                       "ERR unknown command",
                                       "CLUSTERDOWN The cluster is down",
                                       "TRYAGAIN Multiple keys request"};
  for (const char* bad : not_redirects) {
    EXPECT_FALSE(parseRedirect(bad)) << bad;
  }
  EXPECT_FALSE(parseRedirect("MOVED 1 h:1\n"));
  EXPECT_FALSE(parseRedirect(std::string_view("MOVED 1 h\0:1", 12)));
}

TEST_F(ClusterSlotsTest, SlotsOfAHealthyCluster) {
  SlotMap map;
  std::string error;
  ASSERT_TRUE(map.loadSlots(load(kSlots), error)) << error;
  EXPECT_EQ(map.version(), 1U);
  EXPECT_TRUE(map.complete());
  const SlotMap::Node* a = map.masterFor(5460);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->id, "id");
  EXPECT_EQ(a->address, (Address{"127.0.0.1", 7001}));
  ASSERT_EQ(a->replicas.size(), 1U);
  EXPECT_EQ(a->replicas[0].id, "ir");
  EXPECT_EQ(a->replicas[0].address, (Address{"127.0.0.1", 7006}));
  EXPECT_EQ(a->replicas[0].health, "");
  EXPECT_EQ(map.masterFor(keySlot("foo"))->address.port, 7003);
  EXPECT_EQ(map.masters(), (std::vector<Address>{{"127.0.0.1", 7001}, {"127.0.0.1", 7002}, {"127.0.0.1", 7003}}));
}

TEST_F(ClusterSlotsTest, MovedPointsOneSlotElsewhereUntilTheNextLoad) {
  SlotMap map;
  std::string error;
  ASSERT_TRUE(map.loadSlots(load(kSlots), error));
  const uint16_t foo = keySlot("foo");         // owned by "if" (7003)
  map.moved(foo, Address{"127.0.0.1", 7001});  // to a known master
  EXPECT_EQ(map.masterFor(foo)->id, "id");
  EXPECT_EQ(map.masterFor(foo + 1)->id, "if");
  map.moved(0, Address{"127.0.0.1", 7006});  // to a replica of "id", promoted
  EXPECT_EQ(map.masterFor(0)->id, "ir");
  EXPECT_EQ(map.masterFor(0)->address.port, 7006);
  EXPECT_EQ(map.masterFor(1)->id, "id");
  map.moved(1, Address{"10.9.9.9", 7100});  // to a node no reply named
  EXPECT_EQ(map.masterFor(1)->id, "");
  EXPECT_EQ(map.masterFor(1)->address, (Address{"10.9.9.9", 7100}));
  map.moved(2, Address{"10.9.9.9", 7100});
  EXPECT_EQ(map.masterFor(2), map.masterFor(1));
  map.moved(16384, Address{"x", 1});  // out of range: ignored
  EXPECT_EQ(map.version(), 1U);       // only loads count
  EXPECT_EQ(
      map.masters(),
      (std::vector<Address>{
          {"127.0.0.1", 7006}, {"10.9.9.9", 7100}, {"127.0.0.1", 7001}, {"127.0.0.1", 7002}, {"127.0.0.1", 7003}}));
  ASSERT_TRUE(map.loadSlots(load(kSlots), error));
  EXPECT_EQ(map.version(), 2U);
  EXPECT_EQ(map.masterFor(foo)->id, "if");
  EXPECT_EQ(map.masterFor(0)->id, "id");
  EXPECT_EQ(map.nodes().size(), 3U);
}

TEST_F(ClusterSlotsTest, EndlessMovedsToNewAddressesStayBounded) {
  // Each MOVED to an address never seen adds a node; past 1024 of them,
  // those owning nothing any more are forgotten, and the rest keep theirs.
  SlotMap map;
  std::string error;
  ASSERT_TRUE(map.loadSlots(load(kSlots), error));
  for (uint16_t i = 0; i < 5000; ++i) {
    map.moved(static_cast<uint16_t>(i % 3), Address{"h", static_cast<uint16_t>(1 + i)});
    ASSERT_LE(map.nodes().size(), 3U + 1024U);
  }
  EXPECT_EQ(map.masterFor(0)->address.port, 1 + 4998);
  EXPECT_EQ(map.masterFor(1)->address.port, 1 + 4999);
  EXPECT_EQ(map.masterFor(2)->address.port, 1 + 4997);
  EXPECT_EQ(map.masterFor(3)->id, "id");
  EXPECT_EQ(map.masters().size(), 6U);
  EXPECT_EQ(map.nodes()[2].id, "if");  // the nodes the load named stay
  // Every slot to a node of its own: all are kept, as they must be.
  for (uint32_t s = 0; s < kClusterSlots; ++s) {
    map.moved(static_cast<uint16_t>(s), Address{"g", static_cast<uint16_t>(1 + s)});
  }
  EXPECT_EQ(map.masters().size(), 16384U);
  EXPECT_EQ(map.masterFor(16383)->address, (Address{"g", 16384}));
  EXPECT_EQ(map.masterFor(7)->address, (Address{"g", 8}));
  EXPECT_TRUE(map.complete());
}

}  // namespace
}  // namespace evh::redis
