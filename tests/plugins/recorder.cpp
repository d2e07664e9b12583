// recorder: a test plugin that records every event it is given by RPUSHing
// one line to a Redis list through the host's async command API, and only
// then completes the call (PENDING), so a record means "handled".
//
// Config: {"key": "seen", "tag": "recorder", "sleep_ms": 0,
//          "answer": {"SOME_TYPE": "retry" | "reject" | "throw" | "pending_forever" | "die" | "segv"},
//          ("die": SIGKILL, no report; "segv": a store to address 0x10, which
//          evhost's fatal-signal handler reports)
//          "fail_until_attempt": 0,   (answer RETRY while attempt <= this)
//          "atomic": false,           (idempotent routes: record and mark in one EVAL)
//          "mark_redelivered": false, (tag "redelivered" when EVH_EVENT_REDELIVERED is set)
//          "publish_to": ""}         (a channel to publish each event's envelope on, through the host)
// Record: tag|eventType|eventId|correlationId|attempt|channel|redisChannel|timestamp|timestampMs|payload
// Built twice: recorder (inline) and slow_recorder (EVH_PLUGIN_BLOCKING,
// sleeps sleep_ms in handle() to stand for blocking work).
#include <evh/plugin.hpp>

#include <nlohmann/json.hpp>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

const std::string kRedelivered = "redelivered";

class Recorder final : public evh::Plugin {
 public:
#ifdef EVH_TEST_BLOCKING
  static constexpr uint32_t kFlags = EVH_PLUGIN_BLOCKING;
  static constexpr uint32_t kMaxConcurrency = 1;
#endif

  Recorder(evh::Host host, std::string_view config) : Plugin(host) {
    auto j = nlohmann::json::parse(config);
    key_ = j.value("key", "seen");
    tag_ = j.value("tag", "recorder");
    sleep_ms_ = j.value("sleep_ms", 0);
    fail_until_attempt_ = j.value("fail_until_attempt", 0U);
    atomic_ = j.value("atomic", false);
    mark_redelivered_ = j.value("mark_redelivered", false);
    publish_to_ = j.value("publish_to", "");
    if (j.contains("answer")) {
      answers_ = j["answer"].get<std::map<std::string, std::string>>();
    }
  }

  evh::Result handle(const evh::Event& ev, evh::Call& call) override {
    if (sleep_ms_ > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms_));
    }
    if (ev.attempt() <= fail_until_attempt_) {
      return evh::Result::retry("recorder fails attempt " + std::to_string(ev.attempt()));
    }
    auto a = answers_.find(std::string(ev.type()));
    if (a != answers_.end()) {
      if (a->second == "pending_forever") {
        forgotten_.push_back(call.defer());  // completed only when the plugin shuts down
        return evh::Result::pending();
      }
      if (a->second == "retry") {
        return evh::Result::retry("recorder was told to retry");
      }
      if (a->second == "reject") {
        return evh::Result::reject("recorder was told to reject");
      }
      if (a->second == "throw") {
        throw std::runtime_error("recorder was told to throw");
      }
      if (a->second == "die") {
        // evhost dies while this plugin is on the event: to the streams the
        // same as a segfault, without a sanitizer report.
        ::kill(::getpid(), SIGKILL);
      }
      if (a->second == "segv") {
        static volatile uintptr_t address = 0x10;  // volatile: the compiler cannot see it is bad
        *reinterpret_cast<volatile int*>(address) = 1;
      }
    }
    const std::string& tag = mark_redelivered_ && ev.redelivered() ? kRedelivered : tag_;
    std::string record =
        tag + "|" + std::string(ev.type()) + "|" + std::string(ev.id()) + "|" + std::string(ev.correlationId()) + "|" +
        std::to_string(ev.attempt()) + "|" + std::string(ev.channel()) + "|" + std::string(ev.redisChannel()) + "|" +
        std::string(ev.timestamp()) + "|" + std::to_string(ev.timestampMs()) + "|" + std::string(ev.payload());
    if (!publish_to_.empty()) {
      host().publish(publish_to_, ev.envelope());  // through the host: counted as what plugins publish
    }
    evh::Completion done = call.defer();
    if (atomic_ && !ev.idempotencyKey().empty()) {
      // The record and the idempotency mark in one step: exactly once.
      static constexpr const char* kScript =
          "if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[2]) then redis.call('RPUSH', KEYS[1], ARGV[1]) end "
          "return 1";
      evh_status s = host().command(
          {"EVAL", kScript, "2", key_, ev.idempotencyKey(), record, std::to_string(ev.idempotencyTtlMs())},
          [done](const evh::Reply& r) {
            done.complete(r.ok() ? evh::Result::ok() : evh::Result::retry("EVAL failed: " + r.describe()));
          });
      return s == EVH_OK ? evh::Result::pending() : evh::Result::retry("redis command refused: " + std::to_string(s));
    }
    evh_status s = host().command({"RPUSH", key_, record}, [done](const evh::Reply& r) {
      done.complete(r.ok() ? evh::Result::ok() : evh::Result::retry("RPUSH failed: " + r.describe()));
    });
    if (s != EVH_OK) {
      return evh::Result::retry("redis command refused: " + std::to_string(s));
    }
    return evh::Result::pending();
  }

 private:
  std::string key_;
  std::string tag_;
  int sleep_ms_ = 0;
  uint32_t fail_until_attempt_ = 0;
  bool atomic_ = false;            // with an idempotent route: mark and record in one EVAL
  std::string publish_to_;         // "publish_to": a channel each handled event's envelope is published on
  bool mark_redelivered_ = false;  // tag "redelivered" for EVH_EVENT_REDELIVERED events
  std::vector<evh::Completion> forgotten_;
  std::map<std::string, std::string> answers_;
};

}  // namespace

#ifdef EVH_TEST_BLOCKING
EVH_PLUGIN(Recorder, "slow_recorder", "1.0.0")
#else
EVH_PLUGIN(Recorder, "recorder", "1.0.0")
#endif
