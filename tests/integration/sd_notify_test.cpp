// The real evhost under a stand-in service manager: the test's own datagram
// socket as NOTIFY_SOCKET (support/notify_socket.h). READY=1 comes once every
// subscription and stream is live (an event sent at once is handled), with a
// status line; STOPPING=1 at SIGTERM; WATCHDOG=1 at half WATCHDOG_USEC from
// the event loop, and none while an inline handler holds the loop.
#include "support/evhost_process.h"
#include "support/notify_socket.h"
#include "support/redis_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace evh::test {
namespace {

using ::testing::StartsWith;
using Clock = NotifySocket::Clock;
using std::chrono::milliseconds;

std::string notifyEvent(const std::string& id, const std::string& type) {
  return R"({"eventId":")" + id + R"(","eventType":")" + type +
         R"(","timestamp":"2024-01-15T10:30:00.000Z","payload":{}})";
}

class SdNotifyTest : public ::testing::Test {
 protected:
  // A Pub/Sub channel and a stream recorded by `rec`, and a Pub/Sub channel
  // whose inline handler sleeps a second on the loop.
  std::string config() const {
    std::ostringstream y;
    y << "environment: test\n"
      << "redis: {host: 127.0.0.1, port: " << redis_.port() << ", reconnect: {initial_ms: 50, max_ms: 200}}\n"
      << R"(retry: {max_attempts: 1}
plugins:
  rec: {path: recorder}
  stall: {path: scripted, config: {answer: SLEEP_1000}}
channels:
  orders:
    routes: [{events: "*", plugins: [rec]}]
  jobs:
    transport: stream
    stream: {group: workers, consumer: c1, block_ms: 100}
    routes: [{events: "*", plugins: [rec]}]
  stall:
    routes: [{events: "*", plugins: [stall]}]
)";
    return y.str();
  }
  long long seen() { return redis_.command({"LLEN", "seen"})->integer; }

  RedisServer redis_;
};

TEST_F(SdNotifyTest, ReadyOnceEverySourceIsLiveThenStoppingAtSigterm) {
  NotifySocket sock;
  EvhostProcess host(config(), {}, {sock.env()});
  const auto ready = sock.waitFor("READY=1", std::chrono::seconds(20));
  ASSERT_TRUE(ready.has_value()) << host.log();
  // Live at READY=1: Redis already counts evhost's subscriber as a receiver,
  // and the stream's group is read.
  EXPECT_EQ(redis_.command({"PUBLISH", "test:orders", notifyEvent("p-1", "ORDER")})->integer, 1);
  redis_.command({"XADD", "test:jobs", "*", "event", notifyEvent("s-1", "JOB")});
  ASSERT_TRUE(eventually([&] { return seen() == 2; }, std::chrono::seconds(10))) << host.log();

  const std::vector<NotifySocket::Message> messages = sock.messages();
  EXPECT_EQ(messages[*ready].value("STATUS"), "ready: 3 channels, 2 plugins, 0 handled, 0 dead-lettered, 0 in flight");
  // Before it, status lines saying why not yet (the subscriptions, the
  // group) and nothing else.
  for (size_t i = 0; i < *ready; ++i) {
    EXPECT_THAT(messages[i].text, StartsWith("STATUS=starting (")) << messages[i].text;
  }
  EXPECT_EQ(sock.with("READY=1").size(), 1U);
  EXPECT_TRUE(sock.with("WATCHDOG=1").empty()) << "no WATCHDOG_USEC, no pings";
  EXPECT_TRUE(sock.with("STOPPING=1").empty());

  const size_t before = sock.size();
  host.signal(SIGTERM);
  const auto stopping = sock.waitFor("STOPPING=1", std::chrono::seconds(10), before);
  ASSERT_TRUE(stopping.has_value()) << host.log();
  // The figures then: both events handled, or the last still finishing (the
  // recorder's list is written before its call completes).
  const std::string status = sock.messages()[*stopping].value("STATUS");
  std::smatch m;
  ASSERT_TRUE(std::regex_match(
      status, m, std::regex("stopping: 3 channels, 2 plugins, ([0-9]+) handled, 0 dead-lettered, ([0-9]+) in flight")))
      << status;
  EXPECT_EQ(std::stoi(m[1]) + std::stoi(m[2]), 2) << status;
  const auto code = host.waitExit();
  ASSERT_TRUE(code.has_value()) << host.log();
  EXPECT_EQ(*code, 0) << host.log();
  EXPECT_EQ(sock.with("READY=1").size(), 1U);
}

TEST_F(SdNotifyTest, WatchdogPingsComeFromTheLoopAtHalfTheIntervalAndStopWhileItIsBlocked) {
  NotifySocket sock;
  // WATCHDOG_PID unset: sd_watchdog_enabled takes the watchdog as evhost's.
  EvhostProcess host(config(), {}, {sock.env(), "WATCHDOG_USEC=200000"});
  ASSERT_TRUE(sock.waitFor("READY=1", std::chrono::seconds(20)).has_value()) << host.log();
  EXPECT_TRUE(host.waitForLog("WATCHDOG=1 every 100 ms")) << host.log();

  // About one ping per 100 ms while the loop turns.
  const Clock::time_point window = Clock::now();
  std::this_thread::sleep_for(milliseconds(1000));
  size_t in_window = 0;
  for (const auto& m : sock.with("WATCHDOG=1")) {
    in_window += m.at >= window && m.at < window + milliseconds(1000) ? 1 : 0;
  }
  EXPECT_GE(in_window, 6U);
  EXPECT_LE(in_window, 12U);

  // The inline handler sleeps a second on the loop: no ping meanwhile, then
  // they come again.
  const Clock::time_point blocked = Clock::now();
  EXPECT_EQ(redis_.command({"PUBLISH", "test:stall", notifyEvent("b-1", "BLOCK")})->integer, 1);
  std::this_thread::sleep_for(milliseconds(1600));
  std::vector<Clock::time_point> pings;
  for (const auto& m : sock.with("WATCHDOG=1")) {
    if (m.at >= blocked - milliseconds(200)) {
      pings.push_back(m.at);
    }
  }
  ASSERT_GE(pings.size(), 2U);
  milliseconds widest{0};
  size_t after_widest = 0;
  for (size_t i = 1; i < pings.size(); ++i) {
    const auto gap = std::chrono::duration_cast<milliseconds>(pings[i] - pings[i - 1]);
    if (gap > widest) {
      widest = gap;
      after_widest = pings.size() - i;
    }
  }
  EXPECT_GE(widest, milliseconds(950)) << "a ping while the loop was held";
  EXPECT_GE(after_widest, 2U) << "the pings did not come back";

  host.signal(SIGTERM);
  const auto code = host.waitExit();
  ASSERT_TRUE(code.has_value()) << host.log();
  EXPECT_EQ(*code, 0) << host.log();
}

}  // namespace
}  // namespace evh::test
