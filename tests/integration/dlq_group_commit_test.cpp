// The dlq plugin's group commit (plugins/dlq/dlq_writer.cpp), run by the
// real evhost against a real redis-server: a flood of dead letters (every
// event rejected) stored in arrival order with far fewer pushes than
// entries while Redis takes them; spooled with far fewer fsyncs than entries
// while it refuses them (the list's key holds a string: WRONGTYPE), then
// flushed in order once it takes them again; and a failing fsync (staged by
// support/fsync_fail_shim.c) answering none of its batch OK, so that evhost
// writes those entries to its fallback file. Step by step, in-process:
// dlq_batch_test.cpp.
#include "support/evhost_process.h"
#include "support/http_client.h"
#include "support/redis_server.h"
#include "support/temp_file.h"
#include "support/tested_binaries.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <signal.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace evh::test {
namespace {

using nlohmann::json;

constexpr const char* kChannel = "test:jollyjet:events:orders";
constexpr const char* kDlqKey = "test:jollyjet:events:dlq";
constexpr int kEvents = 500;

std::string orderEvent(int i) {
  return R"({"eventId":"evt-)" + std::to_string(i) +
         R"(","eventType":"ORDER_PLACED","timestamp":"2024-01-15T10:30:00.000Z","payload":{"orderId":"o-)" +
         std::to_string(i) + R"("}})";
}

// "evt-<from>" .. "evt-<to - 1>".
std::vector<std::string> ids(int from, int to) {
  std::vector<std::string> out;
  for (int i = from; i < to; ++i) {
    out.push_back("evt-" + std::to_string(i));
  }
  return out;
}

// The eventIds of dead-letter entries (JSON text), in the order given.
std::vector<std::string> eventIds(const std::vector<std::string>& entries) {
  std::vector<std::string> out;
  for (const auto& e : entries) {
    const json j = json::parse(e, nullptr, false);
    out.push_back(j.is_object() ? j.value("eventId", std::string("?")) : "not an entry: " + e);
  }
  return out;
}

// The counters of the plugin's closing line.
std::map<std::string, long long> totals(const std::string& log) {
  std::map<std::string, long long> out;
  const size_t at = log.find("dead-letter entries this run:");
  if (at == std::string::npos) {
    return out;
  }
  const std::string line = log.substr(at, log.find('\n', at) - at);
  static const std::regex field(R"(\b([a-z_]+)=(\d+))");
  for (std::sregex_iterator it(line.begin(), line.end(), field), end; it != end; ++it) {
    out[(*it)[1].str()] = std::stoll((*it)[2].str());
  }
  return out;
}

// A series' value in a scrape of evhost's /metrics (`series`: the name
// with its labels, as exposed); -1 when it is not there.
double scraped(const std::string& url, const std::string& series) {
  std::istringstream lines(httpGet(url + "/metrics").body);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(series + " ", 0) == 0) {
      return std::stod(line.substr(series.size() + 1));
    }
  }
  return -1;
}

class DlqGroupCommitTest : public ::testing::Test {
 protected:
  // Every event on the channel is rejected, so each becomes a dead letter,
  // in the order published, for the dlq plugin.
  std::string config() const {
    std::ostringstream y;
    y << "environment: test\n"
      << "redis: {host: 127.0.0.1, port: " << redis_.port() << "}\n"
      << "dead_letter: {plugin: dlq, fallback_file: " << fallback() << "}\n"
      << "plugins:\n"
      << "  reject: {path: scripted, config: {answer: REJECT}}\n"
      << "  dlq: {path: dlq, config: {spool_file: " << spool() << ", flush_interval_ms: 50}}\n"
      << "channels:\n  jollyjet:events:orders:\n    routes: [{plugins: [reject]}]\n";
    return y.str();
  }
  std::string spool() const { return dir_.path() + "/spool.jsonl"; }
  std::string fallback() const { return dir_.path() + "/dead.jsonl"; }

  // Events from..to-1, PUBLISHed pipelined on one connection.
  void publish(int from, int to) {
    RedisConn c = redis_.connect();
    for (int i = from; i < to; ++i) {
      const std::string msg = orderEvent(i);
      redisAppendCommand(c.get(), "PUBLISH %s %b", kChannel, msg.data(), msg.size());
    }
    for (int i = from; i < to; ++i) {
      void* reply = nullptr;
      ASSERT_EQ(redisGetReply(c.get(), &reply), REDIS_OK);
      freeReplyObject(reply);
    }
  }
  long long llen() {
    ReplyPtr r = redis_.command({"LLEN", kDlqKey});
    return r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
  }
  // The list's entries, oldest first (it is newest first).
  std::vector<std::string> listed() {
    std::vector<std::string> out;
    ReplyPtr r = redis_.command({"LRANGE", kDlqKey, "0", "-1"});
    for (size_t i = r->elements; i > 0; --i) {
      out.emplace_back(r->element[i - 1]->str, r->element[i - 1]->len);
    }
    return out;
  }
  static void stop(EvhostProcess& host) {
    host.signal(SIGTERM);
    ASSERT_EQ(host.waitExit(), std::optional<int>(0)) << host.log();
  }

  RedisServer redis_;
  TempDir dir_;
};

// Redis takes the entries: all of them in the list, in the order the events
// were published, with far fewer LPUSHes than entries -- those that arrive
// while a push waits for its reply share the next one.
TEST_F(DlqGroupCommitTest, AFloodIsStoredInOrderWithFewerPushesThanEntries) {
  EvhostProcess host(config());
  ASSERT_TRUE(host.waitForLog("subscribed to")) << host.log();
  publish(0, kEvents);
  ASSERT_TRUE(eventually([&] { return llen() == kEvents; })) << host.log();
  stop(host);
  EXPECT_EQ(eventIds(listed()), ids(0, kEvents));
  auto t = totals(host.log());
  EXPECT_EQ(t["stored"], kEvents) << host.log();
  EXPECT_EQ(t["spooled"], 0);
  EXPECT_GE(t["pushes"], 1);
  EXPECT_LT(t["pushes"], kEvents / 2) << "entries arriving during a push share the next one";
  EXPECT_FALSE(std::filesystem::exists(fallback()));
  std::printf("[   info   ] %lld entries, %lld batches, %lld pushes\n", t["stored"], t["batches"], t["pushes"]);
}

// Redis refuses the entries: all of them in the spool, in arrival order,
// with far fewer fsyncs than entries, each answered OK (nothing reaches
// evhost's fallback file). Once Redis takes them again they are flushed,
// still in order.
TEST_F(DlqGroupCommitTest, DuringAnOutageAFloodIsSpooledWithFewerFsyncsThenFlushedInOrder) {
  redis_.command({"SET", kDlqKey, "not a list"});  // LPUSH: WRONGTYPE
  EvhostProcess host(config());
  ASSERT_TRUE(host.waitForLog("subscribed to")) << host.log();
  publish(0, kEvents);
  ASSERT_TRUE(eventually([&] { return wholeLines(spool()).size() >= static_cast<size_t>(kEvents); })) << host.log();
  EXPECT_EQ(eventIds(wholeLines(spool())), ids(0, kEvents));
  EXPECT_TRUE(host.waitForLog("cannot store dead-letter entries in Redis")) << host.log();
  EXPECT_EQ(host.countInLog("cannot store dead-letter entries in Redis"), 1U) << "one warning per outage";

  redis_.command({"DEL", kDlqKey});
  ASSERT_TRUE(eventually([&] { return llen() == kEvents && wholeLines(spool()).empty(); })) << host.log();
  EXPECT_TRUE(host.waitForLog("Redis answers again")) << host.log();
  stop(host);
  EXPECT_EQ(eventIds(listed()), ids(0, kEvents));
  auto t = totals(host.log());
  EXPECT_EQ(t["spooled"], kEvents) << host.log();
  EXPECT_EQ(t["flushed"], kEvents);
  EXPECT_EQ(t["stored"], 0);
  EXPECT_EQ(t["not_stored"], 0);
  EXPECT_GE(t["spool_appends"], 1);
  EXPECT_LT(t["spool_appends"], kEvents / 2) << "entries arriving during an fsync share the next one";
  EXPECT_FALSE(std::filesystem::exists(fallback()));
  std::printf("[   info   ] %lld entries spooled with %lld fsyncs, flushed with %lld pushes\n", t["spooled"],
              t["spool_appends"], t["pushes"]);
}

// While Redis refuses the entries and fsync fails (EIO, staged by the
// preloaded shim), none of them is answered OK: the spool keeps only what
// it held before (the failed appends are cut back out), and evhost writes
// each entry to its fallback file, saying why. Once fsync works again,
// entries are spooled, and flushed in order.
TEST_F(DlqGroupCommitTest, AFailingFsyncAnswersNoneOfItsBatchOk) {
  constexpr int kBefore = 5;
  constexpr int kFailing = 50;
  constexpr int kAfter = 5;
  const std::string marker = dir_.path() + "/fsync-fails";
  const std::string asan = getenv("ASAN_OPTIONS") != nullptr ? std::string(getenv("ASAN_OPTIONS")) + ":" : "";
  redis_.command({"SET", kDlqKey, "not a list"});
  EvhostProcess host(config(), {},
                     {"LD_PRELOAD=" + std::string(fsyncFailShim()), "EVH_TEST_FSYNC_FAIL_MARKER=" + marker,
                      // the shim is preloaded ahead of a sanitizer build's runtime: allowed here
                      "ASAN_OPTIONS=" + asan + "verify_asan_link_order=0"});
  ASSERT_TRUE(host.waitForLog("subscribed to")) << host.log();
  const std::string url = opsUrl(host);
  ASSERT_FALSE(url.empty()) << host.log();
  auto metric = [&](const std::string& series) { return scraped(url, series); };
  publish(0, kBefore);
  // Answered (fsync'd) before fsync starts failing: not just written.
  ASSERT_TRUE(eventually([&] { return metric(R"(evhost_plugin_dlq_spooled_total{plugin="dlq"})") == kBefore; }))
      << host.log();
  const std::string before = readFile(spool());
  ASSERT_EQ(wholeLines(spool()).size(), static_cast<size_t>(kBefore));

  std::ofstream(marker) << "x";
  publish(kBefore, kBefore + kFailing);
  ASSERT_TRUE(eventually([&] { return metric("evhost_dead_letter_plugin_failures_total") == kFailing; })) << host.log();
  EXPECT_EQ(metric(R"(evhost_plugin_dlq_not_stored_total{plugin="dlq"})"), kFailing);
  EXPECT_EQ(metric(R"(evhost_plugin_dlq_spooled_total{plugin="dlq"})"), kBefore) << "one was answered OK";
  const std::string failed = "spool file " + spool() + ": fsync: Input/output error); writing entry";
  // The metric counts each failure just before its line is logged.
  EXPECT_TRUE(eventually([&] { return host.countInLog(failed) >= static_cast<size_t>(kFailing); })) << host.log();
  EXPECT_EQ(host.countInLog(failed), static_cast<size_t>(kFailing)) << host.log();
  EXPECT_EQ(readFile(spool()), before) << "a failed append was not cut back out";
  EXPECT_GE(host.countInLog("cannot spool "), 1U) << host.log();

  std::filesystem::remove(marker);
  publish(kBefore + kFailing, kBefore + kFailing + kAfter);
  ASSERT_TRUE(eventually([&] { return wholeLines(spool()).size() == kBefore + kAfter; })) << host.log();
  redis_.command({"DEL", kDlqKey});
  ASSERT_TRUE(eventually([&] { return llen() == kBefore + kAfter; })) << host.log();
  stop(host);
  std::vector<std::string> want = ids(0, kBefore);
  for (const auto& id : ids(kBefore + kFailing, kBefore + kFailing + kAfter)) {
    want.push_back(id);
  }
  EXPECT_EQ(eventIds(listed()), want);
  auto t = totals(host.log());
  EXPECT_EQ(t["spooled"], kBefore + kAfter) << host.log();
  EXPECT_EQ(t["not_stored"], kFailing);
  EXPECT_EQ(t["flushed"], kBefore + kAfter);
  // The host wrote the refused entries to its fallback file (fsync'd once
  // the disk works again, or logged in full at critical level before).
  EXPECT_EQ(wholeLines(fallback()).size(), static_cast<size_t>(kFailing));
}

}  // namespace
}  // namespace evh::test
