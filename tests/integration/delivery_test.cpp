// Delivery against a real redis-server: retries on timers, dead letters,
// circuit breakers, timeouts, the fallback file and shutdown.
#include "support/evhost_process.h"
#include "support/redis_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>

namespace evh::test {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

std::string event(const std::string& id, const std::string& type = "PRODUCT_CREATED") {
  return R"({"eventId":")" + id + R"(","eventType":")" + type +
         R"(","timestamp":"2024-01-15T10:30:00.000Z","correlationId":"corr-)" + id +
         R"(","payload":{"productId":"p-1"}})";
}

class DeliveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/evh-delivery-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // A deployment whose dead letters go to the recorder "dead" (list "dlq"),
  // unless `dead_letter` says otherwise; 3 attempts 100 ms apart unless the
  // body has its own root `retry:`.
  std::string config(const std::string& body, const std::string& dead_letter = "") const {
    std::ostringstream y;
    y << "environment: test\n"
      << "redis: {host: 127.0.0.1, port: " << redis_.port() << "}\n"
      << (body.find("\nretry:") == std::string::npos ? "retry: {max_attempts: 3, base_delay_ms: 100, jitter: none}\n"
                                                     : "")
      << "shutdown_timeout_ms: 5000\n"
      << (dead_letter.empty() ? "dead_letter: {plugin: dead, fallback_file: " + fallback() + "}\n" : dead_letter)
      << body;
    return y.str();
  }
  std::string fallback() const { return dir_ + "/fallback.jsonl"; }

  void publish(const std::string& message) { redis_.command({"PUBLISH", "test:jollyjet:events:product", message}); }
  long long llen(const std::string& key) { return redis_.command({"LLEN", key})->integer; }
  std::vector<std::string> list(const std::string& key) {
    std::vector<std::string> out;
    auto r = redis_.command({"LRANGE", key, "0", "-1"});
    for (size_t i = 0; i < r->elements; ++i) {
      out.emplace_back(r->element[i]->str, r->element[i]->len);
    }
    return out;
  }
  // The dead-letter entries the recorder "dead" stored (payload field).
  std::vector<json> deadLetters() {
    std::vector<json> out;
    for (const auto& rec : list("dlq")) {
      size_t pos = 0;
      for (int i = 0; i < 9; ++i) {
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
  static void waitSubscribed(const EvhostProcess& host) { ASSERT_TRUE(host.waitForLog("subscribed to")) << host.log(); }

  RedisServer redis_;
  std::string dir_;
};

constexpr const char* kDeadRecorder = R"(
  dead: {path: recorder, config: {key: dlq, tag: dead}}
)";

TEST_F(DeliveryTest, RetriesOnATimerUntilSuccessWithoutRerunningOthers) {
  EvhostProcess host(config(std::string(R"(
plugins:
  flaky: {path: recorder, config: {key: flaky, fail_until_attempt: 2}}
  steady: {path: recorder, config: {key: steady}})") +
                            kDeadRecorder + R"(
channels:
  jollyjet:events:product:
    routes:
      - events: "*"
        plugins: [flaky, steady]
)"));
  waitSubscribed(host);
  publish(event("e1"));
  ASSERT_TRUE(eventually([&] { return llen("flaky") == 1; })) << host.log();
  EXPECT_EQ(llen("steady"), 1);                                // succeeded at once and was never called again
  EXPECT_THAT(list("flaky")[0], HasSubstr("|e1|corr-e1|3|"));  // the third attempt
  EXPECT_EQ(llen("dlq"), 0);
  EXPECT_TRUE(host.waitForLog("retrying in 100 ms")) << host.log();
  EXPECT_EQ(host.countInLog("retrying in 100 ms"), 1U) << host.log();  // 100, then 200
  EXPECT_TRUE(host.waitForLog("retrying in 200 ms")) << host.log();
  EXPECT_EQ(host.countInLog("retrying in 200 ms"), 1U) << host.log();
}

// Milliseconds of the day from a log line's "2026-11-26T18:23:11.090" prefix.
long long logMs(const std::string& line) {
  int h = 0, m = 0, sec = 0, ms = 0;
  std::sscanf(line.c_str() + 11, "%d:%d:%d.%d", &h, &m, &sec, &ms);
  return ((h * 60LL + m) * 60 + sec) * 1000 + ms;
}

TEST_F(DeliveryTest, RetryDelaysFollowTheBackoffWhileOtherEventsAreServed) {
  EvhostProcess host(config(std::string(R"(
retry: {max_attempts: 3, base_delay_ms: 300, multiplier: 2, jitter: none}
plugins:
  flaky: {path: recorder, config: {key: flaky, fail_until_attempt: 2}}
  steady: {path: recorder, config: {key: steady}})") +
                            kDeadRecorder + R"(
channels:
  jollyjet:events:product:
    routes:
      - events: [PRODUCT_CREATED]
        plugins: [flaky]
      - events: [OTHER]
        plugins: [steady]
)"),
                     {}, {"DEBUG_EVENTS=true"});
  waitSubscribed(host);
  publish(event("e1"));
  ASSERT_TRUE(host.waitForLog("retrying in 300 ms")) << host.log();
  // While e1 waits for its retries, other events are handled.
  for (int i = 0; i < 5; ++i) {
    publish(event("o" + std::to_string(i), "OTHER"));
  }
  ASSERT_TRUE(eventually([&] { return llen("steady") == 5; })) << host.log();
  EXPECT_EQ(llen("flaky"), 0);
  ASSERT_TRUE(eventually([&] { return llen("flaky") == 1; })) << host.log();
  EXPECT_THAT(list("flaky")[0], HasSubstr("|e1|corr-e1|3|"));

  // The third dispatch's line may still be on its way to the log.
  EXPECT_TRUE(eventually([&] { return host.countInLog("event stage=dispatched eventId=e1 ") >= 3; })) << host.log();
  std::vector<long long> at;
  std::istringstream lines(host.log());
  for (std::string line; std::getline(lines, line);) {
    if (line.find("event stage=dispatched eventId=e1 ") != std::string::npos) {
      at.push_back(logMs(line));
    }
  }
  ASSERT_EQ(at.size(), 3U) << host.log();
  // 300 ms then 600 ms, within +-20 %.
  EXPECT_NEAR(static_cast<double>(at[1] - at[0]), 300.0, 60.0) << host.log();
  EXPECT_NEAR(static_cast<double>(at[2] - at[1]), 600.0, 120.0) << host.log();
}

TEST_F(DeliveryTest, ExhaustedRetriesAreDeadLetteredWithTheirHistory) {
  EvhostProcess host(config(std::string(R"(
plugins:
  broken: {path: recorder, config: {key: broken, answer: {PRODUCT_CREATED: retry}}}
  steady: {path: recorder, config: {key: steady}})") +
                            kDeadRecorder + R"(
channels:
  jollyjet:events:product:
    routes:
      - events: "*"
        plugins: [broken, steady]
)"));
  waitSubscribed(host);
  publish(event("e1"));
  ASSERT_TRUE(eventually([&] { return llen("dlq") == 1; })) << host.log();
  json e = deadLetters()[0];
  EXPECT_EQ(e["reason"], "exhausted");
  EXPECT_EQ(e["plugin"], "broken");
  EXPECT_EQ(e["attempts"], 3);
  EXPECT_EQ(e["retryCount"], 2);
  EXPECT_EQ(e["error"]["message"], "recorder was told to retry");
  EXPECT_EQ(e["eventId"], "e1");
  EXPECT_EQ(e["correlationId"], "corr-e1");
  EXPECT_EQ(e["redisChannel"], "test:jollyjet:events:product");
  EXPECT_EQ(e["originalEvent"], json::parse(event("e1")));
  EXPECT_TRUE(e.contains("firstAttemptAt") && e.contains("lastAttemptAt") && e.contains("timestamp"));
  EXPECT_EQ(llen("steady"), 1);
}

TEST_F(DeliveryTest, RejectSkipsRetries) {
  EvhostProcess host(config(std::string(R"(
plugins:
  picky: {path: recorder, config: {key: picky, answer: {PRODUCT_CREATED: reject}}})") +
                            kDeadRecorder + R"(
channels:
  jollyjet:events:product:
    routes:
      - events: "*"
        plugins: [picky]
)"));
  waitSubscribed(host);
  publish(event("e1"));
  ASSERT_TRUE(eventually([&] { return llen("dlq") == 1; })) << host.log();
  json e = deadLetters()[0];
  EXPECT_EQ(e["reason"], "rejected");
  EXPECT_EQ(e["attempts"], 1);
  EXPECT_EQ(e["error"]["message"], "recorder was told to reject");
  EXPECT_EQ(host.countInLog("retrying in"), 0U);
}

TEST_F(DeliveryTest, UndecodableMessagesAreDeadLetteredWithTheirBytes) {
  EvhostProcess host(config(std::string(R"(
plugins:
  rec: {path: recorder, config: {key: rec}})") +
                            kDeadRecorder + R"(
channels:
  jollyjet:events:product:
    routes:
      - events: "*"
        plugins: [rec]
)"));
  waitSubscribed(host);
  publish("{broken json");
  ASSERT_TRUE(eventually([&] { return llen("dlq") == 1; })) << host.log();
  json e = deadLetters()[0];
  EXPECT_EQ(e["reason"], "invalid");
  EXPECT_EQ(e["raw"], "{broken json");
  EXPECT_EQ(e["error"]["name"], "not_json");
  EXPECT_EQ(e["channel"], "jollyjet:events:product");
  EXPECT_FALSE(e.contains("originalEvent"));
}

TEST_F(DeliveryTest, CircuitBreakerOpensHoldsEventsAndClosesAfterTrials) {
  EvhostProcess host(config(std::string(R"(
circuit_breaker: {threshold: 3, open_ms: 700, half_open_max_calls: 2, max_wait_ms: 30000}
retry: {max_attempts: 1}
plugins:
  fragile: {path: recorder, config: {key: fragile, answer: {FAIL: retry}}})") +
                            kDeadRecorder + R"(
channels:
  jollyjet:events:product:
    routes:
      - events: "*"
        plugins: [fragile]
)"));
  waitSubscribed(host);
  for (int i = 0; i < 3; ++i) {
    publish(event("f" + std::to_string(i), "FAIL"));
  }
  ASSERT_TRUE(host.waitForLog("circuit breaker CLOSED -> OPEN")) << host.log();
  // While open, good events wait instead of being called.
  for (int i = 0; i < 4; ++i) {
    publish(event("ok" + std::to_string(i)));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(llen("fragile"), 0) << host.log();
  // After open_ms: half-open, two trials succeed, closed, the rest follow.
  ASSERT_TRUE(eventually([&] { return llen("fragile") == 4; })) << host.log();
  // The recorder's entries are in Redis before the call's answer closes the
  // breaker (and the line is logged): wait for the line, then count it.
  ASSERT_TRUE(host.waitForLog("circuit breaker HALF_OPEN -> CLOSED")) << host.log();
  EXPECT_EQ(host.countInLog("circuit breaker OPEN -> HALF_OPEN"), 1U) << host.log();
  EXPECT_EQ(host.countInLog("circuit breaker HALF_OPEN -> CLOSED"), 1U) << host.log();
  std::vector<std::string> ids;
  for (const auto& r : list("fragile")) {
    ids.push_back(r.substr(r.find("|ok") + 1, 3));
  }
  EXPECT_EQ(ids, (std::vector<std::string>{"ok0", "ok1", "ok2", "ok3"}));
  EXPECT_EQ(llen("dlq"), 3);  // the three failures (one attempt each)
}

TEST_F(DeliveryTest, EventsWaitingTooLongForAnOpenBreakerAreDeadLettered) {
  EvhostProcess host(config(std::string(R"(
circuit_breaker: {threshold: 1, open_ms: 60000, max_wait_ms: 300}
retry: {max_attempts: 1}
plugins:
  fragile: {path: recorder, config: {key: fragile, answer: {FAIL: retry}}})") +
                            kDeadRecorder + R"(
channels:
  jollyjet:events:product:
    routes:
      - events: "*"
        plugins: [fragile]
)"));
  waitSubscribed(host);
  publish(event("f0", "FAIL"));
  ASSERT_TRUE(host.waitForLog("-> OPEN")) << host.log();
  publish(event("late"));
  ASSERT_TRUE(eventually([&] { return llen("dlq") == 2; })) << host.log();
  json e = deadLetters()[1];
  EXPECT_EQ(e["reason"], "circuit_open");
  EXPECT_EQ(e["eventId"], "late");
  EXPECT_EQ(e["attempts"], 0);
  EXPECT_THAT(e["error"]["message"].get<std::string>(), HasSubstr("max_wait_ms=300"));
}

TEST_F(DeliveryTest, EventsWaitingForAnOpenBreakerAreDeadLetteredAtShutdown) {
  EvhostProcess host(config(std::string(R"(
circuit_breaker: {threshold: 1, open_ms: 60000, max_wait_ms: 60000}
retry: {max_attempts: 1}
plugins:
  fragile: {path: recorder, config: {key: fragile, answer: {FAIL: retry}}})") +
                            kDeadRecorder + R"(
channels:
  jollyjet:events:product:
    routes:
      - events: "*"
        plugins: [fragile]
)"));
  waitSubscribed(host);
  publish(event("f0", "FAIL"));
  ASSERT_TRUE(host.waitForLog("-> OPEN")) << host.log();
  publish(event("waiting"));
  ASSERT_TRUE(eventually([&] { return llen("dlq") == 1; })) << host.log();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // "waiting" reaches the breaker's queue
  host.signal(SIGTERM);
  // Not after the breaker's 60 s: at once (the bound only guards a hang).
  ASSERT_EQ(host.waitExit(std::chrono::seconds(10)), std::optional<int>(0)) << host.log();
  ASSERT_EQ(llen("dlq"), 2) << host.log();
  json e = deadLetters()[1];
  EXPECT_EQ(e["eventId"], "waiting");
  EXPECT_EQ(e["reason"], "shutdown");
}

TEST_F(DeliveryTest, HandlerTimeoutCountsAsAFailedAttempt) {
  EvhostProcess host(config(std::string(R"(
retry: {max_attempts: 2, base_delay_ms: 10}
plugins:
  stuck: {path: recorder, timeout_ms: 200, config: {key: stuck, answer: {PRODUCT_CREATED: pending_forever}}})") +
                            kDeadRecorder + R"(
channels:
  jollyjet:events:product:
    routes:
      - events: "*"
        plugins: [stuck]
)"));
  waitSubscribed(host);
  publish(event("e1"));
  ASSERT_TRUE(eventually([&] { return llen("dlq") == 1; })) << host.log();
  json e = deadLetters()[0];
  EXPECT_EQ(e["reason"], "exhausted");
  EXPECT_EQ(e["attempts"], 2);
  EXPECT_EQ(e["error"]["name"], "timeout");
  EXPECT_EQ(e["error"]["message"], "timed out after 200 ms");
}

TEST_F(DeliveryTest, FailingDeadLetterPluginFallsBackToTheFile) {
  EvhostProcess host(config(R"(
plugins:
  picky: {path: recorder, config: {key: picky, answer: {PRODUCT_CREATED: reject}}}
  dead: {path: recorder, config: {key: dlq, answer: {DEAD_LETTER: reject}}}
channels:
  jollyjet:events:product:
    routes:
      - events: "*"
        plugins: [picky]
)"));
  waitSubscribed(host);
  publish(event("e1"));
  ASSERT_TRUE(eventually([&] { return fallbackEntries().size() == 1; })) << host.log();
  json e = fallbackEntries()[0];
  EXPECT_EQ(e["reason"], "rejected");
  EXPECT_EQ(e["eventId"], "e1");
  EXPECT_TRUE(host.waitForLog("dead-letter plugin dead failed")) << host.log();
}

TEST_F(DeliveryTest, WithoutADeadLetterPluginEntriesGoToTheFallbackFile) {
  EvhostProcess host(config(R"(
plugins:
  picky: {path: recorder, config: {key: picky, answer: {PRODUCT_CREATED: reject}}}
channels:
  jollyjet:events:product:
    routes:
      - events: "*"
        plugins: [picky]
)",
                            "dead_letter: {fallback_file: " + fallback() + "}\n"));
  waitSubscribed(host);
  publish(event("e1"));
  publish("not json");
  ASSERT_TRUE(eventually([&] { return fallbackEntries().size() == 2; })) << host.log();
  EXPECT_EQ(fallbackEntries()[0]["reason"], "rejected");
  EXPECT_EQ(fallbackEntries()[1]["reason"], "invalid");
}

TEST_F(DeliveryTest, EventsWaitingForARetryAreDeadLetteredAtShutdown) {
  EvhostProcess host(config(std::string(R"(
retry: {max_attempts: 5, base_delay_ms: 60000, jitter: none}
plugins:
  broken: {path: recorder, config: {key: broken, answer: {PRODUCT_CREATED: retry}}})") +
                            kDeadRecorder + R"(
channels:
  jollyjet:events:product:
    routes:
      - events: "*"
        plugins: [broken]
)"));
  waitSubscribed(host);
  publish(event("e1"));
  ASSERT_TRUE(host.waitForLog("retrying in 60000 ms")) << host.log();
  host.signal(SIGTERM);
  ASSERT_EQ(host.waitExit(), std::optional<int>(0)) << host.log();
  ASSERT_EQ(llen("dlq"), 1) << host.log();
  json e = deadLetters()[0];
  EXPECT_EQ(e["reason"], "shutdown");
  EXPECT_EQ(e["attempts"], 1);
  EXPECT_EQ(e["error"]["message"], "recorder was told to retry");
}

// Redis goes away while events are being dead-lettered through the dlq
// plugin: it spools them and, once Redis is back, flushes them -- every
// entry in the list, none twice.
class DeadLetterOutageTest : public DeliveryTest {};

TEST_F(DeadLetterOutageTest, EveryEntryReachesTheListAcrossARedisRestart) {
  RedisServer durable({"--appendonly", "yes", "--appendfsync", "always"});
  std::ostringstream y;
  y << "environment: test\n"
    << "redis: {host: 127.0.0.1, port: " << durable.port()
    << ", reconnect: {initial_ms: 50, max_ms: 200}, ping_interval_ms: 300, ping_timeout_ms: 300}\n"
    << "retry: {max_attempts: 1}\n"
    << "dead_letter: {plugin: dlq, fallback_file: " << fallback() << "}\n"
    << R"(plugins:
  slow: {path: slow_recorder, config: {key: slow, sleep_ms: 100, answer: {PRODUCT_CREATED: reject}}}
  dlq: {path: dlq, config: {spool_file: )"
    << dir_ << R"(/spool.jsonl, flush_interval_ms: 100}}
channels:
  jollyjet:events:product:
    routes:
      - events: "*"
        plugins: [slow]
)";
  EvhostProcess host(y.str());
  ASSERT_TRUE(host.waitForLog("subscribed to")) << host.log();
  constexpr int kEvents = 20;  // 2 s of work: rejected one by one, 100 ms apart
  for (int i = 0; i < kEvents; ++i) {
    durable.command({"PUBLISH", "test:jollyjet:events:product", event("e" + std::to_string(i))});
  }
  ASSERT_TRUE(eventually([&] {
    return durable.command({"LLEN", "test:jollyjet:events:dlq"})->integer >= 3;
  })) << host.log();
  durable.stop();
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  durable.restart();
  auto entries = [&] {
    std::vector<std::string> ids;
    auto r = durable.command({"LRANGE", "test:jollyjet:events:dlq", "0", "-1"});
    for (size_t i = 0; i < r->elements; ++i) {
      ids.push_back(json::parse(std::string(r->element[i]->str, r->element[i]->len))["eventId"]);
    }
    return ids;
  };
  ASSERT_TRUE(eventually([&] { return entries().size() >= static_cast<size_t>(kEvents); })) << host.log();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // anything late would be a duplicate
  auto ids = entries();
  EXPECT_EQ(ids.size(), static_cast<size_t>(kEvents)) << host.log();
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), static_cast<size_t>(kEvents));
  EXPECT_FALSE(std::filesystem::exists(fallback())) << "the dlq plugin kept every entry itself";
  // The outage really met dead-lettering: entries were spooled, then flushed.
  EXPECT_TRUE(host.waitForLog("spooling them to")) << host.log();
  EXPECT_TRUE(host.waitForLog("spooled dead-letter entries to")) << host.log();
}

}  // namespace
}  // namespace evh::test
