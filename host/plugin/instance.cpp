// Plugin instances and the evh_host_api trampolines into the host.
#include "plugin/instance.h"

#include "common/log.h"
#include "loop/current_call.h"
#include "plugin/call_table.h"

#include <spdlog/spdlog.h>

#include <cctype>

namespace evh::plugin {
namespace {

std::string_view sv(evh_str s) noexcept {
  return s.len == 0 || s.ptr == nullptr ? std::string_view() : std::string_view(s.ptr, s.len);
}

spdlog::level::level_enum toSpd(evh_log_level level) noexcept {
  switch (level) {
    case EVH_LOG_TRACE:
      return spdlog::level::trace;
    case EVH_LOG_DEBUG:
      return spdlog::level::debug;
    case EVH_LOG_INFO:
      return spdlog::level::info;
    case EVH_LOG_WARN:
      return spdlog::level::warn;
    case EVH_LOG_ERROR:
      return spdlog::level::err;
    default:
      return level < EVH_LOG_TRACE ? spdlog::level::trace : spdlog::level::critical;
  }
}

Instance* self(evh_host* h) noexcept { return h != nullptr ? h->self : nullptr; }

// Every trampoline is a C entry point: it must not let an exception escape.
void apiLog(evh_host* h, evh_log_level level, evh_str msg) noexcept {
  if (Instance* in = self(h)) {
    try {
      in->logger().log(toSpd(level), "{}", sv(msg));
    } catch (...) {  // a log line lost to an allocation failure is not worth a crash
    }
  }
}

int32_t apiLogEnabled(evh_host* h, evh_log_level level) noexcept {
  Instance* in = self(h);
  return in != nullptr && in->logger().should_log(toSpd(level)) ? 1 : 0;
}

void apiSetError(evh_host* h, evh_str msg) noexcept {
  if (Instance* in = self(h)) {
    try {
      in->setInitError(sv(msg));
    } catch (...) {
      in->logger().error("set_error: out of memory copying the message");
    }
  }
}

void apiCallSetError(evh_call* call, evh_str msg) noexcept {
  if (call != nullptr) {
    try {
      CallTable::process().setError(call, sv(msg));  // a stale call: logged, ignored
    } catch (...) {
      log::host().error("call_set_error: out of memory copying the message");
    }
  }
}

evh_status apiComplete(evh_call* call, evh_status status, evh_str msg) noexcept {
  if (call == nullptr) {
    return EVH_ERR_INVALID;
  }
  if (status != EVH_OK && status != EVH_RETRY && status != EVH_REJECT) {
    return EVH_ERR_INVALID;
  }
  try {
    return CallTable::process().complete(call, status, sv(msg));  // EVH_ERR_STATE once the call is over
  } catch (...) {
    log::host().error("complete: unexpected exception");
    return EVH_ERR_INTERNAL;
  }
}

evh_status apiRedisCommand(evh_host* h, int32_t argc, const evh_str* argv, evh_reply_cb cb, void* ud) noexcept {
  Instance* in = self(h);
  if (in == nullptr || argc <= 0 || argv == nullptr) {
    return EVH_ERR_INVALID;
  }
  try {
    std::vector<std::string> args;
    args.reserve(static_cast<size_t>(argc));
    for (int32_t i = 0; i < argc; ++i) {
      if (argv[i].ptr == nullptr && argv[i].len != 0) {
        return EVH_ERR_INVALID;
      }
      args.emplace_back(sv(argv[i]));
    }
    return in->services().redisCommand(*in, std::move(args), cb, ud);
  } catch (const std::bad_alloc&) {
    return EVH_ERR_NOMEM;
  } catch (const std::exception& e) {
    in->logger().error("redis_command: {}", e.what());
    return EVH_ERR_INTERNAL;
  }
}

evh_status apiPublish(evh_host* h, evh_str channel, evh_str message, evh_reply_cb cb, void* ud) noexcept {
  Instance* in = self(h);
  if (in == nullptr || channel.len == 0 || (message.ptr == nullptr && message.len != 0)) {
    return EVH_ERR_INVALID;
  }
  try {
    std::vector<std::string> args{"PUBLISH", in->envPrefix() + std::string(sv(channel)), std::string(sv(message))};
    return in->services().redisCommand(*in, std::move(args), cb, ud);
  } catch (const std::bad_alloc&) {
    return EVH_ERR_NOMEM;
  } catch (const std::exception& e) {
    in->logger().error("publish: {}", e.what());
    return EVH_ERR_INTERNAL;
  }
}

evh_str apiEnvPrefix(evh_host* h) noexcept {
  Instance* in = self(h);
  if (in == nullptr) {
    return evh_str{"", 0};
  }
  return evh_str{in->envPrefix().c_str(), in->envPrefix().size()};
}

evh_metric* apiMetricRegister(evh_host* h, evh_str name, evh_metric_kind kind, evh_str help) noexcept {
  Instance* in = self(h);
  if (in == nullptr) {
    return nullptr;
  }
  try {
    return in->registerMetric(sv(name), kind, sv(help));
  } catch (...) {
    in->logger().error("metric_register: out of memory");
    return nullptr;
  }
}

// Any thread: the series are SharedCounter / SharedGauge (fetch_add).
void apiMetricAdd(evh_metric* m, int64_t delta) noexcept {
  if (m == nullptr) {
    return;
  }
  if (m->kind == EVH_METRIC_GAUGE) {
    m->gauge.add(delta);
  } else if (delta >= 0) {
    m->counter.inc(delta);
  }
}

void apiMetricSet(evh_metric* m, int64_t value) noexcept {
  if (m != nullptr && m->kind == EVH_METRIC_GAUGE) {
    m->gauge.set(value);
  }
}

evh_status apiPost(evh_host* h, void (*fn)(void*), void* ud) noexcept {
  Instance* in = self(h);
  if (in == nullptr || fn == nullptr) {
    return EVH_ERR_INVALID;
  }
  try {
    return in->services().post(*in, fn, ud);
  } catch (...) {
    return EVH_ERR_NOMEM;
  }
}

const evh_host_api kApi = {
    sizeof(evh_host_api), EVH_ABI_VERSION, &apiLog,       &apiLogEnabled,   &apiSetError,
    &apiCallSetError,     &apiComplete,    &apiPublish,   &apiRedisCommand, &apiEnvPrefix,
    &apiMetricRegister,   &apiMetricAdd,   &apiMetricSet, &apiPost,
};

bool validMetricName(std::string_view name) {
  if (name.empty() || name.size() > 128) {
    return false;
  }
  for (char c : name) {
    auto u = static_cast<unsigned char>(c);
    if (!(std::islower(u) || std::isdigit(u) || c == '_')) {
      return false;
    }
  }
  return true;
}

}  // namespace

const evh_host_api& hostApi() noexcept { return kApi; }

std::string exportedMetricName(std::string_view library, std::string_view metric, evh_metric_kind kind) {
  std::string out = "evhost_plugin_";
  for (char c : library) {
    out += c == '-' ? '_' : c;
  }
  out += '_';
  out += metric;
  constexpr std::string_view kTotal = "_total";
  if (kind == EVH_METRIC_COUNTER &&
      (metric.size() < kTotal.size() || metric.substr(metric.size() - kTotal.size()) != kTotal)) {
    out += kTotal;
  }
  return out;
}

Instance::Instance(std::string name, LibraryPtr library, HostServices& services, std::string env_prefix,
                   ops::Registry& stats)
    : name_(std::move(name)),
      library_(std::move(library)),
      services_(services),
      env_prefix_(std::move(env_prefix)),
      logger_(log::makeLogger(name_)),
      c_handle_{this},
      stats_(stats, {{"plugin", name_}}) {}

Instance::~Instance() { shutdown(); }

void Instance::init(const std::string& config_json) {
  init_error_.clear();
  void* out = nullptr;
  const CallSite site{name_, "init", nullptr, library_->desc().name};  // named by the watchdog and on a crash
  CallScope scope(CurrentCall::process(), site);
  evh_status s = library_->desc().init(&kApi, &c_handle_, evh_str{config_json.c_str(), config_json.size()}, &out);
  if (s != EVH_OK) {
    std::string why = init_error_.empty() ? "no message given (status " + std::to_string(s) + ")" : init_error_;
    throw LoadError("plugin \"" + name_ + "\" (" + library_->path() + "): init failed: " + why);
  }
  instance_ = out;
  initialised_ = true;
}

void Instance::shutdown() {
  if (!initialised_) {
    return;
  }
  initialised_ = false;
  if (library_->desc().shutdown != nullptr) {
    const CallSite site{name_, "shutdown", nullptr, library_->desc().name};  // named by the watchdog and on a crash
    CallScope scope(CurrentCall::process(), site);
    library_->desc().shutdown(instance_);
  }
  instance_ = nullptr;
}

void Instance::setInitError(std::string_view msg) { init_error_.assign(msg); }

evh_metric* Instance::registerMetric(std::string_view name, evh_metric_kind kind, std::string_view help) {
  if (!validMetricName(name) || (kind != EVH_METRIC_COUNTER && kind != EVH_METRIC_GAUGE)) {
    logger_->error("metric_register: invalid metric name \"{}\" or kind {}", name, kind);
    return nullptr;
  }
  std::lock_guard<std::mutex> lock(metrics_mutex_);
  auto it = metrics_.find(name);
  if (it != metrics_.end()) {
    if (it->second->kind != kind) {
      logger_->error("metric_register: \"{}\" already registered with another kind", name);
      return nullptr;
    }
    return it->second.get();
  }
  auto m = std::make_unique<evh_metric>();
  m->kind = kind;
  const std::string exported = exportedMetricName(library_->name(), name, kind);
  try {
    if (kind == EVH_METRIC_COUNTER) {
      m->counter = stats_.sharedCounter(exported, help);
    } else {
      m->gauge = stats_.sharedGauge(exported, help);
    }
  } catch (const ops::StatsError& e) {
    // Another instance of this library registered it with another help
    // text (or kind): the families are shared.
    logger_->error("metric_register: \"{}\" refused: {}", name, e.what());
    return nullptr;
  }
  evh_metric* raw = m.get();
  metrics_.emplace(std::string(name), std::move(m));
  return raw;
}

}  // namespace evh::plugin
