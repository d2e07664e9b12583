// redis.cluster: the cluster's slot map kept fresh, and what every connection
// to the cluster asks it. One node at a time is asked (the configured seeds,
// then the masters the map named, in turn) for CLUSTER SHARDS (CLUSTER SLOTS
// before Redis 7) at start, every refresh interval, and soon after anything
// says the map is stale: a MOVED redirect, a node's connection failing.
// The same node teaches the commands' keys (COMMAND, once per connection).
//
// Who asks it: the command router (cluster_router.h) for each command's node,
// and each stream reader's connection through a SlotAddress (below), which
// moves the reader to its key's new master when the slot moves or fails over.
//
// Stats (ops/stats.h), labelled by nothing: evhost_cluster_slot_map_version
// (loads so far), evhost_cluster_masters, evhost_cluster_slots_covered,
// evhost_cluster_refreshes_total{outcome=ok|error}, evhost_cluster_moved_total.
#pragma once

#include "loop/uv_handle.h"
#include "ops/stats.h"
#include "redis/address.h"
#include "redis/cluster_slots.h"
#include "redis/command_keys.h"
#include "redis/connection.h"

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

struct redisReply;

namespace evh::redis {

class ClusterMap {
 public:
  struct Options {
    Endpoint endpoint;           // credentials, TLS, timeouts for every node; its host:port unused
    std::vector<Address> seeds;  // at least one
    uint32_t refresh_ms = 30000;
  };

  ClusterMap(uv_loop_t* loop, Options options);
  ~ClusterMap();
  ClusterMap(const ClusterMap&) = delete;
  ClusterMap& operator=(const ClusterMap&) = delete;

  // Starts asking; stop() closes the asking connection and the timers (what
  // watches it is told nothing more). THREAD: loop.
  void start();
  void stop();
  void exportStats(ops::Registry& stats);

  // The master owning `slot` now: its address, with the host of the node
  // that answered the map when the map gave none. An empty host until a
  // map is loaded (or no master owns the slot). THREAD: loop.
  Address ownerOf(uint16_t slot) const;
  // Every master owning slots, as ownerOf() writes them (kept from the last
  // load or moved(): no scan of the slots per call).
  const std::vector<Address>& masters() const noexcept { return masters_; }
  // A map has been loaded (at least once).
  bool known() const noexcept { return map_.version() > 0; }
  const SlotMap& slots() const noexcept { return map_; }
  const CommandKeys& keys() const noexcept { return keys_; }
  // The node the map is asked of now, and whether its connection is up.
  std::string askingAt() const { return query_ ? query_->where() : std::string(); }
  bool askingUp() const { return query_ && query_->ready(); }
  // Why the last request for the map failed ("" once one succeeded again:
  // a map may be in force while this says why it could not be refreshed).
  const std::string& problem() const noexcept { return last_problem_; }

  // A node answered MOVED: `slot` is at `to` (its host filled in). The map
  // is patched at once, watchers told, and the whole map asked for soon
  // (refreshSoon's pace). A slot moved back within kFlapMs of its last
  // MOVED is not patched (two nodes each naming the other, mid-failover,
  // would bounce every connection on it): the refresh decides.
  void moved(uint16_t slot, const Address& to);
  // Something says the map may be stale (a node's connection failed): asks
  // soon, at most every kMinRefreshMs.
  void refreshSoon(const std::string& why);

  // `changed` runs after each load and each moved() (a watcher compares
  // what it cares about). Returns the watch's id for unwatch().
  uint64_t watch(std::function<void()> changed);
  void unwatch(uint64_t id);

  static constexpr uint64_t kMinRefreshMs = 100;
  static constexpr uint64_t kFlapMs = 1000;

 private:
  class Rotation;

  void ask();
  void onShards(const redisReply* reply);
  void onSlots(const redisReply* reply);
  void loaded(const std::string& how);
  void failedToLoad(const std::string& problem);
  void notify();
  Address filled(const Address& a) const;
  void cacheMasters();

  uv_loop_t* loop_;
  Options options_;
  std::shared_ptr<Rotation> rotation_;
  std::unique_ptr<Connection> query_;
  UvHandle<uv_timer_t> refresh_timer_;  // every refresh_ms
  UvHandle<uv_timer_t> soon_timer_;     // refreshSoon() within kMinRefreshMs of the last ask
  SlotMap map_;
  CommandKeys keys_;
  std::string answered_by_;  // the host of the node whose map is in force
  bool asking_ = false;
  bool ask_again_ = false;
  bool use_slots_ = false;  // the node knows no CLUSTER SHARDS (Redis < 7)
  bool keys_learned_ = false;
  uint64_t last_ask_ms_ = 0;
  std::vector<Address> masters_;  // map_.masters(), filled in
  struct LastMove {
    Address from;
    uint64_t at_ms = 0;
  };
  std::unordered_map<uint16_t, LastMove> last_moves_;  // per slot, since the last load
  bool started_ = false;
  bool stopped_ = false;
  std::string last_problem_;
  std::vector<Address> logged_masters_;  // logged when the masters change
  std::vector<std::pair<uint64_t, std::function<void()>>> watchers_;
  uint64_t last_watch_ = 0;
  std::unique_ptr<ops::Scope> stats_;
  ops::Counter refreshes_ok_;
  ops::Counter refreshes_failed_;
  ops::Counter moved_total_;
};

// Where a connection reading one key goes: the master owning the key's slot,
// as the map says now. Told of a failure, it asks for the map again; when a
// load or a MOVED gives the slot another master, its connection moves at
// once (AddressProvider::watch).
class SlotAddress final : public AddressProvider {
 public:
  SlotAddress(std::shared_ptr<ClusterMap> map, uint16_t slot);
  ~SlotAddress() override;
  SlotAddress(const SlotAddress&) = delete;
  SlotAddress& operator=(const SlotAddress&) = delete;

  Address current() override;
  void failed(const Address& address, const std::string& why) override;
  std::string waitingFor() const override;
  // MOVED: the map is patched (ClusterMap::moved), and the connection moves.
  bool redirected(std::string_view error, const Address& at) override;
  uint16_t slot() const noexcept { return slot_; }

 private:
  std::shared_ptr<ClusterMap> map_;
  uint16_t slot_;
  Address last_;
  uint64_t watch_id_ = 0;
};

}  // namespace evh::redis
