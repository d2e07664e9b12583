// Commands to a Redis Cluster (redis.cluster): each goes to the master owning
// its key's slot, as the slot map says (cluster_map.h), on one connection per
// master. A node's redirect is followed:
//   MOVED slot host:port -- the map is patched (and asked for again soon) and
//     the command sent there;
//   ASK slot host:port -- the slot is being migrated and the key is there
//     already: ASKING, then the command, on that node's connection, once;
//   TRYAGAIN -- a multi-key command met a slot mid-migration: tried again.
// A command whose node has no connection up yet (a master the map just
// named, a promoted replica) waits for it, as TRYAGAIN does, up to the
// connect timeout; then its caller gets EVH_ERR_UNAVAILABLE, as on any loss.
// Every other reply, errors included (CROSSSLOT, CLUSTERDOWN), is the
// caller's. At most kMaxRedirects redirects per command: a cluster that
// sends it round in circles gets the last redirect's error back.
//
// Commands whose key is not known (cluster_map's CommandKeys) go to any
// master and follow its redirect: one round trip more, never a wrong node.
#pragma once

#include "loop/uv_handle.h"
#include "ops/stats.h"
#include "redis/address.h"
#include "redis/cluster_map.h"
#include "redis/connection.h"

#include <evh/plugin.h>
#include <uv.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

struct redisReply;

namespace evh::redis {

class ClusterRouter {
 public:
  using ReplyFn = std::function<void(evh_status status, const redisReply* reply)>;
  static constexpr int kMaxRedirects = 16;
  static constexpr uint64_t kRetryTickMs = 20;

  // `on_ready` runs when a node's connection comes up and every master's
  // is then up (after the first map and after each outage), inside the
  // callback that completed the handshake.
  ClusterRouter(uv_loop_t* loop, Endpoint endpoint, std::shared_ptr<ClusterMap> map, std::function<void()> on_ready);
  ~ClusterRouter();
  ClusterRouter(const ClusterRouter&) = delete;
  ClusterRouter& operator=(const ClusterRouter&) = delete;

  void start();
  // Closes every node's connection: waiting and sent commands get
  // EVH_ERR_CANCELLED. THREAD: loop.
  void stop();
  // A reload changed the Redis settings: every node's connection reconnects
  // as `endpoint` says. THREAD: loop.
  void reconfigure(Endpoint endpoint);
  void exportStats(ops::Registry& stats);

  // A map is known and every master in it has its connection up.
  bool ready() const;
  // The master of `key`'s slot has its connection up.
  bool readyFor(std::string_view key) const;
  // Some master's connection is up.
  bool anyUp() const;
  // Commands sent or waiting whose reply has not come.
  size_t pending() const noexcept { return pending_; }
  // Each master's connection (for /status and readiness messages).
  std::vector<const Connection*> connections() const;
  const ClusterMap& map() const noexcept { return *map_; }

  // As CommandClient::send: false (and fn never runs) when no map is known
  // or it names no master for the key; otherwise fn runs exactly once,
  // later -- when the master's connection is not up yet, the command waits
  // for it (up to connect_timeout_ms, then EVH_ERR_UNAVAILABLE). argv is
  // copied (a redirect sends it again). THREAD: loop.
  bool send(int argc, const char* const* argv, const size_t* lens, ReplyFn fn);

 private:
  struct Node;
  struct Request;

  Node& nodeFor(const Address& address);
  // Where a request goes now: its slot's master, or (no key) any master.
  Address routeOf(const Request& req) const;
  bool dispatch(std::unique_ptr<Request>& req, Node& node, bool asking);
  static void onReply(redisAsyncContext* ac, void* reply, void* privdata);
  void handle(std::unique_ptr<Request> req, const redisReply* reply);
  void later(std::unique_ptr<Request> req);
  void onRetryTick();
  void onMapChanged();
  void prune();
  void finish(std::unique_ptr<Request> req, evh_status status, const redisReply* reply);

  uv_loop_t* loop_;
  Endpoint endpoint_;
  std::shared_ptr<ClusterMap> map_;
  std::function<void()> on_ready_;
  std::unordered_map<std::string, std::unique_ptr<Node>> nodes_;  // by Address::describe()
  std::deque<std::unique_ptr<Request>> waiting_;                  // for a connection, or TRYAGAIN
  UvHandle<uv_timer_t> retry_timer_;
  UvHandle<uv_timer_t> prune_timer_;  // closes connections to nodes no map names, off any callback
  uint64_t watch_id_ = 0;
  size_t pending_ = 0;
  bool started_ = false;
  bool stopping_ = false;
  ops::Registry* stats_ = nullptr;
  std::unique_ptr<ops::Scope> scope_;
  ops::Counter asked_total_;
  ops::Counter tryagain_total_;
};

}  // namespace evh::redis
