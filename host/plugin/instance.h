// One configured plugin instance and the evh_host_api table it is given.
#pragma once

#include "ops/stats.h"
#include "plugin/library.h"
#include "plugin/publish_stats.h"

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

// A plugin's metric: a series of the stats registry (ops/stats.h). Opaque
// to plugins, so its layout is not part of the ABI.
struct evh_metric {
  evh_metric_kind kind;
  evh::ops::SharedCounter counter;      // EVH_METRIC_COUNTER
  evh::ops::SharedGauge gauge;          // EVH_METRIC_GAUGE
  evh::ops::SharedHistogram histogram;  // EVH_METRIC_HISTOGRAM: observed in millionths of the unit
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
  // The same with argv borrowed for the duration of the call (argc > 0, no
  // null pointer with a length): a caller on the loop thread is sent at
  // once, without copying the arguments. This default copies them.
  // THREAD: any.
  virtual evh_status redisCommandBorrowed(Instance& from, int32_t argc, const evh_str* argv, evh_reply_cb cb,
                                          void* user_data) {
    std::vector<std::string> args;
    args.reserve(static_cast<size_t>(argc));
    for (int32_t i = 0; i < argc; ++i) {
      args.emplace_back(argv[i].ptr == nullptr ? "" : std::string(argv[i].ptr, argv[i].len));
    }
    return redisCommand(from, std::move(args), cb, user_data);
  }
  // Runs fn(user_data) once on the loop thread. THREAD: any.
  virtual evh_status post(Instance& from, void (*fn)(void*), void* user_data) = 0;
  // The channel (prefixed) is one the config marks sharded: publish() sends
  // SPUBLISH to it. THREAD: any.
  virtual bool shardedChannel(std::string_view /*channel*/) const { return false; }
};

// The name a plugin's metric is exported under: evhost_plugin_<library>_<name>,
// counters ending in _total (added unless the plugin's name has it), with
// the label plugin="<instance name>". The library's own name (its
// descriptor's, '-' read as '_') keeps two plugins' metrics of the same name
// apart; instances of one library share the families.
std::string exportedMetricName(std::string_view library, std::string_view metric, evh_metric_kind kind);

class Instance {
 public:
  // `name` is the instance name from the config (which is also its log tag).
  // Its metrics join `stats`, labelled plugin="<name>".
  Instance(std::string name, LibraryPtr library, HostServices& services, std::string env_prefix, ops::Registry& stats);
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
  const LibraryPtr& libraryPtr() const noexcept { return library_; }
  bool blocking() const noexcept { return library_->blocking(); }
  bool ownIdempotency() const noexcept { return library_->ownIdempotency(); }
  const std::string& envPrefix() const noexcept { return env_prefix_; }
  spdlog::logger& logger() const noexcept { return *logger_; }
  HostServices& services() const noexcept { return services_; }
  evh_host* cHandle() noexcept { return &c_handle_; }

  const ops::Registry& stats() const noexcept { return stats_.registry(); }

  // Used by the host API trampolines.
  void setInitError(std::string_view msg);
  evh_metric* registerMetric(std::string_view name, evh_metric_kind kind, std::string_view help);
  // ABI 1.1's metric_register_spec, `spec` read up to its struct_size.
  evh_metric* registerMetric(const evh_metric_spec& spec);
  // Asks the plugin's health callback (ABI 1.1; EVH_HEALTH_OK without one)
  // and keeps its answer: once per request to the loop from the ops
  // listener, whatever reads it then (readiness, evhost_plugin_health,
  // /status). THREAD: loop.
  evh_health checkHealth();
  // The answer the last checkHealth() kept (EVH_HEALTH_OK before the first),
  // and its line of explanation. THREAD: loop.
  evh_health health() const noexcept { return health_; }
  const std::string& healthDetail() const noexcept { return health_detail_; }
  // What the plugin publishes, counted per channel. THREAD: any.
  PublishStats& publishStats() noexcept { return publish_stats_; }

  // Retiring (a reload removed or replaced it): from now on its host
  // services refuse requests (EVH_ERR_CANCELLED), as they do for every
  // plugin once a stop reaches the plugins. THREAD: loop.
  void closeServices() noexcept { services_closed_.store(true); }
  bool servicesClosed() const noexcept { return services_closed_.load(); }
  // Callbacks the host owes this instance -- Redis replies and posted
  // functions accepted and not yet run (plugin/host_services.cpp counts
  // them) -- and which would enter its code: it is not shut down, nor its
  // library unloaded, while any is owed. THREAD: any.
  void owe() noexcept { owed_.fetch_add(1, std::memory_order_relaxed); }
  void paid() noexcept { owed_.fetch_sub(1, std::memory_order_acq_rel); }
  int64_t owed() const noexcept { return owed_.load(std::memory_order_acquire); }
  // Which load of this instance name it is: 1 from the start, and each
  // reload that replaces it makes the next (/status tells old from new
  // while both live). THREAD: loop.
  uint64_t generation() const noexcept { return generation_; }
  void setGeneration(uint64_t g) noexcept { generation_ = g; }

 private:
  std::string name_;
  LibraryPtr library_;
  HostServices& services_;
  std::string env_prefix_;
  std::shared_ptr<spdlog::logger> logger_;
  evh_host c_handle_;
  void* instance_ = nullptr;
  bool initialised_ = false;
  evh_health health_ = EVH_HEALTH_OK;
  std::string health_detail_;
  std::string init_error_;
  std::atomic<bool> services_closed_{false};
  std::atomic<int64_t> owed_{0};
  uint64_t generation_ = 1;
  std::mutex metrics_mutex_;
  struct MetricShape {  // what every registration of a name must repeat
    evh_metric_kind kind;
    std::string help;
    std::vector<std::string> label_names;
    std::vector<double> buckets;
  };
  std::map<std::string, MetricShape, std::less<>> shapes_;  // by name
  // By name and label values ("name\0v1\0v2...").
  std::map<std::string, std::unique_ptr<evh_metric>, std::less<>> metrics_;
  // The series behind metrics_; released when the instance goes, after
  // shutdown() (until which the plugin may write them).
  ops::Scope stats_;
  PublishStats publish_stats_{stats_};  // registers in stats_: declared after it
};

// The host function table given to every plugin (one static instance).
const evh_host_api& hostApi() noexcept;

}  // namespace evh::plugin
