// A Pub/Sub channel shared among evhost instances (`share:`), with real
// evhost processes against a real redis-server: every instance hears each
// message and forwards it into the shared stream, one script call that adds
// it once; the instances read that stream as one consumer group. Each event
// is handled once across three instances, also when one is killed; a
// forward Redis refuses is dead-lettered (share_failed).
#include "support/evhost_process.h"
#include "support/http_client.h"
#include "support/redis_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <nlohmann/json.hpp>

#include <signal.h>

#include <atomic>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace evh::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kChannel = "test:jollyjet:events:product";
constexpr const char* kStream = "test:jollyjet:events:product:shared";

std::string shareEvent(int n) {
  const std::string id = "ev-" + std::to_string(n);
  return R"({"eventId":")" + id +
         R"(","eventType":"PRODUCT_CREATED","timestamp":"2024-01-15T10:30:00.000Z","correlationId":"c-)" + id +
         R"(","payload":{}})";
}

// One instance: its records are tagged `tag`, all in the list "exact". The
// route is idempotent and the recorder writes its mark with its record (one
// EVAL): an entry a killed instance handled but did not ack is not handled
// again when another instance claims it.
std::string shareConfig(uint16_t port, const std::string& tag, const std::string& share = "{}") {
  return "environment: test\nredis: {host: 127.0.0.1, port: " + std::to_string(port) +
         "}\n"
         "plugins:\n"
         "  rec: {path: recorder, config: {key: exact, tag: " +
         tag +
         ", atomic: true}}\n"
         "channels:\n"
         "  jollyjet:events:product:\n"
         "    share: " +
         share +
         "\n"
         "    stream: {group: shop, count: 10, block_ms: 100, claim_idle_ms: 1000, claim_interval_ms: 200}\n"
         "    routes:\n"
         "      - events: \"*\"\n"
         "        plugins: [rec]\n"
         "        idempotency: {ttl_ms: 600000}\n";
}

bool shareReady(const EvhostProcess& host) { return httpGet(opsUrl(host) + "/readyz").status == 200; }

// The records of "exact": eventId -> how many times, and how many per tag.
struct Records {
  std::map<std::string, int> per_event;
  std::map<std::string, int> per_tag;
  size_t total = 0;
};

Records shareRecords(RedisServer& redis) {
  Records r;
  const auto list = redis.command({"LRANGE", "exact", "0", "-1"});
  for (size_t i = 0; i < list->elements; ++i) {
    const std::string line(list->element[i]->str, list->element[i]->len);
    // tag|eventType|eventId|...
    const size_t a = line.find('|');
    const size_t b = line.find('|', a + 1);
    const size_t c = line.find('|', b + 1);
    ++r.per_tag[line.substr(0, a)];
    ++r.per_event[line.substr(b + 1, c - b - 1)];
    ++r.total;
  }
  return r;
}

long long sharePending(RedisServer& redis) {
  const auto reply = redis.command({"XPENDING", kStream, "shop"});
  return reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 ? reply->element[0]->integer : -1;
}

// Publishes events [from, to) pipelined; returns how many subscribers heard
// the first one.
long long publishRange(RedisServer& redis, int from, int to) {
  RedisConn pub = redis.connect();
  for (int i = from; i < to; ++i) {
    const std::string msg = shareEvent(i);
    redisAppendCommand(pub.get(), "PUBLISH %s %b", kChannel, msg.data(), msg.size());
  }
  long long heard = -1;
  for (int i = from; i < to; ++i) {
    void* reply = nullptr;
    if (redisGetReply(pub.get(), &reply) != REDIS_OK) {
      return -1;
    }
    if (heard < 0) {
      heard = static_cast<redisReply*>(reply)->integer;
    }
    freeReplyObject(reply);
  }
  return heard;
}

// evhost_pubsub_shared_total{outcome} of the channel in a scrape; -1 when
// the series is not there.
double sharedTotal(const EvhostProcess& host, const std::string& outcome) {
  const std::string text = httpGet(opsUrl(host) + "/metrics").body;
  const std::string series =
      "\nevhost_pubsub_shared_total{channel=\"jollyjet:events:product\",outcome=\"" + outcome + "\"} ";
  const size_t at = text.find(series);
  return at == std::string::npos ? -1 : std::stod(text.substr(at + series.size()));
}

TEST(PubsubShareTest, ThreeInstancesHandleEachEventOnce) {
  RedisServer redis;
  std::vector<std::unique_ptr<EvhostProcess>> hosts;
  for (int i = 0; i < 3; ++i) {
    hosts.push_back(std::make_unique<EvhostProcess>(shareConfig(redis.port(), "i" + std::to_string(i))));
  }
  for (auto& h : hosts) {
    ASSERT_TRUE(eventually([&] { return shareReady(*h); })) << h->log();
  }
  constexpr int kEvents = 3000;
  ASSERT_EQ(publishRange(redis, 0, kEvents), 3) << "three instances subscribed";
  ASSERT_TRUE(eventually([&] { return shareRecords(redis).total >= kEvents && sharePending(redis) == 0; },
                         std::chrono::seconds(60)))
      << "records=" << shareRecords(redis).total << " pending=" << sharePending(redis) << "\n"
      << hosts[0]->log();
  const Records r = shareRecords(redis);
  EXPECT_EQ(r.total, static_cast<size_t>(kEvents)) << "each event handled once across the three";
  EXPECT_EQ(r.per_event.size(), static_cast<size_t>(kEvents));
  EXPECT_EQ(redis.command({"XLEN", kStream})->integer, kEvents) << "each message added to the stream once";
  std::cout << "handled per instance:";
  for (const auto& [tag, n] : r.per_tag) {
    std::cout << " " << tag << "=" << n;
  }
  std::cout << "\n";
  // Every instance heard every message: one added it, the other two found
  // it there.
  double added = 0;
  double duplicate = 0;
  for (auto& h : hosts) {
    added += sharedTotal(*h, "added");
    duplicate += sharedTotal(*h, "duplicate");
    EXPECT_EQ(sharedTotal(*h, "failed"), 0);
    // Several instances on a shared channel are meant: no warning.
    EXPECT_THAT(h->log(), Not(HasSubstr("another evhost"))) << h->log();
  }
  EXPECT_EQ(added, kEvents);
  EXPECT_EQ(duplicate, 2 * kEvents);
  const auto status = nlohmann::json::parse(httpGet(opsUrl(*hosts[0]) + "/status").body);
  EXPECT_THAT(status["channels"].dump(), HasSubstr("pubsub-shared")) << status.dump();
}

// One instance is killed while events are published: what it had heard the
// two others heard too, and what it had read from the group and not acked
// is claimed by them -- nothing is lost, nothing handled twice.
TEST(PubsubShareTest, AKilledInstanceLosesNothing) {
  RedisServer redis;
  std::vector<std::unique_ptr<EvhostProcess>> hosts;
  for (int i = 0; i < 3; ++i) {
    hosts.push_back(std::make_unique<EvhostProcess>(shareConfig(redis.port(), "i" + std::to_string(i))));
  }
  for (auto& h : hosts) {
    ASSERT_TRUE(eventually([&] { return shareReady(*h); })) << h->log();
  }
  constexpr int kEvents = 6000;
  std::atomic<bool> published{false};
  std::thread publisher([&] {
    // 200 events every 50 ms: about 4,000/s.
    for (int i = 0; i < kEvents; i += 200) {
      publishRange(redis, i, i + 200);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    published = true;
  });
  const bool some = eventually([&] { return shareRecords(redis).per_tag["i0"] >= 200; }, std::chrono::seconds(30));
  hosts[0]->signal(SIGKILL);
  hosts[0]->waitExit();
  publisher.join();
  ASSERT_TRUE(some) << hosts[0]->log();
  ASSERT_TRUE(published);
  ASSERT_TRUE(eventually([&] { return shareRecords(redis).per_event.size() >= kEvents && sharePending(redis) == 0; },
                         std::chrono::seconds(60)))
      << "handled=" << shareRecords(redis).per_event.size() << " pending=" << sharePending(redis) << "\n"
      << hosts[1]->log();
  const Records r = shareRecords(redis);
  EXPECT_EQ(r.per_event.size(), static_cast<size_t>(kEvents)) << "none lost";
  EXPECT_EQ(r.total, static_cast<size_t>(kEvents)) << "none handled twice";
  std::cout << "handled per instance:";
  for (const auto& [tag, n] : r.per_tag) {
    std::cout << " " << tag << "=" << n;
  }
  std::cout << "\n";
}

// A forward that Redis refuses (the shared stream's key holds a string):
// the message is dead-lettered with reason share_failed, logged and counted.
TEST(PubsubShareTest, AForwardRedisRefusesIsDeadLettered) {
  RedisServer redis;
  redis.command({"SET", kStream, "not a stream"});
  EvhostProcess host(shareConfig(redis.port(), "i0"));
  ASSERT_TRUE(eventually([&] { return publishRange(redis, 0, 1) == 1; })) << host.log();
  ASSERT_TRUE(eventually([&] { return sharedTotal(host, "failed") >= 1; })) << host.log();
  EXPECT_TRUE(host.waitForLog("reason=share_failed")) << host.log();
  EXPECT_THAT(host.log(), HasSubstr("the forward into the shared stream failed: WRONGTYPE"));
  ASSERT_TRUE(eventually([&] {
    std::ifstream in(host.dir() + "/evhost-dead-letter.jsonl");
    std::stringstream s;
    s << in.rdbuf();
    return s.str().find("share_failed") != std::string::npos && s.str().find("ev-0") != std::string::npos;
  })) << host.log();
  EXPECT_EQ(sharedTotal(host, "added"), 0);
}

// Sharing turned on by a reload: the subscription is kept (no gap), and
// from then on events go through the shared stream.
TEST(PubsubShareTest, AReloadTurnsSharingOn) {
  RedisServer redis;
  std::string plain = shareConfig(redis.port(), "i0");
  plain.replace(plain.find("    share: {}\n"), 14, "");
  plain.replace(plain.find("    stream: {"), plain.find("    routes:") - plain.find("    stream: {"), "");
  EvhostProcess host(plain);
  ASSERT_TRUE(eventually([&] { return shareReady(host); })) << host.log();
  ASSERT_EQ(publishRange(redis, 0, 10), 1);
  ASSERT_TRUE(eventually([&] { return shareRecords(redis).total >= 10; })) << host.log();
  EXPECT_EQ(redis.command({"EXISTS", kStream})->integer, 0);

  std::ofstream(host.configPath(), std::ios::trunc) << shareConfig(redis.port(), "i0");
  const size_t before = host.countInLog("configuration reloaded from");
  host.signal(SIGHUP);
  ASSERT_TRUE(eventually([&] { return host.countInLog("configuration reloaded from") > before; })) << host.log();
  EXPECT_THAT(host.log(), HasSubstr("the sharing (share:) of 1 Pub/Sub channel(s)"));
  ASSERT_TRUE(eventually([&] { return shareReady(host); })) << host.log();
  ASSERT_EQ(publishRange(redis, 10, 20), 1);
  ASSERT_TRUE(eventually([&] { return shareRecords(redis).total >= 20 && sharePending(redis) == 0; })) << host.log();
  EXPECT_EQ(shareRecords(redis).total, 20U);
  EXPECT_EQ(redis.command({"XLEN", kStream})->integer, 10) << "the events after the reload went through the stream";
  EXPECT_THAT(host.log(), Not(HasSubstr("gap")));
}

}  // namespace
}  // namespace evh::test
