// The command connection: requests and replies for the host and plugins --
// one connection to Redis, or under redis.cluster one per master, each
// command sent to the master of its key (cluster_router.h).
#pragma once

#include "redis/cluster_router.h"
#include "redis/connection.h"

#include <evh/plugin.h>

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct redisReply;

namespace evh::redis {

class CommandClient {
 public:
  // status: EVH_OK with a reply; EVH_ERR_UNAVAILABLE when the connection
  // dropped first; EVH_ERR_CANCELLED when stop() ran first. THREAD: loop.
  using ReplyFn = std::function<void(evh_status status, const redisReply* reply)>;

  CommandClient(uv_loop_t* loop, Endpoint endpoint);
  // Redis Cluster: each command to the master of its key, as `cluster` says.
  CommandClient(uv_loop_t* loop, Endpoint endpoint, std::shared_ptr<ClusterMap> cluster);
  ~CommandClient();

  void start();
  void stop();
  // A reload changed the Redis settings: reconnect as `endpoint` says, at
  // once (requests waiting for a reply get none, as on any loss). THREAD: loop.
  void reconfigure(Endpoint endpoint);
  // Connected (under a cluster: a slot map known and every master's
  // connection up).
  bool ready() const;
  // A command on `key` can go now: the connection is up (under a cluster:
  // the connection to the master of the key's slot). THREAD: loop.
  bool readyFor(std::string_view key) const;
  // Some connection is up (a reply may still come). THREAD: loop.
  bool up() const;
  // Requests sent whose reply has not arrived.
  size_t pending() const noexcept { return router_ ? router_->pending() : pending_; }
  // The connection, or each master's (for /status); and where they go, as
  // messages name them ("127.0.0.1:6379", "cluster 127.0.0.1:7000, ...").
  std::vector<const Connection*> connections() const;
  std::string where() const;
  // The router under redis.cluster; null otherwise.
  const ClusterRouter* cluster() const noexcept { return router_.get(); }
  // The connection's series (Connection::exportStats). Before start().
  void exportStats(ops::Registry& stats);

  // Runs `ready` each time the connection is up: after the first connect and
  // after every reconnect (inside the reply callback that completed the
  // handshake: commands may be sent from it). Returns the watch's id for
  // unwatchReady(); a watcher that goes first must unwatch. THREAD: loop.
  uint64_t watchReady(std::function<void()> ready);
  void unwatchReady(uint64_t id);

  // Sends argv. Returns false when not connected; fn then never runs.
  // Otherwise fn runs exactly once, later. THREAD: loop.
  bool send(const std::vector<std::string>& argv, ReplyFn fn);
  // The same from argc pointers and lengths (copied before it returns).
  bool send(int argc, const char* const* argv, const size_t* lens, ReplyFn fn);
  // The same from a few views (at most kFewArgs; more: false): the pointers
  // and lengths on the stack, no string per argument. For the per-event
  // commands (an idempotency mark), where building a vector of strings and
  // two of pointers and lengths was most of the send.
  static constexpr size_t kFewArgs = 8;
  bool sendFew(std::initializer_list<std::string_view> argv, ReplyFn fn);

 private:
  static void onReply(redisAsyncContext* ac, void* reply, void* privdata);
  void onReady();

  Connection conn_;  // unused (never started) under a cluster
  std::unique_ptr<ClusterRouter> router_;
  std::vector<std::pair<uint64_t, std::function<void()>>> ready_watchers_;
  uint64_t last_watch_ = 0;
  bool stopping_ = false;
  size_t pending_ = 0;
};

}  // namespace evh::redis
