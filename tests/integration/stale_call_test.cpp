// A plugin using its evh_call after the call is over -- complete() twice,
// complete() after handle() answered OK, complete() after the call's
// timeout_ms -- gets EVH_ERR_STATE, the host logs it once naming the plugin,
// and keeps handling events. (It used to be a use after free: the call's
// memory had gone back to the attempt pool, and evhost died of SIGSEGV.)
#include "support/evhost_process.h"
#include "support/redis_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <signal.h>

#include <filesystem>
#include <sstream>

namespace evh::test {
namespace {

using ::testing::HasSubstr;

constexpr const char* kStaleLine = "on a call that is no longer open";

std::string staleEvent(const std::string& id, const std::string& type) {
  return R"({"eventId":")" + id + R"(","eventType":")" + type +
         R"(","timestamp":"2024-01-15T10:30:00.000Z","payload":{"productId":"p-1"}})";
}

class StaleCallTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/evh-stale-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string config() const {
    std::ostringstream y;
    y << "environment: test\n"
      << "redis: {host: 127.0.0.1, port: " << redis_.port() << "}\n"
      << "retry: {max_attempts: 1}\n"
      << "shutdown_timeout_ms: 5000\n"
      << "dead_letter: {fallback_file: " << dir_ << "/fallback.jsonl}\n"
      << "plugins:\n"
      << "  stale: {path: stale_call, timeout_ms: 150, config: {key: stale, late_ms: 500}}\n"
      << "channels:\n"
      << "  jollyjet:events:product:\n"
      << "    routes:\n"
      << "      - events: \"*\"\n"
      << "        plugins: [stale]\n";
    return y.str();
  }
  void publish(const std::string& message) { redis_.command({"PUBLISH", "test:jollyjet:events:product", message}); }
  bool has(const std::string& record) {
    auto r = redis_.command({"LRANGE", "stale", "0", "-1"});
    for (size_t i = 0; i < r->elements; ++i) {
      if (std::string(r->element[i]->str, r->element[i]->len) == record) {
        return true;
      }
    }
    return false;
  }

  // Publishes `type`, waits for the plugin's record of what its late
  // complete() answered, then checks that evhost is alive, handles the next
  // event, and logged the stale use once, naming the plugin.
  void expectStaleAnswered(const std::string& type, const std::string& expected_record) {
    EvhostProcess host(config());
    ASSERT_TRUE(host.waitForLog("subscribed to")) << host.log();
    publish(staleEvent("e1", type));
    ASSERT_TRUE(eventually([&] { return has(expected_record) || !host.running(); })) << host.log();
    EXPECT_TRUE(has(expected_record)) << host.log();
    ASSERT_TRUE(host.running()) << host.log();
    publish(staleEvent("e2", "NEXT"));
    ASSERT_TRUE(eventually([&] { return has("seen|NEXT|e2"); })) << host.log();
    EXPECT_TRUE(host.running()) << host.log();
    ASSERT_TRUE(host.waitForLog(kStaleLine)) << host.log();
    EXPECT_EQ(host.countInLog(kStaleLine), 1U) << host.log();
    EXPECT_EQ(host.countInLog(std::string("plugin stale: complete() ") + kStaleLine), 1U) << host.log();
    host.signal(SIGTERM);
    EXPECT_EQ(host.waitExit(), 0) << host.log();
  }

  RedisServer redis_;
  std::string dir_;
};

const std::string kState = "-7";  // EVH_ERR_STATE (sdk/include/evh/plugin.h)

TEST_F(StaleCallTest, CompletingTwiceAnswersErrStateAndTheHostCarriesOn) {
  // The first complete() is accepted; the one 100 ms later finds the call over.
  expectStaleAnswered("TWICE", "TWICE|e1|0," + kState);
}

TEST_F(StaleCallTest, CompletingAfterAnsweringOkAnswersErrStateAndTheHostCarriesOn) {
  expectStaleAnswered("OK_THEN", "OK_THEN|e1|" + kState);
}

TEST_F(StaleCallTest, CompletingAfterTheTimeoutGaveUpAnswersErrState) {
  expectStaleAnswered("LATE", "LATE|e1|" + kState);
}

TEST_F(StaleCallTest, EveryKindOfStaleUseIsLoggedOnceForThePlugin) {
  EvhostProcess host(config());
  ASSERT_TRUE(host.waitForLog("subscribed to")) << host.log();
  publish(staleEvent("a1", "TWICE"));
  publish(staleEvent("b1", "OK_THEN"));
  publish(staleEvent("c1", "LATE"));
  publish(staleEvent("a2", "TWICE"));
  ASSERT_TRUE(eventually([&] {
    return (has("TWICE|a1|0," + kState) && has("OK_THEN|b1|" + kState) && has("LATE|c1|" + kState) &&
            has("TWICE|a2|0," + kState)) ||
           !host.running();
  })) << host.log();
  ASSERT_TRUE(host.running()) << host.log();
  ASSERT_TRUE(host.waitForLog(kStaleLine)) << host.log();
  EXPECT_EQ(host.countInLog(kStaleLine), 1U) << host.log();
  EXPECT_TRUE(host.waitForLog("plugin stale: ")) << host.log();
  host.signal(SIGTERM);
  EXPECT_EQ(host.waitExit(), 0) << host.log();
}

}  // namespace
}  // namespace evh::test
