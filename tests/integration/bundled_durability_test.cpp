// The bundled plugins across crashes: config/examples/durable.yaml as shipped, evhost SIGKILLed and restarted
// while product events flow through its stream; every visible effect once per event.
#include "support/evhost_process.h"
#include "support/redis_server.h"
#include "support/temp_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <signal.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace evh::test {
namespace {

using nlohmann::json;

constexpr const char* kDurableStream = "test:jollyjet:events:product";
constexpr const char* kDurableGroup = "jollyjet-product";
constexpr const char* kNotifications = "test:jollyjet:events:notifications";
constexpr const char* kCategorySet = "test:jollyjet:category:kitchen";
constexpr const char* kStop = "end-of-test";
// Hang guards only; the run takes about ten seconds.
constexpr auto kGuard = std::chrono::seconds(60);

std::string created(int i) {
  const std::string n = std::to_string(i);
  return R"({"eventId":"evt-)" + n +
         R"(","eventType":"PRODUCT_CREATED","timestamp":"2024-01-15T10:30:00.000Z",)"
         R"("correlationId":"req-)" +
         n + R"(","payload":{"productId":"p-)" + n + R"(","name":"Product )" + n +
         R"(","price":12.5,"category":"kitchen"}})";
}

// Counts the notifications published, by source eventId, on a connection
// subscribed before anything happens (as the admin dashboard would be),
// until the test publishes kStop.
class NotificationCounter {
 public:
  explicit NotificationCounter(const RedisServer& redis) : conn_(redis.connect()) {
    ReplyPtr r(static_cast<redisReply*>(redisCommand(conn_.get(), "SUBSCRIBE %s", kNotifications)));
    EXPECT_TRUE(r && r->type == REDIS_REPLY_ARRAY) << "SUBSCRIBE failed";
    redisSetTimeout(conn_.get(), timeval{120, 0});  // a hang guard
    thread_ = std::thread([this] { run(); });
  }
  ~NotificationCounter() {
    if (thread_.joinable()) {
      thread_.join();
    }
  }

  // Waits for kStop (published by the caller) and returns what was counted.
  std::map<std::string, int> finish() {
    thread_.join();
    return by_source_;
  }
  size_t total() const { return total_.load(); }
  const std::string& problem() const { return problem_; }

 private:
  void run() {
    for (;;) {
      void* raw = nullptr;
      if (redisGetReply(conn_.get(), &raw) != REDIS_OK || raw == nullptr) {
        problem_ = "subscriber connection failed";
        return;
      }
      ReplyPtr r(static_cast<redisReply*>(raw));
      if (r->type != REDIS_REPLY_ARRAY || r->elements != 3) {
        continue;
      }
      std::string text(r->element[2]->str, r->element[2]->len);
      if (text == kStop) {
        return;
      }
      json n = json::parse(text, nullptr, false);
      if (n.is_discarded() || !n.contains("payload")) {
        problem_ = "not a notification: " + text;
        continue;
      }
      ++by_source_[n["payload"].value("sourceEventId", std::string("?"))];
      ++total_;
    }
  }

  RedisConn conn_;
  std::map<std::string, int> by_source_;
  std::atomic<size_t> total_{0};
  std::string problem_;
  std::thread thread_;
};

class BundledDurabilityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/evh-durable-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    state_dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(state_dir_); }

  long long scard(const std::string& key) { return redis_.command({"SCARD", key})->integer; }
  long long llen(const std::string& key) { return redis_.command({"LLEN", key})->integer; }
  long long pending() {
    ReplyPtr r = redis_.command({"XPENDING", kDurableStream, kDurableGroup});
    return r->type == REDIS_REPLY_ARRAY && r->elements > 0 ? r->element[0]->integer : -1;
  }

  // The shipped example, with a stable consumer name; a private Redis, the
  // test environment, files in the state folder.
  std::unique_ptr<EvhostProcess> start() {
    return std::make_unique<EvhostProcess>(
        readFile(std::string(EVH_SOURCE_DIR) + "/config/examples/durable.yaml"), std::vector<std::string>{},
        std::vector<std::string>{"REDIS_HOST=127.0.0.1", "REDIS_PORT=" + std::to_string(redis_.port()), "EVH_ENV=test",
                                 "EVH_STATE_DIR=" + state_dir_, "EVH_CONSUMER=evhost-1"});
  }

  RedisServer redis_;
  std::string state_dir_;
};

// The issue's run at a CI size: 5,000 PRODUCT_CREATED entries added at about
// 2,500/s while evhost is SIGKILLed and restarted three times mid-flow. The
// product plugin writes its read model, the idempotency mark and the
// notification in one script; the audit plugin recognises lines it already
// wrote. So: 5,000 read models, exactly 5,000 notifications and 5,000 audit
// lines (one per eventId), nothing pending, nothing dead-lettered.
TEST_F(BundledDurabilityTest, KilledThreeTimesMidFlowEveryEffectOncePerEvent) {
  constexpr int kTotal = 5000;
  NotificationCounter notifications(redis_);
  std::unique_ptr<EvhostProcess> host = start();
  ASSERT_TRUE(host->waitForLog("plugin audit loaded")) << host->log();

  std::atomic<bool> publishing{true};
  std::thread publisher([&] {
    RedisConn pub = redis_.connect();
    constexpr int kChunk = 50;
    for (int start = 0; start < kTotal; start += kChunk) {
      for (int i = start; i < start + kChunk; ++i) {
        std::string msg = created(i);
        redisAppendCommand(pub.get(), "XADD %s * event %b", kDurableStream, msg.data(), msg.size());
      }
      for (int i = start; i < start + kChunk; ++i) {
        void* reply = nullptr;
        if (redisGetReply(pub.get(), &reply) != REDIS_OK) {
          ADD_FAILURE() << "XADD failed";
          publishing = false;
          return;
        }
        freeReplyObject(reply);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // about 2,500 a second
    }
    publishing = false;
  });

  // The supervisor: kill when another fifth of the events is applied, start
  // again at once.
  for (int kill = 1; kill <= 3; ++kill) {
    const long long at = kTotal * kill / 5;
    bool reached = eventually([&] { return scard(kCategorySet) >= at; }, kGuard);
    EXPECT_TRUE(reached) << "kill " << kill << ": " << scard(kCategorySet) << " read models\n" << host->log();
    const long long in_hand = pending();
    host->signal(SIGKILL);
    ASSERT_TRUE(host->waitExit().has_value());
    std::printf("[   info   ] kill %d at %lld read models, %lld entries pending\n", kill, scard(kCategorySet), in_hand);
    host = start();
  }
  publisher.join();
  EXPECT_FALSE(publishing.load());

  const std::string audit_path = state_dir_ + "/audit.jsonl";
  auto audit_lines = [&] {
    std::string text = readFile(audit_path);
    return static_cast<long long>(std::count(text.begin(), text.end(), '\n'));
  };
  bool settled = eventually(
      [&] {
        return scard(kCategorySet) == kTotal && pending() == 0 && audit_lines() >= kTotal &&
               notifications.total() >= static_cast<size_t>(kTotal);
      },
      kGuard);
  EXPECT_TRUE(settled) << scard(kCategorySet) << " read models, " << pending() << " pending, " << audit_lines()
                       << " audit lines, " << notifications.total() << " notifications\n"
                       << host->log();
  // Anything done twice would show up now.
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  redis_.command({"PUBLISH", kNotifications, kStop});
  std::map<std::string, int> by_source = notifications.finish();
  EXPECT_EQ(notifications.problem(), "");

  // The read models.
  EXPECT_EQ(scard(kCategorySet), kTotal);
  ReplyPtr sample = redis_.command({"HGET", "test:jollyjet:product:p-4999", "name"});
  ASSERT_EQ(sample->type, REDIS_REPLY_STRING);
  EXPECT_EQ(std::string(sample->str, sample->len), "Product 4999");

  // The notifications: one per event.
  size_t total = 0;
  std::string twice;
  for (const auto& [id, n] : by_source) {
    total += static_cast<size_t>(n);
    if (n != 1 && twice.size() < 400) {
      twice += " " + id + "x" + std::to_string(n);
    }
  }
  EXPECT_EQ(total, static_cast<size_t>(kTotal)) << "notifications published more than once:" << twice;
  EXPECT_EQ(by_source.size(), static_cast<size_t>(kTotal));

  // The audit lines: one per eventId.
  std::map<std::string, int> audited;
  std::istringstream lines(readFile(audit_path));
  size_t line_count = 0;
  for (std::string line; std::getline(lines, line);) {
    ++line_count;
    json j = json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << "not JSON: " << line;
    ++audited[j.value("eventId", std::string("?"))];
  }
  std::string written_twice;
  for (const auto& [id, n] : audited) {
    if (n != 1 && written_twice.size() < 400) {
      written_twice += " " + id + "x" + std::to_string(n);
    }
  }
  EXPECT_EQ(line_count, static_cast<size_t>(kTotal)) << "audit lines written twice:" << written_twice;
  EXPECT_EQ(audited.size(), static_cast<size_t>(kTotal));

  EXPECT_EQ(pending(), 0);
  EXPECT_EQ(llen("test:jollyjet:events:dlq"), 0) << host->log();
  EXPECT_FALSE(std::filesystem::exists(state_dir_ + "/evhost-dead-letter.jsonl"));
  std::printf("[   info   ] %zu notifications, %zu audit lines for %d events\n", total, line_count, kTotal);
}

}  // namespace
}  // namespace evh::test
