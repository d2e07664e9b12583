// Reloading the configuration on SIGHUP with the real evhost: new routes
// take effect for the events that follow, nothing published meanwhile is
// lost, and a configuration that is broken -- or changes what a reload
// cannot apply yet -- is refused with every problem named (file:line), the
// running one kept, and the outcome counted and shown by /status.
#include "support/evhost_process.h"
#include "support/http_client.h"
#include "support/notify_socket.h"
#include "support/redis_server.h"

#include <hiredis/hiredis.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <signal.h>

#include <atomic>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>

namespace evh::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string reloadEvent(const std::string& id) {
  return R"({"eventId":")" + id +
         R"(","eventType":"PRODUCT_CREATED","timestamp":"2024-01-15T10:30:00.000Z","correlationId":"c-)" + id +
         R"(","payload":{}})";
}

class ReloadTest : public ::testing::Test {
 protected:
  // Plugins a and b record into seen_a and seen_b; `to` is the one the
  // channel routes to; `extra` is added to the plugins.
  std::string config(const std::string& to, const std::string& extra = "") const {
    std::ostringstream y;
    y << "environment: test\n"
      << "redis: {host: 127.0.0.1, port: " << redis_.port() << "}\n"
      << "plugins:\n"
      << "  a: {path: recorder, config: {key: seen_a, tag: a}}\n"
      << "  b: {path: recorder, config: {key: seen_b, tag: b}}\n"
      << extra << "channels:\n"
      << "  jollyjet:events:product:\n"
      << "    routes:\n"
      << "      - events: \"*\"\n"
      << "        plugins: [" << to << "]\n";
    return y.str();
  }
  static void rewrite(const EvhostProcess& host, const std::string& yaml) {
    std::ofstream(host.configPath(), std::ios::trunc) << yaml;
  }
  void publish(const std::string& id) { redis_.command({"PUBLISH", "test:jollyjet:events:product", reloadEvent(id)}); }
  long long llen(const std::string& key) { return redis_.command({"LLEN", key})->integer; }
  // GET /status (a snapshot at most 100 ms old: asked for only after the
  // log said the reload is done, and never twice in that time).
  static nlohmann::json status(const EvhostProcess& host) {
    return nlohmann::json::parse(httpGet(opsUrl(host) + "/status").body);
  }

  RedisServer redis_;
};

TEST_F(ReloadTest, NewRoutesTakeEffectForTheEventsThatFollow) {
  EvhostProcess host(config("a"));
  ASSERT_TRUE(host.waitForLog("subscribed to")) << host.log();
  publish("before");
  ASSERT_TRUE(eventually([&] { return llen("seen_a") == 1; })) << host.log();

  rewrite(host, config("b"));
  host.signal(SIGHUP);
  ASSERT_TRUE(host.waitForLog("configuration reloaded from")) << host.log();
  EXPECT_THAT(host.log(), HasSubstr("the routes of 1 channel(s) changed"));
  publish("after");
  ASSERT_TRUE(eventually([&] { return llen("seen_b") == 1; })) << host.log();
  EXPECT_EQ(llen("seen_a"), 1);

  const nlohmann::json s = status(host);
  EXPECT_EQ(s["reload"]["succeeded"], 1);
  EXPECT_EQ(s["reload"]["failed"], 0);
  EXPECT_EQ(s["reload"]["generation"], 2);
  EXPECT_EQ(s["reload"]["last"]["result"], "ok");
  const std::string metrics = httpGet(opsUrl(host) + "/metrics").body;
  EXPECT_THAT(metrics, HasSubstr("\nevhost_reloads_total 1\n"));
  EXPECT_THAT(metrics, HasSubstr("\nevhost_reload_failures_total 0\n"));
  EXPECT_THAT(metrics, HasSubstr("\nevhost_config_last_reload_successful 1\n"));
}

TEST_F(ReloadTest, ABrokenConfigurationIsRefusedAndTheRunningOneKept) {
  EvhostProcess host(config("a"));
  ASSERT_TRUE(host.waitForLog("subscribed to")) << host.log();
  // A route to a plugin that does not exist, on line 10.
  rewrite(host, config("nosuch"));
  host.signal(SIGHUP);
  ASSERT_TRUE(host.waitForLog("reload failed")) << host.log();
  EXPECT_THAT(host.log(), HasSubstr(host.configPath() + ":10"));
  EXPECT_THAT(host.log(), HasSubstr("the running configuration is kept"));
  publish("still-a");
  ASSERT_TRUE(eventually([&] { return llen("seen_a") == 1; })) << host.log();

  const nlohmann::json s = status(host);
  EXPECT_EQ(s["reload"]["failed"], 1);
  EXPECT_EQ(s["reload"]["generation"], 1);
  EXPECT_EQ(s["reload"]["last"]["result"], "failed");
  ASSERT_FALSE(s["reload"]["last"]["errors"].empty());
  EXPECT_THAT(s["reload"]["last"]["errors"][0].get<std::string>(), HasSubstr("nosuch"));
  const std::string metrics = httpGet(opsUrl(host) + "/metrics").body;
  EXPECT_THAT(metrics, HasSubstr("\nevhost_reload_failures_total 1\n"));
  EXPECT_THAT(metrics, HasSubstr("\nevhost_config_last_reload_successful 0\n"));

  // Fixed, the next reload goes through.
  rewrite(host, config("b"));
  host.signal(SIGHUP);
  ASSERT_TRUE(host.waitForLog("configuration reloaded from")) << host.log();
  publish("now-b");
  ASSERT_TRUE(eventually([&] { return llen("seen_b") == 1; })) << host.log();
  // (The ops listener may answer from a snapshot up to 100 ms old.)
  EXPECT_TRUE(eventually([&] { return status(host)["reload"]["last"]["result"] == "ok"; })) << host.log();
}

TEST_F(ReloadTest, WhatAReloadCannotApplyYetIsNamedAndNothingChanges) {
  EvhostProcess host(config("a"));
  ASSERT_TRUE(host.waitForLog("subscribed to")) << host.log();
  // Another number of workers, with a new plugin and routes to it: neither
  // the plugin nor the routes are applied alone.
  rewrite(host, config("c", "  c: {path: recorder, config: {key: seen_c}}\n") + "workers: 7\n");
  host.signal(SIGHUP);
  ASSERT_TRUE(host.waitForLog("reload failed")) << host.log();
  EXPECT_THAT(host.log(),
              HasSubstr(host.configPath() + ": workers: changed (a reload cannot apply this yet: restart evhost)"));
  publish("still-a");
  ASSERT_TRUE(eventually([&] { return llen("seen_a") == 1; })) << host.log();
  EXPECT_EQ(llen("seen_c"), 0);
}

// Reloads that do not touch Redis keep the subscription: every event
// published across five of them is handled exactly once, by a or by b.
TEST_F(ReloadTest, PubSubLosesNothingAcrossReloads) {
  NotifySocket sock;
  EvhostProcess host(config("a"), {}, {sock.env()});
  ASSERT_TRUE(host.waitForLog("subscribed to")) << host.log();
  ASSERT_TRUE(sock.waitFor("READY=1").has_value());
  std::atomic<bool> done{false};
  std::atomic<int> sent{0};
  // Its own connection (the fixture's is this thread's).
  std::thread publisher([&, port = redis_.port()] {
    redisContext* c = redisConnect("127.0.0.1", port);
    while (c != nullptr && c->err == 0 && !done.load()) {
      const std::string body = reloadEvent("e" + std::to_string(sent.load()));
      auto* r = static_cast<redisReply*>(
          redisCommand(c, "PUBLISH %s %b", "test:jollyjet:events:product", body.data(), body.size()));
      if (r == nullptr) {
        break;
      }
      freeReplyObject(r);
      sent.fetch_add(1);
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
    redisFree(c);
  });
  size_t from = 0;
  for (int i = 1; i <= 5; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    rewrite(host, config(i % 2 == 1 ? "b" : "a"));
    host.signal(SIGHUP);
    ASSERT_TRUE(eventually([&] { return host.countInLog("configuration reloaded from") == static_cast<size_t>(i); }))
        << host.log();
    // The service manager hears RELOADING=1, then READY=1 again.
    const auto reloading = sock.waitFor("RELOADING=1", std::chrono::seconds(10), from);
    ASSERT_TRUE(reloading.has_value());
    const auto ready = sock.waitFor("READY=1", std::chrono::seconds(10), *reloading + 1);
    ASSERT_TRUE(ready.has_value());
    from = *ready + 1;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  done = true;
  publisher.join();
  const long long total = sent.load();
  ASSERT_TRUE(eventually([&] { return llen("seen_a") + llen("seen_b") >= total; })) << host.log();
  EXPECT_GT(llen("seen_a"), 0);
  EXPECT_GT(llen("seen_b"), 0);
  std::set<std::string> ids;
  for (const char* key : {"seen_a", "seen_b"}) {
    const auto list = redis_.command({"LRANGE", key, "0", "-1"});
    for (size_t i = 0; i < list->elements; ++i) {
      const std::string record(list->element[i]->str, list->element[i]->len);
      // tag|eventType|eventId|...
      const size_t first = record.find('|');
      const size_t second = record.find('|', first + 1);
      const size_t third = record.find('|', second + 1);
      EXPECT_TRUE(ids.insert(record.substr(second + 1, third - second - 1)).second) << "twice: " << record;
    }
  }
  EXPECT_EQ(static_cast<long long>(ids.size()), total);
  EXPECT_THAT(host.log(), Not(HasSubstr("reload failed")));
}

}  // namespace
}  // namespace evh::test
