// Plugin instances and the evh_host_api trampolines into the host.
#include "plugin/instance.h"

#include "common/log.h"
#include "loop/current_call.h"
#include "plugin/call_table.h"
#include "plugin/status.h"
#include "plugin/versioned.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cmath>

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
  for (int32_t i = 0; i < argc; ++i) {
    if (argv[i].ptr == nullptr && argv[i].len != 0) {
      return EVH_ERR_INVALID;
    }
  }
  try {
    return in->services().redisCommandBorrowed(*in, argc, argv, cb, ud);
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
  void* counting = nullptr;  // the wrapped callback's data, until the request is handed over
  evh_status s = EVH_ERR_INTERNAL;
  try {
    std::string key = in->envPrefix() + std::string(sv(channel));
    const char* command = in->services().shardedChannel(key) ? "SPUBLISH" : "PUBLISH";
    std::vector<std::string> args{command, std::move(key), std::string(sv(message))};
    const PublishStats::Wrapped counted =
        in->publishStats().wrap(in->publishStats().of(sv(channel)), cb, ud, in->logger());
    counting = counted.user_data;
    s = in->services().redisCommand(*in, std::move(args), counted.cb, counted.user_data);
  } catch (const std::bad_alloc&) {
    s = EVH_ERR_NOMEM;
  } catch (const std::exception& e) {
    in->logger().error("publish: {}", e.what());
    s = EVH_ERR_INTERNAL;
  }
  if (s != EVH_OK && counting != nullptr) {
    PublishStats::abandon(counting);  // no callback will come: a failure
  }
  return s;
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

constexpr uint32_t kMaxLabels = 8;
constexpr uint32_t kMaxBuckets = 32;
constexpr double kHistogramScale = 1e6;  // observations kept in millionths of the unit
constexpr double kMaxScaled = 9e18;      // within int64_t
constexpr double kMaxBound = 9e12;       // a bound in the unit, scaled within int64_t
constexpr size_t kHealthDetailBytes = 256;
// Series one instance may hold: a plugin that labels by something unbounded
// (an id) is refused at this many instead of growing evhost's memory.
constexpr size_t kMaxSeriesPerInstance = 1000;

// Why a plugin's label cannot be used; empty when it can.
std::string labelProblem(std::string_view key, std::string_view value) {
  const bool key_ok = !key.empty() && key.size() <= 64 &&
                      (std::islower(static_cast<unsigned char>(key[0])) != 0 || key[0] == '_') &&
                      std::all_of(key.begin(), key.end(), [](char c) {
                        return std::islower(static_cast<unsigned char>(c)) != 0 ||
                               std::isdigit(static_cast<unsigned char>(c)) != 0 || c == '_';
                      });
  if (!key_ok) {
    return "invalid label name (want [a-z_][a-z0-9_]*, at most 64 bytes)";
  }
  if (key == "plugin" || key == "le" || key == "quantile" || key.substr(0, 2) == "__") {
    return "label name \"" + std::string(key) + "\" is reserved";
  }
  if (value.size() > 256 || !std::all_of(value.begin(), value.end(), [](char c) { return c >= 0x20 && c <= 0x7e; })) {
    return "label \"" + std::string(key) + "\": the value must be printable ASCII, at most 256 bytes";
  }
  return "";
}

// Why a histogram's buckets cannot be used; fills `scaled` when they can.
std::string bucketProblem(const evh_metric_spec& spec, std::vector<int64_t>& scaled) {
  if (spec.bucket_count == 0 || spec.bucket_count > kMaxBuckets || spec.buckets == nullptr) {
    return "a histogram needs 1 to " + std::to_string(kMaxBuckets) + " buckets";
  }
  for (uint32_t i = 0; i < spec.bucket_count; ++i) {
    const double b = spec.buckets[i];
    if (!std::isfinite(b) || std::fabs(b) > kMaxBound) {
      return "bucket " + std::to_string(i) + " is not a finite number within 9e12";
    }
    const auto v = static_cast<int64_t>(std::llround(b * kHistogramScale));
    if (!scaled.empty() && v <= scaled.back()) {
      return "buckets must increase strictly (at a resolution of 1e-6): bucket " + std::to_string(i);
    }
    scaled.push_back(v);
  }
  return "";
}

const char* apiStatusText(evh_status status) noexcept { return statusName(status); }

evh_metric* apiMetricRegisterSpec(evh_host* h, const evh_metric_spec* spec) noexcept {
  Instance* in = self(h);
  if (in == nullptr || spec == nullptr) {
    return nullptr;
  }
  try {
    evh_metric_spec copy;
    copyVersioned(spec, copy);  // only what the plugin compiled
    return in->registerMetric(copy);
  } catch (...) {
    in->logger().error("metric_register_spec: out of memory");
    return nullptr;
  }
}

void apiMetricObserve(evh_metric* m, double value) noexcept {
  if (m == nullptr || m->kind != EVH_METRIC_HISTOGRAM || !std::isfinite(value)) {
    return;
  }
  // In millionths of the unit, the resolution the buckets were kept to.
  const double scaled = std::clamp(value * kHistogramScale, -kMaxScaled, kMaxScaled);
  m->histogram.observe(static_cast<int64_t>(std::llround(scaled)));
}

const evh_host_api kApi = {
    sizeof(evh_host_api),
    EVH_ABI_VERSION,
    &apiLog,
    &apiLogEnabled,
    &apiSetError,
    &apiCallSetError,
    &apiComplete,
    &apiPublish,
    &apiRedisCommand,
    &apiEnvPrefix,
    &apiMetricRegister,
    &apiMetricAdd,
    &apiMetricSet,
    &apiPost,
    // ABI 1.1
    &apiStatusText,
    &apiMetricRegisterSpec,
    &apiMetricObserve,
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
      stats_(stats, {{"plugin", name_}}) {
  // What the last checkHealth() kept. The instance's own registration, so
  // that it goes with the instance: while a reload's successor of the same
  // name lives too, the newest registration is the one read (ops/stats.h).
  stats_.computedGauge("evhost_plugin_health", "what the plugin's health callback answers: 0 ok, 1 degraded, 2 down",
                       [this] { return static_cast<double>(health_); });
}

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
  evh_metric_spec spec{};
  spec.struct_size = sizeof(spec);
  spec.kind = kind;
  spec.name = evh_str{name.data(), name.size()};
  spec.help = evh_str{help.data(), help.size()};
  if (kind == EVH_METRIC_HISTOGRAM) {
    logger_->error("metric_register: \"{}\" refused: a histogram needs buckets (metric_register_spec)", name);
    return nullptr;
  }
  return registerMetric(spec);
}

evh_metric* Instance::registerMetric(const evh_metric_spec& spec) {
  const std::string_view name = sv(spec.name);
  auto refuse = [&](const std::string& why) -> evh_metric* {
    logger_->error("metric_register: \"{}\" refused: {}", name, why);
    return nullptr;
  };
  if (!validMetricName(name)) {
    return refuse("invalid name: [a-z0-9_]+, at most 128 bytes");
  }
  if (spec.kind != EVH_METRIC_COUNTER && spec.kind != EVH_METRIC_GAUGE && spec.kind != EVH_METRIC_HISTOGRAM) {
    return refuse("unknown kind " + std::to_string(spec.kind));
  }
  MetricShape shape{spec.kind, std::string(sv(spec.help)), {}, {}};
  ops::Labels labels;
  if (spec.label_count > kMaxLabels || (spec.label_count > 0 && spec.labels == nullptr)) {
    return refuse("labels: at most " + std::to_string(kMaxLabels) + ", and not NULL when label_count > 0");
  }
  for (uint32_t i = 0; i < spec.label_count; ++i) {
    const std::string_view key = sv(spec.labels[i].name);
    const std::string_view value = sv(spec.labels[i].value);
    if (std::string why = labelProblem(key, value); !why.empty()) {
      return refuse(why);
    }
    labels.emplace_back(std::string(key), std::string(value));
  }
  std::sort(labels.begin(), labels.end());
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i > 0 && labels[i].first == labels[i - 1].first) {
      return refuse("label \"" + labels[i].first + "\" given twice");
    }
    shape.label_names.push_back(labels[i].first);
  }
  ops::Buckets buckets{{}, kHistogramScale};
  if (spec.kind == EVH_METRIC_HISTOGRAM) {
    if (std::string why = bucketProblem(spec, buckets.bounds); !why.empty()) {
      return refuse(why);
    }
    shape.buckets.assign(spec.buckets, spec.buckets + spec.bucket_count);
  } else if (spec.bucket_count != 0) {
    return refuse("buckets given for a counter or gauge");
  }
  std::string key(name);
  for (const auto& [k, v] : labels) {
    key += '\0';
    key += v;
  }
  std::lock_guard<std::mutex> lock(metrics_mutex_);
  if (auto known = shapes_.find(name); known != shapes_.end()) {
    const MetricShape& was = known->second;
    if (was.kind != shape.kind || was.help != shape.help || was.label_names != shape.label_names ||
        was.buckets != shape.buckets) {
      return refuse("registered before with another kind, help text, label names or buckets");
    }
  }
  if (auto it = metrics_.find(key); it != metrics_.end()) {
    return it->second.get();
  }
  if (metrics_.size() >= kMaxSeriesPerInstance) {
    return refuse("this instance already has " + std::to_string(kMaxSeriesPerInstance) +
                  " series (label values must come from a small fixed set, never from events)");
  }
  auto m = std::make_unique<evh_metric>();
  m->kind = spec.kind;
  const std::string exported = exportedMetricName(library_->name(), name, spec.kind);
  try {
    if (spec.kind == EVH_METRIC_COUNTER) {
      m->counter = stats_.sharedCounter(exported, shape.help, labels);
    } else if (spec.kind == EVH_METRIC_GAUGE) {
      m->gauge = stats_.sharedGauge(exported, shape.help, labels);
    } else {
      m->histogram = stats_.sharedHistogram(exported, shape.help, buckets, labels);
    }
  } catch (const ops::StatsError& e) {
    // Another instance of this library registered it differently: the
    // families are shared.
    return refuse(e.what());
  }
  shapes_.emplace(std::string(name), std::move(shape));
  evh_metric* raw = m.get();
  metrics_.emplace(std::move(key), std::move(m));
  return raw;
}

evh_health Instance::checkHealth() {
  std::string& detail = health_detail_;
  detail.clear();
  const auto fn = library_->desc().health;
  if (fn == nullptr || !initialised_) {
    return health_ = EVH_HEALTH_OK;
  }
  char buf[kHealthDetailBytes] = {};
  evh_health h = EVH_HEALTH_OK;
  {
    const CallSite site{name_, "health", nullptr, library_->desc().name};  // named by the watchdog and on a crash
    CallScope scope(CurrentCall::process(), site);
    h = fn(instance_, buf, sizeof(buf));
  }
  buf[sizeof(buf) - 1] = '\0';  // whatever the plugin wrote
  detail.assign(buf);
  // Shown in /status and logs: printable ASCII only (the rest becomes '?').
  for (char& c : detail) {
    if (c < 0x20 || c > 0x7e) {
      c = '?';
    }
  }
  if (h != EVH_HEALTH_OK && h != EVH_HEALTH_DEGRADED && h != EVH_HEALTH_DOWN) {
    detail = "health() answered an unknown value " + std::to_string(h) + (detail.empty() ? "" : ": " + detail);
    return health_ = EVH_HEALTH_DOWN;
  }
  return health_ = h;
}

}  // namespace evh::plugin
