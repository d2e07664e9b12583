// scripted: a C-ABI test plugin (no SDK wrapper) whose answer per event is scripted by its eventType.
//
// Written directly against evh/plugin.h in C++, so that handle() can throw
// through the C ABI and start threads. The instance config {"answer": "X"}
// makes every event behave as eventType X. Behaviours:
//   OK, RETRY, REJECT                 answer that (with a message for RETRY/REJECT)
//   STATUS_42                         answer 42, which is no status
//   THROW                             throw std::runtime_error("scripted threw")
//   PENDING_POST                      PENDING; api->post completes it with OK
//   PENDING_POST_TWICE                as PENDING_POST, then completes again
//                                     (the second answer goes to gauge second_complete)
//   PENDING_THREAD                    PENDING; api->post starts a new thread (so
//                                     after handle() has returned) that completes it
//                                     with OK (the answer: gauge thread_complete,
//                                     counter thread_completes; joined at shutdown)
//   PENDING_NEVER                     PENDING, never completed
//   COMPLETE_EARLY_THEN_PENDING       complete(REJECT, "early") inside handle, then
//                                     PENDING (the answer: gauge early_complete)
//   COMPLETE_EARLY_TWICE              complete(OK) twice inside handle, then PENDING
//                                     (the second answer: gauge second_complete)
//   COMPLETE_THEN_OK                  complete(REJECT) inside handle, then OK (a bug)
//   SLEEP_<ms>                        sleep, then OK
//   HANG                              never return (sleeps until the process ends)
//   HOLD_<n>                          wait (at most 5 s) until n calls have run at
//                                     once, then OK; a timeout counts hold_timeouts
//   SEQ                               OK; eventId is a number that must be one more
//                                     than the previous SEQ's, else out_of_order grows
//   LOG_<n>                           log n info lines, then OK
//   CRASH_SEGV, CRASH_ABORT,          log "crashing on purpose: <what>", then crash in
//   CRASH_FPE, CRASH_ILL              handle(): a store to address 0x10, abort(), an
//                                     integer division by zero, a trap instruction
//   CRASH_IN_POST                     PENDING; the function it posts crashes (SIGSEGV)
// Every call also records: counters calls and returns (handle() returned, not
// thrown); gauges running, max_running, thread (a hash of the calling
// thread's id) and order (a sequence number shared by every instance of this
// library, so order across instances shows). The gauges holding a complete()
// answer start at 100, which is no status.
// Built three times: scripted (inline), scripted_serial (BLOCKING, max 1) and
// scripted_pair (BLOCKING, max 2), chosen by SCRIPTED_BLOCKING and
// SCRIPTED_MAX_CONCURRENCY.
#include <evh/plugin.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <initializer_list>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#ifndef SCRIPTED_NAME
#define SCRIPTED_NAME "scripted"
#endif
#ifndef SCRIPTED_MAX_CONCURRENCY
#define SCRIPTED_MAX_CONCURRENCY 0
#endif
#ifdef SCRIPTED_BLOCKING
#define SCRIPTED_FLAGS EVH_PLUGIN_BLOCKING
#else
#define SCRIPTED_FLAGS 0
#endif

namespace {

std::atomic<int64_t> g_order{0};  // shared by every instance of this library

evh_str lit(std::string_view s) { return evh_str{s.data(), s.size()}; }

struct Scripted {
  const evh_host_api* api = nullptr;
  evh_host* host = nullptr;
  std::string answer;  // from the config; empty: use the eventType

  evh_metric* calls = nullptr;
  evh_metric* returns = nullptr;
  evh_metric* running_gauge = nullptr;
  evh_metric* max_running_gauge = nullptr;
  evh_metric* thread = nullptr;
  evh_metric* order = nullptr;
  evh_metric* second_complete = nullptr;
  evh_metric* thread_complete = nullptr;
  evh_metric* thread_completes = nullptr;
  evh_metric* early_complete = nullptr;
  evh_metric* hold_timeouts = nullptr;
  evh_metric* out_of_order = nullptr;
  evh_metric* last_seq = nullptr;

  std::mutex mutex;  // guards running, max_running, threads; cv waits on it
  std::condition_variable cv;
  int64_t running = 0;
  int64_t max_running = 0;
  int64_t previous_seq = 0;
  std::vector<std::thread> threads;

  evh_metric* gauge(const char* name) {
    return api->metric_register(host, lit(name), EVH_METRIC_GAUGE, lit("scripted test plugin"));
  }
  evh_metric* counter(const char* name) {
    return api->metric_register(host, lit(name), EVH_METRIC_COUNTER, lit("scripted test plugin"));
  }
};

// A pending call waiting for a post from the loop.
struct Posted {
  Scripted* self;
  evh_call* call;
  bool twice;
};

constexpr int64_t kNoAnswer = 100;

void completePosted(void* user_data) {
  auto* p = static_cast<Posted*>(user_data);
  const evh_host_api* api = p->self->api;
  api->complete(p->call, EVH_OK, lit(""));
  if (p->twice) {
    // The call is still alive here: its finish is queued behind this post.
    api->metric_set(p->self->second_complete, api->complete(p->call, EVH_OK, lit("")));
  }
  delete p;
}

void startCompletingThread(void* user_data) {
  auto* p = static_cast<Posted*>(user_data);
  Scripted* self = p->self;
  evh_call* call = p->call;
  delete p;
  std::lock_guard<std::mutex> lock(self->mutex);
  self->threads.emplace_back([self, call] {
    evh_status s = self->api->complete(call, EVH_OK, lit(""));
    self->api->metric_set(self->thread_complete, s);
    self->api->metric_add(self->thread_completes, 1);
  });
}

bool startsWith(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

// Crashes on purpose (the fatal-signal tests). Built without UBSan's checks,
// which would report the division instead of letting it trap.
__attribute__((no_sanitize("undefined"))) void crash(std::string_view how) {
  static volatile uintptr_t address = 0x10;  // volatile: the compiler cannot see it is bad
  static volatile int numerator = 7;         // not 1: GCC turns 1 / x into a comparison
  static volatile int zero = 0;
  static volatile int quotient = 0;
  if (how == "SEGV") {
    *reinterpret_cast<volatile int*>(address) = 1;
  } else if (how == "ABORT") {
    std::abort();
  } else if (how == "FPE") {
    quotient = numerator / zero;
  } else if (how == "ILL") {
    __builtin_trap();
  }
  (void)quotient;
}

void crashPosted(void*) { crash("SEGV"); }

int64_t number(std::string_view s) { return std::strtoll(std::string(s).c_str(), nullptr, 10); }

evh_status answer(Scripted* self, std::string_view what, const evh_event* ev, evh_call* call) {
  const evh_host_api* api = self->api;
  if (what == "OK") {
    return EVH_OK;
  }
  if (what == "RETRY") {
    api->call_set_error(call, lit("scripted retry"));
    return EVH_RETRY;
  }
  if (what == "REJECT") {
    api->call_set_error(call, lit("scripted reject"));
    return EVH_REJECT;
  }
  if (what == "STATUS_42") {
    return 42;
  }
  if (what == "THROW") {
    throw std::runtime_error("scripted threw");
  }
  if (what == "PENDING_POST" || what == "PENDING_POST_TWICE" || what == "PENDING_THREAD") {
    auto* p = new Posted{self, call, what == "PENDING_POST_TWICE"};
    if (api->post(self->host, what == "PENDING_THREAD" ? &startCompletingThread : &completePosted, p) != EVH_OK) {
      delete p;
      api->call_set_error(call, lit("post refused"));
      return EVH_RETRY;
    }
    return EVH_PENDING;
  }
  if (what == "PENDING_NEVER") {
    return EVH_PENDING;
  }
  if (what == "COMPLETE_EARLY_THEN_PENDING") {
    api->metric_set(self->early_complete, api->complete(call, EVH_REJECT, lit("early")));
    return EVH_PENDING;
  }
  if (what == "COMPLETE_EARLY_TWICE") {
    api->complete(call, EVH_OK, lit(""));
    api->metric_set(self->second_complete, api->complete(call, EVH_OK, lit("")));
    return EVH_PENDING;
  }
  if (what == "COMPLETE_THEN_OK") {
    api->complete(call, EVH_REJECT, lit("completed, then answered OK"));
    return EVH_OK;
  }
  if (startsWith(what, "SLEEPREAD_")) {
    // Sleeps, then reads the whole event: after a timeout gave up on this
    // call, the host must still keep what the view points at alive.
    std::this_thread::sleep_for(std::chrono::milliseconds(number(what.substr(10))));
    uint64_t sum = 0;
    for (size_t i = 0; i < ev->payload.len; ++i) {
      sum += static_cast<unsigned char>(ev->payload.ptr[i]);
    }
    for (size_t i = 0; i < ev->event_id.len; ++i) {
      sum += static_cast<unsigned char>(ev->event_id.ptr[i]);
    }
    api->metric_add(self->returns, sum > 0 ? 0 : 1);  // keeps the reads
    return EVH_OK;
  }
  if (what == "HANG") {
    for (;;) {  // a handler that never returns: the host must cope
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  if (startsWith(what, "SLEEP_")) {
    std::this_thread::sleep_for(std::chrono::milliseconds(number(what.substr(6))));
    return EVH_OK;
  }
  if (startsWith(what, "HOLD_")) {
    const int64_t n = number(what.substr(5));
    std::unique_lock<std::mutex> lock(self->mutex);
    if (!self->cv.wait_for(lock, std::chrono::seconds(5), [self, n] { return self->max_running >= n; })) {
      api->metric_add(self->hold_timeouts, 1);
    }
    return EVH_OK;
  }
  if (startsWith(what, "LOG_")) {
    const int64_t n = number(what.substr(4));
    for (int64_t i = 1; i <= n; ++i) {
      char line[200];
      const int len = std::snprintf(line, sizeof line, "line %lld of %lld for event %.*s: some text to fill the log",
                                    static_cast<long long>(i), static_cast<long long>(n),
                                    static_cast<int>(ev->event_id.len), ev->event_id.ptr);
      api->log(self->host, EVH_LOG_INFO, evh_str{line, static_cast<size_t>(len)});
    }
    return EVH_OK;
  }
  if (startsWith(what, "CRASH_")) {
    const std::string line = "crashing on purpose: " + std::string(what);
    api->log(self->host, EVH_LOG_INFO, lit(line));
    if (what == "CRASH_IN_POST") {
      api->post(self->host, &crashPosted, nullptr);
      return EVH_PENDING;
    }
    crash(what.substr(6));
    api->call_set_error(call, lit("scripted: did not crash"));
    return EVH_REJECT;
  }
  if (what == "SEQ") {
    const int64_t seq = number(std::string_view(ev->event_id.ptr, ev->event_id.len));
    std::lock_guard<std::mutex> lock(self->mutex);
    if (seq != self->previous_seq + 1) {
      api->metric_add(self->out_of_order, 1);
    }
    self->previous_seq = seq;
    api->metric_set(self->last_seq, seq);
    return EVH_OK;
  }
  api->call_set_error(call, lit("scripted: unknown script"));
  return EVH_REJECT;
}

// Counts the calls running at once for the lifetime of one handle().
class Running {
 public:
  explicit Running(Scripted* self) : self_(self) {
    std::lock_guard<std::mutex> lock(self_->mutex);
    ++self_->running;
    if (self_->running > self_->max_running) {
      self_->max_running = self_->running;
      self_->api->metric_set(self_->max_running_gauge, self_->max_running);
    }
    self_->api->metric_set(self_->running_gauge, self_->running);
    self_->cv.notify_all();
  }
  ~Running() {
    std::lock_guard<std::mutex> lock(self_->mutex);
    --self_->running;
    self_->api->metric_set(self_->running_gauge, self_->running);
  }
  Running(const Running&) = delete;
  Running& operator=(const Running&) = delete;

 private:
  Scripted* self_;
};

evh_status scriptedInit(const evh_host_api* api, evh_host* host, evh_str config_json, void** out) {
  auto* self = new (std::nothrow) Scripted;
  if (self == nullptr) {
    return EVH_ERR_NOMEM;
  }
  self->api = api;
  self->host = host;
  auto config = nlohmann::json::parse(std::string_view(config_json.ptr, config_json.len), nullptr, false);
  if (config.is_object()) {
    self->answer = config.value("answer", "");
  }
  self->calls = self->counter("calls");
  self->returns = self->counter("returns");
  self->running_gauge = self->gauge("running");
  self->max_running_gauge = self->gauge("max_running");
  self->thread = self->gauge("thread");
  self->order = self->gauge("order");
  self->second_complete = self->gauge("second_complete");
  self->thread_complete = self->gauge("thread_complete");
  self->thread_completes = self->counter("thread_completes");
  self->early_complete = self->gauge("early_complete");
  self->hold_timeouts = self->counter("hold_timeouts");
  self->out_of_order = self->counter("out_of_order");
  self->last_seq = self->gauge("last_seq");
  for (evh_metric* m : {self->second_complete, self->thread_complete, self->early_complete}) {
    api->metric_set(m, kNoAnswer);
  }
  *out = self;
  return EVH_OK;
}

evh_status scriptedHandle(void* instance, const evh_event* ev, evh_call* call) {
  auto* self = static_cast<Scripted*>(instance);
  const evh_host_api* api = self->api;
  api->metric_add(self->calls, 1);
  api->metric_set(self->order, ++g_order);
  api->metric_set(self->thread, static_cast<int64_t>(std::hash<std::thread::id>{}(std::this_thread::get_id())));
  std::string_view what =
      self->answer.empty() ? std::string_view(ev->event_type.ptr, ev->event_type.len) : self->answer;
  evh_status status = EVH_OK;
  {
    Running running(self);
    status = answer(self, what, ev, call);
  }
  api->metric_add(self->returns, 1);
  return status;
}

void scriptedShutdown(void* instance) {
  auto* self = static_cast<Scripted*>(instance);
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
                               SCRIPTED_NAME,
                               "1.0.0",
                               "test plugin with scripted answers",
                               SCRIPTED_FLAGS,
                               SCRIPTED_MAX_CONCURRENCY,
                               &scriptedInit,
                               &scriptedHandle,
                               &scriptedShutdown,
                               nullptr,
                               nullptr};

}  // namespace

EVH_PLUGIN_EXPORT const evh_plugin_desc* evh_plugin_entry(uint32_t host_abi_version) {
  (void)host_abi_version;
  return &kDesc;
}
