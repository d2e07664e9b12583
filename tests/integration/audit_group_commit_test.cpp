// The audit plugin's group commit (plugins/audit/audit_writer.c), run by the
// real evhost against a real redis-server: lines in delivery order with many
// events sharing one fsync; a failing fsync (staged by
// support/fsync_fail_shim.c) acknowledging nothing until the disk works
// again; SIGKILL in the middle of a batch losing no acknowledged line.
#include "support/evhost_process.h"
#include "support/redis_server.h"
#include "support/temp_file.h"
#include "support/tested_binaries.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <signal.h>
#include <stdlib.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace evh::test {
namespace {

using nlohmann::json;

constexpr const char* kCommitStream = "test:jollyjet:events:orders";
constexpr const char* kGroup = "g";

std::string numberedOrder(int i) {
  return R"({"eventId":"evt-)" + std::to_string(i) +
         R"(","eventType":"ORDER_PLACED","timestamp":"2024-01-15T10:30:00.000Z","payload":{"orderId":"o-)" +
         std::to_string(i) + R"(","email":"a@example.com"}})";
}

// The eventIds of the file's whole lines, in order. A line that is not an
// audit line fails the test -- unless `fragments` counts them: a line a
// SIGKILL cut short, which the next start ended with a newline.
std::vector<std::string> wholeLineIds(const std::string& path, size_t* fragments = nullptr) {
  std::vector<std::string> out;
  for (const auto& line : wholeLines(path)) {
    json j = json::parse(line, nullptr, false);
    if (!j.is_object() || !j.contains("eventId")) {
      if (fragments != nullptr) {
        ++*fragments;
      } else {
        ADD_FAILURE() << "not an audit line: " << line;
      }
      continue;
    }
    out.push_back(j.value("eventId", std::string("?")));
  }
  return out;
}

// The counters of the plugin's closing summary line.
std::map<std::string, long long> commitSummary(const std::string& log) {
  std::map<std::string, long long> out;
  static const std::regex field(
      R"(\b(lines|fsyncs|rotations|redacted|write_errors|redeliveries_skipped|batches)=(\d+))");
  const size_t at = log.find("closed audit file");
  if (at == std::string::npos) {
    return out;
  }
  const std::string line = log.substr(at, log.find('\n', at) - at);
  for (std::sregex_iterator it(line.begin(), line.end(), field), end; it != end; ++it) {
    out[(*it)[1].str()] = std::stoll((*it)[2].str());
  }
  return out;
}

class AuditGroupCommitTest : public ::testing::Test {
 protected:
  // Orders through a stream and a consumer group, audited with the plugin's
  // defaults (fsync: always) unless `audit` adds config keys.
  std::string streamConfig(const std::string& audit = "", const std::string& root = "") const {
    std::ostringstream y;
    y << "environment: test\n"
      << "redis: {host: 127.0.0.1, port: " << redis_.port() << "}\n"
      << "shutdown_timeout_ms: 10000\n"
      << "dead_letter: {fallback_file: " << dir_.path() << "/dead.jsonl}\n"
      << root << "plugins:\n  audit: {path: audit, config: {file: " << path() << audit << "}}\n"
      << "channels:\n  jollyjet:events:orders:\n    transport: stream\n"
      << "    stream: {group: " << kGroup << ", consumer: c1, count: 100, block_ms: 100}\n"
      << "    routes: [{plugins: [audit]}]\n";
    return y.str();
  }
  std::string path() const { return dir_.path() + "/audit.jsonl"; }

  // Entries XADDed pipelined on one connection.
  void addOrders(int from, int to) {
    RedisConn c = redis_.connect();
    for (int i = from; i < to; ++i) {
      const std::string msg = numberedOrder(i);
      redisAppendCommand(c.get(), "XADD %s * event %b", kCommitStream, msg.data(), msg.size());
    }
    for (int i = from; i < to; ++i) {
      void* reply = nullptr;
      ASSERT_EQ(redisGetReply(c.get(), &reply), REDIS_OK);
      freeReplyObject(reply);
    }
  }
  long long pending() {
    ReplyPtr r = redis_.command({"XPENDING", kCommitStream, kGroup});
    return r->type == REDIS_REPLY_ARRAY && r->elements > 0 ? r->element[0]->integer : -1;
  }
  // A field of the group's XINFO GROUPS entry ("" when there is none).
  std::string groupField(const std::string& name) {
    ReplyPtr r = redis_.command({"XINFO", "GROUPS", kCommitStream});
    for (size_t g = 0; r->type == REDIS_REPLY_ARRAY && g < r->elements; ++g) {
      const redisReply* fields = r->element[g];
      for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        if (std::string(fields->element[i]->str) == name) {
          const redisReply* v = fields->element[i + 1];
          return v->type == REDIS_REPLY_INTEGER ? std::to_string(v->integer) : std::string(v->str, v->len);
        }
      }
    }
    return "";
  }
  std::string lastDelivered() { return groupField("last-delivered-id"); }
  // Entries delivered to the group and acknowledged since (Redis 7's entries-read).
  long long acknowledged() {
    const std::string read = groupField("entries-read");
    return read.empty() ? 0 : std::stoll(read) - pending();
  }
  static void stop(EvhostProcess& host) {
    host.signal(SIGTERM);
    ASSERT_EQ(host.waitExit(), std::optional<int>(0)) << host.log();
  }

  RedisServer redis_;
  TempDir dir_;
};

// Stream ids "ms-seq" in numeric order.
bool idNotAfter(const std::string& a, const std::string& b) {
  auto split = [](const std::string& s) {
    const size_t dash = s.find('-');
    return std::make_pair(std::stoull(s.substr(0, dash)), std::stoull(s.substr(dash + 1)));
  };
  return split(a) <= split(b);
}

// 2,000 events as fast as Pub/Sub brings them: every line, in the order
// published, and far fewer fsyncs than lines -- one per batch.
TEST_F(AuditGroupCommitTest, LinesKeepDeliveryOrderAndShareFsyncs) {
  constexpr int kEvents = 2000;
  std::ostringstream y;
  y << "environment: test\nredis: {host: 127.0.0.1, port: " << redis_.port() << "}\n"
    << "dead_letter: {fallback_file: " << dir_.path() << "/dead.jsonl}\n"
    << "plugins:\n  audit: {path: audit, config: {file: " << path() << "}}\n"
    << "channels:\n  jollyjet:events:orders:\n    routes: [{plugins: [audit]}]\n";
  EvhostProcess host(y.str());
  ASSERT_TRUE(host.waitForLog("subscribed to")) << host.log();
  {
    RedisConn c = redis_.connect();
    for (int i = 0; i < kEvents; ++i) {
      const std::string msg = numberedOrder(i);
      redisAppendCommand(c.get(), "PUBLISH %s %b", kCommitStream, msg.data(), msg.size());
    }
    for (int i = 0; i < kEvents; ++i) {
      void* reply = nullptr;
      ASSERT_EQ(redisGetReply(c.get(), &reply), REDIS_OK);
      freeReplyObject(reply);
    }
  }
  ASSERT_TRUE(eventually([&] { return wholeLines(path()).size() >= static_cast<size_t>(kEvents); })) << host.log();
  stop(host);
  std::vector<std::string> ids = wholeLineIds(path());
  ASSERT_EQ(ids.size(), static_cast<size_t>(kEvents));
  for (int i = 0; i < kEvents; ++i) {
    ASSERT_EQ(ids[static_cast<size_t>(i)], "evt-" + std::to_string(i)) << "line " << i;
  }
  auto s = commitSummary(host.log());
  EXPECT_EQ(s["lines"], kEvents) << host.log();
  EXPECT_EQ(s["write_errors"], 0);
  EXPECT_EQ(s["fsyncs"], s["batches"]) << "one fsync per batch";
  EXPECT_GE(s["fsyncs"], 1);
  EXPECT_LT(s["fsyncs"], kEvents / 2) << "lines arriving during an fsync share the next one";
  std::printf("[   info   ] %lld lines, %lld fsyncs\n", s["lines"], s["fsyncs"]);
}

// While fsync fails (EIO, staged by the preloaded shim) nothing is
// acknowledged: every entry stays pending, the file keeps the lines written
// before and no line of the failed batches, and the failures are logged and
// counted. Once fsync works again, the retries write every event once.
TEST_F(AuditGroupCommitTest, AFailingFsyncAcknowledgesNothingUntilItWorksThenEachEventOnce) {
  constexpr int kBefore = 5;
  constexpr int kEvents = 50;
  const std::string marker = dir_.path() + "/fsync-fails";
  std::string asan = getenv("ASAN_OPTIONS") != nullptr ? std::string(getenv("ASAN_OPTIONS")) + ":" : "";
  EvhostProcess host(streamConfig("",
                                  "retry: {max_attempts: 50, base_delay_ms: 100, multiplier: 1, jitter: none}\n"
                                  "circuit_breaker: {threshold: 1000000}\n"),
                     {},
                     {"LD_PRELOAD=" + std::string(fsyncFailShim()), "EVH_TEST_FSYNC_FAIL_MARKER=" + marker,
                      // the shim is preloaded ahead of a sanitizer build's runtime: allowed here
                      "ASAN_OPTIONS=" + asan + "verify_asan_link_order=0"});
  ASSERT_TRUE(host.waitForLog("plugin audit loaded")) << host.log();
  addOrders(0, kBefore);
  ASSERT_TRUE(eventually([&] { return pending() == 0 && wholeLines(path()).size() == kBefore; })) << host.log();
  const std::string before = readFile(path());

  std::ofstream(marker) << "x";
  addOrders(kBefore, kBefore + kEvents);
  // Every event has failed at least twice.
  ASSERT_TRUE(eventually([&] { return host.countInLog("cannot fsync audit file") >= 2 * kEvents; })) << host.log();
  EXPECT_EQ(pending(), kEvents) << "an entry was acknowledged although its fsync failed";
  EXPECT_EQ(readFile(path()), before) << "the failed batches' lines were not cut back out";
  EXPECT_EQ(host.countInLog("events answered RETRY, their lines not in the file"), 1U) << host.log();

  std::filesystem::remove(marker);
  ASSERT_TRUE(eventually([&] { return pending() == 0 && wholeLines(path()).size() >= kBefore + kEvents; }))
      << host.log();
  EXPECT_TRUE(host.waitForLog("audit file " + path() + " is written again")) << host.log();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // a second line would show now
  stop(host);
  EXPECT_EQ(readFile(path()).substr(0, before.size()), before);
  std::vector<std::string> ids = wholeLineIds(path());
  EXPECT_EQ(ids.size(), static_cast<size_t>(kBefore + kEvents));
  std::set<std::string> distinct(ids.begin(), ids.end());
  EXPECT_EQ(distinct.size(), static_cast<size_t>(kBefore + kEvents));
  for (int i = 0; i < kBefore + kEvents; ++i) {
    EXPECT_EQ(distinct.count("evt-" + std::to_string(i)), 1U) << i;
  }
  auto s = commitSummary(host.log());
  EXPECT_EQ(s["lines"], kBefore + kEvents) << host.log();
  EXPECT_GE(s["write_errors"], 2);
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/dead.jsonl"));
}

// SIGKILL while batches are being written and fsync'd: every entry the group
// counts as acknowledged (delivered, no longer pending) has its line in the
// file. After a restart the rest are handled, and the redelivered ones whose
// lines made it into the file before the kill are not written twice.
TEST_F(AuditGroupCommitTest, SigkillMidGroupCommitLosesNoAcknowledgedLine) {
  constexpr int kEvents = 5000;
  redis_.command({"XGROUP", "CREATE", kCommitStream, kGroup, "0", "MKSTREAM"});
  addOrders(0, kEvents);
  auto host = std::make_unique<EvhostProcess>(streamConfig("", "limits: {max_in_flight: 1000}\n"));
  ASSERT_TRUE(eventually([&] { return acknowledged() >= 2000; }, std::chrono::seconds(60))) << host->log();
  host->signal(SIGKILL);
  ASSERT_EQ(host->waitExit(), std::optional<int>(128 + SIGKILL));

  // The group's state: delivered up to last-delivered-id, minus what is pending.
  std::set<std::string> pending_ids;
  ReplyPtr p = redis_.command({"XPENDING", kCommitStream, kGroup, "-", "+", "100000"});
  for (size_t i = 0; i < p->elements; ++i) {
    pending_ids.insert(p->element[i]->element[0]->str);
  }
  const std::string last = lastDelivered();
  ASSERT_FALSE(last.empty());
  std::vector<std::string> acked;
  ReplyPtr all = redis_.command({"XRANGE", kCommitStream, "-", "+"});
  ASSERT_EQ(all->elements, static_cast<size_t>(kEvents));
  for (size_t i = 0; i < all->elements; ++i) {
    const std::string id = all->element[i]->element[0]->str;
    if (idNotAfter(id, last) && pending_ids.count(id) == 0) {
      const redisReply* fields = all->element[i]->element[1];
      acked.push_back(json::parse(std::string(fields->element[1]->str, fields->element[1]->len))["eventId"]);
    }
  }
  std::vector<std::string> ids = wholeLineIds(path());  // whole lines: a torn last one is left out
  const std::set<std::string> in_file(ids.begin(), ids.end());
  std::printf("[   info   ] killed with %zu entries acknowledged, %zu pending, %zu lines in the file\n", acked.size(),
              pending_ids.size(), ids.size());
  ASSERT_GE(acked.size(), 1U);
  EXPECT_LT(acked.size(), static_cast<size_t>(kEvents)) << "not killed mid-way: the test proves less";
  for (const auto& id : acked) {
    ASSERT_EQ(in_file.count(id), 1U) << id << " was acknowledged but its line is not in the file";
  }

  // The rest, after a restart: each event once.
  host = std::make_unique<EvhostProcess>(streamConfig("", "limits: {max_in_flight: 1000}\n"));
  ASSERT_TRUE(
      eventually([&] { return pending() == 0 && lastDelivered() == all->element[kEvents - 1]->element[0]->str; },
                 std::chrono::seconds(60)))
      << host->log();
  stop(*host);
  size_t fragments = 0;
  ids = wholeLineIds(path(), &fragments);
  EXPECT_LE(fragments, 1U) << "only the write the kill interrupted may have left part of a line";
  const std::set<std::string> distinct(ids.begin(), ids.end());
  EXPECT_EQ(distinct.size(), static_cast<size_t>(kEvents));
  EXPECT_EQ(ids.size(), static_cast<size_t>(kEvents)) << "a line written twice";
}

}  // namespace
}  // namespace evh::test
