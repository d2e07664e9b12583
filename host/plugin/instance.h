// One configured plugin instance and the evh_host_api table it is given.
#pragma once

#include "plugin/library.h"

#include <evh/plugin.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace spdlog {
class logger;
}
namespace evh::plugin {
class Instance;
}

// The opaque C handle types, defined by the host.
struct evh_host {
  evh::plugin::Instance* self;
};

// evh_call stays incomplete: a call handle is a number, never an address
// (plugin/call_table.h).

struct evh_metric {
  std::string name;
  std::string help;
  evh_metric_kind kind;
  std::atomic<int64_t> value{0};
};

namespace evh::plugin {

class Instance;

// What a plugin instance needs from the running host.
class HostServices {
 public:
  virtual ~HostServices() = default;
  // Sends argv (argv[0] the command) on the command connection; cb, when
  // not null, runs exactly once on the loop thread. THREAD: any.
  virtual evh_status redisCommand(Instance& from, std::vector<std::string> argv, evh_reply_cb cb, void* user_data) = 0;
  // Runs fn(user_data) once on the loop thread. THREAD: any.
  virtual evh_status post(Instance& from, void (*fn)(void*), void* user_data) = 0;
};

struct MetricValue {
  std::string name;
  std::string help;
  evh_metric_kind kind;
  int64_t value;
};

class Instance {
 public:
  // `name` is the instance name from the config (which is also its log tag).
  Instance(std::string name, LibraryPtr library, HostServices& services, std::string env_prefix);
  ~Instance();
  Instance(const Instance&) = delete;
  Instance& operator=(const Instance&) = delete;

  // Calls the plugin's init(). Throws LoadError with the plugin's own
  // message when it fails. THREAD: loop.
  void init(const std::string& config_json);
  // Calls the plugin's shutdown() once (no-op if not initialised). THREAD: loop.
  void shutdown();

  // Calls the plugin's handle(). THREAD: loop, or a worker if blocking().
  evh_status handle(const evh_event& event, evh_call* call) { return library_->desc().handle(instance_, &event, call); }

  const std::string& name() const noexcept { return name_; }
  const Library& library() const noexcept { return *library_; }
  bool blocking() const noexcept { return library_->blocking(); }
  bool initialised() const noexcept { return initialised_; }
  const std::string& envPrefix() const noexcept { return env_prefix_; }
  spdlog::logger& logger() const noexcept { return *logger_; }
  HostServices& services() const noexcept { return services_; }
  evh_host* cHandle() noexcept { return &c_handle_; }

  std::vector<MetricValue> metrics() const;

  // Used by the host API trampolines.
  void setInitError(std::string_view msg);
  evh_metric* registerMetric(std::string_view name, evh_metric_kind kind, std::string_view help);

 private:
  std::string name_;
  LibraryPtr library_;
  HostServices& services_;
  std::string env_prefix_;
  std::shared_ptr<spdlog::logger> logger_;
  evh_host c_handle_;
  void* instance_ = nullptr;
  bool initialised_ = false;
  std::string init_error_;
  mutable std::mutex metrics_mutex_;
  std::map<std::string, std::unique_ptr<evh_metric>, std::less<>> metrics_;
};

// The host function table given to every plugin (one static instance).
const evh_host_api& hostApi() noexcept;

}  // namespace evh::plugin
