// evhost against a broken or hostile "Redis" (a fake server on a loopback
// port): replies are bounded while they are read, the connection is dropped
// with a protocol error that says so, and retried with backoff.
#include "support/evhost_process.h"
#include "support/fake_redis.h"
#include "support/redis_server.h"
#include "support/tested_binaries.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

namespace evh::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string hostileConfig(uint16_t port, const std::string& redis_extra = "") {
  std::ostringstream y;
  y << "environment: test\n"
    << "redis:\n  host: 127.0.0.1\n  port: " << port << "\n"
    << "  connect_timeout_ms: 20000\n"  // so that nothing here is a connect timeout
    << redis_extra << R"(plugins:
  rec: {path: recorder}
channels:
  jollyjet:events:product:
    routes:
      - events: "*"
        plugins: [rec]
)";
  return y.str();
}

// evhost's peak RSS in these tests: 8-12 MB in a release build, where the
// old unbounded reads reached 88-423 MB. In a sanitizer build RSS is mostly
// the instrumented binary itself (its text and data pages: about 125 MB of
// an idle evhost's 165 MB, growing with every line of code) and
// AddressSanitizer's allocator: there the bound is what evhost may grow over
// an idle evhost of the same build (kIdleBaselineKb), not a fixed figure
// that each new module eats into.
constexpr uint64_t kMaxGrowthKb = 48 * 1024;  // a sanitized evhost's, over its idle peak
constexpr uint64_t kMaxPeakKb = 48 * 1024;    // a release evhost's

// The bound for these tests' evhost: in a sanitizer build, the peak RSS of
// an evhost with the same configuration against a real Redis, once
// subscribed, plus kMaxGrowthKb (measured once per test binary).
uint64_t maxPeakKb() {
  if (!testedAsan()) {
    return kMaxPeakKb;
  }
  static const uint64_t bound = [] {
    RedisServer redis;
    EvhostProcess idle(hostileConfig(redis.port()), {}, smallQuarantine());
    if (!idle.waitForLog("subscribed to")) {
      ADD_FAILURE() << "the idle evhost never subscribed\n" << idle.log();
      return uint64_t{0};
    }
    return peakRssKb(idle.pid()) + kMaxGrowthKb;
  }();
  return bound;
}

TEST(HostileServerTest, EndlessBulkInTheHandshakeIsAProtocolErrorNotUnboundedMemory) {
  FakeServer server([](int fd, const std::atomic<bool>& stop) {
    if (!FakeServer::readSome(fd, stop).empty() && FakeServer::writeAll(fd, "$9223372036854775807\r\n")) {
      FakeServer::spew(fd, stop);
    }
  });
  EvhostProcess host(hostileConfig(server.port(), "  reconnect: {initial_ms: 50, max_ms: 400}\n"), {},
                     smallQuarantine());
  const std::string where = "127.0.0.1:" + std::to_string(server.port());
  ASSERT_TRUE(host.waitForLog("redis commands (" + where +
                              "): protocol error: reply larger than 65536 bytes "
                              "(during the handshake) from " +
                              where))
      << host.log();
  ASSERT_TRUE(host.waitForLog("redis subscriber (" + where + "): protocol error: reply larger than")) << host.log();
  // It keeps trying, with backoff, and each connection's error is one line.
  ASSERT_TRUE(eventually([&] { return server.accepted() >= 8; })) << host.log();
  EXPECT_TRUE(host.running());
  EXPECT_EQ(host.countInLog("protocol error"), 2U) << host.log();
  EXPECT_THAT(host.log(), Not(HasSubstr("connect_timeout_ms"))) << host.log();
  const uint64_t peak = peakRssKb(host.pid());
  EXPECT_GT(peak, 0U);
  EXPECT_LT(peak, maxPeakKb()) << "evhost's peak RSS grew to " << peak << " kB";
}

TEST(HostileServerTest, HugeFiniteBulkInTheHandshakeIsDroppedEarly) {
  constexpr uint64_t kBulk = 512ULL * 1024 * 1024;  // what Redis allows a value, at most
  FakeServer server([](int fd, const std::atomic<bool>& stop) {
    if (!FakeServer::readSome(fd, stop).empty() && FakeServer::writeAll(fd, "$" + std::to_string(kBulk) + "\r\n")) {
      FakeServer::spew(fd, stop, kBulk);
      FakeServer::writeAll(fd, "\r\n");
    }
  });
  EvhostProcess host(hostileConfig(server.port(), "  reconnect: {initial_ms: 50, max_ms: 400}\n"), {},
                     smallQuarantine());
  ASSERT_TRUE(host.waitForLog("protocol error: reply larger than 65536 bytes (during the handshake)")) << host.log();
  ASSERT_TRUE(eventually([&] { return server.accepted() >= 4; })) << host.log();
  EXPECT_TRUE(host.running());
  EXPECT_LT(peakRssKb(host.pid()), maxPeakKb()) << host.log();
}

// Not Redis (some other line protocol on the port) answering +OK to
// everything: the handshake's PING wants +PONG, so it fails at once, naming
// the protocol -- no connection counts as up, none waits for a timeout.
TEST(HostileServerTest, WrongAnswerInTheHandshakeIsAProtocolError) {
  FakeServer server([](int fd, const std::atomic<bool>& stop) {
    while (!FakeServer::readSome(fd, stop).empty() && FakeServer::writeAll(fd, "+OK\r\n")) {
    }
  });
  EvhostProcess host(hostileConfig(server.port(), "  reconnect: {initial_ms: 50, max_ms: 400}\n"));
  const std::string where = "127.0.0.1:" + std::to_string(server.port());
  ASSERT_TRUE(host.waitForLog("redis commands (" + where + "): protocol error: unexpected reply to PING from " + where +
                              " (type 5, not +PONG)"))
      << host.log();
  ASSERT_TRUE(host.waitForLog("redis subscriber (" + where + "): protocol error: unexpected reply to PING"))
      << host.log();
  ASSERT_TRUE(eventually([&] { return server.accepted() >= 6; })) << host.log();
  EXPECT_THAT(host.log(), Not(HasSubstr("connected"))) << host.log();
  EXPECT_TRUE(host.running());
}

// evhctl makes the same handshake as evhost (redis/handshake.h): the same
// non-Redis server is refused at its PING, with evhost's words, before any
// command is sent. (Before, evhctl sent no PING and took the +OK to its
// command for an answer.)
TEST(HostileServerTest, EvhctlRefusesWhatIsNotRedisWithTheSameWords) {
  FakeServer server([](int fd, const std::atomic<bool>& stop) {
    while (!FakeServer::readSome(fd, stop).empty() && FakeServer::writeAll(fd, "+OK\r\n")) {
    }
  });
  char path[] = "/tmp/evh-hostile-XXXXXX.yaml";
  const int fd = mkstemps(path, 5);
  ASSERT_GE(fd, 0);
  close(fd);
  std::ofstream(path) << hostileConfig(server.port());
  auto [code, out] = runCommand({evhctlBin(), "publish", "--config", path, "--channel", "jollyjet:events:product",
                                 "--type", "T", "--payload", "{}"});
  std::remove(path);
  const std::string where = "127.0.0.1:" + std::to_string(server.port());
  EXPECT_EQ(code, 1) << out;
  EXPECT_THAT(out, HasSubstr("Redis at " + where + ": protocol error: unexpected reply to PING from " + where +
                             " (type 5, not +PONG)"));
}

// A reply to no command: hiredis 0.14 would abort() on its assert; evhost
// drops the connection as a protocol error instead.
TEST(HostileServerTest, ReplyToNoCommandIsAProtocolErrorNotACrash) {
  FakeServer server([](int fd, const std::atomic<bool>& stop) {
    while (!FakeServer::readSome(fd, stop).empty() && FakeServer::writeAll(fd, "+PONG\r\n+PONG\r\n")) {
    }
  });
  EvhostProcess host(hostileConfig(server.port(), "  reconnect: {initial_ms: 50, max_ms: 400}\n"));
  const std::string where = "127.0.0.1:" + std::to_string(server.port());
  ASSERT_TRUE(host.waitForLog("redis commands (" + where +
                              "): connection lost: protocol error: a reply to no "
                              "command from " +
                              where))
      << host.log();
  ASSERT_TRUE(eventually([&] { return server.accepted() >= 6; })) << host.log();
  EXPECT_TRUE(host.running()) << host.log();
}

// A server that completes the handshake and answers PINGs, then answers
// SUBSCRIBE with a message whose payload never ends: each connection comes
// up and is lost right away. The subscriber's reply bound drops it, and the
// reconnects back off rather than restarting the backoff at every connect.
TEST(HostileServerTest, FailureRightAfterEachConnectBacksOff) {
  std::atomic<int> subscriber_connections{0};
  FakeServer server([&](int fd, const std::atomic<bool>& stop) {
    std::string in;
    while (!stop) {
      std::string more = FakeServer::readSome(fd, stop);
      if (more.empty()) {
        return;
      }
      in += more;
      for (size_t pos; (pos = in.find("PING\r\n")) != std::string::npos;) {
        in.erase(0, pos + 6);
        if (!FakeServer::writeAll(fd, "+PONG\r\n")) {
          return;
        }
      }
      if (in.find("SUBSCRIBE") != std::string::npos) {
        ++subscriber_connections;
        const std::string channel = "test:jollyjet:events:product";
        FakeServer::writeAll(fd, "*3\r\n$9\r\nsubscribe\r\n$" + std::to_string(channel.size()) + "\r\n" + channel +
                                     "\r\n:1\r\n*3\r\n$7\r\nmessage\r\n$" + std::to_string(channel.size()) + "\r\n" +
                                     channel + "\r\n$9223372036854775807\r\n");
        FakeServer::spew(fd, stop);
        return;
      }
    }
  });
  // A 20 ms first step: were the backoff restarted at each connect, some
  // 100 connections would come in 3 s; backing off to 1 s, about 8.
  EvhostProcess host(hostileConfig(server.port(), "  reconnect: {initial_ms: 20, max_ms: 1000}\n"), {},
                     smallQuarantine());
  const std::string where = "127.0.0.1:" + std::to_string(server.port());
  ASSERT_TRUE(host.waitForLog("redis subscriber (" + where + "): connection lost: protocol error: reply larger than " +
                              std::to_string(2 * 1024 * 1024 + 64 * 1024) +
                              " bytes (for a Pub/Sub message: 2 x limits.max_message_bytes + 64 KiB) from " + where))
      << host.log();
  const int first = subscriber_connections;
  std::this_thread::sleep_for(std::chrono::seconds(3));
  const int in_3s = subscriber_connections - first;
  EXPECT_GE(in_3s, 2) << host.log();  // still retrying
  EXPECT_LE(in_3s, 12) << host.log();
  // Lost the same way each time: one line, not one per connection.
  EXPECT_EQ(host.countInLog("redis subscriber (" + where + "): connection lost"), 1U) << host.log();
  EXPECT_TRUE(host.running());
  EXPECT_LT(peakRssKb(host.pid()), maxPeakKb()) << host.log();
}

}  // namespace
}  // namespace evh::test
