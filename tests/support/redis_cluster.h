// A real Redis Cluster for integration tests: three masters and a replica of
// each, six redis-server processes on free loopback ports (each with its
// cluster bus on a free port of its own), joined by `redis-cli --cluster
// create`, and quick to fail over (cluster-node-timeout 1000 ms). Helpers
// for what evhost's cluster tests do to one: find where a key lives, move a
// slot live (whole, or step by step to meet -ASK mid-way), kill a master and
// wait for its replica to take over.
#pragma once

#include "support/redis_server.h"

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace evh::test {

class RedisCluster {
 public:
  static constexpr size_t kMasters = 3;
  static constexpr size_t kNodes = 6;

  // Starts six nodes, has redis-cli create the cluster (slots dealt evenly
  // to three masters, the other three their replicas), then waits until
  // every node says cluster_state:ok, all agree on who owns which slot and
  // who replicates whom, and each replica's link to its master is up.
  // Throws std::runtime_error when it cannot, with redis-cli's output when
  // that is what failed.
  explicit RedisCluster(std::chrono::milliseconds timeout = std::chrono::seconds(60));

  RedisServer& node(size_t i) { return *nodes_.at(i); }
  // The node on `port` / with `id` (throws if none).
  RedisServer& byPort(uint16_t port);
  RedisServer& byId(const std::string& id);
  // Its CLUSTER MYID, asked at start (kept across restart(): nodes.conf).
  const std::string& id(const RedisServer& node) const;

  enum class Which { Masters, All };
  // "[127.0.0.1:P1, 127.0.0.1:P2, ...]" for a config's node list: the
  // masters now (in the order of their first slot), or every running node.
  std::string nodesYaml(Which which = Which::Masters);
  // The masters owning slots now, in the order of their first slot.
  std::vector<RedisServer*> masters();

  // CLUSTER KEYSLOT, asked of a running node (the server's word, not ours).
  uint16_t keySlot(const std::string& key);
  // The node owning `slot` now, as the first running node to answer sees it
  // (after waitStable() they all agree).
  RedisServer& masterForSlot(uint16_t slot);
  RedisServer& masterForKey(const std::string& key) { return masterForSlot(keySlot(key)); }
  // The replica of `master` (throws if it has none).
  RedisServer& replicaOf(const RedisServer& master);
  // A key owned by `master`: `prefix`:0, `prefix`:1, ... the first that is.
  std::string keyOn(const RedisServer& master, const std::string& prefix = "key");

  // A live slot migration the documented way (CLUSTER SETSLOT's page):
  // IMPORTING on `to`, MIGRATING on `from`, every key moved with MIGRATE,
  // then SETSLOT NODE on `to`, `from` and the other masters, and a wait
  // until every node agrees. In steps, so that a test can meet -ASK while
  // some keys have moved and others not.
  void migrateSlot(uint16_t slot, RedisServer& from, RedisServer& to);
  void beginMigration(uint16_t slot, RedisServer& from, RedisServer& to);
  // MIGRATEs `keys` (all the slot's keys still on `from` when empty);
  // returns how many it moved.
  size_t moveKeys(uint16_t slot, RedisServer& from, RedisServer& to, const std::vector<std::string>& keys = {});
  void finishMigration(uint16_t slot, RedisServer& from, RedisServer& to);

  // SIGKILLs `master`, remembering its replica for waitForFailover.
  void killMaster(RedisServer& master);
  // Waits until the replica of `old` (killed by killMaster) is master of its
  // slots in the view of every running node, all of them say
  // cluster_state:ok, and returns it. Throws on timeout.
  RedisServer& waitForFailover(const RedisServer& old, std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // Waits until every running node says cluster_state:ok and they agree on
  // the slots' owners and the replicas' masters; false on timeout (why():
  // what did not hold last).
  bool waitStable(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  const std::string& why() const { return why_; }

  // One command on a fresh connection to `node` (a cached one may point at
  // a node since killed); nullptr when it cannot connect or read. No
  // redirect is followed: a test sees -MOVED and -ASK as they are.
  static ReplyPtr command(const RedisServer& node, const std::vector<std::string>& argv);
  // On the master owning `key`.
  ReplyPtr commandForKey(const std::string& key, const std::vector<std::string>& argv) {
    return command(masterForKey(key), argv);
  }

 private:
  // One line of CLUSTER NODES.
  struct NodeLine {
    std::string id;
    uint16_t port = 0;
    std::string flags;
    std::string master;  // the id of the one it replicates; "-" for a master
    std::string link;    // "connected" or "disconnected"
    std::vector<std::pair<int, int>> slots;
    bool isMaster() const;
  };
  static std::vector<NodeLine> clusterNodes(const RedisServer& node);
  // CLUSTER NODES of the first running node that answers.
  std::vector<NodeLine> view();
  void create(std::chrono::milliseconds timeout);
  // The test of waitStable; why_ says what did not hold.
  bool stable(bool with_replicas);
  void waitStableOrThrow(bool with_replicas, std::chrono::milliseconds timeout, const std::string& what);

  std::vector<std::unique_ptr<RedisServer>> nodes_;
  std::map<uint16_t, std::string> ids_;             // by port
  std::map<uint16_t, uint16_t> replica_of_killed_;  // killed master's port -> its replica's
  std::string why_;
};

// The text of a status, string or error reply; for any other, what it is:
// "(nil)", "(integer) 5", "(array of 3)", "(no reply)" -- so that a failed
// expectation says what came instead.
std::string replyText(const ReplyPtr& r);

}  // namespace evh::test
