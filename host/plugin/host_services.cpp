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
    if (closed_.load()) {
      return EVH_ERR_CANCELLED;
    }
    return send(from, std::move(argv), cb, user_data) ? EVH_OK : EVH_ERR_UNAVAILABLE;
  }
  // From another thread: marshal to the loop (the poster refuses once
  // stopping has reached the plugins). From here on the callback owes an
  // answer, so a failure to send is reported through it.
  bool posted = poster_.post([this, in, argv = std::move(argv), cb, user_data]() mutable {
    const bool closed = closed_.load();
    if ((closed || !send(*in, std::move(argv), cb, user_data)) && cb != nullptr) {
      guarded(in, "reply callback", [&] { cb(user_data, closed ? EVH_ERR_CANCELLED : EVH_ERR_UNAVAILABLE, nullptr); });
    }
  });
  return posted ? EVH_OK : EVH_ERR_CANCELLED;
}

bool LoopServices::send(Instance& from, std::vector<std::string> argv, evh_reply_cb cb, void* user_data) {
  Instance* in = &from;
  std::string name = argv[0];
  return commands_->send(argv, [in, name, cb, user_data](evh_status status, const redisReply* reply) {
    if (cb == nullptr) {
      if (status != EVH_OK) {
        in->logger().warn("redis {}: no reply ({})", name,
                          status == EVH_ERR_CANCELLED ? "cancelled at shutdown" : "connection lost");
      } else if (reply->type == REDIS_REPLY_ERROR) {
        in->logger().warn("redis {}: {}", name, std::string_view(reply->str, reply->len));
      }
      return;
    }
    redis::ReplyView view(reply);
    guarded(in, "reply callback", [&] { cb(user_data, status, view.root()); });
  });
}

evh_status LoopServices::post(Instance& from, void (*fn)(void*), void* user_data) {
  Instance* in = &from;
  return poster_.post([in, fn, user_data] { guarded(in, "posted function", [&] { fn(user_data); }); })
             ? EVH_OK
             : EVH_ERR_CANCELLED;
}

}  // namespace evh::plugin
