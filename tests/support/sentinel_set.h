// A Redis deployment under Sentinel for integration tests: a master, one
// replica and `sentinels` redis-sentinel processes (redis-server --sentinel),
// all on free loopback ports, the sentinels quick to act (down after 1 s);
// plaintext, or with TLS throughout (what evhost talks to: sentinels and data
// nodes).
#pragma once

#include "support/redis_server.h"

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace evh::test {

class TlsCerts;

class SentinelSet {
 public:
  static constexpr const char* kMaster = "evhmaster";

  // Starts everything and waits until every sentinel knows the replica and
  // the other sentinels (so that a failover can happen). Throws
  // std::runtime_error when it cannot.
  explicit SentinelSet(size_t sentinels = 3);

  struct Options {
    size_t sentinels = 3;
    // With TLS: every data node and sentinel also listens with TLS on a
    // port of its own (`tls`' server certificate, no client certificate
    // asked), the replica replicates and the sentinels monitor over TLS --
    // so the sentinels name the nodes' TLS ports (masterPort() gives one;
    // byPort() knows both) -- and nodesYaml() lists the sentinels' TLS
    // ports. The fixture's own questions, and node(i).command(), use the
    // plaintext ones.
    const TlsCerts* tls = nullptr;
    // Lines added to each sentinel's config file (e.g. an ACL `user`; the
    // fixture itself asks as the default user).
    std::string sentinel_conf;
  };
  explicit SentinelSet(const Options& options);

  // The data nodes: [0] started as master, [1] as its replica.
  RedisServer& node(size_t i) { return *nodes_.at(i); }
  // The node whose port the sentinels give for the master now (asked of
  // the first sentinel that answers).
  RedisServer& master();
  RedisServer& replicaOf();  // the node that is not master()
  RedisServer& sentinel(size_t i) { return *sentinels_.at(i); }
  size_t sentinelCount() const { return sentinels_.size(); }
  // "[127.0.0.1:P1, 127.0.0.1:P2, ...]" for a config's redis.sentinel.nodes.
  std::string nodesYaml() const;
  // The master's port as the sentinels say (0: no answer); a TLS port in a
  // TLS set.
  uint16_t masterPort();
  // A server's TLS port (0 in a plaintext set).
  uint16_t tlsPort(const RedisServer& server) const;

  // SENTINEL FAILOVER (a manual failover), then waits until the sentinels
  // name the other node and it says ROLE master. Returns the new master.
  RedisServer& failover(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // Waits until the sentinels name a node other than `old_port` whose ROLE
  // is master (after a kill).
  RedisServer& waitForNewMaster(uint16_t old_port, std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // Waits until the replica has caught up with the master's replication
  // offset.
  bool waitReplicated(std::chrono::milliseconds timeout = std::chrono::seconds(10));

 private:
  RedisServer& byPort(uint16_t port);
  void start(const Options& options);

  std::map<const RedisServer*, uint16_t> tls_ports_;
  std::vector<std::unique_ptr<RedisServer>> nodes_;
  std::vector<std::unique_ptr<RedisServer>> sentinels_;
};

}  // namespace evh::test
