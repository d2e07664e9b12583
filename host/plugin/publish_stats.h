// What a plugin publishes through the host (evh_host_api.publish): per
// instance and channel, messages published, failures and the round trip to
// Redis -- the plan's publisher metrics:
//   evhost_publish_total{plugin,channel}
//   evhost_publish_failures_total{plugin,channel}  (not sent, no answer, or an error reply)
//   evhost_publish_duration_seconds{plugin,channel} (request to Redis's answer)
// `channel` is the one the plugin names (without the environment prefix).
// Plugins choose their channels in code, not from events, but nothing
// stops one from naming a channel per event: after kMaxChannels distinct
// channels, an instance's further ones are counted under channel="other".
#pragma once

#include "ops/stats.h"

#include <evh/plugin.h>

#include <spdlog/logger.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace evh::plugin {

class PublishStats {
 public:
  static constexpr size_t kMaxChannels = 32;

  struct Series {
    ops::SharedCounter published;
    ops::SharedCounter failed;
    ops::SharedHistogram seconds;  // microseconds observed
  };

  // Series are registered in `scope` (the instance's: labelled plugin=...).
  explicit PublishStats(ops::Scope& scope) : scope_(scope) {}

  // The series of `channel`, registered on first use. THREAD: any.
  const Series& of(std::string_view channel);

  // Wraps a publish's reply callback: counts the outcome and the round trip
  // before calling `cb` -- or, when the plugin gave none, logs a failure to
  // `log` as the host does for any command without a callback. Returns the callback and user
  // data to hand to the command connection; call abandon(user_data) if the
  // request was not sent (the callback will not run).
  struct Wrapped {
    evh_reply_cb cb;
    void* user_data;
  };
  Wrapped wrap(const Series& series, evh_reply_cb cb, void* user_data, spdlog::logger& log);
  static void abandon(void* wrapped_user_data) noexcept;

 private:
  ops::Scope& scope_;
  std::mutex mutex_;
  std::map<std::string, std::unique_ptr<Series>, std::less<>> by_channel_;
};

}  // namespace evh::plugin
