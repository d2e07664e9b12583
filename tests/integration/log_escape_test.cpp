// Text logs cannot be forged: a newline, carriage return or escape sequence in an event field or in a plugin's log
// message is escaped, so it never starts a line of its own (docs/config.md, logging).
#include "support/evhost_process.h"
#include "support/redis_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

namespace evh::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kForged = "2026-12-02T00:00:00.000 critical [evhost] forged";

std::vector<std::string> logLines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    out.push_back(line);
  }
  return out;
}

class LogEscapeTest : public ::testing::Test {
 protected:
  std::string config(const std::string& logging) const {
    std::ostringstream y;
    y << "environment: test\n"
      << "redis: {host: 127.0.0.1, port: " << redis_.port() << "}\n"
      << "logging: " << logging << "\n"
      << R"(plugins:
  logger: {path: log_field, config: {field: orderId}}
channels:
  orders:
    routes:
      - events: "*"
        plugins: [logger]
)";
    return y.str();
  }

  void publish(const std::string& message) { redis_.command({"PUBLISH", "test:orders", message}); }

  // No line of the log starts with the forged prefix (or carries a raw CR,
  // which a terminal shows as the start of a line).
  static void expectNoForgedLine(const std::string& log) {
    for (const std::string& line : logLines(log)) {
      EXPECT_THAT(line, Not(::testing::StartsWith(kForged))) << log;
      EXPECT_EQ(line.find('\r'), std::string::npos) << line;
    }
  }

  RedisServer redis_;
};

// The issue's example: a payload field a plugin logs as it is.
TEST_F(LogEscapeTest, APluginLoggingANewlineInAFieldCannotForgeALine) {
  EvhostProcess host(config("{level: info, format: text}"));
  ASSERT_TRUE(host.waitForLog("subscribed to")) << host.log();
  publish(std::string(R"({"eventId":"e-1","eventType":"ORDER_PLACED","timestamp":1705314600000,)") +
          R"("payload":{"orderId":"o-9\n)" + kForged + R"("}})");
  publish(R"({"eventId":"e-2","eventType":"ORDER_PLACED","timestamp":1705314600000,)"
          R"("payload":{"orderId":"o-10\r\u001b[2J\u0007\t\u007f\u009b"}})");
  ASSERT_TRUE(host.waitForLog("orderId=o-10")) << host.log();

  const std::string log = host.log();
  EXPECT_THAT(log, HasSubstr(std::string("[logger] orderId=o-9\\n") + kForged + "\n"));
  EXPECT_THAT(log, HasSubstr("[logger] orderId=o-10\\r\\u001b[2J\\u0007\\t\\u007f\\u009b\n"));
  EXPECT_EQ(log.find('\x1b'), std::string::npos) << "a raw ESC reached the log";
  expectNoForgedLine(log);
}

// evhost's own lines carry event fields too (debug_events logs eventId and
// correlationId of every event).
TEST_F(LogEscapeTest, AnEventIdWithANewlineCannotForgeAHostLine) {
  EvhostProcess host(config("{level: info, format: text, debug_events: true}"));
  ASSERT_TRUE(host.waitForLog("subscribed to")) << host.log();
  publish(std::string(R"({"eventId":"e-3\r\n)") + kForged + R"(","eventType":"ORDER_PLACED",)" +
          R"("timestamp":1705314600000,"correlationId":"c\n)" + kForged + R"(","payload":{"orderId":"o-11"}})");
  ASSERT_TRUE(host.waitForLog("orderId=o-11")) << host.log();
  ASSERT_TRUE(host.waitForLog("stage=decoded")) << host.log();

  const std::string log = host.log();
  EXPECT_THAT(log, HasSubstr(std::string("eventId=e-3\\r\\n") + kForged + " correlationId=c\\n" + kForged));
  expectNoForgedLine(log);
}

}  // namespace
}  // namespace evh::test
