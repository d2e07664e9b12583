// Redis commands and posts for plugins, marshalled to the loop.
#include "plugin/host_services.h"

#include "common/log.h"
#include "loop/current_call.h"
#include "redis/reply.h"

#include <hiredis/hiredis.h>

namespace evh::plugin {
namespace {

// Plugin callbacks are C entry points into code we do not control: a C++
// plugin written without the SDK may still throw through them.
template <class Fn>
void guarded(Instance* in, const char* what, Fn&& fn) {
  // Named by the watchdog if it never returns, by the fatal-signal handler if it crashes.
  const CallSite site{in->name(), what, nullptr, in->library().desc().name};
  CallScope scope(CurrentCall::process(), site);
  try {
    fn();
  } catch (const std::exception& e) {
    in->logger().error("exception thrown through the C ABI from a {}: {}", what, e.what());
  } catch (...) {
    in->logger().error("unknown exception thrown through the C ABI from a {}", what);
  }
}

}  // namespace

LoopServices::LoopServices(Poster& poster, redis::CommandClient* commands)
    : poster_(poster), commands_(commands), loop_thread_(std::this_thread::get_id()) {}

evh_status LoopServices::redisCommand(Instance& from, std::vector<std::string> argv, evh_reply_cb cb, void* user_data) {
  Instance* in = &from;
  if (std::this_thread::get_id() == loop_thread_) {
    if (closedFor(from)) {
      return EVH_ERR_CANCELLED;
    }
    return send(from, std::move(argv), cb, user_data) ? EVH_OK : EVH_ERR_UNAVAILABLE;
  }
  if (from.servicesClosed()) {
    return EVH_ERR_CANCELLED;
  }
  // From another thread: marshal to the loop (the poster refuses once
  // stopping has reached the plugins). From here on the callback owes an
  // answer, so a failure to send is reported through it.
  in->owe();
  bool posted = poster_.post([this, in, argv = std::move(argv), cb, user_data]() mutable {
    const bool closed = closedFor(*in);
    if ((closed || !send(*in, std::move(argv), cb, user_data)) && cb != nullptr) {
      guarded(in, "reply callback", [&] { cb(user_data, closed ? EVH_ERR_CANCELLED : EVH_ERR_UNAVAILABLE, nullptr); });
    }
    in->paid();
  });
  if (!posted) {
    in->paid();
  }
  return posted ? EVH_OK : EVH_ERR_CANCELLED;
}

evh_status LoopServices::redisCommandBorrowed(Instance& from, int32_t argc, const evh_str* argv, evh_reply_cb cb,
                                              void* user_data) {
  if (std::this_thread::get_id() != loop_thread_) {
    return HostServices::redisCommandBorrowed(from, argc, argv, cb, user_data);  // copied, then marshalled
  }
  if (closedFor(from)) {
    return EVH_ERR_CANCELLED;
  }
  // Borrowed until we return, and hiredis copies them into its output
  // buffer before send() returns.
  constexpr int32_t kOnStack = 32;
  const char* ptrs_stack[kOnStack];
  size_t lens_stack[kOnStack];
  std::vector<const char*> ptrs_heap;
  std::vector<size_t> lens_heap;
  const char** ptrs = ptrs_stack;
  size_t* lens = lens_stack;
  if (argc > kOnStack) {
    ptrs_heap.resize(static_cast<size_t>(argc));
    lens_heap.resize(static_cast<size_t>(argc));
    ptrs = ptrs_heap.data();
    lens = lens_heap.data();
  }
  for (int32_t i = 0; i < argc; ++i) {
    ptrs[i] = argv[i].ptr == nullptr ? "" : argv[i].ptr;
    lens[i] = argv[i].len;
  }
  return send(from, argc, ptrs, lens, cb, user_data) ? EVH_OK : EVH_ERR_UNAVAILABLE;
}

// What runs when the reply comes: the plugin's callback, guarded; without
// one, a failure is logged (naming the command).
redis::CommandClient::ReplyFn LoopServices::replyFn(Instance* in, std::string_view command, evh_reply_cb cb,
                                                    void* user_data) {
  if (cb == nullptr) {
    return [in, name = std::string(command)](evh_status status, const redisReply* reply) {
      if (status != EVH_OK) {
        in->logger().warn("redis {}: no reply ({})", name,
                          status == EVH_ERR_CANCELLED ? "cancelled at shutdown" : "connection lost");
      } else if (reply->type == REDIS_REPLY_ERROR) {
        in->logger().warn("redis {}: {}", name, std::string_view(reply->str, reply->len));
      }
      in->paid();
    };
  }
  return [in, cb, user_data](evh_status status, const redisReply* reply) {
    redis::ReplyView view(reply);
    guarded(in, "reply callback", [&] { cb(user_data, status, view.root()); });
    in->paid();
  };
}

// Each send is owed to the instance until its reply function has run
// (a retiring instance waits for that: Instance::owed()).
bool LoopServices::send(Instance& from, std::vector<std::string> argv, evh_reply_cb cb, void* user_data) {
  from.owe();
  if (!commands_->send(argv, replyFn(&from, argv[0], cb, user_data))) {
    from.paid();
    return false;
  }
  return true;
}

bool LoopServices::send(Instance& from, int argc, const char* const* argv, const size_t* lens, evh_reply_cb cb,
                        void* user_data) {
  from.owe();
  if (!commands_->send(argc, argv, lens, replyFn(&from, std::string_view(argv[0], lens[0]), cb, user_data))) {
    from.paid();
    return false;
  }
  return true;
}

evh_status LoopServices::post(Instance& from, void (*fn)(void*), void* user_data) {
  Instance* in = &from;
  if (in->servicesClosed()) {
    return EVH_ERR_CANCELLED;
  }
  in->owe();
  const bool posted = poster_.post([in, fn, user_data] {
    guarded(in, "posted function", [&] { fn(user_data); });
    in->paid();
  });
  if (!posted) {
    in->paid();
  }
  return posted ? EVH_OK : EVH_ERR_CANCELLED;
}

bool LoopServices::shardedChannel(std::string_view channel) const {
  const std::lock_guard<std::mutex> lock(sharded_mutex_);
  return sharded_.find(channel) != sharded_.end();
}

void LoopServices::setShardedChannels(std::set<std::string, std::less<>> channels) {
  const std::lock_guard<std::mutex> lock(sharded_mutex_);
  sharded_.swap(channels);
}

}  // namespace evh::plugin
