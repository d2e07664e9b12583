// Signals and the real evhost: SIGHUP does not stop it.
#include "support/evhost_process.h"
#include "support/redis_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <signal.h>

#include <sstream>
#include <string>

namespace evh::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string event(const std::string& id, const std::string& type) {
  return R"({"eventId":")" + id + R"(","eventType":")" + type +
         R"(","timestamp":"2024-01-15T10:30:00.000Z","correlationId":"corr-)" + id +
         R"(","payload":{"card":"4111-secret"}})";
}

class SignalsTest : public ::testing::Test {
 protected:
  std::string config(const std::string& plugins, const std::string& routes) const {
    std::ostringstream y;
    y << "environment: test\n"
      << "redis: {host: 127.0.0.1, port: " << redis_.port() << "}\n"
      << "retry: {max_attempts: 1}\n"
      << "plugins:\n"
      << plugins << "channels:\n"
      << "  jollyjet:events:product:\n"
      << "    routes:\n"
      << routes;
    return y.str();
  }
  void publish(const std::string& message) { redis_.command({"PUBLISH", "test:jollyjet:events:product", message}); }
  long long llen(const std::string& key) { return redis_.command({"LLEN", key})->integer; }

  RedisServer redis_;
};

TEST_F(SignalsTest, SighupIsLoggedAndEvhostCarriesOn) {
  EvhostProcess host(
      config("  rec: {path: recorder, config: {key: seen}}\n", "      - events: \"*\"\n        plugins: [rec]\n"));
  ASSERT_TRUE(host.waitForLog("subscribed to")) << host.log();
  publish(event("before", "PRODUCT_CREATED"));
  ASSERT_TRUE(eventually([&] { return llen("seen") == 1; })) << host.log();
  host.signal(SIGHUP);
  ASSERT_TRUE(
      host.waitForLog("SIGHUP received: nothing to reopen (evhost logs to stderr only) and configuration "
                      "reload is not supported yet"))
      << host.log();
  host.signal(SIGHUP);
  ASSERT_TRUE(eventually([&] { return host.countInLog("SIGHUP received") == 2; })) << host.log();
  EXPECT_TRUE(host.running()) << host.log();
  publish(event("after", "PRODUCT_CREATED"));
  ASSERT_TRUE(eventually([&] { return llen("seen") == 2; })) << host.log();
  EXPECT_THAT(host.log(), Not(HasSubstr("stopping")));
  // The destructor's SIGTERM still stops it gracefully, with exit code 0.
}

}  // namespace
}  // namespace evh::test
