// stale_call: a C-ABI test plugin (no SDK wrapper, which never completes a
// call twice) that uses its evh_call after the call is over, as a buggy or
// slow third-party plugin would. Behaviour by eventType:
//   TWICE     PENDING; a thread completes the call (OK), waits 100 ms, then
//             completes it again and calls call_set_error on it
//   OK_THEN   answers OK; a thread waits 100 ms, then completes the call
//   LATE      PENDING; a thread completes the call after late_ms (config,
//             default 400: set the plugin's timeout_ms below it)
//   anything else: OK
// Each thread RPUSHes "<type>|<eventId>|<answer of the last complete()>" to
// the list `key` (config, default "stale") and logs the same, then every
// event's eventId is RPUSHed as "seen|<type>|<eventId>" by handle() itself.
// Threads are joined at shutdown.
#include <evh/plugin.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

evh_str lit(std::string_view s) { return evh_str{s.data(), s.size()}; }

struct StaleCall {
  const evh_host_api* api = nullptr;
  evh_host* host = nullptr;
  std::string key = "stale";
  int late_ms = 400;
  std::mutex mutex;  // guards threads
  std::vector<std::thread> threads;

  // From any thread: the host marshals the command to its loop.
  void record(const std::string& line) {
    evh_str argv[3] = {lit("RPUSH"), lit(key), lit(line)};
    api->redis_command(host, 3, argv, nullptr, nullptr);
    const std::string msg = "stale_call: " + line;
    api->log(host, EVH_LOG_INFO, lit(msg));
  }

  void later(std::function<void()> fn) {
    std::lock_guard<std::mutex> lock(mutex);
    threads.emplace_back(std::move(fn));
  }
};

evh_status staleInit(const evh_host_api* api, evh_host* host, evh_str config_json, void** out) {
  auto* self = new StaleCall;
  self->api = api;
  self->host = host;
  auto j = nlohmann::json::parse(std::string_view(config_json.ptr, config_json.len), nullptr, false);
  if (j.is_object()) {
    self->key = j.value("key", self->key);
    self->late_ms = j.value("late_ms", self->late_ms);
  }
  *out = self;
  return EVH_OK;
}

void sleepMs(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

evh_status staleHandle(void* instance, const evh_event* ev, evh_call* call) {
  auto* self = static_cast<StaleCall*>(instance);
  const evh_host_api* api = self->api;
  const std::string type(ev->event_type.ptr, ev->event_type.len);
  const std::string id(ev->event_id.ptr, ev->event_id.len);
  self->record("seen|" + type + "|" + id);
  if (type == "TWICE") {
    self->later([self, api, call, type, id] {
      sleepMs(20);
      const evh_status first = api->complete(call, EVH_OK, lit(""));
      sleepMs(100);
      const evh_status second = api->complete(call, EVH_OK, lit("second"));
      api->call_set_error(call, lit("set on a finished call"));
      self->record(type + "|" + id + "|" + std::to_string(first) + "," + std::to_string(second));
    });
    return EVH_PENDING;
  }
  if (type == "OK_THEN") {
    self->later([self, api, call, type, id] {
      sleepMs(100);
      const evh_status s = api->complete(call, EVH_OK, lit("after OK"));
      self->record(type + "|" + id + "|" + std::to_string(s));
    });
    return EVH_OK;
  }
  if (type == "LATE") {
    const int late_ms = self->late_ms;
    self->later([self, api, call, type, id, late_ms] {
      sleepMs(late_ms);
      const evh_status s = api->complete(call, EVH_OK, lit("late"));
      self->record(type + "|" + id + "|" + std::to_string(s));
    });
    return EVH_PENDING;
  }
  return EVH_OK;
}

void staleShutdown(void* instance) {
  auto* self = static_cast<StaleCall*>(instance);
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(self->mutex);
    threads.swap(self->threads);
  }
  for (auto& t : threads) {
    t.join();
  }
  delete self;
}

const evh_plugin_desc kDesc = {sizeof(evh_plugin_desc),
                               EVH_ABI_VERSION,
                               "stale_call",
                               "1.0.0",
                               "test plugin using its calls after they are over",
                               0,
                               0,
                               &staleInit,
                               &staleHandle,
                               &staleShutdown,
                               nullptr,
                               nullptr};

}  // namespace

EVH_PLUGIN_EXPORT const evh_plugin_desc* evh_plugin_entry(uint32_t host_abi_version) {
  (void)host_abi_version;
  return &kDesc;
}
