// The backend of the host API's loop-bound functions (evh_host_api's
// redis_command, publish and post): marshals calls from any thread to the
// loop, sends on the command connection, and guards every callback into a
// plugin (exceptions, the watchdog's attribution).
#pragma once

#include "loop/poster.h"
#include "plugin/instance.h"
#include "redis/command_client.h"

#include <atomic>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace evh::plugin {

class LoopServices final : public HostServices {
 public:
  // Requests go to `commands` (which outlives this). Construct on the loop
  // thread: calls from it are sent at once, from others marshalled.
  LoopServices(Poster& poster, redis::CommandClient* commands);

  // After close(), requests answer EVH_ERR_CANCELLED (the stop has reached
  // the plugins); so do a retiring instance's (Instance::closeServices).
  // Every request accepted is owed to its instance until its callback has
  // run (Instance::owe / paid). THREAD: loop.
  void close() noexcept { closed_.store(true); }

  evh_status redisCommand(Instance& from, std::vector<std::string> argv, evh_reply_cb cb, void* user_data) override;
  // On the loop thread: sent from the borrowed arguments, no copy.
  evh_status redisCommandBorrowed(Instance& from, int32_t argc, const evh_str* argv, evh_reply_cb cb,
                                  void* user_data) override;
  evh_status post(Instance& from, void (*fn)(void*), void* user_data) override;
  bool shardedChannel(std::string_view channel) const override;
  // The config's sharded channels (prefixed), at start and after each
  // reload. THREAD: loop.
  void setShardedChannels(std::set<std::string, std::less<>> channels);

 private:
  // Sends on the command connection; false (cb not called) when not connected.
  bool send(Instance& from, std::vector<std::string> argv, evh_reply_cb cb, void* user_data);
  bool send(Instance& from, int argc, const char* const* argv, const size_t* lens, evh_reply_cb cb, void* user_data);
  // Closed for everyone (the stop) or for this retiring instance.
  bool closedFor(const Instance& in) const noexcept { return closed_.load() || in.servicesClosed(); }
  // The reply function pays the instance's debt (Instance::owed) once run.
  static redis::CommandClient::ReplyFn replyFn(Instance* in, std::string_view command, evh_reply_cb cb,
                                               void* user_data);

  Poster& poster_;
  redis::CommandClient* commands_;
  std::thread::id loop_thread_;
  std::atomic<bool> closed_{false};   // read by marshalled commands' closures
  mutable std::mutex sharded_mutex_;  // publish() may come from a worker
  std::set<std::string, std::less<>> sharded_;
};

}  // namespace evh::plugin
