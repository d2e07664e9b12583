// The command connection: requests and replies for the host and plugins.
#pragma once

#include "redis/connection.h"

#include <evh/plugin.h>

#include <cstdint>
#include <functional>
#include <string>
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
  ~CommandClient();

  void start();
  void stop();
  // A reload changed the Redis settings: reconnect as `endpoint` says, at
  // once (requests waiting for a reply get none, as on any loss). THREAD: loop.
  void reconfigure(Endpoint endpoint) { conn_.reconfigure(std::move(endpoint)); }
  bool ready() const noexcept { return conn_.ready(); }
  // Requests sent whose reply has not arrived.
  size_t pending() const noexcept { return pending_; }
  const Connection& connection() const noexcept { return conn_; }
  // The connection's series (Connection::exportStats). Before start().
  void exportStats(ops::Registry& stats) { conn_.exportStats(stats); }

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

 private:
  static void onReply(redisAsyncContext* ac, void* reply, void* privdata);
  void onReady();

  Connection conn_;
  std::vector<std::pair<uint64_t, std::function<void()>>> ready_watchers_;
  uint64_t last_watch_ = 0;
  bool stopping_ = false;
  size_t pending_ = 0;
};

}  // namespace evh::redis
