// Redis Cluster's routing facts, without I/O: a key's hash slot, the
// redirects a node answers with (-MOVED, -ASK), and which master owns each
// slot, read from CLUSTER SHARDS or CLUSTER SLOTS: what redis.cluster routes
// by (cluster_map.h asks for the map, cluster_router.h follows redirects).
//
// The replies, as redis-server 7.0.15 sends them in RESP2 (hiredis 0.14 has
// no RESP3). Indices in error texts count from 0, as in the reply.
//
// CLUSTER SHARDS: an array with one element per shard, each a flat key/value
// array:
//   ["slots", [10923, 16383, ...start/end pairs, integers; [] for none],
//    "nodes", [node, node, ...]]
// and each node a flat key/value array, in this order:
//   ["id", "6e84...9e78e" (40 hex), "port", 17003 (absent when the node has
//    TLS only), "tls-port", 17103 (only with tls-cluster yes), "ip",
//    "127.0.0.1", "endpoint", "127.0.0.1", "hostname", "node1.local" (only
//    when announced), "role", "master" | "replica", "replication-offset", 56,
//    "health", "online" | "fail" | "loading"]
// A master that failed and was replaced is a shard of its own: no slots,
// role "master", health "fail". "loading" is a replica whose replication
// offset the answering node has not yet heard to be above 0.
// "endpoint" is what cluster-preferred-endpoint-type asks clients to dial:
// the ip, the hostname, "?" when it is hostname and none was announced, or
// "" when it is unknown-endpoint (dial the host the reply came from).
//
// CLUSTER SLOTS: an array with one element per contiguous range:
//   [0, 5460, [ip, port, id, metadata], [replica ip, port, id, metadata], ...]
// ip is the preferred endpoint as above, except that unknown-endpoint sends
// a null and a missing hostname "?"; metadata is a flat key/value array of
// whatever the endpoint is not ([] by default, ["hostname", "node1.local"]
// when one is announced, ["ip", "127.0.0.1"] when the endpoint is the
// hostname). A master owning several ranges appears once per range. Left
// out: failed replicas, replicas not yet known as such (just after CLUSTER
// REPLICATE), and replicas whose replication offset the answering node has
// not yet heard to be above 0 (SHARDS says "loading" of those: a replica
// just synced from a master that has had no write since). The port is the
// one for the asking connection's transport (TLS or not), so there is
// nothing to choose.
//
// Every reply is treated as hostile: wrong types, missing fields,
// out-of-range slots and ports are refused with a text saying what and
// where; nothing here throws or crashes on a reply.
#pragma once

#include "redis/address.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct redisReply;

namespace evh::redis {

inline constexpr uint16_t kClusterSlots = 16384;

// The hash slot of `key`: CRC16 (XMODEM) of the key mod 16384, or of its
// hash tag -- the text between the first '{' and the first '}' after it --
// when that text is not empty, so that "{user1}.a" and "{user1}.b" share a
// slot (the Redis Cluster specification, "Keys distribution model").
uint16_t keySlot(std::string_view key) noexcept;

// A node's answer that a key lives elsewhere: "MOVED 3999 127.0.0.1:6381"
// (the slot has a new owner: remember it) or "ASK 3999 127.0.0.1:6381" (it
// is being migrated and this key is there already: send ASKING then the
// command there, once, and remember nothing).
struct Redirect {
  enum Kind { Moved, Ask };
  Kind kind = Moved;
  uint16_t slot = 0;
  // host is empty when the node does not know its own address (it sends
  // "MOVED 1 :6380", and so does cluster-preferred-endpoint-type
  // unknown-endpoint): the CALLER fills in the host the reply came from.
  Address to;
};

// `error` is the error reply's text as hiredis gives it (without the '-').
// The port is after the last colon, so an IPv6 address needs no brackets
// ("MOVED 1 ::1:6380"); brackets ("[::1]:6380") are taken off too. Anything
// else -- other errors, a slot past 16383, a port of 0 or past 65535, extra
// words -- is nullopt.
std::optional<Redirect> parseRedirect(std::string_view error);

// Which master owns each slot, and the replicas of each. Refreshed whole from
// a CLUSTER SHARDS reply (SLOTS for servers before 7.0), and patched slot by
// slot from MOVED redirects in between.
// THREAD: whichever thread owns it; no locking.
class SlotMap {
 public:
  struct Replica {
    std::string id;      // "" when the reply gave none
    Address address;     // host "" as in Redirect: the caller fills it
    std::string health;  // "online", "fail", "loading"; "" from CLUSTER SLOTS
  };
  struct Node {
    std::string id;  // "" for a node known only from a MOVED
    Address address;
    std::vector<Replica> replicas;
  };
  // Which of a node's ports CLUSTER SHARDS should give (CLUSTER SLOTS has
  // already chosen, by the asking connection's transport).
  enum class Transport { Plain, Tls };

  SlotMap();

  // Each replaces the whole map with the reply's and bumps version() when
  // the reply is well formed, and returns true; otherwise leaves the map as
  // it was and returns false with `error` saying what and where, e.g.
  // "CLUSTER SHARDS: shard 2: node 1: port is not an integer".
  // OWNERSHIP: `reply` is borrowed; nothing of it is kept.
  bool loadShards(const redisReply* reply, std::string& error, Transport transport = Transport::Plain);
  bool loadSlots(const redisReply* reply, std::string& error);

  // The master owning `slot`, or nullptr when none does (or slot >= 16384).
  // Valid until the next load or moved().
  const Node* masterFor(uint16_t slot) const noexcept;
  // Every slot has an owner (a cluster whose state is ok).
  bool complete() const noexcept;
  // Every master owning at least one slot, once each, in the order of its
  // first slot.
  std::vector<Address> masters() const;
  // Every master the last load named (slots or not), then those MOVED added
  // (the ones left owning nothing are forgotten now and then).
  const std::vector<Node>& nodes() const noexcept { return nodes_; }
  // Bumped by each successful load (not by moved()): a connection that saw
  // a MOVED while the map was at version V asks for a refresh only if it is
  // still at V, so that a burst of redirects costs one refresh.
  uint64_t version() const noexcept { return version_; }

  // A MOVED redirect: `slot` belongs to the master at `to` until the next
  // load. `to` is a known master's address, or else becomes a new node
  // (id: the replica's it matches, if any: a promoted replica). Fill in an
  // empty host before calling. Ignored for slot >= 16384.
  void moved(uint16_t slot, const Address& to);

 private:
  static constexpr uint16_t kNoOwner = 0xFFFF;
  // MOVEDs to ever new addresses (a hostile or confused server) add a node
  // each: past compact_at_ of them (1024 at first), those owning no slot
  // any more are dropped. Each one kept owns a slot, so nodes_ stays under
  // 16384 named + 2 * 16384.
  static constexpr size_t kMaxMovedNodes = 1024;

  // Drops the nodes after the first named_ that own no slot, renumbering.
  void forgetIdleMovedNodes();

  std::vector<Node> nodes_;      // the named_ of the last load, then MOVED's
  std::vector<uint16_t> owner_;  // per slot: an index into nodes_, or kNoOwner
  size_t named_ = 0;
  size_t compact_at_ = kMaxMovedNodes;
  uint64_t version_ = 0;
};

}  // namespace evh::redis
