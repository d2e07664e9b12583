// Where the master is, asked of Redis Sentinel (redis.sentinel; docs/config.md#sentinel):
// an AddressProvider every connection to Redis shares.
//
// - One command connection asks `SENTINEL GET-MASTER-ADDR-BY-NAME` of a
//   sentinel -- the next one in the list when one is down or knows no such
//   master -- at start, whenever a connection to the master fails, whenever
//   a sentinel (re)connects, and every refresh_ms in case a switch was missed.
// - One subscriber connection per sentinel follows `+switch-master`, so a
//   failover is seen as soon as any sentinel announces it, well before the
//   connections' reconnect backoff would have found it.
// - A changed answer is told to every connection watching (address.h): each
//   leaves the old master at once and connects to the new one without
//   backoff. requiresMaster(): each also checks ROLE after its handshake,
//   so a demoted node is left even when no sentinel has spoken yet.
//
// Stats (docs/metrics.md, "Sentinel"): evhost_redis_master_known,
// evhost_redis_master_changes_total, and evhost_redis_up and friends for the
// sentinel connections (connection="sentinel" for the asking one,
// "sentinel HOST:PORT" for each follower).
//
// THREAD: loop, all of it.
#pragma once

#include "loop/uv_handle.h"
#include "ops/stats.h"
#include "redis/address.h"
#include "redis/connection.h"
#include "redis/endpoint.h"

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace evh::redis {

class SentinelAddress final : public AddressProvider {
 public:
  struct Options {
    std::string master;          // the name the sentinels monitor it by
    std::vector<Address> nodes;  // the sentinels, at least one
    // How to talk to a sentinel: its credentials, TLS, timeouts and backoff
    // (host and port unused; db must be 0).
    Endpoint endpoint;
    uint32_t refresh_ms = 10000;  // ask again this often
  };

  SentinelAddress(uv_loop_t* loop, Options options);
  ~SentinelAddress() override;
  SentinelAddress(const SentinelAddress&) = delete;
  SentinelAddress& operator=(const SentinelAddress&) = delete;

  // Connects to the sentinels and asks. Once.
  void start();
  // Closes every connection and timer (they need the loop): before the loop
  // closes, even while connections still hold this provider. Idempotent.
  void stop();
  // Once, before start().
  void exportStats(ops::Registry& stats);

  Address current() override { return master_; }
  void failed(const Address& address, const std::string& why) override;
  std::string waitingFor() const override;
  bool requiresMaster() const override { return true; }

  const std::string& masterName() const noexcept { return options_.master; }
  // Times the answer changed after the first one (failovers seen).
  uint64_t masterChanges() const noexcept { return changes_; }
  // Each sentinel as host:port, and whether its follower is subscribed.
  struct SentinelState {
    std::string address;
    bool following = false;
  };
  std::vector<SentinelState> sentinels() const;
  // The sentinel the asking connection uses now (host:port), and whether it
  // is up.
  std::string askingAt() const;
  bool askingUp() const;

  // "NAME OLD_IP OLD_PORT NEW_IP NEW_PORT" (a +switch-master message): the
  // new address when it is about `master`, else an empty one. Exposed for
  // tests.
  static Address switchedTo(std::string_view payload, const std::string& master);

 private:
  class Rotation;
  struct Follower;

  void ask();
  void onAnswer(const void* reply);
  void onSwitch(Follower& f, const void* reply);
  void setMaster(const Address& address, const std::string& source);

  uv_loop_t* loop_;
  Options options_;
  std::shared_ptr<Rotation> rotation_;
  std::unique_ptr<Connection> query_;
  std::vector<std::unique_ptr<Follower>> followers_;
  UvHandle<uv_timer_t> refresh_timer_;
  Address master_;  // empty until a sentinel answered
  bool started_ = false;
  bool stopped_ = false;
  bool asking_ = false;       // a question is out on query_
  bool ask_again_ = false;    // asked for meanwhile
  std::string last_problem_;  // logged once until it changes
  uint64_t changes_ = 0;
  std::unique_ptr<ops::Scope> stats_;
  ops::Counter changes_total_;
};

}  // namespace evh::redis
