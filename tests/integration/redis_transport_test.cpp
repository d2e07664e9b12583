// The Redis transport in process (redis::Connection on a libuv loop run by
// the test) against real redis-server processes: reconnects ask the
// AddressProvider where to go, so a connection follows the master when it
// moves -- what Sentinel (issue 17) will rely on.
#include "redis/address.h"
#include "redis/connection.h"
#include "support/redis_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <hiredis/hiredis.h>
#include <uv.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace evh::test {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Answers whatever the test says now, and records what it was told.
class FakeProvider final : public redis::AddressProvider {
 public:
  explicit FakeProvider(redis::Address a) : answer(std::move(a)) {}
  redis::Address current() override {
    asked.push_back(answer);
    return answer;
  }
  void failed(const redis::Address& a, const std::string& why) override { failures.emplace_back(a, why); }

  redis::Address answer;
  std::vector<redis::Address> asked;
  std::vector<std::pair<redis::Address, std::string>> failures;
};

// A loop the test runs itself, with a timer that keeps UV_RUN_ONCE from
// blocking for long.
class TransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    ASSERT_EQ(uv_timer_init(&loop_, &wake_), 0);
    uv_timer_start(
        &wake_, [](uv_timer_t*) {}, 10, 10);
  }
  void TearDown() override {
    uv_close(reinterpret_cast<uv_handle_t*>(&wake_), nullptr);
    while (uv_run(&loop_, UV_RUN_NOWAIT) != 0) {
    }
    EXPECT_EQ(uv_loop_close(&loop_), 0);
  }

  // Runs the loop until pred holds (false after 20 s: a hang guard).
  bool runUntil(const std::function<bool()>& pred) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!pred()) {
      if (std::chrono::steady_clock::now() > until) {
        return false;
      }
      uv_run(&loop_, UV_RUN_ONCE);
    }
    return true;
  }

  static redis::Endpoint fastEndpoint(uint16_t port) {
    redis::Endpoint e;
    e.port = port;
    e.backoff_initial_ms = 20;
    e.backoff_max_ms = 200;
    return e;
  }

  // Sends SET key value over the connection and runs until it is answered.
  bool set(redis::Connection& c, const std::string& key, const std::string& value) {
    const char* argv[] = {"SET", key.c_str(), value.c_str()};
    const size_t lens[] = {3, key.size(), value.size()};
    int answered = 0;  // 1: +OK, -1: anything else
    auto on_reply = [](redisAsyncContext*, void* r, void* privdata) {
      auto* reply = static_cast<redisReply*>(r);
      *static_cast<int*>(privdata) = reply != nullptr && reply->type == REDIS_REPLY_STATUS ? 1 : -1;
    };
    if (!c.command(3, argv, lens, on_reply, &answered)) {
      return false;
    }
    return runUntil([&] { return answered != 0; }) && answered == 1;
  }

  static std::string get(RedisServer& server, const std::string& key) {
    ReplyPtr r = server.command({"GET", key});
    return r->type == REDIS_REPLY_STRING ? std::string(r->str, r->len) : std::string("(nil)");
  }

  uv_loop_t loop_{};
  uv_timer_t wake_{};
};

TEST_F(TransportTest, AReconnectGoesWhereTheProviderSaysTheMasterIsNow) {
  RedisServer first;
  RedisServer second;
  auto provider = std::make_shared<FakeProvider>(redis::Address{"127.0.0.1", first.port()});
  int readies = 0;
  int losses = 0;
  // The endpoint names neither server: only the provider says where to go.
  redis::Connection conn(&loop_, fastEndpoint(1), "commands", redis::Connection::Mode::Commands,
                         redis::Connection::Handlers{[&] { ++readies; }, [&](const std::string&) { ++losses; }, {}},
                         provider);
  conn.start();
  ASSERT_TRUE(runUntil([&] { return conn.ready(); }));
  EXPECT_EQ(conn.address(), (redis::Address{"127.0.0.1", first.port()}));
  EXPECT_EQ(conn.where(), "127.0.0.1:" + std::to_string(first.port()));
  ASSERT_TRUE(set(conn, "evh:where", "first"));
  EXPECT_EQ(get(first, "evh:where"), "first");

  // The master moves: the provider answers the second server from now on,
  // and the first goes away.
  provider->answer = redis::Address{"127.0.0.1", second.port()};
  first.kill();
  ASSERT_TRUE(runUntil([&] { return losses == 1 && conn.ready(); }));
  EXPECT_EQ(readies, 2);
  EXPECT_EQ(conn.address(), (redis::Address{"127.0.0.1", second.port()}));
  ASSERT_TRUE(set(conn, "evh:where", "second"));
  EXPECT_EQ(get(second, "evh:where"), "second");

  // It was asked before each attempt, and told that the first one failed.
  ASSERT_GE(provider->asked.size(), 2U);
  EXPECT_EQ(provider->asked.front(), (redis::Address{"127.0.0.1", first.port()}));
  EXPECT_EQ(provider->asked.back(), (redis::Address{"127.0.0.1", second.port()}));
  ASSERT_FALSE(provider->failures.empty());
  EXPECT_EQ(provider->failures.front().first, (redis::Address{"127.0.0.1", first.port()}));
  EXPECT_FALSE(provider->failures.front().second.empty());
  conn.stop();
}

// While the provider points at an address where nothing listens, the
// attempts fail (and say where); once it answers a live server, the
// connection comes up there -- no fixed host:port anywhere.
TEST_F(TransportTest, FailedAttemptsAreReportedAndTheNextAnswerIsTried) {
  RedisServer live;
  uint16_t dead_port = 0;
  {
    RedisServer gone;
    dead_port = gone.port();
    gone.kill();
  }
  auto provider = std::make_shared<FakeProvider>(redis::Address{"127.0.0.1", dead_port});
  redis::Connection conn(&loop_, fastEndpoint(1), "commands", redis::Connection::Mode::Commands,
                         redis::Connection::Handlers{}, provider);
  conn.start();
  ASSERT_TRUE(runUntil([&] { return provider->failures.size() >= 2; }));
  EXPECT_FALSE(conn.ready());
  for (const auto& [address, why] : provider->failures) {
    EXPECT_EQ(address, (redis::Address{"127.0.0.1", dead_port}));
    EXPECT_THAT(why, HasSubstr("refused")) << why;
  }
  provider->answer = redis::Address{"127.0.0.1", live.port()};
  ASSERT_TRUE(runUntil([&] { return conn.ready(); }));
  EXPECT_EQ(conn.where(), "127.0.0.1:" + std::to_string(live.port()));
  ASSERT_TRUE(set(conn, "evh:k", "v"));
  EXPECT_EQ(get(live, "evh:k"), "v");
  conn.stop();
}

// Without a provider, the endpoint's host:port, as before.
TEST_F(TransportTest, WithoutAProviderTheEndpointIsTheAddress) {
  RedisServer server;
  redis::Connection conn(&loop_, fastEndpoint(server.port()), "commands", redis::Connection::Mode::Commands,
                         redis::Connection::Handlers{});
  conn.start();
  ASSERT_TRUE(runUntil([&] { return conn.ready(); }));
  EXPECT_EQ(conn.address(), (redis::Address{"127.0.0.1", server.port()}));
  ASSERT_TRUE(set(conn, "evh:k", "static"));
  EXPECT_EQ(get(server, "evh:k"), "static");
  conn.stop();
}

}  // namespace
}  // namespace evh::test
