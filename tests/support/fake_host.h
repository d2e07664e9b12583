// Test doubles for what a plugin instance needs from the host (unit tests only).
#pragma once

#include "plugin/call_table.h"
#include "plugin/instance.h"

#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace evh::test {

// HostServices without Redis: commands fail as unavailable, posts queue up
// until runPosted().
class FakeServices final : public plugin::HostServices {
 public:
  // Not connected: every request fails at once -- unless `accept` is set,
  // and then the request is kept with its callback for the test to answer.
  evh_status redisCommand(plugin::Instance&, std::vector<std::string> argv, evh_reply_cb cb, void* ud) override {
    std::lock_guard<std::mutex> lock(mutex);
    commands.push_back(std::move(argv));
    if (!accept) {
      return EVH_ERR_UNAVAILABLE;
    }
    callbacks.emplace_back(cb, ud);
    return EVH_OK;
  }
  evh_status post(plugin::Instance&, void (*fn)(void*), void* ud) override {
    std::lock_guard<std::mutex> lock(mutex);
    posted.emplace_back([fn, ud] { fn(ud); });
    return EVH_OK;
  }
  bool shardedChannel(std::string_view channel) const override {
    for (const auto& s : sharded) {
      if (s == channel) {
        return true;
      }
    }
    return false;
  }
  void runPosted() {
    std::vector<std::function<void()>> now;
    {
      std::lock_guard<std::mutex> lock(mutex);
      now.swap(posted);
    }
    for (auto& f : now) {
      f();
    }
  }

  std::mutex mutex;
  std::vector<std::vector<std::string>> commands;
  bool accept = false;
  std::vector<std::string> sharded;                       // the channels (prefixed) the config marks sharded
  std::vector<std::pair<evh_reply_cb, void*>> callbacks;  // of accepted requests, in order
  std::vector<std::function<void()>> posted;
};

// Records what a plugin says about one call: an open call of its own in the
// process's call table, passed to handle() as call.handle().
struct FakeCall final : plugin::CallTarget {
  FakeCall() : owner_(plugin::CallTable::process().join("fake")) { handle_ = owner_.open(this, slot_); }
  ~FakeCall() {
    owner_.release(*slot_);
    plugin::CallTable::process().leave(owner_);
  }
  FakeCall(const FakeCall&) = delete;
  FakeCall& operator=(const FakeCall&) = delete;

  evh_call* handle() const noexcept { return handle_; }
  void setError(std::string_view msg) override { error.assign(msg); }
  evh_status complete(evh_status status, std::string_view msg) override {
    completions.push_back({status, std::string(msg)});
    return EVH_OK;
  }
  struct Completion {
    evh_status status;
    std::string message;
  };
  std::string error;
  std::vector<Completion> completions;

 private:
  plugin::CallOwner& owner_;
  plugin::CallSlot* slot_ = nullptr;
  evh_call* handle_ = nullptr;
};

// An event view with the given type and id; strings are static literals.
inline evh_event makeEvent(const char* type, const char* id = "evt-1") {
  auto s = [](const char* p) { return evh_str{p, std::char_traits<char>::length(p)}; };
  evh_event e{};
  e.struct_size = sizeof(evh_event);
  e.attempt = 1;
  e.max_attempts = 3;
  e.channel = s("jollyjet:events:product");
  e.redis_channel = s("dev:jollyjet:events:product");
  e.event_type = s(type);
  e.event_id = s(id);
  e.timestamp = s("2024-01-15T10:30:00.000Z");
  e.timestamp_ms = 1705314600000;
  e.payload = s("{}");
  e.envelope = s("{}");
  e.raw = s("{}");
  return e;
}

// A plugin metric's value as the stats registry exports it (counter or
// gauge named `name` by the plugin); -1 when it is not there.
inline int64_t metricValue(const plugin::Instance& in, const std::string& name) {
  for (evh_metric_kind kind : {EVH_METRIC_COUNTER, EVH_METRIC_GAUGE}) {
    const std::string exported = plugin::exportedMetricName(in.library().name(), name, kind);
    for (const auto& f : in.stats().samples()) {
      if (f.name != exported) {
        continue;
      }
      for (const auto& s : f.series) {
        if (s.labels == ops::Labels{{"plugin", in.name()}}) {
          return s.exact;
        }
      }
    }
  }
  return -1;
}

}  // namespace evh::test
