// The dlq plugin's in-process test fixture: the plugin loaded through
// plugin::Registry with HostServices that run its commands against a real
// redis-server (or hold them back, or lose their replies), its log captured,
// and entries in the host's format. Used by dlq_plugin_test.cpp and
// dlq_unsure_test.cpp.
#pragma once

#include "dlq_settings.h"
#include "plugin/registry.h"
#include "redis/reply.h"
#include "support/fake_host.h"
#include "support/redis_server.h"
#include "support/temp_file.h"
#include "support/waiting_call.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

namespace evh::test {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

inline constexpr const char* kKey = "test:jollyjet:events:dlq";

// HostServices whose commands run synchronously against a real redis-server
// and call back on the calling thread (a test double may block; the host
// never does). hold() keeps the callbacks back, as a server that does not
// answer would.
class RedisServices final : public plugin::HostServices {
 public:
  explicit RedisServices(uint16_t port) : port_(port) {}
  ~RedisServices() override { release(EVH_ERR_CANCELLED); }

  evh_status redisCommand(plugin::Instance&, std::vector<std::string> argv, evh_reply_cb cb, void* user_data) override {
    std::unique_lock<std::mutex> lock(mutex_);
    ++commands_;
    if (hold_) {
      if (cb != nullptr) {
        held_.emplace_back(cb, user_data);
      }
      return EVH_OK;
    }
    ReplyPtr reply = run(argv);
    const bool lose = reply && lose_replies_ > 0 && argv.front() == lose_command_;
    if (lose) {
      --lose_replies_;
    }
    lock.unlock();
    if (cb != nullptr) {
      if (!reply || lose) {
        cb(user_data, EVH_ERR_UNAVAILABLE, nullptr);
      } else {
        redis::ReplyView view(reply.get());
        cb(user_data, EVH_OK, view.root());
      }
    }
    return EVH_OK;
  }

  evh_status post(plugin::Instance&, void (*fn)(void*), void* user_data) override {
    fn(user_data);
    return EVH_OK;
  }

  // The next n `command`s run in Redis but their replies are lost, as when
  // the connection drops between Redis's work and its answer.
  void loseReplies(const std::string& command, int n) {
    std::lock_guard<std::mutex> lock(mutex_);
    lose_command_ = command;
    lose_replies_ = n;
  }
  void hold() {
    std::lock_guard<std::mutex> lock(mutex_);
    hold_ = true;
  }
  // Answers every held request with `status` (no reply) and stops holding.
  void release(evh_status status) {
    std::vector<std::pair<evh_reply_cb, void*>> held;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      held.swap(held_);
      hold_ = false;
    }
    for (auto& [cb, ud] : held) {
      cb(ud, status, nullptr);
    }
  }
  size_t commands() {
    std::lock_guard<std::mutex> lock(mutex_);
    return commands_;
  }
  size_t held() {
    std::lock_guard<std::mutex> lock(mutex_);
    return held_.size();
  }

 private:
  ReplyPtr run(const std::vector<std::string>& argv) {
    if (!conn_) {
      conn_.reset(redisConnectWithTimeout("127.0.0.1", port_, timeval{0, 200000}));
      if (!conn_ || conn_->err != 0) {
        conn_.reset();
        return nullptr;
      }
    }
    std::vector<const char*> ptrs;
    std::vector<size_t> lens;
    for (const auto& a : argv) {
      ptrs.push_back(a.data());
      lens.push_back(a.size());
    }
    ReplyPtr r(static_cast<redisReply*>(
        redisCommandArgv(conn_.get(), static_cast<int>(argv.size()), ptrs.data(), lens.data())));
    if (!r) {
      conn_.reset();
    }
    return r;
  }

  uint16_t port_;
  std::mutex mutex_;
  RedisConn conn_;
  bool hold_ = false;
  std::string lose_command_;
  int lose_replies_ = 0;
  std::vector<std::pair<evh_reply_cb, void*>> held_;
  size_t commands_ = 0;
};

// Collects what the plugin logs.
class CaptureSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  size_t count(const std::string& needle) {
    std::lock_guard<std::mutex> lock(this->mutex_);
    size_t n = 0;
    for (const auto& l : lines_) {
      n += l.find(needle) != std::string::npos ? 1 : 0;
    }
    return n;
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    lines_.emplace_back(msg.payload.data(), msg.payload.size());
  }
  void flush_() override {}

 private:
  std::vector<std::string> lines_;
};

// One entry in the host's format; `extra` lands inside the object verbatim.
inline std::string entry(int n, const std::string& extra = "") {
  std::string id = std::to_string(n);
  return R"({"id":"dlq-)" + id + R"(","reason":"exhausted","eventId":"evt-)" + id +
         R"(","eventType":"PRODUCT_CREATED","correlationId":"req-)" + id +
         R"(","channel":"jollyjet:events:product","redisChannel":"test:jollyjet:events:product","plugin":"product",)"
         R"("error":{"name":"exhausted","message":"redis down"},"attempts":3,"retryCount":2,)"
         R"("timestamp":"2026-11-26T18:00:03.010Z",)" +
         extra + R"("originalEvent":{"eventId":"evt-)" + id +
         R"(","eventType":"PRODUCT_CREATED","payload":{"name":"caf\u00e9 \u2615 ☕"}}})";
}

class DlqPluginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/evh-dlq-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    spool_ = dir_ + "/spool.jsonl";
  }
  void TearDown() override {
    registry_.shutdownAll();
    fs::remove_all(dir_);
  }

  // Loads dlq.so as instance "dlq" with `config` merged over a spool file in
  // the test's folder. `capture`: collect its log in sink_ -- only while the
  // spool is empty at load, when the plugin's thread logs nothing until a flush
  // (a logger's sinks cannot be changed while another thread logs).
  plugin::Instance& load(const std::string& extra_config = "",
                         const std::string& prefix = "test:", bool capture = false) {
    std::string json = "{\"spool_file\":\"" + spool_ + "\"" + (extra_config.empty() ? "" : "," + extra_config) + "}";
    config::Plugin p;
    p.name = "dlq";
    p.path = std::string(EVH_BUNDLED_PLUGIN_DIR) + "/dlq.so";
    p.config_json = json;
    p.config_dir = ".";
    p.origin = config::Origin{"deploy.yaml", 9, "plugins.dlq"};
    registry_.load({p}, {}, services_, prefix);
    plugin::Instance* in = registry_.find("dlq");
    if (capture) {
      in->logger().sinks().push_back(sink_);
    }
    return *in;
  }

  std::string refusal(const std::string& config_json) {
    config::Plugin p;
    p.name = "dlq";
    p.path = std::string(EVH_BUNDLED_PLUGIN_DIR) + "/dlq.so";
    p.config_json = config_json;
    p.config_dir = ".";
    p.origin = config::Origin{"deploy.yaml", 9, "plugins.dlq"};
    try {
      registry_.load({p}, {}, services_, "test:");
    } catch (const plugin::LoadError& e) {
      return e.what();
    }
    ADD_FAILURE() << "expected config " << config_json << " to be refused";
    return {};
  }

  // Calls handle() as the host does for a dead-lettered event, and gives
  // the call's outcome: the plugin answers EVH_PENDING and completes the
  // call from its thread once the entry is stored (or not). `error`: the
  // outcome's message.
  evh_status deadLetter(plugin::Instance& in, const std::string& text, std::string& error) {
    evh_event ev = makeEvent("DEAD_LETTER", "dlq-x");
    ev.channel = evh_str{"jollyjet:events:dlq", 19};
    ev.redis_channel = evh_str{kKey, std::char_traits<char>::length(kKey)};
    ev.payload = evh_str{text.data(), text.size()};
    ev.envelope = ev.payload;
    ev.raw = ev.payload;
    WaitingCall call;
    const evh_status returned = in.handle(ev, call.handle());
    const WaitingCall::Outcome outcome = call.outcome(returned);
    EXPECT_NE(outcome.status, EVH_PENDING) << "the call was never completed";
    EXPECT_LE(call.completions(), 1) << "completed more than once";
    error = outcome.message;
    return outcome.status;
  }
  evh_status deadLetter(plugin::Instance& in, const std::string& text) {
    std::string error;
    evh_status s = deadLetter(in, text, error);
    EXPECT_EQ(error, "");
    return s;
  }

  std::vector<std::string> list(const std::string& key = kKey) {
    std::vector<std::string> out;
    ReplyPtr r = redis_.command({"LRANGE", key, "0", "-1"});
    for (size_t i = 0; r && i < r->elements; ++i) {
      out.emplace_back(r->element[i]->str, r->element[i]->len);
    }
    return out;
  }

  std::vector<std::string> spoolLines() {
    std::vector<std::string> out;
    std::istringstream in(readFile(spool_));
    for (std::string line; std::getline(in, line);) {
      out.push_back(line);
    }
    return out;
  }

  RedisServer redis_;
  RedisServices services_{redis_.port()};
  std::shared_ptr<CaptureSink> sink_ = std::make_shared<CaptureSink>();
  plugin::Registry registry_;
  std::string dir_;
  std::string spool_;
};

}  // namespace evh::test
