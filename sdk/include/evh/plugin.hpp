// evh/plugin.hpp -- header-only C++17 wrapper over the evhost plugin C ABI.
//
// Write a class deriving from evh::Plugin with a constructor
// (evh::Host host, std::string_view config_json) and a handle() method, then
// export it with EVH_PLUGIN(Class, "name", "version"):
//
//   class Hello final : public evh::Plugin {
//    public:
//     Hello(evh::Host host, std::string_view) : Plugin(host) {}
//     evh::Result handle(const evh::Event& ev, evh::Call&) override {
//       host().info("hello " + std::string(ev.type()));
//       return evh::Result::ok();
//     }
//   };
//   EVH_PLUGIN(Hello, "hello", "1.0.0")
//
// Optional static members of the class tune the descriptor:
//   static constexpr uint32_t kFlags = EVH_PLUGIN_BLOCKING;   // default 0 (inline)
//   static constexpr uint32_t kMaxConcurrency = 1;            // default 0
//   static constexpr const char* kDescription = "...";        // default nullptr
//   static void validateConfig(std::string_view config_json, evh::ConfigErrors& errors);
//       // ABI 1.3: the descriptor's validate_config (default: none). Parse
//       // with the code the constructor uses, adding every problem to
//       // `errors` instead of throwing at the first; see evh::ConfigErrors.
//
// Every exception is caught at the boundary: from the constructor it fails
// init() with its message; from validateConfig() it is reported as a problem
// of the whole block; from handle() it answers EVH_RETRY with what(),
// or EVH_REJECT when it is an evh::Reject; from a reply callback or a posted
// function it is logged. Nothing of std:: crosses the C ABI.
#pragma once

#include <evh/plugin.h>

#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <initializer_list>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace evh {

inline std::string_view view(evh_str s) noexcept {
  return s.len == 0 ? std::string_view() : std::string_view(s.ptr, s.len);
}
inline evh_str str(std::string_view s) noexcept { return evh_str{s.data(), s.size()}; }

enum class LogLevel : int32_t {
  Trace = EVH_LOG_TRACE,
  Debug = EVH_LOG_DEBUG,
  Info = EVH_LOG_INFO,
  Warn = EVH_LOG_WARN,
  Error = EVH_LOG_ERROR,
  Critical = EVH_LOG_CRITICAL,
};

// Throw from handle() to answer EVH_REJECT (permanent failure, no retry).
class Reject : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The outcome of handle().
class Result {
 public:
  static Result ok() { return Result(EVH_OK, {}); }
  static Result retry(std::string message = {}) { return Result(EVH_RETRY, std::move(message)); }
  static Result reject(std::string message = {}) { return Result(EVH_REJECT, std::move(message)); }
  // Only after Call::defer(): the outcome is given through the Completion.
  static Result pending() { return Result(EVH_PENDING, {}); }

  evh_status status() const noexcept { return status_; }
  const std::string& message() const noexcept { return message_; }

 private:
  Result(evh_status s, std::string m) : status_(s), message_(std::move(m)) {}
  evh_status status_;
  std::string message_;
};

// ABI 1.3: the problems a config check found, each with where it is as a
// JSON Pointer into the config ("/max_length", "/read_model/product_key",
// "" for the whole block) and what is wrong, without the key ("must be an
// integer from 1 to 100, got 0"; see evh_config_error_fn). One parsing
// function fills it for both sides: validateConfig() hands every problem to
// the host, and the constructor refuses the config with throwIfAny().
class ConfigErrors {
 public:
  struct Problem {
    std::string pointer;
    std::string message;
  };

  void add(std::string pointer, std::string message) { problems_.push_back({std::move(pointer), std::move(message)}); }
  bool empty() const noexcept { return problems_.empty(); }
  size_t size() const noexcept { return problems_.size(); }
  const std::vector<Problem>& problems() const noexcept { return problems_; }

  // "config /max_length: must be ...; config /key: ..." (for init()'s refusal).
  std::string summary() const {
    std::string out;
    for (const Problem& p : problems_) {
      out +=
          (out.empty() ? "" : "; ") + std::string("config ") + (p.pointer.empty() ? "" : p.pointer + ": ") + p.message;
    }
    return out;
  }
  // Throws std::invalid_argument(summary()) when anything was added.
  void throwIfAny() const {
    if (!problems_.empty()) {
      throw std::invalid_argument(summary());
    }
  }

 private:
  std::vector<Problem> problems_;
};

// `parent` followed by one more reference token, escaped as RFC 6901 says:
// pointerJoin("/read_model", "product_key") is "/read_model/product_key",
// pointerJoin("", "a/b") is "/a~1b".
inline std::string pointerJoin(std::string_view parent, std::string_view key) {
  std::string out(parent);
  out += '/';
  for (char c : key) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}
inline std::string pointerJoin(std::string_view parent, size_t index) {
  return std::string(parent) + "/" + std::to_string(index);
}

// A read-only view of one event; valid during handle() only.
class Event {
 public:
  explicit Event(const evh_event* e) noexcept : e_(e) {}
  std::string_view channel() const noexcept { return view(e_->channel); }
  std::string_view redisChannel() const noexcept { return view(e_->redis_channel); }
  std::string_view type() const noexcept { return view(e_->event_type); }
  std::string_view id() const noexcept { return view(e_->event_id); }
  std::string_view correlationId() const noexcept { return view(e_->correlation_id); }
  std::string_view timestamp() const noexcept { return view(e_->timestamp); }
  int64_t timestampMs() const noexcept { return e_->timestamp_ms; }
  std::string_view payload() const noexcept { return view(e_->payload); }
  std::string_view envelope() const noexcept { return view(e_->envelope); }
  std::string_view raw() const noexcept { return view(e_->raw); }
  std::string_view deliveryId() const noexcept { return view(e_->delivery_id); }
  // Empty unless the route has idempotency (see evh_event.idempotency_key).
  std::string_view idempotencyKey() const noexcept {
    return EVH_HAS_FIELD(e_, evh_event, idempotency_key) ? view(e_->idempotency_key) : std::string_view();
  }
  int64_t idempotencyTtlMs() const noexcept {
    return EVH_HAS_FIELD(e_, evh_event, idempotency_ttl_ms) ? e_->idempotency_ttl_ms : 0;
  }
  uint32_t attempt() const noexcept { return e_->attempt; }
  uint32_t maxAttempts() const noexcept { return e_->max_attempts; }
  bool lastAttempt() const noexcept { return e_->attempt >= e_->max_attempts; }
  bool fromBatch() const noexcept { return (e_->flags & EVH_EVENT_FROM_BATCH) != 0; }
  bool redelivered() const noexcept { return (e_->flags & EVH_EVENT_REDELIVERED) != 0; }
  const evh_event* c() const noexcept { return e_; }

 private:
  const evh_event* e_;
};

// A Redis reply (or its absence when the request failed); valid during the
// callback only.
class Reply {
 public:
  Reply(evh_status status, const evh_reply* r) noexcept : status_(status), r_(r) {}
  // True when Redis answered, and not with an error reply.
  bool ok() const noexcept { return r_ != nullptr && r_->type != EVH_REPLY_ERROR; }
  evh_status status() const noexcept { return status_; }
  evh_reply_type type() const noexcept { return r_ ? r_->type : 0; }
  bool isNil() const noexcept { return r_ && r_->type == EVH_REPLY_NIL; }
  bool isError() const noexcept { return r_ && r_->type == EVH_REPLY_ERROR; }
  std::string_view str() const noexcept { return r_ ? view(r_->str) : std::string_view(); }
  int64_t integer() const noexcept { return r_ ? r_->integer : 0; }
  size_t size() const noexcept { return r_ && r_->type == EVH_REPLY_ARRAY ? r_->elements : 0; }
  Reply operator[](size_t i) const noexcept { return Reply(status_, i < size() ? r_->element[i] : nullptr); }
  // A one-line description for logs: the error text, or why there is no reply.
  std::string describe() const {
    if (r_ == nullptr) {
      return status_ == EVH_ERR_CANCELLED ? "cancelled: host shutting down" : "redis unavailable";
    }
    return r_->type == EVH_REPLY_ERROR ? std::string(str()) : "ok";
  }
  const evh_reply* c() const noexcept { return r_; }

 private:
  evh_status status_;
  const evh_reply* r_;
};

using ReplyFn = std::function<void(const Reply&)>;

class Metric {
 public:
  Metric() = default;
  Metric(const evh_host_api* api, evh_metric* m) noexcept : api_(api), m_(m) {}
  void add(int64_t delta = 1) const noexcept {
    if (m_ != nullptr) {
      api_->metric_add(m_, delta);
    }
  }
  void set(int64_t value) const noexcept {
    if (m_ != nullptr) {
      api_->metric_set(m_, value);
    }
  }
  // One observation of a histogram (ABI 1.1; see Host::histogram).
  void observe(double value) const noexcept {
    if (m_ != nullptr && EVH_API_HAS(api_, metric_observe)) {
      api_->metric_observe(m_, value);
    }
  }
  explicit operator bool() const noexcept { return m_ != nullptr; }

 private:
  const evh_host_api* api_ = nullptr;
  evh_metric* m_ = nullptr;
};

// A metric's labels (ABI 1.1): {{"table", "orders"}, ...}. See
// evh_metric_label for the names and values allowed.
using Labels = std::vector<std::pair<std::string_view, std::string_view>>;

// The host's functions for one plugin instance. Cheap to copy; valid until
// the instance is destroyed. Thread rules are those of evh_host_api.
class Host {
 public:
  Host(const evh_host_api* api, evh_host* h) noexcept : api_(api), h_(h) {}

  void log(LogLevel level, std::string_view msg) const noexcept {
    api_->log(h_, static_cast<evh_log_level>(level), str(msg));
  }
  bool logEnabled(LogLevel level) const noexcept {
    return api_->log_enabled(h_, static_cast<evh_log_level>(level)) != 0;
  }
  void trace(std::string_view m) const noexcept { log(LogLevel::Trace, m); }
  void debug(std::string_view m) const noexcept { log(LogLevel::Debug, m); }
  void info(std::string_view m) const noexcept { log(LogLevel::Info, m); }
  void warn(std::string_view m) const noexcept { log(LogLevel::Warn, m); }
  void error(std::string_view m) const noexcept { log(LogLevel::Error, m); }

  std::string_view envPrefix() const noexcept { return view(api_->env_prefix(h_)); }

  // Sends a Redis command; cb (optional) runs once on the loop thread.
  evh_status command(const std::vector<std::string_view>& argv, ReplyFn cb = {}) const {
    std::vector<evh_str> args;
    args.reserve(argv.size());
    for (auto a : argv) {
      args.push_back(str(a));
    }
    return submit(cb, [&](evh_reply_cb fn, void* ud) {
      return api_->redis_command(h_, static_cast<int32_t>(args.size()), args.data(), fn, ud);
    });
  }
  evh_status command(std::initializer_list<std::string_view> argv, ReplyFn cb = {}) const {
    return command(std::vector<std::string_view>(argv), std::move(cb));
  }
  // The same from argc borrowed byte strings (read before it returns): for
  // a command of many arguments kept in one buffer, no view per argument.
  evh_status command(const evh_str* argv, size_t argc, ReplyFn cb = {}) const {
    if (argc > static_cast<size_t>(INT32_MAX)) {
      return EVH_ERR_INVALID;
    }
    return submit(cb, [&](evh_reply_cb fn, void* ud) {
      return api_->redis_command(h_, static_cast<int32_t>(argc), argv, fn, ud);
    });
  }

  // Publishes on `channel` (environment prefix added by the host).
  evh_status publish(std::string_view channel, std::string_view message, ReplyFn cb = {}) const {
    return submit(cb, [&](evh_reply_cb fn, void* ud) { return api_->publish(h_, str(channel), str(message), fn, ud); });
  }

  Metric counter(std::string_view name, std::string_view help = {}) const noexcept {
    return Metric(api_, api_->metric_register(h_, str(name), EVH_METRIC_COUNTER, str(help)));
  }
  Metric gauge(std::string_view name, std::string_view help = {}) const noexcept {
    return Metric(api_, api_->metric_register(h_, str(name), EVH_METRIC_GAUGE, str(help)));
  }
  // ABI 1.1 (an empty Metric on an older host): a counter or gauge with
  // labels, and histograms with their buckets' upper bounds.
  Metric counter(std::string_view name, std::string_view help, const Labels& labels) const {
    return spec(EVH_METRIC_COUNTER, name, help, labels, {});
  }
  Metric gauge(std::string_view name, std::string_view help, const Labels& labels) const {
    return spec(EVH_METRIC_GAUGE, name, help, labels, {});
  }
  Metric histogram(std::string_view name, std::string_view help, const std::vector<double>& buckets,
                   const Labels& labels = {}) const {
    return spec(EVH_METRIC_HISTOGRAM, name, help, labels, buckets);
  }

  // The name of a status code ("ok", "err_state", ...; ABI 1.1, "unknown"
  // on an older host).
  const char* statusText(evh_status status) const noexcept {
    return EVH_API_HAS(api_, status_text) ? api_->status_text(status) : "unknown";
  }

  // Runs fn once on the loop thread.
  evh_status post(std::function<void()> fn) const {
    struct Box {
      Host host;
      std::function<void()> fn;
    };
    auto* box = new Box{*this, std::move(fn)};
    evh_status s = api_->post(h_, &Host::runPosted<Box>, box);
    if (s != EVH_OK) {
      delete box;
    }
    return s;
  }

  const evh_host_api* api() const noexcept { return api_; }
  evh_host* handle() const noexcept { return h_; }

 private:
  struct ReplyBox {
    const evh_host_api* api;
    evh_host* h;
    ReplyFn fn;
  };

  Metric spec(evh_metric_kind kind, std::string_view name, std::string_view help, const Labels& labels,
              const std::vector<double>& buckets) const {
    if (!EVH_API_HAS(api_, metric_register_spec)) {
      return Metric();
    }
    std::vector<evh_metric_label> ls;
    ls.reserve(labels.size());
    for (const auto& [k, v] : labels) {
      ls.push_back(evh_metric_label{str(k), str(v)});
    }
    evh_metric_spec sp{};
    sp.struct_size = sizeof(sp);
    sp.kind = kind;
    sp.name = str(name);
    sp.help = str(help);
    sp.labels = ls.data();
    sp.label_count = static_cast<uint32_t>(ls.size());
    sp.bucket_count = static_cast<uint32_t>(buckets.size());
    sp.buckets = buckets.data();
    return Metric(api_, api_->metric_register_spec(h_, &sp));
  }

  template <class Send>
  evh_status submit(ReplyFn& cb, Send&& send) const {
    if (!cb) {
      return send(nullptr, nullptr);
    }
    auto* box = new ReplyBox{api_, h_, std::move(cb)};
    evh_status s = send(&Host::onReply, box);
    if (s != EVH_OK) {
      delete box;  // the host will not call back
    }
    return s;
  }

  static void onReply(void* ud, evh_status status, const evh_reply* reply) noexcept {
    std::unique_ptr<ReplyBox> box(static_cast<ReplyBox*>(ud));
    Host host(box->api, box->h);
    try {
      box->fn(Reply(status, reply));
    } catch (const std::exception& e) {
      host.error(std::string("exception in reply callback: ") + e.what());
    } catch (...) {
      host.error("unknown exception in reply callback");
    }
  }

  template <class Box>
  static void runPosted(void* ud) noexcept {
    std::unique_ptr<Box> box(static_cast<Box*>(ud));
    try {
      box->fn();
    } catch (const std::exception& e) {
      box->host.error(std::string("exception in posted function: ") + e.what());
    } catch (...) {
      box->host.error("unknown exception in posted function");
    }
  }

  const evh_host_api* api_;
  evh_host* h_;
};

namespace detail {
// Shared between a Call and its Completion: guarantees exactly one
// api->complete(), including when the Completion is dropped or handle()
// throws after deferring.
struct PendingState {
  const evh_host_api* api;
  evh_call* call;
  std::atomic<bool> done{false};

  PendingState(const evh_host_api* a, evh_call* c) : api(a), call(c) {}
  PendingState(const PendingState&) = delete;
  PendingState& operator=(const PendingState&) = delete;
  bool finish(evh_status status, std::string_view msg) noexcept {
    if (done.exchange(true)) {
      return false;
    }
    api->complete(call, status, str(msg));
    return true;
  }
  ~PendingState() { finish(EVH_RETRY, "pending call dropped without completion"); }
};
}  // namespace detail

// Completes a deferred call from any thread, exactly once. If the last copy
// is destroyed without complete(), the call completes with RETRY.
class Completion {
 public:
  explicit Completion(std::shared_ptr<detail::PendingState> s) : s_(std::move(s)) {}
  // Returns false when the call had already been completed.
  bool complete(const Result& r) const noexcept {
    return s_ && r.status() != EVH_PENDING && s_->finish(r.status(), r.message());
  }

 private:
  std::shared_ptr<detail::PendingState> s_;
};

// One handle() invocation.
class Call {
 public:
  Call(const evh_host_api* api, evh_call* call) noexcept : api_(api), call_(call) {}
  Call(const Call&) = delete;
  Call& operator=(const Call&) = delete;

  // Defers the outcome: keep the Completion (e.g. in a reply callback) and
  // complete it later. Once deferred, whatever handle() returns or throws
  // is routed through the Completion, so it completes exactly once.
  Completion defer() {
    if (!state_) {
      state_ = std::make_shared<detail::PendingState>(api_, call_);
    }
    return Completion(state_);
  }
  bool deferred() const noexcept { return static_cast<bool>(state_); }

  // For the EVH_PLUGIN trampolines.
  std::shared_ptr<detail::PendingState>& state() noexcept { return state_; }
  evh_call* c() const noexcept { return call_; }

 private:
  const evh_host_api* api_;
  evh_call* call_;
  std::shared_ptr<detail::PendingState> state_;
};

// Base class of a C++ plugin instance.
class Plugin {
 public:
  explicit Plugin(Host host) noexcept : host_(host) {}
  virtual ~Plugin() = default;
  Plugin(const Plugin&) = delete;
  Plugin& operator=(const Plugin&) = delete;

  // Handles one event; see evh_plugin_desc.handle for the thread.
  virtual Result handle(const Event& event, Call& call) = 0;

  // How this instance is doing (ABI 1.1, evh_plugin_desc.health): healthy
  // unless overridden. On the loop thread, when an operator or a probe
  // asks: answer from state you have, never block. An exception reads as
  // EVH_HEALTH_DOWN with its message.
  struct Health {
    evh_health state = EVH_HEALTH_OK;
    std::string detail;  // one line; cut to what the host gives room for
  };
  virtual Health health() { return {}; }

  const Host& host() const noexcept { return host_; }

 private:
  Host host_;
};

namespace detail {

template <class T, class = void>
struct Flags : std::integral_constant<uint32_t, 0> {};
template <class T>
struct Flags<T, std::void_t<decltype(T::kFlags)>> : std::integral_constant<uint32_t, T::kFlags> {};
template <class T, class = void>
struct MaxConcurrency : std::integral_constant<uint32_t, 0> {};
template <class T>
struct MaxConcurrency<T, std::void_t<decltype(T::kMaxConcurrency)>>
    : std::integral_constant<uint32_t, T::kMaxConcurrency> {};
template <class T, class = void>
struct Description {
  static constexpr const char* value = nullptr;
};
template <class T>
struct Description<T, std::void_t<decltype(T::kDescription)>> {
  static constexpr const char* value = T::kDescription;
};

template <class T, class = void>
struct ValidateConfig {
  static constexpr evh_status (*value)(evh_str, evh_config_error_fn, void*) = nullptr;
};

// The descriptor's validate_config over T::validateConfig: every problem
// reported, an exception reported as a problem of the whole block.
template <class T>
evh_status validateConfig(evh_str config, evh_config_error_fn report, void* ctx) noexcept {
  ConfigErrors errors;
  evh_status thrown = EVH_OK;
  const char* why = nullptr;
  std::string what;
  try {
    T::validateConfig(view(config), errors);
  } catch (const std::exception& e) {
    thrown = EVH_ERR_INTERNAL;
    try {
      what = std::string("validateConfig() threw: ") + e.what();
    } catch (...) {
      why = "validateConfig() threw (and its message could not be copied)";
    }
  } catch (...) {
    thrown = EVH_ERR_INTERNAL;
    why = "validateConfig() threw an unknown exception";
  }
  for (const ConfigErrors::Problem& p : errors.problems()) {
    report(ctx, str(p.pointer), str(p.message));
  }
  if (thrown != EVH_OK) {
    report(ctx, str(""), str(why != nullptr ? std::string_view(why) : std::string_view(what)));
    return thrown;
  }
  return errors.empty() ? EVH_OK : EVH_ERR_INVALID;
}

template <class T>
struct ValidateConfig<
    T, std::void_t<decltype(T::validateConfig(std::declval<std::string_view>(), std::declval<ConfigErrors&>()))>> {
  static constexpr evh_status (*value)(evh_str, evh_config_error_fn, void*) = &validateConfig<T>;
};

template <class T>
evh_status init(const evh_host_api* api, evh_host* h, evh_str config, void** out) noexcept {
  static_assert(std::is_base_of_v<Plugin, T>, "EVH_PLUGIN class must derive from evh::Plugin");
  try {
    *out = static_cast<Plugin*>(new T(Host(api, h), view(config)));
    return EVH_OK;
  } catch (const std::exception& e) {
    api->set_error(h, str(e.what()));
  } catch (...) {
    api->set_error(h, str("unknown exception in plugin constructor"));
  }
  return EVH_ERR_INTERNAL;
}

inline evh_status finishCall(const evh_host_api* api, Call& call, evh_status status, std::string_view msg) noexcept {
  if (call.deferred()) {
    // The Completion may already be in flight: route this outcome through
    // it (a no-op when it completed first) and answer PENDING.
    if (status != EVH_PENDING) {
      call.state()->finish(status, msg);
    }
    call.state().reset();
    return EVH_PENDING;
  }
  if (status == EVH_PENDING) {
    status = EVH_RETRY;
    msg = "handle() returned Result::pending() without Call::defer()";
  }
  if (status != EVH_OK && !msg.empty()) {
    api->call_set_error(call.c(), str(msg));
  }
  return status;
}

inline evh_status handle(void* instance, const evh_event* ev, evh_call* c) noexcept {
  auto* self = static_cast<Plugin*>(instance);
  const evh_host_api* api = self->host().api();
  Call call(api, c);
  try {
    Result r = self->handle(Event(ev), call);
    return finishCall(api, call, r.status(), r.message());
  } catch (const Reject& e) {
    return finishCall(api, call, EVH_REJECT, e.what());
  } catch (const std::exception& e) {
    return finishCall(api, call, EVH_RETRY, e.what());
  } catch (...) {
    return finishCall(api, call, EVH_RETRY, "unknown exception in handle()");
  }
}

inline void shutdown(void* instance) noexcept { delete static_cast<Plugin*>(instance); }

inline void copyDetail(std::string_view text, char* out, size_t size) noexcept {
  if (size == 0) {
    return;
  }
  const size_t n = text.size() < size - 1 ? text.size() : size - 1;
  text.copy(out, n);
  out[n] = '\0';
}

inline evh_health health(void* instance, char* detail, size_t size) noexcept {
  try {
    Plugin::Health h = static_cast<Plugin*>(instance)->health();
    copyDetail(h.detail, detail, size);
    return h.state;
  } catch (const std::exception& e) {
    copyDetail(std::string("health() threw: ") + e.what(), detail, size);
  } catch (...) {
    copyDetail("health() threw an unknown exception", detail, size);
  }
  return EVH_HEALTH_DOWN;
}

template <class T>
const evh_plugin_desc* descriptor(const char* name, const char* version) noexcept {
  static const evh_plugin_desc desc = {
      sizeof(evh_plugin_desc), EVH_ABI_VERSION,          name,     version,         Description<T>::value,
      Flags<T>::value,         MaxConcurrency<T>::value, &init<T>, &detail::handle, &detail::shutdown,
      &detail::health,         ValidateConfig<T>::value,
  };
  return &desc;
}

}  // namespace detail
}  // namespace evh

// Exports Class as the plugin of this shared object. Use once per plugin.
#define EVH_PLUGIN(Class, name, version)                                                 \
  EVH_PLUGIN_EXPORT const evh_plugin_desc* evh_plugin_entry(uint32_t host_abi_version) { \
    (void)host_abi_version;                                                              \
    return ::evh::detail::descriptor<Class>(name, version);                              \
  }
