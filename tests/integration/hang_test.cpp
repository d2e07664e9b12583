// Plugins that never return, against a real redis-server and the real
// evhost: a hung blocking plugin must not starve the others (its stuck
// worker threads are replaced), and a hung inline plugin -- which stops the
// event loop itself -- is named by the watchdog, and the shutdown deadline
// and a second signal still end the process.
#include "support/evhost_process.h"
#include "support/redis_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

namespace evh::test {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

std::string hangEvent(const std::string& id, const std::string& type) {
  return R"({"eventId":")" + id + R"(","eventType":")" + type +
         R"(","timestamp":"2024-01-15T10:30:00.000Z","correlationId":"corr-)" + id +
         R"(","payload":{"productId":"p-1"}})";
}

class HangTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/evh-hang-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string config(const std::string& body) const {
    std::ostringstream y;
    y << "environment: test\n"
      << "redis: {host: 127.0.0.1, port: " << redis_.port() << "}\n"
      << "retry: {max_attempts: 1}\n"
      << "dead_letter: {plugin: dead, fallback_file: " << fallback() << "}\n"
      << body;
    return y.str();
  }
  std::string fallback() const { return dir_ + "/fallback.jsonl"; }

  void publish(const std::string& message) { redis_.command({"PUBLISH", "test:jollyjet:events:product", message}); }
  long long llen(const std::string& key) { return redis_.command({"LLEN", key})->integer; }
  // The dead-letter entries the recorder "dead" stored (its payload field).
  std::vector<json> deadLetters() {
    std::vector<json> out;
    auto r = redis_.command({"LRANGE", "dlq", "0", "-1"});
    for (size_t i = 0; i < r->elements; ++i) {
      std::string rec(r->element[i]->str, r->element[i]->len);
      size_t pos = 0;
      for (int f = 0; f < 9; ++f) {
        pos = rec.find('|', pos) + 1;
      }
      out.push_back(json::parse(rec.substr(pos)));
    }
    return out;
  }
  // Whole lines only: evhost's writer thread may be half way through the last one.
  std::vector<json> fallbackEntries() {
    std::vector<json> out;
    std::ifstream in(fallback());
    std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    all.erase(all.rfind('\n') == std::string::npos ? 0 : all.rfind('\n') + 1);
    std::istringstream complete(all);
    for (std::string line; std::getline(complete, line);) {
      out.push_back(json::parse(line));
    }
    return out;
  }

  RedisServer redis_;
  std::string dir_;
};

constexpr const char* kHangDeadRecorder = "  dead: {path: recorder, config: {key: dlq, tag: dead}}\n";

// Issue 11 (4): `workers: 2`, plugin "hung" never returns from HANG events
// (timeout_ms 1000), plugin "healthy" shares the pool. Before: both threads
// stayed in "hung", every call of "healthy" waited in the queue, "timed out"
// and was dead-lettered as its failure.
TEST_F(HangTest, AHungBlockingPluginDoesNotStarveTheOthers) {
  EvhostProcess host(config(std::string(R"(workers: 2
shutdown_timeout_ms: 1000
plugins:
  hung: {path: scripted_pair, timeout_ms: 1000}
  healthy: {path: slow_recorder, timeout_ms: 1000, config: {key: healthy}}
)") + kHangDeadRecorder + R"(channels:
  jollyjet:events:product:
    routes:
      - events: [HANG]
        plugins: [hung]
      - events: [PRODUCT_CREATED]
        plugins: [healthy]
)"));
  ASSERT_TRUE(host.waitForLog("subscribed to")) << host.log();
  publish(hangEvent("h1", "HANG"));
  publish(hangEvent("h2", "HANG"));
  // Both workers are taken; after 1 s each call times out and its thread is
  // replaced.
  ASSERT_TRUE(eventually([&] { return llen("dlq") == 2; })) << host.log();
  ASSERT_TRUE(eventually([&] { return host.countInLog("started a replacement thread") == 2; })) << host.log();
  EXPECT_THAT(host.log(), HasSubstr("worker thread stuck: handle() for eventId=h1"));
  EXPECT_TRUE(host.waitForLog("further calls are refused")) << host.log();
  constexpr int kHealthy = 20;
  for (int i = 0; i < kHealthy; ++i) {
    publish(hangEvent("ok" + std::to_string(i), "PRODUCT_CREATED"));
  }
  ASSERT_TRUE(eventually([&] { return llen("healthy") == kHealthy; })) << host.log();
  // A third HANG: both calls "hung" may run at once are stuck, so it is
  // refused at once -- charged to "hung", and no third thread is held.
  publish(hangEvent("h3", "HANG"));
  ASSERT_TRUE(eventually([&] { return llen("dlq") == 3; })) << host.log();
  for (const json& e : deadLetters()) {
    EXPECT_EQ(e["plugin"], "hung") << e.dump();
  }
  const std::vector<json> dl = deadLetters();
  EXPECT_EQ(dl[0]["error"]["name"], "timeout");
  EXPECT_EQ(dl[2]["eventId"], "h3");
  EXPECT_EQ(dl[2]["error"]["name"], "stuck");
  EXPECT_THAT(host.log(), Not(HasSubstr("-> OPEN")));
  EXPECT_EQ(host.countInLog("started a replacement thread"), 2U) << host.log();
  // The stuck handlers never return: the stop waits for them until the
  // deadline, then leaves without shutting "hung" down under them.
  host.signal(SIGTERM);
  auto code = host.waitExit();
  ASSERT_TRUE(code.has_value()) << host.log();
  EXPECT_EQ(*code, 1);
  EXPECT_THAT(host.log(), HasSubstr("plugin hung still has a handler running"));
}

// Issue 11 (7): an inline handler that never returns stops the event loop.
// Before: no log line, and SIGTERM was never seen (it went through the loop).
constexpr const char* kFrozen = R"(plugins:
  frozen: {path: scripted}
  dead: {path: recorder, config: {key: dlq, tag: dead}}
channels:
  jollyjet:events:product:
    routes:
      - events: [HANG]
        plugins: [frozen]
)";

TEST_F(HangTest, AStalledLoopIsNamedAndTheDeadlineStillEndsTheProcess) {
  EvhostProcess host(config(std::string("shutdown_timeout_ms: 1500\nloop_stall_ms: 500\n") + kFrozen));
  ASSERT_TRUE(host.waitForLog("subscribed to")) << host.log();
  const auto published = std::chrono::steady_clock::now();
  publish(hangEvent("stuck-1", "HANG"));
  ASSERT_TRUE(host.waitForLog("in plugin frozen handling eventId=stuck-1 eventType=HANG")) << host.log();
  EXPECT_THAT(host.log(), HasSubstr("event loop stalled for"));
  // Named within a bound: the stall bound plus a beat and a look.
  EXPECT_LT(std::chrono::steady_clock::now() - published, std::chrono::seconds(5)) << host.log();
  EXPECT_EQ(host.countInLog("event loop stalled"), 1U) << host.log();  // once, not per look

  const auto signalled = std::chrono::steady_clock::now();
  host.signal(SIGTERM);
  auto code = host.waitExit(std::chrono::milliseconds(1500 + 5000));
  const auto took = std::chrono::steady_clock::now() - signalled;
  ASSERT_TRUE(code.has_value()) << host.log();
  EXPECT_EQ(*code, 1) << host.log();
  EXPECT_GE(took, std::chrono::milliseconds(1400)) << "the deadline, not at once";
  EXPECT_THAT(host.log(), HasSubstr("signal 15 received: stopping"));
  EXPECT_THAT(host.log(), HasSubstr("shutdown deadline (1500 ms) passed with the event loop stuck"));
  // The event the loop is stuck on is not lost without an entry.
  const std::vector<json> entries = fallbackEntries();
  ASSERT_EQ(entries.size(), 1U) << host.log();
  EXPECT_EQ(entries[0]["eventId"], "stuck-1");
  EXPECT_EQ(entries[0]["reason"], "abandoned");
  EXPECT_EQ(entries[0]["plugin"], "frozen");
}

TEST_F(HangTest, ASecondSignalExitsAtOnceWhileTheLoopIsStalled) {
  EvhostProcess host(config(std::string("shutdown_timeout_ms: 60000\nloop_stall_ms: 500\n") + kFrozen));
  ASSERT_TRUE(host.waitForLog("subscribed to")) << host.log();
  publish(hangEvent("stuck-2", "HANG"));
  ASSERT_TRUE(host.waitForLog("event loop stalled for")) << host.log();
  host.signal(SIGTERM);
  ASSERT_TRUE(host.waitForLog("signal 15 received: stopping")) << host.log();
  host.signal(SIGINT);
  auto code = host.waitExit(std::chrono::seconds(3));
  ASSERT_TRUE(code.has_value()) << host.log();
  EXPECT_EQ(*code, 1);
  EXPECT_THAT(host.log(), HasSubstr("second signal (2): exiting at once"));
}

TEST_F(HangTest, ALoopThatTurnsAgainIsReportedOnce) {
  // A slow inline handler (1.2 s) stalls the loop and then lets go: one
  // stall line naming it, one line when the loop turns again.
  EvhostProcess host(config(std::string(R"(loop_stall_ms: 500
plugins:
  sluggish: {path: scripted}
)") + kHangDeadRecorder + R"(channels:
  jollyjet:events:product:
    routes:
      - events: [SLEEP_1200]
        plugins: [sluggish]
)"));
  ASSERT_TRUE(host.waitForLog("subscribed to")) << host.log();
  publish(hangEvent("slow-1", "SLEEP_1200"));
  ASSERT_TRUE(host.waitForLog("event loop running again after a stall of at least")) << host.log();
  EXPECT_EQ(host.countInLog("event loop stalled for"), 1U) << host.log();
  EXPECT_THAT(host.log(), HasSubstr("in plugin sluggish handling eventId=slow-1 eventType=SLEEP_1200"));
  host.signal(SIGTERM);
  EXPECT_EQ(host.waitExit(), std::optional<int>(0)) << host.log();
}

}  // namespace
}  // namespace evh::test
